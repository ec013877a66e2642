//! Helpers for the unit tests of the modules that use the store (compiled for tests only): write
//! ops straight on a connection, change what the domain API has no call for, read through a
//! connection.

use super::pool::Reader;
use super::writer::{tests_apply, Op};
use rusqlite::Connection;

/// The connection the unit tests of `crate::outbound` hold (SQLite's, migrated, on a temp file):
/// the code under test sees it as `&dyn OutboundDb`.
pub type TestDb = Connection;

/// Apply `op` on `conn` as the writer would (in no batch).
pub fn apply(conn: &Connection, op: impl Into<Op>) {
    if let Err(e) = tests_apply(conn, &op.into()) {
        panic!("store op failed: {e}");
    }
}

/// Every list's `max_attempts` set to `n`.
pub fn set_max_attempts(conn: &Connection, n: u32) {
    if let Err(e) = conn.execute("UPDATE outbound_lists SET max_attempts = ?1", [n]) {
        panic!("{e}");
    }
}

/// A reader on `conn` (for the query traits).
pub fn reader(conn: Connection) -> Reader {
    Reader::from_connection(conn)
}

/// No fsync: unit tests need no durability, and are faster without.
pub fn no_fsync(conn: &Connection) {
    if let Err(e) = conn.execute_batch("PRAGMA synchronous=OFF") {
        panic!("{e}");
    }
}

fn count(conn: &Connection, sql: &str, args: impl rusqlite::Params) -> i64 {
    match conn.query_row(sql, args, |r| r.get(0)) {
        Ok(n) => n,
        Err(e) => panic!("{sql}: {e}"),
    }
}

/// Every contact of every list.
pub fn contacts(conn: &Connection) -> i64 {
    count(conn, "SELECT count(*) FROM outbound_contacts", [])
}

/// Attempts of list `list` (skips included).
pub fn attempts_of_list(conn: &Connection, list: i64) -> i64 {
    count(
        conn,
        "SELECT count(*) FROM outbound_attempts WHERE list_id = ?1",
        [list],
    )
}

/// Dial attempts (not skips) to any of `numbers`.
pub fn dials_to(conn: &Connection, numbers: &[&str]) -> i64 {
    numbers
        .iter()
        .map(|n| {
            count(
                conn,
                "SELECT count(*) FROM outbound_attempts WHERE number = ?1 AND result != 'skipped'",
                [n],
            )
        })
        .sum()
}

/// The policy's skip records: (contact id, reason), oldest first.
pub fn skips(conn: &Connection) -> Vec<(i64, String)> {
    let rows = conn
        .prepare(
            "SELECT contact_id, reason FROM outbound_attempts WHERE result = 'skipped' ORDER BY id",
        )
        .and_then(|mut s| {
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<_>, _>>()
        });
    match rows {
        Ok(r) => r,
        Err(e) => panic!("{e}"),
    }
}

/// Every contact due at `due_at_ms`.
pub fn set_all_due(conn: &Connection, due_at_ms: i64) {
    if let Err(e) = conn.execute("UPDATE outbound_contacts SET due_at_ms = ?1", [due_at_ms]) {
        panic!("{e}");
    }
}

/// A queue callback request as the call layer writes it; returns its id.
#[allow(clippy::too_many_arguments)]
pub fn callback_request(
    conn: &Connection,
    call: i64,
    queue: &str,
    number: &str,
    name: Option<&str>,
    entered_at_ms: i64,
    position: Option<i64>,
    requested_at_ms: i64,
) -> i64 {
    let r = conn.execute(
        "INSERT INTO callback_requests (call_id, queue, caller_number, caller_name, entered_at_ms,
           position, requested_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        rusqlite::params![
            call,
            queue,
            number,
            name,
            entered_at_ms,
            position,
            requested_at_ms
        ],
    );
    if let Err(e) = r {
        panic!("{e}");
    }
    conn.last_insert_rowid()
}

/// A request's (status, contact_id, attempts, last_result, reason, done_at_ms).
pub type CallbackRequestState = (
    String,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

pub fn callback_request_state(conn: &Connection, id: i64) -> CallbackRequestState {
    let r = conn.query_row(
        "SELECT status, contact_id, attempts, last_result, reason, done_at_ms
         FROM callback_requests WHERE id = ?1",
        [id],
        |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        },
    );
    match r {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}
