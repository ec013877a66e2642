//! Metrics of admission control at the SIP edge: failed authentications by reason, requests or
//! connections refused before any work was spent on them, by reason, and the overload signals. Names, descriptions and
//! the series created at 0 on start; the SIP driver and the TCP listener record them.

use crate::sip::endpoint::Refusal;
use crate::sip::throttle::FailReason;
use metrics::{describe_counter, describe_gauge};

pub const SIP_AUTH_FAILURES: &str = "ctid_sip_auth_failures_total";
pub const SIP_REFUSED: &str = "ctid_sip_refused_total";
pub const OVERLOADED: &str = "ctid_sip_overloaded";
pub const LOOP_LAG: &str = "ctid_sip_loop_lag_seconds";
pub const MEDIA_CPU: &str = "ctid_media_cpu_percent";

/// Refusal reasons recorded outside the endpoint (by the TCP listener).
pub const TCP_REFUSALS: [&str; 2] = ["tcp_per_source", "tcp_limit"];

pub(super) fn register() {
    describe_counter!(
        SIP_AUTH_FAILURES,
        "Failed SIP digest authentications, by reason (wrong_password, unknown_user, invalid, replay, aor_mismatch)."
    );
    describe_counter!(
        SIP_REFUSED,
        "SIP requests and TCP connections refused at the door, by reason (auth_throttled, untrusted, overload, unacked, tcp_per_source, tcp_limit)."
    );
    describe_gauge!(
        OVERLOADED,
        "1 while ctid refuses new calls with 503 because it cannot keep up ([sip.overload]), else 0."
    );
    describe_gauge!(
        LOOP_LAG,
        "How late the SIP event loop's 100 ms tick fired, the least of the last three (sustained lag: a saturated or starved runtime)."
    );
    describe_gauge!(
        MEDIA_CPU,
        "CPU the media threads used over the last second, percent of all CPUs of the machine."
    );
    for g in [OVERLOADED, LOOP_LAG, MEDIA_CPU] {
        let _ = metrics::gauge!(g);
    }
    for r in FailReason::ALL {
        let _ = metrics::counter!(SIP_AUTH_FAILURES, "reason" => r.as_str());
    }
    for r in Refusal::ALL {
        let _ = metrics::counter!(SIP_REFUSED, "reason" => r.as_str());
    }
    for r in TCP_REFUSALS {
        let _ = metrics::counter!(SIP_REFUSED, "reason" => r);
    }
}
