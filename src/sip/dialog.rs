//! Dialog state (RFC 3261 §12): identifiers, route set, remote target, CSeq rules, and building
//! requests inside a dialog (BYE, re-INVITE, INFO, OPTIONS, UPDATE, and the ACK for a 2xx).
//!
//! A call actor owns one `Dialog` per leg; the endpoint only knows the [`DialogKey`] so it can
//! answer `481` for requests that belong to no dialog.
//!
//! Must not know: sockets, transactions, time.

use super::build::new_tag;
use super::endpoint::{DialogKey, Transport};
use super::header::{CSeq, NameAddr};
use super::message::{Method, Request, Response};
use super::uri::Uri;
use std::net::SocketAddr;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DialogError {
    #[error("missing or malformed {0}")]
    Header(&'static str),
    #[error("response has no To tag")]
    NoRemoteTag,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialogState {
    /// Created by a provisional response with a To tag.
    Early,
    Confirmed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub key: DialogKey,
    pub state: DialogState,
    /// Our side's address (name-addr without tag), as in From (UAC) or To (UAS).
    pub local_uri: String,
    pub remote_uri: String,
    /// Next CSeq ctid uses is `local_seq + 1`.
    pub local_seq: u32,
    /// Highest CSeq seen from the peer.
    pub remote_seq: Option<u32>,
    /// Where in-dialog requests go (the peer's Contact URI).
    pub remote_target: String,
    /// Route headers for in-dialog requests, in the order they are sent.
    pub route_set: Vec<String>,
    /// ctid's Contact for this dialog.
    pub local_contact: String,
}

fn header<'a>(h: &'a super::message::Headers, name: &'static str) -> Result<&'a str, DialogError> {
    h.get(name).ok_or(DialogError::Header(name))
}

fn name_addr(h: &super::message::Headers, name: &'static str) -> Result<NameAddr, DialogError> {
    NameAddr::parse(header(h, name)?).map_err(|_| DialogError::Header(name))
}

/// The address part of a name-addr, without its tag.
fn without_tag(na: &NameAddr) -> String {
    let mut na = na.clone();
    na.params.0.retain(|(n, _)| !n.eq_ignore_ascii_case("tag"));
    na.to_value()
}

fn contact_uri(h: &super::message::Headers) -> Result<String, DialogError> {
    name_addr(h, "Contact").map(|c| c.uri)
}

impl Dialog {
    /// The dialog ctid creates as UAS when it answers `req` (an INVITE) with `local_tag` and
    /// `local_contact` (§12.1.1).
    pub fn from_uas(
        req: &Request,
        local_tag: &str,
        local_contact: &str,
    ) -> Result<Dialog, DialogError> {
        let from = name_addr(&req.headers, "From")?;
        let to = name_addr(&req.headers, "To")?;
        let cseq =
            CSeq::parse(header(&req.headers, "CSeq")?).map_err(|_| DialogError::Header("CSeq"))?;
        Ok(Dialog {
            key: DialogKey {
                call_id: header(&req.headers, "Call-ID")?.to_string(),
                local_tag: local_tag.to_string(),
                remote_tag: from.tag().unwrap_or("").to_string(),
            },
            state: DialogState::Confirmed,
            local_uri: without_tag(&to),
            remote_uri: without_tag(&from),
            local_seq: 0,
            remote_seq: Some(cseq.seq),
            remote_target: contact_uri(&req.headers)?,
            route_set: req
                .headers
                .list("Record-Route")
                .map(str::to_string)
                .collect(),
            local_contact: local_contact.to_string(),
        })
    }

    /// The dialog ctid creates as UAC from the request it sent and a 1xx (early) or 2xx
    /// response carrying a To tag (§12.1.2).
    pub fn from_uac(req: &Request, resp: &Response) -> Result<Dialog, DialogError> {
        let from = name_addr(&req.headers, "From")?;
        let to = name_addr(&resp.headers, "To")?;
        let remote_tag = to.tag().ok_or(DialogError::NoRemoteTag)?.to_string();
        let cseq =
            CSeq::parse(header(&req.headers, "CSeq")?).map_err(|_| DialogError::Header("CSeq"))?;
        let mut route_set: Vec<String> = resp
            .headers
            .list("Record-Route")
            .map(str::to_string)
            .collect();
        route_set.reverse();
        Ok(Dialog {
            key: DialogKey {
                call_id: header(&req.headers, "Call-ID")?.to_string(),
                local_tag: from.tag().unwrap_or("").to_string(),
                remote_tag,
            },
            state: if resp.status < 200 {
                DialogState::Early
            } else {
                DialogState::Confirmed
            },
            local_uri: without_tag(&from),
            remote_uri: without_tag(&to),
            local_seq: cseq.seq,
            remote_seq: None,
            // A 1xx may lack Contact; fall back to the Request-URI until one arrives.
            remote_target: contact_uri(&resp.headers).unwrap_or_else(|_| req.uri.clone()),
            route_set,
            local_contact: req
                .headers
                .get("Contact")
                .and_then(|c| NameAddr::parse(c).ok())
                .map(|c| c.uri)
                .unwrap_or_default(),
        })
    }

    /// A new request in this dialog (§12.2.1.1) with the next local CSeq. The transport layer
    /// adds Via and Max-Forwards.
    pub fn request(&mut self, method: Method) -> Request {
        self.local_seq = self.local_seq.wrapping_add(1);
        self.build(method, self.local_seq)
    }

    /// The ACK for a 2xx to the INVITE sent with CSeq `invite_seq` (§13.2.2.4).
    pub fn ack(&self, invite_seq: u32) -> Request {
        self.build(Method::Ack, invite_seq)
    }

    /// §12.2.1.1: with a loose router first (`;lr`), the Request-URI is the remote target and
    /// the route set goes in Route as it is; with a strict router first, the Request-URI is that
    /// router's URI and the remote target goes last in Route.
    fn build(&self, method: Method, seq: u32) -> Request {
        let strict = self
            .route_set
            .first()
            .and_then(|r| NameAddr::parse(r).ok())
            .filter(|r| !is_loose(&r.uri));
        let mut r = match &strict {
            Some(first) => {
                let mut r = Request::new(method.clone(), first.uri.clone());
                for route in &self.route_set[1..] {
                    r.headers.push("Route", route.clone());
                }
                r.headers.push("Route", format!("<{}>", self.remote_target));
                r
            }
            None => {
                let mut r = Request::new(method.clone(), self.remote_target.clone());
                for route in &self.route_set {
                    r.headers.push("Route", route.clone());
                }
                r
            }
        };
        r.headers.push(
            "From",
            format!("{};tag={}", self.local_uri, self.key.local_tag),
        );
        r.headers.push(
            "To",
            format!("{};tag={}", self.remote_uri, self.key.remote_tag),
        );
        r.headers.push("Call-ID", self.key.call_id.clone());
        r.headers.push("CSeq", format!("{seq} {method}"));
        if matches!(method, Method::Invite | Method::Update) && !self.local_contact.is_empty() {
            r.headers
                .push("Contact", format!("<{}>", self.local_contact));
        }
        r
    }

    /// Check and absorb a request the peer sent in this dialog (§12.2.2): a CSeq lower than
    /// one already seen is answered `500`; a re-INVITE or UPDATE refreshes the remote target.
    pub fn handle_request(&mut self, req: &Request) -> Result<(), u16> {
        let cseq = req
            .headers
            .get("CSeq")
            .and_then(|c| CSeq::parse(c).ok())
            .ok_or(400u16)?;
        if req.method != Method::Ack && req.method != Method::Cancel {
            if let Some(seen) = self.remote_seq {
                if cseq.seq <= seen {
                    return Err(500);
                }
            }
            self.remote_seq = Some(cseq.seq);
        }
        if matches!(req.method, Method::Invite | Method::Update) {
            if let Ok(target) = contact_uri(&req.headers) {
                self.remote_target = target;
            }
        }
        Ok(())
    }

    /// Absorb a response to a request ctid sent in this dialog: a 2xx confirms an early dialog
    /// and, for INVITE/UPDATE, refreshes the remote target.
    pub fn handle_response(&mut self, resp: &Response) {
        let method = resp
            .headers
            .get("CSeq")
            .and_then(|c| CSeq::parse(c).ok())
            .map(|c| c.method);
        if (200..300).contains(&resp.status) {
            self.state = DialogState::Confirmed;
            if matches!(method.as_deref(), Some("INVITE") | Some("UPDATE")) {
                if let Ok(target) = contact_uri(&resp.headers) {
                    self.remote_target = target;
                }
            }
        }
    }

    /// Where the next in-dialog request goes: the first route (loose routing) or the remote
    /// target, UDP unless the URI names a transport. Only IP literals are reachable here.
    pub fn next_hop(&self) -> Option<(Transport, SocketAddr)> {
        let uri = match self.route_set.first() {
            Some(r) => NameAddr::parse(r).ok()?.uri,
            None => self.remote_target.clone(),
        };
        let (transport, addr) = super::route::uri_hop(&uri)?;
        Some((transport.unwrap_or(Transport::Udp), addr))
    }
}

/// Whether a route URI names a loose router (`;lr`, RFC 3261 §16.12). A URI that does not parse
/// is taken as loose, so ctid never puts an unparseable value in its Request-URI.
fn is_loose(uri: &str) -> bool {
    match Uri::parse(uri) {
        Ok(Uri::Sip(u)) => u.params.has("lr"),
        _ => true,
    }
}

/// A fresh local tag for a dialog ctid starts.
pub fn local_tag() -> String {
    new_tag()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::build::response_to;

    fn invite() -> Request {
        let mut r = Request::new(Method::Invite, "sip:4000@10.0.0.2");
        r.headers
            .push("Via", "SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1");
        r.headers.push("Record-Route", "<sip:p1.example;lr>");
        r.headers.push("Record-Route", "<sip:10.0.0.9;lr>");
        r.headers.push("From", "\"Caller\" <sip:caller@pbx>;tag=ft");
        r.headers.push("To", "<sip:4000@10.0.0.2>");
        r.headers.push("Call-ID", "cid");
        r.headers.push("CSeq", "10 INVITE");
        r.headers.push("Contact", "<sip:caller@10.0.0.1:5080>");
        r
    }

    #[test]
    fn uas_dialog_routes_and_counts() {
        let mut d = Dialog::from_uas(&invite(), "lt", "sip:ctid@10.0.0.2").unwrap();
        assert_eq!(d.key.remote_tag, "ft");
        assert_eq!(d.remote_target, "sip:caller@10.0.0.1:5080");
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri, "sip:caller@10.0.0.1:5080");
        assert_eq!(
            bye.headers.get_all("Route").collect::<Vec<_>>(),
            vec!["<sip:p1.example;lr>", "<sip:10.0.0.9;lr>"]
        );
        assert_eq!(bye.headers.get("From"), Some("<sip:4000@10.0.0.2>;tag=lt"));
        assert_eq!(
            bye.headers.get("To"),
            Some("\"Caller\" <sip:caller@pbx>;tag=ft")
        );
        assert_eq!(bye.headers.get("CSeq"), Some("1 BYE"));
        assert_eq!(d.request(Method::Info).headers.get("CSeq"), Some("2 INFO"));
    }

    #[test]
    fn remote_cseq_must_grow_and_reinvite_refreshes_target() {
        let mut d = Dialog::from_uas(&invite(), "lt", "sip:ctid@10.0.0.2").unwrap();
        let mut re = invite();
        re.headers.set("CSeq", "10 INVITE");
        assert_eq!(d.handle_request(&re), Err(500));
        re.headers.set("CSeq", "11 INVITE");
        re.headers.set("Contact", "<sip:caller@10.0.0.7>");
        assert_eq!(d.handle_request(&re), Ok(()));
        assert_eq!(d.remote_target, "sip:caller@10.0.0.7");
    }

    #[test]
    fn uac_dialog_reverses_record_route_and_acks_with_invite_cseq() {
        let mut req = invite();
        req.headers.remove("Record-Route");
        let mut resp = response_to(&req, 200, Some("rt"));
        resp.headers.push("Record-Route", "<sip:a;lr>");
        resp.headers.push("Record-Route", "<sip:10.0.0.3:5070;lr>");
        resp.headers.push("Contact", "<sip:agent@10.0.0.50:5062>");
        let d = Dialog::from_uac(&req, &resp).unwrap();
        assert_eq!(d.route_set, vec!["<sip:10.0.0.3:5070;lr>", "<sip:a;lr>"]);
        assert_eq!(
            d.next_hop(),
            Some((Transport::Udp, "10.0.0.3:5070".parse().unwrap()))
        );
        let ack = d.ack(10);
        assert_eq!(ack.headers.get("CSeq"), Some("10 ACK"));
        assert_eq!(ack.uri, "sip:agent@10.0.0.50:5062");
        let early = response_to(&req, 180, None);
        assert_eq!(
            Dialog::from_uac(&req, &early),
            Err(DialogError::NoRemoteTag)
        );
    }

    #[test]
    fn both_ends_route_through_the_proxies_from_the_echoed_record_route() {
        // Two proxies record-routed the caller's INVITE; the nearer one to ctid is on top, and
        // this one packs two values on one header line.
        let mut inv = invite();
        inv.headers.remove("Record-Route");
        inv.headers.push(
            "Record-Route",
            "<sip:10.0.0.9:5060;lr;ftag=ft>, <sip:10.0.0.8;transport=tcp;lr>",
        );
        let mut ok = response_to(&inv, 200, Some("lt"));
        ok.headers.push("Contact", "<sip:ctid@10.0.0.2:5060>");
        // ctid (UAS): route set in the request's order, BYE through the nearer proxy.
        let mut ctid = Dialog::from_uas(&inv, "lt", "sip:ctid@10.0.0.2:5060").unwrap();
        assert_eq!(
            ctid.route_set,
            vec![
                "<sip:10.0.0.9:5060;lr;ftag=ft>",
                "<sip:10.0.0.8;transport=tcp;lr>"
            ]
        );
        let bye = ctid.request(Method::Bye);
        assert_eq!(bye.uri, "sip:caller@10.0.0.1:5080");
        assert_eq!(
            bye.headers.get_all("Route").collect::<Vec<_>>(),
            ctid.route_set
        );
        assert_eq!(
            ctid.next_hop(),
            Some((Transport::Udp, "10.0.0.9:5060".parse().unwrap()))
        );
        // The caller (UAC) builds its route set from ctid's 200: reversed, so its ACK and BYE
        // go to its own nearer proxy first, with ctid's Contact as Request-URI.
        let caller = Dialog::from_uac(&inv, &ok).unwrap();
        assert_eq!(
            caller.route_set,
            vec![
                "<sip:10.0.0.8;transport=tcp;lr>",
                "<sip:10.0.0.9:5060;lr;ftag=ft>"
            ]
        );
        assert_eq!(
            caller.next_hop(),
            Some((Transport::Tcp, "10.0.0.8:5060".parse().unwrap()))
        );
        assert_eq!(caller.ack(10).uri, "sip:ctid@10.0.0.2:5060");
    }

    #[test]
    fn a_strict_router_first_takes_the_request_uri_and_the_target_goes_last() {
        let mut inv = invite();
        inv.headers.remove("Record-Route");
        inv.headers
            .push("Record-Route", "<sip:10.0.0.9;maddr=10.0.0.9>");
        inv.headers.push("Record-Route", "<sip:10.0.0.7;lr>");
        let mut d = Dialog::from_uas(&inv, "lt", "sip:ctid@10.0.0.2").unwrap();
        let bye = d.request(Method::Bye);
        assert_eq!(bye.uri, "sip:10.0.0.9;maddr=10.0.0.9");
        assert_eq!(
            bye.headers.get_all("Route").collect::<Vec<_>>(),
            vec!["<sip:10.0.0.7;lr>", "<sip:caller@10.0.0.1:5080>"]
        );
        assert_eq!(
            d.next_hop(),
            Some((Transport::Udp, "10.0.0.9:5060".parse().unwrap()))
        );
    }
}
