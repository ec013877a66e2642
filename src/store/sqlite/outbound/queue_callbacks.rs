//! Queue callback requests taken up by the dialer (`crate::outbound::queue_callbacks`): the
//! requests not yet linked to a contact, their linking or failing, and the queue's list.

use super::Conn;
use crate::outbound::{ContactId, ListId};
use crate::store::outbound::Unlinked;
use crate::store::Result;
use rusqlite::{params, OptionalExtension};

/// The pending requests not linked to a contact, oldest queue entry first.
pub fn unlinked(conn: &Conn) -> Result<Vec<Unlinked>> {
    let rows = conn
        .prepare_cached(
            "SELECT id, call_id, queue, caller_number, caller_name, entered_at_ms, position,
               requested_at_ms
             FROM callback_requests WHERE status = 'pending' AND contact_id IS NULL
             ORDER BY entered_at_ms, id",
        )?
        .query_map([], |r| {
            Ok(Unlinked {
                id: r.get(0)?,
                call_id: r.get(1)?,
                queue: r.get(2)?,
                number: r.get(3)?,
                name: r.get(4)?,
                entered_at_ms: r.get(5)?,
                position: r.get(6)?,
                requested_at_ms: r.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Request `id` failed for `reason` at `now_ms`.
pub fn fail(conn: &Conn, id: i64, reason: &str, now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE callback_requests SET status = 'failed', reason = ?2, done_at_ms = ?3
         WHERE id = ?1",
    )?
    .execute(params![id, reason, now_ms])?;
    Ok(())
}

/// Request `id` is dialed as `contact`.
pub fn link(conn: &Conn, id: i64, contact: ContactId) -> Result<()> {
    conn.prepare_cached("UPDATE callback_requests SET contact_id = ?2 WHERE id = ?1")?
        .execute(params![id, contact])?;
    Ok(())
}

/// The `queue_callback` list of `queue` to use and its state: the oldest not stopped, else a
/// stopped one.
pub fn queue_list(conn: &Conn, queue: &str) -> Result<Option<(ListId, String)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, state FROM outbound_lists WHERE purpose = 'queue_callback' AND queue = ?1
             ORDER BY state = 'stopped', id LIMIT 1",
        )?
        .query_row([queue], |r| Ok((ListId(r.get(0)?), r.get(1)?)))
        .optional()?)
}

/// The contact of `list` made for inbound call `call_id`, if any.
pub fn contact_of_call(conn: &Conn, list: ListId, call_id: i64) -> Result<Option<ContactId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM outbound_contacts WHERE list_id = ?1 AND call_id = ?2")?
        .query_row(params![list, call_id], |r| Ok(ContactId(r.get(0)?)))
        .optional()?)
}
