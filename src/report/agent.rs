//! Agent figures for a period: calls answered, AHT, logged-in and pause time (from
//! `agent_sessions`, clipped to the period), occupancy, the satisfaction survey of the calls they
//! answered (`calls.survey_score`, 1–5), and their outbound callback work against the per-agent
//! quotas of the lists they work (see [`super::lists::agent_outbound`]).

use super::lists::{agent_outbound, AgentList};
use super::{Period, Settings};
use crate::store::ReportReads;
use anyhow::Result;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentReport {
    pub agent: String,
    /// Calls this agent answered that entered in the period.
    pub answered: u64,
    /// Mean talk time of those calls that ended.
    pub aht_secs: Option<f64>,
    /// Their talk time, clipped to the period.
    pub talk_secs: f64,
    /// Logged-in time within the period (open sessions count until now).
    pub logged_in_secs: f64,
    /// Pause time within the period.
    pub paused_secs: f64,
    /// Pause time by reason ("" when none was given).
    pub pause_by_reason: BTreeMap<String, f64>,
    /// talk / (logged in − paused); `None` when that time is 0.
    pub occupancy: Option<f64>,
    /// Survey answers (score 1–5) on the calls counted in `answered`.
    pub survey_responses: u64,
    /// Answers per score: keys "1" to "5", all present.
    pub survey_by_level: BTreeMap<String, u64>,
    /// Mean score; `None` without answers.
    pub survey_avg: Option<f64>,
    /// Outbound dial attempts started in the period (skips not included).
    pub outbound_attempts: u64,
    /// Outbound attempts answered in the period.
    pub outbound_connects: u64,
    /// Per-agent quota of the lists worked over their trading days in the period (`None`: no
    /// list with a per-agent quota).
    pub outbound_quota: Option<u64>,
    /// Connects on the lists with a per-agent quota / outbound_quota.
    pub outbound_quota_use: Option<f64>,
    /// The lists worked, each with its figures.
    pub outbound_lists: Vec<AgentList>,
}

#[derive(Default)]
struct Acc {
    answered: u64,
    talk_ms: u64,
    talked: u64,
    talk_in_period_ms: u64,
    login_ms: u64,
    pause_ms: u64,
    pauses: BTreeMap<String, u64>,
    /// Survey answers per score 1..=5.
    survey: [u64; 5],
}

/// Figures per agent: without a queue filter, every configured agent (`configured`, in order,
/// zeros when idle) that matches the agent filter; then any others found in the data, by id.
/// With a queue filter, only the agents who took that queue's calls.
pub fn agent_report(
    store: &dyn ReportReads,
    settings: &Settings,
    period: &Period,
    queue_filter: Option<&str>,
    agent_filter: Option<&str>,
    now_ms: i64,
) -> Result<Vec<AgentReport>> {
    let configured = &settings.agents;
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let (start, end) = (period.start_ms, period.end_ms);
    // One visit per answered call of the period, aggregated per agent here (no SQL sort).
    store.each_agent_call(start, end, agent_filter, queue_filter, &mut |c| {
        let a = match acc.get_mut(c.agent) {
            Some(a) => a,
            None => acc.entry(c.agent.to_owned()).or_default(),
        };
        a.answered += 1;
        if let Some(score @ 1..=5) = c.survey_score {
            a.survey[score as usize - 1] += 1;
        }
        if let Some(talk) = c.talk_ms {
            let talk = talk.max(0);
            let answered_at = c.answered_at_ms;
            a.talk_ms += talk as u64;
            a.talked += 1;
            let in_period = (answered_at + talk).min(end) - answered_at.max(start);
            a.talk_in_period_ms += in_period.max(0) as u64;
        }
    })?;
    for t in store.session_totals(start, end, now_ms, agent_filter)? {
        let ms = t.ms.max(0) as u64;
        // With a queue filter, list only agents who took that queue's calls.
        if queue_filter.is_some() && !acc.contains_key(&t.agent) {
            continue;
        }
        let a = acc.entry(t.agent).or_default();
        match t.kind.as_str() {
            "login" => a.login_ms += ms,
            "pause" => {
                a.pause_ms += ms;
                *a.pauses.entry(t.reason).or_default() += ms;
            }
            _ => {}
        }
    }
    let mut outbound = agent_outbound(store, settings, period, agent_filter)?;
    if queue_filter.is_none() {
        // Agents with outbound work only (no inbound calls or sessions) are listed too.
        for (agent, o) in &outbound {
            if o.attempts > 0 || o.connects > 0 {
                acc.entry(agent.clone()).or_default();
            }
        }
    }
    let mut order: Vec<String> = Vec::with_capacity(acc.len() + configured.len());
    let mut listed = std::collections::BTreeSet::new();
    let wanted = configured
        .iter()
        .filter(|id| queue_filter.is_none() && agent_filter.is_none_or(|f| f == *id));
    for id in wanted.chain(acc.keys()) {
        if listed.insert(id.as_str()) {
            order.push(id.clone());
        }
    }
    Ok(order
        .into_iter()
        .map(|agent| {
            let a = acc.remove(&agent).unwrap_or_default();
            let available = a.login_ms.saturating_sub(a.pause_ms);
            let o = outbound.remove(&agent).unwrap_or_default();
            let responses: u64 = a.survey.iter().sum();
            let score_sum: u64 = a.survey.iter().zip(1u64..).map(|(n, s)| n * s).sum();
            AgentReport {
                agent,
                answered: a.answered,
                aht_secs: (a.talked > 0).then(|| a.talk_ms as f64 / a.talked as f64 / 1000.0),
                talk_secs: a.talk_in_period_ms as f64 / 1000.0,
                logged_in_secs: a.login_ms as f64 / 1000.0,
                paused_secs: a.pause_ms as f64 / 1000.0,
                pause_by_reason: a
                    .pauses
                    .into_iter()
                    .map(|(r, ms)| (r, ms as f64 / 1000.0))
                    .collect(),
                occupancy: (available > 0).then(|| a.talk_in_period_ms as f64 / available as f64),
                survey_responses: responses,
                survey_by_level: (1..=5).map(|l| (l.to_string(), a.survey[l - 1])).collect(),
                survey_avg: (responses > 0).then(|| score_sum as f64 / responses as f64),
                outbound_attempts: o.attempts,
                outbound_connects: o.connects,
                outbound_quota: o.quota,
                outbound_quota_use: o.quota_use,
                outbound_lists: o.lists,
            }
        })
        .collect())
}
