//! What the API's contact pages read (`crate::outbound::browse`).

use super::Conn;
use crate::outbound::{AttemptId, ContactId, ContactState, ListId};
use crate::store::Result;
use rusqlite::{params, OptionalExtension};

/// Ids of the contacts of `list` after `after` (of `state`, when given; only those attempted by
/// `agent`, when given), at most `limit`.
pub fn contact_ids_after(
    conn: &Conn,
    list: ListId,
    state: Option<ContactState>,
    after: i64,
    agent: Option<&str>,
    limit: usize,
) -> Result<Vec<ContactId>> {
    let ids = conn
        .prepare_cached(
            "SELECT id FROM outbound_contacts
             WHERE list_id = ?1 AND (?2 IS NULL OR state = ?2) AND id > ?3
               AND (?4 IS NULL OR id IN
                    (SELECT contact_id FROM outbound_attempts WHERE list_id = ?1 AND agent = ?4))
             ORDER BY id LIMIT ?5",
        )?
        .query_map(
            params![
                list,
                state,
                after,
                agent,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |r| Ok(ContactId(r.get(0)?)),
        )?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Whether `agent` ever attempted `contact`.
pub fn attempted_by(conn: &Conn, contact: ContactId, agent: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_attempts WHERE contact_id = ?1 AND agent = ?2 LIMIT 1",
        )?
        .query_row(params![contact, agent], |_| Ok(()))
        .optional()?
        .is_some())
}

/// Ids of the attempts of `contact` (skip records included), oldest first.
pub fn attempt_ids(conn: &Conn, contact: ContactId) -> Result<Vec<AttemptId>> {
    let ids = conn
        .prepare_cached("SELECT id FROM outbound_attempts WHERE contact_id = ?1 ORDER BY id")?
        .query_map([contact], |r| Ok(AttemptId(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}
