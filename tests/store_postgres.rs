//! The PostgreSQL backend of the store against a real PostgreSQL 15 started by the test
//! (`common::postgres`): the schema migrates once (also with two nodes starting at once), the
//! callback lists' rules (`ctid::outbound`) run on it unchanged through the backend-neutral
//! `OutboundDb`, the queue-callback triggers follow their contact, and two nodes working one list
//! at once dial exactly its quota and no contact or customer twice.

mod common;

use common::postgres::Postgres;
use ctid::outbound::{
    self, AttemptResult, CountryCode, Decision, ImportOptions, ListSpec, Mode, Purpose,
    RetryDelays, Window,
};
use ctid::store::outbound::OutboundDb;
use ctid::store::postgres::PgConn;
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
