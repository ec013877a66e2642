//! Admission control at the SIP edge, end to end against the real binary: password guessing is
//! throttled and logged while the right password from another address still registers; an
//! untrusted INVITE gets one stateless 403 and nothing more; idle TCP connections from one
//! untrusted source cannot lock the PBX out.
//!
//! Second sources are other loopback addresses (127.0.0.2 …): run as everywhere else, or inside a
//! network namespace with `lo` up.

use ctid_testkit as common;

use common::*;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

const ATTACKER: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const PHONE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn count(hay: &str, needle: &str) -> usize {
    hay.matches(needle).count()
}

#[test]
fn password_burst_is_throttled_and_logged_while_the_right_password_elsewhere_registers() {
    let env = TestEnv::new(&Settings {
        extra_toml: "\n[registrar.auth]\nmax_failures = 5\nblock_secs = 120\n".into(),
        ..Settings::default()
    });
    let daemon = env.start();
    let guesser = RegClient::new_from(ATTACKER, daemon.addr, "1001", "secret1001", Alg::Md5);
    let burst = 100;
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for i in 0..burst {
        let req = guesser.request();
        let ch = guesser.challenge(&req);
        let guess = guesser.authorized(&req, &ch, &format!("guess-{i}"), 1);
        let r = guesser.send(&guess, "REGISTER with a guessed password");
        statuses.push(r.status);
        if let Some(v) = r.header("Retry-After") {
            retry_after.push(v.trim().to_string());
        }
    }
    let challenged = statuses.iter().take_while(|s| **s == 401).count();
    assert_eq!(
        challenged, 5,
        "the first 5 guesses get 401, then the source is blocked: {statuses:?}"
    );
    assert!(
        statuses[5..].iter().all(|s| *s == 403),
        "blocked guesses get 403: {statuses:?}"
    );
    assert_eq!(retry_after.len(), burst - 5, "every 403 says when to retry");
    assert!(
        retry_after
            .iter()
            .all(|v| v.parse::<u64>().is_ok_and(|s| (1..=120).contains(&s))),
        "Retry-After within the 120 s block: {retry_after:?}"
    );

    // While blocked, even the right password from the guesser's address is refused.
    let r = guesser.register(&guesser.request());
    assert_eq!(r.status, 403, "blocked source, right password:\n{}", r.raw);

    // The real phone, from another address, registers.
    let phone = RegClient::new_from(PHONE, daemon.addr, "1001", "secret1001", Alg::Md5);
    let contact = format!("Contact: <sip:1001@{}>", phone.c.local());
    let r = phone.register(&phone.request().header(contact));
    assert_eq!(
        r.status,
        200,
        "the right password from {PHONE} must register:\n{}\n--- ctid log ---\n{}",
        r.raw,
        daemon.log_tail(4000)
    );

    // Logged at info with account, source and reason; the flood did not flood the log.
    let log = daemon.log();
    let failed = log
        .lines()
        .filter(|l| l.contains("SIP authentication failed"))
        .collect::<Vec<_>>();
    assert!(
        failed.iter().any(|l| l.contains("INFO")
            && l.contains("account=\"1001\"")
            && l.contains("source=127.0.0.1")
            && l.contains("reason=\"wrong_password\"")),
        "a failed authentication is logged at info with account, source and reason:\n{}",
        failed.join("\n")
    );
    let lines = count(&log, "SIP authentication failed")
        + count(&log, "SIP authentication refused")
        + count(&log, "too many failed SIP authentications");
    assert!(
        count(&log, "too many failed SIP authentications") >= 1,
        "the block is logged:\n{}",
        daemon.log_tail(4000)
    );
    assert!(
        lines < burst / 2,
        "{burst} refused attempts wrote {lines} log lines (rate-limited logging expected)"
    );

    // Counted in metrics.
    let wrong = metric_value(
        &env,
        r#"ctid_sip_auth_failures_total{reason="wrong_password"}"#,
    );
    assert_eq!(wrong, Some(5.0), "failures counted by reason");
    let refused = metric_value(&env, r#"ctid_sip_refused_total{reason="auth_throttled"}"#);
    assert_eq!(refused, Some((burst - 5 + 1) as f64), "refusals counted");
    daemon.stop();
}

/// Every datagram that arrives on `c` within `window` (the receive window is the only wait).
fn collect_for(c: &UdpClient, window: Duration) -> Vec<SipResponse> {
    let until = Instant::now() + window;
    let mut got = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match c.recv_raw(left) {
            Some((bytes, _)) => got.extend(SipResponse::parse(&bytes)),
            None => break,
        }
    }
    got
}

#[test]
fn untrusted_invite_gets_one_stateless_403_and_no_retransmission() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let stranger = UdpClient::bind(PHONE, daemon.addr);
    let invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", daemon.addr),
        "UDP",
        stranger.local(),
    )
    .header(format!("Contact: <sip:x@{}>", stranger.local()));
    stranger.send(invite.render().as_bytes());
    // Without a server transaction a 403 would be retransmitted at T1, 2·T1, 4·T1 … (0.5, 1.5,
    // 3.5 s): five seconds of listening would see at least three copies.
    let got = collect_for(&stranger, Duration::from_secs(5));
    let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        vec![403],
        "exactly one 403, no 100 Trying, no retransmission:\n{}",
        got.iter().map(|r| r.raw.as_str()).collect::<String>()
    );
    assert!(got[0].header("To").is_some_and(|t| t.contains("tag=")));

    // A retransmission of the INVITE is answered again (statelessly), with the same To tag.
    stranger.send(invite.render().as_bytes());
    let again = stranger
        .final_for(&invite, Duration::from_secs(3))
        .expect("a retransmitted INVITE gets its 403 again");
    assert_eq!(again.status, 403);
    assert_eq!(again.header("To"), got[0].header("To"), "same To tag");

    // Counted as a refusal; no server transaction was made for it.
    assert_eq!(
        metric_value(&env, r#"ctid_sip_refused_total{reason="untrusted"}"#),
        Some(2.0)
    );
    daemon.stop();
}

/// Which of `conns` ctid has closed (read with a short timeout each).
fn closed(conns: &mut [TcpClient]) -> Vec<bool> {
    conns
        .iter_mut()
        .map(|c| c.closed || matches!(c.read_message(Duration::from_millis(5)), TcpRead::Closed(_)))
        .collect()
}

/// Poll `conns` until at least `n` are closed; the closed flags then.
fn wait_closed(conns: &mut [TcpClient], n: usize, within: Duration) -> Vec<bool> {
    let until = Instant::now() + within;
    loop {
        let c = closed(conns);
        if c.iter().filter(|x| **x).count() >= n || Instant::now() > until {
            return c;
        }
    }
}

#[test]
fn idle_connections_from_untrusted_sources_do_not_stop_the_pbx() {
    // Small limits so the test is cheap: 24 connections, 8 of them for trusted peers only, 6 per
    // untrusted address, 8 s until an unproven connection counts as idle.
    let env = TestEnv::new(&Settings {
        sip_limits_toml: "max_tcp_connections = 24\ntcp_reserved_for_trusted = 8\n\
                          tcp_max_connections_per_source = 6\ntcp_unproven_idle_timeout_secs = 8\n"
            .into(),
        ..Settings::default()
    });
    let daemon = env.start();
    let t = Duration::from_secs(3);
    // Four hostile addresses try 10 idle connections each, one after the other.
    let mut hostile = Vec::new();
    let mut source = Vec::new();
    for host in 2..=5u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, host));
        for _ in 0..10 {
            hostile.push(TcpClient::connect_from(ip, daemon.addr, t).expect("tcp connect"));
            source.push(host);
        }
    }
    // 6 from .2, 6 from .3, 4 from .4 (then the untrusted share of 16 is full), none from .5.
    let shut = wait_closed(&mut hostile, 24, Duration::from_secs(5));
    let open_by_host = |host: u8| {
        (0..hostile.len())
            .filter(|&i| source[i] == host && !shut[i])
            .count()
    };
    let open: Vec<usize> = (2..=5).map(open_by_host).collect();
    assert_eq!(
        open,
        vec![6, 6, 4, 0],
        "connections left open per hostile address\n{}",
        daemon.log_tail(3000)
    );

    // The PBX (trusted) still gets in and is served: OPTIONS and INVITE over TCP.
    let mut pbx = TcpClient::connect(daemon.addr, t).expect("PBX connects");
    let options = options_request(daemon.addr, pbx.local(), "TCP");
    let r = pbx.transaction(&options, t).expect("PBX OPTIONS answered");
    assert_eq!(r.status, 200);
    let invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", daemon.addr),
        "TCP",
        pbx.local(),
    )
    .header(format!("Contact: <sip:pbx@{};transport=tcp>", pbx.local()));
    let r = pbx
        .transaction(&invite, Duration::from_secs(5))
        .expect("PBX INVITE gets a final response");
    assert!(
        ![403, 503].contains(&r.status),
        "the PBX's INVITE was refused:\n{}",
        r.raw
    );

    // A trusted connection that never sends anything is unproven: it is closed after the short
    // idle timeout, and so are the hostile ones; the PBX's proven connection stays.
    let mut silent = vec![TcpClient::connect(daemon.addr, t).expect("second PBX connection")];
    let gone = wait_closed(&mut silent, 1, Duration::from_secs(30));
    assert!(gone[0], "an unproven connection is closed when idle");
    let n = hostile.len();
    let all = wait_closed(&mut hostile, n, Duration::from_secs(30));
    assert!(
        all.iter().all(|c| *c),
        "idle hostile connections are closed"
    );
    let options = options_request(daemon.addr, pbx.local(), "TCP");
    let r = pbx
        .transaction(&options, t)
        .expect("the PBX's connection outlives the short idle timeout");
    assert_eq!(r.status, 200);

    // Refusals: counted by reason, logged within a budget.
    let per_source = metric_value(&env, r#"ctid_sip_refused_total{reason="tcp_per_source"}"#);
    let limit = metric_value(&env, r#"ctid_sip_refused_total{reason="tcp_limit"}"#);
    assert_eq!((per_source, limit), (Some(8.0), Some(16.0)));
    let lines = count(&daemon.log(), "tcp connection refused");
    assert!(
        (1..=10).contains(&lines),
        "24 refusals wrote {lines} warn lines (rate-limited logging expected)"
    );
    daemon.stop();
}

/// An INVITE to the queue from `sip`, with an SDP offer; the final response.
fn call_queue(sip: &UdpClient, rtp_port: u16) -> (SipRequest, Option<SipResponse>) {
    let mut invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", sip.server),
        "UDP",
        sip.local(),
    );
    invite.body = format!(
        "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    );
    let invite = invite
        .header(format!("Contact: <sip:pbx@{}>", sip.local()))
        .header("Content-Type: application/sdp");
    let r = sip.transaction(&invite, Duration::from_secs(10));
    (invite, r)
}

#[test]
fn a_peer_leaving_answered_calls_unacknowledged_gets_503_for_new_ones() {
    let mut s = queue_settings(&["1001"], "");
    s.overload_toml
        .push_str("max_unacked_per_peer = 3\nretry_after_secs = 9\n");
    let env = TestEnv::new(&s);
    let daemon = env.start();
    let pbx = UdpClient::new(daemon.addr);
    let rtp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let rtp_port = rtp.local_addr().unwrap().port();
    // Three calls answered by ctid (callers queue with hold music), never acknowledged.
    let mut answered = Vec::new();
    for _ in 0..3 {
        let (invite, r) = call_queue(&pbx, rtp_port);
        let r = r.expect("a final response to the INVITE");
        assert_eq!(r.status, 200, "queued caller answered:\n{}", r.raw);
        answered.push((invite, r));
    }
    // The fourth is refused at the door.
    let (_, r) = call_queue(&pbx, rtp_port);
    let r = r.expect("a final response to the fourth INVITE");
    assert_eq!(r.status, 503, "fourth unacknowledged call:\n{}", r.raw);
    assert_eq!(r.header("Retry-After").map(str::trim), Some("9"));

    // Acknowledging one makes room for the next call.
    let (invite, ok) = &answered[0];
    let mut ack = SipRequest::new("ACK", &invite.uri, "UDP", pbx.local());
    ack.call_id = invite.call_id.clone();
    ack.from = invite.from.clone();
    ack.to = ok.header("To").expect("To of the 200").to_string();
    pbx.send(ack.render().as_bytes());
    let deadline = Instant::now() + Duration::from_secs(10);
    let admitted = loop {
        let (_, r) = call_queue(&pbx, rtp_port);
        match r.map(|r| r.status) {
            Some(200) => break true,
            Some(503) if Instant::now() < deadline => continue,
            _ => break false,
        }
    };
    assert!(admitted, "after an ACK a new call is admitted again");
    let unacked = metric_value(&env, r#"ctid_sip_refused_total{reason="unacked"}"#);
    assert!(
        unacked.is_some_and(|n| n >= 1.0),
        "refusal counted: {unacked:?}"
    );
    assert_eq!(
        metric_value(&env, r#"ctid_sip_refused_total{reason="overload"}"#),
        Some(0.0)
    );
    daemon.stop();
}
