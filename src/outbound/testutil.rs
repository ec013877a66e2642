//! Helpers for this module's tests: a migrated database in a temp dir, a valid list spec, times.

use super::{ListSpec, Mode, Purpose, RetryDelays, Window};
use crate::store::test_support::no_fsync;
pub use crate::store::test_support::TestDb;

/// A migrated database (the real `store::open`), with fsync off to keep tests fast.
pub fn db() -> (tempfile::TempDir, TestDb) {
    let dir = tempfile::tempdir().unwrap();
    let conn = crate::store::open(dir.path()).unwrap();
    no_fsync(&conn);
    (dir, conn)
}

/// Another connection to the same database, as a second dialer or a restarted daemon has.
pub fn reopen(dir: &tempfile::TempDir) -> TestDb {
    let conn = crate::store::open(dir.path()).unwrap();
    no_fsync(&conn);
    conn
}

/// Unix ms of an RFC 3339 time.
pub fn ms(rfc3339: &str) -> u64 {
    rfc3339.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64
}

pub const HOUR: u64 = 3_600_000;
pub const DAY: u64 = 24 * HOUR;

/// Monday 2024-03-04 10:00 in London (GMT): inside the weekday 09:00–17:00 window.
pub fn monday_10() -> u64 {
    ms("2024-03-04T10:00:00Z")
}

/// A preview list worked by agents a1 and a2, Mon–Fri 09:00–17:00 Europe/London, 3 attempts.
pub fn spec(name: &str) -> ListSpec {
    ListSpec {
        name: name.to_string(),
        purpose: Purpose::FollowUp,
        agents: vec!["a1".into(), "a2".into()],
        queue: None,
        mode: Mode::Preview,
        time_zone: "Europe/London".into(),
        windows: vec![Window {
            days: vec!["mon-fri".into()],
            start: "09:00".into(),
            end: "17:00".into(),
        }],
        holidays: Vec::new(),
        quota_per_day: None,
        agent_quota_per_day: None,
        max_attempts: 3,
        retry: RetryDelays {
            busy_secs: 600,
            no_answer_secs: 3_600,
            failed_secs: 900,
        },
        dedupe_period_secs: 0,
        priority: 0,
    }
}

/// Import `(customer_id, phones)` rows (phones `;`-separated, UK national form allowed).
pub fn add_contacts(conn: &TestDb, list: super::ListId, rows: &[(&str, &str)]) {
    let mut csv = String::from("customer_id,phone\n");
    for (id, phone) in rows {
        csv.push_str(&format!("{id},{phone}\n"));
    }
    let opts = super::ImportOptions::new(super::CountryCode::new("44").unwrap());
    let r = super::import_contacts_csv(conn, list, csv.as_bytes(), &opts, 0).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

/// `next_contact` that must dial: (attempt, contact, number).
pub fn dial(
    conn: &TestDb,
    list: super::ListId,
    agent: &str,
    now_ms: u64,
) -> (super::AttemptId, super::Contact, String) {
    match super::next_contact(conn, list, agent, now_ms).unwrap() {
        super::Decision::Dial {
            attempt,
            contact,
            number,
            ..
        } => (attempt, contact, number),
        super::Decision::Nothing { why } => panic!("nothing to dial at {now_ms}: {why:?}"),
    }
}

/// `next_contact` that must not dial: why.
pub fn nothing(conn: &TestDb, list: super::ListId, agent: &str, now_ms: u64) -> super::Why {
    match super::next_contact(conn, list, agent, now_ms).unwrap() {
        super::Decision::Nothing { why } => why,
        d => panic!("expected nothing at {now_ms}, got {d:?}"),
    }
}

/// Answered at `at`, hung up a minute later, dispositioned done.
pub fn answer_done(conn: &TestDb, attempt: super::AttemptId, at: u64) {
    super::record_result(conn, attempt, super::AttemptResult::Answered, Some(200), at).unwrap();
    super::record_hangup(conn, attempt, at + 60_000).unwrap();
    super::set_disposition(conn, attempt, "done", None, None, at + 60_000).unwrap();
}
