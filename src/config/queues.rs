//! `[[queues]]`: the hotlines (numbers, strategy, members, goals, limits, overflow, prompts,
//! callbacks, survey, recording), with their checks; `parse_overflow` turns the overflow key into
//! the ACD engine's `Overflow`.
//!
//! Must not know: calls, media, SQL.

use super::Config;
use serde::{Deserialize, Serialize};

/// A queue member: an agent id and its skill tier (0 = best).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueMember {
    pub agent: String,
    #[serde(default)]
    pub tier: u32,
}

/// One `[[queues]]` entry: a hotline.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub name: String,
    /// Dialed numbers (Request-URI user part) that reach this queue.
    pub numbers: Vec<String>,
    /// longest-idle, round-robin, ring-all, fewest-calls, random, skills.
    #[serde(default = "default_strategy")]
    pub strategy: String,
    pub members: Vec<QueueMember>,
    /// Between queues an agent serves, the higher weight wins a tie.
    #[serde(default)]
    pub weight: u32,
    #[serde(default = "default_sl_target")]
    pub sl_target_secs: u64,
    #[serde(default = "default_answer_rate")]
    pub answer_rate_target_percent: u8,
    /// Share of calls to answer within `sl_target_secs` (the service-level goal).
    #[serde(default = "default_answer_rate")]
    pub sl_goal_percent: u8,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    #[serde(default)]
    pub wrapup_secs: u64,
    /// Callers beyond this many waiting are refused (or overflow). Absent = no limit.
    pub max_waiting: Option<usize>,
    /// A caller waiting this long leaves (overflow or timeout). Absent = no limit.
    pub max_wait_secs: Option<u64>,
    #[serde(default = "yes")]
    pub join_empty: bool,
    #[serde(default)]
    pub leave_empty: bool,
    /// `queue:NAME` (continue in another queue) or `hangup:CODE` (end with that SIP code).
    pub overflow: Option<String>,
    /// Skills strategy: widen to the next tier after this many seconds of waiting.
    #[serde(default = "default_widen")]
    pub widen_after_secs: u64,
    /// Consecutive unanswered offers before an agent is paused with reason `no_answer`
    /// (0 = never).
    #[serde(default = "default_max_missed")]
    pub max_missed: u32,
    /// Answer the caller with `183 Session Progress` (early media) and send `200 OK` only when an
    /// agent answers, so the PBX starts billing at the agent's answer.
    #[serde(default)]
    pub early_media: bool,
    /// Played once when the caller enters the queue (a WAV file; relative to
    /// `media.prompts_dir`). Absent: none.
    pub greeting: Option<String>,
    /// Played in a loop while the caller waits. Absent: silence.
    pub hold_music: Option<String>,
    /// Played every `announce_every_secs` while waiting (before the position, if announced).
    pub announcement: Option<String>,
    /// Period of the announcements (0 = none).
    #[serde(default)]
    pub announce_every_secs: u64,
    /// Tell the caller their position ("you are number 3 in the queue") with each announcement.
    #[serde(default)]
    pub announce_position: bool,
    /// The key a waiting caller presses to be called back instead (absent = no callback offer).
    pub callback_key: Option<String>,
    /// Offered with each announcement when `callback_key` is set.
    pub callback_offer: Option<String>,
    /// Played to confirm a callback request before ctid hangs up.
    pub callback_confirm: Option<String>,
    /// After the agent hangs up, ask the caller to rate the call (keys 1–5).
    #[serde(default)]
    pub survey: bool,
    pub survey_prompt: Option<String>,
    pub survey_thanks: Option<String>,
    /// No key within this many seconds after the survey prompt: no score.
    #[serde(default = "default_survey_timeout")]
    pub survey_timeout_secs: u64,
    /// Record bridged calls (stereo WAV: caller left, agent right) under `media.recordings_dir`.
    #[serde(default)]
    pub record: bool,
}

fn default_survey_timeout() -> u64 {
    10
}

fn default_strategy() -> String {
    "longest-idle".into()
}
fn default_sl_target() -> u64 {
    15
}
fn default_answer_rate() -> u8 {
    90
}
fn default_ring_timeout() -> u64 {
    15
}
fn yes() -> bool {
    true
}
fn default_widen() -> u64 {
    30
}
fn default_max_missed() -> u32 {
    3
}

/// The strategy names the config accepts.
pub const STRATEGIES: &[&str] = &[
    "longest-idle",
    "round-robin",
    "ring-all",
    "fewest-calls",
    "random",
    "skills",
];

impl Queue {
    /// The prompt files this queue names, by config key.
    pub fn prompt_fields(&self) -> [(&'static str, Option<&str>); 7] {
        [
            ("greeting", self.greeting.as_deref()),
            ("hold_music", self.hold_music.as_deref()),
            ("announcement", self.announcement.as_deref()),
            ("callback_offer", self.callback_offer.as_deref()),
            ("callback_confirm", self.callback_confirm.as_deref()),
            ("survey_prompt", self.survey_prompt.as_deref()),
            ("survey_thanks", self.survey_thanks.as_deref()),
        ]
    }
}

pub(super) fn validate(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let agents: std::collections::HashSet<&str> =
        cfg.agents.iter().map(|a| a.id.as_str()).collect();
    let names: std::collections::HashSet<&str> =
        cfg.queues.iter().map(|q| q.name.as_str()).collect();
    let mut seen_names = std::collections::HashSet::new();
    let mut seen_numbers = std::collections::HashMap::new();
    for (i, q) in cfg.queues.iter().enumerate() {
        let key = format!("queues[{i}]");
        if q.name.is_empty() || !seen_names.insert(q.name.as_str()) {
            add(
                &format!("{key}.name"),
                format!("queue name {:?} is empty or used twice", q.name),
            );
        }
        if q.numbers.is_empty() {
            add(
                &format!("{key}.numbers"),
                "a queue needs at least one dialed number".into(),
            );
        }
        for n in &q.numbers {
            if let Some(other) = seen_numbers.insert(n.as_str(), q.name.as_str()) {
                add(
                    &format!("{key}.numbers"),
                    format!("number {n:?} already reaches queue {other:?}"),
                );
            }
        }
        if !STRATEGIES.contains(&q.strategy.as_str()) {
            add(
                &format!("{key}.strategy"),
                format!(
                    "unknown strategy {:?} (one of {})",
                    q.strategy,
                    STRATEGIES.join(", ")
                ),
            );
        }
        for m in &q.members {
            if !agents.contains(m.agent.as_str()) {
                add(
                    &format!("{key}.members"),
                    format!("agent {:?} is not defined in [[agents]]", m.agent),
                );
            }
        }
        if q.ring_timeout_secs == 0 {
            add(
                &format!("{key}.ring_timeout_secs"),
                "must be at least 1".into(),
            );
        }
        if q.sl_target_secs == 0 {
            add(
                &format!("{key}.sl_target_secs"),
                "must be at least 1".into(),
            );
        }
        if q.sl_goal_percent > 100 {
            add(
                &format!("{key}.sl_goal_percent"),
                "a percentage (0-100)".into(),
            );
        }
        if q.answer_rate_target_percent > 100 {
            add(
                &format!("{key}.answer_rate_target_percent"),
                "a percentage (0-100)".into(),
            );
        }
        if let Some(o) = &q.overflow {
            match parse_overflow(o) {
                Some(crate::acd::Overflow::Queue(t))
                    if !names.contains(t.0.as_str()) || t.0 == q.name =>
                {
                    add(
                        &format!("{key}.overflow"),
                        format!("overflow queue {:?} does not exist (or is this queue)", t.0),
                    )
                }
                Some(_) => {}
                None => add(
                    &format!("{key}.overflow"),
                    format!("{o:?}: use \"queue:NAME\" or \"hangup:CODE\" (CODE 400-699)"),
                ),
            }
        }
    }
}

/// `queue:NAME` or `hangup:CODE`.
pub fn parse_overflow(s: &str) -> Option<crate::acd::Overflow> {
    if let Some(q) = s.strip_prefix("queue:") {
        return (!q.is_empty())
            .then(|| crate::acd::Overflow::Queue(crate::acd::QueueId(q.to_string())));
    }
    let code: u16 = s.strip_prefix("hangup:")?.parse().ok()?;
    (400..=699)
        .contains(&code)
        .then_some(crate::acd::Overflow::Hangup { cause: code })
}
