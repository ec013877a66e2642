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
//!
//! Files: the types, the endpoint's state, input, timers and polling here; received requests and
//! the answers to them in `endpoint/server.rs`; requests ctid sends and their responses in
//! `endpoint/client.rs`; the transaction tables' entries in `endpoint/table.rs`; admission at the
//! door in `endpoint/admission.rs`.

mod admission;
mod client;
mod server;
mod table;

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
use crate::sip::net::PeerNet;
use admission::STATELESS_TAG;
pub use admission::{AdmissionConfig, Refusal};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use table::{cseq_of, tag_of, ClientMachine, ClientTx, ServerMachine, ServerTx, TimerRef, TxKey};

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

    /// The port a URI without one means (RFC 3261 §19.1.2): 5061 for TLS, else 5060.
    pub fn default_port(self) -> u16 {
        match self {
            Transport::Tls => 5061,
            _ => 5060,
        }
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
