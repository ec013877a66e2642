//! The query interface of the store, backend-neutral: what the reports ([`ReportReads`]), the
//! call-record routes of the HTTP API ([`CallRecords`]) and the live figures at start
//! ([`StatsReads`]) read, as typed rows. A backend implements these traits on its reader (the
//! SQLite one: [`super::Reader`]).
//!
//! Times are unix milliseconds (`i64`, as stored); a range `start_ms..end_ms` is half-open.
//! Large scans hand their rows to a visitor (`f`) one by one instead of collecting them, so a
//! month of a big center is read in constant memory.
//!
//! Must not know: SQL, report arithmetic, HTTP.

use serde::Serialize;
use std::collections::BTreeSet;

use super::Result;

/// One call of a queue report's scan (a call that entered a queue in the period).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueCall<'a> {
    pub queue: &'a str,
    /// Index of its interval: `(entered_at_ms - start_ms) / step_ms`.
    pub bucket: i64,
    /// How it left the queue: `answered`, `abandoned`, `timeout`, `overflow`, `rejected`,
    /// `callback_requested`; a live or interrupted call that was answered counts as `answered`.
    /// Calls with none of these are not visited.
    pub outcome: &'a str,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    /// The stored outcome is `answered` (not a live or interrupted call counted as answered).
    pub really_answered: bool,
    pub answered_in_target: bool,
    pub short_abandon: bool,
}

/// One answered call of an agent report's scan.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgentCall<'a> {
    pub agent: &'a str,
    pub talk_ms: Option<i64>,
    pub answered_at_ms: i64,
    pub survey_score: Option<i64>,
}

/// Time an agent spent in sessions of one kind (and pause reason), clipped to a period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionTotal {
    pub agent: String,
    /// `login` or `pause`.
    pub kind: String,
    /// The pause reason, "" when none.
    pub reason: String,
    pub ms: i64,
}

/// One value of a call detail record, in [`CallRecords::each_cdr`]'s column order.
#[derive(Debug, Clone, PartialEq)]
pub enum CdrValue<'a> {
    Null,
    Integer(i64),
    Real(f64),
    /// Text as stored (bytes that are not UTF-8 shown with replacement characters).
    Text(std::borrow::Cow<'a, str>),
}

/// A callback list as the reports see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: i64,
    pub name: String,
    pub purpose: String,
    pub state: String,
    pub queue: Option<String>,
    pub quota: Option<u32>,
    pub agent_quota: Option<u32>,
    pub created_at_ms: i64,
    /// When stopped: since when.
    pub stopped_at_ms: Option<i64>,
}

/// What happened on a list, for its per-day figures (see [`ReportReads::list_events`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListEventKind {
    /// A contact was created.
    ContactAdded,
    /// An attempt started (a dial, or a skip record with its `reason`).
    AttemptStarted,
    /// An attempt was answered.
    Connect,
    /// A contact finished `done` or `unreachable` (its last update).
    ContactFinished,
    /// A dial attempt ended and left its contact to be dialed again.
    RetryScheduled,
}

/// A queue callback request taken up by a list (see [`ReportReads::list_callback_requests`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCallbackRow {
    pub status: String,
    pub requested_at_ms: i64,
    pub done_at_ms: Option<i64>,
}

/// A complaint follow-up contact (see [`ReportReads::list_complaints`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintRow {
    pub created_at_ms: i64,
    /// Its reply deadline: the imported due time, else created + the default reply time.
    pub due_at_ms: i64,
    pub state: String,
    pub updated_at_ms: i64,
    /// The first answered attempt.
    pub first_answer_at_ms: Option<i64>,
}

/// What `crate::report` reads.
pub trait ReportReads {
    /// Every call that entered a queue (`queue` only, when given) in `start_ms..end_ms`.
    fn each_queue_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        queue: Option<&str>,
        f: &mut dyn FnMut(QueueCall<'_>),
    ) -> Result<()>;

    /// Every callback request whose caller entered the queue in the range: (queue, bucket).
    fn each_callback_request(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        queue: Option<&str>,
        f: &mut dyn FnMut(&str, i64),
    ) -> Result<()>;

    /// Every answered call with an agent that entered in the range.
    fn each_agent_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        agent: Option<&str>,
        queue: Option<&str>,
        f: &mut dyn FnMut(AgentCall<'_>),
    ) -> Result<()>;

    /// Session time per (agent, kind, reason) clipped to the range; open sessions count until
    /// `now_ms`.
    fn session_totals(
        &self,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
        agent: Option<&str>,
    ) -> Result<Vec<SessionTotal>>;

    /// Lists created before `before_ms` (only the one named, when given), by name; none when
    /// the store has no lists at all.
    fn report_lists(&self, before_ms: i64, name: Option<&str>) -> Result<Vec<ListRow>>;

    /// A list's calling days: the union of its windows' weekday masks (bit 0 = Monday) and its
    /// holidays (`YYYY-MM-DD`).
    fn list_calendar(&self, list: i64) -> Result<(i64, BTreeSet<String>)>;

    /// The times of events of `kind` on `list` in the range, with (for `AttemptStarted`) the
    /// result and reason and (for `ContactFinished`) the state; "" when absent.
    fn list_events(
        &self,
        list: i64,
        kind: ListEventKind,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, String, String)>>;

    /// Contacts per state among those the range touched (created, or an attempt started).
    fn list_contact_states(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, u64)>>;

    /// The queue callback requests `list` took up, requested in the range.
    fn list_callback_requests(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ListCallbackRow>>;

    /// The contacts of complaint list `list` created in the range; `default_reply_ms` is added
    /// to the creation time of those imported without a due time.
    fn list_complaints(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
        default_reply_ms: i64,
    ) -> Result<Vec<ComplaintRow>>;

    /// Every (agent, list id) assignment.
    fn list_agents(&self) -> Result<Vec<(String, i64)>>;

    /// Per (agent, list id): dial attempts started in the range (`connects` false, skips not
    /// included) or attempts answered in it (`connects` true).
    fn agent_list_counts(
        &self,
        start_ms: i64,
        end_ms: i64,
        connects: bool,
    ) -> Result<Vec<(String, i64, u64)>>;
}

/// A stored call, as the HTTP API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub id: u64,
    pub sip_call_id: String,
    pub direction: String,
    pub caller_number: Option<String>,
    pub caller_name: Option<String>,
    pub dialed_number: Option<String>,
    pub queue: Option<String>,
    pub entered_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub answered_in_target: Option<bool>,
    pub short_abandon: Option<bool>,
    pub hangup_by: Option<String>,
    pub hangup_cause: Option<String>,
    pub sip_code: Option<i64>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    /// The call's recording, if the queue records (download: GET /api/v1/calls/{id}/recording).
    pub recording_path: Option<String>,
    pub recording_error: Option<String>,
    /// Post-call survey: 1 very satisfied … 5 very dissatisfied.
    pub survey_score: Option<i64>,
}

/// One entry of a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEventRow {
    pub at_ms: i64,
    pub kind: String,
    pub agent: Option<String>,
    pub detail: Option<String>,
}

/// Filters of `GET /api/v1/calls`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// entered_at_ms >= from
    pub from: Option<i64>,
    /// entered_at_ms < to
    pub to: Option<i64>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    /// Part of the caller's number.
    pub caller: Option<String>,
    pub limit: usize,
    /// Continue after this (entered_at_ms, id).
    pub cursor: Option<(i64, i64)>,
}

/// The call records: the HTTP API's pages and the CDR export.
pub trait CallRecords {
    /// Calls matching `f`, newest first: at most `f.limit + 1` (one more tells there is a next
    /// page).
    fn calls(&self, f: &CallFilter) -> Result<Vec<CallRecord>>;

    fn call(&self, id: u64) -> Result<Option<CallRecord>>;

    /// A call's events in the order they were written.
    fn call_events(&self, id: u64) -> Result<Vec<CallEventRow>>;

    /// Every call that entered in the range, oldest first, as the CDR columns
    /// (`crate::report::export::COLUMNS`, `entered_at` given as the raw `entered_at_ms`).
    /// `f` returns false to stop. Returns how many rows were visited.
    fn each_cdr(
        &self,
        start_ms: i64,
        end_ms: i64,
        f: &mut dyn FnMut(&[CdrValue<'_>]) -> bool,
    ) -> Result<u64>;
}

/// A call for rebuilding the live figures at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsCall {
    pub queue: String,
    pub outcome: Option<String>,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub answered_in_target: bool,
    pub short_abandon: bool,
}

/// What `crate::stats` reads at start.
pub trait StatsReads {
    /// Every call with a queue that entered in the range.
    fn each_stats_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        f: &mut dyn FnMut(StatsCall),
    ) -> Result<()>;
}

/// One queue callback request (`callback_requests`), as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallbackRequestRow {
    pub id: i64,
    /// The inbound call the caller left.
    pub call_id: i64,
    pub caller_number: String,
    pub caller_name: Option<String>,
    /// When the caller joined the queue: requests are served in this order.
    pub entered_at_ms: i64,
    /// The caller's position in the queue when asking.
    pub position: Option<i64>,
    pub requested_at_ms: i64,
    /// pending, in_progress (being dialed), done (an attempt was answered) or failed.
    pub status: String,
    /// Dial attempts so far.
    pub attempts: i64,
    pub last_result: Option<String>,
    /// Why done or failed: `answered`, `max_attempts`, `do_not_call`, `invalid_number: …`.
    pub reason: Option<String>,
    pub done_at_ms: Option<i64>,
    /// The contact and callback list dialing it, once the dialer took it up.
    pub contact_id: Option<i64>,
    pub list: Option<String>,
}

/// The open callback requests of a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenCallbacks {
    pub pending: i64,
    pub in_progress: i64,
    /// `entered_at_ms` of the oldest pending one.
    pub oldest: Option<i64>,
}

/// The queue callback requests.
pub trait CallbackReads {
    /// Per queue (only `queue`, when given) with open requests: their counts.
    fn open_callbacks(&self, queue: Option<&str>) -> Result<Vec<(String, OpenCallbacks)>>;

    /// The requests (of `queue`, of `status`, when given) with their queue, by queue and then
    /// in the order the callers joined it.
    fn callback_requests(
        &self,
        queue: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<(String, CallbackRequestRow)>>;
}
