//! The progressive dialer end to end: SIPp plays the PBX trunk with the customers behind it
//! (`tests/sipp/trunk_customer_*.xml`; the answering one challenges with 401 and checks ctid's
//! digest answer) and the agent's seat (`tests/sipp/seat_outbound*.xml`). A list and its
//! contacts are created through the store API in the test's database; ctid dials them while it
//! runs.
//!
//! Checked: the agent is rung first (From = the customer), the customer is INVITEd only after
//! the agent answered (ctid's call events and SIPp's own message traces), answered calls are
//! bridged and stored (`answered` attempts, `outbound` call rows, attempt counters in
//! `/metrics`), a list quota of 2 ends at exactly 2 answered attempts; a busy customer is
//! stored `busy` (486) with its retry after the list's busy delay; an unanswered one is
//! CANCELled after `dial_timeout_secs` (`no_answer`); an agent hanging up while the customer
//! rings CANCELs the customer (`failed`); after `kill -9` mid-call the attempt is reconciled
//! (`failed`, `interrupted`) and never dialed again as the same attempt.

use ctid_testkit as common;

use common::outbound::{
    answered_and_ended, attempts, contacts, create_list, env_with_trunk, list_spec, now_ms,
    outbound_calls, retry, trace_times, wait_attempts, AttemptRow, ContactRow, Ends,
};
use common::{
    describe_calls, describe_events, events_of, free_port, open_db, read_events, CallRow, Daemon,
    EventRow, SippRun, TestEnv,
};
use ctid::outbound::{ListId, RetryDelays};
use std::time::Duration;

fn finish(daemon: Daemon) {
    daemon.stop();
}

/// A running ctid (`dial_timeout_secs` dial timeout) with the trunk at a free port and a list
/// made by [`create_list`] from [`list_spec`].
struct Dialer {
    daemon: Daemon,
    env: TestEnv,
    list: ListId,
    trunk_port: u16,
}

impl Dialer {
    fn start(
        dial_timeout_secs: u64,
        name: &str,
        quota: Option<u32>,
        retry: RetryDelays,
        contacts: &[(&str, &str, &str)],
    ) -> Dialer {
        let trunk_port = free_port();
        let env = env_with_trunk(trunk_port, dial_timeout_secs, "");
        let daemon = env.start();
        let list = create_list(&env, &list_spec(name, quota, retry), contacts, now_ms());
        Dialer {
            daemon,
            env,
            list,
            trunk_port,
        }
    }

    /// Start the trunk and seat SIPps of [`Ends::start`] against this ctid.
    fn ends(&self, trunk_xml: &str, max_calls: &str, seat_xml: &str, timeout_secs: u64) -> Ends {
        Ends::start(
            &self.env,
            self.trunk_port,
            trunk_xml,
            max_calls,
            seat_xml,
            timeout_secs,
        )
    }
}

/// Wait (at most `wait_secs`) until the list's attempts satisfy `done`, give ctid
/// `settle_ms` more, read what it stored and stop both SIPps.
fn finish_run(
    ends: Ends,
    dialer: &Dialer,
    wait_secs: u64,
    done: impl Fn(&[AttemptRow]) -> bool,
    settle_ms: u64,
) -> Run {
    let (env, list) = (&dialer.env, dialer.list);
    let waited = wait_attempts(env, list, Duration::from_secs(wait_secs), done);
    std::thread::sleep(Duration::from_millis(settle_ms));
    let rows = attempts(env, list);
    let calls = outbound_calls(env);
    let events = read_events(env);
    let cs = contacts(env, list);
    let (_, metrics) = common::http_get(env, "/metrics");
    let seat_trace = ends.seat.messages();
    let trunk_trace = ends.trunk.messages();
    let seat = ends.seat.stop(Duration::from_secs(2));
    let trunk = ends.trunk.stop(Duration::from_secs(2));
    let story = format!(
            "attempts: {rows:#?}\ncontacts: {cs:?}\ncalls:\n{}\nevents:\n{}\n--- seat ---\n{}\n--- trunk ---\n{}",
            describe_calls(&calls),
            describe_events(&events),
            seat.report,
            trunk.report
        );
    Run {
        waited,
        rows,
        contacts: cs,
        calls,
        events,
        metrics,
        seat_trace,
        trunk_trace,
        seat,
        trunk,
        story,
    }
}

/// What one run of the dialer left: the attempts when the wait ended (`waited`) and after
/// settling (`rows`), the contacts, outbound calls and events, `/metrics`, both SIPps' message
/// traces and outcomes, and all of it as text for failure messages (`story`).
struct Run {
    waited: Vec<AttemptRow>,
    rows: Vec<AttemptRow>,
    contacts: Vec<ContactRow>,
    calls: Vec<CallRow>,
    events: Vec<EventRow>,
    metrics: String,
    seat_trace: String,
    trunk_trace: String,
    seat: SippRun,
    trunk: SippRun,
    story: String,
}

/// The one contact of the busy list.
const DAN: (&str, &str, &str) = ("c9", "Dan", "07700 900009");
/// The one contact of the no-answer list.
const EVE: (&str, &str, &str) = ("c7", "Eve", "07700 900007");
/// The one contact of the abandon list.
const HAL: (&str, &str, &str) = ("c5", "Hal", "07700 900005");

/// The run made one attempt, which ended unanswered with `result` (its call row too); its
/// contact is pending again after that one attempt, last result `result`, and retried
/// `retry_secs` (± 1 s) after the attempt ended.
fn assert_one_unanswered_attempt_retried(run: &Run, result: &str, retry_secs: i64) {
    let story = &run.story;
    assert_eq!(run.waited.len(), 1, "{story}");
    let a = &run.waited[0];
    assert_eq!(a.result.as_deref(), Some(result), "{story}");
    assert!(a.answered_at_ms.is_none(), "{story}");
    let ended = a.ended_at_ms.unwrap();
    let (state, n, next, last) = &run.contacts[0];
    assert_eq!(
        state, "pending",
        "{result}: the contact is retried\n{story}"
    );
    assert_eq!(*n, 1, "{story}");
    assert_eq!(last.as_deref(), Some(result), "{story}");
    let due = ended + retry_secs * 1000;
    assert!(
        next.is_some_and(|t| (due - 1_000..=due + 1_000).contains(&t)),
        "retry after {retry_secs} s (ended {ended}, next {next:?})\n{story}"
    );
    assert_eq!(run.calls.len(), 1, "{story}");
    assert_eq!(run.calls[0].outcome.as_deref(), Some(result), "{story}");
}

/// Some attempt of `rows` has ended.
fn any_ended(rows: &[AttemptRow]) -> bool {
    rows.iter().any(|a| a.ended_at_ms.is_some())
}

#[test]
fn progressive_dials_agent_first_then_customer_and_stops_at_quota() {
    let d = Dialer::start(
        5,
        "follow-ups",
        Some(2),
        RetryDelays::default(),
        &[
            ("c1", "Alice", "07700 900001"),
            ("c2", "Bob", "07700 900002"),
            ("c3", "Carol", "07700 900003"),
        ],
    );
    let ends = d.ends("trunk_customer_answer.xml", "10", "seat_outbound.xml", 60);
    let two_answered = |r: &[AttemptRow]| answered_and_ended(r) >= 2;
    // Quota 2: nothing more is dialed, even with a third contact due and the agent free.
    let run = finish_run(ends, &d, 30, two_answered, 3_000);
    let story = &run.story;

    let answered: Vec<&AttemptRow> = run
        .waited
        .iter()
        .filter(|a| a.result.as_deref() == Some("answered"))
        .collect();
    assert_eq!(answered.len(), 2, "two answered attempts expected\n{story}");
    assert_eq!(
        run.rows.len(),
        2,
        "quota 2 reached: no third attempt may be made\n{story}"
    );
    for a in &answered {
        assert_eq!(a.agent.as_deref(), Some("1001"), "{story}");
        assert_eq!(a.attempt_no, Some(1), "{story}");
        assert_eq!(a.sip_code, Some(200), "{story}");
        assert!(
            a.answered_at_ms.is_some() && a.ended_at_ms.is_some(),
            "{story}"
        );
        assert!(
            a.number
                .as_deref()
                .is_some_and(|n| n.starts_with("+4477009000")),
            "numbers are dialed in E.164\n{story}"
        );
        assert!(a.call_id.is_some(), "attempt linked to its call\n{story}");
    }
    // Contacts 1 and 2 (import order) were dialed; contact 3 waits for tomorrow's quota.
    let dialed: Vec<i64> = answered.iter().map(|a| a.contact).collect();
    assert_eq!(run.contacts.len(), 3);
    assert_eq!(
        run.contacts[2].0, "pending",
        "third contact untouched\n{story}"
    );
    assert_eq!(run.contacts[2].1, 0, "third contact never dialed\n{story}");
    assert_eq!(dialed.len(), 2);
    // One outbound call row per attempt: answered by agent 1001, ended by the customer after
    // about a second of talk.
    assert_eq!(run.calls.len(), 2, "{story}");
    for c in &run.calls {
        assert_eq!(c.outcome.as_deref(), Some("answered"), "{story}");
        assert_eq!(c.agent.as_deref(), Some("1001"), "{story}");
        assert_eq!(c.hangup_by.as_deref(), Some("customer"), "{story}");
        assert_eq!(c.caller_number.as_deref(), Some("trunk"), "{story}");
        assert!(
            c.dialed_number
                .as_deref()
                .is_some_and(|n| n.starts_with("+44")),
            "{story}"
        );
        assert!(
            c.talk_ms.is_some_and(|t| t >= 800),
            "talk time of about 1 s\n{story}"
        );
        assert!(
            answered.iter().any(|a| a.call_id == Some(c.id)),
            "call row linked from an attempt\n{story}"
        );
        // The agent answered before the customer was dialed; the customer answered after.
        let ev = events_of(&run.events, c.id);
        let at = |kind: &str| {
            ev.iter()
                .find(|e| e.kind == kind)
                .map(|e| e.at_ms)
                .unwrap_or_else(|| panic!("no {kind} event for call {}\n{story}", c.id))
        };
        let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "offered",
                "agent_answered",
                "dialing",
                "ringing",
                "answered",
                "ended"
            ],
            "call {} events\n{story}",
            c.id
        );
        assert!(at("offered") <= at("agent_answered"), "{story}");
        assert!(at("agent_answered") <= at("dialing"), "{story}");
    }

    // SIPp's own view: each customer INVITE reached the trunk after the seat had answered its
    // call (the seat's 200 OK went out before the trunk's first INVITE of that attempt).
    let seat_answers = trace_times(&run.seat_trace, "sent", |m| {
        m.starts_with("SIP/2.0 200 OK") && m.contains("INVITE")
    });
    let seat_invites = trace_times(&run.seat_trace, "received", |m| m.starts_with("INVITE "));
    // The first INVITE of each customer call (CSeq 1; the retry after the 401 has CSeq 2).
    let trunk_invites = trace_times(&run.trunk_trace, "received", |m| {
        m.starts_with("INVITE ") && m.contains("\nCSeq: 1 INVITE")
    });
    assert_eq!(seat_invites.len(), 2, "two agent calls\n{story}");
    assert_eq!(trunk_invites.len(), 2, "two customer calls\n{story}");
    for k in 0..2 {
        let answer = seat_answers
            .iter()
            .copied()
            .find(|&t| t >= seat_invites[k])
            .expect("seat answer");
        assert!(
            trunk_invites[k] >= answer,
            "customer {k} INVITEd at {} before the agent answered at {answer}\n{story}",
            trunk_invites[k]
        );
    }
    assert_eq!(
        run.trunk.successful,
        Some(2),
        "the trunk accepted ctid's digest answer twice\n{story}"
    );
    // The counters the connect rate is computed from.
    for line in [
        "ctid_callback_attempts_total{list=\"follow-ups\",result=\"answered\"} 2",
        "ctid_callback_dials_total{list=\"follow-ups\"} 2",
    ] {
        assert!(
            run.metrics.lines().any(|l| l == line),
            "/metrics lacks {line:?}\n{}",
            run.metrics
                .lines()
                .filter(|l| l.starts_with("ctid_callback"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    finish(d.daemon);
}

#[test]
fn busy_customer_is_stored_busy_and_retried_after_the_delay() {
    let d = Dialer::start(5, "busy-list", None, retry(60, 600, 600), &[DAN]);
    let ends = d.ends("trunk_customer_busy.xml", "5", "seat_outbound.xml", 60);
    // The retry is not before its delay: nothing more in the next seconds.
    let run = finish_run(ends, &d, 30, any_ended, 3_000);
    let story = &run.story;
    assert_one_unanswered_attempt_retried(&run, "busy", 60);
    assert_eq!(run.rows.len(), 1, "no retry before the busy delay\n{story}");
    assert_eq!(run.waited[0].sip_code, Some(486), "{story}");
    assert_eq!(run.calls[0].sip_code, Some(486), "{story}");
    assert!(run.calls[0].answered_at_ms.is_none(), "{story}");
    // The agent was rung (and hung up by ctid); the customer's INVITE got its 486.
    assert!(
        run.seat.successful.is_some_and(|n| n >= 1),
        "the seat's call completed\n{story}"
    );
    assert!(
        run.trunk.successful.is_some_and(|n| n >= 1),
        "the trunk saw the INVITE and its ACK\n{story}"
    );
    finish(d.daemon);
}

#[test]
fn unanswered_customer_is_cancelled_after_the_dial_timeout() {
    let d = Dialer::start(5, "no-answer-list", None, retry(600, 120, 600), &[EVE]);
    let ends = d.ends("trunk_customer_noanswer.xml", "5", "seat_outbound.xml", 60);
    let run = finish_run(ends, &d, 30, any_ended, 1_500);
    let story = &run.story;
    assert_one_unanswered_attempt_retried(&run, "no_answer", 120);
    // Rung for about the dial timeout (5 s) after the agent answered.
    let rang = run.calls[0].ended_at_ms.unwrap() - run.calls[0].entered_at_ms;
    assert!((4_900..12_000).contains(&rang), "rang {rang} ms\n{story}");
    // The trunk saw the CANCEL, answered 487 and got its ACK: a complete call for SIPp.
    assert_eq!(run.trunk.successful, Some(1), "{story}");
    assert!(run.seat.successful.is_some_and(|n| n >= 1), "{story}");
    finish(d.daemon);
}

#[test]
fn kill_mid_call_then_restart_reconciles_and_never_redials_the_attempt() {
    let fay_gus = [("c1", "Fay", "07700 900011"), ("c2", "Gus", "07700 900012")];
    let d = Dialer::start(30, "restart-list", None, retry(600, 600, 600), &fay_gus);
    let ends = d.ends("trunk_customer_noanswer.xml", "10", "seat_outbound.xml", 90);
    // The first customer's phone rings (agent on the line): kill -9 ctid.
    let before = wait_attempts(&d.env, d.list, Duration::from_secs(20), |r| {
        r.iter().any(|a| a.result.as_deref() == Some("ringing"))
    });
    drop(d.daemon);
    let story0 = format!("before the kill: {before:#?}");
    assert_eq!(before.len(), 1, "{story0}");
    let first_contact = before[0].contact;

    let daemon = d.env.start();
    let rows = wait_attempts(&d.env, d.list, Duration::from_secs(20), |r| r.len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let rows = if rows.len() >= 2 {
        attempts(&d.env, d.list)
    } else {
        rows
    };
    let reason: Option<String> = open_db(&d.env).and_then(|c| {
        c.query_row(
            "SELECT reason FROM outbound_attempts WHERE list_id = ?1 ORDER BY id LIMIT 1",
            [d.list.0],
            |r| r.get(0),
        )
        .ok()
    });
    let cs = contacts(&d.env, d.list);
    let log = daemon.log();
    drop(daemon);
    drop(ends);
    let story = format!("{story0}\nafter: {rows:#?}\ncontacts: {cs:?}");
    // The interrupted attempt is closed as failed/interrupted, its contact rescheduled after
    // the failed delay; the dialer went on with the next contact, never the same attempt again.
    assert!(
        log.contains("outbound attempts reconciled") && log.contains("interrupted: 1"),
        "reconciliation at start\n{story}"
    );
    assert_eq!(rows.len(), 2, "{story}");
    let first = &rows[0];
    assert_eq!(first.contact, first_contact, "{story}");
    assert_eq!(first.result.as_deref(), Some("failed"), "{story}");
    assert!(first.ended_at_ms.is_some(), "{story}");
    assert_eq!(reason.as_deref(), Some("interrupted"), "{story}");
    assert_ne!(rows[1].contact, first_contact, "{story}");
    assert_eq!(rows[1].attempt_no, Some(1), "{story}");
    assert_eq!(
        rows.iter().filter(|a| a.contact == first_contact).count(),
        1,
        "the interrupted contact is not dialed again at once\n{story}"
    );
    let (state, n, next, _) = &cs[0];
    assert_eq!(state, "pending", "{story}");
    assert_eq!(*n, 1, "{story}");
    let ended = first.ended_at_ms.unwrap();
    assert!(
        next.is_some_and(|t| t >= ended + 599_000),
        "retry after failed_secs\n{story}"
    );
}

#[test]
fn agent_hanging_up_before_the_customer_answers_cancels_the_customer() {
    let d = Dialer::start(30, "abandon-list", None, retry(600, 600, 300), &[HAL]);
    let ends = d.ends(
        "trunk_customer_noanswer.xml",
        "5",
        "seat_outbound_hangup.xml",
        60,
    );
    let run = finish_run(ends, &d, 20, any_ended, 1_000);
    let story = &run.story;
    assert_eq!(run.waited.len(), 1, "{story}");
    assert_eq!(run.waited[0].result.as_deref(), Some("failed"), "{story}");
    assert!(run.waited[0].answered_at_ms.is_none(), "{story}");
    assert_eq!(
        run.contacts[0].0, "pending",
        "retried after failed_secs\n{story}"
    );
    assert_eq!(run.calls.len(), 1, "{story}");
    assert_eq!(run.calls[0].outcome.as_deref(), Some("failed"), "{story}");
    assert_eq!(run.calls[0].hangup_by.as_deref(), Some("agent"), "{story}");
    // The customer's INVITE was CANCELled (487 + ACK: a complete call for the trunk SIPp).
    assert_eq!(run.trunk.successful, Some(1), "{story}");
    assert_eq!(run.seat.successful, Some(1), "{story}");
    finish(d.daemon);
}
