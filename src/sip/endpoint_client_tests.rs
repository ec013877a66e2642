//! Endpoint tests of requests ctid sends: CANCEL of a sent INVITE, ACKs, the advertised
//! address in Via.

use super::*;

/// Send an INVITE to `uri` (at PHONE) and take its 180 (To-tag `agent`): its id and the INVITE
/// as sent.
fn ringing_invite(ep: &mut Endpoint, t0: Instant, uri: &str) -> (ClientTxId, Request) {
    let mut inv = Request::new(Method::Invite, uri);
    inv.headers.push("From", "<sip:ctid@ctid.test>;tag=c1");
    inv.headers.push("To", "<sip:1001@10.0.0.50>");
    inv.headers.push("Call-ID", "out-1");
    inv.headers.push("CSeq", "1 INVITE");
    let id = ep.send_request(t0, flow(PHONE), inv, None);
    let out = sent(ep);
    let Message::Request(sent_inv) = &out[0].1 else {
        panic!()
    };
    let ringing = response_to(sent_inv, 180, Some("agent"));
    ep.handle_input(t0, flow(PHONE), Ok(Message::Response(ringing)));
    assert!(
        matches!(events(ep).as_slice(), [Event::Response { tx, response }] if *tx == id && response.status == 180)
    );
    (id, sent_inv.clone())
}

#[test]
fn cancelling_twice_sends_one_cancel_and_its_200_stops_it() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let (id, _) = ringing_invite(&mut ep, t0, "sip:+447700900007@10.0.0.50:40000");
    ep.cancel(t0, id);
    ep.cancel(t0, id);
    let out = sent(&mut ep);
    assert_eq!(out.len(), 1, "one CANCEL: {out:?}");
    let Message::Request(cancel) = &out[0].1 else {
        panic!()
    };
    let ok = response_to(cancel, 200, Some("agent"));
    ep.handle_input(t0, flow(PHONE), Ok(Message::Response(ok)));
    // Past every retransmission interval of the CANCEL: nothing is sent again.
    for s in 1..=10 {
        ep.handle_timeout(t0 + Duration::from_millis(500 * s));
    }
    let out = sent(&mut ep);
    assert!(
        out.iter()
            .all(|(_, m)| !matches!(m, Message::Request(r) if r.method == Method::Cancel)),
        "CANCEL retransmitted after its 200: {out:?}"
    );
}

#[test]
fn cancelling_a_sent_invite_sends_cancel_then_acks_the_487() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let (id, sent_inv) = ringing_invite(&mut ep, t0, "sip:1001@10.0.0.50:40000");
    let sent_inv = &sent_inv;
    ep.cancel(t0, id);
    let out = sent(&mut ep);
    let Message::Request(cancel) = &out[0].1 else {
        panic!()
    };
    assert_eq!(cancel.method, Method::Cancel);
    assert_eq!(
        cancel.headers.get("Via"),
        sent_inv.headers.get("Via"),
        "CANCEL reuses the INVITE's branch"
    );
    assert_eq!(cancel.headers.get("CSeq"), Some("1 CANCEL"));
    let terminated = response_to(sent_inv, 487, Some("agent"));
    ep.handle_input(t0, flow(PHONE), Ok(Message::Response(terminated)));
    let out = sent(&mut ep);
    let Message::Request(ack) = &out[0].1 else {
        panic!("{out:?}")
    };
    assert_eq!(ack.method, Method::Ack);
    assert_eq!(
        ack.headers.get("To"),
        Some("<sip:1001@10.0.0.50>;tag=agent")
    );
    assert!(
        matches!(events(&mut ep).as_slice(), [Event::Response { response, .. }] if response.status == 487)
    );
    // Cancelling it again once the 487 is in (a second cancel of the same INVITE) sends nothing:
    // a CANCEL after ctid's ACK would make the peer abort the call.
    ep.cancel(t0, id);
    let out = sent(&mut ep);
    assert!(
        out.is_empty(),
        "no CANCEL after the final response: {out:?}"
    );
}

/// The ACK for a retransmitted 2xx is the same ACK (same branch, same bytes), so the phone sees
/// a retransmission, not a second ACK (§13.2.2.4); another dialog's ACK has another branch.
#[test]
fn ack_for_a_retransmitted_2xx_is_the_same_ack() {
    let mut ep = endpoint(Instant::now());
    let ack = |call_id: &str| {
        let mut r = Request::new(Method::Ack, "sip:1001@10.0.0.50:40000");
        r.headers.push("From", "<sip:ctid@ctid.test>;tag=l1");
        r.headers.push("To", "<sip:1001@10.0.0.50>;tag=r1");
        r.headers.push("Call-ID", call_id);
        r.headers.push("CSeq", "1 ACK");
        r
    };
    let mut bytes = Vec::new();
    for call_id in ["c1@ctid", "c1@ctid", "c2@ctid"] {
        ep.send_stateless(flow(PHONE), ack(call_id));
        let t = ep.poll_transmit().expect("the ACK is sent");
        bytes.push(t.bytes.to_vec());
    }
    assert_eq!(bytes[0], bytes[1], "the second ACK differs from the first");
    let via = |b: &[u8]| {
        let m = parse_datagram(b, &Limits::default()).expect("ACK parses");
        m.headers().get("Via").unwrap_or_default().to_string()
    };
    assert_ne!(
        via(&bytes[0]),
        via(&bytes[2]),
        "two dialogs' ACKs share a branch"
    );
}

/// RFC 3261 §9.1: a CANCEL before any provisional response MUST NOT be sent; it goes out when
/// the first 1xx arrives. A final response first makes it moot, and a cancelled INVITE is not
/// retried with credentials when challenged.
#[test]
fn cancel_waits_for_a_provisional_response() {
    let t0 = Instant::now();
    let invite = |call_id: &str| {
        let mut inv = Request::new(Method::Invite, "sip:1001@10.0.0.50:40000");
        inv.headers.push("From", "<sip:ctid@ctid.test>;tag=c1");
        inv.headers.push("To", "<sip:1001@10.0.0.50>");
        inv.headers.push("Call-ID", call_id);
        inv.headers.push("CSeq", "1 INVITE");
        inv
    };
    let methods = |out: &[(std::net::SocketAddr, Message)]| -> Vec<String> {
        out.iter()
            .map(|(_, m)| match m {
                Message::Request(r) => r.method.as_str().to_string(),
                Message::Response(r) => r.status.to_string(),
            })
            .collect()
    };
    let mut ep = endpoint(t0);

    // Cancelled while Calling: nothing goes out until the 100 Trying; then the CANCEL.
    let id = ep.send_request(t0, flow(PHONE), invite("early-1"), None);
    let out = sent(&mut ep);
    let Message::Request(sent_inv) = &out[0].1 else {
        panic!("{out:?}")
    };
    let sent_inv = sent_inv.clone();
    ep.cancel(t0, id);
    assert!(sent(&mut ep).is_empty(), "no CANCEL before a provisional");
    let trying = response_to(&sent_inv, 100, None);
    ep.handle_input(t0, flow(PHONE), Ok(Message::Response(trying)));
    let out = sent(&mut ep);
    assert_eq!(methods(&out), ["CANCEL"], "{out:?}");
    let Message::Request(cancel) = &out[0].1 else {
        panic!()
    };
    assert_eq!(cancel.headers.get("Via"), sent_inv.headers.get("Via"));

    // Cancelled while Calling, then a final answer comes first: no CANCEL at all.
    let id2 = ep.send_request(t0, flow(PHONE), invite("early-2"), None);
    let out = sent(&mut ep);
    let Message::Request(inv2) = &out[0].1 else {
        panic!("{out:?}")
    };
    let inv2 = inv2.clone();
    ep.cancel(t0, id2);
    let busy = response_to(&inv2, 486, Some("x"));
    ep.handle_input(t0, flow(PHONE), Ok(Message::Response(busy)));
    let out = sent(&mut ep);
    assert_eq!(methods(&out), ["ACK"], "only the ACK of the 486: {out:?}");
}

#[test]
fn requests_carry_the_advertised_address_in_via_and_go_out_on_the_bound_socket() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    ep.cfg.advertise = Some(crate::sip::advertise::Advertise::parse("203.0.113.7:15060").unwrap());
    let mut req = Request::new(Method::Options, "sip:pbx@10.0.0.1");
    req.headers.push("From", "<sip:ctid@ctid.test>;tag=a1");
    req.headers.push("To", "<sip:pbx@10.0.0.1>");
    req.headers.push("Call-ID", "adv1");
    req.headers.push("CSeq", "1 OPTIONS");
    let stateless = req.clone();
    ep.send_request(t0, flow(PBX), req, None);
    ep.send_stateless(flow(PBX), stateless);
    let mut n = 0;
    while let Some(t) = ep.poll_transmit() {
        assert_eq!(t.flow.local, "10.0.0.2:5060".parse().unwrap());
        let Ok(Message::Request(r)) = parse_datagram(&t.bytes, &Limits::default()) else {
            panic!("ctid sent an unparseable request")
        };
        let via = r.headers.get("Via").unwrap();
        assert!(via.starts_with("SIP/2.0/UDP 203.0.113.7:15060;"), "{via}");
        n += 1;
    }
    assert_eq!(n, 2);
    // Without a port, the bound port stays.
    ep.cfg.advertise = Some(crate::sip::advertise::Advertise::parse("203.0.113.7").unwrap());
    let via = ep.own_via(flow(PBX));
    assert!(via.starts_with("SIP/2.0/UDP 203.0.113.7:5060;"), "{via}");
}
