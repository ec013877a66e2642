//! Where a request ctid sends goes (RFC 3261 §8.1.2, §18.1.1, §12.2.1.1): the top Route when
//! the request has one (loose routing), else its Request-URI; over TCP, an open connection to
//! the peer is reused while it lasts (RFC 5923 thinking), and once it closed the request goes
//! to that route or URI instead of the peer's old ephemeral port.
//!
//! Only IP literals are hops here: names are resolved before they reach the core.
//!
//! Must not know: sockets, connections (the caller says whether one is open), dialogs, calls.

use super::endpoint::Transport;
use super::header::NameAddr;
use super::message::Request;
use super::uri::Uri;
use std::net::SocketAddr;

/// The address of a SIP URI, with the transport its `;transport=` names (if any; TLS for a
/// `sips:` URI, RFC 3261 §19.1.2, port 5061 by default). `None` for a non-SIP URI or a host
/// name.
pub fn uri_hop(uri: &str) -> Option<(Option<Transport>, SocketAddr)> {
    let Ok(Uri::Sip(u)) = Uri::parse(uri) else {
        return None;
    };
    let host = u.params.value("maddr").unwrap_or(&u.host);
    let ip = host.trim_matches(['[', ']']).parse().ok()?;
    let named = u.params.value("transport").and_then(Transport::from_param);
    let transport = if u.secure {
        Some(Transport::Tls)
    } else {
        named
    };
    let default_port = transport.unwrap_or(Transport::Udp).default_port();
    Some((
        transport,
        SocketAddr::new(ip, u.port.unwrap_or(default_port)),
    ))
}

/// The next hop a request names itself (§8.1.2): its top Route when that is a loose router
/// (`;lr`), else its Request-URI. A request built for a strict router (§12.2.1.1) carries the
/// router in its Request-URI and the remote target, without `;lr`, as its last Route, so a
/// strict-only route set is followed too. (A strict router followed by loose ones cannot be
/// told from the request alone; such route sets are RFC 2543 relics.)
pub fn request_hop(req: &Request) -> Option<(Option<Transport>, SocketAddr)> {
    let top = req
        .headers
        .list("Route")
        .next()
        .and_then(|r| NameAddr::parse(r).ok())
        .map(|r| r.uri);
    match top {
        Some(route) if is_loose(&route) => uri_hop(&route),
        _ => uri_hop(&req.uri),
    }
}

fn is_loose(uri: &str) -> bool {
    matches!(Uri::parse(uri), Ok(Uri::Sip(u)) if u.params.has("lr"))
}

/// Where to send `req`, which the caller would send to `learned` (the flow the peer's request
/// came on, or its registered binding); `open(addr)` says whether a TCP connection to `addr` is
/// open (or being opened).
///
/// - A request with a Route goes to that route (the proxy asked for it), except that an open
///   TCP connection to the learned peer is reused.
/// - Without a Route, UDP goes to the learned address (symmetric, so a peer behind NAT is
///   reached where it sent from), TCP by its open connection.
/// - A TCP connection that closed is not reopened to the peer's ephemeral source port: the
///   request goes to its Request-URI (the peer's Contact, the remote target), with the learned
///   transport unless the URI names one.
pub fn destination(
    req: &Request,
    learned: (Transport, SocketAddr),
    open: impl Fn(SocketAddr) -> bool,
) -> (Transport, SocketAddr) {
    let (transport, remote) = learned;
    if transport.reliable() && open(remote) {
        return learned;
    }
    let has_route = req.headers.get("Route").is_some();
    if transport == Transport::Udp && !has_route {
        return learned;
    }
    match request_hop(req) {
        Some((t, addr)) => (t.unwrap_or(transport), addr),
        None => learned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Method;

    fn bye(uri: &str, routes: &[&str]) -> Request {
        let mut r = Request::new(Method::Bye, uri);
        for route in routes {
            r.headers.push("Route", *route);
        }
        r
    }

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    const CONTACT: &str = "sip:caller@10.0.0.1:5080;transport=tcp";

    #[test]
    fn tcp_reuses_the_open_connection_and_goes_to_the_contact_once_it_closed() {
        let req = bye(CONTACT, &[]);
        let learned = (Transport::Tcp, addr("10.0.0.1:43122"));
        assert_eq!(destination(&req, learned, |_| true), learned);
        assert_eq!(
            destination(&req, learned, |_| false),
            (Transport::Tcp, addr("10.0.0.1:5080"))
        );
        // A Contact without ;transport keeps the transport the peer used.
        let req = bye("sip:caller@10.0.0.1:5080", &[]);
        assert_eq!(
            destination(&req, learned, |_| false),
            (Transport::Tcp, addr("10.0.0.1:5080"))
        );
    }

    #[test]
    fn a_route_wins_over_the_learned_address_and_over_a_closed_connection() {
        let req = bye(
            CONTACT,
            &["<sip:10.0.0.9:5070;lr;ftag=x>", "<sip:10.0.0.8;lr>"],
        );
        let udp = (Transport::Udp, addr("10.0.0.7:5060"));
        assert_eq!(
            destination(&req, udp, |_| false),
            (Transport::Udp, addr("10.0.0.9:5070"))
        );
        let tcp = (Transport::Tcp, addr("10.0.0.9:40001"));
        assert_eq!(destination(&req, tcp, |a| a == tcp.1), tcp);
        assert_eq!(
            destination(&req, tcp, |_| false),
            (Transport::Tcp, addr("10.0.0.9:5070"))
        );
        let req = bye(CONTACT, &["<sip:10.0.0.9;transport=tcp;lr>"]);
        assert_eq!(
            destination(&req, udp, |_| false),
            (Transport::Tcp, addr("10.0.0.9:5060"))
        );
    }

    #[test]
    fn a_request_for_a_strict_router_goes_to_its_request_uri() {
        use crate::sip::dialog::Dialog;
        let mut inv = Request::new(Method::Invite, "sip:4000@10.0.0.2");
        inv.headers.push("Record-Route", "<sip:10.0.0.9:5070>");
        inv.headers.push("From", "<sip:caller@pbx>;tag=ft");
        inv.headers.push("To", "<sip:4000@10.0.0.2>");
        inv.headers.push("Call-ID", "c");
        inv.headers.push("CSeq", "1 INVITE");
        inv.headers.push("Contact", "<sip:caller@10.0.0.1:5080>");
        let mut d = Dialog::from_uas(&inv, "lt", "sip:ctid@10.0.0.2").unwrap();
        let bye = d.request(Method::Bye);
        let udp = (Transport::Udp, addr("10.0.0.7:5060"));
        assert_eq!(
            destination(&bye, udp, |_| false),
            (Transport::Udp, addr("10.0.0.9:5070"))
        );
    }

    #[test]
    fn udp_without_route_answers_where_the_peer_sent_from() {
        let req = bye("sip:caller@192.168.1.20:5060", &[]);
        let learned = (Transport::Udp, addr("203.0.113.5:61000"));
        assert_eq!(destination(&req, learned, |_| false), learned);
    }

    #[test]
    fn names_and_unusable_uris_fall_back_to_the_learned_peer() {
        let learned = (Transport::Tcp, addr("10.0.0.1:43122"));
        for uri in ["sip:caller@pbx.example", "tel:+15551234", "garbage"] {
            assert_eq!(
                destination(&bye(uri, &[]), learned, |_| false),
                learned,
                "{uri}"
            );
        }
        // A sips: target is reached over TLS, on 5061 by default.
        assert_eq!(
            destination(&bye("sips:caller@10.0.0.1", &[]), learned, |_| false),
            (Transport::Tls, addr("10.0.0.1:5061"))
        );
        let req = bye(CONTACT, &["<sip:proxy.example;lr>"]);
        assert_eq!(destination(&req, learned, |_| false), learned);
    }

    #[test]
    fn maddr_and_ipv6_hops() {
        assert_eq!(
            uri_hop("sip:x@host.example;maddr=10.0.0.3;transport=udp"),
            Some((Some(Transport::Udp), addr("10.0.0.3:5060")))
        );
        assert_eq!(
            uri_hop("sip:x@[2001:db8::1]:5070"),
            Some((None, addr("[2001:db8::1]:5070")))
        );
    }
}
