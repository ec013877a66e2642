//! Property tests: random configurations and random input sequences in virtual time, checked
//! against a model rebuilt only from the inputs sent and the actions emitted.

use std::time::Duration;

use proptest::prelude::{any, prop, prop_oneof, proptest, Just, ProptestConfig};
use proptest::strategy::Strategy as PStrategy;

use super::tests::{aid, qid, queue};
use super::*;

mod sim;
use sim::Sim;

pub(super) const AGENTS: usize = 5;
pub(super) const QUEUES: usize = 3;

/// One queue's random settings: strategy, member tiers, wrap-up ms, max wait s, overflow kind,
/// join_empty, leave_empty, max_waiting, max_missed, weight, widen_after s, ring timeout s.
type QCfg = (
    u8,
    [Option<u32>; AGENTS],
    u32,
    Option<u32>,
    u8,
    (bool, bool),
    Option<usize>,
    u32,
    u32,
    u32,
    u32,
);

fn strategy_of(n: u8) -> Strategy {
    match n % 6 {
        0 => Strategy::LongestIdle,
        1 => Strategy::RoundRobin,
        2 => Strategy::RingAll,
        3 => Strategy::FewestCalls,
        4 => Strategy::Random,
        _ => Strategy::SkillTiers,
    }
}

fn qcfg() -> impl PStrategy<Value = QCfg> {
    (
        0u8..6,
        [
            prop::option::weighted(0.6, 0u32..3),
            prop::option::weighted(0.6, 0u32..3),
            prop::option::weighted(0.6, 0u32..3),
            prop::option::weighted(0.6, 0u32..3),
            prop::option::weighted(0.6, 0u32..3),
        ],
        prop_oneof![Just(0u32), 0u32..20_000],
        prop::option::of(0u32..90),
        0u8..3,
        (any::<bool>(), any::<bool>()),
        prop::option::of(0usize..6),
        0u32..4,
        0u32..3,
        prop_oneof![Just(0u32), 1u32..30],
        1u32..25,
    )
}

/// Builds the queue settings; `fifo` keeps only what cannot reorder or remove calls.
fn build(cfgs: &[QCfg], fifo: bool) -> Vec<QueueSettings> {
    cfgs.iter()
        .enumerate()
        .map(|(i, c)| {
            let mut q = queue(&format!("q{i}"), strategy_of(c.0), &[]);
            q.members = (0..AGENTS)
                .filter_map(|a| {
                    c.1[a].map(|tier| Member {
                        agent: aid(&format!("a{a}")),
                        tier: if fifo { 0 } else { tier },
                    })
                })
                .collect();
            q.wrapup = Duration::from_millis(u64::from(c.2));
            q.ring_timeout = Duration::from_secs(u64::from(c.10));
            q.max_missed = c.7;
            q.weight = c.8;
            q.widen_after = Duration::from_secs(u64::from(c.9));
            if !fifo {
                q.max_wait = c.3.map(|s| Duration::from_secs(u64::from(s)));
                q.overflow = match c.4 {
                    0 => None,
                    1 => Some(Overflow::Hangup { cause: 480 }),
                    _ => Some(Overflow::Queue(qid(&format!("q{}", (i + 1) % QUEUES)))),
                };
                q.join_empty = c.5 .0;
                q.leave_empty = c.5 .1;
                q.max_waiting = c.6;
            }
            q
        })
        .collect()
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    Arrive(u8, i32),
    Abandon(u8),
    Answer(u8),
    Fail(u8, bool),
    End(u8),
    Login(u8, Option<u8>),
    Logout(u8),
    Pause(u8),
    Unpause(u8),
    EndWrapup(u8),
    MoveFront(u8),
    MoveQueue(u8, u8),
    Advance(u32),
    Garbage(u8),
}

fn op(general: bool) -> impl PStrategy<Value = Op> {
    let a = 0u8..AGENTS as u8;
    let common = prop_oneof![
        4 => (0u8..QUEUES as u8, 0i32..3).prop_map(|(q, p)| Op::Arrive(q, p)),
        6 => any::<u8>().prop_map(Op::Answer),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(x, m)| Op::Fail(x, m)),
        3 => any::<u8>().prop_map(Op::End),
        3 => (a.clone(), prop::option::of(0u8..8)).prop_map(|(x, s)| Op::Login(x, s)),
        1 => a.clone().prop_map(Op::Logout),
        1 => a.clone().prop_map(Op::Pause),
        2 => a.clone().prop_map(Op::Unpause),
        1 => a.clone().prop_map(Op::EndWrapup),
        4 => prop_oneof![0u32..3_000, 0u32..30_000, 0u32..200_000].prop_map(Op::Advance),
        1 => any::<u8>().prop_map(Op::Garbage),
    ];
    let disruptive = prop_oneof![
        any::<u8>().prop_map(Op::Abandon),
        any::<u8>().prop_map(Op::MoveFront),
        (any::<u8>(), 0u8..QUEUES as u8).prop_map(|(c, q)| Op::MoveQueue(c, q)),
    ];
    let general_weight = if general { 2 } else { 0 };
    prop_oneof![10 => common, general_weight => disruptive]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any configuration, any inputs: no double offers, states consistent, `waiting()` exact,
    /// work conserving, every call leaves exactly once, never a panic.
    #[test]
    fn random_traffic_keeps_invariants(
        cfgs in prop::collection::vec(qcfg(), QUEUES),
        ops in prop::collection::vec(op(true), 1..150),
        seed in any::<u64>(),
        by_time in any::<bool>(),
    ) {
        let mut sim = Sim::new(build(&cfgs, false), seed, false, false);
        for op in ops {
            sim.step(op);
        }
        sim.finish(by_time);
    }

    /// Without abandons, moves, overflow or tiers: a call is never offered while a call ahead
    /// of it (priority, then arrival) in its queue rings nobody; with agents answering at once,
    /// calls are connected in that order.
    #[test]
    fn fifo_within_priority(
        cfgs in prop::collection::vec(qcfg(), QUEUES),
        ops in prop::collection::vec(op(false), 1..150),
        seed in any::<u64>(),
        auto_answer in any::<bool>(),
    ) {
        let mut sim = Sim::new(build(&cfgs, true), seed, true, auto_answer);
        for op in ops {
            sim.step(op);
        }
        sim.finish(false);
    }
}
