//! Requests ctid does not serve: unknown methods (501), MESSAGE (405), malformed requests (400
//! with a reason phrase naming the problem). Every answer goes to the packet's source port.

use ctid_testkit as common;

use common::*;
use std::time::Duration;

const T: Duration = Duration::from_secs(2);

fn assert_allow(r: &SipResponse) {
    let allow = r.tokens("Allow");
    for m in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        assert!(
            allow.iter().any(|a| a == m),
            "{} must carry Allow listing {m}; Allow = {allow:?}\n{}",
            r.status,
            r.raw
        );
    }
}

#[test]
fn unknown_method_gets_501_with_allow() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let c = UdpClient::new(daemon.addr);
    let req = SipRequest::new(
        "FROBNICATE",
        &format!("sip:{}", daemon.addr),
        "UDP",
        c.local(),
    );
    let r = c
        .transaction(&req, T)
        .expect("no answer to FROBNICATE over UDP");
    assert_eq!(r.status, 501, "unknown method:\n{}", r.raw);
    assert_allow(&r);

    let mut t = TcpClient::connect(daemon.addr, T).expect("connect");
    let req = SipRequest::new(
        "FROBNICATE",
        &format!("sip:{}", daemon.addr),
        "TCP",
        t.local(),
    );
    let r = t
        .transaction(&req, T)
        .expect("no answer to FROBNICATE over TCP");
    assert_eq!(r.status, 501, "unknown method over TCP:\n{}", r.raw);
    assert_allow(&r);
    daemon.stop();
}

#[test]
fn message_gets_405_with_allow() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let c = UdpClient::new(daemon.addr);
    let mut req = SipRequest::new(
        "MESSAGE",
        &format!("sip:1001@{}", daemon.addr),
        "UDP",
        c.local(),
    )
    .header("Content-Type: text/plain");
    req.body = "hello".into();
    let r = c.transaction(&req, T).expect("no answer to MESSAGE");
    assert_eq!(r.status, 405, "MESSAGE:\n{}", r.raw);
    assert_allow(&r);
    daemon.stop();
}

/// Take a well-formed OPTIONS and break it; ctid must answer 400 with a reason phrase that
/// names what is wrong (the header name, or the field).
#[test]
fn malformed_requests_get_400_naming_the_problem() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let c = UdpClient::new(daemon.addr);
    // (what is broken, how to break the rendered request, words one of which the reason
    // phrase must contain as a word, case-insensitive)
    type Breaker = fn(&str) -> String;
    let cases: Vec<(&str, Breaker, &[&str])> = vec![
        (
            "no Call-ID",
            |s| drop_header(s, "Call-ID"),
            &["call-id", "callid"],
        ),
        ("no CSeq", |s| drop_header(s, "CSeq"), &["cseq"]),
        ("no From", |s| drop_header(s, "From"), &["from"]),
        ("no To", |s| drop_header(s, "To"), &["to"]),
        (
            "CSeq not a number",
            |s| replace_header(s, "CSeq", "CSeq: one OPTIONS"),
            &["cseq"],
        ),
        (
            "CSeq method differs from the request method",
            |s| replace_header(s, "CSeq", "CSeq: 1 INVITE"),
            &["cseq", "method"],
        ),
        (
            "Content-Length not a number",
            |s| replace_header(s, "Content-Length", "Content-Length: abc"),
            &["content-length", "length"],
        ),
    ];
    let mut failures = Vec::new();
    for (what, breaker, words) in cases {
        let req = options_request(daemon.addr, c.local(), "UDP");
        let bytes = breaker(&req.render());
        c.drain();
        c.send(bytes.as_bytes());
        let got = loop {
            match c.recv_raw(T) {
                None => break None,
                Some((b, from)) => {
                    assert_eq!(from, daemon.addr, "reply from an unexpected address");
                    if let Some(r) = SipResponse::parse(&b) {
                        if r.status >= 200 {
                            break Some(r);
                        }
                    }
                }
            }
        };
        match got {
            None => failures.push(format!("{what}: no response within {T:?}")),
            Some(r) if r.status != 400 => {
                failures.push(format!("{what}: expected 400, got {}", r.status_line()))
            }
            Some(r) => {
                let reason = r.reason.to_ascii_lowercase();
                let tokens: Vec<&str> = reason
                    .split(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '-'))
                    .collect();
                if !words.iter().any(|w| tokens.contains(w)) {
                    failures.push(format!(
                        "{what}: 400 reason phrase {:?} names none of {words:?}",
                        r.reason
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "malformed requests:\n  {}\n--- ctid log ---\n{}",
        failures.join("\n  "),
        daemon.log_tail(8_000)
    );
    // Still alive and well.
    assert_eq!(options_probe_udp(daemon.addr, T), Some(200));
    daemon.stop();
}

fn drop_header(msg: &str, name: &str) -> String {
    msg.split("\r\n")
        .filter(|l| {
            !l.split_once(':')
                .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

fn replace_header(msg: &str, name: &str, line: &str) -> String {
    msg.split("\r\n")
        .map(|l| match l.split_once(':') {
            Some((k, _)) if k.trim().eq_ignore_ascii_case(name) => line,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}
