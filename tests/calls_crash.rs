//! ctid killed (SIGKILL) in the middle of traffic: after a restart on the same data dir, no call
//! is left open, calls that ended before the crash keep their records, the ones in progress are
//! closed as `interrupted`, and the database is intact. Every call the PBX (SIPp) saw complete
//! before the kill (its BYE answered 200 by ctid) is in the database as answered, with its
//! whole history.

use ctid_testkit as common;

use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const AGENTS: [&str; 3] = ["1001", "1002", "1003"];

/// The Call-IDs of the calls for which SIPp's message trace shows a `200` to its `BYE`
/// received: the calls it saw complete.
fn completed_in_trace(trace: &str) -> std::collections::BTreeSet<String> {
    trace
        .split("\n-----------------------------------------------")
        .filter(|m| m.contains("message received"))
        .filter(|m| {
            m.lines().any(|l| l.trim().starts_with("SIP/2.0 200"))
                && m.lines().any(|l| l.trim() == "CSeq: 2 BYE")
        })
        .filter_map(|m| {
            m.lines()
                .find_map(|l| l.trim().strip_prefix("Call-ID:"))
                .map(|id| id.trim().to_string())
        })
        .collect()
}

#[test]
fn kill_9_during_traffic_leaves_consistent_call_records() {
    let env = TestEnv::new(&queue_settings(
        &AGENTS,
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    ));
    let mut daemon = env.start();
    let seats: Vec<SippBg> = AGENTS
        .iter()
        .map(|&id| {
            start_seat(
                env.path(),
                daemon.addr,
                id,
                &format!("secret{id}"),
                "seat_answer.xml",
                40,
            )
        })
        .collect();

    // 20 calls at 5/s, each caller on the line for 4 s: the first ones end (answered) while
    // later ones still talk or wait.
    let pbx = sipp_spawn(
        env.path(),
        Some(daemon.addr),
        free_port(),
        "pbx_call.xml",
        &[
            "-s", "4000", "-r", "5", "-m", "20", "-l", "20", "-d", "4000", "-timeout", "30s",
        ],
    );

    // Wait until the database shows both ended calls (some answered) and calls in progress.
    let deadline = Instant::now() + Duration::from_secs(15);
    let snapshot = loop {
        let rows = read_calls(&env);
        let answered_done = rows
            .iter()
            .filter(|c| c.outcome.as_deref() == Some("answered"))
            .count();
        let open = rows.iter().filter(|c| c.outcome.is_none()).count();
        if answered_done >= 2 && open >= 1 {
            break rows;
        }
        assert!(
            Instant::now() < deadline,
            "no moment with >= 2 answered, ended calls and >= 1 call in progress within 15 s:\n{}",
            describe_calls(&rows)
        );
        daemon.assert_alive("during traffic");
        std::thread::sleep(Duration::from_millis(50));
    };
    let snapshot_events = read_events(&env);

    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(daemon.pid(), libc::SIGKILL) };
    assert_eq!(rc, 0, "kill(SIGKILL)");
    let dead_by = Instant::now() + Duration::from_secs(5);
    while daemon.is_alive() {
        assert!(Instant::now() < dead_by, "ctid survived SIGKILL");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(daemon);
    // What the PBX had seen complete when ctid died (SIPp writes its trace as it goes).
    let pbx_trace = pbx.messages();
    let completed = completed_in_trace(&pbx_trace);
    // Stop the traffic: the PBX and the seats lost their peer.
    let _ = pbx.kill();
    for s in seats {
        let _ = s.kill();
    }

    // Restart on the same data dir and config.
    let daemon = env.start();
    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.iter().all(|c| c.outcome.is_some())
    });
    daemon.stop();
    let rows_after_stop = read_calls(&env);
    assert_eq!(
        rows, rows_after_stop,
        "the call records changed between the restart and the clean stop"
    );
    let events = read_events(&env);

    let db = open_db(&env).expect("open ctid.db");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok", "PRAGMA integrity_check after kill -9");

    let before: BTreeMap<i64, &CallRow> = snapshot.iter().map(|c| (c.id, c)).collect();
    let report = || {
        format!(
            "--- before the kill ---\n{}--- after the restart ---\n{}--- events after ---\n{}",
            describe_calls(&snapshot),
            describe_calls(&rows),
            describe_events(&events)
        )
    };
    // Nothing recorded before the crash is lost.
    for id in before.keys() {
        assert!(
            rows.iter().any(|c| c.id == *id),
            "call {id} vanished after the restart\n{}",
            report()
        );
    }
    let mut interrupted = 0;
    for c in &rows {
        let ev = events_of(&events, c.id);
        let ctx = || format!("{c:?}\n{}\n{}", describe_events(&ev), report());
        assert!(
            c.outcome.is_some() && c.ended_at_ms.is_some(),
            "call left open after the restart: {}",
            ctx()
        );
        assert!(
            c.ended_at_ms.unwrap() >= c.entered_at_ms,
            "ended before it entered: {}",
            ctx()
        );
        match before.get(&c.id) {
            Some(old) if old.outcome.is_some() => {
                // Ended before the kill: untouched, with the same history.
                assert_eq!(
                    *old,
                    c,
                    "a call that ended before the kill changed: {}",
                    ctx()
                );
                assert_eq!(
                    events_of(&snapshot_events, c.id),
                    ev,
                    "the events of a call that ended before the kill changed: {}",
                    ctx()
                );
                assert!(!ev.iter().any(|e| e.kind == "interrupted"), "{}", ctx());
            }
            _ => {
                // In progress at the kill (or ended in the last instant before it).
                if c.outcome.as_deref() == Some("interrupted") {
                    interrupted += 1;
                    assert!(
                        ev.iter().any(|e| e.kind == "interrupted"),
                        "an interrupted call without an 'interrupted' event: {}",
                        ctx()
                    );
                } else {
                    assert!(!ev.iter().any(|e| e.kind == "interrupted"), "{}", ctx());
                }
            }
        }
        assert_eq!(
            ev.first().map(|e| e.kind.as_str()),
            Some("entered"),
            "every call's history starts with 'entered': {}",
            ctx()
        );
    }
    assert!(
        interrupted >= 1,
        "calls were in progress at the kill, yet none is 'interrupted'\n{}",
        report()
    );
    // Every call SIPp saw complete before the kill is recorded as answered, hung up by the
    // caller, with its whole history.
    assert!(
        !completed.is_empty(),
        "SIPp's trace shows no completed call before the kill (the snapshot had {} answered):\n{}",
        before
            .values()
            .filter(|c| c.outcome.as_deref() == Some("answered"))
            .count(),
        tail(&pbx_trace, 4_000)
    );
    for sip_id in &completed {
        let row = rows
            .iter()
            .find(|c| &c.sip_call_id == sip_id)
            .unwrap_or_else(|| {
                panic!(
                    "SIPp saw call {sip_id} complete before the kill, but it has no row\n{}",
                    report()
                )
            });
        let ev = events_of(&events, row.id);
        assert!(
            row.outcome.as_deref() == Some("answered")
                && row.hangup_by.as_deref() == Some("caller"),
            "SIPp saw call {sip_id} complete (its BYE answered 200): {row:?}\n{}",
            report()
        );
        assert_eq!(
            kinds_among(&ev, &["entered", "offered", "answered", "ended"]),
            ["entered", "offered", "answered", "ended"],
            "history of call {sip_id}, completed before the kill\n{}",
            report()
        );
    }
    let answered = rows
        .iter()
        .filter(|c| c.outcome.as_deref() == Some("answered"))
        .count();
    assert!(
        answered >= completed.len(),
        "{answered} answered rows, but SIPp completed {} calls before the kill\n{}",
        completed.len(),
        report()
    );
    for c in snapshot.iter().filter(|c| c.outcome.is_some()) {
        let ev = events_of(&events, c.id);
        if c.outcome.as_deref() == Some("answered") {
            assert_eq!(
                kinds_among(&ev, &["entered", "offered", "answered", "ended"]),
                ["entered", "offered", "answered", "ended"],
                "history of answered call {} after the restart\n{}",
                c.id,
                report()
            );
        }
    }
}
