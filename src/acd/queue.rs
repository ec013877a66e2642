//! Queues: the ordered index of waiting calls, admission (max_waiting / join_empty), max-wait,
//! leave-empty and overflow.

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::time::Instant;

use super::agent::Agent;
use super::{
    Action, AgentState, CallId, Engine, Outcome, QueueSettings, Strategy, Timer, TimerKey,
};

/// Calls are grouped by `(front rank, priority)`: front rank 0 for ordinary calls, a distinct
/// negative number for each call moved to the front (most recent first); higher priority first.
pub(super) type GroupKey = (i64, Reverse<i32>);
/// Within a group: entry time into the first queue, then arrival sequence.
pub(super) type SlotKey = (Instant, u64);

#[derive(Debug, Clone)]
pub(super) struct MemberSlot {
    pub agent: usize,
    pub tier: u32,
    /// The agent is logged into this queue (it may still be paused, busy, …).
    pub logged_in: bool,
}

#[derive(Debug, Clone, Copy)]
pub(super) enum OverflowTo {
    Hangup(u16),
    Queue(usize),
}

#[derive(Debug)]
pub(super) struct Queue {
    pub settings: QueueSettings,
    /// In configured order (round-robin order).
    pub members: Vec<MemberSlot>,
    pub max_tier: u32,
    pub overflow: Option<OverflowTo>,
    pub order: BTreeMap<GroupKey, BTreeMap<SlotKey, CallId>>,
    pub waiting: usize,
    pub rr_next: usize,
    pub next_front: i64,
}

/// A call waiting in a queue.
#[derive(Debug, Clone)]
pub(super) struct CallEntry {
    pub id: CallId,
    pub queue: usize,
    pub priority: i32,
    pub seq: u64,
    pub first_entered: Instant,
    pub queue_entered: Instant,
    pub front: i64,
    /// Agents ringing for this call (at most one unless ring-all).
    pub ringing: Vec<usize>,
    /// Must leave (max wait / emptied queue) as soon as no agent rings for it; gets no new offer.
    pub expired: bool,
    pub max_wait_timer: Option<TimerKey>,
    pub widen_timer: Option<TimerKey>,
    /// Overflow hops taken at one instant (guards against overflow cycles).
    pub hops: (Instant, u32),
}

impl CallEntry {
    pub fn group(&self) -> GroupKey {
        (self.front, Reverse(self.priority))
    }

    pub fn slot(&self) -> SlotKey {
        (self.first_entered, self.seq)
    }
}

/// Why a call leaves a queue without an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LeaveWhy {
    Refused,
    TimedOut,
}

impl Queue {
    pub fn new(
        settings: QueueSettings,
        members: Vec<MemberSlot>,
        overflow: Option<OverflowTo>,
    ) -> Self {
        let max_tier = members.iter().map(|m| m.tier).max().unwrap_or(0);
        Queue {
            settings,
            members,
            max_tier,
            overflow,
            order: BTreeMap::new(),
            waiting: 0,
            rr_next: 0,
            next_front: -1,
        }
    }

    fn insert(&mut self, c: &CallEntry) {
        self.order
            .entry(c.group())
            .or_default()
            .insert(c.slot(), c.id);
        self.waiting += 1;
    }

    fn remove(&mut self, c: &CallEntry) {
        let g = c.group();
        if let Some(group) = self.order.get_mut(&g) {
            if group.remove(&c.slot()).is_some() {
                self.waiting = self.waiting.saturating_sub(1);
            }
            if group.is_empty() {
                self.order.remove(&g);
            }
        }
    }

    /// Gives a waiting call a front rank ahead of every other call of the queue.
    pub fn move_to_front(&mut self, c: &mut CallEntry) {
        self.remove(c);
        c.front = self.next_front;
        self.next_front = self.next_front.saturating_sub(1);
        self.insert(c);
    }

    /// The highest tier allowed for a call at `now` (`u32::MAX` unless skill tiers).
    pub fn allowed_tier(&self, c: &CallEntry, now: Instant) -> u32 {
        if self.settings.strategy != Strategy::SkillTiers || self.settings.widen_after.is_zero() {
            return u32::MAX;
        }
        let waited = now.saturating_duration_since(c.first_entered).as_nanos();
        let steps = waited / self.settings.widen_after.as_nanos();
        u32::try_from(steps).unwrap_or(u32::MAX)
    }

    /// When the call's allowed tier grows next, if it still matters.
    fn next_widen(&self, c: &CallEntry, now: Instant) -> Option<Instant> {
        if self.settings.strategy != Strategy::SkillTiers || self.settings.widen_after.is_zero() {
            return None;
        }
        let allowed = self.allowed_tier(c, now);
        if allowed >= self.max_tier {
            return None;
        }
        let step = self
            .settings
            .widen_after
            .checked_mul(allowed.checked_add(1)?)?;
        c.first_entered.checked_add(step)
    }

    /// Some member is logged in and not paused.
    pub fn has_active_member(&self, agents: &[Agent]) -> bool {
        self.members.iter().any(|m| {
            m.logged_in
                && !matches!(
                    agents[m.agent].state,
                    AgentState::LoggedOut | AgentState::Paused(_)
                )
        })
    }

    pub fn oldest_entry(&self) -> Option<Instant> {
        self.order
            .values()
            .filter_map(|g| g.first_key_value().map(|(k, _)| k.0))
            .min()
    }

    /// 1-based position of a waiting call.
    pub fn position(&self, c: &CallEntry) -> Option<usize> {
        let g = c.group();
        let before: usize = self.order.range(..g).map(|(_, grp)| grp.len()).sum();
        let group = self.order.get(&g)?;
        group.get(&c.slot())?;
        Some(before + group.range(..c.slot()).count() + 1)
    }

    /// Calls in queue order.
    pub fn call_ids(&self) -> Vec<CallId> {
        self.order
            .values()
            .flat_map(|g| g.values().copied())
            .collect()
    }
}

impl Engine {
    /// A call asks to enter queue `q`: enters it, or is refused and follows the overflow rules.
    pub(super) fn admit(&mut self, mut entry: CallEntry, mut q: usize, now: Instant) {
        loop {
            if !self.refuses(q) {
                self.enter(entry, q, now);
                return;
            }
            match self.overflow_step(&mut entry, q, LeaveWhy::Refused, now) {
                Some(next) => q = next,
                None => return,
            }
        }
    }

    fn refuses(&self, q: usize) -> bool {
        let queue = &self.queues[q];
        let s = &queue.settings;
        s.max_waiting.is_some_and(|m| queue.waiting >= m)
            || (!s.join_empty && !queue.has_active_member(&self.agents))
    }

    /// Puts a call into queue `q` (no admission check) and offers it if possible.
    pub(super) fn enter(&mut self, mut entry: CallEntry, q: usize, now: Instant) {
        entry.queue = q;
        entry.queue_entered = now;
        entry.front = 0;
        entry.ringing.clear();
        entry.expired = false;
        let queue = &self.queues[q];
        let max_wait_at = queue.settings.max_wait.and_then(|d| now.checked_add(d));
        let widen_at = queue.next_widen(&entry, now);
        entry.max_wait_timer = self.arm(max_wait_at, Timer::MaxWait(entry.id));
        entry.widen_timer = self.arm(widen_at, Timer::Widen(entry.id));
        self.queues[q].insert(&entry);
        self.waiting_calls.insert(entry.id, entry);
        self.dispatch_queue(q, now);
    }

    /// Takes a waiting call out of its queue (timers disarmed; offers are the caller's business).
    pub(super) fn remove_waiting(&mut self, call: CallId) -> Option<CallEntry> {
        let entry = self.waiting_calls.remove(&call)?;
        self.queues[entry.queue].remove(&entry);
        self.disarm(entry.max_wait_timer);
        self.disarm(entry.widen_timer);
        Some(entry)
    }

    /// A call removed from `from` leaves it by the queue's overflow rule.
    pub(super) fn route_out(
        &mut self,
        mut entry: CallEntry,
        from: usize,
        why: LeaveWhy,
        now: Instant,
    ) {
        if let Some(next) = self.overflow_step(&mut entry, from, why, now) {
            self.admit(entry, next, now);
        }
    }

    /// Applies `from`'s overflow rule: `Some(target)` after emitting `Moved`, `None` after `Left`.
    fn overflow_step(
        &mut self,
        entry: &mut CallEntry,
        from: usize,
        why: LeaveWhy,
        now: Instant,
    ) -> Option<usize> {
        let plain = match why {
            LeaveWhy::Refused => Outcome::Rejected,
            LeaveWhy::TimedOut => Outcome::Timeout,
        };
        match self.queues[from].overflow {
            Some(OverflowTo::Queue(target)) => {
                if entry.hops.0 == now {
                    entry.hops.1 = entry.hops.1.saturating_add(1);
                } else {
                    entry.hops = (now, 1);
                }
                if usize::try_from(entry.hops.1).unwrap_or(usize::MAX) <= self.queues.len() {
                    self.push(Action::Moved {
                        call: entry.id,
                        from: self.queues[from].settings.id.clone(),
                        to: self.queues[target].settings.id.clone(),
                    });
                    return Some(target);
                }
                self.emit_left(entry, from, plain, None, now);
            }
            Some(OverflowTo::Hangup(cause)) => {
                let outcome = Outcome::Overflow(self.queues[from].settings.id.clone());
                self.emit_left(entry, from, outcome, Some(cause), now);
            }
            None => self.emit_left(entry, from, plain, None, now),
        }
        None
    }

    pub(super) fn emit_left(
        &mut self,
        entry: &CallEntry,
        from: usize,
        outcome: Outcome,
        hangup_cause: Option<u16>,
        now: Instant,
    ) {
        self.push(Action::Left {
            call: entry.id,
            queue: self.queues[from].settings.id.clone(),
            outcome,
            wait: now.saturating_duration_since(entry.first_entered),
            hangup_cause,
        });
    }

    /// The max-wait timer of a call fired.
    pub(super) fn on_max_wait(&mut self, now: Instant, call: CallId, key: TimerKey) {
        let Some(c) = self.waiting_calls.get_mut(&call) else {
            return;
        };
        if c.max_wait_timer != Some(key) {
            return;
        }
        c.max_wait_timer = None;
        if !c.ringing.is_empty() {
            c.expired = true;
            return;
        }
        let q = c.queue;
        if let Some(entry) = self.remove_waiting(call) {
            self.route_out(entry, q, LeaveWhy::TimedOut, now);
        }
    }

    /// The allowed tier of a call grew: re-arm and offer.
    pub(super) fn on_widen(&mut self, now: Instant, call: CallId, key: TimerKey) {
        let Some(c) = self.waiting_calls.get(&call) else {
            return;
        };
        if c.widen_timer != Some(key) {
            return;
        }
        let q = c.queue;
        let next = self.queues[q].next_widen(c, now);
        let timer = self.arm(next, Timer::Widen(call));
        if let Some(c) = self.waiting_calls.get_mut(&call) {
            c.widen_timer = timer;
        }
        self.dispatch_queue(q, now);
    }

    /// An offer of a waiting call ended without an answer: the call leaves if it expired
    /// meanwhile, otherwise it is offered again.
    pub(super) fn call_offer_released(&mut self, now: Instant, call: CallId) {
        let Some(c) = self.waiting_calls.get(&call) else {
            return;
        };
        let q = c.queue;
        if c.expired && c.ringing.is_empty() {
            if let Some(entry) = self.remove_waiting(call) {
                self.route_out(entry, q, LeaveWhy::TimedOut, now);
            }
        } else {
            self.dispatch_queue(q, now);
        }
    }

    /// After members left or paused: queues with `leave_empty` and no active member empty out.
    pub(super) fn check_leave_empty(&mut self, now: Instant, queues: &[usize]) {
        for &q in queues {
            let queue = &self.queues[q];
            if !queue.settings.leave_empty
                || queue.waiting == 0
                || queue.has_active_member(&self.agents)
            {
                continue;
            }
            for call in queue.call_ids() {
                let Some(c) = self.waiting_calls.get_mut(&call) else {
                    continue;
                };
                if !c.ringing.is_empty() {
                    c.expired = true;
                    continue;
                }
                if let Some(entry) = self.remove_waiting(call) {
                    self.route_out(entry, q, LeaveWhy::TimedOut, now);
                }
            }
        }
    }
}
