//! Read-only views of a list's contacts for the HTTP API: a page of contacts (optionally only
//! those offered to one agent), whether a contact was offered to an agent, a contact's attempts.

use super::{get_attempt, get_contact, Attempt, Contact, ContactId, ContactState, ListId, Result};
use rusqlite::{params, Connection, OptionalExtension};

/// Contacts of `list` by id after `after` (of `state`, when given; only those offered to
/// `agent`, when given): at most `limit + 1` (one more tells there is a next page).
pub fn contacts_after(
    conn: &Connection,
    list: ListId,
    state: Option<ContactState>,
    after: i64,
    agent: Option<&str>,
    limit: usize,
) -> Result<Vec<Contact>> {
    let ids: Vec<i64> = conn
        .prepare_cached(
            "SELECT id FROM outbound_contacts
             WHERE list_id = ?1 AND (?2 IS NULL OR state = ?2) AND id > ?3
               AND (?4 IS NULL OR id IN
                    (SELECT contact_id FROM outbound_attempts WHERE list_id = ?1 AND agent = ?4))
             ORDER BY id LIMIT ?5",
        )?
        .query_map(params![list, state, after, agent, limit as i64 + 1], |r| {
            r.get(0)
        })?
        .collect::<std::result::Result<_, _>>()?;
    ids.into_iter()
        .map(|id| get_contact(conn, ContactId(id)))
        .collect()
}

/// Whether `contact` was ever offered to (attempted by) `agent`.
pub fn offered_to(conn: &Connection, contact: ContactId, agent: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_attempts WHERE contact_id = ?1 AND agent = ?2 LIMIT 1",
        )?
        .query_row(params![contact, agent], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The attempts of `contact` (skip records included), oldest first.
pub fn attempts_of(conn: &Connection, contact: ContactId) -> Result<Vec<Attempt>> {
    let ids: Vec<i64> = conn
        .prepare_cached("SELECT id FROM outbound_attempts WHERE contact_id = ?1 ORDER BY id")?
        .query_map([contact], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    ids.into_iter()
        .map(|i| get_attempt(conn, super::AttemptId(i)))
        .collect()
}
