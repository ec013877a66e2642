//! Media is anchored at ctid and relayed both ways once a seat answers: a raw caller (the
//! PBX's leg, built here so the test can send and receive RTP itself) calls queue 4000; a SIPp
//! seat (`seat_answer.xml` with `-rtp_echo`) answers and echoes every RTP packet it gets back
//! to its sender (ctid). The caller must get its own packets back through ctid.
//!
//! The other tests drive both legs raw (no SIPp): a seat socket registers agent 1001 and
//! answers ctid's INVITE itself, so the test checks each RTP direction on its own (every packet
//! byte-identical, from the right ctid port) and the PBX's hold/resume re-INVITEs.

use ctid_testkit as common;

use common::raw::*;
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

// ---------------------------------------------------------------------------------------------
// Raw caller and raw seat (no SIPp): both legs' SIP and RTP driven from this test.
// ---------------------------------------------------------------------------------------------

/// RTP packets sent in each direction.
const PACKETS: u16 = 50;

/// A 160-byte-payload PCMU packet: SSRC `ssrc`, sequence `seq`, a payload naming `dir` and
/// `seq` (so each packet is recognisable and differs from every other).
fn rtp_from(ssrc: u32, dir: &str, seq: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&(1000 + seq).to_be_bytes());
    p.extend_from_slice(&(8000 + u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    let mut payload = format!("{dir}-{seq:05}-").into_bytes();
    while payload.len() < 160 {
        payload.push((payload.len() as u8) ^ (seq as u8));
    }
    p.extend_from_slice(&payload);
    p
}

/// The direction attribute of an SDP body (`sendrecv` when none is given).
fn sdp_direction(body: &str) -> String {
    body.lines()
        .map(str::trim)
        .find_map(|l| {
            let a = l.strip_prefix("a=")?;
            ["sendrecv", "sendonly", "recvonly", "inactive"]
                .contains(&a)
                .then(|| a.to_string())
        })
        .unwrap_or_else(|| "sendrecv".into())
}

/// A call from the raw PBX to queue 4000, answered by the raw seat of agent 1001, with both
/// ACKs done: ctid is relaying.
struct Bridged {
    pbx: UdpClient,
    invite: SipRequest,
    /// To of ctid's 200 (with ctid's tag) and the Contact to send in-dialog requests to.
    to: String,
    contact: String,
    pbx_rtp: UdpSocket,
    /// ctid's caller-leg RTP address (from its 200 to the PBX).
    ctid_a: SocketAddr,
    seat: UdpClient,
    seat_invite: InRequest,
    seat_tag: String,
    /// ctid's ACK of the seat's 200.
    seat_ack: InRequest,
    seat_rtp: UdpSocket,
    /// ctid's agent-leg RTP address (from its INVITE to the seat).
    ctid_b: SocketAddr,
}

fn bridge(d: &Daemon) -> Bridged {
    let seat = register_raw_seat(d, "1001", "secret1001");
    let seat_rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let pbx = UdpClient::new(d.addr);
    let pbx_rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();

    // The PBX's INVITE; ctid answers the caller right away (no early media on this queue).
    let mut invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", d.addr),
        "UDP",
        pbx.local(),
    );
    invite.from = format!(
        "\"Caller 9\" <sip:555019@{}>;tag={}",
        pbx.local(),
        unique("t")
    );
    invite.body = offer_sdp("pbx", 1, pbx_rtp.local_addr().unwrap().port(), "sendrecv");
    let invite = invite
        .header(format!("Contact: <sip:555019@{}>", pbx.local()))
        .header("Content-Type: application/sdp");
    let ok = pbx.transaction(&invite, STEP).unwrap_or_else(|| {
        panic!(
            "no final response to the PBX's INVITE within {STEP:?}\n--- ctid log ---\n{}",
            d.log_tail(6_000)
        )
    });
    assert_eq!(
        ok.status,
        200,
        "PBX INVITE to 4000:\n{}\n{}",
        ok.raw,
        d.log_tail(4_000)
    );
    let body = String::from_utf8_lossy(&ok.body).into_owned();
    let (ip, port_a, _) = sdp_audio(&body)
        .unwrap_or_else(|| panic!("no c=/m=audio in ctid's 200 to the PBX:\n{}", ok.raw));
    assert_eq!(
        ip, "127.0.0.1",
        "c= of ctid's answer is [media] rtp_ip:\n{}",
        ok.raw
    );
    let to = ok.header("To").expect("To in 200").to_string();
    assert!(
        to.contains(";tag="),
        "ctid's 200 has no To tag:\n{}",
        ok.raw
    );
    let contact = ok
        .header("Contact")
        .map(|c| contact_uri_and_expires(c).0)
        .unwrap_or_else(|| panic!("no Contact in ctid's 200:\n{}", ok.raw));
    let mut ack = invite.clone();
    ack.method = "ACK".into();
    ack.uri = contact.clone();
    ack.to = to.clone();
    ack.branch = format!("z9hG4bK{}", unique("b"));
    ack.body.clear();
    ack.headers.retain(|h| !h.starts_with("Content-Type"));
    pbx.send(ack.render().as_bytes());

    // ctid offers the call to the seat, on the socket the seat registered from.
    let seat_invite = await_request(&seat, "INVITE", None, None, d, "seat 1001");
    let (ip, port_b, pts) = sdp_audio(&seat_invite.body).unwrap_or_else(|| {
        panic!(
            "no c=/m=audio in ctid's INVITE to the seat:\n{}",
            seat_invite.raw
        )
    });
    assert_eq!(ip, "127.0.0.1", "c= of ctid's offer:\n{}", seat_invite.raw);
    assert!(
        seat_invite.uri.contains(&seat.local().to_string()),
        "ctid's INVITE should target the seat's registered Contact sip:1001@{}:\n{}",
        seat.local(),
        seat_invite.raw
    );
    assert_eq!(
        pts.first().map(String::as_str),
        Some("0"),
        "ctid's offer to the seat must lead with PCMU:\n{}",
        seat_invite.raw
    );
    assert_ne!(
        port_a, port_b,
        "both legs got the same RTP port:\n{}\n{}",
        ok.raw, seat_invite.raw
    );
    let seat_tag = unique("seat");
    let seat_contact = format!("Contact: <sip:1001@{}>", seat.local());
    let ringing = seat_invite.response(
        "180 Ringing",
        &seat_tag,
        std::slice::from_ref(&seat_contact),
        None,
    );
    let answer_sdp = offer_sdp("seat", 1, seat_rtp.local_addr().unwrap().port(), "sendrecv");
    let answered = seat_invite.response("200 OK", &seat_tag, &[seat_contact], Some(&answer_sdp));
    seat.send(ringing.as_bytes());
    seat.send(answered.as_bytes());
    let call_id = seat_invite
        .header("Call-ID")
        .unwrap_or_default()
        .to_string();
    let seat_ack = await_request(
        &seat,
        "ACK",
        Some(&call_id),
        Some(&answered),
        d,
        "seat 1001 after its 200",
    );
    assert!(
        seat_ack.header("To").is_some_and(|t| t.contains(&seat_tag)),
        "ctid's ACK does not carry the seat's To tag {seat_tag}:\n{}",
        seat_ack.raw
    );
    Bridged {
        pbx,
        invite,
        to,
        contact,
        pbx_rtp,
        ctid_a: (Ipv4Addr::LOCALHOST, port_a).into(),
        seat,
        seat_invite,
        seat_tag,
        seat_ack,
        seat_rtp,
        ctid_b: (Ipv4Addr::LOCALHOST, port_b).into(),
    }
}

impl Bridged {
    /// An in-dialog request from the PBX (CSeq `cseq`) to ctid's Contact.
    fn in_dialog(&self, method: &str, cseq: u32) -> SipRequest {
        let mut r = self.invite.clone();
        r.method = method.into();
        r.uri = self.contact.clone();
        r.to = self.to.clone();
        r.cseq = cseq;
        r.branch = format!("z9hG4bK{}", unique("b"));
        r.body.clear();
        r.headers.retain(|h| !h.starts_with("Content-Type"));
        r
    }

    /// A re-INVITE from the PBX (CSeq `cseq`) offering its RTP port with `a=<direction>`
    /// (`version`: the o= version), answered 200 in the dialog; ACKed. The 200.
    fn reinvite(&self, cseq: u32, version: u32, direction: &str, d: &Daemon) -> SipResponse {
        let port = self.pbx_rtp.local_addr().unwrap().port();
        let mut reinvite = self.in_dialog("INVITE", cseq);
        reinvite.body = offer_sdp("pbx", version, port, direction);
        let reinvite = reinvite
            .header(format!("Contact: <sip:555019@{}>", self.pbx.local()))
            .header("Content-Type: application/sdp");
        let r = self.pbx.transaction(&reinvite, STEP).unwrap_or_else(|| {
            panic!(
                "no final response to the a={direction} re-INVITE\n--- ctid log ---\n{}",
                d.log_tail(6_000)
            )
        });
        let ctx = format!("{}\n--- ctid log ---\n{}", r.raw, d.log_tail(4_000));
        assert_eq!(r.status, 200, "a={direction} re-INVITE:\n{ctx}");
        assert!(
            r.header("To").is_some_and(|t| *t == *self.to),
            "the 200 to the re-INVITE is not in the dialog (To {}):\n{ctx}",
            self.to
        );
        self.pbx
            .send(self.in_dialog("ACK", cseq).render().as_bytes());
        r
    }

    /// RTP relayed caller → seat (every packet byte-identical, from ctid's agent-leg port) and
    /// seat → caller (into ctid's stream, from its caller-leg port); `ssrcs` of the two
    /// streams, `when` appended to their names.
    fn relay_both_ways(&self, ssrcs: (u32, u32), when: &str, d: &Daemon) {
        relay_one_way(
            &self.pbx_rtp,
            self.ctid_a,
            &self.seat_rtp,
            self.ctid_b,
            ssrcs.0,
            &format!("caller-to-seat{when}"),
            d,
            Relayed::AsSent,
        );
        relay_one_way(
            &self.seat_rtp,
            self.ctid_b,
            &self.pbx_rtp,
            self.ctid_a,
            ssrcs.1,
            &format!("seat-to-caller{when}"),
            d,
            Relayed::IntoCtidStream,
        );
    }

    /// The seat's 200 to ctid's INVITE, as `bridge` sent it (to send it again).
    fn seat_200(&self) -> String {
        let contact = format!("Contact: <sip:1001@{}>", self.seat.local());
        let sdp = offer_sdp(
            "seat",
            1,
            self.seat_rtp.local_addr().unwrap().port(),
            "sendrecv",
        );
        self.seat_invite
            .response("200 OK", &self.seat_tag, &[contact], Some(&sdp))
    }

    /// The PBX hangs up: BYE → 200; ctid must then BYE the seat, which answers 200.
    fn caller_hangs_up(&self, cseq: u32, d: &Daemon) {
        let bye = self.in_dialog("BYE", cseq);
        let r = self.pbx.transaction(&bye, STEP).unwrap_or_else(|| {
            panic!(
                "no answer to the PBX's BYE\n--- ctid log ---\n{}",
                d.log_tail(6_000)
            )
        });
        assert_eq!(r.status, 200, "PBX BYE:\n{}\n{}", r.raw, d.log_tail(4_000));
        let call_id = self
            .seat_invite
            .header("Call-ID")
            .unwrap_or_default()
            .to_string();
        let bye = await_request(
            &self.seat,
            "BYE",
            Some(&call_id),
            None,
            d,
            "seat after the caller's BYE",
        );
        assert!(
            bye.header("To").is_some_and(|t| t.contains(&self.seat_tag)),
            "ctid's BYE to the seat is not in the seat's dialog (To tag {}):\n{}",
            self.seat_tag,
            bye.raw
        );
        self.seat
            .send(bye.response("200 OK", &self.seat_tag, &[], None).as_bytes());
    }
}

/// How packets must arrive after the relay.
#[derive(Clone, Copy, PartialEq)]
enum Relayed {
    /// Byte-identical (caller → agent: the agent sees the caller's own stream).
    AsSent,
    /// Same payload type and payload, in ctid's own stream towards the caller: ctid's SSRC, its
    /// sequence numbers (consecutive) and timestamps (RFC 3550: one stream per direction, so
    /// the caller's phone sees no jump when hold music turns into the agent's voice).
    IntoCtidStream,
}

/// Send `PACKETS` packets (20 ms apart) from `from` to `to`; `rx` must get every one of them
/// (as `how` says), each from `expect_src`, and nothing else.
#[allow(clippy::too_many_arguments)]
fn relay_one_way(
    from: &UdpSocket,
    to: SocketAddr,
    rx: &UdpSocket,
    expect_src: SocketAddr,
    ssrc: u32,
    dir: &str,
    d: &Daemon,
    how: Relayed,
) {
    let same = |a: &[u8], b: &[u8]| match how {
        Relayed::AsSent => a == b,
        Relayed::IntoCtidStream => {
            a.len() == b.len() && a.len() >= 12 && a[1] & 0x7f == b[1] & 0x7f && a[12..] == b[12..]
        }
    };
    let mut headers: Vec<(u16, u32)> = Vec::new();
    rx.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    let sent: Vec<Vec<u8>> = (0..PACKETS).map(|s| rtp_from(ssrc, dir, s)).collect();
    let mut got: Vec<Option<Vec<u8>>> = vec![None; usize::from(PACKETS)];
    let mut strays = Vec::new();
    let start = Instant::now();
    let mut next = 0usize;
    let mut buf = [0u8; 2048];
    let mut last_sent = start;
    loop {
        if next < sent.len() && start.elapsed() >= Duration::from_millis(20) * next as u32 {
            from.send_to(&sent[next], to).unwrap();
            next += 1;
            last_sent = Instant::now();
        }
        match rx.recv_from(&mut buf) {
            Ok((n, src)) => {
                let p = &buf[..n];
                match sent.iter().position(|s| same(s, p)) {
                    Some(i) if src == expect_src => {
                        got[i] = Some(p.to_vec());
                        headers.push((
                            u16::from_be_bytes([p[2], p[3]]),
                            u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
                        ));
                    }
                    Some(i) => strays.push(format!("packet {i} from {src}")),
                    None => strays.push(format!("{n} unknown bytes from {src}")),
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("{dir}: recv_from: {e}"),
        }
        let all = got.iter().all(Option::is_some);
        if all || (next == sent.len() && last_sent.elapsed() > Duration::from_secs(1)) {
            break;
        }
    }
    let missing: Vec<usize> = (0..got.len()).filter(|&i| got[i].is_none()).collect();
    let stray_count = strays.len();
    strays.truncate(5);
    assert!(
        missing.is_empty() && strays.is_empty(),
        "{dir}: of {PACKETS} RTP packets sent to ctid at {to}, {} arrived byte-identical from {expect_src}; missing: {missing:?}; {stray_count} unexpected, first: {strays:?}\n--- ctid log ---\n{}",
        usize::from(PACKETS) - missing.len(),
        d.log_tail(6_000)
    );
    if how == Relayed::IntoCtidStream {
        assert!(
            headers
                .windows(2)
                .all(|w| w[1].1 == w[0].1 && w[1].0 == w[0].0.wrapping_add(1)),
            "{dir}: one SSRC and consecutive sequence numbers expected: {headers:?}"
        );
        assert_ne!(headers[0].1, ssrc, "{dir}: ctid's SSRC, not the seat's");
    }
}

fn media_queue_env() -> TestEnv {
    TestEnv::new(&queue_settings(
        &["1001"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    ))
}

/// The one calls row, once it has an outcome (polled up to 3 s).
fn the_call(env: &TestEnv, d: &Daemon) -> CallRow {
    let rows = wait_for_calls(env, Duration::from_secs(3), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert_eq!(
        rows.len(),
        1,
        "expected one calls row with an outcome:\n{}\n--- ctid log ---\n{}",
        describe_calls(&rows),
        d.log_tail(4_000)
    );
    rows[0].clone()
}

#[test]
fn rtp_is_relayed_both_ways_between_caller_and_seat() {
    let env = media_queue_env();
    let daemon = env.start();
    let b = bridge(&daemon);

    // Caller → ctid (leg A) → seat: every packet, unchanged, from ctid's agent-leg port.
    // Seat → (back where the packets came from) → caller, from ctid's caller-leg port.
    b.relay_both_ways((0x0a0a_0001, 0x0b0b_0002), "", &daemon);

    b.caller_hangs_up(2, &daemon);
    let call = the_call(&env, &daemon);
    let events = events_of(&read_events(&env), call.id);
    let ctx = format!(
        "{call:?}\n{}\n--- ctid log ---\n{}",
        describe_events(&events),
        daemon.log_tail(4_000)
    );
    assert_eq!(call.outcome.as_deref(), Some("answered"), "{ctx}");
    assert_eq!(call.agent.as_deref(), Some("1001"), "{ctx}");
    assert_eq!(call.hangup_by.as_deref(), Some("caller"), "{ctx}");
    assert_eq!(call.sip_call_id, b.invite.call_id, "{ctx}");
    daemon.stop();
}

/// Poll `call_events` (up to 3 s) until the call has `n` events of `kind`.
fn wait_event(env: &TestEnv, kind: &str, n: usize, d: &Daemon) -> Vec<EventRow> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let ev = read_events(env);
        let count = ev.iter().filter(|e| e.kind == kind).count();
        if count >= n {
            return ev;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} call_events of kind {kind:?} within 3 s, have {count}:\n{}\n--- ctid log ---\n{}",
            describe_events(&ev),
            d.log_tail(4_000)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn hold_reinvite_is_answered_with_recvonly() {
    let env = media_queue_env();
    let daemon = env.start();
    let b = bridge(&daemon);

    // Hold: a=sendonly → 200 with a=recvonly on the same caller-leg port.
    for (cseq, version, offered, expected, kind) in [
        (2, 2, "sendonly", "recvonly", "hold"),
        (3, 3, "sendrecv", "sendrecv", "resumed"),
    ] {
        let r = b.reinvite(cseq, version, offered, &daemon);
        let ctx = format!("{}\n--- ctid log ---\n{}", r.raw, daemon.log_tail(4_000));
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let (_, port, _) = sdp_audio(&body)
            .unwrap_or_else(|| panic!("no SDP in the 200 to the a={offered} re-INVITE:\n{ctx}"));
        assert_eq!(
            port,
            b.ctid_a.port(),
            "the caller-leg RTP port changed on re-INVITE:\n{ctx}"
        );
        assert_eq!(
            sdp_direction(&body),
            expected,
            "answer to a={offered}:\n{ctx}"
        );

        let events = wait_event(&env, kind, 1, &daemon);
        assert!(
            events.iter().any(|e| e.kind == kind && e.agent.is_none()),
            "the {kind} event should be the caller's (no agent):\n{}",
            describe_events(&events)
        );
    }

    // After the resume, media still flows caller → seat.
    relay_one_way(
        &b.pbx_rtp,
        b.ctid_a,
        &b.seat_rtp,
        b.ctid_b,
        0x0c0c_0003,
        "caller-to-seat after resume",
        &daemon,
        Relayed::AsSent,
    );

    b.caller_hangs_up(4, &daemon);
    let call = the_call(&env, &daemon);
    let events = events_of(&read_events(&env), call.id);
    let kinds = kinds_among(&events, &["answered", "hold", "resumed"]);
    assert_eq!(
        kinds,
        ["answered", "hold", "resumed"],
        "events of the call:\n{}\n{call:?}",
        describe_events(&events)
    );
    assert_eq!(call.outcome.as_deref(), Some("answered"), "{call:?}");
    daemon.stop();
}

/// A re-INVITE without SDP from the PBX (e.g. after a transfer on its side): ctid offers its
/// caller-leg SDP in the 200 (same port, PCMU, sendrecv) and takes the answer from the ACK, which
/// moves the caller's media to a new port: the agent's audio then reaches the new port.
#[test]
fn reinvite_without_sdp_gets_an_offer_and_the_ack_answer_moves_the_media() {
    let env = media_queue_env();
    let daemon = env.start();
    let b = bridge(&daemon);

    let reinvite = b
        .in_dialog("INVITE", 2)
        .header(format!("Contact: <sip:555019@{}>", b.pbx.local()));
    let r = b.pbx.transaction(&reinvite, STEP).unwrap_or_else(|| {
        panic!(
            "no final response to the re-INVITE without SDP\n--- ctid log ---\n{}",
            daemon.log_tail(6_000)
        )
    });
    let ctx = format!("{}\n--- ctid log ---\n{}", r.raw, daemon.log_tail(4_000));
    assert_eq!(r.status, 200, "{ctx}");
    let body = String::from_utf8_lossy(&r.body).into_owned();
    let (addr, port, pts) =
        sdp_audio(&body).unwrap_or_else(|| panic!("the 200 must carry ctid's offer:\n{ctx}"));
    assert_eq!(
        (addr.as_str(), port),
        ("127.0.0.1", b.ctid_a.port()),
        "{ctx}"
    );
    assert_eq!(
        pts.first().map(String::as_str),
        Some("0"),
        "PCMU kept:\n{ctx}"
    );
    assert_eq!(sdp_direction(&body), "sendrecv", "{ctx}");

    // The answer, in the ACK, names a new port.
    let moved = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let moved_port = moved.local_addr().unwrap().port();
    let mut ack = b.in_dialog("ACK", 2);
    ack.body = offer_sdp("pbx", 2, moved_port, "sendrecv");
    let ack = ack.header("Content-Type: application/sdp");
    b.pbx.send(ack.render().as_bytes());
    let events = wait_event(&env, "resumed", 1, &daemon);
    assert!(
        events
            .iter()
            .any(|e| e.kind == "resumed" && e.detail.as_deref() == Some("answer in ACK")),
        "{}",
        describe_events(&events)
    );

    relay_one_way(
        &b.seat_rtp,
        b.ctid_b,
        &moved,
        b.ctid_a,
        0x0d0d_0004,
        "seat-to-caller after the ACK answer",
        &daemon,
        Relayed::IntoCtidStream,
    );
    b.caller_hangs_up(3, &daemon);
    daemon.stop();
}

/// An agent phone that sends its 200 twice (a retransmitted 2xx, as a phone does until it gets
/// the ACK): ctid sends the same ACK again (RFC 3261 §13.2.2.4: a retransmission, same branch,
/// so the phone does not see a second, unexpected ACK), keeps one bridge and one answer, and
/// the call goes on normally.
#[test]
fn a_seat_answering_twice_gets_acked_again_and_one_bridge() {
    let env = media_queue_env();
    let daemon = env.start();
    let b = bridge(&daemon);
    let call_id = b
        .seat_invite
        .header("Call-ID")
        .unwrap_or_default()
        .to_string();
    b.seat.send(b.seat_200().as_bytes());
    let ack = await_request(
        &b.seat,
        "ACK",
        Some(&call_id),
        None,
        &daemon,
        "seat 1001 after its retransmitted 200",
    );
    assert_eq!(
        ack.raw, b.seat_ack.raw,
        "the ACK for the retransmitted 200 must repeat the first ACK (same Via branch)"
    );

    // Still one relay, both ways, each packet once.
    b.relay_both_ways((0x0e0e_0005, 0x0f0f_0006), " after the second 200", &daemon);
    b.caller_hangs_up(2, &daemon);
    let call = the_call(&env, &daemon);
    let events = events_of(&read_events(&env), call.id);
    let ctx = format!(
        "{call:?}\n{}\n--- ctid log ---\n{}",
        describe_events(&events),
        daemon.log_tail(6_000)
    );
    assert_eq!(call.outcome.as_deref(), Some("answered"), "{ctx}");
    assert_eq!(
        kinds_among(&events, &["offered", "answered", "ended"]),
        ["offered", "answered", "ended"],
        "one offer, one answer, one end: {ctx}"
    );
    let bridged = daemon.log().matches("call answered and bridged").count();
    assert_eq!(bridged, 1, "ctid bridged the call {bridged} times: {ctx}");
    daemon.stop();
}

/// Sends RTP (20 ms apart) from `from` to `to` on a thread until dropped.
struct RtpStream {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RtpStream {
    fn start(from: &UdpSocket, to: SocketAddr, ssrc: u32, dir: &'static str) -> RtpStream {
        let sock = from.try_clone().expect("clone RTP socket");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seq = 0u16;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = sock.send_to(&rtp_from(ssrc, dir, seq), to);
                seq = seq.wrapping_add(1);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        RtpStream {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RtpStream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The media timeout (here 2 s) spares a leg on hold: the caller holds with `a=inactive` and
/// sends no RTP for three times the timeout while the agent keeps talking; the call stays up.
/// Once the caller resumes and still sends nothing, the timeout applies again and ends the call
/// with `media_timeout`.
#[test]
fn media_timeout_is_suspended_while_the_caller_is_on_hold() {
    const TIMEOUT_SECS: u64 = 2;
    let mut settings = queue_settings(
        &["1001"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    );
    settings.extra_toml = settings.extra_toml.replacen(
        "\n\n[[queues]]",
        &format!("\nmedia_timeout_secs = {TIMEOUT_SECS}\n\n[[queues]]"),
        1,
    );
    assert!(
        settings
            .extra_toml
            .contains(&format!("media_timeout_secs = {TIMEOUT_SECS}")),
        "could not set [media] media_timeout_secs:\n{}",
        settings.extra_toml
    );
    let env = TestEnv::new(&settings);
    let daemon = env.start();
    let b = bridge(&daemon);
    let _agent_talks = RtpStream::start(&b.seat_rtp, b.ctid_b, 0x1111_0007, "seat");
    let caller_talks = RtpStream::start(&b.pbx_rtp, b.ctid_a, 0x2222_0008, "caller");

    b.reinvite(2, 2, "inactive", &daemon);
    drop(caller_talks);
    wait_event(&env, "hold", 1, &daemon);
    std::thread::sleep(Duration::from_secs(3 * TIMEOUT_SECS));
    let rows = read_calls(&env);
    let ctx = || {
        format!(
            "{}{}--- ctid log ---\n{}",
            describe_calls(&read_calls(&env)),
            describe_events(&read_events(&env)),
            daemon.log_tail(6_000)
        )
    };
    assert!(
        rows.len() == 1 && rows[0].outcome.is_none(),
        "a caller on hold sent no RTP for {} s (media timeout {TIMEOUT_SECS} s): the call must still be up:\n{}",
        3 * TIMEOUT_SECS,
        ctx()
    );

    // Resumed, still silent: now the timeout ends the call.
    b.reinvite(3, 3, "sendrecv", &daemon);
    let rows = wait_for_calls(&env, Duration::from_secs(3 * TIMEOUT_SECS), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert!(
        rows.len() == 1 && rows[0].hangup_cause.as_deref() == Some("media_timeout"),
        "after the resume a silent caller must be cut off by the media timeout:\n{}",
        ctx()
    );
    daemon.stop();
}
