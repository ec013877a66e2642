//! Queue callbacks: the requests of callers who pressed the callback key while queued
//! (`callback_requests`, written by the store when the caller asks) become contacts of their
//! queue's `queue_callback` list, so the dialer serves them with the same contact policy,
//! attempts, retries, reconcile after restart and list reports as every other list.
//!
//! [`absorb_requests`] (run by the dialer's store thread before it reads the lists) takes every
//! pending request not yet linked, oldest queue entry first, in one `BEGIN IMMEDIATE`
//! transaction: the caller's number is normalised to E.164 with the default country (a number
//! that cannot be dialed — anonymous, too short — marks the request `failed` with the reason, and
//! it is never dialed); the queue's list is found (the oldest `queue_callback` list of that queue
//! that is not stopped — a lead may create one through the API with windows of their own) or
//! created ([`QueueCallbackSettings::list_spec`]); the contact is added with `due_at` = the time
//! the caller joined the queue and `call_id` = the inbound call (unique per list, so a request is
//! never added twice), and the request gets its `contact_id`. When the queue's lists are all
//! stopped, its new requests stay pending and are not dialed.
//!
//! From then on the request mirrors its contact (triggers of store migration 6): `pending` →
//! `in_progress` when claimed → `done` once an attempt is answered, or `failed` when the attempts
//! run out (`max_attempts`) or the number is on the do-not-call list; `attempts` and
//! `last_result` follow the contact. `done` and `failed` are final: when the contact is dialed
//! again after an answer (a disposition other than `done`, a restart in mid-call) the request
//! stays `done` — the caller was called back — and the list shows the further attempts. The contact policy ([`super::policy`]) puts contacts of
//! `queue_callback` lists before every other list's, earliest queue entry first.

use super::e164::{normalise, CountryCode};
use super::import::insert_single;
use super::lists::{insert_list, ListSpec, RetryDelays, Window};
use super::{sql_ms, write_tx, ContactId, ListId, Mode, Purpose, Result};
use crate::store::outbound::{Db, Unlinked};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// How a queue's callback list is created when its first request arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueCallbackSettings {
    /// The calling window (every day, all day) is local to this zone (`[reports] time_zone`).
    pub time_zone: String,
    /// For caller numbers that arrive in national form.
    pub country_code: CountryCode,
}

/// Priority of the lists created here (above the complaint list's 100).
pub const QUEUE_CALLBACK_PRIORITY: i32 = 1_000;

impl QueueCallbackSettings {
    /// The list of `queue`'s callbacks: `callbacks-<queue>`, purpose `queue_callback`, worked by
    /// the queue's agents, progressive, every day 00:00–24:00, 3 attempts (busy and failed
    /// retried after 2 min, no answer after 10 min), no duplicate rule (the caller asked for the
    /// call), priority 1000.
    pub fn list_spec(&self, queue: &str) -> ListSpec {
        ListSpec {
            name: format!("callbacks-{queue}"),
            purpose: Purpose::QueueCallback,
            agents: Vec::new(),
            queue: Some(queue.to_string()),
            mode: Mode::Progressive,
            time_zone: self.time_zone.clone(),
            windows: vec![Window {
                days: vec!["mon-sun".into()],
                start: "00:00".into(),
                end: "24:00".into(),
            }],
            holidays: Vec::new(),
            quota_per_day: None,
            agent_quota_per_day: None,
            max_attempts: 3,
            retry: RetryDelays {
                busy_secs: 120,
                no_answer_secs: 600,
                failed_secs: 120,
            },
            dedupe_period_secs: 0,
            priority: QUEUE_CALLBACK_PRIORITY,
        }
    }
}

/// What [`absorb_requests`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AbsorbReport {
    /// Requests that became contacts.
    pub linked: usize,
    /// Requests marked failed: their number cannot be dialed.
    pub invalid_number: usize,
    /// Requests left pending: their queue's callback lists are all stopped.
    pub held: usize,
    /// Lists created (one per queue, on its first request).
    pub lists_created: Vec<ListId>,
}

/// Turn every pending, unlinked callback request into a contact of its queue's callback list
/// (see the module docs), at `now_ms`.
pub fn absorb_requests(
    conn: &Db,
    settings: &QueueCallbackSettings,
    now_ms: u64,
) -> Result<AbsorbReport> {
    let now = sql_ms(now_ms)?;
    let tx = write_tx(conn)?;
    let requests = tx.unlinked_callbacks()?;
    let mut report = AbsorbReport::default();
    if requests.is_empty() {
        return Ok(report);
    }
    let mut lists: HashMap<String, Option<ListId>> = HashMap::new();
    for r in requests {
        let number = match normalise(&r.number, &settings.country_code) {
            Ok(n) => n,
            Err(e) => {
                tx.fail_callback(r.id, &format!("invalid_number: {e}"), now)?;
                report.invalid_number += 1;
                continue;
            }
        };
        let list = match lists.get(&r.queue) {
            Some(l) => *l,
            None => {
                let l = queue_list(&*tx, settings, &r.queue, now_ms, &mut report)?;
                lists.insert(r.queue.clone(), l);
                l
            }
        };
        let Some(list) = list else {
            report.held += 1;
            continue;
        };
        let contact = contact_of(&*tx, list, &r, &number, now_ms)?;
        tx.link_callback(r.id, contact)?;
        report.linked += 1;
    }
    tx.commit()?;
    Ok(report)
}

/// The list `queue`'s callbacks go to: its oldest `queue_callback` list not stopped, else a new
/// one unless the queue has stopped ones (then none).
fn queue_list(
    conn: &Db,
    settings: &QueueCallbackSettings,
    queue: &str,
    now_ms: u64,
    report: &mut AbsorbReport,
) -> Result<Option<ListId>> {
    match conn.queue_callback_list(queue)? {
        Some((_, state)) if state == "stopped" => Ok(None),
        Some((id, _)) => Ok(Some(id)),
        None => {
            let mut spec = settings.list_spec(queue);
            let base = spec.name.clone();
            let mut n = 1;
            while conn.list_name_taken(&spec.name)? {
                n += 1;
                spec.name = format!("{base}-{n}");
            }
            let list = insert_list(conn, &spec, now_ms)?;
            report.lists_created.push(list.id);
            Ok(Some(list.id))
        }
    }
}

/// The contact of request `r` on `list` (the existing one when the call already has one there).
fn contact_of(
    conn: &Db,
    list: ListId,
    r: &Unlinked,
    number: &str,
    now_ms: u64,
) -> Result<ContactId> {
    if let Some(id) = conn.contact_of_call(list, r.call_id)? {
        return Ok(id);
    }
    let mut fields = Map::new();
    fields.insert("callback_request".into(), Value::from(r.id));
    fields.insert("queue".into(), Value::from(r.queue.clone()));
    fields.insert("queued_at_ms".into(), Value::from(r.entered_at_ms));
    fields.insert("requested_at_ms".into(), Value::from(r.requested_at_ms));
    if let Some(p) = r.position {
        fields.insert("position".into(), Value::from(p));
    }
    insert_single(
        conn,
        list,
        number,
        number,
        r.name.as_deref(),
        fields,
        super::ms_from_sql(r.entered_at_ms),
        r.call_id,
        now_ms,
    )
}

#[cfg(test)]
#[path = "queue_callbacks_tests.rs"]
mod tests;
