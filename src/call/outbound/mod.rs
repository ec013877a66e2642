//! The progressive dialer: outbound callback calls inside the call manager.
//!
//! When an agent who works an active progressive list is available in the ACD engine and no
//! inbound queue it serves is at risk ([`crate::config::Outbound::hold_back`]), the dialer
//! reserves the agent (engine pause with reason `outbound`, so no inbound offer reaches it), asks
//! the store thread for the next contact ([`crate::outbound::next_contact_among`], which claims it
//! atomically), rings the agent's phone (From = the customer), and only once the agent is on the
//! line calls the customer through the trunk (digest credentials when challenged). The
//! customer's answer is bridged into the agent's media session; busy, rejected, no answer
//! (CANCEL after `dial_timeout_secs`) and failures are stored with their SIP code. The agent is
//! freed after the call (wrap-up of its queues, then available). One customer call per agent.
//!
//! Store work is asked of a thread of the dialer's own, which hands each request to the store
//! writer (`crate::store::Store::sql_write_blocking`: the one connection that writes, in order
//! with the call records) and reports back through the dialer's channel. At
//! start it runs
//! [`crate::outbound::reconcile_after_restart`] before anything is dialed.
//!
//! Queue callbacks: each time the store thread reads the lists (every 2 s) it first turns new
//! callback requests into contacts of their queue's `queue_callback` list
//! ([`crate::outbound::absorb_requests`]); those lists are worked by the queue's members, so a
//! queue's agents call its callers back — before their other lists' contacts, oldest queue entry
//! first (the contact policy's order) — through the same path as every progressive contact.
//!
//! Preview lists ([`preview`]): the contact the store claimed is shown to the agent (API and
//! event stream) instead of dialed; the agent accepts — then the call goes on as above — or
//! skips it (the contact returns later, the agent gets the next one); an agent who does
//! neither within `preview_timeout_secs` is paused `no_answer` and the contact goes back.
//!
//! Parts: [`pacing`] decides which agents to reserve and what to ask the store (a machine with
//! no I/O, time as input, unit-tested); `dial` rings the agent then the customer; `ending`
//! follows the legs to their end and records the result; [`preview`] shows contacts before
//! dialing; `store` is the store thread; `settings` what the configuration says. This file
//! holds the dialer's state and its entry points from the call manager (events, store answers
//! and timers, shutdown). The dialer's timers ([`timers`]) are deadlines the call manager sleeps
//! until, with the engine's, not tasks.
//!
//! Must not know: SQL (beyond calling `crate::outbound`), sockets, SIP parsing.

use super::legs::{self, AgentOffer, Peer};
use super::media::leg_media;
use super::{CallManager, AGENT_DTMF_PT};
use crate::acd::{AgentId, AgentState, CallId, Input, QueueId};
use crate::clock::Now;
use crate::media::sdp::{self, Negotiated};
use crate::media::session::{start_session, Command as Media, SessionHandle};
use crate::media::LegSockets;
use crate::outbound::{AttemptId, AttemptResult, Decision, ListId, ListState, Mode, Why};
use crate::sip::build::{new_call_id, new_tag};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxId, DialogKey, Event, ServerTxId};
use crate::sip::header::CSeq;
use crate::sip::message::{Method, Request, Response};
use crate::store::CallOp;
use crate::transport::driver::Command;
use std::collections::HashMap;
use std::net::SocketAddr;

use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod dial;
mod ending;
mod pacing;
mod preview;
mod settings;
mod store;
mod timers;

pub use settings::OutboundSettings;

use store::store_thread;

/// The engine pause reason that reserves an agent for the dialer.
pub const PAUSE_REASON: &str = "outbound";
/// How often the dialer looks for free agents.
const TICK: Duration = Duration::from_millis(250);
/// Lists are re-read from the store every this many ticks.
const LISTS_EVERY: u64 = 8;
/// Pause before asking again for an agent when nothing was due…
const NOTHING_COOLDOWN: Duration = Duration::from_secs(2);
/// … and at most this long (list closed, paused, out of quota, next retry far off).
const NOTHING_MAX_COOLDOWN: Duration = Duration::from_secs(10);
/// Pause before trying an agent again whose phone did not take the dialer's call.
const AGENT_FAILED_COOLDOWN: Duration = Duration::from_secs(30);
/// How long the agent's phone may ring for an outbound call.
const AGENT_RING: Duration = Duration::from_secs(20);

/// An active progressive list as the dialer sees it.
#[derive(Debug, Clone)]
pub(super) struct ListInfo {
    id: ListId,
    agents: Vec<String>,
    queue: Option<String>,
}

/// Work for the store thread.
enum StoreReq {
    /// Read the lists (absorbing new queue callback requests first), as of `now_ms`.
    Lists {
        now_ms: u64,
    },
    Next {
        agent: AgentId,
        lists: Vec<ListId>,
        now_ms: u64,
    },
    Link {
        attempt: AttemptId,
        call: u64,
    },
    Result {
        attempt: AttemptId,
        result: AttemptResult,
        code: Option<u16>,
        at_ms: u64,
    },
    Hangup {
        attempt: AttemptId,
        at_ms: u64,
    },
}

/// What comes back to the call manager: store answers and the dialer's timers.
pub(super) enum Msg {
    Tick,
    Reconciled,
    Lists(Vec<ListInfo>),
    Next {
        agent: AgentId,
        decision: Box<Result<Decision, String>>,
        list_name: String,
    },
    AgentRingTimeout(CallId),
    DialTimeout(CallId),
    WrapupDone(AgentId),
    /// A preview shown to the agent was neither accepted nor skipped in time.
    PreviewTimeout(AgentId, AttemptId),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leg {
    Agent,
    Customer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The agent's phone rings.
    AgentRinging,
    /// The agent is on the line; the customer's phone rings.
    Dialing,
    /// Both are on the line, bridged.
    Talking,
}

/// One leg ctid originated.
struct OLeg {
    tx: ClientTxId,
    invite: Request,
    peer: Peer,
    sockets: Option<LegSockets>,
    dialog: Option<Dialog>,
    answer: Option<Negotiated>,
}

/// One outbound call (one attempt).
struct OCall {
    attempt: AttemptId,
    list: String,
    agent: AgentId,
    number: String,
    phase: Phase,
    agent_leg: OLeg,
    customer: Option<OLeg>,
    customer_call_id: String,
    media: Option<SessionHandle>,
    ringing_recorded: bool,
    dialed: Option<Instant>,
    answered: Option<Instant>,
}

/// The dialer's state, owned by the call manager.
pub(super) struct Dialer {
    settings: OutboundSettings,
    store: std::sync::mpsc::Sender<StoreReq>,
    /// The store thread's answers.
    pub(super) rx: Option<mpsc::Receiver<Msg>>,
    /// Which agents are reserved when, and what the store is asked (no I/O: see [`pacing`]).
    pacing: pacing::Pacing,
    /// The dialer's timers, as deadlines the call manager sleeps until.
    timers: timers::DialerTimers,
    calls: HashMap<CallId, OCall>,
    by_tx: HashMap<ClientTxId, (CallId, Leg)>,
    by_dialog: HashMap<DialogKey, (CallId, Leg)>,
    /// Every INVITE sent, until its final response: a late 2xx is ACKed and hung up.
    invites: HashMap<ClientTxId, (Request, Peer)>,
    /// Contacts shown to agents in preview mode (claimed, not dialed), by agent.
    previews: HashMap<AgentId, preview::Preview>,
}

impl Dialer {
    fn new(settings: OutboundSettings, now: Now) -> Dialer {
        let now_ms = now.wall_ms;
        let (msgs, rx) = mpsc::channel(1024);
        let (store, jobs) = std::sync::mpsc::channel();
        let db = settings.store.clone();
        // Callback requests become contacts only when something can dial them.
        let callbacks =
            (settings.cfg.enabled && settings.trunk.is_some()).then(|| settings.callbacks.clone());
        let out = msgs;
        let spawned = std::thread::Builder::new()
            .name("ctid-dialer-store".into())
            .spawn(move || store_thread(now_ms, db, callbacks, jobs, out));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the dialer's store thread; nothing is dialed");
        }
        let mut timers = timers::DialerTimers::default();
        timers.after(now.mono, TICK, Msg::Tick);
        Dialer {
            settings,
            store,
            rx: Some(rx),
            pacing: pacing::Pacing::default(),
            timers,
            calls: HashMap::new(),
            by_tx: HashMap::new(),
            by_dialog: HashMap::new(),
            invites: HashMap::new(),
            previews: HashMap::new(),
        }
    }

    fn ask(&self, req: StoreReq) {
        if self.store.send(req).is_err() {
            tracing::error!("dialer store thread gone; outbound result not stored");
        }
    }

    /// Hand the pacing's store requests to the store thread, in order.
    fn flush(&mut self) {
        while let Some(req) = self.pacing.poll_request() {
            self.ask(req);
        }
    }

    /// `msg` comes back as an input once `delay` has passed (see [`timers`]).
    fn after(&mut self, now: Now, delay: Duration, msg: Msg) {
        self.timers.after(now.mono, delay, msg);
    }

    /// The earliest deadline of the dialer's timers.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.timers.poll_timeout()
    }

    /// The next of the dialer's timers due at `now`.
    pub(super) fn poll_expired(&mut self, now: Now) -> Option<Msg> {
        self.timers.poll_expired(now.mono)
    }

    fn result(&self, attempt: AttemptId, result: AttemptResult, code: Option<u16>, at_ms: u64) {
        self.ask(StoreReq::Result {
            attempt,
            result,
            code,
            at_ms,
        });
    }
}

/// The attempt result of a final SIP status from the customer's side.
fn result_of(code: u16) -> AttemptResult {
    match code {
        486 | 600 => AttemptResult::Busy,
        603 => AttemptResult::Rejected,
        408 | 480 | 487 => AttemptResult::NoAnswer,
        _ => AttemptResult::Failed,
    }
}

impl CallManager {
    /// Turn the progressive dialer on (the app does when `[outbound] enabled`).
    pub fn with_outbound(mut self, settings: OutboundSettings) -> Self {
        if settings.trunk.is_none() {
            tracing::warn!("[outbound] is enabled but no [trunk] is configured: nothing is dialed");
        }
        self.outbound = Some(Dialer::new(settings, self.now));
        self
    }

    /// Take events that belong to outbound calls; hand back the others.
    pub(super) async fn outbound_event(&mut self, ev: Event) -> Option<Event> {
        let Some(d) = &self.outbound else {
            return Some(ev);
        };
        match ev {
            Event::Response { tx, response } => {
                if let Some(&(id, leg)) = d.by_tx.get(&tx) {
                    self.ob_response(id, leg, tx, response).await;
                    None
                } else if d.invites.contains_key(&tx) {
                    self.ob_stray(tx, &response).await;
                    None
                } else {
                    Some(Event::Response { tx, response })
                }
            }
            Event::RequestFailed { tx, reason } => {
                let d = self.outbound.as_mut()?;
                d.invites.remove(&tx);
                if let Some((id, leg)) = d.by_tx.remove(&tx) {
                    tracing::info!(call = %id, ?leg, reason, "outbound INVITE failed");
                    match leg {
                        Leg::Agent => self.ob_agent_failed(id, None).await,
                        Leg::Customer => {
                            self.ob_unanswered(id, AttemptResult::Failed, Some(408), "ctid")
                                .await
                        }
                    }
                    None
                } else {
                    Some(Event::RequestFailed { tx, reason })
                }
            }
            Event::Request { tx, request, flow } => {
                let key = DialogKey {
                    call_id: request.headers.get("Call-ID").unwrap_or("").to_string(),
                    local_tag: super::tag(&request, "To").unwrap_or_default(),
                    remote_tag: super::tag(&request, "From").unwrap_or_default(),
                };
                match d.by_dialog.get(&key).copied() {
                    Some((id, leg)) => {
                        self.ob_in_dialog(tx, request, id, leg).await;
                        None
                    }
                    None => Some(Event::Request { tx, request, flow }),
                }
            }
            other => Some(other),
        }
    }

    /// A store answer or a timer of the dialer.
    pub(super) async fn outbound_msg(&mut self, m: Msg) {
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        match m {
            Msg::Tick => {
                d.after(self.now, TICK, Msg::Tick);
                self.ob_tick()
            }
            Msg::Reconciled => {
                d.pacing.handle_reconciled(self.now);
                d.flush();
            }
            Msg::Lists(l) => d.pacing.handle_lists(l),
            Msg::Next {
                agent,
                decision,
                list_name,
            } => self.ob_decision(agent, *decision, list_name).await,
            Msg::AgentRingTimeout(id) => {
                let ringing = d
                    .calls
                    .get(&id)
                    .filter(|c| c.phase == Phase::AgentRinging)
                    .map(|c| c.agent_leg.tx);
                if let Some(tx) = ringing {
                    tracing::info!(call = %id, "agent did not answer the outbound call");
                    self.send(Command::Cancel { tx }).await;
                    self.ob_agent_failed(id, None).await;
                }
            }
            Msg::DialTimeout(id) => {
                let dialing = d
                    .calls
                    .get(&id)
                    .is_some_and(|c| c.phase == Phase::Dialing && c.customer.is_some());
                if dialing {
                    tracing::info!(call = %id, "customer did not answer in time; cancelling");
                    // `ob_unanswered` CANCELs the still-ringing customer leg (`by` is not the
                    // customer): cancelling here as well sent a second CANCEL, which could reach
                    // the trunk after the ACK of its 487.
                    self.ob_unanswered(id, AttemptResult::NoAnswer, None, "ctid")
                        .await;
                }
            }
            Msg::WrapupDone(agent) => self.ob_free(&agent),
            Msg::PreviewTimeout(agent, attempt) => self.preview_timeout(agent, attempt).await,
        }
    }

    /// Hang up every outbound call (shutdown); the attempts are reconciled at the next start.
    pub(super) async fn outbound_shutdown(&mut self) {
        self.previews_withdraw_all();
        let ids: Vec<CallId> = self
            .outbound
            .as_ref()
            .map(|d| d.calls.keys().copied().collect())
            .unwrap_or_default();
        for id in ids {
            let talking = self
                .outbound
                .as_ref()
                .and_then(|d| d.calls.get(&id))
                .is_some_and(|c| c.phase == Phase::Talking);
            if talking {
                self.ob_end_talk(id, None, "ctid").await;
            } else {
                self.ob_unanswered(id, AttemptResult::Failed, Some(503), "ctid")
                    .await;
            }
        }
    }

    /// Look for free agents to dial for (see [`pacing`]): the pacing picks them, the engine
    /// pauses them, the store is asked for their next contacts.
    fn ob_tick(&mut self) {
        let Some(d) = self.outbound.as_ref() else {
            return;
        };
        if !d.pacing.ready() || !d.settings.cfg.enabled || d.settings.trunk.is_none() {
            return;
        }
        self.previews_check();
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let now = self.now;
        let (engine, board) = (&self.engine, &self.board);
        let settings = &d.settings;
        let free = |agent: &AgentId| {
            if engine.agent_state(agent) != Some(&AgentState::Available) {
                return false;
            }
            if !board.registered(&agent.0) {
                return false;
            }
            let at_risk = settings
                .agent_queues
                .get(agent)
                .into_iter()
                .flatten()
                .any(|q| {
                    let id = QueueId(q.clone());
                    let waiting = engine.waiting(&id);
                    let longest = engine
                        .longest_wait(&id, now.mono)
                        .map_or(0.0, |w| w.as_secs_f64());
                    let target = settings.sl_targets.get(q).copied().unwrap_or(15);
                    settings.cfg.hold_back(waiting, longest, target)
                });
            !at_risk
        };
        let started = d.pacing.handle_tick(now, &settings.queue_members, free);
        for agent in started {
            tracing::debug!(agent = %agent, "reserving the agent for an outbound call");
            self.engine.handle(
                now.mono,
                Input::AgentPause {
                    agent,
                    reason: PAUSE_REASON.into(),
                },
            );
        }
        d.flush();
    }

    /// Unpause an agent the dialer held, unless someone else changed its state meanwhile.
    fn ob_free(&mut self, agent: &AgentId) {
        if let Some(d) = self.outbound.as_mut() {
            d.pacing.release(agent);
        }
        if self.engine.agent_state(agent) == Some(&AgentState::Paused(PAUSE_REASON.into())) {
            self.engine.handle(
                self.now.mono,
                Input::AgentUnpause {
                    agent: agent.clone(),
                },
            );
        }
    }

    /// Free the agent after `delay` (wrap-up), or now.
    fn ob_release(&mut self, agent: &AgentId, delay: Duration) {
        match &mut self.outbound {
            Some(d) if !delay.is_zero() => d.after(self.now, delay, Msg::WrapupDone(agent.clone())),
            _ => self.ob_free(agent),
        }
    }

    /// The store had nothing for a reserved agent, or its phone failed (`why` is `None`):
    /// unpause it and leave it alone for a while.
    fn ob_cool_down(&mut self, agent: &AgentId, why: Option<&Why>) {
        self.ob_free(agent);
        if let Some(d) = self.outbound.as_mut() {
            match why {
                Some(why) => d.pacing.handle_nothing(agent, why, self.now),
                None => d.pacing.handle_failed(agent, self.now),
            }
        }
    }

    /// The store's answer for a reserved agent.
    async fn ob_decision(
        &mut self,
        agent: AgentId,
        decision: Result<Decision, String>,
        list_name: String,
    ) {
        let (attempt, contact, number) = match decision {
            Ok(Decision::Dial {
                attempt,
                contact,
                number,
                mode: Mode::Preview,
                list,
                ..
            }) => {
                self.preview_show(agent, attempt, list, list_name, contact, number);
                return;
            }
            Ok(Decision::Dial {
                attempt,
                contact,
                number,
                ..
            }) => (attempt, contact, number),
            Ok(Decision::Nothing { why }) => {
                tracing::debug!(agent = %agent, ?why, "nothing to dial for the agent");
                self.ob_cool_down(&agent, Some(&why));
                return;
            }
            Err(e) => {
                tracing::warn!(agent = %agent, error = %e, "dialer: next contact failed");
                self.ob_cool_down(&agent, None);
                return;
            }
        };
        self.ob_dial(agent, attempt, contact.name, number, list_name)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn final_codes_map_to_results() {
        assert_eq!(result_of(486), AttemptResult::Busy);
        assert_eq!(result_of(600), AttemptResult::Busy);
        assert_eq!(result_of(603), AttemptResult::Rejected);
        assert_eq!(result_of(487), AttemptResult::NoAnswer);
        assert_eq!(result_of(480), AttemptResult::NoAnswer);
        assert_eq!(result_of(404), AttemptResult::Failed);
        assert_eq!(result_of(503), AttemptResult::Failed);
    }
}
