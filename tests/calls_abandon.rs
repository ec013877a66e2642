//! Callers who give up, and numbers no queue serves.

use ctid_testkit as common;

use common::*;
use std::time::Duration;

const SHORT_QUEUE: &str = "strategy = \"longest-idle\"\nring_timeout_secs = 30\nwrapup_secs = 0\n";

/// One PBX call to 4000 whose caller hangs up 2 s after ctid's 200; returns the call's row and
/// its events once recorded.
fn call_and_hang_up_after_2s(env: &TestEnv, daemon: &Daemon) -> (CallRow, Vec<EventRow>) {
    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            "2000",
            "-timeout",
            "15s",
            "-timeout_error",
        ],
    );
    assert!(
        pbx.ok() && pbx.successful == Some(1),
        "the caller's call (INVITE, 200, ACK, 2 s, BYE, 200) failed:\n{}",
        pbx.report
    );
    let rows = wait_for_calls(env, Duration::from_secs(5), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    let events = read_events(env);
    let ev = events_of(&events, rows[0].id);
    (rows[0].clone(), ev)
}

fn assert_short_abandon(c: &CallRow, ev: &[EventRow]) {
    let ctx = format!("{c:?}\n{}", describe_events(ev));
    assert_eq!(c.outcome.as_deref(), Some("abandoned"), "{ctx}");
    assert_eq!(c.hangup_by.as_deref(), Some("caller"), "{ctx}");
    assert_eq!(c.queue.as_deref(), Some("support"), "{ctx}");
    assert_eq!(c.answered_at_ms, None, "{ctx}");
    assert_eq!(c.agent, None, "nobody answered: {ctx}");
    let wait = c.wait_ms.expect("wait_ms of an abandoned call");
    assert!(
        (1_500..3_500).contains(&wait),
        "wait_ms {wait}: the caller hung up 2 s after entering: {ctx}"
    );
    assert_eq!(
        c.short_abandon,
        Some(1),
        "hung up after 2 s with short_abandon_secs = 5: {ctx}"
    );
    assert!(c.ended_at_ms.is_some(), "{ctx}");
    assert_eq!(
        kinds_among(ev, &["entered", "abandoned"]),
        ["entered", "abandoned"],
        "{ctx}"
    );
    assert!(
        !ev.iter().any(|e| e.kind == "answered"),
        "an abandoned call has no 'answered' event: {ctx}"
    );
}

#[test]
fn caller_hanging_up_in_an_empty_queue_is_a_short_abandon() {
    // Agent 1001 is a member but never registers: the queue is empty (join_empty defaults to
    // true, so the caller still enters and waits).
    let env = TestEnv::new(&queue_settings(&["1001"], SHORT_QUEUE));
    let daemon = env.start();
    let (c, ev) = call_and_hang_up_after_2s(&env, &daemon);
    daemon.stop();
    assert_short_abandon(&c, &ev);
    assert!(
        !ev.iter().any(|e| e.kind == "offered"),
        "no agent is logged in, yet the call was offered:\n{}",
        describe_events(&ev)
    );
}

#[test]
fn caller_hanging_up_while_a_seat_rings_cancels_the_ring() {
    let env = TestEnv::new(&queue_settings(&["1001"], SHORT_QUEUE));
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_noanswer.xml",
        30,
    );
    let (c, ev) = call_and_hang_up_after_2s(&env, &daemon);
    let seat_run = seat.stop(Duration::from_secs(3));
    daemon.stop();

    // The ringing seat got a CANCEL (answered 200, then 487 to its INVITE, ACKed by ctid).
    assert_eq!(
        (seat_run.successful, seat_run.failed),
        (Some(1), Some(0)),
        "the ringing seat was not cancelled properly when the caller hung up:\n{}",
        seat_run.report
    );
    assert_short_abandon(&c, &ev);
    let ctx = format!("{c:?}\n{}", describe_events(&ev));
    assert_eq!(
        kinds_among(&ev, &["entered", "offered", "abandoned"]),
        ["entered", "offered", "abandoned"],
        "{ctx}"
    );
    assert_eq!(
        ev.iter()
            .find(|e| e.kind == "offered")
            .and_then(|e| e.agent.as_deref()),
        Some("1001"),
        "{ctx}"
    );
    assert!(
        !ev.iter().any(|e| e.kind == "missed"),
        "the caller hung up while the seat rang: not the agent's miss: {ctx}"
    );
}

#[test]
fn unknown_number_gets_404() {
    let env = TestEnv::new(&queue_settings(&["1001"], SHORT_QUEUE));
    let daemon = env.start();
    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_404.xml",
        &["-s", "4999", "-m", "1", "-timeout", "10s", "-timeout_error"],
    );
    assert!(
        pbx.ok() && pbx.successful == Some(1),
        "INVITE to 4999 (no queue has that number): expected 404 (then ACK):\n{}",
        pbx.report
    );
    daemon.stop();
    // Whatever ctid records about it, nothing is left open or counted as answered.
    let rows = read_calls(&env);
    for c in &rows {
        assert!(
            matches!(c.outcome.as_deref(), Some("rejected")),
            "a call to an unknown number may only be recorded as rejected: {c:?}"
        );
    }
}
