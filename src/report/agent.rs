//! Agent figures for a period: calls answered, AHT, logged-in and pause time (from
//! `agent_sessions`, clipped to the period), occupancy, the satisfaction survey of the calls they
//! answered (`calls.survey_score`, 1–5), and their outbound callback work against the per-agent
//! quotas of the lists they work (see [`super::lists::agent_outbound`]).

use super::lists::{agent_outbound, AgentList};
use super::{Period, Settings};
use anyhow::Result;
use rusqlite::{params, Connection};
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

/// One row per answered call of the period, aggregated per agent in Rust (no SQL sort).
const CALLS_SQL: &str = "
SELECT agent, talk_ms, answered_at_ms, survey_score
FROM calls INDEXED BY calls_entered
WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2
  AND agent IS NOT NULL AND answered_at_ms IS NOT NULL
  AND (?3 IS NULL OR agent = ?3) AND (?4 IS NULL OR queue = ?4)";

const SESSIONS_SQL: &str = "
SELECT agent, kind, COALESCE(reason, ''),
       SUM(MAX(0, MIN(COALESCE(ended_at_ms, ?3), ?2) - MAX(started_at_ms, ?1)))
FROM agent_sessions
WHERE started_at_ms < ?2 AND (ended_at_ms IS NULL OR ended_at_ms > ?1)
  AND (?4 IS NULL OR agent = ?4)
GROUP BY agent, kind, COALESCE(reason, '')";

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

fn u(v: Option<i64>) -> u64 {
    v.unwrap_or(0).max(0) as u64
}

/// Figures per agent: without a queue filter, every configured agent (`configured`, in order,
/// zeros when idle) that matches the agent filter; then any others found in the data, by id.
/// With a queue filter, only the agents who took that queue's calls.
pub fn agent_report(
    conn: &Connection,
    settings: &Settings,
    period: &Period,
    queue_filter: Option<&str>,
    agent_filter: Option<&str>,
    now_ms: i64,
) -> Result<Vec<AgentReport>> {
    let configured = &settings.agents;
    let mut acc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut stmt = conn.prepare_cached(CALLS_SQL)?;
    let mut rows = stmt.query(params![
        period.start_ms,
        period.end_ms,
        agent_filter,
        queue_filter
    ])?;
    while let Some(r) = rows.next()? {
        let agent = r.get_ref(0)?.as_str().unwrap_or_default();
        let a = match acc.get_mut(agent) {
            Some(a) => a,
            None => acc.entry(agent.to_owned()).or_default(),
        };
        a.answered += 1;
        if let Some(score @ 1..=5) = r.get::<_, Option<i64>>(3)? {
            a.survey[score as usize - 1] += 1;
        }
        if let Some(talk) = r.get::<_, Option<i64>>(1)? {
            let talk = talk.max(0);
            let answered_at: i64 = r.get(2)?;
            a.talk_ms += talk as u64;
            a.talked += 1;
            let in_period =
                (answered_at + talk).min(period.end_ms) - answered_at.max(period.start_ms);
            a.talk_in_period_ms += in_period.max(0) as u64;
        }
    }
    let mut stmt = conn.prepare_cached(SESSIONS_SQL)?;
    let mut rows = stmt.query(params![
        period.start_ms,
        period.end_ms,
        now_ms,
        agent_filter
    ])?;
    while let Some(r) = rows.next()? {
        let agent: String = r.get(0)?;
        let kind: String = r.get(1)?;
        let reason: String = r.get(2)?;
        let ms = u(r.get(3)?);
        // With a queue filter, list only agents who took that queue's calls.
        if queue_filter.is_some() && !acc.contains_key(&agent) {
            continue;
        }
        let a = acc.entry(agent).or_default();
        match kind.as_str() {
            "login" => a.login_ms += ms,
            "pause" => {
                a.pause_ms += ms;
                *a.pauses.entry(reason).or_default() += ms;
            }
            _ => {}
        }
    }
    let mut outbound = agent_outbound(conn, settings, period, agent_filter)?;
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
