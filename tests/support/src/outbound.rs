//! Helpers for the outbound dialer's end-to-end tests: a daemon with a SIPp trunk, lists and
//! contacts created through the store API in the test's database, and what ctid stored about
//! the attempts and contacts (read back from that database).

use super::{
    open_db, queue_settings, read_calls, sipp_spawn, start_seat, CallRow, SippBg, TestEnv,
};
use ctid::outbound::{self, ImportOptions, ListId, ListSpec, Mode, Purpose, RetryDelays, Window};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The real wall clock, in ms since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// One agent `1001` in queue `support`, the trunk at 127.0.0.1:`trunk_port` (user `trunk`,
/// password `tpw`), outbound dialing on with a `dial_timeout_secs` dial timeout; `outbound_lines`
/// (TOML `key = value` lines) are added to `[outbound]`.
pub fn env_with_trunk(trunk_port: u16, dial_timeout_secs: u64, outbound_lines: &str) -> TestEnv {
    let mut s = queue_settings(&["1001"], "wrapup_secs = 0");
    s.extra_toml.push_str(&format!(
        "\n[trunk]\nuri = \"sip:127.0.0.1:{trunk_port}\"\nusername = \"trunk\"\npassword = \"tpw\"\nqualify_interval_secs = 0\n\n[outbound]\nenabled = true\ndial_timeout_secs = {dial_timeout_secs}\n{outbound_lines}\n"
    ));
    TestEnv::new(&s)
}

/// Retry delays of `busy_secs`, `no_answer_secs` and `failed_secs`.
pub fn retry(busy_secs: u64, no_answer_secs: u64, failed_secs: u64) -> RetryDelays {
    RetryDelays {
        busy_secs,
        no_answer_secs,
        failed_secs,
    }
}

/// A progressive list `name` worked by agent 1001, open all day every day (UTC), 3 attempts,
/// no duplicate rule: the tests change what they are about.
pub fn list_spec(name: &str, quota: Option<u32>, retry: RetryDelays) -> ListSpec {
    ListSpec {
        name: name.into(),
        purpose: Purpose::FollowUp,
        agents: vec!["1001".into()],
        queue: None,
        mode: Mode::Progressive,
        time_zone: "UTC".into(),
        windows: vec![window(
            &["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            "00:00",
            "24:00",
        )],
        holidays: vec![],
        quota_per_day: quota,
        agent_quota_per_day: None,
        max_attempts: 3,
        retry,
        dedupe_period_secs: 0,
        priority: 0,
    }
}

/// A calling window on `days` from `start` to `end` (local `HH:MM`).
pub fn window(days: &[&str], start: &str, end: &str) -> Window {
    Window {
        days: days.iter().map(|d| d.to_string()).collect(),
        start: start.into(),
        end: end.into(),
    }
}

/// Create the list `spec` in the test's database (at `now_ms`) and import `contacts`
/// (customer id, name, national UK number) into it.
pub fn create_list(
    env: &TestEnv,
    spec: &ListSpec,
    contacts: &[(&str, &str, &str)],
    now_ms: u64,
) -> ListId {
    let conn = ctid::store::open(&env.data_dir).expect("open the test database");
    let list = outbound::create_list(&conn, spec, now_ms).expect("create the list");
    let mut csv = String::from("customer_id,name,phone\n");
    for (id, n, phone) in contacts {
        csv.push_str(&format!("{id},{n},{phone}\n"));
    }
    let report = outbound::import_contacts_csv(&conn, list.id, csv.as_bytes(), &uk(), now_ms)
        .expect("import the contacts");
    assert_eq!(
        report.imported,
        contacts.len(),
        "contacts not imported: {report:?}"
    );
    list.id
}

/// Import options with the UK (`44`) as the default country.
pub fn uk() -> ImportOptions {
    ImportOptions::new(outbound::CountryCode::new("44").unwrap())
}

/// An attempt row as the tests read it.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    pub contact: i64,
    pub attempt_no: Option<i64>,
    pub agent: Option<String>,
    pub number: Option<String>,
    pub call_id: Option<i64>,
    pub started_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub result: Option<String>,
    pub sip_code: Option<i64>,
    /// Why skipped or ended by ctid.
    pub reason: Option<String>,
}

/// Every attempt (skips included) of `list`, in order.
pub fn attempts(env: &TestEnv, list: ListId) -> Vec<AttemptRow> {
    let Some(c) = open_db(env) else {
        return vec![];
    };
    let Ok(mut st) = c.prepare(
        "SELECT contact_id, attempt_no, agent, number, call_id, started_at_ms, answered_at_ms,
                ended_at_ms, result, sip_code, reason
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
            started_at_ms: r.get(5)?,
            answered_at_ms: r.get(6)?,
            ended_at_ms: r.get(7)?,
            result: r.get(8)?,
            sip_code: r.get(9)?,
            reason: r.get(10)?,
        })
    })
    .map(|rows| rows.filter_map(Result::ok).collect())
    .unwrap_or_default()
}

/// (state, attempts, next_attempt_at_ms, last_result) of one contact.
pub type ContactRow = (String, i64, Option<i64>, Option<String>);

/// `columns` of every contact of the list, by id, each row read by `row`.
fn contact_rows<T>(
    env: &TestEnv,
    list: ListId,
    columns: &str,
    row: impl FnMut(&rusqlite::Row) -> rusqlite::Result<T>,
) -> Vec<T> {
    let c = open_db(env).expect("database");
    let mut st = c
        .prepare(&format!(
            "SELECT {columns} FROM outbound_contacts WHERE list_id = ?1 ORDER BY id"
        ))
        .unwrap();
    st.query_map([list.0], row)
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// [`ContactRow`] of every contact of the list, by id.
pub fn contacts(env: &TestEnv, list: ListId) -> Vec<ContactRow> {
    contact_rows(
        env,
        list,
        "state, attempts, next_attempt_at_ms, last_result",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// (customer id, state, attempts, done_reason) of every contact of the list, by id.
pub fn contact_states(env: &TestEnv, list: ListId) -> Vec<(String, String, i64, Option<String>)> {
    contact_rows(
        env,
        list,
        "customer_id, state, attempts, done_reason",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Poll the list's attempts until `done` holds or `timeout` passed; the last rows read.
pub fn wait_attempts(
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

/// The answered attempts among `rows` that have ended.
pub fn answered_and_ended(rows: &[AttemptRow]) -> usize {
    rows.iter()
        .filter(|a| a.result.as_deref() == Some("answered") && a.ended_at_ms.is_some())
        .count()
}

/// The SIPp trace entries that went `direction` (`"sent"` or `"received"`): the wall-clock
/// time (ms since midnight) and the message, in order.
pub fn trace_messages(trace: &str, direction: &str) -> Vec<(u64, String)> {
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
        out.push((stamp, message));
    }
    out
}

/// The times of the trace entries that went `direction` and whose message satisfies `want`.
pub fn trace_times(trace: &str, direction: &str, want: impl Fn(&str) -> bool) -> Vec<u64> {
    trace_messages(trace, direction)
        .into_iter()
        .filter(|(_, m)| want(m))
        .map(|(t, _)| t)
        .collect()
}

/// The numbers a trunk SIPp was asked to call: the user part of the Request-URI of every first
/// INVITE (CSeq 1; the retry after a digest challenge has CSeq 2) it received, in order.
pub fn trunk_dialed(trunk_trace: &str) -> Vec<String> {
    trace_messages(trunk_trace, "received")
        .into_iter()
        .filter(|(_, m)| m.starts_with("INVITE ") && m.contains("\nCSeq: 1 INVITE"))
        .filter_map(|(_, m)| {
            let uri = m.strip_prefix("INVITE sip:")?;
            Some(uri.split('@').next()?.to_string())
        })
        .collect()
}

/// The two SIPp ends of the outbound calls: the trunk with the customers behind it (scenario
/// `trunk_xml`, at most `max_calls` calls) and agent 1001's seat (scenario `seat_xml`), both
/// for at most `timeout_secs`.
pub struct Ends {
    pub seat: SippBg,
    pub trunk: SippBg,
}

impl Ends {
    pub fn start(
        env: &TestEnv,
        trunk_port: u16,
        trunk_xml: &str,
        max_calls: &str,
        seat_xml: &str,
        timeout_secs: u64,
    ) -> Ends {
        let dir = env.path().to_path_buf();
        let timeout = format!("{timeout_secs}s");
        let trunk = sipp_spawn(
            &dir,
            None,
            trunk_port,
            trunk_xml,
            &["-m", max_calls, "-timeout", &timeout],
        );
        let seat = start_seat(
            &dir,
            env.addr(),
            "1001",
            "secret1001",
            seat_xml,
            timeout_secs,
        );
        Ends { seat, trunk }
    }
}

/// The `outbound` rows of the calls table.
pub fn outbound_calls(env: &TestEnv) -> Vec<CallRow> {
    read_calls(env)
        .into_iter()
        .filter(|c| c.direction == "outbound")
        .collect()
}
