//! Routing: each strategy, FIFO and priority, agents serving several queues.

use std::time::Duration;

use super::*;

#[test]
fn longest_idle_prefers_agent_idle_longest() {
    let mut h = h_with(Strategy::LongestIdle, &["a", "b", "c"]);
    serve(&mut h, 1, "a");
    serve(&mut h, 2, "b");
    serve(&mut h, 3, "c");
    serve(&mut h, 4, "a");
}

#[test]
fn round_robin_rotates_in_member_order() {
    let mut h = h_with(Strategy::RoundRobin, &["a", "b", "c"]);
    // b's login is the most recent, yet the rotation goes on in member order.
    serve(&mut h, 1, "a");
    serve(&mut h, 2, "b");
    h.send(Input::AgentPause {
        agent: aid("c"),
        reason: "x".into(),
    });
    serve(&mut h, 3, "a");
    h.send(Input::AgentUnpause { agent: aid("c") });
    serve(&mut h, 4, "b");
    serve(&mut h, 5, "c");
}

#[test]
fn ring_all_rings_everyone_and_cancels_the_others_on_answer() {
    let mut h = h_with(Strategy::RingAll, &["a", "b", "c"]);
    let acts = h.arrive(1, "q", 0);
    assert_eq!(offers(&acts).len(), 3);
    // A second call waits: FIFO, one call rings all free agents.
    assert!(offers(&h.arrive(2, "q", 0)).is_empty());
    let acts = h.answer(1, "b");
    assert!(acts.contains(&Action::Connected {
        call: CallId(1),
        agent: aid("b"),
        wait: Duration::ZERO
    }));
    for a in ["a", "c"] {
        assert!(acts.contains(&Action::CancelOffer {
            call: CallId(1),
            agent: aid(a),
            reason: CancelReason::AnsweredElsewhere
        }));
    }
    // The freed agents ring for call 2 now.
    assert_eq!(
        offers(&acts),
        vec![(2, "a".to_owned()), (2, "c".to_owned())]
    );
    assert_eq!(h.state("b"), AgentState::OnCall);
}

#[test]
fn fewest_calls_then_longest_idle() {
    let mut h = h_with(Strategy::FewestCalls, &["a", "b"]);
    serve(&mut h, 1, "a");
    serve(&mut h, 2, "b");
    serve(&mut h, 3, "a");
    // a: 2 calls, b: 1 call; a idle longer? No matter: fewest wins.
    serve(&mut h, 4, "b");
    // Both at 2: b's last call ended later, so a has been idle longer.
    serve(&mut h, 5, "a");
}

#[test]
fn random_is_seeded_and_spreads() {
    let run = || {
        let mut h = h_with(Strategy::Random, &["a", "b", "c", "d"]);
        let mut who = Vec::new();
        for call in 0..40 {
            let acts = h.arrive(call, "q", 0);
            let o = offers(&acts);
            assert_eq!(o.len(), 1);
            who.push(o[0].1.clone());
            h.answer(call, &o[0].1);
            h.end(call);
        }
        who
    };
    let first = run();
    assert_eq!(first, run());
    let mut distinct = first.clone();
    distinct.sort();
    distinct.dedup();
    assert!(distinct.len() >= 3, "{first:?}");
}

#[test]
fn skill_tiers_widen_over_time() {
    let mut q = queue("q", Strategy::SkillTiers, &["a:0", "b:1", "c:2"]);
    q.widen_after = secs(10);
    q.ring_timeout = secs(100);
    let mut h = H::new(vec![q], &["a", "b", "c"]);
    h.login("c");
    h.advance(secs(1));
    h.login("b");
    h.advance(secs(1));
    h.login("a");
    // All free: tier 0 first although it is the least idle.
    assert_eq!(offers(&h.arrive(1, "q", 0)), vec![(1, "a".to_owned())]);
    h.answer(1, "a");
    // Tier 0 busy: the next call waits until tier 1 is allowed after 10 s, then tier 1 (b).
    assert!(offers(&h.arrive(2, "q", 0)).is_empty());
    assert!(offers(&h.advance(Duration::from_millis(9_999))).is_empty());
    assert_eq!(
        offers(&h.advance(Duration::from_millis(1))),
        vec![(2, "b".to_owned())]
    );
    h.answer(2, "b");
    // A third call reaches tier 2 after 20 s.
    h.arrive(3, "q", 0);
    let acts = h.advance(secs(20));
    assert_eq!(offers(&acts), vec![(3, "c".to_owned())]);
}

#[test]
fn skill_tiers_agent_freed_takes_only_eligible_calls() {
    let mut q = queue("q", Strategy::SkillTiers, &["a:0", "b:1"]);
    q.widen_after = secs(10);
    let mut h = H::new(vec![q], &["a", "b"]);
    h.arrive(1, "q", 0);
    h.advance(secs(5));
    // b (tier 1) logs in: the call has waited 5 s, only tier 0 allowed.
    assert!(offers(&h.login("b")).is_empty());
    assert_eq!(offers(&h.advance(secs(5))), vec![(1, "b".to_owned())]);
}

#[test]
fn multi_queue_agent_takes_the_longest_waiter_across_queues() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let q2 = queue("q2", Strategy::LongestIdle, &["a"]);
    let mut h = H::new(vec![q1, q2], &["a"]);
    h.login("a");
    h.arrive(100, "q1", 0);
    h.answer(100, "a");
    // Alternate arrivals; q1 always gets calls one second after q2.
    for i in 0..4u64 {
        h.arrive(2 * i, "q2", 0);
        h.advance(secs(1));
        h.arrive(2 * i + 1, "q1", 9);
        h.advance(secs(1));
    }
    let mut served = Vec::new();
    let mut current = 100;
    for _ in 0..8 {
        let acts = h.end(current);
        let o = offers(&acts);
        assert_eq!(o.len(), 1);
        current = o[0].0;
        served.push(current);
        h.answer(current, "a");
    }
    assert_eq!(served, vec![0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn queue_weight_breaks_ties_between_queues() {
    let q1 = queue("q1", Strategy::LongestIdle, &["a"]);
    let mut q2 = queue("q2", Strategy::LongestIdle, &["a"]);
    q2.weight = 5;
    let mut h = H::new(vec![q1, q2], &["a"]);
    h.arrive(1, "q1", 0);
    h.arrive(2, "q2", 0);
    assert_eq!(offers(&h.login("a")), vec![(2, "a".to_owned())]);
}

#[test]
fn priority_first_then_fifo() {
    let mut h = H::new(vec![queue("q", Strategy::LongestIdle, &["a"])], &["a"]);
    for (c, p) in [(1, 0), (2, 5), (3, 0), (4, 5), (5, -1)] {
        h.arrive(c, "q", p);
        h.advance(secs(1));
    }
    let mut served = Vec::new();
    let mut acts = h.login("a");
    for _ in 0..5 {
        let o = offers(&acts);
        assert_eq!(o.len(), 1);
        served.push(o[0].0);
        h.answer(o[0].0, "a");
        acts = h.end(o[0].0);
    }
    assert_eq!(served, vec![2, 4, 1, 3, 5]);
}

#[test]
fn expired_ring_all_call_gets_no_new_offers_and_leaves_when_the_last_ends() {
    let mut q = queue("q", Strategy::RingAll, &["a", "b"]);
    q.max_wait = Some(secs(10));
    let mut h = H::new(vec![q], &["a", "b"]);
    h.login("a");
    h.arrive(1, "q", 0); // rings a until 15 s
    h.advance(secs(5));
    assert_eq!(offers(&h.login("b")), vec![(1, "b".to_owned())]); // until 20 s
    h.advance(secs(5)); // max wait passes while ringing
    let acts = h.advance(secs(5)); // a times out: no new offer, b still rings
    assert!(
        offers(&acts).is_empty() && left(&acts).is_empty(),
        "{acts:?}"
    );
    assert_eq!(h.state("a"), AgentState::Available);
    let acts = h.advance(secs(5));
    assert_eq!(left(&acts), vec![(1, "q".into(), Outcome::Timeout, None)]);
    assert!(offers(&acts).is_empty());
}
