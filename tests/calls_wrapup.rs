//! Wrap-up end to end (issue 3: "no call offered during wrap-up"): one seat (SIPp UAS,
//! `seat_answer_hangup.xml`: answers after a 200 ms ring, hangs up after 300 ms of talk) and a
//! PBX placing two calls at once into queue `support` (`pbx_wait_for_bye.xml`: the callers
//! wait for ctid's BYE). The first call goes to the seat; the second waits. When the agent
//! hangs up, the agent is in `wrapup` on the agent board and the waiting call is not offered
//! until the wrap-up time has passed — or until a supervisor ends the wrap-up
//! (`POST /api/v1/agents/{id}/wrapup/end`), which releases the waiting call at once.

use ctid_testkit as common;

use common::*;
use std::time::{Duration, Instant};

const AGENT: &str = "1001";

/// Everything about the two calls, for failure messages.
fn story(env: &TestEnv, daemon: &Daemon) -> String {
    format!(
        "--- calls ---\n{}--- events ---\n{}--- ctid log (tail) ---\n{}",
        describe_calls(&read_calls(env)),
        describe_events(&read_events(env)),
        daemon.log_tail(8_000)
    )
}

/// Wall-clock now in ms since the epoch (the clock of `call_events.at_ms`).
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// One registered seat, a daemon with `wrapup_secs`, and the PBX's two calls under way.
struct Run {
    env: TestEnv,
    daemon: Daemon,
    seat: SippBg,
    pbx: SippBg,
}

fn start(wrapup_secs: u64) -> Run {
    let env = TestEnv::new(&queue_settings(
        &[AGENT],
        &format!("ring_timeout_secs = 10\nwrapup_secs = {wrapup_secs}\n"),
    ));
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        AGENT,
        &format!("secret{AGENT}"),
        "seat_answer_hangup.xml",
        60,
    );
    let pbx = sipp_spawn(
        env.path(),
        Some(daemon.addr),
        free_port(),
        "pbx_wait_for_bye.xml",
        &[
            "-s", "4000", "-m", "2", "-l", "2", "-r", "10", "-timeout", "40s",
        ],
    );
    Run {
        env,
        daemon,
        seat,
        pbx,
    }
}

/// Wait until the first call has ended (the agent hung up) and the agent shows `wrapup` on
/// the board; the first call's row and the board entry seen in wrap-up.
fn first_call_then_wrapup(r: &Run) -> (CallRow, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = read_calls(&r.env);
        let ended = rows
            .iter()
            .find(|c| c.outcome.as_deref() == Some("answered"))
            .cloned();
        let a = board_agent(&r.env, AGENT);
        if let Some(first) = ended {
            if a["state"] == "wrapup" {
                return (first, a);
            }
        }
        assert!(
            Instant::now() < deadline,
            "after the first call the agent should be in wrap-up on the board; board: {a}\n{}",
            story(&r.env, &r.daemon)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait for the second call's `offered` event; the call's row and that event.
fn second_offer(r: &Run, first: &CallRow, within: Duration) -> (CallRow, EventRow) {
    let deadline = Instant::now() + within;
    loop {
        let rows = read_calls(&r.env);
        let events = read_events(&r.env);
        if let Some(second) = rows.iter().find(|c| c.id != first.id) {
            if let Some(e) = events_of(&events, second.id)
                .into_iter()
                .find(|e| e.kind == "offered")
            {
                return (second.clone(), e);
            }
        }
        assert!(
            Instant::now() < deadline,
            "the second call was not offered within {within:?}\n{}",
            story(&r.env, &r.daemon)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Both calls answered by the agent, the PBX and the seat content.
fn finish(r: Run) {
    let pbx = r.pbx.wait();
    let rows = wait_for_calls(&r.env, Duration::from_secs(10), |rows| {
        rows.len() == 2 && rows.iter().all(|c| c.outcome.is_some())
    });
    let seat = r.seat.stop(Duration::from_secs(3));
    assert!(
        pbx.ok() && pbx.successful == Some(2),
        "both PBX calls should be answered and ended by ctid:\n{}\n{}",
        pbx.report,
        story(&r.env, &r.daemon)
    );
    assert_eq!(seat.failed, Some(0), "seat: {}", seat.report);
    assert!(
        rows.len() == 2
            && rows
                .iter()
                .all(|c| c.outcome.as_deref() == Some("answered")
                    && c.agent.as_deref() == Some(AGENT)),
        "both calls answered by {AGENT}:\n{}",
        story(&r.env, &r.daemon)
    );
    r.daemon.stop();
}

#[test]
fn no_call_is_offered_during_wrapup() {
    const WRAPUP_MS: i64 = 3_000;
    let r = start(3);
    let (first, during) = first_call_then_wrapup(&r);
    assert_eq!(during["state"], "wrapup", "{during}");

    // Half-way through the wrap-up the second caller is still waiting, not offered.
    std::thread::sleep(Duration::from_millis(1_500));
    let a = board_agent(&r.env, AGENT);
    let events = read_events(&r.env);
    let offers: Vec<&EventRow> = events
        .iter()
        .filter(|e| e.call_id != first.id && e.kind == "offered")
        .collect();
    assert!(
        a["state"] == "wrapup" && offers.is_empty(),
        "1.5 s into a 3 s wrap-up the agent must still be in wrap-up and not offered the waiting call; board: {a}\n{}",
        story(&r.env, &r.daemon)
    );

    let (second, offer) = second_offer(&r, &first, Duration::from_secs(5));
    let ended = first
        .ended_at_ms
        .unwrap_or_else(|| panic!("first call without ended_at_ms: {first:?}"));
    let gap = offer.at_ms - ended;
    assert!(
        second.entered_at_ms < ended,
        "the second call should have been waiting while the first was talking: {}",
        story(&r.env, &r.daemon)
    );
    assert!(
        (WRAPUP_MS..WRAPUP_MS + 1_500).contains(&gap),
        "the second call was offered {gap} ms after the first ended; with wrapup_secs = 3 it must be 3 s (not earlier, and not much later):\n{}",
        story(&r.env, &r.daemon)
    );
    finish(r);
}

#[test]
fn ending_wrapup_releases_the_waiting_call_at_once() {
    // A wrap-up far longer than the test: only the supervisor's request can end it.
    let r = start(60);
    let (first, _) = first_call_then_wrapup(&r);
    std::thread::sleep(Duration::from_millis(1_000));
    let events = read_events(&r.env);
    assert!(
        !events
            .iter()
            .any(|e| e.call_id != first.id && e.kind == "offered"),
        "the waiting call was offered during wrap-up:\n{}",
        story(&r.env, &r.daemon)
    );

    let before_ms = now_ms();
    let (status, v) = api_call(
        &r.env,
        "POST",
        &format!("/api/v1/agents/{AGENT}/wrapup/end"),
        Some(SUPERVISOR_TOKEN),
        Some(("application/json", "{}")),
    );
    assert_eq!(
        status,
        200,
        "POST wrapup/end: {v}\n{}",
        story(&r.env, &r.daemon)
    );
    let (_, offer) = second_offer(&r, &first, Duration::from_secs(5));
    let took = offer.at_ms - before_ms;
    assert!(
        took < 1_000,
        "the waiting call was offered {took} ms after the wrap-up end was asked (expected at once): {offer:?}\n{}",
        story(&r.env, &r.daemon)
    );
    finish(r);
}
