//! ACD: the pure queue engine of the call center.
//!
//! Owns: queues of waiting callers (priority, then FIFO), seats/agents and their state machine
//! (logged out → available → ringing → on call → wrap-up, pauses, pending pause/logout), routing
//! strategies, ring timeouts, wrap-up timers, max-wait / overflow / refusal rules and the
//! per-queue views used by metrics and the API.
//!
//! Must not know: SIP, RTP, SQL, tokio, sockets or the wall clock. It is sans-IO and
//! deterministic: time comes in as `now: Instant`, randomness (the `Random` strategy) from the
//! seed given to [`Engine::new`]. A driver feeds [`Input`]s with [`Engine::handle`], drains
//! [`Action`]s with [`Engine::poll_action`] and calls [`Engine::handle_timeout`] once the instant
//! returned by [`Engine::poll_timeout`] has passed (timers fire only there, never inside `handle`).
//!
//! Routing: when an agent becomes available it takes the longest-waiting eligible call across the
//! queues it is logged into (each queue's first call in priority/FIFO order, then the earliest
//! entry, then the higher queue weight); when a call enters a queue, is released by an offer or
//! its skill tier widens, the queue offers its head calls to its free members by its strategy.
//! After every input no available agent is left beside a call it could ring for.
//!
//! Choices the interface leaves open:
//! - `max_wait` counts from entering the current queue (a call that overflowed gets the target's
//!   full `max_wait`); skill-tier widening, `Left.wait`/`Connected.wait` and the FIFO order count
//!   from entering the first queue.
//! - A refusal, max wait or emptied queue with [`Overflow::Hangup`] ends in
//!   [`Outcome::Overflow`] (the queue whose rule applied) with its `hangup_cause`; without an
//!   overflow rule in `Rejected` (refused) or `Timeout`. Overflow hops at one instant are capped
//!   at the number of queues, so overflow cycles end (in `Rejected`/`Timeout`).
//! - Logout during a call takes effect when the call ends; while ringing, the offer is cancelled
//!   ([`CancelReason::AgentGone`]). `CallEnded` on a waiting call counts as an abandon,
//!   `CallAbandoned` on a connected call as its end.
//! - After `max_missed` misses the agent is paused `no_answer` and its miss count restarts.
//!
//! Cost per event: index lookups are `O(1)`/`O(log n)` (hash maps by id, B-trees for queue order
//! and timers); routing looks only at the members of the affected queues and at the calls of
//! those queues that ring someone (at most one per member), never at all calls. Only
//! `leave_empty` touches every call of the emptied queue, and `queue_position` is `O(position)`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::SeedableRng;

mod agent;
mod calls;
#[cfg(test)]
mod proptests;
mod queue;
mod strategy;
#[cfg(test)]
mod tests;
mod types;

use agent::Agent;
use queue::{CallEntry, MemberSlot, OverflowTo, Queue};
pub use types::{
    AcdError, Action, AgentId, AgentState, CallId, CancelReason, Input, Member, Outcome, Overflow,
    QueueId, QueueSettings, Strategy,
};

/// A pending timer; the key `(deadline, sequence)` is stored by its owner for removal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    Ring { call: CallId, agent: usize },
    MaxWait(CallId),
    Widen(CallId),
    Wrapup(usize),
}

type TimerKey = (Instant, u64);

/// A call connected to an agent, kept until `CallEnded`.
#[derive(Clone, Copy, Debug)]
struct ConnectedCall {
    agent: usize,
    queue: usize,
}

/// The ACD engine. See the module documentation.
#[derive(Debug)]
pub struct Engine {
    queues: Vec<Queue>,
    queue_ix: HashMap<QueueId, usize>,
    agents: Vec<Agent>,
    agent_ix: HashMap<AgentId, usize>,
    /// Calls waiting in a queue (possibly ringing agents).
    waiting_calls: HashMap<CallId, CallEntry>,
    connected: HashMap<CallId, ConnectedCall>,
    timers: BTreeMap<TimerKey, Timer>,
    next_timer: u64,
    next_seq: u64,
    actions: VecDeque<Action>,
    rng: StdRng,
    ignored: u64,
}

impl Engine {
    /// Builds the engine; every member must be in `agents`, ids must be unique and overflow
    /// targets must exist and differ from their queue. All agents start logged out.
    pub fn new(
        queues: Vec<QueueSettings>,
        agents: Vec<AgentId>,
        seed: u64,
    ) -> Result<Engine, AcdError> {
        let mut agent_ix = HashMap::with_capacity(agents.len());
        let mut agent_list = Vec::with_capacity(agents.len());
        for id in agents {
            if agent_ix.insert(id.clone(), agent_list.len()).is_some() {
                return Err(AcdError::DuplicateAgent(id));
            }
            agent_list.push(Agent::new(id));
        }
        let mut queue_ix = HashMap::with_capacity(queues.len());
        for (i, q) in queues.iter().enumerate() {
            if queue_ix.insert(q.id.clone(), i).is_some() {
                return Err(AcdError::DuplicateQueue(q.id.clone()));
            }
        }
        let mut queue_list = Vec::with_capacity(queues.len());
        for (qi, settings) in queues.into_iter().enumerate() {
            if settings.ring_timeout.is_zero() {
                return Err(AcdError::ZeroRingTimeout(settings.id));
            }
            let overflow = match &settings.overflow {
                None => None,
                Some(Overflow::Hangup { cause }) => Some(OverflowTo::Hangup(*cause)),
                Some(Overflow::Queue(target)) => match queue_ix.get(target) {
                    None => {
                        return Err(AcdError::UnknownOverflowQueue {
                            queue: settings.id.clone(),
                            target: target.clone(),
                        })
                    }
                    Some(&t) if t == qi => return Err(AcdError::OverflowToSelf(settings.id)),
                    Some(&t) => Some(OverflowTo::Queue(t)),
                },
            };
            let mut members: Vec<MemberSlot> = Vec::with_capacity(settings.members.len());
            for m in &settings.members {
                let Some(&a) = agent_ix.get(&m.agent) else {
                    return Err(AcdError::UnknownMember {
                        queue: settings.id.clone(),
                        agent: m.agent.clone(),
                    });
                };
                if members.iter().any(|s| s.agent == a) {
                    return Err(AcdError::DuplicateMember {
                        queue: settings.id.clone(),
                        agent: m.agent.clone(),
                    });
                }
                agent_list[a].memberships.push((qi, members.len()));
                members.push(MemberSlot {
                    agent: a,
                    tier: m.tier,
                    logged_in: false,
                });
            }
            queue_list.push(Queue::new(settings, members, overflow));
        }
        Ok(Engine {
            queues: queue_list,
            queue_ix,
            agents: agent_list,
            agent_ix,
            waiting_calls: HashMap::new(),
            connected: HashMap::new(),
            timers: BTreeMap::new(),
            next_timer: 0,
            next_seq: 0,
            actions: VecDeque::new(),
            rng: StdRng::seed_from_u64(seed),
            ignored: 0,
        })
    }

    /// Applies one input. Unknown ids and invalid transitions are ignored and counted
    /// ([`Engine::ignored_inputs`]).
    pub fn handle(&mut self, now: Instant, input: Input) {
        let applied = match input {
            Input::AgentLogin { agent, queues } => self.on_login(now, &agent, queues),
            Input::AgentLogout { agent } => self.on_logout(now, &agent),
            Input::AgentPause { agent, reason } => self.on_pause(now, &agent, reason),
            Input::AgentUnpause { agent } => self.on_unpause(now, &agent),
            Input::EndWrapup { agent } => self.on_end_wrapup(now, &agent),
            Input::CallArrived {
                call,
                queue,
                priority,
            } => self.on_arrived(now, call, &queue, priority),
            Input::CallAbandoned { call } => self.on_abandoned(now, call),
            Input::OfferAnswered { call, agent } => self.on_answered(now, call, &agent),
            Input::OfferFailed {
                call,
                agent,
                counts_as_miss,
            } => self.on_failed(now, call, &agent, counts_as_miss),
            Input::CallEnded { call } => self.on_ended(now, call),
            Input::MoveToFront { call } => self.on_move_to_front(now, call),
            Input::MoveToQueue { call, queue } => self.on_move_to_queue(now, call, &queue),
        };
        if !applied {
            self.ignored += 1;
        }
    }

    /// The next action for the driver, in the order they were decided.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earliest pending timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(k, _)| k.0)
    }

    /// Fires every timer due at `now` that existed before this call (a timer armed while
    /// handling them waits for the next call, so a zero duration cannot loop).
    pub fn handle_timeout(&mut self, now: Instant) {
        let limit = self.next_timer;
        while let Some((&key, &timer)) = self.timers.first_key_value() {
            if key.0 > now || key.1 >= limit {
                break;
            }
            self.timers.remove(&key);
            self.fire(now, key, timer);
        }
    }

    fn fire(&mut self, now: Instant, key: TimerKey, timer: Timer) {
        match timer {
            Timer::Ring { call, agent } => self.on_ring_timeout(now, call, agent, key),
            Timer::MaxWait(call) => self.on_max_wait(now, call, key),
            Timer::Widen(call) => self.on_widen(now, call, key),
            Timer::Wrapup(agent) => self.on_wrapup_timer(now, agent, key),
        }
    }

    /// The agent's state, `None` for an unknown agent.
    pub fn agent_state(&self, agent: &AgentId) -> Option<&AgentState> {
        self.agent_ix.get(agent).map(|&a| &self.agents[a].state)
    }

    /// A pause asked while the agent was busy, waiting for the agent to become free.
    pub fn pending_pause(&self, agent: &AgentId) -> Option<&str> {
        self.agent_ix
            .get(agent)
            .and_then(|&a| self.agents[a].pending_pause.as_deref())
    }

    /// Calls waiting (including those ringing an agent) in the queue; 0 for an unknown queue.
    pub fn waiting(&self, queue: &QueueId) -> usize {
        self.queue_ix
            .get(queue)
            .map_or(0, |&q| self.queues[q].waiting)
    }

    /// How long the oldest waiting call of the queue has waited (since its first queue).
    pub fn longest_wait(&self, queue: &QueueId, now: Instant) -> Option<Duration> {
        let &q = self.queue_ix.get(queue)?;
        self.queues[q]
            .oldest_entry()
            .map(|t| now.saturating_duration_since(t))
    }

    /// The queue a waiting call is in and its 1-based position there.
    pub fn queue_position(&self, call: CallId) -> Option<(QueueId, usize)> {
        let c = self.waiting_calls.get(&call)?;
        let q = &self.queues[c.queue];
        Some((q.settings.id.clone(), q.position(c)?))
    }

    /// Counts of the queue's members per state kind, every kind of [`AgentState::KINDS`]
    /// listed; a member not logged into this queue counts as `logged_out`.
    pub fn agents_by_state(&self, queue: &QueueId) -> Vec<(&'static str, usize)> {
        let mut counts = [0usize; 6];
        if let Some(&q) = self.queue_ix.get(queue) {
            for m in &self.queues[q].members {
                let k = if m.logged_in {
                    self.agents[m.agent].state.kind_index()
                } else {
                    0
                };
                counts[k] += 1;
            }
        }
        AgentState::KINDS.iter().copied().zip(counts).collect()
    }

    /// Inputs ignored so far (unknown ids, invalid transitions).
    pub fn ignored_inputs(&self) -> u64 {
        self.ignored
    }

    /// Calls currently connected to an agent (answered, not yet ended).
    pub fn connected_calls(&self) -> usize {
        self.connected.len()
    }

    /// The service-level target of a queue (reported only).
    pub fn sl_target(&self, queue: &QueueId) -> Option<Duration> {
        let &q = self.queue_ix.get(queue)?;
        Some(self.queues[q].settings.sl_target)
    }

    fn arm(&mut self, at: Option<Instant>, timer: Timer) -> Option<TimerKey> {
        let key = (at?, self.next_timer);
        self.next_timer += 1;
        self.timers.insert(key, timer);
        Some(key)
    }

    fn disarm(&mut self, key: Option<TimerKey>) {
        if let Some(k) = key {
            self.timers.remove(&k);
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }
}
