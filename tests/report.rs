//! `ctid report` and `ctid cdr export` against a generated database, run through the real
//! binary. Expectations are computed here from the generated rows, with the Europe/Berlin day
//! boundaries written out in UTC (independent of the report's time-zone code).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const H: i64 = 3_600_000;
const MIN: i64 = 60_000;

/// Unix ms of a UTC time `YYYY-MM-DDTHH:MM:SSZ`.
fn utc(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

#[derive(Clone, Debug)]
struct Call {
    entered: i64,
    answered_at: Option<i64>,
    ended: Option<i64>,
    wait: i64,
    talk: Option<i64>,
    agent: Option<&'static str>,
    outcome: Option<&'static str>,
    in_target: bool,
    short: bool,
    caller_name: String,
    notes: Option<String>,
}

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// A call entered at `entered` with a random wait, outcome (6 in 10 answered) and agent; the
/// `n`th generated (its caller name).
fn random_call(rng: &mut Lcg, entered: i64, n: usize) -> Call {
    let wait = (rng.next() % 60_000) as i64;
    let agent = if rng.next().is_multiple_of(2) {
        "1001"
    } else {
        "1002"
    };
    let (outcome, answered_at, talk, ag) = match rng.next() % 10 {
        0..=5 => {
            let talk = 30_000 + (rng.next() % 570_000) as i64;
            (
                Some("answered"),
                Some(entered + wait),
                Some(talk),
                Some(agent),
            )
        }
        6 => (Some("abandoned"), None, None, None),
        7 => (Some("timeout"), None, None, None),
        8 => (Some("overflow"), None, None, None),
        _ => (Some("rejected"), None, None, None),
    };
    let ended = Some(answered_at.unwrap_or(entered + wait) + talk.unwrap_or(0));
    Call {
        entered,
        answered_at,
        ended,
        wait,
        talk,
        agent: ag,
        outcome,
        in_target: answered_at.is_some() && wait <= 20_000,
        short: outcome == Some("abandoned") && wait < 5_000,
        caller_name: format!("Caller {n}"),
        notes: None,
    }
}

fn generate() -> Vec<Call> {
    let mut rng = Lcg(42);
    let mut calls = Vec::new();
    // Every ~7 minutes from Thu 2026-03-26 22:00Z to Tue 2026-03-31 00:00Z (Berlin: 26th 23:00
    // CET .. 31st 02:00 CEST), crossing the DST change on Sunday 2026-03-29.
    let mut t = utc("2026-03-26T22:00:00Z");
    let end = utc("2026-03-31T00:00:00Z");
    let mut extra = vec![
        // Around the local midnights of the DST day.
        utc("2026-03-28T22:59:59.999Z"),
        utc("2026-03-28T23:00:00Z"),
        utc("2026-03-29T21:59:59.999Z"),
        utc("2026-03-29T22:00:00Z"),
    ];
    while t < end || !extra.is_empty() {
        let entered = if let Some(e) = extra.pop() {
            e
        } else {
            let e = t;
            t += 4 * MIN + (rng.next() % (6 * MIN as u64)) as i64;
            e
        };
        let n = calls.len();
        calls.push(random_call(&mut rng, entered, n));
    }
    // A call interrupted by a restart after it was answered (counts as answered, no talk), and a
    // live one not yet answered (not counted).
    let e = utc("2026-03-29T09:00:00Z");
    calls.push(Call {
        entered: e,
        answered_at: Some(e + 3_000),
        ended: Some(e + 90_000),
        wait: 3_000,
        talk: None,
        agent: Some("1001"),
        outcome: Some("interrupted"),
        in_target: true,
        short: false,
        caller_name: "Doe, \"Jr\"".into(),
        notes: Some("line 1\r\nline 2".into()),
    });
    calls.push(Call {
        entered: e + MIN,
        answered_at: None,
        ended: None,
        wait: 0,
        talk: None,
        agent: None,
        outcome: None,
        in_target: false,
        short: false,
        caller_name: "Live".into(),
        notes: None,
    });
    calls
}

fn setup(calls: &[Call]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut conn = ctid::store::open(&data).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO calls (sip_call_id, direction, caller_number, caller_name,
                   dialed_number, queue, entered_at_ms, answered_at_ms, ended_at_ms, wait_ms,
                   talk_ms, agent, outcome, answered_in_target, short_abandon, hangup_by, notes)
                 VALUES (?1, 'inbound', '+4930123', ?2, '4000', 'q1', ?3, ?4, ?5, ?6, ?7, ?8,
                   ?9, ?10, ?11, 'caller', ?12)",
            )
            .unwrap();
        for (i, c) in calls.iter().enumerate() {
            ins.execute(rusqlite::params![
                format!("cid-{i}@pbx"),
                c.caller_name,
                c.entered,
                c.answered_at,
                c.ended,
                c.wait,
                c.talk,
                c.agent,
                c.outcome,
                c.answered_at.map(|_| c.in_target),
                c.outcome.map(|_| c.short),
                c.notes,
            ])
            .unwrap();
        }
        let mut s = tx
            .prepare(
                "INSERT INTO agent_sessions (agent, kind, reason, started_at_ms, ended_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .unwrap();
        // 1001: a login across the DST day's start (2 h inside it), one of 8 h, two pauses.
        for (agent, kind, reason, from, to) in [
            (
                "1001",
                "login",
                None,
                "2026-03-28T20:00:00Z",
                "2026-03-29T01:00:00Z",
            ),
            (
                "1001",
                "login",
                None,
                "2026-03-29T06:00:00Z",
                "2026-03-29T14:00:00Z",
            ),
            (
                "1001",
                "pause",
                Some("lunch"),
                "2026-03-29T10:00:00Z",
                "2026-03-29T10:30:00Z",
            ),
            (
                "1001",
                "pause",
                Some("break"),
                "2026-03-29T12:00:00Z",
                "2026-03-29T12:15:00Z",
            ),
        ] {
            s.execute(rusqlite::params![agent, kind, reason, utc(from), utc(to)])
                .unwrap();
        }
    }
    tx.commit().unwrap();
    drop(conn);
    let cfg = dir.path().join("ctid.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndata_dir = {:?}\n\n[reports]\ntime_zone = \"Europe/Berlin\"\n\
             interval_minutes = 60\n\n[[queues]]\nname = \"q1\"\nnumbers = [\"4000\"]\n\
             members = []\nsl_target_secs = 20\nsl_goal_percent = 80\n\
             answer_rate_target_percent = 90\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    (dir, cfg)
}

fn ctid(cfg: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ctid"))
        .args(args)
        .arg("--config")
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn report(cfg: &Path, period: &str, date: &str) -> Value {
    serde_json::from_str(&ctid(
        cfg,
        &[
            "report", "--period", period, "--date", date, "--format", "json",
        ],
    ))
    .unwrap()
}

/// The counted calls (as the report counts them) entered in [from, to).
fn expected(calls: &[Call], from: i64, to: i64) -> Value {
    let sel: Vec<&Call> = calls
        .iter()
        .filter(|c| c.entered >= from && c.entered < to)
        .filter(|c| {
            c.outcome.is_some() && !(c.outcome == Some("interrupted") && c.answered_at.is_none())
        })
        .collect();
    let is = |c: &Call, o: &str| {
        c.outcome == Some(o) || (o == "answered" && c.outcome == Some("interrupted"))
    };
    let n = |o: &str| sel.iter().filter(|c| is(c, o)).count() as f64;
    let offered = sel.len() as f64;
    let answered = n("answered");
    let short = sel.iter().filter(|c| c.short).count() as f64;
    let in_target = sel
        .iter()
        .filter(|c| is(c, "answered") && c.in_target)
        .count() as f64;
    let counted = offered - short;
    let r = |a: f64, b: f64| {
        if b > 0.0 {
            Value::from(a / b)
        } else {
            Value::Null
        }
    };
    let wait_ans: i64 = sel
        .iter()
        .filter(|c| is(c, "answered"))
        .map(|c| c.wait)
        .sum();
    let talks: Vec<i64> = sel
        .iter()
        .filter(|c| c.outcome == Some("answered"))
        .filter_map(|c| c.talk)
        .collect();
    serde_json::json!({
        "offered": offered as u64,
        "answered": answered as u64,
        "abandoned": (n("abandoned") - short) as u64,
        "short_abandons": short as u64,
        "timeouts": n("timeout") as u64,
        "overflows": n("overflow") as u64,
        "rejected": n("rejected") as u64,
        "answered_in_target": in_target as u64,
        "answer_rate": r(answered, counted),
        "sl_offered": r(in_target, counted),
        "sl_answered": r(in_target, answered),
        "asa_secs": r(wait_ans as f64 / 1000.0, answered),
        "aht_secs": r(talks.iter().sum::<i64>() as f64 / 1000.0, talks.len() as f64),
        "longest_wait_secs": sel.iter().map(|c| c.wait).max().map(|w| w as f64 / 1000.0),
    })
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        _ => a == b,
    }
}

fn assert_figures(got: &Value, want: &Value, what: &str) {
    for (k, v) in want.as_object().unwrap() {
        assert!(close(&got[k], v), "{what}: {k}: got {} want {v}", got[k]);
    }
}

#[test]
fn daily_weekly_and_empty_reports_match_the_data() {
    let calls = generate();
    let (_dir, cfg) = setup(&calls);
    // Berlin local days in UTC: CET (+1) until the change on 2026-03-29 01:00Z, CEST (+2) after.
    let days = [
        ("2026-03-27", "2026-03-26T23:00:00Z", "2026-03-27T23:00:00Z"),
        ("2026-03-28", "2026-03-27T23:00:00Z", "2026-03-28T23:00:00Z"),
        ("2026-03-29", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"),
        ("2026-03-30", "2026-03-29T22:00:00Z", "2026-03-30T22:00:00Z"),
    ];
    for (day, from, to) in days {
        let rep = report(&cfg, "day", day);
        assert_eq!(rep["period"]["start_ms"], utc(from), "{day}");
        assert_eq!(rep["period"]["end_ms"], utc(to), "{day}");
        let q = &rep["queues"][0];
        assert_eq!(q["queue"], "q1");
        assert_figures(&q["totals"], &expected(&calls, utc(from), utc(to)), day);
        // The intervals add up to the totals, and each matches its hour of data.
        let ivs = q["intervals"].as_array().unwrap();
        let sum: u64 = ivs.iter().map(|i| i["offered"].as_u64().unwrap()).sum();
        assert_eq!(sum, q["totals"]["offered"].as_u64().unwrap(), "{day}");
        for i in ivs {
            let s = i["start_ms"].as_i64().unwrap();
            assert_figures(
                i,
                &expected(&calls, s, s + H),
                &format!("{day} {}", i["start"]),
            );
        }
    }
    // The DST day has 23 hourly intervals; 02:00 local does not exist.
    let rep = report(&cfg, "day", "2026-03-29");
    let starts: Vec<&str> = rep["queues"][0]["intervals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["start"].as_str().unwrap())
        .collect();
    assert_eq!(starts.len(), 23, "{starts:?}");
    assert_eq!(starts[0], "2026-03-29T00:00:00+01:00");
    assert_eq!(starts[1], "2026-03-29T01:00:00+01:00");
    assert_eq!(starts[2], "2026-03-29T03:00:00+02:00");
    assert_eq!(starts[22], "2026-03-29T23:00:00+02:00");
    let t = &rep["queues"][0]["totals"];
    assert_eq!(
        t["answer_rate_met"],
        Value::from(t["answer_rate"].as_f64().map(|v| v >= 0.9))
    );
    assert_eq!(
        t["sl_offered_met"],
        Value::from(t["sl_offered"].as_f64().map(|v| v >= 0.8))
    );

    // Agents on the DST day: sessions clipped to the day, talk clipped, occupancy.
    let (from, to) = (utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"));
    let a = rep["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "1001")
        .unwrap();
    let mine: Vec<&Call> = calls
        .iter()
        .filter(|c| c.agent == Some("1001") && c.entered >= from && c.entered < to)
        .collect();
    assert_eq!(a["answered"].as_u64().unwrap(), mine.len() as u64);
    let talk: i64 = mine
        .iter()
        .filter_map(|c| c.talk.map(|t| (c.answered_at.unwrap(), t)))
        .map(|(s, t)| ((s + t).min(to) - s.max(from)).max(0))
        .sum();
    assert_eq!(a["logged_in_secs"].as_f64().unwrap(), 10.0 * 3600.0);
    assert_eq!(a["paused_secs"].as_f64().unwrap(), 2700.0);
    assert_eq!(a["pause_by_reason"]["lunch"].as_f64().unwrap(), 1800.0);
    assert_eq!(a["pause_by_reason"]["break"].as_f64().unwrap(), 900.0);
    assert!(close(&a["talk_secs"], &Value::from(talk as f64 / 1000.0)));
    assert!(close(
        &a["occupancy"],
        &Value::from(talk as f64 / (36_000_000.0 - 2_700_000.0))
    ));
    // 1002 has calls but no sessions: no occupancy.
    let b = rep["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent"] == "1002")
        .unwrap();
    assert_eq!(b["logged_in_secs"].as_f64().unwrap(), 0.0);
    assert!(b["occupancy"].is_null());

    // The week of Monday 2026-03-23 ends with the DST Sunday.
    let wk = report(&cfg, "week", "2026-03-27");
    assert_eq!(wk["period"]["first_day"], "2026-03-23");
    assert_eq!(wk["period"]["last_day"], "2026-03-29");
    assert_eq!(wk["interval_minutes"], 60);
    let (from, to) = (utc("2026-03-22T23:00:00Z"), utc("2026-03-29T22:00:00Z"));
    assert_figures(
        &wk["queues"][0]["totals"],
        &expected(&calls, from, to),
        "week",
    );
    // The month: everything generated in March (local).
    let mo = report(&cfg, "month", "2026-03-15");
    let (from, to) = (utc("2026-02-28T23:00:00Z"), utc("2026-03-31T22:00:00Z"));
    assert_figures(
        &mo["queues"][0]["totals"],
        &expected(&calls, from, to),
        "month",
    );

    // An empty day: zeros and no ratios.
    let empty = report(&cfg, "day", "2026-04-02");
    let t = &empty["queues"][0]["totals"];
    assert_eq!(t["offered"], 0);
    assert_eq!(t["answered"], 0);
    assert!(t["answer_rate"].is_null() && t["sl_offered"].is_null() && t["asa_secs"].is_null());
    assert!(t["answer_rate_met"].is_null());
    assert_eq!(empty["queues"][0]["intervals"].as_array().unwrap().len(), 0);
    assert_eq!(empty["agents"].as_array().unwrap().len(), 0);

    // Filters: an unknown queue gives nothing; one agent gives one row.
    let one = serde_json::from_str::<Value>(&ctid(
        &cfg,
        &[
            "report",
            "--date",
            "2026-03-29",
            "--agent",
            "1001",
            "--format",
            "json",
        ],
    ))
    .unwrap();
    assert_eq!(one["agents"].as_array().unwrap().len(), 1);
}

/// Calls around the autumn DST day 2026-10-25 in Berlin (02:00–03:00 local happens twice:
/// first CEST, then CET): one to three per quarter hour from an hour before the local day to an
/// hour after it, plus calls on the last and first millisecond of the day and of the repeated
/// hour.
#[test]
fn half_month_and_quarter_reports_match_the_data() {
    let calls = generate();
    let (_dir, cfg) = setup(&calls);
    // Berlin: March 16th 00:00 CET = 15th 23:00Z; April 1st 00:00 CEST = March 31st 22:00Z;
    // January 1st 00:00 CET = December 31st 23:00Z.
    let cases = [
        (
            "half-month",
            "2026-03-20",
            "2026-03-16",
            "2026-03-31",
            "2026-03-15T23:00:00Z",
            "2026-03-31T22:00:00Z",
        ),
        (
            "half-month",
            "2026-03-15",
            "2026-03-01",
            "2026-03-15",
            "2026-02-28T23:00:00Z",
            "2026-03-15T23:00:00Z",
        ),
        (
            "quarter",
            "2026-02-10",
            "2026-01-01",
            "2026-03-31",
            "2025-12-31T23:00:00Z",
            "2026-03-31T22:00:00Z",
        ),
        (
            "quarter",
            "2026-04-01",
            "2026-04-01",
            "2026-06-30",
            "2026-03-31T22:00:00Z",
            "2026-06-30T22:00:00Z",
        ),
    ];
    for (period, date, first, last, from, to) in cases {
        let what = format!("{period} of {date}");
        let rep = report(&cfg, period, date);
        let p = &rep["period"];
        assert_eq!(
            (
                p["kind"].as_str(),
                p["first_day"].as_str(),
                p["last_day"].as_str()
            ),
            (Some(period), Some(first), Some(last)),
            "{what}: {p}"
        );
        assert_eq!(
            (p["start_ms"].as_i64(), p["end_ms"].as_i64()),
            (Some(utc(from)), Some(utc(to))),
            "{what}"
        );
        let want = expected(&calls, utc(from), utc(to));
        match rep["queues"].as_array().and_then(|q| q.first()) {
            Some(q) => assert_figures(&q["totals"], &want, &what),
            None => assert_eq!(
                want["offered"], 0,
                "{what}: no queue row but calls in range"
            ),
        }
    }
    // The second half of March holds every generated call; the first half none.
    let all = expected(
        &calls,
        utc("2026-03-15T23:00:00Z"),
        utc("2026-03-31T22:00:00Z"),
    );
    assert_eq!(
        all["offered"].as_u64(),
        Some(
            calls
                .iter()
                .filter(|c| c.outcome.is_some()
                    && !(c.outcome == Some("interrupted") && c.answered_at.is_none()))
                .count() as u64
        )
    );
}

fn generate_autumn() -> Vec<Call> {
    let mut rng = Lcg(7);
    let mut calls = Vec::new();
    let quarter = 15 * MIN;
    let mut q = utc("2026-10-24T21:00:00Z");
    while q < utc("2026-10-26T00:00:00Z") {
        for _ in 0..1 + rng.next() % 3 {
            let entered = q + (rng.next() % quarter as u64) as i64;
            let n = calls.len();
            calls.push(random_call(&mut rng, entered, n));
        }
        q += quarter;
    }
    for at in [
        "2026-10-24T21:59:59.999Z",
        "2026-10-24T22:00:00Z",
        "2026-10-25T00:59:59.999Z",
        "2026-10-25T01:00:00Z",
        "2026-10-25T22:59:59.999Z",
        "2026-10-25T23:00:00Z",
    ] {
        let n = calls.len();
        calls.push(random_call(&mut rng, utc(at), n));
    }
    calls
}

/// The figures that count calls; the intervals' must add up to the day's.
const COUNTS: [&str; 8] = [
    "offered",
    "answered",
    "abandoned",
    "short_abandons",
    "timeouts",
    "overflows",
    "rejected",
    "answered_in_target",
];

#[test]
fn autumn_dst_day_has_25_hours_and_its_intervals_add_up() {
    let calls = generate_autumn();
    let (_dir, cfg) = setup(&calls);
    // Berlin 2026-10-25: 00:00 CEST (+2) is 2026-10-24 22:00Z; clocks go back at 01:00Z
    // (03:00 CEST → 02:00 CET); 24:00 CET (+1) is 2026-10-25 23:00Z.
    let (from, to) = (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"));
    let want = expected(&calls, from, to);
    assert!(
        want["offered"].as_u64().unwrap() > 100,
        "the generated day should be busy: {want}"
    );
    for (minutes, n) in [(60, 25), (15, 100)] {
        let rep: Value = serde_json::from_str(&ctid(
            &cfg,
            &[
                "report",
                "--period",
                "day",
                "--date",
                "2026-10-25",
                "--interval",
                &minutes.to_string(),
                "--format",
                "json",
            ],
        ))
        .unwrap();
        let what = format!("2026-10-25, {minutes}-minute intervals");
        assert_eq!(rep["period"]["start_ms"], from, "{what}: {}", rep["period"]);
        assert_eq!(rep["period"]["end_ms"], to, "{what}: {}", rep["period"]);
        let q = &rep["queues"][0];
        assert_figures(&q["totals"], &want, &what);
        let ivs = q["intervals"].as_array().unwrap();
        let starts: Vec<&str> = ivs.iter().map(|i| i["start"].as_str().unwrap()).collect();
        assert_eq!(ivs.len(), n, "{what}: a 25-hour day: {starts:?}");
        let step = i64::from(minutes) * MIN;
        for (k, iv) in ivs.iter().enumerate() {
            // Local wall time of interval k: minutes since local midnight, less the hour
            // repeated once the clocks went back (from 03:00 CEST on, i.e. 25 h - 22 h).
            let since = k as i64 * step;
            let back = since >= 3 * H;
            let wall = (since - if back { H } else { 0 }) / MIN;
            let label = format!(
                "2026-10-25T{:02}:{:02}:00{}",
                wall / 60,
                wall % 60,
                if back { "+01:00" } else { "+02:00" }
            );
            let ctx = format!("{what}, interval {k}: {iv}");
            assert_eq!(iv["start"], label.as_str(), "{ctx}");
            assert_eq!(iv["start_ms"], from + since, "{ctx}");
            assert_figures(
                iv,
                &expected(&calls, from + since, from + since + step),
                &ctx,
            );
        }
        // The two 02:00 hours are both there, told apart by their offsets.
        let twice: Vec<&&str> = starts
            .iter()
            .filter(|s| s.starts_with("2026-10-25T02:00:00"))
            .collect();
        assert_eq!(
            twice,
            [&"2026-10-25T02:00:00+02:00", &"2026-10-25T02:00:00+01:00"],
            "{what}"
        );
        for key in COUNTS {
            let sum: u64 = ivs.iter().map(|i| i[key].as_u64().unwrap()).sum();
            assert_eq!(
                Value::from(sum),
                want[key],
                "{what}: the intervals' {key} add up to {sum}, the day's (from the data) is {}",
                want[key]
            );
        }
    }
}

/// A small RFC 4180 reader (quoted fields may hold `,` `"` CR LF).
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut field) = (Vec::new(), String::new());
    let mut chars = s.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {}
                '\n' => {
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                c => field.push(c),
            }
        }
    }
    assert!(field.is_empty() && row.is_empty(), "trailing data");
    rows
}

#[test]
fn cdr_export_round_trips() {
    let calls = generate();
    let (_dir, cfg) = setup(&calls);
    let (from, to) = (utc("2026-03-27T23:00:00Z"), utc("2026-03-29T22:00:00Z"));
    let want = calls
        .iter()
        .filter(|c| c.entered >= from && c.entered < to)
        .count();
    let out = ctid(
        &cfg,
        &[
            "cdr",
            "export",
            "--from",
            "2026-03-28",
            "--to",
            "2026-03-29",
            "--format",
            "csv",
        ],
    );
    let rows = parse_csv(&out);
    let header = &rows[0];
    assert_eq!(header.join(","), ctid::report::export::COLUMNS.join(","));
    assert_eq!(rows.len() - 1, want);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let doe = rows
        .iter()
        .find(|r| r[col("caller_name")].starts_with("Doe"))
        .unwrap();
    assert_eq!(doe[col("caller_name")], "Doe, \"Jr\"");
    assert_eq!(doe[col("notes")], "line 1\r\nline 2");
    assert_eq!(doe[col("outcome")], "interrupted");
    assert_eq!(doe[col("entered_at")], "2026-03-29T11:00:00+02:00");
    assert!(out.contains("\"Doe, \"\"Jr\"\"\""));
    // Rows come in entry order.
    let entered: Vec<i64> = rows[1..]
        .iter()
        .map(|r| r[col("entered_at_ms")].parse().unwrap())
        .collect();
    assert!(entered.windows(2).all(|w| w[0] <= w[1]));

    let out = ctid(
        &cfg,
        &[
            "cdr",
            "export",
            "--from",
            "2026-03-28",
            "--to",
            "2026-03-29",
            "--format",
            "jsonl",
        ],
    );
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want);
    let doe = lines
        .iter()
        .find(|v| v["caller_name"] == "Doe, \"Jr\"")
        .unwrap();
    assert_eq!(doe["answered_in_target"], true);
    assert_eq!(doe["notes"], "line 1\r\nline 2");
    assert!(doe["talk_ms"].is_null());
}

#[test]
fn markdown_and_table_render() {
    let calls = generate();
    let (_dir, cfg) = setup(&calls);
    let md = ctid(&cfg, &["report", "--date", "2026-03-29", "--format", "md"]);
    assert!(md.contains("| QUEUE | GOALS | OFFERED |"), "{md}");
    assert!(
        md.lines().any(|l| l.starts_with("| --- | --- | ---: |")),
        "{md}"
    );
    assert!(md.contains("| q1 | SL 80%/20s, AR 90% |"), "{md}");
    assert!(md.contains("## Agents"));
    let table = ctid(
        &cfg,
        &["report", "--date", "2026-03-29", "--format", "table"],
    );
    assert!(table.contains("QUEUE") && table.contains("q1"), "{table}");
    let csv = ctid(&cfg, &["report", "--date", "2026-03-29", "--format", "csv"]);
    assert_eq!(parse_csv(&csv).len(), 1 + 1 + 23);
}
