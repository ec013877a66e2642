//! The SIP endpoint: where every received message enters and every message to send leaves.
//!
//! Owns: the server and client transaction tables, their timers (one heap, no scans), request
//! validation in RFC 3261 §8.2 order (483, 482, 501/405, 416, 420, 403, 481, 415/406), CANCEL
//! matching (§9.2), the trust rule for PBX peers, OPTIONS answers, the registrar, and digest
//! answers to 401/407 for requests ctid sends. Requests that need a decision (a new call, an
//! in-dialog request) go up to the transaction user as [`Event`]s; the TU answers through
//! [`Endpoint::respond`] and sends through [`Endpoint::send_request`].
//!
//! Sans-IO: input is parsed messages with their [`Flow`] and `now`; output is [`Transmit`]s,
//! [`Event`]s and the next timer deadline. Must not know: sockets, tokio, SQL, queues or calls.

mod admission;

use super::auth;
use super::build::{self, new_tag, response_from_reply, response_to, stamp_via, BRANCH_PREFIX};
use super::header::{parse_bounded, CSeq, NameAddr, Via};
use super::message::{Headers, Message, Method, Request, Response};
use super::parse::ParseFailure;
use super::registrar::{Account, Outcome as RegisterOutcome, Registrar, RegistrarConfig, StoreOp};
use super::transaction::{
    Bytes, ClientInvite, ClientInviteState, ClientNonInvite, ClientNonInviteState, ServerInvite,
    ServerInviteState, ServerNonInvite, Timers, TxAction,
};
use super::uri::Uri;
use crate::config::PeerNet;
use admission::STATELESS_TAG;
pub use admission::{AdmissionConfig, Refusal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Methods ctid implements (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, REGISTER, INFO, UPDATE";
/// Body types ctid accepts.
pub const ACCEPT: &str = "application/sdp";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
    /// TLS over TCP (RFC 3261 §26.2; Via `SIP/2.0/TLS`).
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Tls => "TLS",
        }
    }

    /// A stream transport (TCP or TLS): no retransmissions, a connection per peer.
    pub fn reliable(self) -> bool {
        self != Transport::Udp
    }

    /// The `;transport=` value of a URI on this transport (`None` for UDP, the default).
    pub fn uri_param(self) -> Option<&'static str> {
        match self {
            Transport::Udp => None,
            Transport::Tcp => Some("tcp"),
            Transport::Tls => Some("tls"),
        }
    }

    /// The transport a `;transport=` parameter names (`tls` also for `sips:` URIs).
    pub fn from_param(v: &str) -> Option<Transport> {
        [Transport::Udp, Transport::Tcp, Transport::Tls]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(v))
    }
}

/// Where a message came from or goes to. `conn` identifies a TCP connection (0 = UDP, or "any
/// connection to `remote`, opening one if needed").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    pub transport: Transport,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub conn: u64,
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}",
            self.transport.as_str().to_ascii_lowercase(),
            self.remote
        )
    }
}

/// Bytes to put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub flow: Flow,
    pub bytes: Bytes,
}

/// Identifies a server transaction to the TU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerTxId(pub u64);

/// Identifies a request ctid sent (stable across digest-auth retries).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientTxId(pub u64);

/// A dialog as the endpoint knows it: enough to route in-dialog requests (or answer 481).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialogKey {
    pub call_id: String,
    pub local_tag: String,
    pub remote_tag: String,
}

/// What the endpoint tells the transaction user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A request the TU must answer with [`Endpoint::respond`]: an INVITE from a trusted peer,
    /// or a request inside a known dialog.
    Request {
        tx: ServerTxId,
        request: Request,
        flow: Flow,
    },
    /// An ACK to a 2xx (its own transaction, §13.3.1.4).
    Ack { request: Request, flow: Flow },
    /// The caller cancelled the INVITE `tx`; ctid already answered it `487`.
    Cancelled { tx: ServerTxId },
    /// A 2xx was never acknowledged (Timer L/H): the TU should end the dialog.
    AckTimeout { tx: ServerTxId },
    /// A response to a request the TU sent (after any digest retry).
    Response { tx: ClientTxId, response: Response },
    /// No final response arrived (Timer B/F) or the transport failed.
    RequestFailed {
        tx: ClientTxId,
        reason: &'static str,
    },
    /// A registrar change to persist.
    Store(StoreOp),
}

/// Static settings of the endpoint.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    pub user_agent: String,
    /// Host used in ctid's own URIs when a local address is unspecified.
    pub domain: String,
    pub trusted: Vec<PeerNet>,
    pub force_rport: bool,
    pub timers: Timers,
    pub registrar: RegistrarConfig,
    pub accounts: Vec<Account>,
    pub nonce_secret: [u8; 32],
    /// `[sip] advertise`: the address written into ctid's Via sent-by instead of the socket's.
    pub advertise: Option<super::advertise::Advertise>,
    pub admission: AdmissionConfig,
}

/// Counters the driver exports as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub responses: u64,
    pub parse_answered: u64,
    pub parse_dropped: u64,
    pub retransmissions_absorbed: u64,
    pub stray_responses: u64,
    /// Final and provisional responses ctid sent, by class (index 1 = 1xx … 6 = 6xx).
    pub responses_sent: [u64; 7],
    pub server_transactions: u64,
    pub client_transactions: u64,
    /// Failed authentications, by [`super::throttle::FailReason::index`].
    pub auth_failures: [u64; 5],
    /// Requests refused at the door, by [`Refusal::index`].
    pub refused: [u64; Refusal::ALL.len()],
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum TxKey {
    /// RFC 3261 §17.2.3: branch + sent-by + method (ACK matches INVITE).
    Branch {
        branch: String,
        sent_by: String,
        method: String,
    },
    /// RFC 2543 peers without the magic cookie.
    Legacy {
        call_id: String,
        cseq: u32,
        from_tag: String,
        via: String,
        method: String,
    },
}

impl TxKey {
    fn for_request(req: &Request) -> Option<TxKey> {
        let via = Via::parse(req.headers.get("Via")?).ok()?;
        let method = match req.method {
            Method::Ack => "INVITE".to_string(),
            ref m => m.as_str().to_string(),
        };
        if via.has_rfc3261_branch() {
            return Some(TxKey::Branch {
                branch: via.branch().unwrap_or("").to_string(),
                sent_by: via.sent_by(),
                method,
            });
        }
        let cseq = CSeq::parse(req.headers.get("CSeq")?).ok()?;
        let from_tag = NameAddr::parse(req.headers.get("From")?)
            .ok()
            .and_then(|f| f.tag().map(str::to_string))
            .unwrap_or_default();
        Some(TxKey::Legacy {
            call_id: req.headers.get("Call-ID")?.to_string(),
            cseq: cseq.seq,
            from_tag,
            via: via.to_value(),
            method,
        })
    }

    fn with_method(&self, m: &str) -> TxKey {
        let mut k = self.clone();
        match &mut k {
            TxKey::Branch { method, .. } | TxKey::Legacy { method, .. } => *method = m.to_string(),
        }
        k
    }
}

enum ServerMachine {
    Invite(ServerInvite),
    NonInvite(ServerNonInvite),
}

impl ServerMachine {
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ServerMachine::Invite(m) => m.poll_timeout(),
            ServerMachine::NonInvite(m) => m.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        match self {
            ServerMachine::Invite(m) => m.handle_timeout(now),
            ServerMachine::NonInvite(m) => m.handle_timeout(now),
        }
    }

    fn handle_request_retransmit(&mut self, now: Instant) -> Vec<TxAction> {
        match self {
            ServerMachine::Invite(m) => m.handle_request_retransmit(now),
            ServerMachine::NonInvite(m) => m.handle_request_retransmit(now),
        }
    }

    fn respond(&mut self, now: Instant, status: u16, bytes: Bytes) -> Vec<TxAction> {
        match self {
            ServerMachine::Invite(m) => m.respond(now, status, bytes),
            ServerMachine::NonInvite(m) => m.respond(now, status, bytes),
        }
    }
}

struct ServerTx {
    key: TxKey,
    machine: ServerMachine,
    /// Where responses go (the Via/rport rule applied).
    flow: Flow,
    /// The request (kept for INVITE: CANCEL builds its 487 from it).
    request: Option<Request>,
    to_tag: String,
    /// (Call-ID, CSeq) for matching the ACK of a 2xx.
    ack_match: Option<(String, u32)>,
    /// (From tag, Call-ID, CSeq) for merged-request detection (§8.2.2.2).
    merge_key: Option<(String, String, u32)>,
}

enum ClientMachine {
    Invite(ClientInvite),
    NonInvite(ClientNonInvite),
}

impl ClientMachine {
    fn poll_timeout(&self) -> Option<Instant> {
        match self {
            ClientMachine::Invite(m) => m.poll_timeout(),
            ClientMachine::NonInvite(m) => m.poll_timeout(),
        }
    }

    fn handle_timeout(&mut self, now: Instant) -> Vec<TxAction> {
        match self {
            ClientMachine::Invite(m) => m.handle_timeout(now),
            ClientMachine::NonInvite(m) => m.handle_timeout(now),
        }
    }
}

struct ClientTx {
    tu: ClientTxId,
    machine: ClientMachine,
    flow: Flow,
    request: Request,
    credentials: Option<(String, String)>,
    auth_attempts: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerRef {
    Server(u64),
    Client(u64),
    Registrar,
}

/// The tag parameter of a name-addr header (From/To), if the header parses and has one.
fn tag_of(req: &Request, header: &str) -> Option<String> {
    req.headers
        .get(header)
        .and_then(|v| NameAddr::parse(v).ok())
        .and_then(|na| na.tag().map(str::to_string))
}

/// The CSeq number of a request (0 if absent: validated requests always have one).
fn cseq_of(req: &Request) -> u32 {
    req.headers
        .get("CSeq")
        .and_then(|c| CSeq::parse(c).ok())
        .map_or(0, |c| c.seq)
}

/// The sans-IO SIP endpoint.
pub struct Endpoint {
    cfg: EndpointConfig,
    anchor: (Instant, u64),
    registrar: Registrar,
    server: HashMap<u64, ServerTx>,
    server_keys: HashMap<TxKey, u64>,
    acks: HashMap<(String, u32), u64>,
    merged: HashMap<(String, String, u32), u64>,
    client: HashMap<u64, ClientTx>,
    client_keys: HashMap<(String, String), u64>,
    /// The current transaction of each request the TU sent (digest retries replace it).
    client_by_tu: HashMap<ClientTxId, u64>,
    /// INVITEs (by TU id) the TU cancelled before any provisional response: RFC 3261 §9.1 says
    /// wait for one, then send the CANCEL (also across a digest retry, which keeps the TU id).
    cancel_on_provisional: HashSet<ClientTxId>,
    dialogs: HashSet<DialogKey>,
    timers: BinaryHeap<Reverse<(Instant, TimerRef)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    next_id: u64,
    registrar_deadline: Option<Instant>,
    draining: bool,
    /// TCP connections (by `Flow::conn`) that carried an authenticated REGISTER since the
    /// driver last asked: they get the long idle timeout.
    proven: VecDeque<u64>,
    /// The driver says ctid cannot keep up: new INVITEs get 503.
    overloaded: bool,
    /// Answered INVITE transactions awaiting their ACK, with the peer address they count for,
    /// and the count per address.
    unacked_tx: HashMap<u64, IpAddr>,
    unacked: HashMap<IpAddr, usize>,
    pub stats: Stats,
}

impl Endpoint {
    /// `now` and `unix_ms` are the same moment on the monotonic and the wall clock.
    pub fn new(cfg: EndpointConfig, now: Instant, unix_ms: u64) -> Self {
        let registrar = Registrar::new(
            cfg.registrar.clone(),
            cfg.accounts.clone(),
            cfg.nonce_secret,
        );
        Endpoint {
            cfg,
            anchor: (now, unix_ms),
            registrar,
            server: HashMap::new(),
            server_keys: HashMap::new(),
            acks: HashMap::new(),
            merged: HashMap::new(),
            client: HashMap::new(),
            client_keys: HashMap::new(),
            client_by_tu: HashMap::new(),
            cancel_on_provisional: HashSet::new(),
            dialogs: HashSet::new(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            next_id: 1,
            registrar_deadline: None,
            draining: false,
            proven: VecDeque::new(),
            overloaded: false,
            unacked_tx: HashMap::new(),
            unacked: HashMap::new(),
            stats: Stats::default(),
        }
    }

    fn unix_ms(&self, now: Instant) -> u64 {
        let since = now.saturating_duration_since(self.anchor.0);
        self.anchor.1.saturating_add(since.as_millis() as u64)
    }

    fn instant_of(&self, unix_ms: u64) -> Instant {
        self.anchor.0 + Duration::from_millis(unix_ms.saturating_sub(self.anchor.1))
    }

    pub fn registrar(&self) -> &Registrar {
        &self.registrar
    }

    /// Bindings loaded from the store at start.
    pub fn load_bindings(&mut self, now: Instant, bindings: Vec<super::registrar::Binding>) {
        let unix = self.unix_ms(now);
        self.registrar.load(bindings, unix);
        self.flush_registrar(now);
    }

    /// Stop taking new transactions: new out-of-dialog requests get 503.
    pub fn start_draining(&mut self) {
        self.draining = true;
    }

    /// Transactions still running (server and client), including those only absorbing
    /// retransmissions.
    pub fn open_transactions(&self) -> usize {
        self.server.len() + self.client.len()
    }

    /// Transactions that still owe or await an answer: a server transaction without a final
    /// response (or with a 2xx not yet acknowledged), a client transaction without a final
    /// response. Shutdown waits for these, not for the ones merely absorbing retransmissions.
    pub fn busy_transactions(&self) -> usize {
        let server = self
            .server
            .values()
            .filter(|t| match &t.machine {
                ServerMachine::Invite(m) => matches!(
                    m.state(),
                    ServerInviteState::Proceeding | ServerInviteState::Accepted
                ),
                ServerMachine::NonInvite(m) => m.last_response_status().is_none_or(|s| s < 200),
            })
            .count();
        let client = self
            .client
            .values()
            .filter(|t| match &t.machine {
                ClientMachine::Invite(m) => matches!(
                    m.state(),
                    ClientInviteState::Calling | ClientInviteState::Proceeding
                ),
                ClientMachine::NonInvite(m) => matches!(
                    m.state(),
                    ClientNonInviteState::Trying | ClientNonInviteState::Proceeding
                ),
            })
            .count();
        server + client
    }

    pub fn add_dialog(&mut self, key: DialogKey) {
        self.dialogs.insert(key);
    }

    pub fn remove_dialog(&mut self, key: &DialogKey) {
        self.dialogs.remove(key);
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// A TCP connection that carried an authenticated REGISTER.
    pub fn poll_proven(&mut self) -> Option<u64> {
        self.proven.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Earliest timer deadline (stale heap entries may make this early; that only costs a
    /// spurious wake-up).
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((t, _))| *t)
    }

    /// Fire every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((t, r))) = self.timers.peek().copied() {
            if t > now {
                break;
            }
            self.timers.pop();
            match r {
                TimerRef::Server(id) => {
                    let Some(tx) = self.server.get_mut(&id) else {
                        continue;
                    };
                    let due = tx.machine.poll_timeout();
                    if due.is_some_and(|d| d <= now) {
                        let actions = tx.machine.handle_timeout(now);
                        self.server_actions(id, actions);
                    }
                    self.arm_server(id);
                }
                TimerRef::Client(id) => {
                    let Some(tx) = self.client.get_mut(&id) else {
                        continue;
                    };
                    let due = tx.machine.poll_timeout();
                    if due.is_some_and(|d| d <= now) {
                        let actions = tx.machine.handle_timeout(now);
                        self.client_actions(now, id, actions, None);
                    }
                    self.arm_client(id);
                }
                TimerRef::Registrar => {
                    if self.registrar_deadline.is_some_and(|d| d <= now) {
                        self.registrar_deadline = None;
                        self.flush_registrar(now);
                    }
                }
            }
        }
    }

    /// A message (or a failure to parse one) arrived on `flow`.
    pub fn handle_input(&mut self, now: Instant, flow: Flow, input: Result<Message, ParseFailure>) {
        match input {
            Ok(Message::Request(req)) => {
                self.stats.requests += 1;
                self.handle_request(now, flow, req);
            }
            Ok(Message::Response(resp)) => {
                self.stats.responses += 1;
                self.handle_response(now, resp);
            }
            Err(f) => self.handle_parse_failure(flow, f),
        }
    }

    fn handle_parse_failure(&mut self, flow: Flow, f: ParseFailure) {
        if f.reason == super::parse::KEEPALIVE {
            return;
        }
        let Some(reply) = f.reply else {
            self.stats.parse_dropped += 1;
            tracing::debug!(%flow, reason = %f.reason, "dropped unparseable message");
            return;
        };
        self.stats.parse_answered += 1;
        if let Some(n) = self
            .stats
            .responses_sent
            .get_mut(usize::from(reply.status / 100))
        {
            *n += 1;
        }
        tracing::debug!(%flow, reason = %f.reason, status = reply.status, "rejecting malformed request");
        let mut resp = response_from_reply(&reply, &f.reason, &new_tag());
        // Route it like any response: by the top Via when it parses, else to the source.
        let mut dest = flow;
        if flow.transport == Transport::Udp {
            let mut probe = Request::new(Method::Options, "sip:x");
            for v in resp.headers.get_all("Via") {
                probe.headers.push("Via", v.to_string());
            }
            if Via::parse(probe.headers.get("Via").unwrap_or("")).is_ok() {
                dest.remote = stamp_via(&mut probe, flow.remote, self.cfg.force_rport);
                if let (Some(v), Some(top)) =
                    (probe.headers.get("Via"), resp.headers.first_mut("Via"))
                {
                    *top = v.to_string();
                }
            }
        }
        self.server_header(&mut resp);
        self.transmits.push_back(Transmit {
            flow: dest,
            bytes: resp.to_bytes().into(),
        });
    }

    fn server_header(&self, resp: &mut Response) {
        if resp.headers.get("Server").is_none() {
            resp.headers.push("Server", self.cfg.user_agent.clone());
        }
    }

    fn alloc_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn handle_request(&mut self, now: Instant, flow: Flow, mut req: Request) {
        let Some(key) = TxKey::for_request(&req) else {
            self.stats.parse_dropped += 1;
            return;
        };
        if req.method == Method::Ack {
            self.handle_ack(now, flow, key, req);
            return;
        }
        if let Some(&id) = self.server_keys.get(&key) {
            self.stats.retransmissions_absorbed += 1;
            if let Some(tx) = self.server.get_mut(&id) {
                let actions = tx.machine.handle_request_retransmit(now);
                self.server_actions(id, actions);
                self.arm_server(id);
            }
            return;
        }
        // Strangers get stateless answers: no transaction, nothing retransmitted, nothing kept.
        if !self.trusted(flow) {
            if let Some((status, reason)) = self.stateless_refusal(&req) {
                let refusal = (status == 403).then_some(Refusal::Untrusted);
                self.refuse_stateless(flow, req, status, reason, refusal);
                return;
            }
        }
        // A new call while ctid cannot keep up, or from a peer that does not acknowledge the
        // calls it got: 503 at the door, before any work (calls in progress go on).
        if let Some(r) = self.refuse_at_door(&req, flow) {
            self.refuse_stateless(flow, req, 503, "Service Unavailable", Some(r));
            return;
        }
        // Response destination per §18.2.2 / RFC 3581.
        let mut resp_flow = flow;
        if flow.transport == Transport::Udp {
            resp_flow.remote = stamp_via(&mut req, flow.remote, self.cfg.force_rport);
        } else {
            stamp_via(&mut req, flow.remote, false);
        }
        let id = self.alloc_id();
        let reliable = flow.transport.reliable();
        let is_invite = req.method == Method::Invite;
        let machine = if is_invite {
            ServerMachine::Invite(ServerInvite::new(now, self.cfg.timers, reliable))
        } else {
            ServerMachine::NonInvite(ServerNonInvite::new(now, self.cfg.timers, reliable))
        };
        let call_id = req.headers.get("Call-ID").unwrap_or("").to_string();
        let cseq = cseq_of(&req);
        let from_tag = tag_of(&req, "From");
        let to_tag = tag_of(&req, "To");
        let merge_key = match (&from_tag, &to_tag) {
            (Some(f), None) => Some((f.clone(), call_id.clone(), cseq)),
            _ => None,
        };
        let merged_with = merge_key.as_ref().and_then(|k| self.merged.get(k)).copied();
        let tx = ServerTx {
            key: key.clone(),
            machine,
            flow: resp_flow,
            request: is_invite.then(|| req.clone()),
            to_tag: new_tag(),
            ack_match: is_invite.then(|| (call_id.clone(), cseq)),
            merge_key: merge_key.clone(),
        };
        self.server.insert(id, tx);
        self.stats.server_transactions += 1;
        self.server_keys.insert(key.clone(), id);
        if merged_with.is_none() {
            if let Some(k) = merge_key {
                self.merged.insert(k, id);
            }
        }
        let stx = ServerTxId(id);
        if is_invite {
            let trying = response_to(&req, 100, None);
            self.respond(now, stx, trying);
        }

        if req.method == Method::Cancel {
            self.handle_cancel(now, stx, &key, &req);
            return;
        }
        if let Some(resp) = self.precheck(&req, flow, merged_with.is_some(), to_tag.as_deref()) {
            self.respond(now, stx, resp);
            return;
        }
        let in_dialog = to_tag.is_some();
        if in_dialog {
            let dk = DialogKey {
                call_id,
                local_tag: to_tag.unwrap_or_default(),
                remote_tag: from_tag.unwrap_or_default(),
            };
            if !self.dialogs.contains(&dk) {
                let r = self.reply(&req, 481);
                self.respond(now, stx, r);
                return;
            }
            self.events.push_back(Event::Request {
                tx: stx,
                request: req,
                flow,
            });
            return;
        }
        match req.method {
            Method::Options => {
                let mut r = self.reply(&req, 200);
                r.headers.push("Allow", ALLOW);
                r.headers.push("Accept", ACCEPT);
                r.headers.push("Accept-Encoding", "identity");
                r.headers.push("Supported", "");
                self.respond(now, stx, r);
            }
            Method::Register => {
                let source = flow.to_string();
                let unix = self.unix_ms(now);
                let (mut r, outcome) =
                    self.registrar
                        .handle_register(&req, &source, flow.remote.ip(), unix);
                tracing::debug!(%flow, ?outcome, status = r.status, "REGISTER");
                match outcome {
                    RegisterOutcome::AuthFailed(why) => self.stats.auth_failures[why.index()] += 1,
                    RegisterOutcome::Throttled => {
                        self.stats.refused[Refusal::AuthThrottled.index()] += 1
                    }
                    RegisterOutcome::Registered if flow.transport.reliable() => {
                        self.proven.push_back(flow.conn)
                    }
                    _ => {}
                }
                self.server_header(&mut r);
                self.respond(now, stx, r);
                self.flush_registrar(now);
            }
            Method::Invite => self.events.push_back(Event::Request {
                tx: stx,
                request: req,
                flow,
            }),
            _ => {
                // BYE, INFO, UPDATE outside a dialog.
                let r = self.reply(&req, 481);
                self.respond(now, stx, r);
            }
        }
    }

    /// The checks every new request passes before anyone acts on it. `None` = go on.
    fn precheck(
        &self,
        req: &Request,
        _flow: Flow,
        merged: bool,
        to_tag: Option<&str>,
    ) -> Option<Response> {
        if self.draining && to_tag.is_none() && req.method != Method::Cancel {
            let mut r = self.reply(req, 503);
            r.headers.push("Retry-After", "5");
            return Some(r);
        }
        let mf = req
            .headers
            .get("Max-Forwards")
            .and_then(|v| parse_bounded(v, 255));
        if mf == Some(0) && req.method != Method::Options {
            return Some(self.reply(req, 483));
        }
        let looped = req.headers.get_all("Via").any(|v| {
            Via::parse(v)
                .ok()
                .and_then(|v| v.branch().map(|b| b.starts_with(BRANCH_PREFIX)))
                == Some(true)
        });
        if looped || merged {
            return Some(self.reply(req, 482));
        }
        // (Untrusted sources never get here with an out-of-dialog request other than OPTIONS,
        // REGISTER or CANCEL: they are answered statelessly, see `stateless_refusal`.)
        match req.method {
            Method::Other(_) => {
                let mut r = self.reply(req, 501);
                r.headers.push("Allow", ALLOW);
                return Some(r);
            }
            Method::Message
            | Method::Subscribe
            | Method::Notify
            | Method::Refer
            | Method::Publish
            | Method::Prack => {
                let mut r = self.reply(req, 405);
                r.headers.push("Allow", ALLOW);
                return Some(r);
            }
            _ => {}
        }
        match Uri::parse(&req.uri) {
            Ok(Uri::Sip(_)) | Ok(Uri::Tel { .. }) => {}
            _ => return Some(self.reply(req, 416)),
        }
        let unsupported: Vec<&str> = req.headers.list("Require").collect();
        if !unsupported.is_empty() && req.method != Method::Cancel {
            let mut r = self.reply(req, 420);
            r.headers.push("Unsupported", unsupported.join(", "));
            return Some(r);
        }
        if matches!(req.method, Method::Invite | Method::Update) {
            if let Some(r) = self.check_body(req) {
                return Some(r);
            }
        }
        None
    }

    /// 415 for a body ctid cannot read, 406 when the peer accepts nothing ctid can send.
    fn check_body(&self, req: &Request) -> Option<Response> {
        if !req.body.is_empty() {
            let ct = req.headers.get("Content-Type").unwrap_or("");
            let mime = ct.split(';').next().unwrap_or("").trim();
            let enc_ok = req
                .headers
                .list("Content-Encoding")
                .all(|e| e.eq_ignore_ascii_case("identity"));
            if !mime.eq_ignore_ascii_case("application/sdp") || !enc_ok {
                let mut r = self.reply(req, 415);
                r.headers.push("Accept", ACCEPT);
                r.headers.push("Accept-Encoding", "identity");
                return Some(r);
            }
        }
        if req.headers.count("Accept") > 0 {
            let ok = req.headers.list("Accept").any(|a| {
                let m = a.split(';').next().unwrap_or("").trim();
                m.eq_ignore_ascii_case("application/sdp")
                    || m.eq_ignore_ascii_case("application/*")
                    || m == "*/*"
            });
            if !ok {
                return Some(self.reply(req, 406));
            }
        }
        None
    }

    fn trusted(&self, flow: Flow) -> bool {
        self.cfg
            .trusted
            .iter()
            .any(|n| n.contains(flow.remote.ip()))
    }

    /// A response to `req` with ctid's Server header (the To tag is set in `respond`).
    pub fn reply(&self, req: &Request, status: u16) -> Response {
        let mut r = response_to(req, status, None);
        self.server_header(&mut r);
        r
    }

    fn handle_cancel(&mut self, now: Instant, stx: ServerTxId, key: &TxKey, cancel: &Request) {
        let invite_id = self.server_keys.get(&key.with_method("INVITE")).copied();
        let Some(invite_id) = invite_id else {
            let r = self.reply(cancel, 481);
            self.respond(now, stx, r);
            return;
        };
        // §9.2: the 200 (CANCEL) carries the To tag of the INVITE's response, the final one
        // if it was sent (a CANCEL crossing the 200 OK), so both name the same dialog.
        let mut ok = self.reply(cancel, 200);
        if let Some(invite) = self.server.get(&invite_id) {
            build::add_to_tag(&mut ok.headers, &invite.to_tag);
        }
        self.respond(now, stx, ok);
        let pending = self
            .server
            .get(&invite_id)
            .and_then(|tx| match &tx.machine {
                ServerMachine::Invite(m) if m.state() == ServerInviteState::Proceeding => {
                    tx.request.clone()
                }
                _ => None,
            });
        if let Some(invite) = pending {
            let r = self.reply(&invite, 487);
            self.respond(now, ServerTxId(invite_id), r);
            self.events.push_back(Event::Cancelled {
                tx: ServerTxId(invite_id),
            });
        }
    }

    fn handle_ack(&mut self, now: Instant, flow: Flow, key: TxKey, req: Request) {
        // ACK to a non-2xx final: part of the INVITE transaction (same branch); absorbed here.
        if let Some(&id) = self.server_keys.get(&key) {
            if let Some(ServerMachine::Invite(m)) = self.server.get_mut(&id).map(|t| &mut t.machine)
            {
                if matches!(
                    m.state(),
                    ServerInviteState::Completed | ServerInviteState::Confirmed
                ) {
                    let (_, actions) = m.handle_ack(now);
                    self.server_actions(id, actions);
                    self.arm_server(id);
                    return;
                }
            }
        }
        // ACK to a 2xx: its own transaction, matched to the INVITE by Call-ID and CSeq number,
        // then handed to the TU with its dialog.
        let call_id = req.headers.get("Call-ID").unwrap_or("").to_string();
        let cseq = cseq_of(&req);
        if let Some(id) = self.acks.remove(&(call_id, cseq)) {
            self.unacked_done(id);
            if let Some(ServerMachine::Invite(m)) = self.server.get_mut(&id).map(|t| &mut t.machine)
            {
                let (_, actions) = m.handle_ack(now);
                self.server_actions(id, actions);
                self.arm_server(id);
            }
        }
        let to_tag = tag_of(&req, "To");
        // The ACK of a stateless refusal (hop-by-hop, for a 403/503 ctid kept no state of).
        if to_tag
            .as_deref()
            .is_some_and(|t| t.starts_with(STATELESS_TAG))
        {
            return;
        }
        if to_tag.is_some() {
            self.events.push_back(Event::Ack { request: req, flow });
        }
    }

    /// Send a response on a server transaction. Adds the transaction's To tag (above 100) and
    /// the Server header.
    pub fn respond(&mut self, now: Instant, tx: ServerTxId, mut resp: Response) {
        let Some(stx) = self.server.get_mut(&tx.0) else {
            tracing::debug!(?tx, "response for a finished transaction dropped");
            return;
        };
        if resp.status > 100 {
            if let Some(to) = resp.headers.first_mut("To") {
                if let Ok(na) = NameAddr::parse(to) {
                    match na.tag() {
                        None => {
                            to.push_str(";tag=");
                            to.push_str(&stx.to_tag);
                        }
                        // The TU chose the tag (its dialog's local tag): a CANCEL of this
                        // INVITE is answered with the same one (§9.2).
                        Some(tag) => stx.to_tag = tag.to_string(),
                    }
                }
            }
        }
        if resp.headers.get("Server").is_none() {
            resp.headers.push("Server", self.cfg.user_agent.clone());
        }
        let status = resp.status;
        if let Some(n) = self.stats.responses_sent.get_mut(usize::from(status / 100)) {
            *n += 1;
        }
        let bytes: Bytes = resp.to_bytes().into();
        let actions = stx.machine.respond(now, status, bytes);
        if (200..300).contains(&status) {
            if let Some(k) = stx.ack_match.clone() {
                self.acks.insert(k, tx.0);
                let ip = stx.flow.remote.ip();
                if self.unacked_tx.insert(tx.0, ip).is_none() {
                    *self.unacked.entry(ip).or_default() += 1;
                }
            }
        }
        self.server_actions(tx.0, actions);
        self.arm_server(tx.0);
    }

    /// The To tag ctid uses on a server transaction (the local tag of a dialog it creates).
    pub fn local_tag(&self, tx: ServerTxId) -> Option<&str> {
        self.server.get(&tx.0).map(|t| t.to_tag.as_str())
    }

    fn server_actions(&mut self, id: u64, actions: Vec<TxAction>) {
        for a in actions {
            match a {
                TxAction::Send(bytes) => {
                    if let Some(tx) = self.server.get(&id) {
                        self.transmits.push_back(Transmit {
                            flow: tx.flow,
                            bytes,
                        });
                    }
                }
                TxAction::Timeout => {
                    // A 2xx awaiting its ACK is the TU's business; a non-2xx is not.
                    let tu_owned = self
                        .server
                        .get(&id)
                        .and_then(|tx| tx.ack_match.as_ref())
                        .and_then(|k| self.acks.get(k))
                        == Some(&id);
                    if tu_owned {
                        self.events
                            .push_back(Event::AckTimeout { tx: ServerTxId(id) });
                    }
                }
                TxAction::TransportError | TxAction::DeliverResponse { .. } => {}
                TxAction::Terminated => self.remove_server(id),
            }
        }
    }

    fn remove_server(&mut self, id: u64) {
        self.unacked_done(id);
        if let Some(tx) = self.server.remove(&id) {
            if self.server_keys.get(&tx.key) == Some(&id) {
                self.server_keys.remove(&tx.key);
            }
            if let Some(k) = tx.ack_match {
                if self.acks.get(&k) == Some(&id) {
                    self.acks.remove(&k);
                }
            }
            if let Some(k) = tx.merge_key {
                if self.merged.get(&k) == Some(&id) {
                    self.merged.remove(&k);
                }
            }
        }
    }

    fn arm_server(&mut self, id: u64) {
        let due = self
            .server
            .get(&id)
            .and_then(|tx| tx.machine.poll_timeout());
        if let Some(t) = due {
            self.timers.push(Reverse((t, TimerRef::Server(id))));
        }
    }

    fn arm_client(&mut self, id: u64) {
        let due = self
            .client
            .get(&id)
            .and_then(|tx| tx.machine.poll_timeout());
        if let Some(t) = due {
            self.timers.push(Reverse((t, TimerRef::Client(id))));
        }
    }

    fn flush_registrar(&mut self, now: Instant) {
        let unix = self.unix_ms(now);
        let next = self.registrar.expire(unix);
        for op in self.registrar.take_ops() {
            self.events.push_back(Event::Store(op));
        }
        if let Some(n) = next {
            let at = self.instant_of(n);
            if self.registrar_deadline.is_none_or(|d| at < d) {
                self.registrar_deadline = Some(at);
                self.timers.push(Reverse((at, TimerRef::Registrar)));
            }
        }
    }

    // ----- client side -----

    /// Send a request ctid originates. The endpoint adds the top Via (with a fresh branch and
    /// `rport`) and Max-Forwards, runs the client transaction, and answers one 401/407 with
    /// `credentials` (username, password) if given. `flow.local` is the address to send from.
    pub fn send_request(
        &mut self,
        now: Instant,
        flow: Flow,
        request: Request,
        credentials: Option<(String, String)>,
    ) -> ClientTxId {
        let tu = ClientTxId(self.alloc_id());
        self.start_client(now, flow, request, credentials, 0, tu);
        tu
    }

    /// Like [`Endpoint::send_request`] with an id the TU chose (it must not collide with ids
    /// the endpoint hands out: use ids with the top bit set).
    pub fn send_request_as(
        &mut self,
        now: Instant,
        tu: ClientTxId,
        flow: Flow,
        request: Request,
        credentials: Option<(String, String)>,
    ) {
        self.start_client(now, flow, request, credentials, 0, tu);
    }

    /// Send a request outside any transaction (the ACK for a 2xx, §13.2.2.4): a top Via is
    /// added, nothing is retransmitted. An ACK's branch is derived from its dialog and CSeq, so
    /// the ACK sent again for a retransmitted 2xx is the same ACK (a phone that got a new
    /// branch would see a second, unexpected ACK); any other request gets a fresh branch.
    pub fn send_stateless(&mut self, flow: Flow, mut request: Request) {
        let branch = if request.method == Method::Ack {
            ack_branch(&request)
        } else {
            build::new_branch()
        };
        let via = self.own_via_with(flow, &branch);
        request.headers.push_front("Via", via);
        if request.headers.get("Max-Forwards").is_none() {
            request.headers.push("Max-Forwards", "70");
        }
        self.transmits.push_back(Transmit {
            flow,
            bytes: request.to_bytes().into(),
        });
    }

    /// A Via for a request ctid sends on `flow`.
    fn own_via(&self, flow: Flow) -> String {
        self.own_via_with(flow, &build::new_branch())
    }

    /// A Via for a request ctid sends on `flow`, with `branch`.
    fn own_via_with(&self, flow: Flow, branch: &str) -> String {
        let local = super::advertise::Advertise::apply(self.cfg.advertise.as_ref(), flow.local);
        let host = if local.ip().is_unspecified() {
            self.cfg.domain.clone()
        } else {
            match local {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            }
        };
        format!(
            "SIP/2.0/{} {}:{};branch={branch};rport",
            flow.transport.as_str(),
            host,
            local.port(),
        )
    }

    /// CANCEL a pending INVITE sent with [`Endpoint::send_request`].
    ///
    /// Only while the INVITE has no final response (RFC 3261 §9.1: a CANCEL of a request that
    /// got its final response is a no-op and SHOULD NOT be sent). A late CANCEL would otherwise
    /// reach the peer after ctid's ACK of its 487, and a strict UAS aborts the call on it. And
    /// only once: asking again while its CANCEL transaction lives sends nothing more (a second
    /// transaction on the same branch would take the 200 from the first, left to retransmit
    /// until Timer F).
    ///
    /// Before any provisional response (state Calling) nothing is sent yet: the CANCEL goes out
    /// when the first 1xx arrives (RFC 3261 §9.1: a CANCEL MUST NOT be sent before one); a final
    /// response first makes it moot.
    pub fn cancel(&mut self, now: Instant, tx: ClientTxId) {
        let Some(c) = self
            .client_by_tu
            .get(&tx)
            .and_then(|id| self.client.get(id))
        else {
            return;
        };
        let ClientMachine::Invite(m) = &c.machine else {
            return;
        };
        let found = match m.state() {
            ClientInviteState::Calling => {
                self.cancel_on_provisional.insert(tx);
                None
            }
            ClientInviteState::Proceeding => Some((c.flow, build::cancel_for(&c.request))),
            _ => None,
        };
        if let Some((flow, cancel)) = found {
            let branch = top_branch(&cancel.headers).unwrap_or_default();
            if self
                .client_keys
                .contains_key(&(branch, Method::Cancel.as_str().to_string()))
            {
                return;
            }
            // CANCEL reuses the INVITE's Via (branch) — start its transaction as is.
            self.start_client_raw(now, flow, cancel, None, 0, ClientTxId(self.next_id));
            self.next_id += 1;
        }
    }

    fn start_client(
        &mut self,
        now: Instant,
        flow: Flow,
        mut req: Request,
        credentials: Option<(String, String)>,
        auth_attempts: u8,
        tu: ClientTxId,
    ) {
        let via = self.own_via(flow);
        req.headers.push_front("Via", via);
        if req.headers.get("Max-Forwards").is_none() {
            req.headers.push("Max-Forwards", "70");
        }
        if req.headers.get("User-Agent").is_none() {
            req.headers.push("User-Agent", self.cfg.user_agent.clone());
        }
        self.start_client_raw(now, flow, req, credentials, auth_attempts, tu);
    }

    fn start_client_raw(
        &mut self,
        now: Instant,
        flow: Flow,
        req: Request,
        credentials: Option<(String, String)>,
        auth_attempts: u8,
        tu: ClientTxId,
    ) {
        let id = self.alloc_id();
        let branch = top_branch(&req.headers).unwrap_or_default();
        let bytes: Bytes = req.to_bytes().into();
        let reliable = flow.transport.reliable();
        let (machine, actions) = if req.method == Method::Invite {
            let (m, a) = ClientInvite::start(now, self.cfg.timers, reliable, bytes);
            (ClientMachine::Invite(m), a)
        } else {
            let (m, a) = ClientNonInvite::start(now, self.cfg.timers, reliable, bytes);
            (ClientMachine::NonInvite(m), a)
        };
        self.client_keys
            .insert((branch, req.method.as_str().to_string()), id);
        if req.method != Method::Cancel {
            self.client_by_tu.insert(tu, id);
        }
        self.stats.client_transactions += 1;
        self.client.insert(
            id,
            ClientTx {
                tu,
                machine,
                flow,
                request: req,
                credentials,
                auth_attempts,
            },
        );
        self.client_actions(now, id, actions, None);
        self.arm_client(id);
    }

    fn handle_response(&mut self, now: Instant, resp: Response) {
        let branch = top_branch(&resp.headers);
        let method = resp
            .headers
            .get("CSeq")
            .and_then(|c| CSeq::parse(c).ok())
            .map(|c| c.method);
        let id = match (branch, method) {
            (Some(b), Some(m)) => self.client_keys.get(&(b, m)).copied(),
            _ => None,
        };
        let Some(id) = id else {
            self.stats.stray_responses += 1;
            tracing::debug!(
                status = resp.status,
                "response matches no transaction; dropped"
            );
            return;
        };
        let Some(tx) = self.client.get_mut(&id) else {
            return;
        };
        let tu = tx.tu;
        let provisional = (100..200).contains(&resp.status);
        let bytes: Bytes = resp.to_bytes().into();
        let actions = match &mut tx.machine {
            ClientMachine::Invite(m) => {
                let ack = (resp.status >= 300).then(|| -> Bytes {
                    build::ack_for_error(&tx.request, &resp).to_bytes().into()
                });
                m.handle_response(now, resp.status, bytes, ack)
            }
            ClientMachine::NonInvite(m) => m.handle_response(now, resp.status, bytes),
        };
        self.client_actions(now, id, actions, Some(resp));
        self.arm_client(id);
        if provisional && self.cancel_on_provisional.remove(&tu) {
            self.cancel(now, tu);
        }
    }

    fn client_actions(
        &mut self,
        now: Instant,
        id: u64,
        actions: Vec<TxAction>,
        resp: Option<Response>,
    ) {
        let mut resp = resp;
        for a in actions {
            match a {
                TxAction::Send(bytes) => {
                    if let Some(tx) = self.client.get(&id) {
                        self.transmits.push_back(Transmit {
                            flow: tx.flow,
                            bytes,
                        });
                    }
                }
                TxAction::DeliverResponse { .. } => {
                    if let Some(r) = resp.take() {
                        self.deliver(now, id, r);
                    }
                }
                TxAction::Timeout => {
                    if let Some(tx) = self.client.get(&id) {
                        self.events.push_back(Event::RequestFailed {
                            tx: tx.tu,
                            reason: "timeout",
                        });
                    }
                }
                TxAction::TransportError => {
                    if let Some(tx) = self.client.get(&id) {
                        self.events.push_back(Event::RequestFailed {
                            tx: tx.tu,
                            reason: "transport error",
                        });
                    }
                }
                TxAction::Terminated => {
                    if let Some(tx) = self.client.remove(&id) {
                        if self.client_by_tu.get(&tx.tu) == Some(&id) {
                            self.client_by_tu.remove(&tx.tu);
                            self.cancel_on_provisional.remove(&tx.tu);
                        }
                        let branch = top_branch(&tx.request.headers).unwrap_or_default();
                        self.client_keys
                            .remove(&(branch, tx.request.method.as_str().to_string()));
                    }
                }
            }
        }
    }

    /// Hand a response to the TU, answering a digest challenge first when credentials allow.
    fn deliver(&mut self, now: Instant, id: u64, resp: Response) {
        let Some(tx) = self.client.get(&id) else {
            return;
        };
        // A request the TU already cancelled is not retried with credentials: its challenge is
        // its final answer.
        let cancelled = resp.status >= 200 && self.cancel_on_provisional.remove(&tx.tu);
        if matches!(resp.status, 401 | 407) && tx.auth_attempts < 2 && !cancelled {
            if let Some((user, pass)) = tx.credentials.clone() {
                let header = if resp.status == 401 {
                    "WWW-Authenticate"
                } else {
                    "Proxy-Authenticate"
                };
                if let Some(ch) = auth::pick_challenge(resp.headers.get_all(header)) {
                    // Retry unless this is a second rejection of the same (non-stale) nonce.
                    let mut req = tx.request.clone();
                    let (flow, tu, attempts) = (tx.flow, tx.tu, tx.auth_attempts);
                    if attempts == 0 || ch.stale {
                        req.headers.remove("Via");
                        let answer_name = if resp.status == 401 {
                            "Authorization"
                        } else {
                            "Proxy-Authorization"
                        };
                        req.headers.remove(answer_name);
                        let cnonce = build::new_tag();
                        let value = auth::authorization(
                            &ch,
                            req.method.as_str(),
                            &req.uri,
                            &user,
                            &pass,
                            1,
                            &cnonce,
                        );
                        req.headers.push(answer_name, value);
                        if let Some(c) = req.headers.get("CSeq").and_then(|c| CSeq::parse(c).ok()) {
                            req.headers
                                .set("CSeq", format!("{} {}", c.seq.saturating_add(1), c.method));
                        }
                        self.start_client(now, flow, req, Some((user, pass)), attempts + 1, tu);
                        return;
                    }
                }
            }
        }
        self.events.push_back(Event::Response {
            tx: tx.tu,
            response: resp,
        });
    }
}

/// The branch of the top Via (what keys a client transaction).
fn top_branch(headers: &Headers) -> Option<String> {
    headers
        .get("Via")
        .and_then(|v| Via::parse(v).ok())
        .and_then(|v| v.branch().map(str::to_string))
}

/// The branch of the ACK for a 2xx: the same for the same dialog and INVITE CSeq (Call-ID,
/// From, To with their tags, CSeq), so the ACK of a retransmitted 2xx is a retransmission of
/// the first ACK; different for any other ACK.
fn ack_branch(ack: &Request) -> String {
    use std::hash::{Hash, Hasher};
    // Fixed keys: the same ACK hashes the same for the life of the process.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for name in ["Call-ID", "From", "To", "CSeq"] {
        ack.headers.get(name).unwrap_or_default().hash(&mut h);
    }
    format!("{}ack-{:016x}", build::BRANCH_PREFIX, h.finish())
}

#[cfg(test)]
#[path = "endpoint_tests.rs"]
mod tests;
