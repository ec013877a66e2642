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

use super::dtmf::DtmfDetector;
use super::g711::{self, Codec};
pub use super::latch::Side;
use super::latch::{Kind, Latches, Verdict, MAX_DATAGRAM};
use super::pacer::Pacer;
use super::prompt::{Prompt, PromptCursor};
use super::recorder::{Channel, RecorderHandle, RecordingResult};
use super::rtcp::{self, RtpRxStats};
use super::LegSockets;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

const BUF_LEN: usize = MAX_DATAGRAM + 1;
/// How often each leg gets an RTCP report (RFC 3550's 5 s minimum interval).
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
/// Housekeeping tick: media timeout, announcement and RTCP checks.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);
const SAMPLE_RATE: u64 = 8000;

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
    fn moved_here(self) -> std::io::Result<LegMedia> {
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
    /// Own frames skipped because ctid fell far behind (see [`Pacer`]).
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
        Session::new(call, caller, config, notices)
            .run(rx, session_cancel)
            .await
    }
    .instrument(span);
    SessionHandle {
        commands: tx,
        cancel,
        task: Some(super::threads::spawn(task)),
    }
}

/// ctid's outgoing stream towards the caller: one SSRC, continuous numbering.
#[derive(Debug)]
struct OutStream {
    ssrc: u32,
    seq: u16,
    ts: u32,
    /// When the last packet left, and its timestamp: a later packet's timestamp is derived from
    /// the elapsed time, so the clock keeps running across pauses.
    last: Option<(Instant, u32)>,
    marker: bool,
    packets: u64,
    octets: u64,
}

impl OutStream {
    fn new() -> OutStream {
        OutStream {
            ssrc: rand::random(),
            seq: rand::random(),
            ts: rand::random(),
            last: None,
            marker: true,
            packets: 0,
            octets: 0,
        }
    }

    /// Seq, timestamp and marker for an own frame at `now` that starts a new talk spurt.
    fn resync(&mut self, now: Instant) {
        if let Some((at, ts)) = self.last {
            let samples = now.saturating_duration_since(at).as_millis() as u64 * 8;
            self.ts = ts.wrapping_add(samples as u32);
        }
        self.marker = true;
    }

    fn next(&mut self, samples: u32, now: Instant) -> (u16, u32, bool) {
        let r = (self.seq, self.ts, self.marker);
        self.last = Some((now, self.ts));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples);
        self.marker = false;
        r
    }
}

/// Maps a relayed stream's seq/timestamp onto [`OutStream`] numbering.
#[derive(Debug, Clone, Copy)]
struct Mapping {
    src_ssrc: u32,
    seq_off: u16,
    ts_off: u32,
}

/// A leg's negotiated parameters (its sockets live in [`Leg::sock`]).
#[derive(Debug, Clone, Copy)]
struct Params {
    remote: Option<SocketAddr>,
    law: Codec,
    pt: u8,
    te_pt: Option<u8>,
    ptime: u32,
}

struct Leg {
    /// Shared so the receive futures of the task loop need no borrow of the session.
    sock: Arc<LegSockets>,
    media: Params,
    rx: RtpRxStats,
    last_rtp: Instant,
    held: bool,
    timed_out: bool,
    next_rtcp: Instant,
}

impl Leg {
    fn new(m: LegMedia, now: Instant) -> Leg {
        Leg {
            sock: Arc::new(m.sockets),
            media: Params {
                remote: m.remote,
                law: m.law,
                pt: m.pt,
                te_pt: m.te_pt,
                ptime: m.ptime,
            },
            rx: RtpRxStats::new(SAMPLE_RATE as u32),
            last_rtp: now,
            held: false,
            timed_out: false,
            next_rtcp: now + RTCP_INTERVAL,
        }
    }

    fn quality(&self) -> LegQuality {
        LegQuality {
            received: self.rx.received(),
            lost: self.rx.lost(),
            jitter_ms: self.rx.jitter_ms(),
        }
    }
}

struct Recording {
    handle: RecorderHandle,
    start: Instant,
    /// Per side: (first RTP timestamp, its sample position) to place frames by RTP time.
    anchor: [Option<(u32, u64)>; 2],
    pcm: Vec<i16>,
}

impl Recording {
    fn push(&mut self, side: Side, law: Codec, ts: u32, payload: &[u8], now: Instant) {
        let arrival =
            now.saturating_duration_since(self.start).as_micros() as u64 * SAMPLE_RATE / 1_000_000;
        let i = side.index();
        let pos = match self.anchor[i] {
            Some((ts0, pos0)) => {
                let by_ts = pos0.wrapping_add(u64::from(ts.wrapping_sub(ts0)));
                // Resynchronise on jumps (hold, a new SSRC): trust arrival time then.
                if by_ts.abs_diff(arrival) > SAMPLE_RATE {
                    self.anchor[i] = Some((ts, arrival));
                    arrival
                } else {
                    by_ts
                }
            }
            None => {
                self.anchor[i] = Some((ts, arrival));
                arrival
            }
        };
        self.pcm.resize(payload.len(), 0);
        g711::decode_into(law, payload, &mut self.pcm);
        let channel = match side {
            Side::A => Channel::Caller,
            Side::B => Channel::Agent,
        };
        self.handle.push(channel, pos, &self.pcm);
    }
}

struct Session {
    call: u64,
    started: Instant,
    config: SessionConfig,
    notices: mpsc::Sender<Notice>,
    caller: Leg,
    agent: Option<Leg>,
    latches: Latches,
    out: OutStream,
    /// Relayed agent→caller mapping (per agent SSRC).
    mapping: Option<Mapping>,
    background: Option<PromptCursor>,
    prompts: VecDeque<(PromptCursor, Option<u32>)>,
    pacer: Option<Pacer>,
    announce_every: Option<Duration>,
    next_announce: Option<Instant>,
    timer: Option<(Instant, u32)>,
    dtmf: DtmfDetector,
    recording: Option<Recording>,
    frame: Vec<u8>,
    stats: SessionStats,
}

impl Session {
    fn new(
        call: u64,
        caller: LegMedia,
        config: SessionConfig,
        notices: mpsc::Sender<Notice>,
    ) -> Session {
        let now = Instant::now();
        let latches = Latches::new([caller.remote, None], config.latch_timeout);
        Session {
            call,
            started: now,
            config,
            notices,
            caller: Leg::new(caller, now),
            agent: None,
            latches,
            out: OutStream::new(),
            mapping: None,
            background: None,
            prompts: VecDeque::new(),
            pacer: None,
            announce_every: None,
            next_announce: None,
            timer: None,
            dtmf: DtmfDetector::new(),
            recording: None,
            frame: Vec::with_capacity(512),
            stats: SessionStats::default(),
        }
    }

    async fn notify(&self, event: Event) {
        let _ = self
            .notices
            .send(Notice {
                call: self.call,
                event,
            })
            .await;
    }

    fn ptime(&self) -> u32 {
        self.caller.media.ptime.clamp(10, 60)
    }

    /// Whether ctid's own audio goes to the caller now.
    fn own_audio(&self) -> bool {
        self.agent.is_none() && (self.background.is_some() || !self.prompts.is_empty())
    }

    /// Start or stop the pacer to match [`Self::own_audio`].
    fn update_pacer(&mut self, now: Instant) {
        match (self.own_audio(), self.pacer.is_some()) {
            (true, false) => {
                self.out.resync(now);
                self.pacer = Some(Pacer::new(
                    now,
                    Duration::from_millis(u64::from(self.ptime())),
                ));
            }
            (false, true) => self.pacer = None,
            _ => {}
        }
    }

    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        cancel: CancellationToken,
    ) -> SessionStats {
        metrics::gauge!("ctid_media_sessions_active").increment(1.0);
        let mut bufs = vec![0u8; 4 * BUF_LEN];
        let (buf_a, rest) = bufs.split_at_mut(BUF_LEN);
        let (buf_a_rtcp, rest) = rest.split_at_mut(BUF_LEN);
        let (buf_b, buf_b_rtcp) = rest.split_at_mut(BUF_LEN);
        let mut check = tokio::time::interval(CHECK_INTERVAL);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One timer entry per purpose, re-armed only when its deadline changes: creating a
        // fresh `Sleep` per packet would register and drop a timer 50 times a second per call.
        let far = Instant::now() + Duration::from_secs(365 * 86_400);
        let pace_sleep = tokio::time::sleep_until(far);
        let announce_sleep = tokio::time::sleep_until(far);
        let timer_sleep = tokio::time::sleep_until(far);
        tokio::pin!(pace_sleep, announce_sleep, timer_sleep);
        let mut armed: [Option<Instant>; 3] = [None; 3];
        loop {
            let want = [
                self.pacer.as_ref().map(Pacer::next_deadline),
                self.next_announce.filter(|_| self.agent.is_none()),
                self.timer.map(|(at, _)| at),
            ];
            for (i, sleep) in [
                pace_sleep.as_mut(),
                announce_sleep.as_mut(),
                timer_sleep.as_mut(),
            ]
            .into_iter()
            .enumerate()
            {
                if want[i] != armed[i] {
                    sleep.reset(want[i].unwrap_or(far));
                    armed[i] = want[i];
                }
            }
            let caller = Arc::clone(&self.caller.sock);
            let agent = self.agent.as_ref().map(|l| Arc::clone(&l.sock));
            let (caller_rtp, caller_rtcp) = (&caller.rtp, &caller.rtcp);
            let agent_rtp = agent.as_ref().map(|a| &a.rtp);
            let agent_rtcp = agent.as_ref().map(|a| &a.rtcp);
            tokio::select! {
                biased;
                () = cancel.cancelled() => break,
                c = commands.recv() => match c {
                    Some(c) => self.command(c).await,
                    None => break,
                },
                () = &mut pace_sleep, if armed[0].is_some() => self.pace(Instant::now()).await,
                () = &mut announce_sleep, if armed[1].is_some() => {
                    armed[1] = None;
                    if let (Some(at), Some(every)) = (self.next_announce, self.announce_every) {
                        self.next_announce = Some(at + every);
                        self.notify(Event::AnnounceDue).await;
                    }
                }
                () = &mut timer_sleep, if armed[2].is_some() => {
                    armed[2] = None;
                    if let Some((_, tag)) = self.timer.take() {
                        self.notify(Event::Timer(tag)).await;
                    }
                }
                r = caller_rtp.recv_from(buf_a) => {
                    if let Ok((n, src)) = r {
                        self.rtp_in(Side::A, &mut buf_a[..n], src).await;
                    }
                }
                r = recv_opt(agent_rtp, buf_b) => {
                    if let Ok((n, src)) = r {
                        self.rtp_in(Side::B, &mut buf_b[..n], src).await;
                    }
                }
                r = caller_rtcp.recv_from(buf_a_rtcp) => {
                    if let Ok((n, src)) = r {
                        self.rtcp_in(Side::A, &buf_a_rtcp[..n], src);
                    }
                }
                r = recv_opt(agent_rtcp, buf_b_rtcp) => {
                    if let Ok((n, src)) = r {
                        self.rtcp_in(Side::B, &buf_b_rtcp[..n], src);
                    }
                }
                _ = check.tick() => self.housekeeping(Instant::now()).await,
            }
        }
        self.finish_recording().await;
        self.stats.caller = self.caller.quality();
        self.stats.agent = self.agent.as_ref().map(Leg::quality);
        metrics::gauge!("ctid_media_sessions_active").decrement(1.0);
        metrics::counter!("ctid_media_packets_relayed_total").increment(self.stats.relayed);
        metrics::counter!("ctid_media_own_frames_total").increment(self.stats.own_frames);
        tracing::debug!(stats = ?self.stats, "media session ended");
        self.notify(Event::Ended(self.stats.clone())).await;
        self.stats
    }

    async fn command(&mut self, c: Command) {
        let now = Instant::now();
        let ptime = self.ptime();
        match c {
            Command::Background(p) => self.background = p.map(|p| p.looped(ptime)),
            Command::Play { prompts, tag } => {
                let n = prompts.len();
                if n == 0 {
                    self.notify(Event::PlayDone(tag)).await;
                }
                for (i, p) in prompts.into_iter().enumerate() {
                    let t = (i + 1 == n).then_some(tag);
                    self.prompts.push_back((p.cursor(ptime), t));
                }
            }
            Command::StopPrompts => self.prompts.clear(),
            Command::After { delay, tag } => self.timer = Some((now + delay, tag)),
            Command::AnnounceEvery(every) => {
                self.announce_every = every;
                self.next_announce = every.map(|e| now + e);
            }
            Command::Bridge { agent, recorder } => {
                let agent = match agent.moved_here() {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot move the agent's sockets to the media thread");
                        self.notify(Event::MediaTimeout(Side::B)).await;
                        return;
                    }
                };
                self.latches
                    .handle_remotes([self.caller.media.remote, agent.remote]);
                self.agent = Some(Leg::new(agent, now));
                self.mapping = None;
                self.caller.last_rtp = now;
                self.recording = recorder.map(|handle| Recording {
                    handle,
                    start: now,
                    anchor: [None, None],
                    pcm: Vec::with_capacity(480),
                });
            }
            Command::Unbridge => {
                self.finish_recording().await;
                if let Some(a) = self.agent.take() {
                    self.stats.agent = Some(a.quality());
                }
                self.latches
                    .handle_remotes([self.caller.media.remote, None]);
                self.mapping = None;
                self.caller.last_rtp = now;
            }
            Command::Hold { side, held } => {
                let leg = match side {
                    Side::A => Some(&mut self.caller),
                    Side::B => self.agent.as_mut(),
                };
                if let Some(l) = leg {
                    l.held = held;
                    l.last_rtp = now;
                    l.timed_out = false;
                }
            }
            Command::Remote { side, addr } => {
                match side {
                    Side::A => self.caller.media.remote = addr,
                    Side::B => {
                        if let Some(a) = self.agent.as_mut() {
                            a.media.remote = addr;
                        }
                    }
                }
                let b = self.agent.as_ref().and_then(|a| a.media.remote);
                self.latches.handle_remotes([self.caller.media.remote, b]);
            }
        }
        self.update_pacer(now);
    }

    /// Send the own-audio frames due at `now`; report prompts that finished.
    async fn pace(&mut self, now: Instant) {
        let Some(pacer) = self.pacer.as_mut() else {
            return;
        };
        crate::metrics::pace_lateness(
            now.saturating_duration_since(pacer.next_deadline())
                .as_secs_f64(),
        );
        let due = pacer.poll(now);
        let frame_len = super::prompt::frame_len(self.ptime());
        let mut finished = Vec::new();
        for _ in 0..due.skip {
            // Skipped audio: its time passes on the timestamp; the sequence number counts only
            // packets sent, so the peer sees no loss.
            finished.extend(self.next_samples());
            self.out.ts = self.out.ts.wrapping_add(frame_len as u32);
            self.stats.skipped_frames += 1;
        }
        for _ in 0..due.send {
            finished.extend(self.send_own_frame(now, frame_len));
        }
        if due.skip > 0 {
            metrics::counter!("ctid_media_frames_skipped_total").increment(due.skip);
        }
        for tag in finished {
            self.notify(Event::PlayDone(tag)).await;
        }
        if !self.own_audio() {
            self.pacer = None;
        }
    }

    /// The next frame of own audio into `self.frame` (encoded for the caller), or silence.
    fn next_samples(&mut self) -> Option<u32> {
        let law = self.caller.media.law;
        let mut done_tag = None;
        let mut filled = false;
        while let Some((cursor, tag)) = self.prompts.front_mut() {
            if let Some(f) = cursor.next_frame() {
                self.frame.resize(f.len(), 0);
                g711::encode_into(law, f, &mut self.frame);
                filled = true;
                break;
            }
            done_tag = done_tag.or(*tag);
            self.prompts.pop_front();
        }
        if !filled {
            if let Some(f) = self.background.as_mut().and_then(PromptCursor::next_frame) {
                self.frame.resize(f.len(), 0);
                g711::encode_into(law, f, &mut self.frame);
                filled = true;
            }
        }
        if !filled {
            let n = super::prompt::frame_len(self.ptime());
            self.frame.clear();
            self.frame.resize(n, law.silence());
        }
        done_tag
    }

    fn send_own_frame(&mut self, now: Instant, frame_len: usize) -> Option<u32> {
        let done = self.next_samples();
        let (seq, ts, marker) = self.out.next(frame_len as u32, now);
        let pt = self.caller.media.pt;
        let to = self.latches.dest_of(Side::A, Kind::Rtp);
        let mut pkt = [0u8; 12 + 480];
        let len = 12 + self.frame.len().min(480);
        write_header(&mut pkt, pt, marker, seq, ts, self.out.ssrc);
        pkt[12..len].copy_from_slice(&self.frame[..len - 12]);
        self.stats.own_frames += 1;
        self.out.packets += 1;
        self.out.octets += (len - 12) as u64;
        if let Some(to) = to {
            if self.caller.sock.rtp.try_send_to(&pkt[..len], to).is_err() {
                self.stats.dropped += 1;
            }
        }
        done
    }

    /// An RTP datagram from `side`'s peer.
    async fn rtp_in(&mut self, side: Side, buf: &mut [u8], src: SocketAddr) {
        let now = Instant::now();
        // RTCP multiplexed on the RTP port (RFC 5761).
        if buf.len() >= 2 && (192..=223).contains(&buf[1]) {
            return self.rtcp_in(side, buf, src);
        }
        if side == Side::B && self.agent.is_none() {
            return;
        }
        match self.latches.handle_packet(side, Kind::Rtp, buf, src, now) {
            Verdict::Invalid | Verdict::Stray => {
                self.stats.dropped += 1;
                return;
            }
            Verdict::Forward(_) | Verdict::NoDestination => {}
        }
        let Ok(r) = rtp_rs::RtpReader::new(buf) else {
            self.stats.dropped += 1;
            return;
        };
        let (pt, seq, ts, ssrc, marker) = (
            r.payload_type(),
            u16::from(r.sequence_number()),
            r.timestamp(),
            r.ssrc(),
            r.mark(),
        );
        let off = r.payload_offset();
        let plen = r.payload().len();
        let arrival = self.clock(now);
        let leg = match side {
            Side::A => &mut self.caller,
            Side::B => match self.agent.as_mut() {
                Some(l) => l,
                None => return,
            },
        };
        leg.last_rtp = now;
        leg.timed_out = false;
        let voice = pt == leg.media.pt;
        let te = leg.media.te_pt == Some(pt);
        if voice {
            leg.rx.on_packet(ssrc, seq, ts, arrival);
        }
        if te && side == Side::A {
            self.dtmf.handle_packet(ts, marker, &buf[off..off + plen]);
            while let Some(k) = self.dtmf.poll_key() {
                tracing::debug!(key = %k.key, "DTMF from the caller");
                self.notify(Event::Dtmf(k.key)).await;
            }
        }
        let Some(agent) = self.agent.as_ref() else {
            return;
        };
        let (from_law, to_law, to_pt, to_te) = match side {
            Side::A => (
                self.caller.media.law,
                agent.media.law,
                agent.media.pt,
                agent.media.te_pt,
            ),
            Side::B => (
                agent.media.law,
                self.caller.media.law,
                self.caller.media.pt,
                self.caller.media.te_pt,
            ),
        };
        let out_pt = if voice {
            if let Some(rec) = self.recording.as_mut() {
                rec.push(side, from_law, ts, &buf[off..off + plen], now);
            }
            if from_law != to_law {
                g711::transcode_in_place(from_law, to_law, &mut buf[off..off + plen]);
            }
            to_pt
        } else if te && self.config.relay_dtmf {
            match to_te {
                Some(p) => p,
                None => return,
            }
        } else {
            // Comfort noise, unknown payload types, consumed DTMF: not relayed.
            return;
        };
        buf[1] = (buf[1] & 0x80) | (out_pt & 0x7f);
        if side == Side::B {
            // Into ctid's own stream towards the caller.
            let m = match self.mapping {
                Some(m) if m.src_ssrc == ssrc => m,
                _ => {
                    self.out.resync(now);
                    let m = Mapping {
                        src_ssrc: ssrc,
                        seq_off: self.out.seq.wrapping_sub(seq),
                        ts_off: self.out.ts.wrapping_sub(ts),
                    };
                    self.mapping = Some(m);
                    m
                }
            };
            let (oseq, ots) = (seq.wrapping_add(m.seq_off), ts.wrapping_add(m.ts_off));
            if self.out.marker {
                buf[1] |= 0x80;
                self.out.marker = false;
            }
            buf[2..4].copy_from_slice(&oseq.to_be_bytes());
            buf[4..8].copy_from_slice(&ots.to_be_bytes());
            buf[8..12].copy_from_slice(&self.out.ssrc.to_be_bytes());
            if (oseq.wrapping_sub(self.out.seq) as i16) >= 0 {
                self.out.seq = oseq.wrapping_add(1);
                self.out.ts = ots.wrapping_add(plen as u32);
                self.out.last = Some((now, ots));
            }
            self.out.packets += 1;
            self.out.octets += plen as u64;
        }
        let to = self.latches.dest_of(side.other(), Kind::Rtp);
        let socket = match side.other() {
            Side::A => &self.caller.sock.rtp,
            Side::B => match self.agent.as_ref() {
                Some(a) => &a.sock.rtp,
                None => return,
            },
        };
        match to {
            Some(to) if socket.try_send_to(buf, to).is_ok() => self.stats.relayed += 1,
            _ => self.stats.dropped += 1,
        }
    }

    /// Samples (8 kHz) since the session started: the arrival clock for jitter.
    fn clock(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// An RTCP datagram from `side`'s peer: latched (for where ours go) and read, not relayed —
    /// each leg gets ctid's own reports about the stream ctid receives from it.
    fn rtcp_in(&mut self, side: Side, buf: &[u8], src: SocketAddr) {
        let now = Instant::now();
        if side == Side::B && self.agent.is_none() {
            return;
        }
        if matches!(
            self.latches.handle_packet(side, Kind::Rtcp, buf, src, now),
            Verdict::Invalid | Verdict::Stray
        ) {
            return;
        }
        if let Ok(info) = rtcp::parse_compound(buf) {
            let arrival = self.clock(now);
            let leg = match side {
                Side::A => Some(&mut self.caller),
                Side::B => self.agent.as_mut(),
            };
            if let (Some(leg), Some(ssrc), Some(si)) = (leg, info.sender_ssrc, &info.sender_info) {
                leg.rx.on_sender_report(ssrc, si.ntp, arrival);
            }
            tracing::trace!(?side, ?info, "RTCP from the peer");
        }
    }

    async fn housekeeping(&mut self, now: Instant) {
        if let Some(limit) = self.config.media_timeout {
            let mut expired = Vec::new();
            for (side, leg) in [
                (Side::A, Some(&mut self.caller)),
                (Side::B, self.agent.as_mut()),
            ] {
                let Some(leg) = leg else { continue };
                if !leg.held
                    && !leg.timed_out
                    && now.saturating_duration_since(leg.last_rtp) >= limit
                {
                    leg.timed_out = true;
                    expired.push(side);
                }
            }
            for side in expired {
                tracing::info!(?side, "no RTP within the media timeout");
                metrics::counter!("ctid_media_timeouts_total").increment(1);
                self.notify(Event::MediaTimeout(side)).await;
            }
        }
        for side in [Side::A, Side::B] {
            self.send_rtcp(side, now);
        }
    }

    fn send_rtcp(&mut self, side: Side, now: Instant) {
        let sending = self.out.packets > 0;
        let ssrc = self.out.ssrc;
        let (packets, octets) = (self.out.packets, self.out.octets);
        let rtp_ts = self.out.ts;
        let leg = match side {
            Side::A => &mut self.caller,
            Side::B => match self.agent.as_mut() {
                Some(l) => l,
                None => return,
            },
        };
        if now < leg.next_rtcp {
            return;
        }
        leg.next_rtcp = now + RTCP_INTERVAL;
        let sender = (side == Side::A && sending).then(|| {
            rtcp::SenderInfo::new(
                std::time::SystemTime::now(),
                rtp_ts,
                packets as u32,
                octets as u32,
            )
        });
        let block = leg
            .rx
            .report_block(now.saturating_duration_since(self.started));
        let packet =
            rtcp::build_compound(ssrc, sender.as_ref(), block.as_slice(), &self.config.cname);
        let socket = match side {
            Side::A => &self.caller.sock.rtcp,
            Side::B => match self.agent.as_ref() {
                Some(a) => &a.sock.rtcp,
                None => return,
            },
        };
        if let Some(to) = self.latches.dest_of(side, Kind::Rtcp) {
            let _ = socket.try_send_to(&packet, to);
        }
    }

    async fn finish_recording(&mut self) {
        if let Some(r) = self.recording.take() {
            let result = r.handle.finish_async().await;
            self.notify(Event::Recording(result)).await;
        }
    }
}

fn write_header(pkt: &mut [u8], pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) {
    pkt[0] = 0x80;
    pkt[1] = (pt & 0x7f) | if marker { 0x80 } else { 0 };
    pkt[2..4].copy_from_slice(&seq.to_be_bytes());
    pkt[4..8].copy_from_slice(&ts.to_be_bytes());
    pkt[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

async fn recv_opt(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}
