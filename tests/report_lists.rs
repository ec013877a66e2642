//! `ctid report` for callback lists, callback requests, surveys and outbound work, run through
//! the real binary over a database built here with known timestamps: the week of Monday
//! 2026-03-23 in Europe/London, whose Sunday (2026-03-29) is the 23-hour spring-forward day, and
//! an empty Wednesday. The London days are written out in UTC here (GMT before the change, BST
//! after), independent of the report's time-zone code; expectations are counted from the rows.

use serde_json::Value;
use std::path::Path;
use std::process::Command;

const H: i64 = 3_600_000;

fn utc(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
}

/// One attempt row: (started, answered, ended, result, reason, agent).
type Att = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

struct C {
    list: i64,
    created: &'static str,
    state: &'static str,
    updated: &'static str,
    attempts: Vec<Att>,
}

fn contacts() -> Vec<C> {
    let c = |list, created, state, updated, attempts| C {
        list,
        created,
        state,
        updated,
        attempts,
    };
    vec![
        // follow-up list (1)
        c(
            1,
            "2026-03-23T08:00:00Z",
            "done",
            "2026-03-24T10:06:00Z",
            vec![
                (
                    "2026-03-23T09:00:00Z",
                    None,
                    "2026-03-23T09:01:00Z",
                    "no_answer",
                    None,
                    Some("a1"),
                ),
                (
                    "2026-03-24T10:00:00Z",
                    Some("2026-03-24T10:00:10Z"),
                    "2026-03-24T10:05:00Z",
                    "answered",
                    None,
                    Some("a1"),
                ),
            ],
        ),
        c(
            1,
            "2026-03-23T08:00:00Z",
            "skipped",
            "2026-03-24T11:00:00Z",
            vec![(
                "2026-03-24T11:00:00Z",
                None,
                "2026-03-24T11:00:00Z",
                "skipped",
                Some("duplicate"),
                None,
            )],
        ),
        c(
            1,
            "2026-03-23T08:00:00Z",
            "skipped",
            "2026-03-26T09:30:00Z",
            vec![(
                "2026-03-26T09:30:00Z",
                None,
                "2026-03-26T09:30:00Z",
                "skipped",
                Some("do_not_call"),
                None,
            )],
        ),
        c(
            1,
            "2026-03-26T08:00:00Z",
            "unreachable",
            "2026-03-26T12:00:20Z",
            vec![
                (
                    "2026-03-26T10:00:00Z",
                    None,
                    "2026-03-26T10:00:30Z",
                    "busy",
                    None,
                    Some("a2"),
                ),
                (
                    "2026-03-26T11:00:00Z",
                    None,
                    "2026-03-26T11:00:30Z",
                    "no_answer",
                    None,
                    Some("a2"),
                ),
                (
                    "2026-03-26T12:00:00Z",
                    None,
                    "2026-03-26T12:00:20Z",
                    "failed",
                    None,
                    Some("a2"),
                ),
            ],
        ),
        // Answered at 23:30 BST on the DST day; disposition "later": a retry, pending.
        c(
            1,
            "2026-03-28T08:00:00Z",
            "pending",
            "2026-03-29T22:41:00Z",
            vec![(
                "2026-03-29T22:29:50Z",
                Some("2026-03-29T22:30:00Z"),
                "2026-03-29T22:40:00Z",
                "answered",
                None,
                Some("a2"),
            )],
        ),
        c(
            1,
            "2026-03-28T09:00:00Z",
            "done",
            "2026-03-29T10:11:00Z",
            vec![(
                "2026-03-29T10:00:00Z",
                Some("2026-03-29T10:00:05Z"),
                "2026-03-29T10:10:00Z",
                "answered",
                None,
                Some("a1"),
            )],
        ),
        // 00:30 BST on Monday 30th: outside the week.
        c(
            1,
            "2026-03-29T23:30:00Z",
            "done",
            "2026-03-29T23:50:00Z",
            vec![(
                "2026-03-29T23:35:00Z",
                Some("2026-03-29T23:40:00Z"),
                "2026-03-29T23:45:00Z",
                "answered",
                None,
                Some("a1"),
            )],
        ),
        c(
            1,
            "2026-03-29T12:00:00Z",
            "pending",
            "2026-03-29T12:00:00Z",
            vec![],
        ),
        // complaint list (2): replied in 3 h and resolved in 24 h; replied in 13 h and
        // resolved in 72 h; never reached.
        c(
            2,
            "2026-03-23T09:00:00Z",
            "done",
            "2026-03-24T09:00:00Z",
            vec![(
                "2026-03-23T14:59:00Z",
                Some("2026-03-23T15:00:00Z"),
                "2026-03-23T15:10:00Z",
                "answered",
                None,
                Some("a1"),
            )],
        ),
        c(
            2,
            "2026-03-24T09:00:00Z",
            "done",
            "2026-03-27T09:00:00Z",
            vec![(
                "2026-03-24T21:59:00Z",
                Some("2026-03-24T22:00:00Z"),
                "2026-03-24T22:10:00Z",
                "answered",
                None,
                Some("a1"),
            )],
        ),
        c(
            2,
            "2026-03-29T20:00:00Z",
            "pending",
            "2026-03-29T20:00:00Z",
            vec![],
        ),
    ]
}

/// Inbound calls of queue q1: (entered, agent, outcome, survey score).
fn calls() -> Vec<(
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<i64>,
)> {
    vec![
        ("2026-03-29T10:00:00Z", Some("a1"), "answered", Some(5)),
        ("2026-03-29T11:00:00Z", Some("a1"), "answered", Some(3)),
        ("2026-03-29T12:00:00Z", Some("a2"), "answered", Some(4)),
        ("2026-03-29T12:30:00Z", Some("a1"), "answered", None),
        ("2026-03-29T13:00:00Z", None, "callback_requested", None),
        ("2026-03-29T14:00:00Z", None, "abandoned", None),
        // 00:30 BST on the 30th.
        ("2026-03-29T23:30:00Z", None, "callback_requested", None),
    ]
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf) {
    use ctid::outbound::{create_list, ListSpec, Mode, Purpose, RetryDelays, Window};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let conn = ctid::store::open(&data).unwrap();
    let spec = |name: &str, purpose, quota, agent_quota, holidays: Vec<String>| ListSpec {
        name: name.into(),
        purpose,
        agents: vec!["a1".into(), "a2".into()],
        queue: None,
        mode: Mode::Preview,
        time_zone: "Europe/London".into(),
        windows: vec![Window {
            days: vec!["mon-sun".into()],
            start: "09:00".into(),
            end: "17:00".into(),
        }],
        holidays,
        quota_per_day: quota,
        agent_quota_per_day: agent_quota,
        max_attempts: 3,
        retry: RetryDelays::default(),
        dedupe_period_secs: 0,
        priority: 0,
    };
    let created = utc("2026-03-23T07:00:00Z") as u64;
    let follow = create_list(
        &conn,
        &spec(
            "follow",
            Purpose::FollowUp,
            Some(2),
            Some(1),
            vec!["2026-03-27".into()],
        ),
        created,
    )
    .unwrap();
    let complaints = create_list(
        &conn,
        &spec("complaints", Purpose::Complaint, None, None, vec![]),
        created,
    )
    .unwrap();
    assert_eq!((follow.id.0, complaints.id.0), (1, 2));
    for (i, c) in contacts().iter().enumerate() {
        let created = utc(c.created);
        conn.execute(
            "INSERT INTO outbound_contacts (list_id, customer_id, state, attempts, due_at_ms,
               created_at_ms, updated_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            rusqlite::params![
                c.list,
                format!("cust{i}"),
                c.state,
                c.attempts.len() as i64,
                (c.list == 2).then_some(created + 12 * H),
                created,
                utc(c.updated)
            ],
        )
        .unwrap();
        let id = conn.last_insert_rowid();
        for (n, (start, ans, end, result, reason, agent)) in c.attempts.iter().enumerate() {
            let no = (*result != "skipped").then_some(n as i64 + 1);
            conn.execute(
                "INSERT INTO outbound_attempts (list_id, contact_id, attempt_no, agent,
                   started_at_ms, answered_at_ms, ended_at_ms, result, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                rusqlite::params![
                    c.list,
                    id,
                    no,
                    agent,
                    utc(start),
                    ans.map(utc),
                    utc(end),
                    result,
                    reason
                ],
            )
            .unwrap();
        }
    }
    for (i, (entered, agent, outcome, score)) in calls().into_iter().enumerate() {
        let t = utc(entered);
        let answered = (outcome == "answered").then_some(t + 5_000);
        conn.execute(
            "INSERT INTO calls (sip_call_id, direction, queue, entered_at_ms, answered_at_ms,
               ended_at_ms, wait_ms, talk_ms, agent, outcome, answered_in_target, short_abandon,
               survey_score)
             VALUES (?1, 'inbound', 'q1', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10)",
            rusqlite::params![
                format!("c{i}"),
                t,
                answered,
                t + 90_000,
                if answered.is_some() { 5_000 } else { 30_000 },
                answered.map(|_| 60_000),
                agent,
                outcome,
                answered.is_some(),
                score
            ],
        )
        .unwrap();
        if outcome == "callback_requested" {
            conn.execute(
                "INSERT INTO callback_requests (call_id, queue, caller_number, entered_at_ms,
                   requested_at_ms) VALUES (?1, 'q1', '+442079460958', ?2, ?3)",
                rusqlite::params![conn.last_insert_rowid(), t, t + 30_000],
            )
            .unwrap();
        }
    }
    drop(conn);
    let cfg = dir.path().join("ctid.toml");
    std::fs::write(
        &cfg,
        format!(
            "[daemon]\ndata_dir = {:?}\n\n[reports]\ntime_zone = \"Europe/London\"\n\
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
        .arg("report")
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

fn json(cfg: &Path, args: &[&str]) -> Value {
    let mut a = args.to_vec();
    a.extend(["--format", "json"]);
    serde_json::from_str(&ctid(cfg, &a)).unwrap()
}

/// London days of the week in UTC: GMT until the change at 01:00Z on Sunday 29th (a 23 h day).
fn london_days() -> Vec<(&'static str, i64, i64)> {
    let d = |s: &str| utc(&format!("{s}T00:00:00Z"));
    vec![
        ("2026-03-23", d("2026-03-23"), d("2026-03-24")),
        ("2026-03-24", d("2026-03-24"), d("2026-03-25")),
        ("2026-03-25", d("2026-03-25"), d("2026-03-26")),
        ("2026-03-26", d("2026-03-26"), d("2026-03-27")),
        ("2026-03-27", d("2026-03-27"), d("2026-03-28")),
        ("2026-03-28", d("2026-03-28"), d("2026-03-29")),
        ("2026-03-29", d("2026-03-29"), utc("2026-03-29T23:00:00Z")),
    ]
}

/// The additive figures of list `list` in [from, to), counted from the rows.
fn expected_figures(list: i64, from: i64, to: i64) -> Value {
    let all = contacts();
    let cs: Vec<&C> = all.iter().filter(|c| c.list == list).collect();
    let inr = |t: i64| t >= from && t < to;
    let atts = || cs.iter().flat_map(|c| c.attempts.iter());
    let count = |f: &dyn Fn(&Att) -> bool| atts().filter(|a| f(a)).count() as u64;
    let mut retries = 0;
    for c in &cs {
        for (i, a) in c.attempts.iter().enumerate() {
            let later = i + 1 < c.attempts.len();
            if a.3 != "skipped" && inr(utc(a.2)) && (later || c.state == "pending") {
                retries += 1;
            }
        }
    }
    serde_json::json!({
        "contacts_added": cs.iter().filter(|c| inr(utc(c.created))).count(),
        "attempts": count(&|a| a.3 != "skipped" && inr(utc(a.0))),
        "connects": count(&|a| a.1.is_some_and(|t| inr(utc(t)))),
        "completed": cs.iter().filter(|c| c.state == "done" && inr(utc(c.updated))).count(),
        "unreachable": cs.iter().filter(|c| c.state == "unreachable" && inr(utc(c.updated))).count(),
        "skipped_duplicate": count(&|a| a.4 == Some("duplicate") && inr(utc(a.0))),
        "skipped_do_not_call": count(&|a| a.4 == Some("do_not_call") && inr(utc(a.0))),
        "skipped_agent": 0,
        "retries_scheduled": retries,
    })
}

#[test]
fn list_report_of_a_dst_week_matches_the_rows() {
    let (_dir, cfg) = setup();
    let r = json(
        &cfg,
        &[
            "--period",
            "week",
            "--date",
            "2026-03-25",
            "--part",
            "lists",
        ],
    );
    assert_eq!(r.as_object().unwrap().len(), 2, "{{period, lists}}");
    let days = london_days();
    let (from, to) = (days[0].1, days[6].2);
    assert_eq!(r["period"]["start_ms"], from);
    assert_eq!(r["period"]["end_ms"], to);
    let lists = r["lists"].as_array().unwrap();
    let names: Vec<&str> = lists.iter().map(|l| l["list"].as_str().unwrap()).collect();
    assert_eq!(names, ["complaints", "follow"]);
    let follow = &lists[1];
    assert_eq!(
        follow["totals"],
        expected_figures(1, from, to),
        "week totals"
    );
    // By hand as well: the figures the data set was built to give.
    assert_eq!(follow["totals"]["attempts"], 7);
    assert_eq!(follow["totals"]["connects"], 3);
    assert_eq!(follow["totals"]["retries_scheduled"], 4);
    assert_eq!(follow["days"].as_array().unwrap().len(), 7);
    for (i, (date, start, end)) in days.iter().enumerate() {
        let d = &follow["days"][i];
        assert_eq!(d["date"], *date);
        assert_eq!(
            (d["start_ms"].as_i64(), d["end_ms"].as_i64()),
            (Some(*start), Some(*end))
        );
        let want = expected_figures(1, *start, *end);
        for (k, v) in want.as_object().unwrap() {
            assert_eq!(&d[k], v, "{date} {k}");
        }
        // The 27th is a holiday of the list.
        assert_eq!(d["trading_day"], *date != "2026-03-27", "{date}");
    }
    // Quota 2 a day: 1 on the 24th, 2 (reached) on the DST day, 0 elsewhere.
    assert_eq!(follow["days"][6]["connects"], 2);
    assert_eq!(follow["days"][6]["quota_reached"], true);
    assert_eq!(follow["days"][1]["quota_reached"], false);
    assert_eq!(follow["days"][4]["quota_reached"], Value::Null, "holiday");
    assert_eq!(follow["trading_days"], 6);
    assert_eq!(follow["quota_capacity"], 12);
    assert_eq!(follow["quota_use"], 3.0 / 12.0);
    assert_eq!(follow["days_quota_reached"], 1);
    // Contacts the week touched (c7 was added on Monday 30th local), by state now.
    assert_eq!(
        follow["contacts"],
        serde_json::json!({"total": 7, "pending": 2, "in_progress": 0, "done": 2,
                           "unreachable": 1, "skipped": 2})
    );
    assert!(follow["complaints"].is_null());
    let k = &lists[0]["complaints"];
    assert_eq!(k["complaints"], 3);
    assert_eq!(k["replied_in_12h"], 1);
    assert_eq!(k["resolved_in_48h"], 1);
    assert_eq!(k["replied_in_12h_rate"], 1.0 / 3.0);
    assert_eq!(k["resolved_in_48h_rate"], 1.0 / 3.0);
    assert_eq!(
        (
            k["awaiting_reply"].as_u64(),
            k["awaiting_resolution"].as_u64()
        ),
        (Some(0), Some(0))
    );

    // --list filters; the API's lists CSV is the same table as the CLI's.
    let one = json(
        &cfg,
        &[
            "--period",
            "week",
            "--date",
            "2026-03-25",
            "--part",
            "lists",
            "--list",
            "follow",
        ],
    );
    assert_eq!(one["lists"].as_array().unwrap().len(), 1);
    assert_eq!(one["lists"][0], *follow);
    let csv = ctid(
        &cfg,
        &[
            "--period",
            "week",
            "--date",
            "2026-03-25",
            "--part",
            "lists",
            "--format",
            "csv",
        ],
    );
    let rows: Vec<Vec<&str>> = csv.lines().map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 1 + 2 * 8, "{csv}");
    assert!(rows.iter().all(|r| r.len() == rows[0].len()), "{csv}");
    let col = |n: &str| rows[0].iter().position(|h| *h == n).unwrap();
    let total = rows
        .iter()
        .find(|r| r[0] == "follow" && r[1].is_empty())
        .unwrap();
    assert_eq!(total[col("connects")], "3");
    assert_eq!(total[col("retries_scheduled")], "4");
    assert_eq!(total[col("quota_capacity")], "12");
    let dst = rows
        .iter()
        .find(|r| r[0] == "follow" && r[1] == "2026-03-29")
        .unwrap();
    assert_eq!(dst[col("connects")], "2");
    assert_eq!(dst[col("quota_reached")], "1");
    let md = ctid(
        &cfg,
        &[
            "--period",
            "week",
            "--date",
            "2026-03-25",
            "--part",
            "lists",
            "--format",
            "md",
        ],
    );
    assert!(
        md.contains("## Callback lists") && md.contains("## Complaint follow-ups"),
        "{md}"
    );
    assert!(md.contains("| follow | follow_up | 7 |"), "{md}");
    let table = ctid(
        &cfg,
        &[
            "--period",
            "week",
            "--date",
            "2026-03-25",
            "--part",
            "lists",
        ],
    );
    assert!(
        table.contains("3/12 25.0%") || table.contains("3/12 25%"),
        "{table}"
    );
}

#[test]
fn the_dst_day_counts_queues_agents_and_lists_and_an_empty_day_is_zeros() {
    let (_dir, cfg) = setup();
    let r = json(&cfg, &["--date", "2026-03-29"]);
    assert_eq!(
        r["period"]["end_ms"].as_i64().unwrap() - r["period"]["start_ms"].as_i64().unwrap(),
        23 * H
    );
    let q = &r["queues"][0]["totals"];
    // 6 calls entered on the 29th (local); the callback at 00:30 BST on the 30th is not.
    assert_eq!(q["offered"], 6);
    assert_eq!(q["answered"], 4);
    assert_eq!(q["abandoned"], 1);
    assert_eq!(q["callback_requested"], 1);
    assert_eq!(q["callback_requests"], 1);
    assert_eq!(
        q["answer_rate"],
        4.0 / 5.0,
        "callbacks are not in the denominator"
    );
    let next = json(&cfg, &["--date", "2026-03-30", "--part", "queues"]);
    assert_eq!(next["queues"][0]["totals"]["callback_requested"], 1);
    assert_eq!(next["queues"][0]["totals"]["offered"], 1);

    let agents = r["agents"].as_array().unwrap();
    let a = |id: &str| agents.iter().find(|a| a["agent"] == id).unwrap().clone();
    let a1 = a("a1");
    assert_eq!(a1["answered"], 3);
    assert_eq!(a1["survey_responses"], 2);
    assert_eq!(
        a1["survey_by_level"],
        serde_json::json!({"1": 0, "2": 0, "3": 1, "4": 0, "5": 1})
    );
    assert_eq!(a1["survey_avg"], 4.0);
    // a1: c6 dialed and answered on the 29th; a2: c5 (answered 23:30 BST).
    assert_eq!(
        (
            a1["outbound_attempts"].as_u64(),
            a1["outbound_connects"].as_u64()
        ),
        (Some(1), Some(1))
    );
    assert_eq!(a1["outbound_quota"], 1);
    assert_eq!(a1["outbound_quota_use"], 1.0);
    let a2 = a("a2");
    assert_eq!(a2["survey_avg"], 4.0);
    assert_eq!(
        (
            a2["outbound_attempts"].as_u64(),
            a2["outbound_connects"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let l: Vec<&str> = a1["outbound_lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["list"].as_str().unwrap())
        .collect();
    assert_eq!(l, ["complaints", "follow"]);
    // Week: a1 made 3 attempts on follow and 2 on complaints, 2 + 2 connects; quota 1 × 6 days.
    let w = json(
        &cfg,
        &[
            "--period",
            "week",
            "--date",
            "2026-03-29",
            "--part",
            "agents",
            "--agent",
            "a1",
        ],
    );
    let w1 = &w["agents"][0];
    assert_eq!(
        (
            w1["outbound_attempts"].as_u64(),
            w1["outbound_connects"].as_u64()
        ),
        (Some(5), Some(4))
    );
    assert_eq!(w1["outbound_quota"], 6);
    assert_eq!(w1["outbound_quota_use"], 2.0 / 6.0);
    let csv = ctid(
        &cfg,
        &[
            "--date",
            "2026-03-29",
            "--part",
            "agents",
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.lines().next().unwrap().ends_with(
            "survey_avg,outbound_attempts,outbound_connects,outbound_quota,outbound_quota_use"
        ),
        "{csv}"
    );
    let qcsv = ctid(&cfg, &["--date", "2026-03-29", "--format", "csv"]);
    assert!(qcsv.starts_with("queue,interval_start,offered,answered,abandoned,short_abandons,timeouts,overflows,rejected,callback_requested,callback_requests,"), "{qcsv}");

    // The DST day's lists equal the week's last day.
    let d = &r["lists"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["list"] == "follow")
        .unwrap()
        .clone();
    let (_, s, e) = london_days()[6];
    assert_eq!(d["totals"], expected_figures(1, s, e));

    // Wednesday 25th: nothing happened. Zeros, no ratios, in every part and format.
    let empty = json(&cfg, &["--date", "2026-03-25"]);
    assert_eq!(empty["queues"][0]["totals"]["offered"], 0);
    assert!(empty["queues"][0]["totals"]["answer_rate"].is_null());
    for l in empty["lists"].as_array().unwrap() {
        for (k, v) in l["totals"].as_object().unwrap() {
            assert_eq!(v, 0, "{} {k}", l["list"]);
        }
        assert_eq!(l["contacts"]["total"], 0);
    }
    let k = &empty["lists"][0]["complaints"];
    assert_eq!(k["complaints"], 0);
    assert!(k["replied_in_12h_rate"].is_null());
    for a in empty["agents"].as_array().unwrap() {
        assert_eq!(a["survey_responses"], 0);
        assert!(a["survey_avg"].is_null());
        assert_eq!(a["outbound_attempts"], 0);
    }
    for f in ["table", "md", "csv"] {
        for part in ["all", "lists", "agents", "queues"] {
            ctid(
                &cfg,
                &["--date", "2026-03-25", "--part", part, "--format", f],
            );
        }
    }
}
