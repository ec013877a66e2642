//! The callback lists' operations, backend-neutral: [`OutboundDb`], one method per statement (or
//! per read of several rows) that `crate::outbound` runs — lists with their calendars, imported
//! contacts, the contact policy's claim, attempts and what their outcomes do to contacts, queue
//! callback requests, a list's board figures, do-not-call, complaint follow-ups, the API's
//! contact pages — and [`Tx`], the write transaction they run in. A backend implements the trait
//! on its connections (SQLite: `super::sqlite::outbound`, on the writer's connection for changes
//! and a pooled reader's for reads).
//!
//! The rules (validation, contact policy, retry rules, quotas) stay in `crate::outbound`, which
//! holds a [`Db`] (`&dyn OutboundDb`) and never a backend's connection type.
//!
//! Must not know: SQL, the rules of `crate::outbound`.

mod rows;

pub use rows::{AttemptRow, ContactRow, ListRecord, NewContactRow, OpenComplaint, Unlinked};

use crate::outbound::{
    AttemptId, AttemptResult, ContactId, ContactState, ListId, ListSpec, ListState,
};
use crate::store::Result;

/// The connection the callback-list work runs on, whatever the backend.
pub type Db = dyn OutboundDb;

/// One open write transaction of a backend: the connection inside it, and its end.
pub trait TxInner {
    /// The connection the transaction's statements run on.
    fn db(&self) -> &Db;
    /// Make the transaction's writes durable.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A write transaction (it derefs to the [`Db`] to run its statements on): rolled back when
/// dropped, unless committed. Reads inside it see the state it writes over: the backend takes the
/// write lock when it begins (SQLite: `BEGIN IMMEDIATE`).
pub struct Tx<'a>(Box<dyn TxInner + 'a>);

impl<'a> Tx<'a> {
    /// The transaction `inner` (for backends).
    pub fn new(inner: Box<dyn TxInner + 'a>) -> Tx<'a> {
        Tx(inner)
    }

    pub fn commit(self) -> Result<()> {
        self.0.commit()
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;

    fn deref(&self) -> &Db {
        self.0.db()
    }
}

/// What `crate::outbound` reads and writes. Times are unix ms; a range `start_ms..end_ms` is
/// half-open. Each method runs inside whatever transaction the caller holds.
pub trait OutboundDb {
    /// Begin a write transaction (not inside another one).
    fn write_tx(&self) -> Result<Tx<'_>>;

    // --- lists (`outbound_lists` with agents, windows, holidays) ---

    /// Whether a list is named `name`.
    fn list_name_taken(&self, name: &str) -> Result<bool>;
    /// Store a new list (state `active`) with its agents, windows and holidays. `secs`: the retry
    /// delays (busy, no answer, failed) and the duplicate period.
    fn insert_list(
        &self,
        spec: &ListSpec,
        secs: [i64; 4],
        windows: &[(u8, u16, u16)],
        holidays: &[String],
        now_ms: i64,
    ) -> Result<ListId>;
    /// The list named `name`.
    fn list_id_by_name(&self, name: &str) -> Result<Option<ListId>>;
    /// Every list, oldest first.
    fn list_ids(&self) -> Result<Vec<ListId>>;
    /// Set the state of list `id` (and when it changed).
    fn set_list_state(&self, id: ListId, to: ListState, now_ms: i64) -> Result<()>;
    /// List `id` as stored, if it exists.
    fn load_list(&self, id: ListId) -> Result<Option<ListRecord>>;

    // --- contacts as imported ---

    /// Whether `list` has a pending or in-progress contact of customer `customer_id`.
    fn customer_pending(&self, list: ListId, customer_id: &str) -> Result<bool>;
    /// Whether `list` has a pending or in-progress contact without customer id whose first
    /// number is `number`.
    fn number_pending(&self, list: ListId, number: &str) -> Result<bool>;
    /// Insert `c` (pending, no attempts) into `list` at `now_ms`. Returns its id.
    fn insert_contact(&self, list: ListId, c: &NewContactRow<'_>, now_ms: i64)
        -> Result<ContactId>;

    // --- the contact policy's claim ---

    /// A live attempt of `agent`, if any.
    fn live_attempt_of(&self, agent: &str) -> Result<Option<AttemptId>>;
    /// Up to 64 pending contacts of `lists` due at `now_ms`, skipping the first `offset`: queue
    /// callbacks first, then by due time (none last), list priority, import order.
    fn candidates(&self, lists: &[ListId], now_ms: i64, offset: i64) -> Result<Vec<ContactId>>;
    /// The earliest retry of a pending contact of `lists` after `now_ms`.
    fn next_retry(&self, lists: &[ListId], now_ms: i64) -> Result<Option<i64>>;
    /// Attempts of `list` (of `agent`, when given) answered in `start_ms..end_ms`, and those
    /// live and not yet answered.
    fn list_usage(
        &self,
        list: ListId,
        agent: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(i64, i64)>;
    /// Whether an attempt of another contact than `contact` for customer `customer_id` was
    /// answered since `since_ms`.
    fn customer_answered_since(
        &self,
        customer_id: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool>;
    /// Whether an attempt of another contact than `contact` to `number` was answered since
    /// `since_ms`.
    fn number_answered_since(
        &self,
        number: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool>;
    /// Whether another contact than `contact` is on a live attempt for `customer_id` or to
    /// `number`.
    fn live_elsewhere(
        &self,
        contact: ContactId,
        customer_id: Option<&str>,
        number: &str,
    ) -> Result<bool>;
    /// A policy skip of `contact` for `reason`: the record, and the contact out of dialing.
    #[allow(clippy::too_many_arguments)]
    fn skip_contact(
        &self,
        list: ListId,
        contact: ContactId,
        customer_id: Option<&str>,
        number: Option<&str>,
        reason: &str,
        now_ms: i64,
    ) -> Result<()>;
    /// A new attempt of `agent` on `contact`: the claim. Returns its id.
    #[allow(clippy::too_many_arguments)]
    fn insert_attempt(
        &self,
        list: ListId,
        contact: ContactId,
        attempt_no: u32,
        customer_id: Option<&str>,
        agent: &str,
        number: &str,
        now_ms: i64,
    ) -> Result<AttemptId>;
    /// A pending contact goes `in_progress` with `attempts`; false when it was not pending.
    fn claim_contact(&self, contact: ContactId, attempts: u32, now_ms: i64) -> Result<bool>;
    /// A contact as stored, its numbers in dialing order.
    fn load_contact(&self, id: ContactId) -> Result<Option<ContactRow>>;

    // --- attempts and what their outcomes do to contacts ---

    fn load_attempt(&self, id: AttemptId) -> Result<Option<AttemptRow>>;
    /// Link attempt `id` to ctid's call `call_id`; false when there is no such attempt.
    fn set_attempt_call(&self, id: AttemptId, call_id: i64) -> Result<bool>;
    fn attempt_ringing(&self, id: AttemptId, sip_code: Option<u16>) -> Result<()>;
    fn attempt_answered(&self, id: AttemptId, at_ms: i64, sip_code: Option<u16>) -> Result<()>;
    /// Skipped by the agent in preview: not a dial attempt (its number given back), ended.
    fn attempt_skipped_by_agent(&self, id: AttemptId, at_ms: i64) -> Result<()>;
    /// A final result (busy, no answer, rejected, failed) ends the attempt.
    fn attempt_final(
        &self,
        id: AttemptId,
        result: AttemptResult,
        sip_code: Option<u16>,
        at_ms: i64,
    ) -> Result<()>;
    fn attempt_ended(&self, id: AttemptId, at_ms: i64) -> Result<()>;
    fn attempt_disposition(
        &self,
        id: AttemptId,
        disposition: &str,
        notes: Option<&str>,
        survey_score: Option<i64>,
    ) -> Result<()>;
    /// Attempts not ended, oldest first.
    fn live_attempt_ids(&self) -> Result<Vec<AttemptId>>;
    /// Claimed, never dialed, found at a restart: a skip with reason `interrupted`.
    fn give_back_attempt(&self, id: AttemptId, at_ms: i64) -> Result<()>;
    /// Answered and live at a restart: ended, reason `interrupted`.
    fn attempt_end_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()>;
    /// Dialed, unanswered and live at a restart: failed, reason `interrupted`.
    fn attempt_fail_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()>;
    /// An `in_progress` contact goes back to pending without using up an attempt, due at
    /// `next_at_ms`.
    fn contact_given_back(&self, contact: ContactId, next_at_ms: i64, at_ms: i64) -> Result<()>;
    /// The contact is done for `reason`.
    fn contact_done(&self, contact: ContactId, reason: &str, at_ms: i64) -> Result<()>;
    fn contact_last_result(&self, contact: ContactId, result: AttemptResult) -> Result<()>;
    /// The contact ran out of attempts.
    fn contact_unreachable(
        &self,
        contact: ContactId,
        result: AttemptResult,
        at_ms: i64,
    ) -> Result<()>;
    /// The contact is pending again from `retry_at_ms`.
    fn contact_retry(
        &self,
        contact: ContactId,
        result: AttemptResult,
        retry_at_ms: i64,
        at_ms: i64,
    ) -> Result<()>;
    /// Contacts `in_progress` with no live attempt: answered, ended, awaiting a disposition.
    fn awaiting_disposition(&self) -> Result<i64>;

    // --- queue callback requests taken up by the dialer ---

    /// The pending requests not linked to a contact, oldest queue entry first.
    fn unlinked_callbacks(&self) -> Result<Vec<Unlinked>>;
    /// Request `id` failed for `reason` at `now_ms`.
    fn fail_callback(&self, id: i64, reason: &str, now_ms: i64) -> Result<()>;
    /// Request `id` is dialed as `contact`.
    fn link_callback(&self, id: i64, contact: ContactId) -> Result<()>;
    /// The `queue_callback` list of `queue` to use and its state: the oldest not stopped, else a
    /// stopped one.
    fn queue_callback_list(&self, queue: &str) -> Result<Option<(ListId, String)>>;
    /// The contact of `list` made for inbound call `call_id`, if any.
    fn contact_of_call(&self, list: ListId, call_id: i64) -> Result<Option<ContactId>>;

    // --- a list's board figures ---

    /// Contacts of `list` per state.
    fn contact_states(&self, list: ListId) -> Result<Vec<(ContactState, i64)>>;
    /// Attempts of `list` per result (`None`: claimed, no progress yet).
    fn attempt_results(&self, list: ListId) -> Result<Vec<(Option<AttemptResult>, i64)>>;
    /// Skip records of `list` per reason ("" when none).
    fn skip_reasons(&self, list: ListId) -> Result<Vec<(String, i64)>>;
    /// Attempts of `list` answered in `start_ms..end_ms`, per agent ("" when none).
    fn answered_per_agent(
        &self,
        list: ListId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, i64)>>;
    /// Attempts of `list` not yet ended.
    fn live_attempts(&self, list: ListId) -> Result<i64>;

    // --- do-not-call ---

    /// Put `e164` on the list; adding it again keeps the first `added_at` and `source`.
    fn insert_dnc(&self, e164: &str, source: &str, now_ms: i64) -> Result<()>;
    /// Take `e164` off the list; whether it was on it.
    fn delete_dnc(&self, e164: &str) -> Result<bool>;
    /// When and from where `e164` was put on the list, if it is on it.
    fn find_dnc(&self, e164: &str) -> Result<Option<(i64, String)>>;

    // --- complaint follow-ups ---

    /// The follow-up contact already added to `list` for inbound call `call_id`, with its due
    /// time.
    fn follow_up_of_call(
        &self,
        list: ListId,
        call_id: i64,
    ) -> Result<Option<(ContactId, Option<i64>)>>;
    /// The open complaints, by reply deadline (the due time, else created +
    /// `default_reply_ms`), then id.
    fn open_complaints(&self, default_reply_ms: i64) -> Result<Vec<OpenComplaint>>;

    // --- the API's contact pages ---

    /// Ids of the contacts of `list` after `after` (of `state`, when given; only those
    /// attempted by `agent`, when given), at most `limit`.
    fn contact_ids_after(
        &self,
        list: ListId,
        state: Option<ContactState>,
        after: i64,
        agent: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactId>>;
    /// Whether `agent` ever attempted `contact`.
    fn attempted_by(&self, contact: ContactId, agent: &str) -> Result<bool>;
    /// Ids of the attempts of `contact` (skip records included), oldest first.
    fn attempt_ids(&self, contact: ContactId) -> Result<Vec<AttemptId>>;
}
