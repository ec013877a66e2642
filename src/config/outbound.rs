//! `[outbound]`: callback lists (outbound dialing): defaults of new lists, complaints, blending,
//! dial and preview timeouts, with their checks. The settings in the outbound core's own types
//! (`country_code`, `complaint_settings`) are built by `crate::outbound::settings`.
//!
//! Must not know: the dialer, SQL.

use super::Config;
use serde::{Deserialize, Serialize};

/// `[outbound]`: callback lists (outbound dialing). The dialer and the API read it as
/// `cfg.outbound`; see docs/config.md.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Outbound {
    /// `false`: nothing is dialed (lists, imports and the do-not-call list can still be managed
    /// through the API, to prepare a campaign).
    pub enabled: bool,
    /// Country calling code for numbers written in national form (`020 7946 0958` with `"44"`
    /// is `+442079460958`): 1–3 digits, not starting with 0; a leading `+` is accepted.
    pub default_country_code: String,
    /// Default for new lists that do not set `dedupe_period_secs`: a customer answered on any
    /// list within this many days is not called again (0 = no such rule).
    pub duplicate_period_days: u32,
    /// The list complaint follow-ups go to (created on the first complaint).
    pub complaint_list: String,
    /// The queue whose agents work the complaint list when it is created; absent: the queue of
    /// the call the complaint was made on.
    pub complaint_queue: Option<String>,
    /// A complaint must get a reply (an answered follow-up call) within this many hours …
    pub complaint_reply_hours: u32,
    /// … and be resolved (its follow-up dispositioned done) within this many hours.
    pub complaint_resolve_hours: u32,
    /// Blending: outbound dialing for an agent holds back while any inbound queue the agent
    /// serves has this many callers waiting or more (0 = this rule is off).
    pub blend_hold_back_waiting: u32,
    /// … or while the longest wait of such a queue has reached this percentage of the queue's
    /// service-level target (`sl_target_secs`; 0 = this rule is off).
    pub blend_hold_back_wait_percent: u32,
    /// A customer call not answered within this many seconds ends as `no_answer`.
    pub dial_timeout_secs: u64,
    /// Preview mode: a contact shown to an agent who neither accepts nor skips it within this
    /// many seconds is given back (it returns later) and the agent is paused `no_answer`.
    pub preview_timeout_secs: u64,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            enabled: true,
            default_country_code: "44".into(),
            duplicate_period_days: 30,
            complaint_list: "complaints".into(),
            complaint_queue: None,
            complaint_reply_hours: 12,
            complaint_resolve_hours: 48,
            blend_hold_back_waiting: 1,
            blend_hold_back_wait_percent: 80,
            dial_timeout_secs: 30,
            preview_timeout_secs: 120,
        }
    }
}

/// Longest accepted `[outbound] duplicate_period_days` (the lists accept at most 400 days).
pub const MAX_DUPLICATE_PERIOD_DAYS: u32 = 400;

impl Outbound {
    /// `duplicate_period_days` in seconds (a list's `dedupe_period_secs`).
    pub fn duplicate_period_secs(&self) -> u64 {
        u64::from(self.duplicate_period_days) * 86_400
    }

    /// `complaint_reply_hours` in milliseconds.
    pub fn complaint_reply_ms(&self) -> u64 {
        u64::from(self.complaint_reply_hours) * 3_600_000
    }

    /// `complaint_resolve_hours` in milliseconds.
    pub fn complaint_resolve_ms(&self) -> u64 {
        u64::from(self.complaint_resolve_hours) * 3_600_000
    }

    /// How long the dialer lets a customer's phone ring.
    pub fn dial_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dial_timeout_secs)
    }

    /// The blending rule for one inbound queue an agent serves: should outbound dialing for
    /// that agent hold back, with `waiting` callers in the queue, the longest waiting
    /// `longest_wait_secs`, and the queue's SL target `sl_target_secs`?
    pub fn hold_back(&self, waiting: usize, longest_wait_secs: f64, sl_target_secs: u64) -> bool {
        let by_count =
            self.blend_hold_back_waiting > 0 && waiting >= self.blend_hold_back_waiting as usize;
        let by_wait = self.blend_hold_back_wait_percent > 0
            && waiting > 0
            && longest_wait_secs * 100.0
                >= f64::from(self.blend_hold_back_wait_percent) * sl_target_secs as f64;
        by_count || by_wait
    }
}

pub(super) fn validate(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let o = &cfg.outbound;
    if let Err(e) = crate::outbound::e164::CountryCode::new(&o.default_country_code) {
        add("outbound.default_country_code", e);
    }
    if o.duplicate_period_days > MAX_DUPLICATE_PERIOD_DAYS {
        add(
            "outbound.duplicate_period_days",
            format!("must be at most {MAX_DUPLICATE_PERIOD_DAYS}"),
        );
    }
    let name = o.complaint_list.as_str();
    if name.trim().is_empty()
        || name.trim() != name
        || name.chars().count() > 100
        || name.chars().any(char::is_control)
    {
        add(
            "outbound.complaint_list",
            format!("{name:?}: 1 to 100 characters, no leading or trailing spaces"),
        );
    }
    if let Some(q) = &o.complaint_queue {
        if !cfg.queues.iter().any(|c| &c.name == q) {
            add(
                "outbound.complaint_queue",
                format!("queue {q:?} is not defined in [[queues]]"),
            );
        }
    }
    if o.complaint_reply_hours == 0 {
        add(
            "outbound.complaint_reply_hours",
            "must be at least 1".into(),
        );
    }
    if o.complaint_resolve_hours < o.complaint_reply_hours {
        add(
            "outbound.complaint_resolve_hours",
            "must be at least complaint_reply_hours".into(),
        );
    }
    if o.blend_hold_back_wait_percent > 100 {
        add(
            "outbound.blend_hold_back_wait_percent",
            "a percentage (0-100; 0 = off)".into(),
        );
    }
    if !(5..=300).contains(&o.dial_timeout_secs) {
        add("outbound.dial_timeout_secs", "must be 5 to 300".into());
    }
    if !(5..=3600).contains(&o.preview_timeout_secs) {
        add("outbound.preview_timeout_secs", "must be 5 to 3600".into());
    }
}
