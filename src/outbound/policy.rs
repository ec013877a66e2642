//! The contact policy, decided at dial time in one `BEGIN IMMEDIATE` transaction that both checks
//! and claims: the chosen contact gets its attempt row and turns `in_progress` before the
//! transaction commits, so two dialers — separate connections, or a daemon and its restart — can
//! never dial one contact twice for one attempt (the unique indexes on `(contact_id, attempt_no)`
//! and on the live attempt of a contact back this up).
//!
//! In order: the agent has no live attempt; the list is active and the agent works it; the
//! list's calling window is open and today (local) is not a holiday; neither daily quota is used
//! up (answered attempts of the local day plus attempts still in flight, so a quota of 30 ends at
//! exactly 30); then the contacts due now: those of `queue_callback` lists first (callers who
//! asked to be called back while queued: their `due_at` is when they joined the queue), then by
//! earliest `due_at` (those without one after), then higher list priority, then import order.
//! A candidate is
//! - skipped for good (`do_not_call`) when every number of it is on the do-not-call list (numbers
//!   on it are never dialed; the others are);
//! - skipped for good (`duplicate`) when the same customer id or any of its numbers had an
//!   *answered* attempt from another contact, on any list, within the list's
//!   `dedupe_period_secs`. Unanswered rings do not count: a customer who never picked up has
//!   not been called in the sense a customer complains about, and counting them would let one
//!   list's failed tries block every other list;
//! - passed over for now when another contact of the same customer or number has a live attempt
//!   (no customer gets two calls at once);
//! - otherwise claimed. Its numbers are dialed in turn: attempt k uses the k-th allowed number,
//!   cyclically.
//!
//! Skips are recorded as attempt rows with result `skipped` and the reason, and the contact's
//! state `skipped` with `done_reason` the same reason.

use super::calendar::Status;
use super::lists::{self, List};
use super::{
    ms_from_sql, sql_ms, AttemptId, AttemptResult, ContactId, ContactState, ListId, ListState,
    Mode, OutboundError, Result,
};
use crate::store::outbound::Db;
use serde::Serialize;
use serde_json::{Map, Value};

/// A contact as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Contact {
    pub id: ContactId,
    pub list: ListId,
    pub customer_id: Option<String>,
    /// E.164, in the order given.
    pub phones: Vec<String>,
    pub name: Option<String>,
    /// Free fields shown to the agent.
    pub fields: Map<String, Value>,
    /// When the customer should have been called by (dialing order).
    pub due_at_ms: Option<u64>,
    pub state: ContactState,
    /// Dial attempts so far (skips not counted).
    pub attempts: u32,
    /// Not dialed before this time.
    pub next_attempt_at_ms: Option<u64>,
    pub last_result: Option<AttemptResult>,
    /// Why the contact is finished: `done`, `max_attempts`, `duplicate`, `do_not_call`, or the
    /// disposition that finished it.
    pub done_reason: Option<String>,
    /// The inbound call a complaint follow-up comes from.
    pub call_id: Option<u64>,
    pub created_at_ms: u64,
}

/// What the dialer should do for an agent now.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Dial `number` for `contact`; report progress on `attempt`.
    Dial {
        attempt: AttemptId,
        /// 1 for the first dial of this contact.
        attempt_no: u32,
        list: ListId,
        mode: Mode,
        contact: Contact,
        number: String,
    },
    Nothing {
        why: Why,
    },
}

/// Why nothing is dialed. With several lists, the reason of the first list asked for when none
/// could dial, or `NoContactDue` when some could but had no contact due.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "why", rename_all = "snake_case")]
pub enum Why {
    /// No list was given.
    NoLists,
    ListPaused {
        list: ListId,
    },
    ListStopped {
        list: ListId,
    },
    /// The list names its agents, has no queue, and this agent is not among them.
    AgentNotOnList {
        list: ListId,
    },
    /// The agent already has a live attempt (one customer call per agent).
    AgentBusy {
        attempt: AttemptId,
    },
    Holiday {
        list: ListId,
        date: String,
        opens_at_ms: Option<u64>,
    },
    WindowClosed {
        list: ListId,
        opens_at_ms: Option<u64>,
    },
    /// `used` answered today plus `in_flight` live attempts reach the list's daily quota.
    ListQuotaReached {
        list: ListId,
        used: u64,
        in_flight: u64,
        quota: u32,
        resets_at_ms: u64,
    },
    /// The same for this agent's quota on the list.
    AgentQuotaReached {
        list: ListId,
        used: u64,
        in_flight: u64,
        quota: u32,
        resets_at_ms: u64,
    },
    /// Nothing pending is due. `next_due_at_ms`: the earliest scheduled retry, if any.
    NoContactDue {
        next_due_at_ms: Option<u64>,
    },
}

/// The next contact of `list` for `agent` at `now_ms`, claimed atomically. See the module docs.
pub fn next_contact(conn: &Db, list: ListId, agent: &str, now_ms: u64) -> Result<Decision> {
    next_contact_among(conn, &[list], agent, now_ms)
}

/// The same across several lists the agent works (the dialer knows which, including through
/// queue membership): contacts of every eligible list compete by due time, then list priority,
/// then import order.
pub fn next_contact_among(
    conn: &Db,
    lists: &[ListId],
    agent: &str,
    now_ms: u64,
) -> Result<Decision> {
    let now = sql_ms(now_ms)?;
    let tx = super::write_tx(conn)?;
    if let Some(attempt) = tx.live_attempt_of(agent)? {
        return Ok(Decision::Nothing {
            why: Why::AgentBusy { attempt },
        });
    }
    let mut eligible: Vec<List> = Vec::new();
    let mut first_why = None;
    for &id in lists {
        if eligible.iter().any(|l| l.id == id) {
            continue;
        }
        let list = lists::load(&*tx, id)?;
        match list_blocked(&*tx, &list, agent, now_ms)? {
            Some(why) => {
                first_why.get_or_insert(why);
            }
            None => eligible.push(list),
        }
    }
    if eligible.is_empty() {
        return Ok(Decision::Nothing {
            why: first_why.unwrap_or(Why::NoLists),
        });
    }
    let ids: Vec<ListId> = eligible.iter().map(|l| l.id).collect();
    let mut passed_over = 0i64;
    loop {
        let batch = tx.candidates(&ids, now, passed_over)?;
        for &cid in &batch {
            let contact = load_contact(&*tx, cid)?;
            let Some(list) = eligible.iter().find(|l| l.id == contact.list) else {
                continue;
            };
            let mut allowed = Vec::new();
            for n in &contact.phones {
                if super::is_do_not_call(&*tx, n)?.is_none() {
                    allowed.push(n.clone());
                }
            }
            if allowed.is_empty() {
                skip(&*tx, &contact, "do_not_call", now)?;
                continue;
            }
            let period_ms = list.spec.dedupe_period_secs.saturating_mul(1000);
            if period_ms > 0
                && answered_elsewhere(&*tx, &contact, now_ms.saturating_sub(period_ms))?
            {
                skip(&*tx, &contact, "duplicate", now)?;
                continue;
            }
            if live_elsewhere(&*tx, &contact)? {
                passed_over += 1;
                continue;
            }
            let number = allowed[contact.attempts as usize % allowed.len()].clone();
            let attempt_no = contact.attempts + 1;
            let attempt = tx.insert_attempt(
                contact.list,
                contact.id,
                attempt_no,
                contact.customer_id.as_deref(),
                agent,
                &number,
                now,
            )?;
            if !tx.claim_contact(contact.id, attempt_no, now)? {
                return Err(OutboundError::Conflict(format!(
                    "contact {} changed while being claimed",
                    contact.id
                )));
            }
            let contact = load_contact(&*tx, contact.id)?;
            let mode = list.spec.mode;
            tx.commit()?;
            return Ok(Decision::Dial {
                attempt,
                attempt_no,
                list: contact.list,
                mode,
                contact,
                number,
            });
        }
        if batch.len() < 64 {
            break;
        }
    }
    let next = tx.next_retry(&ids, now)?;
    tx.commit()?;
    Ok(Decision::Nothing {
        why: Why::NoContactDue {
            next_due_at_ms: next.map(ms_from_sql),
        },
    })
}

/// Why `list` cannot dial for `agent` now, if it cannot.
fn list_blocked(conn: &Db, list: &List, agent: &str, now_ms: u64) -> Result<Option<Why>> {
    let id = list.id;
    match list.state {
        ListState::Active => {}
        ListState::Paused => return Ok(Some(Why::ListPaused { list: id })),
        ListState::Stopped => return Ok(Some(Why::ListStopped { list: id })),
    }
    let spec = &list.spec;
    if spec.queue.is_none() && !spec.agents.iter().any(|a| a == agent) {
        return Ok(Some(Why::AgentNotOnList { list: id }));
    }
    let calendar = list.calendar()?;
    match calendar.status(now_ms)? {
        Status::Open => {}
        Status::Closed { opens_at_ms } => {
            return Ok(Some(Why::WindowClosed {
                list: id,
                opens_at_ms,
            }))
        }
        Status::Holiday { date, opens_at_ms } => {
            return Ok(Some(Why::Holiday {
                list: id,
                date: date.to_string(),
                opens_at_ms,
            }))
        }
    }
    let (day_start, day_end) = calendar.day_bounds(now_ms)?;
    let range = (sql_ms(day_start)?, sql_ms(day_end)?);
    if let Some(quota) = spec.quota_per_day {
        let (used, in_flight) = usage(conn, id, None, range)?;
        if used + in_flight >= u64::from(quota) {
            return Ok(Some(Why::ListQuotaReached {
                list: id,
                used,
                in_flight,
                quota,
                resets_at_ms: day_end,
            }));
        }
    }
    if let Some(quota) = spec.agent_quota_per_day {
        let (used, in_flight) = usage(conn, id, Some(agent), range)?;
        if used + in_flight >= u64::from(quota) {
            return Ok(Some(Why::AgentQuotaReached {
                list: id,
                used,
                in_flight,
                quota,
                resets_at_ms: day_end,
            }));
        }
    }
    Ok(None)
}

/// Answered attempts in the local day `[start, end)`, and attempts live and not yet answered,
/// of the list (or of one agent on it).
fn usage(
    conn: &Db,
    list: ListId,
    agent: Option<&str>,
    (start, end): (i64, i64),
) -> Result<(u64, u64)> {
    let (used, in_flight) = conn.list_usage(list, agent, start, end)?;
    Ok((ms_from_sql(used), ms_from_sql(in_flight)))
}

/// Did another contact with this customer id or one of these numbers get answered since `since`?
fn answered_elsewhere(conn: &Db, c: &Contact, since_ms: u64) -> Result<bool> {
    let since = sql_ms(since_ms)?;
    if let Some(customer) = &c.customer_id {
        if conn.customer_answered_since(customer, since, c.id)? {
            return Ok(true);
        }
    }
    for n in &c.phones {
        if conn.number_answered_since(n, since, c.id)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Is the same customer or number on a live call from another contact right now?
fn live_elsewhere(conn: &Db, c: &Contact) -> Result<bool> {
    for n in &c.phones {
        if conn.live_elsewhere(c.id, c.customer_id.as_deref(), n)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Record a policy skip and take the contact out of dialing for good.
fn skip(conn: &Db, c: &Contact, reason: &str, now: i64) -> Result<()> {
    let number = c.phones.first().map(String::as_str);
    Ok(conn.skip_contact(c.list, c.id, c.customer_id.as_deref(), number, reason, now)?)
}

pub fn get_contact(conn: &Db, id: ContactId) -> Result<Contact> {
    load_contact(conn, id)
}

pub(crate) fn load_contact(conn: &Db, id: ContactId) -> Result<Contact> {
    let r = conn
        .load_contact(id)?
        .ok_or(OutboundError::NoSuchContact(id))?;
    let fields = match serde_json::from_str(&r.fields_json) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(OutboundError::Corrupt(format!(
                "contact {id}: fields are not an object"
            )))
        }
    };
    Ok(Contact {
        id,
        list: ListId(r.list_id),
        customer_id: r.customer_id,
        name: r.name,
        fields,
        due_at_ms: r.due_at_ms.map(ms_from_sql),
        state: r.state,
        attempts: r.attempts,
        next_attempt_at_ms: r.next_attempt_at_ms.map(ms_from_sql),
        last_result: r.last_result,
        done_reason: r.done_reason,
        call_id: r.call_id.map(ms_from_sql),
        created_at_ms: ms_from_sql(r.created_at_ms),
        phones: r.phones,
    })
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;
