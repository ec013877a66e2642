//! The client commands (`ctid status`, `agents`, `agent`, `calls`, `top`) run as the real
//! binary against a tiny fake admin API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CTID: &str = env!("CARGO_BIN_EXE_ctid");
const TOKEN: &str = "good-token-123456";

const STATS: &str = r#"{"day":"2024-05-02","interval_minutes":15,"queues":[{"queue":"sales","sl_target_secs":20,"sl_goal":0.8,"answer_rate_goal":0.9,"today":{"offered":50,"answered":46,"abandoned":4,"short_abandons":1,"timeouts":0,"overflows":0,"rejected":0,"answered_in_target":45,"sl_offered":0.9183,"sl_answered":0.978,"answer_rate":0.8163,"asa_secs":8.4,"aht_secs":190.0,"longest_wait_secs":75.0,"sl_met":true,"answer_rate_met":false},"current_interval":{"start":"2024-05-02T10:00:00+02:00","end":"2024-05-02T10:15:00+02:00","figures":{"offered":3,"answered":3,"abandoned":0,"short_abandons":0,"timeouts":0,"overflows":0,"rejected":0,"answered_in_target":3,"sl_offered":1.0,"sl_answered":1.0,"answer_rate":1.0,"asa_secs":4.0,"aht_secs":null,"longest_wait_secs":6.0,"sl_met":true,"answer_rate_met":true}},"last_interval":{"start":"2024-05-02T09:45:00+02:00","end":"2024-05-02T10:00:00+02:00","figures":{"offered":0,"answered":0,"abandoned":0,"short_abandons":0,"timeouts":0,"overflows":0,"rejected":0,"answered_in_target":0,"sl_offered":null,"sl_answered":null,"answer_rate":null,"asa_secs":null,"aht_secs":null,"longest_wait_secs":null,"sl_met":null,"answer_rate_met":null}},"now":{"waiting":2,"longest_wait_secs":65.2,"agents":{"available":3,"on_call":4,"paused":1}}},{"queue":"support","sl_target_secs":30,"sl_goal":0.8,"answer_rate_goal":0.9,"today":{"offered":0,"answered":0,"abandoned":0,"short_abandons":0,"timeouts":0,"overflows":0,"rejected":0,"answered_in_target":0,"sl_offered":null,"sl_answered":null,"answer_rate":null,"asa_secs":null,"aht_secs":null,"longest_wait_secs":null,"sl_met":null,"answer_rate_met":null},"current_interval":{"start":"2024-05-02T10:00:00+02:00","end":"2024-05-02T10:15:00+02:00","figures":{}},"last_interval":{"start":"2024-05-02T09:45:00+02:00","end":"2024-05-02T10:00:00+02:00","figures":{}},"now":{"waiting":0,"longest_wait_secs":0.0,"agents":{}}}]}"#;

const AGENTS: &str = r#"[{"id":"1001","name":"Alice","state":"on_call","reason":null,"pending_pause":"lunch","since_ms":1700000000000,"call":42,"calls_answered":7,"registered":true},{"id":"1002","name":"Bob","state":"paused","reason":"break","pending_pause":null,"since_ms":1700000720000,"call":null,"calls_answered":0,"registered":false}]"#;

const PAUSED: &str = r#"{"id":"1003","name":"Carol","state":"paused","reason":"lunch","pending_pause":null,"since_ms":1700000000000,"call":null,"calls_answered":2,"registered":true}"#;

const CALLS: &str = r#"{"calls":[{"id":7,"sip_call_id":"abc@x","direction":"inbound","caller_number":"+4930123","caller_name":"Ann","dialed_number":"100","queue":"sales","entered_at_ms":1700000000000,"answered_at_ms":1700000008000,"ended_at_ms":1700000073000,"wait_ms":8000,"talk_ms":65000,"agent":"1001","outcome":"answered","answered_in_target":true,"short_abandon":false,"hangup_by":"caller","hangup_cause":"bye","sip_code":200,"disposition":null,"notes":null}],"next_cursor":"c7"}"#;

const CALL: &str = r#"{"call":{"id":7,"caller_number":"+4930123","queue":"sales","entered_at_ms":1700000000000,"wait_ms":8000,"talk_ms":65000,"agent":"1001","outcome":"answered"},"events":[{"at_ms":1700000000000,"kind":"entered","agent":null,"detail":null},{"at_ms":1700000008000,"kind":"answered","agent":"1001","detail":"sip 200"}]}"#;

/// One request the fake server saw.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    body: String,
}

struct Fake {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn api(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn json_error(status: &str, code: &str, message: &str) -> (String, String) {
    (
        status.to_string(),
        format!(r#"{{"error":{{"code":"{code}","message":"{message}"}}}}"#),
    )
}

/// Start the fake API; it serves until the test process ends.
fn fake() -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let log = log.clone();
            std::thread::spawn(move || serve(conn, &log));
        }
    });
    Fake { addr, seen }
}

fn serve(mut conn: TcpStream, log: &Mutex<Vec<Seen>>) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default().to_string();
    let mut auth = String::new();
    let mut length = 0usize;
    let mut close = false;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() || line == "\r\n" || line.is_empty() {
            break;
        }
        let (k, v) = line.split_once(':').unwrap_or((&line, ""));
        let v = v.trim().to_string();
        match k.to_ascii_lowercase().as_str() {
            "authorization" => auth = v,
            "content-length" => length = v.parse().unwrap(),
            "connection" => close = v.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    assert!(close, "the client must send Connection: close");
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).unwrap();
    let body = String::from_utf8(body).unwrap();
    log.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        body,
    });

    let path = target.split('?').next().unwrap_or_default();
    let mut chunked = false;
    let (status, payload) = if auth != format!("Bearer {TOKEN}") {
        json_error("401 Unauthorized", "unauthorized", "unknown token")
    } else {
        match (method.as_str(), path) {
            ("GET", "/api/v1/stats") => ("200 OK".into(), STATS.into()),
            ("GET", "/api/v1/agents") => {
                chunked = true;
                ("200 OK".into(), AGENTS.into())
            }
            ("POST", "/api/v1/agents/1003/pause") => ("200 OK".into(), PAUSED.into()),
            ("POST", "/api/v1/agents/1002/logout") => {
                json_error("409 Conflict", "conflict", "agent 1002 is on a call")
            }
            ("GET", "/api/v1/calls") => ("200 OK".into(), CALLS.into()),
            ("GET", "/api/v1/calls/7") => {
                chunked = true;
                ("200 OK".into(), CALL.into())
            }
            _ => json_error("404 Not Found", "not_found", "no such route"),
        }
    };
    let mut out = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\n");
    if chunked {
        // Like hyper: several chunks of arbitrary sizes.
        out.push_str("transfer-encoding: chunked\r\n\r\n");
        let bytes = payload.as_bytes();
        for piece in bytes.chunks(37) {
            out.push_str(&format!("{:x}\r\n", piece.len()));
            out.push_str(std::str::from_utf8(piece).unwrap());
            out.push_str("\r\n");
        }
        out.push_str("0\r\n\r\n");
    } else {
        out.push_str(&format!(
            "content-length: {}\r\n\r\n{payload}",
            payload.len()
        ));
    }
    let _ = conn.write_all(out.as_bytes());
    let _ = conn.flush();
}

fn ctid(args: &[&str]) -> Command {
    let mut c = Command::new(CTID);
    c.args(args)
        .env_remove("CTID_API")
        .env_remove("CTID_TOKEN")
        .env_remove("NO_COLOR")
        .env("TZ", "UTC");
    c
}

fn run(args: &[&str]) -> Output {
    ctid(args).output().unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn status_table_marks_targets() {
    let f = fake();
    let out = run(&["status", "--api", &f.api(), "--token", TOKEN]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        !stdout.contains('\x1b'),
        "no colors when stdout is a pipe: {stdout:?}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "day 2024-05-02, 15-minute intervals", "{stdout}");
    let header = lines.iter().find(|l| l.starts_with("QUEUE")).unwrap();
    assert!(
        header.contains("SL TODAY") && header.contains("ANSWER RATE"),
        "{stdout}"
    );
    let sales = lines.iter().find(|l| l.starts_with("sales")).unwrap();
    let cells: Vec<&str> = sales.split_whitespace().collect();
    assert_eq!(
        cells,
        ["sales", "2", "1m05s", "91%", "✓", "81%", "✗", "50", "46", "4", "8s", "3"],
        "{stdout}"
    );
    // Columns line up: the SL column starts at the same offset in the header and the row.
    assert_eq!(header.find("SL TODAY"), sales.find("91% ✓"), "{stdout}");
    let support = lines.iter().find(|l| l.starts_with("support")).unwrap();
    let cells: Vec<&str> = support.split_whitespace().collect();
    assert_eq!(
        cells,
        ["support", "0", "0s", "-", "-", "0", "0", "0", "-", "0"],
        "{stdout}"
    );
    let seen = f.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("GET", "/api/v1/stats")
    );
}

#[test]
fn env_vars_and_json_output() {
    let f = fake();
    let out = ctid(&["status", "--json"])
        .env("CTID_API", f.api())
        .env("CTID_TOKEN", TOKEN)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, format!("{STATS}\n"));

    // Chunked answer, passed through verbatim.
    let out = run(&["agents", "--api", &f.api(), "--token", TOKEN, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out).0, format!("{AGENTS}\n"));
}

#[test]
fn agents_board_from_chunked_answer() {
    let f = fake();
    let out = run(&["agents", "--api", &f.api(), "--token", TOKEN]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("ID    NAME   STATE    REASON"),
        "{stdout}"
    );
    let alice: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        alice[..6],
        ["1001", "Alice", "on_call", "pause", "pending:", "lunch"]
    );
    assert_eq!(alice[7..], ["42", "7", "yes"], "{stdout}");
    let bob: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(bob[..4], ["1002", "Bob", "paused", "break"]);
    assert_eq!(bob[5..], ["-", "0", "no"], "{stdout}");
}

#[test]
fn agent_actions_post_and_print_the_agent() {
    let f = fake();
    let out = run(&[
        "agent",
        "pause",
        "1003",
        "--reason",
        "lunch",
        "--api",
        &f.api(),
        "--token",
        TOKEN,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout
            .lines()
            .nth(1)
            .unwrap()
            .starts_with("1003  Carol  paused  lunch"),
        "{stdout}"
    );
    let seen = f.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/api/v1/agents/1003/pause");
    assert_eq!(seen[0].body, r#"{"reason":"lunch"}"#);

    // A 409 with the server's message, exit 1.
    let out = run(&[
        "agent",
        "logout",
        "1002",
        "--api",
        &f.api(),
        "--token",
        TOKEN,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim(),
        "ctid: ctid answered HTTP 409: agent 1002 is on a call (conflict)"
    );
}

#[test]
fn calls_list_and_show() {
    let f = fake();
    let api = f.api();
    let out = run(&[
        "calls",
        "--queue",
        "sales",
        "--outcome",
        "answered",
        "--caller",
        "+4930123",
        "--limit",
        "5",
        "--from",
        "1700000000000",
        "--api",
        &api,
        "--token",
        TOKEN,
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(
        f.seen()[0].target,
        "/api/v1/calls?from=1700000000000&queue=sales&outcome=answered&caller=%2B4930123&limit=5"
    );
    let row: Vec<&str> = stdout.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        row,
        [
            "7",
            "2023-11-14",
            "22:13:20",
            "+4930123",
            "(Ann)",
            "sales",
            "1001",
            "answered",
            "8s",
            "1m05s"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("more calls: repeat with --cursor c7"),
        "{stdout}"
    );

    let out = run(&["calls", "show", "7", "--api", &api, "--token", TOKEN]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("outcome        answered"), "{stdout}");
    assert!(
        stdout.contains("22:13:28.000  +8.0s  answered  1001   sip 200"),
        "{stdout}"
    );
}

#[test]
fn bad_token_exits_1() {
    let f = fake();
    let out = run(&["status", "--api", &f.api(), "--token", "wrong-token-000000"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.is_empty());
    assert!(
        stderr.contains("the token was refused: unknown token (unauthorized) (HTTP 401)"),
        "{stderr}"
    );
    // No token at all: say so.
    let out = run(&["agents", "--api", &f.api()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out)
        .1
        .contains("no token was given (--token / CTID_TOKEN)"));
}

#[test]
fn nothing_listening_exits_69() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let api = format!("http://127.0.0.1:{port}");
    let out = run(&["status", "--api", &api, "--token", TOKEN]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stdout}{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "ctid: cannot reach ctid at 127.0.0.1:{port}: connection refused — is it running? (--api / CTID_API)"
        )
    );
}

#[test]
fn usage_errors_exit_64() {
    for args in [
        &["calls", "--limit", "0"][..],
        &["calls", "--today", "--from", "1"],
        &["agent", "frobnicate", "1"],
        &["status", "--api", "ftp://127.0.0.1:9060"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {}", text(&out).1);
    }
    let out = run(&["status", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains("--token <TOKEN>"));
}

#[test]
fn top_redraws_until_ctrl_c() {
    let f = fake();
    let mut child = ctid(&[
        "top",
        "--interval",
        "1",
        "--api",
        &f.api(),
        "--token",
        TOKEN,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = String::new();
    // Two frames: the board refreshes.
    while seen.matches("press Ctrl-C to quit").count() < 2 {
        assert!(Instant::now() < deadline, "no second frame: {seen}");
        if let Ok(b) = rx.recv_timeout(Duration::from_millis(100)) {
            seen.push_str(&String::from_utf8_lossy(&b));
        }
    }
    assert!(seen.contains("81% ✗"), "{seen}");
    assert!(seen.contains("1001  Alice"), "{seen}");
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "top did not exit on Ctrl-C");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// OpenSSL's `s_server -WWW` serving `dir` over TLS with `pki`'s certificate (a TLS proxy in
/// front of the admin listener, as far as the CLI can tell); killed on drop.
struct TlsServer {
    child: std::process::Child,
    addr: SocketAddr,
}

impl TlsServer {
    fn start(dir: &std::path::Path, pki: &ctid_testkit::pki::Pki) -> TlsServer {
        let port = ctid_testkit::free_port();
        let child = Command::new("openssl")
            .args(["s_server", "-quiet", "-WWW", "-accept"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("-cert")
            .arg(&pki.cert)
            .arg("-key")
            .arg(&pki.key)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run openssl (Debian package openssl)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "openssl s_server did not listen on {addr}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        TlsServer { child, addr }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn status_over_https_checks_the_certificate_against_ctid_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let pki = ctid_testkit::pki::write_pki(dir.path(), "", "proxy CA", &["127.0.0.1"]);
    let other = ctid_testkit::pki::write_pki(dir.path(), "other-", "another CA", &["127.0.0.1"]);
    std::fs::create_dir_all(dir.path().join("api/v1")).unwrap();
    std::fs::write(dir.path().join("api/v1/stats"), STATS).unwrap();
    let server = TlsServer::start(dir.path(), &pki);
    let api = format!("https://{}", server.addr);

    let out = ctid(&["status", "--api", &api, "--token", TOKEN])
        .env("CTID_CA_FILE", &pki.ca)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.lines().any(|l| l.starts_with("sales")), "{stdout}");

    // A certificate from an authority the CLI was not told to trust: refused, not printed.
    let out = ctid(&["status", "--api", &api, "--token", TOKEN])
        .env("CTID_CA_FILE", &other.ca)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_ne!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(!stdout.contains("sales"), "{stdout}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
}
