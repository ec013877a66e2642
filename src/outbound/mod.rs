//! Outbound callback lists (campaigns): the pure, store-backed core.
//!
//! Owns: every rule about who may be called when (the `outbound_*` and `do_not_call` tables they
//! keep are the store's: schema in migration 5, statements in `crate::store::outbound`): list settings ([`lists`]), contact and do-not-call import with
//! E.164 normalisation ([`import`], [`e164`]), the do-not-call list ([`dnc`]), the contact policy decided atomically at dial time
//! ([`policy`]: calling windows and holidays in the list's time zone, daily quotas, duplicates
//! across lists, do-not-call), outcomes and retries ([`outcome`]), complaint follow-ups
//! ([`complaints`]), queue callbacks — the callback requests of queued callers turned into
//! contacts of a per-queue `queue_callback` list, dialed before other lists ([`queue_callbacks`])
//! — and the counters a lead's board and the metrics read ([`counters`]).
//!
//! Every function takes the connection the store hands over ([`Db`]: `&dyn
//! crate::store::outbound::OutboundDb`, the backend-neutral operations; the store writer's for
//! changes, a pooled reader's for reads) and the current wall-clock time as unix milliseconds
//! (`now_ms` / `at_ms`): nothing here reads a clock, so tests drive a simulated one. No SQL here:
//! each statement is a method of that trait. The functions that change state run in their own
//! transaction, which takes the write lock when it begins; so the dial-time decision
//! ([`next_contact`]) can never claim one contact twice for two dialers (or a dialer and a
//! restart). Calls are blocking: run them on a dedicated thread or in
//! `spawn_blocking`, never on the async executor.
//!
//! Must not know: SQL, SIP, media, sockets, the ACD engine, HTTP. The dialer dials what
//! [`Decision::Dial`] hands it and reports back through [`record_result`], [`record_hangup`] and
//! [`set_disposition`].

pub mod browse;
mod calendar;
pub mod complaints;
pub mod counters;
pub mod dnc;
pub mod e164;
pub mod import;
pub mod lists;
pub mod outcome;
pub mod policy;
pub mod queue_callbacks;
mod settings;
mod types;

#[cfg(test)]
pub(crate) mod testutil;

pub use browse::{attempts_of, contacts_after, offered_to};
pub use complaints::{
    complaint_follow_up, complaint_summary, open_complaints, ComplaintFollowUp, ComplaintSettings,
    ComplaintStatus, ComplaintSummary, COMPLAINT_REPLY_WITHIN_MS, COMPLAINT_RESOLVE_WITHIN_MS,
};
pub use counters::{list_counters, AttemptCounts, ContactCounts, ListCounters};
pub use dnc::{
    add_do_not_call, import_do_not_call_csv, import_do_not_call_numbers, is_do_not_call,
    remove_do_not_call,
};
pub use e164::{normalise, CountryCode, NumberError};
pub use import::{
    import_contacts_csv, import_contacts_json, ImportOptions, ImportReport, RowError,
};
pub use lists::{
    create_list, get_list, get_list_by_name, list_lists, pause_list, resume_list, stop_list, List,
    ListSpec, RetryDelays, Window,
};
pub use outcome::{
    get_attempt, link_call, reconcile_after_restart, record_hangup, record_result, set_disposition,
    Attempt, ContactNext, ReconcileReport, DISPOSITION_DONE, DISPOSITION_DO_NOT_CALL,
};
pub use policy::{get_contact, next_contact, next_contact_among, Contact, Decision, Why};
pub use queue_callbacks::{absorb_requests, AbsorbReport, QueueCallbackSettings};
pub use types::{
    AttemptId, AttemptResult, ContactId, ContactState, ListId, ListState, Mode, Purpose,
};

use thiserror::Error;

/// The connection the callback-list work runs on, handed over by the store (its writer's for
/// changes, a pooled reader's for reads: `crate::store::Store`).
pub use crate::store::outbound::Db;

/// Everything that can go wrong at this module's boundary. Policy outcomes (quota reached, window
/// closed, nothing due) are not errors: they are [`Decision::Nothing`].
#[derive(Debug, Error)]
pub enum OutboundError {
    /// The store failed (busy, closed, a database error).
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    /// A list specification failed validation; one message per problem.
    #[error("invalid callback list: {}", .0.join("; "))]
    InvalidList(Vec<String>),
    /// A bad argument (disposition, survey score, time, country code, …).
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("invalid phone number {input:?}: {reason}")]
    InvalidNumber { input: String, reason: NumberError },
    #[error("no callback list {0}")]
    NoSuchList(String),
    #[error("no contact {0}")]
    NoSuchContact(ContactId),
    #[error("no attempt {0}")]
    NoSuchAttempt(AttemptId),
    /// The request contradicts the current state (resuming a stopped list, a result for an attempt
    /// that already ended differently, a duplicate list name, …).
    #[error("{0}")]
    Conflict(String),
    /// Reading the import input failed (not a per-row problem: those are [`RowError`]s).
    #[error("reading the import: {0}")]
    Read(String),
    /// A stored value this code cannot interpret (a hand-edited database).
    #[error("stored data: {0}")]
    Corrupt(String),
}

pub type Result<T, E = OutboundError> = std::result::Result<T, E>;

/// A write transaction that takes the write lock at once: reads inside it see the state it writes
/// over.
fn write_tx(conn: &Db) -> Result<crate::store::outbound::Tx<'_>> {
    Ok(conn.write_tx()?)
}

/// Unix ms as the store keeps it.
fn sql_ms(ms: u64) -> Result<i64> {
    i64::try_from(ms).map_err(|_| OutboundError::Invalid(format!("time {ms} ms is out of range")))
}

/// Unix ms read back from the store (never negative in rows this module wrote).
fn ms_from_sql(ms: i64) -> u64 {
    u64::try_from(ms).unwrap_or(0)
}
