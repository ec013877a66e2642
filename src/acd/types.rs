//! The public vocabulary of the ACD: ids, settings, agent states, inputs, actions, errors.

use std::fmt;
use std::time::Duration;

/// A call known to the engine (chosen by the call actor, unique while the call is active).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(pub u64);

/// An agent (seat) id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AgentId(pub String);

/// A queue id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueueId(pub String);

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for AgentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for AgentId {
    fn from(s: &str) -> Self {
        AgentId(s.to_owned())
    }
}

impl From<&str> for QueueId {
    fn from(s: &str) -> Self {
        QueueId(s.to_owned())
    }
}

/// How a queue picks among its free members when it has a call to offer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// The member idle the longest since its last call ended (or its login).
    #[default]
    LongestIdle,
    /// Rotate through the members in configured order, remembering the position.
    RoundRobin,
    /// Ring every free member at once; the first answer wins.
    RingAll,
    /// Fewest answered calls since login, then longest idle.
    FewestCalls,
    /// Uniformly among the free members (seeded).
    Random,
    /// Tier 0 first; one more tier allowed after each `widen_after` of waiting; then lowest
    /// tier, then longest idle.
    SkillTiers,
}

/// Where a call goes when it waited `max_wait`, is refused, or its queue emptied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Leave the queue; the call actor hangs up with this SIP cause.
    Hangup { cause: u16 },
    /// Continue waiting in that queue (original entry time and priority kept).
    Queue(QueueId),
}

/// A queue member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub agent: AgentId,
    /// Skill tier / penalty: 0 = best. Used by [`Strategy::SkillTiers`].
    pub tier: u32,
}

/// Configuration of one queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueSettings {
    pub id: QueueId,
    pub strategy: Strategy,
    pub members: Vec<Member>,
    /// Tie-breaker between queues whose best calls entered at the same instant (higher first).
    pub weight: u32,
    /// Service-level target; only reported.
    pub sl_target: Duration,
    /// Per offer; must not be zero.
    pub ring_timeout: Duration,
    /// After every call of this queue, before the agent's next offer.
    pub wrapup: Duration,
    /// Callers beyond this many waiting are refused (`Rejected` or overflow).
    pub max_waiting: Option<usize>,
    /// After this long in this queue a waiting call leaves (overflow target or `Timeout`).
    pub max_wait: Option<Duration>,
    /// `false`: a call arriving while no member is logged in and unpaused is refused at once.
    pub join_empty: bool,
    /// `true`: waiting calls leave when the last logged-in unpaused member logs out or pauses.
    pub leave_empty: bool,
    /// Where a call goes at `max_wait`, when refused or emptied; `None`: `Timeout`/`Rejected`.
    pub overflow: Option<Overflow>,
    /// SkillTiers: one more tier is allowed after each `widen_after` of waiting (0 = all at once).
    pub widen_after: Duration,
    /// Consecutive ring-no-answers before the agent is paused with reason `no_answer` (0 = never).
    pub max_missed: u32,
}

impl QueueSettings {
    /// Settings with the defaults: longest-idle, no members, 15 s SL target and ring timeout,
    /// no wrap-up, no limits, join on empty, no overflow.
    pub fn new(id: impl Into<String>) -> Self {
        QueueSettings {
            id: QueueId(id.into()),
            strategy: Strategy::LongestIdle,
            members: Vec::new(),
            weight: 0,
            sl_target: Duration::from_secs(15),
            ring_timeout: Duration::from_secs(15),
            wrapup: Duration::ZERO,
            max_waiting: None,
            max_wait: None,
            join_empty: true,
            leave_empty: false,
            overflow: None,
            widen_after: Duration::from_secs(30),
            max_missed: 0,
        }
    }
}

/// The state of a seat.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum AgentState {
    LoggedOut,
    Available,
    Ringing,
    OnCall,
    Wrapup,
    Paused(String),
}

impl AgentState {
    /// Every kind name, in the order [`Engine::agents_by_state`](super::Engine::agents_by_state) reports them.
    pub const KINDS: [&'static str; 6] = [
        "logged_out",
        "available",
        "ringing",
        "on_call",
        "wrapup",
        "paused",
    ];

    /// The state's kind name (a small fixed set, usable as a metric label).
    pub fn kind(&self) -> &'static str {
        Self::KINDS[self.kind_index()]
    }

    pub(super) fn kind_index(&self) -> usize {
        match self {
            AgentState::LoggedOut => 0,
            AgentState::Available => 1,
            AgentState::Ringing => 2,
            AgentState::OnCall => 3,
            AgentState::Wrapup => 4,
            AgentState::Paused(_) => 5,
        }
    }
}

/// What the driver tells the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// `queues: None` = all queues the agent is a member of; ignored unless logged out.
    AgentLogin {
        agent: AgentId,
        queues: Option<Vec<QueueId>>,
    },
    /// Immediate, except on a call: then it takes effect when the call ends (no wrap-up).
    AgentLogout {
        agent: AgentId,
    },
    /// A pause asked while ringing/on call/in wrap-up is pending and takes effect when the
    /// agent would become available.
    AgentPause {
        agent: AgentId,
        reason: String,
    },
    /// Ends a pause, or cancels a pending one.
    AgentUnpause {
        agent: AgentId,
    },
    EndWrapup {
        agent: AgentId,
    },
    /// `priority`: higher first, FIFO within a priority.
    CallArrived {
        call: CallId,
        queue: QueueId,
        priority: i32,
    },
    /// Caller hung up while waiting or while an agent rang (the engine emits `CancelOffer` for
    /// the ringing agents). On a connected call it is taken as `CallEnded`.
    CallAbandoned {
        call: CallId,
    },
    /// The offered agent answered: the call is connected to it; other ringing agents get
    /// `CancelOffer`.
    OfferAnswered {
        call: CallId,
        agent: AgentId,
    },
    /// The offered agent is busy/declined/unreachable: the call goes to the next agent at once,
    /// the agent becomes available again; a miss is counted only if `counts_as_miss`.
    OfferFailed {
        call: CallId,
        agent: AgentId,
        counts_as_miss: bool,
    },
    /// The talk ended (either side hung up): the agent goes to wrap-up (or straight on if the
    /// queue's wrap-up is 0). On a call still waiting it is taken as `CallAbandoned`.
    CallEnded {
        call: CallId,
    },
    /// Supervisor: make a waiting call first in its queue.
    MoveToFront {
        call: CallId,
    },
    /// Supervisor: move a waiting call to another queue (no admission checks; ringing offers
    /// are cancelled with [`CancelReason::Moved`]).
    MoveToQueue {
        call: CallId,
        queue: QueueId,
    },
}

/// How a call left the queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Answered,
    Abandoned,
    /// `max_wait` passed or the queue emptied (`leave_empty`), no overflow configured.
    Timeout,
    /// Left through a [`Overflow::Hangup`] rule of this queue (max wait, refusal or emptied);
    /// `hangup_cause` carries the cause. Overflow to a queue emits `Moved` instead.
    Overflow(QueueId),
    /// Refused on entry (`max_waiting`, `join_empty`), no overflow configured.
    Rejected,
}

/// Why an offer stopped ringing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CancelReason {
    Timeout,
    AnsweredElsewhere,
    CallerGone,
    /// The agent logged out while ringing.
    AgentGone,
    /// A supervisor moved the call to another queue.
    Moved,
}

/// What the engine asks the driver to do / reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Ring this agent for this call (several at once for ring-all).
    Offer {
        call: CallId,
        agent: AgentId,
    },
    /// Stop ringing this agent.
    CancelOffer {
        call: CallId,
        agent: AgentId,
        reason: CancelReason,
    },
    /// The agent did not answer in time (comes with `CancelOffer { reason: Timeout }`).
    OfferMissed {
        call: CallId,
        agent: AgentId,
    },
    Connected {
        call: CallId,
        agent: AgentId,
        wait: Duration,
    },
    /// The call left the queues for good (exactly once per call). `wait` counts from entering
    /// the first queue; `queue` is the last queue.
    Left {
        call: CallId,
        queue: QueueId,
        outcome: Outcome,
        wait: Duration,
        hangup_cause: Option<u16>,
    },
    /// The call continues in another queue (overflow or supervisor move).
    Moved {
        call: CallId,
        from: QueueId,
        to: QueueId,
    },
    AgentStateChanged {
        agent: AgentId,
        state: AgentState,
    },
}

/// Configuration errors of [`Engine::new`](super::Engine::new).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AcdError {
    #[error("duplicate queue id {0}")]
    DuplicateQueue(QueueId),
    #[error("duplicate agent id {0}")]
    DuplicateAgent(AgentId),
    #[error("queue {queue}: unknown member {agent}")]
    UnknownMember { queue: QueueId, agent: AgentId },
    #[error("queue {queue}: member {agent} listed twice")]
    DuplicateMember { queue: QueueId, agent: AgentId },
    #[error("queue {queue}: overflow to unknown queue {target}")]
    UnknownOverflowQueue { queue: QueueId, target: QueueId },
    #[error("queue {0}: overflow to itself")]
    OverflowToSelf(QueueId),
    #[error("queue {0}: ring_timeout must not be zero")]
    ZeroRingTimeout(QueueId),
}
