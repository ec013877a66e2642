//! SIP over TCP: listener with admission per source (see [`super::limits`]), one task per
//! connection, incremental framing by Content-Length, and the timeouts that keep a slow or silent
//! peer from holding resources: a started message must complete within `message_timeout`
//! (slow-loris); an idle connection is closed after `unproven_idle_timeout` until it has carried
//! a valid message from a trusted peer or an authenticated REGISTER (the driver says so through
//! the connection's `proven` flag), after `idle_timeout` from then on.

use super::limits::ConnLimiter;
use super::Inbound;
use crate::sip::endpoint::{Flow, Transport};
use crate::sip::framer::StreamFramer;
use crate::sip::parse::Limits;
use crate::sip::transaction::Bytes;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Settings shared by every connection.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    pub limits: Limits,
    pub idle_timeout: Duration,
    /// Idle timeout until the connection is proven.
    pub unproven_idle_timeout: Duration,
    pub message_timeout: Duration,
}

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Accept connections until cancelled. A connection the limiter refuses is closed at once.
pub async fn listen(
    listener: TcpListener,
    settings: TcpSettings,
    limiter: Arc<ConnLimiter>,
    inbound: mpsc::Sender<Inbound>,
    cancel: CancellationToken,
) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = cancel.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "tcp accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let guard = match limiter.admit(remote.ip()) {
            Ok(g) => g,
            Err(why) => {
                limiter.refused(remote.ip(), why);
                drop(stream);
                continue;
            }
        };
        let inbound = inbound.clone();
        let cancel = cancel.clone();
        let trusted = guard.trusted();
        tokio::spawn(async move {
            if let Some(peer) = Peer::of(&stream, trusted, false) {
                serve(stream, peer, settings, inbound, cancel).await;
            }
            drop(guard);
        });
    }
}

/// Dial `remote` for a request ctid sends, then serve the connection like an accepted one.
pub async fn connect(
    remote: SocketAddr,
    settings: TcpSettings,
    inbound: mpsc::Sender<Inbound>,
    cancel: CancellationToken,
) {
    match tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(remote)).await {
        // ctid dialled it: proven from the start.
        Ok(Ok(stream)) => {
            if let Some(peer) = Peer::of(&stream, false, true) {
                serve(stream, peer, settings, inbound, cancel).await
            }
        }
        _ => {
            let _ = inbound.send(Inbound::ConnectFailed { remote }).await;
        }
    }
}

/// Who is at the other end of a connection, and what ctid knows of it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Peer {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub transport: Transport,
    /// From a trusted peer's address (the reserve, the short path to `proven`).
    pub trusted: bool,
    /// Proven from the start (ctid dialled it).
    pub proven: bool,
}

impl Peer {
    fn of(stream: &TcpStream, trusted: bool, proven: bool) -> Option<Peer> {
        let _ = stream.set_nodelay(true);
        Some(Peer {
            local: stream.local_addr().ok()?,
            remote: stream.peer_addr().ok()?,
            transport: Transport::Tcp,
            trusted,
            proven,
        })
    }
}

/// Serve one connection (TCP, or TLS after its handshake) until it closes, times out or the
/// transports are cancelled.
pub(super) async fn serve<S>(
    stream: S,
    peer: Peer,
    settings: TcpSettings,
    inbound: mpsc::Sender<Inbound>,
    cancel: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Peer {
        local,
        remote,
        transport,
        trusted,
        proven,
    } = peer;
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (writer, mut queue) = mpsc::channel::<Bytes>(256);
    let proven = Arc::new(AtomicBool::new(proven));
    let opened = Inbound::ConnOpened {
        conn,
        local,
        remote,
        writer,
        proven: proven.clone(),
    };
    if inbound.send(opened).await.is_err() {
        return;
    }
    // Writer: until the driver drops its sender (after ConnClosed) or a write fails.
    let write_task = tokio::spawn(async move {
        while let Some(bytes) = queue.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let flow = Flow {
        transport,
        local,
        remote,
        conn,
    };
    let cap = settings.limits.max_message_size.saturating_add(4096);
    let mut framer = StreamFramer::new();
    let mut chunk = vec![0u8; 16 * 1024];
    let mut last_activity = Instant::now();
    let mut partial_since: Option<Instant> = None;
    'read: loop {
        let idle = |proven: &AtomicBool| {
            if proven.load(Ordering::Relaxed) {
                settings.idle_timeout
            } else {
                settings.unproven_idle_timeout
            }
        };
        let deadline = match partial_since {
            Some(t) => t + settings.message_timeout,
            None => last_activity + idle(&proven),
        };
        let n = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = tokio::time::sleep_until(deadline) => {
                // Proven while asleep: its idle time is the long one now.
                if partial_since.is_none() && Instant::now() < last_activity + idle(&proven) {
                    continue;
                }
                let why = if partial_since.is_some() { "incomplete message timed out" } else { "idle" };
                tracing::debug!(%remote, why, "closing tcp connection");
                metrics::counter!("ctid_sip_tcp_timeouts_total").increment(1);
                break;
            }
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            },
        };
        last_activity = Instant::now();
        framer.push(&chunk[..n]);
        while let Some(frame) = framer.next(&settings.limits) {
            partial_since = None;
            if trusted && frame.result.is_ok() {
                proven.store(true, Ordering::Relaxed);
            }
            let msg = Inbound::Message {
                flow,
                result: frame.result,
            };
            if inbound.send(msg).await.is_err() {
                break 'read;
            }
            if frame.fatal {
                // Let the answer (if any) go out, then close: the stream cannot be
                // resynchronised after a framing error.
                tokio::time::sleep(Duration::from_millis(200)).await;
                break 'read;
            }
        }
        if framer.buffered() > cap {
            break;
        }
        if framer.buffered() == 0 {
            partial_since = None;
        } else if partial_since.is_none() {
            partial_since = Some(last_activity);
        }
    }
    let _ = inbound.send(Inbound::ConnClosed { conn }).await;
    let _ = write_task.await;
}
