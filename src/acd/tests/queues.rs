//! Queues: abandon, max wait, overflow, admission, leave-empty, supervisor moves, views.

use std::time::Duration;

use super::*;

#[test]
fn abandon_while_ringing_cancels_the_offer() {
    let mut h = h_with(Strategy::LongestIdle, &["a"]);
    h.arrive(1, "q", 0);
    h.advance(secs(3));
    let acts = h.send(Input::CallAbandoned { call: CallId(1) });
    assert!(acts.contains(&Action::CancelOffer {
        call: CallId(1),
        agent: aid("a"),
        reason: CancelReason::CallerGone
    }));
    assert!(acts.contains(&Action::Left {
        call: CallId(1),
        queue: qid("q"),
        outcome: Outcome::Abandoned,
        wait: secs(3),
        hangup_cause: None
    }));
    assert_eq!(h.state("a"), AgentState::Available);
    assert_eq!(h.e.waiting(&qid("q")), 0);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn overflow_to_another_queue_keeps_entry_time_and_priority() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.max_wait = Some(secs(30));
    q1.overflow = Some(Overflow::Queue(qid("q2")));
    let q2 = queue("q2", Strategy::LongestIdle, &["b"]);
    let mut h = H::new(vec![q1, q2], &["b"]);
    h.login("b");
    h.arrive(9, "q2", 0);
    h.answer(9, "b");
    h.advance(secs(1));
    h.arrive(1, "q1", 5);
    h.advance(secs(1));
    h.arrive(2, "q2", 0);
    let acts = h.advance(secs(30));
    assert!(acts.contains(&Action::Moved {
        call: CallId(1),
        from: qid("q1"),
        to: qid("q2")
    }));
    assert!(left(&acts).is_empty());
    // Priority 5 kept: first in q2 although it arrived there last.
    assert_eq!(h.e.queue_position(CallId(1)), Some((qid("q2"), 1)));
    assert_eq!(offers(&h.end(9)), vec![(1, "b".to_owned())]);
    let acts = h.answer(1, "b");
    assert!(acts.contains(&Action::Connected {
        call: CallId(1),
        agent: aid("b"),
        wait: secs(31)
    }));
}

#[test]
fn overflow_to_hangup_and_plain_timeout() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.max_wait = Some(secs(10));
    q1.overflow = Some(Overflow::Hangup { cause: 480 });
    let mut q2 = queue("q2", Strategy::LongestIdle, &[]);
    q2.max_wait = Some(secs(20));
    let mut h = H::new(vec![q1, q2], &[]);
    h.arrive(1, "q1", 0);
    h.arrive(2, "q2", 0);
    let acts = h.advance(secs(10));
    assert_eq!(
        left(&acts),
        vec![(1, "q1".into(), Outcome::Overflow(qid("q1")), Some(480))]
    );
    let acts = h.advance(secs(10));
    assert_eq!(left(&acts), vec![(2, "q2".into(), Outcome::Timeout, None)]);
}

#[test]
fn max_wait_while_ringing_waits_for_the_offer_to_end() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.max_wait = Some(secs(10));
    let mut h = H::new(vec![q], &["a"]);
    h.arrive(1, "q", 0);
    h.advance(secs(8));
    h.login("a");
    assert!(left(&h.advance(secs(5))).is_empty());
    let acts = h.advance(secs(10)); // ring timeout at 8 + 15
    assert_eq!(left(&acts), vec![(1, "q".into(), Outcome::Timeout, None)]);
    assert!(offers(&acts).is_empty());
}

#[test]
fn join_empty_false_refuses_when_nobody_can_answer() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.join_empty = false;
    let mut h = H::new(vec![q], &["a"]);
    assert_eq!(
        left(&h.arrive(1, "q", 0)),
        vec![(1, "q".into(), Outcome::Rejected, None)]
    );
    h.login("a");
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "x".into(),
    });
    assert_eq!(
        left(&h.arrive(2, "q", 0)),
        vec![(2, "q".into(), Outcome::Rejected, None)]
    );
    h.send(Input::AgentUnpause { agent: aid("a") });
    assert_eq!(offers(&h.arrive(3, "q", 0)), vec![(3, "a".to_owned())]);
    // A busy member still counts: the caller may wait.
    h.answer(3, "a");
    assert!(left(&h.arrive(4, "q", 0)).is_empty());
}

#[test]
fn refusal_follows_the_overflow_rule() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.join_empty = false;
    q1.overflow = Some(Overflow::Queue(qid("q2")));
    let q2 = queue("q2", Strategy::LongestIdle, &[]);
    let mut h = H::new(vec![q1, q2], &[]);
    let acts = h.arrive(1, "q1", 0);
    assert!(acts.contains(&Action::Moved {
        call: CallId(1),
        from: qid("q1"),
        to: qid("q2")
    }));
    assert_eq!(h.e.waiting(&qid("q2")), 1);
}

#[test]
fn leave_empty_sends_waiting_calls_away() {
    let mut q = queue("q", Strategy::LongestIdle, &["a", "b"]);
    q.leave_empty = true;
    let mut h = H::new(vec![q], &["a", "b"]);
    h.login("a");
    h.login("b");
    h.arrive(1, "q", 0);
    h.arrive(2, "q", 0);
    h.answer(1, "a");
    h.answer(2, "b");
    h.arrive(3, "q", 0);
    h.arrive(4, "q", 0);
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "x".into(),
    });
    h.end(1);
    assert_eq!(h.e.waiting(&qid("q")), 2);
    // b logs out while on call: pending until the call ends, then the queue empties.
    assert!(left(&h.send(Input::AgentLogout { agent: aid("b") })).is_empty());
    assert_eq!(h.state("b"), AgentState::OnCall);
    let acts = h.end(2);
    assert_eq!(
        left(&acts),
        vec![
            (3, "q".into(), Outcome::Timeout, None),
            (4, "q".into(), Outcome::Timeout, None)
        ]
    );
    assert_eq!(h.state("b"), AgentState::LoggedOut);
}

#[test]
fn max_waiting_rejects_beyond_the_limit() {
    let mut q = queue("q", Strategy::LongestIdle, &[]);
    q.max_waiting = Some(2);
    let mut h = H::new(vec![q], &[]);
    assert!(left(&h.arrive(1, "q", 0)).is_empty());
    assert!(left(&h.arrive(2, "q", 0)).is_empty());
    assert_eq!(
        left(&h.arrive(3, "q", 0)),
        vec![(3, "q".into(), Outcome::Rejected, None)]
    );
    h.send(Input::CallAbandoned { call: CallId(1) });
    assert!(left(&h.arrive(4, "q", 0)).is_empty());
    assert_eq!(h.e.waiting(&qid("q")), 2);
}

#[test]
fn move_to_front_and_to_queue() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let q2 = queue("q2", Strategy::LongestIdle, &["b"]);
    let mut h = H::new(vec![q1, q2], &["a", "b"]);
    for c in 1..=3 {
        h.arrive(c, "q1", 0);
        h.advance(secs(1));
    }
    h.send(Input::MoveToFront { call: CallId(3) });
    assert_eq!(h.e.queue_position(CallId(3)), Some((qid("q1"), 1)));
    assert_eq!(h.e.queue_position(CallId(1)), Some((qid("q1"), 2)));
    assert_eq!(h.e.longest_wait(&qid("q1"), h.now), Some(secs(3)));
    assert_eq!(offers(&h.login("a")), vec![(3, "a".to_owned())]);
    // Moving a ringing call cancels the offer; a then takes call 1.
    let acts = h.send(Input::MoveToQueue {
        call: CallId(3),
        queue: qid("q2"),
    });
    assert!(acts.contains(&Action::CancelOffer {
        call: CallId(3),
        agent: aid("a"),
        reason: CancelReason::Moved
    }));
    assert!(acts.contains(&Action::Moved {
        call: CallId(3),
        from: qid("q1"),
        to: qid("q2")
    }));
    assert_eq!(offers(&acts), vec![(1, "a".to_owned())]);
    assert_eq!(h.e.queue_position(CallId(3)), Some((qid("q2"), 1)));
    assert_eq!(offers(&h.login("b")), vec![(3, "b".to_owned())]);
}

#[test]
fn overflow_cycle_with_zero_max_wait_terminates() {
    let mut q1 = queue("q1", Strategy::LongestIdle, &[]);
    q1.max_wait = Some(Duration::ZERO);
    q1.overflow = Some(Overflow::Queue(qid("q2")));
    let mut q2 = queue("q2", Strategy::LongestIdle, &[]);
    q2.max_wait = Some(Duration::ZERO);
    q2.overflow = Some(Overflow::Queue(qid("q1")));
    let mut h = H::new(vec![q1, q2], &[]);
    h.arrive(1, "q1", 0);
    let mut all = Vec::new();
    for _ in 0..10 {
        h.e.handle_timeout(h.now);
        all.extend(h.drain());
    }
    assert_eq!(left(&all).len(), 1);
    assert_eq!(h.e.poll_timeout(), None);
}

#[test]
fn constructor_rejects_bad_configuration() {
    let agents = vec![aid("a")];
    let err = |qs: Vec<QueueSettings>, ags: Vec<AgentId>| Engine::new(qs, ags, 0).err();
    assert_eq!(
        err(vec![queue("q", Strategy::RingAll, &["x"])], agents.clone()),
        Some(AcdError::UnknownMember {
            queue: qid("q"),
            agent: aid("x")
        })
    );
    assert_eq!(
        err(vec![], vec![aid("a"), aid("a")]),
        Some(AcdError::DuplicateAgent(aid("a")))
    );
    assert_eq!(
        err(
            vec![
                queue("q", Strategy::RingAll, &[]),
                queue("q", Strategy::RingAll, &[])
            ],
            agents.clone()
        ),
        Some(AcdError::DuplicateQueue(qid("q")))
    );
    assert_eq!(
        err(
            vec![queue("q", Strategy::RingAll, &["a", "a"])],
            agents.clone()
        ),
        Some(AcdError::DuplicateMember {
            queue: qid("q"),
            agent: aid("a")
        })
    );
    let mut q = queue("q", Strategy::RingAll, &[]);
    q.overflow = Some(Overflow::Queue(qid("nope")));
    assert!(matches!(
        err(vec![q.clone()], agents.clone()),
        Some(AcdError::UnknownOverflowQueue { .. })
    ));
    q.overflow = Some(Overflow::Queue(qid("q")));
    assert_eq!(
        err(vec![q.clone()], agents.clone()),
        Some(AcdError::OverflowToSelf(qid("q")))
    );
    q.overflow = None;
    q.ring_timeout = Duration::ZERO;
    assert_eq!(
        err(vec![q], agents),
        Some(AcdError::ZeroRingTimeout(qid("q")))
    );
}

#[test]
fn views_report_queue_state() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    assert_eq!(h.e.longest_wait(&qid("q"), h.now), None);
    h.arrive(1, "q", 0);
    h.answer(1, "a");
    h.arrive(2, "q", 0);
    h.send(Input::AgentPause {
        agent: aid("b"),
        reason: "x".into(),
    });
    h.arrive(3, "q", 0);
    h.advance(secs(4));
    assert_eq!(h.e.waiting(&qid("q")), 2);
    assert_eq!(h.e.longest_wait(&qid("q"), h.now), Some(secs(4)));
    let by: Vec<_> =
        h.e.agents_by_state(&qid("q"))
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect();
    // b rings with a pending pause.
    assert_eq!(by, vec![("ringing", 1), ("on_call", 1)]);
    assert_eq!(h.e.connected_calls(), 1);
    assert_eq!(h.e.sl_target(&qid("q")), Some(secs(15)));
}
