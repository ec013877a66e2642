//! The per-datagram half of the session: an RTP packet from a leg (latch check, receive
//! statistics, DTMF, recording, transcoding and the header rewrite into ctid's stream towards
//! the caller), RTCP from a leg, ctid's own RTCP reports, and the end of the session.

use super::super::super::g711;
use super::super::super::latch::{Kind, Verdict};
use super::super::super::rtcp;
use super::{Event, Output, Session, Side};
use std::net::SocketAddr;
use tokio::time::Instant;

/// What becomes of an RTP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::media::session) enum Fate {
    /// Rewritten in place: send it to this address from the other leg's RTP socket.
    Relay(SocketAddr),
    /// Read and kept (DTMF consumed, comfort noise, not bridged): not relayed, not a loss.
    Consumed,
    /// Not plausible, or nowhere to send it: counted as dropped, for this reason.
    Dropped(DropReason),
}

/// Why a datagram was dropped (the `reason` label of `ctid_media_packets_dropped_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(in crate::media::session) enum DropReason {
    Invalid = 0,
    Stray = 1,
    NoDestination = 2,
    SendFailed = 3,
}

impl Session {
    /// An RTP datagram from `side`'s peer.
    pub(super) fn rtp_in(
        &mut self,
        side: Side,
        buf: &mut [u8],
        src: SocketAddr,
        now: Instant,
    ) -> Fate {
        if side == Side::B && self.agent.is_none() {
            return Fate::Consumed;
        }
        match self.latches.handle_packet(side, Kind::Rtp, buf, src, now) {
            Verdict::Invalid => return Fate::Dropped(DropReason::Invalid),
            Verdict::Stray => return Fate::Dropped(DropReason::Stray),
            Verdict::Forward(_) | Verdict::NoDestination => {}
        }
        let Ok(r) = rtp_rs::RtpReader::new(buf) else {
            return Fate::Dropped(DropReason::Invalid);
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
        let arrival = now.saturating_duration_since(self.started);
        let Some(leg) = self.leg_mut(side) else {
            return Fate::Consumed;
        };
        leg.alive(now);
        let voice = pt == leg.media.pt;
        let te = leg.media.te_pt == Some(pt);
        if voice {
            leg.rx.on_packet(ssrc, seq, ts, arrival);
        }
        if te && side == Side::A {
            self.dtmf.handle_packet(ts, marker, &buf[off..off + plen]);
            while let Some(k) = self.dtmf.poll_key() {
                tracing::debug!(key = %k.key, "DTMF from the caller");
                self.notify(Event::Dtmf(k.key));
            }
        }
        let Some(agent) = self.agent.as_ref() else {
            return Fate::Consumed;
        };
        let (from, to) = match side {
            Side::A => (&self.caller.media, &agent.media),
            Side::B => (&agent.media, &self.caller.media),
        };
        let (from_law, to_law, to_pt, to_te) = (from.law, to.law, to.pt, to.te_pt);
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
                None => return Fate::Consumed,
            }
        } else {
            // Comfort noise, unknown payload types, consumed DTMF: not relayed.
            return Fate::Consumed;
        };
        buf[1] = (buf[1] & 0x80) | (out_pt & 0x7f);
        if side == Side::B {
            // Into ctid's own stream towards the caller.
            self.out
                .relay(&mut self.mapping, buf, (ssrc, seq, ts, plen), now);
        }
        match self.latches.dest_of(side.other(), Kind::Rtp) {
            Some(to) => Fate::Relay(to),
            None => Fate::Dropped(DropReason::NoDestination),
        }
    }

    /// An RTCP datagram from `side`'s peer: latched (for where ours go) and read, not relayed —
    /// each leg gets ctid's own reports about the stream ctid receives from it.
    pub(super) fn rtcp_in(&mut self, side: Side, buf: &[u8], src: SocketAddr, now: Instant) {
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
            let arrival = now.saturating_duration_since(self.started);
            if let (Some(leg), Some(ssrc), Some(si)) =
                (self.leg_mut(side), info.sender_ssrc, &info.sender_info)
            {
                leg.rx.on_sender_report(ssrc, si.ntp, arrival);
            }
            tracing::trace!(?side, ?info, "RTCP from the peer");
        }
    }

    pub(super) fn send_rtcp(&mut self, side: Side, now: Instant) {
        let sending = self.out.packets > 0;
        let ssrc = self.out.ssrc;
        let (packets, octets) = (self.out.packets, self.out.octets);
        let rtp_ts = self.out.ts;
        let started = self.started;
        // The wall clock for the NTP field of a sender report (RFC 3550 §6.4.1), counted on from
        // the one the driver read at the start.
        let wall = self.wall_at_start + now.saturating_duration_since(started);
        let Some(leg) = self.leg_mut(side) else {
            return;
        };
        let sender = (side == Side::A && sending)
            .then(|| rtcp::SenderInfo::new(wall, rtp_ts, packets as u32, octets as u32));
        let block = leg.rx.report_block(now.saturating_duration_since(started));
        let sock = std::sync::Arc::clone(&leg.sock);
        let packet =
            rtcp::build_compound(ssrc, sender.as_ref(), block.as_slice(), &self.config.cname);
        if let Some(to) = self.latches.dest_of(side, Kind::Rtcp) {
            let _ = sock.rtcp.try_send_to(&packet, to);
        }
    }

    pub(super) fn finish_recording(&mut self) {
        if let Some(r) = self.recording.take() {
            self.output.push_back(Output::FinishRecording(r.handle));
        }
    }

    /// Count a dropped datagram.
    pub(super) fn dropped(&mut self, why: DropReason) {
        self.stats.dropped += 1;
        self.drops[why as usize] += 1;
    }

    /// Packets relayed and dropped (per [`crate::metrics::MEDIA_DROP_REASONS`]) since the last
    /// call, for the metrics.
    pub fn counter_deltas(&mut self) -> (u64, [u64; 4]) {
        let relayed = self.stats.relayed - self.reported.0;
        let mut drops = [0; 4];
        for (i, d) in drops.iter_mut().enumerate() {
            *d = self.drops[i] - self.reported.1[i];
        }
        self.reported = (self.stats.relayed, self.drops);
        (relayed, drops)
    }

    /// The session is over: the recording to finish (in [`Session::poll_output`]) and the final
    /// figures.
    pub fn end(&mut self) -> super::SessionStats {
        self.finish_recording();
        self.stats.caller = self.caller.quality();
        if let Some(a) = self.agent.as_ref() {
            self.stats.agent = Some(a.quality());
        }
        self.stats.clone()
    }
}
