//! Endpoint tests of admission at the door: 503 for new INVITEs under overload and for peers that
//! leave answered calls unacknowledged; calls in progress go on. (Helpers from endpoint_tests.)

use super::*;

fn invite_event(ep: &mut Endpoint) -> (ServerTxId, Request) {
    match events(ep).pop() {
        Some(Event::Request { tx, request, .. }) => (tx, request),
        other => panic!("expected the INVITE for the TU, got {other:?}"),
    }
}

fn response(msgs: &[(SocketAddr, Message)]) -> &Response {
    match &msgs[0].1 {
        Message::Response(r) => r,
        other => panic!("{other:?}"),
    }
}

#[test]
fn overload_refuses_new_invites_statelessly_and_serves_calls_in_progress() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    // A call in progress, answered before the overload.
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKa1", ""));
    sent(&mut ep);
    let (tx, req) = invite_event(&mut ep);
    ep.respond(t0, tx, response_to(&req, 200, None));
    let to = response(&sent(&mut ep))
        .headers
        .get("To")
        .unwrap()
        .to_string();
    ep.add_dialog(DialogKey {
        call_id: "call-z9hG4bKa1".into(),
        local_tag: to.split("tag=").nth(1).unwrap().to_string(),
        remote_tag: "f1".into(),
    });

    ep.set_overloaded(true);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKa2", ""));
    let out = sent(&mut ep);
    assert_eq!(statuses(&out), vec![503], "no 100 Trying, one 503");
    assert_eq!(response(&out).headers.get("Retry-After"), Some("7"));
    assert!(events(&mut ep).is_empty(), "no work for the TU");
    let open = ep.open_transactions();
    // Its ACK (hop-by-hop, same branch) is absorbed without an event.
    let tag = response(&out).headers.get("To").unwrap().to_string();
    let ack =
        request("ACK", "z9hG4bKa2", "").replace("To: <sip:4000@10.0.0.2>", &format!("To: {tag}"));
    feed(&mut ep, t0, PBX, &ack);
    assert!(events(&mut ep).is_empty());
    assert_eq!(ep.open_transactions(), open);
    assert_eq!(ep.stats.refused[Refusal::Overload.index()], 1);

    // The call in progress: its ACK and BYE still reach the TU.
    let ack = request("ACK", "z9hG4bKa3", "")
        .replace("call-z9hG4bKa3", "call-z9hG4bKa1")
        .replace("To: <sip:4000@10.0.0.2>", &format!("To: {to}"));
    feed(&mut ep, t0, PBX, &ack);
    assert!(matches!(events(&mut ep).as_slice(), [Event::Ack { .. }]));
    let bye = request("BYE", "z9hG4bKa4", "")
        .replace("call-z9hG4bKa4", "call-z9hG4bKa1")
        .replace("CSeq: 1 BYE", "CSeq: 2 BYE")
        .replace("To: <sip:4000@10.0.0.2>", &format!("To: {to}"));
    feed(&mut ep, t0, PBX, &bye);
    assert!(matches!(
        events(&mut ep).as_slice(),
        [Event::Request { .. }]
    ));

    ep.set_overloaded(false);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKa5", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![100]);
    invite_event(&mut ep);
}

#[test]
fn a_peer_that_does_not_ack_its_answered_calls_gets_503_for_new_ones() {
    let t0 = Instant::now();
    let mut ep = endpoint(t0);
    let mut tos = Vec::new();
    for b in ["z9hG4bKu1", "z9hG4bKu2"] {
        feed(&mut ep, t0, PBX, &request("INVITE", b, ""));
        sent(&mut ep);
        let (tx, req) = invite_event(&mut ep);
        ep.respond(t0, tx, response_to(&req, 200, None));
        tos.push(
            response(&sent(&mut ep))
                .headers
                .get("To")
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(ep.unacked("10.0.0.1".parse().unwrap()), 2);
    // The limit is 2: the third is refused.
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKu3", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![503]);
    assert_eq!(ep.stats.refused[Refusal::Unacked.index()], 1);
    // Another peer is not affected.
    feed(&mut ep, t0, PHONE, &request("OPTIONS", "z9hG4bKu4", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![200]);
    // One ACK makes room.
    let ack = request("ACK", "z9hG4bKu5", "")
        .replace("call-z9hG4bKu5", "call-z9hG4bKu1")
        .replace("To: <sip:4000@10.0.0.2>", &format!("To: {}", tos[0]));
    feed(&mut ep, t0, PBX, &ack);
    assert_eq!(ep.unacked("10.0.0.1".parse().unwrap()), 1);
    feed(&mut ep, t0, PBX, &request("INVITE", "z9hG4bKu6", ""));
    assert_eq!(statuses(&sent(&mut ep)), vec![100]);
    // The other one never gets its ACK: when its transaction ends (Timer H), it no longer counts.
    run_until(&mut ep, t0 + Duration::from_secs(40));
    assert_eq!(ep.unacked("10.0.0.1".parse().unwrap()), 0);
}
