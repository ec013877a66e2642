//! Call inputs: arrival, abandon, answer, failed/missed offers, end of talk, supervisor moves.

use std::time::Instant;

use super::queue::CallEntry;
use super::{
    Action, AgentId, AgentState, CallId, CancelReason, ConnectedCall, Engine, Outcome, QueueId,
    Timer, TimerKey,
};

impl Engine {
    pub(super) fn on_arrived(
        &mut self,
        now: Instant,
        call: CallId,
        queue: &QueueId,
        priority: i32,
    ) -> bool {
        let Some(&q) = self.queue_ix.get(queue) else {
            return false;
        };
        if self.waiting_calls.contains_key(&call) || self.connected.contains_key(&call) {
            return false;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let entry = CallEntry {
            id: call,
            queue: q,
            priority,
            seq,
            first_entered: now,
            queue_entered: now,
            front: 0,
            ringing: Vec::new(),
            expired: false,
            max_wait_timer: None,
            widen_timer: None,
            hops: (now, 0),
        };
        self.admit(entry, q, now);
        true
    }

    pub(super) fn on_abandoned(&mut self, now: Instant, call: CallId) -> bool {
        if self.connected.contains_key(&call) {
            return self.on_ended(now, call);
        }
        let Some(entry) = self.remove_waiting(call) else {
            return false;
        };
        for &a in &entry.ringing {
            self.cancel_ring(a, CancelReason::CallerGone);
        }
        self.emit_left(&entry, entry.queue, Outcome::Abandoned, None, now);
        for &a in &entry.ringing {
            self.make_available(now, a);
        }
        true
    }

    fn ringing_agent(&self, call: CallId, agent: &AgentId) -> Option<usize> {
        let &a = self.agent_ix.get(agent)?;
        let ring = self.agents[a].ringing?;
        (ring.call == call && self.waiting_calls.contains_key(&call)).then_some(a)
    }

    pub(super) fn on_answered(&mut self, now: Instant, call: CallId, agent: &AgentId) -> bool {
        let Some(a) = self.ringing_agent(call, agent) else {
            return false;
        };
        self.release_ring(a);
        let Some(entry) = self.remove_waiting(call) else {
            return false;
        };
        let ag = &mut self.agents[a];
        ag.on_call = Some(call);
        ag.answered += 1;
        ag.missed = 0;
        self.set_state(a, AgentState::OnCall);
        let wait = now.saturating_duration_since(entry.first_entered);
        self.push(Action::Connected {
            call,
            agent: agent.clone(),
            wait,
        });
        self.emit_left(&entry, entry.queue, Outcome::Answered, None, now);
        self.connected.insert(
            call,
            ConnectedCall {
                agent: a,
                queue: entry.queue,
            },
        );
        for &o in &entry.ringing {
            self.cancel_ring(o, CancelReason::AnsweredElsewhere);
        }
        for &o in &entry.ringing {
            self.make_available(now, o);
        }
        true
    }

    pub(super) fn on_failed(
        &mut self,
        now: Instant,
        call: CallId,
        agent: &AgentId,
        counts_as_miss: bool,
    ) -> bool {
        let Some(a) = self.ringing_agent(call, agent) else {
            return false;
        };
        self.release_ring(a);
        self.offer_ended(now, call, a, counts_as_miss);
        true
    }

    pub(super) fn on_ring_timeout(&mut self, now: Instant, call: CallId, a: usize, key: TimerKey) {
        let Some(ring) = self.agents[a].ringing else {
            return;
        };
        if ring.call != call || ring.timer != Some(key) {
            return;
        }
        self.push(Action::OfferMissed {
            call,
            agent: self.agents[a].id.clone(),
        });
        self.cancel_ring(a, CancelReason::Timeout);
        self.offer_ended(now, call, a, true);
    }

    /// An offer ended unanswered (ring already released; the agent is still `Ringing`): the
    /// call goes on to other free agents first, then the agent becomes available (or paused
    /// after too many misses) and may get the same call again if nobody else took it.
    fn offer_ended(&mut self, now: Instant, call: CallId, a: usize, miss: bool) {
        let max_missed = self
            .waiting_calls
            .get(&call)
            .map_or(0, |c| self.queues[c.queue].settings.max_missed);
        self.call_offer_released(now, call);
        let ag = &mut self.agents[a];
        if miss {
            ag.missed = ag.missed.saturating_add(1);
            if max_missed > 0 && ag.missed >= max_missed {
                ag.missed = 0;
                if ag.pending_pause.is_none() {
                    ag.pending_pause = Some("no_answer".to_owned());
                }
            }
        }
        self.make_available(now, a);
    }

    pub(super) fn on_ended(&mut self, now: Instant, call: CallId) -> bool {
        let Some(cc) = self.connected.remove(&call) else {
            return self.waiting_calls.contains_key(&call) && self.on_abandoned(now, call);
        };
        let a = cc.agent;
        if self.agents[a].on_call != Some(call) {
            return true;
        }
        let ag = &mut self.agents[a];
        ag.on_call = None;
        ag.idle_since = Some(now);
        if ag.pending_logout {
            self.logout_now(now, a);
            return true;
        }
        let wrapup = self.queues[cc.queue].settings.wrapup;
        match now.checked_add(wrapup) {
            Some(at) if !wrapup.is_zero() => {
                let timer = self.arm(Some(at), Timer::Wrapup(a));
                self.agents[a].wrapup_timer = timer;
                self.set_state(a, AgentState::Wrapup);
            }
            Some(_) => self.make_available(now, a),
            None => self.set_state(a, AgentState::Wrapup),
        }
        true
    }

    pub(super) fn on_move_to_front(&mut self, now: Instant, call: CallId) -> bool {
        let Some(c) = self.waiting_calls.get_mut(&call) else {
            return false;
        };
        let q = c.queue;
        // Only the rank changes: timers and offers stay as they are.
        self.queues[q].move_to_front(c);
        self.dispatch_queue(q, now);
        true
    }

    pub(super) fn on_move_to_queue(&mut self, now: Instant, call: CallId, queue: &QueueId) -> bool {
        let Some(&target) = self.queue_ix.get(queue) else {
            return false;
        };
        let Some(c) = self.waiting_calls.get(&call) else {
            return false;
        };
        let from = c.queue;
        if from == target {
            return false;
        }
        let Some(entry) = self.remove_waiting(call) else {
            return false;
        };
        let ringing = entry.ringing.clone();
        for &a in &ringing {
            self.cancel_ring(a, CancelReason::Moved);
        }
        self.push(Action::Moved {
            call,
            from: self.queues[from].settings.id.clone(),
            to: queue.clone(),
        });
        self.enter(entry, target, now);
        for a in ringing {
            self.make_available(now, a);
        }
        true
    }
}
