use super::*;
use crate::outbound::testutil::{
    add_contacts, answer_done, db, dial, monday_10, nothing, reopen, spec, HOUR,
};
use crate::outbound::{
    create_list, get_contact, is_do_not_call, list_counters, next_contact, Decision, Why,
};
use crate::store::test_support::TestDb;

const MIN: u64 = 60_000;

fn one_contact(conn: &TestDb) -> ListId {
    let list = create_list(conn, &spec("l"), 0).unwrap().id;
    add_contacts(conn, list, &[("A", "07700900001")]);
    list
}

#[test]
fn busy_is_retried_after_the_busy_delay() {
    let (_dir, conn) = db();
    let list = one_contact(&conn);
    let t = monday_10();
    let (attempt, c, _) = dial(&conn, list, "a1", t);
    assert_eq!(c.state, ContactState::InProgress);
    assert_eq!(
        record_result(&conn, attempt, AttemptResult::Ringing, Some(180), t + 1_000).unwrap(),
        ContactNext::InProgress
    );
    let next = record_result(&conn, attempt, AttemptResult::Busy, Some(486), t + 5_000).unwrap();
    assert_eq!(
        next,
        ContactNext::RetryAt {
            at_ms: t + 5_000 + 10 * MIN
        }
    );
    let a = get_attempt(&conn, attempt).unwrap();
    assert_eq!(
        (a.result, a.sip_code, a.ended_at_ms),
        (Some(AttemptResult::Busy), Some(486), Some(t + 5_000))
    );
    assert_eq!(
        nothing(&conn, list, "a1", t + 9 * MIN),
        Why::NoContactDue {
            next_due_at_ms: Some(t + 5_000 + 10 * MIN)
        }
    );
    let (second, c, _) = dial(&conn, list, "a1", t + 11 * MIN);
    assert_eq!(c.attempts, 2);
    assert_eq!(get_attempt(&conn, second).unwrap().attempt_no, Some(2));
    assert_eq!(c.last_result, Some(AttemptResult::Busy));
}

#[test]
fn no_answer_until_max_attempts_makes_the_contact_unreachable() {
    let (_dir, conn) = db();
    let list = one_contact(&conn);
    let mut t = monday_10();
    let mut nexts = Vec::new();
    for _ in 0..3 {
        let (attempt, _, _) = dial(&conn, list, "a1", t);
        nexts.push(record_result(&conn, attempt, AttemptResult::NoAnswer, Some(408), t).unwrap());
        t += HOUR;
    }
    assert_eq!(
        nexts,
        [
            ContactNext::RetryAt {
                at_ms: monday_10() + HOUR
            },
            ContactNext::RetryAt {
                at_ms: monday_10() + 2 * HOUR
            },
            ContactNext::Unreachable
        ]
    );
    let c = get_contact(&conn, ContactId(1)).unwrap();
    assert_eq!(
        (c.state, c.done_reason.as_deref(), c.attempts),
        (ContactState::Unreachable, Some("max_attempts"), 3)
    );
    assert_eq!(
        nothing(&conn, list, "a1", t + HOUR),
        Why::NoContactDue {
            next_due_at_ms: None
        }
    );
    let counters = list_counters(&conn, list, t).unwrap();
    assert_eq!(counters.attempts.no_answer, 3);
    assert_eq!(counters.contacts.unreachable, 1);
}

#[test]
fn dispositions() {
    let (_dir, conn) = db();
    let list = create_list(&conn, &spec("d"), 0).unwrap().id;
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
    // A: answered, "callback" given during the call; applied when the call ends.
    let (a, _, _) = dial(&conn, list, "a1", t);
    record_result(&conn, a, AttemptResult::Answered, Some(200), t).unwrap();
    assert_eq!(
        set_disposition(&conn, a, "callback", Some("after 5"), Some(7), t + MIN).unwrap(),
        ContactNext::InProgress
    );
    assert_eq!(
        record_hangup(&conn, a, t + 2 * MIN).unwrap(),
        ContactNext::RetryAt {
            at_ms: t + 2 * MIN + HOUR
        }
    );
    let got = get_attempt(&conn, a).unwrap();
    assert_eq!(
        (
            got.disposition.as_deref(),
            got.notes.as_deref(),
            got.survey_score
        ),
        (Some("callback"), Some("after 5"), Some(7))
    );
    // B: answered and hung up; awaiting disposition until "done".
    let (b, _, _) = dial(&conn, list, "a1", t + 3 * MIN);
    record_result(&conn, b, AttemptResult::Answered, None, t + 3 * MIN).unwrap();
    assert_eq!(
        record_hangup(&conn, b, t + 4 * MIN).unwrap(),
        ContactNext::InProgress
    );
    assert_eq!(
        set_disposition(&conn, b, "done", None, None, t + 5 * MIN).unwrap(),
        ContactNext::Done {
            reason: "done".into()
        }
    );
    // C: asks never to be called again.
    let (c, _, _) = dial(&conn, list, "a1", t + 6 * MIN);
    record_result(&conn, c, AttemptResult::Answered, None, t + 6 * MIN).unwrap();
    set_disposition(&conn, c, "do_not_call", None, None, t + 7 * MIN).unwrap();
    assert!(is_do_not_call(&conn, "+447700900003").unwrap().is_some());
    record_hangup(&conn, c, t + 8 * MIN).unwrap();
    assert_eq!(
        get_contact(&conn, ContactId(3)).unwrap().state,
        ContactState::Done
    );
    // Refusals.
    assert!(matches!(
        set_disposition(&conn, c, "done", None, Some(11), t),
        Err(OutboundError::Invalid(_))
    ));
    assert!(matches!(
        set_disposition(&conn, c, " ", None, None, t),
        Err(OutboundError::Invalid(_))
    ));
    assert!(matches!(
        record_result(&conn, c, AttemptResult::Busy, None, t),
        Err(OutboundError::Conflict(_))
    ));
    assert!(matches!(
        record_result(&conn, AttemptId(99), AttemptResult::Busy, None, t),
        Err(OutboundError::NoSuchAttempt(_))
    ));
    let counters = list_counters(&conn, list, t + 10 * MIN).unwrap();
    assert_eq!(counters.quota_used_today, 3);
    assert_eq!(counters.agents_today["a1"], 3);
    assert_eq!(counters.contacts.done, 2);
    assert_eq!(counters.contacts.pending, 1);
}

#[test]
fn repeated_reports_are_harmless_and_contradictions_refused() {
    let (_dir, conn) = db();
    let list = one_contact(&conn);
    let t = monday_10();
    let (a, _, _) = dial(&conn, list, "a1", t);
    record_result(&conn, a, AttemptResult::Failed, Some(503), t).unwrap();
    assert_eq!(
        record_result(&conn, a, AttemptResult::Failed, Some(503), t + 1).unwrap(),
        ContactNext::Unchanged {
            state: ContactState::Pending
        }
    );
    assert!(matches!(
        record_result(&conn, a, AttemptResult::Answered, None, t + 2),
        Err(OutboundError::Conflict(_))
    ));
    assert!(matches!(
        record_hangup(&conn, a, t + 2),
        Err(OutboundError::Conflict(_))
    ));
    let c = get_contact(&conn, ContactId(1)).unwrap();
    assert_eq!((c.attempts, c.next_attempt_at_ms), (1, Some(t + 15 * MIN)));
}

#[test]
fn a_preview_skip_by_the_agent_is_not_an_attempt() {
    let (_dir, conn) = db();
    let list = create_list(&conn, &spec("p"), 0).unwrap().id;
    add_contacts(&conn, list, &[("A", "07700900001"), ("B", "07700900002")]);
    let t = monday_10();
    let (a, c, _) = dial(&conn, list, "a1", t);
    assert_eq!(c.customer_id.as_deref(), Some("A"));
    assert_eq!(
        record_result(&conn, a, AttemptResult::Skipped, None, t + 1_000).unwrap(),
        ContactNext::RetryAt {
            at_ms: t + 1_000 + HOUR
        }
    );
    let got = get_attempt(&conn, a).unwrap();
    assert_eq!(
        (got.attempt_no, got.reason.as_deref()),
        (None, Some("agent"))
    );
    // The agent gets the next contact, not the same one again.
    let (_, c, _) = dial(&conn, list, "a1", t + 2_000);
    assert_eq!(c.customer_id.as_deref(), Some("B"));
    // A later dial of A is its attempt 1.
    let (b, _, _) = dial(&conn, list, "a2", t + 2 * HOUR);
    assert_eq!(get_attempt(&conn, b).unwrap().attempt_no, Some(1));
    assert!(matches!(
        set_disposition(&conn, a, "done", None, None, t),
        Err(OutboundError::Conflict(_))
    ));
}

#[test]
fn reconcile_after_restart_closes_live_attempts_and_never_redials_one() {
    let (dir, conn) = db();
    let mut s = spec("r");
    s.quota_per_day = Some(5);
    s.agents.push("a3".into());
    let list = create_list(&conn, &s, 0).unwrap().id;
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
    let (ringing, _, _) = dial(&conn, list, "a1", t);
    record_result(&conn, ringing, AttemptResult::Ringing, Some(180), t).unwrap();
    let (talking, _, _) = dial(&conn, list, "a2", t);
    record_result(&conn, talking, AttemptResult::Answered, Some(200), t + MIN).unwrap();
    let (waiting, _, _) = dial(&conn, list, "a3", t);
    record_result(&conn, waiting, AttemptResult::Answered, None, t).unwrap();
    record_hangup(&conn, waiting, t + 2 * MIN).unwrap();
    drop(conn); // kill -9: no clean shutdown ran

    let conn = reopen(&dir);
    let restart = t + 10 * MIN;
    let report = reconcile_after_restart(&conn, restart).unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            interrupted: 2,
            rescheduled: 2,
            unreachable: 0,
            awaiting_disposition: 1,
            given_back: 0,
        }
    );
    let r = get_attempt(&conn, ringing).unwrap();
    assert_eq!(
        (r.result, r.reason.as_deref(), r.ended_at_ms),
        (
            Some(AttemptResult::Failed),
            Some("interrupted"),
            Some(restart)
        )
    );
    let a = get_attempt(&conn, talking).unwrap();
    assert_eq!(
        (a.result, a.reason.as_deref()),
        (Some(AttemptResult::Answered), Some("interrupted"))
    );
    // The answered call still counts towards today's quota.
    assert_eq!(
        list_counters(&conn, list, restart)
            .unwrap()
            .quota_used_today,
        2
    );
    assert_eq!(
        reconcile_after_restart(&conn, restart).unwrap().interrupted,
        0
    );
    // After the failed delay both contacts are dialed again, with new attempt numbers.
    assert!(matches!(
        next_contact(&conn, list, "a1", restart + MIN).unwrap(),
        Decision::Nothing { .. }
    ));
    let later = restart + 16 * MIN;
    let (x, cx, _) = dial(&conn, list, "a1", later);
    let (y, cy, _) = dial(&conn, list, "a2", later);
    let mut ids = [cx.id, cy.id];
    ids.sort();
    assert_eq!(ids, [ContactId(1), ContactId(2)]);
    assert_eq!(get_attempt(&conn, x).unwrap().attempt_no, Some(2));
    assert_eq!(get_attempt(&conn, y).unwrap().attempt_no, Some(2));
}

#[test]
fn answered_and_done_before_the_crash_stays_done() {
    let (dir, conn) = db();
    let list = one_contact(&conn);
    let t = monday_10();
    let (a, _, _) = dial(&conn, list, "a1", t);
    answer_done(&conn, a, t);
    drop(conn);
    let conn = reopen(&dir);
    assert_eq!(
        reconcile_after_restart(&conn, t + HOUR).unwrap(),
        ReconcileReport::default()
    );
    assert_eq!(
        get_contact(&conn, ContactId(1)).unwrap().state,
        ContactState::Done
    );
}

#[test]
fn a_claim_never_dialed_is_given_back_at_restart_not_counted_as_an_attempt() {
    let (dir, conn) = db();
    let list = create_list(&conn, &spec("p"), 0).unwrap().id;
    add_contacts(&conn, list, &[("A", "07700900001")]);
    let t = monday_10();
    // A preview on the agent's screen (claimed, no call, no result) when ctid is killed.
    let (shown, contact, _) = dial(&conn, list, "a1", t);
    drop(conn);

    let conn = reopen(&dir);
    let restart = t + 10 * MIN;
    let report = reconcile_after_restart(&conn, restart).unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            given_back: 1,
            ..ReconcileReport::default()
        }
    );
    let a = get_attempt(&conn, shown).unwrap();
    assert_eq!(
        (a.result, a.reason.as_deref(), a.attempt_no, a.ended_at_ms),
        (
            Some(AttemptResult::Skipped),
            Some("interrupted"),
            None,
            Some(restart)
        )
    );
    // Due again at once, still on its first dial attempt.
    let (again, c, _) = dial(&conn, list, "a2", restart);
    assert_eq!(c.id, contact.id);
    assert_eq!(get_attempt(&conn, again).unwrap().attempt_no, Some(1));
}
