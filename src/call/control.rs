//! The call layer's control surface for the API: commands with a reply, and the live event feed.
//!
//! The API never touches call state: it sends a [`Control`] to the call manager's task and
//! awaits the reply; it follows what happens through [`CallEvent`]s broadcast by the manager.

use serde::Serialize;
use tokio::sync::oneshot;

/// Why a control command was refused (the API maps these to HTTP codes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum ControlError {
    /// 404
    #[error("unknown {0}")]
    NotFound(String),
    /// 409: the state does not allow it (e.g. login while the phone is not registered).
    #[error("{0}")]
    Conflict(String),
    /// 422: the request names something invalid (unknown pause reason, queue not the agent's).
    #[error("{0}")]
    Invalid(String),
}

pub type Reply<T> = oneshot::Sender<Result<T, ControlError>>;

/// What the API asks of the call manager.
#[derive(Debug)]
pub enum Control {
    /// Log an agent in to all its queues, or to `queues`.
    Login {
        agent: String,
        queues: Option<Vec<String>>,
        reply: Reply<AgentView>,
    },
    Logout {
        agent: String,
        reply: Reply<AgentView>,
    },
    /// Pause with a configured reason; during a call the pause starts when the call ends.
    Pause {
        agent: String,
        reason: String,
        reply: Reply<AgentView>,
    },
    Unpause {
        agent: String,
        reply: Reply<AgentView>,
    },
    EndWrapup {
        agent: String,
        reply: Reply<AgentView>,
    },
    /// A waiting caller to the head of its queue, or into another queue.
    MoveCall {
        call: u64,
        to_queue: Option<String>,
        reply: Reply<()>,
    },
    Agents {
        reply: Reply<Vec<AgentView>>,
    },
    Queue {
        queue: String,
        reply: Reply<QueueView>,
    },
    /// The contact shown to an agent in preview mode, if any.
    Preview {
        agent: String,
        reply: Reply<Option<PreviewView>>,
    },
    /// The agent accepts its preview: ctid rings the agent's phone, then dials the customer.
    /// Replies with the outbound call's id.
    PreviewAccept {
        agent: String,
        reply: Reply<u64>,
    },
    /// The agent skips its preview: the contact returns later, the agent gets the next one.
    PreviewSkip {
        agent: String,
        reply: Reply<()>,
    },
}

/// A contact shown to an agent before dialing (preview mode): claimed for this agent, not
/// dialed until accepted.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewView {
    pub agent: String,
    /// The attempt the contact was claimed with (a skip or a dial reports on it).
    pub attempt: i64,
    pub list: i64,
    pub list_name: String,
    /// The number ctid will dial (E.164).
    pub number: String,
    /// The whole contact: customer id, name, numbers, free fields, due time, attempts so far.
    pub contact: crate::outbound::Contact,
    /// Unix ms when the contact was shown, and when it goes back unless accepted or skipped.
    pub shown_at_ms: u64,
    pub expires_at_ms: u64,
}

/// One agent on the board.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    /// logged_out, available, ringing, on_call, wrapup, paused
    pub state: String,
    /// Pause reason when paused.
    pub reason: Option<String>,
    /// A pause asked during a call, starting when it ends.
    pub pending_pause: Option<String>,
    /// Unix ms when the agent entered this state.
    pub since_ms: u64,
    /// The call the agent is on or ringing for.
    pub call: Option<u64>,
    /// Calls answered since ctid started today.
    pub calls_answered: u64,
    /// The phone has a registered binding.
    pub registered: bool,
}

/// A queue right now: its waiting callers in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueView {
    pub queue: String,
    pub waiting: Vec<WaitingCaller>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WaitingCaller {
    pub call: u64,
    pub position: usize,
    pub caller_number: Option<String>,
    pub caller_name: Option<String>,
    pub priority: i32,
    pub wait_secs: f64,
}

/// Something that happened, for the live event stream (the API numbers them).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CallEvent {
    CallEntered {
        call: u64,
        queue: String,
        caller_number: Option<String>,
    },
    CallOffered {
        call: u64,
        agent: String,
    },
    CallAnswered {
        call: u64,
        agent: String,
        wait_secs: f64,
    },
    CallAbandoned {
        call: u64,
        queue: String,
        wait_secs: f64,
    },
    CallLeft {
        call: u64,
        queue: String,
        outcome: String,
        wait_secs: f64,
    },
    CallEnded {
        call: u64,
        by: String,
    },
    AgentState {
        agent: String,
        state: String,
        reason: Option<String>,
    },
    QueueFigures {
        queue: String,
        waiting: usize,
        longest_wait_secs: f64,
    },
    /// A preview contact is shown to an agent (its desktop fetches the details from
    /// `GET /api/v1/agents/{id}/preview`).
    PreviewOffered {
        agent: String,
        attempt: i64,
        list: String,
        expires_at_ms: u64,
    },
    /// The preview ended: `accepted`, `skipped`, `timeout` or `withdrawn` (the agent's state
    /// changed, e.g. a pause or a logout).
    PreviewEnded {
        agent: String,
        attempt: i64,
        how: String,
    },
}
