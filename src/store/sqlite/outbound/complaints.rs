//! Complaint follow-ups (`crate::outbound::complaints`): the contacts of the lists of purpose
//! `complaint`.

use super::Conn;
use crate::outbound::{ContactId, ListId};
use crate::store::outbound::OpenComplaint;
use crate::store::Result;
use rusqlite::{params, OptionalExtension};

/// The follow-up contact already added to `list` for inbound call `call_id`, with its due time.
pub fn follow_up_of_call(
    conn: &Conn,
    list: ListId,
    call_id: i64,
) -> Result<Option<(ContactId, Option<i64>)>> {
    Ok(conn
        .prepare_cached(
            "SELECT id, due_at_ms FROM outbound_contacts WHERE list_id = ?1 AND call_id = ?2",
        )?
        .query_row(params![list, call_id], |r| {
            Ok((ContactId(r.get(0)?), r.get(1)?))
        })
        .optional()?)
}

/// The open complaints, by reply deadline (the due time, else created + `default_reply_ms`),
/// then id.
pub fn open_complaints(conn: &Conn, default_reply_ms: i64) -> Result<Vec<OpenComplaint>> {
    let rows = conn
        .prepare_cached(
            "SELECT c.id, c.list_id, l.name, c.call_id, c.customer_id,
               (SELECT number FROM outbound_contact_phones p WHERE p.contact_id = c.id
                ORDER BY position LIMIT 1),
               c.name, c.state, c.created_at_ms, c.due_at_ms,
               (SELECT min(answered_at_ms) FROM outbound_attempts a
                WHERE a.contact_id = c.id AND a.answered_at_ms IS NOT NULL)
             FROM outbound_contacts c JOIN outbound_lists l ON l.id = c.list_id
             WHERE l.purpose = 'complaint' AND c.state != 'done'
             ORDER BY COALESCE(c.due_at_ms, c.created_at_ms + ?1), c.id",
        )?
        .query_map(params![default_reply_ms], |r| {
            Ok(OpenComplaint {
                contact: ContactId(r.get(0)?),
                list: ListId(r.get(1)?),
                list_name: r.get(2)?,
                call_id: r.get(3)?,
                customer_id: r.get(4)?,
                number: r.get(5)?,
                name: r.get(6)?,
                state: r.get(7)?,
                created_at_ms: r.get(8)?,
                due_at_ms: r.get(9)?,
                first_answer_at_ms: r.get(10)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
