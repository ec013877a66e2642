//! Contacts as imported (`crate::outbound::import`): the duplicate checks and the inserts of a
//! contact with its numbers.

use super::Conn;
use crate::outbound::{ContactId, ListId};
use crate::store::outbound::NewContactRow;
use crate::store::Result;
use rusqlite::params;

/// Whether `list` has a pending or in-progress contact of customer `customer_id`.
pub fn customer_pending(conn: &Conn, list: ListId, customer_id: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_contacts WHERE list_id = ?1 AND customer_id = ?2
             AND state IN ('pending', 'in_progress')",
        )?
        .exists(params![list, customer_id])?)
}

/// Whether `list` has a pending or in-progress contact without customer id whose first number
/// is `number`.
pub fn number_pending(conn: &Conn, list: ListId, number: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_contact_phones p JOIN outbound_contacts c
               ON c.id = p.contact_id
             WHERE p.number = ?2 AND p.position = 0 AND c.list_id = ?1
               AND c.customer_id IS NULL AND c.state IN ('pending', 'in_progress')",
        )?
        .exists(params![list, number])?)
}

/// Insert `c` (pending, no attempts) into `list` at `now_ms`. Returns its id.
pub fn insert(conn: &Conn, list: ListId, c: &NewContactRow<'_>, now_ms: i64) -> Result<ContactId> {
    conn.prepare_cached(
        "INSERT INTO outbound_contacts (list_id, customer_id, name, fields, due_at_ms, state,
           attempts, next_attempt_at_ms, call_id, created_at_ms, updated_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, ?8, ?8)",
    )?
    .execute(params![
        list,
        c.customer_id,
        c.name,
        c.fields_json,
        c.due_at_ms,
        c.not_before_ms,
        c.call_id,
        now_ms
    ])?;
    let id = ContactId(conn.last_insert_rowid());
    for (i, n) in c.phones.iter().enumerate() {
        conn.prepare_cached(
            "INSERT INTO outbound_contact_phones (contact_id, position, number) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![id, i as i64, n])?;
    }
    Ok(id)
}
