//! Live figures for supervisors: `GET /api/v1/stats` on the admin listener serves today's
//! per-queue figures, and a restart in the middle of the day changes none of them (they are
//! rebuilt from the call records).

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The `today` figures of queue `support`, once `pred` holds (polled up to 5 s).
fn today(env: &TestEnv, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = http_get(env, "/api/v1/stats");
        assert_eq!(status, 200, "GET /api/v1/stats: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        let q = v["queues"]
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
            .unwrap_or_else(|| panic!("no queue 'support' in {body}"))
            .clone();
        let t = q["today"].clone();
        if pred(&t) || Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn todays_figures_are_served_and_survive_a_restart() {
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
    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "3",
            "-r",
            "1",
            "-d",
            "800",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    assert!(pbx.ok() && pbx.successful == Some(3), "{}", pbx.report);
    let _ = today(&env, |t| t["answered"] == 3);
    // Figures are published once a second: let the last call's talk time land.
    std::thread::sleep(Duration::from_millis(1500));
    let before = today(&env, |t| t["answered"] == 3);
    let ctx = || format!("{before:#}\n{}", daemon.log_tail(4000));
    assert_eq!(before["offered"], 3, "{}", ctx());
    assert_eq!(before["answered"], 3, "{}", ctx());
    assert_eq!(before["answered_in_target"], 3, "{}", ctx());
    assert_eq!(before["sl_offered"], 1.0, "{}", ctx());
    assert_eq!(before["answer_rate"], 1.0, "{}", ctx());
    assert_eq!(before["sl_met"], true, "{}", ctx());
    let asa = before["asa_secs"].as_f64().expect("ASA");
    assert!((0.1..2.0).contains(&asa), "ASA {asa}: {}", ctx());
    let aht = before["aht_secs"].as_f64().expect("AHT");
    assert!((0.3..3.0).contains(&aht), "AHT {aht}: {}", ctx());
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();

    // Restart mid-day: the same figures, rebuilt from the call records.
    let daemon = env.start();
    let after = today(&env, |t| t["answered"] == 3);
    assert_eq!(
        before,
        after,
        "today's figures changed across a restart\n{}",
        daemon.log_tail(4000)
    );
    daemon.stop();
}
