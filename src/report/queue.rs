//! Queue figures for a period and its intervals, aggregated here from the store's scan of the
//! period's calls ([`ReportReads::each_queue_call`]).

use super::{local, Period};
use crate::store::{QueueCall, ReportReads};
use anyhow::Result;
use jiff::tz::TimeZone;
use serde::Serialize;
use std::collections::BTreeMap;

/// Additive counters of one queue over some span (a period or an interval).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Raw {
    pub offered: u64,
    pub answered: u64,
    /// Includes short abandons (split in [`Figures`]).
    pub abandoned: u64,
    pub short_abandons: u64,
    pub timeouts: u64,
    pub overflows: u64,
    pub rejected: u64,
    /// Left the queue because the caller asked to be called back (outcome `callback_requested`).
    pub callback_requested: u64,
    /// Rows of `callback_requests` (by the time the caller entered the queue).
    pub callback_requests: u64,
    pub answered_in_target: u64,
    pub wait_answered_ms: u64,
    pub max_wait_ms: Option<u64>,
    pub talk_ms: u64,
    pub talked: u64,
}

impl Raw {
    pub fn add(&mut self, o: &Raw) {
        self.offered += o.offered;
        self.answered += o.answered;
        self.abandoned += o.abandoned;
        self.short_abandons += o.short_abandons;
        self.timeouts += o.timeouts;
        self.overflows += o.overflows;
        self.rejected += o.rejected;
        self.callback_requested += o.callback_requested;
        self.callback_requests += o.callback_requests;
        self.answered_in_target += o.answered_in_target;
        self.wait_answered_ms += o.wait_answered_ms;
        self.max_wait_ms = match (self.max_wait_ms, o.max_wait_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.talk_ms += o.talk_ms;
        self.talked += o.talked;
    }
}

/// A queue's goals as ratios in 0..=1; `None` for a queue not in the config.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Goals {
    pub sl_target_secs: u64,
    pub sl_goal: f64,
    pub answer_rate_goal: f64,
}

/// Figures of one queue over a period or an interval. Ratios are in 0..=1, `None` when their
/// denominator is 0; `*_met` is `None` when the ratio or the goal is unknown.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// answered + abandoned + short_abandons + timeouts + overflows + rejected +
    /// callback_requested.
    pub offered: u64,
    pub answered: u64,
    /// Abandoned calls, short abandons not included.
    pub abandoned: u64,
    /// Callers who hung up within `calls.short_abandon_secs` (not in SL or answer rate).
    pub short_abandons: u64,
    pub timeouts: u64,
    pub overflows: u64,
    pub rejected: u64,
    /// Callers who left the queue asking to be called back (not abandoned; not in SL or answer
    /// rate: they are served by the callback).
    pub callback_requested: u64,
    /// Callback requests stored for calls that entered in the span (`callback_requests`).
    pub callback_requests: u64,
    pub answered_in_target: u64,
    /// answered / (offered − short_abandons − callback_requested).
    pub answer_rate: Option<f64>,
    pub answer_rate_met: Option<bool>,
    /// answered_in_target / (offered − short_abandons − callback_requested).
    pub sl_offered: Option<f64>,
    pub sl_offered_met: Option<bool>,
    /// answered_in_target / answered.
    pub sl_answered: Option<f64>,
    pub sl_answered_met: Option<bool>,
    pub asa_secs: Option<f64>,
    pub longest_wait_secs: Option<f64>,
    pub aht_secs: Option<f64>,
    /// Some target was missed (a `*_met` is false).
    pub missed: bool,
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num.min(den) as f64 / den as f64)
}

fn mean_secs(ms: u64, n: u64) -> Option<f64> {
    (n > 0).then(|| ms as f64 / n as f64 / 1000.0)
}

fn met(v: Option<f64>, goal: Option<f64>) -> Option<bool> {
    match (v, goal) {
        (Some(v), Some(g)) => Some(v >= g - 1e-12),
        _ => None,
    }
}

impl Figures {
    pub fn new(r: &Raw, goals: Option<&Goals>) -> Figures {
        let counted = r
            .offered
            .saturating_sub(r.short_abandons)
            .saturating_sub(r.callback_requested);
        let answer_rate = ratio(r.answered, counted);
        let sl_offered = ratio(r.answered_in_target, counted);
        let sl_answered = ratio(r.answered_in_target, r.answered);
        let sl_goal = goals.map(|g| g.sl_goal);
        let ar_goal = goals.map(|g| g.answer_rate_goal);
        let answer_rate_met = met(answer_rate, ar_goal);
        let sl_offered_met = met(sl_offered, sl_goal);
        let sl_answered_met = met(sl_answered, sl_goal);
        Figures {
            offered: r.offered,
            answered: r.answered,
            abandoned: r.abandoned - r.short_abandons.min(r.abandoned),
            short_abandons: r.short_abandons,
            timeouts: r.timeouts,
            overflows: r.overflows,
            rejected: r.rejected,
            callback_requested: r.callback_requested,
            callback_requests: r.callback_requests,
            answered_in_target: r.answered_in_target,
            answer_rate,
            answer_rate_met,
            sl_offered,
            sl_offered_met,
            sl_answered,
            sl_answered_met,
            asa_secs: mean_secs(r.wait_answered_ms, r.answered),
            longest_wait_secs: r.max_wait_ms.map(|m| m as f64 / 1000.0),
            aht_secs: mean_secs(r.talk_ms, r.talked),
            missed: [answer_rate_met, sl_offered_met, sl_answered_met].contains(&Some(false)),
        }
    }
}

/// One interval of a queue (only intervals with calls are listed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// Local start with offset (RFC 3339).
    pub start: String,
    pub start_ms: i64,
    pub end_ms: i64,
    #[serde(flatten)]
    pub figures: Figures,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueReport {
    pub queue: String,
    /// The queue's goals from the config; `None` for a queue found only in the data.
    pub goals: Option<Goals>,
    pub totals: Figures,
    pub intervals: Vec<Interval>,
}

/// Add one call of the store's scan to its interval's aggregate. Calls that are live or
/// interrupted come as answered if they were answered (without talk time), as in the live
/// figures.
fn add_call(raw: &mut Raw, c: &QueueCall<'_>) {
    let wait = c.wait_ms.unwrap_or(0).max(0) as u64;
    raw.offered += 1;
    raw.max_wait_ms = Some(raw.max_wait_ms.map_or(wait, |m| m.max(wait)));
    match c.outcome {
        "answered" => {
            raw.answered += 1;
            raw.wait_answered_ms += wait;
            if c.answered_in_target {
                raw.answered_in_target += 1;
            }
            if let (true, Some(t)) = (c.really_answered, c.talk_ms) {
                raw.talk_ms += t.max(0) as u64;
                raw.talked += 1;
            }
        }
        "abandoned" => {
            raw.abandoned += 1;
            if c.short_abandon {
                raw.short_abandons += 1;
            }
        }
        "timeout" => raw.timeouts += 1,
        "overflow" => raw.overflows += 1,
        "rejected" => raw.rejected += 1,
        "callback_requested" => raw.callback_requested += 1,
        _ => {}
    }
}

/// Figures per queue: the configured ones (`configured`, in order, even without calls) that
/// match the filter, then any others found in the data.
pub fn queue_report(
    store: &dyn ReportReads,
    configured: &[(String, Goals)],
    period: &Period,
    interval_minutes: u32,
    queue_filter: Option<&str>,
    tz: &TimeZone,
) -> Result<Vec<QueueReport>> {
    let step = interval_minutes as i64 * 60_000;
    let (start, end) = (period.start_ms, period.end_ms);
    let mut per_queue: BTreeMap<String, BTreeMap<i64, Raw>> = BTreeMap::new();
    store.each_queue_call(start, end, step, queue_filter, &mut |c| {
        let buckets = match per_queue.get_mut(c.queue) {
            Some(b) => b,
            None => per_queue.entry(c.queue.to_owned()).or_default(),
        };
        add_call(buckets.entry(c.bucket).or_default(), &c);
    })?;
    store.each_callback_request(start, end, step, queue_filter, &mut |queue, bucket| {
        let buckets = match per_queue.get_mut(queue) {
            Some(b) => b,
            None => per_queue.entry(queue.to_owned()).or_default(),
        };
        buckets.entry(bucket).or_default().callback_requests += 1;
    })?;
    // Configured queues first (in config order, even without calls), then any others found.
    let mut names: Vec<String> = configured
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|n| queue_filter.is_none_or(|f| f == n))
        .collect();
    for n in per_queue.keys() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let goals = configured.iter().find(|(n, _)| *n == name).map(|(_, g)| *g);
        let buckets = per_queue.remove(&name).unwrap_or_default();
        let mut total = Raw::default();
        let mut intervals = Vec::with_capacity(buckets.len());
        for (b, raw) in &buckets {
            total.add(raw);
            // Intervals step in absolute time from the period's local start, so they stay on
            // local boundaries across a DST change (shifts are whole multiples of them).
            let start_ms = period.start_ms + b * step;
            intervals.push(Interval {
                start: local(start_ms, tz),
                start_ms,
                end_ms: (start_ms + step).min(period.end_ms),
                figures: Figures::new(raw, goals.as_ref()),
            });
        }
        out.push(QueueReport {
            queue: name,
            goals,
            totals: Figures::new(&total, goals.as_ref()),
            intervals,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_requests_are_neither_abandoned_nor_in_the_ratios() {
        let raw = Raw {
            offered: 10,
            answered: 6,
            abandoned: 2,
            short_abandons: 1,
            callback_requested: 2,
            callback_requests: 2,
            answered_in_target: 3,
            ..Raw::default()
        };
        let f = Figures::new(&raw, None);
        assert_eq!((f.abandoned, f.callback_requested), (1, 2));
        // 10 offered − 1 short − 2 callbacks = 7 counted.
        assert_eq!(f.answer_rate, Some(6.0 / 7.0));
        assert_eq!(f.sl_offered, Some(3.0 / 7.0));
        assert_eq!(f.sl_answered, Some(0.5));
    }

    #[test]
    fn empty_figures_have_no_ratios() {
        let f = Figures::new(&Raw::default(), None);
        assert_eq!(f.offered, 0);
        assert_eq!(f.answer_rate, None);
        assert_eq!(f.sl_offered_met, None);
        assert!(!f.missed);
    }
}
