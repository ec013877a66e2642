//! The do-not-call list (`do_not_call`: E.164 number, when and from where it was added).

use super::Conn;
use crate::store::Result;
use rusqlite::{params, OptionalExtension};

/// Put `e164` on the list; adding it again keeps the first `added_at` and `source`.
pub fn insert(conn: &Conn, e164: &str, source: &str, now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO do_not_call (number, added_at_ms, source) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![e164, now_ms, source])?;
    Ok(())
}

/// Take `e164` off the list; whether it was on it.
pub fn delete(conn: &Conn, e164: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("DELETE FROM do_not_call WHERE number = ?1")?
        .execute([e164])?
        > 0)
}

/// When and from where `e164` was put on the list, if it is on it.
pub fn find(conn: &Conn, e164: &str) -> Result<Option<(i64, String)>> {
    Ok(conn
        .prepare_cached("SELECT added_at_ms, source FROM do_not_call WHERE number = ?1")?
        .query_row([e164], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}
