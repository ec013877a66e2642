use super::*;
use crate::outbound::testutil::{db, monday_10, spec, HOUR};
use crate::outbound::{
    add_do_not_call, create_list, get_contact, get_list, next_contact_among, record_hangup,
    record_result, stop_list, AttemptId, AttemptResult, Decision, ListState,
};
use crate::store::test_support;
use crate::store::test_support::TestDb;

const MIN: u64 = 60_000;

fn settings() -> QueueCallbackSettings {
    QueueCallbackSettings {
        time_zone: "Europe/London".into(),
        country_code: CountryCode::new("44").unwrap(),
    }
}

/// A request of a caller of `queue` on inbound call `call`, who joined at `entered`.
fn request(conn: &TestDb, call: i64, queue: &str, number: &str, entered: u64) -> i64 {
    test_support::callback_request(
        conn,
        call,
        queue,
        number,
        Some("Caller"),
        entered as i64,
        Some(2),
        (entered + MIN) as i64,
    )
}

/// (status, contact_id, attempts, last_result, reason) of a request.
type Row = test_support::CallbackRequestState;

fn row(conn: &TestDb, id: i64) -> Row {
    test_support::callback_request_state(conn, id)
}

fn status(conn: &TestDb, id: i64) -> String {
    row(conn, id).0
}

/// The next claim for `agent` among `lists`: (attempt, contact, number).
fn claim(conn: &TestDb, lists: &[ListId], agent: &str, now: u64) -> (AttemptId, i64, String) {
    match next_contact_among(conn, lists, agent, now).unwrap() {
        Decision::Dial {
            attempt,
            contact,
            number,
            ..
        } => (attempt, contact.id.0, number),
        Decision::Nothing { why } => panic!("nothing to dial: {why:?}"),
    }
}

#[test]
fn requests_become_contacts_of_one_list_per_queue() {
    let (_dir, conn) = db();
    let t = monday_10();
    let late = request(&conn, 11, "support", "07700 900011", t - 5 * MIN);
    let early = request(&conn, 12, "support", "+447700900012", t - 9 * MIN);
    let sales = request(&conn, 13, "sales", "0044 7700 900013", t - 7 * MIN);
    let bad = request(&conn, 14, "support", "anonymous", t - 8 * MIN);
    let r = absorb_requests(&conn, &settings(), t).unwrap();
    assert_eq!((r.linked, r.invalid_number, r.held), (3, 1, 0));
    assert_eq!(r.lists_created.len(), 2);

    let support = get_list(&conn, r.lists_created[0]).unwrap();
    assert_eq!(support.spec.name, "callbacks-support");
    assert_eq!(support.spec.purpose, Purpose::QueueCallback);
    assert_eq!(support.spec.queue.as_deref(), Some("support"));
    assert_eq!(support.spec.mode, Mode::Progressive);
    assert_eq!(support.spec.time_zone, "Europe/London");
    assert_eq!(support.state, ListState::Active);
    assert_eq!(
        get_list(&conn, r.lists_created[1]).unwrap().spec.name,
        "callbacks-sales"
    );

    let (st, contact, ..) = row(&conn, early);
    assert_eq!(st, "pending");
    let c = get_contact(&conn, ContactId(contact.unwrap())).unwrap();
    assert_eq!(c.list, support.id);
    assert_eq!(c.phones, ["+447700900012"]);
    assert_eq!(c.due_at_ms, Some(t - 9 * MIN), "due when the caller joined");
    assert_eq!(c.call_id, Some(12));
    assert_eq!(c.name.as_deref(), Some("Caller"));
    assert_eq!(c.fields["callback_request"], early);
    let c = get_contact(&conn, ContactId(row(&conn, late).1.unwrap())).unwrap();
    assert_eq!(c.phones, ["+447700900011"], "national form normalised");
    assert!(row(&conn, sales).1.is_some());

    let (st, contact, attempts, _, reason, done) = row(&conn, bad);
    assert_eq!((st.as_str(), contact, attempts), ("failed", None, 0));
    assert!(reason.unwrap().starts_with("invalid_number"));
    assert_eq!(done, Some(t as i64));

    // Again: nothing new, no second list.
    let again = absorb_requests(&conn, &settings(), t + MIN).unwrap();
    assert_eq!(again, AbsorbReport::default());
    let n = test_support::contacts(&conn);
    assert_eq!(n, 3);
    // A later request of the queue joins the existing list.
    let next = request(&conn, 15, "support", "07700 900015", t);
    let r = absorb_requests(&conn, &settings(), t + MIN).unwrap();
    assert_eq!((r.linked, r.lists_created.len()), (1, 0));
    let c = get_contact(&conn, ContactId(row(&conn, next).1.unwrap())).unwrap();
    assert_eq!(c.list, support.id);
}

#[test]
fn callbacks_are_claimed_oldest_join_first_and_before_other_lists() {
    let (_dir, conn) = db();
    let t = monday_10();
    // An ordinary list of the same queue with a contact due long before the callers joined,
    // and higher priority than nothing: callbacks still go first.
    let ordinary = create_list(
        &conn,
        &ListSpec {
            queue: Some("support".into()),
            priority: 5_000,
            ..spec("follow")
        },
        0,
    )
    .unwrap()
    .id;
    crate::outbound::testutil::add_contacts(&conn, ordinary, &[("F1", "07700 900001")]);
    test_support::set_all_due(&conn, (t - 24 * HOUR) as i64);
    let second = request(&conn, 21, "support", "07700 900021", t - 2 * MIN);
    let first = request(&conn, 22, "support", "07700 900022", t - 3 * MIN);
    let r = absorb_requests(&conn, &settings(), t).unwrap();
    let cb = r.lists_created[0];
    let lists = [ordinary, cb];

    let (_, c1, n1) = claim(&conn, &lists, "a1", t);
    assert_eq!(Some(c1), row(&conn, first).1, "oldest queue entry first");
    assert_eq!(n1, "+447700900022");
    let (_, c2, _) = claim(&conn, &lists, "a2", t);
    assert_eq!(Some(c2), row(&conn, second).1);
    let (_, c3, n3) = claim(&conn, &lists, "a3", t);
    assert_eq!(get_contact(&conn, ContactId(c3)).unwrap().list, ordinary);
    assert_eq!(n3, "+447700900001");
    // Each claim moved its request at once, in the claiming transaction.
    assert_eq!(status(&conn, first), "in_progress");
    assert_eq!(status(&conn, second), "in_progress");
}

#[test]
fn status_follows_the_attempts_pending_in_progress_done() {
    let (_dir, conn) = db();
    let t = monday_10();
    let id = request(&conn, 31, "support", "07700 900031", t - MIN);
    let list = absorb_requests(&conn, &settings(), t)
        .unwrap()
        .lists_created[0];
    assert_eq!(status(&conn, id), "pending");

    let (a1, ..) = claim(&conn, &[list], "a1", t);
    assert_eq!(row(&conn, id).0, "in_progress");
    assert_eq!(row(&conn, id).2, 1);
    record_result(&conn, a1, AttemptResult::Busy, Some(486), t + MIN).unwrap();
    let (st, _, attempts, last, ..) = row(&conn, id);
    assert_eq!((st.as_str(), attempts), ("pending", 1));
    assert_eq!(last.as_deref(), Some("busy"));

    // Retried after the busy delay (2 min), answered: done, whatever the disposition later.
    let at = t + 4 * MIN;
    let (a2, ..) = claim(&conn, &[list], "a1", at);
    record_result(&conn, a2, AttemptResult::Ringing, Some(180), at).unwrap();
    assert_eq!(status(&conn, id), "in_progress");
    record_result(&conn, a2, AttemptResult::Answered, Some(200), at + 1_000).unwrap();
    let (st, _, attempts, last, reason, done) = row(&conn, id);
    assert_eq!((st.as_str(), attempts), ("done", 2));
    assert_eq!(last.as_deref(), Some("answered"));
    assert_eq!(reason.as_deref(), Some("answered"));
    assert_eq!(done, Some((at + 1_000) as i64));
    record_hangup(&conn, a2, at + 60_000).unwrap();
    crate::outbound::set_disposition(&conn, a2, "call_again", None, None, at + 60_000).unwrap();
    assert_eq!(status(&conn, id), "done", "done is final");
}

#[test]
fn attempts_run_out_or_do_not_call_then_failed() {
    let (_dir, conn) = db();
    let t = monday_10();
    let id = request(&conn, 41, "support", "07700 900041", t - MIN);
    let list = absorb_requests(&conn, &settings(), t)
        .unwrap()
        .lists_created[0];
    let mut at = t;
    for _ in 0..3 {
        let (a, ..) = claim(&conn, &[list], "a1", at);
        record_result(&conn, a, AttemptResult::NoAnswer, Some(487), at + 1_000).unwrap();
        at += 11 * MIN;
    }
    let (st, _, attempts, last, reason, done) = row(&conn, id);
    assert_eq!((st.as_str(), attempts), ("failed", 3));
    assert_eq!(last.as_deref(), Some("no_answer"));
    assert_eq!(reason.as_deref(), Some("max_attempts"));
    assert!(done.is_some());

    add_do_not_call(&conn, "+447700900042", &settings().country_code, "api", t).unwrap();
    let dnc = request(&conn, 42, "support", "07700 900042", t);
    absorb_requests(&conn, &settings(), at).unwrap();
    assert!(matches!(
        next_contact_among(&conn, &[list], "a1", at).unwrap(),
        Decision::Nothing { .. }
    ));
    let (st, _, _, _, reason, _) = row(&conn, dnc);
    assert_eq!(st, "failed");
    assert_eq!(reason.as_deref(), Some("do_not_call"));
}

#[test]
fn a_stopped_callback_list_holds_new_requests() {
    let (_dir, conn) = db();
    let t = monday_10();
    request(&conn, 51, "support", "07700 900051", t - MIN);
    let list = absorb_requests(&conn, &settings(), t)
        .unwrap()
        .lists_created[0];
    stop_list(&conn, list, t).unwrap();
    let held = request(&conn, 52, "support", "07700 900052", t);
    let r = absorb_requests(&conn, &settings(), t + MIN).unwrap();
    assert_eq!((r.linked, r.held, r.lists_created.len()), (0, 1, 0));
    assert_eq!(row(&conn, held).0, "pending");
    assert_eq!(row(&conn, held).1, None);
    // A list the lead made for the queue (other windows, say) takes them.
    let mine = create_list(
        &conn,
        &ListSpec {
            purpose: Purpose::QueueCallback,
            queue: Some("support".into()),
            agents: vec![],
            ..spec("support-callbacks")
        },
        t,
    )
    .unwrap()
    .id;
    let r = absorb_requests(&conn, &settings(), t + 2 * MIN).unwrap();
    assert_eq!(r.linked, 1);
    let c = get_contact(&conn, ContactId(row(&conn, held).1.unwrap())).unwrap();
    assert_eq!(c.list, mine);
}

#[test]
fn after_a_kill_the_live_attempt_is_reconciled_and_the_request_waits_again() {
    let (dir, conn) = db();
    let t = monday_10();
    let id = request(&conn, 61, "support", "07700 900061", t - MIN);
    let answered = request(&conn, 62, "support", "07700 900062", t);
    let list = absorb_requests(&conn, &settings(), t)
        .unwrap()
        .lists_created[0];
    let (a1, c1, _) = claim(&conn, &[list], "a1", t);
    // The first caller's phone rings (a claim never dialed would be given back instead).
    record_result(&conn, a1, AttemptResult::Ringing, Some(180), t + 500).unwrap();
    let (a2, ..) = claim(&conn, &[list], "a2", t);
    record_result(&conn, a2, AttemptResult::Answered, Some(200), t + 1_000).unwrap();
    assert_eq!(status(&conn, id), "in_progress");
    // kill -9, restart: another connection reconciles before anything is dialed.
    drop(conn);
    let conn = crate::outbound::testutil::reopen(&dir);
    let r = crate::outbound::reconcile_after_restart(&conn, t + 2 * MIN).unwrap();
    assert_eq!(r.interrupted, 2);
    let (st, contact, attempts, last, ..) = row(&conn, id);
    assert_eq!((st.as_str(), attempts), ("pending", 1));
    assert_eq!(last.as_deref(), Some("failed"));
    assert_eq!(contact, Some(c1));
    assert_eq!(
        status(&conn, answered),
        "done",
        "the answered caller was called back"
    );
    // Absorbing again adds nothing; the retry is a new attempt number.
    assert_eq!(
        absorb_requests(&conn, &settings(), t + 5 * MIN).unwrap(),
        AbsorbReport::default()
    );
    match next_contact_among(&conn, &[list], "a1", t + 5 * MIN).unwrap() {
        Decision::Dial {
            contact,
            attempt_no,
            ..
        } => assert_eq!((contact.id.0, attempt_no), (c1, 2)),
        d => panic!("{d:?}"),
    }
    assert_eq!(status(&conn, id), "in_progress");
}
