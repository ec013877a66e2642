//! The agent board and the event feed: a machine with no I/O, fed by the call manager.
//!
//! It owns what the board shows per agent beyond the ACD engine's state (since when, the call it
//! rings or talks on, calls answered, a manual logout), the registered phones per agent as the
//! call layer sees them, the agents' login/pause sessions, and the queue of live events for the
//! API's stream.
//!
//! Inputs (`handle_*`, each with the time of its input): an agent's new state from the engine, an
//! offer or an answer, a registrar binding change, an event to publish. Outputs (`poll_*`): the
//! next [`CallEvent`] for the stream, the next agent-session row for the store.
//!
//! Who owns what:
//! - **Bindings**: the SIP endpoint's registrar is the one truth; this is a read-only projection,
//!   fed every change in order by the SIP driver (its event queue never drops: what does not fit
//!   waits in the driver's backlog) and seeded from the store at start. Nothing here writes a
//!   binding back.
//! - **Agent sessions** (the `agent_sessions` rows of the agent report) are written from here,
//!   where agent state changes, as store ops the driver sends without dropping — not derived
//!   from the event stream, which may drop events when the API lags.
//!
//! Must not know: channels, the clock, SIP, SQL.

use super::control::CallEvent;
use crate::acd::{AgentId, AgentState};
use crate::clock::Now;
use crate::sip::registrar::{Binding, StoreOp};
use crate::store::ApiOp;
use std::collections::{HashMap, VecDeque};

/// What the board shows per agent beyond the engine's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct BoardEntry {
    pub since_ms: u64,
    pub call: Option<u64>,
    pub calls_answered: u64,
    /// Logged out through the API: registering again does not log the agent back in.
    pub manual_logout: bool,
}

/// What a binding change means for an agent's login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Registration {
    /// The agent's first phone registered (and it did not log out by hand): log it in.
    FirstPhone(String),
    /// Its last phone went away: log it out.
    LastPhoneGone(String),
    Unchanged,
}

#[derive(Default)]
pub(super) struct Board {
    entries: HashMap<AgentId, BoardEntry>,
    /// Registered phones per agent id (a projection of the registrar's bindings).
    contacts: HashMap<String, Vec<Binding>>,
    /// Each agent's last state kind and pause reason, to open and close its sessions.
    sessions: HashMap<AgentId, (&'static str, Option<String>)>,
    events: VecDeque<CallEvent>,
    session_ops: VecDeque<ApiOp>,
}

impl Board {
    /// The board entry of `agent` (a default one if it has none yet).
    pub fn entry(&self, agent: &AgentId) -> BoardEntry {
        self.entries.get(agent).cloned().unwrap_or_default()
    }

    fn entry_mut(&mut self, agent: &AgentId) -> &mut BoardEntry {
        self.entries.entry(agent.clone()).or_default()
    }

    /// Publish an event to the stream (in order).
    pub fn publish(&mut self, ev: CallEvent) {
        self.events.push_back(ev);
    }

    /// The next event for the stream.
    pub fn poll_event(&mut self) -> Option<CallEvent> {
        self.events.pop_front()
    }

    /// The next agent-session row to store.
    pub fn poll_session_op(&mut self) -> Option<ApiOp> {
        self.session_ops.pop_front()
    }

    /// The engine moved `agent` to `state`: the board entry, the event, the session rows.
    pub fn handle_state(&mut self, agent: &AgentId, state: &AgentState, now: Now) {
        let e = self.entry_mut(agent);
        e.since_ms = now.wall_ms;
        if !matches!(state, AgentState::Ringing | AgentState::OnCall) {
            e.call = None;
        }
        let reason = match state {
            AgentState::Paused(r) => Some(r.clone()),
            _ => None,
        };
        let kind = state.kind();
        let prev = self
            .sessions
            .insert(agent.clone(), (kind, reason.clone()))
            .unwrap_or(("logged_out", None));
        self.session_ops
            .extend(session_ops(&agent.0, prev, kind, &reason, now.wall_ms));
        self.publish(CallEvent::AgentState {
            agent: agent.0.clone(),
            state: kind.to_string(),
            reason,
        });
    }

    /// `agent` rings or talks on `call`.
    pub fn handle_call(&mut self, agent: &AgentId, call: u64) {
        self.entry_mut(agent).call = Some(call);
    }

    /// `agent` is no longer on `call` (an outbound call ended before the engine moved it).
    pub fn handle_call_gone(&mut self, agent: &AgentId, call: u64) {
        if let Some(e) = self.entries.get_mut(agent) {
            if e.call == Some(call) {
                e.call = None;
            }
        }
    }

    /// `agent` answered a call (counted once).
    pub fn handle_answered(&mut self, agent: &AgentId) {
        self.entry_mut(agent).calls_answered += 1;
    }

    /// The agent logged in or out through the API.
    pub fn handle_manual(&mut self, agent: &AgentId, logged_out: bool) {
        self.entry_mut(agent).manual_logout = logged_out;
    }

    /// The registrar changed a binding.
    pub fn handle_binding(&mut self, op: StoreOp) -> Registration {
        let agent = match &op {
            StoreOp::Upsert(b) => b.agent_id.clone(),
            StoreOp::Delete { agent_id, .. } => agent_id.clone(),
        };
        let list = self.contacts.entry(agent.clone()).or_default();
        let before = list.len();
        match op {
            StoreOp::Upsert(b) => {
                list.retain(|x| x.uri != b.uri);
                list.push(b);
            }
            StoreOp::Delete { uri, .. } => list.retain(|x| x.uri != uri),
        }
        let after = list.len();
        let manual_logout = self
            .entries
            .get(&AgentId(agent.clone()))
            .is_some_and(|b| b.manual_logout);
        if before == 0 && after > 0 && !manual_logout {
            Registration::FirstPhone(agent)
        } else if before > 0 && after == 0 {
            Registration::LastPhoneGone(agent)
        } else {
            Registration::Unchanged
        }
    }

    /// The agent has a registered phone.
    pub fn registered(&self, agent: &str) -> bool {
        self.contacts.get(agent).is_some_and(|l| !l.is_empty())
    }

    /// The agent's most recently refreshed binding still valid at `now`.
    pub fn binding(&self, agent: &str, now: Now) -> Option<Binding> {
        self.contacts
            .get(agent)?
            .iter()
            .filter(|b| b.expires_at_ms > now.wall_ms)
            .max_by_key(|b| b.updated_at_ms)
            .cloned()
    }
}

/// Login and pause sessions opened/closed by an agent's move from `prev` to `state`.
fn session_ops(
    agent: &str,
    prev: (&'static str, Option<String>),
    state: &str,
    reason: &Option<String>,
    now_ms: u64,
) -> Vec<ApiOp> {
    let (prev_state, prev_reason) = prev;
    let mut ops = vec![];
    let end = |kind| ApiOp::SessionEnd {
        agent: agent.into(),
        kind,
        ended_at_ms: now_ms,
    };
    let start = |kind, reason: Option<String>| ApiOp::SessionStart {
        agent: agent.into(),
        kind,
        reason,
        started_at_ms: now_ms,
    };
    let was_paused = prev_state == "paused";
    let is_paused = state == "paused";
    if was_paused && (!is_paused || prev_reason != *reason) {
        ops.push(end("pause"));
    }
    if prev_state != "logged_out" && state == "logged_out" {
        ops.push(end("login"));
    }
    if prev_state == "logged_out" && state != "logged_out" {
        ops.push(start("login", None));
    }
    if is_paused && (!was_paused || prev_reason != *reason) {
        ops.push(start("pause", reason.clone()));
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn t0() -> Now {
        Now::at(Instant::now(), 1_700_000_000_000)
    }

    fn binding(agent: &str, uri: &str, expires_at_ms: u64, updated_at_ms: u64) -> Binding {
        Binding {
            agent_id: agent.into(),
            uri: uri.into(),
            expires_at_ms,
            call_id: "c".into(),
            cseq: 1,
            source: "udp:127.0.0.1:5070".into(),
            q: None,
            updated_at_ms,
        }
    }

    fn a(id: &str) -> AgentId {
        AgentId(id.into())
    }

    fn kinds(ops: &[ApiOp]) -> Vec<String> {
        ops.iter()
            .map(|o| match o {
                ApiOp::SessionStart { kind, reason, .. } => format!("start {kind} {reason:?}"),
                ApiOp::SessionEnd { kind, .. } => format!("end {kind}"),
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn drain_ops(b: &mut Board) -> Vec<ApiOp> {
        std::iter::from_fn(|| b.poll_session_op()).collect()
    }

    #[test]
    fn states_move_the_board_and_publish_in_order() {
        let mut b = Board::default();
        let now = t0();
        let alice = a("alice");
        b.handle_state(&alice, &AgentState::Available, now);
        b.handle_call(&alice, 7);
        b.handle_state(
            &alice,
            &AgentState::Ringing,
            now.later(Duration::from_secs(1)),
        );
        assert_eq!(b.entry(&alice).call, Some(7), "ringing keeps the call");
        b.handle_state(
            &alice,
            &AgentState::OnCall,
            now.later(Duration::from_secs(3)),
        );
        b.handle_answered(&alice);
        b.handle_state(
            &alice,
            &AgentState::Wrapup,
            now.later(Duration::from_secs(60)),
        );
        let e = b.entry(&alice);
        assert_eq!(e.call, None, "wrap-up is off the call");
        assert_eq!(e.calls_answered, 1);
        assert_eq!(e.since_ms, now.wall_ms + 60_000);
        let states: Vec<String> = std::iter::from_fn(|| b.poll_event())
            .map(|ev| match ev {
                CallEvent::AgentState { state, .. } => state,
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(states, ["available", "ringing", "on_call", "wrapup"]);
        assert_eq!(b.poll_event(), None);
    }

    #[test]
    fn published_events_keep_their_order_among_state_changes() {
        let mut b = Board::default();
        b.publish(CallEvent::CallEntered {
            call: 1,
            queue: "sales".into(),
            caller_number: None,
        });
        b.handle_state(&a("bob"), &AgentState::Ringing, t0());
        b.publish(CallEvent::CallOffered {
            call: 1,
            agent: "bob".into(),
        });
        let got: Vec<CallEvent> = std::iter::from_fn(|| b.poll_event()).collect();
        assert!(matches!(got[0], CallEvent::CallEntered { call: 1, .. }));
        assert!(matches!(got[1], CallEvent::AgentState { .. }));
        assert!(matches!(got[2], CallEvent::CallOffered { call: 1, .. }));
        assert_eq!(got.len(), 3);
    }

    #[test]
    fn sessions_open_and_close_with_the_agent_state() {
        let mut b = Board::default();
        let now = t0();
        let carol = a("carol");
        b.handle_state(&carol, &AgentState::Available, now);
        assert_eq!(kinds(&drain_ops(&mut b)), ["start login None"]);
        b.handle_state(&carol, &AgentState::Paused("lunch".into()), now);
        assert_eq!(kinds(&drain_ops(&mut b)), ["start pause Some(\"lunch\")"]);
        b.handle_state(&carol, &AgentState::Paused("meeting".into()), now);
        assert_eq!(
            kinds(&drain_ops(&mut b)),
            ["end pause", "start pause Some(\"meeting\")"]
        );
        let later = now.later(Duration::from_secs(90));
        b.handle_state(&carol, &AgentState::LoggedOut, later);
        let ops = drain_ops(&mut b);
        assert_eq!(kinds(&ops), ["end pause", "end login"]);
        assert!(ops.iter().all(|o| matches!(
            o,
            ApiOp::SessionEnd { ended_at_ms, .. } if *ended_at_ms == later.wall_ms
        )));
        // On a call or in wrap-up the login goes on: no rows.
        b.handle_state(&carol, &AgentState::Available, later);
        b.handle_state(&carol, &AgentState::OnCall, later);
        b.handle_state(&carol, &AgentState::Wrapup, later);
        assert_eq!(kinds(&drain_ops(&mut b)), ["start login None"]);
    }

    #[test]
    fn first_and_last_phone_log_in_and_out() {
        let mut b = Board::default();
        let now = t0();
        let far = now.wall_ms + 3_600_000;
        let r = b.handle_binding(StoreOp::Upsert(binding("dave", "sip:d@a", far, 1)));
        assert_eq!(r, Registration::FirstPhone("dave".into()));
        let r = b.handle_binding(StoreOp::Upsert(binding("dave", "sip:d@b", far, 2)));
        assert_eq!(r, Registration::Unchanged, "a second phone changes nothing");
        assert_eq!(
            b.binding("dave", now).map(|b| b.uri),
            Some("sip:d@b".into())
        );
        let r = b.handle_binding(StoreOp::Delete {
            agent_id: "dave".into(),
            uri: "sip:d@b".into(),
        });
        assert_eq!(r, Registration::Unchanged);
        assert_eq!(
            b.binding("dave", now).map(|b| b.uri),
            Some("sip:d@a".into())
        );
        let r = b.handle_binding(StoreOp::Delete {
            agent_id: "dave".into(),
            uri: "sip:d@a".into(),
        });
        assert_eq!(r, Registration::LastPhoneGone("dave".into()));
        assert!(!b.registered("dave"));
    }

    #[test]
    fn a_manual_logout_survives_a_new_registration() {
        let mut b = Board::default();
        let far = t0().wall_ms + 3_600_000;
        b.handle_manual(&a("erin"), true);
        let r = b.handle_binding(StoreOp::Upsert(binding("erin", "sip:e@a", far, 1)));
        assert_eq!(r, Registration::Unchanged);
        assert!(b.registered("erin"));
        b.handle_manual(&a("erin"), false);
        assert!(!b.entry(&a("erin")).manual_logout);
    }

    #[test]
    fn an_expired_binding_is_not_offered() {
        let mut b = Board::default();
        let now = t0();
        b.handle_binding(StoreOp::Upsert(binding(
            "fay",
            "sip:f@a",
            now.wall_ms + 10,
            1,
        )));
        assert!(b.binding("fay", now).is_some());
        assert!(b
            .binding("fay", now.later(Duration::from_millis(10)))
            .is_none());
    }

    #[test]
    fn a_ring_timeout_moves_the_call_to_the_next_seat() {
        let mut b = Board::default();
        let now = t0();
        let (a1, a2) = (a("1001"), a("1002"));
        for x in [&a1, &a2] {
            b.handle_state(x, &AgentState::Available, now);
        }
        // Offered to 1001, which rings out; the engine re-offers to 1002.
        b.handle_call(&a1, 9);
        b.handle_state(&a1, &AgentState::Ringing, now);
        let missed = now.later(Duration::from_secs(15));
        b.handle_state(&a1, &AgentState::Paused("no_answer".into()), missed);
        b.handle_call(&a2, 9);
        b.handle_state(&a2, &AgentState::Ringing, missed);
        b.handle_state(
            &a2,
            &AgentState::OnCall,
            missed.later(Duration::from_secs(2)),
        );
        b.handle_answered(&a2);
        assert_eq!(
            b.entry(&a1).call,
            None,
            "the seat that rang out is off the call"
        );
        assert_eq!(b.entry(&a1).calls_answered, 0);
        assert_eq!(b.entry(&a2).call, Some(9));
        assert_eq!(b.entry(&a2).calls_answered, 1);
        let ops = kinds(&drain_ops(&mut b));
        assert_eq!(
            ops,
            [
                "start login None",
                "start login None",
                "start pause Some(\"no_answer\")"
            ]
        );
    }
}
