//! What the contact policy (`crate::outbound::policy`) reads and writes while it claims a
//! contact: live attempts, candidates in dialing order, quota usage, the duplicate rules, skips,
//! the claim itself, and a contact with its numbers.

use super::Conn;
use crate::outbound::{AttemptId, ContactId, ListId};
use crate::store::outbound::ContactRow;
use crate::store::Result;
use rusqlite::{params, params_from_iter, OptionalExtension};

/// A live attempt of `agent`, if any.
pub fn live_attempt_of(conn: &Conn, agent: &str) -> Result<Option<AttemptId>> {
    Ok(conn
        .prepare_cached(
            "SELECT id FROM outbound_attempts WHERE agent = ?1 AND ended_at_ms IS NULL LIMIT 1",
        )?
        .query_row([agent], |r| Ok(AttemptId(r.get(0)?)))
        .optional()?)
}

/// Up to 64 pending contacts of `lists` due at `now_ms`, skipping the first `offset`: queue
/// callbacks first, then by due time (none last), list priority, import order.
pub fn candidates(
    conn: &Conn,
    lists: &[ListId],
    now_ms: i64,
    offset: i64,
) -> Result<Vec<ContactId>> {
    let marks = vec!["?"; lists.len()].join(", ");
    let sql = format!(
        "SELECT c.id FROM outbound_contacts c JOIN outbound_lists l ON l.id = c.list_id
         WHERE c.list_id IN ({marks}) AND c.state = 'pending'
           AND (c.next_attempt_at_ms IS NULL OR c.next_attempt_at_ms <= ?)
         ORDER BY l.purpose = 'queue_callback' DESC, c.due_at_ms IS NULL, c.due_at_ms,
           l.priority DESC, c.id
         LIMIT 64 OFFSET ?"
    );
    let mut args: Vec<i64> = lists.iter().map(|l| l.0).collect();
    args.extend([now_ms, offset]);
    let ids = conn
        .prepare_cached(&sql)?
        .query_map(params_from_iter(args), |r| Ok(ContactId(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// The earliest retry of a pending contact of `lists` after `now_ms`.
pub fn next_retry(conn: &Conn, lists: &[ListId], now_ms: i64) -> Result<Option<i64>> {
    let marks = vec!["?"; lists.len()].join(", ");
    let sql = format!(
        "SELECT min(next_attempt_at_ms) FROM outbound_contacts
         WHERE list_id IN ({marks}) AND state = 'pending' AND next_attempt_at_ms > ?"
    );
    let mut args: Vec<i64> = lists.iter().map(|l| l.0).collect();
    args.push(now_ms);
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params_from_iter(args), |r| r.get(0))?)
}

/// Attempts of `list` (of `agent`, when given) answered in `start_ms..end_ms`, and those live
/// and not yet answered.
pub fn usage(
    conn: &Conn,
    list: ListId,
    agent: Option<&str>,
    start_ms: i64,
    end_ms: i64,
) -> Result<(i64, i64)> {
    let used: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM outbound_attempts
             WHERE list_id = ?1 AND answered_at_ms >= ?2 AND answered_at_ms < ?3
               AND (?4 IS NULL OR agent = ?4)",
        )?
        .query_row(params![list, start_ms, end_ms, agent], |r| r.get(0))?;
    let in_flight: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM outbound_attempts
             WHERE list_id = ?1 AND ended_at_ms IS NULL AND answered_at_ms IS NULL
               AND (?2 IS NULL OR agent = ?2)",
        )?
        .query_row(params![list, agent], |r| r.get(0))?;
    Ok((used, in_flight))
}

/// Whether an attempt of another contact than `contact` for customer `customer_id` was
/// answered since `since_ms`.
pub fn customer_answered_since(
    conn: &Conn,
    customer_id: &str,
    since_ms: i64,
    contact: ContactId,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_attempts
             WHERE customer_id = ?1 AND answered_at_ms >= ?2 AND contact_id != ?3",
        )?
        .exists(params![customer_id, since_ms, contact])?)
}

/// Whether an attempt of another contact than `contact` to `number` was answered since
/// `since_ms`.
pub fn number_answered_since(
    conn: &Conn,
    number: &str,
    since_ms: i64,
    contact: ContactId,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_attempts
             WHERE number = ?1 AND answered_at_ms >= ?2 AND contact_id != ?3",
        )?
        .exists(params![number, since_ms, contact])?)
}

/// Whether another contact than `contact` is on a live attempt for `customer_id` or to
/// `number`.
pub fn live_elsewhere(
    conn: &Conn,
    contact: ContactId,
    customer_id: Option<&str>,
    number: &str,
) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM outbound_attempts
             WHERE ended_at_ms IS NULL AND contact_id != ?1
               AND ((?2 IS NOT NULL AND customer_id = ?2) OR number = ?3)",
        )?
        .exists(params![contact, customer_id, number])?)
}

/// A policy skip of `contact` for `reason`: the record, and the contact out of dialing.
pub fn skip(
    conn: &Conn,
    list: ListId,
    contact: ContactId,
    customer_id: Option<&str>,
    number: Option<&str>,
    reason: &str,
    now_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO outbound_attempts (list_id, contact_id, customer_id, number, started_at_ms,
           ended_at_ms, result, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5, 'skipped', ?6)",
    )?
    .execute(params![list, contact, customer_id, number, now_ms, reason])?;
    conn.prepare_cached(
        "UPDATE outbound_contacts SET state = 'skipped', done_reason = ?2, last_result = 'skipped',
           next_attempt_at_ms = NULL, updated_at_ms = ?3
         WHERE id = ?1",
    )?
    .execute(params![contact, reason, now_ms])?;
    Ok(())
}

/// A new attempt of `agent` on `contact`: the claim. Returns its id.
#[allow(clippy::too_many_arguments)]
pub fn insert_attempt(
    conn: &Conn,
    list: ListId,
    contact: ContactId,
    attempt_no: u32,
    customer_id: Option<&str>,
    agent: &str,
    number: &str,
    now_ms: i64,
) -> Result<AttemptId> {
    conn.prepare_cached(
        "INSERT INTO outbound_attempts (list_id, contact_id, attempt_no, customer_id,
           agent, number, started_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![
        list,
        contact,
        attempt_no,
        customer_id,
        agent,
        number,
        now_ms
    ])?;
    Ok(AttemptId(conn.last_insert_rowid()))
}

/// A pending contact goes `in_progress` with `attempts`; false when it was not pending.
pub fn claim_contact(conn: &Conn, contact: ContactId, attempts: u32, now_ms: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached(
            "UPDATE outbound_contacts SET state = 'in_progress', attempts = ?2,
               updated_at_ms = ?3
             WHERE id = ?1 AND state = 'pending'",
        )?
        .execute(params![contact, attempts, now_ms])?
        == 1)
}

pub fn load_contact(conn: &Conn, id: ContactId) -> Result<Option<ContactRow>> {
    let row = conn
        .prepare_cached(
            "SELECT list_id, customer_id, name, fields, due_at_ms, state, attempts,
               next_attempt_at_ms, last_result, done_reason, call_id, created_at_ms
             FROM outbound_contacts WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(ContactRow {
                list_id: r.get(0)?,
                customer_id: r.get(1)?,
                name: r.get(2)?,
                fields_json: r.get(3)?,
                due_at_ms: r.get(4)?,
                state: r.get(5)?,
                attempts: r.get(6)?,
                next_attempt_at_ms: r.get(7)?,
                last_result: r.get(8)?,
                done_reason: r.get(9)?,
                call_id: r.get(10)?,
                created_at_ms: r.get(11)?,
                phones: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut row) = row else {
        return Ok(None);
    };
    row.phones = conn
        .prepare_cached(
            "SELECT number FROM outbound_contact_phones WHERE contact_id = ?1 ORDER BY position",
        )?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(row))
}
