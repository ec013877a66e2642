//! Read-only views of a list's contacts for the HTTP API: a page of contacts (optionally only
//! those offered to one agent), whether a contact was offered to an agent, a contact's attempts.

use super::{get_attempt, get_contact, Attempt, Contact, ContactId, ContactState, ListId, Result};
use crate::store::outbound::Db;

/// Contacts of `list` by id after `after` (of `state`, when given; only those offered to
/// `agent`, when given): at most `limit + 1` (one more tells there is a next page).
pub fn contacts_after(
    conn: &Db,
    list: ListId,
    state: Option<ContactState>,
    after: i64,
    agent: Option<&str>,
    limit: usize,
) -> Result<Vec<Contact>> {
    conn.contact_ids_after(list, state, after, agent, limit.saturating_add(1))?
        .into_iter()
        .map(|id| get_contact(conn, id))
        .collect()
}

/// Whether `contact` was ever offered to (attempted by) `agent`.
pub fn offered_to(conn: &Db, contact: ContactId, agent: &str) -> Result<bool> {
    Ok(conn.attempted_by(contact, agent)?)
}

/// The attempts of `contact` (skip records included), oldest first.
pub fn attempts_of(conn: &Db, contact: ContactId) -> Result<Vec<Attempt>> {
    conn.attempt_ids(contact)?
        .into_iter()
        .map(|i| get_attempt(conn, i))
        .collect()
}
