use super::*;
use crate::outbound::testutil::{
    add_contacts, answer_done, db, dial, monday_10, ms, nothing, reopen, spec, DAY, HOUR,
};
use crate::outbound::{
    add_do_not_call, create_list, get_attempt, list_counters, pause_list, record_result,
    resume_list, stop_list, CountryCode, ListSpec,
};
use crate::store::test_support::TestDb;

fn uk() -> CountryCode {
    CountryCode::new("44").unwrap()
}

fn list_with(conn: &TestDb, name: &str, f: impl FnOnce(&mut ListSpec)) -> ListId {
    let mut s = spec(name);
    f(&mut s);
    create_list(conn, &s, 0).unwrap().id
}

fn skips(conn: &TestDb) -> Vec<(i64, String)> {
    crate::store::test_support::skips(conn)
}

#[test]
fn quota_of_30_then_the_next_local_day_resumes() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "q", |s| s.quota_per_day = Some(30));
    let rows: Vec<(String, String)> = (0..40)
        .map(|i| (format!("K{i}"), format!("07700 900{i:03}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    add_contacts(&conn, list, &rows);
    let mut t = monday_10();
    for _ in 0..30 {
        let (attempt, _, _) = dial(&conn, list, "a1", t);
        answer_done(&conn, attempt, t + 1_000);
        t += 5 * 60_000;
    }
    assert_eq!(
        nothing(&conn, list, "a1", t),
        Why::ListQuotaReached {
            list,
            used: 30,
            in_flight: 0,
            quota: 30,
            resets_at_ms: ms("2024-03-05T00:00:00Z"),
        }
    );
    assert_eq!(list_counters(&conn, list, t).unwrap().quota_used_today, 30);
    // Still Monday, one hour before the window closes: still nothing.
    assert!(matches!(
        nothing(&conn, list, "a2", ms("2024-03-04T16:00:00Z")),
        Why::ListQuotaReached { .. }
    ));
    // Tuesday morning: dialing resumes.
    let (_, c, _) = dial(&conn, list, "a1", ms("2024-03-05T09:00:00Z"));
    assert_eq!(c.customer_id.as_deref(), Some("K30"));
}

#[test]
fn attempts_in_flight_count_against_the_quota_so_it_is_never_exceeded() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "q", |s| {
        s.quota_per_day = Some(2);
        s.agent_quota_per_day = Some(1);
        s.agents.push("a3".into());
    });
    add_contacts(
        &conn,
        list,
        &[
            ("A", "07700900001"),
            ("B", "07700900002"),
            ("C", "07700900003"),
        ],
    );
    let t = monday_10();
    let (first, _, _) = dial(&conn, list, "a1", t);
    answer_done(&conn, first, t);
    assert!(matches!(
        nothing(&conn, list, "a1", t + 1),
        Why::AgentQuotaReached {
            used: 1,
            in_flight: 0,
            quota: 1,
            ..
        }
    ));
    // a2's attempt is ringing: it may be the list's second success.
    let (live, _, _) = dial(&conn, list, "a2", t + 2);
    assert!(matches!(
        nothing(&conn, list, "a3", t + 3),
        Why::ListQuotaReached {
            used: 1,
            in_flight: 1,
            quota: 2,
            ..
        }
    ));
    record_result(&conn, live, AttemptResult::Failed, Some(503), t + 4).unwrap();
    dial(&conn, list, "a3", t + 5);
}

#[test]
fn calling_window_closed_then_open() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "w", |_| {});
    add_contacts(&conn, list, &[("A", "07700900001")]);
    assert_eq!(
        nothing(&conn, list, "a1", ms("2024-03-04T08:59:00Z")),
        Why::WindowClosed {
            list,
            opens_at_ms: Some(ms("2024-03-04T09:00:00Z"))
        }
    );
    // Saturday: opens Monday.
    assert_eq!(
        nothing(&conn, list, "a1", ms("2024-03-09T12:00:00Z")),
        Why::WindowClosed {
            list,
            opens_at_ms: Some(ms("2024-03-11T09:00:00Z"))
        }
    );
    let (_, c, n) = dial(&conn, list, "a1", ms("2024-03-04T09:00:00Z"));
    assert_eq!(
        (c.customer_id.as_deref(), n.as_str()),
        (Some("A"), "+447700900001")
    );
}

#[test]
fn no_dialing_on_a_holiday() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "h", |s| s.holidays = vec!["2024-03-04".into()]);
    add_contacts(&conn, list, &[("A", "07700900001")]);
    assert_eq!(
        nothing(&conn, list, "a1", monday_10()),
        Why::Holiday {
            list,
            date: "2024-03-04".into(),
            opens_at_ms: Some(ms("2024-03-05T09:00:00Z"))
        }
    );
    dial(&conn, list, "a1", monday_10() + DAY);
}

#[test]
fn the_quota_day_and_windows_follow_london_time_across_the_spring_change() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "dst", |s| {
        s.quota_per_day = Some(1);
        s.windows[0].days = vec!["mon-sun".into()];
        s.windows[0].start = "00:00".into();
        s.windows[0].end = "24:00".into();
    });
    add_contacts(&conn, list, &[("A", "07700900001"), ("B", "07700900002")]);
    // Sunday 2024-03-31 is 23 hours long in London. 22:30Z is 23:30 BST, still Sunday.
    let (a, _, _) = dial(&conn, list, "a1", ms("2024-03-31T22:30:00Z"));
    answer_done(&conn, a, ms("2024-03-31T22:31:00Z"));
    assert!(matches!(
        nothing(&conn, list, "a1", ms("2024-03-31T22:50:00Z")),
        Why::ListQuotaReached { resets_at_ms, .. } if resets_at_ms == ms("2024-03-31T23:00:00Z")
    ));
    // 23:10Z is 00:10 BST on Monday: a new local day although UTC is still on Sunday.
    dial(&conn, list, "a1", ms("2024-03-31T23:10:00Z"));

    // A 09:00–17:00 window the Monday after the change is 08:00–16:00 UTC.
    let office = list_with(&conn, "office", |_| {});
    add_contacts(&conn, office, &[("C", "07700900003")]);
    assert!(matches!(
        nothing(&conn, office, "a2", ms("2024-04-01T16:30:00Z")),
        Why::WindowClosed { .. }
    ));
    dial(&conn, office, "a2", ms("2024-04-01T08:00:00Z"));
}

#[test]
fn a_customer_answered_on_any_list_within_the_period_is_skipped_and_allowed_after_it() {
    let (_dir, conn) = db();
    let week = 7 * 86_400;
    let a = list_with(&conn, "a", |_| {});
    let b = list_with(&conn, "b", |s| s.dedupe_period_secs = week);
    let c = list_with(&conn, "c", |s| s.dedupe_period_secs = week);
    add_contacts(&conn, a, &[("X", "07700900001"), ("Y", "07700900002")]);
    // In b: X by id; Z shares X's number; Y was only rung, never answered.
    add_contacts(
        &conn,
        b,
        &[
            ("X", "07700900099"),
            ("Z", "07700900001"),
            ("Y", "07700900002"),
        ],
    );
    add_contacts(&conn, c, &[("X", "07700900001")]);
    let t = monday_10();
    let (x, _, _) = dial(&conn, a, "a1", t);
    answer_done(&conn, x, t);
    let (y, _, _) = dial(&conn, a, "a1", t + HOUR);
    record_result(
        &conn,
        y,
        AttemptResult::NoAnswer,
        Some(480),
        t + HOUR + 30_000,
    )
    .unwrap();

    // Tuesday: X and Z are duplicates, Y is dialed.
    let (_, yb, _) = dial(&conn, b, "a1", t + DAY);
    assert_eq!(yb.customer_id.as_deref(), Some("Y"));
    let skipped: Vec<(i64, String)> = skips(&conn);
    assert_eq!(skipped, [(3, "duplicate".into()), (4, "duplicate".into())]);
    let xb = get_contact(&conn, ContactId(3)).unwrap();
    assert_eq!(xb.state, ContactState::Skipped);
    assert_eq!(xb.done_reason.as_deref(), Some("duplicate"));
    assert_eq!(xb.attempts, 0);
    let counters = list_counters(&conn, b, t + DAY).unwrap();
    assert_eq!(counters.skipped_by_reason["duplicate"], 2);
    assert_eq!(counters.contacts.skipped, 2);

    // Eight days after the answer, list c may call X again.
    let (_, xc, _) = dial(&conn, c, "a2", t + 8 * DAY);
    assert_eq!(xc.customer_id.as_deref(), Some("X"));
}

#[test]
fn the_same_customer_is_not_called_from_two_lists_at_once() {
    let (_dir, conn) = db();
    let a = list_with(&conn, "a", |_| {});
    let b = list_with(&conn, "b", |_| {});
    add_contacts(&conn, a, &[("X", "07700900001")]);
    add_contacts(&conn, b, &[("X", "07700900001")]);
    let t = monday_10();
    let (live, _, _) = dial(&conn, a, "a1", t);
    assert_eq!(
        nothing(&conn, b, "a2", t + 1),
        Why::NoContactDue {
            next_due_at_ms: None
        }
    );
    assert!(skips(&conn).is_empty(), "passed over, not skipped");
    record_result(&conn, live, AttemptResult::Busy, Some(486), t + 2).unwrap();
    dial(&conn, b, "a2", t + 3);
}

#[test]
fn do_not_call_numbers_are_never_dialed() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "dnc", |s| s.max_attempts = 5);
    add_contacts(
        &conn,
        list,
        &[("A", "07700900001"), ("B", "07700900002;07700900003")],
    );
    add_do_not_call(&conn, "07700 900001", &uk(), "customer", 0).unwrap();
    add_do_not_call(&conn, "07700 900002", &uk(), "customer", 0).unwrap();
    let mut t = monday_10();
    // B's second number is the only one ever dialed, attempt after attempt.
    for _ in 0..3 {
        let (attempt, c, n) = dial(&conn, list, "a1", t);
        assert_eq!(
            (c.customer_id.as_deref(), n.as_str()),
            (Some("B"), "+447700900003")
        );
        record_result(&conn, attempt, AttemptResult::Busy, Some(486), t).unwrap();
        t += HOUR;
    }
    assert_eq!(skips(&conn), [(1, "do_not_call".into())]);
    let a = get_contact(&conn, ContactId(1)).unwrap();
    assert_eq!(
        (a.state, a.done_reason.as_deref()),
        (ContactState::Skipped, Some("do_not_call"))
    );
    let dialed = crate::store::test_support::dials_to(&conn, &["+447700900001", "+447700900002"]);
    assert_eq!(dialed, 0);
}

#[test]
fn several_numbers_are_dialed_in_turn() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "alt", |_| {});
    add_contacts(&conn, list, &[("A", "07700900001;07700900002")]);
    let mut t = monday_10();
    let mut numbers = Vec::new();
    for _ in 0..3 {
        let (attempt, _, n) = dial(&conn, list, "a1", t);
        numbers.push(n);
        record_result(&conn, attempt, AttemptResult::NoAnswer, None, t).unwrap();
        t += 2 * HOUR;
    }
    assert_eq!(numbers, ["+447700900001", "+447700900002", "+447700900001"]);
}

#[test]
fn order_is_due_time_then_list_priority_then_import_order() {
    let (_dir, conn) = db();
    let low = list_with(&conn, "low", |_| {});
    let high = list_with(&conn, "high", |s| s.priority = 10);
    let opts = crate::outbound::ImportOptions::new(uk());
    let csv = "customer_id,phone,due_at\nL1,07700900001,\nL2,07700900002,2024-03-04 15:00\n";
    crate::outbound::import_contacts_csv(&conn, low, csv.as_bytes(), &opts, 0).unwrap();
    let csv = "customer_id,phone,due_at\nH1,07700900011,\nH2,07700900012,2024-03-04 16:00\n\
               H3,07700900013,\n";
    crate::outbound::import_contacts_csv(&conn, high, csv.as_bytes(), &opts, 0).unwrap();
    let mut t = monday_10();
    let mut order = Vec::new();
    for _ in 0..5 {
        let Decision::Dial {
            attempt, contact, ..
        } = next_contact_among(&conn, &[low, high], "a1", t).unwrap()
        else {
            panic!("nothing");
        };
        order.push(contact.customer_id.unwrap_or_default());
        answer_done(&conn, attempt, t);
        t += 60_000;
    }
    assert_eq!(order, ["L2", "H2", "H1", "H3", "L1"]);
}

#[test]
fn paused_stopped_and_busy_agents() {
    let (_dir, conn) = db();
    let list = list_with(&conn, "p", |_| {});
    add_contacts(&conn, list, &[("A", "07700900001"), ("B", "07700900002")]);
    let t = monday_10();
    assert_eq!(nothing(&conn, list, "zz", t), Why::AgentNotOnList { list });
    pause_list(&conn, list, t).unwrap();
    assert_eq!(nothing(&conn, list, "a1", t), Why::ListPaused { list });
    resume_list(&conn, list, t).unwrap();
    let (attempt, _, _) = dial(&conn, list, "a1", t);
    assert_eq!(nothing(&conn, list, "a1", t), Why::AgentBusy { attempt });
    stop_list(&conn, list, t).unwrap();
    assert_eq!(nothing(&conn, list, "a2", t), Why::ListStopped { list });
    assert_eq!(
        next_contact_among(&conn, &[], "a2", t).unwrap(),
        Decision::Nothing { why: Why::NoLists }
    );
    assert!(matches!(
        next_contact(&conn, ListId(77), "a2", t),
        Err(OutboundError::NoSuchList(_))
    ));
}

#[test]
fn two_dialers_never_claim_the_same_contact() {
    let (dir, conn) = db();
    let t = monday_10();
    let mut lists = Vec::new();
    for i in 0..10 {
        let list = list_with(&conn, &format!("race{i}"), |_| {});
        add_contacts(&conn, list, &[("ONLY", &format!("07700 9000{i:02}"))]);
        lists.push(list);
    }
    for list in lists {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(2));
        let threads: Vec<_> = ["a1", "a2"]
            .into_iter()
            .map(|agent| {
                let conn = reopen(&dir);
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    next_contact(&conn, list, agent, t).unwrap()
                })
            })
            .collect();
        let decisions: Vec<Decision> = threads.into_iter().map(|h| h.join().unwrap()).collect();
        let dials: Vec<&Decision> = decisions
            .iter()
            .filter(|d| matches!(d, Decision::Dial { .. }))
            .collect();
        assert_eq!(dials.len(), 1, "{decisions:?}");
        let Decision::Dial { attempt, .. } = dials[0] else {
            unreachable!()
        };
        assert_eq!(get_attempt(&conn, *attempt).unwrap().attempt_no, Some(1));
        let n = crate::store::test_support::attempts_of_list(&conn, list.0);
        assert_eq!(n, 1);
        // Free the agent for the next round.
        record_result(&conn, *attempt, AttemptResult::Failed, None, t).unwrap();
    }
}

#[test]
fn four_dialers_share_a_list_and_each_contact_is_dialed_once() {
    let (dir, conn) = db();
    let list = list_with(&conn, "shared", |s| s.queue = Some("sales".into()));
    let rows: Vec<(String, String)> = (0..40)
        .map(|i| (format!("K{i}"), format!("07700 900{i:03}")))
        .collect();
    let rows: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    add_contacts(&conn, list, &rows);
    let t = monday_10();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let conn = reopen(&dir);
            std::thread::spawn(move || {
                let agent = format!("agent{i}");
                let mut mine = Vec::new();
                while let Decision::Dial {
                    attempt, contact, ..
                } = next_contact(&conn, list, &agent, t).unwrap()
                {
                    mine.push(contact.id);
                    answer_done(&conn, attempt, t);
                }
                mine
            })
        })
        .collect();
    let mut all: Vec<ContactId> = threads
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    all.sort();
    assert_eq!(all, (1..=40).map(ContactId).collect::<Vec<_>>());
}
