//! Offers that are not answered: seats that ring until ctid gives up (ring timeout: CANCEL,
//! the next seat, auto-pause after `max_missed` misses, queue timeout), and a busy seat (486)
//! that passes the call on to the next seat at once.

use ctid_testkit as common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn unanswered_offers_move_between_seats_then_pause_agents_and_time_out() {
    let env = TestEnv::new(&queue_settings(
        &["1001", "1002"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 2\nmax_missed = 2\nmax_wait_secs = 10\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seats: Vec<(&str, SippBg)> = ["1001", "1002"]
        .into_iter()
        .map(|id| {
            let seat = start_seat(
                env.path(),
                daemon.addr,
                id,
                &format!("secret{id}"),
                "seat_noanswer.xml",
                45,
            );
            (id, seat)
        })
        .collect();

    // Call 1: nobody answers; the caller stays until ctid hangs up (max_wait_secs = 10).
    let start = Instant::now();
    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_wait_for_bye.xml",
        &["-s", "4000", "-m", "1", "-timeout", "30s", "-timeout_error"],
    );
    let took = start.elapsed();
    assert!(
        pbx.ok() && pbx.successful == Some(1),
        "the caller did not get ctid's BYE (queue timeout after max_wait_secs = 10):\n{}",
        pbx.report
    );
    assert!(
        took >= Duration::from_secs(9) && took < Duration::from_secs(14),
        "the call lasted {took:?}, expected ~10 s (max_wait_secs)\n{}",
        pbx.report
    );

    // Call 2: both agents are paused now (2 misses each): no seat may ring. The caller hangs up
    // after 3 s.
    let pbx2 = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            "3000",
            "-timeout",
            "15s",
            "-timeout_error",
        ],
    );
    assert!(
        pbx2.ok() && pbx2.successful == Some(1),
        "second call (caller hangs up after 3 s) failed:\n{}",
        pbx2.report
    );

    let seat_runs: Vec<(&str, SippRun)> = seats
        .into_iter()
        .map(|(id, s)| (id, s.stop(Duration::from_secs(3))))
        .collect();
    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() >= 2 && r.iter().all(|c| c.outcome.is_some())
    });
    let events = read_events(&env);
    daemon.stop();

    assert_eq!(
        rows.len(),
        2,
        "expected two calls rows:\n{}",
        describe_calls(&rows)
    );
    let (c1, c2) = (&rows[0], &rows[1]);
    let ev1 = events_of(&events, c1.id);
    let ctx1 = format!("{c1:?}\n{}", describe_events(&ev1));

    assert_eq!(c1.outcome.as_deref(), Some("timeout"), "{ctx1}");
    assert_eq!(c1.hangup_by.as_deref(), Some("ctid"), "{ctx1}");
    assert_eq!(c1.answered_at_ms, None, "{ctx1}");
    let ended = c1.ended_at_ms.expect("ended_at_ms of the timed-out call");
    let lasted = ended - c1.entered_at_ms;
    assert!(
        (9_500..12_500).contains(&lasted),
        "the call ended {lasted} ms after entering, expected ~10000 (max_wait_secs): {ctx1}"
    );
    if let Some(w) = c1.wait_ms {
        assert!(
            (9_500..12_500).contains(&w),
            "wait_ms {w}, expected ~10000: {ctx1}"
        );
    }

    // Offers: A, B, A, B (2 s apart: ring_timeout_secs), each followed by a miss; then both
    // agents are paused (max_missed = 2) and nobody is offered the call again.
    let offered: Vec<&EventRow> = ev1.iter().filter(|e| e.kind == "offered").collect();
    let missed: Vec<&EventRow> = ev1.iter().filter(|e| e.kind == "missed").collect();
    let who = |v: &[&EventRow]| -> Vec<String> {
        v.iter()
            .map(|e| e.agent.clone().unwrap_or_default())
            .collect()
    };
    let offered_to = who(&offered);
    assert_eq!(
        offered_to.len(),
        4,
        "expected 4 offers (2 per agent, then both paused): {ctx1}"
    );
    let (a, b) = (&offered_to[0], &offered_to[1]);
    assert!(
        a != b && ["1001", "1002"].contains(&a.as_str()) && ["1001", "1002"].contains(&b.as_str()),
        "offers must move from one seat to the other: {ctx1}"
    );
    assert_eq!(
        offered_to,
        [a.clone(), b.clone(), a.clone(), b.clone()],
        "offers must alternate between the two seats: {ctx1}"
    );
    assert_eq!(
        who(&missed),
        offered_to,
        "every offer must end in a miss by the same agent: {ctx1}"
    );
    for i in 0..4 {
        assert!(
            missed[i].at_ms >= offered[i].at_ms,
            "miss {i} before its offer: {ctx1}"
        );
        let rang = missed[i].at_ms - offered[i].at_ms;
        assert!(
            (1_500..3_500).contains(&rang),
            "offer {i} rang {rang} ms before the miss, expected ~2000 (ring_timeout_secs): {ctx1}"
        );
    }
    assert!(
        kinds_among(&ev1, &["entered", "timeout"]) == ["entered", "timeout"],
        "expected an 'entered' and a 'timeout' event: {ctx1}"
    );
    let timeout_at = ev1.iter().find(|e| e.kind == "timeout").unwrap().at_ms;
    assert!(
        timeout_at >= missed[3].at_ms,
        "the timeout comes after the last miss: {ctx1}"
    );

    // The seats saw exactly those offers, each cancelled (CANCEL, 200, 487, ACK).
    for (id, run) in &seat_runs {
        assert_eq!(
            (run.successful, run.failed),
            (Some(2), Some(0)),
            "seat {id} should have rung twice, each time cancelled by ctid:\n{}",
            run.report
        );
    }

    // Call 2: both agents paused, so no offer at all; the caller gave up.
    let ev2 = events_of(&events, c2.id);
    let ctx2 = format!("{c2:?}\n{}", describe_events(&ev2));
    assert_eq!(c2.outcome.as_deref(), Some("abandoned"), "{ctx2}");
    assert!(
        !ev2.iter().any(|e| e.kind == "offered"),
        "an agent paused after {} misses was offered a call: {ctx2}",
        2
    );
}

#[test]
fn busy_seat_passes_the_call_on_at_once() {
    let env = TestEnv::new(&queue_settings(
        &["1001", "1002"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    // 1001 logs in first, so it has been idle longest and gets the first offer.
    let busy = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_busy.xml",
        30,
    );
    std::thread::sleep(Duration::from_millis(100));
    let answering = start_seat(
        env.path(),
        daemon.addr,
        "1002",
        "secret1002",
        "seat_answer.xml",
        30,
    );

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
            "20s",
            "-timeout_error",
        ],
    );
    let busy_run = busy.stop(Duration::from_secs(3));
    let answer_run = answering.stop(Duration::from_secs(3));
    assert!(
        pbx.ok() && pbx.successful == Some(1),
        "the call failed:\n{}",
        pbx.report
    );
    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    let events = read_events(&env);
    daemon.stop();

    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    let c = &rows[0];
    let ev = events_of(&events, c.id);
    let ctx = format!("{c:?}\n{}", describe_events(&ev));
    assert_eq!(c.outcome.as_deref(), Some("answered"), "{ctx}");
    assert_eq!(c.agent.as_deref(), Some("1002"), "{ctx}");
    let wait = c.wait_ms.expect("wait_ms");
    assert!(
        wait < 3_000,
        "wait_ms {wait}: after the 486 the next seat must ring at once, not after the 15 s ring timeout: {ctx}"
    );
    let steps: Vec<(String, String)> = ev
        .iter()
        .filter(|e| ["offered", "rejected", "missed", "answered"].contains(&e.kind.as_str()))
        .map(|e| (e.kind.clone(), e.agent.clone().unwrap_or_default()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("offered", "1001"),
        ("rejected", "1001"),
        ("offered", "1002"),
        ("answered", "1002"),
    ]
    .iter()
    .map(|(k, a)| (k.to_string(), a.to_string()))
    .collect();
    assert_eq!(steps, expected, "{ctx}");

    assert_eq!(
        (busy_run.successful, busy_run.failed),
        (Some(1), Some(0)),
        "the busy seat should have got one INVITE (486, ACK):\n{}",
        busy_run.report
    );
    assert_eq!(
        (answer_run.successful, answer_run.failed),
        (Some(1), Some(0)),
        "the answering seat should have had one call:\n{}",
        answer_run.report
    );
}
