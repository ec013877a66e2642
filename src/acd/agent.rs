//! Seats: the agent state machine (login, logout, pause, wrap-up) and the agent side of routing
//! (an agent that becomes available takes the longest waiter across its queues).

use std::time::Instant;

use super::{Action, AgentId, AgentState, CallId, CancelReason, Engine, QueueId, TimerKey};

/// The call an agent is ringing for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Ring {
    pub call: CallId,
    pub timer: Option<TimerKey>,
}

#[derive(Debug)]
pub(super) struct Agent {
    pub id: AgentId,
    pub state: AgentState,
    /// `(queue, member slot)` for every queue this agent is a member of.
    pub memberships: Vec<(usize, usize)>,
    pub pending_pause: Option<String>,
    /// Logout asked while on a call: applied when the call ends.
    pub pending_logout: bool,
    /// Last call ended or login; `None` before the first login.
    pub idle_since: Option<Instant>,
    /// Calls answered since login.
    pub answered: u64,
    /// Consecutive missed offers.
    pub missed: u32,
    pub ringing: Option<Ring>,
    pub on_call: Option<CallId>,
    pub wrapup_timer: Option<TimerKey>,
}

impl Agent {
    pub fn new(id: AgentId) -> Self {
        Agent {
            id,
            state: AgentState::LoggedOut,
            memberships: Vec::new(),
            pending_pause: None,
            pending_logout: false,
            idle_since: None,
            answered: 0,
            missed: 0,
            ringing: None,
            on_call: None,
            wrapup_timer: None,
        }
    }
}

impl Engine {
    fn agent_index(&self, agent: &AgentId) -> Option<usize> {
        self.agent_ix.get(agent).copied()
    }

    /// Queues the agent is logged into.
    pub(super) fn logged_queues(&self, a: usize) -> Vec<usize> {
        self.agents[a]
            .memberships
            .iter()
            .filter(|&&(q, slot)| self.queues[q].members[slot].logged_in)
            .map(|&(q, _)| q)
            .collect()
    }

    pub(super) fn set_state(&mut self, a: usize, state: AgentState) {
        if self.agents[a].state != state {
            self.agents[a].state = state.clone();
            self.push(Action::AgentStateChanged {
                agent: self.agents[a].id.clone(),
                state,
            });
        }
    }

    pub(super) fn on_login(
        &mut self,
        now: Instant,
        agent: &AgentId,
        queues: Option<Vec<QueueId>>,
    ) -> bool {
        let Some(a) = self.agent_index(agent) else {
            return false;
        };
        if self.agents[a].state != AgentState::LoggedOut {
            return false;
        }
        let memberships = self.agents[a].memberships.clone();
        for (q, slot) in memberships {
            let wanted = match &queues {
                None => true,
                Some(list) => list.contains(&self.queues[q].settings.id),
            };
            self.queues[q].members[slot].logged_in = wanted;
        }
        let ag = &mut self.agents[a];
        ag.idle_since = Some(now);
        ag.answered = 0;
        ag.missed = 0;
        ag.pending_pause = None;
        ag.pending_logout = false;
        self.make_available(now, a);
        true
    }

    pub(super) fn on_logout(&mut self, now: Instant, agent: &AgentId) -> bool {
        let Some(a) = self.agent_index(agent) else {
            return false;
        };
        match self.agents[a].state {
            AgentState::LoggedOut => false,
            AgentState::OnCall => {
                self.agents[a].pending_logout = true;
                true
            }
            AgentState::Ringing => {
                let call = self.cancel_ring(a, CancelReason::AgentGone);
                self.logout_now(now, a);
                if let Some(call) = call {
                    self.call_offer_released(now, call);
                }
                true
            }
            AgentState::Wrapup => {
                let t = self.agents[a].wrapup_timer.take();
                self.disarm(t);
                self.logout_now(now, a);
                true
            }
            AgentState::Available | AgentState::Paused(_) => {
                self.logout_now(now, a);
                true
            }
        }
    }

    pub(super) fn logout_now(&mut self, now: Instant, a: usize) {
        let queues = self.logged_queues(a);
        for &(q, slot) in &self.agents[a].memberships {
            self.queues[q].members[slot].logged_in = false;
        }
        let ag = &mut self.agents[a];
        ag.pending_pause = None;
        ag.pending_logout = false;
        self.set_state(a, AgentState::LoggedOut);
        self.check_leave_empty(now, &queues);
    }

    pub(super) fn on_pause(&mut self, now: Instant, agent: &AgentId, reason: String) -> bool {
        let Some(a) = self.agent_index(agent) else {
            return false;
        };
        match self.agents[a].state {
            AgentState::LoggedOut => false,
            AgentState::Available | AgentState::Paused(_) => {
                self.set_state(a, AgentState::Paused(reason));
                let queues = self.logged_queues(a);
                self.check_leave_empty(now, &queues);
                true
            }
            AgentState::Ringing | AgentState::OnCall | AgentState::Wrapup => {
                self.agents[a].pending_pause = Some(reason);
                true
            }
        }
    }

    pub(super) fn on_unpause(&mut self, now: Instant, agent: &AgentId) -> bool {
        let Some(a) = self.agent_index(agent) else {
            return false;
        };
        match self.agents[a].state {
            AgentState::Paused(_) => {
                self.make_available(now, a);
                true
            }
            _ => self.agents[a].pending_pause.take().is_some(),
        }
    }

    pub(super) fn on_end_wrapup(&mut self, now: Instant, agent: &AgentId) -> bool {
        let Some(a) = self.agent_index(agent) else {
            return false;
        };
        if self.agents[a].state != AgentState::Wrapup {
            return false;
        }
        let t = self.agents[a].wrapup_timer.take();
        self.disarm(t);
        self.make_available(now, a);
        true
    }

    pub(super) fn on_wrapup_timer(&mut self, now: Instant, a: usize, key: TimerKey) {
        if self.agents[a].state != AgentState::Wrapup || self.agents[a].wrapup_timer != Some(key) {
            return;
        }
        self.agents[a].wrapup_timer = None;
        self.make_available(now, a);
    }

    /// The agent is free again: a pending logout or pause takes effect, otherwise it becomes
    /// available and takes the best waiting call.
    pub(super) fn make_available(&mut self, now: Instant, a: usize) {
        if self.agents[a].pending_logout {
            self.logout_now(now, a);
        } else if let Some(reason) = self.agents[a].pending_pause.take() {
            self.set_state(a, AgentState::Paused(reason));
            let queues = self.logged_queues(a);
            self.check_leave_empty(now, &queues);
        } else {
            self.set_state(a, AgentState::Available);
            self.pick(now, a);
        }
    }

    /// Stops the agent's ring (timer disarmed, `CancelOffer` emitted, call's ring list updated);
    /// the agent's state is left to the caller. Returns the call it rang for.
    pub(super) fn cancel_ring(&mut self, a: usize, reason: CancelReason) -> Option<CallId> {
        let ring = self.release_ring(a)?;
        self.push(Action::CancelOffer {
            call: ring,
            agent: self.agents[a].id.clone(),
            reason,
        });
        Some(ring)
    }

    /// Forgets the agent's ring without any action.
    pub(super) fn release_ring(&mut self, a: usize) -> Option<CallId> {
        let ring = self.agents[a].ringing.take()?;
        self.disarm(ring.timer);
        if let Some(c) = self.waiting_calls.get_mut(&ring.call) {
            c.ringing.retain(|&x| x != a);
        }
        Some(ring.call)
    }
}
