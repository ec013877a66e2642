//! Endpoint tests: parsed messages in, transmits and events out, virtual time.

use super::*;
use crate::sip::parse::{parse_datagram, Limits};
use crate::sip::registrar::RegistrarConfig;

const PBX: &str = "10.0.0.1:5060";
const PHONE: &str = "10.0.0.50:40000";

fn endpoint(t0: Instant) -> Endpoint {
    let cfg = EndpointConfig {
        user_agent: "ctid-test".into(),
        domain: "ctid.test".into(),
        trusted: vec![PeerNet::try_from("10.0.0.1".to_string()).unwrap()],
        force_rport: true,
        timers: Timers {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        },
        registrar: RegistrarConfig {
            realm: "ctid".into(),
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_contacts: 5,
            algorithms: vec![auth::Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            throttle: Default::default(),
        },
        accounts: vec![Account {
            agent_id: "a1".into(),
            username: "1001".into(),
            password: "pw".into(),
            ha1: None,
            algorithms: None,
        }],
        nonce_secret: [1; 32],
        advertise: None,
        admission: AdmissionConfig {
            retry_after_secs: 7,
            max_unacked_per_peer: 2,
        },
    };
    Endpoint::new(cfg, t0, 1_700_000_000_000)
}

fn flow(remote: &str) -> Flow {
    Flow {
        transport: Transport::Udp,
        local: "10.0.0.2:5060".parse().unwrap(),
        remote: remote.parse().unwrap(),
        conn: 0,
    }
}

fn request(method: &str, branch: &str, extra: &str) -> String {
    format!(
        "{method} sip:4000@10.0.0.2 SIP/2.0\r\n\
Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n\
From: <sip:caller@10.0.0.1>;tag=f1\r\n\
To: <sip:4000@10.0.0.2>\r\n\
Call-ID: call-{branch}\r\n\
CSeq: 1 {method}\r\n\
Max-Forwards: 70\r\n{extra}\
Content-Length: 0\r\n\r\n"
    )
}

fn feed(ep: &mut Endpoint, now: Instant, from: &str, text: &str) {
    let parsed = parse_datagram(text.as_bytes(), &Limits::default());
    ep.handle_input(now, flow(from), parsed);
}

fn sent(ep: &mut Endpoint) -> Vec<(SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_transmit() {
        let m =
            parse_datagram(&t.bytes, &Limits::default()).expect("ctid sent an unparseable message");
        out.push((t.flow.remote, m));
    }
    out
}

fn statuses(msgs: &[(SocketAddr, Message)]) -> Vec<u16> {
    msgs.iter()
        .filter_map(|(_, m)| match m {
            Message::Response(r) => Some(r.status),
            _ => None,
        })
        .collect()
}

fn events(ep: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| ep.poll_event()).collect()
}

/// Advance virtual time to each deadline up to `until`, firing timers.
fn run_until(ep: &mut Endpoint, until: Instant) -> Vec<(Instant, SocketAddr, Message)> {
    let mut out = Vec::new();
    while let Some(t) = ep.poll_timeout() {
        if t > until {
            break;
        }
        ep.handle_timeout(t);
        for (to, m) in sent(ep) {
            out.push((t, to, m));
        }
    }
    out
}

trait ParseReq {
    fn parse_req(&self) -> Request;
}

impl ParseReq for String {
    fn parse_req(&self) -> Request {
        match parse_datagram(self.as_bytes(), &Limits::default()) {
            Ok(Message::Request(r)) => r,
            other => panic!("{other:?}"),
        }
    }
}

#[path = "endpoint_server_tests.rs"]
mod server;

#[path = "endpoint_client_tests.rs"]
mod client;

#[path = "endpoint_admission_tests.rs"]
mod admission;
