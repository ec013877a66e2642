//! Live figures for supervisors: `GET /api/v1/stats` on the admin listener serves today's
//! per-queue figures, and a restart in the middle of the day changes none of them (they are
//! rebuilt from the call records).

use ctid_testkit as common;

use common::*;
use std::time::{Duration, Instant};

/// Queue `support` of `GET /api/v1/stats` (today, current and last interval), once `pred`
/// holds for its `today` figures (polled up to 10 s: a loaded machine is slow).
fn support(env: &TestEnv, pred: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = http_get(env, "/api/v1/stats");
        assert_eq!(status, 200, "GET /api/v1/stats: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
        let mut q = v["queues"]
            .as_array()
            .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
            .unwrap_or_else(|| panic!("no queue 'support' in {body}"))
            .clone();
        // "now" (waiting callers, agents by state) is live state, not a figure.
        if let Some(o) = q.as_object_mut() {
            o.remove("now");
        }
        if pred(&q["today"]) || Instant::now() > deadline {
            return q;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One PBX call to 4000 in the background (`scenario`, caller on the line `-d` ms).
fn caller(env: &TestEnv, d: &Daemon, scenario: &str, hold_ms: u64) -> SippBg {
    sipp_spawn(
        env.path(),
        Some(d.addr),
        free_port(),
        scenario,
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            &hold_ms.to_string(),
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    )
}

#[test]
fn todays_figures_are_served_and_survive_a_restart() {
    // short_abandon_secs = 5 (queue_settings); a caller waits at most 8 s.
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "ring_timeout_secs = 10\nwrapup_secs = 0\nmax_wait_secs = 8\n",
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
    let _ = support(&env, |t| t["answered"] == 3);

    // The agent pauses; three more callers: one hangs up after 2 s (a short abandon), one
    // after 6 s (an abandon), one stays until ctid gives up at max_wait_secs (a timeout).
    let (status, body) = http_request(
        &env,
        "POST",
        "/api/v1/agents/1001/pause",
        Some(SUPERVISOR_TOKEN),
        Some(r#"{"reason":"break"}"#),
    );
    assert_eq!(status, 200, "pause 1001: {body}");
    let short = caller(&env, &daemon, "pbx_call.xml", 2_000);
    let abandon = caller(&env, &daemon, "pbx_call.xml", 6_000);
    let timeout = caller(&env, &daemon, "pbx_wait_for_bye.xml", 0);
    for (what, run) in [
        ("short abandon", short.wait()),
        ("abandon", abandon.wait()),
        ("timeout", timeout.wait()),
    ] {
        assert!(
            run.ok() && run.successful == Some(1),
            "{what}:\n{}\n{}",
            run.report,
            daemon.log_tail(4000)
        );
    }
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 6 && r.iter().all(|c| c.outcome.is_some())
    });
    // Figures are published once a second: wait until every call has landed in them.
    let before = support(&env, |t| {
        t["offered"] == 6 && t["timeouts"] == 1 && t["abandoned"] == 2 && t["answered"] == 3
    });
    let t = &before["today"];
    let ctx = || {
        format!(
            "{before:#}\n{}{}",
            describe_calls(&rows),
            daemon.log_tail(4000)
        )
    };
    assert_eq!(t["offered"], 6, "{}", ctx());
    assert_eq!(t["answered"], 3, "{}", ctx());
    assert_eq!(t["short_abandons"], 1, "{}", ctx());
    assert_eq!(
        t["abandoned"],
        2,
        "live 'abandoned' counts the short abandon too (src/stats.rs): {}",
        ctx()
    );
    assert_eq!(t["timeouts"], 1, "{}", ctx());
    assert_eq!(t["answered_in_target"], 3, "{}", ctx());
    // Short abandons are left out of the ratios: 3 answered of 5 counted calls.
    assert_eq!(t["sl_offered"], 0.6, "{}", ctx());
    assert_eq!(t["answer_rate"], 0.6, "{}", ctx());
    assert_eq!(t["sl_answered"], 1.0, "{}", ctx());
    assert_eq!(t["sl_met"], false, "60 % is below the 90 % goal: {}", ctx());
    let asa = t["asa_secs"].as_f64().expect("ASA");
    assert!((0.1..2.0).contains(&asa), "ASA {asa}: {}", ctx());
    let aht = t["aht_secs"].as_f64().expect("AHT");
    assert!((0.3..3.0).contains(&aht), "AHT {aht}: {}", ctx());
    let longest = t["longest_wait_secs"].as_f64().expect("longest wait");
    assert!(
        (7.5..10.0).contains(&longest),
        "the longest wait is the timed-out caller's (max_wait_secs = 8): {longest}: {}",
        ctx()
    );
    // The intervals hold the same calls: all in the current one, or split with the last.
    for key in [
        "offered",
        "answered",
        "short_abandons",
        "abandoned",
        "timeouts",
    ] {
        let n = before["current_interval"]["figures"][key]
            .as_u64()
            .unwrap_or(0)
            + before["last_interval"]["figures"][key]
                .as_u64()
                .unwrap_or(0);
        assert_eq!(
            Some(n),
            t[key].as_u64(),
            "{key}: current + last interval against today: {}",
            ctx()
        );
    }
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();

    // Restart mid-day: the same figures, rebuilt from the call records.
    let daemon = env.start();
    let after = support(&env, |t| t["offered"] == 6);
    let story = || {
        format!(
            "before:\n{before:#}\nafter:\n{after:#}\n{}",
            daemon.log_tail(4000)
        )
    };
    assert_eq!(
        before["today"],
        after["today"],
        "today's figures changed across a restart\n{}",
        story()
    );
    if before["current_interval"]["start"] == after["current_interval"]["start"] {
        assert_eq!(
            before["current_interval"],
            after["current_interval"],
            "the current interval changed across a restart\n{}",
            story()
        );
        assert_eq!(
            before["last_interval"],
            after["last_interval"],
            "the last interval changed across a restart\n{}",
            story()
        );
    } else {
        // The restart crossed an interval boundary: the old current one is now the last one.
        assert_eq!(
            before["current_interval"],
            after["last_interval"],
            "across a restart on an interval boundary\n{}",
            story()
        );
    }
    daemon.stop();
}
