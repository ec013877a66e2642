//! The contact policy of the progressive dialer, end to end with the running daemon: SIPp plays
//! the PBX trunk with the customers behind it and the agent's seat (as in `outbound_dial.rs`);
//! lists, contacts and the do-not-call list are written through the store API into the test's
//! database; what is checked is what ctid stored (attempts, contact states, skip reasons) and
//! what the trunk actually received (the numbers INVITEd).
//!
//! Days and calling windows need a clock: ctid then runs under libfaketime (Debian package
//! `faketime`) with a shifted wall clock, moved by rewriting the offset file while it runs; the
//! monotonic clock stays real, so SIP timers and the dialer's pacing are unchanged.
//!
//! Shown: a list with quota 30 dials exactly 30 successful callbacks in a day, then stops, and
//! resumes after local midnight; a customer answered within the duplicate period (by customer
//! id or by number) and a do-not-call number are never dialed, skip reasons stored; busy is
//! retried after the busy delay; no answer until max attempts ends `unreachable`; nothing is
//! dialed while the calling window is closed (or on a holiday of the list) and dialing starts
//! when it opens; `kill -9` while a customer talks, restart: no contact dialed twice and the
//! day's quota still exact; an agent in a queue and a list gets the waiting inbound caller
//! before the next customer, and outbound dialing resumes after that call.

use ctid_testkit as common;

use common::outbound::{
    answered_and_ended, attempts, contact_states, contacts, create_list, env_with_trunk, list_spec,
    now_ms, retry, trace_times, trunk_dialed, uk, wait_attempts, window, AttemptRow, Ends,
};
use common::{
    describe_calls, free_port, read_calls, scenario, scenario_with, sipp_spawn, tail, Daemon,
    TestEnv,
};
use ctid::outbound::{self, ListId, ListSpec};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// A shifted wall clock for ctid (libfaketime)
// ---------------------------------------------------------------------------------------------

/// ctid's wall clock: the real one plus an offset (whole seconds) that libfaketime reads from
/// a file, re-read every second, so the test can move it while ctid runs.
struct FakeClock {
    file: PathBuf,
    offset_s: std::cell::Cell<i64>,
}

impl FakeClock {
    /// A clock that reads `fake_now_ms` now (to the second).
    fn new(dir: &Path, fake_now_ms: u64) -> FakeClock {
        let c = FakeClock {
            file: dir.join("faketime.rc"),
            offset_s: std::cell::Cell::new(0),
        };
        c.set(fake_now_ms);
        c
    }

    /// Move the clock so that it reads `fake_now_ms` now (ctid sees it within a second).
    fn set(&self, fake_now_ms: u64) {
        let offset = (fake_now_ms as i64 - now_ms() as i64) / 1000;
        let tmp = self.file.with_extension("tmp");
        std::fs::write(&tmp, format!("{offset:+}\n")).expect("write the faketime file");
        std::fs::rename(&tmp, &self.file).expect("replace the faketime file");
        self.offset_s.set(offset);
    }

    /// What ctid's wall clock reads now.
    fn now_ms(&self) -> u64 {
        (now_ms() as i64 + self.offset_s.get() * 1000) as u64
    }

    /// The environment that runs ctid on this clock.
    fn env(&self) -> Vec<(String, String)> {
        vec![
            ("LD_PRELOAD".into(), libfaketime().display().to_string()),
            (
                "FAKETIME_TIMESTAMP_FILE".into(),
                self.file.display().to_string(),
            ),
            ("FAKETIME_CACHE_DURATION".into(), "1".into()),
            ("FAKETIME_DONT_FAKE_MONOTONIC".into(), "1".into()),
        ]
    }
}

/// Debian's `/usr/lib/<arch>/faketime/libfaketime.so.1`.
fn libfaketime() -> PathBuf {
    std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.path().join("faketime/libfaketime.so.1"))
        .find(|p| p.exists())
        .expect("libfaketime.so.1 not found: install the Debian package faketime")
}

/// `at`, a civil time in a zone (`2027-01-14T23:57:00[Asia/Tokyo]`), in ms since the epoch.
fn zoned_ms(at: &str) -> u64 {
    let z: jiff::Zoned = at.parse().unwrap_or_else(|e| panic!("{at}: {e}"));
    z.timestamp().as_millisecond() as u64
}

// ---------------------------------------------------------------------------------------------
// Scenarios, lists, stories
// ---------------------------------------------------------------------------------------------

/// `tests/sipp/<name>` with each `(text, replacement)` substituted; every text must be there.
fn scenario_changed(env: &TestEnv, name: &str, subst: &[(&str, &str)]) -> String {
    let text = std::fs::read_to_string(scenario(name)).expect("scenario");
    for (k, _) in subst {
        assert!(text.contains(k), "{name} no longer contains {k:?}");
    }
    scenario_with(env.path(), name, subst)
}

/// The answering trunk (`trunk_customer_answer.xml`: digest challenge, 180, 200) with the
/// customer's phone ringing `ring_ms` and the customer talking `talk_ms` before hanging up.
fn answering_trunk(env: &TestEnv, ring_ms: u64, talk_ms: u64) -> String {
    scenario_changed(
        env,
        "trunk_customer_answer.xml",
        &[
            (
                "<pause milliseconds=\"300\"/>",
                &format!("<pause milliseconds=\"{ring_ms}\"/>"),
            ),
            (
                "<pause milliseconds=\"1000\"/>",
                &format!("<pause milliseconds=\"{talk_ms}\"/>"),
            ),
        ],
    )
}

/// Create the list `spec` (at `at_ms`) with `n` contacts `c01`, `c02`, … whose numbers are
/// 07700 900201, 07700 900202, …
fn numbered_list(env: &TestEnv, spec: &ListSpec, n: usize, at_ms: u64) -> ListId {
    let people: Vec<(String, String, String)> = (1..=n)
        .map(|k| {
            (
                format!("c{k:02}"),
                format!("Customer {k}"),
                format!("07700 900{:03}", 200 + k),
            )
        })
        .collect();
    let refs: Vec<(&str, &str, &str)> = people
        .iter()
        .map(|(a, b, c)| (a.as_str(), b.as_str(), c.as_str()))
        .collect();
    create_list(env, spec, &refs, at_ms)
}

/// Everything a failing test should show: attempts and contacts of `lists`, the numbers the
/// trunk received INVITEs for, the calls, and the tail of ctid's log.
fn story(env: &TestEnv, lists: &[ListId], ends: &Ends, daemon: &Daemon) -> String {
    let mut s = String::new();
    for &l in lists {
        s.push_str(&format!(
            "list {l:?} attempts: {:#?}\ncontacts: {:?}\n",
            attempts(env, l),
            contact_states(env, l)
        ));
    }
    s.push_str(&format!(
        "trunk INVITEd: {:?}\ncalls:\n{}\n--- ctid log (tail) ---\n{}",
        trunk_dialed(&ends.trunk.messages()),
        describe_calls(&read_calls(env)),
        tail(&daemon.log(), 6_000)
    ));
    s
}

/// A test env with the trunk at a free port (`dial_timeout_secs`), and that port.
fn trunk_env(dial_timeout_secs: u64) -> (TestEnv, u16) {
    let trunk_port = free_port();
    (
        env_with_trunk(trunk_port, dial_timeout_secs, ""),
        trunk_port,
    )
}

/// A daemon with the trunk at a free port (`dial_timeout_secs`).
fn start(dial_timeout_secs: u64) -> (TestEnv, Daemon, u16) {
    let (env, trunk_port) = trunk_env(dial_timeout_secs);
    let daemon = env.start();
    (env, daemon, trunk_port)
}

/// The same on a fake clock that reads `fake_now_ms` at the start.
fn start_faked(dial_timeout_secs: u64, fake_now_ms: u64) -> (TestEnv, Daemon, u16, FakeClock) {
    let (env, trunk_port) = trunk_env(dial_timeout_secs);
    let clock = FakeClock::new(env.path(), fake_now_ms);
    let daemon = env.start_with_env(&clock.env());
    (env, daemon, trunk_port, clock)
}

/// The answered attempts among `rows`.
fn answered(rows: &[AttemptRow]) -> Vec<&AttemptRow> {
    rows.iter()
        .filter(|a| a.result.as_deref() == Some("answered"))
        .collect()
}

/// Poll `/metrics` (the list gauges refresh every 15 s) until it has the line `want`; the
/// `ctid_callback_*` lines last read.
fn wait_metric(env: &TestEnv, want: &str, timeout: Duration) -> (bool, String) {
    let deadline = Instant::now() + timeout;
    loop {
        let (_, metrics) = common::http_get(env, "/metrics");
        let found = metrics.lines().any(|l| l == want);
        if found || Instant::now() > deadline {
            let ours: Vec<&str> = metrics
                .lines()
                .filter(|l| l.starts_with("ctid_callback"))
                .collect();
            return (found, ours.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Every contact id among `rows` dialed (attempt number set) at most once.
fn assert_each_contact_dialed_once(rows: &[AttemptRow], story: &str) {
    let mut seen = BTreeSet::new();
    for a in rows.iter().filter(|a| a.attempt_no.is_some()) {
        assert!(
            seen.insert(a.contact),
            "contact {} dialed twice\n{story}",
            a.contact
        );
    }
}

/// The trunk was asked exactly once for each number of `rows`' dial attempts, and for no other.
fn assert_trunk_dialed_exactly(rows: &[AttemptRow], trunk_trace: &str, story: &str) {
    let mut dialed = trunk_dialed(trunk_trace);
    let mut want: Vec<String> = rows
        .iter()
        .filter(|a| a.attempt_no.is_some())
        .filter_map(|a| a.number.clone())
        .collect();
    dialed.sort();
    want.sort();
    assert_eq!(
        dialed, want,
        "numbers the trunk received INVITEs for\n{story}"
    );
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn quota_of_30_a_day_dials_exactly_30_then_resumes_the_next_local_day() {
    // 23:56 in Tokyo: four minutes of the day left, plenty for 30 quick calls (about 30 s).
    let midnight = zoned_ms("2027-01-15T00:00:00[Asia/Tokyo]");
    let (env, daemon, trunk_port, clock) = start_faked(5, midnight - 240_000);
    let mut spec = list_spec("daily-30", Some(30), retry(600, 600, 600));
    spec.time_zone = "Asia/Tokyo".into();
    let l = numbered_list(&env, &spec, 35, clock.now_ms());
    let trunk = answering_trunk(&env, 50, 100);
    let ends = Ends::start(&env, trunk_port, &trunk, "100", "seat_outbound.xml", 240);

    let rows = wait_attempts(&env, l, Duration::from_secs(120), |r| {
        answered_and_ended(r) >= 30
    });
    let day1_done = clock.now_ms();
    // The agent stays free and five contacts are due: nothing more may be dialed today.
    std::thread::sleep(Duration::from_secs(3));
    let day1 = attempts(&env, l);
    let s = story(&env, &[l], &ends, &daemon);
    assert_eq!(answered_and_ended(&rows), 30, "{s}");
    assert!(
        day1_done < midnight,
        "the 30 calls took too long: the test's day ended before they were made\n{s}"
    );
    assert_eq!(day1.len(), 30, "quota 30 reached: no 31st attempt\n{s}");
    assert!(
        day1.iter()
            .all(|a| a.answered_at_ms.is_some_and(|t| t < midnight as i64)),
        "{s}"
    );
    let cs = contacts(&env, l);
    assert_eq!(cs.iter().filter(|c| c.1 == 0).count(), 5, "{s}");
    assert!(
        cs.iter().filter(|c| c.1 == 0).all(|c| c.0 == "pending"),
        "{s}"
    );
    let invites_day1 = trunk_dialed(&ends.trunk.messages()).len();
    assert_eq!(invites_day1, 30, "the trunk got 30 customer calls\n{s}");
    // The dialer did ask for the free agent, and the quota refused until Tokyo's midnight.
    let refusal = format!("used: 30, in_flight: 0, quota: 30, resets_at_ms: {midnight}");
    assert!(
        daemon.log().contains(&refusal),
        "no refusal {refusal:?} in ctid's log\n{s}"
    );

    // What a team lead sees: the day's quota used up.
    let used = "ctid_callback_quota_used{list=\"daily-30\"} 30";
    let (found, metrics) = wait_metric(&env, used, Duration::from_secs(20));
    assert!(found, "/metrics lacks {used:?}:\n{metrics}\n{s}");

    // The next local day: the quota is fresh, the five others are called.
    clock.set(midnight + 20_000);
    let rows = wait_attempts(&env, l, Duration::from_secs(30), |r| {
        answered_and_ended(r) >= 35
    });
    std::thread::sleep(Duration::from_millis(1_500));
    let all = attempts(&env, l);
    let s = story(&env, &[l], &ends, &daemon);
    assert_eq!(
        answered_and_ended(&rows),
        35,
        "dialing resumes on the new day\n{s}"
    );
    assert_eq!(all.len(), 35, "{s}");
    let day2: Vec<&AttemptRow> = all
        .iter()
        .filter(|a| a.started_at_ms >= midnight as i64)
        .collect();
    assert_eq!(day2.len(), 5, "five attempts on the second day\n{s}");
    assert_eq!(answered(&all).len(), 35, "{s}");
    assert_each_contact_dialed_once(&all, &s);
    assert!(
        contacts(&env, l).iter().all(|c| c.1 == 1),
        "every contact dialed once\n{s}"
    );
    assert_trunk_dialed_exactly(&all, &ends.trunk.messages(), &s);
    let used = "ctid_callback_quota_used{list=\"daily-30\"} 5";
    let (found, metrics) = wait_metric(&env, used, Duration::from_secs(20));
    assert!(
        found,
        "the new day's count: /metrics lacks {used:?}:\n{metrics}\n{s}"
    );
    drop(ends);
    daemon.stop();
}

#[test]
fn duplicate_customers_and_do_not_call_numbers_are_never_dialed() {
    let (env, daemon, trunk_port) = start(5);
    // The survey reaches Ann first (higher priority) …
    let mut survey = list_spec("survey", None, retry(600, 600, 600));
    survey.priority = 1;
    let ann = ("c1", "Ann", "07700 900101");
    let s_list = create_list(&env, &survey, &[ann], now_ms());
    // … so the follow-up list, with a one-day duplicate period, must not call her again: not by
    // her customer id (another number), not by her number (another customer id). Dan's only
    // number is on the do-not-call list. Bob is called.
    let mut follow = list_spec("follow-up", None, retry(600, 600, 600));
    follow.dedupe_period_secs = 86_400;
    let f_contacts = [
        ("c1", "Ann at work", "07700 900111"),
        ("c9", "Ann's household", "07700 900101"),
        ("c2", "Dan", "07700 900102"),
        ("c3", "Bob", "07700 900103"),
    ];
    let f_list = create_list(&env, &follow, &f_contacts, now_ms());
    {
        let conn = ctid::store::open(&env.data_dir).expect("database");
        outbound::add_do_not_call(&conn, "07700 900102", &uk().country_code, "test", now_ms())
            .expect("add to the do-not-call list");
    }
    let trunk = answering_trunk(&env, 50, 200);
    let ends = Ends::start(&env, trunk_port, &trunk, "10", "seat_outbound.xml", 60);
    wait_attempts(&env, f_list, Duration::from_secs(30), |r| {
        answered_and_ended(r) >= 1
    });
    std::thread::sleep(Duration::from_secs(2));
    let s = story(&env, &[s_list, f_list], &ends, &daemon);
    let survey_rows = attempts(&env, s_list);
    let rows = attempts(&env, f_list);
    assert_eq!(
        answered(&survey_rows).len(),
        1,
        "Ann answered the survey\n{s}"
    );

    let states = contact_states(&env, f_list);
    let want = [
        ("c1", "skipped", "duplicate"),
        ("c9", "skipped", "duplicate"),
        ("c2", "skipped", "do_not_call"),
    ];
    for (id, state, reason) in want {
        let c = states.iter().find(|c| c.0 == id).expect("contact");
        assert_eq!(
            (c.1.as_str(), c.3.as_deref()),
            (state, Some(reason)),
            "{id}\n{s}"
        );
        assert_eq!(c.2, 0, "{id} never dialed\n{s}");
    }
    let bob = states.iter().find(|c| c.0 == "c3").expect("Bob");
    assert_eq!(bob.2, 1, "Bob dialed once\n{s}");
    // The skips are stored as attempt rows with their reason, never dialed.
    let mut skips: Vec<(Option<String>, Option<String>)> = rows
        .iter()
        .filter(|a| a.result.as_deref() == Some("skipped"))
        .map(|a| (a.number.clone(), a.reason.clone()))
        .collect();
    skips.sort();
    assert_eq!(
        skips,
        [
            (Some("+447700900101".into()), Some("duplicate".into())),
            (Some("+447700900102".into()), Some("do_not_call".into())),
            (Some("+447700900111".into()), Some("duplicate".into())),
        ],
        "{s}"
    );
    assert!(
        rows.iter()
            .filter(|a| a.result.as_deref() == Some("skipped"))
            .all(|a| a.attempt_no.is_none() && a.agent.is_none()),
        "{s}"
    );
    // What the trunk saw: Ann once (the survey), Bob once; never Dan, never Ann again.
    assert_eq!(
        trunk_dialed(&ends.trunk.messages()),
        ["+447700900101", "+447700900103"],
        "{s}"
    );
    drop(ends);
    daemon.stop();
}

/// What [`until_max_attempts`] leaves: the daemon and SIPps still running, and the attempts.
struct MaxAttempts {
    env: TestEnv,
    daemon: Daemon,
    list: ListId,
    ends: Ends,
    rows: Vec<AttemptRow>,
    story: String,
}

/// One contact on a list of `spec` (with the trunk `trunk_xml` behind it): wait until its
/// `max_attempts` attempts have ended, then `settle_secs` for one too many. Checks that every
/// attempt ended `result`, numbered 1, 2, … with none beyond the maximum, and that the
/// contact is `unreachable` (`max_attempts`, last result `result`, no retry scheduled).
fn until_max_attempts(
    spec: ListSpec,
    contact: (&str, &str, &str),
    trunk_xml: &str,
    result: &str,
    settle_secs: u64,
) -> MaxAttempts {
    let (env, daemon, trunk_port) = start(5);
    let max = spec.max_attempts as usize;
    let list = create_list(&env, &spec, &[contact], now_ms());
    let ends = Ends::start(&env, trunk_port, trunk_xml, "10", "seat_outbound.xml", 60);
    wait_attempts(&env, list, Duration::from_secs(15 * max as u64), |r| {
        r.len() >= max && r.iter().all(|a| a.ended_at_ms.is_some())
    });
    std::thread::sleep(Duration::from_secs(settle_secs));
    let rows = attempts(&env, list);
    let story = story(&env, &[list], &ends, &daemon);
    let s = &story;
    assert_eq!(rows.len(), max, "max attempts {max}: no more\n{s}");
    for (k, a) in rows.iter().enumerate() {
        assert_eq!(a.attempt_no, Some(k as i64 + 1), "{s}");
        assert_eq!(a.result.as_deref(), Some(result), "{s}");
        assert!(a.answered_at_ms.is_none() && a.ended_at_ms.is_some(), "{s}");
    }
    let c = &contact_states(&env, list)[0];
    assert_eq!(
        (c.1.as_str(), c.2, c.3.as_deref()),
        ("unreachable", max as i64, Some("max_attempts")),
        "{s}"
    );
    let (_, _, next, last) = &contacts(&env, list)[0];
    assert_eq!((next, last.as_deref()), (&None, Some(result)), "{s}");
    MaxAttempts {
        env,
        daemon,
        list,
        ends,
        rows,
        story,
    }
}

#[test]
fn busy_customer_is_dialed_again_after_the_busy_delay() {
    let mut spec = list_spec("busy-retry", None, retry(3, 600, 600));
    spec.max_attempts = 2;
    let dan = ("c9", "Dan", "07700 900009");
    let run = until_max_attempts(spec, dan, "trunk_customer_busy.xml", "busy", 3);
    let (rows, s) = (&run.rows, &run.story);
    assert!(rows.iter().all(|a| a.sip_code == Some(486)), "{s}");
    // Dialed again no sooner than the busy delay (3 s) after the first ended, and not much
    // later (the dialer looks again within 2 s of a retry falling due).
    let again = rows[1].started_at_ms - rows[0].ended_at_ms.unwrap();
    assert!(
        (3_000..8_000).contains(&again),
        "retried {again} ms after\n{s}"
    );
    assert_trunk_dialed_exactly(rows, &run.ends.trunk.messages(), s);
    drop(run.ends);
    run.daemon.stop();
}

#[test]
fn no_answer_until_max_attempts_leaves_the_contact_unreachable() {
    // Dial timeout 5 s (the shortest ctid accepts); retries due 1 s after each no answer, so a
    // fourth attempt would come within the 4 s of settling.
    let mut spec = list_spec("no-answer-max", None, retry(600, 1, 600));
    spec.max_attempts = 3;
    let eve = ("c7", "Eve", "07700 900007");
    let run = until_max_attempts(spec, eve, "trunk_customer_noanswer.xml", "no_answer", 4);
    let s = &run.story;
    assert_eq!(attempts(&run.env, run.list).len(), 3, "{s}");
    // The trunk rang the same number three times, each one CANCELled once.
    let trace = run.ends.trunk.messages();
    assert_eq!(trunk_dialed(&trace), ["+447700900007"; 3], "{s}");
    let cancels = trace_times(&trace, "received", |m| m.starts_with("CANCEL "));
    assert_eq!(cancels.len(), 3, "{s}");
    drop(run.ends);
    run.daemon.stop();
}

/// A list of `spec` with two contacts due, on a fake clock 12 s before `opens` (ms): while it
/// is closed nothing is dialed though the agent is free (ctid logs `refusal`, the policy's
/// reason with `{list}` for the list's id), and both are dialed once it opens.
fn closed_until(spec: ListSpec, opens: u64, refusal: &str) {
    let (env, daemon, trunk_port, clock) = start_faked(5, opens - 12_000);
    let l = numbered_list(&env, &spec, 2, clock.now_ms());
    let trunk = answering_trunk(&env, 50, 200);
    let ends = Ends::start(&env, trunk_port, &trunk, "10", "seat_outbound.xml", 60);
    // The agent is registered and free, two contacts are due: still nothing before it opens.
    let mut closed_checks = 0;
    while clock.now_ms() + 300 < opens {
        assert!(
            attempts(&env, l).is_empty() && trunk_dialed(&ends.trunk.messages()).is_empty(),
            "dialed {} ms before the list opened\n{}",
            opens - clock.now_ms(),
            story(&env, &[l], &ends, &daemon)
        );
        closed_checks += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(closed_checks > 20, "the list was closed for a while");
    // The dialer did ask for the free agent, and the policy said why not and until when.
    let refusal = refusal.replace("{list}", &format!("{l:?}"));
    assert!(
        daemon.log().contains(&refusal),
        "no refusal {refusal:?} in ctid's log\n{}",
        story(&env, &[l], &ends, &daemon)
    );
    let rows = wait_attempts(&env, l, Duration::from_secs(25), |r| {
        answered_and_ended(r) >= 2
    });
    let s = story(&env, &[l], &ends, &daemon);
    assert_eq!(
        answered_and_ended(&rows),
        2,
        "dialing starts when the list opens\n{s}"
    );
    let first = rows.iter().map(|a| a.started_at_ms).min().unwrap();
    assert!(
        first >= opens as i64,
        "first dial at {first}, the list opens {opens}\n{s}"
    );
    assert!(
        first < opens as i64 + 13_000,
        "dialing starts within the dialer's recheck of a closed list (10 s)\n{s}"
    );
    assert_trunk_dialed_exactly(&rows, &ends.trunk.messages(), &s);
    drop(ends);
    daemon.stop();
}

#[test]
fn nothing_is_dialed_while_the_window_is_closed_and_dialing_starts_when_it_opens() {
    // Wednesday 08:59:48 in New York; the list calls on weekdays 09:00–17:00 local.
    let opens = zoned_ms("2027-01-13T09:00:00[America/New_York]");
    let mut spec = list_spec("office-hours", None, retry(600, 600, 600));
    spec.time_zone = "America/New_York".into();
    spec.windows = vec![window(
        &["mon", "tue", "wed", "thu", "fri"],
        "09:00",
        "17:00",
    )];
    let refusal = format!("WindowClosed {{ list: {{list}}, opens_at_ms: Some({opens}) }}");
    closed_until(spec, opens, &refusal);
}

#[test]
fn nothing_is_dialed_on_a_holiday_and_dialing_starts_the_day_after() {
    // Christmas Day 23:59:48 in London, a holiday of a list open all day every day.
    let opens = zoned_ms("2027-12-26T00:00:00[Europe/London]");
    let mut spec = list_spec("christmas", None, retry(600, 600, 600));
    spec.time_zone = "Europe/London".into();
    spec.holidays = vec!["2027-12-25".into()];
    let refusal =
        format!("Holiday {{ list: {{list}}, date: \"2027-12-25\", opens_at_ms: Some({opens}) }}");
    closed_until(spec, opens, &refusal);
}

#[test]
fn kill_while_a_customer_talks_then_restart_keeps_the_quota_and_never_redials() {
    let (env, daemon, trunk_port) = start(5);
    let l = numbered_list(
        &env,
        &list_spec("quota-restart", Some(3), retry(600, 600, 600)),
        5,
        now_ms(),
    );
    let trunk = answering_trunk(&env, 50, 2_500);
    let ends = Ends::start(&env, trunk_port, &trunk, "10", "seat_outbound.xml", 90);
    // One callback done, the second customer on the line: kill -9.
    let talking = |r: &[AttemptRow]| {
        answered_and_ended(r) == 1
            && r.iter()
                .any(|a| a.answered_at_ms.is_some() && a.ended_at_ms.is_none())
    };
    let before = wait_attempts(&env, l, Duration::from_secs(30), talking);
    let s0 = story(&env, &[l], &ends, &daemon);
    drop(daemon);
    assert!(
        talking(&before),
        "no customer on the line to kill ctid under\n{s0}"
    );
    let killed_contact = before
        .iter()
        .find(|a| a.ended_at_ms.is_none())
        .map(|a| a.contact)
        .unwrap();

    let daemon = env.start();
    // After the restart the interrupted call still counts: one more callback fills quota 3.
    let rows = wait_attempts(&env, l, Duration::from_secs(30), |r| {
        answered_and_ended(r) >= 3
    });
    std::thread::sleep(Duration::from_secs(4));
    let all = attempts(&env, l);
    let s = format!(
        "before the kill:\n{s0}\n\nafter the restart:\n{}",
        story(&env, &[l], &ends, &daemon)
    );
    assert!(
        daemon.log().contains("outbound attempts reconciled")
            && daemon.log().contains("interrupted: 1"),
        "reconciliation at start\n{s}"
    );
    assert_eq!(answered_and_ended(&rows), 3, "{s}");
    assert_eq!(
        all.len(),
        3,
        "quota 3 reached with the interrupted call: nothing more\n{s}"
    );
    assert_eq!(answered(&all).len(), 3, "{s}");
    let interrupted: Vec<&AttemptRow> = all
        .iter()
        .filter(|a| a.reason.as_deref() == Some("interrupted"))
        .collect();
    assert_eq!(interrupted.len(), 1, "{s}");
    assert_eq!(interrupted[0].contact, killed_contact, "{s}");
    assert_each_contact_dialed_once(&all, &s);
    let cs = contacts(&env, l);
    assert_eq!(
        cs.iter().filter(|c| c.1 == 0).count(),
        2,
        "two contacts wait for tomorrow\n{s}"
    );
    assert_trunk_dialed_exactly(&all, &ends.trunk.messages(), &s);
    let used = "ctid_callback_quota_used{list=\"quota-restart\"} 3";
    let (found, metrics) = wait_metric(&env, used, Duration::from_secs(20));
    assert!(found, "/metrics lacks {used:?}:\n{metrics}\n{s}");
    drop(ends);
    daemon.stop();
}

#[test]
fn inbound_caller_waiting_goes_first_and_outbound_resumes_after() {
    let (env, daemon, trunk_port) = start(5);
    let l = numbered_list(
        &env,
        &list_spec("blended", None, retry(600, 600, 600)),
        3,
        now_ms(),
    );
    // Customers talk 4 s; the seat answers outbound calls and inbound ones (From 55501N).
    let trunk = answering_trunk(&env, 50, 4_000);
    let seat = scenario_changed(
        &env,
        "seat_outbound.xml",
        &[(
            "regexp=\"sip:\\+44[0-9]+@\"",
            "regexp=\"sip:(\\+44|55501)[0-9]+@\"",
        )],
    );
    let ends = Ends::start(&env, trunk_port, &trunk, "10", &seat, 90);
    let on_line = |r: &[AttemptRow]| r.iter().any(|a| a.answered_at_ms.is_some());
    let first = wait_attempts(&env, l, Duration::from_secs(20), on_line);
    assert!(on_line(&first), "{}", story(&env, &[l], &ends, &daemon));
    // A caller dials the queue while the agent talks to the first customer; ctid answers the
    // caller at once (queue audio), who stays on the line 12 s in all.
    let pbx_started = Instant::now();
    let mut pbx = sipp_spawn(
        env.path(),
        Some(daemon.addr),
        free_port(),
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            "12000",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    while pbx.is_running() && pbx_started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let pbx = pbx.wait();
    // Outbound goes on after the inbound call.
    let rows = wait_attempts(&env, l, Duration::from_secs(20), |r| {
        answered_and_ended(r) >= 2
    });
    let s = format!(
        "{}\n--- pbx ---\n{}",
        story(&env, &[l], &ends, &daemon),
        pbx.report
    );
    assert!(pbx.ok(), "the caller was answered\n{s}");
    let inbound: Vec<_> = read_calls(&env)
        .into_iter()
        .filter(|c| c.direction == "inbound")
        .collect();
    assert_eq!(inbound.len(), 1, "{s}");
    let call = &inbound[0];
    assert_eq!(call.outcome.as_deref(), Some("answered"), "{s}");
    assert_eq!(call.agent.as_deref(), Some("1001"), "{s}");
    let (entered, answered_at, ended) = (
        call.entered_at_ms,
        call.answered_at_ms.unwrap(),
        call.ended_at_ms.unwrap(),
    );
    let a1 = &rows[0];
    let a1_end = a1.ended_at_ms.unwrap();
    assert!(
        entered < a1_end,
        "the caller waited while the agent talked outbound\n{s}"
    );
    assert!(answered_at >= a1_end, "{s}");
    // No customer was dialed while the caller waited or talked; the next one right after.
    assert_eq!(
        answered_and_ended(&rows),
        2,
        "outbound resumes after the inbound call\n{s}"
    );
    for a in &rows[1..] {
        assert!(
            a.started_at_ms >= ended,
            "attempt started at {} while the inbound call ({entered}..{ended}) went on\n{s}",
            a.started_at_ms
        );
    }
    assert!(
        rows[1].started_at_ms < ended + 5_000,
        "outbound resumed promptly after the inbound call\n{s}"
    );
    drop(ends);
    daemon.stop();
}
