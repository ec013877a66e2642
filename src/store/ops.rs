//! The writes of the store's interface, backend-neutral: [`CallOp`] (the call records, sent by
//! the call layer) and [`ApiOp`] (audit rows, dispositions and agent sessions, sent by the HTTP
//! API). A backend's writer applies them in order (SQLite: `sqlite/calls.rs`, `sqlite/api.rs`).
//!
//! Must not know: SQL.

/// A change to the call records. Ids are ctid's call ids, not SIP Call-IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOp {
    /// A call entered ctid. Idempotent: a second `Started` for the same id is ignored.
    Started {
        id: u64,
        sip_call_id: String,
        /// `"inbound"` or `"outbound"`.
        direction: &'static str,
        caller_number: Option<String>,
        caller_name: Option<String>,
        dialed_number: Option<String>,
        queue: Option<String>,
        /// Wall clock, unix ms.
        entered_at_ms: u64,
    },
    /// Something happened to the call (`entered`, `offered`, `missed`, `answered`, `hold`, …).
    /// The call must have been `Started`.
    Event {
        id: u64,
        at_ms: u64,
        kind: &'static str,
        agent: Option<String>,
        detail: Option<String>,
    },
    /// An agent took the call.
    Answered {
        id: u64,
        answered_at_ms: u64,
        agent: String,
        /// Monotonic: entering the queue -> answered.
        wait_ms: u64,
        in_target: bool,
    },
    /// The call is over. Also sets queue (a call may have moved by overflow).
    /// `queue: None` and `wait_ms: None` keep what the row already has.
    Ended {
        id: u64,
        ended_at_ms: u64,
        /// answered | abandoned | timeout | overflow | rejected
        outcome: &'static str,
        queue: Option<String>,
        wait_ms: Option<u64>,
        talk_ms: Option<u64>,
        short_abandon: Option<bool>,
        /// caller | agent | ctid
        hangup_by: Option<&'static str>,
        hangup_cause: Option<String>,
        sip_code: Option<u16>,
    },
    /// The call's recording: its path when it starts, and an error if it failed.
    Recording {
        id: u64,
        path: Option<String>,
        error: Option<String>,
    },
    /// The caller's answer to the satisfaction survey (1 very satisfied … 5 very dissatisfied).
    Survey { id: u64, score: u8 },
    /// RTP receive figures per leg, when the call's media ended.
    Quality {
        id: u64,
        caller_lost: u64,
        /// Interarrival jitter in microseconds (stored in ms).
        caller_jitter_us: u64,
        agent_lost: Option<u64>,
        agent_jitter_us: Option<u64>,
    },
    /// A waiting caller asked to be called back (queue callback).
    CallbackRequested {
        id: u64,
        queue: String,
        caller_number: String,
        caller_name: Option<String>,
        entered_at_ms: u64,
        position: Option<u32>,
        requested_at_ms: u64,
    },
}

impl CallOp {
    pub fn call_id(&self) -> u64 {
        match self {
            CallOp::Started { id, .. }
            | CallOp::Event { id, .. }
            | CallOp::Answered { id, .. }
            | CallOp::Ended { id, .. }
            | CallOp::Recording { id, .. }
            | CallOp::Survey { id, .. }
            | CallOp::Quality { id, .. }
            | CallOp::CallbackRequested { id, .. } => *id,
        }
    }

    /// For logs: the variant's name (the op itself may carry phone numbers).
    pub fn kind(&self) -> &'static str {
        match self {
            CallOp::Started { .. } => "started",
            CallOp::Event { .. } => "event",
            CallOp::Answered { .. } => "answered",
            CallOp::Ended { .. } => "ended",
            CallOp::Recording { .. } => "recording",
            CallOp::Survey { .. } => "survey",
            CallOp::Quality { .. } => "quality",
            CallOp::CallbackRequested { .. } => "callback_requested",
        }
    }
}

/// A write on behalf of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiOp {
    /// One state-changing request, whatever came of it.
    Audit {
        at_ms: u64,
        /// agent | supervisor | wallboard, or None when the caller was not authenticated.
        token_role: Option<String>,
        /// The agent a role-`agent` token belongs to.
        agent: Option<String>,
        /// e.g. `agent.pause`, `call.disposition`.
        action: String,
        /// What it acted on (an agent id, a call id).
        target: Option<String>,
        /// The client's address, when known.
        from_addr: Option<String>,
        /// `ok`, or the error code answered (`forbidden`, `conflict`, ...).
        result: String,
    },
    /// Sets a call's disposition code and notes. The call must exist.
    Disposition {
        call: u64,
        code: String,
        notes: Option<String>,
    },
    /// An agent session (`login` or `pause`) starts.
    SessionStart {
        agent: String,
        kind: &'static str,
        reason: Option<String>,
        started_at_ms: u64,
    },
    /// Closes the agent's open sessions of `kind` (no-op when none is open).
    SessionEnd {
        agent: String,
        kind: &'static str,
        ended_at_ms: u64,
    },
}

impl ApiOp {
    /// For logs, without personal data.
    pub fn describe(&self) -> String {
        match self {
            ApiOp::Audit { action, .. } => format!("audit {action}"),
            ApiOp::Disposition { call, .. } => format!("call {call} disposition"),
            ApiOp::SessionStart { kind, .. } => format!("{kind} session start"),
            ApiOp::SessionEnd { kind, .. } => format!("{kind} session end"),
        }
    }
}

/// What a writer job ([`crate::store::Job`]) runs on: the writer's connection, whatever the
/// backend, outside any batch transaction.
pub trait WriteDb {
    /// The callback lists' operations on the writer's connection.
    fn outbound(&self) -> &crate::store::outbound::Db;

    /// Retention: delete at most `batch` ended calls that entered before `cutoff_ms`, with their
    /// events and recordings, in one short transaction. Returns how many calls went (0 when
    /// nothing is left to purge).
    fn purge_batch(&self, cutoff_ms: u64, batch: usize) -> crate::store::Result<usize>;

    /// After a job panicked: roll back a transaction it left open (it would swallow the next
    /// batches).
    fn recover(&self);
}
