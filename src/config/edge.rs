//! Config tables of admission control at the SIP edge: `[registrar.auth]` (throttling of failed
//! authentication) and `[sip.overload]` (refusing new calls with 503 when ctid cannot keep up),
//! with their checks. The TCP per-source limits are keys of `[sip.limits]`.
//!
//! Must not know: sockets, SIP processing.

use serde::{Deserialize, Serialize};

/// `[registrar.auth]`: throttling of failed digest authentication.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthThrottle {
    /// Failures from one source address before it is blocked.
    pub max_failures: u32,
    /// Failures for one account, from sources it never authenticated from, before the account
    /// is blocked for such sources (its phones' own addresses keep working).
    pub account_max_failures: u32,
    /// The first block; each further block doubles, up to `max_block_secs`.
    pub block_secs: u64,
    pub max_block_secs: u64,
    /// Failures are forgotten after this long without one.
    pub forget_secs: u64,
}

impl Default for AuthThrottle {
    fn default() -> Self {
        AuthThrottle {
            max_failures: 5,
            account_max_failures: 20,
            block_secs: 30,
            max_block_secs: 900,
            forget_secs: 600,
        }
    }
}

/// `[sip.overload]`: admission of new calls.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Overload {
    /// Events waiting for the call layer above which new INVITEs get 503 (0 = never).
    pub max_pending_events: usize,
    /// SIP event-loop lag (ms) above which new INVITEs get 503 (0 = never).
    pub max_loop_lag_ms: u64,
    /// CPU of the media threads together, percent of all CPUs, above which new INVITEs get 503
    /// (0 = never).
    pub max_media_cpu_percent: u32,
    /// Answered calls (2xx sent) not yet acknowledged, per peer address, above which that peer's
    /// new INVITEs get 503 (0 = no limit).
    pub max_unacked_per_peer: usize,
    /// The Retry-After of those 503s.
    pub retry_after_secs: u64,
}

impl Default for Overload {
    fn default() -> Self {
        Overload {
            max_pending_events: 2_048,
            max_loop_lag_ms: 200,
            max_media_cpu_percent: 50,
            max_unacked_per_peer: 200,
            retry_after_secs: 5,
        }
    }
}

/// Checks of these tables.
pub(super) fn validate(cfg: &super::Config, add: &mut impl FnMut(&str, String)) {
    let a = &cfg.registrar.auth;
    if a.max_failures == 0 || a.account_max_failures == 0 {
        add(
            "registrar.auth.max_failures",
            "max_failures and account_max_failures must be at least 1".into(),
        );
    }
    if a.block_secs == 0 || a.max_block_secs < a.block_secs {
        add(
            "registrar.auth.block_secs",
            "must be > 0 and <= max_block_secs".into(),
        );
    }
    if a.forget_secs == 0 {
        add("registrar.auth.forget_secs", "must be > 0".into());
    }
    let o = &cfg.sip.overload;
    if o.max_media_cpu_percent > 100 {
        add(
            "sip.overload.max_media_cpu_percent",
            "percent of all CPUs: 0 (off) to 100".into(),
        );
    }
    if o.retry_after_secs == 0 || o.retry_after_secs > 3600 {
        add(
            "sip.overload.retry_after_secs",
            "must be between 1 and 3600".into(),
        );
    }
    let l = &cfg.sip.limits;
    if l.tcp_max_connections_per_source == 0 {
        add(
            "sip.limits.tcp_max_connections_per_source",
            "must be at least 1".into(),
        );
    }
    // tcp_reserved_for_trusted is capped at half of max_tcp_connections, and the unproven idle
    // timeout at tcp_idle_timeout_secs, where they are used: a smaller pool or idle timeout set
    // on its own stays valid.
    if l.tcp_unproven_idle_timeout_secs == 0 {
        add(
            "sip.limits.tcp_unproven_idle_timeout_secs",
            "must be > 0".into(),
        );
    }
    if l.tcp_listen_backlog == 0 {
        add("sip.limits.tcp_listen_backlog", "must be at least 1".into());
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn edge_keys_parse_and_bad_values_are_named() {
        let ok = "[sip.limits]\ntcp_max_connections_per_source = 8\ntcp_listen_backlog = 64\n\
                  max_tcp_connections = 16\ntcp_idle_timeout_secs = 5\n\
                  [sip.overload]\nmax_unacked_per_peer = 0\n[registrar.auth]\nmax_failures = 3\n";
        let cfg = Config::parse(ok).expect("valid");
        assert_eq!(cfg.sip.limits.tcp_max_connections_per_source, 8);
        assert_eq!(cfg.sip.overload.max_unacked_per_peer, 0);
        assert_eq!(cfg.registrar.auth.max_failures, 3);
        // An unknown key is named (deny_unknown_fields in the new tables too).
        let unknown = Config::parse("[registrar.auth]\nbogus = 1\n").unwrap_err();
        assert!(unknown.iter().any(|p| p.to_string().contains("bogus")));
        // Semantic checks name each key.
        let bad = "[sip.limits]\ntcp_unproven_idle_timeout_secs = 0\n\
                   [sip.overload]\nretry_after_secs = 0\n\
                   [registrar.auth]\nmax_block_secs = 1\n";
        let problems: Vec<String> = Config::parse(bad)
            .unwrap_err()
            .iter()
            .map(|p| p.to_string())
            .collect();
        for key in [
            "sip.limits.tcp_unproven_idle_timeout_secs",
            "sip.overload.retry_after_secs",
            "registrar.auth.block_secs",
        ] {
            assert!(
                problems.iter().any(|p| p.contains(key)),
                "{key} not named in {problems:#?}"
            );
        }
    }
}
