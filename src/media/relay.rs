//! The per-call RTP/RTCP relay: one tokio task moves datagrams between the two legs of a call.
//!
//! The latching rules (symmetric RTP) and plausibility checks are the sans-IO `latch`
//! core; `run` is the thin socket loop around it. Per packet there is no allocation and no lock:
//! the four receive buffers are allocated once per call, counters are relaxed atomics, and sends
//! use `try_send_to` (a full socket buffer drops the packet, as a real-time relay should, rather
//! than stalling the other direction).

pub use super::latch::Side;
use super::latch::{usable, Kind, Latches, Verdict, MAX_DATAGRAM};
use super::LegSockets;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Receive buffer size: a datagram filling it was longer than [`MAX_DATAGRAM`] (truncated).
const BUF_LEN: usize = MAX_DATAGRAM + 1;
/// Consecutive unexpected receive errors after which the relay gives up.
const MAX_RECV_ERRORS: u32 = 100;

/// Tunables of a relay.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// How long a latched source must be silent before another source may take over.
    pub latch_timeout: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            latch_timeout: Duration::from_secs(2),
        }
    }
}

/// Counters of one direction (packets received from one side and relayed to the other).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirectionStats {
    pub rtp_packets: u64,
    pub rtp_bytes: u64,
    pub rtcp_packets: u64,
    pub rtcp_bytes: u64,
    /// When the source side last sent an accepted RTP packet (even if it could not be forwarded):
    /// the input for an RTP-timeout hang-up.
    pub last_rtp: Option<Instant>,
}

/// Packets not relayed, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStats {
    /// Not plausible RTP/RTCP (too short or long, version ≠ 2, bad CSRC count or RTCP type).
    pub invalid: u64,
    /// From a source other than the latched one, within the latch timeout.
    pub stray: u64,
    /// The other side's address is not known yet (no SDP address, nothing received).
    pub no_destination: u64,
    /// The send failed (socket buffer full, network unreachable…).
    pub send_failed: u64,
}

/// A snapshot of a relay's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    pub a_to_b: DirectionStats,
    pub b_to_a: DirectionStats,
    pub dropped: DropStats,
    /// Receive errors (ICMP-reported unreachability and the like); they do not stop the relay.
    pub recv_errors: u64,
}

/// Owns a running relay. Dropping it stops the relay (like [`RelayHandle::stop`], without waiting).
#[derive(Debug)]
pub struct RelayHandle {
    shared: Arc<Shared>,
    remotes: watch::Sender<[Option<SocketAddr>; 2]>,
    cancel: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl RelayHandle {
    /// The peer of `side` announced a new media address (re-INVITE). Takes effect for every packet
    /// received after this returns; the side is unlatched, so it latches again on its next packet.
    /// An unspecified IP (`0.0.0.0`, old-style hold) or port 0 means "unknown": nothing is sent to
    /// that side until it sends. Repeating the current address changes nothing.
    pub fn update_remote(&self, side: Side, addr: SocketAddr) {
        self.remotes
            .send_modify(|r| r[side.index()] = usable(Some(addr)));
    }

    /// Current counters.
    pub fn stats(&self) -> RelayStats {
        self.shared.snapshot()
    }

    /// Whether the relay task has ended (stopped, cancelled, or failed).
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Stop the relay and wait for its task to end; the sockets are closed and their ports back
    /// in the pool when this returns. Returns the final counters.
    pub async fn stop(mut self) -> RelayStats {
        self.cancel.cancel();
        if let Some(task) = self.task.take() {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "RTP relay task did not end cleanly");
            }
        }
        self.shared.snapshot()
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// [`start_relay_with_config`] with the default [`RelayConfig`].
pub fn start_relay(
    a: LegSockets,
    b: LegSockets,
    a_remote: Option<SocketAddr>,
    b_remote: Option<SocketAddr>,
    cancel: CancellationToken,
) -> RelayHandle {
    start_relay_with_config(RelayConfig::default(), a, b, a_remote, b_remote, cancel)
}

/// Spawn the relay task of one call (must be called inside a tokio runtime). `a_remote`/`b_remote`
/// are the RTP addresses from each peer's SDP, if known. The task ends when `cancel` (or a child
/// of it the handle holds) is cancelled, when the handle is stopped or dropped, or on a persistent
/// socket error; the legs' ports then return to their pool.
pub fn start_relay_with_config(
    config: RelayConfig,
    a: LegSockets,
    b: LegSockets,
    a_remote: Option<SocketAddr>,
    b_remote: Option<SocketAddr>,
    cancel: CancellationToken,
) -> RelayHandle {
    let remotes = [usable(a_remote), usable(b_remote)];
    let (tx, rx) = watch::channel(remotes);
    let cancel = cancel.child_token();
    let shared = Arc::new(Shared::new());
    let latches = Latches::new(remotes, config.latch_timeout);
    let span = tracing::debug_span!("rtp_relay", a = %a.local_rtp, b = %b.local_rtp);
    let task =
        tokio::spawn(run(a, b, latches, Arc::clone(&shared), rx, cancel.clone()).instrument(span));
    RelayHandle {
        shared,
        remotes: tx,
        cancel,
        task: Some(task),
    }
}

/// Counters shared between the task (writer) and the handle (reader).
#[derive(Debug)]
struct Shared {
    start: Instant,
    dirs: [DirCounters; 2],
    invalid: AtomicU64,
    stray: AtomicU64,
    no_destination: AtomicU64,
    send_failed: AtomicU64,
    recv_errors: AtomicU64,
}

#[derive(Debug, Default)]
struct DirCounters {
    rtp_packets: AtomicU64,
    rtp_bytes: AtomicU64,
    rtcp_packets: AtomicU64,
    rtcp_bytes: AtomicU64,
    /// Microseconds since `Shared::start` plus one; 0 = never.
    last_rtp_us: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

impl Shared {
    fn new() -> Shared {
        Shared {
            start: Instant::now(),
            dirs: Default::default(),
            invalid: AtomicU64::new(0),
            stray: AtomicU64::new(0),
            no_destination: AtomicU64::new(0),
            send_failed: AtomicU64::new(0),
            recv_errors: AtomicU64::new(0),
        }
    }

    fn seen_rtp(&self, side: Side, now: Instant) {
        let us = now.saturating_duration_since(self.start).as_micros();
        let us = u64::try_from(us).unwrap_or(u64::MAX - 1) + 1;
        self.dirs[side.index()]
            .last_rtp_us
            .store(us, Ordering::Relaxed);
    }

    fn relayed(&self, side: Side, kind: Kind, bytes: usize) {
        let d = &self.dirs[side.index()];
        let bytes = bytes as u64;
        match kind {
            Kind::Rtp => {
                bump(&d.rtp_packets, 1);
                bump(&d.rtp_bytes, bytes);
            }
            Kind::Rtcp => {
                bump(&d.rtcp_packets, 1);
                bump(&d.rtcp_bytes, bytes);
            }
        }
    }

    fn snapshot(&self) -> RelayStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let dir = |d: &DirCounters| DirectionStats {
            rtp_packets: get(&d.rtp_packets),
            rtp_bytes: get(&d.rtp_bytes),
            rtcp_packets: get(&d.rtcp_packets),
            rtcp_bytes: get(&d.rtcp_bytes),
            last_rtp: match get(&d.last_rtp_us) {
                0 => None,
                us => self.start.checked_add(Duration::from_micros(us - 1)),
            },
        };
        RelayStats {
            a_to_b: dir(&self.dirs[0]),
            b_to_a: dir(&self.dirs[1]),
            dropped: DropStats {
                invalid: get(&self.invalid),
                stray: get(&self.stray),
                no_destination: get(&self.no_destination),
                send_failed: get(&self.send_failed),
            },
            recv_errors: get(&self.recv_errors),
        }
    }
}

/// Errors a UDP receive can report for a reason outside this socket (ICMP feedback and the like).
fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused
            | ConnectionReset
            | Interrupted
            | WouldBlock
            | HostUnreachable
            | NetworkUnreachable
    )
}

/// The relay task: one `select!` over the four sockets of the call.
async fn run(
    a: LegSockets,
    b: LegSockets,
    mut latches: Latches,
    shared: Arc<Shared>,
    mut remotes: watch::Receiver<[Option<SocketAddr>; 2]>,
    cancel: CancellationToken,
) {
    metrics::gauge!("ctid_media_relays_active").increment(1.0);
    let mut bufs = vec![0u8; 4 * BUF_LEN];
    let (buf_a_rtp, rest) = bufs.split_at_mut(BUF_LEN);
    let (buf_a_rtcp, rest) = rest.split_at_mut(BUF_LEN);
    let (buf_b_rtp, buf_b_rtcp) = rest.split_at_mut(BUF_LEN);
    let mut recv_errors = 0u32;
    loop {
        let (side, kind, result) = tokio::select! {
            () = cancel.cancelled() => break,
            r = a.rtp.recv_from(buf_a_rtp) => (Side::A, Kind::Rtp, r),
            r = a.rtcp.recv_from(buf_a_rtcp) => (Side::A, Kind::Rtcp, r),
            r = b.rtp.recv_from(buf_b_rtp) => (Side::B, Kind::Rtp, r),
            r = b.rtcp.recv_from(buf_b_rtcp) => (Side::B, Kind::Rtcp, r),
        };
        let (len, src) = match result {
            Ok(r) => {
                recv_errors = 0;
                r
            }
            Err(e) => {
                bump(&shared.recv_errors, 1);
                if transient(&e) {
                    continue;
                }
                recv_errors += 1;
                tracing::debug!(error = %e, "RTP receive error");
                if recv_errors >= MAX_RECV_ERRORS {
                    tracing::warn!(error = %e, "RTP relay stopped: persistent receive errors");
                    break;
                }
                continue;
            }
        };
        // A re-INVITE's new address applies to every packet received after `update_remote`.
        if remotes.has_changed().unwrap_or(false) {
            latches.handle_remotes(*remotes.borrow_and_update());
        }
        let packet = match (side, kind) {
            (Side::A, Kind::Rtp) => &buf_a_rtp[..len],
            (Side::A, Kind::Rtcp) => &buf_a_rtcp[..len],
            (Side::B, Kind::Rtp) => &buf_b_rtp[..len],
            (Side::B, Kind::Rtcp) => &buf_b_rtcp[..len],
        };
        let now = Instant::now();
        let verdict = latches.handle_packet(side, kind, packet, src, now);
        if kind == Kind::Rtp && matches!(verdict, Verdict::Forward(_) | Verdict::NoDestination) {
            shared.seen_rtp(side, now);
        }
        match verdict {
            Verdict::Forward(to) => {
                let out = match side.other() {
                    Side::A => &a,
                    Side::B => &b,
                };
                let socket = match kind {
                    Kind::Rtp => &out.rtp,
                    Kind::Rtcp => &out.rtcp,
                };
                match socket.try_send_to(packet, to) {
                    Ok(_) => shared.relayed(side, kind, len),
                    Err(e) => {
                        tracing::trace!(error = %e, %to, "RTP send failed");
                        bump(&shared.send_failed, 1);
                    }
                }
            }
            Verdict::Invalid => bump(&shared.invalid, 1),
            Verdict::Stray => bump(&shared.stray, 1),
            Verdict::NoDestination => bump(&shared.no_destination, 1),
        }
    }
    let s = shared.snapshot();
    let relayed =
        s.a_to_b.rtp_packets + s.a_to_b.rtcp_packets + s.b_to_a.rtp_packets + s.b_to_a.rtcp_packets;
    metrics::counter!("ctid_media_packets_relayed_total").increment(relayed);
    for (reason, n) in [
        ("invalid", s.dropped.invalid),
        ("stray", s.dropped.stray),
        ("no_destination", s.dropped.no_destination),
        ("send_failed", s.dropped.send_failed),
    ] {
        metrics::counter!("ctid_media_packets_dropped_total", "reason" => reason).increment(n);
    }
    metrics::gauge!("ctid_media_relays_active").decrement(1.0);
    tracing::debug!(stats = ?s, "RTP relay ended");
}

#[cfg(test)]
mod tests;
