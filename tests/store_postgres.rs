//! The PostgreSQL backend of the store against a real PostgreSQL 15 started by the test
//! (`common::postgres`): the schema migrates once (also with two nodes starting at once), the
//! callback lists' rules (`ctid::outbound`) run on it unchanged through the backend-neutral
//! `OutboundDb`, the queue-callback triggers follow their contact, and two nodes working one list
//! at once dial exactly its quota and no contact or customer twice; a day of calls written to
//! both backends gives the same reports, CDRs, call pages and callback figures.

use ctid_testkit as common;

use common::postgres::Postgres;
use ctid::outbound::{
    self, AttemptResult, CountryCode, Decision, ImportOptions, ListSpec, Mode, Purpose,
    RetryDelays, Window,
};
use ctid::report::{self, render, CdrFormat, Parts, PeriodKind, Request};
use ctid::store::outbound::OutboundDb;
use ctid::store::postgres::PgConn;
use ctid::store::{
    self, ApiOp, CallFilter, CallOp, CallRecords, CallbackReads, Job, Op, Reader, StatsReads,
    WriteDb, Writer,
};
use std::collections::BTreeSet;

/// Monday 2024-03-04 10:00 in London: inside the list's window.
const MONDAY_10: u64 = 1_709_546_400_000;

fn spec(name: &str, agents: &[String], quota: Option<u32>) -> ListSpec {
    ListSpec {
        name: name.to_string(),
        purpose: Purpose::FollowUp,
        agents: agents.to_vec(),
        queue: None,
        mode: Mode::Preview,
        time_zone: "Europe/London".into(),
        windows: vec![Window {
            days: vec!["mon-fri".into()],
            start: "09:00".into(),
            end: "17:00".into(),
        }],
        holidays: vec!["2024-12-25".into()],
        quota_per_day: quota,
        agent_quota_per_day: None,
        max_attempts: 3,
        retry: RetryDelays {
            busy_secs: 600,
            no_answer_secs: 3_600,
            failed_secs: 900,
        },
        dedupe_period_secs: 86_400,
        priority: 0,
    }
}

fn import(db: &PgConn, list: outbound::ListId, customers: std::ops::Range<u32>) {
    let mut csv = String::from("customer_id,phone\n");
    for i in customers {
        csv.push_str(&format!("cust{i},+4420794600{i:02}\n"));
    }
    let opts = ImportOptions::new(CountryCode::new("44").unwrap());
    let r = outbound::import_contacts_csv(db, list, csv.as_bytes(), &opts, 0).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn the_schema_migrates_once_even_with_two_nodes_starting_together() {
    let pg = Postgres::start();
    let url = pg.create_db("migrate");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| PgConn::connect(&url).map(|c| c.schema_version().unwrap()));
        let b = s.spawn(|| PgConn::connect(&url).map(|c| c.schema_version().unwrap()));
        (a.join().unwrap(), b.join().unwrap())
    });
    assert_eq!(a.unwrap(), 1);
    assert_eq!(b.unwrap(), 1);
    // A restart finds the schema current and keeps what was stored.
    let db = PgConn::connect(&url).unwrap();
    db.insert_dnc("+442079460000", "test", 7).unwrap();
    drop(db);
    let db = PgConn::connect(&url).unwrap();
    assert_eq!(db.schema_version().unwrap(), 1);
    assert_eq!(
        db.find_dnc("+442079460000").unwrap(),
        Some((7, "test".to_string()))
    );
}

#[test]
fn a_bad_url_is_an_error_not_a_panic() {
    let err = PgConn::connect("host=/nonexistent-ctid-dir user=ctid dbname=x").unwrap_err();
    assert!(!err.to_string().is_empty());
}

#[test]
fn the_callback_list_rules_run_on_postgres() {
    let pg = Postgres::start();
    let db = PgConn::connect(&pg.create_db("rules")).unwrap();
    let agents = vec!["a1".to_string(), "a2".to_string()];
    let list = outbound::create_list(&db, &spec("follow", &agents, None), 0).unwrap();
    assert_eq!(
        outbound::get_list_by_name(&db, "follow").unwrap().spec,
        list.spec
    );
    assert!(outbound::create_list(&db, &spec("follow", &agents, None), 0).is_err());
    import(&db, list.id, 0..3);
    // The second number is on the do-not-call list: skipped, recorded.
    let uk = CountryCode::new("44").unwrap();
    outbound::add_do_not_call(&db, "+442079460001", &uk, "test", 0).unwrap();

    let mut dialed = Vec::new();
    let mut answered = None;
    for agent in ["a1", "a2"] {
        match outbound::next_contact(&db, list.id, agent, MONDAY_10).unwrap() {
            Decision::Dial {
                attempt, number, ..
            } => {
                dialed.push(number);
                if answered.is_none() {
                    answered = Some(attempt);
                } else {
                    outbound::record_result(
                        &db,
                        attempt,
                        AttemptResult::Busy,
                        Some(486),
                        MONDAY_10,
                    )
                    .unwrap();
                }
            }
            Decision::Nothing { why } => panic!("nothing for {agent}: {why:?}"),
        }
    }
    assert_eq!(dialed, ["+442079460000", "+442079460002"]);
    let attempt = answered.unwrap();
    outbound::record_result(&db, attempt, AttemptResult::Answered, Some(200), MONDAY_10).unwrap();
    outbound::record_hangup(&db, attempt, MONDAY_10 + 60_000).unwrap();
    outbound::set_disposition(&db, attempt, "done", Some("ok"), None, MONDAY_10 + 60_000).unwrap();

    let c = outbound::list_counters(&db, list.id, MONDAY_10 + 60_000).unwrap();
    assert_eq!(
        (c.contacts.done, c.contacts.skipped, c.contacts.pending),
        (1, 1, 1),
        "{c:?}"
    );
    assert_eq!(c.skipped_by_reason.get("do_not_call"), Some(&1), "{c:?}");
    assert_eq!(c.quota_used_today, 1, "{c:?}");
    // The busy contact is due again in ten minutes, not before.
    assert!(matches!(
        outbound::next_contact(&db, list.id, "a2", MONDAY_10 + 60_000).unwrap(),
        Decision::Nothing { .. }
    ));
    assert!(matches!(
        outbound::next_contact(&db, list.id, "a2", MONDAY_10 + 601_000).unwrap(),
        Decision::Dial { .. }
    ));
    // A restart gives back the claim that was never dialed.
    let report = outbound::reconcile_after_restart(&db, MONDAY_10 + 700_000).unwrap();
    assert_eq!(report.given_back, 1, "{report:?}");
}

#[test]
fn two_nodes_dial_exactly_the_quota_and_no_customer_twice() {
    let pg = Postgres::start();
    let url = pg.create_db("quota");
    let agents: Vec<String> = (0..16).map(|i| format!("ag{i}")).collect();
    let setup = PgConn::connect(&url).unwrap();
    let list = outbound::create_list(&setup, &spec("quota", &agents, Some(30)), 0).unwrap();
    import(&setup, list.id, 0..80);

    // Each node works with its own connection and its own half of the agents, at once.
    let per_node: Vec<Vec<(String, String)>> = std::thread::scope(|s| {
        let nodes: Vec<_> = agents
            .chunks(8)
            .map(|mine| {
                let url = &url;
                s.spawn(move || {
                    let db = PgConn::connect(url).unwrap();
                    let mut dialed = Vec::new();
                    let mut t = MONDAY_10;
                    loop {
                        let mut any = false;
                        for agent in mine {
                            t += 1_000;
                            match outbound::next_contact(&db, list.id, agent, t).unwrap() {
                                Decision::Dial {
                                    attempt,
                                    contact,
                                    number,
                                    ..
                                } => {
                                    any = true;
                                    dialed.push((
                                        contact.customer_id.clone().unwrap_or_default(),
                                        number,
                                    ));
                                    outbound::record_result(
                                        &db,
                                        attempt,
                                        AttemptResult::Answered,
                                        Some(200),
                                        t,
                                    )
                                    .unwrap();
                                    outbound::record_hangup(&db, attempt, t + 500).unwrap();
                                    outbound::set_disposition(
                                        &db,
                                        attempt,
                                        "done",
                                        None,
                                        None,
                                        t + 500,
                                    )
                                    .unwrap();
                                }
                                Decision::Nothing { .. } => {}
                            }
                        }
                        if !any {
                            return dialed;
                        }
                    }
                })
            })
            .collect();
        nodes.into_iter().map(|n| n.join().unwrap()).collect()
    });
    let all: Vec<&(String, String)> = per_node.iter().flatten().collect();
    assert_eq!(all.len(), 30, "dials: {all:?}");
    let customers: BTreeSet<&str> = all.iter().map(|(c, _)| c.as_str()).collect();
    let numbers: BTreeSet<&str> = all.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(customers.len(), 30, "a customer dialed twice: {all:?}");
    assert_eq!(numbers.len(), 30, "a number dialed twice: {all:?}");
    assert!(
        per_node.iter().all(|d| !d.is_empty()),
        "both nodes dialed: {:?}",
        per_node.iter().map(Vec::len).collect::<Vec<_>>()
    );
    let c = outbound::list_counters(&setup, list.id, MONDAY_10 + 3_600_000).unwrap();
    assert_eq!((c.contacts.done, c.contacts.pending), (30, 50), "{c:?}");
    assert_eq!(c.quota_used_today, 30, "{c:?}");
}

/// A day of calls in two queues (answered, abandoned, timeouts, overflows, callbacks, surveys,
/// quality figures, dispositions), agent sessions and audit rows, as the writer's ops.
fn a_day_of_ops(day_ms: u64) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::new();
    let agents = ["amy", "bob", "cyd"];
    for (i, agent) in agents.iter().enumerate() {
        let t = day_ms + 8 * 3_600_000 + i as u64 * 60_000;
        ops.push(
            ApiOp::SessionStart {
                agent: agent.to_string(),
                kind: "login",
                reason: None,
                started_at_ms: t,
            }
            .into(),
        );
        ops.push(
            ApiOp::SessionStart {
                agent: agent.to_string(),
                kind: "pause",
                reason: (i % 2 == 0).then(|| "lunch".to_string()),
                started_at_ms: t + 4 * 3_600_000,
            }
            .into(),
        );
        ops.push(
            ApiOp::SessionEnd {
                agent: agent.to_string(),
                kind: "pause",
                ended_at_ms: t + 4 * 3_600_000 + 1_800_000 + i as u64 * 7_000,
            }
            .into(),
        );
        if i != 2 {
            // cyd is still logged in: the open session counts until `now`.
            ops.push(
                ApiOp::SessionEnd {
                    agent: agent.to_string(),
                    kind: "login",
                    ended_at_ms: t + 9 * 3_600_000,
                }
                .into(),
            );
        }
    }
    for id in 1..=240u64 {
        let queue = if id % 3 == 0 { "billing" } else { "sales" };
        let entered = day_ms + 8 * 3_600_000 + id * 97_000;
        ops.push(
            CallOp::Started {
                id,
                sip_call_id: format!("call-{id}@test"),
                direction: if id % 11 == 0 { "outbound" } else { "inbound" },
                caller_number: Some(format!("+49301234{id:04}")),
                caller_name: (id % 4 == 0).then(|| format!("Caller {id}")),
                dialed_number: Some("+4930999".into()),
                queue: Some(queue.into()),
                entered_at_ms: entered,
            }
            .into(),
        );
        ops.push(
            CallOp::Event {
                id,
                at_ms: entered,
                kind: "entered",
                agent: None,
                detail: Some(queue.into()),
            }
            .into(),
        );
        let wait = 3_000 + (id * 7_919) % 90_000;
        let agent = agents[(id % 3) as usize];
        let (outcome, talk) = match id % 7 {
            0 => ("abandoned", None),
            1 => ("timeout", None),
            2 => ("overflow", None),
            3 if id % 2 == 0 => ("callback_requested", None),
            _ => ("answered", Some(30_000 + (id * 104_729) % 600_000)),
        };
        if outcome == "answered" {
            ops.push(
                CallOp::Answered {
                    id,
                    answered_at_ms: entered + wait,
                    agent: agent.into(),
                    wait_ms: wait,
                    in_target: wait <= 20_000,
                }
                .into(),
            );
            ops.push(
                CallOp::Quality {
                    id,
                    caller_lost: id % 5,
                    caller_jitter_us: id * 137,
                    agent_lost: (id % 2 == 0).then_some(id % 3),
                    agent_jitter_us: (id % 2 == 0).then_some(id * 71),
                }
                .into(),
            );
            if id % 5 == 0 {
                ops.push(
                    CallOp::Survey {
                        id,
                        score: (id % 5 + 1) as u8,
                    }
                    .into(),
                );
            }
            if id % 6 == 0 {
                ops.push(
                    ApiOp::Disposition {
                        call: id,
                        code: "resolved".into(),
                        notes: Some(format!("note {id}")),
                    }
                    .into(),
                );
            }
        }
        if outcome == "callback_requested" {
            ops.push(
                CallOp::CallbackRequested {
                    id,
                    queue: queue.into(),
                    caller_number: format!("+49301234{id:04}"),
                    caller_name: None,
                    entered_at_ms: entered,
                    position: Some((id % 4) as u32 + 1),
                    requested_at_ms: entered + wait,
                }
                .into(),
            );
        }
        if id % 53 == 0 {
            continue; // still live: counts as it stands
        }
        ops.push(
            CallOp::Ended {
                id,
                ended_at_ms: entered + wait + talk.unwrap_or(0),
                outcome,
                queue: (outcome == "overflow").then(|| "billing".to_string()),
                wait_ms: (outcome != "answered").then_some(wait),
                talk_ms: talk,
                short_abandon: (outcome == "abandoned").then_some(wait < 5_000),
                hangup_by: Some(if id % 2 == 0 { "caller" } else { "agent" }),
                hangup_cause: None,
                sip_code: (outcome == "answered").then_some(200),
            }
            .into(),
        );
        ops.push(
            ApiOp::Audit {
                at_ms: entered,
                token_role: Some("agent".into()),
                agent: Some(agent.into()),
                action: "call.disposition".into(),
                target: Some(id.to_string()),
                from_addr: None,
                result: "ok".into(),
            }
            .into(),
        );
    }
    ops
}

fn cdr_rows(r: &dyn CallRecords, start: i64, end: i64) -> Vec<String> {
    let mut rows = Vec::new();
    r.each_cdr(start, end, &mut |v| {
        rows.push(format!("{v:?}"));
        true
    })
    .unwrap();
    rows
}

#[test]
fn reports_cdrs_and_call_pages_read_the_same_from_postgres_as_from_sqlite() {
    let day = ctid::report::parse_date("2024-03-04").unwrap();
    let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
    let day_ms = ctid::report::day_start_ms(day, &tz).unwrap() as u64;
    let ops = a_day_of_ops(day_ms);

    // SQLite, through the daemon's writer.
    let dir = tempfile::tempdir().unwrap();
    let w = Writer::start(store::open(dir.path()).unwrap(), 1024).unwrap();
    for op in &ops {
        w.sender.blocking_send(op.clone()).unwrap();
    }
    w.join();
    let lite = Reader::open(dir.path()).unwrap();

    let pg = Postgres::start();
    let url = pg.create_db("figures");
    let db = PgConn::connect(&url).unwrap();
    for chunk in ops.chunks(100) {
        assert_eq!(db.write_ops(chunk), 0);
    }
    // A bad op (an event of a call never started) costs only itself.
    let bad: Vec<Op> = vec![CallOp::Event {
        id: 9_999,
        at_ms: day_ms,
        kind: "entered",
        agent: None,
        detail: None,
    }
    .into()];
    assert_eq!(db.write_ops(&bad), 1);

    let goals = |t| ctid::report::queue::Goals {
        sl_target_secs: t,
        sl_goal: 0.8,
        answer_rate_goal: 0.9,
    };
    let settings = ctid::report::Settings {
        time_zone: "Europe/Berlin".into(),
        tz: tz.clone(),
        day_interval_minutes: 30,
        queues: vec![("sales".into(), goals(20)), ("billing".into(), goals(30))],
        agents: vec!["amy".into(), "bob".into(), "cyd".into()],
        queue_members: vec![],
    };
    let now = day_ms as i64 + 20 * 3_600_000;
    for kind in [PeriodKind::Day, PeriodKind::Week, PeriodKind::Month] {
        let req = Request {
            kind,
            date: day,
            queue: None,
            agent: None,
            interval_minutes: None,
            parts: Parts::All,
        };
        let a = render::json(&report::build(&lite, &settings, &req, now).unwrap()).unwrap();
        let b = render::json(&report::build(&db, &settings, &req, now).unwrap()).unwrap();
        assert_eq!(a, b, "{kind:?} report differs");
        assert!(a.contains("\"sales\""), "{a}");
    }
    let start = day_ms as i64;
    let end = start + 86_400_000;
    let (a, b) = (cdr_rows(&lite, start, end), cdr_rows(&db, start, end));
    assert_eq!(a.len(), 240);
    assert_eq!(a, b);
    let mut csv_a = Vec::new();
    let mut csv_b = Vec::new();
    report::export::export(&lite, start, end, CdrFormat::Csv, &tz, &mut csv_a).unwrap();
    report::export::export(&db, start, end, CdrFormat::Csv, &tz, &mut csv_b).unwrap();
    assert_eq!(
        String::from_utf8(csv_a).unwrap(),
        String::from_utf8(csv_b).unwrap()
    );

    // The API's pages, with every filter and the cursor.
    let mut filter = CallFilter {
        queue: Some("sales".into()),
        caller: Some("123401".into()),
        limit: 7,
        ..CallFilter::default()
    };
    loop {
        let (pa, pb) = (lite.calls(&filter).unwrap(), db.calls(&filter).unwrap());
        assert_eq!(pa, pb);
        if pa.len() <= filter.limit {
            break;
        }
        let last = &pa[filter.limit - 1];
        filter.cursor = Some((last.entered_at_ms, last.id as i64));
    }
    let filter = CallFilter {
        from: Some(start),
        to: Some(end),
        agent: Some("amy".into()),
        outcome: Some("answered".into()),
        limit: 500,
        ..CallFilter::default()
    };
    assert_eq!(lite.calls(&filter).unwrap(), db.calls(&filter).unwrap());
    for id in [1, 6, 53, 240, 9_999] {
        assert_eq!(lite.call(id).unwrap(), db.call(id).unwrap());
        assert_eq!(lite.call_events(id).unwrap(), db.call_events(id).unwrap());
    }
    assert_eq!(
        lite.open_callbacks(None).unwrap(),
        db.open_callbacks(None).unwrap()
    );
    assert_eq!(
        lite.callback_requests(Some("sales"), None).unwrap(),
        db.callback_requests(Some("sales"), None).unwrap()
    );
    let stats = |r: &dyn StatsReads| {
        let mut v = Vec::new();
        r.each_stats_call(start, end, &mut |c| v.push(c)).unwrap();
        v
    };
    assert_eq!(stats(&lite), stats(&db));

    // The start-up reads and retention.
    assert_eq!(db.next_call_id().unwrap(), 241);
    assert_eq!(db.interrupt_live_calls(now as u64).unwrap(), 4);
    assert_eq!(db.interrupt_live_calls(now as u64).unwrap(), 0);
    assert_eq!(
        db.purge_batch(day_ms + 8 * 3_600_000 + 10 * 97_000 + 1, 4)
            .unwrap(),
        4
    );
    assert_eq!(
        db.purge_batch(day_ms + 8 * 3_600_000 + 10 * 97_000 + 1, 100)
            .unwrap(),
        6
    );
    assert!(db.call(10).unwrap().is_none());
    assert!(db.call(11).unwrap().is_some());
}

#[test]
fn the_daemons_writer_thread_runs_on_postgres_with_its_jobs_in_order() {
    let pg = Postgres::start();
    let url = pg.create_db("writer");
    let w = Writer::start(PgConn::connect(&url).unwrap(), 64).unwrap();
    let day_ms = 1_709_506_800_000;
    let ops = a_day_of_ops(day_ms);
    let (seen_tx, seen_rx) = std::sync::mpsc::channel();
    for (i, op) in ops.iter().enumerate() {
        w.sender.blocking_send(op.clone()).unwrap();
        if i == 200 {
            // A job sees the ops queued before it, and takes its own transaction.
            let seen = seen_tx.clone();
            let job = Job::new(move |db: &dyn WriteDb| {
                let tx = db.outbound().write_tx().unwrap();
                tx.insert_dnc("+442079460123", "job", 1).unwrap();
                tx.commit().unwrap();
                let _ = seen.send(db.outbound().find_dnc("+442079460123").unwrap());
            });
            w.sender.blocking_send(Op::Job(job)).unwrap();
            // A job that panics inside a transaction it leaked: rolled back, the writer goes on.
            let job = Job::new(|db: &dyn WriteDb| {
                let tx = db.outbound().write_tx().unwrap();
                tx.insert_dnc("+442079460999", "lost", 1).unwrap();
                std::mem::forget(tx);
                panic!("boom");
            });
            w.sender.blocking_send(Op::Job(job)).unwrap();
        }
    }
    w.join();
    assert_eq!(seen_rx.recv().unwrap(), Some((1, "job".to_string())));
    let db = PgConn::connect(&url).unwrap();
    assert_eq!(db.find_dnc("+442079460999").unwrap(), None);
    assert_eq!(db.next_call_id().unwrap(), 241);
    let mut n = 0;
    db.each_cdr(day_ms as i64, day_ms as i64 + 86_400_000, &mut |_| {
        n += 1;
        true
    })
    .unwrap();
    assert_eq!(n, 240);
}
