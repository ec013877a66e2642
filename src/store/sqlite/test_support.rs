//! Helpers for the unit tests of the modules that use the store (compiled for tests only): write
//! ops straight on a connection, change what the domain API has no call for, read through a
//! connection.

use super::pool::Reader;
use super::writer::{tests_apply, Op};
use rusqlite::Connection;

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
