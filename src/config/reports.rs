//! `[reports]`: the call center's time zone, the live-figure interval and the retention of call
//! records, with their checks; and what a configured time-zone name means ([`time_zone`]).
//!
//! Must not know: figures, SQL.

use super::Config;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

/// `[reports]`: how days and intervals are cut for live figures and reports.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Reports {
    /// IANA time zone of the call center ("Europe/Berlin"); "system" = the machine's.
    pub time_zone: String,
    /// Length of the live-figure interval: 15, 30 or 60 minutes.
    pub interval_minutes: u32,
    /// Call records older than this many days are purged (hourly, in small batches);
    /// 0 keeps them forever.
    pub retention_days: u32,
    /// Calls deleted per retention batch (one short write transaction each): 1..=100000.
    pub retention_batch: usize,
    /// Pause between two retention batches, so call records keep being written: 0..=60000 ms.
    pub retention_pause_ms: u64,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            time_zone: "UTC".into(),
            interval_minutes: 15,
            retention_days: 0,
            retention_batch: 500,
            retention_pause_ms: 20,
        }
    }
}

/// Interval lengths (minutes) accepted by `stats::LiveStats::new`; anything else falls back to
/// [`DEFAULT_INTERVAL_MINUTES`].
pub const INTERVAL_MINUTES: [u32; 3] = [15, 30, 60];
/// The interval length used when the configured one is not in [`INTERVAL_MINUTES`].
pub const DEFAULT_INTERVAL_MINUTES: u32 = 15;

/// The time zone named in the configuration: an IANA name ("Europe/Berlin", "UTC"), or ""
/// / "system" for the machine's own zone.
pub fn time_zone(name: &str) -> Result<TimeZone, jiff::Error> {
    match name.trim() {
        "" | "system" => Ok(TimeZone::system()),
        "UTC" | "utc" => Ok(TimeZone::UTC),
        other => TimeZone::get(other),
    }
}

/// Checks of `[reports]`.
pub(super) fn validate(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    if let Err(e) = time_zone(&cfg.reports.time_zone) {
        add(
            "reports.time_zone",
            format!("{:?}: {e}", cfg.reports.time_zone),
        );
    }
    if !INTERVAL_MINUTES.contains(&cfg.reports.interval_minutes) {
        add("reports.interval_minutes", "must be 15, 30 or 60".into());
    }
    if !(1..=100_000).contains(&cfg.reports.retention_batch) {
        add("reports.retention_batch", "must be 1..=100000".into());
    }
    if cfg.reports.retention_pause_ms > 60_000 {
        add("reports.retention_pause_ms", "at most 60000".into());
    }
}
