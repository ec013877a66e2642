//! The dialer's pacing: which agents it reserves when, and what it asks the store. A machine
//! with no I/O: it owns whether the attempts are reconciled, the active lists, the agents it
//! holds, and each agent's cool-down after the store had nothing for it or its phone failed.
//!
//! Inputs (`handle_*`, with the time of the input): the store's reconciliation and lists, a tick
//! (with what the call layer knows of each agent right now: free to reserve or not), the store
//! having nothing for an agent (no contact due, list closed or paused, quota reached), an agent's
//! phone failing, an agent freed. Output: [`Pacing::poll_request`], the store requests in order.
//!
//! Must not know: channels, the clock, SIP, SQL, the ACD engine (the caller pauses the agents
//! reserved here, and says which agents are free).

use super::{
    ListInfo, StoreReq, AGENT_FAILED_COOLDOWN, LISTS_EVERY, NOTHING_COOLDOWN, NOTHING_MAX_COOLDOWN,
};
use crate::acd::AgentId;
use crate::clock::Now;
use crate::outbound::{ListId, Why};
use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

#[derive(Default)]
pub(in crate::call) struct Pacing {
    /// The attempts left by the last run are reconciled: dialing may start.
    ready: bool,
    ticks: u64,
    lists: Vec<ListInfo>,
    /// Agents held by the dialer (paused `outbound`): asking the store, on a call or in wrap-up.
    reserved: HashSet<AgentId>,
    /// Agents left alone until then.
    cooldown: HashMap<AgentId, Instant>,
    requests: VecDeque<StoreReq>,
}

impl Pacing {
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// The store reconciled the attempts: read the lists, then dial.
    pub fn handle_reconciled(&mut self, now: Now) {
        self.ready = true;
        self.requests.push_back(StoreReq::Lists {
            now_ms: now.wall_ms,
        });
    }

    /// The active lists, as just read.
    pub fn handle_lists(&mut self, lists: Vec<ListInfo>) {
        self.lists = lists;
    }

    /// A tick: re-read the lists every [`LISTS_EVERY`] ticks; reserve every agent that works a
    /// list, is not held or cooling down, and that `free` says may be reserved now (available,
    /// phone registered, no queue of its at risk), and ask the store for its next contact.
    /// Returns the agents reserved, for the caller to pause in the engine.
    pub fn handle_tick(
        &mut self,
        now: Now,
        queue_members: &HashMap<String, Vec<AgentId>>,
        mut free: impl FnMut(&AgentId) -> bool,
    ) -> Vec<AgentId> {
        if !self.ready {
            return vec![];
        }
        self.ticks += 1;
        if self.ticks.is_multiple_of(LISTS_EVERY) {
            self.requests.push_back(StoreReq::Lists {
                now_ms: now.wall_ms,
            });
        }
        self.cooldown.retain(|_, until| *until > now.mono);
        let mut work: Vec<(AgentId, Vec<ListId>)> = agents_lists(&self.lists, queue_members)
            .into_iter()
            .collect();
        work.sort_by(|a, b| a.0.cmp(&b.0));
        let mut started = Vec::new();
        for (agent, lists) in work {
            if self.reserved.contains(&agent) || self.cooldown.contains_key(&agent) {
                continue;
            }
            if !free(&agent) {
                continue;
            }
            self.reserved.insert(agent.clone());
            self.requests.push_back(StoreReq::Next {
                agent: agent.clone(),
                lists,
                now_ms: now.wall_ms,
            });
            started.push(agent);
        }
        started
    }

    /// The store had nothing for `agent`: free it, leave it alone for a while (see
    /// [`nothing_cooldown`]).
    pub fn handle_nothing(&mut self, agent: &AgentId, why: &Why, now: Now) {
        self.release(agent);
        self.cool_down(agent, nothing_cooldown(why, now.wall_ms), now);
    }

    /// The agent's phone did not take the dialer's call, or the store failed: free it, and leave
    /// it alone for [`AGENT_FAILED_COOLDOWN`].
    pub fn handle_failed(&mut self, agent: &AgentId, now: Now) {
        self.release(agent);
        self.cool_down(agent, AGENT_FAILED_COOLDOWN, now);
    }

    /// The dialer no longer holds `agent`.
    pub fn release(&mut self, agent: &AgentId) {
        self.reserved.remove(agent);
    }

    fn cool_down(&mut self, agent: &AgentId, for_: Duration, now: Now) {
        self.cooldown.insert(agent.clone(), now.mono + for_);
    }

    /// The next store request, in order.
    pub fn poll_request(&mut self) -> Option<StoreReq> {
        self.requests.pop_front()
    }
}

/// How long to leave an agent alone after the store had nothing for it: until the next retry is
/// due when that is soon, longer when a list is closed, paused or out of quota (new contacts, a
/// resumed list or an opened window are still picked up within [`NOTHING_MAX_COOLDOWN`]).
fn nothing_cooldown(why: &Why, now_ms: u64) -> Duration {
    match why {
        Why::NoContactDue {
            next_due_at_ms: Some(at),
        } => Duration::from_millis(at.saturating_sub(now_ms))
            .clamp(NOTHING_COOLDOWN, NOTHING_MAX_COOLDOWN),
        Why::NoContactDue { .. } | Why::AgentBusy { .. } => NOTHING_COOLDOWN,
        _ => NOTHING_MAX_COOLDOWN,
    }
}

/// Which active lists each agent works: those naming it, and those of a queue it is a member of
/// (a queue's callback list reaches that queue's members only).
fn agents_lists(
    lists: &[ListInfo],
    queue_members: &HashMap<String, Vec<AgentId>>,
) -> HashMap<AgentId, Vec<ListId>> {
    let mut work: HashMap<AgentId, Vec<ListId>> = HashMap::new();
    for l in lists {
        let named = l.agents.iter().map(|a| AgentId(a.clone()));
        let members = l
            .queue
            .as_ref()
            .and_then(|q| queue_members.get(q))
            .into_iter()
            .flatten()
            .cloned();
        for a in named.chain(members) {
            let lists = work.entry(a).or_default();
            if !lists.contains(&l.id) {
                lists.push(l.id);
            }
        }
    }
    work
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cooldown_follows_the_reason() {
        let soon = Why::NoContactDue {
            next_due_at_ms: Some(1_000 + 5_000),
        };
        assert_eq!(nothing_cooldown(&soon, 1_000), Duration::from_secs(5));
        let far = Why::NoContactDue {
            next_due_at_ms: Some(1_000 + 3_600_000),
        };
        assert_eq!(nothing_cooldown(&far, 1_000), NOTHING_MAX_COOLDOWN);
        let past = Why::NoContactDue {
            next_due_at_ms: Some(10),
        };
        assert_eq!(nothing_cooldown(&past, 1_000), NOTHING_COOLDOWN);
        let paused = Why::ListPaused { list: ListId(1) };
        assert_eq!(nothing_cooldown(&paused, 1_000), NOTHING_MAX_COOLDOWN);
    }

    #[test]
    fn a_queue_list_reaches_that_queue_members_only() {
        let a = |s: &str| AgentId(s.into());
        let members = HashMap::from([
            ("support".to_string(), vec![a("1001"), a("1002")]),
            ("sales".to_string(), vec![a("2001")]),
        ]);
        let lists = [
            ListInfo {
                id: ListId(1),
                agents: vec![],
                queue: Some("support".into()),
            },
            ListInfo {
                id: ListId(2),
                agents: vec!["1001".into(), "3001".into()],
                queue: Some("sales".into()),
            },
        ];
        let work = agents_lists(&lists, &members);
        assert_eq!(work[&a("1001")], [ListId(1), ListId(2)]);
        assert_eq!(work[&a("1002")], [ListId(1)]);
        assert_eq!(work[&a("2001")], [ListId(2)]);
        assert_eq!(work[&a("3001")], [ListId(2)]);
        assert_eq!(work.len(), 4, "nobody else: {work:?}");
    }

    fn list(id: i64, agents: &[&str]) -> ListInfo {
        ListInfo {
            id: ListId(id),
            agents: agents.iter().map(|a| a.to_string()).collect(),
            queue: None,
        }
    }

    fn t0() -> Now {
        Now::at(Instant::now(), 1_796_724_000_000)
    }

    /// The store requests waiting, as "lists" or "next <agent>".
    fn asked(p: &mut Pacing) -> Vec<String> {
        std::iter::from_fn(|| p.poll_request())
            .map(|r| match r {
                StoreReq::Lists { .. } => "lists".to_string(),
                StoreReq::Next { agent, .. } => format!("next {agent}"),
                _ => "other".to_string(),
            })
            .collect()
    }

    fn ready(now: Now) -> Pacing {
        let mut p = Pacing::default();
        p.handle_reconciled(now);
        p.handle_lists(vec![list(1, &["1001", "1002"])]);
        assert_eq!(asked(&mut p), ["lists"]);
        p
    }

    #[test]
    fn nothing_is_dialed_before_the_attempts_are_reconciled() {
        let mut p = Pacing::default();
        p.handle_lists(vec![list(1, &["1001"])]);
        assert!(p.handle_tick(t0(), &HashMap::new(), |_| true).is_empty());
        assert!(asked(&mut p).is_empty());
    }

    #[test]
    fn a_tick_reserves_free_agents_once_and_asks_for_their_contacts() {
        let now = t0();
        let mut p = ready(now);
        let busy = AgentId("1002".into());
        let got = p.handle_tick(now, &HashMap::new(), |a| *a != busy);
        assert_eq!(got, [AgentId("1001".into())]);
        assert_eq!(asked(&mut p), ["next 1001"]);
        // Held: not reserved twice; 1002 reserved once it is free.
        let got = p.handle_tick(now, &HashMap::new(), |_| true);
        assert_eq!(got, [busy]);
        assert_eq!(asked(&mut p), ["next 1002"]);
        assert!(p.handle_tick(now, &HashMap::new(), |_| true).is_empty());
    }

    #[test]
    fn a_list_at_its_quota_leaves_the_agent_alone_until_the_cooldown_ends() {
        let now = t0();
        let mut p = ready(now);
        let agent = AgentId("1001".into());
        let only = |a: &AgentId| a.0 == "1001";
        assert_eq!(
            p.handle_tick(now, &HashMap::new(), only),
            vec![agent.clone()]
        );
        asked(&mut p);
        let quota = Why::ListQuotaReached {
            list: ListId(1),
            used: 50,
            in_flight: 0,
            quota: 50,
            resets_at_ms: now.wall_ms + 3_600_000,
        };
        p.handle_nothing(&agent, &quota, now);
        for s in [1, 5, 9] {
            let t = now.later(Duration::from_secs(s));
            assert!(
                p.handle_tick(t, &HashMap::new(), only).is_empty(),
                "cooling down at {s} s"
            );
        }
        let after = now.later(NOTHING_MAX_COOLDOWN + Duration::from_millis(1));
        assert_eq!(p.handle_tick(after, &HashMap::new(), only), [agent]);
    }

    #[test]
    fn a_failed_phone_cools_down_longer_than_nothing_due() {
        let now = t0();
        let mut p = ready(now);
        let agent = AgentId("1001".into());
        let only = |a: &AgentId| a.0 == "1001";
        p.handle_tick(now, &HashMap::new(), only);
        p.handle_failed(&agent, now);
        let t = now.later(NOTHING_MAX_COOLDOWN + Duration::from_secs(1));
        assert!(p.handle_tick(t, &HashMap::new(), only).is_empty());
        let t = now.later(AGENT_FAILED_COOLDOWN + Duration::from_millis(1));
        assert_eq!(p.handle_tick(t, &HashMap::new(), only), [agent]);
    }

    #[test]
    fn the_lists_are_read_again_every_few_ticks() {
        let now = t0();
        let mut p = ready(now);
        let mut lists = 0;
        for i in 0..(3 * LISTS_EVERY) {
            p.handle_tick(
                now.later(Duration::from_millis(250 * i)),
                &HashMap::new(),
                |_| false,
            );
            lists += asked(&mut p).iter().filter(|r| *r == "lists").count();
        }
        assert_eq!(lists, 3);
    }
}
