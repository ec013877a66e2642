//! The reports on the API end to end: a real daemon, SIPp calls (one short abandon, two answered
//! by a SIPp seat), then `GET /api/v1/reports/queues` and `/agents` compared with the figures
//! computed here from the call records and with `ctid report` run on the same database (same
//! period, every format). Also who may read what, bad parameters, and an empty period.

use ctid_testkit as common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const WALLBOARD_TOKEN: &str = "test-wallboard-token-0001";
const AGENT_TOKEN: &str = "test-agent-1001-token-001";

/// A GET on the admin listener: status, lower-cased head, body.
fn get(
    env: &TestEnv,
    path: &str,
    token: Option<&str>,
    accept: Option<&str>,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", env.admin_port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(a) = accept {
        req.push_str(&format!("Accept: {a}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read admin response");
    let text = String::from_utf8(buf).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let head = head.to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "reports have a length: {head}"
    );
    let status = head[9..12].parse().expect("status");
    (status, head, body.to_string())
}

/// A report as JSON (status 200 asserted).
fn report(env: &TestEnv, path: &str, token: &str) -> Value {
    let (status, head, body) = get(env, path, Some(token), None);
    assert_ne!(
        status, 503,
        "GET {path}: {body} (the daemon must give the API its report settings: \
         `ApiState::new(…).with_reports(&cfg)` in src/app.rs)"
    );
    assert_eq!(status, 200, "GET {path}: {body}");
    assert!(head.contains("content-type: application/json"), "{head}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// `ctid report <args> --config <env's>`: stdout.
fn cli(config: &Path, args: &[&str]) -> String {
    let out = Command::new(CTID.as_str())
        .arg("report")
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run ctid report");
    assert!(
        out.status.success(),
        "ctid report {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn cli_json(config: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    serde_json::from_str(&cli(config, &all)).unwrap()
}

/// The error of a 400 answer: its code and the parameter it names.
fn bad_parameter(env: &TestEnv, path: &str) -> String {
    let (status, _, body) = get(env, path, Some(SUPERVISOR_TOKEN), None);
    assert_eq!(status, 400, "GET {path}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "bad_parameter", "{v}");
    v["error"]["parameter"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn one_call(env: &TestEnv, daemon: &Daemon, hold_ms: u64, calls: u32) {
    let hold = hold_ms.to_string();
    let n = calls.to_string();
    let run = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            &n,
            "-l",
            "1",
            "-d",
            &hold,
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    assert!(
        run.ok() && run.successful == Some(calls as u64),
        "PBX calls failed:\n{}\n{}",
        run.report,
        daemon.story_of_failed_calls(&run.report)
    );
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|x| (x - b).abs() < 1e-9)
}

#[test]
fn api_reports_match_the_cli_and_the_calls_and_check_who_asks() {
    let mut s = queue_settings(
        &["1001", "1002"],
        "strategy = \"longest-idle\"\nring_timeout_secs = 10\nwrapup_secs = 0\n\
         sl_target_secs = 15\nsl_goal_percent = 90\nanswer_rate_target_percent = 90\n",
    );
    s.extra_toml.push_str(&format!(
        "\n[[api.tokens]]\ntoken = {WALLBOARD_TOKEN:?}\nrole = \"wallboard\"\n\
         \n[[api.tokens]]\ntoken = {AGENT_TOKEN:?}\nrole = \"agent\"\nagent = \"1001\"\n\
         \n[reports]\ntime_zone = \"Europe/Berlin\"\ninterval_minutes = 15\n"
    ));
    let env = TestEnv::new(&s);
    let daemon = env.start();

    // 1. Nobody is logged in: the caller waits 2 s and hangs up, a short abandon (< 5 s).
    one_call(&env, &daemon, 2000, 1);
    // 2. Seat 1001 answers two calls, one after the other, 2 s of talk each.
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer.xml",
        60,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let (_, body) = http_get(&env, "/api/v1/agents");
        if body.contains("\"state\":\"available\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    one_call(&env, &daemon, 2000, 2);
    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() == 3
            && r.iter()
                .all(|c| c.outcome.is_some() && c.ended_at_ms.is_some())
    });
    assert_eq!(rows.len(), 3, "{}", describe_calls(&rows));
    assert!(
        rows.iter().all(|c| c.outcome.is_some()),
        "{}",
        describe_calls(&rows)
    );
    // 3. Log 1001 out so its session rows are closed: the logged-in time stops growing, and a
    //    report asked twice (API, CLI) gives the same figures.
    let (status, body) = http_request(
        &env,
        "POST",
        "/api/v1/agents/1001/logout",
        Some(SUPERVISOR_TOKEN),
        Some("{}"),
    );
    assert_eq!(status, 200, "logout: {body}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let open_sessions = || {
        open_db(&env)
            .and_then(|c| {
                c.query_row(
                    "SELECT count(*) FROM agent_sessions WHERE ended_at_ms IS NULL",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .ok()
            })
            .unwrap_or(-1)
    };
    while open_sessions() != 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(open_sessions(), 0, "the logout closed 1001's sessions");

    // Today's report, as the wallboard reads it; its period names the day for the CLI.
    let q = report(&env, "/api/v1/reports/queues", WALLBOARD_TOKEN);
    let day = q["period"]["first_day"].as_str().unwrap().to_string();
    assert_eq!(q["period"]["kind"], "day");
    assert_eq!(q["period"]["time_zone"], "Europe/Berlin");
    assert_eq!(q["interval_minutes"], 15);
    let queues = q["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 1, "{q}");
    assert_eq!(queues[0]["queue"], "support");

    // The figures, from the call records and from what SIPp did.
    let t = &queues[0]["totals"];
    let answered: Vec<_> = rows
        .iter()
        .filter(|c| c.outcome.as_deref() == Some("answered"))
        .collect();
    assert_eq!(answered.len(), 2, "{}", describe_calls(&rows));
    assert_eq!(t["offered"], 3, "{t}");
    assert_eq!(t["answered"], 2, "{t}");
    assert_eq!(t["short_abandons"], 1, "{t}");
    assert_eq!(
        t["abandoned"], 0,
        "short abandons are not in abandoned: {t}"
    );
    assert_eq!(t["timeouts"], 0, "{t}");
    let in_target = answered
        .iter()
        .filter(|c| c.answered_in_target == Some(1))
        .count();
    assert_eq!(t["answered_in_target"], in_target as u64, "{t}");
    assert!(close(&t["answer_rate"], 1.0), "2 of 3 − 1 short: {t}");
    assert!(close(&t["sl_offered"], in_target as f64 / 2.0), "{t}");
    assert!(close(&t["sl_answered"], in_target as f64 / 2.0), "{t}");
    let waits: i64 = answered.iter().map(|c| c.wait_ms.unwrap()).sum();
    assert!(close(&t["asa_secs"], waits as f64 / 2000.0), "{t}");
    let talks: i64 = answered.iter().map(|c| c.talk_ms.unwrap()).sum();
    assert!(close(&t["aht_secs"], talks as f64 / 2000.0), "{t}");
    assert!(
        (1.5..4.0).contains(&(talks as f64 / 2000.0)),
        "about 2 s of talk each: {t}"
    );
    let longest = rows.iter().map(|c| c.wait_ms.unwrap()).max().unwrap();
    assert!(
        close(&t["longest_wait_secs"], longest as f64 / 1000.0),
        "{t}"
    );
    let intervals = queues[0]["intervals"].as_array().unwrap();
    let sum: u64 = intervals
        .iter()
        .map(|i| i["offered"].as_u64().unwrap())
        .sum();
    assert_eq!(sum, 3, "the intervals add up: {q}");

    let a = report(&env, "/api/v1/reports/agents", WALLBOARD_TOKEN);
    assert_eq!(a["period"], q["period"]);
    let agents = a["agents"].as_array().unwrap();
    let ids: Vec<&str> = agents
        .iter()
        .map(|x| x["agent"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["1001", "1002"],
        "configured agents, idle ones too: {a}"
    );
    assert_eq!(agents[0]["answered"], 2, "{a}");
    assert!(close(&agents[0]["talk_secs"], talks as f64 / 1000.0), "{a}");
    assert!(agents[0]["logged_in_secs"].as_f64().unwrap() > 0.0, "{a}");
    assert_eq!(agents[1]["answered"], 0, "{a}");
    assert_eq!(agents[1]["logged_in_secs"], 0.0, "{a}");

    // The API says what `ctid report --format json` says, for the same period.
    let all = cli_json(&env.config, &["--period", "day", "--date", &day]);
    assert_eq!(q["period"], all["period"]);
    assert_eq!(q["interval_minutes"], all["interval_minutes"]);
    assert_eq!(q["queues"], all["queues"], "queues: API vs CLI");
    assert_eq!(a["agents"], all["agents"], "agents: API vs CLI");
    for (period, extra) in [("week", ""), ("month", ""), ("day", "&interval=30")] {
        let path = format!("?period={period}&date={day}{extra}");
        let api_q = report(
            &env,
            &format!("/api/v1/reports/queues{path}"),
            SUPERVISOR_TOKEN,
        );
        let api_a = report(
            &env,
            &format!("/api/v1/reports/agents{path}").replace("&interval=30", ""),
            SUPERVISOR_TOKEN,
        );
        let mut args = vec!["--period", period, "--date", &day];
        if !extra.is_empty() {
            args.extend(["--interval", "30"]);
        }
        let cli_all = cli_json(&env.config, &args);
        assert_eq!(api_q["period"], cli_all["period"], "{period}{extra}");
        assert_eq!(
            api_q["interval_minutes"], cli_all["interval_minutes"],
            "{period}{extra}"
        );
        assert_eq!(api_q["queues"], cli_all["queues"], "{period}{extra}");
        assert_eq!(api_a["agents"], cli_all["agents"], "{period}{extra}");
        assert_eq!(
            api_q["queues"][0]["totals"]["offered"], 3,
            "{period}{extra}"
        );
    }
    assert_eq!(
        report(
            &env,
            &format!("/api/v1/reports/queues?date={day}&interval=30"),
            SUPERVISOR_TOKEN
        )["interval_minutes"],
        30
    );

    // Other formats: the CLI's text, byte for byte (format= or Accept).
    let (status, head, csv) = get(
        &env,
        &format!("/api/v1/reports/queues?date={day}&format=csv"),
        Some(WALLBOARD_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{csv}");
    assert!(head.contains("content-type: text/csv"), "{head}");
    assert_eq!(csv, cli(&env.config, &["--date", &day, "--format", "csv"]));
    assert!(csv.starts_with("queue,interval_start,offered,"), "{csv}");
    let (status, head, md) = get(
        &env,
        &format!("/api/v1/reports/queues?date={day}"),
        Some(WALLBOARD_TOKEN),
        Some("text/markdown"),
    );
    assert_eq!(status, 200, "{md}");
    assert!(head.contains("content-type: text/markdown"), "{head}");
    assert_eq!(
        md,
        cli(
            &env.config,
            &["--date", &day, "--part", "queues", "--format", "md"]
        )
    );
    let (_, _, agents_csv) = get(
        &env,
        &format!("/api/v1/reports/agents?date={day}&format=csv"),
        Some(SUPERVISOR_TOKEN),
        None,
    );
    assert_eq!(
        agents_csv,
        cli(
            &env.config,
            &["--date", &day, "--part", "agents", "--format", "csv"]
        )
    );
    assert_eq!(agents_csv.lines().count(), 3, "{agents_csv}");

    // Who may read what.
    let mine = report(&env, "/api/v1/reports/agents", AGENT_TOKEN);
    let mine = mine["agents"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0], agents[0], "an agent token reads its own figures");
    let (status, _, body) = get(
        &env,
        "/api/v1/reports/agents?agent=1001",
        Some(AGENT_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = get(
        &env,
        "/api/v1/reports/agents?agent=1002",
        Some(AGENT_TOKEN),
        None,
    );
    assert_eq!(status, 403, "another agent's report: {body}");
    assert!(body.contains("\"forbidden\""), "{body}");
    let (status, _, body) = get(&env, "/api/v1/reports/queues", Some(AGENT_TOKEN), None);
    assert_eq!(
        status, 403,
        "queue reports are for supervisors and wallboards: {body}"
    );
    for path in ["/api/v1/reports/queues", "/api/v1/reports/agents"] {
        let (status, head, body) = get(&env, path, None, None);
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert!(head.contains("www-authenticate: bearer"), "{head}");
        let (status, _, body) = get(&env, path, Some("not-a-token-at-all-0000"), None);
        assert_eq!(status, 401, "{path} with an unknown token: {body}");
    }

    // Bad parameters: 400 naming the parameter.
    assert_eq!(
        bad_parameter(&env, "/api/v1/reports/queues?period=year"),
        "period"
    );
    assert_eq!(
        bad_parameter(&env, "/api/v1/reports/agents?period=fortnight"),
        "period"
    );
    assert_eq!(
        bad_parameter(&env, "/api/v1/reports/queues?date=2026-02-30"),
        "date"
    );
    assert_eq!(
        bad_parameter(&env, "/api/v1/reports/queues?interval=10"),
        "interval"
    );
    assert_eq!(
        bad_parameter(&env, "/api/v1/reports/queues?format=xlsx"),
        "format"
    );
    assert_eq!(
        bad_parameter(&env, "/api/v1/reports/queues?agent=1001"),
        "agent"
    );

    // An empty day: zeros, no ratios, no intervals; the idle agents with zeros.
    let empty = report(
        &env,
        "/api/v1/reports/queues?date=2001-01-01",
        SUPERVISOR_TOKEN,
    );
    let t = &empty["queues"][0]["totals"];
    for k in [
        "offered",
        "answered",
        "abandoned",
        "short_abandons",
        "timeouts",
        "overflows",
    ] {
        assert_eq!(t[k], 0, "{k}: {empty}");
    }
    assert!(t["answer_rate"].is_null() && t["sl_offered"].is_null() && t["asa_secs"].is_null());
    assert_eq!(t["missed"], false);
    assert_eq!(empty["queues"][0]["intervals"].as_array().unwrap().len(), 0);
    assert_eq!(
        empty["queues"],
        cli_json(&env.config, &["--date", "2001-01-01"])["queues"]
    );
    let empty = report(
        &env,
        "/api/v1/reports/agents?period=month&date=2001-01-01",
        SUPERVISOR_TOKEN,
    );
    for x in empty["agents"].as_array().unwrap() {
        assert_eq!(x["answered"], 0, "{empty}");
        assert_eq!(x["logged_in_secs"], 0.0, "{empty}");
        assert!(x["occupancy"].is_null(), "{empty}");
    }

    // The daemon kept answering SIP while it built all of this.
    assert_eq!(
        options_probe_udp(daemon.addr, Duration::from_secs(2)),
        Some(200)
    );
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}
