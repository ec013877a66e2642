//! Driver tests: no event is dropped when the call layer's queue is full (they wait in order),
//! and a full queue counts as overload, so new INVITEs are then refused with 503 at the door.

use super::*;
use crate::sip::auth::Algorithm;
use crate::sip::endpoint::{AdmissionConfig, EndpointConfig};
use crate::sip::parse::{parse_datagram, Limits};
use crate::sip::registrar::RegistrarConfig;
use crate::sip::transaction::Timers;

fn endpoint() -> Endpoint {
    let cfg = EndpointConfig {
        user_agent: "ctid-test".into(),
        domain: "ctid.test".into(),
        trusted: vec![crate::config::PeerNet::try_from("127.0.0.1".to_string()).unwrap()],
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
            algorithms: vec![Algorithm::Md5],
            nonce_lifetime: Duration::from_secs(300),
            throttle: Default::default(),
        },
        accounts: vec![],
        nonce_secret: [1; 32],
        advertise: None,
        admission: AdmissionConfig::default(),
    };
    Endpoint::new(cfg, Instant::now(), 1_700_000_000_000)
}

fn invite(n: u32, from: SocketAddr) -> Inbound {
    let text = format!(
        "INVITE sip:4000@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {from};branch=z9hG4bKd{n}\r\n\
From: <sip:pbx@127.0.0.1>;tag=f{n}\r\nTo: <sip:4000@127.0.0.1>\r\nCall-ID: drv-{n}\r\n\
CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    );
    Inbound::Message {
        flow: Flow {
            transport: Transport::Udp,
            local: "127.0.0.1:5060".parse().unwrap(),
            remote: from,
            conn: 0,
        },
        result: Box::new(parse_datagram(text.as_bytes(), &Limits::default())),
    }
}

#[tokio::test]
async fn a_full_call_layer_queue_holds_events_in_order_and_refuses_new_calls() {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
    let pbx = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let pbx_addr = pbx.local_addr().unwrap();
    let (inbound_tx, inbound) = mpsc::channel(64);
    let (cmd_tx, commands) = mpsc::channel(8);
    // Room for 2 events only; overload once 3 wait.
    let (events_tx, mut events) = mpsc::channel(2);
    let (store, _store_rx) = mpsc::channel(8);
    let shutdown = CancellationToken::new();
    let driver = SipDriver {
        endpoint: endpoint(),
        udp: vec![(sock.local_addr().unwrap(), sock)],
        tls: None,
        tls_local: vec![],
        tcp_settings: TcpSettings {
            limits: Limits::default(),
            idle_timeout: Duration::from_secs(30),
            unproven_idle_timeout: Duration::from_secs(5),
            message_timeout: Duration::from_secs(5),
        },
        inbound_tx: inbound_tx.clone(),
        inbound,
        commands,
        events: events_tx,
        store,
        shutdown: shutdown.clone(),
        transports: CancellationToken::new(),
        grace: Duration::from_millis(100),
        overload: OverloadLimits {
            max_pending_events: 3,
            max_loop_lag: Duration::ZERO,
            max_media_cpu_percent: 0,
        },
    };
    let task = tokio::spawn(driver.run());
    // Four INVITEs while nobody reads the events: 2 in the queue, 2 held by the driver.
    for n in 1..=4 {
        inbound_tx.send(invite(n, pbx_addr)).await.unwrap();
    }
    // The driver is overloaded now (4 pending > 3): a fifth INVITE gets a 503 on the wire.
    let mut buf = vec![0u8; 4096];
    let deadline = Duration::from_secs(10);
    let refused = tokio::time::timeout(deadline, async {
        let mut n = 4;
        loop {
            n += 1;
            inbound_tx.send(invite(n, pbx_addr)).await.unwrap();
            // Read until the answer to INVITE n: a 100 (admitted: the overload is noticed after
            // the batch it came in) or its 503.
            let want = format!("Call-ID: drv-{n}\r\n");
            loop {
                let len = pbx.recv(&mut buf).await.unwrap();
                let text = String::from_utf8_lossy(&buf[..len]).into_owned();
                if text.contains(&want) {
                    if text.starts_with("SIP/2.0 503") {
                        assert!(text.contains("Retry-After: "), "{text}");
                        return n;
                    }
                    break;
                }
            }
        }
    })
    .await
    .expect("a new INVITE is refused with 503 while the call layer is behind");
    // Every INVITE admitted before the refusal reaches the call layer, in order.
    let mut seen = Vec::new();
    while seen.len() < (refused - 1) as usize {
        let ev = tokio::time::timeout(deadline, events.recv())
            .await
            .expect("held events are delivered")
            .expect("queue open");
        if let Event::Request { request, .. } = ev {
            seen.push(request.headers.get("Call-ID").unwrap_or("").to_string());
        }
    }
    let expected: Vec<String> = (1..refused).map(|n| format!("drv-{n}")).collect();
    assert_eq!(seen, expected);
    shutdown.cancel();
    drop(cmd_tx);
    let _ = tokio::time::timeout(deadline, task).await;
}
