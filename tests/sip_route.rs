//! Where ctid sends its in-dialog requests: a caller that called over TCP and closed its
//! connection (phones and PBXs do, after an idle timeout or a restart) must still get ctid's
//! BYE, on a new connection to the address in its Contact, not on the old ephemeral port.

use ctid_testkit as common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// An SDP offer (PCMU) for a caller at 127.0.0.1.
fn offer(rtp_port: u16) -> String {
    format!(
        "v=0\r\no=caller 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
         m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// The first complete message that arrives on a connection accepted from `listener` within
/// `timeout`, with the accepted stream (to answer on).
fn accept_message(
    listener: &TcpListener,
    timeout: Duration,
) -> Option<(Vec<u8>, std::net::TcpStream)> {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut buf = Vec::new();
    loop {
        if let Some(m) = take_frame(&mut buf) {
            return Some((m, stream));
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        let mut chunk = [0u8; 8192];
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// The value of header `name` in a raw message.
fn header_of(msg: &str, name: &str) -> Option<String> {
    msg.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| long_name(k) == name.to_ascii_lowercase())
        .map(|(_, v)| v.trim().to_string())
}

#[test]
fn bye_to_a_tcp_caller_whose_connection_closed_goes_to_its_contact() {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 30\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    // Where the caller takes new connections: the address in its Contact.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let contact: SocketAddr = listener.local_addr().unwrap();

    let mut conn = TcpClient::connect(daemon.addr, Duration::from_secs(5)).expect("connect");
    let ephemeral = conn.local();
    let mut invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", daemon.addr),
        "TCP",
        contact,
    );
    invite.from = format!("\"Caller\" <sip:555010@{contact}>;tag={}", unique("t"));
    invite.body = offer(free_udp_pair());
    let invite = invite
        .header(format!("Contact: <sip:555010@{contact};transport=tcp>"))
        .header("Content-Type: application/sdp");
    let ok = conn
        .transaction(&invite, Duration::from_secs(10))
        .expect("no final response to the INVITE over TCP");
    assert_eq!(ok.status, 200, "{}", ok.status_line());
    let to = ok.header("To").expect("To in the 200").to_string();
    let mut ack = invite.clone();
    ack.method = "ACK".into();
    ack.to = to.clone();
    ack.body.clear();
    ack.headers.retain(|h| !h.starts_with("Content-Type"));
    conn.send(ack.render().as_bytes()).unwrap();
    // The caller's connection goes away (idle timeout, restart...).
    drop(conn);

    // Only now an agent logs in, answers and hangs up: ctid must BYE the caller.
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer_hangup.xml",
        30,
    );
    let got = accept_message(&listener, Duration::from_secs(20));
    let seat = seat.stop(Duration::from_secs(5));
    let Some((bye, mut stream)) = got else {
        panic!(
            "ctid's BYE never reached the caller's Contact {contact} (the closed connection was from {ephemeral}):\n--- seat ---\n{}\n--- ctid ---\n{}",
            tail(&seat.report, 3_000),
            daemon.log_tail(8_000)
        );
    };
    let bye = String::from_utf8_lossy(&bye).into_owned();
    assert!(bye.starts_with("BYE sip:555010@"), "{bye}");
    assert!(
        bye.starts_with(&format!("BYE sip:555010@{contact};transport=tcp SIP/2.0")),
        "the BYE's Request-URI is not the caller's Contact:\n{bye}"
    );
    assert_eq!(
        header_of(&bye, "Call-ID").as_deref(),
        Some(invite.call_id.as_str())
    );
    // Answer it, so ctid's transaction ends well.
    let mut reply = String::from("SIP/2.0 200 OK\r\n");
    for name in ["Via", "From", "To", "Call-ID", "CSeq"] {
        for line in bye.lines().filter(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| long_name(k) == name.to_ascii_lowercase())
        }) {
            reply.push_str(line.trim_end());
            reply.push_str("\r\n");
        }
    }
    reply.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(reply.as_bytes()).unwrap();

    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    assert_eq!(
        rows[0].outcome.as_deref(),
        Some("answered"),
        "{:?}",
        rows[0]
    );
    assert_eq!(rows[0].hangup_by.as_deref(), Some("agent"), "{:?}", rows[0]);
    daemon.stop();
}

/// Everything SIPp `bg` logged, once it finished on its own (within `timeout`).
fn finished_messages(mut bg: SippBg, timeout: Duration) -> (SippRun, String) {
    let deadline = Instant::now() + timeout;
    while bg.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let messages = bg.messages();
    (bg.wait(), messages)
}

#[test]
fn the_advertised_address_is_in_via_contact_and_sdp_and_the_sockets_stay_bound() {
    // ctid listens on 127.0.0.1 and tells its peers 127.0.0.2 (the bound port kept).
    let env = TestEnv::new(&Settings {
        sip_toml: "advertise = \"127.0.0.2\"".into(),
        ..queue_settings(
            &["1001"],
            "strategy = \"longest-idle\"\nring_timeout_secs = 30\nwrapup_secs = 0\n",
        )
    });
    let daemon = env.start();
    let port = daemon.addr.port();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer.xml",
        30,
    );
    let caller = sipp_spawn(
        env.path(),
        Some(daemon.addr),
        free_port(),
        "pbx_call.xml",
        &["-t", "u1", "-m", "1", "-s", "4000", "-d", "1000"],
    );
    let (caller, to_caller) = finished_messages(caller, Duration::from_secs(40));
    let seat_messages = seat.messages();
    let seat = seat.stop(Duration::from_secs(5));
    assert!(
        caller.ok() && caller.successful == Some(1),
        "the call with an advertised address failed:\n{}\n--- seat ---\n{}\n--- ctid ---\n{}",
        caller.report,
        tail(&seat.report, 3_000),
        daemon.log_tail(6_000)
    );
    let advertised_contact = format!("Contact: <sip:ctid@127.0.0.2:{port}>");
    for (who, log) in [("caller", &to_caller), ("seat", &seat_messages)] {
        assert!(
            log.contains(&advertised_contact),
            "ctid's Contact to the {who} is not the advertised address:\n{}",
            tail(log, 4_000)
        );
        let sdp_line = |kind: &str| {
            log.lines().any(|l| {
                l.trim_start().starts_with(kind) && l.trim_end().ends_with("IN IP4 127.0.0.2")
            })
        };
        assert!(
            sdp_line("c=") && sdp_line("o=ctid"),
            "ctid's SDP to the {who} does not carry the advertised address in c= and o=:\n{}",
            tail(log, 4_000)
        );
        assert!(
            !log.contains(&format!("sip:ctid@127.0.0.1:{port}")),
            "the bound address leaked into a Contact to the {who}:\n{}",
            tail(log, 4_000)
        );
    }
    assert!(
        seat_messages.contains(&format!("Via: SIP/2.0/UDP 127.0.0.2:{port};")),
        "ctid's INVITE to the seat does not carry the advertised Via sent-by:\n{}",
        tail(&seat_messages, 4_000)
    );
    daemon.stop();
}
