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
//! with the call records) and reports back through the dialer's channel, like its timers. At
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
//! Must not know: SQL (beyond calling `crate::outbound`), sockets, SIP parsing.

use super::legs::{self, AgentOffer, Peer};
use super::media::leg_media;
use super::{unix_ms, CallManager, AGENT_DTMF_PT};
use crate::acd::{AgentId, AgentState, CallId, Input, QueueId};
use crate::config::{self, Config};
use crate::media::sdp::{self, Negotiated};
use crate::media::session::{start_session, Command as Media, SessionConfig, SessionHandle};
use crate::media::LegSockets;
use crate::outbound::{AttemptId, AttemptResult, Decision, ListId, ListState, Mode, Why};
use crate::sip::build::{new_call_id, new_tag};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxId, DialogKey, Event, ServerTxId};
use crate::sip::header::CSeq;
use crate::sip::message::{Method, Request, Response};
use crate::store::CallOp;
use crate::transport::driver::Command;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

mod preview;

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

/// What the dialer needs from the configuration.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    pub cfg: config::Outbound,
    pub trunk: Option<config::Trunk>,
    /// Where the lists, contacts and attempts are read and written.
    pub store: crate::store::Store,
    /// Where the trunk is reached (its name resolved by the qualifier; see `trunk::TrunkTarget`).
    pub trunk_target: crate::trunk::TrunkTarget,
    /// Queue → its members.
    pub queue_members: HashMap<String, Vec<AgentId>>,
    /// Agent → the queues it serves (for blending and wrap-up).
    pub agent_queues: HashMap<AgentId, Vec<String>>,
    pub sl_targets: HashMap<String, u64>,
    pub wrapups: HashMap<String, Duration>,
    pub session: SessionConfig,
    /// How queue callback requests become contacts (`[reports] time_zone`, default country).
    pub callbacks: crate::outbound::QueueCallbackSettings,
}

impl OutboundSettings {
    pub fn from_config(cfg: &Config, store: crate::store::Store) -> OutboundSettings {
        let mut queue_members = HashMap::new();
        let mut agent_queues: HashMap<AgentId, Vec<String>> = HashMap::new();
        let mut sl_targets = HashMap::new();
        let mut wrapups = HashMap::new();
        for q in &cfg.queues {
            let members: Vec<AgentId> =
                q.members.iter().map(|m| AgentId(m.agent.clone())).collect();
            for m in &members {
                agent_queues
                    .entry(m.clone())
                    .or_default()
                    .push(q.name.clone());
            }
            queue_members.insert(q.name.clone(), members);
            sl_targets.insert(q.name.clone(), q.sl_target_secs);
            wrapups.insert(q.name.clone(), Duration::from_secs(q.wrapup_secs));
        }
        OutboundSettings {
            cfg: cfg.outbound.clone(),
            trunk: cfg.trunk.clone(),
            store,
            trunk_target: crate::trunk::TrunkTarget::default(),
            queue_members,
            agent_queues,
            sl_targets,
            wrapups,
            session: SessionConfig {
                media_timeout: None,
                relay_dtmf: cfg.media.dtmf == "relay",
                ..SessionConfig::default()
            },
            callbacks: crate::outbound::QueueCallbackSettings {
                time_zone: cfg.reports.time_zone.clone(),
                country_code: cfg.outbound.country_code(),
            },
        }
    }

    /// The wrap-up after an outbound call: the longest of the agent's queues.
    fn wrapup(&self, agent: &AgentId) -> Duration {
        self.agent_queues
            .get(agent)
            .into_iter()
            .flatten()
            .filter_map(|q| self.wrapups.get(q))
            .max()
            .copied()
            .unwrap_or_default()
    }
}

/// An active progressive list as the dialer sees it.
#[derive(Debug, Clone)]
pub(super) struct ListInfo {
    id: ListId,
    agents: Vec<String>,
    queue: Option<String>,
}

/// Work for the store thread.
enum StoreReq {
    Lists,
    Next {
        agent: AgentId,
        lists: Vec<ListId>,
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
    msgs: mpsc::Sender<Msg>,
    pub(super) rx: Option<mpsc::Receiver<Msg>>,
    ready: bool,
    ticks: u64,
    lists: Vec<ListInfo>,
    /// Agents held by the dialer (paused `outbound`): asking the store, on a call or in wrap-up.
    reserved: HashSet<AgentId>,
    cooldown: HashMap<AgentId, Instant>,
    calls: HashMap<CallId, OCall>,
    by_tx: HashMap<ClientTxId, (CallId, Leg)>,
    by_dialog: HashMap<DialogKey, (CallId, Leg)>,
    /// Every INVITE sent, until its final response: a late 2xx is ACKed and hung up.
    invites: HashMap<ClientTxId, (Request, Peer)>,
    /// Contacts shown to agents in preview mode (claimed, not dialed), by agent.
    previews: HashMap<AgentId, preview::Preview>,
}

impl Dialer {
    fn new(settings: OutboundSettings, cancel: tokio_util::sync::CancellationToken) -> Dialer {
        let (msgs, rx) = mpsc::channel(1024);
        let (store, jobs) = std::sync::mpsc::channel();
        let db = settings.store.clone();
        // Callback requests become contacts only when something can dial them.
        let callbacks =
            (settings.cfg.enabled && settings.trunk.is_some()).then(|| settings.callbacks.clone());
        let out = msgs.clone();
        let spawned = std::thread::Builder::new()
            .name("ctid-dialer-store".into())
            .spawn(move || store_thread(db, callbacks, jobs, out));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the dialer's store thread; nothing is dialed");
        }
        let ticks = msgs.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = every.tick() => {}
                }
                if ticks.try_send(Msg::Tick).is_err() && ticks.is_closed() {
                    return;
                }
            }
        });
        Dialer {
            settings,
            store,
            msgs,
            rx: Some(rx),
            ready: false,
            ticks: 0,
            lists: Vec::new(),
            reserved: HashSet::new(),
            cooldown: HashMap::new(),
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

    fn after(&self, delay: Duration, msg: Msg) {
        let out = self.msgs.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = out.send(msg).await;
        });
    }

    fn result(&self, attempt: AttemptId, result: AttemptResult, code: Option<u16>) {
        self.ask(StoreReq::Result {
            attempt,
            result,
            code,
            at_ms: unix_ms(),
        });
    }
}

/// The store side: reconcile once, then serve requests in order until the dialer is dropped.
/// Each request runs on the store writer's connection (see the module header). Before each
/// reading of the lists, new queue callback requests become contacts (`callbacks`: how; none
/// when nothing is dialed).
fn store_thread(
    db: crate::store::Store,
    callbacks: Option<crate::outbound::QueueCallbackSettings>,
    jobs: std::sync::mpsc::Receiver<StoreReq>,
    out: mpsc::Sender<Msg>,
) {
    let reconciled =
        db.sql_write_blocking(|conn| crate::outbound::reconcile_after_restart(conn, unix_ms()));
    match reconciled {
        Ok(r) => tracing::info!(report = ?r, "outbound attempts reconciled"),
        Err(e) => {
            tracing::error!(error = %e, "reconciling outbound attempts failed; nothing is dialed");
            return;
        }
    }
    if out.blocking_send(Msg::Reconciled).is_err() {
        return;
    }
    let mut names: HashMap<ListId, String> = HashMap::new();
    while let Ok(job) = jobs.recv() {
        let reply = match job {
            StoreReq::Lists => {
                let callbacks = callbacks.clone();
                let all = db.sql_write_blocking(move |conn| {
                    if let Some(settings) = &callbacks {
                        absorbed(crate::outbound::absorb_requests(conn, settings, unix_ms()));
                    }
                    crate::outbound::list_lists(conn)
                });
                lists_reply(all, &mut names)
            }
            StoreReq::Next { agent, lists } => {
                let known = names.clone();
                let who = agent.0.clone();
                let asked = db.sql_write_blocking(move |conn| {
                    let decision =
                        crate::outbound::next_contact_among(conn, &lists, &who, unix_ms())
                            .map_err(|e| e.to_string());
                    let list_name = match &decision {
                        Ok(Decision::Dial { list, .. }) => known
                            .get(list)
                            .cloned()
                            .or_else(|| {
                                crate::outbound::get_list(conn, *list)
                                    .ok()
                                    .map(|l| l.spec.name)
                            })
                            .unwrap_or_default(),
                        _ => String::new(),
                    };
                    Ok::<_, crate::store::StoreError>((decision, list_name))
                });
                let (decision, list_name) = match asked {
                    Ok(x) => x,
                    Err(e) => (Err(e.to_string()), String::new()),
                };
                Some(Msg::Next {
                    agent,
                    decision: Box::new(decision),
                    list_name,
                })
            }
            StoreReq::Link { attempt, call } => {
                let linked = db.sql_write_blocking(move |conn| {
                    crate::outbound::link_call(conn, attempt, call)
                });
                if let Err(e) = linked {
                    tracing::warn!(%attempt, error = %e, "cannot link the attempt to its call");
                }
                None
            }
            StoreReq::Result {
                attempt,
                result,
                code,
                at_ms,
            } => {
                let stored = db.sql_write_blocking(move |conn| {
                    crate::outbound::record_result(conn, attempt, result, code, at_ms)
                });
                match stored {
                    Ok(next) => {
                        tracing::info!(%attempt, %result, ?code, ?next, "outbound attempt result stored")
                    }
                    Err(e) => {
                        tracing::warn!(%attempt, %result, error = %e, "cannot store the attempt result")
                    }
                }
                None
            }
            StoreReq::Hangup { attempt, at_ms } => {
                let stored = db.sql_write_blocking(move |conn| {
                    crate::outbound::record_hangup(conn, attempt, at_ms)
                });
                if let Err(e) = stored {
                    tracing::warn!(%attempt, error = %e, "cannot store the attempt's hang-up");
                }
                None
            }
        };
        if let Some(m) = reply {
            if out.blocking_send(m).is_err() {
                return;
            }
        }
    }
}

/// The dialer's view of the lists read: the active ones (their names remembered in `names`).
fn lists_reply(
    all: crate::outbound::Result<Vec<crate::outbound::List>>,
    names: &mut HashMap<ListId, String>,
) -> Option<Msg> {
    match all {
        Ok(all) => {
            let infos = all
                .into_iter()
                .filter(|l| l.state == ListState::Active)
                .map(|l| {
                    names.insert(l.id, l.spec.name.clone());
                    ListInfo {
                        id: l.id,
                        agents: l.spec.agents,
                        queue: l.spec.queue,
                    }
                })
                .collect();
            Some(Msg::Lists(infos))
        }
        Err(e) => {
            tracing::warn!(error = %e, "dialer cannot read the lists");
            None
        }
    }
}

/// Log what came of turning new queue callback requests into contacts (see
/// [`crate::outbound::queue_callbacks`]). A failure is tried again at the next reading of the
/// lists; the lists still dial.
fn absorbed(r: crate::outbound::Result<crate::outbound::AbsorbReport>) {
    match r {
        Ok(r) if r == crate::outbound::AbsorbReport::default() => {}
        Ok(r) => tracing::info!(report = ?r, "queue callback requests taken up by the dialer"),
        Err(e) => tracing::warn!(error = %e, "cannot take up queue callback requests"),
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
        self.outbound = Some(Dialer::new(settings, self.cancel.child_token()));
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
            Msg::Tick => self.ob_tick(),
            Msg::Reconciled => {
                d.ready = true;
                d.ask(StoreReq::Lists);
            }
            Msg::Lists(l) => d.lists = l,
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

    /// Look for free agents to dial for.
    fn ob_tick(&mut self) {
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        if !d.ready || !d.settings.cfg.enabled || d.settings.trunk.is_none() {
            return;
        }
        d.ticks += 1;
        if d.ticks % LISTS_EVERY == 0 {
            d.ask(StoreReq::Lists);
        }
        self.previews_check();
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let work = agents_lists(&d.lists, &d.settings.queue_members);
        let now = Instant::now();
        d.cooldown.retain(|_, until| *until > now);
        let mut start = Vec::new();
        for (agent, lists) in work {
            if d.reserved.contains(&agent) || d.cooldown.contains_key(&agent) {
                continue;
            }
            if self.engine.agent_state(&agent) != Some(&AgentState::Available) {
                continue;
            }
            if self.contacts.get(&agent.0).is_none_or(Vec::is_empty) {
                continue;
            }
            let at_risk = d
                .settings
                .agent_queues
                .get(&agent)
                .into_iter()
                .flatten()
                .any(|q| {
                    let id = QueueId(q.clone());
                    let waiting = self.engine.waiting(&id);
                    let longest = self
                        .engine
                        .longest_wait(&id, now)
                        .map_or(0.0, |w| w.as_secs_f64());
                    let target = d.settings.sl_targets.get(q).copied().unwrap_or(15);
                    d.settings.cfg.hold_back(waiting, longest, target)
                });
            if at_risk {
                continue;
            }
            start.push((agent, lists));
        }
        for (agent, lists) in start {
            tracing::debug!(agent = %agent, "reserving the agent for an outbound call");
            d.reserved.insert(agent.clone());
            self.engine.handle(
                now,
                Input::AgentPause {
                    agent: agent.clone(),
                    reason: PAUSE_REASON.into(),
                },
            );
            d.ask(StoreReq::Next { agent, lists });
        }
    }

    /// Unpause an agent the dialer held, unless someone else changed its state meanwhile.
    fn ob_free(&mut self, agent: &AgentId) {
        if let Some(d) = self.outbound.as_mut() {
            d.reserved.remove(agent);
        }
        if self.engine.agent_state(agent) == Some(&AgentState::Paused(PAUSE_REASON.into())) {
            self.engine.handle(
                Instant::now(),
                Input::AgentUnpause {
                    agent: agent.clone(),
                },
            );
        }
    }

    /// Free the agent after `delay` (wrap-up), or now.
    fn ob_release(&mut self, agent: &AgentId, delay: Duration) {
        match &self.outbound {
            Some(d) if !delay.is_zero() => d.after(delay, Msg::WrapupDone(agent.clone())),
            _ => self.ob_free(agent),
        }
    }

    fn ob_cooldown(&mut self, agent: &AgentId, for_: Duration) {
        if let Some(d) = self.outbound.as_mut() {
            d.cooldown.insert(agent.clone(), Instant::now() + for_);
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
                self.ob_free(&agent);
                self.ob_cooldown(&agent, nothing_cooldown(&why, unix_ms()));
                return;
            }
            Err(e) => {
                tracing::warn!(agent = %agent, error = %e, "dialer: next contact failed");
                self.ob_free(&agent);
                self.ob_cooldown(&agent, AGENT_FAILED_COOLDOWN);
                return;
            }
        };
        self.ob_dial(agent, attempt, contact.name, number, list_name)
            .await;
    }

    /// Ring the reserved `agent` for `attempt` (the customer is dialed once the agent answers).
    /// The call's id, or `None` when the attempt was given back (agent no longer reserved, no
    /// registration, no media port).
    async fn ob_dial(
        &mut self,
        agent: AgentId,
        attempt: AttemptId,
        contact_name: Option<String>,
        number: String,
        list_name: String,
    ) -> Option<CallId> {
        let give_back = |m: &mut CallManager, why: &str| {
            tracing::info!(agent = %agent, %attempt, why, "outbound attempt given back before dialing");
            if let Some(d) = &m.outbound {
                d.result(attempt, AttemptResult::Skipped, None);
            }
            m.ob_free(&agent);
            m.ob_cooldown(&agent, AGENT_FAILED_COOLDOWN);
        };
        if self.engine.agent_state(&agent) != Some(&AgentState::Paused(PAUSE_REASON.into())) {
            give_back(self, "agent no longer reserved");
            return None;
        }
        let binding = self
            .contacts
            .get(&agent.0)
            .and_then(|l| {
                l.iter()
                    .filter(|b| b.expires_at_ms > unix_ms())
                    .max_by_key(|b| b.updated_at_ms)
            })
            .cloned();
        let Some((binding, (transport, remote))) = binding
            .as_ref()
            .and_then(|b| legs::binding_target(b).map(|t| (b, t)))
        else {
            give_back(self, "no reachable registration");
            return None;
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for an outbound agent leg");
                give_back(self, "no media port");
                return None;
            }
        };
        let local_sip = self.settings.local_for(transport, remote);
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let offer = AgentOffer {
            law: 0,
            dtmf: Some(AGENT_DTMF_PT),
            local_rtp,
            session: unix_ms(),
        };
        let invite = legs::invite_agent(
            binding,
            local_sip,
            transport,
            Some(&number),
            contact_name.as_deref(),
            &new_tag(),
            &offer,
        );
        let id = CallId(self.next_call);
        self.next_call += 1;
        let tx = self.tu_id();
        let peer = Peer { transport, remote };
        let customer_call_id = new_call_id("ctid");
        let caller_id = self.ob_caller_id();
        self.record(CallOp::Started {
            id: id.0,
            sip_call_id: customer_call_id.clone(),
            direction: "outbound",
            caller_number: Some(caller_id),
            caller_name: contact_name.clone(),
            dialed_number: Some(number.clone()),
            queue: None,
            entered_at_ms: unix_ms(),
        })
        .await;
        self.send(Command::SendAs {
            id: tx,
            transport,
            remote,
            request: invite.clone(),
        })
        .await;
        tracing::info!(call = %id, agent = %agent, %attempt, list = %list_name, "outbound: ringing the agent");
        self.event(
            id,
            "offered",
            Some(&agent),
            Some(format!("attempt {attempt}")),
        )
        .await;
        let d = self.outbound.as_mut()?;
        d.ask(StoreReq::Link {
            attempt,
            call: id.0,
        });
        d.by_tx.insert(tx, (id, Leg::Agent));
        d.invites.insert(tx, (invite.clone(), peer));
        d.calls.insert(
            id,
            OCall {
                attempt,
                list: list_name,
                agent: agent.clone(),
                number,
                phase: Phase::AgentRinging,
                agent_leg: OLeg {
                    tx,
                    invite,
                    peer,
                    sockets: Some(sockets),
                    dialog: None,
                    answer: None,
                },
                customer: None,
                customer_call_id,
                media: None,
                ringing_recorded: false,
                dialed: None,
                answered: None,
            },
        );
        d.after(AGENT_RING, Msg::AgentRingTimeout(id));
        self.board.entry(agent).or_default().call = Some(id.0);
        Some(id)
    }

    /// The number the customer sees: the trunk's username, else `ctid`.
    fn ob_caller_id(&self) -> String {
        self.outbound
            .as_ref()
            .and_then(|d| d.settings.trunk.as_ref())
            .and_then(|t| t.username.clone())
            .unwrap_or_else(|| "ctid".into())
    }

    /// A response on an outbound leg.
    async fn ob_response(&mut self, id: CallId, leg: Leg, tx: ClientTxId, resp: Response) {
        if resp.status >= 200 {
            if let Some(d) = self.outbound.as_mut() {
                d.by_tx.remove(&tx);
            }
        }
        match (leg, resp.status) {
            (_, 100) => {}
            (Leg::Agent, 101..=199) => {}
            (Leg::Agent, 200..=299) => self.ob_agent_answered(id, tx, resp).await,
            (Leg::Agent, _) => {
                if let Some(d) = self.outbound.as_mut() {
                    d.invites.remove(&tx);
                }
                tracing::info!(call = %id, status = resp.status, "agent's phone refused the outbound call");
                self.ob_agent_failed(id, Some(resp.status)).await;
            }
            (Leg::Customer, 101..=199) => {
                let Some(d) = self.outbound.as_mut() else {
                    return;
                };
                let Some(c) = d.calls.get_mut(&id) else {
                    return;
                };
                if !c.ringing_recorded && matches!(resp.status, 180 | 183) {
                    c.ringing_recorded = true;
                    let attempt = c.attempt;
                    d.result(attempt, AttemptResult::Ringing, Some(resp.status));
                    self.event(id, "ringing", None, Some(resp.status.to_string()))
                        .await;
                }
            }
            (Leg::Customer, 200..=299) => self.ob_customer_answered(id, tx, resp).await,
            (Leg::Customer, status) => {
                if let Some(d) = self.outbound.as_mut() {
                    d.invites.remove(&tx);
                }
                let result = result_of(status);
                tracing::info!(call = %id, status, %result, "customer call not answered");
                self.ob_unanswered(id, result, Some(status), "customer")
                    .await;
            }
        }
    }

    /// A response to an INVITE whose call is over: ACK and BYE a 2xx, forget it when final.
    async fn ob_stray(&mut self, tx: ClientTxId, resp: &Response) {
        if resp.status < 200 {
            return;
        }
        let Some((req, peer)) = self.outbound.as_mut().and_then(|d| d.invites.remove(&tx)) else {
            return;
        };
        if resp.status >= 300 {
            return;
        }
        let req = with_cseq_of(req, resp);
        if let Ok(mut d) = Dialog::from_uac(&req, resp) {
            let seq = d.local_seq;
            self.send(Command::SendStateless {
                transport: peer.transport,
                remote: peer.remote,
                request: d.ack(seq),
            })
            .await;
            let bye = d.request(Method::Bye);
            self.send_to(peer, bye).await;
        }
    }

    /// The agent answered: ACK, start its media (silence), then call the customer.
    async fn ob_agent_answered(&mut self, id: CallId, tx: ClientTxId, resp: Response) {
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        d.invites.remove(&tx);
        let Some(c) = d
            .calls
            .get_mut(&id)
            .filter(|c| c.phase == Phase::AgentRinging)
        else {
            return;
        };
        let peer = c.agent_leg.peer;
        let Ok(mut dialog) = Dialog::from_uac(&c.agent_leg.invite, &resp) else {
            tracing::warn!(call = %id, "agent answered without a usable To tag/Contact");
            return self.ob_agent_failed(id, None).await;
        };
        let key = dialog.key.clone();
        d.by_dialog.insert(key.clone(), (id, Leg::Agent));
        self.send(Command::AddDialog(key.clone())).await;
        self.send(Command::SendStateless {
            transport: peer.transport,
            remote: peer.remote,
            request: dialog.ack(1),
        })
        .await;
        let answer =
            sdp::parse(&resp.body).and_then(|a| sdp::read_answer(&a, &[0, 8, AGENT_DTMF_PT]));
        let n = match answer {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "agent answered with unusable SDP");
                let bye = dialog.request(Method::Bye);
                self.send_to(peer, bye).await;
                self.send(Command::RemoveDialog(key.clone())).await;
                if let Some(d) = self.outbound.as_mut() {
                    d.by_dialog.remove(&key);
                }
                return self.ob_agent_failed(id, Some(488)).await;
            }
        };
        let notices = self.notices.clone();
        let cancel = self.cancel.child_token();
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let session_cfg = d.settings.session.clone();
        let Some(c) = d.calls.get_mut(&id) else {
            return;
        };
        c.agent_leg.dialog = Some(dialog);
        c.agent_leg.answer = Some(n.clone());
        if let Some(sockets) = c.agent_leg.sockets.take() {
            let session = start_session(id.0, leg_media(sockets, &n), session_cfg, notices, cancel);
            session.send(Media::Background(None));
            c.media = Some(session);
        }
        c.phase = Phase::Dialing;
        let agent = c.agent.clone();
        tracing::info!(call = %id, agent = %agent, "agent on the line; calling the customer");
        self.event(id, "agent_answered", Some(&agent), None).await;
        self.ob_dial_customer(id, n.law).await;
    }

    /// INVITE the customer through the trunk.
    async fn ob_dial_customer(&mut self, id: CallId, law: u8) {
        let Some(trunk) = self
            .outbound
            .as_ref()
            .and_then(|d| d.settings.trunk.clone())
        else {
            return self
                .ob_unanswered(id, AttemptResult::Failed, None, "ctid")
                .await;
        };
        let target = self
            .outbound
            .as_ref()
            .and_then(|d| d.settings.trunk_target.get());
        let Some((transport, remote)) = target else {
            tracing::error!(uri = %trunk.uri, "the trunk has no address (its host did not resolve)");
            return self
                .ob_unanswered(id, AttemptResult::Failed, None, "ctid")
                .await;
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for a customer leg");
                return self
                    .ob_unanswered(id, AttemptResult::Failed, Some(503), "ctid")
                    .await;
            }
        };
        let local_sip = self.settings.local_for(transport, remote);
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let caller_id = self.ob_caller_id();
        let Some(c) = self.outbound.as_ref().and_then(|d| d.calls.get(&id)) else {
            return;
        };
        let host = match crate::sip::uri::Uri::parse(&trunk.uri) {
            Ok(crate::sip::uri::Uri::Sip(u)) => match u.port {
                Some(p) => format!("{}:{p}", u.host),
                None => u.host,
            },
            _ => remote.to_string(),
        };
        let mut invite = Request::new(Method::Invite, format!("sip:{}@{host}", c.number));
        invite.headers.push(
            "From",
            format!("<sip:{caller_id}@{}>;tag={}", local_sip.ip(), new_tag()),
        );
        invite
            .headers
            .push("To", format!("<sip:{}@{host}>", c.number));
        invite.headers.push("Call-ID", c.customer_call_id.clone());
        invite.headers.push("CSeq", "1 INVITE");
        invite.headers.push(
            "Contact",
            format!("<{}>", legs::contact_uri(local_sip, transport)),
        );
        invite.headers.push("Content-Type", "application/sdp");
        let other = if law == 8 { 0 } else { 8 };
        invite.body = sdp::build_offer(
            local_rtp,
            &[law, other],
            Some(AGENT_DTMF_PT),
            20,
            unix_ms(),
            1,
        )
        .into_bytes();
        let (list, number) = (c.list.clone(), c.number.clone());
        let credentials = trunk.username.clone().zip(trunk.password.clone());
        let (reply, got) = oneshot::channel();
        self.send(Command::Send {
            transport,
            remote,
            request: invite.clone(),
            credentials,
            reply,
        })
        .await;
        let Ok(tx) = got.await else {
            return self
                .ob_unanswered(id, AttemptResult::Failed, None, "ctid")
                .await;
        };
        crate::metrics::outbound_dial(&list);
        tracing::info!(call = %id, %remote, "outbound: calling the customer");
        self.event(id, "dialing", None, Some(number)).await;
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let peer = Peer { transport, remote };
        d.by_tx.insert(tx, (id, Leg::Customer));
        d.invites.insert(tx, (invite.clone(), peer));
        let timeout = d.settings.cfg.dial_timeout();
        d.after(timeout, Msg::DialTimeout(id));
        if let Some(c) = d.calls.get_mut(&id) {
            c.dialed = Some(Instant::now());
            c.customer = Some(OLeg {
                tx,
                invite,
                peer,
                sockets: Some(sockets),
                dialog: None,
                answer: None,
            });
        }
    }

    /// The customer answered: ACK, bridge, record `answered`.
    async fn ob_customer_answered(&mut self, id: CallId, tx: ClientTxId, resp: Response) {
        let live = self
            .outbound
            .as_ref()
            .and_then(|d| d.calls.get(&id))
            .is_some_and(|c| c.phase == Phase::Dialing);
        if !live {
            return self.ob_stray(tx, &resp).await;
        }
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        d.invites.remove(&tx);
        let Some(c) = d.calls.get_mut(&id) else {
            return;
        };
        let Some(leg) = c.customer.as_mut() else {
            return;
        };
        let peer = leg.peer;
        let invite = with_cseq_of(leg.invite.clone(), &resp);
        let Ok(mut dialog) = Dialog::from_uac(&invite, &resp) else {
            tracing::warn!(call = %id, "customer answered without a usable To tag/Contact");
            return self
                .ob_unanswered(id, AttemptResult::Failed, Some(resp.status), "ctid")
                .await;
        };
        let key = dialog.key.clone();
        d.by_dialog.insert(key.clone(), (id, Leg::Customer));
        self.send(Command::AddDialog(key.clone())).await;
        let seq = dialog.local_seq;
        self.send(Command::SendStateless {
            transport: peer.transport,
            remote: peer.remote,
            request: dialog.ack(seq),
        })
        .await;
        let answer =
            sdp::parse(&resp.body).and_then(|a| sdp::read_answer(&a, &[0, 8, AGENT_DTMF_PT]));
        let n = match answer {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "customer answered with unusable SDP");
                let bye = dialog.request(Method::Bye);
                self.send_to(peer, bye).await;
                self.send(Command::RemoveDialog(key.clone())).await;
                if let Some(d) = self.outbound.as_mut() {
                    d.by_dialog.remove(&key);
                }
                return self
                    .ob_unanswered(id, AttemptResult::Failed, Some(488), "ctid")
                    .await;
            }
        };
        let Some(d) = self.outbound.as_mut() else {
            return;
        };
        let Some(c) = d.calls.get_mut(&id) else {
            return;
        };
        c.phase = Phase::Talking;
        c.answered = Some(Instant::now());
        let wait_ms = c.dialed.map_or(0, |t| t.elapsed().as_millis() as u64);
        let (attempt, agent, list) = (c.attempt, c.agent.clone(), c.list.clone());
        if let Some(leg) = c.customer.as_mut() {
            leg.dialog = Some(dialog);
            leg.answer = Some(n.clone());
            if let (Some(sockets), Some(media)) = (leg.sockets.take(), c.media.as_ref()) {
                media.send(Media::Bridge {
                    agent: Box::new(leg_media(sockets, &n)),
                    recorder: None,
                });
            }
        }
        d.result(attempt, AttemptResult::Answered, Some(resp.status));
        crate::metrics::outbound_attempt(&list, "answered");
        tracing::info!(call = %id, agent = %agent, %attempt, "customer answered; bridged to the agent");
        self.record(CallOp::Answered {
            id: id.0,
            answered_at_ms: unix_ms(),
            agent: agent.0.clone(),
            wait_ms,
            in_target: false,
        })
        .await;
        self.event(id, "answered", Some(&agent), None).await;
        self.board.entry(agent).or_default().calls_answered += 1;
    }

    /// A request inside an outbound leg's dialog (BYE, re-INVITE, INFO…).
    async fn ob_in_dialog(&mut self, tx: ServerTxId, req: Request, id: CallId, leg: Leg) {
        let ok = response_to_ok(&req);
        self.send(Command::Respond { tx, response: ok }).await;
        if req.method != Method::Bye {
            return;
        }
        let Some(c) = self.outbound.as_mut().and_then(|d| d.calls.get_mut(&id)) else {
            return;
        };
        // That leg's dialog is over: no BYE goes back to it.
        let gone = match leg {
            Leg::Agent => c.agent_leg.dialog.take(),
            Leg::Customer => c.customer.as_mut().and_then(|l| l.dialog.take()),
        };
        if let Some(dlg) = gone {
            if let Some(d) = self.outbound.as_mut() {
                d.by_dialog.remove(&dlg.key);
            }
            self.send(Command::RemoveDialog(dlg.key)).await;
        }
        let phase = self
            .outbound
            .as_ref()
            .and_then(|d| d.calls.get(&id))
            .map(|c| c.phase);
        let by = match leg {
            Leg::Agent => "agent",
            Leg::Customer => "customer",
        };
        match phase {
            Some(Phase::Talking) => self.ob_end_talk(id, None, by).await,
            Some(_) => {
                tracing::info!(call = %id, by, "hung up before the customer answered");
                self.ob_unanswered(id, AttemptResult::Failed, None, by)
                    .await
            }
            None => {}
        }
    }

    /// The agent's phone did not take the call: the customer was never dialed, so the attempt
    /// is given back (`skipped` by the agent) and the agent rests a while.
    async fn ob_agent_failed(&mut self, id: CallId, code: Option<u16>) {
        let Some(c) = self.ob_take(id).await else {
            return;
        };
        if let Some(d) = &self.outbound {
            d.result(c.attempt, AttemptResult::Skipped, None);
        }
        crate::metrics::outbound_attempt(&c.list, "skipped");
        self.event(id, "rejected", Some(&c.agent), code.map(|s| s.to_string()))
            .await;
        self.ob_end_record(id, "agent_unavailable", None, "agent", code)
            .await;
        self.ob_free(&c.agent);
        self.ob_cooldown(&c.agent, AGENT_FAILED_COOLDOWN);
    }

    /// The customer call ended without an answer (busy, rejected, no answer, failed, or the
    /// agent gave up): store the result, hang up the agent, wrap-up.
    async fn ob_unanswered(
        &mut self,
        id: CallId,
        result: AttemptResult,
        code: Option<u16>,
        by: &'static str,
    ) {
        let Some(mut c) = self.ob_take(id).await else {
            return;
        };
        if c.phase == Phase::AgentRinging {
            // The customer was never called.
            self.send(Command::Cancel { tx: c.agent_leg.tx }).await;
            if let Some(d) = &self.outbound {
                d.result(c.attempt, AttemptResult::Skipped, None);
            }
            crate::metrics::outbound_attempt(&c.list, "skipped");
            self.ob_end_record(id, "interrupted", None, by, code).await;
            self.ob_free(&c.agent);
            return;
        }
        if let Some(leg) = c.customer.as_ref().filter(|l| l.dialog.is_none()) {
            if by != "customer" {
                // Still ringing (timeout, agent gone, shutdown): CANCEL it.
                self.send(Command::Cancel { tx: leg.tx }).await;
            }
        }
        if let Some(mut dlg) = c.agent_leg.dialog.take() {
            let bye = dlg.request(Method::Bye);
            self.send_to(c.agent_leg.peer, bye).await;
        }
        if let Some(d) = &self.outbound {
            d.result(c.attempt, result, code);
        }
        crate::metrics::outbound_attempt(&c.list, result.as_str());
        self.event(
            id,
            result.as_str(),
            Some(&c.agent),
            code.map(|s| s.to_string()),
        )
        .await;
        let cause = (by == "agent").then(|| "abandoned by the agent".to_string());
        self.ob_end_record(id, result.as_str(), None, by, code)
            .await;
        if let Some(cause) = cause {
            self.event(id, "abandoned", Some(&c.agent), Some(cause))
                .await;
        }
        let wrapup = self.ob_wrapup(&c.agent);
        self.ob_release(&c.agent, wrapup);
    }

    /// A bridged call ended (`by` hung up, or ctid): BYE the other leg, record, wrap-up.
    async fn ob_end_talk(&mut self, id: CallId, code: Option<u16>, by: &'static str) {
        let Some(mut c) = self.ob_take(id).await else {
            return;
        };
        if let Some(mut dlg) = c.agent_leg.dialog.take() {
            let bye = dlg.request(Method::Bye);
            self.send_to(c.agent_leg.peer, bye).await;
        }
        if let Some(leg) = c.customer.as_mut() {
            if let Some(mut dlg) = leg.dialog.take() {
                let bye = dlg.request(Method::Bye);
                self.send_to(leg.peer, bye).await;
            }
        }
        if let Some(d) = &self.outbound {
            d.ask(StoreReq::Hangup {
                attempt: c.attempt,
                at_ms: unix_ms(),
            });
        }
        let talk = c.answered.map(|a| a.elapsed());
        tracing::info!(call = %id, by, "outbound call ended");
        self.event(id, "ended", Some(&c.agent), None).await;
        self.ob_end_record(id, "answered", talk, by, code).await;
        let wrapup = self.ob_wrapup(&c.agent);
        self.ob_release(&c.agent, wrapup);
    }

    fn ob_wrapup(&self, agent: &AgentId) -> Duration {
        self.outbound
            .as_ref()
            .map_or(Duration::ZERO, |d| d.settings.wrapup(agent))
    }

    async fn ob_end_record(
        &mut self,
        id: CallId,
        outcome: &'static str,
        talk: Option<Duration>,
        by: &'static str,
        code: Option<u16>,
    ) {
        self.record(CallOp::Ended {
            id: id.0,
            ended_at_ms: unix_ms(),
            outcome,
            queue: None,
            wait_ms: None,
            talk_ms: talk.map(|t| t.as_millis() as u64),
            short_abandon: None,
            hangup_by: Some(by),
            hangup_cause: None,
            sip_code: code,
        })
        .await;
    }

    /// Forget a call: its transaction and dialog routes (INVITEs stay known until their final
    /// response), its media.
    async fn ob_take(&mut self, id: CallId) -> Option<OCall> {
        let d = self.outbound.as_mut()?;
        let c = d.calls.remove(&id)?;
        d.by_tx.retain(|_, (cid, _)| *cid != id);
        let keys: Vec<DialogKey> = d
            .by_dialog
            .iter()
            .filter(|(_, (cid, _))| *cid == id)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &keys {
            d.by_dialog.remove(k);
        }
        for k in keys {
            self.send(Command::RemoveDialog(k)).await;
        }
        if let Some(agent) = self.board.get_mut(&c.agent) {
            if agent.call == Some(id.0) {
                agent.call = None;
            }
        }
        Some(c)
    }
}

/// The request as sent after a digest retry: the CSeq number the response carries.
fn with_cseq_of(mut req: Request, resp: &Response) -> Request {
    if let Some(c) = resp.headers.get("CSeq").and_then(|c| CSeq::parse(c).ok()) {
        req.headers.set("CSeq", format!("{} {}", c.seq, c.method));
    }
    req
}

fn response_to_ok(req: &Request) -> Response {
    crate::sip::build::response_to(req, 200, None)
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

    #[test]
    fn cseq_follows_the_digest_retry() {
        let mut req = Request::new(Method::Invite, "sip:+441@127.0.0.1");
        req.headers.push("CSeq", "1 INVITE");
        let mut resp = crate::sip::build::response_to(&req, 200, Some("t"));
        resp.headers.set("CSeq", "2 INVITE");
        let req = with_cseq_of(req, &resp);
        assert_eq!(req.headers.get("CSeq"), Some("2 INVITE"));
    }
}
