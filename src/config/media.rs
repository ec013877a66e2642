//! `[media]`: the RTP address and ports, media timeout, DTMF handling, prompt and recording
//! directories, media threads; with their checks, and the check that every prompt the queues
//! name loads (with `crate::media::prompt`, the WAV loader, a leaf that knows no config).
//!
//! Must not know: RTP, calls.

use super::Config;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `[media]`: where ctid anchors RTP.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Address RTP sockets bind to and that ctid announces in SDP.
    pub rtp_ip: IpAddr,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// No RTP from a leg (not on hold) for this long ends the call, cause `media_timeout`
    /// (0 = never).
    pub media_timeout_secs: u64,
    /// `relay`: the caller's RFC 4733 key presses reach the agent (IVRs behind the agent, card
    /// numbers); `consume`: ctid keeps them (nobody hears or sees the keys).
    pub dtmf: String,
    /// Where relative prompt file names of the queues are looked up (relative to the working
    /// directory, like `daemon.data_dir`). Holds the position prompts too (`position-intro.wav`,
    /// `position-outro.wav`, `numbers/<word>.wav`).
    pub prompts_dir: PathBuf,
    /// Where call recordings go; relative to `daemon.data_dir`.
    pub recordings_dir: PathBuf,
    /// Threads that run the media sessions (pacing, relay, recording feed), apart from SIP and
    /// call handling; 0 = one per CPU core.
    pub threads: usize,
    /// 1–99: the media threads run `SCHED_FIFO` at this priority (audio frames on time even
    /// when the machine is busy; needs CAP_SYS_NICE or `LimitRTPRIO`, falls back to nice −10
    /// with a warning); 0: nice −10.
    pub realtime_priority: u8,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            rtp_ip: IpAddr::from([127, 0, 0, 1]),
            rtp_port_min: 20_000,
            rtp_port_max: 29_999,
            media_timeout_secs: 30,
            dtmf: "relay".into(),
            prompts_dir: PathBuf::from("prompts/en"),
            recordings_dir: PathBuf::from("recordings"),
            threads: 0,
            realtime_priority: 10,
        }
    }
}

impl Media {
    /// A prompt file name from the config: absolute, or relative to `prompts_dir`.
    pub fn prompt_path(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.prompts_dir.join(p)
        }
    }
}

/// Checks of `[media]`.
pub(super) fn validate(m: &Media, add: &mut impl FnMut(&str, String)) {
    if m.rtp_port_min == 0 || m.rtp_port_max <= m.rtp_port_min {
        add(
            "media.rtp_port_min",
            "need 0 < rtp_port_min < rtp_port_max".into(),
        );
    }
    if m.dtmf != "relay" && m.dtmf != "consume" {
        add(
            "media.dtmf",
            format!("{:?}: expected \"relay\" or \"consume\"", m.dtmf),
        );
    }
    if m.threads > 64 {
        add("media.threads", "at most 64 (0 = one per CPU core)".into());
    }
    if m.realtime_priority > 99 {
        add(
            "media.realtime_priority",
            "1 to 99 (SCHED_FIFO priority), or 0 for none".into(),
        );
    }
}

/// Every prompt a queue names must load (exists, readable, a WAV ctid can convert): found by
/// `ctid check-config`, not by a caller hearing silence.
pub(super) fn validate_prompts(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let mut position_needed = false;
    for (i, q) in cfg.queues.iter().enumerate() {
        for (field, name) in q.prompt_fields() {
            if let Some(name) = name {
                if let Err(e) = crate::media::prompt::load(&cfg.media.prompt_path(name)) {
                    add(&format!("queues[{i}].{field}"), e.to_string());
                }
            }
        }
        if let Some(k) = &q.callback_key {
            if k.chars().count() != 1 || !k.chars().all(|c| "0123456789*#".contains(c)) {
                add(
                    &format!("queues[{i}].callback_key"),
                    format!("{k:?}: expected one key of 0-9, * or #"),
                );
            }
        }
        position_needed |= q.announce_position;
    }
    if position_needed {
        for name in crate::media::prompt::position_files() {
            if let Err(e) = crate::media::prompt::load(&cfg.media.prompt_path(&name)) {
                add(
                    "media.prompts_dir",
                    format!("position announcements need it: {e}"),
                );
                break;
            }
        }
    }
}
