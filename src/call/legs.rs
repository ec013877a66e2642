//! Building the SIP messages of a call's two legs: the caller's `200 OK` with ctid's SDP, the
//! INVITE to an agent's seat, and small helpers shared by the call manager.

use crate::media::sdp::{self, Negotiated};
use crate::sip::build::{new_call_id, response_to};
use crate::sip::endpoint::{Flow, Transport};
use crate::sip::header::NameAddr;
use crate::sip::message::{Method, Request, Response};
use crate::sip::registrar::Binding;
use crate::sip::uri::Uri;
use std::net::SocketAddr;

/// `sip:ctid@<addr>` — ctid's Contact on a leg.
pub fn contact_uri(local: SocketAddr, transport: Transport) -> String {
    match transport.uri_param() {
        Some(t) => format!("sip:ctid@{local};transport={t}"),
        None => format!("sip:ctid@{local}"),
    }
}

/// The caller's number and display name from the From header.
pub fn caller_identity(req: &Request) -> (Option<String>, Option<String>) {
    let Some(from) = req
        .headers
        .get("From")
        .and_then(|f| NameAddr::parse(f).ok())
    else {
        return (None, None);
    };
    let number = Uri::parse(&from.uri).ok().and_then(|u| u.user_or_number());
    let name = from.display.map(|d| d.trim_matches('"').to_string());
    (number, name)
}

/// The answer to the caller's INVITE: 200 with ctid's SDP and Contact, To tag `tag`.
pub fn answer_caller(
    invite: &Request,
    tag: &str,
    contact: &str,
    offer: &sdp::Sdp,
    n: &Negotiated,
    local_rtp: SocketAddr,
    session: u64,
) -> Response {
    let mut r = response_to(invite, 200, Some(tag));
    r.headers.push("Contact", format!("<{contact}>"));
    r.headers.push("Content-Type", "application/sdp");
    r.body = sdp::build_answer(offer, local_rtp, n, session, 1).into_bytes();
    r
}

/// A response carrying ctid's SDP for a re-INVITE/UPDATE on a leg (same port, new version).
pub fn answer_reinvite(
    req: &Request,
    contact: &str,
    offer: &sdp::Sdp,
    n: &Negotiated,
    local_rtp: SocketAddr,
    session: u64,
    version: u64,
) -> Response {
    let mut r = response_to(req, 200, None);
    r.headers.push("Contact", format!("<{contact}>"));
    r.headers.push("Content-Type", "application/sdp");
    r.body = sdp::build_answer(offer, local_rtp, n, session, version).into_bytes();
    r
}

/// Where a seat is reached: the binding's source (`udp:1.2.3.4:5060`).
pub fn binding_target(b: &Binding) -> Option<(Transport, SocketAddr)> {
    let (t, addr) = b.source.split_once(':')?;
    let transport = Transport::from_param(t)?;
    Some((transport, addr.parse().ok()?))
}

/// What ctid offers an agent: the caller's G.711 law first, then the other (ctid transcodes),
/// plus telephone-event.
pub struct AgentOffer {
    /// The caller's law: 0 (PCMU) or 8 (PCMA).
    pub law: u8,
    pub dtmf: Option<u8>,
    pub local_rtp: SocketAddr,
    pub session: u64,
}

/// The INVITE to an agent's seat for a queued caller.
pub fn invite_agent(
    binding: &Binding,
    local_sip: SocketAddr,
    transport: Transport,
    caller_number: Option<&str>,
    caller_name: Option<&str>,
    from_tag: &str,
    offer: &AgentOffer,
) -> Request {
    let mut r = Request::new(Method::Invite, binding.uri.clone());
    let user = caller_number
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.*#".contains(c))
        })
        .unwrap_or("anonymous");
    let display = caller_name
        .map(|n| format!("\"{}\" ", n.replace(['"', '\\'], "")))
        .unwrap_or_default();
    r.headers.push(
        "From",
        format!("{display}<sip:{user}@{}>;tag={from_tag}", local_sip.ip()),
    );
    r.headers.push("To", format!("<{}>", binding.uri));
    r.headers.push("Call-ID", new_call_id("ctid"));
    r.headers.push("CSeq", "1 INVITE");
    r.headers.push(
        "Contact",
        format!("<{}>", contact_uri(local_sip, transport)),
    );
    r.headers.push("Content-Type", "application/sdp");
    let other = if offer.law == 8 { 0 } else { 8 };
    r.body = sdp::build_offer(
        offer.local_rtp,
        &[offer.law, other],
        offer.dtmf,
        20,
        offer.session,
        1,
    )
    .into_bytes();
    r
}

/// Flow-less description of where to send in-dialog requests of a leg.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub transport: Transport,
    pub remote: SocketAddr,
}

impl From<Flow> for Peer {
    fn from(f: Flow) -> Peer {
        Peer {
            transport: f.transport,
            remote: f.remote,
        }
    }
}
