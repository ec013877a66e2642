//! Queue callbacks end to end: callback requests of queue `support` (as the store writes them
//! when a queued caller presses the callback key) are dialed by the progressive dialer for the
//! queue's agent `1001` — SIPp plays the agent's seat (`seat_outbound.xml`) and the PBX trunk with
//! the callers behind it (`trunk_customer_answer.xml`).
//!
//! Checked: the requests become contacts of the queue's `queue_callback` list; the caller who
//! joined the queue first is called back first, and both before a contact of an ordinary list of
//! the same agent that was due a day earlier; the seat is rung with the caller's number and the
//! trunk gets the INVITE to that number only after the seat answered (SIPp's traces and ctid's
//! call events); the requests end `done` with their attempt, visible in `GET /api/v1/callbacks`
//! and apart in the list report (`queue_callbacks`);
//! a request whose number cannot be dialed is `failed` with the reason and never dialed.

use ctid_testkit as common;

use common::{
    db_rows, describe_events, events_of, free_port, http_get, queue_settings, read_events,
    sipp_spawn, six, start_seat, TestEnv,
};
use ctid::outbound::{self, ImportOptions, ListSpec, Mode, Purpose, RetryDelays, Window};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A request row: (call_id, status, attempts, last_result, reason, contact_id).
type Req = (
    i64,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
);

fn requests(env: &TestEnv) -> Vec<Req> {
    db_rows(
        env,
        "SELECT call_id, status, attempts, last_result, reason, contact_id
         FROM callback_requests ORDER BY call_id",
        six,
    )
}

/// Every attempt: (list purpose, number, result, answered, ended, call_id), in claim order.
type Att = (String, String, Option<String>, bool, bool, Option<i64>);

fn attempts(env: &TestEnv) -> Vec<Att> {
    db_rows(
        env,
        "SELECT l.purpose, a.number, a.result, a.answered_at_ms IS NOT NULL,
           a.ended_at_ms IS NOT NULL, a.call_id
         FROM outbound_attempts a JOIN outbound_lists l ON l.id = a.list_id ORDER BY a.id",
        six,
    )
}

fn wait_until<T>(secs: u64, read: impl Fn() -> T, done: impl Fn(&T) -> bool) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = read();
        if done(&v) || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Seconds since midnight of the SIPp trace entries whose text satisfies `want`, in order.
fn entry_times(trace: &str, want: impl Fn(&str) -> bool) -> Vec<f64> {
    let secs = |t: &str| -> Option<f64> {
        let mut p = t.splitn(3, ':');
        let h: f64 = p.next()?.parse().ok()?;
        let m: f64 = p.next()?.parse().ok()?;
        let s: f64 = p.next()?.parse().ok()?;
        Some(h * 3600.0 + m * 60.0 + s)
    };
    trace
        .split("----------------------------------------------- ")
        .filter(|e| want(e))
        .filter_map(|e| e.split_whitespace().nth(1).and_then(secs))
        .collect()
}

#[test]
fn queue_callbacks_are_dialed_oldest_join_first_before_list_contacts() {
    let trunk_port = free_port();
    let mut s = queue_settings(&["1001"], "wrapup_secs = 0");
    s.extra_toml.push_str(&format!(
        "\n[trunk]\nuri = \"sip:127.0.0.1:{trunk_port}\"\nusername = \"trunk\"\npassword = \"tpw\"\nqualify_interval_secs = 0\n\n[outbound]\nenabled = true\ndial_timeout_secs = 5\n"
    ));
    let env = TestEnv::new(&s);
    let daemon = env.start();

    // Before the seat registers: an ordinary list of agent 1001 with a contact due a day ago,
    // and three callback requests of `support` — the newer caller's row written first.
    let conn = ctid::store::open(&env.data_dir).expect("open the test database");
    let t = now_ms();
    let spec = ListSpec {
        name: "follow-ups".into(),
        purpose: Purpose::FollowUp,
        agents: vec!["1001".into()],
        queue: None,
        mode: Mode::Progressive,
        time_zone: "UTC".into(),
        windows: vec![Window {
            days: vec!["mon-sun".into()],
            start: "00:00".into(),
            end: "24:00".into(),
        }],
        holidays: vec![],
        quota_per_day: None,
        agent_quota_per_day: None,
        max_attempts: 3,
        retry: RetryDelays::default(),
        dedupe_period_secs: 0,
        priority: 0,
    };
    let list = outbound::create_list(&conn, &spec, t as u64).expect("create the list");
    let opts = ImportOptions::new(outbound::CountryCode::new("44").unwrap());
    let csv = "customer_id,name,phone\nc1,Alice,07700 900001\n";
    outbound::import_contacts_csv(&conn, list.id, csv.as_bytes(), &opts, t as u64).unwrap();
    conn.execute(
        "UPDATE outbound_contacts SET due_at_ms = ?1 WHERE list_id = ?2",
        rusqlite::params![t - 86_400_000, list.id.0],
    )
    .unwrap();
    for (call, number, joined_secs_ago) in [
        (101, "07700 900012", 60),
        (102, "+447700900011", 120),
        (103, "anonymous", 90),
    ] {
        conn.execute(
            "INSERT INTO callback_requests (call_id, queue, caller_number, caller_name,
               entered_at_ms, position, requested_at_ms)
             VALUES (?1, 'support', ?2, 'Caller', ?3, 1, ?4)",
            rusqlite::params![call, number, t - joined_secs_ago * 1000, t - 30_000],
        )
        .unwrap();
    }
    drop(conn);
    // The dialer takes them up within a reading of its lists (every 2 s).
    let taken = wait_until(
        15,
        || requests(&env),
        |r| r.len() == 3 && r.iter().all(|q| q.5.is_some() || q.1 == "failed"),
    );
    assert!(
        taken.iter().all(|q| q.5.is_some() || q.1 == "failed"),
        "requests not taken up: {taken:?}\n{}",
        daemon.log_tail(40)
    );
    assert!(
        attempts(&env).is_empty(),
        "nothing dialed without a seat: {:?}",
        attempts(&env)
    );

    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_answer.xml",
        &["-m", "3", "-timeout", "60s"],
    );
    let seat = start_seat(
        &dir,
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        60,
    );
    let all_ended = |a: &Vec<Att>| a.len() >= 3 && a.iter().all(|x| x.4);
    let atts = wait_until(45, || attempts(&env), all_ended);
    // A request follows its call's answer (a trigger on the calls row): wait for both to settle.
    let settled =
        |r: &Vec<Req>| r.len() == 3 && r.iter().all(|x| x.1 != "pending" && x.1 != "in_progress");
    let reqs = wait_until(15, || requests(&env), settled);
    let events = read_events(&env);
    let (st, api) = http_get(&env, "/api/v1/callbacks?status=all");
    let (rst, report) = http_get(&env, "/api/v1/reports/lists?list=callbacks-support");
    let seat_trace = seat.messages();
    let trunk_trace = trunk.messages();
    let seat_run = seat.stop(Duration::from_secs(2));
    let trunk_run = trunk.stop(Duration::from_secs(2));
    let story = format!(
        "attempts: {atts:#?}\nrequests: {reqs:#?}\nevents:\n{}\n--- seat ---\n{}\n--- trunk ---\n{}\n--- ctid ---\n{}",
        describe_events(&events),
        seat_run.report,
        trunk_run.report,
        daemon.log_tail(60)
    );

    // Oldest queue entry first, both callbacks before the list contact due a day earlier.
    let order: Vec<(&str, &str, Option<&str>)> = atts
        .iter()
        .map(|a| (a.0.as_str(), a.1.as_str(), a.2.as_deref()))
        .collect();
    assert_eq!(
        order,
        [
            ("queue_callback", "+447700900011", Some("answered")),
            ("queue_callback", "+447700900012", Some("answered")),
            ("follow_up", "+447700900001", Some("answered")),
        ],
        "{story}"
    );
    // The requests: done after their one attempt; the anonymous one failed, never dialed.
    let by_call = |c: i64| reqs.iter().find(|r| r.0 == c).unwrap();
    for call in [101, 102] {
        let (_, status, n, last, reason, contact) = by_call(call);
        assert_eq!(
            (status.as_str(), *n, last.as_deref(), reason.as_deref()),
            ("done", 1, Some("answered"), Some("answered")),
            "request of call {call}\n{story}"
        );
        assert!(contact.is_some(), "{story}");
    }
    let (_, status, n, _, reason, contact) = by_call(103);
    assert_eq!(
        (status.as_str(), *n, *contact),
        ("failed", 0, None),
        "{story}"
    );
    assert!(
        reason
            .as_deref()
            .is_some_and(|r| r.starts_with("invalid_number")),
        "{story}"
    );
    assert!(!trunk_trace.contains("anonymous"), "{story}");

    // ctid's view: the agent answered before the customer was dialed, for every call.
    for a in &atts {
        let call = a.5.expect("attempt linked to its call");
        let ev = events_of(&events, call);
        let at = |kind: &str| {
            ev.iter()
                .find(|e| e.kind == kind)
                .map(|e| e.at_ms)
                .unwrap_or_else(|| panic!("no {kind} event for call {call}\n{story}"))
        };
        assert!(at("agent_answered") <= at("dialing"), "{story}");
    }
    // SIPp's view: the seat was rung with each caller's number, in that order, and each trunk
    // INVITE (the first, CSeq 1) came after the seat's 200 OK to that call's INVITE.
    let seat_froms: Vec<&str> = seat_trace
        .split("----------------------------------------------- ")
        .filter(|e| e.contains("message received") && e.contains("\nINVITE "))
        .filter_map(|e| {
            ["+447700900011", "+447700900012", "+447700900001"]
                .into_iter()
                .find(|n| e.contains(&format!("sip:{n}@")))
        })
        .collect();
    assert_eq!(
        seat_froms,
        ["+447700900011", "+447700900012", "+447700900001"],
        "{story}"
    );
    let answers = entry_times(&seat_trace, |e| {
        e.contains("message sent")
            && e.contains("SIP/2.0 200 OK")
            && e.lines()
                .any(|l| l.starts_with("CSeq:") && l.trim_end().ends_with("INVITE"))
    });
    let invites = entry_times(&trunk_trace, |e| {
        e.contains("message received") && e.contains("\nINVITE ") && e.contains("CSeq: 1 INVITE")
    });
    assert_eq!((answers.len(), invites.len()), (3, 3), "{story}");
    // Two SIPp processes' stamps: the seat stamps its 200 after sendto() returns, and ctid can
    // have dialled and the trunk stamped the INVITE within those microseconds (seen: 54 µs).
    // 1 ms of slack is the stamps' precision; dialling early would show as the seat's ring
    // time (≥ 100 ms in seat_outbound.xml) before its 200.
    for (k, (ans, inv)) in answers.iter().zip(&invites).enumerate() {
        assert!(
            *ans <= inv + 0.001,
            "call {k}: trunk INVITE at {inv:.6} before the seat answered at {ans:.6}\n{story}"
        );
    }
    for (k, n) in ["+447700900011", "+447700900012"].iter().enumerate() {
        let nth = trunk_trace
            .split("----------------------------------------------- ")
            .filter(|e| e.contains("message received") && e.contains("CSeq: 1 INVITE"))
            .nth(k)
            .unwrap_or_default();
        assert!(nth.contains(&format!("INVITE sip:{n}@")), "{story}");
    }

    // The API shows them with their status and the callback list.
    assert_eq!(st, 200, "{api}");
    let v: serde_json::Value = serde_json::from_str(&api).unwrap();
    let support = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "support")
        .unwrap();
    assert_eq!(
        (support["pending"].as_u64(), support["in_progress"].as_u64()),
        (Some(0), Some(0))
    );
    let rows: Vec<(i64, &str, i64, Option<&str>)> = support["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["call_id"].as_i64().unwrap(),
                r["status"].as_str().unwrap(),
                r["attempts"].as_i64().unwrap(),
                r["list"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (102, "done", 1, Some("callbacks-support")),
            (103, "failed", 0, None),
            (101, "done", 1, Some("callbacks-support")),
        ],
        "in the order the callers joined: {v}"
    );
    // The list report has them apart: two requests, both called back.
    assert_eq!(rst, 200, "{report}");
    let r: serde_json::Value = serde_json::from_str(&report).unwrap();
    let l = &r["lists"][0];
    assert_eq!(
        (
            l["purpose"].as_str(),
            l["queue_callbacks"]["requests"].as_u64()
        ),
        (Some("queue_callback"), Some(2)),
        "{r}"
    );
    assert_eq!(l["queue_callbacks"]["called_back"], 2, "{r}");
    daemon.stop();
}
