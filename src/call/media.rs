//! What a call hears and what the caller's keypad does: the call layer's side of the media
//! sessions ([`crate::media::session`]). Greeting, hold music and announcements (with the
//! caller's position) while queued; the bridge (and recording) when an agent answers; "press 1 to
//! be called back" while queued; the satisfaction survey after the agent hangs up; the media
//! timeout.

use super::{Call, CallManager};
use crate::acd::{CallId, Input};
use crate::config::Config;
use crate::media::g711::Codec;
use crate::media::prompts::{PositionPrompts, Prompts, QueueAudio};
use crate::media::recorder::Recorder;
use crate::media::sdp::Negotiated;
use crate::media::session::{
    start_session, Command as Media, Event as MediaEvent, LegMedia, Notice, SessionConfig,
    SessionStats, Side,
};
use crate::media::LegSockets;
use crate::store::CallOp;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

const TAG_GREETING: u32 = 1;
const TAG_ANNOUNCE: u32 = 2;
const TAG_CONFIRM: u32 = 3;
const TAG_SURVEY: u32 = 4;
const TAG_THANKS: u32 = 5;
const TIMER_SURVEY: u32 = 1;

/// Where a call stands beyond the ACD's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) enum Phase {
    /// Waiting in the queue, ringing seats, or bridged.
    #[default]
    Live,
    /// Asked for a callback: hearing the confirmation, then ctid hangs up.
    CallbackConfirm,
    /// The agent hung up; the caller is asked to rate the call.
    Survey,
    /// Scored (or not): hearing the thanks, then ctid hangs up.
    Thanks,
}

/// A queue's media settings.
#[derive(Debug, Clone, Default)]
pub(super) struct QueueMedia {
    pub audio: QueueAudio,
    pub announce_every: Option<Duration>,
    pub announce_position: bool,
    pub callback_key: Option<char>,
    pub survey: bool,
    pub survey_timeout: Duration,
    pub record: bool,
}

/// The media settings of the call layer.
#[derive(Debug, Clone, Default)]
pub struct MediaSettings {
    queues: HashMap<String, QueueMedia>,
    position: PositionPrompts,
    session: SessionConfig,
    recordings_dir: PathBuf,
}

impl MediaSettings {
    /// Load every prompt the config names (an unreadable file is an error naming it).
    pub fn from_config(cfg: &Config) -> Result<MediaSettings, String> {
        let prompts = Prompts::load(cfg).map_err(|e| e.to_string())?;
        let mut queues = HashMap::new();
        for q in &cfg.queues {
            queues.insert(
                q.name.clone(),
                QueueMedia {
                    audio: prompts.queues.get(&q.name).cloned().unwrap_or_default(),
                    announce_every: (q.announce_every_secs > 0)
                        .then(|| Duration::from_secs(q.announce_every_secs)),
                    announce_position: q.announce_position,
                    callback_key: q.callback_key.as_deref().and_then(|k| k.chars().next()),
                    survey: q.survey,
                    survey_timeout: Duration::from_secs(q.survey_timeout_secs.max(1)),
                    record: q.record,
                },
            );
        }
        Ok(MediaSettings {
            queues,
            position: prompts.position,
            session: SessionConfig {
                media_timeout: (cfg.media.media_timeout_secs > 0)
                    .then(|| Duration::from_secs(cfg.media.media_timeout_secs)),
                relay_dtmf: cfg.media.dtmf == "relay",
                ..SessionConfig::default()
            },
            recordings_dir: cfg.daemon.data_dir.join(&cfg.media.recordings_dir),
        })
    }

    /// Where recordings go (repaired at start after a crash).
    pub fn recordings_dir(&self) -> &std::path::Path {
        &self.recordings_dir
    }
}

/// A leg's negotiated media for the session.
pub(super) fn leg_media(sockets: LegSockets, n: &Negotiated) -> LegMedia {
    LegMedia {
        sockets,
        remote: n.remote,
        law: Codec::from_payload_type(n.law).unwrap_or(Codec::Pcmu),
        pt: n.codec,
        te_pt: n.dtmf,
        ptime: n.ptime,
    }
}

impl CallManager {
    fn queue_media(&self, call: &Call) -> QueueMedia {
        self.settings
            .media
            .queues
            .get(&call.queue)
            .cloned()
            .unwrap_or_default()
    }

    /// The caller was answered (or got early media): start its media session with the queue's
    /// greeting, hold music and announcements.
    pub(super) fn start_media(&mut self, id: CallId) {
        let notices = self.notices.clone();
        let session_cfg = self.settings.media.session.clone();
        let cancel = self.cancel.child_token();
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        let Some(sockets) = call.caller.sockets.take() else {
            return;
        };
        let leg = leg_media(sockets, &call.caller.negotiated);
        let session = start_session(id.0, leg, session_cfg, notices, cancel);
        let qm = self
            .settings
            .media
            .queues
            .get(&call.queue)
            .cloned()
            .unwrap_or_default();
        session.send(Media::Background(qm.audio.hold_music.clone()));
        let mut first: Vec<_> = qm.audio.greeting.iter().cloned().collect();
        if qm.callback_key.is_some() {
            first.extend(qm.audio.callback_offer.iter().cloned());
        }
        if !first.is_empty() {
            session.send(Media::Play {
                prompts: first,
                tag: TAG_GREETING,
            });
        }
        session.send(Media::AnnounceEvery(qm.announce_every));
        if !call.answer.confirmed() {
            // No media timeout on a caller that has no confirmed answer yet (183 only, or a 200
            // not yet ACKed): `caller` lifts this at its ACK.
            session.send(Media::Hold {
                side: Side::A,
                held: true,
            });
        }
        call.media = Some(session);
    }

    /// The agent answered: bridge its leg into the caller's session, recording if the queue
    /// says so.
    pub(super) async fn bridge_media(
        &mut self,
        id: CallId,
        sockets: Option<LegSockets>,
        answer: Option<Negotiated>,
    ) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let qm = self.queue_media(call);
        let (Some(sockets), Some(answer)) = (sockets, answer) else {
            return;
        };
        let recorder = if qm.record {
            // The local day of this input's wall time (the machine's zone, as before).
            let day = jiff::Timestamp::from_millisecond(self.now.wall_ms as i64)
                .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
                .to_zoned(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d")
                .to_string();
            let path = self
                .settings
                .media
                .recordings_dir
                .join(day)
                .join(format!("call-{}.wav", id.0));
            match Recorder::start(path.clone()) {
                Ok(h) => {
                    self.record(CallOp::Recording {
                        id: id.0,
                        path: Some(path.display().to_string()),
                        error: None,
                    })
                    .await;
                    Some(h)
                }
                Err(e) => {
                    tracing::error!(call = %id, error = %e, "cannot record the call; it goes on unrecorded");
                    metrics::counter!("ctid_recording_failures_total").increment(1);
                    self.record(CallOp::Recording {
                        id: id.0,
                        path: None,
                        error: Some(e.to_string()),
                    })
                    .await;
                    None
                }
            }
        } else {
            None
        };
        if let Some(media) = self.calls.get(&id).and_then(|c| c.media.as_ref()) {
            media.send(Media::StopPrompts);
            media.send(Media::AnnounceEvery(None));
            media.send(Media::Bridge {
                agent: Box::new(leg_media(sockets, &answer)),
                recorder,
            });
        }
    }

    /// The agent hung up on a bridged call: if the queue runs a survey and the caller is still
    /// there, keep the caller for it. Returns whether the survey started (then the caller's leg
    /// stays up and the call is kept until the survey ends).
    pub(super) fn start_survey(&mut self, id: CallId) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let qm = self.queue_media(call);
        if !qm.survey || call.caller_ended || call.media.is_none() {
            return false;
        }
        let Some(prompt) = qm.audio.survey_prompt.clone() else {
            return false;
        };
        let Some(call) = self.calls.get_mut(&id) else {
            return false;
        };
        call.phase = Phase::Survey;
        if let Some(m) = &call.media {
            m.send(Media::Unbridge);
            m.send(Media::Background(None));
            m.send(Media::Play {
                prompts: vec![prompt],
                tag: TAG_SURVEY,
            });
        }
        tracing::info!(call = %id, "satisfaction survey");
        true
    }

    /// A notice from a call's media session.
    pub(super) async fn media_notice(&mut self, n: Notice) {
        let id = CallId(n.call);
        match n.event {
            MediaEvent::Dtmf(key) => self.key_pressed(id, key).await,
            MediaEvent::PlayDone(tag) => self.play_done(id, tag).await,
            MediaEvent::AnnounceDue => self.announce(id),
            MediaEvent::Timer(TIMER_SURVEY) => {
                if self.calls.get(&id).map(|c| c.phase) == Some(Phase::Survey) {
                    tracing::info!(call = %id, "no survey answer");
                    self.event(id, "survey", None, Some("no answer".into()))
                        .await;
                    self.end_post_call(id).await;
                }
            }
            MediaEvent::Timer(_) => {}
            MediaEvent::MediaTimeout(side) => {
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                if call.phase != Phase::Live {
                    return self.end_post_call(id).await;
                }
                call.end_cause = Some("media_timeout");
                let leg = match side {
                    Side::A => "caller",
                    Side::B => "agent",
                };
                tracing::warn!(call = %id, leg, "media timeout: no RTP; ending the call");
                self.event(
                    id,
                    "media_timeout",
                    None,
                    Some(format!("no RTP from the {leg}")),
                )
                .await;
                self.hang_up(id, "ctid", Some("media_timeout".into()), None)
                    .await;
            }
            MediaEvent::Recording(r) => {
                if let Some(e) = r.error {
                    tracing::error!(call = %id, error = %e, path = %r.path.display(), "recording failed");
                    metrics::counter!("ctid_recording_failures_total").increment(1);
                    self.record(CallOp::Recording {
                        id: id.0,
                        path: None,
                        error: Some(e),
                    })
                    .await;
                }
            }
            MediaEvent::Ended(stats) => self.media_ended(id, stats).await,
        }
    }

    async fn media_ended(&mut self, id: CallId, s: SessionStats) {
        let us = |ms: f64| (ms * 1000.0).max(0.0) as u64;
        self.record(CallOp::Quality {
            id: id.0,
            caller_lost: s.caller.lost,
            caller_jitter_us: us(s.caller.jitter_ms),
            agent_lost: s.agent.map(|a| a.lost),
            agent_jitter_us: s.agent.map(|a| us(a.jitter_ms)),
        })
        .await;
    }

    /// A key from the caller (RFC 4733 or SIP INFO).
    pub(super) async fn key_pressed(&mut self, id: CallId, key: char) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        let qm = self.queue_media(call);
        match call.phase {
            Phase::Live if call.connected.is_none() && qm.callback_key == Some(key) => {
                self.callback_requested(id).await
            }
            Phase::Survey => {
                let Some(score) = key.to_digit(10).filter(|d| (1..=5).contains(d)) else {
                    return;
                };
                tracing::info!(call = %id, score, "survey answered");
                self.record(CallOp::Survey {
                    id: id.0,
                    score: score as u8,
                })
                .await;
                self.event(id, "survey", None, Some(score.to_string()))
                    .await;
                crate::metrics::survey_answered(&call_queue(self, id), score as u8);
                let Some(call) = self.calls.get_mut(&id) else {
                    return;
                };
                call.phase = Phase::Thanks;
                match (&call.media, qm.audio.survey_thanks) {
                    (Some(m), Some(p)) => {
                        m.send(Media::StopPrompts);
                        m.send(Media::Play {
                            prompts: vec![p],
                            tag: TAG_THANKS,
                        });
                    }
                    _ => self.end_post_call(id).await,
                }
            }
            _ => {}
        }
    }

    /// The caller pressed the callback key while queued: leave the queue with outcome
    /// `callback_requested`, store the request, confirm, hang up.
    async fn callback_requested(&mut self, id: CallId) {
        let position = self
            .engine
            .queue_position(id)
            .map(|(_, p)| u32::try_from(p).unwrap_or(u32::MAX));
        let Some(call) = self.calls.get_mut(&id) else {
            return;
        };
        call.end_cause = Some("callback_requested");
        let waited = self.now.since(call.entered);
        let entered_at_ms = self.now.wall_ms.saturating_sub(waited.as_millis() as u64);
        let op = CallOp::CallbackRequested {
            id: id.0,
            queue: call.queue.clone(),
            caller_number: call.caller_number.clone().unwrap_or_default(),
            caller_name: call.caller_name.clone(),
            entered_at_ms,
            position,
            requested_at_ms: self.now.wall_ms,
        };
        tracing::info!(call = %id, ?position, "caller asked to be called back");
        self.record(op).await;
        self.engine
            .handle(self.now.mono, Input::CallAbandoned { call: id });
    }

    /// After `left` recorded a callback request: confirm to the caller, then hang up.
    /// Returns whether the call is kept for the confirmation.
    pub(super) fn confirm_callback(&mut self, id: CallId) -> bool {
        let Some(call) = self.calls.get(&id) else {
            return false;
        };
        let qm = self.queue_media(call);
        let (Some(media), Some(prompt)) = (call.media.as_ref(), qm.audio.callback_confirm) else {
            return false;
        };
        if call.caller_ended {
            return false;
        }
        media.send(Media::StopPrompts);
        media.send(Media::AnnounceEvery(None));
        media.send(Media::Background(None));
        media.send(Media::Play {
            prompts: vec![prompt],
            tag: TAG_CONFIRM,
        });
        if let Some(call) = self.calls.get_mut(&id) {
            call.phase = Phase::CallbackConfirm;
        }
        true
    }

    async fn play_done(&mut self, id: CallId, tag: u32) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        match (tag, call.phase) {
            (TAG_CONFIRM, Phase::CallbackConfirm) | (TAG_THANKS, Phase::Thanks) => {
                self.end_post_call(id).await
            }
            (TAG_SURVEY, Phase::Survey) => {
                let qm = self.queue_media(call);
                if let Some(m) = &call.media {
                    m.send(Media::After {
                        delay: qm.survey_timeout,
                        tag: TIMER_SURVEY,
                    });
                }
            }
            _ => {}
        }
    }

    /// Time for the periodic announcement: the queue's message, the caller's position, the
    /// callback offer.
    fn announce(&mut self, id: CallId) {
        let Some(call) = self.calls.get(&id) else {
            return;
        };
        if call.phase != Phase::Live || call.connected.is_some() {
            return;
        }
        let qm = self.queue_media(call);
        let mut prompts: Vec<_> = qm.audio.announcement.iter().cloned().collect();
        if qm.announce_position {
            if let Some((_, pos)) = self.engine.queue_position(id) {
                let pos = u32::try_from(pos).unwrap_or(u32::MAX);
                prompts.extend(self.settings.media.position.announce(pos));
            }
        }
        if qm.callback_key.is_some() {
            prompts.extend(qm.audio.callback_offer.iter().cloned());
        }
        if let (false, Some(m)) = (prompts.is_empty(), &call.media) {
            m.send(Media::Play {
                prompts,
                tag: TAG_ANNOUNCE,
            });
        }
    }

    /// The end of a call's post-call part (survey, callback confirmation): BYE the caller (unless
    /// gone) and forget the call.
    pub(super) async fn end_post_call(&mut self, id: CallId) {
        self.bye_caller(id, None).await;
        self.drop_call(id);
    }
}

fn call_queue(m: &CallManager, id: CallId) -> String {
    m.calls
        .get(&id)
        .map(|c| c.queue.clone())
        .unwrap_or_default()
}
