//! Inbound calls end to end: the PBX (SIPp UAC, `pbx_wait_for_bye.xml`) places 100 calls into
//! queue `support` (number 4000, longest-idle) at 5 calls/s; five registered seats (SIPp UAS,
//! `seat_answer_hangup.xml`) answer every offer after a 200 ms ring and hang up after 300 ms of
//! talk, and ctid must pass that BYE on to the caller. Every call must be answered and
//! recorded, and the longest-idle strategy must spread the calls evenly over the five agents
//! (20 ± 2 each).
//!
//! Capacity: a seat is busy ~0.5 s per call, so 5 calls/s keep 2.5 of the 5 seats busy on
//! average. The agents (not the callers) hang up, and a caller waits up to 25 s for that BYE,
//! so a burst (a slow machine, SIPp catching up on its rate) only makes callers wait a little
//! longer; it cannot turn into abandoned calls.

use ctid_testkit as common;

use common::*;
use std::collections::BTreeMap;
use std::time::Duration;

const AGENTS: [&str; 5] = ["1001", "1002", "1003", "1004", "1005"];
const CALLS: usize = 100;

#[test]
fn hundred_calls_are_answered_and_spread_over_five_seats() {
    let env = TestEnv::new(&queue_settings(
        &AGENTS,
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seats: Vec<(&str, SippBg)> = AGENTS
        .iter()
        .map(|&id| {
            let seat = start_seat(
                env.path(),
                daemon.addr,
                id,
                &format!("secret{id}"),
                "seat_answer_hangup.xml",
                60,
            );
            (id, seat)
        })
        .collect();

    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_wait_for_bye.xml",
        &[
            "-s",
            "4000",
            "-r",
            "5",
            "-m",
            "100",
            "-l",
            "20",
            "-timeout",
            "45s",
            "-timeout_error",
        ],
    );
    let seat_runs: Vec<(&str, SippRun)> = seats
        .into_iter()
        .map(|(id, s)| (id, s.stop(Duration::from_secs(5))))
        .collect();
    assert!(
        pbx.ok() && pbx.successful == Some(CALLS as u64),
        "the PBX's {CALLS} calls (INVITE, 200 with SDP, ACK, then ctid's BYE when the agent hangs up) did not all succeed:\n{}\n{}\n{}",
        pbx.report,
        daemon.story_of_failed_calls(&pbx.report),
        seat_runs
            .iter()
            .map(|(id, r)| format!("--- seat {id}: {:?} successful, {:?} failed ---\n{}", r.successful, r.failed, tail(&r.report, 3000)))
            .collect::<String>()
    );

    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() >= CALLS && r.iter().all(|c| c.outcome.is_some())
    });
    let events = read_events(&env);
    daemon.stop();

    // Every call that reached a seat was a proper call: the seats saw the caller's number and
    // an SDP offer, answered, and hung up (ctid answered their BYE with 200).
    let mut seat_total = 0;
    for (id, run) in &seat_runs {
        assert_eq!(
            run.failed,
            Some(0),
            "seat {id} had failed calls (unexpected message, or From/SDP of ctid's INVITE wrong):\n{}",
            run.report
        );
        seat_total += run.successful.unwrap_or(0);
    }
    assert_eq!(
        seat_total,
        CALLS as u64,
        "the seats completed {seat_total} calls in all, expected one per PBX call:\n{}",
        seat_runs
            .iter()
            .map(|(id, r)| format!("--- seat {id} ---\n{}", r.report))
            .collect::<String>()
    );

    assert_eq!(
        rows.len(),
        CALLS,
        "expected one calls row per PBX call:\n{}",
        describe_calls(&rows)
    );
    let mut per_agent: BTreeMap<String, usize> = BTreeMap::new();
    let mut numbers = std::collections::BTreeSet::new();
    for c in &rows {
        let ctx = || format!("{c:?}\n{}", describe_events(&events_of(&events, c.id)));
        assert_eq!(c.outcome.as_deref(), Some("answered"), "{}", ctx());
        assert_eq!(c.direction, "inbound", "{}", ctx());
        assert_eq!(c.queue.as_deref(), Some("support"), "{}", ctx());
        assert_eq!(c.dialed_number.as_deref(), Some("4000"), "{}", ctx());
        assert_eq!(
            c.hangup_by.as_deref(),
            Some("agent"),
            "the seats hang up: {}",
            ctx()
        );
        let n = sipp_call_number(&c.sip_call_id).unwrap_or_else(|| {
            panic!("sip_call_id is not the PBX's Call-ID (N-PID@IP): {}", ctx())
        });
        assert!(
            numbers.insert(n),
            "two rows for PBX call {n}:\n{}",
            describe_calls(&rows)
        );
        assert_eq!(
            c.caller_number.as_deref(),
            Some(format!("55501{n}").as_str()),
            "caller number (From user of the PBX's INVITE): {}",
            ctx()
        );
        assert_eq!(
            c.caller_name.as_deref(),
            Some(format!("Caller {n}").as_str()),
            "caller name (From display name): {}",
            ctx()
        );
        let agent = c
            .agent
            .clone()
            .unwrap_or_else(|| panic!("answered without agent: {}", ctx()));
        assert!(AGENTS.contains(&agent.as_str()), "{}", ctx());
        *per_agent.entry(agent.clone()).or_default() += 1;

        let answered = c
            .answered_at_ms
            .unwrap_or_else(|| panic!("no answered_at_ms: {}", ctx()));
        let ended = c
            .ended_at_ms
            .unwrap_or_else(|| panic!("no ended_at_ms: {}", ctx()));
        assert!(
            c.entered_at_ms <= answered && answered <= ended,
            "entered <= answered <= ended: {}",
            ctx()
        );
        let wait = c.wait_ms.unwrap_or_else(|| panic!("no wait_ms: {}", ctx()));
        assert!(
            (0..2000).contains(&wait),
            "wait_ms {wait}: a free seat answers after a 200 ms ring: {}",
            ctx()
        );
        assert!(
            (wait - (answered - c.entered_at_ms)).abs() <= 250,
            "wait_ms {wait} does not match answered_at - entered_at: {}",
            ctx()
        );
        let talk = c.talk_ms.unwrap_or_else(|| panic!("no talk_ms: {}", ctx()));
        assert!(
            (100..2000).contains(&talk),
            "talk_ms {talk}: the agent hangs up 300 ms after the ACK: {}",
            ctx()
        );
        assert!(
            (talk - (ended - answered)).abs() <= 250,
            "talk_ms {talk} does not match ended_at - answered_at: {}",
            ctx()
        );
        assert_eq!(
            c.answered_in_target,
            Some(1),
            "answered within the default 15 s service-level target: {}",
            ctx()
        );

        // The call's history: entered -> offered (to its agent) -> answered (by it) -> ended.
        let ev = events_of(&events, c.id);
        assert_eq!(
            kinds_among(&ev, &["entered", "offered", "answered", "ended"]),
            ["entered", "offered", "answered", "ended"],
            "events of call {}: {}",
            c.id,
            ctx()
        );
        for kind in ["offered", "answered"] {
            let e = ev.iter().find(|e| e.kind == kind).unwrap();
            assert_eq!(
                e.agent.as_deref(),
                Some(agent.as_str()),
                "the {kind} event names another agent than the call's: {}",
                ctx()
            );
        }
        assert!(
            ev.windows(2).all(|w| w[0].at_ms <= w[1].at_ms),
            "event times go backwards: {}",
            ctx()
        );
    }

    // Longest-idle with evenly paced calls: every agent gets a fifth of them, give or take
    // two (each free seat is the longest idle one in turn, so the calls go round the seats).
    let fair = CALLS / AGENTS.len();
    for id in AGENTS {
        let n = per_agent.get(id).copied().unwrap_or(0);
        assert!(
            n.abs_diff(fair) <= 2,
            "agent {id} answered {n} of {CALLS} calls with longest-idle (expected {fair} ± 2); per agent: {per_agent:?}"
        );
    }
}
