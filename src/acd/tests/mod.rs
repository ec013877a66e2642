//! Unit tests of the ACD engine with virtual time.

use std::time::{Duration, Instant};

use super::*;

mod agents;
mod queues;
mod strategies;

pub(super) fn aid(s: &str) -> AgentId {
    AgentId(s.to_owned())
}

pub(super) fn qid(s: &str) -> QueueId {
    QueueId(s.to_owned())
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A queue with the given strategy and members (tier 0 unless `name:tier`).
pub(super) fn queue(id: &str, strategy: Strategy, members: &[&str]) -> QueueSettings {
    let mut q = QueueSettings::new(id);
    q.strategy = strategy;
    q.members = members
        .iter()
        .map(|m| match m.split_once(':') {
            Some((a, t)) => Member {
                agent: aid(a),
                tier: t.parse().unwrap_or(0),
            },
            None => Member {
                agent: aid(m),
                tier: 0,
            },
        })
        .collect();
    q
}

/// An engine driven in virtual time; every action is kept in `log`.
pub(super) struct H {
    pub e: Engine,
    pub now: Instant,
}

impl H {
    pub fn new(queues: Vec<QueueSettings>, agents: &[&str]) -> H {
        let t0 = Instant::now();
        let e = Engine::new(queues, agents.iter().map(|a| aid(a)).collect(), 7).unwrap();
        H { e, now: t0 }
    }

    pub fn send(&mut self, input: Input) -> Vec<Action> {
        self.e.handle(self.now, input);
        self.drain()
    }

    pub fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.e.poll_action()).collect()
    }

    /// Advances virtual time, firing every timer at its deadline.
    pub fn advance(&mut self, d: Duration) -> Vec<Action> {
        let target = self.now + d;
        let mut out = Vec::new();
        while let Some(t) = self.e.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.e.handle_timeout(self.now);
            out.extend(self.drain());
        }
        self.now = target;
        out
    }

    pub fn login(&mut self, a: &str) -> Vec<Action> {
        self.send(Input::AgentLogin {
            agent: aid(a),
            queues: None,
        })
    }

    pub fn arrive(&mut self, call: u64, q: &str, priority: i32) -> Vec<Action> {
        self.send(Input::CallArrived {
            call: CallId(call),
            queue: qid(q),
            priority,
        })
    }

    pub fn answer(&mut self, call: u64, a: &str) -> Vec<Action> {
        self.send(Input::OfferAnswered {
            call: CallId(call),
            agent: aid(a),
        })
    }

    pub fn end(&mut self, call: u64) -> Vec<Action> {
        self.send(Input::CallEnded { call: CallId(call) })
    }

    pub fn state(&self, a: &str) -> AgentState {
        self.e
            .agent_state(&aid(a))
            .cloned()
            .unwrap_or(AgentState::LoggedOut)
    }
}

pub(super) fn offers(actions: &[Action]) -> Vec<(u64, String)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Offer { call, agent } => Some((call.0, agent.0.clone())),
            _ => None,
        })
        .collect()
}

pub(super) fn offer(call: u64, a: &str) -> Action {
    Action::Offer {
        call: CallId(call),
        agent: aid(a),
    }
}

pub(super) fn left(actions: &[Action]) -> Vec<(u64, String, Outcome, Option<u16>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Left {
                call,
                queue,
                outcome,
                hangup_cause,
                ..
            } => Some((call.0, queue.0.clone(), outcome.clone(), *hangup_cause)),
            _ => None,
        })
        .collect()
}

/// Logs agents in one second apart (first = idle longest).
pub(super) fn h_with(strategy: Strategy, agents: &[&str]) -> H {
    let mut h = H::new(vec![queue("q", strategy, agents)], agents);
    for a in agents {
        h.login(a);
        h.advance(secs(1));
    }
    h
}

/// Serves `call`: it must be offered to exactly `agent`, which answers and hangs up.
pub(super) fn serve(h: &mut H, call: u64, expect: &str) {
    let acts = h.arrive(call, "q", 0);
    assert_eq!(offers(&acts), vec![(call, expect.to_owned())], "{acts:?}");
    h.answer(call, expect);
    h.advance(secs(1));
    h.end(call);
    h.advance(secs(1));
}
