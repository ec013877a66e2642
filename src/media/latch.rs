//! The sans-IO core of the media sessions' relay: which datagrams are plausible RTP/RTCP, and
//! where each side's packets go (symmetric RTP, "latching"). No sockets, no clock: the caller passes `now`.
//!
//! Where to send a leg's packets starts as the address from its SDP and moves to the source
//! address of the first plausible packet that leg's peer sends us — the only address that reliably
//! reaches a phone or PBX behind NAT. Once latched, packets from any other source are dropped (a
//! stray or hostile sender can neither hijack nor inject into a live stream) until the latched
//! source has been silent for the latch timeout. A packet from the exact SDP address always
//! re-latches (the signalled address is trusted). RTP and RTCP latch independently; until RTCP
//! latches, it goes to the latched RTP address + 1 (before that, the SDP address + 1).

use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::Instant;

/// Largest datagram relayed. Receive buffers are one byte larger so a longer (truncated) one is
/// detected.
pub(super) const MAX_DATAGRAM: usize = 2048;

/// One of the two legs of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub(super) fn index(self) -> usize {
        match self {
            Side::A => 0,
            Side::B => 1,
        }
    }

    pub(super) fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Rtp,
    Rtcp,
}

/// Plausible RTP (RFC 3550 §5.1): version 2, fixed header and CSRC list present. RTCP multiplexed
/// on the RTP port (RFC 5761) passes too and is relayed as is.
fn plausible_rtp(p: &[u8]) -> bool {
    p.len() >= 12 && p[0] >> 6 == 2 && 12 + 4 * usize::from(p[0] & 0x0f) <= p.len()
}

/// Plausible RTCP (RFC 3550 §6.4, RFC 5761 §4): version 2, a header plus SSRC, type 192–223.
fn plausible_rtcp(p: &[u8]) -> bool {
    p.len() >= 8 && p[0] >> 6 == 2 && (192..=223).contains(&p[1])
}

/// What to do with one received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Forward(SocketAddr),
    Invalid,
    Stray,
    /// Accepted from its source, but the other side's address is unknown.
    NoDestination,
}

/// Where to send one kind of packet to one side's peer.
#[derive(Debug, Clone, Copy, Default)]
struct Dest {
    addr: Option<SocketAddr>,
    /// When the latest packet from `addr` arrived; `None` until one has (not latched yet).
    last_seen: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Peer {
    /// The RTP address from SDP (already filtered by [`usable`]).
    sdp: Option<SocketAddr>,
    rtp: Dest,
    rtcp: Dest,
}

impl Peer {
    fn new(sdp: Option<SocketAddr>) -> Peer {
        Peer {
            sdp,
            rtp: Dest {
                addr: sdp,
                last_seen: None,
            },
            rtcp: Dest {
                addr: sdp.and_then(plus_one),
                last_seen: None,
            },
        }
    }
}

fn plus_one(a: SocketAddr) -> Option<SocketAddr> {
    a.port().checked_add(1).map(|p| SocketAddr::new(a.ip(), p))
}

/// The sans-IO latching state of a relay: `peers[i]` is where side `i`'s packets go.
#[derive(Debug)]
pub(super) struct Latches {
    peers: [Peer; 2],
    timeout: Duration,
}

impl Latches {
    pub(super) fn new(sdp: [Option<SocketAddr>; 2], timeout: Duration) -> Latches {
        Latches {
            peers: [Peer::new(sdp[0]), Peer::new(sdp[1])],
            timeout,
        }
    }

    /// New SDP addresses; a side whose address changed starts over, unlatched.
    pub(super) fn handle_remotes(&mut self, sdp: [Option<SocketAddr>; 2]) {
        for (peer, new) in self.peers.iter_mut().zip(sdp) {
            if peer.sdp != new {
                tracing::debug!(old = ?peer.sdp, new = ?new, "remote media address changed");
                *peer = Peer::new(new);
            }
        }
    }

    /// A datagram of `kind` arrived from `src` on `side`'s socket at `now`.
    pub(super) fn handle_packet(
        &mut self,
        side: Side,
        kind: Kind,
        packet: &[u8],
        src: SocketAddr,
        now: Instant,
    ) -> Verdict {
        let valid = packet.len() <= MAX_DATAGRAM
            && match kind {
                Kind::Rtp => plausible_rtp(packet),
                Kind::Rtcp => plausible_rtcp(packet),
            };
        if !valid {
            return Verdict::Invalid;
        }
        let timeout = self.timeout;
        let peer = &mut self.peers[side.index()];
        let (dest, signalled) = match kind {
            Kind::Rtp => (&mut peer.rtp, peer.sdp),
            Kind::Rtcp => (&mut peer.rtcp, peer.sdp.and_then(plus_one)),
        };
        let same = dest.addr == Some(src);
        let accept = match dest.last_seen {
            None => true,
            Some(_) if same => true,
            Some(seen) => now.saturating_duration_since(seen) >= timeout || signalled == Some(src),
        };
        if !accept {
            tracing::trace!(?side, ?kind, %src, "stray packet dropped");
            return Verdict::Stray;
        }
        if !same || dest.last_seen.is_none() {
            tracing::debug!(?side, ?kind, %src, "latched");
        }
        dest.addr = Some(src);
        dest.last_seen = Some(now);
        if kind == Kind::Rtp && peer.rtcp.last_seen.is_none() {
            peer.rtcp.addr = plus_one(src);
        }
        match self.peers[side.other().index()].dest(kind).addr {
            Some(to) => Verdict::Forward(to),
            None => Verdict::NoDestination,
        }
    }
}

impl Latches {
    /// Where `side`'s peer currently gets packets of `kind` (latched source, else from SDP).
    pub(super) fn dest_of(&self, side: Side, kind: Kind) -> Option<SocketAddr> {
        self.peers[side.index()].dest(kind).addr
    }
}

impl Peer {
    fn dest(&self, kind: Kind) -> &Dest {
        match kind {
            Kind::Rtp => &self.rtp,
            Kind::Rtcp => &self.rtcp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([192, 0, 2, 1], port))
    }

    const RTP: [u8; 16] = [0x80, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7, 1, 2, 3, 4];
    const RTCP_RR: [u8; 8] = [0x80, 201, 0, 1, 0, 0, 0, 7];
    const T: Duration = Duration::from_secs(2);

    #[test]
    fn plausibility() {
        assert!(plausible_rtp(&RTP));
        assert!(plausible_rtp(&RTP[..12]));
        assert!(!plausible_rtp(&RTP[..11]));
        assert!(!plausible_rtp(&[]));
        let mut v1 = RTP;
        v1[0] = 0x40;
        assert!(!plausible_rtp(&v1));
        let mut csrc = RTP;
        csrc[0] = 0x81; // one CSRC: 16 bytes needed, 16 present
        assert!(plausible_rtp(&csrc));
        csrc[0] = 0x82; // two CSRCs: 20 bytes needed
        assert!(!plausible_rtp(&csrc));
        assert!(plausible_rtcp(&RTCP_RR));
        assert!(!plausible_rtcp(&RTCP_RR[..7]));
        assert!(!plausible_rtcp(&RTP)); // PT byte 0 is not RTCP
        let mut bad = RTCP_RR;
        bad[0] = 0x00;
        assert!(!plausible_rtcp(&bad));
    }

    #[test]
    fn first_packet_latches_and_strays_are_dropped() {
        let t0 = Instant::now();
        let mut l = Latches::new([Some(addr(4000)), Some(addr(5000))], T);
        // Phone A is behind NAT: it sends from 7000, not its SDP port 4000.
        let v = l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t0);
        assert_eq!(v, Verdict::Forward(addr(5000)));
        let v = l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(5000), t0);
        assert_eq!(v, Verdict::Forward(addr(7000)));
        // A stray source on leg A is dropped while 7000 is live, and does not move the latch.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(9999), t1),
            Verdict::Stray
        );
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(5000), t1),
            Verdict::Forward(addr(7000))
        );
        // 1.9 s after 7000's last packet: still stray.
        let t2 = t1 + Duration::from_millis(1900);
        l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t1);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(9999), t2),
            Verdict::Stray
        );
        // After 2 s of silence from 7000, the new source (NAT rebinding) takes over.
        let t3 = t1 + T;
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(9999), t3),
            Verdict::Forward(addr(5000))
        );
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(5000), t3),
            Verdict::Forward(addr(9999))
        );
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t3),
            Verdict::Stray
        );
    }

    #[test]
    fn sdp_address_always_relatches() {
        let t0 = Instant::now();
        let mut l = Latches::new([Some(addr(4000)), Some(addr(5000))], T);
        // Someone else got in first…
        l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(6666), t0);
        // …but the signalled address wins at once.
        l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(4000), t0);
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(5000), t0),
            Verdict::Forward(addr(4000))
        );
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(6666), t0),
            Verdict::Stray
        );
    }

    #[test]
    fn invalid_packets_neither_latch_nor_forward() {
        let t0 = Instant::now();
        let mut l = Latches::new([Some(addr(4000)), Some(addr(5000))], T);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, b"hello", addr(6666), t0),
            Verdict::Invalid
        );
        assert_eq!(
            l.handle_packet(
                Side::A,
                Kind::Rtp,
                &[0x80; MAX_DATAGRAM + 1],
                addr(6666),
                t0
            ),
            Verdict::Invalid
        );
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtcp, &RTP, addr(6666), t0),
            Verdict::Invalid
        );
        // Nothing latched: B's packets still go to A's SDP address.
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(5000), t0),
            Verdict::Forward(addr(4000))
        );
    }

    #[test]
    fn unknown_destination_and_rtcp_following_rtp() {
        let t0 = Instant::now();
        let mut l = Latches::new([None, None], T);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t0),
            Verdict::NoDestination
        );
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtcp, &RTCP_RR, addr(5001), t0),
            Verdict::Forward(addr(7001)) // A's RTP latched at 7000: RTCP guessed at 7001
        );
        // A's RTCP really comes from 7100 (NAT): it latches independently of RTP.
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtcp, &RTCP_RR, addr(7100), t0),
            Verdict::Forward(addr(5001))
        );
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtcp, &RTCP_RR, addr(5001), t0),
            Verdict::Forward(addr(7100))
        );
        // A later RTP latch does not move a latched RTCP destination.
        let t1 = t0 + T;
        l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7200), t1);
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtcp, &RTCP_RR, addr(5001), t1),
            Verdict::Forward(addr(7100))
        );
    }

    #[test]
    fn new_remote_unlatches_only_that_side() {
        let t0 = Instant::now();
        let mut l = Latches::new([Some(addr(4000)), Some(addr(5000))], T);
        l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t0);
        l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(8000), t0);
        // Same addresses again (session refresh): nothing changes.
        l.handle_remotes([Some(addr(4000)), Some(addr(5000))]);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t0),
            Verdict::Forward(addr(8000))
        );
        // B moved (re-INVITE): B's packets now go to the new address, A stays latched.
        l.handle_remotes([Some(addr(4000)), Some(addr(5500))]);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t0),
            Verdict::Forward(addr(5500))
        );
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtcp, &RTCP_RR, addr(7001), t0),
            Verdict::Forward(addr(5501))
        );
        assert_eq!(
            l.handle_packet(Side::B, Kind::Rtp, &RTP, addr(8000), t0),
            Verdict::Forward(addr(7000)) // B unlatched: its next source latches at once
        );
        // Hold with c=0.0.0.0: nothing is sent to B until it sends again.
        l.handle_remotes([Some(addr(4000)), None]);
        assert_eq!(
            l.handle_packet(Side::A, Kind::Rtp, &RTP, addr(7000), t0),
            Verdict::NoDestination
        );
    }
}
