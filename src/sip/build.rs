//! Building messages from other messages: responses to requests (RFC 3261 §8.2.6), the ACK for a
//! non-2xx final response (§17.1.1.3), CANCEL (§9.1), and fresh tags, branches and Call-IDs.
//!
//! Must not know: sockets, transaction state, calls.

use super::header::{NameAddr, Via};
use super::message::{reason_phrase, Headers, Method, Request, Response};
use super::parse::Reply;
use rand::Rng;
use std::net::SocketAddr;

/// The branch prefix of every Via ctid writes: the RFC 3261 magic cookie plus a marker, so a
/// request of ours that comes back is recognised as a loop.
pub const BRANCH_PREFIX: &str = "z9hG4bK-ctid-";

fn random_token(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

pub fn new_tag() -> String {
    random_token(12)
}

pub fn new_branch() -> String {
    format!("{BRANCH_PREFIX}{}", random_token(16))
}

pub fn new_call_id(host: &str) -> String {
    format!("{}@{}", random_token(20), host)
}

/// A response to `req` with the headers §8.2.6.2 requires copied. Adds a To tag when the request
/// had none and the status is above 100 (`to_tag`). A response that establishes or confirms a
/// dialog (1xx above 100 and 2xx to a dialog-creating request) carries the request's
/// Record-Route values, every one and in order (§12.1.1): behind a record-routing proxy the
/// caller builds its route set from them, and without it its ACK and BYE never reach ctid.
pub fn response_to(req: &Request, status: u16, to_tag: Option<&str>) -> Response {
    let mut headers = Headers::new();
    for v in req.headers.get_all("Via") {
        headers.push("Via", v.to_string());
    }
    if echoes_record_route(&req.method, status) {
        for v in req.headers.get_all("Record-Route") {
            headers.push("Record-Route", v.to_string());
        }
    }
    for name in ["From", "To", "Call-ID", "CSeq"] {
        if let Some(v) = req.headers.get(name) {
            headers.push(name, v.to_string());
        }
    }
    if status > 100 {
        if let Some(tag) = to_tag {
            add_to_tag(&mut headers, tag);
        }
    } else if let Some(ts) = req.headers.get("Timestamp") {
        headers.push("Timestamp", ts.to_string());
    }
    Response {
        status,
        reason: reason_phrase(status).to_string(),
        headers,
        body: Vec::new(),
    }
}

/// Whether a response with `status` to a `method` request copies the Record-Route (§12.1.1):
/// the methods that create dialogs (INVITE; SUBSCRIBE, REFER, NOTIFY per RFC 6665), for the
/// responses that create or confirm one (101–299). A re-INVITE's 2xx echoes it too, which is
/// harmless and what proxies expect of a UAS.
fn echoes_record_route(method: &Method, status: u16) -> bool {
    matches!(
        method,
        Method::Invite | Method::Subscribe | Method::Refer | Method::Notify
    ) && (101..300).contains(&status)
}

/// A stateless response to a request that could not be parsed.
pub fn response_from_reply(reply: &Reply, reason: &str, to_tag: &str) -> Response {
    let mut headers = reply.headers.clone();
    add_to_tag(&mut headers, to_tag);
    Response {
        status: reply.status,
        reason: sanitize_reason(reason),
        headers,
        body: Vec::new(),
    }
}

/// Reason phrases must be TEXT-UTF8 without CR/LF.
fn sanitize_reason(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(120)
        .collect()
}

/// Add `;tag=` to the To header unless it already has one. A To value that does not parse is
/// left alone.
pub(crate) fn add_to_tag(headers: &mut Headers, tag: &str) {
    if let Some(to) = headers.first_mut("To") {
        match NameAddr::parse(to) {
            Ok(na) if na.tag().is_none() => {
                to.push_str(";tag=");
                to.push_str(tag);
            }
            _ => {}
        }
    }
}

/// Record the real source of a request in its topmost Via (RFC 3261 §18.2.1, RFC 3581):
/// `received` when the source differs from sent-by (or rport is asked for / forced), `rport`
/// filled in when present or forced. Returns where the response must go over UDP.
pub fn stamp_via(req: &mut Request, source: SocketAddr, force_rport: bool) -> SocketAddr {
    let Some(top) = req.headers.first_mut("Via") else {
        return source;
    };
    let Ok(mut via) = Via::parse(top) else {
        return source;
    };
    let ip = source.ip().to_canonical();
    let host_is_source = via
        .host
        .trim_matches(['[', ']'])
        .parse::<std::net::IpAddr>()
        .ok()
        == Some(ip);
    let rport = force_rport || via.params.has("rport");
    if !host_is_source || rport {
        via.params.set("received", Some(ip.to_string()));
    }
    if rport {
        via.params.set("rport", Some(source.port().to_string()));
    }
    *top = via.to_value();
    if rport {
        SocketAddr::new(ip, source.port())
    } else {
        SocketAddr::new(ip, via.port.unwrap_or(5060))
    }
}

/// The ACK for a non-2xx final response to `invite` (§17.1.1.3: same branch, To from the
/// response).
pub fn ack_for_error(invite: &Request, resp: &Response) -> Request {
    same_transaction(invite, Method::Ack, resp.headers.get("To"))
}

/// CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To, top Via, CSeq number.
pub fn cancel_for(invite: &Request) -> Request {
    same_transaction(invite, Method::Cancel, invite.headers.get("To"))
}

/// A request of the INVITE's transaction (ACK or CANCEL): its Request-URI, top Via, From,
/// Call-ID, CSeq number and Route set, with the given To.
fn same_transaction(invite: &Request, method: Method, to: Option<&str>) -> Request {
    let mut r = Request::new(method.clone(), invite.uri.clone());
    if let Some(v) = invite.headers.get("Via") {
        r.headers.push("Via", v.to_string());
    }
    r.headers.push("Max-Forwards", "70");
    for name in ["From", "Call-ID"] {
        if let Some(v) = invite.headers.get(name) {
            r.headers.push(name, v.to_string());
        }
    }
    if let Some(v) = to {
        r.headers.push("To", v.to_string());
    }
    let seq = invite
        .headers
        .get("CSeq")
        .and_then(|c| c.split_whitespace().next())
        .unwrap_or("1");
    r.headers.push("CSeq", format!("{seq} {method}"));
    for v in invite.headers.get_all("Route") {
        r.headers.push("Route", v.to_string());
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(via: &str) -> Request {
        let mut r = Request::new(Method::Options, "sip:x@y");
        r.headers.push("Via", via);
        r.headers.push("From", "<sip:a@b>;tag=1");
        r.headers.push("To", "<sip:x@y>");
        r.headers.push("Call-ID", "c");
        r.headers.push("CSeq", "1 OPTIONS");
        r
    }

    #[test]
    fn via_stamped_with_received_and_rport() {
        let mut r = req("SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport");
        let src: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let dest = stamp_via(&mut r, src, false);
        assert_eq!(dest, src);
        let v = r.headers.get("Via").unwrap();
        assert!(
            v.contains("received=127.0.0.1") && v.contains("rport=40000"),
            "{v}"
        );
    }

    #[test]
    fn without_rport_response_goes_to_sent_by_port() {
        let mut r = req("SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bK1");
        let dest = stamp_via(&mut r, "127.0.0.1:40000".parse().unwrap(), false);
        assert_eq!(dest, "127.0.0.1:5070".parse().unwrap());
        let dest = stamp_via(&mut r, "127.0.0.1:40000".parse().unwrap(), true);
        assert_eq!(dest.port(), 40000);
    }

    fn invite_via_proxies() -> Request {
        let mut r = Request::new(Method::Invite, "sip:4000@10.0.0.2");
        r.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKp");
        r.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKc");
        r.headers
            .push("Record-Route", "<sip:10.0.0.9;lr;ftag=ft;did=a1>");
        r.headers
            .push("Record-Route", "<sip:p1.example;lr>, <sip:p0.example;lr>");
        r.headers.push("From", "<sip:caller@pbx>;tag=ft");
        r.headers.push("To", "<sip:4000@10.0.0.2>");
        r.headers.push("Call-ID", "c");
        r.headers.push("CSeq", "1 INVITE");
        r
    }

    #[test]
    fn dialog_responses_echo_record_route_in_order_with_parameters() {
        let inv = invite_via_proxies();
        let want = vec![
            "<sip:10.0.0.9;lr;ftag=ft;did=a1>",
            "<sip:p1.example;lr>, <sip:p0.example;lr>",
        ];
        for status in [180, 183, 200] {
            let resp = response_to(&inv, status, Some("lt"));
            assert_eq!(
                resp.headers.get_all("Record-Route").collect::<Vec<_>>(),
                want,
                "{status}"
            );
        }
        // Not in 100 Trying (hop by hop) nor in a final error (no dialog).
        for status in [100, 486, 487, 503] {
            let resp = response_to(&inv, status, Some("lt"));
            assert_eq!(resp.headers.get("Record-Route"), None, "{status}");
        }
        // Not for requests that create no dialog.
        let mut opt = inv.clone();
        opt.method = Method::Options;
        assert_eq!(
            response_to(&opt, 200, None).headers.get("Record-Route"),
            None
        );
        // Printed and parsed back, the order survives.
        let resp = response_to(&inv, 200, Some("lt"));
        let text = String::from_utf8(resp.to_bytes()).unwrap();
        let first = text.find("Record-Route: <sip:10.0.0.9").unwrap();
        let second = text.find("Record-Route: <sip:p1.example").unwrap();
        assert!(first < second, "{text}");
    }

    #[test]
    fn response_adds_to_tag_once() {
        let r = req("SIP/2.0/UDP h;branch=z9hG4bK1");
        let resp = response_to(&r, 200, Some("abc"));
        assert_eq!(resp.headers.get("To"), Some("<sip:x@y>;tag=abc"));
        let trying = response_to(&r, 100, Some("abc"));
        assert_eq!(trying.headers.get("To"), Some("<sip:x@y>"));
    }
}
