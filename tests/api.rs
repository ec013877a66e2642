//! The agent API end to end: a paused agent gets no offers, unpausing brings them back, a pause
//! asked during a call starts when the call ends — with a real daemon, a SIPp seat and a SIPp
//! PBX. Also the plain refusals: no token, unknown pause reason, unknown agent.

use ctid_testkit as common;

use common::*;
use std::time::{Duration, Instant};

fn post(env: &TestEnv, path: &str, json: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_request(env, "POST", path, Some(SUPERVISOR_TOKEN), Some(json));
    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    (status, v)
}

/// Poll the agent until `pred` holds (5 s at most); the last view.
fn agent_until(
    env: &TestEnv,
    id: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let a = board_agent(env, id);
        if pred(&a) || Instant::now() > deadline {
            return a;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn pause_blocks_offers_unpause_resumes_and_a_pause_during_a_call_waits_for_hang_up() {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "ring_timeout_secs = 10\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer.xml",
        60,
    );
    let a = agent_until(&env, "1001", |a| a["state"] == "available");
    assert_eq!(
        a["state"], "available",
        "a registered agent is logged in: {a}"
    );
    assert_eq!(a["registered"], true, "{a}");

    // Refusals first.
    let (status, body) = http_request(&env, "POST", "/api/v1/agents/1001/pause", None, Some("{}"));
    assert_eq!(status, 401, "no token: {body}");
    assert!(body.contains("\"error\""), "JSON error body: {body}");
    let (status, v) = post(&env, "/api/v1/agents/1001/pause", r#"{"reason":"nap"}"#);
    assert_eq!(status, 422, "unknown pause reason: {v}");
    let (status, v) = post(&env, "/api/v1/agents/9999/pause", r#"{"reason":"break"}"#);
    assert_eq!(status, 404, "unknown agent: {v}");

    // Paused: a caller waits, nobody is offered the call.
    let (status, v) = post(&env, "/api/v1/agents/1001/pause", r#"{"reason":"break"}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "paused", "{v}");
    assert_eq!(v["reason"], "break", "{v}");
    let dir = env.path().to_path_buf();
    let addr = daemon.addr;
    let pbx = std::thread::spawn(move || {
        sipp(
            &dir,
            addr,
            "pbx_call.xml",
            &[
                "-s",
                "4000",
                "-m",
                "1",
                "-d",
                "6000",
                "-timeout",
                "30s",
                "-timeout_error",
            ],
        )
    });
    // Wait for the call to be in the queue (its row stored: the PBX's SIPp and the store writer
    // can take well over a second on a loaded machine), then give ctid a second in which it
    // would offer the call to an agent that is wrongly still available.
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| !r.is_empty());
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    std::thread::sleep(Duration::from_millis(1000));
    let events = events_of(&read_events(&env), rows[0].id);
    assert!(
        events.iter().any(|e| e.kind == "entered"),
        "the call's events were not read:\n{}",
        describe_events(&events)
    );
    assert!(
        !events.iter().any(|e| e.kind == "offered"),
        "a paused agent was offered the call:\n{}",
        describe_events(&events)
    );

    // Unpaused: the waiting call is offered and answered.
    let (status, v) = post(&env, "/api/v1/agents/1001/unpause", "{}");
    assert_eq!(status, 200, "{v}");
    let a = agent_until(&env, "1001", |a| a["state"] == "on_call");
    assert_eq!(
        a["state"], "on_call",
        "after unpause the waiting call goes to the agent: {a}"
    );

    // A pause during the call is pending until the hang-up.
    let (status, v) = post(&env, "/api/v1/agents/1001/pause", r#"{"reason":"lunch"}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "on_call", "the call goes on: {v}");
    assert_eq!(v["pending_pause"], "lunch", "{v}");
    let run = pbx.join().expect("pbx thread");
    assert!(run.ok(), "{}", run.report);
    let a = agent_until(&env, "1001", |a| a["state"] == "paused");
    assert_eq!(a["state"], "paused", "the pause starts at hang-up: {a}");
    assert_eq!(a["reason"], "lunch", "{a}");
    assert_eq!(a["calls_answered"], 1, "{a}");

    // Every change above was audited.
    let conn = open_db(&env).expect("db");
    let audited: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit WHERE action LIKE '%pause%'",
            [],
            |r| r.get(0),
        )
        .unwrap_or(-1);
    assert!(
        audited >= 3,
        "pause/unpause requests in the audit table: {audited}"
    );
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}
