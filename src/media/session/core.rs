//! The media session itself: every decision of a call's media, with time passed in (`now`) —
//! commands, received datagrams (one [`Batch`] at a time), and whatever is due (own frames,
//! announcements, timers, the media timeout, RTCP reports) in [`Session::handle_timeout`], with
//! [`Session::poll_timeout`] saying when that is next. What it reports waits in
//! [`Session::poll_output`] for the driver to send on.
//!
//! It sends on its sockets itself (non-blocking: a full socket buffer drops the packet and counts
//! it) but never waits, reads no clock and spawns nothing; the driver owns the task, the timer
//! and the notice channel.
//!
//! An idle call costs no wake-ups beyond its RTCP reports (every 5 s, both legs at once) and the
//! media-timeout check, which is armed for when the timeout could first expire and looked at
//! again only then (packets do not move a timer).

use super::super::batch::Batch;
use super::super::dtmf::DtmfDetector;
use super::super::g711;
use super::super::latch::{Kind, Latches};
use super::super::pacer::Pacer;
use super::super::prompt::PromptCursor;
use super::super::recorder::RecorderHandle;
use super::super::rtcp::RtpRxStats;
use super::super::LegSockets;
use super::stream::{write_header, Mapping, OutStream, Recording, SAMPLE_RATE};
use super::{Command, Event, LegMedia, LegQuality, SessionConfig, SessionStats, Side};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

mod relay;
use relay::{DropReason, Fate};

/// How often each leg gets an RTCP report (RFC 3550's 5 s minimum interval).
pub(super) const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// What the driver must do for the session, in order.
#[derive(Debug)]
pub(super) enum Output {
    Notify(Event),
    /// Finish this recording (waits for the writer), then report [`Event::Recording`].
    FinishRecording(RecorderHandle),
}

/// A leg's negotiated parameters (its sockets live in [`Leg::sock`]).
#[derive(Debug, Clone, Copy)]
struct Params {
    remote: Option<SocketAddr>,
    law: g711::Codec,
    pt: u8,
    te_pt: Option<u8>,
    ptime: u32,
}

struct Leg {
    /// Shared so the driver's receive futures need no borrow of the session.
    sock: Arc<LegSockets>,
    media: Params,
    rx: RtpRxStats,
    last_rtp: Instant,
    held: bool,
    timed_out: bool,
    /// When to look at the media timeout of this leg next.
    timeout_check: Option<Instant>,
}

impl Leg {
    fn new(m: LegMedia, now: Instant, limit: Option<Duration>) -> Leg {
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
            timeout_check: limit.map(|l| now + l),
        }
    }

    fn quality(&self) -> LegQuality {
        LegQuality {
            received: self.rx.received(),
            lost: self.rx.lost(),
            jitter_ms: self.rx.jitter_ms(),
        }
    }

    /// RTP was heard (or the leg was just set up, resumed): the timeout counts from `now`.
    fn alive(&mut self, now: Instant) {
        self.last_rtp = now;
        self.timed_out = false;
    }
}

pub(super) struct Session {
    started: Instant,
    /// The wall clock at `started` (for RTCP sender reports).
    wall_at_start: std::time::SystemTime,
    config: SessionConfig,
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
    next_rtcp: Instant,
    dtmf: DtmfDetector,
    recording: Option<Recording>,
    frame: Vec<u8>,
    stats: SessionStats,
    /// Drops by reason (indexed by [`DropReason`]), and what the metrics were last told.
    drops: [u64; 4],
    reported: (u64, [u64; 4]),
    output: VecDeque<Output>,
}

impl Session {
    /// A session for `caller`'s leg, started at `now` (`wall`: the wall clock then).
    pub fn new(
        caller: LegMedia,
        config: SessionConfig,
        now: Instant,
        wall: std::time::SystemTime,
    ) -> Session {
        let latches = Latches::new([caller.remote, None], config.latch_timeout);
        let caller = Leg::new(caller, now, config.media_timeout);
        Session {
            started: now,
            wall_at_start: wall,
            config,
            caller,
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
            next_rtcp: now + RTCP_INTERVAL,
            dtmf: DtmfDetector::new(),
            recording: None,
            frame: Vec::with_capacity(512),
            stats: SessionStats::default(),
            drops: [0; 4],
            reported: (0, [0; 4]),
            output: VecDeque::new(),
        }
    }

    /// The sockets to wait on: the caller's, and the agent's once bridged.
    pub fn sockets(&self) -> (Arc<LegSockets>, Option<Arc<LegSockets>>) {
        (
            Arc::clone(&self.caller.sock),
            self.agent.as_ref().map(|a| Arc::clone(&a.sock)),
        )
    }

    /// The next thing for the driver to do, in order.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.output.pop_front()
    }

    fn notify(&mut self, event: Event) {
        self.output.push_back(Output::Notify(event));
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

    /// When [`Session::handle_timeout`] has something to do next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let legs = [Some(&self.caller), self.agent.as_ref()];
        let timeouts = legs
            .into_iter()
            .flatten()
            .filter(|l| !l.held && !l.timed_out)
            .filter_map(|l| l.timeout_check);
        [
            self.pacer.as_ref().map(Pacer::next_deadline),
            self.next_announce.filter(|_| self.agent.is_none()),
            self.timer.map(|(at, _)| at),
            Some(self.next_rtcp),
        ]
        .into_iter()
        .flatten()
        .chain(timeouts)
        .min()
    }

    /// Do what is due at `now`: own frames, announcement, timer, media timeout, RTCP.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self
            .pacer
            .as_ref()
            .is_some_and(|p| p.next_deadline() <= now)
        {
            self.pace(now);
        }
        if self.agent.is_none() {
            if let (Some(at), Some(every)) = (self.next_announce, self.announce_every) {
                if at <= now {
                    self.next_announce = Some(at.max(now - every) + every);
                    self.notify(Event::AnnounceDue);
                }
            }
        }
        if let Some((at, tag)) = self.timer {
            if at <= now {
                self.timer = None;
                self.notify(Event::Timer(tag));
            }
        }
        self.check_media_timeout(now);
        if self.next_rtcp <= now {
            self.next_rtcp = now + RTCP_INTERVAL;
            for side in [Side::A, Side::B] {
                self.send_rtcp(side, now);
            }
        }
    }

    fn check_media_timeout(&mut self, now: Instant) {
        let Some(limit) = self.config.media_timeout else {
            return;
        };
        let mut expired = Vec::new();
        for (side, leg) in [
            (Side::A, Some(&mut self.caller)),
            (Side::B, self.agent.as_mut()),
        ] {
            let Some(leg) = leg else { continue };
            if leg.held || leg.timed_out || leg.timeout_check.is_none_or(|t| t > now) {
                continue;
            }
            let due = leg.last_rtp + limit;
            if due <= now {
                leg.timed_out = true;
                leg.timeout_check = None;
                expired.push(side);
            } else {
                leg.timeout_check = Some(due);
            }
        }
        for side in expired {
            tracing::info!(?side, "no RTP within the media timeout");
            metrics::counter!("ctid_media_timeouts_total").increment(1);
            self.notify(Event::MediaTimeout(side));
        }
    }

    pub fn handle_command(&mut self, c: Command, now: Instant) {
        let ptime = self.ptime();
        match c {
            Command::Background(p) => self.background = p.map(|p| p.looped(ptime)),
            Command::Play { prompts, tag } => {
                let n = prompts.len();
                if n == 0 {
                    self.notify(Event::PlayDone(tag));
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
                self.latches
                    .handle_remotes([self.caller.media.remote, agent.remote]);
                self.agent = Some(Leg::new(*agent, now, self.config.media_timeout));
                self.mapping = None;
                self.caller.alive(now);
                self.rearm_timeout(Side::A, now);
                self.recording = recorder.map(|handle| Recording::new(handle, now));
            }
            Command::Unbridge => {
                self.finish_recording();
                if let Some(a) = self.agent.take() {
                    self.stats.agent = Some(a.quality());
                }
                self.latches
                    .handle_remotes([self.caller.media.remote, None]);
                self.mapping = None;
                self.caller.alive(now);
                self.rearm_timeout(Side::A, now);
            }
            Command::Hold { side, held } => {
                if let Some(l) = self.leg_mut(side) {
                    l.held = held;
                    l.alive(now);
                }
                self.rearm_timeout(side, now);
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

    fn leg_mut(&mut self, side: Side) -> Option<&mut Leg> {
        match side {
            Side::A => Some(&mut self.caller),
            Side::B => self.agent.as_mut(),
        }
    }

    fn rearm_timeout(&mut self, side: Side, now: Instant) {
        let limit = self.config.media_timeout;
        if let Some(l) = self.leg_mut(side) {
            l.timeout_check = limit.map(|d| now + d);
        }
    }

    /// Send the own-audio frames due at `now`; report prompts that finished.
    fn pace(&mut self, now: Instant) {
        let Some(pacer) = self.pacer.as_mut() else {
            return;
        };
        crate::metrics::pace_lateness(
            now.saturating_duration_since(pacer.next_deadline())
                .as_secs_f64(),
        );
        let due = pacer.poll(now);
        let frame_len = super::super::prompt::frame_len(self.ptime());
        for _ in 0..due.skip {
            // Skipped audio: its time passes on the timestamp; the sequence number counts only
            // packets sent, so the peer sees no loss.
            if let Some(tag) = self.next_samples() {
                self.notify(Event::PlayDone(tag));
            }
            self.out.ts = self.out.ts.wrapping_add(frame_len as u32);
            self.stats.skipped_frames += 1;
        }
        for _ in 0..due.send {
            if let Some(tag) = self.send_own_frame(now, frame_len) {
                self.notify(Event::PlayDone(tag));
            }
        }
        if due.skip > 0 {
            metrics::counter!("ctid_media_frames_skipped_total").increment(due.skip);
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
            let n = super::super::prompt::frame_len(self.ptime());
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
                self.dropped(DropReason::SendFailed);
            }
        }
        done
    }

    /// The datagrams of `batch`, received on `side`'s `kind` socket at `now`: read, relayed
    /// (rewritten in place and sent on in one system call), or dropped and counted.
    pub fn handle_batch(&mut self, side: Side, kind: Kind, batch: &mut Batch, now: Instant) {
        for i in 0..batch.len() {
            let Some((buf, src)) = batch.datagram(i) else {
                continue;
            };
            // RTCP multiplexed on the RTP port (RFC 5761) is read like RTCP.
            let rtcp = kind == Kind::Rtcp || (buf.len() >= 2 && (192..=223).contains(&buf[1]));
            let dest = if rtcp {
                self.rtcp_in(side, buf, src, now);
                None
            } else {
                match self.rtp_in(side, buf, src, now) {
                    Fate::Relay(to) => Some(to),
                    Fate::Consumed => None,
                    Fate::Dropped(why) => {
                        self.dropped(why);
                        None
                    }
                }
            };
            batch.set_dest(i, dest);
        }
        let out = match side.other() {
            Side::A => Some(&self.caller.sock),
            Side::B => self.agent.as_ref().map(|a| &a.sock),
        };
        if let Some(sock) = out {
            let (sent, dropped) = batch.send(&sock.rtp);
            self.stats.relayed += sent;
            for _ in 0..dropped {
                self.dropped(DropReason::SendFailed);
            }
        }
    }
}
