//! Out-of-dialog INVITEs: only trusted peers (the PBX) may send them. An untrusted source gets
//! 403; a trusted peer calling a number ctid does not know gets 100 Trying, then 404.

use ctid_testkit as common;

use common::*;
use std::time::{Duration, Instant};

fn untrusted() -> Settings {
    Settings {
        trusted_peers: vec!["10.9.9.9/32".into()],
        ..Settings::default()
    }
}

#[test]
fn invite_from_untrusted_address_gets_403() {
    let env = TestEnv::new(&untrusted());
    let daemon = env.start();
    for transport in ["u1", "t1"] {
        let run = sipp(
            env.path(),
            daemon.addr,
            "invite_403.xml",
            &["-t", transport, "-m", "1", "-s", "5551234"],
        );
        assert!(
            run.ok() && run.successful == Some(1),
            "SIPp INVITE from 127.0.0.1 over {transport} with trusted_peers = [\"10.9.9.9/32\"]: expected 403 (then ACK)\n{}\n--- ctid log ---\n{}",
            run.report,
            daemon.log_tail(10_000)
        );
    }
    daemon.stop();
}

#[test]
fn untrusted_address_may_still_register_and_ask_options() {
    let env = TestEnv::new(&untrusted());
    let daemon = env.start();
    let c = UdpClient::new(daemon.addr);
    let r = c
        .transaction(
            &options_request(daemon.addr, c.local(), "UDP"),
            Duration::from_secs(2),
        )
        .expect("no answer to OPTIONS");
    assert_eq!(
        r.status, 200,
        "OPTIONS from an untrusted address:\n{}",
        r.raw
    );
    // Agents' phones are not PBXs: REGISTER is challenged, not forbidden.
    let req = register_request(daemon.addr, c.local(), "UDP", "1001")
        .header(format!("Contact: <sip:1001@{}>", c.local()));
    let r = c
        .transaction(&req, Duration::from_secs(2))
        .expect("no answer to REGISTER");
    assert_eq!(
        r.status, 401,
        "REGISTER from an address outside trusted_peers must be challenged (401), not refused:\n{}",
        r.raw
    );
    daemon.stop();
}

#[test]
fn invite_from_trusted_peer_to_unknown_number_gets_100_then_404() {
    let env = TestEnv::new(&Settings::default()); // trusted_peers = ["127.0.0.1/32"]
    let daemon = env.start();
    for transport in ["u1", "t1"] {
        let run = sipp(
            env.path(),
            daemon.addr,
            "invite_404.xml",
            &["-t", transport, "-m", "1", "-s", "5559999"],
        );
        assert!(
            run.ok() && run.successful == Some(1),
            "SIPp INVITE from trusted 127.0.0.1 over {transport} to an unknown number: expected 100 then 404 (then ACK)\n{}\n--- ctid log ---\n{}",
            run.report,
            daemon.log_tail(10_000)
        );
    }
    daemon.stop();
}

/// A PBX named by DNS (`localhost` from /etc/hosts: 127.0.0.1) is trusted at the addresses the
/// name resolves to.
#[test]
fn trusted_peer_given_by_name_may_call() {
    let env = TestEnv::new(&Settings {
        trusted_peers: vec!["localhost".into()],
        ..Settings::default()
    });
    let daemon = env.start();
    let run = sipp(
        env.path(),
        daemon.addr,
        "invite_404.xml",
        &["-t", "u1", "-m", "1", "-s", "5559999"],
    );
    assert!(
        run.ok() && run.successful == Some(1),
        "INVITE from 127.0.0.1 with trusted_peers = [\"localhost\"]: expected 100 then 404\n{}\n--- ctid log ---\n{}",
        run.report,
        daemon.log_tail(10_000)
    );
    assert!(
        daemon.log().contains("trusted peer resolved"),
        "{}",
        daemon.log_tail(5_000)
    );
    daemon.stop();
}

/// RFC 3261 17.2.1: over UDP the INVITE server transaction retransmits its non-2xx final
/// response until the ACK arrives, and stops once it has.
#[test]
fn rejected_invite_over_udp_is_retransmitted_until_ack() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let c = UdpClient::new(daemon.addr);
    let uri = format!("sip:5550000@{}", daemon.addr);
    let mut invite = SipRequest::new("INVITE", &uri, "UDP", c.local())
        .header(format!("Contact: <sip:pbx@{}>", c.local()))
        .header("Content-Type: application/sdp");
    invite.body = format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP 0\r\n",
        c.local().port() + 1
    );
    c.send(invite.render().as_bytes());
    let first = c
        .final_for(&invite, Duration::from_secs(2))
        .expect("no final response to the INVITE within 2 s");
    assert_eq!(
        first.status, 404,
        "INVITE to an unknown number:\n{}",
        first.raw
    );
    let t0 = Instant::now();

    // Without an ACK the 404 comes again (Timer G, first after T1 = 500 ms).
    let again = c
        .final_for(&invite, Duration::from_secs(3))
        .expect("the 404 was not retransmitted within 3 s although no ACK was sent");
    assert_eq!(again.status, 404, "{}", again.raw);
    assert_eq!(
        again.header("To"),
        first.header("To"),
        "a retransmission must be the same response (same To tag)"
    );

    // ACK it (same branch, To with ctid's tag): the retransmissions stop.
    let ack = format!(
        "ACK {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {};branch={};rport\r\nMax-Forwards: 70\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {} ACK\r\nContent-Length: 0\r\n\r\n",
        c.local(),
        invite.branch,
        invite.from,
        first.header("To").unwrap(),
        invite.call_id,
        invite.cseq
    );
    c.send(ack.as_bytes());
    let acked = Instant::now();
    // Anything already in flight within a few ms of the ACK is tolerated.
    while let Some((bytes, _)) = c.recv_raw(Duration::from_millis(50)) {
        let _ = bytes;
    }
    if let Some((bytes, _)) = c.recv_raw(Duration::from_millis(4_000)) {
        panic!(
            "ctid kept sending after the ACK ({:.1?} after the first 404, {:.1?} after the ACK):\n{}",
            t0.elapsed(),
            acked.elapsed(),
            String::from_utf8_lossy(&bytes)
        );
    }
    daemon.stop();
}
