//! `[daemon]`: the data directory, logging and shutdown, and the check of a log filter (also
//! used for `--log-level`).
//!
//! Must not know: sockets, SIP processing, SQL.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[daemon]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Daemon {
    /// Where the database and recordings live; created if missing. Relative paths are relative
    /// to the working directory.
    pub data_dir: PathBuf,
    /// Default log filter when neither `--log-level` nor `RUST_LOG` is given.
    pub log_level: String,
    /// How log lines are written to stderr: human-readable text, or one JSON object a line for
    /// log shippers.
    pub log_format: LogFormat,
    /// On SIGINT/SIGTERM: how long open transactions may take to finish.
    pub shutdown_grace_secs: u64,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            data_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            shutdown_grace_secs: 5,
        }
    }
}

/// `[daemon] log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Check a log filter (`[daemon] log_level`, `--log-level`): comma-separated directives, each a
/// level (`trace`, `debug`, `info`, `warn`, `error`, `off`), `target=level`, or a bare module
/// path (`ctid`, `ctid::sip`). tracing's own parser takes any word as a target, so a misspelt
/// level (`debg`, `verbose`) would silently turn all logging off.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
    let is_path = |t: &str| {
        !t.is_empty()
            && t.split("::")
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    if filter.trim().is_empty() {
        return Err("is empty (expected a level such as \"info\")".into());
    }
    for d in filter.split(',').map(str::trim) {
        let ok = match d.split_once('=') {
            Some((target, level)) => is_path(target) && is_level(level),
            None => is_level(d) || (is_path(d) && (d == "ctid" || d.contains("::"))),
        };
        if !ok {
            return Err(format!(
                "\"{d}\" is not a log directive (expected trace, debug, info, warn, error, off, or target=level such as ctid::sip=debug)"
            ));
        }
    }
    Ok(())
}
