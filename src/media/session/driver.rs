//! The task that runs one [`Session`]: it waits on the session's sockets, its commands and ONE
//! timer (re-armed only when [`Session::poll_timeout`] changes), hands each wake-up to the
//! session with the time read once (`Instant::now`), and sends on what the session reports.
//!
//! A readable socket is drained in one `recvmmsg` into the thread's [`Batch`] and what the
//! session relays leaves in one `sendmmsg` ([`super::super::batch`]): no allocation and, when the
//! socket is emptied, no second system call to learn it.

use super::super::batch::{with_batch, Batch};
use super::super::latch::Kind;
use super::core::{Output, Session};
use super::{Command, Event, Notice, SessionStats, Side};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub(super) async fn run(
    mut session: Session,
    call: u64,
    mut commands: mpsc::UnboundedReceiver<Command>,
    notices: mpsc::Sender<Notice>,
    cancel: CancellationToken,
) -> SessionStats {
    metrics::gauge!("ctid_media_sessions_active").increment(1.0);
    let far = Instant::now() + Duration::from_secs(365 * 86_400);
    let sleep = tokio::time::sleep_until(far);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    loop {
        flush(&mut session, call, &notices).await;
        let want = session.poll_timeout();
        if want != armed {
            sleep.as_mut().reset(want.unwrap_or(far));
            armed = want;
        }
        let (caller, agent) = session.sockets();
        let agent_rtp = agent.as_ref().map(|a| &a.rtp);
        let agent_rtcp = agent.as_ref().map(|a| &a.rtcp);
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            c = commands.recv() => match c {
                Some(Command::Bridge { agent, recorder }) => match agent.moved_here() {
                    Ok(a) => session.handle_command(
                        Command::Bridge { agent: Box::new(a), recorder },
                        Instant::now(),
                    ),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot move the agent's sockets to the media thread");
                        notify(&notices, call, Event::MediaTimeout(Side::B)).await;
                    }
                },
                Some(c) => session.handle_command(c, Instant::now()),
                None => break,
            },
            () = &mut sleep, if armed.is_some() => {
                // Re-armed from `poll_timeout` next time round, even if it names the same instant.
                armed = None;
                session.handle_timeout(Instant::now());
                report_counters(&mut session);
            }
            r = caller.rtp.readable() => drain(&mut session, Side::A, Kind::Rtp, &caller.rtp, r),
            r = readable(agent_rtp) => drain_opt(&mut session, Side::B, Kind::Rtp, agent_rtp, r),
            r = caller.rtcp.readable() => drain(&mut session, Side::A, Kind::Rtcp, &caller.rtcp, r),
            r = readable(agent_rtcp) => drain_opt(&mut session, Side::B, Kind::Rtcp, agent_rtcp, r),
        }
    }
    let stats = session.end();
    report_counters(&mut session);
    flush(&mut session, call, &notices).await;
    metrics::gauge!("ctid_media_sessions_active").decrement(1.0);
    metrics::counter!("ctid_media_own_frames_total").increment(stats.own_frames);
    tracing::debug!(?stats, "media session ended");
    notify(&notices, call, Event::Ended(stats.clone())).await;
    stats
}

/// The packets relayed and dropped since the last report, into the metrics: at every timer
/// wake-up (at least every RTCP interval, 5 s) and at the end, not per packet.
fn report_counters(session: &mut Session) {
    let (relayed, drops) = session.counter_deltas();
    if relayed > 0 {
        metrics::counter!("ctid_media_packets_relayed_total").increment(relayed);
    }
    for (reason, n) in crate::metrics::MEDIA_DROP_REASONS.iter().zip(drops) {
        if n > 0 {
            metrics::counter!("ctid_media_packets_dropped_total", "reason" => *reason).increment(n);
        }
    }
}

async fn notify(notices: &mpsc::Sender<Notice>, call: u64, event: Event) {
    let _ = notices.send(Notice { call, event }).await;
}

/// Send on what the session reported, in order (finishing a recording waits for its writer).
async fn flush(session: &mut Session, call: u64, notices: &mpsc::Sender<Notice>) {
    while let Some(out) = session.poll_output() {
        let event = match out {
            Output::Notify(e) => e,
            Output::FinishRecording(h) => Event::Recording(h.finish_async().await),
        };
        notify(notices, call, event).await;
    }
}

async fn readable(socket: Option<&UdpSocket>) -> std::io::Result<()> {
    match socket {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

fn drain_opt(
    session: &mut Session,
    side: Side,
    kind: Kind,
    socket: Option<&UdpSocket>,
    ready: std::io::Result<()>,
) {
    if let Some(s) = socket {
        drain(session, side, kind, s, ready);
    }
}

/// One batch from a readable socket into the session. A batch that did not empty the socket
/// leaves it readable, so the next round of the loop takes the rest (after the other sockets
/// and the timer had their turn).
fn drain(
    session: &mut Session,
    side: Side,
    kind: Kind,
    socket: &UdpSocket,
    ready: std::io::Result<()>,
) {
    if let Err(e) = ready {
        tracing::debug!(error = %e, ?side, ?kind, "media socket not readable");
        return;
    }
    with_batch(|batch: &mut Batch| match batch.recv(socket) {
        Ok(_) if !batch.is_empty() => session.handle_batch(side, kind, batch, Instant::now()),
        Ok(_) => {}
        Err(e) => tracing::debug!(error = %e, ?side, ?kind, "media socket receive failed"),
    });
}
