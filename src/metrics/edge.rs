//! Metrics of admission control at the SIP edge: failed authentications by reason, and requests
//! or connections refused before any work was spent on them, by reason. Names, descriptions and
//! the series created at 0 on start; the SIP driver and the TCP listener record them.

use crate::sip::endpoint::Refusal;
use crate::sip::throttle::FailReason;
use metrics::describe_counter;

pub const SIP_AUTH_FAILURES: &str = "ctid_sip_auth_failures_total";
pub const SIP_REFUSED: &str = "ctid_sip_refused_total";

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
