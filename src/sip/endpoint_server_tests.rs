//! Endpoint tests of received requests: validation order, trust, CANCEL and ACK matching,
//! retransmissions, REGISTER, draining.

use super::*;

#[test]
fn options_from_anyone_gets_200_with_allow_accept_supported() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(
        &mut ep,
        t0,
        "192.0.2.99:7000",
        &request("OPTIONS", "z9hG4bK1", ""),
    );
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![200]);
    let Message::Response(r) = &out[0].1 else {
        panic!()
    };
    assert_eq!(r.headers.get("Allow"), Some(ALLOW));
    assert_eq!(r.headers.get("Accept"), Some(ACCEPT));
    assert!(r.headers.get("Supported").is_some());
    // Answered at the packet's source, with received/rport recorded.
    assert_eq!(out[0].0, "192.0.2.99:7000".parse().unwrap());
    let via = r.headers.get("Via").unwrap();
    assert!(
        via.contains("received=192.0.2.99") && via.contains("rport=7000"),
        "{via}"
    );
}

#[test]
fn invite_from_untrusted_source_is_403() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(&mut ep, t0, PHONE, &request("INVITE", "z9hG4bK2", ""));
    let first = sent(&mut ep);
    assert_eq!(statuses(&first), vec![403]);
    assert!(events(&mut ep).is_empty());
    // Stateless: no transaction, so nothing is retransmitted and nothing waits for an ACK.
    assert_eq!(ep.open_transactions(), 0);
    assert!(run_until(&mut ep, t0 + Duration::from_secs(40)).is_empty());
    assert_eq!(ep.stats.refused[Refusal::Untrusted.index()], 1);
    // The INVITE again: the same answer, with the same To tag.
    feed(&mut ep, t0, PHONE, &request("INVITE", "z9hG4bK2", ""));
    let again = sent(&mut ep);
    let to = |m: &[(SocketAddr, Message)]| match &m[0].1 {
        Message::Response(r) => r.headers.get("To").map(str::to_string),
        _ => None,
    };
    assert!(to(&first).is_some_and(|t| t.contains(";tag=")));
    assert_eq!(to(&first), to(&again));
    // A BYE of no known dialog from a stranger: a stateless 481.
    let bye = request("BYE", "z9hG4bK3", "").replace(
        "To: <sip:4000@10.0.0.2>",
        "To: <sip:4000@10.0.0.2>;tag=nope",
    );
    feed(&mut ep, t0, PHONE, &bye);
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    assert_eq!(ep.open_transactions(), 0);
}

#[test]
fn retransmitted_request_gets_the_same_response_again() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let msg = request("BYE", "z9hG4bK3", "");
    feed(&mut ep, t0, PBX, &msg);
    let first = ep.poll_transmit().unwrap();
    feed(&mut ep, t0 + Duration::from_millis(500), PBX, &msg);
    let again = ep.poll_transmit().unwrap();
    assert_eq!(first.bytes, again.bytes);
    assert_eq!(ep.stats.retransmissions_absorbed, 1);
}

#[test]
fn cancel_gets_200_and_the_invite_487() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bK4", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![100]);
    let ev = events(&mut ep);
    let Some(Event::Request { tx, .. }) = ev.first() else {
        panic!("{ev:?}")
    };
    let tx = *tx;
    feed(&mut ep, t0, PBX, &request("CANCEL", "z9hG4bK4", ""));
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![200, 487]);
    assert_eq!(events(&mut ep), vec![Event::Cancelled { tx }]);
    // A late answer from the TU is ignored; the 487 is retransmitted (Timer G) until the ACK.
    ep.respond(
        t0,
        tx,
        response_to(&request("INVITE", "z9hG4bK4", "").parse_req(), 200, None),
    );
    assert!(sent(&mut ep).is_empty());
    let retrans = run_until(&mut ep, t0 + Duration::from_millis(600));
    assert_eq!(retrans.len(), 1);
    let ack = request("ACK", "z9hG4bK4", "");
    feed(&mut ep, t0 + Duration::from_millis(700), PBX, &ack);
    assert!(run_until(&mut ep, t0 + Duration::from_secs(40)).is_empty());
    assert_eq!(ep.busy_transactions(), 0);
}

fn to_tag_in(m: &Message) -> Option<String> {
    let h = match m {
        Message::Response(r) => &r.headers,
        Message::Request(r) => &r.headers,
    };
    NameAddr::parse(h.get("To")?)
        .ok()?
        .tag()
        .map(str::to_string)
}

#[test]
fn cancel_after_the_200_gets_200_with_the_dialog_to_tag() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bK41", ""));
    sent(&mut ep);
    let ev = events(&mut ep);
    let Some(Event::Request {
        tx, request: inv, ..
    }) = ev.first()
    else {
        panic!("{ev:?}")
    };
    // The call layer answers with its own dialog tag.
    ep.respond(t0, *tx, response_to(inv, 200, Some("dlg-tag")));
    let ok = sent(&mut ep);
    assert_eq!(statuses(&ok), vec![200]);
    assert_eq!(to_tag_in(&ok[0].1).as_deref(), Some("dlg-tag"));
    // The caller's CANCEL crosses the 200: 200 (CANCEL) with that same tag, no 487.
    let t1 = t0 + Duration::from_millis(10);
    feed(&mut ep, t1, PBX, &request("CANCEL", "z9hG4bK41", ""));
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![200]);
    assert_eq!(to_tag_in(&out[0].1).as_deref(), Some("dlg-tag"));
    assert!(events(&mut ep).is_empty());
}

#[test]
fn cancel_before_any_answer_and_its_487_share_one_to_tag() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bK42", ""));
    sent(&mut ep);
    let ev = events(&mut ep);
    let Some(Event::Request {
        tx, request: inv, ..
    }) = ev.first()
    else {
        panic!("{ev:?}")
    };
    let mut ringing = response_to(inv, 183, Some("early"));
    ringing.reason = "Session Progress".into();
    ep.respond(t0, *tx, ringing);
    sent(&mut ep);
    feed(&mut ep, t0, PBX, &request("CANCEL", "z9hG4bK42", ""));
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![200, 487]);
    assert_eq!(to_tag_in(&out[0].1).as_deref(), Some("early"));
    assert_eq!(to_tag_in(&out[1].1).as_deref(), Some("early"));
}

#[test]
fn cancel_for_unknown_invite_is_481() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(&mut ep, t0, PBX, &request("CANCEL", "z9hG4bK5", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
}

#[test]
fn in_dialog_requests_need_a_known_dialog() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let bye = request("BYE", "z9hG4bK6", "").replace(
        "To: <sip:4000@10.0.0.2>",
        "To: <sip:4000@10.0.0.2>;tag=ours",
    );
    feed(&mut ep, t0, PHONE, &bye);
    assert_eq!(statuses(&sent(&mut ep)), vec![481]);
    ep.add_dialog(DialogKey {
        call_id: "call-z9hG4bK7".into(),
        local_tag: "ours".into(),
        remote_tag: "f1".into(),
    });
    let bye = bye.replace("z9hG4bK6", "z9hG4bK7");
    feed(&mut ep, t0, PHONE, &bye);
    assert!(sent(&mut ep).is_empty());
    assert!(matches!(
        events(&mut ep).as_slice(),
        [Event::Request { .. }]
    ));
}

#[test]
fn max_forwards_zero_is_483_except_options() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(
        &mut ep,
        t0,
        PBX,
        &request("INVITE", "z9hG4bK8", "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![100, 483]);
    feed(
        &mut ep,
        t0,
        PBX,
        &request("OPTIONS", "z9hG4bK9", "").replace("Max-Forwards: 70", "Max-Forwards: 0"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
}

#[test]
fn loops_and_merged_requests_are_482() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let looped = request(
        "INVITE",
        "z9hG4bKa",
        "Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-ctid-abc\r\n",
    );
    feed(&mut ep, t0, PBX, &looped);
    assert_eq!(statuses(&sent(&mut ep)), vec![100, 482]);
    // Same From tag, Call-ID and CSeq on another branch while the first is pending: merged.
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKb", ""));
    sent(&mut ep);
    let merged = request("INVITE", "z9hG4bKb", "").replace("branch=z9hG4bKb", "branch=z9hG4bKc");
    feed(&mut ep, t0, PBX, &merged);
    assert_eq!(statuses(&sent(&mut ep)), vec![100, 482]);
}

#[test]
fn extensions_methods_and_schemes() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(
        &mut ep,
        t0,
        PBX,
        &request("OPTIONS", "z9hG4bKd", "Require: foo, bar\r\n"),
    );
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![420]);
    let Message::Response(r) = &out[0].1 else {
        panic!()
    };
    assert_eq!(r.headers.get("Unsupported"), Some("foo, bar"));
    feed(&mut ep, t0, PBX, &request("FROB", "z9hG4bKe", ""));
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![501]);
    let Message::Response(r) = &out[0].1 else {
        panic!()
    };
    assert_eq!(r.headers.get("Allow"), Some(ALLOW));
    feed(&mut ep, t0, PBX, &request("MESSAGE", "z9hG4bKf", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![405]);
    feed(
        &mut ep,
        t0,
        PBX,
        &request("OPTIONS", "z9hG4bKg", "").replace("sip:4000@10.0.0.2 SIP", "mailto:x@y SIP"),
    );
    assert_eq!(statuses(&sent(&mut ep)), vec![416]);
}

#[test]
fn invite_2xx_is_retransmitted_until_the_ack() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let invite = request("INVITE", "z9hG4bKh", "");
    feed(&mut ep, t0, PBX, &invite);
    sent(&mut ep);
    let Some(Event::Request {
        tx, request: req, ..
    }) = events(&mut ep).pop()
    else {
        panic!()
    };
    ep.respond(t0, tx, response_to(&req, 200, None));
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    let retrans = run_until(&mut ep, t0 + Duration::from_millis(1600));
    let times: Vec<u128> = retrans
        .iter()
        .map(|(t, _, _)| (*t - t0).as_millis())
        .collect();
    assert_eq!(times, vec![500, 1500]);
    let to = match &retrans[0].2 {
        Message::Response(r) => r.headers.get("To").unwrap().to_string(),
        _ => panic!(),
    };
    let ack = request("ACK", "z9hG4bKnew", "")
        .replace("call-z9hG4bKnew", "call-z9hG4bKh")
        .replace("To: <sip:4000@10.0.0.2>", &format!("To: {to}"));
    feed(&mut ep, t0 + Duration::from_millis(1700), PBX, &ack);
    assert!(matches!(events(&mut ep).as_slice(), [Event::Ack { .. }]));
    assert!(run_until(&mut ep, t0 + Duration::from_secs(60)).is_empty());
}

#[test]
fn unacknowledged_2xx_is_reported_after_64_t1() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKi", ""));
    sent(&mut ep);
    let Some(Event::Request {
        tx, request: req, ..
    }) = events(&mut ep).pop()
    else {
        panic!()
    };
    ep.respond(t0, tx, response_to(&req, 200, None));
    run_until(&mut ep, t0 + Duration::from_secs(33));
    assert_eq!(events(&mut ep), vec![Event::AckTimeout { tx }]);
}

#[test]
fn client_request_answers_a_digest_challenge_and_times_out_without_answer() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let mut req = Request::new(Method::Options, "sip:pbx@10.0.0.1");
    req.headers.push("From", "<sip:ctid@ctid.test>;tag=q1");
    req.headers.push("To", "<sip:pbx@10.0.0.1>");
    req.headers.push("Call-ID", "q1");
    req.headers.push("CSeq", "1 OPTIONS");
    let id = ep.send_request(t0, flow(PBX), req, Some(("trunk".into(), "tpw".into())));
    let out = sent(&mut ep);
    let Message::Request(first) = &out[0].1 else {
        panic!()
    };
    assert!(first
        .headers
        .get("Via")
        .unwrap()
        .starts_with("SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK-ctid-"));
    // The PBX challenges.
    let mut challenge = response_to(first, 401, Some("p"));
    challenge.headers.push(
        "WWW-Authenticate",
        "Digest realm=\"pbx\", nonce=\"abc\", algorithm=MD5, qop=\"auth\"",
    );
    ep.handle_input(t0, flow(PBX), Ok(Message::Response(challenge)));
    let out = sent(&mut ep);
    let Message::Request(second) = &out[0].1 else {
        panic!("{out:?}")
    };
    assert_eq!(second.headers.get("CSeq"), Some("2 OPTIONS"));
    let creds = auth::parse_credentials(second.headers.get("Authorization").unwrap()).unwrap();
    assert_eq!(
        (creds.username.as_str(), creds.realm.as_str()),
        ("trunk", "pbx")
    );
    assert!(
        events(&mut ep).is_empty(),
        "the 401 is not the TU's business"
    );
    let ok = response_to(second, 200, Some("p"));
    ep.handle_input(t0, flow(PBX), Ok(Message::Response(ok)));
    assert!(
        matches!(events(&mut ep).as_slice(), [Event::Response { tx, response }] if *tx == id && response.status == 200)
    );

    // A request nobody answers: retransmitted on Timer E, failed on Timer F (32 s).
    let mut req = Request::new(Method::Options, "sip:pbx@10.0.0.1");
    req.headers.push("From", "<sip:ctid@ctid.test>;tag=q2");
    req.headers.push("To", "<sip:pbx@10.0.0.1>");
    req.headers.push("Call-ID", "q2");
    req.headers.push("CSeq", "1 OPTIONS");
    let id = ep.send_request(t0, flow(PBX), req, None);
    sent(&mut ep);
    let retrans = run_until(&mut ep, t0 + Duration::from_secs(40));
    assert_eq!(
        retrans.len(),
        10,
        "E fires at .5 1.5 3.5 7.5 11.5 ... 31.5 s"
    );
    assert_eq!(
        events(&mut ep),
        vec![Event::RequestFailed {
            tx: id,
            reason: "timeout"
        }]
    );
    assert_eq!(ep.open_transactions(), 0);
}

#[test]
fn register_challenge_then_binding_is_stored() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let reg = "REGISTER sip:10.0.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.50:5060;branch=z9hG4bKr1;rport\r\n\
From: <sip:1001@10.0.0.2>;tag=r\r\n\
To: <sip:1001@10.0.0.2>\r\n\
Call-ID: reg1\r\n\
CSeq: 1 REGISTER\r\n\
Contact: <sip:1001@10.0.0.50:5060>\r\n\
Expires: 300\r\n\
Content-Length: 0\r\n\r\n";
    feed(&mut ep, t0, PHONE, reg);
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![401]);
    let Message::Response(ch) = &out[0].1 else {
        panic!()
    };
    let ch = auth::pick_challenge(ch.headers.get_all("WWW-Authenticate")).unwrap();
    let a = auth::authorization(&ch, "REGISTER", "sip:10.0.0.2", "1001", "pw", 1, "c");
    let second = reg
        .replace("z9hG4bKr1", "z9hG4bKr2")
        .replace("CSeq: 1", "CSeq: 2")
        .replace(
            "Expires: 300\r\n",
            &format!("Expires: 300\r\nAuthorization: {a}\r\n"),
        );
    feed(&mut ep, t0, PHONE, &second);
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    let ev = events(&mut ep);
    let Some(Event::Store(StoreOp::Upsert(b))) = ev.first() else {
        panic!("{ev:?}")
    };
    assert_eq!(b.source, format!("udp:{PHONE}"));
    assert_eq!(ep.registrar().contacts("a1", 1_700_000_000_000).len(), 1);
    // The binding lapses after 300 s and its deletion is stored.
    run_until(&mut ep, t0 + Duration::from_secs(301));
    assert!(matches!(
        events(&mut ep).as_slice(),
        [Event::Store(StoreOp::Delete { .. })]
    ));
}

#[test]
fn draining_refuses_new_requests_with_503() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    ep.start_draining();
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKj", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![100, 503]);
}
