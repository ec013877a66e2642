//! Unit tests of the ACD engine with virtual time.

use std::time::{Duration, Instant};

use super::*;

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

fn offer(call: u64, a: &str) -> Action {
    Action::Offer {
        call: CallId(call),
        agent: aid(a),
    }
}

fn left(actions: &[Action]) -> Vec<(u64, String, Outcome, Option<u16>)> {
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
fn h_with(strategy: Strategy, agents: &[&str]) -> H {
    let mut h = H::new(vec![queue("q", strategy, agents)], agents);
    for a in agents {
        h.login(a);
        h.advance(secs(1));
    }
    h
}

/// Serves `call`: it must be offered to exactly `agent`, which answers and hangs up.
fn serve(h: &mut H, call: u64, expect: &str) {
    let acts = h.arrive(call, "q", 0);
    assert_eq!(offers(&acts), vec![(call, expect.to_owned())], "{acts:?}");
    h.answer(call, expect);
    h.advance(secs(1));
    h.end(call);
    h.advance(secs(1));
}

#[test]
fn longest_idle_prefers_agent_idle_longest() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b", "c"]);
    serve(&mut h, 1, "a");
    serve(&mut h, 2, "b");
    serve(&mut h, 3, "c");
    serve(&mut h, 4, "a");
}

#[test]
fn round_robin_rotates_in_member_order() {
    let mut h = h_with(Strategy::RoundRobin, &["a", "b", "c"]);
    // b's login is the most recent, yet the rotation goes on in member order.
    serve(&mut h, 1, "a");
    serve(&mut h, 2, "b");
    h.send(Input::AgentPause {
        agent: aid("c"),
        reason: "x".into(),
    });
    serve(&mut h, 3, "a");
    h.send(Input::AgentUnpause { agent: aid("c") });
    serve(&mut h, 4, "b");
    serve(&mut h, 5, "c");
}

#[test]
fn ring_all_rings_everyone_and_cancels_the_others_on_answer() {
    let mut h = h_with(Strategy::RingAll, &["a", "b", "c"]);
    let acts = h.arrive(1, "q", 0);
    assert_eq!(offers(&acts).len(), 3);
    // A second call waits: FIFO, one call rings all free agents.
    assert!(offers(&h.arrive(2, "q", 0)).is_empty());
    let acts = h.answer(1, "b");
    assert!(acts.contains(&Action::Connected {
        call: CallId(1),
        agent: aid("b"),
        wait: Duration::ZERO
    }));
    for a in ["a", "c"] {
        assert!(acts.contains(&Action::CancelOffer {
            call: CallId(1),
            agent: aid(a),
            reason: CancelReason::AnsweredElsewhere
        }));
    }
    // The freed agents ring for call 2 now.
    assert_eq!(
        offers(&acts),
        vec![(2, "a".to_owned()), (2, "c".to_owned())]
    );
    assert_eq!(h.state("b"), AgentState::OnCall);
}

#[test]
fn fewest_calls_then_longest_idle() {
    let mut h = h_with(Strategy::FewestCalls, &["a", "b"]);
    serve(&mut h, 1, "a");
    serve(&mut h, 2, "b");
    serve(&mut h, 3, "a");
    // a: 2 calls, b: 1 call; a idle longer? No matter: fewest wins.
    serve(&mut h, 4, "b");
    // Both at 2: b's last call ended later, so a has been idle longer.
    serve(&mut h, 5, "a");
}

#[test]
fn random_is_seeded_and_spreads() {
    let run = || {
        let mut h = h_with(Strategy::Random, &["a", "b", "c", "d"]);
        let mut who = Vec::new();
        for call in 0..40 {
            let acts = h.arrive(call, "q", 0);
            let o = offers(&acts);
            assert_eq!(o.len(), 1);
            who.push(o[0].1.clone());
            h.answer(call, &o[0].1);
            h.end(call);
        }
        who
    };
    let first = run();
    assert_eq!(first, run());
    let mut distinct = first.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 3, "{first:?}");
}

#[test]
fn skill_tiers_widen_over_time() {
    let mut q = queue("q", Strategy::SkillTiers, &["a:0", "b:1", "c:2"]);
    q.widen_after = secs(10);
    q.ring_timeout = secs(100);
    let mut h = H::new(vec![q], &["a", "b", "c"]);
    h.login("c");
    h.advance(secs(1));
    h.login("b");
    h.advance(secs(1));
    h.login("a");
    // All free: tier 0 first although it is the least idle.
    assert_eq!(offers(&h.arrive(1, "q", 0)), vec![(1, "a".to_owned())]);
    h.answer(1, "a");
    // Tier 0 busy: the next call waits until tier 1 is allowed after 10 s, then tier 1 (b).
    assert!(offers(&h.arrive(2, "q", 0)).is_empty());
    assert!(offers(&h.advance(Duration::from_millis(9_999))).is_empty());
    assert_eq!(
        offers(&h.advance(Duration::from_millis(1))),
        vec![(2, "b".to_owned())]
    );
    h.answer(2, "b");
    // A third call reaches tier 2 after 20 s.
    h.arrive(3, "q", 0);
    let acts = h.advance(secs(20));
    assert_eq!(offers(&acts), vec![(3, "c".to_owned())]);
}

#[test]
fn skill_tiers_agent_freed_takes_only_eligible_calls() {
    let mut q = queue("q", Strategy::SkillTiers, &["a:0", "b:1"]);
    q.widen_after = secs(10);
    let mut h = H::new(vec![q], &["a", "b"]);
    h.arrive(1, "q", 0);
    h.advance(secs(5));
    // b (tier 1) logs in: the call has waited 5 s, only tier 0 allowed.
    assert!(offers(&h.login("b")).is_empty());
    assert_eq!(offers(&h.advance(secs(5))), vec![(1, "b".to_owned())]);
}

#[test]
fn ring_timeout_moves_on_to_the_next_agent() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    assert_eq!(offers(&h.arrive(1, "q", 0)), vec![(1, "a".to_owned())]);
    let acts = h.advance(secs(15));
    let missed = Action::OfferMissed {
        call: CallId(1),
        agent: aid("a"),
    };
    let cancel = Action::CancelOffer {
        call: CallId(1),
        agent: aid("a"),
        reason: CancelReason::Timeout,
    };
    let pos = |x: &Action| acts.iter().position(|y| y == x).unwrap();
    assert!(pos(&missed) < pos(&cancel) && pos(&cancel) < pos(&offer(1, "b")));
    assert_eq!(h.state("a"), AgentState::Available);
    assert_eq!(h.e.queue_position(CallId(1)), Some((qid("q"), 1)));
    // b misses too: a gets it again (not b twice in a row).
    assert_eq!(offers(&h.advance(secs(15))), vec![(1, "a".to_owned())]);
}

#[test]
fn a_lone_agent_is_offered_the_same_call_again() {
    let mut h = h_with(Strategy::LongestIdle, &["a"]);
    h.arrive(1, "q", 0);
    let acts = h.advance(secs(15));
    assert_eq!(offers(&acts), vec![(1, "a".to_owned())]);
}

#[test]
fn auto_pause_after_max_missed_and_reset_on_answer() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.max_missed = 2;
    let mut h = H::new(vec![q], &["a"]);
    h.login("a");
    h.arrive(1, "q", 0);
    h.advance(secs(15)); // miss 1, re-offered
    h.answer(1, "a"); // streak reset
    h.end(1);
    h.arrive(2, "q", 0);
    h.advance(secs(15)); // miss 1
    assert_eq!(h.state("a"), AgentState::Ringing);
    let acts = h.advance(secs(15)); // miss 2 → paused
    assert!(acts.contains(&Action::AgentStateChanged {
        agent: aid("a"),
        state: AgentState::Paused("no_answer".into())
    }));
    assert_eq!(h.state("a"), AgentState::Paused("no_answer".into()));
    assert_eq!(h.e.waiting(&qid("q")), 1);
    assert_eq!(
        offers(&h.send(Input::AgentUnpause { agent: aid("a") })),
        vec![(2, "a".to_owned())]
    );
}

#[test]
fn offer_failed_goes_on_at_once_and_counts_miss_only_when_asked() {
    let mut q = queue("q", Strategy::LongestIdle, &["a", "b"]);
    q.max_missed = 1;
    let mut h = H::new(vec![q], &["a", "b"]);
    h.login("a");
    h.advance(secs(1));
    h.login("b");
    h.arrive(1, "q", 0);
    let acts = h.send(Input::OfferFailed {
        call: CallId(1),
        agent: aid("a"),
        counts_as_miss: false,
    });
    assert_eq!(offers(&acts), vec![(1, "b".to_owned())]);
    assert_eq!(h.state("a"), AgentState::Available);
    let acts = h.send(Input::OfferFailed {
        call: CallId(1),
        agent: aid("b"),
        counts_as_miss: true,
    });
    assert_eq!(offers(&acts), vec![(1, "a".to_owned())]);
    assert_eq!(h.state("b"), AgentState::Paused("no_answer".into()));
}

#[test]
fn wrapup_blocks_offers_until_it_ends() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.wrapup = secs(10);
    let mut h = H::new(vec![q], &["a"]);
    h.login("a");
    h.arrive(1, "q", 0);
    h.answer(1, "a");
    h.end(1);
    assert_eq!(h.state("a"), AgentState::Wrapup);
    assert!(offers(&h.arrive(2, "q", 0)).is_empty());
    assert!(offers(&h.advance(secs(9))).is_empty());
    assert_eq!(offers(&h.advance(secs(1))), vec![(2, "a".to_owned())]);
    // EndWrapup ends it early.
    h.answer(2, "a");
    h.end(2);
    h.arrive(3, "q", 0);
    assert_eq!(
        offers(&h.send(Input::EndWrapup { agent: aid("a") })),
        vec![(3, "a".to_owned())]
    );
    // EndWrapup when not in wrap-up is ignored and counted.
    let before = h.e.ignored_inputs();
    h.send(Input::EndWrapup { agent: aid("a") });
    assert_eq!(h.e.ignored_inputs(), before + 1);
}

#[test]
fn pause_during_a_call_is_pending() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.wrapup = secs(5);
    let mut h = H::new(vec![q], &["a"]);
    h.login("a");
    h.arrive(1, "q", 0);
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "lunch".into(),
    });
    assert_eq!(h.state("a"), AgentState::Ringing);
    h.answer(1, "a");
    assert_eq!(h.state("a"), AgentState::OnCall);
    h.end(1);
    assert_eq!(h.state("a"), AgentState::Wrapup);
    h.arrive(2, "q", 0);
    assert!(offers(&h.advance(secs(5))).is_empty());
    assert_eq!(h.state("a"), AgentState::Paused("lunch".into()));
    assert_eq!(
        offers(&h.send(Input::AgentUnpause { agent: aid("a") })),
        vec![(2, "a".to_owned())]
    );
}

#[test]
fn unpause_cancels_a_pending_pause() {
    let mut h = h_with(Strategy::LongestIdle, &["a"]);
    h.arrive(1, "q", 0);
    h.answer(1, "a");
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "x".into(),
    });
    h.send(Input::AgentUnpause { agent: aid("a") });
    h.end(1);
    assert_eq!(h.state("a"), AgentState::Available);
}

#[test]
fn abandon_while_ringing_cancels_the_offer() {
    let mut h = h_with(Strategy::LongestIdle, &["a"]);
    h.arrive(1, "q", 0);
    h.advance(secs(3));
    let acts = h.send(Input::CallAbandoned { call: CallId(1) });
    assert!(acts.contains(&Action::CancelOffer {
        call: CallId(1),
        agent: aid("a"),
        reason: CancelReason::CallerGone
    }));
    assert!(acts.contains(&Action::Left {
        call: CallId(1),
        queue: qid("q"),
        outcome: Outcome::Abandoned,
        wait: secs(3),
        hangup_cause: None
    }));
    assert_eq!(h.state("a"), AgentState::Available);
    assert_eq!(h.e.waiting(&qid("q")), 0);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn overflow_to_another_queue_keeps_entry_time_and_priority() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.max_wait = Some(secs(30));
    q1.overflow = Some(Overflow::Queue(qid("q2")));
    let q2 = queue("q2", Strategy::LongestIdle, &["b"]);
    let mut h = H::new(vec![q1, q2], &["b"]);
    h.login("b");
    h.arrive(9, "q2", 0);
    h.answer(9, "b");
    h.advance(secs(1));
    h.arrive(1, "q1", 5);
    h.advance(secs(1));
    h.arrive(2, "q2", 0);
    let acts = h.advance(secs(30));
    assert!(acts.contains(&Action::Moved {
        call: CallId(1),
        from: qid("q1"),
        to: qid("q2")
    }));
    assert!(left(&acts).is_empty());
    // Priority 5 kept: first in q2 although it arrived there last.
    assert_eq!(h.e.queue_position(CallId(1)), Some((qid("q2"), 1)));
    assert_eq!(offers(&h.end(9)), vec![(1, "b".to_owned())]);
    let acts = h.answer(1, "b");
    assert!(acts.contains(&Action::Connected {
        call: CallId(1),
        agent: aid("b"),
        wait: secs(31)
    }));
}

#[test]
fn overflow_to_hangup_and_plain_timeout() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.max_wait = Some(secs(10));
    q1.overflow = Some(Overflow::Hangup { cause: 480 });
    let mut q2 = queue("q2", Strategy::LongestIdle, &[]);
    q2.max_wait = Some(secs(20));
    let mut h = H::new(vec![q1, q2], &[]);
    h.arrive(1, "q1", 0);
    h.arrive(2, "q2", 0);
    let acts = h.advance(secs(10));
    assert_eq!(
        left(&acts),
        vec![(1, "q1".into(), Outcome::Overflow(qid("q1")), Some(480))]
    );
    let acts = h.advance(secs(10));
    assert_eq!(left(&acts), vec![(2, "q2".into(), Outcome::Timeout, None)]);
}

#[test]
fn max_wait_while_ringing_waits_for_the_offer_to_end() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.max_wait = Some(secs(10));
    let mut h = H::new(vec![q], &["a"]);
    h.arrive(1, "q", 0);
    h.advance(secs(8));
    h.login("a");
    assert!(left(&h.advance(secs(5))).is_empty());
    let acts = h.advance(secs(10)); // ring timeout at 8 + 15
    assert_eq!(left(&acts), vec![(1, "q".into(), Outcome::Timeout, None)]);
    assert!(offers(&acts).is_empty());
}

#[test]
fn join_empty_false_refuses_when_nobody_can_answer() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.join_empty = false;
    let mut h = H::new(vec![q], &["a"]);
    assert_eq!(
        left(&h.arrive(1, "q", 0)),
        vec![(1, "q".into(), Outcome::Rejected, None)]
    );
    h.login("a");
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "x".into(),
    });
    assert_eq!(
        left(&h.arrive(2, "q", 0)),
        vec![(2, "q".into(), Outcome::Rejected, None)]
    );
    h.send(Input::AgentUnpause { agent: aid("a") });
    assert_eq!(offers(&h.arrive(3, "q", 0)), vec![(3, "a".to_owned())]);
    // A busy member still counts: the caller may wait.
    h.answer(3, "a");
    assert!(left(&h.arrive(4, "q", 0)).is_empty());
}

#[test]
fn refusal_follows_the_overflow_rule() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.join_empty = false;
    q1.overflow = Some(Overflow::Queue(qid("q2")));
    let q2 = queue("q2", Strategy::LongestIdle, &[]);
    let mut h = H::new(vec![q1, q2], &[]);
    let acts = h.arrive(1, "q1", 0);
    assert!(acts.contains(&Action::Moved {
        call: CallId(1),
        from: qid("q1"),
        to: qid("q2")
    }));
    assert_eq!(h.e.waiting(&qid("q2")), 1);
}

#[test]
fn leave_empty_sends_waiting_calls_away() {
    let mut q = queue("q", Strategy::LongestIdle, &["a", "b"]);
    q.leave_empty = true;
    let mut h = H::new(vec![q], &["a", "b"]);
    h.login("a");
    h.login("b");
    h.arrive(1, "q", 0);
    h.arrive(2, "q", 0);
    h.answer(1, "a");
    h.answer(2, "b");
    h.arrive(3, "q", 0);
    h.arrive(4, "q", 0);
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "x".into(),
    });
    h.end(1);
    assert_eq!(h.e.waiting(&qid("q")), 2);
    // b logs out while on call: pending until the call ends, then the queue empties.
    assert!(left(&h.send(Input::AgentLogout { agent: aid("b") })).is_empty());
    assert_eq!(h.state("b"), AgentState::OnCall);
    let acts = h.end(2);
    assert_eq!(
        left(&acts),
        vec![
            (3, "q".into(), Outcome::Timeout, None),
            (4, "q".into(), Outcome::Timeout, None)
        ]
    );
    assert_eq!(h.state("b"), AgentState::LoggedOut);
}

#[test]
fn max_waiting_rejects_beyond_the_limit() {
    let mut q = queue("q", Strategy::LongestIdle, &[]);
    q.max_waiting = Some(2);
    let mut h = H::new(vec![q], &[]);
    assert!(left(&h.arrive(1, "q", 0)).is_empty());
    assert!(left(&h.arrive(2, "q", 0)).is_empty());
    assert_eq!(
        left(&h.arrive(3, "q", 0)),
        vec![(3, "q".into(), Outcome::Rejected, None)]
    );
    h.send(Input::CallAbandoned { call: CallId(1) });
    assert!(left(&h.arrive(4, "q", 0)).is_empty());
    assert_eq!(h.e.waiting(&qid("q")), 2);
}

#[test]
fn multi_queue_agent_takes_the_longest_waiter_across_queues() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let q2 = queue("q2", Strategy::LongestIdle, &["a"]);
    let mut h = H::new(vec![q1, q2], &["a"]);
    h.login("a");
    h.arrive(100, "q1", 0);
    h.answer(100, "a");
    // Alternate arrivals; q1 always gets calls one second after q2.
    for i in 0..4u64 {
        h.arrive(2 * i, "q2", 0);
        h.advance(secs(1));
        h.arrive(2 * i + 1, "q1", 9);
        h.advance(secs(1));
    }
    let mut served = Vec::new();
    let mut current = 100;
    for _ in 0..8 {
        let acts = h.end(current);
        let o = offers(&acts);
        assert_eq!(o.len(), 1);
        current = o[0].0;
        served.push(current);
        h.answer(current, "a");
    }
    assert_eq!(served, vec![0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn queue_weight_breaks_ties_between_queues() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let mut q2 = queue("q2", Strategy::LongestIdle, &["a"]);
    q2.weight = 5;
    let mut h = H::new(vec![q1, q2], &["a"]);
    h.arrive(1, "q1", 0);
    h.arrive(2, "q2", 0);
    assert_eq!(offers(&h.login("a")), vec![(2, "a".to_owned())]);
}

#[test]
fn login_to_a_subset_of_queues() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let q2 = queue("q2", Strategy::LongestIdle, &["a"]);
    let mut h = H::new(vec![q1, q2], &["a"]);
    h.arrive(1, "q1", 0);
    h.arrive(2, "q2", 0);
    let acts = h.send(Input::AgentLogin {
        agent: aid("a"),
        queues: Some(vec![qid("q2")]),
    });
    assert_eq!(offers(&acts), vec![(2, "a".to_owned())]);
    let by_state = h.e.agents_by_state(&qid("q1"));
    assert_eq!(by_state[0], ("logged_out", 1));
    let by_state = h.e.agents_by_state(&qid("q2"));
    assert_eq!(by_state[2], ("ringing", 1));
}

#[test]
fn move_to_front_and_to_queue() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let q2 = queue("q2", Strategy::LongestIdle, &["b"]);
    let mut h = H::new(vec![q1, q2], &["a", "b"]);
    for c in 1..=3 {
        h.arrive(c, "q1", 0);
        h.advance(secs(1));
    }
    h.send(Input::MoveToFront { call: CallId(3) });
    assert_eq!(h.e.queue_position(CallId(3)), Some((qid("q1"), 1)));
    assert_eq!(h.e.queue_position(CallId(1)), Some((qid("q1"), 2)));
    assert_eq!(h.e.longest_wait(&qid("q1"), h.now), Some(secs(3)));
    assert_eq!(offers(&h.login("a")), vec![(3, "a".to_owned())]);
    // Moving a ringing call cancels the offer; a then takes call 1.
    let acts = h.send(Input::MoveToQueue {
        call: CallId(3),
        queue: qid("q2"),
    });
    assert!(acts.contains(&Action::CancelOffer {
        call: CallId(3),
        agent: aid("a"),
        reason: CancelReason::Moved
    }));
    assert!(acts.contains(&Action::Moved {
        call: CallId(3),
        from: qid("q1"),
        to: qid("q2")
    }));
    assert_eq!(offers(&acts), vec![(1, "a".to_owned())]);
    assert_eq!(h.e.queue_position(CallId(3)), Some((qid("q2"), 1)));
    assert_eq!(offers(&h.login("b")), vec![(3, "b".to_owned())]);
}

#[test]
fn priority_first_then_fifo() {
    let mut h = H::new(vec![queue("q", Strategy::LongestIdle, &["a"])], &["a"]);
    for (c, p) in [(1, 0), (2, 5), (3, 0), (4, 5), (5, -1)] {
        h.arrive(c, "q", p);
        h.advance(secs(1));
    }
    let mut served = Vec::new();
    let mut acts = h.login("a");
    for _ in 0..5 {
        let o = offers(&acts);
        assert_eq!(o.len(), 1);
        served.push(o[0].0);
        h.answer(o[0].0, "a");
        acts = h.end(o[0].0);
    }
    assert_eq!(served, vec![2, 4, 1, 3, 5]);
}

#[test]
fn logout_while_ringing_cancels_and_reroutes() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    h.arrive(1, "q", 0);
    let acts = h.send(Input::AgentLogout { agent: aid("a") });
    assert!(acts.contains(&Action::CancelOffer {
        call: CallId(1),
        agent: aid("a"),
        reason: CancelReason::AgentGone
    }));
    assert_eq!(offers(&acts), vec![(1, "b".to_owned())]);
    assert_eq!(h.state("a"), AgentState::LoggedOut);
}

#[test]
fn overflow_cycle_with_zero_max_wait_terminates() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.max_wait = Some(Duration::ZERO);
    q1.overflow = Some(Overflow::Queue(qid("q2")));
    let mut q2 = queue("q2", Strategy::LongestIdle, &[]);
    q2.max_wait = Some(Duration::ZERO);
    q2.overflow = Some(Overflow::Queue(qid("q1")));
    let mut h = H::new(vec![q1, q2], &[]);
    h.arrive(1, "q1", 0);
    let mut all = Vec::new();
    for _ in 0..10 {
        h.e.handle_timeout(h.now);
        all.extend(h.drain());
    }
    assert_eq!(left(&all).len(), 1);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn constructor_rejects_bad_configuration() {
    let agents = vec![aid("a")];
    let err = |qs: Vec<QueueSettings>, ags: Vec<AgentId>| Engine::new(qs, ags, 0).err();
    assert_eq!(
        err(vec![queue("q", Strategy::RingAll, &["x"])], agents.clone()),
        Some(AcdError::UnknownMember {
            queue: qid("q"),
            agent: aid("x")
        })
    );
    assert_eq!(
        err(vec![], vec![aid("a"), aid("a")]),
        Some(AcdError::DuplicateAgent(aid("a")))
    );
    assert_eq!(
        err(
            vec![
                queue("q", Strategy::RingAll, &[]),
                queue("q", Strategy::RingAll, &[])
            ],
            agents.clone()
        ),
        Some(AcdError::DuplicateQueue(qid("q")))
    );
    assert_eq!(
        err(
            vec![queue("q", Strategy::RingAll, &["a", "a"])],
            agents.clone()
        ),
        Some(AcdError::DuplicateMember {
            queue: qid("q"),
            agent: aid("a")
        })
    );
    let mut q = queue("q", Strategy::RingAll, &[]);
    q.overflow = Some(Overflow::Queue(qid("nope")));
    assert!(matches!(
        err(vec![q.clone()], agents.clone()),
        Some(AcdError::UnknownOverflowQueue { .. })
    ));
    q.overflow = Some(Overflow::Queue(qid("q")));
    assert_eq!(
        err(vec![q.clone()], agents.clone()),
        Some(AcdError::OverflowToSelf(qid("q")))
    );
    q.overflow = None;
    q.ring_timeout = Duration::ZERO;
    assert_eq!(
        err(vec![q], agents),
        Some(AcdError::ZeroRingTimeout(qid("q")))
    );
}

#[test]
fn unknown_ids_and_invalid_transitions_are_counted() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    h.send(Input::AgentLogin {
        agent: aid("zz"),
        queues: None,
    });
    h.arrive(1, "nope", 0);
    h.arrive(2, "q", 0);
    h.arrive(2, "q", 0); // duplicate
    h.answer(2, "b"); // b is not ringing
    h.send(Input::AgentLogin {
        agent: aid("a"),
        queues: None,
    }); // already logged in
    h.end(77);
    assert_eq!(h.e.ignored_inputs(), 6);
    assert_eq!(h.state("a"), AgentState::Ringing);
}

#[test]
fn views_report_queue_state() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    assert_eq!(h.e.longest_wait(&qid("q"), h.now), None);
    h.arrive(1, "q", 0);
    h.answer(1, "a");
    h.arrive(2, "q", 0);
    h.send(Input::AgentPause {
        agent: aid("b"),
        reason: "x".into(),
    });
    h.arrive(3, "q", 0);
    h.advance(secs(4));
    assert_eq!(h.e.waiting(&qid("q")), 2);
    assert_eq!(h.e.longest_wait(&qid("q"), h.now), Some(secs(4)));
    let by: Vec<_> =
        h.e.agents_by_state(&qid("q"))
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
    // b rings with a pending pause.
    assert_eq!(by, vec![("ringing", 1), ("on_call", 1)]);
    assert_eq!(h.e.connected_calls(), 1);
    assert_eq!(h.e.sl_target(&qid("q")), Some(secs(15)));
}

#[test]
fn expired_ring_all_call_gets_no_new_offers_and_leaves_when_the_last_ends() {
    let mut q = queue("q", Strategy::RingAll, &["a", "b"]);
    q.max_wait = Some(secs(10));
    let mut h = H::new(vec![q], &["a", "b"]);
    h.login("a");
    h.arrive(1, "q", 0); // rings a until 15 s
    h.advance(secs(5));
    assert_eq!(offers(&h.login("b")), vec![(1, "b".to_owned())]); // until 20 s
    h.advance(secs(5)); // max wait passes while ringing
    let acts = h.advance(secs(5)); // a times out: no new offer, b still rings
    assert!(
        offers(&acts).is_empty() && left(&acts).is_empty(),
        "{acts:?}"
    );
    assert_eq!(h.state("a"), AgentState::Available);
    let acts = h.advance(secs(5));
    assert_eq!(left(&acts), vec![(1, "q".into(), Outcome::Timeout, None)]);
    assert!(offers(&acts).is_empty());
}
