//! The progressive dialer end to end: SIPp plays the PBX trunk with the customers behind it
//! (`tests/sipp/trunk_customer_*.xml`; the answering one challenges with 401 and checks ctid's
//! digest answer) and the agent's seat (`tests/sipp/seat_outbound*.xml`). A list and its
//! contacts are created through the store API in the test's database; ctid dials them while it
//! runs.
//!
//! Checked: the agent is rung first (From = the customer), the customer is INVITEd only after
//! the agent answered (ctid's call events and SIPp's own message traces), answered calls are
//! bridged and stored (`answered` attempts, `outbound` call rows, attempt counters in
//! `/metrics`), a list quota of 2 ends at exactly 2 answered attempts; a busy customer is
//! stored `busy` (486) with its retry after the list's busy delay; an unanswered one is
//! CANCELled after `dial_timeout_secs` (`no_answer`); an agent hanging up while the customer
//! rings CANCELs the customer (`failed`); after `kill -9` mid-call the attempt is reconciled
//! (`failed`, `interrupted`) and never dialed again as the same attempt.

mod common;

use common::{
    describe_calls, describe_events, events_of, free_port, open_db, queue_settings, read_calls,
    read_events, sipp_spawn, start_seat, CallRow, Daemon, TestEnv,
};
use ctid::outbound::{self, ImportOptions, ListId, ListSpec, Mode, Purpose, RetryDelays, Window};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One agent `1001` in queue `support`, the trunk at 127.0.0.1:`trunk_port` (user `trunk`,
/// password `tpw`), outbound dialing on with a `dial_timeout_secs` dial timeout.
fn env_with_trunk(trunk_port: u16, dial_timeout_secs: u64) -> TestEnv {
    let mut s = queue_settings(&["1001"], "wrapup_secs = 0");
    s.extra_toml.push_str(&format!(
        "\n[trunk]\nuri = \"sip:127.0.0.1:{trunk_port}\"\nusername = \"trunk\"\npassword = \"tpw\"\nqualify_interval_secs = 0\n\n[outbound]\nenabled = true\ndial_timeout_secs = {dial_timeout_secs}\n"
    ));
    TestEnv::new(&s)
}

/// Create a progressive list worked by agent 1001, open all day every day (UTC), and import
/// `contacts` (customer id, name, national number) into it.
fn make_list(
    env: &TestEnv,
    name: &str,
    quota: Option<u32>,
    retry: RetryDelays,
    contacts: &[(&str, &str, &str)],
) -> ListId {
    let conn = ctid::store::open(&env.data_dir).expect("open the test database");
    let spec = ListSpec {
        name: name.into(),
        purpose: Purpose::FollowUp,
        agents: vec!["1001".into()],
        queue: None,
        mode: Mode::Progressive,
        time_zone: "UTC".into(),
        windows: vec![Window {
            days: ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                .iter()
                .map(|d| d.to_string())
                .collect(),
            start: "00:00".into(),
            end: "24:00".into(),
        }],
        holidays: vec![],
        quota_per_day: quota,
        agent_quota_per_day: None,
        max_attempts: 3,
        retry,
        dedupe_period_secs: 0,
        priority: 0,
    };
    let list = outbound::create_list(&conn, &spec, now_ms()).expect("create the list");
    let mut csv = String::from("customer_id,name,phone\n");
    for (id, n, phone) in contacts {
        csv.push_str(&format!("{id},{n},{phone}\n"));
    }
    let opts = ImportOptions::new(outbound::CountryCode::new("44").unwrap());
    let report = outbound::import_contacts_csv(&conn, list.id, csv.as_bytes(), &opts, now_ms())
        .expect("import the contacts");
    assert_eq!(
        report.imported,
        contacts.len(),
        "contacts not imported: {report:?}"
    );
    list.id
}

/// An attempt row as the test reads it.
#[derive(Debug, Clone)]
struct AttemptRow {
    contact: i64,
    attempt_no: Option<i64>,
    agent: Option<String>,
    number: Option<String>,
    call_id: Option<i64>,
    answered_at_ms: Option<i64>,
    ended_at_ms: Option<i64>,
    result: Option<String>,
    sip_code: Option<i64>,
}

fn attempts(env: &TestEnv, list: ListId) -> Vec<AttemptRow> {
    let Some(c) = open_db(env) else {
        return vec![];
    };
    let Ok(mut st) = c.prepare(
        "SELECT contact_id, attempt_no, agent, number, call_id, answered_at_ms, ended_at_ms,
                result, sip_code
         FROM outbound_attempts WHERE list_id = ?1 ORDER BY id",
    ) else {
        return vec![];
    };
    st.query_map([list.0], |r| {
        Ok(AttemptRow {
            contact: r.get(0)?,
            attempt_no: r.get(1)?,
            agent: r.get(2)?,
            number: r.get(3)?,
            call_id: r.get(4)?,
            answered_at_ms: r.get(5)?,
            ended_at_ms: r.get(6)?,
            result: r.get(7)?,
            sip_code: r.get(8)?,
        })
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// (state, attempts, next_attempt_at_ms, last_result) of every contact of the list, by id.
fn contacts(env: &TestEnv, list: ListId) -> Vec<(String, i64, Option<i64>, Option<String>)> {
    let c = open_db(env).expect("database");
    let mut st = c
        .prepare(
            "SELECT state, attempts, next_attempt_at_ms, last_result FROM outbound_contacts
             WHERE list_id = ?1 ORDER BY id",
        )
        .unwrap();
    st.query_map([list.0], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn wait_attempts(
    env: &TestEnv,
    list: ListId,
    timeout: Duration,
    done: impl Fn(&[AttemptRow]) -> bool,
) -> Vec<AttemptRow> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = attempts(env, list);
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The wall-clock times (ms since midnight) of the SIPp trace entries that went `direction`
/// (`"sent"` or `"received"`) and whose message satisfies `want`, in order.
fn trace_times(trace: &str, direction: &str, want: impl Fn(&str) -> bool) -> Vec<u64> {
    let mut out = Vec::new();
    for entry in trace
        .split("----------------------------------------------- ")
        .skip(1)
    {
        let mut lines = entry.lines();
        // `2026-11-22 14:20:01.123456`
        let stamp = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|t| {
                let mut p = t.split([':', '.']);
                let h: u64 = p.next()?.parse().ok()?;
                let m: u64 = p.next()?.parse().ok()?;
                let s: u64 = p.next()?.parse().ok()?;
                let us: u64 = p.next()?.parse().ok()?;
                Some(((h * 60 + m) * 60 + s) * 1000 + us / 1000)
            });
        let Some(stamp) = stamp else { continue };
        let Some(what) = lines.next() else { continue };
        if !what.contains(&format!("message {direction}")) {
            continue;
        }
        let message: String = lines
            .skip_while(|l| l.trim().is_empty())
            .collect::<Vec<_>>()
            .join("\n");
        if want(&message) {
            out.push(stamp);
        }
    }
    out
}

fn outbound_calls(env: &TestEnv) -> Vec<CallRow> {
    read_calls(env)
        .into_iter()
        .filter(|c| c.direction == "outbound")
        .collect()
}

fn finish(daemon: Daemon) {
    daemon.stop();
}

#[test]
fn progressive_dials_agent_first_then_customer_and_stops_at_quota() {
    let trunk_port = free_port();
    let env = env_with_trunk(trunk_port, 5);
    let daemon = env.start();
    let list = make_list(
        &env,
        "follow-ups",
        Some(2),
        RetryDelays::default(),
        &[
            ("c1", "Alice", "07700 900001"),
            ("c2", "Bob", "07700 900002"),
            ("c3", "Carol", "07700 900003"),
        ],
    );
    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_answer.xml",
        &["-m", "10", "-timeout", "60s"],
    );
    let seat = start_seat(
        &dir,
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        60,
    );

    let rows = wait_attempts(&env, list, Duration::from_secs(30), |r| {
        r.iter()
            .filter(|a| a.result.as_deref() == Some("answered") && a.ended_at_ms.is_some())
            .count()
            >= 2
    });
    // Quota 2: nothing more is dialed, even with a third contact due and the agent free.
    std::thread::sleep(Duration::from_secs(3));
    let rows_after = attempts(&env, list);
    let calls = outbound_calls(&env);
    let events = read_events(&env);
    let (_, metrics) = common::http_get(&env, "/metrics");
    let seat_trace = seat.messages();
    let trunk_trace = trunk.messages();
    let seat_run = seat.stop(Duration::from_secs(2));
    let trunk_run = trunk.stop(Duration::from_secs(2));
    let story = format!(
        "attempts: {rows_after:#?}\ncalls:\n{}\nevents:\n{}\n--- seat ---\n{}\n--- trunk ---\n{}",
        describe_calls(&calls),
        describe_events(&events),
        seat_run.report,
        trunk_run.report
    );

    let answered: Vec<&AttemptRow> = rows
        .iter()
        .filter(|a| a.result.as_deref() == Some("answered"))
        .collect();
    assert_eq!(answered.len(), 2, "two answered attempts expected\n{story}");
    assert_eq!(
        rows_after.len(),
        2,
        "quota 2 reached: no third attempt may be made\n{story}"
    );
    for a in &answered {
        assert_eq!(a.agent.as_deref(), Some("1001"), "{story}");
        assert_eq!(a.attempt_no, Some(1), "{story}");
        assert_eq!(a.sip_code, Some(200), "{story}");
        assert!(
            a.answered_at_ms.is_some() && a.ended_at_ms.is_some(),
            "{story}"
        );
        assert!(
            a.number
                .as_deref()
                .is_some_and(|n| n.starts_with("+4477009000")),
            "numbers are dialed in E.164\n{story}"
        );
        assert!(a.call_id.is_some(), "attempt linked to its call\n{story}");
    }
    // Contacts 1 and 2 (import order) were dialed; contact 3 waits for tomorrow's quota.
    let dialed: Vec<i64> = answered.iter().map(|a| a.contact).collect();
    let cs = contacts(&env, list);
    assert_eq!(cs.len(), 3);
    assert_eq!(cs[2].0, "pending", "third contact untouched\n{story}");
    assert_eq!(cs[2].1, 0, "third contact never dialed\n{story}");
    assert_eq!(dialed.len(), 2);

    // One outbound call row per attempt: answered by agent 1001, ended by the customer after
    // about a second of talk.
    assert_eq!(calls.len(), 2, "{story}");
    for c in &calls {
        assert_eq!(c.outcome.as_deref(), Some("answered"), "{story}");
        assert_eq!(c.agent.as_deref(), Some("1001"), "{story}");
        assert_eq!(c.hangup_by.as_deref(), Some("customer"), "{story}");
        assert_eq!(c.caller_number.as_deref(), Some("trunk"), "{story}");
        assert!(
            c.dialed_number
                .as_deref()
                .is_some_and(|n| n.starts_with("+44")),
            "{story}"
        );
        assert!(
            c.talk_ms.is_some_and(|t| t >= 800),
            "talk time of about 1 s\n{story}"
        );
        assert!(
            answered.iter().any(|a| a.call_id == Some(c.id)),
            "call row linked from an attempt\n{story}"
        );
        // The agent answered before the customer was dialed; the customer answered after.
        let ev = events_of(&events, c.id);
        let at = |kind: &str| {
            ev.iter()
                .find(|e| e.kind == kind)
                .map(|e| e.at_ms)
                .unwrap_or_else(|| panic!("no {kind} event for call {}\n{story}", c.id))
        };
        let kinds: Vec<&str> = ev.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "offered",
                "agent_answered",
                "dialing",
                "ringing",
                "answered",
                "ended"
            ],
            "call {} events\n{story}",
            c.id
        );
        assert!(at("offered") <= at("agent_answered"), "{story}");
        assert!(at("agent_answered") <= at("dialing"), "{story}");
    }

    // SIPp's own view: each customer INVITE reached the trunk after the seat had answered its
    // call (the seat's 200 OK went out before the trunk's first INVITE of that attempt).
    let seat_answers = trace_times(&seat_trace, "sent", |m| {
        m.starts_with("SIP/2.0 200 OK") && m.contains("INVITE")
    });
    let seat_invites = trace_times(&seat_trace, "received", |m| m.starts_with("INVITE "));
    // The first INVITE of each customer call (CSeq 1; the retry after the 401 has CSeq 2).
    let trunk_invites = trace_times(&trunk_trace, "received", |m| {
        m.starts_with("INVITE ") && m.contains("\nCSeq: 1 INVITE")
    });
    assert_eq!(seat_invites.len(), 2, "two agent calls\n{story}");
    assert_eq!(trunk_invites.len(), 2, "two customer calls\n{story}");
    for k in 0..2 {
        let answer = seat_answers
            .iter()
            .copied()
            .find(|&t| t >= seat_invites[k])
            .expect("seat answer");
        assert!(
            trunk_invites[k] >= answer,
            "customer {k} INVITEd at {} before the agent answered at {answer}\n{story}",
            trunk_invites[k]
        );
    }
    assert_eq!(
        trunk_run.successful,
        Some(2),
        "the trunk accepted ctid's digest answer twice\n{story}"
    );
    // The counters the connect rate is computed from.
    for line in [
        "ctid_callback_attempts_total{list=\"follow-ups\",result=\"answered\"} 2",
        "ctid_callback_dials_total{list=\"follow-ups\"} 2",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "/metrics lacks {line:?}\n{}",
            metrics
                .lines()
                .filter(|l| l.starts_with("ctid_callback"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    finish(daemon);
}

#[test]
fn busy_customer_is_stored_busy_and_retried_after_the_delay() {
    let trunk_port = free_port();
    let env = env_with_trunk(trunk_port, 5);
    let daemon = env.start();
    let list = make_list(
        &env,
        "busy-list",
        None,
        RetryDelays {
            busy_secs: 60,
            no_answer_secs: 600,
            failed_secs: 600,
        },
        &[("c9", "Dan", "07700 900009")],
    );
    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_busy.xml",
        &["-m", "5", "-timeout", "60s"],
    );
    let seat = start_seat(
        &dir,
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        60,
    );
    let rows = wait_attempts(&env, list, Duration::from_secs(30), |r| {
        r.iter().any(|a| a.ended_at_ms.is_some())
    });
    // The retry is not before its delay: nothing more in the next seconds.
    std::thread::sleep(Duration::from_secs(3));
    let rows_after = attempts(&env, list);
    let calls = outbound_calls(&env);
    let cs = contacts(&env, list);
    let seat_run = seat.stop(Duration::from_secs(2));
    let trunk_run = trunk.stop(Duration::from_secs(2));
    let story = format!(
        "attempts: {rows_after:#?}\ncontacts: {cs:?}\ncalls:\n{}\n--- seat ---\n{}\n--- trunk ---\n{}",
        describe_calls(&calls),
        seat_run.report,
        trunk_run.report
    );
    assert_eq!(rows.len(), 1, "{story}");
    assert_eq!(
        rows_after.len(),
        1,
        "no retry before the busy delay\n{story}"
    );
    let a = &rows[0];
    assert_eq!(a.result.as_deref(), Some("busy"), "{story}");
    assert_eq!(a.sip_code, Some(486), "{story}");
    assert!(a.answered_at_ms.is_none(), "{story}");
    let ended = a.ended_at_ms.unwrap();
    let (state, n, next, last) = &cs[0];
    assert_eq!(state, "pending", "busy: the contact is retried\n{story}");
    assert_eq!(*n, 1, "{story}");
    assert_eq!(last.as_deref(), Some("busy"), "{story}");
    let next = next.expect("retry scheduled");
    assert!(
        (ended + 59_000..=ended + 61_000).contains(&next),
        "retry after busy_secs = 60 (ended {ended}, next {next})\n{story}"
    );
    assert_eq!(calls.len(), 1, "{story}");
    assert_eq!(calls[0].outcome.as_deref(), Some("busy"), "{story}");
    assert_eq!(calls[0].sip_code, Some(486), "{story}");
    assert!(calls[0].answered_at_ms.is_none(), "{story}");
    // The agent was rung (and hung up by ctid); the customer's INVITE got its 486.
    assert!(
        seat_run.successful.is_some_and(|n| n >= 1),
        "the seat's call completed\n{story}"
    );
    assert!(
        trunk_run.successful.is_some_and(|n| n >= 1),
        "the trunk saw the INVITE and its ACK\n{story}"
    );
    finish(daemon);
}

#[test]
fn unanswered_customer_is_cancelled_after_the_dial_timeout() {
    let trunk_port = free_port();
    let env = env_with_trunk(trunk_port, 5);
    let daemon = env.start();
    let list = make_list(
        &env,
        "no-answer-list",
        None,
        RetryDelays {
            busy_secs: 600,
            no_answer_secs: 120,
            failed_secs: 600,
        },
        &[("c7", "Eve", "07700 900007")],
    );
    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_noanswer.xml",
        &["-m", "5", "-timeout", "60s"],
    );
    let seat = start_seat(
        &dir,
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        60,
    );
    let rows = wait_attempts(&env, list, Duration::from_secs(30), |r| {
        r.iter().any(|a| a.ended_at_ms.is_some())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let calls = outbound_calls(&env);
    let cs = contacts(&env, list);
    let seat_run = seat.stop(Duration::from_secs(2));
    let trunk_run = trunk.stop(Duration::from_secs(2));
    let story = format!(
        "attempts: {rows:#?}\ncontacts: {cs:?}\ncalls:\n{}\n--- seat ---\n{}\n--- trunk ---\n{}",
        describe_calls(&calls),
        seat_run.report,
        trunk_run.report
    );
    assert_eq!(rows.len(), 1, "{story}");
    let a = &rows[0];
    assert_eq!(a.result.as_deref(), Some("no_answer"), "{story}");
    assert!(a.answered_at_ms.is_none(), "{story}");
    let (state, n, next, last) = &cs[0];
    assert_eq!(state, "pending", "{story}");
    assert_eq!(*n, 1, "{story}");
    assert_eq!(last.as_deref(), Some("no_answer"), "{story}");
    let ended = a.ended_at_ms.unwrap();
    assert!(
        next.is_some_and(|t| (ended + 119_000..=ended + 121_000).contains(&t)),
        "retry after no_answer_secs = 120\n{story}"
    );
    assert_eq!(calls.len(), 1, "{story}");
    assert_eq!(calls[0].outcome.as_deref(), Some("no_answer"), "{story}");
    // Rung for about the dial timeout (5 s) after the agent answered.
    let rang = calls[0].ended_at_ms.unwrap() - calls[0].entered_at_ms;
    assert!((4_900..12_000).contains(&rang), "rang {rang} ms\n{story}");
    // The trunk saw the CANCEL, answered 487 and got its ACK: a complete call for SIPp.
    assert_eq!(trunk_run.successful, Some(1), "{story}");
    assert!(seat_run.successful.is_some_and(|n| n >= 1), "{story}");
    finish(daemon);
}

#[test]
fn kill_mid_call_then_restart_reconciles_and_never_redials_the_attempt() {
    let trunk_port = free_port();
    let env = env_with_trunk(trunk_port, 30);
    let daemon = env.start();
    let list = make_list(
        &env,
        "restart-list",
        None,
        RetryDelays {
            busy_secs: 600,
            no_answer_secs: 600,
            failed_secs: 600,
        },
        &[("c1", "Fay", "07700 900011"), ("c2", "Gus", "07700 900012")],
    );
    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_noanswer.xml",
        &["-m", "10", "-timeout", "90s"],
    );
    let seat = start_seat(
        &dir,
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        90,
    );
    // The first customer's phone rings (agent on the line): kill -9 ctid.
    let before = wait_attempts(&env, list, Duration::from_secs(20), |r| {
        r.iter().any(|a| a.result.as_deref() == Some("ringing"))
    });
    drop(daemon);
    let story0 = format!("before the kill: {before:#?}");
    assert_eq!(before.len(), 1, "{story0}");
    let first_contact = before[0].contact;

    let daemon = env.start();
    let rows = wait_attempts(&env, list, Duration::from_secs(20), |r| r.len() >= 2);
    std::thread::sleep(Duration::from_millis(500));
    let rows = if rows.len() >= 2 {
        attempts(&env, list)
    } else {
        rows
    };
    let reason: Option<String> = open_db(&env).and_then(|c| {
        c.query_row(
            "SELECT reason FROM outbound_attempts WHERE list_id = ?1 ORDER BY id LIMIT 1",
            [list.0],
            |r| r.get(0),
        )
        .ok()
    });
    let cs = contacts(&env, list);
    let log = daemon.log();
    drop(daemon);
    drop(seat);
    drop(trunk);
    let story = format!("{story0}\nafter: {rows:#?}\ncontacts: {cs:?}");
    // The interrupted attempt is closed as failed/interrupted, its contact rescheduled after
    // the failed delay; the dialer went on with the next contact, never the same attempt again.
    assert!(
        log.contains("outbound attempts reconciled") && log.contains("interrupted: 1"),
        "reconciliation at start\n{story}"
    );
    assert_eq!(rows.len(), 2, "{story}");
    let first = &rows[0];
    assert_eq!(first.contact, first_contact, "{story}");
    assert_eq!(first.result.as_deref(), Some("failed"), "{story}");
    assert!(first.ended_at_ms.is_some(), "{story}");
    assert_eq!(reason.as_deref(), Some("interrupted"), "{story}");
    assert_ne!(rows[1].contact, first_contact, "{story}");
    assert_eq!(rows[1].attempt_no, Some(1), "{story}");
    assert_eq!(
        rows.iter().filter(|a| a.contact == first_contact).count(),
        1,
        "the interrupted contact is not dialed again at once\n{story}"
    );
    let (state, n, next, _) = &cs[0];
    assert_eq!(state, "pending", "{story}");
    assert_eq!(*n, 1, "{story}");
    let ended = first.ended_at_ms.unwrap();
    assert!(
        next.is_some_and(|t| t >= ended + 599_000),
        "retry after failed_secs\n{story}"
    );
}

#[test]
fn agent_hanging_up_before_the_customer_answers_cancels_the_customer() {
    let trunk_port = free_port();
    let env = env_with_trunk(trunk_port, 30);
    let daemon = env.start();
    let list = make_list(
        &env,
        "abandon-list",
        None,
        RetryDelays {
            busy_secs: 600,
            no_answer_secs: 600,
            failed_secs: 300,
        },
        &[("c5", "Hal", "07700 900005")],
    );
    let dir = env.path().to_path_buf();
    let trunk = sipp_spawn(
        &dir,
        None,
        trunk_port,
        "trunk_customer_noanswer.xml",
        &["-m", "5", "-timeout", "60s"],
    );
    let seat = start_seat(
        &dir,
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound_hangup.xml",
        60,
    );
    let rows = wait_attempts(&env, list, Duration::from_secs(20), |r| {
        r.iter().any(|a| a.ended_at_ms.is_some())
    });
    std::thread::sleep(Duration::from_millis(1000));
    let calls = outbound_calls(&env);
    let cs = contacts(&env, list);
    let seat_run = seat.stop(Duration::from_secs(2));
    let trunk_run = trunk.stop(Duration::from_secs(2));
    let story = format!(
        "attempts: {rows:#?}\ncontacts: {cs:?}\ncalls:\n{}\n--- seat ---\n{}\n--- trunk ---\n{}",
        describe_calls(&calls),
        seat_run.report,
        trunk_run.report
    );
    assert_eq!(rows.len(), 1, "{story}");
    assert_eq!(rows[0].result.as_deref(), Some("failed"), "{story}");
    assert!(rows[0].answered_at_ms.is_none(), "{story}");
    assert_eq!(cs[0].0, "pending", "retried after failed_secs\n{story}");
    assert_eq!(calls.len(), 1, "{story}");
    assert_eq!(calls[0].outcome.as_deref(), Some("failed"), "{story}");
    assert_eq!(calls[0].hangup_by.as_deref(), Some("agent"), "{story}");
    // The customer's INVITE was CANCELled (487 + ACK: a complete call for the trunk SIPp).
    assert_eq!(trunk_run.successful, Some(1), "{story}");
    assert_eq!(seat_run.successful, Some(1), "{story}");
    finish(daemon);
}
