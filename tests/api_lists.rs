//! The callback-list API end to end on the real daemon: lists, a CSV of 100 contacts with bad
//! rows (good ones imported, each bad one reported by its row number; all-or-nothing imports
//! none), contacts and their pages, the do-not-call list, pause / resume / stop, who may do what
//! (no token, wallboard, an agent and the lists it works), complaint follow-ups in the summary,
//! queue callback requests, the audit rows and the list series on `/metrics`.
//!
//! The dialer is not needed: what it would do (claim a contact for an agent, add a complaint
//! follow-up) is done here through `ctid::outbound` on the daemon's database, as a second
//! connection — exactly what the dialer's own connection is.

use ctid_testkit as common;

use common::api_call as call;
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const WALLBOARD: &str = "test-wallboard-token-0001";
const AGENT: &str = "test-agent-1001-token-001";
const SUP: &str = SUPERVISOR_TOKEN;

/// A daemon with tokens for every role, queue `support` (member 1001) and `[outbound]`.
fn env() -> TestEnv {
    let mut s = Settings::default();
    s.extra_toml.push_str(&format!(
        "\n[[api.tokens]]\ntoken = {WALLBOARD:?}\nrole = \"wallboard\"\n\
         \n[[api.tokens]]\ntoken = {AGENT:?}\nrole = \"agent\"\nagent = \"1001\"\n\
         \n[reports]\ntime_zone = \"Europe/London\"\n\
         \n[[queues]]\nname = \"support\"\nnumbers = [\"4000\"]\nmembers = [{{ agent = \"1001\" }}]\n\
         \n[[queues]]\nname = \"sales\"\nnumbers = [\"4001\"]\nmembers = [{{ agent = \"1002\" }}]\n\
         \n[outbound]\ndefault_country_code = \"44\"\nduplicate_period_days = 7\n\
         complaint_reply_hours = 12\ncomplaint_resolve_hours = 48\n"
    ));
    TestEnv::new(&s)
}

fn get(env: &TestEnv, path: &str, token: Option<&str>) -> (u16, Value) {
    call(env, "GET", path, token, None)
}

fn post_json(env: &TestEnv, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
    call(
        env,
        "POST",
        path,
        token,
        Some(("application/json", &body.to_string())),
    )
}

fn post_csv(env: &TestEnv, path: &str, csv: &str) -> (u16, Value) {
    call(env, "POST", path, Some(SUP), Some(("text/csv", csv)))
}

/// Every day, all day, in London; worked by `agents` and/or `queue`.
fn spec(name: &str, agents: &[&str], queue: Option<&str>) -> Value {
    let mut v = json!({
        "name": name, "purpose": "follow_up", "agents": agents, "mode": "preview",
        "windows": [{"days": ["mon-sun"], "start": "00:00", "end": "24:00"}],
        "quota_per_day": 30
    });
    if let Some(q) = queue {
        v["queue"] = json!(q);
    }
    v
}

fn create(env: &TestEnv, name: &str, agents: &[&str], queue: Option<&str>) -> Value {
    let (st, v) = post_json(env, "/api/v1/lists", Some(SUP), &spec(name, agents, queue));
    assert_eq!(st, 200, "create {name}: {v}");
    v
}

/// The audit rows: (action, target, result), once `done` holds for them (the store writer
/// batches its writes, so the last request's row may land a moment after its reply).
fn audit(
    env: &TestEnv,
    done: impl Fn(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let conn = open_db(env).expect("database");
        let mut stmt = conn
            .prepare("SELECT action, COALESCE(target, ''), result FROM audit ORDER BY id")
            .unwrap();
        let rows: Vec<(String, String, String)> = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// How many audit rows have an action starting with `prefix`.
fn count(rows: &[(String, String, String)], prefix: &str) -> usize {
    rows.iter()
        .filter(|(a, _, _)| a.starts_with(prefix))
        .count()
}

fn errors(v: &Value) -> Vec<String> {
    v["errors"]
        .as_array()
        .or_else(|| v["error"]["errors"].as_array())
        .map(|a| a.iter().map(|e| e.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// 100 data rows (spreadsheet rows 2..=101); the rows in `bad` are broken in different ways.
fn hundred_contacts() -> (String, Vec<(usize, &'static str)>) {
    let mut csv = String::from("customer_id,name,phone,phone2,due_at,plan\n");
    let bad: Vec<(usize, &'static str)> = vec![
        (5, "contains letters"),
        (17, "no phone number"),
        (30, "too short"),
        (44, "already in this list (row 43)"),
        (61, "due_at \"yesterday\""),
        (78, "has 7 cells, the header has 6"),
        (99, "'+' may only come first"),
    ];
    for row in 2..=101usize {
        let n = row - 1;
        let line = match row {
            5 => format!("c{n},Ann {n},020 7946 CALL,,,gold"),
            17 => format!("c{n},Ann {n},,,,gold"),
            30 => format!("c{n},Ann {n},123,,,gold"),
            44 => format!("c{},Ann {n},020 7946 {:04},,,gold", n - 1, n - 1),
            61 => format!("c{n},Ann {n},020 7946 {n:04},,yesterday,gold"),
            78 => format!("c{n},Ann {n},020 7946 {n:04},,,gold,extra"),
            99 => format!("c{n},Ann {n},020+7946 {n:04},,,gold"),
            _ => format!(
                "c{n},Ann {n},020 7946 {n:04},+33 1 23 45 67 {:02},2030-01-02,gold",
                n % 100
            ),
        };
        csv.push_str(&line);
        csv.push('\n');
    }
    (csv, bad)
}

#[test]
fn a_csv_of_100_contacts_with_bad_rows() {
    let env = env();
    let daemon = env.start();
    let created = create(&env, "follow-up", &["1001"], None);
    assert_eq!(created["state"], "active");
    assert_eq!(
        created["spec"]["time_zone"], "Europe/London",
        "[reports] time_zone"
    );
    assert_eq!(
        created["spec"]["dedupe_period_secs"],
        7 * 86_400,
        "[outbound] duplicate_period_days"
    );
    let (csv, bad) = hundred_contacts();

    // All or nothing: nothing is imported, every bad row is named.
    let (st, v) = post_csv(
        &env,
        "/api/v1/lists/follow-up/contacts?all_or_nothing=true",
        &csv,
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(v["error"]["code"], "bad_rows");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("7 of 100 rows are bad"),
        "{v}"
    );
    let errs = errors(&v);
    assert_eq!(errs.len(), bad.len(), "{errs:#?}");
    let (_, list) = get(&env, "/api/v1/lists/follow-up", Some(SUP));
    assert_eq!(list["counters"]["contacts"]["pending"], 0, "{list}");

    // Without it: the 93 good rows are imported, each bad row reported with its number.
    let (st, v) = post_csv(&env, "/api/v1/lists/follow-up/contacts", &csv);
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (v["rows"].as_u64(), v["imported"].as_u64()),
        (Some(100), Some(93))
    );
    let errs = errors(&v);
    assert_eq!(errs.len(), bad.len(), "{errs:#?}");
    for ((row, why), err) in bad.iter().zip(&errs) {
        assert!(
            err.starts_with(&format!("row {row}: ")) && err.contains(why),
            "row {row} should be reported for {why:?}: {err}"
        );
    }
    let (_, list) = get(&env, "/api/v1/lists/follow-up", Some(SUP));
    let c = &list["counters"];
    assert_eq!(c["contacts"]["pending"], 93, "{list}");
    assert_eq!(c["quota_per_day"], 30);
    assert_eq!(c["quota_used_today"], 0);

    // Importing the same file again: every row is already pending.
    let (st, v) = post_csv(&env, "/api/v1/lists/follow-up/contacts", &csv);
    assert_eq!(st, 400, "{v}");
    assert!(errors(&v)[0].contains("already pending"), "{v}");

    // JSON works too, rows numbered from 1.
    let (st, v) = post_json(
        &env,
        "/api/v1/lists/follow-up/contacts",
        Some(SUP),
        &json!([
            {"customer_id": "j1", "phone": ["0161 496 0000", "+1 212 555 0100"], "fields": {"tier": "vip"}},
            {"customer_id": "j2", "phone": "not a number"}
        ]),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["imported"], 1);
    assert_eq!(errors(&v).len(), 1);
    assert!(errors(&v)[0].starts_with("row 2: "), "{v}");

    // Pages of contacts, in import order; filters.
    let (st, p1) = get(&env, "/api/v1/lists/follow-up/contacts?limit=50", Some(SUP));
    assert_eq!(st, 200, "{p1}");
    let contacts = p1["contacts"].as_array().unwrap();
    assert_eq!(contacts.len(), 50);
    assert_eq!(contacts[0]["customer_id"], "c1");
    assert_eq!(
        contacts[0]["phones"],
        json!(["+442079460001", "+33123456701"])
    );
    assert_eq!(contacts[0]["fields"]["plan"], "gold");
    let cursor = p1["next_cursor"]
        .as_str()
        .expect("a second page")
        .to_string();
    let (_, p2) = get(
        &env,
        &format!("/api/v1/lists/follow-up/contacts?limit=50&cursor={cursor}"),
        Some(SUP),
    );
    assert_eq!(p2["contacts"].as_array().unwrap().len(), 44);
    assert!(p2["next_cursor"].is_null());
    let (_, done) = get(
        &env,
        "/api/v1/lists/follow-up/contacts?state=done",
        Some(SUP),
    );
    assert_eq!(done["contacts"], json!([]));
    let (st, v) = get(
        &env,
        "/api/v1/lists/follow-up/contacts?state=open",
        Some(SUP),
    );
    assert_eq!((st, v["error"]["parameter"].as_str()), (400, Some("state")));

    // One contact with its attempts.
    let id = contacts[0]["id"].as_i64().unwrap();
    let (st, one) = get(
        &env,
        &format!("/api/v1/lists/follow-up/contacts/{id}"),
        Some(SUP),
    );
    assert_eq!(st, 200, "{one}");
    assert_eq!(one["contact"]["state"], "pending");
    assert_eq!(one["attempts"], json!([]));
    let (st, _) = get(&env, "/api/v1/lists/follow-up/contacts/999999", Some(SUP));
    assert_eq!(st, 404);
    let (st, _) = get(&env, "/api/v1/lists/nope/contacts", Some(SUP));
    assert_eq!(st, 404);

    // A bad header: the whole file is refused.
    let (st, v) = post_csv(
        &env,
        "/api/v1/lists/follow-up/contacts",
        "name,email\nA,a@x\n",
    );
    assert_eq!(st, 400, "{v}");
    assert!(errors(&v)[0].starts_with("row 1: "), "{v}");
    // Neither CSV nor JSON.
    let (st, v) = call(
        &env,
        "POST",
        "/api/v1/lists/follow-up/contacts",
        Some(SUP),
        Some(("application/xml", "<a/>")),
    );
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );

    // The list's series are on /metrics from its creation.
    let (_, metrics) = http_request(&env, "GET", "/metrics", None, None);
    for series in [
        r#"ctid_callback_attempts_total{list="follow-up",result="answered"} 0"#,
        r#"ctid_callback_dials_total{list="follow-up"} 0"#,
        r#"ctid_callback_contacts_pending{list="follow-up"}"#,
        "ctid_complaints_past_reply 0",
    ] {
        assert!(metrics.contains(series), "{series} missing:\n{metrics}");
    }

    let a = audit(&env, |a| count(a, "list.import") >= 6);
    let imports: Vec<&(String, String, String)> = a
        .iter()
        .filter(|(act, _, _)| act == "list.import")
        .collect();
    assert_eq!(imports.len(), 6, "{a:?}");
    assert_eq!(
        (imports[0].1.as_str(), imports[0].2.as_str()),
        ("follow-up", "bad_rows")
    );
    assert_eq!(imports[1].2, "ok");
    assert!(a.contains(&("list.create".into(), "follow-up".into(), "ok".into())));
    daemon.stop();
}

#[test]
fn do_not_call_add_check_remove_import() {
    let env = env();
    let daemon = env.start();
    let (st, v) = post_json(
        &env,
        "/api/v1/dnc",
        Some(SUP),
        &json!({"number": "020 7946 0958", "source": "customer asked"}),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["number"], "+442079460958");
    assert_eq!(v["on_list"], true);
    assert_eq!(v["source"], "customer asked");
    // Checked in any spelling; agents may check.
    for (path, token) in [
        ("/api/v1/dnc/%2B442079460958", SUP),
        ("/api/v1/dnc/02079460958", AGENT),
        ("/api/v1/dnc/0044%2020%207946%200958", SUP),
    ] {
        let (st, v) = get(&env, path, Some(token));
        assert_eq!(
            (st, v["on_list"].as_bool()),
            (200, Some(true)),
            "{path}: {v}"
        );
    }
    let (st, v) = get(&env, "/api/v1/dnc/02079460959", Some(SUP));
    assert_eq!((st, v["on_list"].as_bool()), (200, Some(false)));
    // Bad input names the field.
    let (st, v) = post_json(
        &env,
        "/api/v1/dnc",
        Some(SUP),
        &json!({"number": "call me"}),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(
        (v["error"]["code"].as_str(), v["error"]["field"].as_str()),
        (Some("bad_input"), Some("number"))
    );
    let (st, v) = post_json(&env, "/api/v1/dnc", Some(SUP), &json!({"numbr": "x"}));
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("numbr")),
        "{v}"
    );
    let (st, v) = get(&env, "/api/v1/dnc/12", Some(SUP));
    assert_eq!((st, v["error"]["field"].as_str()), (400, Some("number")));
    // Roles.
    let (st, _) = post_json(
        &env,
        "/api/v1/dnc",
        Some(AGENT),
        &json!({"number": "+442079460001"}),
    );
    assert_eq!(st, 403);
    let (st, _) = get(&env, "/api/v1/dnc/02079460958", Some(WALLBOARD));
    assert_eq!(st, 403);
    let (st, _) = get(&env, "/api/v1/dnc/02079460958", None);
    assert_eq!(st, 401);

    // Remove.
    let (st, v) = call(
        &env,
        "DELETE",
        "/api/v1/dnc/%2B442079460958",
        Some(SUP),
        None,
    );
    assert_eq!((st, v["removed"].as_bool()), (200, Some(true)), "{v}");
    let (_, v) = call(
        &env,
        "DELETE",
        "/api/v1/dnc/%2B442079460958",
        Some(SUP),
        None,
    );
    assert_eq!(v["removed"], false);
    let (_, v) = get(&env, "/api/v1/dnc/%2B442079460958", Some(SUP));
    assert_eq!(v["on_list"], false);

    // Import: CSV with a bad row, then JSON all-or-nothing with a bad one.
    let (st, v) = post_csv(
        &env,
        "/api/v1/dnc/import?source=regulator",
        "Name,Number\nA,020 7946 0001\nB,call me\nC,+44 20 7946 0002\n",
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["imported"], 2);
    assert_eq!(errors(&v), ["row 3: \"call me\": contains letters"]);
    let (_, v) = get(&env, "/api/v1/dnc/02079460002", Some(SUP));
    assert_eq!(
        (v["on_list"].as_bool(), v["source"].as_str()),
        (Some(true), Some("regulator"))
    );
    let (st, v) = post_json(
        &env,
        "/api/v1/dnc/import?all_or_nothing=true",
        Some(SUP),
        &json!(["0113 496 0000", "x"]),
    );
    assert_eq!(st, 400, "{v}");
    assert_eq!(errors(&v), ["row 2: \"x\": contains letters"]);
    let (_, v) = get(&env, "/api/v1/dnc/01134960000", Some(SUP));
    assert_eq!(v["on_list"], false);

    let a = audit(&env, |a| count(a, "dnc.") >= 8);
    let kinds: Vec<(&str, &str)> = a
        .iter()
        .filter(|(act, _, _)| act.starts_with("dnc."))
        .map(|(act, _, res)| (act.as_str(), res.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("dnc.add", "ok"),
            ("dnc.add", "bad_input"),
            ("dnc.add", "bad_input"),
            ("dnc.add", "forbidden"),
            ("dnc.remove", "ok"),
            ("dnc.remove", "ok"),
            ("dnc.import", "ok"),
            ("dnc.import", "bad_rows"),
        ]
    );
    daemon.stop();
}

#[test]
fn pause_resume_stop_and_bad_specs() {
    let env = env();
    let daemon = env.start();
    create(&env, "survey", &[], Some("support"));
    for (verb, state) in [
        ("pause", "paused"),
        ("pause", "paused"),
        ("resume", "active"),
    ] {
        let (st, v) = post_json(
            &env,
            &format!("/api/v1/lists/survey/{verb}"),
            Some(SUP),
            &json!({}),
        );
        assert_eq!((st, v["state"].as_str()), (200, Some(state)), "{verb}: {v}");
    }
    let (st, v) = call(&env, "POST", "/api/v1/lists/survey/stop", Some(SUP), None);
    assert_eq!((st, v["state"].as_str()), (200, Some("stopped")), "{v}");
    let (st, v) = call(&env, "POST", "/api/v1/lists/survey/resume", Some(SUP), None);
    assert_eq!(
        (st, v["error"]["code"].as_str()),
        (409, Some("conflict")),
        "{v}"
    );
    let (st, v) = post_csv(
        &env,
        "/api/v1/lists/survey/contacts",
        "phone\n02079460001\n",
    );
    assert_eq!(st, 409, "a stopped list takes no contacts: {v}");
    let (st, _) = call(&env, "POST", "/api/v1/lists/nope/pause", Some(SUP), None);
    assert_eq!(st, 404);
    let (st, v) = get(&env, "/api/v1/lists", Some(WALLBOARD));
    assert_eq!(st, 200);
    assert_eq!(v["lists"][0]["name"], "survey");
    assert_eq!(v["lists"][0]["state"], "stopped");

    // A duplicate name is a conflict; bad specs are 400s naming the field.
    let (st, _) = post_json(
        &env,
        "/api/v1/lists",
        Some(SUP),
        &spec("survey", &["1001"], None),
    );
    assert_eq!(st, 409);
    let mut s = spec("x", &["1001"], None);
    s["quota"] = json!(3);
    let (st, v) = post_json(&env, "/api/v1/lists", Some(SUP), &s);
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("quota")),
        "{v}"
    );
    let mut s = spec("x", &["1001"], None);
    s["windows"][0]["end"] = json!("25:00");
    s["max_attempts"] = json!(0);
    let (st, v) = post_json(&env, "/api/v1/lists", Some(SUP), &s);
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("windows")),
        "{v}"
    );
    assert_eq!(errors(&v).len(), 2, "every problem listed: {v}");
    let (st, v) = post_json(
        &env,
        "/api/v1/lists",
        Some(SUP),
        &spec("x", &["9999"], None),
    );
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("agents")),
        "{v}"
    );
    let (st, v) = post_json(
        &env,
        "/api/v1/lists",
        Some(SUP),
        &spec("x", &[], Some("nowhere")),
    );
    assert_eq!(
        (st, v["error"]["field"].as_str()),
        (400, Some("queue")),
        "{v}"
    );
    let (st, v) = call(
        &env,
        "POST",
        "/api/v1/lists",
        Some(SUP),
        Some(("application/json", "{not json")),
    );
    assert_eq!((st, v["error"]["code"].as_str()), (400, Some("bad_json")));

    let a = audit(&env, |a| {
        a.iter()
            .filter(|(act, t, _)| act.starts_with("list.") && t == "survey")
            .count()
            >= 8
    });
    let changes: Vec<(&str, &str)> = a
        .iter()
        .filter(|(act, t, _)| act.starts_with("list.") && t == "survey")
        .map(|(act, _, res)| (act.as_str(), res.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("list.create", "ok"),
            ("list.pause", "ok"),
            ("list.pause", "ok"),
            ("list.resume", "ok"),
            ("list.stop", "ok"),
            ("list.resume", "conflict"),
            ("list.import", "conflict"),
            ("list.create", "conflict"),
        ]
    );
    daemon.stop();
}

#[test]
fn who_may_do_what() {
    let env = env();
    let daemon = env.start();
    // No token: 401 on reads and writes.
    for (m, p) in [("GET", "/api/v1/lists"), ("POST", "/api/v1/lists")] {
        let (st, _) = call(&env, m, p, None, None);
        assert_eq!(st, 401, "{m} {p}");
    }
    // A wallboard reads but cannot create.
    let (st, v) = post_json(
        &env,
        "/api/v1/lists",
        Some(WALLBOARD),
        &spec("w", &["1001"], None),
    );
    assert_eq!((st, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (st, _) = post_json(
        &env,
        "/api/v1/lists",
        Some(AGENT),
        &spec("w", &["1001"], None),
    );
    assert_eq!(st, 403);

    create(&env, "mine", &["1001"], None);
    create(&env, "my-queue", &[], Some("support"));
    create(&env, "theirs", &["1002"], Some("sales"));
    for name in ["mine", "theirs"] {
        let csv = if name == "mine" {
            "customer_id,phone\nm1,02079460101\nm2,02079460102\n"
        } else {
            "customer_id,phone\nt1,02079460201\n"
        };
        let (st, v) = post_csv(&env, &format!("/api/v1/lists/{name}/contacts"), csv);
        assert_eq!(st, 200, "{v}");
    }

    // The agent sees the lists it works (named, or through its queue), not the others.
    let (st, v) = get(&env, "/api/v1/lists", Some(AGENT));
    assert_eq!(st, 200);
    let names: Vec<&str> = v["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine", "my-queue"]);
    let (st, _) = get(&env, "/api/v1/lists/mine", Some(AGENT));
    assert_eq!(st, 200);
    for path in [
        "/api/v1/lists/theirs",
        "/api/v1/lists/theirs/contacts",
        "/api/v1/lists/theirs/contacts/3",
    ] {
        let (st, v) = get(&env, path, Some(AGENT));
        assert_eq!(st, 403, "{path}: {v}");
    }
    let (st, _) = call(&env, "POST", "/api/v1/lists/mine/pause", Some(AGENT), None);
    assert_eq!(st, 403);
    let (st, _) = get(&env, "/api/v1/lists/mine/contacts", Some(WALLBOARD));
    assert_eq!(st, 403, "no customer data on a wallboard");
    let (st, _) = get(&env, "/api/v1/lists/nope", Some(AGENT));
    assert_eq!(st, 404);

    // Only the contacts it was offered: none yet, then the one the dialer gave it.
    let (_, v) = get(&env, "/api/v1/lists/mine/contacts", Some(AGENT));
    assert_eq!(v["contacts"], json!([]));
    let conn = ctid::store::open(&env.data_dir).unwrap();
    let list = ctid::outbound::get_list_by_name(&conn, "mine").unwrap();
    let now = jiff::Timestamp::now().as_millisecond() as u64;
    let ctid::outbound::Decision::Dial { contact, .. } =
        ctid::outbound::next_contact(&conn, list.id, "1001", now).unwrap()
    else {
        panic!("nothing to dial");
    };
    let (_, v) = get(&env, "/api/v1/lists/mine/contacts", Some(AGENT));
    assert_eq!(v["contacts"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["contacts"][0]["id"], contact.id.0);
    assert_eq!(v["contacts"][0]["state"], "in_progress");
    let (st, v) = get(
        &env,
        &format!("/api/v1/lists/mine/contacts/{}", contact.id),
        Some(AGENT),
    );
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["attempts"][0]["agent"], "1001");
    let (st, _) = get(
        &env,
        &format!("/api/v1/lists/mine/contacts/{}", contact.id.0 + 1),
        Some(AGENT),
    );
    assert_eq!(st, 403, "not offered to it");
    let (_, v) = get(&env, "/api/v1/lists/mine", Some(SUP));
    assert_eq!(v["counters"]["contacts"]["in_progress"], 1, "{v}");
    assert_eq!(v["counters"]["live"], 1);
    daemon.stop();
}

#[test]
fn complaints_and_queue_callbacks() {
    let env = env();
    let daemon = env.start();
    let (st, v) = get(&env, "/api/v1/complaints/summary", Some(WALLBOARD));
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        (
            v["open"].as_u64(),
            v["past_reply"].as_u64(),
            v["past_resolve"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(v["reply_within_hours"], 12);

    // A call dispositioned `complaint` 13 h ago gets its follow-up (as the dialer will do).
    let cfg = ctid::config::Config::load(&env.config).unwrap();
    let conn = ctid::store::open(&env.data_dir).unwrap();
    let now = jiff::Timestamp::now().as_millisecond() as u64;
    let settings = cfg
        .outbound
        .complaint_settings("Europe/London", Some("support"));
    let f = ctid::outbound::complaint_follow_up(
        &conn,
        &settings,
        4711,
        "020 7946 0958",
        Some("Ann"),
        now - 13 * 3_600_000,
    )
    .unwrap();
    assert!(f.list_created);
    for token in [SUP, WALLBOARD, AGENT] {
        let (st, v) = get(&env, "/api/v1/complaints/summary", Some(token));
        assert_eq!(st, 200);
        assert_eq!(
            (
                v["open"].as_u64(),
                v["past_reply"].as_u64(),
                v["past_resolve"].as_u64()
            ),
            (Some(1), Some(1), Some(0)),
            "{v}"
        );
    }
    let (st, v) = get(&env, "/api/v1/complaints", Some(SUP));
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["complaints"][0]["call_id"], 4711);
    assert_eq!(v["complaints"][0]["number"], "+442079460958");
    assert_eq!(v["complaints"][0]["list_name"], "complaints");
    assert_eq!(v["open"], 1);
    let (st, _) = get(&env, "/api/v1/complaints", Some(WALLBOARD));
    assert_eq!(st, 403);
    // The complaint list is a list like any other: its queue's agent works it.
    let (_, v) = get(&env, "/api/v1/lists", Some(AGENT));
    assert_eq!(v["lists"][0]["name"], "complaints", "{v}");
    assert_eq!(v["lists"][0]["spec"]["purpose"], "complaint");

    // Queue callback requests, in the order the callers joined.
    for (id, queue, number, entered) in [
        (1, "support", "+442079460003", 3000),
        (2, "support", "+442079460001", 1000),
        (3, "sales", "+442079460002", 2000),
    ] {
        conn.execute(
            "INSERT INTO callback_requests (call_id, queue, caller_number, entered_at_ms,
               position, requested_at_ms) VALUES (?1, ?2, ?3, ?4, 2, ?4 + 500)",
            rusqlite::params![id, queue, number, entered],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO callback_requests (call_id, queue, caller_number, entered_at_ms,
           requested_at_ms, status) VALUES (9, 'support', '+442079460009', 10, 20, 'done')",
        [],
    )
    .unwrap();
    let (st, v) = get(&env, "/api/v1/callbacks", Some(SUP));
    assert_eq!(st, 200, "{v}");
    let support = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "support")
        .unwrap();
    assert_eq!(support["pending"], 2);
    let order: Vec<i64> = support["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["call_id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, [2, 1], "the caller who joined first comes first");
    let (_, v) = get(&env, "/api/v1/callbacks", Some(AGENT));
    let queues: Vec<&str> = v["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["queue"].as_str().unwrap())
        .collect();
    assert_eq!(queues, ["support"], "an agent sees its own queues");
    let (st, _) = get(&env, "/api/v1/callbacks?queue=sales", Some(AGENT));
    assert_eq!(st, 403);
    let (_, v) = get(&env, "/api/v1/callbacks?queue=sales", Some(WALLBOARD));
    assert_eq!(v["queues"][0]["pending"], 1);
    assert!(v["queues"][0].get("requests").is_none(), "counts only: {v}");
    let (st, v) = get(&env, "/api/v1/callbacks?queu=sales", Some(SUP));
    assert_eq!((st, v["error"]["parameter"].as_str()), (400, Some("queu")));
    daemon.stop();
}
