//! Preview dialing end to end: SIPp plays the PBX trunk with the customer behind it
//! (`tests/sipp/trunk_customer_answer.xml`, digest-challenged) and agent 1001's seat
//! (`tests/sipp/seat_outbound.xml`); the list, its contacts and the agent's decisions go through
//! the HTTP API, as an agent desktop would send them.
//!
//! Checked: a contact of a preview list is shown to the free agent (with its free fields) and
//! nothing is dialed while it is shown; the agent is held for it (no inbound offer); a skip is
//! stored as a skip (not a dial attempt), the contact comes back only after the list's
//! no-answer delay, and the agent is shown the next contact; accepting rings the agent and then
//! dials the customer through the trunk, stored as an answered attempt and an outbound call;
//! an agent token cannot act on another agent's preview; a preview nobody acts on goes back
//! after `preview_timeout_secs` and the agent is paused `no_answer`.

use ctid_testkit as common;

use common::outbound::{now_ms, outbound_calls};
use common::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const SUP: &str = SUPERVISOR_TOKEN;
const AGENT_1002: &str = "test-agent-1002-token-001";
/// The list's delay before an unanswered (or skipped) contact is tried again.
const NO_ANSWER_SECS: u64 = 3600;

/// Agents 1001 and 1002 in queue `support`, the trunk at 127.0.0.1:`trunk_port` (user `trunk`,
/// password `tpw`), outbound dialing on, previews going back after `preview_timeout_secs`.
fn env(trunk_port: u16, preview_timeout_secs: u64) -> TestEnv {
    let mut s = queue_settings(&["1001", "1002"], "wrapup_secs = 0");
    s.extra_toml.push_str(&format!(
        "\n[[api.tokens]]\ntoken = {AGENT_1002:?}\nrole = \"agent\"\nagent = \"1002\"\n\
         \n[trunk]\nuri = \"sip:127.0.0.1:{trunk_port}\"\nusername = \"trunk\"\npassword = \"tpw\"\nqualify_interval_secs = 0\n\
         \n[outbound]\nenabled = true\ndial_timeout_secs = 10\npreview_timeout_secs = {preview_timeout_secs}\n"
    ));
    TestEnv::new(&s)
}

/// A preview list worked by agent 1001, open all day every day, with `contacts` imported as CSV
/// (customer id, name, national number, a free `order` field).
fn make_list(env: &TestEnv, name: &str, contacts: &[(&str, &str, &str, &str)]) {
    let spec = json!({
        "name": name, "purpose": "follow_up", "agents": ["1001"], "mode": "preview",
        "time_zone": "UTC",
        "windows": [{"days": ["mon-sun"], "start": "00:00", "end": "24:00"}],
        "max_attempts": 3,
        "retry": {"busy_secs": 600, "no_answer_secs": NO_ANSWER_SECS, "failed_secs": 600},
        "dedupe_period_secs": 0
    });
    let (st, v) = api_call(
        env,
        "POST",
        "/api/v1/lists",
        Some(SUP),
        Some(("application/json", &spec.to_string())),
    );
    assert_eq!(st, 200, "create the list: {v}");
    let mut csv = String::from("customer_id,name,phone,order\n");
    for (id, n, phone, order) in contacts {
        csv.push_str(&format!("{id},{n},{phone},{order}\n"));
    }
    let (st, v) = api_call(
        env,
        "POST",
        &format!("/api/v1/lists/{name}/contacts"),
        Some(SUP),
        Some(("text/csv", &csv)),
    );
    assert_eq!(st, 200, "import: {v}");
    assert_eq!(v["imported"], contacts.len(), "import: {v}");
}

/// `GET /api/v1/agents/{agent}/preview` as the supervisor: the `preview` object (or null).
fn preview_of(env: &TestEnv, agent: &str) -> Value {
    let (st, v) = api_call(
        env,
        "GET",
        &format!("/api/v1/agents/{agent}/preview"),
        Some(SUP),
        None,
    );
    assert_eq!(st, 200, "preview of {agent}: {v}");
    assert_eq!(v["agent"], agent, "{v}");
    v["preview"].clone()
}

/// Poll until `want` holds for agent 1001's preview (at most `secs`); the last one seen.
fn wait_preview(env: &TestEnv, secs: u64, want: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let p = preview_of(env, "1001");
        if want(&p) || Instant::now() > deadline {
            return p;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn post(env: &TestEnv, path: &str, token: &str) -> (u16, Value) {
    api_call(
        env,
        "POST",
        path,
        Some(token),
        Some(("application/json", "{}")),
    )
}

/// (customer id, result, reason, attempt_no, sip_code, ended) of every attempt, in order.
type Attempt = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn attempts(env: &TestEnv) -> Vec<Attempt> {
    db_rows(
        env,
        "SELECT c.customer_id, a.result, a.reason, a.attempt_no, a.sip_code, a.ended_at_ms
         FROM outbound_attempts a JOIN outbound_contacts c ON c.id = a.contact_id ORDER BY a.id",
        six,
    )
}

/// (state, attempts, next_attempt_at_ms) of the contact with `customer_id`.
fn contact(env: &TestEnv, customer_id: &str) -> (String, i64, Option<i64>) {
    let c = open_db(env).expect("database");
    c.query_row(
        "SELECT state, attempts, next_attempt_at_ms FROM outbound_contacts WHERE customer_id = ?1",
        [customer_id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("the contact")
}

/// Agent 1001's phone (registered), answering ctid's outbound calls, for at most a minute.
fn seat_1001(env: &TestEnv) -> SippBg {
    start_seat(
        env.path(),
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        60,
    )
}

#[test]
fn preview_shows_the_contact_skip_gives_it_back_accept_dials_it() {
    let trunk_port = free_port();
    let env = env(trunk_port, 300);
    let daemon = env.start();
    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_answer.xml",
        &["-m", "1", "-timeout", "60s"],
    );
    let seat = seat_1001(&env);
    make_list(
        &env,
        "renewals",
        &[
            ("c1", "Alice", "07700 900001", "A-17"),
            ("c2", "Bob", "07700 900002", "B-42"),
        ],
    );

    // The first contact (import order) is shown to agent 1001, with its free fields.
    let first = wait_preview(&env, 10, |p| !p.is_null());
    let log = || daemon.log_tail(6_000);
    assert!(
        !first.is_null(),
        "no preview within 10 s\n--- ctid log ---\n{}",
        log()
    );
    assert_eq!(first["list_name"], "renewals", "{first}");
    assert_eq!(first["contact"]["customer_id"], "c1", "{first}");
    assert_eq!(first["contact"]["name"], "Alice", "{first}");
    assert_eq!(first["contact"]["fields"]["order"], "A-17", "{first}");
    assert_eq!(first["number"], "+447700900001", "E.164: {first}");
    assert!(
        first["expires_at_ms"].as_u64() > first["shown_at_ms"].as_u64(),
        "{first}"
    );
    // Held for the preview: no inbound offer can reach the agent meanwhile.
    let board = board_agent(&env, "1001");
    assert_eq!(
        (board["state"].as_str(), board["reason"].as_str()),
        (Some("paused"), Some("outbound")),
        "{board}"
    );
    // Nothing is dialed while the agent looks at the contact.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        outbound_calls(&env).is_empty(),
        "a preview must not be dialed before it is accepted\n{}",
        describe_calls(&outbound_calls(&env))
    );
    let a = attempts(&env);
    assert_eq!(a.len(), 1, "one claimed attempt: {a:?}");
    assert_eq!(a[0].1, None, "not dialed yet: {a:?}");

    // Another agent's token may not act on 1001's preview.
    let (st, v) = post(&env, "/api/v1/agents/1001/preview/skip", AGENT_1002);
    assert_eq!(st, 403, "{v}");
    assert_eq!(
        preview_of(&env, "1001")["attempt"],
        first["attempt"],
        "a refused skip changes nothing"
    );

    // Skip: stored as a skip by the agent, not a dial attempt; the contact comes back after the
    // list's no-answer delay; the next contact is shown.
    let skipped_at = now_ms();
    let (st, v) = post(&env, "/api/v1/agents/1001/preview/skip", SUP);
    assert_eq!(st, 200, "skip: {v}");
    let second = wait_preview(&env, 10, |p| p["contact"]["customer_id"] == "c2");
    assert_eq!(
        second["contact"]["customer_id"],
        "c2",
        "the next contact after a skip\n--- ctid log ---\n{}",
        log()
    );
    assert_eq!(second["number"], "+447700900002", "{second}");
    let a = attempts(&env);
    assert_eq!(
        (
            a[0].0.as_str(),
            a[0].1.as_deref(),
            a[0].2.as_deref(),
            a[0].3
        ),
        ("c1", Some("skipped"), Some("agent"), None),
        "the skip: {a:?}"
    );
    let (state, n, next) = contact(&env, "c1");
    assert_eq!((state.as_str(), n), ("pending", 0), "skipped contact");
    let due = skipped_at as i64 + NO_ANSWER_SECS as i64 * 1000;
    assert!(
        next.is_some_and(|t| (due - 5_000..=due + 5_000).contains(&t)),
        "the skipped contact returns after {NO_ANSWER_SECS} s: next {next:?}, expected about {due}"
    );

    // Accept: the agent's phone rings, then the customer is dialed through the trunk.
    let (st, v) = post(&env, "/api/v1/agents/1001/preview/accept", SUP);
    assert_eq!(st, 200, "accept: {v}\n--- ctid log ---\n{}", log());
    let call = v["call"].as_u64().expect("the outbound call's id");
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let a = attempts(&env);
        // The attempt and the call record are written by the store writer after the call
        // ends, one batch apart on a busy machine: wait for both.
        let recorded = outbound_calls(&env)
            .first()
            .is_some_and(|c| c.outcome.is_some());
        if (a.iter().any(|x| x.0 == "c2" && x.5.is_some()) && recorded) || Instant::now() > deadline
        {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let calls = outbound_calls(&env);
    let story = format!(
        "attempts: {done:?}\ncalls:\n{}\n--- ctid log ---\n{}",
        describe_calls(&calls),
        log()
    );
    let b: Vec<&Attempt> = done.iter().filter(|x| x.0 == "c2").collect();
    assert_eq!(b.len(), 1, "{story}");
    assert_eq!(
        (b[0].1.as_deref(), b[0].3, b[0].4),
        (Some("answered"), Some(1), Some(200)),
        "{story}"
    );
    assert_eq!(calls.len(), 1, "{story}");
    assert_eq!(calls[0].id as u64, call, "{story}");
    assert_eq!(calls[0].agent.as_deref(), Some("1001"), "{story}");
    assert_eq!(calls[0].outcome.as_deref(), Some("answered"), "{story}");
    assert_eq!(
        calls[0].dialed_number.as_deref(),
        Some("+447700900002"),
        "{story}"
    );
    // Nothing left to show: c1 returns in an hour, c2 waits for its disposition.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(preview_of(&env, "1001").is_null(), "{story}");
    // No preview, nothing to accept.
    let (st, v) = post(&env, "/api/v1/agents/1001/preview/accept", SUP);
    assert_eq!(st, 409, "{v}");

    let seat = seat.stop(Duration::from_secs(2));
    let trunk = trunk.stop(Duration::from_secs(2));
    assert!(trunk.ok(), "trunk SIPp: {}\n{story}", trunk.report);
    assert!(seat.report.contains("INVITE"), "{}", seat.report);
    daemon.stop();
}

#[test]
fn a_preview_nobody_acts_on_goes_back_and_pauses_the_agent() {
    let trunk_port = free_port();
    let env = env(trunk_port, 5);
    let daemon = env.start();
    let seat = seat_1001(&env);
    make_list(&env, "survey", &[("c7", "Eve", "07700 900007", "S-1")]);
    let shown = wait_preview(&env, 10, |p| !p.is_null());
    assert!(
        !shown.is_null(),
        "no preview\n--- ctid log ---\n{}",
        daemon.log_tail(6_000)
    );
    let shown_at = Instant::now();
    // Gone after the 5 s timeout (give it 5 s more on a busy machine), and the agent paused.
    let after = wait_preview(&env, 12, |p| p.is_null());
    assert!(after.is_null(), "still shown: {after}");
    assert!(
        shown_at.elapsed() >= Duration::from_secs(3),
        "went back too early: {:?}",
        shown_at.elapsed()
    );
    let board = board_agent(&env, "1001");
    assert_eq!(
        (board["state"].as_str(), board["reason"].as_str()),
        (Some("paused"), Some("no_answer")),
        "{board}\n--- ctid log ---\n{}",
        daemon.log_tail(6_000)
    );
    // The preview is gone from the agent's screen at once; its attempt row follows through
    // the store writer.
    let stored_by = Instant::now() + Duration::from_secs(10);
    let a = loop {
        let a = attempts(&env);
        if a.iter().any(|x| x.1.is_some()) || Instant::now() > stored_by {
            break a;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(
        (a[0].1.as_deref(), a[0].3),
        (Some("skipped"), None),
        "{a:?}"
    );
    let (state, n, _) = contact(&env, "c7");
    assert_eq!((state.as_str(), n), ("pending", 0));
    assert!(outbound_calls(&env).is_empty(), "nothing dialed");
    // Unpaused, the agent is shown... nothing: the contact returns only after the delay.
    let (st, v) = post(&env, "/api/v1/agents/1001/unpause", SUP);
    assert_eq!(st, 200, "{v}");
    std::thread::sleep(Duration::from_millis(1500));
    assert!(preview_of(&env, "1001").is_null());
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}
