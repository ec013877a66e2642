//! Admission at the endpoint's door: what is answered statelessly, before a transaction is made
//! — 403 to an untrusted source's out-of-dialog request, 481 to its request of an unknown dialog,
//! 503 + Retry-After to a new INVITE while the driver says ctid is overloaded or while the peer
//! has too many answered calls it has not acknowledged — and the count of those unacknowledged
//! answers per peer address.
//!
//! A stateless answer is sent once per request received: nothing is retransmitted, nothing is
//! kept; its To tag is derived from the request, so a retransmitted request gets the same answer,
//! and the ACK of such an answer is recognised by the tag's prefix and dropped.
//!
//! Sans-IO, part of [`super::Endpoint`]. Must not know: sockets, how the load is measured.

use super::{tag_of, DialogKey, Endpoint, Flow, Transmit, Transport};
use crate::sip::build::stamp_via;
use crate::sip::header::NameAddr;
use crate::sip::message::{Method, Request};
use std::net::IpAddr;

/// Admission of new calls (`[sip.overload]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionConfig {
    /// Retry-After of a 503 for overload.
    pub retry_after_secs: u64,
    /// Answered INVITEs (2xx sent) not yet acknowledged per peer address, above which the
    /// peer's new INVITEs get 503 (0 = no limit).
    pub max_unacked_per_peer: usize,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        AdmissionConfig {
            retry_after_secs: 5,
            max_unacked_per_peer: 200,
        }
    }
}

/// Why a request was refused before any work was spent on it (the `reason` label of
/// `ctid_sip_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// REGISTER from a source or for an account blocked after failed authentications.
    AuthThrottled,
    /// An out-of-dialog request from a source that is not a trusted PBX peer (stateless 403).
    Untrusted,
    /// A new INVITE while ctid cannot keep up (stateless 503 + Retry-After).
    Overload,
    /// A new INVITE from a peer with too many answered calls it has not acknowledged (503).
    Unacked,
}

impl Refusal {
    pub const ALL: [Refusal; 4] = [
        Refusal::AuthThrottled,
        Refusal::Untrusted,
        Refusal::Overload,
        Refusal::Unacked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::AuthThrottled => "auth_throttled",
            Refusal::Untrusted => "untrusted",
            Refusal::Overload => "overload",
            Refusal::Unacked => "unacked",
        }
    }

    pub fn index(self) -> usize {
        Refusal::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

impl Endpoint {
    /// Refuse (`true`) or admit again (`false`) new INVITEs: the driver measures the load.
    pub fn set_overloaded(&mut self, on: bool) {
        self.overloaded = on;
    }

    /// Answered calls not yet acknowledged by the peer at `ip`.
    pub fn unacked(&self, ip: IpAddr) -> usize {
        self.unacked.get(&ip).copied().unwrap_or(0)
    }

    pub(super) fn unacked_done(&mut self, id: u64) {
        if let Some(ip) = self.unacked_tx.remove(&id) {
            if let Some(n) = self.unacked.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.unacked.remove(&ip);
                }
            }
        }
    }

    /// Why a new INVITE must be refused at the door, if it must.
    pub(super) fn refuse_at_door(&self, req: &Request, flow: Flow) -> Option<Refusal> {
        if req.method != Method::Invite || tag_of(req, "To").is_some() || self.draining {
            return None;
        }
        let max = self.cfg.admission.max_unacked_per_peer;
        if self.overloaded {
            Some(Refusal::Overload)
        } else if max > 0 && self.unacked(flow.remote.ip()) >= max {
            Some(Refusal::Unacked)
        } else {
            None
        }
    }

    /// What an untrusted source gets without a transaction: 403 for an out-of-dialog request
    /// only a PBX may send, 481 for an in-dialog request of no dialog ctid knows. `None` = go on
    /// (OPTIONS, REGISTER, CANCEL, requests of a known dialog).
    pub(super) fn stateless_refusal(&self, req: &Request) -> Option<(u16, &'static str)> {
        match tag_of(req, "To") {
            None if matches!(
                req.method,
                Method::Options | Method::Register | Method::Cancel
            ) =>
            {
                None
            }
            None => Some((403, "Forbidden: not a trusted PBX peer")),
            Some(local_tag) => {
                let dk = DialogKey {
                    call_id: req.headers.get("Call-ID").unwrap_or("").to_string(),
                    local_tag,
                    remote_tag: tag_of(req, "From").unwrap_or_default(),
                };
                (!self.dialogs.contains(&dk)).then_some((481, "Call/Transaction Does Not Exist"))
            }
        }
    }

    /// Answer `req` once, statelessly (RFC 3261 §8.2.7): the response goes where a transaction's
    /// would, its To tag is derived from the request so a retransmission gets the same answer.
    pub(super) fn refuse_stateless(
        &mut self,
        flow: Flow,
        mut req: Request,
        status: u16,
        reason: &str,
        refusal: Option<Refusal>,
    ) {
        let mut dest = flow;
        let rport = flow.transport == Transport::Udp && self.cfg.force_rport;
        dest.remote = stamp_via(&mut req, flow.remote, rport);
        if flow.transport != Transport::Udp {
            dest.remote = flow.remote;
        }
        let mut r = self.reply(&req, status);
        r.reason = reason.to_string();
        if let Some(to) = r.headers.first_mut("To") {
            if NameAddr::parse(to).is_ok_and(|na| na.tag().is_none()) {
                to.push_str(";tag=");
                to.push_str(&stateless_tag(&req));
            }
        }
        if status == 503 {
            r.headers.push(
                "Retry-After",
                self.cfg.admission.retry_after_secs.to_string(),
            );
        }
        if let Some(why) = refusal {
            self.stats.refused[why.index()] += 1;
        }
        if let Some(n) = self.stats.responses_sent.get_mut(usize::from(status / 100)) {
            *n += 1;
        }
        tracing::debug!(%flow, status, method = %req.method.as_str(), "stateless answer");
        self.transmits.push_back(Transmit {
            flow: dest,
            bytes: r.to_bytes().into(),
        });
    }
}

/// How the To tag of every stateless response starts (the ACK of such a response is dropped).
pub(super) const STATELESS_TAG: &str = "ctsl-";

/// The To tag of a stateless response: the same for a retransmission of the same request.
fn stateless_tag(req: &Request) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for name in ["Call-ID", "From", "CSeq"] {
        req.headers.get(name).unwrap_or_default().hash(&mut h);
    }
    format!("{STATELESS_TAG}{:012x}", h.finish() & 0xffff_ffff_ffff)
}
