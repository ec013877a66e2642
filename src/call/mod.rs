//! The call layer: a B2BUA that answers the PBX's call, queues it in the ACD engine, INVITEs
//! the chosen seat, bridges both legs through the media session, and records every step; the
//! progressive dialer; the live figures; the agent board and the event feed.
//!
//! One task, the [`CallManager`], is the driver: it owns the channels (SIP events and commands,
//! media notices, API controls, store ops, the event stream), reads the clock once per input
//! ([`crate::clock::Now`], kept in `self.now` while the input is handled) and feeds the parts,
//! each owning one piece of state:
//!
//! | part | owns | shape |
//! |---|---|---|
//! | `acd::Engine` | queues, agents' states, routing, ring/wrap-up/max-wait timers | pure machine (`handle`/`poll_action`/`poll_timeout`) |
//! | [`board`] | the board per agent, the registered phones it shows, agent sessions, the event feed | pure machine (`handle_*`/`poll_*`) |
//! | [`figures`] | today's and the intervals' figures, agents' time per state | pure machine (`handle_*`/`poll_snapshot`) |
//! | `outbound::pacing`, `outbound::timers` | which agents the dialer holds, cool-downs, store requests; the dialer's deadlines | pure machines (`handle_*`/`poll_request`; `after`/`poll_timeout`/`poll_expired`) |
//! | [`answer`], [`offers`] | the caller's INVITE answer; offers by transaction | pure machines |
//! | the call map (`arrival`, `dialog`, `seat`, `caller`, `actions`, `media`) | every inbound call's legs and dialogs | methods of the driver, sending SIP and media commands as they go |
//! | `outbound` (`dial`, `ending`, `preview`) | every outbound call's legs | methods of the driver |
//!
//! The maps from SIP transactions and dialogs to calls make an event one hash lookup, never a
//! scan, and no two tasks race over a call. The manager never blocks on the network: SIP goes
//! out as commands to the SIP driver, records as store ops.
//!
//! Must not know: sockets (beyond handing them to the media session), SQL, SIP parsing, the
//! clock (read only in [`CallManager::run`]).

mod actions;
mod answer;
mod arrival;
mod board;
mod caller;
pub mod control;
mod controls;
mod dialog;
mod figures;
mod legs;
mod media;
mod offers;
mod outbound;
mod seat;
mod settings;

pub use media::MediaSettings;
pub use outbound::OutboundSettings;
pub use settings::CallSettings;

use crate::acd::{AgentId, CallId, Engine, Input, QueueId};
use crate::clock::Now;
use crate::media::sdp::{self, Negotiated};
use crate::media::session::{Command as MediaCommand, Notice, SessionHandle, Side};
use crate::media::{LegSockets, PortPool};
use crate::sip::advertise::Advertise;
use crate::sip::build::{new_tag, response_to};
use crate::sip::dialog::Dialog;
use crate::sip::endpoint::{ClientTxId, DialogKey, Event, Flow, ServerTxId};
use crate::sip::message::{Method, Request};
use crate::sip::registrar::{Binding, StoreOp};
use crate::stats::{LiveStats, Snapshot};
use crate::store::{CallOp, Op};
use crate::transport::driver::Command;
use legs::Peer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// One input of the call manager's loop.
enum Input_ {
    Shutdown,
    Sip(Event),
    Timer,
    Gauges,
    Control(control::Control),
    Media(Notice),
    Dialer(outbound::Msg),
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
    next_call: u64,
    next_tu: u64,
    cancel: CancellationToken,
    /// Today's and the current/last interval's figures per queue, agents' time per state.
    figures: figures::LiveFigures,
    /// Where the latest figures are published (API, `ctid status`).
    stats_out: watch::Sender<Snapshot>,
    /// The agent board, the registered phones it shows, agent sessions and the event feed.
    board: board::Board,
    /// The API's live event stream, if any.
    events_out: Option<mpsc::Sender<control::CallEvent>>,
    /// Media sessions report here (DTMF, prompts played, media timeouts, recordings).
    notices: mpsc::Sender<Notice>,
    notices_rx: Option<mpsc::Receiver<Notice>>,
    /// The progressive dialer, when `[outbound]` is enabled.
    outbound: Option<outbound::Dialer>,
    /// The time of the input being handled (read once per input by [`CallManager::run`]).
    now: Now,
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
        now: Now,
    ) -> CallManager {
        let (notices, notices_rx) = mpsc::channel(8192);
        let figures = figures::LiveFigures::new(
            stats,
            settings.sl_targets.clone(),
            settings.short_abandon,
            &settings.agents,
            now,
        );
        let mut m = CallManager {
            figures,
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
            next_call: first_call_id.max(1),
            next_tu: 1,
            cancel,
            stats_out,
            board: board::Board::default(),
            events_out: None,
            outbound: None,
            now,
        };
        for b in bindings
            .into_iter()
            .filter(|b| b.expires_at_ms > now.wall_ms)
        {
            m.binding_changed(now.mono, StoreOp::Upsert(b));
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
            let dialer_due = self.outbound.as_ref().and_then(|d| d.poll_timeout());
            let deadline = self
                .engine
                .poll_timeout()
                .into_iter()
                .chain(dialer_due)
                .min()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| {
                    tokio::time::Instant::from_std(self.now.mono) + Duration::from_secs(3600)
                });
            let input = tokio::select! {
                _ = shutdown.cancelled() => Input_::Shutdown,
                ev = events.recv() => match ev {
                    Some(ev) => Input_::Sip(ev),
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => Input_::Timer,
                _ = gauges.tick() => Input_::Gauges,
                Some(cmd) = controls.recv() => Input_::Control(cmd),
                Some(n) = notices.recv() => Input_::Media(n),
                Some(m) = dialer.recv() => Input_::Dialer(m),
            };
            // The one clock read per input: everything it causes carries this time.
            self.now = Now::read();
            match input {
                Input_::Shutdown => {
                    self.outbound_shutdown().await;
                    self.hang_up_all().await;
                    break;
                }
                Input_::Sip(ev) => self.handle_event(ev).await,
                Input_::Timer => {
                    self.engine.handle_timeout(self.now.mono);
                    // The dialer's timers due now, each as its own input, as they used to be.
                    while let Some(m) = self
                        .outbound
                        .as_mut()
                        .and_then(|d| d.poll_expired(self.now))
                    {
                        self.apply_actions().await;
                        self.outbound_msg(m).await;
                    }
                }
                Input_::Gauges => self.export_gauges(),
                Input_::Control(cmd) => self.control(cmd).await,
                Input_::Media(n) => self.media_notice(n).await,
                Input_::Dialer(m) => self.outbound_msg(m).await,
            }
            self.apply_actions().await;
        }
        self.flush_board().await;
        self.cancel.cancel();
        // Dropping `self` closes the command queue: the SIP driver may finish once the BYEs
        // sent above are answered.
    }

    /// Publish the latest figures (API, `ctid status`) and the gauges of `/metrics`, once a
    /// second.
    fn export_gauges(&mut self) {
        let snapshot = self.figures.poll_snapshot(&self.engine, self.now);
        self.stats_out.send_replace(snapshot);
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
            at_ms: self.now.wall_ms,
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
            Event::Store(op) => self.binding_changed(self.now.mono, op),
        }
    }

    /// Follow registrations: an agent is logged in while its phone has a binding (the board
    /// keeps the projection, see [`board`]).
    fn binding_changed(&mut self, now: Instant, op: StoreOp) {
        match self.board.handle_binding(op) {
            board::Registration::FirstPhone(agent) => {
                tracing::info!(agent, "agent logged in (phone registered)");
                self.engine.handle(
                    now,
                    Input::AgentLogin {
                        agent: AgentId(agent),
                        queues: None,
                    },
                );
            }
            board::Registration::LastPhoneGone(agent) => {
                tracing::info!(agent, "agent logged out (no registered phone)");
                self.engine.handle(
                    now,
                    Input::AgentLogout {
                        agent: AgentId(agent),
                    },
                );
            }
            board::Registration::Unchanged => {}
        }
    }

    /// One leg sent BYE (already answered).
    async fn leg_hung_up(&mut self, id: CallId, leg: LegRef, by: &'static str) {
        let now = self.now.mono;
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
