//! Seats: ring timeouts, misses, wrap-up, pauses, login/logout, ignored inputs.

use super::*;

#[test]
fn ring_timeout_moves_on_to_the_next_agent() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    assert_eq!(offers(&h.arrive(1, "q", 0)), vec![(1, "a".to_owned())]);
    let acts = h.advance(secs(15));
    let missed = Action::OfferMissed {
        call: CallId(1),
        agent: aid("a"),
    };
    let cancel = Action::CancelOffer {
        call: CallId(1),
        agent: aid("a"),
        reason: CancelReason::Timeout,
    };
    let pos = |x: &Action| acts.iter().position(|y| y == x).unwrap();
    assert!(pos(&missed) < pos(&cancel) && pos(&cancel) < pos(&offer(1, "b")));
    assert_eq!(h.state("a"), AgentState::Available);
    assert_eq!(h.e.queue_position(CallId(1)), Some((qid("q"), 1)));
    // b misses too: a gets it again (not b twice in a row).
    assert_eq!(offers(&h.advance(secs(15))), vec![(1, "a".to_owned())]);
}

#[test]
fn a_lone_agent_is_offered_the_same_call_again() {
    let mut h = h_with(Strategy::LongestIdle, &["a"]);
    h.arrive(1, "q", 0);
    let acts = h.advance(secs(15));
    assert_eq!(offers(&acts), vec![(1, "a".to_owned())]);
}

#[test]
fn auto_pause_after_max_missed_and_reset_on_answer() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.max_missed = 2;
    let mut h = H::new(vec![q], &["a"]);
    h.login("a");
    h.arrive(1, "q", 0);
    h.advance(secs(15)); // miss 1, re-offered
    h.answer(1, "a"); // streak reset
    h.end(1);
    h.arrive(2, "q", 0);
    h.advance(secs(15)); // miss 1
    assert_eq!(h.state("a"), AgentState::Ringing);
    let acts = h.advance(secs(15)); // miss 2 → paused
    assert!(acts.contains(&Action::AgentStateChanged {
        agent: aid("a"),
        state: AgentState::Paused("no_answer".into())
    }));
    assert_eq!(h.state("a"), AgentState::Paused("no_answer".into()));
    assert_eq!(h.e.waiting(&qid("q")), 1);
    assert_eq!(
        offers(&h.send(Input::AgentUnpause { agent: aid("a") })),
        vec![(2, "a".to_owned())]
    );
}

#[test]
fn offer_failed_goes_on_at_once_and_counts_miss_only_when_asked() {
    let mut q = queue("q", Strategy::LongestIdle, &["a", "b"]);
    q.max_missed = 1;
    let mut h = H::new(vec![q], &["a", "b"]);
    h.login("a");
    h.advance(secs(1));
    h.login("b");
    h.arrive(1, "q", 0);
    let acts = h.send(Input::OfferFailed {
        call: CallId(1),
        agent: aid("a"),
        counts_as_miss: false,
    });
    assert_eq!(offers(&acts), vec![(1, "b".to_owned())]);
    assert_eq!(h.state("a"), AgentState::Available);
    let acts = h.send(Input::OfferFailed {
        call: CallId(1),
        agent: aid("b"),
        counts_as_miss: true,
    });
    assert_eq!(offers(&acts), vec![(1, "a".to_owned())]);
    assert_eq!(h.state("b"), AgentState::Paused("no_answer".into()));
}

#[test]
fn wrapup_blocks_offers_until_it_ends() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.wrapup = secs(10);
    let mut h = H::new(vec![q], &["a"]);
    h.login("a");
    h.arrive(1, "q", 0);
    h.answer(1, "a");
    h.end(1);
    assert_eq!(h.state("a"), AgentState::Wrapup);
    assert!(offers(&h.arrive(2, "q", 0)).is_empty());
    assert!(offers(&h.advance(secs(9))).is_empty());
    assert_eq!(offers(&h.advance(secs(1))), vec![(2, "a".to_owned())]);
    // EndWrapup ends it early.
    h.answer(2, "a");
    h.end(2);
    h.arrive(3, "q", 0);
    assert_eq!(
        offers(&h.send(Input::EndWrapup { agent: aid("a") })),
        vec![(3, "a".to_owned())]
    );
    // EndWrapup when not in wrap-up is ignored and counted.
    let before = h.e.ignored_inputs();
    h.send(Input::EndWrapup { agent: aid("a") });
    assert_eq!(h.e.ignored_inputs(), before + 1);
}

#[test]
fn pause_during_a_call_is_pending() {
    let mut q = queue("q", Strategy::LongestIdle, &["a"]);
    q.wrapup = secs(5);
    let mut h = H::new(vec![q], &["a"]);
    h.login("a");
    h.arrive(1, "q", 0);
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "lunch".into(),
    });
    assert_eq!(h.state("a"), AgentState::Ringing);
    h.answer(1, "a");
    assert_eq!(h.state("a"), AgentState::OnCall);
    h.end(1);
    assert_eq!(h.state("a"), AgentState::Wrapup);
    h.arrive(2, "q", 0);
    assert!(offers(&h.advance(secs(5))).is_empty());
    assert_eq!(h.state("a"), AgentState::Paused("lunch".into()));
    assert_eq!(
        offers(&h.send(Input::AgentUnpause { agent: aid("a") })),
        vec![(2, "a".to_owned())]
    );
}

#[test]
fn unpause_cancels_a_pending_pause() {
    let mut h = h_with(Strategy::LongestIdle, &["a"]);
    h.arrive(1, "q", 0);
    h.answer(1, "a");
    h.send(Input::AgentPause {
        agent: aid("a"),
        reason: "x".into(),
    });
    h.send(Input::AgentUnpause { agent: aid("a") });
    h.end(1);
    assert_eq!(h.state("a"), AgentState::Available);
}

#[test]
fn login_to_a_subset_of_queues() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let q2 = queue("q2", Strategy::LongestIdle, &["a"]);
    let mut h = H::new(vec![q1, q2], &["a"]);
    h.arrive(1, "q1", 0);
    h.arrive(2, "q2", 0);
    let acts = h.send(Input::AgentLogin {
        agent: aid("a"),
        queues: Some(vec![qid("q2")]),
    });
    assert_eq!(offers(&acts), vec![(2, "a".to_owned())]);
    let by_state = h.e.agents_by_state(&qid("q1"));
    assert_eq!(by_state[0], ("logged_out", 1));
    let by_state = h.e.agents_by_state(&qid("q2"));
    assert_eq!(by_state[2], ("ringing", 1));
}

#[test]
fn logout_while_ringing_cancels_and_reroutes() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    h.arrive(1, "q", 0);
    let acts = h.send(Input::AgentLogout { agent: aid("a") });
    assert!(acts.contains(&Action::CancelOffer {
        call: CallId(1),
        agent: aid("a"),
        reason: CancelReason::AgentGone
    }));
    assert_eq!(offers(&acts), vec![(1, "b".to_owned())]);
    assert_eq!(h.state("a"), AgentState::LoggedOut);
}

#[test]
fn unknown_ids_and_invalid_transitions_are_counted() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b"]);
    h.send(Input::AgentLogin {
        agent: aid("zz"),
        queues: None,
    });
    h.arrive(1, "nope", 0);
    h.arrive(2, "q", 0);
    h.arrive(2, "q", 0); // duplicate
    h.answer(2, "b"); // b is not ringing
    h.send(Input::AgentLogin {
        agent: aid("a"),
        queues: None,
    }); // already logged in
    h.end(77);
    assert_eq!(h.e.ignored_inputs(), 6);
    assert_eq!(h.state("a"), AgentState::Ringing);
}
