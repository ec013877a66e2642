//! Live figures for supervisors: `GET /api/v1/stats` on the admin listener serves today's
//! per-queue figures, and a restart in the middle of the day changes none of them (they are
//! rebuilt from the call records).

mod common;

use common::*;
use std::time::{Duration, Instant};

/// The `today` figures of queue `support`, once `pred` holds (polled up to 10 s).
fn today(env: &TestEnv, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
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
    // A call's talk time enters the live figures when it ends, and the figures are published
    // once a second: wait until they hold all three calls' talk (AHT = the mean of the stored
    // talk_ms), rather than a fixed 1.5 s that a loaded machine can overrun.
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 3 && r.iter().all(|c| c.talk_ms.is_some())
    });
    let talk: Vec<i64> = rows.iter().filter_map(|c| c.talk_ms).collect();
    assert_eq!(talk.len(), 3, "{}", describe_calls(&rows));
    let stored_aht = talk.iter().sum::<i64>() as f64 / 3.0 / 1000.0;
    let before = today(&env, |t| {
        t["answered"] == 3
            && t["aht_secs"]
                .as_f64()
                .is_some_and(|a| (a - stored_aht).abs() < 1e-9)
    });
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
