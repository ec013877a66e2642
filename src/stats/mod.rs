//! Live service-level figures per queue: today (local calendar day in a configured IANA time
//! zone) and the current and last wall-clock interval (15, 30 or 60 minutes, aligned to the
//! local clock).
//!
//! State is O(queues): running sums per queue and period, O(1) per record. Calls are
//! attributed to the day/interval in which they *left* the queue (answered calls: when they
//! were answered); talk time (for AHT) to the day/interval in which the call was answered.
//!
//! Time moves forward only: [`LiveStats::record_left`], [`LiveStats::record_talk`] and
//! [`LiveStats::snapshot`] roll the day and the intervals to their time when it is newer. A
//! late record (older than the current day or the last interval) still counts where it can:
//! in today if it is of today, in the last interval if it is of that one.
//!
//! At start, [`rebuild_today`] refills today's figures (and the current and last interval)
//! from the call records, so a restart mid-day loses nothing.

mod rebuild;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
pub use rebuild::{rebuild_today, RebuildError};
use serde::Serialize;
use std::collections::HashMap;

pub use crate::config::{time_zone, DEFAULT_INTERVAL_MINUTES, INTERVAL_MINUTES};

const DAY_MS: i64 = 86_400_000;

/// Service-level figures for one queue and one period. Percentages are in 0..=1, `None` when
/// their denominator is 0 (never NaN).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Figures {
    /// Calls that left the queue: answered + abandoned + timeouts + overflows + rejected.
    pub offered: u64,
    pub answered: u64,
    /// Includes the short abandons.
    pub abandoned: u64,
    pub short_abandons: u64,
    pub timeouts: u64,
    pub overflows: u64,
    pub rejected: u64,
    pub answered_in_target: u64,
    /// answered_in_target / (offered − short_abandons).
    pub sl_offered: Option<f64>,
    /// answered_in_target / answered.
    pub sl_answered: Option<f64>,
    /// answered / (offered − short_abandons).
    pub answer_rate: Option<f64>,
    /// Mean wait of the answered calls.
    pub asa_secs: Option<f64>,
    /// Mean talk time of the answered calls that ended.
    pub aht_secs: Option<f64>,
    /// Longest wait among the calls that left the queue.
    pub longest_wait_secs: Option<f64>,
    /// sl_offered ≥ the queue's SL goal.
    pub sl_met: Option<bool>,
    /// answer_rate ≥ the queue's answer-rate goal.
    pub answer_rate_met: Option<bool>,
    #[serde(skip)]
    wait_answered_ms: u64,
    #[serde(skip)]
    talk_ms: u64,
    #[serde(skip)]
    talked: u64,
    #[serde(skip)]
    max_wait_ms: Option<u64>,
}

impl Figures {
    fn add_left(&mut self, outcome: Outcome, wait_ms: u64, short_abandon: bool, in_target: bool) {
        self.offered += 1;
        self.max_wait_ms = Some(self.max_wait_ms.map_or(wait_ms, |m| m.max(wait_ms)));
        match outcome {
            Outcome::Answered => {
                self.answered += 1;
                self.wait_answered_ms = self.wait_answered_ms.saturating_add(wait_ms);
                if in_target {
                    self.answered_in_target += 1;
                }
            }
            Outcome::Abandoned => {
                self.abandoned += 1;
                if short_abandon {
                    self.short_abandons += 1;
                }
            }
            Outcome::Timeout => self.timeouts += 1,
            Outcome::Overflow => self.overflows += 1,
            Outcome::Rejected => self.rejected += 1,
        }
    }

    fn add_talk(&mut self, talk_ms: u64) {
        self.talked += 1;
        self.talk_ms = self.talk_ms.saturating_add(talk_ms);
    }

    /// A copy with the derived figures filled in.
    fn finished(&self, goals: &QueueGoals) -> Figures {
        let mut f = self.clone();
        let counted = f.offered.saturating_sub(f.short_abandons);
        f.sl_offered = ratio(f.answered_in_target, counted);
        f.sl_answered = ratio(f.answered_in_target, f.answered);
        f.answer_rate = ratio(f.answered, counted);
        f.asa_secs = mean_secs(f.wait_answered_ms, f.answered);
        f.aht_secs = mean_secs(f.talk_ms, f.talked);
        f.longest_wait_secs = f.max_wait_ms.map(|m| m as f64 / 1000.0);
        f.sl_met = f.sl_offered.map(|v| v >= goals.sl_goal);
        f.answer_rate_met = f.answer_rate.map(|v| v >= goals.answer_rate_goal);
        f
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| (num.min(den)) as f64 / den as f64)
}

fn mean_secs(sum_ms: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| sum_ms as f64 / n as f64 / 1000.0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    Abandoned,
    Timeout,
    Overflow,
    Rejected,
}

impl Outcome {
    fn parse(s: &str) -> Option<Outcome> {
        Some(match s {
            "answered" => Outcome::Answered,
            "abandoned" => Outcome::Abandoned,
            "timeout" => Outcome::Timeout,
            "overflow" => Outcome::Overflow,
            "rejected" => Outcome::Rejected,
            _ => return None,
        })
    }
}

/// A queue's service-level goals.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueGoals {
    /// Answered within this many seconds counts as in target (the caller decides `in_target`;
    /// this is reported alongside).
    pub sl_target_secs: u64,
    /// Goal for `sl_offered`, 0..=1.
    pub sl_goal: f64,
    /// Goal for `answer_rate`, 0..=1.
    pub answer_rate_goal: f64,
}

impl Default for QueueGoals {
    /// 15 s, 90 %, 90 %.
    fn default() -> Self {
        QueueGoals {
            sl_target_secs: 15,
            sl_goal: 0.9,
            answer_rate_goal: 0.9,
        }
    }
}

/// Figures as of one moment, for all configured queues (in configuration order).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// The local calendar day, "2026-11-22".
    pub day: String,
    pub interval_minutes: u32,
    pub queues: Vec<QueueSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueSnapshot {
    pub queue: String,
    pub sl_target_secs: u64,
    pub sl_goal: f64,
    pub answer_rate_goal: f64,
    pub today: Figures,
    pub current_interval: Interval,
    pub last_interval: Interval,
    /// Right now: callers waiting, the longest current wait, agents by state (filled in by
    /// the call layer, which owns the queue engine).
    pub now: Live,
}

/// The queue's live state at the moment of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Live {
    pub waiting: usize,
    pub longest_wait_secs: f64,
    pub agents: std::collections::BTreeMap<String, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// Local RFC 3339, "2026-11-22T10:00:00+01:00".
    pub start: String,
    /// Local RFC 3339 (start + the interval length).
    pub end: String,
    pub figures: Figures,
}

#[derive(Debug)]
struct QueueState {
    name: String,
    goals: QueueGoals,
    today: Figures,
    current: Figures,
    last: Figures,
}

/// Where a record at some time goes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    today: bool,
    current: bool,
    last: bool,
}

/// Live per-queue figures; see the module doc.
#[derive(Debug)]
pub struct LiveStats {
    tz: TimeZone,
    interval_minutes: u32,
    interval_ms: i64,
    queues: Vec<QueueState>,
    index: HashMap<String, usize>,
    /// The local day "today" is (None before the first record or snapshot).
    day: Option<Date>,
    /// Start (unix ms) of the current interval.
    current_start: Option<i64>,
    /// Start (unix ms) of the interval before the current one.
    last_start: Option<i64>,
}

impl LiveStats {
    /// `interval_minutes` must be one of [`INTERVAL_MINUTES`] (otherwise 15, with a warning).
    /// A queue named twice keeps its first goals.
    pub fn new(tz: TimeZone, interval_minutes: u32, queues: Vec<(String, QueueGoals)>) -> Self {
        let interval_minutes = if INTERVAL_MINUTES.contains(&interval_minutes) {
            interval_minutes
        } else {
            tracing::warn!(
                interval_minutes,
                "stats: interval must be 15, 30 or 60 minutes; using {DEFAULT_INTERVAL_MINUTES}"
            );
            DEFAULT_INTERVAL_MINUTES
        };
        let mut index = HashMap::new();
        let mut states = Vec::new();
        for (name, goals) in queues {
            if index.contains_key(&name) {
                continue;
            }
            index.insert(name.clone(), states.len());
            states.push(QueueState {
                name,
                goals,
                today: Figures::default(),
                current: Figures::default(),
                last: Figures::default(),
            });
        }
        LiveStats {
            tz,
            interval_minutes,
            interval_ms: i64::from(interval_minutes) * 60_000,
            queues: states,
            index,
            day: None,
            current_start: None,
            last_start: None,
        }
    }

    pub fn interval_minutes(&self) -> u32 {
        self.interval_minutes
    }

    /// A call left its queue at `at_ms` (unix ms) with this outcome ("answered" | "abandoned" |
    /// "timeout" | "overflow" | "rejected"). `short_abandon` counts only for "abandoned",
    /// `in_target` only for "answered". Unknown queues and outcomes are ignored.
    pub fn record_left(
        &mut self,
        queue: &str,
        outcome: &str,
        wait_ms: u64,
        short_abandon: bool,
        in_target: bool,
        at_ms: u64,
    ) {
        let Some(&qi) = self.index.get(queue) else {
            return;
        };
        let Some(outcome) = Outcome::parse(outcome) else {
            tracing::debug!(queue, outcome, "stats: unknown outcome ignored");
            return;
        };
        let Some(slot) = self.slot(at_ms) else {
            return;
        };
        let q = &mut self.queues[qi];
        for (on, f) in [
            (slot.today, &mut q.today),
            (slot.current, &mut q.current),
            (slot.last, &mut q.last),
        ] {
            if on {
                f.add_left(outcome, wait_ms, short_abandon, in_target);
            }
        }
    }

    /// An answered call ended after `talk_ms` of talk (for AHT); it counts in the day and
    /// interval of `answered_at_ms`.
    pub fn record_talk(&mut self, queue: &str, talk_ms: u64, answered_at_ms: u64) {
        let Some(&qi) = self.index.get(queue) else {
            return;
        };
        let Some(slot) = self.slot(answered_at_ms) else {
            return;
        };
        let q = &mut self.queues[qi];
        for (on, f) in [
            (slot.today, &mut q.today),
            (slot.current, &mut q.current),
            (slot.last, &mut q.last),
        ] {
            if on {
                f.add_talk(talk_ms);
            }
        }
    }

    /// Figures as of `now_ms`: rolls the day and the intervals over first.
    pub fn snapshot(&mut self, now_ms: u64) -> Snapshot {
        let now = clamp_ms(now_ms);
        self.advance(now);
        let day = self.day.map(|d| d.to_string()).unwrap_or_default();
        let current_start = self.current_start.unwrap_or(now);
        let last_start = self.last_start.unwrap_or(current_start - self.interval_ms);
        let (cur_s, cur_e) = (
            self.rfc3339(current_start),
            self.rfc3339(current_start + self.interval_ms),
        );
        let (last_s, last_e) = (
            self.rfc3339(last_start),
            self.rfc3339(last_start + self.interval_ms),
        );
        let queues = self
            .queues
            .iter()
            .map(|q| QueueSnapshot {
                queue: q.name.clone(),
                sl_target_secs: q.goals.sl_target_secs,
                sl_goal: q.goals.sl_goal,
                answer_rate_goal: q.goals.answer_rate_goal,
                today: q.today.finished(&q.goals),
                current_interval: Interval {
                    start: cur_s.clone(),
                    end: cur_e.clone(),
                    figures: q.current.finished(&q.goals),
                },
                last_interval: Interval {
                    start: last_s.clone(),
                    end: last_e.clone(),
                    figures: q.last.finished(&q.goals),
                },
                now: Live::default(),
            })
            .collect();
        Snapshot {
            day,
            interval_minutes: self.interval_minutes,
            queues,
        }
    }

    /// Forget everything (figures, day, intervals).
    fn clear(&mut self) {
        for q in &mut self.queues {
            q.today = Figures::default();
            q.current = Figures::default();
            q.last = Figures::default();
        }
        self.day = None;
        self.current_start = None;
        self.last_start = None;
    }

    /// Roll forward to `at` and say where a record at `at` counts. None: not a valid time.
    fn slot(&mut self, at_ms: u64) -> Option<Slot> {
        let at = i64::try_from(at_ms).ok()?;
        let ts = Timestamp::from_millisecond(at).ok()?;
        self.advance(at);
        let start = self.interval_start(at);
        Some(Slot {
            today: Some(self.tz.to_datetime(ts).date()) == self.day,
            current: Some(start) == self.current_start,
            last: Some(start) == self.last_start,
        })
    }

    /// Roll the day and the intervals over to `at` (unix ms) if it is newer.
    fn advance(&mut self, at: i64) {
        let Ok(ts) = Timestamp::from_millisecond(at) else {
            return;
        };
        let day = self.tz.to_datetime(ts).date();
        if self.day.is_none_or(|d| day > d) {
            if self.day.is_some() {
                for q in &mut self.queues {
                    q.today = Figures::default();
                }
            }
            self.day = Some(day);
        }
        let start = self.interval_start(at);
        match self.current_start {
            Some(c) if start <= c => {}
            current => {
                let prev = self.interval_start(start - 1);
                let keep = current == Some(prev);
                for q in &mut self.queues {
                    q.last = if keep {
                        std::mem::take(&mut q.current)
                    } else {
                        Figures::default()
                    };
                    q.current = Figures::default();
                }
                self.last_start = Some(prev);
                self.current_start = Some(start);
            }
        }
    }

    /// Start (unix ms) of the local wall-clock interval holding `at` (unix ms): the local time
    /// (with the offset in force at `at`) floored to the interval length.
    fn interval_start(&self, at: i64) -> i64 {
        let offset_ms = Timestamp::from_millisecond(at)
            .map(|ts| i64::from(self.tz.to_offset(ts).seconds()) * 1000)
            .unwrap_or(0);
        let local = at + offset_ms;
        local.div_euclid(self.interval_ms) * self.interval_ms - offset_ms
    }

    /// Local RFC 3339 for unix ms.
    fn rfc3339(&self, ms: i64) -> String {
        match Timestamp::from_millisecond(ms) {
            Ok(ts) => format!("{:.0}", ts.display_with_offset(self.tz.to_offset(ts))),
            Err(_) => String::new(),
        }
    }

    /// Start and end (unix ms) of the local day holding `at`.
    fn day_bounds(&self, at: i64) -> Result<(i64, i64), jiff::Error> {
        let date = self.tz.to_datetime(Timestamp::from_millisecond(at)?).date();
        let start = date.to_zoned(self.tz.clone())?.timestamp();
        let end = date.tomorrow()?.to_zoned(self.tz.clone())?.timestamp();
        Ok((start.as_millisecond(), end.as_millisecond()))
    }
}

fn clamp_ms(ms: u64) -> i64 {
    i64::try_from(ms)
        .unwrap_or(i64::MAX)
        .min(Timestamp::MAX.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StatsCall;
    use crate::store::StatsReads;

    /// Calls as the store would give them, with their entered_at_ms.
    struct FakeCalls(Vec<(i64, StatsCall)>);

    impl StatsReads for FakeCalls {
        fn each_stats_call(
            &self,
            start_ms: i64,
            end_ms: i64,
            f: &mut dyn FnMut(StatsCall),
        ) -> crate::store::Result<()> {
            for (entered, c) in &self.0 {
                if *entered >= start_ms && *entered < end_ms {
                    f(c.clone());
                }
            }
            Ok(())
        }
    }

    fn ms(s: &str) -> u64 {
        s.parse::<Timestamp>().unwrap().as_millisecond() as u64
    }

    fn berlin(interval: u32, queues: &[&str]) -> LiveStats {
        LiveStats::new(
            time_zone("Europe/Berlin").unwrap(),
            interval,
            queues
                .iter()
                .map(|q| (q.to_string(), QueueGoals::default()))
                .collect(),
        )
    }

    fn q<'a>(s: &'a Snapshot, name: &str) -> &'a QueueSnapshot {
        s.queues.iter().find(|q| q.queue == name).unwrap()
    }

    fn approx(a: Option<f64>, b: f64) {
        let a = a.unwrap();
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn exact_figures_for_a_mixed_sequence() {
        let mut st = berlin(15, &["sales", "support"]);
        let t = |m: u32| ms(&format!("2026-11-22T10:{m:02}:00+01:00"));
        st.record_left("sales", "answered", 5_000, false, true, t(1));
        st.record_left("sales", "answered", 20_000, false, false, t(2));
        st.record_left("sales", "answered", 10_000, false, true, t(3));
        st.record_left("sales", "abandoned", 30_000, false, false, t(4));
        st.record_left("sales", "abandoned", 3_000, true, false, t(5));
        st.record_left("sales", "timeout", 60_000, false, false, t(6));
        st.record_left("sales", "overflow", 45_000, false, false, t(7));
        st.record_left("sales", "rejected", 0, false, false, t(8));
        st.record_talk("sales", 100_000, t(1));
        st.record_talk("sales", 200_000, t(2));
        // Ignored: unknown queue, unknown outcome.
        st.record_left("nope", "answered", 1_000, false, true, t(9));
        st.record_left("sales", "bogus", 1_000, false, true, t(9));

        let snap = st.snapshot(t(10));
        assert_eq!(snap.day, "2026-11-22");
        assert_eq!(snap.interval_minutes, 15);
        let s = q(&snap, "sales");
        let f = &s.today;
        assert_eq!(
            (f.offered, f.answered, f.abandoned, f.short_abandons),
            (8, 3, 2, 1)
        );
        assert_eq!((f.timeouts, f.overflows, f.rejected), (1, 1, 1));
        assert_eq!(f.answered_in_target, 2);
        approx(f.sl_offered, 2.0 / 7.0);
        approx(f.sl_answered, 2.0 / 3.0);
        approx(f.answer_rate, 3.0 / 7.0);
        approx(f.asa_secs, 35.0 / 3.0);
        approx(f.aht_secs, 150.0);
        approx(f.longest_wait_secs, 60.0);
        assert_eq!(f.sl_met, Some(false));
        assert_eq!(f.answer_rate_met, Some(false));
        assert_eq!(s.sl_target_secs, 15);
        assert_eq!(s.current_interval.start, "2026-11-22T10:00:00+01:00");
        assert_eq!(s.current_interval.end, "2026-11-22T10:15:00+01:00");
        assert_eq!(&s.current_interval.figures, f);
        assert_eq!(s.last_interval.start, "2026-11-22T09:45:00+01:00");
        assert_eq!(s.last_interval.figures, Figures::default());
        // The other queue is untouched.
        assert_eq!(q(&snap, "support").today.offered, 0);
    }

    #[test]
    fn short_abandons_are_excluded_from_sl_and_answer_rate() {
        let mut st = berlin(15, &["q"]);
        let at = ms("2026-06-01T12:00:00+02:00");
        for _ in 0..9 {
            st.record_left("q", "answered", 4_000, false, true, at);
        }
        st.record_left("q", "answered", 40_000, false, false, at);
        for _ in 0..5 {
            st.record_left("q", "abandoned", 2_000, true, false, at);
        }
        let snap = st.snapshot(at + 1);
        let f = &q(&snap, "q").today;
        assert_eq!((f.offered, f.short_abandons), (15, 5));
        assert_eq!(f.sl_offered, Some(0.9));
        assert_eq!(f.sl_met, Some(true));
        assert_eq!(f.answer_rate, Some(1.0));
        assert_eq!(f.answer_rate_met, Some(true));
        assert_eq!(f.sl_answered, Some(0.9));
        // One long abandon drops both below goal.
        st.record_left("q", "abandoned", 20_000, false, false, at + 2);
        let f = q(&st.snapshot(at + 3), "q").today.clone();
        approx(f.sl_offered, 9.0 / 11.0);
        approx(f.answer_rate, 10.0 / 11.0);
        assert_eq!(f.sl_met, Some(false));
        assert_eq!(f.answer_rate_met, Some(true));
    }

    #[test]
    fn no_calls_gives_none_not_nan() {
        let mut st = berlin(15, &["q"]);
        let at = ms("2026-06-01T12:00:00+02:00");
        let f = q(&st.snapshot(at), "q").today.clone();
        assert_eq!(f, Figures::default());
        // Only short abandons: offered but nothing to rate.
        st.record_left("q", "abandoned", 1_000, true, false, at);
        st.record_left("q", "abandoned", 2_000, true, false, at);
        let f = q(&st.snapshot(at), "q").today.clone();
        assert_eq!((f.offered, f.short_abandons), (2, 2));
        assert_eq!(
            (f.sl_offered, f.sl_answered, f.answer_rate),
            (None, None, None)
        );
        assert_eq!((f.asa_secs, f.aht_secs), (None, None));
        assert_eq!((f.sl_met, f.answer_rate_met), (None, None));
        approx(f.longest_wait_secs, 2.0);
        // And it serializes without NaN.
        let snap = st.snapshot(at);
        let dbg = format!("{snap:?}");
        assert!(!dbg.contains("NaN"));
    }

    #[test]
    fn day_rolls_over_at_local_midnight_across_dst() {
        let mut st = berlin(15, &["q"]);
        // 2026-03-29: 23 hours (02:00 CET -> 03:00 CEST).
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-03-28T23:30:00+01:00"),
        );
        let snap = st.snapshot(ms("2026-03-28T23:59:59+01:00"));
        assert_eq!(
            (snap.day.as_str(), q(&snap, "q").today.offered),
            ("2026-03-28", 1)
        );
        let snap = st.snapshot(ms("2026-03-29T00:00:00+01:00"));
        assert_eq!(
            (snap.day.as_str(), q(&snap, "q").today.offered),
            ("2026-03-29", 0)
        );
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-03-29T01:59:00+01:00"),
        );
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-03-29T03:00:00+02:00"),
        );
        let snap = st.snapshot(ms("2026-03-29T03:01:00+02:00"));
        let s = q(&snap, "q");
        assert_eq!(s.today.offered, 2);
        assert_eq!(s.current_interval.start, "2026-03-29T03:00:00+02:00");
        assert_eq!(s.last_interval.start, "2026-03-29T01:45:00+01:00");
        assert_eq!(s.last_interval.end, "2026-03-29T03:00:00+02:00");
        assert_eq!(s.last_interval.figures.offered, 1);
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-03-29T23:59:59+02:00"),
        );
        let snap = st.snapshot(ms("2026-03-29T23:59:59.999+02:00"));
        assert_eq!(
            (snap.day.as_str(), q(&snap, "q").today.offered),
            ("2026-03-29", 3)
        );
        let snap = st.snapshot(ms("2026-03-30T00:00:00+02:00"));
        assert_eq!(
            (snap.day.as_str(), q(&snap, "q").today.offered),
            ("2026-03-30", 0)
        );

        // 2026-10-25: 25 hours (03:00 CEST -> 02:00 CET).
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-10-24T23:30:00+02:00"),
        );
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-10-25T00:10:00+02:00"),
        );
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-10-25T02:50:00+02:00"),
        );
        let snap = st.snapshot(ms("2026-10-25T02:05:00+01:00"));
        let s = q(&snap, "q");
        assert_eq!((snap.day.as_str(), s.today.offered), ("2026-10-25", 2));
        // The interval before 02:00 CET is the second half of the first 02:xx hour.
        assert_eq!(s.current_interval.start, "2026-10-25T02:00:00+01:00");
        assert_eq!(s.last_interval.start, "2026-10-25T02:45:00+02:00");
        assert_eq!(s.last_interval.end, "2026-10-25T02:00:00+01:00");
        assert_eq!(s.last_interval.figures.offered, 1);
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-10-25T23:59:00+01:00"),
        );
        let snap = st.snapshot(ms("2026-10-25T23:59:59+01:00"));
        assert_eq!(
            (snap.day.as_str(), q(&snap, "q").today.offered),
            ("2026-10-25", 3)
        );
        let snap = st.snapshot(ms("2026-10-26T00:00:00+01:00"));
        assert_eq!(
            (snap.day.as_str(), q(&snap, "q").today.offered),
            ("2026-10-26", 0)
        );
    }

    #[test]
    fn intervals_align_to_the_local_clock_and_roll() {
        let mut st = berlin(15, &["q"]);
        st.record_left(
            "q",
            "answered",
            1_000,
            false,
            true,
            ms("2026-11-22T10:14:59+01:00"),
        );
        let snap = st.snapshot(ms("2026-11-22T10:14:59.999+01:00"));
        let s = q(&snap, "q");
        assert_eq!(s.current_interval.start, "2026-11-22T10:00:00+01:00");
        assert_eq!(s.current_interval.figures.offered, 1);
        st.record_left(
            "q",
            "abandoned",
            9_000,
            false,
            false,
            ms("2026-11-22T10:15:00+01:00"),
        );
        let snap = st.snapshot(ms("2026-11-22T10:15:00+01:00"));
        let s = q(&snap, "q");
        assert_eq!(s.current_interval.start, "2026-11-22T10:15:00+01:00");
        assert_eq!(s.current_interval.end, "2026-11-22T10:30:00+01:00");
        assert_eq!(
            (
                s.current_interval.figures.offered,
                s.current_interval.figures.abandoned
            ),
            (1, 1)
        );
        assert_eq!(s.last_interval.start, "2026-11-22T10:00:00+01:00");
        assert_eq!(s.last_interval.figures.answered, 1);
        // Talk of a call answered in the last interval lands there; older talk only in today.
        st.record_talk("q", 60_000, ms("2026-11-22T10:14:59+01:00"));
        st.record_talk("q", 30_000, ms("2026-11-22T09:00:00+01:00"));
        let snap = st.snapshot(ms("2026-11-22T10:20:00+01:00"));
        let s = q(&snap, "q");
        approx(s.last_interval.figures.aht_secs, 60.0);
        approx(s.today.aht_secs, 45.0);
        assert_eq!(s.current_interval.figures.aht_secs, None);
        // One interval later: the old current one is last.
        let snap = st.snapshot(ms("2026-11-22T10:44:00+01:00"));
        let s = q(&snap, "q");
        assert_eq!(s.current_interval.start, "2026-11-22T10:30:00+01:00");
        assert_eq!(s.current_interval.figures, Figures::default());
        assert_eq!(s.last_interval.start, "2026-11-22T10:15:00+01:00");
        assert_eq!(s.last_interval.figures.abandoned, 1);
        // Two intervals with no calls: last is empty, not stale.
        let snap = st.snapshot(ms("2026-11-22T11:00:00+01:00"));
        let s = q(&snap, "q");
        assert_eq!(s.current_interval.start, "2026-11-22T11:00:00+01:00");
        assert_eq!(s.last_interval.start, "2026-11-22T10:45:00+01:00");
        assert_eq!(s.last_interval.figures, Figures::default());
        assert_eq!(s.today.offered, 2);

        // 30 and 60 minute intervals; anything else falls back to 15.
        for (len, start) in [
            (30, "2026-11-22T10:30:00+01:00"),
            (60, "2026-11-22T10:00:00+01:00"),
            (7, "2026-11-22T10:45:00+01:00"),
        ] {
            let mut st = berlin(len, &["q"]);
            let snap = st.snapshot(ms("2026-11-22T10:59:59+01:00"));
            assert_eq!(q(&snap, "q").current_interval.start, start, "{len}");
        }
        // A zone with a :45 offset aligns to its own clock.
        let mut st = LiveStats::new(
            time_zone("Asia/Kathmandu").unwrap(),
            60,
            vec![("q".into(), QueueGoals::default())],
        );
        let snap = st.snapshot(ms("2026-11-22T10:59:59+05:45"));
        assert_eq!(
            q(&snap, "q").current_interval.start,
            "2026-11-22T10:00:00+05:45"
        );
    }

    /// A call as the call layer sees it: (queue, entered, answered, ended, wait, talk, outcome,
    /// in_target, short).
    type Call = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<&'static str>,
        u64,
        Option<u64>,
        Option<&'static str>,
        bool,
        bool,
    );

    #[test]
    fn rebuild_today_matches_the_live_figures() {
        let calls: Vec<Call> = vec![
            // Left yesterday: not today.
            (
                "q",
                "2026-10-24T23:50:00+02:00",
                None,
                Some("2026-10-24T23:55:00+02:00"),
                300_000,
                None,
                Some("abandoned"),
                false,
                false,
            ),
            // Entered yesterday, answered today.
            (
                "q",
                "2026-10-24T23:58:00+02:00",
                Some("2026-10-25T00:01:00+02:00"),
                Some("2026-10-25T00:05:00+02:00"),
                180_000,
                Some(240_000),
                Some("answered"),
                false,
                false,
            ),
            (
                "q",
                "2026-10-25T09:00:00+01:00",
                Some("2026-10-25T09:00:10+01:00"),
                Some("2026-10-25T09:10:00+01:00"),
                10_000,
                Some(590_000),
                Some("answered"),
                true,
                false,
            ),
            (
                "q",
                "2026-10-25T09:30:00+01:00",
                None,
                Some("2026-10-25T09:30:03+01:00"),
                3_000,
                None,
                Some("abandoned"),
                false,
                true,
            ),
            (
                "q",
                "2026-10-25T09:40:00+01:00",
                None,
                Some("2026-10-25T09:42:00+01:00"),
                120_000,
                None,
                Some("timeout"),
                false,
                false,
            ),
            (
                "q",
                "2026-10-25T09:50:00+01:00",
                Some("2026-10-25T09:50:05+01:00"),
                Some("2026-10-25T10:02:00+01:00"),
                5_000,
                Some(715_000),
                Some("answered"),
                true,
                false,
            ),
            (
                "q",
                "2026-10-25T10:00:00+01:00",
                None,
                Some("2026-10-25T10:00:00+01:00"),
                0,
                None,
                Some("rejected"),
                false,
                false,
            ),
            (
                "q",
                "2026-10-25T10:01:00+01:00",
                None,
                Some("2026-10-25T10:03:00+01:00"),
                120_000,
                None,
                Some("overflow"),
                false,
                false,
            ),
            (
                "other",
                "2026-10-25T10:04:00+01:00",
                Some("2026-10-25T10:04:20+01:00"),
                Some("2026-10-25T10:05:00+01:00"),
                20_000,
                Some(40_000),
                Some("answered"),
                false,
                false,
            ),
            // Answered, still talking at the restart: counted live when answered.
            (
                "q",
                "2026-10-25T10:05:00+01:00",
                Some("2026-10-25T10:05:02+01:00"),
                Some("2026-10-25T10:07:00+01:00"),
                2_000,
                None,
                Some("interrupted"),
                true,
                false,
            ),
            // Waiting at the restart: never left the queue.
            (
                "q",
                "2026-10-25T10:06:00+01:00",
                None,
                Some("2026-10-25T10:07:00+01:00"),
                0,
                None,
                Some("interrupted"),
                false,
                false,
            ),
            // Not configured: ignored.
            (
                "ghost",
                "2026-10-25T10:06:00+01:00",
                None,
                Some("2026-10-25T10:06:30+01:00"),
                30_000,
                None,
                Some("abandoned"),
                false,
                false,
            ),
        ];
        let now = ms("2026-10-25T10:07:00+01:00");

        // Live: events in the order the call layer emits them.
        let mut live = berlin(15, &["q", "other"]);
        let mut events: Vec<(u64, u8, usize)> = Vec::new();
        for (i, c) in calls.iter().enumerate() {
            match (c.2, c.6) {
                (Some(ans), _) => {
                    events.push((ms(ans), 0, i));
                    if c.5.is_some() {
                        events.push((ms(c.3.unwrap()), 1, i));
                    }
                }
                (None, Some("interrupted")) => {}
                (None, _) => events.push((ms(c.3.unwrap()), 0, i)),
            }
        }
        events.sort();
        for (t, kind, i) in events {
            let c = &calls[i];
            if kind == 0 {
                let outcome = if c.2.is_some() {
                    "answered"
                } else {
                    c.6.unwrap()
                };
                live.record_left(c.0, outcome, c.4, c.8, c.7, t);
            } else {
                live.record_talk(c.0, c.5.unwrap(), ms(c.2.unwrap()));
            }
        }
        let live_snap = live.snapshot(now);

        // The store's rows (its SQL is tested in `crate::store`): entered_at_ms first.
        let mut rows: Vec<(i64, StatsCall)> = calls
            .iter()
            .map(|c| {
                let short = (c.6 == Some("abandoned")) && c.8;
                let in_target = c.2.is_some() && c.7;
                let call = StatsCall {
                    queue: c.0.to_string(),
                    outcome: c.6.map(str::to_string),
                    answered_at_ms: c.2.map(|s| ms(s) as i64),
                    ended_at_ms: c.3.map(|s| ms(s) as i64),
                    wait_ms: Some(c.4 as i64),
                    talk_ms: c.5.map(|t| t as i64),
                    answered_in_target: in_target,
                    short_abandon: short,
                };
                (ms(c.1) as i64, call)
            })
            .collect();
        // A call still live (outcome NULL, not answered), entered today: skipped.
        rows.push((
            now as i64 - 1_000,
            StatsCall {
                queue: "q".into(),
                outcome: None,
                answered_at_ms: None,
                ended_at_ms: None,
                wait_ms: None,
                talk_ms: None,
                answered_in_target: false,
                short_abandon: false,
            },
        ));
        let conn = FakeCalls(rows);

        let mut rebuilt = berlin(15, &["q", "other"]);
        // Something stale from before is cleared.
        rebuilt.record_left("q", "answered", 1, false, true, now - 10);
        let n = rebuild_today(&conn, &mut rebuilt, now).unwrap();
        assert_eq!(n, 9);
        let snap = rebuilt.snapshot(now);
        assert_eq!(snap, live_snap);

        let s = q(&snap, "q");
        assert_eq!(snap.day, "2026-10-25");
        assert_eq!(
            (
                s.today.offered,
                s.today.answered,
                s.today.answered_in_target
            ),
            (8, 4, 3)
        );
        assert_eq!(s.today.short_abandons, 1);
        // Talk of the 09:50 call (answered in 09:45–10:00, ended 10:02) is in the last interval.
        assert_eq!(s.last_interval.start, "2026-10-25T09:45:00+01:00");
        approx(s.last_interval.figures.aht_secs, 715.0);
        assert_eq!(s.current_interval.figures.offered, 3);
        assert_eq!(q(&snap, "other").today.answered, 1);

        // Idempotent, and a later restart the same day sees the same.
        assert_eq!(rebuild_today(&conn, &mut rebuilt, now).unwrap(), 9);
        assert_eq!(rebuilt.snapshot(now), live_snap);
    }
}
