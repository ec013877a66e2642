//! Outcomes of attempts: call progress and results from the dialer, dispositions from the agent,
//! and the retry rules that decide each contact's next step; plus the reconciliation at start.
//!
//! An attempt's life: claimed by [`super::next_contact`] (result empty) → `ringing` →
//! `answered` → ended by [`record_hangup`]; or ended by a final result (`busy`, `no_answer`,
//! `rejected`, `failed`), or `skipped` by the agent in preview before dialing.
//!
//! The contact after a final result: `unreachable` when its dial attempts reached the list's
//! `max_attempts`, else `pending` again after the retry delay for that result (busy and rejected:
//! `busy_secs`; no answer: `no_answer_secs`; failed: `failed_secs`). After an answer it stays
//! `in_progress` until the agent's disposition: `done` finishes it, `do_not_call` finishes it and
//! puts the number dialed on the do-not-call list, any other disposition schedules another
//! attempt after `no_answer_secs` (or `unreachable` when attempts ran out) once the call has
//! ended. A preview skip by the agent does not count as a dial attempt; the contact returns after
//! `no_answer_secs`, so the agent is not handed the same contact again at once.

use super::lists::{self, List};
use super::policy::load_contact;
use super::{
    ms_from_sql, sql_ms, write_tx, AttemptId, AttemptResult, ContactId, ContactState, ListId,
    OutboundError, Result,
};
use crate::store::outbound::Db;
use serde::Serialize;

/// Dispositions with a meaning here; any other code is stored and schedules another attempt.
pub const DISPOSITION_DONE: &str = "done";
pub const DISPOSITION_DO_NOT_CALL: &str = "do_not_call";

/// Highest survey score accepted (0 ..= 10, as NPS).
pub const MAX_SURVEY_SCORE: i64 = 10;

/// An attempt (or a recorded skip) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    pub id: AttemptId,
    pub list: ListId,
    pub contact: ContactId,
    /// 1, 2, … per contact; none for skips.
    pub attempt_no: Option<u32>,
    pub agent: Option<String>,
    /// E.164 number dialed (for a skip: the contact's first number).
    pub number: Option<String>,
    /// ctid's call id of the outbound call, when the dialer linked one.
    pub call_id: Option<u64>,
    pub started_at_ms: u64,
    pub answered_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
    /// None while claimed and not yet dialed.
    pub result: Option<AttemptResult>,
    pub sip_code: Option<u16>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub survey_score: Option<i64>,
    /// Why skipped (`duplicate`, `do_not_call`, `agent`) or ended by ctid (`interrupted`).
    pub reason: Option<String>,
}

/// What became of the contact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "next", rename_all = "snake_case")]
pub enum ContactNext {
    /// The call goes on, or the agent's disposition is awaited.
    InProgress,
    /// Pending again from `at_ms`.
    RetryAt {
        at_ms: u64,
    },
    Unreachable,
    Done {
        reason: String,
    },
    /// Nothing changed for the contact (a repeated report, or it was already finished).
    Unchanged {
        state: ContactState,
    },
}

pub fn get_attempt(conn: &Db, id: AttemptId) -> Result<Attempt> {
    let r = conn
        .load_attempt(id)?
        .ok_or(OutboundError::NoSuchAttempt(id))?;
    Ok(Attempt {
        id,
        list: ListId(r.list_id),
        contact: ContactId(r.contact_id),
        attempt_no: r.attempt_no,
        agent: r.agent,
        number: r.number,
        call_id: r.call_id.map(ms_from_sql),
        started_at_ms: ms_from_sql(r.started_at_ms),
        answered_at_ms: r.answered_at_ms.map(ms_from_sql),
        ended_at_ms: r.ended_at_ms.map(ms_from_sql),
        result: r.result,
        sip_code: r.sip_code,
        disposition: r.disposition,
        notes: r.notes,
        survey_score: r.survey_score,
        reason: r.reason,
    })
}

/// Link the attempt to ctid's call id for the outbound call (for the CDR and reports).
pub fn link_call(conn: &Db, attempt: AttemptId, call_id: u64) -> Result<()> {
    if !conn.set_attempt_call(attempt, sql_ms(call_id)?)? {
        return Err(OutboundError::NoSuchAttempt(attempt));
    }
    Ok(())
}

/// Call progress or the final result of a dial attempt, at `at_ms`. `sip_code`: the final (or
/// provisional, for `ringing`) SIP status, kept when given. Repeating a result already recorded
/// is a no-op; contradicting one is a [`OutboundError::Conflict`]. An answered call is ended with
/// [`record_hangup`], not with a result.
pub fn record_result(
    conn: &Db,
    attempt: AttemptId,
    result: AttemptResult,
    sip_code: Option<u16>,
    at_ms: u64,
) -> Result<ContactNext> {
    let at = sql_ms(at_ms)?;
    let tx = write_tx(conn)?;
    let a = get_attempt(&*tx, attempt)?;
    let conflict = |what: String| {
        Err(OutboundError::Conflict(format!(
            "attempt {attempt}: {what}"
        )))
    };
    if a.attempt_no.is_none() {
        return conflict("is a skip, not a dial attempt".into());
    }
    if a.ended_at_ms.is_some() || a.result == Some(AttemptResult::Answered) {
        return match a.result {
            Some(r) if r == result => {
                let state = load_contact(&*tx, a.contact)?.state;
                Ok(ContactNext::Unchanged { state })
            }
            Some(r) => conflict(format!("already {r}, cannot become {result}")),
            None => conflict("already ended".into()),
        };
    }
    let next = match result {
        AttemptResult::Ringing => {
            tx.attempt_ringing(attempt, sip_code)?;
            ContactNext::InProgress
        }
        AttemptResult::Answered => {
            tx.attempt_answered(attempt, at, sip_code)?;
            ContactNext::InProgress
        }
        AttemptResult::Skipped => {
            if a.result.is_some() {
                return conflict("already dialed: a skip must come before dialing".into());
            }
            // Not a dial attempt: give the attempt number back.
            tx.attempt_skipped_by_agent(attempt, at)?;
            let list = lists::load(&*tx, a.list)?;
            let retry_at = at_ms.saturating_add(list.spec.retry.after_ms(AttemptResult::NoAnswer));
            tx.contact_given_back(a.contact, sql_ms(retry_at)?, at)?;
            ContactNext::RetryAt { at_ms: retry_at }
        }
        final_result => {
            tx.attempt_final(attempt, final_result, sip_code, at)?;
            let list = lists::load(&*tx, a.list)?;
            schedule(&*tx, &list, a.contact, final_result, at_ms, true)?
        }
    };
    tx.commit()?;
    Ok(next)
}

/// The answered call of `attempt` ended at `at_ms`. Idempotent. Applies a disposition given
/// while the call was live.
pub fn record_hangup(conn: &Db, attempt: AttemptId, at_ms: u64) -> Result<ContactNext> {
    let tx = write_tx(conn)?;
    let a = get_attempt(&*tx, attempt)?;
    if a.answered_at_ms.is_none() {
        return Err(OutboundError::Conflict(format!(
            "attempt {attempt} was not answered: record its result instead"
        )));
    }
    if a.ended_at_ms.is_some() {
        let state = load_contact(&*tx, a.contact)?.state;
        return Ok(ContactNext::Unchanged { state });
    }
    tx.attempt_ended(attempt, sql_ms(at_ms)?)?;
    let next = after_answer(&*tx, attempt, at_ms)?;
    tx.commit()?;
    Ok(next)
}

/// The agent's disposition of an attempt, with notes and a survey score (0–10), at `at_ms`.
/// Setting it again replaces it. See the module docs for what each disposition does.
pub fn set_disposition(
    conn: &Db,
    attempt: AttemptId,
    disposition: &str,
    notes: Option<&str>,
    survey_score: Option<i64>,
    at_ms: u64,
) -> Result<ContactNext> {
    let disposition = disposition.trim();
    if disposition.is_empty()
        || disposition.chars().count() > 64
        || disposition.chars().any(char::is_control)
    {
        return Err(OutboundError::Invalid(format!(
            "disposition {disposition:?} must be 1 to 64 characters"
        )));
    }
    if notes.is_some_and(|n| n.chars().count() > 4000) {
        return Err(OutboundError::Invalid(
            "notes are limited to 4000 characters".into(),
        ));
    }
    if survey_score.is_some_and(|s| !(0..=MAX_SURVEY_SCORE).contains(&s)) {
        return Err(OutboundError::Invalid(format!(
            "survey score must be 0 to {MAX_SURVEY_SCORE}"
        )));
    }
    let at = sql_ms(at_ms)?;
    let tx = write_tx(conn)?;
    let a = get_attempt(&*tx, attempt)?;
    if a.attempt_no.is_none() {
        return Err(OutboundError::Conflict(format!(
            "attempt {attempt} is a skip: there is no call to disposition"
        )));
    }
    tx.attempt_disposition(attempt, disposition, notes, survey_score)?;
    let next = match disposition {
        DISPOSITION_DONE | DISPOSITION_DO_NOT_CALL => {
            if disposition == DISPOSITION_DO_NOT_CALL {
                if let Some(n) = &a.number {
                    super::dnc::insert_dnc(&*tx, n, "disposition", at)?;
                }
            }
            finish(&*tx, a.contact, disposition, at)?
        }
        _ if a.answered_at_ms.is_some() => after_answer(&*tx, attempt, at_ms)?,
        // An unanswered attempt was scheduled by its result already.
        _ => ContactNext::Unchanged {
            state: load_contact(&*tx, a.contact)?.state,
        },
    };
    tx.commit()?;
    Ok(next)
}

/// An answered attempt: once it has ended and has a disposition, move the contact on.
fn after_answer(conn: &Db, attempt: AttemptId, at_ms: u64) -> Result<ContactNext> {
    let a = get_attempt(conn, attempt)?;
    let contact = load_contact(conn, a.contact)?;
    if contact.state != ContactState::InProgress {
        return Ok(ContactNext::Unchanged {
            state: contact.state,
        });
    }
    match (a.ended_at_ms, a.disposition.as_deref()) {
        (_, Some(d @ (DISPOSITION_DONE | DISPOSITION_DO_NOT_CALL))) => {
            finish(conn, a.contact, d, sql_ms(at_ms)?)
        }
        (Some(_), Some(_)) => {
            let list = lists::load(conn, a.list)?;
            schedule(conn, &list, a.contact, AttemptResult::NoAnswer, at_ms, true)
        }
        _ => Ok(ContactNext::InProgress),
    }
}

/// The contact is done for `reason`.
fn finish(conn: &Db, contact: ContactId, reason: &str, at: i64) -> Result<ContactNext> {
    conn.contact_done(contact, reason, at)?;
    Ok(ContactNext::Done {
        reason: reason.to_string(),
    })
}

/// After a final result (or an undone disposition): pending after the delay for `result`, or
/// unreachable when `count_max` and the attempts ran out. Only an `in_progress` contact moves.
fn schedule(
    conn: &Db,
    list: &List,
    contact: ContactId,
    result: AttemptResult,
    at_ms: u64,
    count_max: bool,
) -> Result<ContactNext> {
    let c = load_contact(conn, contact)?;
    let at = sql_ms(at_ms)?;
    if c.state != ContactState::InProgress {
        conn.contact_last_result(contact, result)?;
        return Ok(ContactNext::Unchanged { state: c.state });
    }
    if count_max && c.attempts >= list.spec.max_attempts {
        conn.contact_unreachable(contact, result, at)?;
        return Ok(ContactNext::Unreachable);
    }
    let retry_at = at_ms.saturating_add(list.spec.retry.after_ms(result));
    conn.contact_retry(contact, result, sql_ms(retry_at)?, at)?;
    Ok(ContactNext::RetryAt { at_ms: retry_at })
}

/// What [`reconcile_after_restart`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReconcileReport {
    /// Attempts that were live when the previous run stopped, now closed.
    pub interrupted: usize,
    pub rescheduled: usize,
    pub unreachable: usize,
    /// Answered, ended, never dispositioned: the contact stays `in_progress` for an agent (or a
    /// lead, through the API) to disposition.
    pub awaiting_disposition: usize,
    /// Claimed but never dialed (a preview on screen, an agent not yet rung): given back as a
    /// skip with reason `interrupted` — not a dial attempt — and due again at once.
    pub given_back: usize,
}

/// At start, before any dialing: close every attempt a previous run left live, at `now_ms`, with
/// reason `interrupted`. Unanswered ones become `failed` and their contact follows the failed
/// retry rule (max attempts included: the number may have rung). Answered ones keep `answered` —
/// the customer was reached, and the day's quota must still count it — and their contact is
/// called again after the failed delay unless a disposition already settled it. A new attempt
/// always gets a new attempt number, so no attempt is ever dialed twice. An attempt that was
/// only claimed — no call linked, no result: a preview on an agent's screen, an agent about to be
/// rung — is given back instead (see [`ReconcileReport::given_back`]).
pub fn reconcile_after_restart(conn: &Db, now_ms: u64) -> Result<ReconcileReport> {
    let now = sql_ms(now_ms)?;
    let tx = write_tx(conn)?;
    let live = tx.live_attempt_ids()?;
    let mut report = ReconcileReport::default();
    for id in live {
        let a = get_attempt(&*tx, id)?;
        if a.result.is_none() && a.call_id.is_none() {
            // No call was ever made for it: nobody was rung, the customer least of all.
            tx.give_back_attempt(a.id, now)?;
            tx.contact_given_back(a.contact, now, now)?;
            report.given_back += 1;
            continue;
        }
        report.interrupted += 1;
        let list = lists::load(&*tx, a.list)?;
        let next = if a.answered_at_ms.is_some() {
            tx.attempt_end_interrupted(a.id, now)?;
            if a.disposition.is_some() {
                after_answer(&*tx, a.id, now_ms)?
            } else {
                schedule(&*tx, &list, a.contact, AttemptResult::Failed, now_ms, false)?
            }
        } else {
            tx.attempt_fail_interrupted(a.id, now)?;
            schedule(&*tx, &list, a.contact, AttemptResult::Failed, now_ms, true)?
        };
        match next {
            ContactNext::RetryAt { .. } => report.rescheduled += 1,
            ContactNext::Unreachable => report.unreachable += 1,
            _ => {}
        }
    }
    let waiting = tx.awaiting_disposition()?;
    report.awaiting_disposition = usize::try_from(waiting).unwrap_or(0);
    tx.commit()?;
    Ok(report)
}

#[cfg(test)]
#[path = "outcome_tests.rs"]
mod tests;
