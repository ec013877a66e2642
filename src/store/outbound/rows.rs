//! The rows the callback lists' operations ([`super::OutboundDb`]) take and give, as stored:
//! ids and vocabularies typed (`crate::outbound`'s), times as unix ms (`i64`).
//!
//! Must not know: SQL.

use crate::outbound::{AttemptResult, ContactId, ContactState, ListId, ListState, Mode, Purpose};

/// A list as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRecord {
    pub name: String,
    pub purpose: Purpose,
    pub queue: Option<String>,
    pub mode: Mode,
    pub time_zone: String,
    pub quota_per_day: Option<u32>,
    pub agent_quota_per_day: Option<u32>,
    pub max_attempts: u32,
    /// busy, no answer, failed retry delays and the duplicate period, in seconds.
    pub retry_busy_s: i64,
    pub retry_no_answer_s: i64,
    pub retry_failed_s: i64,
    pub dedupe_period_s: i64,
    pub priority: i32,
    pub state: ListState,
    pub created_at_ms: i64,
    pub state_changed_at_ms: i64,
    /// In the order given.
    pub agents: Vec<String>,
    /// (weekday mask with bit 0 = Monday, start minute, end minute), in the order given.
    pub windows: Vec<(u8, u16, u16)>,
    /// `YYYY-MM-DD`, sorted.
    pub holidays: Vec<String>,
}

/// A checked contact to store (pending).
#[derive(Debug, Clone, Copy)]
pub struct NewContactRow<'a> {
    pub customer_id: Option<&'a str>,
    pub name: Option<&'a str>,
    /// The extra columns, as a JSON object.
    pub fields_json: &'a str,
    pub due_at_ms: Option<i64>,
    /// Not dialed before (the first `next_attempt_at_ms`).
    pub not_before_ms: Option<i64>,
    /// The inbound call it follows up, if any.
    pub call_id: Option<i64>,
    /// In dialing order.
    pub phones: &'a [String],
}

/// A contact as stored, its numbers in dialing order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactRow {
    pub list_id: i64,
    pub customer_id: Option<String>,
    pub name: Option<String>,
    /// A JSON object.
    pub fields_json: String,
    pub due_at_ms: Option<i64>,
    pub state: ContactState,
    pub attempts: u32,
    pub next_attempt_at_ms: Option<i64>,
    pub last_result: Option<AttemptResult>,
    pub done_reason: Option<String>,
    pub call_id: Option<i64>,
    pub created_at_ms: i64,
    pub phones: Vec<String>,
}

/// An attempt (or a recorded skip) as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRow {
    pub list_id: i64,
    pub contact_id: i64,
    pub attempt_no: Option<u32>,
    pub agent: Option<String>,
    pub number: Option<String>,
    pub call_id: Option<i64>,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub result: Option<AttemptResult>,
    pub sip_code: Option<u16>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    pub survey_score: Option<i64>,
    pub reason: Option<String>,
}

/// A pending request not yet linked to a contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlinked {
    pub id: i64,
    pub call_id: i64,
    pub queue: String,
    pub number: String,
    pub name: Option<String>,
    pub entered_at_ms: i64,
    pub position: Option<i64>,
    pub requested_at_ms: i64,
}

/// A contact of a complaint list not `done`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenComplaint {
    pub contact: ContactId,
    pub list: ListId,
    pub list_name: String,
    pub call_id: Option<i64>,
    pub customer_id: Option<String>,
    /// The first of its numbers.
    pub number: Option<String>,
    pub name: Option<String>,
    pub state: ContactState,
    pub created_at_ms: i64,
    pub due_at_ms: Option<i64>,
    /// Its first answered attempt.
    pub first_answer_at_ms: Option<i64>,
}
