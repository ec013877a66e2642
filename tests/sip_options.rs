//! OPTIONS: anyone may ask ctid what it supports, over UDP and TCP.

use ctid_testkit as common;

use common::*;
use std::time::Duration;

const METHODS: [&str; 5] = ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"];

fn sipp_options(transport: &str) {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let run = sipp(
        env.path(),
        daemon.addr,
        "options.xml",
        &[
            "-t",
            transport,
            "-m",
            "3",
            "-r",
            "10",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    assert!(
        run.ok() && run.successful == Some(3) && run.failed == Some(0),
        "SIPp OPTIONS over {transport}: expected 3 successful transactions (200 with Allow: {METHODS:?}), 0 failed\n{}\n--- ctid log ---\n{}",
        run.report,
        daemon.log_tail(10_000)
    );
    daemon.stop();
}

#[test]
fn options_over_udp_with_sipp() {
    sipp_options("u1");
}

#[test]
fn options_over_tcp_with_sipp() {
    sipp_options("t1");
}

/// The same over raw sockets, checking every capability header and that the response echoes
/// the transaction identifiers.
#[test]
fn options_response_headers_over_udp_and_tcp() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();

    let udp = UdpClient::new(daemon.addr);
    let req = options_request(daemon.addr, udp.local(), "UDP");
    let r = udp
        .transaction(&req, Duration::from_secs(2))
        .expect("no final response to OPTIONS over UDP within 2 s");
    check_options_200(&r, &req);

    let mut tcp = TcpClient::connect(daemon.addr, Duration::from_secs(2)).expect("TCP connect");
    let req = options_request(daemon.addr, tcp.local(), "TCP");
    let r = tcp
        .transaction(&req, Duration::from_secs(2))
        .expect("no final response to OPTIONS over TCP within 2 s");
    check_options_200(&r, &req);
    // The connection stays usable for a second request.
    let req2 = req.next();
    let r2 = tcp
        .transaction(&req2, Duration::from_secs(2))
        .expect("no response to a second OPTIONS on the same TCP connection");
    check_options_200(&r2, &req2);

    daemon.stop();
}

fn check_options_200(r: &SipResponse, req: &SipRequest) {
    assert_eq!(r.status, 200, "OPTIONS answered with:\n{}", r.raw);
    let allow = r.tokens("Allow");
    for m in METHODS {
        assert!(
            allow.iter().any(|a| a == m),
            "Allow lacks {m}: {allow:?}\n{}",
            r.raw
        );
    }
    assert!(
        !r.header_values("Accept").is_empty(),
        "200 to OPTIONS has no Accept header:\n{}",
        r.raw
    );
    assert!(
        r.tokens("Accept").iter().any(|a| a == "APPLICATION/SDP"),
        "Accept does not list application/sdp:\n{}",
        r.raw
    );
    assert!(
        !r.header_values("Supported").is_empty(),
        "200 to OPTIONS has no Supported header:\n{}",
        r.raw
    );
    let via = r.header("Via").expect("response without Via");
    assert!(
        via.contains(&req.branch),
        "response Via does not carry the request's branch {}:\n{}",
        req.branch,
        r.raw
    );
    let to = r.header("To").expect("response without To");
    assert!(to.contains("tag="), "200 has no To tag:\n{}", r.raw);
    let from = r.header("From").expect("response without From");
    assert_eq!(from, req.from, "From must be copied unchanged");
}
