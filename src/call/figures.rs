//! The live figures of the call layer: a machine with no I/O that counts what calls do into
//! [`LiveStats`] (today, current/last interval) and the call metrics, accounts each agent's time
//! per state, and builds the snapshot the API and `ctid status` read.
//!
//! Inputs (`handle_*`, each with the time of its input): a call refused, answered, left the
//! queue unanswered, ended after talk; an agent's new state. Output: [`LiveFigures::poll_snapshot`]
//! (with the engine's view of right now: waiting callers, agents by state), and the metric
//! gauges it sets on the way.
//!
//! Must not know: channels, the clock, SIP, SQL. (The `metrics` facade is a recorder in memory,
//! not I/O.)

use crate::acd::{AgentId, Engine, QueueId};
use crate::clock::Now;
use crate::stats::{LiveStats, Snapshot};
use std::collections::HashMap;
use std::time::{Duration, Instant};

pub(super) struct LiveFigures {
    stats: LiveStats,
    /// Queue → its service-level target (answered within it counts as in target).
    sl_targets: HashMap<String, Duration>,
    /// An abandon within this wait is a short abandon.
    short_abandon: Duration,
    /// Each agent's state kind and when its time in it was last accounted (for metrics).
    agent_states: HashMap<AgentId, (&'static str, Instant)>,
}

impl LiveFigures {
    pub fn new(
        stats: LiveStats,
        sl_targets: HashMap<String, Duration>,
        short_abandon: Duration,
        agents: &[AgentId],
        now: Now,
    ) -> LiveFigures {
        LiveFigures {
            stats,
            sl_targets,
            short_abandon,
            agent_states: agents
                .iter()
                .map(|a| (a.clone(), ("logged_out", now.mono)))
                .collect(),
        }
    }

    /// A call entered `queue`.
    pub fn handle_entered(&mut self, queue: &str) {
        crate::metrics::call_entered(queue);
    }

    /// A call to `queue` was refused on arrival (counted now, as the report and a restart's
    /// rebuild do).
    pub fn handle_refused(&mut self, queue: &str, now: Now) {
        crate::metrics::call_entered(queue);
        crate::metrics::call_left(queue, "rejected", 0.0, false);
        self.stats
            .record_left(queue, "rejected", 0, false, false, now.wall_ms);
    }

    /// A call of `queue` was answered after `wait`. Returns whether it was within the target.
    pub fn handle_answered(&mut self, queue: &str, wait: Duration, now: Now) -> bool {
        let in_target = wait <= self.sl_targets.get(queue).copied().unwrap_or_default();
        crate::metrics::call_left(queue, "answered", wait.as_secs_f64(), false);
        if in_target {
            crate::metrics::answered_in_target(queue);
        }
        let wait_ms = wait.as_millis() as u64;
        self.stats
            .record_left(queue, "answered", wait_ms, false, in_target, now.wall_ms);
        in_target
    }

    /// A call left `queue` unanswered (`outcome`: abandoned, timeout, overflow, rejected,
    /// callback_requested) after `wait`. Returns whether it was a short abandon (`None` when
    /// the question does not apply: not an abandon).
    pub fn handle_left(
        &mut self,
        queue: &str,
        outcome: &str,
        wait: Duration,
        now: Now,
    ) -> Option<bool> {
        let short = (outcome == "abandoned").then(|| wait <= self.short_abandon);
        let is_short = short == Some(true);
        crate::metrics::call_left(queue, outcome, wait.as_secs_f64(), is_short);
        self.stats.record_left(
            queue,
            outcome,
            wait.as_millis() as u64,
            is_short,
            false,
            now.wall_ms,
        );
        short
    }

    /// An answered call of `queue` ended after `talk`.
    pub fn handle_talk(&mut self, queue: &str, talk: Duration, now: Now) {
        crate::metrics::call_handled(queue, talk.as_secs_f64());
        let answered_at_ms = now.wall_ms.saturating_sub(talk.as_millis() as u64);
        self.stats
            .record_talk(queue, talk.as_millis() as u64, answered_at_ms);
    }

    /// Account the time an agent spent in its previous state.
    pub fn handle_agent_state(&mut self, agent: AgentId, kind: &'static str, now: Now) {
        if let Some((old, since)) = self.agent_states.insert(agent, (kind, now.mono)) {
            crate::metrics::agent_state_seconds(old, now.since(since).as_secs_f64());
        }
    }

    /// The figures as of `now`, with `engine`'s view of each queue right now; on the way, the
    /// queue and agent gauges and the agents' time per state for `/metrics` (cost O(queues +
    /// agents), independent of the number of calls).
    pub fn poll_snapshot(&mut self, engine: &Engine, now: Now) -> Snapshot {
        let mut queues: Vec<&String> = self.sl_targets.keys().collect();
        queues.sort();
        for q in queues {
            let id = QueueId(q.clone());
            let longest = engine
                .longest_wait(&id, now.mono)
                .map_or(0.0, |d| d.as_secs_f64());
            crate::metrics::set_waiting(q, engine.waiting(&id), longest);
            crate::metrics::set_agents(Some(q), &engine.agents_by_state(&id));
        }
        let mut totals: HashMap<&'static str, usize> = HashMap::new();
        for (kind, since) in self.agent_states.values_mut() {
            crate::metrics::agent_state_seconds(kind, now.since(*since).as_secs_f64());
            *since = now.mono;
            *totals.entry(*kind).or_default() += 1;
        }
        let totals: Vec<(&str, usize)> = totals.into_iter().collect();
        crate::metrics::set_agents(None, &totals);
        let mut snapshot = self.stats.snapshot(now.wall_ms);
        for q in &mut snapshot.queues {
            let id = QueueId(q.queue.clone());
            q.now.waiting = engine.waiting(&id);
            q.now.longest_wait_secs = engine
                .longest_wait(&id, now.mono)
                .map_or(0.0, |d| d.as_secs_f64());
            q.now.agents = engine
                .agents_by_state(&id)
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
        }
        snapshot
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{CallId, Input, Member, QueueSettings};
    use crate::stats::QueueGoals;
    use jiff::tz::TimeZone;

    const QUEUE: &str = "sales";

    /// 2026-12-08 10:00:00 UTC.
    fn t0() -> Now {
        Now::at(Instant::now(), 1_796_724_000_000)
    }

    fn figures(now: Now) -> (LiveFigures, Engine) {
        let stats = LiveStats::new(
            TimeZone::UTC,
            15,
            vec![(QUEUE.into(), QueueGoals::default())],
        );
        let agents = vec![AgentId("a1".into())];
        let mut q = QueueSettings::new(QUEUE.to_string());
        q.members = vec![Member {
            agent: agents[0].clone(),
            tier: 0,
        }];
        let engine = Engine::new(vec![q], agents.clone(), 1).expect("engine");
        let sl = HashMap::from([(QUEUE.to_string(), Duration::from_secs(20))]);
        let f = LiveFigures::new(stats, sl, Duration::from_secs(5), &agents, now);
        (f, engine)
    }

    fn today(s: &Snapshot) -> &crate::stats::Figures {
        &s.queues[0].today
    }

    #[test]
    fn answers_and_abandons_count_where_a_supervisor_reads_them() {
        let now = t0();
        let (mut f, engine) = figures(now);
        assert!(f.handle_answered(QUEUE, Duration::from_secs(12), now));
        assert!(!f.handle_answered(QUEUE, Duration::from_secs(25), now));
        assert_eq!(
            f.handle_left(QUEUE, "abandoned", Duration::from_secs(3), now),
            Some(true),
            "3 s is a short abandon"
        );
        assert_eq!(
            f.handle_left(QUEUE, "abandoned", Duration::from_secs(40), now),
            Some(false)
        );
        assert_eq!(
            f.handle_left(QUEUE, "timeout", Duration::from_secs(300), now),
            None
        );
        f.handle_refused(QUEUE, now);
        let s = f.poll_snapshot(&engine, now.later(Duration::from_secs(1)));
        let t = today(&s);
        assert_eq!(t.offered, 6);
        assert_eq!(t.answered, 2);
        assert_eq!(t.answered_in_target, 1);
        assert_eq!(t.abandoned, 2);
        assert_eq!(t.short_abandons, 1);
        assert_eq!(t.timeouts, 1);
        assert_eq!(t.rejected, 1);
        // SL over offered minus short abandons: 1 of 5.
        assert_eq!(t.sl_offered, Some(0.2));
        assert_eq!(t.asa_secs, Some(18.5));
        assert_eq!(t.longest_wait_secs, Some(300.0));
        assert_eq!(t.aht_secs, None, "no call ended yet");
    }

    #[test]
    fn talk_counts_when_the_call_ends() {
        let now = t0();
        let (mut f, engine) = figures(now);
        f.handle_answered(QUEUE, Duration::from_secs(4), now);
        let end = now.later(Duration::from_secs(90));
        f.handle_talk(QUEUE, Duration::from_secs(90), end);
        let s = f.poll_snapshot(&engine, end);
        assert_eq!(today(&s).aht_secs, Some(90.0));
        assert_eq!(s.queues[0].current_interval.figures.aht_secs, Some(90.0));
    }

    #[test]
    fn figures_move_to_the_last_interval_as_virtual_time_passes() {
        let now = t0();
        let (mut f, engine) = figures(now);
        f.handle_left(QUEUE, "abandoned", Duration::from_secs(30), now);
        let s = f.poll_snapshot(&engine, now.later(Duration::from_secs(16 * 60)));
        assert_eq!(s.queues[0].current_interval.figures.offered, 0);
        assert_eq!(s.queues[0].last_interval.figures.abandoned, 1);
        assert_eq!(today(&s).abandoned, 1);
    }

    #[test]
    fn the_snapshot_shows_who_waits_right_now() {
        let now = t0();
        let (mut f, mut engine) = figures(now);
        engine.handle(
            now.mono,
            Input::CallArrived {
                call: CallId(1),
                queue: QueueId(QUEUE.into()),
                priority: 0,
            },
        );
        while engine.poll_action().is_some() {}
        let s = f.poll_snapshot(&engine, now.later(Duration::from_secs(7)));
        assert_eq!(s.queues[0].now.waiting, 1);
        assert_eq!(s.queues[0].now.longest_wait_secs, 7.0);
        assert_eq!(s.queues[0].now.agents.get("logged_out"), Some(&1));
    }

    #[test]
    fn a_callback_request_is_not_an_abandon() {
        let now = t0();
        let (mut f, engine) = figures(now);
        assert_eq!(
            f.handle_left(QUEUE, "callback_requested", Duration::from_secs(2), now),
            None
        );
        let s = f.poll_snapshot(&engine, now);
        assert_eq!(today(&s).abandoned, 0);
        assert_eq!(today(&s).short_abandons, 0);
    }
}
