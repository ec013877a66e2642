//! The inbound call path: a B2BUA that answers the PBX's call, queues it in the ACD engine,
//! INVITEs the chosen seat, bridges both legs through the RTP relay, and records every step.
//!
//! One task, the [`CallManager`], owns every call's signalling state, the ACD engine and the
//! maps from SIP transactions and dialogs to calls — so an event is one hash lookup, never a scan,
//! and no two tasks race over a call. RTP runs in one relay task per bridged call
//! ([`crate::media`]); call records go to the store's writer thread. The manager never blocks:
//! SIP goes out as commands to the SIP driver, records as store ops.
//!
//! Must not know: sockets (beyond handing them to the relay), SQL, SIP parsing.

mod actions;
mod answer;
mod board;
mod caller;
pub mod control;
mod legs;
mod media;
mod offers;
mod outbound;
mod seat;

pub use media::MediaSettings;
pub use outbound::OutboundSettings;

use crate::acd::{AgentId, CallId, Engine, Input, Member, QueueId, QueueSettings, Strategy};
use crate::config::{self, Config};
use crate::media::sdp::{self, Negotiated};
use crate::media::session::{Command as MediaCommand, Notice, SessionHandle, Side};
use crate::media::{LegSockets, PortPool};
use crate::sip::advertise::Advertise;
use crate::sip::build::{new_tag, response_to};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxId, DialogKey, Event, Flow, ServerTxId, Transport};
use crate::sip::message::{Method, Request};
use crate::sip::registrar::{Binding, StoreOp};
use crate::stats::{LiveStats, Snapshot};
use crate::store::{CallOp, Op};
use crate::transport::driver::Command;
use legs::Peer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Which side of a call a dialog belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LegRef {
    Caller,
    Agent(AgentId),
}

/// The caller's leg (ctid is UAS).
struct CallerLeg {
    dialog: Dialog,
    peer: Peer,
    contact: String,
    negotiated: Negotiated,
    sockets: Option<LegSockets>,
    local_rtp: SocketAddr,
    sdp_version: u64,
}

/// A seat being rung, or the connected seat (ctid is UAC).
struct AgentLeg {
    agent: AgentId,
    tx: ClientTxId,
    invite: Request,
    peer: Peer,
    sockets: Option<LegSockets>,
    local_rtp: SocketAddr,
    dialog: Option<Dialog>,
    /// What the seat's answer agreed.
    answer: Option<Negotiated>,
    sdp_version: u64,
}

struct Call {
    queue: String,
    caller_number: Option<String>,
    caller_name: Option<String>,
    priority: i32,
    /// The caller's INVITE transaction (for CANCEL / missing ACK).
    server_tx: ServerTxId,
    entered: Instant,
    caller: CallerLeg,
    /// Seats ringing for this call (several with ring-all), by INVITE transaction.
    offers: offers::Offers<AgentLeg>,
    connected: Option<AgentLeg>,
    answered: Option<Instant>,
    /// The wait the ACD measured when the agent answered (the one recorded and reported).
    answer_wait: Option<Duration>,
    /// The call's media session (from answer to hang-up).
    media: Option<SessionHandle>,
    phase: media::Phase,
    /// ctid offered SDP in a 200 to a re-INVITE without SDP on this leg: its ACK carries the
    /// answer.
    offer_pending: Option<LegRef>,
    /// Why ctid ended the call, when it was not the caller or an agent (media_timeout, …).
    end_cause: Option<&'static str>,
    /// The caller's dialog is over (it sent BYE, or ctid did).
    caller_ended: bool,
    /// ctid's answer to the caller's INVITE: held until the engine let the call queue (or, early
    /// media, until a seat answers), sent, acknowledged (see [`answer`]).
    answer: answer::CallerAnswer,
}

/// Static settings of the call layer.
pub struct CallSettings {
    pub max_calls: usize,
    pub priority_header: String,
    pub short_abandon: Duration,
    /// Dialed number → queue name.
    pub numbers: HashMap<String, String>,
    pub sl_targets: HashMap<String, Duration>,
    /// Queues that answer callers with 183 (early media) until an agent answers.
    pub early_media: std::collections::HashSet<String>,
    /// ctid's SIP addresses (Contact of its legs), by address family, as advertised.
    pub local_sip: Vec<SocketAddr>,
    /// ctid's SIP-over-TLS listeners (Contact of legs over TLS), the advertised host applied
    /// but their own port kept.
    pub local_tls: Vec<SocketAddr>,
    /// `[sip] advertise`, for the Contact of the caller's leg (received on a bound address).
    pub advertise: Option<Advertise>,
    pub agents: Vec<AgentId>,
    pub agent_names: HashMap<AgentId, String>,
    pub media: MediaSettings,
}

impl CallSettings {
    /// ctid's address for a leg to `remote` over `transport` (its Contact and From host):
    /// a TLS listener for TLS, else the SIP address of `remote`'s address family.
    pub fn local_for(&self, transport: Transport, remote: SocketAddr) -> SocketAddr {
        let family = |a: &&SocketAddr| a.is_ipv4() == remote.is_ipv4();
        let tls = match transport {
            Transport::Tls => self.local_tls.iter().find(family).copied(),
            _ => None,
        };
        tls.or_else(|| self.local_sip.iter().find(family).copied())
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 5060)))
    }

    /// The engine and the settings for `cfg`; `advertise` is `[sip] advertise` resolved.
    pub fn from_config(
        cfg: &Config,
        local_sip: Vec<SocketAddr>,
        advertise: Option<Advertise>,
    ) -> Result<(CallSettings, Engine), String> {
        let mut numbers = HashMap::new();
        let mut sl_targets = HashMap::new();
        let mut early_media = std::collections::HashSet::new();
        let mut queues = Vec::new();
        for q in &cfg.queues {
            for n in &q.numbers {
                numbers.insert(n.clone(), q.name.clone());
            }
            sl_targets.insert(q.name.clone(), Duration::from_secs(q.sl_target_secs));
            if q.early_media {
                early_media.insert(q.name.clone());
            }
            let mut s = QueueSettings::new(q.name.clone());
            s.strategy = match q.strategy.as_str() {
                "round-robin" => Strategy::RoundRobin,
                "ring-all" => Strategy::RingAll,
                "fewest-calls" => Strategy::FewestCalls,
                "random" => Strategy::Random,
                "skills" => Strategy::SkillTiers,
                _ => Strategy::LongestIdle,
            };
            s.members = q
                .members
                .iter()
                .map(|m| Member {
                    agent: AgentId(m.agent.clone()),
                    tier: m.tier,
                })
                .collect();
            s.weight = q.weight;
            s.sl_target = Duration::from_secs(q.sl_target_secs);
            s.ring_timeout = Duration::from_secs(q.ring_timeout_secs);
            s.wrapup = Duration::from_secs(q.wrapup_secs);
            s.max_waiting = q.max_waiting;
            s.max_wait = q.max_wait_secs.map(Duration::from_secs);
            s.join_empty = q.join_empty;
            s.leave_empty = q.leave_empty;
            s.overflow = q.overflow.as_deref().and_then(config::parse_overflow);
            s.widen_after = Duration::from_secs(q.widen_after_secs);
            s.max_missed = q.max_missed;
            queues.push(s);
        }
        let agents: Vec<AgentId> = cfg.agents.iter().map(|a| AgentId(a.id.clone())).collect();
        let seed = unix_ms();
        let engine = Engine::new(queues, agents.clone(), seed).map_err(|e| e.to_string())?;
        Ok((
            CallSettings {
                max_calls: cfg.calls.max_calls,
                priority_header: cfg.calls.priority_header.clone(),
                short_abandon: Duration::from_secs(cfg.calls.short_abandon_secs),
                numbers,
                sl_targets,
                early_media,
                local_sip: local_sip
                    .into_iter()
                    .map(|a| Advertise::apply(advertise.as_ref(), a))
                    .collect(),
                local_tls: Vec::new(),
                advertise,
                agent_names: cfg
                    .agents
                    .iter()
                    .map(|a| (AgentId(a.id.clone()), a.name.clone()))
                    .collect(),
                agents,
                media: MediaSettings::from_config(cfg)?,
            },
            engine,
        ))
    }
}

/// Ids the call layer gives its requests: top bit set, so they never meet the endpoint's own.
const TU_ID_BASE: u64 = 1 << 63;

/// The telephone-event payload type ctid offers seats.
const AGENT_DTMF_PT: u8 = 101;

pub struct CallManager {
    settings: CallSettings,
    engine: Engine,
    pool: PortPool,
    commands: mpsc::Sender<Command>,
    store: mpsc::Sender<Op>,
    /// Requests sent for the trunk qualifier (not calls) go back to it.
    replies: mpsc::Sender<(ClientTxId, u16)>,
    calls: HashMap<CallId, Call>,
    by_server_tx: HashMap<ServerTxId, CallId>,
    by_dialog: HashMap<DialogKey, (CallId, LegRef)>,
    by_client_tx: HashMap<ClientTxId, (CallId, AgentId)>,
    /// INVITEs sent to seats, until their final response: a late 2xx to a cancelled offer is
    /// ACKed and hung up from these.
    sent_invites: HashMap<ClientTxId, (Request, Peer)>,
    /// The ACK owed to a seat whose 200 is being acted on: sent once the call's media is
    /// bridged (so RTP that follows the ACK at once is relayed, not dropped), or before the BYE
    /// of an offer the engine no longer wants, and in any case before `agent_response` returns.
    pending_ack: Option<(CallId, AgentId, Peer, Request)>,
    /// BYEs to callers whose ACK has not arrived yet (RFC 3261 §15), by their INVITE.
    owed_byes: HashMap<ServerTxId, caller::OwedBye>,
    contacts: HashMap<String, Vec<Binding>>,
    next_call: u64,
    next_tu: u64,
    cancel: CancellationToken,
    /// Each agent's state kind and when its time in it was last accounted (for metrics).
    agent_states: HashMap<AgentId, (&'static str, Instant)>,
    /// Today's and the current/last interval's figures per queue.
    stats: LiveStats,
    /// Where the latest figures are published (API, `ctid status`).
    stats_out: watch::Sender<Snapshot>,
    /// Per-agent board data beyond the engine's state.
    board: HashMap<AgentId, board::BoardEntry>,
    /// The API's live event stream, if any.
    events_out: Option<mpsc::Sender<control::CallEvent>>,
    /// Media sessions report here (DTMF, prompts played, media timeouts, recordings).
    notices: mpsc::Sender<Notice>,
    notices_rx: Option<mpsc::Receiver<Notice>>,
    /// The progressive dialer, when `[outbound]` is enabled.
    outbound: Option<outbound::Dialer>,
}

impl CallManager {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        settings: CallSettings,
        engine: Engine,
        pool: PortPool,
        commands: mpsc::Sender<Command>,
        store: mpsc::Sender<Op>,
        replies: mpsc::Sender<(ClientTxId, u16)>,
        first_call_id: u64,
        bindings: Vec<Binding>,
        cancel: CancellationToken,
        stats: LiveStats,
        stats_out: watch::Sender<Snapshot>,
    ) -> CallManager {
        let (notices, notices_rx) = mpsc::channel(8192);
        let mut m = CallManager {
            notices,
            notices_rx: Some(notices_rx),
            settings,
            engine,
            pool,
            commands,
            store,
            replies,
            calls: HashMap::new(),
            by_server_tx: HashMap::new(),
            by_dialog: HashMap::new(),
            by_client_tx: HashMap::new(),
            sent_invites: HashMap::new(),
            pending_ack: None,
            owed_byes: HashMap::new(),
            contacts: HashMap::new(),
            next_call: first_call_id.max(1),
            next_tu: 1,
            cancel,
            agent_states: HashMap::new(),
            stats,
            stats_out,
            board: HashMap::new(),
            events_out: None,
            outbound: None,
        };
        let now_ms = unix_ms();
        let now = Instant::now();
        for agent in m.agent_ids() {
            m.agent_states.insert(agent, ("logged_out", now));
        }
        for b in bindings.into_iter().filter(|b| b.expires_at_ms > now_ms) {
            m.binding_changed(now, StoreOp::Upsert(b));
        }
        m
    }

    /// Serve SIP events and ACD timers until `shutdown` (then hang up every call) or until the
    /// SIP driver's event queue closes.
    /// Send live events to the API's stream.
    pub fn with_event_stream(mut self, out: mpsc::Sender<control::CallEvent>) -> Self {
        self.events_out = Some(out);
        self
    }

    pub async fn run(
        mut self,
        mut events: mpsc::Receiver<Event>,
        mut controls: mpsc::Receiver<control::Control>,
        shutdown: CancellationToken,
    ) {
        let mut notices = self.notices_rx.take().unwrap_or_else(|| mpsc::channel(1).1);
        let mut dialer = self
            .outbound
            .as_mut()
            .and_then(|d| d.rx.take())
            .unwrap_or_else(|| mpsc::channel(1).1);
        let mut gauges = tokio::time::interval(Duration::from_secs(1));
        gauges.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self
                .engine
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = shutdown.cancelled() => {
                    self.outbound_shutdown().await;
                    self.hang_up_all().await;
                    break;
                }
                ev = events.recv() => match ev {
                    Some(ev) => self.handle_event(ev).await,
                    None => break,
                },
                                _ = tokio::time::sleep_until(deadline) => {
                    self.engine.handle_timeout(Instant::now());
                }
                                _ = gauges.tick() => self.export_gauges(),
                Some(cmd) = controls.recv() => self.control(cmd).await,
                Some(n) = notices.recv() => self.media_notice(n).await,
                Some(m) = dialer.recv() => self.outbound_msg(m).await,
            }
            self.apply_actions().await;
        }
        self.cancel.cancel();
        // Dropping `self` closes the command queue: the SIP driver may finish once the BYEs
        // sent above are answered.
    }

    /// Queue and agent gauges, and agent time per state, for `/metrics` (once a second: cost
    /// O(queues + agents), independent of the number of calls).
    fn export_gauges(&mut self) {
        let now = Instant::now();
        let queues: Vec<String> = self.settings.sl_targets.keys().cloned().collect();
        for q in &queues {
            let id = QueueId(q.clone());
            let longest = self
                .engine
                .longest_wait(&id, now)
                .map_or(0.0, |d| d.as_secs_f64());
            crate::metrics::set_waiting(q, self.engine.waiting(&id), longest);
            let counts = self.engine.agents_by_state(&id);
            crate::metrics::set_agents(Some(q), &counts);
        }
        let mut totals: HashMap<&'static str, usize> = HashMap::new();
        for (kind, since) in self.agent_states.values_mut() {
            crate::metrics::agent_state_seconds(
                kind,
                now.saturating_duration_since(*since).as_secs_f64(),
            );
            *since = now;
            *totals.entry(*kind).or_default() += 1;
        }
        let totals: Vec<(&str, usize)> = totals.into_iter().collect();
        crate::metrics::set_agents(None, &totals);
        let mut snapshot = self.stats.snapshot(unix_ms());
        for q in &mut snapshot.queues {
            let id = QueueId(q.queue.clone());
            q.now.waiting = self.engine.waiting(&id);
            q.now.longest_wait_secs = self
                .engine
                .longest_wait(&id, now)
                .map_or(0.0, |d| d.as_secs_f64());
            q.now.agents = self
                .engine
                .agents_by_state(&id)
                .into_iter()
                .map(|(k, n)| (k.to_string(), n))
                .collect();
        }
        self.stats_out.send_replace(snapshot);
    }

    fn agent_ids(&self) -> Vec<AgentId> {
        self.settings.agents.clone()
    }

    /// Account the time an agent spent in its previous state.
    fn agent_state_changed(&mut self, agent: AgentId, kind: &'static str) {
        let now = Instant::now();
        if let Some((old, since)) = self.agent_states.insert(agent, (kind, now)) {
            crate::metrics::agent_state_seconds(
                old,
                now.saturating_duration_since(since).as_secs_f64(),
            );
        }
    }

    /// Graceful stop: bridged calls are hung up on both legs (outcome stays `answered`),
    /// waiting callers get a BYE and are recorded `interrupted`.
    async fn hang_up_all(&mut self) {
        let ids: Vec<CallId> = self.calls.keys().copied().collect();
        tracing::info!(calls = ids.len(), "hanging up live calls for shutdown");
        for id in ids {
            let connected = self.calls.get(&id).is_some_and(|c| c.connected.is_some());
            if connected {
                self.finish(id, "ctid", Some("ctid shutting down".into()), Some(503))
                    .await;
            } else {
                self.interrupt(id).await;
            }
        }
    }

    async fn send(&self, cmd: Command) {
        if self.commands.send(cmd).await.is_err() {
            tracing::debug!("SIP driver gone; command dropped");
        }
    }

    async fn record(&self, op: CallOp) {
        if self.store.send(Op::Call(op)).await.is_err() {
            tracing::error!("store writer gone; call record lost");
        }
    }

    async fn event(
        &self,
        id: CallId,
        kind: &'static str,
        agent: Option<&AgentId>,
        detail: Option<String>,
    ) {
        self.record(CallOp::Event {
            id: id.0,
            at_ms: unix_ms(),
            kind,
            agent: agent.map(|a| a.0.clone()),
            detail,
        })
        .await;
    }

    /// Tell the engine an offer ended without an answer.
    fn offer_failed(&mut self, now: Instant, call: CallId, agent: AgentId, counts_as_miss: bool) {
        self.engine.handle(
            now,
            Input::OfferFailed {
                call,
                agent,
                counts_as_miss,
            },
        );
    }

    /// Send a request (BYE…) on a leg, as a client transaction of the call layer.
    async fn send_to(&mut self, peer: Peer, request: Request) {
        let id = self.tu_id();
        self.send(Command::SendAs {
            id,
            transport: peer.transport,
            remote: peer.remote,
            request,
        })
        .await;
    }

    fn tu_id(&mut self) -> ClientTxId {
        self.next_tu += 1;
        ClientTxId(TU_ID_BASE | self.next_tu)
    }

    async fn handle_event(&mut self, ev: Event) {
        let Some(ev) = self.outbound_event(ev).await else {
            return;
        };
        match ev {
            Event::Request { tx, request, flow } => {
                let to_tag = tag(&request, "To");
                if to_tag.is_none() && request.method == Method::Invite {
                    self.new_call(tx, request, flow).await;
                } else {
                    self.in_dialog(tx, request).await;
                }
            }
            Event::Ack { request, .. } => self.caller_ack(request).await,
            Event::Cancelled { tx } => self.caller_cancelled(tx).await,
            Event::AckTimeout { tx } => self.caller_ack_timeout(tx).await,
            Event::Response { tx, response } => self.agent_response(tx, response).await,
            Event::RequestFailed { tx, reason } => self.offer_request_failed(tx, reason).await,
            Event::Store(op) => self.binding_changed(Instant::now(), op),
        }
    }

    /// Follow registrations: an agent is logged in while its phone has a binding.
    fn binding_changed(&mut self, now: Instant, op: StoreOp) {
        let (agent, before) = match &op {
            StoreOp::Upsert(b) => (
                b.agent_id.clone(),
                self.contacts.get(&b.agent_id).map_or(0, Vec::len),
            ),
            StoreOp::Delete { agent_id, .. } => (
                agent_id.clone(),
                self.contacts.get(agent_id).map_or(0, Vec::len),
            ),
        };
        let list = self.contacts.entry(agent.clone()).or_default();
        match op {
            StoreOp::Upsert(b) => {
                list.retain(|x| x.uri != b.uri);
                list.push(b);
            }
            StoreOp::Delete { uri, .. } => list.retain(|x| x.uri != uri),
        }
        let after = list.len();
        let manual_logout = self
            .board
            .get(&AgentId(agent.clone()))
            .is_some_and(|b| b.manual_logout);
        if before == 0 && after > 0 && !manual_logout {
            tracing::info!(agent, "agent logged in (phone registered)");
            self.engine.handle(
                now,
                Input::AgentLogin {
                    agent: AgentId(agent),
                    queues: None,
                },
            );
        } else if before > 0 && after == 0 {
            tracing::info!(agent, "agent logged out (no registered phone)");
            self.engine.handle(
                now,
                Input::AgentLogout {
                    agent: AgentId(agent),
                },
            );
        }
    }

    /// Refuse a new call and record it (outcome `rejected`, with the SIP code and why).
    #[allow(clippy::too_many_arguments)]
    async fn refuse_call(
        &mut self,
        tx: ServerTxId,
        invite: &Request,
        dialed: &str,
        queue: Option<&str>,
        status: u16,
        reason: &str,
    ) {
        tracing::info!(dialed, status, reason, "call refused");
        let now = unix_ms();
        if let Some(q) = queue {
            crate::metrics::call_entered(q);
            crate::metrics::call_left(q, "rejected", 0.0, false);
            // The live figures count it now, as the report and a restart's rebuild do.
            self.stats.record_left(q, "rejected", 0, false, false, now);
        }
        self.reject(tx, invite, status, reason).await;
        let id = CallId(self.next_call);
        self.next_call += 1;
        let (number, name) = legs::caller_identity(invite);
        self.record(CallOp::Started {
            id: id.0,
            sip_call_id: invite.headers.get("Call-ID").unwrap_or("").to_string(),
            direction: "inbound",
            caller_number: number,
            caller_name: name,
            dialed_number: Some(dialed.to_string()),
            queue: queue.map(str::to_string),
            entered_at_ms: now,
        })
        .await;
        self.event(id, "rejected", None, Some(format!("{status} {reason}")))
            .await;
        self.record(CallOp::Ended {
            id: id.0,
            ended_at_ms: now,
            outcome: "rejected",
            queue: queue.map(str::to_string),
            wait_ms: Some(0),
            talk_ms: None,
            short_abandon: None,
            hangup_by: Some("ctid"),
            hangup_cause: Some(reason.to_string()),
            sip_code: Some(status),
        })
        .await;
    }

    async fn reject(&self, tx: ServerTxId, request: &Request, status: u16, reason: &str) {
        let mut r = response_to(request, status, None);
        if !reason.is_empty() {
            r.reason = reason.to_string();
        }
        self.send(Command::Respond { tx, response: r }).await;
    }

    async fn new_call(&mut self, tx: ServerTxId, invite: Request, flow: Flow) {
        let dialed = crate::sip::uri::Uri::parse(&invite.uri)
            .ok()
            .and_then(|u| u.user_or_number())
            .unwrap_or_default();
        let Some(queue) = self.settings.numbers.get(&dialed).cloned() else {
            return self
                .refuse_call(
                    tx,
                    &invite,
                    &dialed,
                    None,
                    404,
                    "Not Found: no queue for this number",
                )
                .await;
        };
        if self.calls.len() >= self.settings.max_calls {
            tracing::warn!(calls = self.calls.len(), "call limit reached");
            return self
                .refuse_call(
                    tx,
                    &invite,
                    &dialed,
                    Some(&queue),
                    503,
                    "Service Unavailable: call limit",
                )
                .await;
        }
        if invite.body.is_empty() {
            return self
                .refuse_call(
                    tx,
                    &invite,
                    &dialed,
                    Some(&queue),
                    488,
                    "Not Acceptable Here: SDP offer required",
                )
                .await;
        }
        let offer = match sdp::parse(&invite.body) {
            Ok(o) => o,
            Err(e) => {
                let why = format!("Not Acceptable Here: {e}");
                return self
                    .refuse_call(tx, &invite, &dialed, Some(&queue), 488, &why)
                    .await;
            }
        };
        let negotiated = match sdp::negotiate_offer(&offer, &[0, 8], false) {
            Ok(n) => n,
            Err(e) => {
                let why = format!("Not Acceptable Here: {e}");
                return self
                    .refuse_call(tx, &invite, &dialed, Some(&queue), 488, &why)
                    .await;
            }
        };
        let sockets = match self.pool.allocate().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "no RTP port for a new call");
                return self
                    .refuse_call(
                        tx,
                        &invite,
                        &dialed,
                        Some(&queue),
                        503,
                        "Service Unavailable: no media port",
                    )
                    .await;
            }
        };
        let local_rtp = SocketAddr::new(self.pool.ip(), sockets.local_rtp.port());
        let local_tag = new_tag();
        let local = Advertise::apply(self.settings.advertise.as_ref(), flow.local);
        let contact = legs::contact_uri(local, flow.transport);
        let Ok(dialog) = Dialog::from_uas(&invite, &local_tag, &contact) else {
            return self
                .reject(tx, &invite, 400, "Bad Request: no usable Contact")
                .await;
        };
        let id = CallId(self.next_call);
        self.next_call += 1;
        let session = unix_ms();
        let answer = legs::answer_caller(
            &invite,
            &local_tag,
            &contact,
            &offer,
            &negotiated,
            local_rtp,
            session,
        );
        self.send(Command::AddDialog(dialog.key.clone())).await;
        let early = self.settings.early_media.contains(&queue);
        self.by_server_tx.insert(tx, id);
        self.by_dialog
            .insert(dialog.key.clone(), (id, LegRef::Caller));
        let (number, name) = legs::caller_identity(&invite);
        let (number_for_call, name_for_call) = (number.clone(), name.clone());
        let sip_call_id = invite.headers.get("Call-ID").unwrap_or("").to_string();
        let now = Instant::now();
        let priority = invite
            .headers
            .get(&self.settings.priority_header)
            .and_then(|p| p.trim().parse::<i32>().ok())
            .unwrap_or(0);
        tracing::info!(call = %id, queue, caller = ?number, priority, sip_call_id = %sip_call_id, "call entered the queue");
        self.record(CallOp::Started {
            id: id.0,
            sip_call_id,
            direction: "inbound",
            caller_number: number,
            caller_name: name,
            dialed_number: Some(dialed),
            queue: Some(queue.clone()),
            entered_at_ms: unix_ms(),
        })
        .await;
        self.event(id, "entered", None, Some(queue.clone())).await;
        self.calls.insert(
            id,
            Call {
                queue: queue.clone(),
                caller_number: number_for_call,
                caller_name: name_for_call,
                priority,
                server_tx: tx,
                entered: now,
                caller: CallerLeg {
                    dialog,
                    peer: flow.into(),
                    contact,
                    negotiated,
                    sockets: Some(sockets),
                    local_rtp,
                    sdp_version: 1,
                },
                offers: offers::Offers::default(),
                connected: None,
                answered: None,
                answer_wait: None,
                media: None,
                phase: media::Phase::Live,
                offer_pending: None,
                end_cause: None,
                caller_ended: false,
                answer: answer::CallerAnswer::held(answer),
            },
        );
        crate::metrics::call_entered(&queue);
        self.publish(control::CallEvent::CallEntered {
            call: id.0,
            queue: queue.clone(),
            caller_number: self.calls.get(&id).and_then(|c| c.caller_number.clone()),
        });
        self.engine.handle(
            now,
            Input::CallArrived {
                call: id,
                queue: QueueId(queue),
                priority,
            },
        );
        // A call the engine refuses at once (join_empty = false, a full queue, overflow
        // "hangup:…") is ended here with a final 4xx/5xx, before any 200, so a PBX can fail
        // over; one that queues is answered (or, early media, gets 183) only now.
        self.apply_actions().await;
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if let Some(response) = call.answer.queued(early) {
            self.send(Command::Respond { tx, response }).await;
            self.start_media(id);
        }
    }

    async fn in_dialog(&mut self, tx: ServerTxId, req: Request) {
        let key = caller::dialog_key(&req);
        let Some((id, leg)) = self.by_dialog.get(&key).cloned() else {
            return self.reject(tx, &req, 481, "").await;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return self.reject(tx, &req, 481, "").await;
        };
        let dialog = match &leg {
            LegRef::Caller => Some(&mut call.caller.dialog),
            LegRef::Agent(a) => call
                .connected
                .as_mut()
                .filter(|c| &c.agent == a)
                .or_else(|| call.offers.of_agent_mut(a))
                .and_then(|l| l.dialog.as_mut()),
        };
        let Some(dialog) = dialog else {
            return self.reject(tx, &req, 481, "").await;
        };
        if let Err(code) = dialog.handle_request(&req) {
            return self.reject(tx, &req, code, "").await;
        }
        match req.method {
            Method::Bye => {
                self.send(Command::Respond {
                    tx,
                    response: response_to(&req, 200, None),
                })
                .await;
                let by = match leg {
                    LegRef::Caller => "caller",
                    LegRef::Agent(_) => "agent",
                };
                self.leg_hung_up(id, leg, by).await;
            }
            Method::Invite | Method::Update if !req.body.is_empty() => {
                self.reoffer(tx, id, leg, req).await
            }
            Method::Invite => self.offer_in_200(tx, id, leg, req).await,
            Method::Info => {
                let key = crate::media::dtmf::parse_info(
                    req.headers.get("Content-Type").unwrap_or(""),
                    &req.body,
                );
                let status = if key.is_some() || req.body.is_empty() {
                    200
                } else {
                    415
                };
                self.send(Command::Respond {
                    tx,
                    response: response_to(&req, status, None),
                })
                .await;
                if let (Some(k), LegRef::Caller) = (key, &leg) {
                    tracing::debug!(call = %id, key = %k, "DTMF by SIP INFO");
                    self.key_pressed(id, k).await;
                }
            }
            _ => {
                self.send(Command::Respond {
                    tx,
                    response: response_to(&req, 200, None),
                })
                .await;
            }
        }
    }

    /// A re-INVITE without SDP (RFC 3261 §14.1, RFC 3264 §5): ctid offers its SDP for the leg in
    /// the 200 (same port, the codec already in use) and takes the answer from the ACK.
    async fn offer_in_200(&mut self, tx: ServerTxId, id: CallId, leg: LegRef, req: Request) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let (local_rtp, version, law, dtmf) = match &leg {
            LegRef::Caller => {
                call.caller.sdp_version += 1;
                let n = &call.caller.negotiated;
                (
                    call.caller.local_rtp,
                    call.caller.sdp_version,
                    n.law,
                    n.dtmf,
                )
            }
            LegRef::Agent(a) => {
                let Some(c) = call.connected.as_mut().filter(|c| &c.agent == a) else {
                    return self.reject(tx, &req, 491, "").await;
                };
                c.sdp_version += 1;
                let law = c.answer.as_ref().map_or(0, |n| n.law);
                let dtmf = c.answer.as_ref().and_then(|n| n.dtmf);
                (c.local_rtp, c.sdp_version, law, dtmf)
            }
        };
        let contact = call.caller.contact.clone();
        call.offer_pending = Some(leg);
        let mut r = response_to(&req, 200, None);
        r.headers.push("Contact", format!("<{contact}>"));
        r.headers.push("Content-Type", "application/sdp");
        r.body = sdp::build_offer(local_rtp, &[law], dtmf, 20, unix_ms(), version).into_bytes();
        self.send(Command::Respond { tx, response: r }).await;
    }

    /// An ACK to a 2xx: when it answers the offer ctid made in that 2xx, the leg's media follows.
    async fn ack_with_answer(&mut self, req: Request) {
        if req.body.is_empty() {
            return;
        }
        let key = caller::dialog_key(&req);
        let Some((id, leg)) = self.by_dialog.get(&key).cloned() else {
            return;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        if call.offer_pending.as_ref() != Some(&leg) {
            return;
        }
        call.offer_pending = None;
        // What ctid offered in its 200 (see `offer_in_200`): the leg's law and its DTMF type.
        let (law, dtmf) = match &leg {
            LegRef::Caller => (call.caller.negotiated.law, call.caller.negotiated.dtmf),
            LegRef::Agent(_) => call
                .connected
                .as_ref()
                .and_then(|c| c.answer.as_ref())
                .map_or((0, None), |n| (n.law, n.dtmf)),
        };
        let offered: Vec<u8> = std::iter::once(law).chain(dtmf).collect();
        let n = match sdp::parse(&req.body).and_then(|a| sdp::read_answer(&a, &offered)) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(call = %id, error = %e, "unusable SDP answer in an ACK; media unchanged");
                return;
            }
        };
        let side = match leg {
            LegRef::Caller => {
                call.caller.negotiated.remote = n.remote;
                Side::A
            }
            LegRef::Agent(_) => Side::B,
        };
        let held = n.direction != sdp::Direction::SendRecv || n.remote.is_none();
        if let Some(m) = &call.media {
            m.send(MediaCommand::Remote {
                side,
                addr: n.remote,
            });
            m.send(MediaCommand::Hold { side, held });
        }
        let agent = match leg {
            LegRef::Agent(a) => Some(a),
            LegRef::Caller => None,
        };
        let kind = if held { "hold" } else { "resumed" };
        self.event(id, kind, agent.as_ref(), Some("answer in ACK".into()))
            .await;
    }

    /// A re-INVITE/UPDATE with SDP on a leg: hold, resume, or a new address. Answered with
    /// ctid's SDP for that leg (same port); the relay follows a new address.
    async fn reoffer(&mut self, tx: ServerTxId, id: CallId, leg: LegRef, req: Request) {
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let offer = match sdp::parse(&req.body) {
            Ok(o) => o,
            Err(e) => {
                return self
                    .reject(tx, &req, 488, &format!("Not Acceptable Here: {e}"))
                    .await
            }
        };
        let n = match sdp::negotiate_offer(&offer, &[call.caller.negotiated.codec], true) {
            Ok(n) => n,
            Err(e) => {
                return self
                    .reject(tx, &req, 488, &format!("Not Acceptable Here: {e}"))
                    .await
            }
        };
        let (local_rtp, contact, version, side) = match &leg {
            LegRef::Caller => {
                call.caller.sdp_version += 1;
                // Before the bridge, the relay starts from this address.
                call.caller.negotiated.remote = n.remote;
                (
                    call.caller.local_rtp,
                    call.caller.contact.clone(),
                    call.caller.sdp_version,
                    Side::A,
                )
            }
            LegRef::Agent(_) => {
                let Some(c) = call.connected.as_mut() else {
                    return self.reject(tx, &req, 491, "").await;
                };
                c.sdp_version += 1;
                let contact = call.caller.contact.clone();
                (c.local_rtp, contact, c.sdp_version, Side::B)
            }
        };
        if let Some(m) = &call.media {
            m.send(MediaCommand::Remote {
                side,
                addr: n.remote,
            });
            m.send(MediaCommand::Hold {
                side,
                held: n.direction != sdp::Direction::SendRecv || n.remote.is_none(),
            });
        }
        let kind = if n.direction == sdp::Direction::SendRecv {
            "resumed"
        } else {
            "hold"
        };
        let session = unix_ms();
        let resp = legs::answer_reinvite(&req, &contact, &offer, &n, local_rtp, session, version);
        self.send(Command::Respond { tx, response: resp }).await;
        let agent = match leg {
            LegRef::Agent(a) => Some(a),
            LegRef::Caller => None,
        };
        self.event(id, kind, agent.as_ref(), None).await;
    }

    /// One leg sent BYE (already answered).
    async fn leg_hung_up(&mut self, id: CallId, leg: LegRef, by: &'static str) {
        let now = Instant::now();
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase != media::Phase::Live {
            // Hung up during the survey or the callback confirmation.
            self.bye_sent_by_caller(id);
            self.drop_call(id);
            return;
        }
        if call.connected.is_some() {
            // Talking: end the other leg too.
            if by == "caller" {
                self.bye_sent_by_caller(id);
            }
            self.finish(id, by, None, None).await;
            self.engine.handle(now, Input::CallEnded { call: id });
            return;
        }
        match leg {
            LegRef::Caller => {
                // Caller gave up while waiting: the ACD cancels ringing seats and reports Left.
                self.bye_sent_by_caller(id);
                self.engine.handle(now, Input::CallAbandoned { call: id });
            }
            LegRef::Agent(agent) => {
                // A seat that answered and hung up before the bridge: treat as a failed offer.
                if let Some(call) = self.calls.get_mut(&id) {
                    if let Some((_, l)) = call.offers.remove_agent(&agent) {
                        if let Some(d) = l.dialog {
                            self.by_dialog.remove(&d.key);
                        }
                    }
                }
                self.offer_failed(now, id, agent, false);
            }
        }
    }

    /// The caller's dialog is over (it sent BYE); forget it so no BYE goes back.
    fn bye_sent_by_caller(&mut self, id: CallId) {
        if let Some(call) = self.calls.get_mut(&id) {
            call.caller_ended = true;
            self.by_dialog.remove(&call.caller.dialog.key);
            let key = call.caller.dialog.key.clone();
            let _ = self.commands.try_send(Command::RemoveDialog(key));
        }
    }
}

fn tag(req: &Request, header: &str) -> Option<String> {
    req.headers
        .get(header)
        .and_then(|v| crate::sip::header::NameAddr::parse(v).ok())
        .and_then(|n| n.tag().map(str::to_string))
}
