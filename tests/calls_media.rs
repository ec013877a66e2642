//! Media is anchored at ctid and relayed both ways once a seat answers: a raw caller (the
//! PBX's leg, built here so the test can send and receive RTP itself) calls queue 4000; a SIPp
//! seat (`seat_answer.xml` with `-rtp_echo`) answers and echoes every RTP packet it gets back
//! to its sender (ctid). The caller must get its own packets back through ctid.

mod common;

use common::*;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// `rtp_port_min` and `rtp_port_max` from the generated config.
fn configured_rtp_range(env: &TestEnv) -> (u16, u16) {
    let text = std::fs::read_to_string(&env.config).unwrap();
    let get = |key: &str| -> u16 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(key)?
                    .trim()
                    .strip_prefix('=')?
                    .trim()
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{key} not in config:\n{text}"))
    };
    (get("rtp_port_min"), get("rtp_port_max"))
}

/// (connection address, audio port, payload types) of an SDP body.
fn sdp_audio(body: &str) -> Option<(String, u16, Vec<String>)> {
    let addr = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("c=IN IP4 "))?
        .trim()
        .to_string();
    let m = body
        .lines()
        .find_map(|l| l.trim().strip_prefix("m=audio "))?;
    let mut it = m.split_whitespace();
    let port = it.next()?.parse().ok()?;
    let _proto = it.next()?;
    Some((addr, port, it.map(str::to_string).collect()))
}

fn rtp_packet(seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    let mut payload = format!("ctid-e2e-rtp-{seq:05}").into_bytes();
    payload.resize(160, 0xff);
    p.extend_from_slice(&payload);
    p
}

/// The sequence number our payload carries, if the packet is one of ours.
fn our_seq(packet: &[u8]) -> Option<u16> {
    let payload = packet.get(12..)?;
    let text = std::str::from_utf8(payload.get(..18)?).ok()?;
    text.strip_prefix("ctid-e2e-rtp-")?.parse().ok()
}

#[test]
fn rtp_is_relayed_between_caller_and_seat() {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    ));
    let (rtp_min, rtp_max) = configured_rtp_range(&env);
    let daemon = env.start();
    let seat = start_seat_with(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer.xml",
        30,
        &["-rtp_echo"],
    );

    let sip = UdpClient::new(daemon.addr);
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    let mut invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", daemon.addr),
        "UDP",
        sip.local(),
    );
    invite.from = format!(
        "\"Caller 7\" <sip:555017@{}>;tag={}",
        sip.local(),
        unique("t")
    );
    invite.body = format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    );
    let invite = invite
        .header(format!("Contact: <sip:555017@{}>", sip.local()))
        .header("Content-Type: application/sdp");
    let ok = sip
        .transaction(&invite, Duration::from_secs(5))
        .expect("no final response to the INVITE within 5 s");
    assert_eq!(ok.status, 200, "INVITE to 4000:\n{}", ok.raw);
    let body = String::from_utf8_lossy(&ok.body).into_owned();
    let (addr, port, pts) =
        sdp_audio(&body).unwrap_or_else(|| panic!("no audio in ctid's SDP answer:\n{}", ok.raw));
    assert_eq!(
        addr, "127.0.0.1",
        "SDP answer c= is [media] rtp_ip:\n{}",
        ok.raw
    );
    assert!(
        (rtp_min..=rtp_max).contains(&port),
        "SDP answer port {port} is outside [media] {rtp_min}..={rtp_max}:\n{}",
        ok.raw
    );
    assert_eq!(
        pts,
        ["0"],
        "SDP answer must keep the offered PCMU only:\n{}",
        ok.raw
    );

    // ACK the 2xx (new transaction, same dialog), to the Contact of the 200.
    let to = ok.header("To").expect("To in 200").to_string();
    let contact = ok
        .header("Contact")
        .map(|c| contact_uri_and_expires(c).0)
        .expect("Contact in 200");
    let mut ack = invite.clone();
    ack.method = "ACK".into();
    ack.uri = contact.clone();
    ack.to = to.clone();
    ack.branch = format!("z9hG4bK{}", unique("b"));
    ack.body.clear();
    ack.headers.retain(|h| !h.starts_with("Content-Type"));
    sip.send(ack.render().as_bytes());

    // Talk: 2 s of 20 ms packets to ctid's port; the seat echoes, ctid relays back.
    let ctid_rtp: SocketAddr = (Ipv4Addr::LOCALHOST, port).into();
    rtp.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut echoed = std::collections::BTreeSet::new();
    let mut buf = [0u8; 2048];
    let start = Instant::now();
    let mut seq: u16 = 0;
    while start.elapsed() < Duration::from_millis(2500) {
        if seq < 100 && start.elapsed() >= Duration::from_millis(20) * u32::from(seq) {
            rtp.send_to(&rtp_packet(seq), ctid_rtp).unwrap();
            seq += 1;
        }
        if let Ok((n, from)) = rtp.recv_from(&mut buf) {
            if let Some(s) = our_seq(&buf[..n]) {
                assert_eq!(
                    from, ctid_rtp,
                    "RTP must come back from ctid's port (symmetric RTP)"
                );
                echoed.insert(s);
            }
        }
    }

    let mut bye = invite.next();
    bye.method = "BYE".into();
    bye.uri = contact;
    bye.to = to;
    bye.body.clear();
    bye.headers.retain(|h| !h.starts_with("Content-Type"));
    let r = sip
        .transaction(&bye, Duration::from_secs(5))
        .expect("no answer to the caller's BYE");
    assert_eq!(r.status, 200, "BYE:\n{}", r.raw);

    let seat_run = seat.stop(Duration::from_secs(3));
    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    daemon.stop();
    assert_eq!(
        (seat_run.successful, seat_run.failed),
        (Some(1), Some(0)),
        "the seat should have answered one call and got ctid's BYE:\n{}",
        seat_run.report
    );
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    assert_eq!(
        rows[0].outcome.as_deref(),
        Some("answered"),
        "{:?}",
        rows[0]
    );
    // The seat answers ~200 ms after the offer; from then on (about 90 of the 100 packets) the
    // packets must make the round trip caller -> ctid -> seat -> ctid -> caller.
    assert!(
        echoed.len() >= 60,
        "only {} of 100 RTP packets came back through ctid (seqs {:?})\n{}",
        echoed.len(),
        echoed,
        seat_run.report
    );
}
