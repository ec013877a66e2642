//! Attempts (`outbound_attempts`) and the contact changes their outcomes make
//! (`crate::outbound::outcome`): one function per statement.

use super::Conn;
use crate::outbound::{AttemptId, AttemptResult, ContactId};
use crate::store::outbound::AttemptRow;
use crate::store::Result;
use rusqlite::{params, OptionalExtension};

pub fn load(conn: &Conn, id: AttemptId) -> Result<Option<AttemptRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT list_id, contact_id, attempt_no, agent, number, call_id, started_at_ms,
               answered_at_ms, ended_at_ms, result, sip_code, disposition, notes, survey_score,
               reason
             FROM outbound_attempts WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(AttemptRow {
                list_id: r.get(0)?,
                contact_id: r.get(1)?,
                attempt_no: r.get(2)?,
                agent: r.get(3)?,
                number: r.get(4)?,
                call_id: r.get(5)?,
                started_at_ms: r.get(6)?,
                answered_at_ms: r.get(7)?,
                ended_at_ms: r.get(8)?,
                result: r.get(9)?,
                sip_code: r.get(10)?,
                disposition: r.get(11)?,
                notes: r.get(12)?,
                survey_score: r.get(13)?,
                reason: r.get(14)?,
            })
        })
        .optional()?)
}

/// Link attempt `id` to ctid's call `call_id`; false when there is no such attempt.
pub fn set_call(conn: &Conn, id: AttemptId, call_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("UPDATE outbound_attempts SET call_id = ?2 WHERE id = ?1")?
        .execute(params![id, call_id])?
        > 0)
}

pub fn set_ringing(conn: &Conn, id: AttemptId, sip_code: Option<u16>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET result = 'ringing', sip_code = COALESCE(?2, sip_code)
         WHERE id = ?1",
    )?
    .execute(params![id, sip_code])?;
    Ok(())
}

pub fn set_answered(conn: &Conn, id: AttemptId, at_ms: i64, sip_code: Option<u16>) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET result = 'answered', answered_at_ms = ?2,
           sip_code = COALESCE(?3, sip_code)
         WHERE id = ?1",
    )?
    .execute(params![id, at_ms, sip_code])?;
    Ok(())
}

/// Skipped by the agent in preview: not a dial attempt (its number given back), ended.
pub fn set_skipped_by_agent(conn: &Conn, id: AttemptId, at_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET result = 'skipped', reason = 'agent', attempt_no = NULL,
           ended_at_ms = ?2
         WHERE id = ?1",
    )?
    .execute(params![id, at_ms])?;
    Ok(())
}

/// A final result (busy, no answer, rejected, failed) ends the attempt.
pub fn set_final(
    conn: &Conn,
    id: AttemptId,
    result: AttemptResult,
    sip_code: Option<u16>,
    at_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET result = ?2, sip_code = COALESCE(?3, sip_code),
           ended_at_ms = ?4
         WHERE id = ?1",
    )?
    .execute(params![id, result, sip_code, at_ms])?;
    Ok(())
}

pub fn set_ended(conn: &Conn, id: AttemptId, at_ms: i64) -> Result<()> {
    conn.prepare_cached("UPDATE outbound_attempts SET ended_at_ms = ?2 WHERE id = ?1")?
        .execute(params![id, at_ms])?;
    Ok(())
}

pub fn set_disposition(
    conn: &Conn,
    id: AttemptId,
    disposition: &str,
    notes: Option<&str>,
    survey_score: Option<i64>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET disposition = ?2, notes = ?3, survey_score = ?4 WHERE id = ?1",
    )?
    .execute(params![id, disposition, notes, survey_score])?;
    Ok(())
}

/// Attempts not ended, oldest first.
pub fn live_ids(conn: &Conn) -> Result<Vec<AttemptId>> {
    let ids = conn
        .prepare_cached("SELECT id FROM outbound_attempts WHERE ended_at_ms IS NULL ORDER BY id")?
        .query_map([], |r| Ok(AttemptId(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Claimed, never dialed, found at a restart: a skip with reason `interrupted`.
pub fn give_back(conn: &Conn, id: AttemptId, at_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET result = 'skipped', reason = 'interrupted',
           attempt_no = NULL, ended_at_ms = ?2
         WHERE id = ?1",
    )?
    .execute(params![id, at_ms])?;
    Ok(())
}

/// Answered and live at a restart: ended, reason `interrupted`.
pub fn end_interrupted(conn: &Conn, id: AttemptId, at_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET ended_at_ms = ?2, reason = 'interrupted' WHERE id = ?1",
    )?
    .execute(params![id, at_ms])?;
    Ok(())
}

/// Dialed, unanswered and live at a restart: failed, reason `interrupted`.
pub fn fail_interrupted(conn: &Conn, id: AttemptId, at_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_attempts SET result = 'failed', ended_at_ms = ?2,
           reason = 'interrupted'
         WHERE id = ?1",
    )?
    .execute(params![id, at_ms])?;
    Ok(())
}

/// An `in_progress` contact goes back to pending without using up an attempt, due at
/// `next_at_ms`.
pub fn contact_given_back(
    conn: &Conn,
    contact: ContactId,
    next_at_ms: i64,
    at_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_contacts SET state = 'pending', attempts = max(attempts - 1, 0),
           next_attempt_at_ms = ?2, updated_at_ms = ?3
         WHERE id = ?1 AND state = 'in_progress'",
    )?
    .execute(params![contact, next_at_ms, at_ms])?;
    Ok(())
}

/// The contact is done for `reason`.
pub fn contact_done(conn: &Conn, contact: ContactId, reason: &str, at_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_contacts SET state = 'done', done_reason = ?2, next_attempt_at_ms = NULL,
           updated_at_ms = ?3
         WHERE id = ?1",
    )?
    .execute(params![contact, reason, at_ms])?;
    Ok(())
}

pub fn contact_last_result(conn: &Conn, contact: ContactId, result: AttemptResult) -> Result<()> {
    conn.prepare_cached("UPDATE outbound_contacts SET last_result = ?2 WHERE id = ?1")?
        .execute(params![contact, result])?;
    Ok(())
}

/// The contact ran out of attempts.
pub fn contact_unreachable(
    conn: &Conn,
    contact: ContactId,
    result: AttemptResult,
    at_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_contacts SET state = 'unreachable', done_reason = 'max_attempts',
           last_result = ?2, next_attempt_at_ms = NULL, updated_at_ms = ?3
         WHERE id = ?1",
    )?
    .execute(params![contact, result, at_ms])?;
    Ok(())
}

/// The contact is pending again from `retry_at_ms`.
pub fn contact_retry(
    conn: &Conn,
    contact: ContactId,
    result: AttemptResult,
    retry_at_ms: i64,
    at_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE outbound_contacts SET state = 'pending', last_result = ?2, next_attempt_at_ms = ?3,
           updated_at_ms = ?4
         WHERE id = ?1",
    )?
    .execute(params![contact, result, retry_at_ms, at_ms])?;
    Ok(())
}

/// Contacts `in_progress` with no live attempt: answered, ended, awaiting a disposition.
pub fn awaiting_disposition(conn: &Conn) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM outbound_contacts c WHERE c.state = 'in_progress'
           AND NOT EXISTS (SELECT 1 FROM outbound_attempts a
                           WHERE a.contact_id = c.id AND a.ended_at_ms IS NULL)",
        [],
        |r| r.get(0),
    )?)
}
