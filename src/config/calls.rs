//! `[calls]` (the inbound call path shared by every queue) and `[trunk]` (the PBX trunk ctid
//! sends its own requests to), with their checks.
//!
//! Must not know: sockets, SIP processing.

use super::Config;
use serde::{Deserialize, Serialize};

/// `[trunk]`: the PBX trunk ctid sends its own requests to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Where requests go, e.g. `sip:pbx.example.com:5060` or `sip:192.0.2.10;transport=tcp`.
    pub uri: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Send OPTIONS to the trunk this often (0 = never) and log when it goes up or down.
    #[serde(default = "default_qualify")]
    pub qualify_interval_secs: u64,
}

fn default_qualify() -> u64 {
    30
}

/// `[calls]`: settings of the inbound call path shared by every queue.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Calls {
    /// Header the PBX sets to give a caller priority (integer, higher first; absent = 0).
    pub priority_header: String,
    /// Calls beyond this many at once are refused with `503` (protects the machine).
    pub max_calls: usize,
    /// Caller hangs up within this many seconds of entering the queue: a "short abandon".
    pub short_abandon_secs: u64,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            priority_header: "X-Queue-Priority".into(),
            max_calls: 5_000,
            short_abandon_secs: 5,
        }
    }
}

/// Checks of `[calls]` and `[trunk]`.
pub(super) fn validate(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    if cfg.calls.max_calls == 0 {
        add("calls.max_calls", "must be at least 1".into());
    }
    if let Some(t) = &cfg.trunk {
        // An IP literal or a DNS name (A/AAAA, or SRV without a port: resolved at start).
        if let Err(e) = crate::resolve::plan(&t.uri) {
            add("trunk.uri", e);
        }
        if t.username.is_some() != t.password.is_some() {
            add("trunk.username", "username and password go together".into());
        }
    }
}
