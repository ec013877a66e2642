//! Media anchored at ctid: RTP/RTCP sockets and the relay between the two legs of a call.
//!
//! Owns: the RTP port range ([`PortPool`]: one even RTP port and its odd RTCP port per leg, given
//! back when the [`LegSockets`] are dropped) and the per-call media sessions ([`session`]: prompts,
//! recording, DTMF and the relay between the legs once bridged), with symmetric RTP (latching
//! onto where a peer really sends from, for PBXs and phones behind NAT) and plausibility checks
//! on every datagram (the sans-IO `latch` core).
//!
//! Must not know: SIP, SDP parsing, dialogs, queues or agents. The call layer reads addresses out
//! of SDP and hands them in as plain [`std::net::SocketAddr`]s.

mod batch;
pub mod dtmf;
pub mod g711;
mod latch;
pub mod pacer;
pub mod ports;
pub mod prompt;
pub mod prompts;
pub mod recorder;
pub mod rtcp;
pub mod sdp;
pub mod session;
pub mod threads;

pub use latch::Side;
pub use ports::{LegSockets, PortPool};

use thiserror::Error;

/// Errors at the media module boundary.
#[derive(Debug, Error)]
pub enum MediaError {
    /// The configured range holds no even RTP port followed by its odd RTCP port (or starts at 0).
    #[error("RTP port range {start}-{end} holds no even/odd port pair")]
    InvalidRange { start: u16, end: u16 },
    /// Every pair in the range is in use here or could not be bound (held by another process).
    #[error("no free RTP/RTCP port pair left in the range")]
    Exhausted,
    /// A socket could not be made at all — the process or the system is out of file descriptors
    /// or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM): no other port would do better, so the pool
    /// stops at the first such failure instead of trying the whole range.
    #[error("cannot open an RTP socket: {0} (raise the open-files limit, LimitNOFILE)")]
    Descriptors(#[source] std::io::Error),
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::ops::RangeInclusive;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A port range of `pairs` even/odd pairs on 127.0.0.1 that nobody held a moment ago. Tests in
    /// one process get disjoint ranges; ranges sit below Linux's ephemeral ports (32768+).
    pub(crate) fn free_range(pairs: u16) -> RangeInclusive<u16> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let span = u32::from(pairs) * 2;
        let lo = 20_000u32;
        let room = 32_000 - lo;
        let seed = std::process::id().wrapping_mul(2_654_435_761) % room;
        for _ in 0..200 {
            let offset = NEXT.fetch_add(span.max(64), Ordering::Relaxed);
            let start = lo + (seed + offset) % (room - span);
            let start = (start & !1) as u16;
            let all_free = (0..span as u16).all(|p| {
                std::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, start + p)).is_ok()
            });
            if all_free {
                return start..=start + span as u16 - 1;
            }
        }
        panic!("no free port range found");
    }
}
