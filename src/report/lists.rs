//! Callback-list figures for a period (from the `outbound_*` tables of `crate::outbound`): per
//! list and per local day, and each agent's outbound work against the per-agent quotas.
//!
//! Every figure is an event counted on the day it happened, in `[reports] time_zone`:
//! `contacts_added` (contact created), `attempts` (dial started), `connects` (attempt answered:
//! what the daily quotas count), `completed` / `unreachable` (contact finished, by its last
//! update), skips (`skipped` records by reason), `retries_scheduled` (a dial attempt that ended
//! and left its contact to be dialed again). `contacts` is the current state of the contacts the
//! period touched (added, dialed or skipped in it). Complaint follow-ups (purpose `complaint`)
//! are the cohort of complaints made (contact created) in the period, judged against their
//! deadlines: replied = first answered attempt at or before the due time (12 h), resolved =
//! contact `done` within 48 h of the complaint. Queue callbacks (purpose `queue_callback`) are
//! reported apart: the callback requests the list took up, requested in the period, and how many
//! callers were called back (an attempt answered), how fast, and how many failed.
//!
//! Reads only; knows nothing of dialing.

use super::{Period, Settings};
use crate::store::{ListEventKind, ListRow, ReportReads};
use anyhow::Result;
use jiff::civil::Date;
use jiff::ToSpan;
use serde::Serialize;
use std::collections::BTreeMap;

use crate::outbound::{COMPLAINT_REPLY_WITHIN_MS, COMPLAINT_RESOLVE_WITHIN_MS};

/// Additive figures of a list over a day or the whole period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListFigures {
    pub contacts_added: u64,
    /// Dial attempts started (skips not included).
    pub attempts: u64,
    /// Attempts answered (by answer time): what the daily quota counts.
    pub connects: u64,
    /// Contacts finished `done`.
    pub completed: u64,
    pub skipped_duplicate: u64,
    pub skipped_do_not_call: u64,
    /// Skipped by the agent in preview (not a dial attempt; the contact returns later).
    pub skipped_agent: u64,
    /// Dial attempts that ended and left their contact to be dialed again.
    pub retries_scheduled: u64,
    /// Contacts that ran out of attempts.
    pub unreachable: u64,
}

impl ListFigures {
    fn add(&mut self, o: &ListFigures) {
        self.contacts_added += o.contacts_added;
        self.attempts += o.attempts;
        self.connects += o.connects;
        self.completed += o.completed;
        self.skipped_duplicate += o.skipped_duplicate;
        self.skipped_do_not_call += o.skipped_do_not_call;
        self.skipped_agent += o.skipped_agent;
        self.retries_scheduled += o.retries_scheduled;
        self.unreachable += o.unreachable;
    }
}

/// The contacts a period touched, by their state now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContactStates {
    pub total: u64,
    pub pending: u64,
    pub in_progress: u64,
    pub done: u64,
    pub unreachable: u64,
    pub skipped: u64,
}

/// One local day of a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListDay {
    /// Local date (YYYY-MM-DD).
    pub date: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// The list existed, the day is not one of its holidays and one of its windows opens on it.
    pub trading_day: bool,
    /// The list's daily quota (`None`: no quota).
    pub quota: Option<u32>,
    /// connects ≥ quota (`None`: no quota, or not a trading day).
    pub quota_reached: Option<bool>,
    #[serde(flatten)]
    pub figures: ListFigures,
}

/// Complaint follow-ups made in the period against their deadlines.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ComplaintFigures {
    /// Complaints (contacts of the complaint list) created in the period.
    pub complaints: u64,
    /// First answered follow-up at or before the reply due time (12 h).
    pub replied_in_12h: u64,
    /// replied_in_12h / complaints.
    pub replied_in_12h_rate: Option<f64>,
    /// Contact `done` within 48 h of the complaint.
    pub resolved_in_48h: u64,
    /// resolved_in_48h / complaints.
    pub resolved_in_48h_rate: Option<f64>,
    /// Not replied yet, reply deadline still ahead (may still count as replied).
    pub awaiting_reply: u64,
    /// Not resolved yet, 48 h not over (may still count as resolved).
    pub awaiting_resolution: u64,
}

/// Queue callback requests taken up by a `queue_callback` list and requested in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct QueueCallbackFigures {
    /// Callers who pressed the callback key (their request became a contact of this list).
    pub requests: u64,
    /// Called back: an attempt was answered.
    pub called_back: u64,
    /// called_back / requests.
    pub called_back_rate: Option<f64>,
    /// Attempts ran out, or the number is on the do-not-call list.
    pub failed: u64,
    /// Still waiting or being dialed.
    pub open: u64,
    /// Mean and longest time from the request to the answered callback, seconds.
    pub avg_callback_secs: Option<f64>,
    pub max_callback_secs: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListReport {
    pub list: String,
    pub purpose: String,
    /// active, paused or stopped (now).
    pub state: String,
    pub quota_per_day: Option<u32>,
    pub agent_quota_per_day: Option<u32>,
    pub contacts: ContactStates,
    pub totals: ListFigures,
    /// Days of the period the list could dial on.
    pub trading_days: u64,
    /// quota_per_day × trading_days (`None`: no quota).
    pub quota_capacity: Option<u64>,
    /// connects / quota_capacity.
    pub quota_use: Option<f64>,
    /// Trading days on which connects reached the quota.
    pub days_quota_reached: Option<u64>,
    /// Only for lists with purpose `complaint`.
    pub complaints: Option<ComplaintFigures>,
    /// Only for lists with purpose `queue_callback`.
    pub queue_callbacks: Option<QueueCallbackFigures>,
    pub days: Vec<ListDay>,
}

/// One list an agent works, in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentList {
    pub list: String,
    pub attempts: u64,
    pub connects: u64,
    pub agent_quota_per_day: Option<u32>,
    /// agent_quota_per_day × the list's trading days in the period.
    pub quota: Option<u64>,
}

/// An agent's outbound work in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AgentOutbound {
    pub attempts: u64,
    pub connects: u64,
    /// Sum of the quotas of the lists with a per-agent quota (`None`: no such list).
    pub quota: Option<u64>,
    /// Connects on those lists / quota.
    pub quota_use: Option<f64>,
    pub lists: Vec<AgentList>,
}

/// The lists of the period (created before its end; only the one named, when given).
fn load_lists(
    store: &dyn ReportReads,
    period: &Period,
    name: Option<&str>,
) -> Result<Vec<ListRow>> {
    Ok(store.report_lists(period.end_ms, name)?)
}

/// The local days of the period: (date, start_ms, end_ms).
pub fn period_days(period: &Period, settings: &Settings) -> Result<Vec<(Date, i64, i64)>> {
    let first: Date = period.first_day.parse()?;
    let last: Date = period.last_day.parse()?;
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        let next = d.checked_add(1.day())?;
        out.push((
            d,
            super::day_start_ms(d, &settings.tz)?,
            super::day_start_ms(next, &settings.tz)?,
        ));
        d = next;
    }
    Ok(out)
}

/// Which of `days` the list could dial on: it existed (and was not stopped), the date is not a
/// holiday, and a window opens on its weekday.
fn trading(store: &dyn ReportReads, l: &ListRow, days: &[(Date, i64, i64)]) -> Result<Vec<bool>> {
    let (mask, holidays) = store.list_calendar(l.id)?;
    Ok(days
        .iter()
        .map(|(date, start, end)| {
            let bit = 1i64 << date.weekday().to_monday_zero_offset();
            *end > l.created_at_ms
                && l.stopped_at_ms.is_none_or(|s| s > *start)
                && !holidays.contains(&date.to_string())
                && mask & bit != 0
        })
        .collect())
}

/// Index of the day containing `ms`.
fn day_of(days: &[(Date, i64, i64)], ms: i64) -> Option<usize> {
    let i = days.partition_point(|d| d.1 <= ms);
    (i > 0 && ms < days[i - 1].2).then(|| i - 1)
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Figures of every list (or of the one named), in name order.
pub fn list_report(
    store: &dyn ReportReads,
    settings: &Settings,
    period: &Period,
    list_filter: Option<&str>,
    now_ms: i64,
) -> Result<Vec<ListReport>> {
    let days = period_days(period, settings)?;
    let (s, e) = (period.start_ms, period.end_ms);
    let mut out = Vec::new();
    for l in load_lists(store, period, list_filter)? {
        let mut per_day = vec![ListFigures::default(); days.len()];
        let mut bump = |ms: i64, f: &mut dyn FnMut(&mut ListFigures)| {
            if let Some(i) = day_of(&days, ms) {
                f(&mut per_day[i]);
            }
        };
        let times = |kind| store.list_events(l.id, kind, s, e);
        for (ms, _, _) in times(ListEventKind::ContactAdded)? {
            bump(ms, &mut |f| f.contacts_added += 1);
        }
        for (ms, result, reason) in times(ListEventKind::AttemptStarted)? {
            bump(ms, &mut |f| match (result.as_str(), reason.as_str()) {
                ("skipped", "duplicate") => f.skipped_duplicate += 1,
                ("skipped", "do_not_call") => f.skipped_do_not_call += 1,
                // Given back at a restart before anyone was rung: neither a skip nor a dial.
                ("skipped", "interrupted") => {}
                ("skipped", _) => f.skipped_agent += 1,
                _ => f.attempts += 1,
            });
        }
        for (ms, _, _) in times(ListEventKind::Connect)? {
            bump(ms, &mut |f| f.connects += 1);
        }
        for (ms, state, _) in times(ListEventKind::ContactFinished)? {
            bump(ms, &mut |f| {
                if state == "done" {
                    f.completed += 1
                } else {
                    f.unreachable += 1
                }
            });
        }
        for (ms, _, _) in times(ListEventKind::RetryScheduled)? {
            bump(ms, &mut |f| f.retries_scheduled += 1);
        }

        let mut contacts = ContactStates::default();
        for (state, n) in store.list_contact_states(l.id, s, e)? {
            contacts.total += n;
            match state.as_str() {
                "pending" => contacts.pending = n,
                "in_progress" => contacts.in_progress = n,
                "done" => contacts.done = n,
                "unreachable" => contacts.unreachable = n,
                "skipped" => contacts.skipped = n,
                _ => {}
            }
        }

        let complaints = if l.purpose == "complaint" {
            Some(complaint_figures(store, l.id, period, now_ms)?)
        } else {
            None
        };
        let queue_callbacks = if l.purpose == "queue_callback" {
            Some(queue_callback_figures(store, l.id, period)?)
        } else {
            None
        };

        let trading = trading(store, &l, &days)?;
        let mut totals = ListFigures::default();
        let mut out_days = Vec::with_capacity(days.len());
        let mut reached = 0u64;
        for (i, (date, start, end)) in days.iter().enumerate() {
            let f = per_day[i];
            totals.add(&f);
            let quota_reached = l
                .quota
                .filter(|_| trading[i])
                .map(|q| f.connects >= u64::from(q));
            reached += u64::from(quota_reached == Some(true));
            out_days.push(ListDay {
                date: date.to_string(),
                start_ms: *start,
                end_ms: *end,
                trading_day: trading[i],
                quota: l.quota,
                quota_reached,
                figures: f,
            });
        }
        let trading_days = trading.iter().filter(|t| **t).count() as u64;
        let quota_capacity = l.quota.map(|q| u64::from(q) * trading_days);
        out.push(ListReport {
            list: l.name,
            purpose: l.purpose,
            state: l.state,
            quota_per_day: l.quota,
            agent_quota_per_day: l.agent_quota,
            contacts,
            totals,
            trading_days,
            quota_capacity,
            quota_use: quota_capacity.and_then(|c| ratio(totals.connects, c)),
            days_quota_reached: l.quota.map(|_| reached),
            complaints,
            queue_callbacks,
            days: out_days,
        });
    }
    Ok(out)
}

fn queue_callback_figures(
    store: &dyn ReportReads,
    list: i64,
    period: &Period,
) -> Result<QueueCallbackFigures> {
    let mut f = QueueCallbackFigures::default();
    let mut waits = Vec::new();
    for r in store.list_callback_requests(list, period.start_ms, period.end_ms)? {
        f.requests += 1;
        match r.status.as_str() {
            "done" => {
                f.called_back += 1;
                if let Some(at) = r.done_at_ms {
                    waits.push((at - r.requested_at_ms).max(0) as f64 / 1000.0);
                }
            }
            "failed" => f.failed += 1,
            _ => f.open += 1,
        }
    }
    f.called_back_rate = ratio(f.called_back, f.requests);
    if !waits.is_empty() {
        f.avg_callback_secs = Some(waits.iter().sum::<f64>() / waits.len() as f64);
        f.max_callback_secs = waits.iter().copied().reduce(f64::max);
    }
    Ok(f)
}

fn complaint_figures(
    store: &dyn ReportReads,
    list: i64,
    period: &Period,
    now_ms: i64,
) -> Result<ComplaintFigures> {
    let reply = COMPLAINT_REPLY_WITHIN_MS as i64;
    let resolve = COMPLAINT_RESOLVE_WITHIN_MS as i64;
    let mut f = ComplaintFigures::default();
    for c in store.list_complaints(list, period.start_ms, period.end_ms, reply)? {
        let (created, due, updated) = (c.created_at_ms, c.due_at_ms, c.updated_at_ms);
        let answered = c.first_answer_at_ms;
        f.complaints += 1;
        if answered.is_some_and(|a| a <= due) {
            f.replied_in_12h += 1;
        } else if answered.is_none() && now_ms < due {
            f.awaiting_reply += 1;
        }
        let resolve_by = created + resolve;
        if c.state == "done" {
            if updated <= resolve_by {
                f.resolved_in_48h += 1;
            }
        } else if now_ms < resolve_by {
            f.awaiting_resolution += 1;
        }
    }
    f.replied_in_12h_rate = ratio(f.replied_in_12h, f.complaints);
    f.resolved_in_48h_rate = ratio(f.resolved_in_48h, f.complaints);
    Ok(f)
}

/// Outbound work per agent in the period: every list each agent works (assigned to it, through
/// a configured queue it is a member of, or where it made attempts) with its attempts and
/// connects and the per-agent quota over the list's trading days.
pub fn agent_outbound(
    store: &dyn ReportReads,
    settings: &Settings,
    period: &Period,
    agent_filter: Option<&str>,
) -> Result<BTreeMap<String, AgentOutbound>> {
    let mut out: BTreeMap<String, AgentOutbound> = BTreeMap::new();
    let lists = load_lists(store, period, None)?;
    if lists.is_empty() {
        return Ok(out);
    }
    let days = period_days(period, settings)?;
    // (agent, list id) → (attempts, connects)
    let mut work: BTreeMap<(String, i64), (u64, u64)> = BTreeMap::new();
    for l in &lists {
        if let Some(q) = &l.queue {
            if let Some((_, members)) = settings.queue_members.iter().find(|(n, _)| n == q) {
                for m in members {
                    work.entry((m.clone(), l.id)).or_default();
                }
            }
        }
    }
    for row in store.list_agents()? {
        work.entry(row).or_default();
    }
    let (s, e) = (period.start_ms, period.end_ms);
    for (a, l, n) in store.agent_list_counts(s, e, false)? {
        work.entry((a, l)).or_default().0 += n;
    }
    for (a, l, n) in store.agent_list_counts(s, e, true)? {
        work.entry((a, l)).or_default().1 += n;
    }
    let mut trading_days: BTreeMap<i64, u64> = BTreeMap::new();
    for l in &lists {
        let t = trading(store, l, &days)?;
        trading_days.insert(l.id, t.iter().filter(|x| **x).count() as u64);
    }
    let mut quota_connects: BTreeMap<String, u64> = BTreeMap::new();
    for ((agent, list_id), (attempts, connects)) in work {
        if agent_filter.is_some_and(|f| f != agent) {
            continue;
        }
        let Some(l) = lists.iter().find(|l| l.id == list_id) else {
            continue;
        };
        let quota = l
            .agent_quota
            .map(|q| u64::from(q) * trading_days.get(&list_id).copied().unwrap_or(0));
        let a = out.entry(agent.clone()).or_default();
        a.attempts += attempts;
        a.connects += connects;
        if let Some(q) = quota {
            a.quota = Some(a.quota.unwrap_or(0) + q);
            *quota_connects.entry(agent).or_default() += connects;
        }
        a.lists.push(AgentList {
            list: l.name.clone(),
            attempts,
            connects,
            agent_quota_per_day: l.agent_quota,
            quota,
        });
    }
    for (agent, a) in out.iter_mut() {
        a.lists.sort_by(|x, y| x.list.cmp(&y.list));
        let c = quota_connects.get(agent).copied().unwrap_or(0);
        a.quota_use = a.quota.and_then(|q| ratio(c, q));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_of_a_dst_week_are_local_and_23_or_25_hours() {
        let cfg =
            crate::config::Config::parse("[reports]\ntime_zone = \"Europe/London\"\n").unwrap();
        let settings = Settings::from_config(&cfg).unwrap();
        let p = settings
            .period(
                super::super::PeriodKind::Week,
                "2026-03-29".parse().unwrap(),
            )
            .unwrap();
        let days = period_days(&p, &settings).unwrap();
        assert_eq!(days.len(), 7);
        assert_eq!(days[0].0.to_string(), "2026-03-23");
        let hours: Vec<i64> = days.iter().map(|d| (d.2 - d.1) / 3_600_000).collect();
        assert_eq!(hours, [24, 24, 24, 24, 24, 24, 23]);
        assert_eq!(days[0].1, p.start_ms);
        assert_eq!(days[6].2, p.end_ms);
        // Day lookup: the last millisecond of a day and the first of the next.
        assert_eq!(day_of(&days, days[3].2 - 1), Some(3));
        assert_eq!(day_of(&days, days[3].2), Some(4));
        assert_eq!(day_of(&days, p.end_ms), None);
        assert_eq!(day_of(&days, p.start_ms - 1), None);
    }

    #[test]
    fn queue_callbacks_are_reported_apart() {
        use crate::outbound::{self, AttemptResult, Decision, QueueCallbackSettings};
        use crate::store::{test_support, CallOp};
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        let cfg = crate::config::Config::parse("[reports]\ntime_zone = \"UTC\"\n").unwrap();
        let settings = Settings::from_config(&cfg).unwrap();
        let p = settings
            .period(super::super::PeriodKind::Day, "2026-03-02".parse().unwrap())
            .unwrap();
        let t = p.start_ms + 10 * 3_600_000;
        for (call, number) in [
            (1, "07700 900001"),
            (2, "07700 900002"),
            (3, "07700 900003"),
        ] {
            let at = (t + call * 1_000) as u64;
            test_support::apply(
                &conn,
                CallOp::CallbackRequested {
                    id: call as u64,
                    queue: "support".into(),
                    caller_number: number.into(),
                    caller_name: None,
                    entered_at_ms: at,
                    position: None,
                    requested_at_ms: at,
                },
            );
        }
        let cb = QueueCallbackSettings {
            time_zone: "UTC".into(),
            country_code: outbound::CountryCode::new("44").unwrap(),
        };
        let now = (t + 60_000) as u64;
        let list = outbound::absorb_requests(&conn, &cb, now)
            .unwrap()
            .lists_created[0];
        let attempt = |agent: &str| match outbound::next_contact(&conn, list, agent, now).unwrap() {
            Decision::Dial { attempt, .. } => attempt,
            d => panic!("{d:?}"),
        };
        // Call 1: answered 2 min after the request; call 2: unreachable after 1 attempt.
        let a = attempt("a1");
        outbound::record_result(&conn, a, AttemptResult::Answered, None, now + 60_000).unwrap();
        test_support::set_max_attempts(&conn, 1);
        let b = attempt("a2");
        outbound::record_result(&conn, b, AttemptResult::NoAnswer, None, now).unwrap();
        let store = test_support::reader(conn);
        let r = list_report(&store, &settings, &p, None, now as i64).unwrap();
        let q = r[0]
            .queue_callbacks
            .as_ref()
            .expect("queue callback figures");
        assert_eq!(r[0].purpose, "queue_callback");
        assert_eq!((q.requests, q.called_back, q.failed, q.open), (3, 1, 1, 1));
        assert_eq!(q.called_back_rate, Some(1.0 / 3.0));
        assert_eq!(q.avg_callback_secs, Some(119.0));
        assert_eq!(q.max_callback_secs, Some(119.0));
    }
}
