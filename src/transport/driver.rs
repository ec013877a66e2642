//! [`SipDriver`]: the task that owns the sans-IO [`Endpoint`], feeds it what the sockets
//! received and the transaction user's commands, sleeps until its next timer, and puts its
//! output on the wire, in the store queue, or in the TU's event queue.
//!
//! Events are never dropped: when the TU's queue is full they wait in the driver's backlog (in
//! order) until it has room. The driver also measures whether ctid keeps up ([`super::load`]):
//! events waiting, its own loop lag, the media threads' CPU; while overloaded the endpoint
//! answers new INVITEs with 503 at the door.
//!
//! Time: the driver reads the clock ([`crate::clock::Now`]) once per input — a datagram or
//! message, a command, a timer — and hands it to the endpoint, which never reads it itself.

use super::load::{Admission, Load, MediaCpu, OverloadLimits};
use super::tcp::{self, TcpSettings};
use super::Inbound;
use crate::clock::Now;
use crate::metrics::edge::{LOOP_LAG, MEDIA_CPU, OVERLOADED};
use crate::sip::endpoint::{
    ClientTxId, DialogKey, Endpoint, Event, Flow, Refusal, ServerTxId, Stats, Transmit, Transport,
};
use crate::sip::message::{Request, Response};
use crate::sip::throttle::FailReason;
use crate::sip::transaction::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// What the transaction user asks of the endpoint.
#[derive(Debug)]
pub enum Command {
    Respond {
        tx: ServerTxId,
        response: Response,
    },
    /// Send a request to `remote` over `transport`; the id comes back on `reply`.
    Send {
        transport: Transport,
        remote: SocketAddr,
        request: Request,
        credentials: Option<(String, String)>,
        reply: oneshot::Sender<ClientTxId>,
    },
    /// Send a request under an id the TU chose (see [`Endpoint::send_request_as`]).
    SendAs {
        id: ClientTxId,
        transport: Transport,
        remote: SocketAddr,
        request: Request,
    },
    /// Send a request outside any transaction (ACK for a 2xx).
    SendStateless {
        transport: Transport,
        remote: SocketAddr,
        request: Request,
    },
    Cancel {
        tx: ClientTxId,
    },
    AddDialog(DialogKey),
    RemoveDialog(DialogKey),
}

/// Everything the driver needs; built by `app`.
pub struct SipDriver {
    pub endpoint: Endpoint,
    pub udp: Vec<(SocketAddr, Arc<UdpSocket>)>,
    pub tcp_settings: TcpSettings,
    /// TLS: the configurations for connections ctid dials, and the TLS listeners' addresses
    /// (ctid's address in Via and Contact of requests it sends over TLS).
    pub tls: Option<Arc<super::tls::TlsContext>>,
    pub tls_local: Vec<SocketAddr>,
    pub inbound_tx: mpsc::Sender<Inbound>,
    pub inbound: mpsc::Receiver<Inbound>,
    pub commands: mpsc::Receiver<Command>,
    pub events: mpsc::Sender<Event>,
    pub store: mpsc::Sender<crate::store::Op>,
    /// Cancelled on SIGINT/SIGTERM: start draining.
    pub shutdown: CancellationToken,
    /// Cancelled by the driver when it is done, to stop the socket tasks.
    pub transports: CancellationToken,
    pub grace: Duration,
    pub overload: OverloadLimits,
}

struct Conns {
    by_id: HashMap<u64, mpsc::Sender<Bytes>>,
    proven: HashMap<u64, Arc<AtomicBool>>,
    by_remote: HashMap<SocketAddr, u64>,
    pending: HashMap<SocketAddr, Vec<Bytes>>,
}

impl SipDriver {
    pub async fn run(mut self) {
        let mut conns = Conns {
            by_id: HashMap::new(),
            proven: HashMap::new(),
            by_remote: HashMap::new(),
            pending: HashMap::new(),
        };
        let mut backlog: VecDeque<Event> = VecDeque::new();
        // A second handle, so waiting for room does not hold `self` across the select.
        let events = self.events.clone();
        let mut admission = Admission::new(self.overload);
        let mut media = MediaCpu::default();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ticks = 0u64;
        let mut lags = [Duration::ZERO; 3];
        let mut trim = super::load::HeapTrim::default();
        let mut load = Load::default();
        let mut drain_until: Option<Instant> = None;
        let mut last_stats = Stats::default();
        let mut commands_open = true;
        loop {
            let timer = self
                .endpoint
                .poll_timeout()
                .unwrap_or_else(|| Now::read().mono + Duration::from_secs(3600));
            let timer = tokio::time::Instant::from_std(timer);
            let drain_timer = tokio::time::Instant::from_std(
                drain_until.unwrap_or_else(|| Now::read().mono + Duration::from_secs(3600)),
            );
            tokio::select! {
                biased;
                _ = self.shutdown.cancelled(), if drain_until.is_none() => {
                    tracing::info!(busy = self.endpoint.busy_transactions(), "draining SIP transactions");
                    self.endpoint.start_draining();
                    drain_until = Some(Now::read().mono + self.grace);
                }
                // Before the inbound queue: under load the tick must still be seen (its lateness
                // is the measurement).
                at = tick.tick() => {
                    let now = Now::read().mono;
                    // Sustained lag only: the least of the last three ticks (one late wake-up,
                    // a page-fault storm or a VM pause, refuses nothing).
                    lags[ticks as usize % lags.len()] = now.saturating_duration_since(at.into_std());
                    load.loop_lag = lags.iter().copied().min().unwrap_or_default();
                    ticks += 1;
                    if ticks.is_multiple_of(10) {
                        load.media_cpu_percent = media.sample(now);
                        metrics::gauge!(MEDIA_CPU).set(load.media_cpu_percent);
                        trim.sample(self.endpoint.open_transactions());
                    }
                    metrics::gauge!(LOOP_LAG).set(load.loop_lag.as_secs_f64());
                }
                Some(inb) = self.inbound.recv() => {
                    self.inbound_one(inb, &mut conns, Now::read().mono);
                    // Take what else is queued without another trip through select!.
                    for _ in 0..64 {
                        match self.inbound.try_recv() {
                            Ok(inb) => self.inbound_one(inb, &mut conns, Now::read().mono),
                            Err(_) => break,
                        }
                    }
                }
                cmd = self.commands.recv(), if commands_open => match cmd {
                    Some(cmd) => self.command(cmd, &conns, Now::read().mono),
                    // The call layer and the trunk qualifier are done (after shutdown).
                    None => commands_open = false,
                },
                _ = tokio::time::sleep_until(timer) => self.endpoint.handle_timeout(Now::read().mono),
                _ = tokio::time::sleep_until(drain_timer) => {}
                permit = events.reserve(), if !backlog.is_empty() => {
                    match (permit, backlog.pop_front()) {
                        (Ok(p), Some(ev)) => p.send(ev),
                        // The call layer is gone: nobody will take them.
                        _ => backlog.clear(),
                    }
                    while let Some(ev) = backlog.pop_front() {
                        if let Err(e) = self.events.try_send(ev) {
                            backlog.push_front(e.into_inner());
                            break;
                        }
                    }
                }
            }
            self.flush(&mut conns, &mut backlog).await;
            load.pending_events =
                self.events.max_capacity() - self.events.capacity() + backlog.len();
            if let Some(change) = admission.update(&load) {
                self.endpoint.set_overloaded(change.is_some());
                metrics::gauge!(OVERLOADED).set(if change.is_some() { 1.0 } else { 0.0 });
                match change {
                    Some(signal) => tracing::warn!(
                        signal = signal.as_str(),
                        pending_events = load.pending_events,
                        loop_lag_ms = load.loop_lag.as_millis() as u64,
                        media_cpu_percent = load.media_cpu_percent as u64,
                        "SIP overload: new calls are refused with 503"
                    ),
                    None => tracing::info!("SIP overload over: new calls are admitted again"),
                }
            }
            let stats = self.endpoint.stats;
            export_stats(&last_stats, &stats);
            last_stats = stats;
            if let Some(until) = drain_until {
                // Wait for the call layer to have hung up its calls (it closes the command
                // queue) and for every transaction that still owes an answer.
                let idle = !commands_open && self.endpoint.busy_transactions() == 0;
                if idle || Now::read().mono >= until {
                    tracing::info!(
                        unfinished = self.endpoint.busy_transactions(),
                        "SIP drained"
                    );
                    break;
                }
            }
        }
        self.transports.cancel();
    }

    /// One input from the sockets, at `now`.
    fn inbound_one(&mut self, inb: Inbound, conns: &mut Conns, now: Instant) {
        match inb {
            Inbound::Message { flow, result } => {
                self.endpoint.handle_input(now, flow, *result);
                while let Some(conn) = self.endpoint.poll_proven() {
                    if let Some(p) = conns.proven.get(&conn) {
                        p.store(true, Ordering::Relaxed);
                    }
                }
            }
            Inbound::ConnOpened {
                conn,
                remote,
                writer,
                proven,
                ..
            } => {
                conns.proven.insert(conn, proven);
                if let Some(queued) = conns.pending.remove(&remote) {
                    for b in queued {
                        let _ = writer.try_send(b);
                    }
                }
                conns.by_id.insert(conn, writer);
                conns.by_remote.insert(remote, conn);
            }
            Inbound::ConnClosed { conn } => {
                conns.by_id.remove(&conn);
                conns.proven.remove(&conn);
                conns.by_remote.retain(|_, c| *c != conn);
            }
            Inbound::ConnectFailed { remote } => {
                tracing::warn!(%remote, "tcp connect failed");
                conns.pending.remove(&remote);
            }
        }
    }

    /// One command of the transaction user, at `now`.
    fn command(&mut self, cmd: Command, conns: &Conns, now: Instant) {
        // The request's own next hop where the peer's address is stale (RFC 3261 §8.1.2):
        // see `sip::route::destination`.
        let hop = |request: &Request, transport: Transport, remote: SocketAddr| {
            crate::sip::route::destination(request, (transport, remote), |a| {
                conns.by_remote.contains_key(&a) || conns.pending.contains_key(&a)
            })
        };
        match cmd {
            Command::Respond { tx, response } => self.endpoint.respond(now, tx, response),
            Command::Send {
                transport,
                remote,
                request,
                credentials,
                reply,
            } => {
                let (transport, remote) = hop(&request, transport, remote);
                let flow = self.flow_to(transport, remote);
                let id = self.endpoint.send_request(now, flow, request, credentials);
                let _ = reply.send(id);
            }
            Command::SendAs {
                id,
                transport,
                remote,
                request,
            } => {
                let (transport, remote) = hop(&request, transport, remote);
                let flow = self.flow_to(transport, remote);
                self.endpoint.send_request_as(now, id, flow, request, None);
            }
            Command::SendStateless {
                transport,
                remote,
                request,
            } => {
                let (transport, remote) = hop(&request, transport, remote);
                let flow = self.flow_to(transport, remote);
                self.endpoint.send_stateless(flow, request);
            }
            Command::Cancel { tx } => self.endpoint.cancel(now, tx),
            Command::AddDialog(k) => self.endpoint.add_dialog(k),
            Command::RemoveDialog(k) => self.endpoint.remove_dialog(&k),
        }
    }

    /// The flow for a request ctid sends: from the first UDP socket of the right address family
    /// (its address goes into Via and Contact); over TLS from the first TLS listener's.
    fn flow_to(&self, transport: Transport, remote: SocketAddr) -> Flow {
        let family = |a: &&SocketAddr| a.is_ipv4() == remote.is_ipv4();
        let tls = match transport {
            Transport::Tls => self.tls_local.iter().find(family).copied(),
            _ => None,
        };
        let local = tls
            .or_else(|| self.udp.iter().map(|(a, _)| a).find(family).copied())
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Flow {
            transport,
            local,
            remote,
            conn: 0,
        }
    }

    async fn flush(&mut self, conns: &mut Conns, backlog: &mut VecDeque<Event>) {
        while let Some(t) = self.endpoint.poll_transmit() {
            self.transmit(t, conns).await;
        }
        while let Some(ev) = self.endpoint.poll_event() {
            if let Event::Store(op) = &ev {
                if self.store.send(op.clone().into()).await.is_err() {
                    tracing::error!("store writer gone; binding change not persisted");
                }
            }
            // The call layer follows registrations too (agents log in with their phones).
            // In order: behind what already waits.
            if !backlog.is_empty() {
                backlog.push_back(ev);
                continue;
            }
            match self.events.try_send(ev) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(ev)) => {
                    tracing::debug!("transaction user queue full; events wait in the driver");
                    backlog.push_back(ev);
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }

    async fn transmit(&mut self, t: Transmit, conns: &mut Conns) {
        match t.flow.transport {
            Transport::Udp => {
                let sock = self
                    .udp
                    .iter()
                    .find(|(a, _)| *a == t.flow.local)
                    .or_else(|| {
                        self.udp
                            .iter()
                            .find(|(a, _)| a.is_ipv4() == t.flow.remote.is_ipv4())
                    })
                    .map(|(_, s)| s.clone());
                let Some(sock) = sock else {
                    tracing::warn!(remote = %t.flow.remote, "no UDP socket for this address family");
                    return;
                };
                match sock.try_send_to(&t.bytes, t.flow.remote) {
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        let _ = sock.send_to(&t.bytes, t.flow.remote).await;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, remote = %t.flow.remote, "udp send failed")
                    }
                }
            }
            Transport::Tcp | Transport::Tls => {
                let conn = if t.flow.conn != 0 {
                    Some(t.flow.conn)
                } else {
                    conns.by_remote.get(&t.flow.remote).copied()
                };
                if let Some(w) = conn.and_then(|c| conns.by_id.get(&c)) {
                    if w.try_send(t.bytes).is_err() {
                        tracing::debug!(remote = %t.flow.remote, "tcp connection gone or too slow; message dropped");
                    }
                    return;
                }
                if t.flow.conn != 0 {
                    tracing::debug!(remote = %t.flow.remote, "tcp connection closed before the response");
                    return;
                }
                let remote = t.flow.remote;
                let first = !conns.pending.contains_key(&remote);
                conns.pending.entry(remote).or_default().push(t.bytes);
                if !first {
                    return;
                }
                let (settings, inbound, cancel) = (
                    self.tcp_settings,
                    self.inbound_tx.clone(),
                    self.transports.clone(),
                );
                match (t.flow.transport, &self.tls) {
                    (Transport::Tls, Some(ctx)) => {
                        tokio::spawn(super::tls::connect(
                            remote,
                            ctx.clone(),
                            settings,
                            inbound,
                            cancel,
                        ));
                    }
                    (Transport::Tls, None) => {
                        tracing::warn!(%remote, "a request for a TLS destination, but ctid has no [sip.tls]; dropped");
                        conns.pending.remove(&remote);
                    }
                    _ => {
                        tokio::spawn(tcp::connect(remote, settings, inbound, cancel));
                    }
                }
            }
        }
    }
}

fn export_stats(old: &Stats, new: &Stats) {
    let d = |a: u64, b: u64| b.saturating_sub(a);
    if new == old {
        return;
    }
    metrics::counter!("ctid_sip_requests_received_total").increment(d(old.requests, new.requests));
    metrics::counter!("ctid_sip_responses_received_total")
        .increment(d(old.responses, new.responses));
    metrics::counter!("ctid_sip_parse_errors_total", "action" => "answered")
        .increment(d(old.parse_answered, new.parse_answered));
    metrics::counter!("ctid_sip_parse_errors_total", "action" => "dropped")
        .increment(d(old.parse_dropped, new.parse_dropped));
    metrics::counter!("ctid_sip_retransmissions_absorbed_total").increment(d(
        old.retransmissions_absorbed,
        new.retransmissions_absorbed,
    ));
    metrics::counter!("ctid_sip_stray_responses_total")
        .increment(d(old.stray_responses, new.stray_responses));
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx", "6xx"];
    for (i, class) in classes.iter().enumerate() {
        let (a, b) = (old.responses_sent[i + 1], new.responses_sent[i + 1]);
        metrics::counter!("ctid_sip_responses_sent_total", "class" => *class).increment(d(a, b));
    }
    metrics::counter!("ctid_sip_transactions_total", "role" => "server")
        .increment(d(old.server_transactions, new.server_transactions));
    metrics::counter!("ctid_sip_transactions_total", "role" => "client")
        .increment(d(old.client_transactions, new.client_transactions));
    use crate::metrics::edge::{SIP_AUTH_FAILURES, SIP_REFUSED};
    for r in FailReason::ALL {
        let i = r.index();
        metrics::counter!(SIP_AUTH_FAILURES, "reason" => r.as_str())
            .increment(d(old.auth_failures[i], new.auth_failures[i]));
    }
    for r in Refusal::ALL {
        let i = r.index();
        metrics::counter!(SIP_REFUSED, "reason" => r.as_str())
            .increment(d(old.refused[i], new.refused[i]));
    }
}

#[cfg(test)]
#[path = "driver_tests.rs"]
mod tests;
