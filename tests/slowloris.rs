//! Slow-loris protection: a TCP message must be complete within `tcp_message_timeout_secs`
//! (2 s here). Stalled and trickling connections neither block other clients nor stay open;
//! absurd Content-Length values are refused.

use ctid_testkit as common;

use common::*;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const MESSAGE_TIMEOUT_SECS: u64 = 2;

fn settings() -> Settings {
    Settings {
        tcp_message_timeout_secs: MESSAGE_TIMEOUT_SECS,
        ..Settings::default()
    }
}

/// The first half of a REGISTER: the header block never ends.
fn half_register(server: SocketAddr, local: SocketAddr, n: usize) -> String {
    format!(
        "REGISTER sip:{server} SIP/2.0\r\n\
         Via: SIP/2.0/TCP {local};branch=z9hG4bKloris{n}\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:1001@{server}>;tag=loris{n}\r\n\
         To: <sip:1001@{server}>\r\n\
         Call-ID: loris-{n}-{}\r\n\
         CSeq: 1 REG",
        std::process::id()
    )
}

/// Whether ctid closes the connection within `wait`.
/// Bytes ctid sends before closing (an error response) are read and ignored.
fn closed_within(mut s: &TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 4096];
    loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            return false;
        };
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return true, // reset
        }
    }
}

fn timed_probe(what: &str, f: impl FnOnce() -> Option<u16>) -> String {
    let t = Instant::now();
    let got = f();
    let took = t.elapsed();
    if got == Some(200) && took < Duration::from_secs(1) {
        String::new()
    } else {
        format!("{what}: got {got:?} after {took:.2?} (want 200 in < 1 s)")
    }
}

#[test]
fn stalled_connections_do_not_block_others_and_are_closed() {
    let env = TestEnv::new(&settings());
    let mut daemon = env.start();
    let server = daemon.addr;

    let mut stalled = Vec::new();
    for n in 0..50 {
        let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2))
            .unwrap_or_else(|e| panic!("stalled connection {n}: connect: {e}"));
        let local = s.local_addr().unwrap();
        s.write_all(half_register(server, local, n).as_bytes())
            .expect("write half REGISTER");
        stalled.push(s);
    }
    let t0 = Instant::now();

    // While 50 connections stall, others are served promptly.
    let mut problems = Vec::new();
    for round in 0..3 {
        for p in [
            timed_probe(&format!("round {round}: OPTIONS over TCP"), || {
                options_probe_tcp(server, Duration::from_secs(3))
            }),
            timed_probe(&format!("round {round}: OPTIONS over UDP"), || {
                options_probe_udp(server, Duration::from_secs(3))
            }),
        ] {
            if !p.is_empty() {
                problems.push(p);
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    // Within the timeout a slow message is still allowed: not closed yet.
    let early = t0.elapsed();
    if early < Duration::from_millis(1_500) {
        let closed_early = stalled
            .iter()
            .take(5)
            .filter(|s| closed_within(s, Duration::from_millis(10)))
            .count();
        if closed_early > 0 {
            problems.push(format!(
                "{closed_early} of 5 stalled connections were closed already {early:.2?} after their partial message (timeout is {MESSAGE_TIMEOUT_SECS} s)"
            ));
        }
    }

    // After the message timeout (plus slack) ctid has closed every stalled connection.
    let deadline = t0 + Duration::from_secs(MESSAGE_TIMEOUT_SECS + 2);
    let mut still_open = 0;
    for s in &stalled {
        let left = deadline.saturating_duration_since(Instant::now());
        if !closed_within(s, left.max(Duration::from_millis(10))) {
            still_open += 1;
        }
    }
    if still_open > 0 {
        problems.push(format!(
            "{still_open} of 50 stalled connections still open {:.2?} after their partial REGISTER (tcp_message_timeout_secs = {MESSAGE_TIMEOUT_SECS})",
            t0.elapsed()
        ));
    }
    daemon.assert_alive("after the stalled connections");
    for (what, p) in [
        ("UDP", options_probe_udp(server, Duration::from_secs(2))),
        ("TCP", options_probe_tcp(server, Duration::from_secs(2))),
    ] {
        if p != Some(200) {
            problems.push(format!("OPTIONS over {what} afterwards: {p:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "slow-loris:\n  {}\n--- ctid log ---\n{}",
        problems.join("\n  "),
        daemon.log_tail(8_000)
    );
    daemon.stop();
}

/// A client that keeps sending a byte every 200 ms never finishes its message: the timeout is
/// per message, not per read, so ctid still cuts it off.
#[test]
fn trickling_client_is_cut_off_at_the_message_timeout() {
    let env = TestEnv::new(&settings());
    let daemon = env.start();
    let server = daemon.addr;
    let mut s = TcpStream::connect_timeout(&server, Duration::from_secs(2)).expect("connect");
    let local = s.local_addr().unwrap();
    let msg = half_register(server, local, 999).into_bytes();
    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let t0 = Instant::now();
    let mut closed_at = None;
    let mut sink = [0u8; 4096];
    // At 5 bytes/s the ~250-byte half REGISTER lasts far longer than the test; it has no
    // blank line anyway, so the message never completes.
    assert!(msg.len() > 5 * (MESSAGE_TIMEOUT_SECS as usize + 3));
    for b in &msg {
        if t0.elapsed() > Duration::from_secs(MESSAGE_TIMEOUT_SECS + 3) {
            break;
        }
        if s.write_all(&[*b]).is_err() {
            closed_at = Some(t0.elapsed());
            break;
        }
        match s.read(&mut sink) {
            Ok(0) => {
                closed_at = Some(t0.elapsed());
                break;
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => {
                closed_at = Some(t0.elapsed());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed_at = closed_at.unwrap_or_else(|| {
        panic!(
            "a client trickling one byte every 200 ms was still connected after {:.1?} (tcp_message_timeout_secs = {MESSAGE_TIMEOUT_SECS})\n--- ctid log ---\n{}",
            t0.elapsed(),
            daemon.log_tail(8_000)
        )
    });
    assert!(
        closed_at >= Duration::from_millis(MESSAGE_TIMEOUT_SECS * 1000 - 500),
        "the trickling connection was closed after only {closed_at:.2?}, before the {MESSAGE_TIMEOUT_SECS} s message timeout"
    );
    assert_eq!(
        options_probe_tcp(server, Duration::from_secs(2)),
        Some(200),
        "OPTIONS over TCP afterwards"
    );
    daemon.stop();
}

#[test]
fn absurd_content_length_is_refused_and_ctid_lives_on() {
    let env = TestEnv::new(&settings());
    let mut daemon = env.start();
    let server = daemon.addr;
    let mut problems = Vec::new();
    for value in [
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
        "4294967296",
    ] {
        let mut c = TcpClient::connect(server, Duration::from_secs(2)).expect("connect");
        let req = options_request(server, c.local(), "TCP").render();
        let bad = req.replace("Content-Length: 0", &format!("Content-Length: {value}"));
        assert_ne!(bad, req);
        c.send(bad.as_bytes()).expect("write");
        let t = Instant::now();
        // An error response, or a close (at the latest when the message timeout strikes).
        match c.read_message(Duration::from_secs(MESSAGE_TIMEOUT_SECS + 3)) {
            TcpRead::Message(m) => match SipResponse::parse(&m) {
                Some(r) if r.status >= 400 => {}
                Some(r) => problems.push(format!(
                    "Content-Length: {value} over TCP answered {} (want an error response or a close)",
                    r.status_line()
                )),
                None => problems.push(format!(
                    "Content-Length: {value} over TCP: non-SIP reply {:?}",
                    String::from_utf8_lossy(&m)
                )),
            },
            TcpRead::Closed(_) => {}
            TcpRead::Timeout => problems.push(format!(
                "Content-Length: {value} over TCP: neither an answer nor a close within {:.1?}",
                t.elapsed()
            )),
        }
        // Over UDP the datagram is the whole message: 400.
        let u = UdpClient::new(server);
        let req = options_request(server, u.local(), "UDP");
        let bad = req
            .render()
            .replace("Content-Length: 0", &format!("Content-Length: {value}"));
        u.send(bad.as_bytes());
        match u.final_for(&req, Duration::from_secs(2)) {
            Some(r) if r.status == 400 => {}
            Some(r) => problems.push(format!(
                "Content-Length: {value} over UDP answered {} (want 400)",
                r.status_line()
            )),
            None => problems.push(format!("Content-Length: {value} over UDP: no answer")),
        }
        daemon.assert_alive(&format!("after Content-Length: {value}"));
    }
    for (what, p) in [
        ("UDP", options_probe_udp(server, Duration::from_secs(2))),
        ("TCP", options_probe_tcp(server, Duration::from_secs(2))),
    ] {
        if p != Some(200) {
            problems.push(format!("OPTIONS over {what} afterwards: {p:?}"));
        }
    }
    assert!(
        problems.is_empty(),
        "huge Content-Length:\n  {}\n--- ctid log ---\n{}",
        problems.join("\n  "),
        daemon.log_tail(8_000)
    );
    daemon.stop();
}
