//! The admin listener end to end: installs the global recorder (once: this file is its own
//! process, and holds a single test), serves it on 127.0.0.1:0, scrapes it over a plain TCP
//! stream and lints the body with `promtool check metrics` (Debian package `prometheus`).

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use ctid::metrics::{self, QueueInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// Sends one `GET path` with `Connection: close`; returns (status, head, body).
async fn get(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("response within 5 s")
        .unwrap();
    let text = String::from_utf8(buf).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// Undoes `Transfer-Encoding: chunked` if the server used it.
fn dechunk(head: &str, body: &str) -> String {
    if !head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        return body.to_owned();
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        if n == 0 {
            return out;
        }
        out.push_str(&after[..n]);
        rest = &after[n + 2..];
    }
}

fn promtool_check(body: &str) {
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => panic!(
            "promtool is not installed ({e}): install the Debian package `prometheus` \
             (apt-get install -y prometheus) to lint the /metrics output"
        ),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics is not clean:\n{report}\n--- body ---\n{body}"
    );
}

#[tokio::test]
async fn admin_serves_metrics_that_promtool_accepts() {
    let queues = [
        QueueInfo {
            name: "hotline".into(),
            sl_target_secs: 25,
        },
        QueueInfo {
            name: "sales".into(),
            sl_target_secs: 20,
        },
    ];
    let m = metrics::install(&queues).expect("first install");
    assert!(
        metrics::install(&queues).is_err(),
        "a second install must fail, not panic"
    );

    // Some traffic, through the helpers and the way other modules record.
    metrics::call_entered("hotline");
    metrics::call_left("hotline", "answered", 12.5, false);
    metrics::call_left("hotline", "abandoned", 3.0, true);
    metrics::call_handled("hotline", 95.0);
    metrics::set_waiting("sales", 2, 31.0);
    metrics::set_agents(None, &[("available", 3), ("on_call", 1)]);
    metrics::set_agents(Some("hotline"), &[("available", 2)]);
    metrics::agent_state_seconds("available", 61.5);
    ::metrics::histogram!("ctid_store_write_seconds").record(0.003);
    ::metrics::counter!("ctid_sip_requests_received_total").increment(7);
    ::metrics::gauge!("ctid_media_relays_active").increment(1.0);

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cancel = CancellationToken::new();
    let server = tokio::spawn(ctid::admin::serve(
        listener,
        m,
        axum::Router::new(),
        cancel.clone(),
    ));

    let (status, _, body) = get(addr, "GET", "/healthz").await;
    assert_eq!((status, body.as_str()), (200, "ok"));

    let (status, _, _) = get(addr, "GET", "/nope").await;
    assert_eq!(status, 404);

    let (status, head, body) = get(addr, "GET", "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let body = dechunk(&head, &body);
    assert!(body.contains("# HELP ctid_queue_wait_seconds "), "{body}");
    assert!(
        body.contains(
            r#"ctid_queue_wait_seconds_bucket{queue="hotline",outcome="answered",le="15"} 1"#
        ),
        "{body}"
    );
    assert!(
        body.contains(
            r#"ctid_queue_wait_seconds_bucket{queue="hotline",outcome="answered",le="25"} 1"#
        ),
        "{body}"
    );
    assert!(
        body.contains(r#"ctid_queue_calls_entered_total{queue="sales"} 0"#),
        "{body}"
    );
    assert!(
        body.contains(r#"ctid_agent_state_seconds_total{state="available"} 61"#),
        "{body}"
    );
    assert!(
        body.contains("ctid_sip_requests_received_total 7"),
        "{body}"
    );
    assert!(!body.contains("summary"), "{body}");

    promtool_check(&body);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("admin listener stops on cancel")
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "listener closed after stop"
    );
}
