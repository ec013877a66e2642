//! Retention end to end: with `[reports] retention_days = 30`, the daemon's retention thread
//! purges, at start, every ended call record that entered more than 30 days ago (its `calls`
//! row, its `call_events` and its recording file), in batches (here 200, with 100 ms pauses, so
//! the pass takes 10 s or more), while calls keep flowing: the PBX (SIPp) places 50 calls
//! through three seats right after start. The test checks from ctid's log that the pass began
//! before the first of those calls and ended after at least ten of them had come and gone.
//!
//! The database is prepared before the daemon starts: 20,000 ended calls entered 40 days ago
//! (5 with a recording on disk), 10 ended calls entered 29 days ago (2 with a recording), 1
//! call entered 40 days ago that never ended (ctid was killed during it), and two calls on the
//! boundary: entered 30 days and 1 minute ago (purged) and 30 days less 1 minute ago (kept).

use ctid_testkit as common;

use common::*;
use rusqlite::params;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const AGENTS: [&str; 3] = ["1001", "1002", "1003"];
const CALLS: usize = 50;
const DAY_MS: i64 = 86_400_000;
const OLD: i64 = 20_000;
const RECENT: i64 = 10;
/// The never-ended call's id (old calls are 1..=OLD, recent ones follow it).
const LIVE_ID: i64 = OLD + 1;
/// Entered 30 days and 1 minute before the test started: just past the limit.
const JUST_OLDER: i64 = LIVE_ID + RECENT + 1;
/// Entered 30 days less 1 minute before the test started: just within the limit.
const JUST_NEWER: i64 = LIVE_ID + RECENT + 2;
/// The first id of the calls SIPp places.
const FIRST_NEW: i64 = LIVE_ID + RECENT + 3;
/// Retention batches of this many calls, with this pause between them: 20,002 calls make
/// 101 batches, so the pass lasts at least 10 s.
const BATCH: usize = 200;
const PAUSE_MS: u64 = 100;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn count(c: &rusqlite::Connection, sql: &str) -> i64 {
    c.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The `calls=N` of the daemon's "purged call records past retention" log line, once there.
fn purged_in_log(log: &str) -> Option<u64> {
    let line = log
        .lines()
        .find(|l| l.contains("purged call records past retention"))?;
    let rest = line.split("calls=").nth(1)?;
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Unix ms of the tracing timestamp that starts the first log line containing `needle`.
fn logged_at(log: &str, needle: &str) -> Option<i64> {
    let line = log.lines().find(|l| l.contains(needle))?;
    let ts: jiff::Timestamp = line.split_whitespace().next()?.parse().ok()?;
    Some(ts.as_millisecond())
}

/// Fill the database before ctid starts; returns (old recordings, recent recordings).
fn prepare_db(env: &TestEnv) -> (Vec<PathBuf>, Vec<PathBuf>) {
    let rec_dir = env.path().join("recordings");
    std::fs::create_dir_all(&rec_dir).unwrap();
    let mut conn = ctid::store::open(&env.data_dir).expect("create the database");
    let tx = conn.transaction().unwrap();
    let now = now_ms();
    let old_base = now - 40 * DAY_MS;
    let recent_base = now - 29 * DAY_MS;
    let mut old_files = Vec::new();
    let mut recent_files = Vec::new();
    {
        let mut call = tx
            .prepare(
                "INSERT INTO calls (id, sip_call_id, direction, caller_number, queue,
                                    entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms,
                                    agent, outcome, hangup_by, recording_path)
                 VALUES (?1, ?2, 'inbound', '5550100', 'support', ?3, ?4, ?5, 1000, 59000,
                         '1001', ?6, ?7, ?8)",
            )
            .unwrap();
        let mut event = tx
            .prepare("INSERT INTO call_events (call_id, at_ms, kind) VALUES (?1, ?2, 'entered')")
            .unwrap();
        let recording = |name: String, files: &mut Vec<PathBuf>| {
            let f = rec_dir.join(name);
            std::fs::write(&f, b"RIFF\0\0\0\0WAVE").unwrap();
            files.push(f.clone());
            Some(f.display().to_string())
        };
        for id in 1..=OLD {
            let entered = old_base + id; // 40 days ago, a few seconds apart at most
            let path = if id % 4000 == 0 {
                recording(format!("old-{id}.wav"), &mut old_files)
            } else {
                None
            };
            call.execute(params![
                id,
                format!("old-{id}@pbx"),
                entered,
                entered + 1000,
                entered + 60_000,
                "answered",
                "caller",
                path
            ])
            .unwrap();
            event.execute(params![id, entered]).unwrap();
        }
        // Entered 40 days ago, never ended (ctid died during the call).
        call.execute(params![
            LIVE_ID,
            "live@pbx",
            old_base,
            None::<i64>,
            None::<i64>,
            None::<String>,
            None::<String>,
            None::<String>
        ])
        .unwrap();
        event.execute(params![LIVE_ID, old_base]).unwrap();
        for i in 1..=RECENT {
            let id = LIVE_ID + i;
            let entered = recent_base + i;
            let path = if i <= 2 {
                recording(format!("recent-{id}.wav"), &mut recent_files)
            } else {
                None
            };
            call.execute(params![
                id,
                format!("recent-{id}@pbx"),
                entered,
                entered + 1000,
                entered + 60_000,
                "answered",
                "caller",
                path
            ])
            .unwrap();
            event.execute(params![id, entered]).unwrap();
        }
        for (id, entered) in [
            (JUST_OLDER, now - 30 * DAY_MS - 60_000),
            (JUST_NEWER, now - 30 * DAY_MS + 60_000),
        ] {
            call.execute(params![
                id,
                format!("boundary-{id}@pbx"),
                entered,
                entered + 1000,
                entered + 60_000,
                "answered",
                "caller",
                None::<String>
            ])
            .unwrap();
            event.execute(params![id, entered]).unwrap();
        }
    }
    tx.commit().unwrap();
    assert_eq!(old_files.len(), 5);
    assert_eq!(recent_files.len(), 2);
    (old_files, recent_files)
}

#[test]
fn purge_removes_exactly_what_is_older_than_the_limit_while_calls_keep_flowing() {
    let mut settings = queue_settings(
        &AGENTS,
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    );
    // queue_settings writes [calls], [media] and [[queues]], never [reports].
    settings
        .extra_toml
        .push_str(&format!(
            "\n[reports]\nretention_days = 30\nretention_batch = {BATCH}\nretention_pause_ms = {PAUSE_MS}\n"
        ));
    let env = TestEnv::new(&settings);
    let (old_files, recent_files) = prepare_db(&env);

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
            "10",
            "-m",
            "50",
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
        "the PBX's {CALLS} calls did not all succeed while the purge ran:\n{}\n{}\n{}",
        pbx.report,
        daemon.story_of_failed_calls(&pbx.report),
        seat_runs
            .iter()
            .map(|(id, r)| format!(
                "--- seat {id}: {:?} successful, {:?} failed ---\n{}",
                r.successful,
                r.failed,
                tail(&r.report, 3000)
            ))
            .collect::<String>()
    );
    for (id, run) in &seat_runs {
        assert_eq!(
            run.failed,
            Some(0),
            "seat {id} had failed calls:\n{}",
            run.report
        );
    }

    // The first pass ends with one log line giving the count.
    let deadline = Instant::now() + Duration::from_secs(60);
    let purged = loop {
        if let Some(n) = purged_in_log(&daemon.log()) {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no \"purged call records past retention\" log line within 60 s:\n{}",
            daemon.log_tail(8000)
        );
        std::thread::sleep(Duration::from_millis(100));
    };

    let cutoff = now_ms() - 30 * DAY_MS;
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.iter().filter(|c| c.id >= FIRST_NEW).count() >= CALLS
            && r.iter().all(|c| c.outcome.is_some())
    });
    let db = open_db(&env).expect("open the database");
    let log = daemon.log();
    daemon.stop();

    // The never-ended call: at start, before the retention thread exists (src/app.rs runs
    // store::interrupt_live_calls, then start_retention), ctid closes it as 'interrupted' with
    // ended_at_ms = now. From then on it is an ended call that entered 40 days ago, and
    // retention selects by entered_at_ms, so the very first pass purges it with the others:
    // 20,000 + 1 calls. (Retention never touches a call that is live while it runs; this one
    // was no longer live.)
    assert!(
        log.contains("recorded as interrupted") && log.contains("interrupted=1"),
        "ctid did not report closing the one call left live:\n{}",
        tail(&log, 8000)
    );
    assert_eq!(
        purged,
        OLD as u64 + 2,
        "the purge count in the log: the 20,000 old ended calls, the old interrupted one and \
         the one just past the limit"
    );

    // The purge and the traffic overlapped: the pass began before the first SIPp call entered
    // and ended after at least ten SIPp calls had been answered and hung up.
    let began = logged_at(&log, "retention pass started")
        .unwrap_or_else(|| panic!("no 'retention pass started' line:\n{}", tail(&log, 8000)));
    let ended = logged_at(&log, "purged call records past retention").unwrap();
    let new_calls: Vec<&CallRow> = rows.iter().filter(|c| c.id >= FIRST_NEW).collect();
    let first_entered = new_calls.iter().map(|c| c.entered_at_ms).min().unwrap_or(0);
    let during = new_calls
        .iter()
        .filter(|c| c.entered_at_ms > began && c.ended_at_ms.is_some_and(|e| e < ended))
        .count();
    assert!(
        began < first_entered && during >= 10,
        "the purge ran from {began} to {ended} ({} ms); the first SIPp call entered at \
         {first_entered}; {during} SIPp calls came and went during the purge (want >= 10):\n{}",
        ended - began,
        describe_calls(&rows)
    );

    let stale: Vec<&CallRow> = rows.iter().filter(|c| c.entered_at_ms < cutoff).collect();
    assert!(
        stale.is_empty(),
        "{} calls entered more than 30 days ago are still there, e.g.:\n{}",
        stale.len(),
        describe_calls(
            &stale
                .iter()
                .take(5)
                .map(|c| (*c).clone())
                .collect::<Vec<_>>()
        )
    );
    assert!(
        rows.iter().all(|c| c.id != LIVE_ID),
        "the old interrupted call was not purged"
    );

    // The boundary: a minute past the limit goes, a minute within it stays (with its event).
    assert!(
        rows.iter().all(|c| c.id != JUST_OLDER),
        "the call entered 30 days and 1 minute ago was not purged:\n{}",
        describe_calls(&rows)
    );
    assert!(
        rows.iter().any(|c| c.id == JUST_NEWER),
        "the call entered 30 days less 1 minute ago was purged:\n{}",
        describe_calls(&rows)
    );
    assert_eq!(
        count(
            &db,
            &format!("SELECT count(*) FROM call_events WHERE call_id = {JUST_NEWER}")
        ),
        1,
        "the call just within the limit lost its event"
    );

    // The 29-day-old calls stay, each with its event.
    let recent: Vec<&CallRow> = rows
        .iter()
        .filter(|c| c.id > LIVE_ID && c.id <= LIVE_ID + RECENT)
        .collect();
    assert_eq!(
        recent.len(),
        RECENT as usize,
        "the 29-day-old calls must all remain:\n{}",
        describe_calls(&rows)
    );
    for c in &recent {
        assert_eq!(c.sip_call_id, format!("recent-{}@pbx", c.id));
        assert_eq!(c.outcome.as_deref(), Some("answered"), "{c:?}");
        let n: i64 = db
            .query_row(
                "SELECT count(*) FROM call_events WHERE call_id = ?1 AND kind = 'entered'",
                [c.id],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "recent call {} lost its event", c.id);
    }

    // Nothing else: the recent calls, the one just within the limit, and SIPp's.
    assert_eq!(
        rows.len(),
        RECENT as usize + 1 + CALLS,
        "calls left after the purge:\n{}",
        describe_calls(&rows)
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM call_events WHERE call_id NOT IN (SELECT id FROM calls)"
        ),
        0,
        "orphan call_events remain"
    );

    for f in &old_files {
        assert!(
            !f.exists(),
            "a purged call's recording remains: {}",
            f.display()
        );
    }
    for f in &recent_files {
        assert!(
            f.exists(),
            "a kept call's recording was deleted: {}",
            f.display()
        );
    }

    // Every SIPp call is recorded as answered, with its full history.
    let new: Vec<&CallRow> = rows.iter().filter(|c| c.id >= FIRST_NEW).collect();
    assert_eq!(new.len(), CALLS, "{}", describe_calls(&rows));
    let mut numbers = std::collections::BTreeSet::new();
    for c in &new {
        assert_eq!(c.outcome.as_deref(), Some("answered"), "{c:?}");
        assert_eq!(c.queue.as_deref(), Some("support"), "{c:?}");
        assert!(
            c.agent.as_deref().is_some_and(|a| AGENTS.contains(&a)),
            "{c:?}"
        );
        let n =
            sipp_call_number(&c.sip_call_id).unwrap_or_else(|| panic!("not a PBX Call-ID: {c:?}"));
        assert!(numbers.insert(n), "two rows for PBX call {n}");
        let kinds: Vec<String> = db
            .prepare("SELECT kind FROM call_events WHERE call_id = ?1 ORDER BY id")
            .unwrap()
            .query_map([c.id], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let kept: Vec<&str> = kinds
            .iter()
            .map(String::as_str)
            .filter(|k| ["entered", "offered", "answered", "ended"].contains(k))
            .collect();
        assert_eq!(
            kept,
            ["entered", "offered", "answered", "ended"],
            "events of call {c:?}"
        );
    }
}
