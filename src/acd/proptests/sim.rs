//! The model the property tests check the engine against, rebuilt only from the inputs sent
//! and the actions emitted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use super::super::tests::{aid, qid};
use super::super::*;
use super::{Op, AGENTS, QUEUES};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Waiting,
    /// Connected, `Left(Answered)` not seen yet.
    Connected,
    /// Connected and left: talking.
    Talking,
    Ended,
    Gone,
}

#[derive(Debug)]
struct CallM {
    queue: usize,
    prio: i32,
    status: St,
    agent: Option<usize>,
    ringing: BTreeSet<usize>,
}

pub(super) struct Sim {
    e: Engine,
    now: Instant,
    strategies: Vec<Strategy>,
    memberships: Vec<BTreeSet<usize>>,
    calls: BTreeMap<u64, CallM>,
    next_call: u64,
    ringing: BTreeMap<usize, u64>,
    on_call: BTreeMap<usize, u64>,
    states: Vec<AgentState>,
    logged: Vec<BTreeSet<usize>>,
    fifo: bool,
    auto_answer: bool,
    to_answer: VecDeque<(u64, usize)>,
}

fn ix(id: &str) -> usize {
    id[1..].parse().unwrap()
}

impl Sim {
    pub(super) fn new(queues: Vec<QueueSettings>, seed: u64, fifo: bool, auto_answer: bool) -> Sim {
        let strategies = queues.iter().map(|q| q.strategy).collect();
        let memberships = (0..AGENTS)
            .map(|a| {
                let id = aid(&format!("a{a}"));
                (0..QUEUES)
                    .filter(|&q| queues[q].members.iter().any(|m| m.agent == id))
                    .collect()
            })
            .collect();
        let agents = (0..AGENTS).map(|a| aid(&format!("a{a}"))).collect();
        Sim {
            e: Engine::new(queues, agents, seed).unwrap(),
            now: Instant::now(),
            strategies,
            memberships,
            calls: BTreeMap::new(),
            next_call: 1,
            ringing: BTreeMap::new(),
            on_call: BTreeMap::new(),
            states: vec![AgentState::LoggedOut; AGENTS],
            logged: vec![BTreeSet::new(); AGENTS],
            fifo,
            auto_answer,
            to_answer: VecDeque::new(),
        }
    }

    fn send(&mut self, input: Input) {
        self.e.handle(self.now, input);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(a) = self.e.poll_action() {
            self.apply(a);
        }
        while let Some((call, a)) = self.to_answer.pop_front() {
            if self.ringing.get(&a) == Some(&call) {
                self.send(Input::OfferAnswered {
                    call: CallId(call),
                    agent: aid(&format!("a{a}")),
                });
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        let target = self.now + d;
        while let Some(t) = self.e.poll_timeout() {
            if t > target {
                break;
            }
            self.now = self.now.max(t);
            self.e.handle_timeout(self.now);
            self.drain();
        }
        self.now = target;
    }

    /// Calls of `q` waiting ahead of `c` by priority then arrival (ids grow with arrival).
    fn ahead(&self, q: usize, c: u64) -> impl Iterator<Item = (&u64, &CallM)> + '_ {
        let prio = self.calls[&c].prio;
        self.calls.iter().filter(move |(id, m)| {
            m.status == St::Waiting
                && m.queue == q
                && **id != c
                && (m.prio > prio || (m.prio == prio && **id < c))
        })
    }

    fn apply(&mut self, action: Action) {
        match action {
            Action::Offer { call, agent } => {
                let a = ix(&agent.0);
                assert!(!self.ringing.contains_key(&a), "{agent} offered two calls");
                assert!(
                    !self.on_call.contains_key(&a),
                    "{agent} offered while on a call"
                );
                assert_eq!(
                    self.states[a],
                    AgentState::Available,
                    "{agent} not available"
                );
                let c = &self.calls[&call.0];
                assert_eq!(c.status, St::Waiting);
                assert!(
                    self.logged[a].contains(&c.queue),
                    "{agent} not in the queue"
                );
                if self.strategies[c.queue] != Strategy::RingAll {
                    assert!(c.ringing.is_empty(), "call {call} rings two agents");
                }
                if self.fifo && c.ringing.is_empty() {
                    for (id, m) in self.ahead(c.queue, call.0) {
                        assert!(!m.ringing.is_empty(), "call {call} offered before {id}");
                    }
                }
                self.calls.get_mut(&call.0).unwrap().ringing.insert(a);
                self.ringing.insert(a, call.0);
                if self.auto_answer {
                    self.to_answer.push_back((call.0, a));
                }
            }
            Action::CancelOffer { call, agent, .. } => {
                let a = ix(&agent.0);
                assert_eq!(self.ringing.remove(&a), Some(call.0));
                self.calls.get_mut(&call.0).unwrap().ringing.remove(&a);
            }
            Action::OfferMissed { call, agent } => {
                assert_eq!(self.ringing.get(&ix(&agent.0)), Some(&call.0));
            }
            Action::Connected { call, agent, .. } => {
                let a = ix(&agent.0);
                assert_eq!(self.ringing.remove(&a), Some(call.0));
                assert!(
                    self.on_call.insert(a, call.0).is_none(),
                    "{agent} on two calls"
                );
                let q = self.calls[&call.0].queue;
                if self.fifo && self.auto_answer {
                    assert_eq!(self.ahead(q, call.0).count(), 0, "{call} connected early");
                }
                let c = self.calls.get_mut(&call.0).unwrap();
                assert_eq!(c.status, St::Waiting);
                c.ringing.remove(&a);
                c.status = St::Connected;
                c.agent = Some(a);
            }
            Action::Left {
                call,
                queue,
                outcome,
                ..
            } => {
                let c = self.calls.get_mut(&call.0).expect("left: unknown call");
                assert_eq!(queue, qid(&format!("q{}", c.queue)));
                if outcome == Outcome::Answered {
                    assert_eq!(c.status, St::Connected, "{call}: second Left");
                    c.status = St::Talking;
                } else {
                    assert_eq!(c.status, St::Waiting, "{call}: second Left");
                    assert!(c.ringing.is_empty(), "{call} left while ringing");
                    c.status = St::Gone;
                }
            }
            Action::Moved { call, from, to } => {
                let c = self.calls.get_mut(&call.0).unwrap();
                assert_eq!(c.status, St::Waiting);
                assert_eq!(from, qid(&format!("q{}", c.queue)));
                assert!(c.ringing.is_empty());
                c.queue = ix(&to.0);
            }
            Action::AgentStateChanged { agent, state } => {
                let a = ix(&agent.0);
                assert_ne!(self.states[a], state);
                if state == AgentState::LoggedOut {
                    self.logged[a].clear();
                }
                self.states[a] = state;
            }
        }
    }

    fn pick(&self, n: u8, wanted: &[St]) -> Option<u64> {
        let ids: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, m)| wanted.contains(&m.status))
            .map(|(id, _)| *id)
            .collect();
        (!ids.is_empty()).then(|| ids[usize::from(n) % ids.len()])
    }

    /// The n-th (cyclically) ringing agent and its call.
    fn ringing_nth(&self, n: u8) -> Option<(u8, u64)> {
        let len = self.ringing.len();
        let (&a, &call) = self.ringing.iter().nth(usize::from(n) % len.max(1))?;
        Some((u8::try_from(a).ok()?, call))
    }

    /// A talking or waiting call is about to end by our input: forget its agent's call.
    fn hang_up(&mut self, call: u64) {
        let c = self.calls.get_mut(&call).unwrap();
        if c.status == St::Talking {
            c.status = St::Ended;
            if let Some(a) = c.agent {
                self.on_call.remove(&a);
            }
        }
    }

    pub(super) fn step(&mut self, op: Op) {
        let agent = |x: u8| aid(&format!("a{x}"));
        match op {
            Op::Arrive(q, priority) => {
                let call = self.next_call;
                self.next_call += 1;
                self.calls.insert(
                    call,
                    CallM {
                        queue: usize::from(q),
                        prio: priority,
                        status: St::Waiting,
                        agent: None,
                        ringing: BTreeSet::new(),
                    },
                );
                self.send(Input::CallArrived {
                    call: CallId(call),
                    queue: qid(&format!("q{q}")),
                    priority,
                });
            }
            Op::Abandon(n) => {
                if let Some(call) = self.pick(n, &[St::Waiting, St::Talking]) {
                    self.hang_up(call);
                    self.send(Input::CallAbandoned { call: CallId(call) });
                }
            }
            Op::End(n) => {
                if let Some(call) = self.pick(n, &[St::Talking]) {
                    self.hang_up(call);
                    self.send(Input::CallEnded { call: CallId(call) });
                }
            }
            Op::Answer(n) => {
                // Mostly a ringing agent answers; sometimes an agent answers a call it does
                // not ring for (ignored).
                let (x, call) = match self.ringing_nth(n) {
                    Some((x, call)) if n < 224 => (x, call),
                    _ => (n % AGENTS as u8, self.pick(n, &[St::Waiting]).unwrap_or(0)),
                };
                self.send(Input::OfferAnswered {
                    call: CallId(call),
                    agent: agent(x),
                });
            }
            Op::Fail(n, miss) => {
                let (x, call) = self.ringing_nth(n).unwrap_or((n % AGENTS as u8, 0));
                if let Some(c) = self.calls.get_mut(&call) {
                    c.ringing.remove(&usize::from(x));
                    self.ringing.remove(&usize::from(x));
                }
                self.send(Input::OfferFailed {
                    call: CallId(call),
                    agent: agent(x),
                    counts_as_miss: miss,
                });
            }
            Op::Login(x, subset) => {
                let a = usize::from(x);
                if self.states[a] == AgentState::LoggedOut {
                    self.logged[a] = self.memberships[a]
                        .iter()
                        .copied()
                        .filter(|q| subset.is_none_or(|s| s & (1 << q) != 0))
                        .collect();
                }
                let queues = subset.map(|s| {
                    (0..QUEUES)
                        .filter(|q| s & (1 << q) != 0)
                        .map(|q| qid(&format!("q{q}")))
                        .collect()
                });
                self.send(Input::AgentLogin {
                    agent: agent(x),
                    queues,
                });
            }
            Op::Logout(x) => self.send(Input::AgentLogout { agent: agent(x) }),
            Op::Pause(x) => self.send(Input::AgentPause {
                agent: agent(x),
                reason: "break".into(),
            }),
            Op::Unpause(x) => self.send(Input::AgentUnpause { agent: agent(x) }),
            Op::EndWrapup(x) => self.send(Input::EndWrapup { agent: agent(x) }),
            Op::MoveFront(n) => {
                if let Some(call) = self.pick(n, &[St::Waiting]) {
                    self.send(Input::MoveToFront { call: CallId(call) });
                }
            }
            Op::MoveQueue(n, q) => {
                if let Some(call) = self.pick(n, &[St::Waiting]) {
                    self.send(Input::MoveToQueue {
                        call: CallId(call),
                        queue: qid(&format!("q{q}")),
                    });
                }
            }
            Op::Advance(ms) => self.advance(Duration::from_millis(u64::from(ms))),
            Op::Garbage(k) => {
                let before = self.e.ignored_inputs();
                let active = self.pick(k, &[St::Waiting, St::Talking]);
                let input = match k % 6 {
                    0 => Input::AgentPause {
                        agent: aid("nobody"),
                        reason: String::new(),
                    },
                    1 => Input::CallArrived {
                        call: CallId(u64::MAX),
                        queue: qid("nope"),
                        priority: 0,
                    },
                    2 => Input::OfferAnswered {
                        call: CallId(u64::MAX),
                        agent: agent(0),
                    },
                    3 => Input::CallEnded {
                        call: CallId(u64::MAX - 1),
                    },
                    4 => Input::MoveToQueue {
                        call: CallId(active.unwrap_or(0)),
                        queue: qid("nope"),
                    },
                    _ => match active {
                        Some(call) => Input::CallArrived {
                            call: CallId(call),
                            queue: qid("q0"),
                            priority: 0,
                        },
                        None => Input::EndWrapup {
                            agent: aid("nobody"),
                        },
                    },
                };
                self.send(input);
                assert_eq!(self.e.ignored_inputs(), before + 1);
            }
        }
        self.check();
    }

    fn check(&self) {
        for q in 0..QUEUES {
            let model = self
                .calls
                .values()
                .filter(|m| m.status == St::Waiting && m.queue == q)
                .count();
            assert_eq!(
                self.e.waiting(&qid(&format!("q{q}"))),
                model,
                "waiting q{q}"
            );
        }
        for a in 0..AGENTS {
            let st = self.e.agent_state(&aid(&format!("a{a}"))).unwrap();
            assert_eq!(st, &self.states[a], "a{a} state");
            assert_eq!(*st == AgentState::Ringing, self.ringing.contains_key(&a));
            assert_eq!(*st == AgentState::OnCall, self.on_call.contains_key(&a));
            if *st != AgentState::Available {
                continue;
            }
            // Work conservation: a free agent never sits next to a call nobody rings.
            for &q in &self.logged[a] {
                if self.strategies[q] == Strategy::SkillTiers {
                    continue;
                }
                for (id, m) in &self.calls {
                    if m.status == St::Waiting && m.queue == q {
                        assert!(!m.ringing.is_empty(), "a{a} idle while {id} waits in q{q}");
                    }
                }
            }
        }
        for (id, m) in &self.calls {
            if m.status == St::Waiting {
                let pos = self.e.queue_position(CallId(*id)).map(|p| p.0);
                assert_eq!(pos, Some(qid(&format!("q{}", m.queue))));
            }
        }
    }

    /// Empties the engine; afterwards every call must have left exactly once.
    pub(super) fn finish(&mut self, by_time: bool) {
        if by_time {
            for a in 0..AGENTS {
                self.send(Input::AgentLogout {
                    agent: aid(&format!("a{a}")),
                });
            }
            self.advance(Duration::from_secs(3600));
            self.check();
        }
        let active: Vec<u64> = self
            .calls
            .iter()
            .filter(|(_, m)| matches!(m.status, St::Waiting | St::Talking))
            .map(|(id, _)| *id)
            .collect();
        for call in active {
            let talking = self.calls[&call].status == St::Talking;
            self.hang_up(call);
            let input = if talking {
                Input::CallEnded { call: CallId(call) }
            } else {
                Input::CallAbandoned { call: CallId(call) }
            };
            self.send(input);
            self.check();
        }
        for a in 0..AGENTS {
            self.send(Input::AgentLogout {
                agent: aid(&format!("a{a}")),
            });
        }
        self.advance(Duration::from_secs(3600));
        self.check();
        for (id, m) in &self.calls {
            assert!(matches!(m.status, St::Gone | St::Ended), "{id}: {m:?}");
        }
        assert!(self.states.iter().all(|s| *s == AgentState::LoggedOut));
        assert_eq!(self.e.connected_calls(), 0);
        assert_eq!(self.e.poll_timeout(), None);
    }
}
