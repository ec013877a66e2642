//! The API's call flows end to end, with a real daemon, SIPp seats and a SIPp PBX: an agent's
//! disposition lands on its call record (and another agent's token is refused), a supervisor
//! moves the last waiting caller to the front and that caller is answered first, the event
//! stream shows a call's life in order and a client that reconnects with `Last-Event-ID` gets
//! exactly what it missed, and the refusals (403, 401, 400 on malformed JSON, 404) answer with
//! a JSON error.

use ctid_testkit as common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const AGENT_1001_TOKEN: &str = "agent-1001-token-xyz";
const AGENT_1002_TOKEN: &str = "agent-1002-token-xyz";
const WALLBOARD_TOKEN: &str = "wallboard-token-0001";

/// `queue_settings` plus an agent token for each of 1001 and 1002 that is among `ids`, and a
/// wallboard token.
fn settings(ids: &[&str], queue_lines: &str) -> Settings {
    let mut s = queue_settings(ids, queue_lines);
    for (agent, token) in [("1001", AGENT_1001_TOKEN), ("1002", AGENT_1002_TOKEN)] {
        if ids.contains(&agent) {
            s.extra_toml.push_str(&format!(
                "\n[[api.tokens]]\ntoken = {token:?}\nrole = \"agent\"\nagent = {agent:?}\n"
            ));
        }
    }
    s.extra_toml.push_str(&format!(
        "\n[[api.tokens]]\ntoken = {WALLBOARD_TOKEN:?}\nrole = \"wallboard\"\n"
    ));
    s
}

/// A request with `token`; the status and the body as JSON (`Null` when it is not JSON).
fn req(env: &TestEnv, method: &str, path: &str, token: Option<&str>, json: &str) -> (u16, Value) {
    let body = (method == "POST").then_some(json);
    let (status, text) = http_request(env, method, path, token, body);
    let v = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, v)
}

fn sup_post(env: &TestEnv, path: &str, json: &str) -> (u16, Value) {
    req(env, "POST", path, Some(SUPERVISOR_TOKEN), json)
}

/// Poll `f` every 100 ms until it gives `Some` or `timeout` passes.
fn poll<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The agent's view from GET /api/v1/agents once `pred` holds (5 s at most); the last view.
fn agent_until(env: &TestEnv, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    poll(Duration::from_secs(5), || {
        let (status, body) = http_get(env, "/api/v1/agents");
        assert_eq!(status, 200, "GET /api/v1/agents: {body}");
        let v: Value = serde_json::from_str(&body).expect("agents JSON");
        last = v
            .as_array()
            .and_then(|a| a.iter().find(|x| x["id"] == id))
            .cloned()
            .unwrap_or(Value::Null);
        pred(&last).then_some(())
    });
    last
}

/// A registered seat for `agent` that answers every call, once the board shows it available.
fn seat(env: &TestEnv, daemon: &Daemon, agent: &str, scenario: &str) -> SippBg {
    let s = start_seat(
        env.path(),
        daemon.addr,
        agent,
        &format!("secret{agent}"),
        scenario,
        60,
    );
    let a = agent_until(env, agent, |a| a["state"] == "available");
    assert_eq!(
        a["state"], "available",
        "agent {agent} registered but is not available: {a}"
    );
    s
}

/// One PBX call into queue `support` that stays `talk_ms` on the line after ctid's 200.
fn place_call(env: &TestEnv, daemon: &Daemon, talk_ms: u64) {
    let d = talk_ms.to_string();
    let run = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            &d,
            "-timeout",
            "20s",
            "-timeout_error",
        ],
    );
    assert!(run.ok(), "the PBX call failed:\n{}", run.report);
}

// ---------------------------------------------------------------------------------------------
// 1. Disposition
// ---------------------------------------------------------------------------------------------

#[test]
fn disposition_lands_on_the_call_record() {
    let env = TestEnv::new(&settings(
        &["1001", "1002"],
        "ring_timeout_secs = 10\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = seat(&env, &daemon, "1001", "seat_answer.xml");
    place_call(&env, &daemon, 500);

    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() == 1 && r[0].agent.is_some() && r[0].outcome.is_some()
    });
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    let row = &rows[0];
    assert_eq!(row.outcome.as_deref(), Some("answered"), "{row:?}");
    assert_eq!(row.agent.as_deref(), Some("1001"), "{row:?}");
    let path = format!("/api/v1/calls/{}/disposition", row.id);

    // Another agent may not disposition 1001's call; nothing is written.
    let (status, v) = req(
        &env,
        "POST",
        &path,
        Some(AGENT_1002_TOKEN),
        r#"{"code":"complaint","notes":"not mine"}"#,
    );
    assert_eq!(status, 403, "agent 1002 on agent 1001's call: {v}");
    assert_eq!(v["error"]["code"], "forbidden", "{v}");
    let (status, v) = req(
        &env,
        "GET",
        &format!("/api/v1/calls/{}", row.id),
        Some(AGENT_1002_TOKEN),
        "",
    );
    assert_eq!(status, 403, "agent 1002 reading agent 1001's call: {v}");

    // The agent's own token: accepted, and the record shows it once the writer has run.
    let (status, v) = req(
        &env,
        "POST",
        &path,
        Some(AGENT_1001_TOKEN),
        r#"{"code":"resolved","notes":"refund sent"}"#,
    );
    assert_eq!(status, 200, "agent 1001 on its own call: {v}");
    assert_eq!(v, serde_json::json!({}), "the answer is {{}}");

    let detail_path = format!("/api/v1/calls/{}", row.id);
    let mut detail = Value::Null;
    poll(Duration::from_secs(5), || {
        let (status, v) = req(&env, "GET", &detail_path, Some(AGENT_1001_TOKEN), "");
        assert_eq!(status, 200, "GET {detail_path} as agent 1001: {v}");
        detail = v;
        (detail["call"]["disposition"] == "resolved").then_some(())
    });
    let call = &detail["call"];
    assert_eq!(call["disposition"], "resolved", "{detail}");
    assert_eq!(call["notes"], "refund sent", "{detail}");
    assert_eq!(call["id"], row.id, "{detail}");
    assert_eq!(call["agent"], "1001", "{detail}");
    assert_eq!(call["outcome"], "answered", "{detail}");
    // The supervisor sees the same.
    let (status, v) = req(&env, "GET", &detail_path, Some(SUPERVISOR_TOKEN), "");
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (&v["call"]["disposition"], &v["call"]["notes"]),
        (&Value::from("resolved"), &Value::from("refund sent")),
        "{v}"
    );

    // Changed to `complaint`: the customer gets a follow-up on the complaint list, due in 12 h
    // (open, not yet past its reply time); a second `complaint` adds nothing.
    for _ in 0..2 {
        let (status, v) = req(
            &env,
            "POST",
            &path,
            Some(AGENT_1001_TOKEN),
            r#"{"code":"complaint","notes":"broken on arrival"}"#,
        );
        assert_eq!(status, 200, "complaint disposition: {v}");
    }
    let (status, v) = req(
        &env,
        "GET",
        "/api/v1/complaints/summary",
        Some(SUPERVISOR_TOKEN),
        "",
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["open"], 1, "one open complaint follow-up: {v}");
    assert_eq!(v["past_reply"], 0, "{v}");
    let (status, v) = req(
        &env,
        "GET",
        "/api/v1/complaints",
        Some(SUPERVISOR_TOKEN),
        "",
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        v.to_string().contains("55501"),
        "the follow-up is for the caller's number: {v}"
    );

    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. Move to front
// ---------------------------------------------------------------------------------------------

/// The waiting callers of `support` (GET /api/v1/queues/support).
fn waiting(env: &TestEnv) -> Vec<Value> {
    let (status, body) = http_get(env, "/api/v1/queues/support");
    assert_eq!(status, 200, "GET /api/v1/queues/support: {body}");
    let v: Value = serde_json::from_str(&body).expect("queue JSON");
    assert_eq!(v["queue"], "support", "{v}");
    v["waiting"].as_array().cloned().unwrap_or_default()
}

#[test]
fn moved_caller_is_answered_next() {
    let env = TestEnv::new(&settings(
        &["1001"],
        "ring_timeout_secs = 10\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    // The agent hangs up each call after 300 ms; the callers wait for that BYE.
    let seat = seat(&env, &daemon, "1001", "seat_answer_hangup.xml");
    let (status, v) = sup_post(&env, "/api/v1/agents/1001/pause", r#"{"reason":"break"}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "paused", "{v}");

    // Three callers, a second apart.
    let dir = env.path().to_path_buf();
    let addr = daemon.addr;
    let pbx = std::thread::spawn(move || {
        sipp(
            &dir,
            addr,
            "pbx_wait_for_bye.xml",
            &[
                "-s",
                "4000",
                "-m",
                "3",
                "-r",
                "1",
                "-l",
                "3",
                "-timeout",
                "30s",
                "-timeout_error",
            ],
        )
    });
    let mut queue = vec![];
    poll(Duration::from_secs(8), || {
        queue = waiting(&env);
        (queue.len() == 3).then_some(())
    });
    assert_eq!(queue.len(), 3, "three callers wait: {queue:?}");
    let calls: Vec<u64> = queue.iter().map(|w| w["call"].as_u64().unwrap()).collect();
    let positions: Vec<u64> = queue
        .iter()
        .map(|w| w["position"].as_u64().unwrap())
        .collect();
    let numbers: Vec<&str> = queue
        .iter()
        .map(|w| w["caller_number"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(positions, [1, 2, 3], "{queue:?}");
    assert_eq!(
        numbers,
        ["555011", "555012", "555013"],
        "in the order they called: {queue:?}"
    );
    assert!(
        calls[0] < calls[1] && calls[1] < calls[2],
        "call ids follow arrival: {queue:?}"
    );
    let third = calls[2];

    // Only a supervisor moves callers.
    let move_path = format!("/api/v1/calls/{third}/move");
    let (status, v) = req(
        &env,
        "POST",
        &move_path,
        Some(AGENT_1001_TOKEN),
        r#"{"to_front":true}"#,
    );
    assert_eq!(status, 403, "an agent token moving a caller: {v}");
    let (status, v) = sup_post(&env, &move_path, r#"{"to_front":true}"#);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v, serde_json::json!({}));
    let after = waiting(&env);
    let order: Vec<u64> = after.iter().map(|w| w["call"].as_u64().unwrap()).collect();
    assert_eq!(
        order,
        [third, calls[0], calls[1]],
        "the moved caller is first, the others keep their order: {after:?}"
    );
    assert_eq!(after[0]["position"], 1, "{after:?}");
    assert_eq!(after[0]["caller_number"], "555013", "{after:?}");

    let (status, v) = sup_post(&env, "/api/v1/agents/1001/unpause", "{}");
    assert_eq!(status, 200, "{v}");
    let run = pbx.join().expect("pbx thread");
    assert!(
        run.ok() && run.successful == Some(3),
        "the three callers were all answered and released:\n{}",
        run.report
    );

    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() == 3 && r.iter().all(|c| c.answered_at_ms.is_some())
    });
    assert_eq!(rows.len(), 3, "{}", describe_calls(&rows));
    let mut answered: Vec<(i64, u64)> = rows
        .iter()
        .map(|r| {
            let at = r
                .answered_at_ms
                .unwrap_or_else(|| panic!("call not answered:\n{}", describe_calls(&rows)));
            (at, r.id as u64)
        })
        .collect();
    answered.sort();
    let answer_order: Vec<u64> = answered.iter().map(|(_, id)| *id).collect();
    assert_eq!(
        answer_order,
        [third, calls[0], calls[1]],
        "answer order (by answered_at_ms) follows the moved queue:\n{}",
        describe_calls(&rows)
    );
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}

// ---------------------------------------------------------------------------------------------
// 3. Event stream
// ---------------------------------------------------------------------------------------------

/// One SSE frame with an id.
#[derive(Clone, Debug, PartialEq)]
struct Frame {
    id: u64,
    event: String,
    data: Value,
}

impl Frame {
    fn call(&self) -> Option<u64> {
        self.data["call"].as_u64()
    }
}

/// GET /api/v1/events read on a thread: status line and headers, then the de-chunked body
/// split into frames (comments, `retry:` and frames without an id are left out).
struct EventStream {
    head: String,
    frames: mpsc::Receiver<Frame>,
    socket: TcpStream,
    seen: Vec<Frame>,
}

impl EventStream {
    fn open(env: &TestEnv, query: &str, last_event_id: Option<u64>) -> EventStream {
        let mut s = TcpStream::connect(("127.0.0.1", env.admin_port)).expect("connect admin");
        let last = last_event_id
            .map(|id| format!("Last-Event-ID: {id}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "GET /api/v1/events{query} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SUPERVISOR_TOKEN}\r\nAccept: text/event-stream\r\n{last}\r\n"
        );
        s.write_all(req.as_bytes()).expect("send events request");
        let mut reader = s.try_clone().unwrap();
        let (head_tx, head_rx) = mpsc::channel::<String>();
        let (tx, rx) = mpsc::channel::<Frame>();
        std::thread::spawn(move || {
            let mut raw: Vec<u8> = Vec::new();
            let mut buf = [0u8; 8192];
            // Head.
            let chunked = loop {
                if let Some(i) = find(&raw, b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&raw[..i]).into_owned();
                    raw.drain(..i + 4);
                    let chunked = head
                        .to_ascii_lowercase()
                        .contains("transfer-encoding: chunked");
                    let _ = head_tx.send(head);
                    break chunked;
                }
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            };
            let mut body: Vec<u8> = Vec::new();
            loop {
                // De-chunk what is complete.
                if chunked {
                    while let Some(eol) = find(&raw, b"\r\n") {
                        let line = String::from_utf8_lossy(&raw[..eol]).into_owned();
                        let size_hex = line.split(';').next().unwrap_or("").trim();
                        let size = usize::from_str_radix(size_hex, 16)
                            .unwrap_or_else(|_| panic!("bad chunk size line {line:?}"));
                        if size == 0 {
                            return;
                        }
                        if raw.len() < eol + 2 + size + 2 {
                            break;
                        }
                        body.extend_from_slice(&raw[eol + 2..eol + 2 + size]);
                        raw.drain(..eol + 2 + size + 2);
                    }
                } else {
                    body.append(&mut raw);
                }
                // Frames end with a blank line.
                while let Some(end) = find(&body, b"\n\n") {
                    let text = String::from_utf8_lossy(&body[..end]).into_owned();
                    body.drain(..end + 2);
                    if let Some(f) = parse_frame(&text) {
                        if tx.send(f).is_err() {
                            return;
                        }
                    }
                }
                match reader.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                }
            }
        });
        let head = head_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("the event stream's response head within 5 s");
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "GET /api/v1/events: {head}"
        );
        assert!(
            head.to_ascii_lowercase()
                .contains("content-type: text/event-stream"),
            "{head}"
        );
        EventStream {
            head,
            frames: rx,
            socket: s,
            seen: vec![],
        }
    }

    /// Read frames until `done(frames so far)` holds (panics after `timeout`), then keep
    /// reading until `quiet` passes without a frame. Everything read so far.
    fn read_until(
        &mut self,
        timeout: Duration,
        quiet: Duration,
        done: impl Fn(&[Frame]) -> bool,
    ) -> &[Frame] {
        let deadline = Instant::now() + timeout;
        while !done(&self.seen) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.frames.recv_timeout(left) {
                Ok(f) => self.seen.push(f),
                Err(_) => panic!(
                    "the event stream did not show what was expected within {timeout:?}; got:\n{}\n(head: {})",
                    describe(&self.seen),
                    self.head
                ),
            }
        }
        while let Ok(f) = self.frames.recv_timeout(quiet) {
            self.seen.push(f);
        }
        &self.seen
    }

    fn close(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `id:`, `event:`, `data:` lines of one frame; `None` for comments and id-less frames.
fn parse_frame(text: &str) -> Option<Frame> {
    let (mut id, mut event, mut data) = (None, String::from("message"), String::new());
    for line in text.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (k, v) = line.split_once(':').unwrap_or((line, ""));
        let v = v.strip_prefix(' ').unwrap_or(v);
        match k {
            "id" => id = v.parse().ok(),
            "event" => event = v.to_string(),
            "data" => {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v);
            }
            _ => {}
        }
    }
    let id = id?;
    let data = serde_json::from_str(&data)
        .unwrap_or_else(|e| panic!("data of frame {text:?} is not JSON: {e}"));
    Some(Frame { id, event, data })
}

fn describe(frames: &[Frame]) -> String {
    frames
        .iter()
        .map(|f| format!("{} {} {}\n", f.id, f.event, f.data))
        .collect()
}

const LIFE: [&str; 4] = [
    "call_entered",
    "call_offered",
    "call_answered",
    "call_ended",
];

/// The call of the first `call_entered` after `after` (a call id), if any.
fn entered_call(frames: &[Frame], after: Option<u64>) -> Option<u64> {
    frames
        .iter()
        .filter(|f| f.event == "call_entered")
        .filter_map(Frame::call)
        .find(|c| after.is_none_or(|a| *c != a))
}

fn ended(frames: &[Frame], call: u64) -> bool {
    frames
        .iter()
        .any(|f| f.event == "call_ended" && f.call() == Some(call))
}

/// The call's life-cycle events (of [`LIFE`]) in stream order.
fn life_of(frames: &[Frame], call: u64) -> Vec<&Frame> {
    frames
        .iter()
        .filter(|f| f.call() == Some(call) && LIFE.contains(&f.event.as_str()))
        .collect()
}

fn assert_consecutive(frames: &[Frame], first: u64, what: &str) {
    let ids: Vec<u64> = frames.iter().map(|f| f.id).collect();
    let want: Vec<u64> = (first..first + frames.len() as u64).collect();
    assert_eq!(
        ids,
        want,
        "{what}: ids must run on from {first} with no gap:\n{}",
        describe(frames)
    );
}

#[test]
fn event_stream_shows_a_call_in_order_and_reconnect_misses_nothing() {
    let env = TestEnv::new(&settings(
        &["1001"],
        "ring_timeout_secs = 10\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = seat(&env, &daemon, "1001", "seat_answer.xml");

    // First connection: a call is answered and ended while we watch.
    let mut live = EventStream::open(&env, "", None);
    place_call(&env, &daemon, 500);
    let frames = live
        .read_until(Duration::from_secs(10), Duration::from_millis(700), |f| {
            entered_call(f, None).is_some_and(|c| ended(f, c))
        })
        .to_vec();
    let first_call = entered_call(&frames, None).unwrap();
    assert_consecutive(&frames, frames[0].id, "live stream");
    let life = life_of(&frames, first_call);
    let kinds: Vec<&str> = life.iter().map(|f| f.event.as_str()).collect();
    assert_eq!(
        kinds,
        LIFE,
        "call {first_call}'s events in stream order:\n{}",
        describe(&frames)
    );
    assert!(
        life.windows(2).all(|w| w[0].id < w[1].id),
        "ids increase: {life:?}"
    );
    assert_eq!(life[1].data["agent"], "1001", "offered to 1001: {life:?}");
    assert_eq!(life[2].data["agent"], "1001", "answered by 1001: {life:?}");
    assert_eq!(life[0].data["queue"], "support", "{life:?}");
    let rows = read_calls(&env);
    assert!(
        rows.iter().any(|r| r.id as u64 == first_call),
        "the stream's call id {first_call} is a calls row id:\n{}",
        describe_calls(&rows)
    );
    let last_seen = frames.last().unwrap().id;
    live.close();

    // While disconnected: a second call.
    place_call(&env, &daemon, 300);
    std::thread::sleep(Duration::from_millis(700));

    // Reconnect with Last-Event-ID: exactly the missed events, from last_seen + 1.
    let mut again = EventStream::open(&env, "", Some(last_seen));
    let missed = again
        .read_until(Duration::from_secs(10), Duration::from_millis(700), |f| {
            entered_call(f, Some(first_call)).is_some_and(|c| ended(f, c))
        })
        .to_vec();
    again.close();
    assert_eq!(
        missed[0].id,
        last_seen + 1,
        "the replay starts right after the last id seen ({last_seen}):\n{}",
        describe(&missed)
    );
    assert_consecutive(&missed, last_seen + 1, "replay after reconnect");
    let second_call = entered_call(&missed, Some(first_call)).unwrap();
    assert_ne!(second_call, first_call);
    let kinds: Vec<&str> = life_of(&missed, second_call)
        .iter()
        .map(|f| f.event.as_str())
        .collect();
    assert_eq!(
        kinds,
        LIFE,
        "the missed call {second_call}'s events:\n{}",
        describe(&missed)
    );
    assert!(
        life_of(&missed, first_call).is_empty(),
        "nothing seen before is sent again:\n{}",
        describe(&missed)
    );

    // The whole history (since=0) is what the two connections saw together, frame for frame.
    let newest = missed.last().unwrap().id;
    let mut all = EventStream::open(&env, "?since=0", None);
    let history = all
        .read_until(Duration::from_secs(5), Duration::from_millis(200), |f| {
            f.last().is_some_and(|l| l.id >= newest)
        })
        .to_vec();
    all.close();
    assert_consecutive(&history, 1, "full history");
    let after: Vec<Frame> = history
        .iter()
        .filter(|f| f.id > last_seen && f.id <= newest)
        .cloned()
        .collect();
    assert_eq!(
        after, missed,
        "the replay after reconnect is exactly the history after id {last_seen}"
    );
    let before: Vec<Frame> = history
        .iter()
        .filter(|f| f.id >= frames[0].id && f.id <= last_seen)
        .cloned()
        .collect();
    assert_eq!(before, frames, "the live stream matches the history");

    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Refusals
// ---------------------------------------------------------------------------------------------

fn assert_error(status: u16, v: &Value, want_status: u16, want_code: &str, what: &str) {
    assert_eq!(status, want_status, "{what}: {v}");
    assert_eq!(v["error"]["code"], want_code, "{what}: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: the error has a message: {v}"
    );
}

#[test]
fn refusals() {
    let env = TestEnv::new(&settings(&["1001", "1002"], "wrapup_secs = 0\n"));
    let daemon = env.start();
    let pause = r#"{"reason":"break"}"#;

    // An agent token acting on another agent.
    let (status, v) = req(
        &env,
        "POST",
        "/api/v1/agents/1002/pause",
        Some(AGENT_1001_TOKEN),
        pause,
    );
    assert_error(status, &v, 403, "forbidden", "agent 1001 pausing 1002");

    // No token, and an unknown one.
    let (status, v) = req(&env, "POST", "/api/v1/agents/1001/pause", None, pause);
    assert_error(status, &v, 401, "unauthorized", "no token");
    let (status, v) = req(
        &env,
        "POST",
        "/api/v1/agents/1001/pause",
        Some("not-a-configured-token-123"),
        pause,
    );
    assert_error(status, &v, 401, "unauthorized", "unknown token");
    let (status, v) = req(&env, "GET", "/api/v1/agents", None, "");
    assert_error(status, &v, 401, "unauthorized", "GET without a token");

    // Malformed JSON: 400, and the message says what is wrong with the body.
    let (status, v) = sup_post(&env, "/api/v1/agents/1001/pause", r#"{"reason":"#);
    assert_error(status, &v, 400, "bad_json", "truncated JSON body");
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("JSON") && msg.contains("EOF"),
        "the message names the problem (not valid JSON, ends early): {msg:?}"
    );
    let (status, v) = req(
        &env,
        "POST",
        "/api/v1/agents/1001/pause",
        Some(AGENT_1001_TOKEN),
        "reason=break",
    );
    assert_error(status, &v, 400, "bad_json", "a form body");
    // Valid JSON with a wrong field stays 422.
    let (status, v) = sup_post(&env, "/api/v1/agents/1001/pause", r#"{"reason":7}"#);
    assert_error(status, &v, 422, "invalid", "reason is a number");

    // Unknown agent; unknown call.
    let (status, v) = sup_post(&env, "/api/v1/agents/9999/pause", pause);
    assert_error(status, &v, 404, "not_found", "unknown agent");
    let (status, v) = sup_post(
        &env,
        "/api/v1/calls/424242/disposition",
        r#"{"code":"resolved"}"#,
    );
    assert_error(status, &v, 404, "not_found", "unknown call");

    // The wallboard reads but never writes.
    let (status, body) = http_request(&env, "GET", "/api/v1/agents", Some(WALLBOARD_TOKEN), None);
    assert_eq!(status, 200, "the wallboard reads the agents: {body}");
    let (status, v) = req(
        &env,
        "POST",
        "/api/v1/agents/1001/pause",
        Some(WALLBOARD_TOKEN),
        pause,
    );
    assert_error(status, &v, 403, "forbidden", "wallboard pausing an agent");
    let (status, v) = req(
        &env,
        "POST",
        "/api/v1/calls/1/move",
        Some(WALLBOARD_TOKEN),
        r#"{"to_front":true}"#,
    );
    assert_error(status, &v, 403, "forbidden", "wallboard moving a call");

    // Nothing was paused by any of that.
    let a = agent_until(&env, "1001", |_| true);
    assert_ne!(a["state"], "paused", "{a}");

    // Every refused POST was audited with its outcome.
    let results: Vec<String> = poll(Duration::from_secs(5), || {
        let conn = open_db(&env)?;
        let mut st = conn.prepare("SELECT result FROM audit ORDER BY id").ok()?;
        let r: Vec<String> = st
            .query_map([], |r| r.get(0))
            .ok()?
            .collect::<Result<_, _>>()
            .ok()?;
        (r.len() >= 10).then_some(r)
    })
    .expect("10 audit rows within 5 s");
    assert_eq!(
        results,
        [
            "forbidden",
            "unauthorized",
            "unauthorized",
            "bad_json",
            "bad_json",
            "invalid",
            "not_found",
            "not_found",
            "forbidden",
            "forbidden",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>(),
        "audit results in request order"
    );
    daemon.stop();
}
