//! Routing: a queue offering its head calls to free members by its strategy, an available agent
//! taking the longest waiter across its queues, and the offer itself.

use std::cmp::Reverse;
use std::collections::HashMap;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::Rng;

use super::agent::{Agent, Ring};
use super::queue::{CallEntry, Queue};
use super::{Action, AgentState, CallId, Engine, Strategy, Timer};

/// How an agent ranks the candidate calls of its queues: earliest entry, higher weight, arrival.
type PickKey = (Instant, Reverse<u32>, u64);

/// Whether a call can take a new offer now (regardless of the agent's tier).
fn offerable(queue: &Queue, c: &CallEntry) -> bool {
    !c.expired && (c.ringing.is_empty() || queue.settings.strategy == Strategy::RingAll)
}

/// The first call of the queue an agent of `tier` may take. Skipped calls are the ones ringing
/// someone (at most one per member) and, with skill tiers, the rest of a group once one call is
/// too young for the tier (calls later in a group entered later, so they are younger still).
fn first_eligible<'a>(
    queue: &Queue,
    calls: &'a HashMap<CallId, CallEntry>,
    tier: u32,
    now: Instant,
) -> Option<&'a CallEntry> {
    for group in queue.order.values() {
        for id in group.values() {
            let Some(c) = calls.get(id) else {
                continue;
            };
            if !offerable(queue, c) {
                continue;
            }
            if tier > queue.allowed_tier(c, now) {
                break;
            }
            return Some(c);
        }
    }
    None
}

/// Picks the member slot(s) to ring for one call among `eligible` (non-empty) free slots.
fn choose(
    queue: &Queue,
    agents: &[Agent],
    eligible: &[usize],
    rr: &mut usize,
    rng: &mut StdRng,
) -> Vec<usize> {
    let idle = |s: usize| agents[queue.members[s].agent].idle_since;
    let pick = match queue.settings.strategy {
        Strategy::RingAll => return eligible.to_vec(),
        Strategy::LongestIdle => eligible.iter().copied().min_by_key(|&s| (idle(s), s)),
        Strategy::FewestCalls => eligible
            .iter()
            .copied()
            .min_by_key(|&s| (agents[queue.members[s].agent].answered, idle(s), s)),
        Strategy::SkillTiers => eligible
            .iter()
            .copied()
            .min_by_key(|&s| (queue.members[s].tier, idle(s), s)),
        Strategy::Random => eligible.get(rng.random_range(0..eligible.len())).copied(),
        Strategy::RoundRobin => {
            let n = queue.members.len().max(1);
            let start = *rr % n;
            let chosen = eligible
                .iter()
                .copied()
                .min_by_key(|&s| (s + n - start) % n);
            if let Some(s) = chosen {
                *rr = s + 1;
            }
            chosen
        }
    };
    pick.into_iter().collect()
}

impl Engine {
    /// Offers the queue's head calls to its free members (after a call entered, became
    /// offerable again, or its tier widened). FIFO: calls are served in queue order; a call
    /// is skipped only while it rings someone or no free member is eligible for it.
    pub(super) fn dispatch_queue(&mut self, q: usize, now: Instant) {
        let queue = &self.queues[q];
        if queue.waiting == 0 {
            return;
        }
        let agents = &self.agents;
        let mut free: Vec<usize> = (0..queue.members.len())
            .filter(|&s| {
                let m = &queue.members[s];
                m.logged_in && agents[m.agent].state == AgentState::Available
            })
            .collect();
        if free.is_empty() {
            return;
        }
        let mut rr = queue.rr_next;
        let mut plan: Vec<(CallId, Vec<usize>)> = Vec::new();
        'groups: for group in queue.order.values() {
            for id in group.values() {
                let Some(c) = self.waiting_calls.get(id) else {
                    continue;
                };
                if !offerable(queue, c) {
                    continue;
                }
                let allowed = queue.allowed_tier(c, now);
                let eligible: Vec<usize> = free
                    .iter()
                    .copied()
                    .filter(|&s| queue.members[s].tier <= allowed)
                    .collect();
                if eligible.is_empty() {
                    // Only tiers exclude free members; younger calls of this group fare no better.
                    continue 'groups;
                }
                let chosen = choose(queue, agents, &eligible, &mut rr, &mut self.rng);
                free.retain(|s| !chosen.contains(s));
                plan.push((
                    c.id,
                    chosen.iter().map(|&s| queue.members[s].agent).collect(),
                ));
                if free.is_empty() {
                    break 'groups;
                }
            }
        }
        for (call, chosen) in plan {
            for a in chosen {
                self.offer(now, call, a);
            }
        }
    }

    /// An available agent takes the longest-waiting eligible call across the queues it is
    /// logged into: each queue's first eligible call (priority order), then the earliest entry,
    /// then the higher queue weight.
    pub(super) fn pick(&mut self, now: Instant, a: usize) {
        let mut best: Option<(PickKey, CallId)> = None;
        for &(q, slot) in &self.agents[a].memberships {
            let queue = &self.queues[q];
            let m = &queue.members[slot];
            if !m.logged_in {
                continue;
            }
            if let Some(c) = first_eligible(queue, &self.waiting_calls, m.tier, now) {
                let key = (c.first_entered, Reverse(queue.settings.weight), c.seq);
                if best.as_ref().is_none_or(|(k, _)| key < *k) {
                    best = Some((key, c.id));
                }
            }
        }
        if let Some((_, call)) = best {
            self.offer(now, call, a);
        }
    }

    /// Rings agent `a` (available) for a waiting call.
    pub(super) fn offer(&mut self, now: Instant, call: CallId, a: usize) {
        let Some(c) = self.waiting_calls.get_mut(&call) else {
            return;
        };
        c.ringing.push(a);
        let q = c.queue;
        let queue = &mut self.queues[q];
        if queue.settings.strategy == Strategy::RoundRobin {
            if let Some(&(_, slot)) = self.agents[a].memberships.iter().find(|m| m.0 == q) {
                queue.rr_next = slot + 1;
            }
        }
        let at = now.checked_add(queue.settings.ring_timeout);
        let timer = self.arm(at, Timer::Ring { call, agent: a });
        self.agents[a].ringing = Some(Ring { call, timer });
        self.push(Action::Offer {
            call,
            agent: self.agents[a].id.clone(),
        });
        self.set_state(a, AgentState::Ringing);
    }
}
