//! The API over a real listener on 127.0.0.1:0, spoken to in HTTP/1.1 over a TcpStream, with a
//! fake call manager answering the control oneshots. The harness is here; the tests by area in
//! `tests/{access,calls,events,docs}.rs`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::call::control::{AgentView, ControlError, QueueView, WaitingCaller};
use crate::config::{Api, ApiToken};
use crate::stats::Snapshot;
use crate::store::{ApiOp, Op, ReadPool, Store};

mod access;
mod calls;
mod docs;
mod events;

const SUP: &str = "supervisor-token-0001";
const WB: &str = "wallboard-token-00001";
const AG: &str = "agent-1001-token-0001";

struct Harness {
    addr: SocketAddr,
    state: ApiState,
    /// Debug names of the commands the fake call manager got.
    controls: Arc<Mutex<Vec<String>>>,
    ops: mpsc::Receiver<Op>,
    dir: tempfile::TempDir,
}

fn view(id: &str, state: &str, reason: Option<String>) -> AgentView {
    AgentView {
        id: id.into(),
        name: format!("Agent {id}"),
        state: state.into(),
        reason,
        pending_pause: None,
        since_ms: 1,
        call: None,
        calls_answered: 0,
        registered: true,
    }
}

/// A store whose writer runs the jobs (the callback-list work) on a real connection to the
/// database in `dir` and hands every other op to the test (the receiver) instead of writing it.
fn fake_writer(dir: &std::path::Path) -> (Store, mpsc::Receiver<Op>) {
    let (op_tx, mut op_rx) = mpsc::channel::<Op>(64);
    let (fwd_tx, ops) = mpsc::channel(64);
    let conn = crate::store::open(dir).unwrap();
    std::thread::spawn(move || {
        while let Some(op) = op_rx.blocking_recv() {
            match op {
                Op::Job(job) => job.run(&conn),
                other => {
                    if fwd_tx.blocking_send(other).is_err() {
                        return;
                    }
                }
            }
        }
    });
    (Store::new(op_tx, ReadPool::open(dir, 4).unwrap()), ops)
}

/// The fake call manager.
async fn answer(mut rx: mpsc::Receiver<Control>, log: Arc<Mutex<Vec<String>>>) {
    while let Some(c) = rx.recv().await {
        log.lock().unwrap().push(
            format!("{c:?}")
                .split([' ', '{'])
                .next()
                .unwrap()
                .to_string(),
        );
        match c {
            Control::Login {
                agent,
                queues,
                reply,
            } => {
                let mut v = view(&agent, "available", None);
                v.name = format!("{queues:?}");
                let _ = reply.send(Ok(v));
            }
            Control::Logout { reply, .. } => {
                let _ = reply.send(Err(ControlError::Conflict("agent is on a call".into())));
            }
            Control::Pause {
                agent,
                reason,
                reply,
            } => {
                let _ = reply.send(Ok(view(&agent, "paused", Some(reason))));
            }
            Control::Unpause { agent, reply } | Control::EndWrapup { agent, reply } => {
                let _ = reply.send(Ok(view(&agent, "available", None)));
            }
            Control::MoveCall { call, reply, .. } => {
                let _ = reply.send(if call == 7 {
                    Ok(())
                } else {
                    Err(ControlError::NotFound(format!("call {call}")))
                });
            }
            Control::Agents { reply } => {
                let _ = reply.send(Ok(vec![view("1001", "available", None)]));
            }
            Control::Preview { reply, .. } => {
                let _ = reply.send(Ok(None));
            }
            Control::PreviewAccept { agent, reply } => {
                let _ = reply.send(Err(ControlError::Conflict(format!(
                    "agent {agent} has no contact in preview"
                ))));
            }
            Control::PreviewSkip { reply, .. } => {
                let _ = reply.send(Ok(()));
            }
            Control::Queue { queue, reply } => {
                let _ = reply.send(if queue == "sales" {
                    Ok(QueueView {
                        queue,
                        waiting: vec![WaitingCaller {
                            call: 7,
                            position: 1,
                            caller_number: Some("+442079460958".into()),
                            caller_name: Some("Ann Example".into()),
                            priority: 0,
                            wait_secs: 3.0,
                        }],
                    })
                } else {
                    Err(ControlError::NotFound(format!("queue {queue:?}")))
                });
            }
        }
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    seed(dir.path());
    let cfg = Api {
        tokens: vec![
            ApiToken {
                token: SUP.into(),
                role: "supervisor".into(),
                agent: None,
                ..ApiToken::default()
            },
            ApiToken {
                token: WB.into(),
                role: "wallboard".into(),
                agent: None,
                ..ApiToken::default()
            },
            ApiToken {
                token: AG.into(),
                role: "agent".into(),
                agent: Some("1001".into()),
                ..ApiToken::default()
            },
        ],
        ..Api::default()
    };
    let (ctl_tx, ctl_rx) = mpsc::channel(8);
    let (store, ops) = fake_writer(dir.path());
    let controls = Arc::new(Mutex::new(vec![]));
    tokio::spawn(answer(ctl_rx, controls.clone()));
    let (_stats_tx, stats) = watch::channel(Snapshot {
        day: "2026-01-01".into(),
        interval_minutes: 15,
        queues: vec![],
    });
    let state = ApiState::new(
        &cfg,
        vec![("1001".into(), "Ann".into()), ("1002".into(), "Bob".into())],
        ctl_tx,
        store,
        stats,
    )
    .with_reports(&report_config());
    // As admin.rs will: its own routes and fallback, the API merged in.
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .merge(router(state.clone()))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    Harness {
        addr,
        state,
        controls,
        ops,
        dir,
    }
}

/// Six calls: ids 1..=6 entered at 1000*id; odd ones answered by 1001, even ones by 1002;
/// queue sales for 1..=4, support for 5..=6; call 6 abandoned.
/// Six ended calls (1–4 sales, 5–6 support; odd ones agent 1001, even 1002, call 6 abandoned)
/// and call 1's events, written as the call layer would.
fn seed(dir: &std::path::Path) {
    use crate::store::{test_support::apply, CallOp};
    let conn = &crate::store::open(dir).unwrap();
    for id in 1..=6u64 {
        let agent = if id % 2 == 1 { "1001" } else { "1002" };
        let queue = if id <= 4 { "sales" } else { "support" };
        let entered = 1000 * id;
        apply(
            conn,
            CallOp::Started {
                id,
                sip_call_id: format!("sip-{id}"),
                direction: "inbound",
                caller_number: Some(format!("+4930{id}{id}")),
                caller_name: None,
                dialed_number: None,
                queue: Some(queue.into()),
                entered_at_ms: entered,
            },
        );
        if id != 6 {
            apply(
                conn,
                CallOp::Answered {
                    id,
                    answered_at_ms: entered + 100,
                    agent: agent.into(),
                    wait_ms: 100,
                    in_target: true,
                },
            );
        }
        apply(
            conn,
            CallOp::Ended {
                id,
                ended_at_ms: entered + 500,
                outcome: if id == 6 { "abandoned" } else { "answered" },
                queue: None,
                wait_ms: None,
                talk_ms: None,
                short_abandon: None,
                hangup_by: Some("caller"),
                hangup_cause: None,
                sip_code: None,
            },
        );
    }
    for (kind, at) in [("entered", 1001), ("offered", 1002), ("answered", 1003)] {
        apply(
            conn,
            CallOp::Event {
                id: 1,
                at_ms: at,
                kind,
                agent: Some("1001".into()),
                detail: None,
            },
        );
    }
}

struct Resp {
    status: u16,
    headers: String,
    body: String,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
    fn error_code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap().to_string()
    }
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> Resp {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        req.push_str("Content-Type: application/json\r\n");
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    if path.starts_with("/api/v1/events") {
        // An endless stream: read until it has been quiet for a moment (or ends).
        let mut chunk = [0u8; 8192];
        loop {
            match tokio::time::timeout(std::time::Duration::from_millis(700), s.read(&mut chunk))
                .await
            {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
                Ok(Err(e)) => panic!("reading the event stream: {e}"),
            }
        }
    } else {
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .expect("response in time")
            .unwrap();
    }
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let headers = head.to_ascii_lowercase();
    let body = if headers.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Resp {
        status: head[9..12].parse().unwrap(),
        headers,
        body,
    }
}

/// The payload of the complete chunks of a chunked body.
fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n + 2 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}

async fn get_(h: &Harness, path: &str, token: Option<&str>) -> Resp {
    request(h.addr, "GET", path, token, &[], None).await
}

async fn post(h: &Harness, path: &str, token: &str, body: Option<Value>) -> Resp {
    request(h.addr, "POST", path, Some(token), &[], body).await
}

/// The audit rows sent so far: (role, action, target, result, has from_addr).
/// Waits until the fake writer has handed over every op sent before this call.
async fn written(h: &Harness) {
    h.state
        .inner
        .store
        .sql_write(|_| Ok::<_, crate::store::StoreError>(()))
        .await
        .unwrap();
}

async fn audits(h: &mut Harness) -> Vec<(Option<String>, String, String, String, bool)> {
    written(h).await;
    let mut out = vec![];
    while let Ok(op) = h.ops.try_recv() {
        if let Op::Api(ApiOp::Audit {
            token_role,
            action,
            target,
            result,
            from_addr,
            ..
        }) = op
        {
            out.push((
                token_role,
                action,
                target.unwrap(),
                result,
                from_addr.is_some(),
            ));
        }
    }
    out
}

/// The config the reports see: UTC, agents 1001 and 1002, queues sales (SL 20 s / 80 %) and
/// support.
fn report_config() -> crate::config::Config {
    let mut text = String::from("[reports]\ntime_zone = \"UTC\"\ninterval_minutes = 30\n");
    for a in ["1001", "1002"] {
        text.push_str(&format!(
            "[[agents]]\nid = \"{a}\"\nname = \"A{a}\"\nusername = \"{a}\"\npassword = \"p\"\n"
        ));
    }
    text.push_str(
        "[[queues]]\nname = \"sales\"\nnumbers = [\"4000\"]\nmembers = [{ agent = \"1001\" }]\n\
         sl_target_secs = 20\nsl_goal_percent = 80\n\
         [[queues]]\nname = \"support\"\nnumbers = [\"4001\"]\nmembers = [{ agent = \"1002\" }]\n",
    );
    crate::config::Config::parse(&text).unwrap_or_else(|p| panic!("{p:?}"))
}
