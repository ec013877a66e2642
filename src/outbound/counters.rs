//! Counters of one list for a team lead's board and the metrics: contacts by state, attempts by
//! result and skips by reason (all time), and the quota used in the list's local day.

use super::lists::load;
use super::{ms_from_sql, sql_ms, AttemptResult, ContactState, ListId, ListState, Result};
use crate::store::outbound::Db;
use serde::Serialize;
use std::collections::BTreeMap;

/// Contacts of a list by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContactCounts {
    pub pending: u64,
    pub in_progress: u64,
    pub done: u64,
    pub unreachable: u64,
    pub skipped: u64,
}

/// Attempts of a list by result (all time). `claimed`: handed to a dialer, no progress yet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AttemptCounts {
    pub claimed: u64,
    pub ringing: u64,
    pub answered: u64,
    pub busy: u64,
    pub no_answer: u64,
    pub rejected: u64,
    pub failed: u64,
    pub skipped: u64,
}

/// What a team lead's board and the metrics show for one list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListCounters {
    pub list: ListId,
    pub state: ListState,
    pub contacts: ContactCounts,
    pub attempts: AttemptCounts,
    /// Skips by reason (`duplicate`, `do_not_call`, `agent`), all time.
    pub skipped_by_reason: BTreeMap<String, u64>,
    pub quota_per_day: Option<u32>,
    /// Answered attempts in the list's local day containing `now_ms`.
    pub quota_used_today: u64,
    /// The same, per agent.
    pub agents_today: BTreeMap<String, u64>,
    /// Attempts live now (claimed, ringing or answered and not yet ended).
    pub live: u64,
    /// The local day counted: `[day_start_ms, day_end_ms)`.
    pub day_start_ms: u64,
    pub day_end_ms: u64,
}

pub fn list_counters(conn: &Db, id: ListId, now_ms: u64) -> Result<ListCounters> {
    let list = load(conn, id)?;
    let (day_start_ms, day_end_ms) = list.calendar()?.day_bounds(now_ms)?;
    let mut contacts = ContactCounts::default();
    for (state, n) in conn.contact_states(id)? {
        let n = ms_from_sql(n);
        match state {
            ContactState::Pending => contacts.pending = n,
            ContactState::InProgress => contacts.in_progress = n,
            ContactState::Done => contacts.done = n,
            ContactState::Unreachable => contacts.unreachable = n,
            ContactState::Skipped => contacts.skipped = n,
        }
    }
    let mut attempts = AttemptCounts::default();
    for (result, n) in conn.attempt_results(id)? {
        let n = ms_from_sql(n);
        match result {
            None => attempts.claimed = n,
            Some(AttemptResult::Ringing) => attempts.ringing = n,
            Some(AttemptResult::Answered) => attempts.answered = n,
            Some(AttemptResult::Busy) => attempts.busy = n,
            Some(AttemptResult::NoAnswer) => attempts.no_answer = n,
            Some(AttemptResult::Rejected) => attempts.rejected = n,
            Some(AttemptResult::Failed) => attempts.failed = n,
            Some(AttemptResult::Skipped) => attempts.skipped = n,
        }
    }
    let skipped_by_reason = conn
        .skip_reasons(id)?
        .into_iter()
        .map(|(reason, n)| (reason, ms_from_sql(n)))
        .collect();
    let agents_today: BTreeMap<String, u64> = conn
        .answered_per_agent(id, sql_ms(day_start_ms)?, sql_ms(day_end_ms)?)?
        .into_iter()
        .map(|(agent, n)| (agent, ms_from_sql(n)))
        .collect();
    let live = conn.live_attempts(id)?;
    Ok(ListCounters {
        list: id,
        state: list.state,
        contacts,
        attempts,
        skipped_by_reason,
        quota_per_day: list.spec.quota_per_day,
        quota_used_today: agents_today.values().sum(),
        agents_today,
        live: ms_from_sql(live),
        day_start_ms,
        day_end_ms,
    })
}
