//! The media of one call from answer to hang-up, in one tokio task: ctid's own audio to the
//! caller (greeting, hold music, announcements, survey prompts — paced by [`Pacer`]), the bridge
//! between caller and agent once an agent answers (relay with symmetric-RTP latching, µ-law ↔
//! A-law transcoding, telephone-event relayed or consumed), DTMF detection, recording, RTCP
//! reports and receive statistics, and the media timeout.
//!
//! The caller sees ONE continuous RTP stream from ctid for the whole call: ctid's own frames and
//! the agent's relayed packets carry ctid's SSRC, with sequence numbers and timestamps mapped so
//! they keep counting across every switch (own audio → bridge → survey); the marker bit flags each
//! switch, so phones and PBXs do not glitch. The agent sees the caller's packets as they came
//! (only the payload type rewritten, and the payload transcoded when the laws differ).
//!
//! The call layer drives it with [`Command`]s and hears back through [`Notice`]s; it never waits
//! on the task except in [`SessionHandle::stop`].
//!
//! Parts: this file holds the interface; `core` the session itself (every decision, with the
//! time passed in as `now`: commands, datagrams, timers — unit-tested step by step in `tests`);
//! `driver` the task that feeds it (sockets drained in batches by [`super::batch`], one timer for
//! whatever is due next, notices sent on); `stream` ctid's outgoing RTP numbering and the
//! placement of recorded frames.

mod core;
mod driver;
mod stream;
#[cfg(test)]
mod tests;

use super::g711::Codec;
pub use super::latch::Side;
use super::prompt::Prompt;
use super::recorder::{RecorderHandle, RecordingResult};
use super::LegSockets;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// One leg's negotiated media.
#[derive(Debug)]
pub struct LegMedia {
    pub sockets: LegSockets,
    /// Where its SDP said to send RTP (None: unknown / on hold with 0.0.0.0).
    pub remote: Option<SocketAddr>,
    pub law: Codec,
    /// The voice payload type as this peer numbered it.
    pub pt: u8,
    /// Its telephone-event payload type, if negotiated.
    pub te_pt: Option<u8>,
    /// Packet time in ms (20 unless the peer asked otherwise).
    pub ptime: u32,
}

impl LegMedia {
    /// With its sockets on the reactor of the current runtime when sessions run on media
    /// threads ([`super::threads`]); unchanged otherwise.
    pub(super) fn moved_here(self) -> std::io::Result<LegMedia> {
        if !super::threads::installed() {
            return Ok(self);
        }
        Ok(LegMedia {
            sockets: self.sockets.moved_here()?,
            ..self
        })
    }
}

/// Fixed settings of a session.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// No RTP from a (not held) leg for this long → [`Event::MediaTimeout`]. None: never.
    pub media_timeout: Option<Duration>,
    /// Relay the caller's telephone-events to the agent (else they are only detected).
    pub relay_dtmf: bool,
    pub latch_timeout: Duration,
    /// CNAME in RTCP reports.
    pub cname: String,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            media_timeout: Some(Duration::from_secs(30)),
            relay_dtmf: true,
            latch_timeout: Duration::from_secs(2),
            cname: "ctid".into(),
        }
    }
}

/// What the call layer asks of the session.
#[derive(Debug)]
pub enum Command {
    /// Audio played between prompts, looped (hold music); None: silence.
    Background(Option<Prompt>),
    /// Play these prompts in order, after anything already queued, then report
    /// [`Event::PlayDone`] with `tag`. Interrupts the background audio (which resumes after).
    Play { prompts: Vec<Prompt>, tag: u32 },
    /// Drop every queued prompt (the one playing stops at once); no PlayDone for them.
    StopPrompts,
    /// Report [`Event::AnnounceDue`] every period (None: stop).
    AnnounceEvery(Option<Duration>),
    /// Bridge the agent's leg: ctid's own audio stops, media flows both ways (and is recorded).
    Bridge {
        agent: Box<LegMedia>,
        recorder: Option<RecorderHandle>,
    },
    /// The agent left: its leg is released, the recording finished ([`Event::Recording`]);
    /// ctid's own audio (background, prompts) resumes towards the caller.
    Unbridge,
    /// Report [`Event::Timer`] with `tag` after `delay` (replaces a pending timer).
    After { delay: Duration, tag: u32 },
    /// A leg went on hold (true) or resumed: no media timeout while held.
    Hold { side: Side, held: bool },
    /// A re-INVITE moved a leg's media.
    Remote {
        side: Side,
        addr: Option<SocketAddr>,
    },
}

/// What the session reports.
#[derive(Debug)]
pub enum Event {
    /// The caller pressed a key (RFC 4733).
    Dtmf(char),
    PlayDone(u32),
    AnnounceDue,
    MediaTimeout(Side),
    /// A timer set with [`Command::After`] expired.
    Timer(u32),
    /// The recording ended (agent left, or the call ended).
    Recording(RecordingResult),
    /// The session is over (the last notice of a call): its figures.
    Ended(SessionStats),
}

/// An [`Event`] of one call.
#[derive(Debug)]
pub struct Notice {
    pub call: u64,
    pub event: Event,
}

/// Receive figures of one leg (what ctid got from that peer).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LegQuality {
    pub received: u64,
    pub lost: u64,
    pub jitter_ms: f64,
}

/// Final figures of a session.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionStats {
    pub caller: LegQuality,
    pub agent: Option<LegQuality>,
    /// ctid's own frames sent to the caller.
    pub own_frames: u64,
    /// Own frames skipped because ctid fell far behind (see [`super::pacer::Pacer`]).
    pub skipped_frames: u64,
    pub relayed: u64,
    pub dropped: u64,
}

/// Owns a running session; dropping it stops the task.
#[derive(Debug)]
pub struct SessionHandle {
    commands: mpsc::UnboundedSender<Command>,
    cancel: CancellationToken,
    task: Option<JoinHandle<SessionStats>>,
}

impl SessionHandle {
    /// Ask something of the session (ignored once it has ended).
    pub fn send(&self, c: Command) {
        let _ = self.commands.send(c);
    }

    /// Stop the session and wait for it: sockets closed (ports back in the pool), recording
    /// finished and reported. Returns the final figures.
    pub async fn stop(mut self) -> SessionStats {
        self.cancel.cancel();
        match self.task.take() {
            Some(t) => t.await.unwrap_or_default(),
            None => SessionStats::default(),
        }
    }
}

impl Drop for SessionHandle {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Start the media of call `call` with its caller leg (inside a tokio runtime).
pub fn start_session(
    call: u64,
    caller: LegMedia,
    config: SessionConfig,
    notices: mpsc::Sender<Notice>,
    cancel: CancellationToken,
) -> SessionHandle {
    let (tx, rx) = mpsc::unbounded_channel();
    let cancel = cancel.child_token();
    let span = tracing::debug_span!("media", call, caller_rtp = %caller.sockets.local_rtp);
    let session_cancel = cancel.clone();
    let task = async move {
        let caller = match caller.moved_here() {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot move the caller's sockets to the media thread");
                let _ = notices
                    .send(Notice {
                        call,
                        event: Event::MediaTimeout(Side::A),
                    })
                    .await;
                return SessionStats::default();
            }
        };
        let session = core::Session::new(
            caller,
            config,
            tokio::time::Instant::now(),
            std::time::SystemTime::now(),
        );
        driver::run(session, call, rx, notices, session_cancel).await
    }
    .instrument(span);
    SessionHandle {
        commands: tx,
        cancel,
        task: Some(super::threads::spawn(task)),
    }
}
