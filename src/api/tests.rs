//! The API over a real listener on 127.0.0.1:0, spoken to in HTTP/1.1 over a TcpStream, with a
//! fake call manager answering the control oneshots.

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

#[tokio::test]
async fn tokens_are_required_and_errors_are_json() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/agents", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unauthorized");
    assert!(r.headers.contains("www-authenticate: bearer"));
    let r = get_(&h, "/api/v1/agents", Some("not-a-configured-token")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["message"], "unknown bearer token");
    let r = request(
        h.addr,
        "GET",
        "/api/v1/agents",
        None,
        &[("Authorization", "Basic eDp5")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // A prefix of a real token is not a token.
    let r = get_(&h, "/api/v1/agents", Some(&SUP[..10])).await;
    assert_eq!(r.status, 401);

    let r = get_(&h, "/api/v1/agents", Some(WB)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["id"], "1001");
    let r = get_(&h, "/api/v1/stats", Some(AG)).await;
    assert_eq!(
        (r.status, r.json()["day"].clone()),
        (200, json!("2026-01-01"))
    );
    // A wallboard sees who waits how long, not who it is; a supervisor sees the caller.
    let r = get_(&h, "/api/v1/queues/sales", Some(WB)).await;
    assert_eq!(
        r.json(),
        json!({"queue": "sales", "waiting": [{"call": 7, "position": 1, "caller_number": null,
            "caller_name": null, "priority": 0, "wait_secs": 3.0}]})
    );
    let r = get_(&h, "/api/v1/queues/sales", Some(SUP)).await;
    assert_eq!(r.json()["waiting"][0]["caller_number"], "+442079460958");
    let r = get_(&h, "/api/v1/queues/nope", Some(WB)).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found".into()));

    // Unknown API paths and wrong methods answer JSON too; other paths keep admin's fallback.
    let r = get_(&h, "/api/v1/nothing/here", Some(SUP)).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found".into()));
    let r = request(h.addr, "DELETE", "/api/v1/agents", Some(SUP), &[], None).await;
    assert_eq!(
        (r.status, r.error_code()),
        (405, "method_not_allowed".into())
    );
    let r = get_(&h, "/healthz", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = get_(&h, "/elsewhere", None).await;
    assert_eq!((r.status, r.body.as_str()), (404, "not found\n"));
}

#[tokio::test]
async fn roles_are_enforced_and_every_post_is_audited() {
    let mut h = harness().await;
    let r = post(&h, "/api/v1/agents/1001/login", WB, None).await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden".into()));
    let r = post(
        &h,
        "/api/v1/agents/1002/pause",
        AG,
        Some(json!({"reason": "break"})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden".into()));
    let r = post(
        &h,
        "/api/v1/calls/7/move",
        AG,
        Some(json!({"to_front": true})),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        h.addr,
        "POST",
        "/api/v1/agents/1001/logout",
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post(&h, "/api/v1/agents/9999/login", SUP, None).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found".into()));
    assert!(
        h.controls.lock().unwrap().is_empty(),
        "nothing reached the call manager"
    );

    let a = audits(&mut h).await;
    assert_eq!(
        a,
        vec![
            (
                Some("wallboard".into()),
                "agent.login".into(),
                "1001".into(),
                "forbidden".into(),
                true
            ),
            (
                Some("agent".into()),
                "agent.pause".into(),
                "1002".into(),
                "forbidden".into(),
                true
            ),
            (
                Some("agent".into()),
                "call.move".into(),
                "7".into(),
                "forbidden".into(),
                true
            ),
            (
                None,
                "agent.logout".into(),
                "1001".into(),
                "unauthorized".into(),
                true
            ),
            (
                Some("supervisor".into()),
                "agent.login".into(),
                "9999".into(),
                "not_found".into(),
                true
            ),
        ]
    );
}

#[tokio::test]
async fn agent_actions_reach_the_call_manager() {
    let mut h = harness().await;
    let r = post(&h, "/api/v1/agents/1001/login", AG, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "available");
    assert_eq!(r.json()["name"], "None", "no queues named");
    let r = post(
        &h,
        "/api/v1/agents/1002/login",
        SUP,
        Some(json!({"queues": ["sales"]})),
    )
    .await;
    assert_eq!(r.json()["name"], "Some([\"sales\"])");
    let r = post(
        &h,
        "/api/v1/agents/1001/pause",
        AG,
        Some(json!({"reason": "lunch"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["state"].clone(), r.json()["reason"].clone()),
        (json!("paused"), json!("lunch"))
    );
    // The API checks the reason against the config before asking anyone.
    let r = post(
        &h,
        "/api/v1/agents/1001/pause",
        AG,
        Some(json!({"reason": "nap"})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (422, "invalid".into()));
    let r = post(&h, "/api/v1/agents/1001/pause", AG, None).await;
    assert_eq!(r.status, 422);
    let r = post(
        &h,
        "/api/v1/agents/1001/pause",
        AG,
        Some(json!({"reason": "break", "x": 1})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = post(&h, "/api/v1/agents/1001/unpause", AG, None).await;
    assert_eq!(r.status, 200);
    let r = post(&h, "/api/v1/agents/1001/wrapup/end", SUP, None).await;
    assert_eq!(r.status, 200);
    // The call manager's refusal comes back as its HTTP code.
    let r = post(&h, "/api/v1/agents/1001/logout", AG, None).await;
    assert_eq!((r.status, r.error_code()), (409, "conflict".into()));
    assert_eq!(r.json()["error"]["message"], "agent is on a call");
    let r = post(
        &h,
        "/api/v1/calls/7/move",
        SUP,
        Some(json!({"to_front": true})),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = post(
        &h,
        "/api/v1/calls/8/move",
        SUP,
        Some(json!({"queue": "support"})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &h,
        "/api/v1/calls/7/move",
        SUP,
        Some(json!({"to_front": true, "queue": "q"})),
    )
    .await;
    assert_eq!(r.status, 422);

    assert_eq!(
        *h.controls.lock().unwrap(),
        [
            "Login",
            "Login",
            "Pause",
            "Unpause",
            "EndWrapup",
            "Logout",
            "MoveCall",
            "MoveCall"
        ]
    );
    let results: Vec<String> = audits(&mut h)
        .await
        .into_iter()
        .map(|a| format!("{} {}", a.1, a.3))
        .collect();
    assert_eq!(
        results,
        [
            "agent.login ok",
            "agent.login ok",
            "agent.pause ok",
            "agent.pause invalid",
            "agent.pause invalid",
            "agent.pause invalid",
            "agent.unpause ok",
            "agent.wrapup_end ok",
            "agent.logout conflict",
            "call.move ok",
            "call.move not_found",
            "call.move invalid"
        ]
    );
}

fn ids(r: &Resp) -> Vec<u64> {
    r.json()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn calls_are_listed_with_filters_and_cursors() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/calls", Some(SUP)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r), [6, 5, 4, 3, 2, 1]);
    assert_eq!(r.json()["next_cursor"], Value::Null);
    let first = &r.json()["calls"][5];
    assert_eq!(first["caller_number"], "+493011");
    assert_eq!(first["disposition"], Value::Null);

    // Pages of 4: two pages, no overlap, no gap.
    let r = get_(&h, "/api/v1/calls?limit=4", Some(SUP)).await;
    assert_eq!(ids(&r), [6, 5, 4, 3]);
    let cursor = r.json()["next_cursor"].as_str().unwrap().to_string();
    let r = get_(
        &h,
        &format!("/api/v1/calls?limit=4&cursor={cursor}"),
        Some(SUP),
    )
    .await;
    assert_eq!(ids(&r), [2, 1]);
    assert_eq!(r.json()["next_cursor"], Value::Null);

    let r = get_(&h, "/api/v1/calls?queue=sales&from=2000&to=4000", Some(SUP)).await;
    assert_eq!(ids(&r), [3, 2]);
    let r = get_(&h, "/api/v1/calls?outcome=abandoned", Some(SUP)).await;
    assert_eq!(ids(&r), [6]);
    let r = get_(&h, "/api/v1/calls?caller=%2B493033", Some(SUP)).await;
    assert_eq!(ids(&r), [3]);
    let r = get_(&h, "/api/v1/calls?agent=1002&limit=1", Some(SUP)).await;
    assert_eq!(ids(&r), [4]);
    assert!(r.json()["next_cursor"].is_string());

    // An agent sees its own calls only.
    let r = get_(&h, "/api/v1/calls", Some(AG)).await;
    assert_eq!(ids(&r), [5, 3, 1]);
    let r = get_(&h, "/api/v1/calls?agent=1002", Some(AG)).await;
    assert_eq!(r.status, 403);
    let r = get_(&h, "/api/v1/calls", Some(WB)).await;
    assert_eq!(r.status, 403);

    for bad in [
        "limit=0",
        "limit=501",
        "from=yesterday",
        "cursor=zzz",
        "colour=red",
    ] {
        let r = get_(&h, &format!("/api/v1/calls?{bad}"), Some(SUP)).await;
        assert_eq!((r.status, r.error_code()), (422, "invalid".into()), "{bad}");
    }
}

#[tokio::test]
async fn a_call_has_its_timeline() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/calls/1", Some(AG)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["call"]["id"], 1);
    assert_eq!(v["call"]["agent"], "1001");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["entered", "offered", "answered"]);
    assert_eq!(
        v["events"][0],
        json!({"at_ms": 1001, "kind": "entered", "agent": "1001", "detail": null})
    );
    assert_eq!(get_(&h, "/api/v1/calls/2", Some(AG)).await.status, 403);
    assert_eq!(get_(&h, "/api/v1/calls/2", Some(SUP)).await.status, 200);
    assert_eq!(get_(&h, "/api/v1/calls/99", Some(SUP)).await.status, 404);
    assert_eq!(get_(&h, "/api/v1/calls/abc", Some(SUP)).await.status, 404);
}

#[tokio::test]
async fn dispositions_are_checked_and_written() {
    let mut h = harness().await;
    let r = post(
        &h,
        "/api/v1/calls/1/disposition",
        AG,
        Some(json!({"code": "resolved", "notes": "ok"})),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = post(
        &h,
        "/api/v1/calls/2/disposition",
        AG,
        Some(json!({"code": "resolved"})),
    )
    .await;
    assert_eq!(r.status, 403, "not its call");
    let r = post(
        &h,
        "/api/v1/calls/2/disposition",
        SUP,
        Some(json!({"code": "sold"})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = post(
        &h,
        "/api/v1/calls/99/disposition",
        SUP,
        Some(json!({"code": "resolved"})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &h,
        "/api/v1/calls/1/disposition",
        WB,
        Some(json!({"code": "resolved"})),
    )
    .await;
    assert_eq!(r.status, 403);
    let mut dispositions = vec![];
    let mut results = vec![];
    written(&h).await;
    while let Ok(op) = h.ops.try_recv() {
        match op {
            Op::Api(ApiOp::Disposition { call, code, notes }) => {
                dispositions.push((call, code, notes))
            }
            Op::Api(ApiOp::Audit { action, result, .. }) => {
                results.push(format!("{action} {result}"))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        dispositions,
        [(1, "resolved".to_string(), Some("ok".to_string()))]
    );
    assert_eq!(
        results,
        [
            "call.disposition ok",
            "call.disposition forbidden",
            "call.disposition invalid",
            "call.disposition not_found",
            "call.disposition forbidden"
        ]
    );
    // Through the real writer, the row gets it.
    let conn = crate::store::open(h.dir.path()).unwrap();
    let w = crate::store::Writer::start(conn, 4).unwrap();
    w.sender
        .send(
            ApiOp::Disposition {
                call: 1,
                code: "resolved".into(),
                notes: Some("ok".into()),
            }
            .into(),
        )
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || w.join()).await.unwrap();
    let r = get_(&h, "/api/v1/calls/1", Some(SUP)).await;
    assert_eq!(
        (
            r.json()["call"]["disposition"].clone(),
            r.json()["call"]["notes"].clone()
        ),
        (json!("resolved"), json!("ok"))
    );
}

fn ended(call: u64) -> CallEvent {
    CallEvent::CallEnded {
        call,
        by: "caller".into(),
    }
}

#[tokio::test]
async fn a_wallboards_event_stream_carries_no_caller_numbers() {
    let h = harness().await;
    h.state.publish(CallEvent::CallEntered {
        call: 1,
        queue: "sales".into(),
        caller_number: Some("+442079460958".into()),
    });
    h.state.publish(ended(1));
    let stream = |token| {
        request(
            h.addr,
            "GET",
            "/api/v1/events",
            Some(token),
            &[("Last-Event-ID", "0")],
            None,
        )
    };
    let wb = stream(WB).await;
    assert!(
        wb.body.contains("id: 1\nevent: call_entered\ndata: {")
            && wb.body.contains("\"caller_number\":null")
            && !wb.body.contains("+442079460958")
            && wb.body.contains("id: 2\nevent: call_ended"),
        "{}",
        wb.body
    );
    let sup = stream(SUP).await;
    assert!(
        sup.body.contains("\"caller_number\":\"+442079460958\""),
        "{}",
        sup.body
    );
}

#[tokio::test]
async fn events_replay_after_last_event_id_and_resync_when_behind() {
    let h = harness().await;
    for c in 1..=3 {
        h.state.publish(ended(c));
    }
    let r = request(
        h.addr,
        "GET",
        "/api/v1/events",
        Some(WB),
        &[("Last-Event-ID", "1")],
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers.contains("content-type: text/event-stream"),
        "{}",
        r.headers
    );
    let frames: Vec<&str> = r
        .body
        .split("\n\n")
        .filter(|f| f.contains("data:"))
        .collect();
    assert_eq!(
        frames,
        [
            "id: 2\nevent: call_ended\ndata: {\"type\":\"call_ended\",\"call\":2,\"by\":\"caller\"}",
            "id: 3\nevent: call_ended\ndata: {\"type\":\"call_ended\",\"call\":3,\"by\":\"caller\"}",
        ]
    );
    let r = get_(&h, "/api/v1/events?since=2", Some(WB)).await;
    assert!(
        r.body.contains("id: 3\n") && !r.body.contains("id: 2\n"),
        "{}",
        r.body
    );

    // Push 1 out of a full buffer: a client at 0 has missed it.
    for c in 4..=(REPLAY_BUFFER as u64 + 1) {
        h.state.publish(ended(c));
    }
    let r = get_(&h, "/api/v1/events?since=0", Some(WB)).await;
    let latest = REPLAY_BUFFER + 1;
    assert_eq!(
        r.body,
        format!("retry: 100\n\nid: {latest}\nevent: resync\ndata: {{\"latest\":{latest}}}\n\n")
    );
    // From the future (a restart): resync too. Not a number: 422.
    let r = get_(&h, "/api/v1/events?since=999999", Some(WB)).await;
    assert!(r.body.contains("event: resync"));
    let r = request(
        h.addr,
        "GET",
        "/api/v1/events",
        Some(WB),
        &[("Last-Event-ID", "x")],
        None,
    )
    .await;
    assert_eq!(r.status, 422);
    assert_eq!(get_(&h, "/api/v1/events", None).await.status, 401);
}

#[tokio::test]
async fn a_waiting_event_client_gets_the_next_event() {
    let h = harness().await;
    h.state.publish(ended(1));
    let addr = h.addr;
    let waiting =
        tokio::spawn(
            async move { request(addr, "GET", "/api/v1/events", Some(WB), &[], None).await },
        );
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    h.state.publish(ended(2));
    let r = waiting.await.unwrap();
    assert!(r.body.contains("id: 2\nevent: call_ended\n"), "{}", r.body);
    assert!(!r.body.contains("id: 1\n"), "{}", r.body);
}

#[tokio::test]
async fn openapi_lists_exactly_the_routes() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/openapi.json", None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut served: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_ascii_uppercase(), p.clone()))
        })
        .collect();
    served.sort();
    let mut table: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    table.sort();
    assert_eq!(served, table);
    // Every schema a route refers to is defined.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = vec![];
    refs(&doc, &mut all);
    assert!(all.iter().any(|r| r.ends_with("/ListSpec")), "{all:?}");
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} is not defined"
        );
    }
    // Every documented route is routed (not the JSON 404 of unknown API paths, not a 405):
    // without a token each answers 401, except the document itself.
    for (method, path) in table {
        let concrete = path
            .replace("{queue}", "sales")
            .replace("{id}", "1001")
            .replace("{list}", "follow-up")
            .replace("{number}", "%2B442079460958");
        let r = request(h.addr, &method, &concrete, None, &[], None).await;
        let want = if path.ends_with("openapi.json") {
            200
        } else {
            401
        };
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
    }
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

#[tokio::test]
async fn reports_are_served_by_role_in_every_format() {
    let h = harness().await;
    let day = "/api/v1/reports/queues?date=1970-01-01";
    let r = get_(&h, day, Some(WB)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers.contains("content-type: application/json"),
        "{}",
        r.headers
    );
    assert!(r.headers.contains("vary: accept"), "{}", r.headers);
    let v = r.json();
    assert_eq!(v["period"]["first_day"], "1970-01-01");
    assert_eq!(v["interval_minutes"], 30);
    assert!(v.get("agents").is_none(), "{v}");
    let queues = v["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2, "{v}");
    assert_eq!(queues[0]["queue"], "sales");
    assert_eq!(queues[0]["totals"]["offered"], 4);
    assert_eq!(queues[0]["totals"]["answered"], 4);
    assert_eq!(queues[0]["goals"]["sl_goal"], 0.8);
    assert_eq!(queues[1]["totals"]["abandoned"], 1);

    // The same content as `ctid report`'s renderings.
    let settings = crate::report::Settings::from_config(&report_config()).unwrap();
    let req = |parts, agent: Option<&str>| crate::report::Request {
        kind: crate::report::PeriodKind::Day,
        date: "1970-01-01".parse().unwrap(),
        queue: None,
        agent: agent.map(String::from),
        interval_minutes: None,
        parts,
    };
    let cli = |parts, agent, format| {
        let rep = crate::report::generate(h.dir.path(), &settings, &req(parts, agent), 0).unwrap();
        crate::report::render::render(&rep, format).unwrap()
    };
    use crate::report::{Parts, ReportFormat};
    assert_eq!(r.body, cli(Parts::Queues, None, ReportFormat::Json));
    let csv = get_(&h, &format!("{day}&format=csv"), Some(SUP)).await;
    assert!(
        csv.headers.contains("content-type: text/csv"),
        "{}",
        csv.headers
    );
    assert_eq!(csv.body, cli(Parts::Queues, None, ReportFormat::Csv));
    let md = request(
        h.addr,
        "GET",
        day,
        Some(SUP),
        &[("Accept", "text/markdown")],
        None,
    )
    .await;
    assert!(
        md.headers.contains("content-type: text/markdown"),
        "{}",
        md.headers
    );
    assert_eq!(md.body, cli(Parts::Queues, None, ReportFormat::Md));
    assert!(
        md.body.contains("| sales | SL 80%/20s, AR 90% | 4 |"),
        "{}",
        md.body
    );

    // Agents: wallboard and supervisor see everyone, an agent itself only.
    let agents = "/api/v1/reports/agents?date=1970-01-01";
    let r = get_(&h, agents, Some(WB)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, cli(Parts::Agents, None, ReportFormat::Json));
    let names: Vec<String> = r.json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["1001", "1002"]);
    let own = get_(&h, agents, Some(AG)).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(
        own.body,
        cli(Parts::Agents, Some("1001"), ReportFormat::Json)
    );
    let mine = own.json();
    assert_eq!(mine["agents"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["agents"][0]["agent"], "1001", "{mine}");
    let own = get_(&h, &format!("{agents}&agent=1001&format=csv"), Some(AG)).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body.starts_with("agent,answered,"), "{}", own.body);
    assert_eq!(own.body.lines().count(), 2, "{}", own.body);
    let other = get_(&h, &format!("{agents}&agent=1002"), Some(AG)).await;
    assert_eq!(other.status, 403, "{}", other.body);
    assert_eq!(other.error_code(), "forbidden");
    let r = get_(&h, day, Some(AG)).await;
    assert_eq!(r.status, 403, "an agent reads no queue report: {}", r.body);
    let r = get_(&h, day, None).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // Bad parameters: 400, the parameter named.
    for (q, param) in [
        ("period=year", "period"),
        ("date=yesterday", "date"),
        ("interval=45", "interval"),
        ("format=pdf", "format"),
        ("nonsense=1", "nonsense"),
        ("date=9999-12-31&period=week", "date"),
    ] {
        let r = get_(&h, &format!("/api/v1/reports/queues?{q}"), Some(SUP)).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        let e = &r.json()["error"];
        assert_eq!(e["code"], "bad_parameter", "{q}");
        assert_eq!(e["parameter"], param, "{q}: {e}");
    }

    // An empty period: zeros, every configured queue and agent.
    let r = get_(
        &h,
        "/api/v1/reports/queues?period=month&date=2001-02-03",
        Some(SUP),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["period"]["first_day"], "2001-02-01");
    assert_eq!(v["period"]["last_day"], "2001-02-28");
    assert_eq!(v["interval_minutes"], 60);
    for q in v["queues"].as_array().unwrap() {
        assert_eq!(q["totals"]["offered"], 0, "{q}");
        assert!(q["totals"]["answer_rate"].is_null(), "{q}");
        assert_eq!(q["intervals"].as_array().unwrap().len(), 0, "{q}");
    }
    let r = get_(
        &h,
        "/api/v1/reports/agents?period=week&date=2001-02-03",
        Some(AG),
    )
    .await;
    let v = r.json();
    assert_eq!(v["agents"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["agents"][0]["agent"], "1001");
    assert_eq!(v["agents"][0]["answered"], 0);
    assert_eq!(v["agents"][0]["logged_in_secs"], 0.0);
}

#[tokio::test]
async fn reports_without_settings_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let (ctl_tx, _ctl_rx) = mpsc::channel(1);
    let (store, _ops) = fake_writer(dir.path());
    let (_stats_tx, stats) = watch::channel(Snapshot {
        day: "2026-01-01".into(),
        interval_minutes: 15,
        queues: vec![],
    });
    let cfg = Api {
        tokens: vec![ApiToken {
            token: SUP.into(),
            role: "supervisor".into(),
            agent: None,
            ..ApiToken::default()
        }],
        ..Api::default()
    };
    let state = ApiState::new(&cfg, vec![], ctl_tx, store, stats);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let r = request(addr, "GET", "/api/v1/reports/queues", Some(SUP), &[], None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.error_code(), "unavailable");
}
