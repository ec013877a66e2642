//! ctid's outgoing RTP stream towards the caller (one SSRC, numbering that keeps counting across
//! own audio, bridge and back), the mapping of a relayed stream onto it, and the placement of
//! recorded frames by RTP time. Pure: time is passed in.

use super::super::g711::{self, Codec};
use super::super::recorder::{Channel, RecorderHandle};
use super::Side;
use tokio::time::Instant;

pub(super) const SAMPLE_RATE: u64 = 8000;

/// ctid's outgoing stream towards the caller: one SSRC, continuous numbering.
#[derive(Debug)]
pub(super) struct OutStream {
    pub ssrc: u32,
    pub seq: u16,
    pub ts: u32,
    /// When the last packet left, and its timestamp: a later packet's timestamp is derived from
    /// the elapsed time, so the clock keeps running across pauses.
    pub last: Option<(Instant, u32)>,
    pub marker: bool,
    pub packets: u64,
    pub octets: u64,
}

impl OutStream {
    pub fn new() -> OutStream {
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
    pub fn resync(&mut self, now: Instant) {
        if let Some((at, ts)) = self.last {
            let samples = now.saturating_duration_since(at).as_millis() as u64 * 8;
            self.ts = ts.wrapping_add(samples as u32);
        }
        self.marker = true;
    }

    pub fn next(&mut self, samples: u32, now: Instant) -> (u16, u32, bool) {
        let r = (self.seq, self.ts, self.marker);
        self.last = Some((now, self.ts));
        self.seq = self.seq.wrapping_add(1);
        self.ts = self.ts.wrapping_add(samples);
        self.marker = false;
        r
    }

    /// Rewrite a relayed packet (`seq`, `ts` of its source `ssrc`, payload `plen` bytes) into
    /// this stream: ctid's SSRC, mapped numbering, the marker on the first packet after a switch.
    pub fn relay(
        &mut self,
        mapping: &mut Option<Mapping>,
        pkt: &mut [u8],
        (ssrc, seq, ts, plen): (u32, u16, u32, usize),
        now: Instant,
    ) {
        let m = match *mapping {
            Some(m) if m.src_ssrc == ssrc => m,
            _ => {
                self.resync(now);
                let m = Mapping {
                    src_ssrc: ssrc,
                    seq_off: self.seq.wrapping_sub(seq),
                    ts_off: self.ts.wrapping_sub(ts),
                };
                *mapping = Some(m);
                m
            }
        };
        let (oseq, ots) = (seq.wrapping_add(m.seq_off), ts.wrapping_add(m.ts_off));
        if self.marker {
            pkt[1] |= 0x80;
            self.marker = false;
        }
        pkt[2..4].copy_from_slice(&oseq.to_be_bytes());
        pkt[4..8].copy_from_slice(&ots.to_be_bytes());
        pkt[8..12].copy_from_slice(&self.ssrc.to_be_bytes());
        if (oseq.wrapping_sub(self.seq) as i16) >= 0 {
            self.seq = oseq.wrapping_add(1);
            self.ts = ots.wrapping_add(plen as u32);
            self.last = Some((now, ots));
        }
        self.packets += 1;
        self.octets += plen as u64;
    }
}

/// Maps a relayed stream's seq/timestamp onto [`OutStream`] numbering.
#[derive(Debug, Clone, Copy)]
pub(super) struct Mapping {
    src_ssrc: u32,
    seq_off: u16,
    ts_off: u32,
}

pub(super) fn write_header(pkt: &mut [u8], pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32) {
    pkt[0] = 0x80;
    pkt[1] = (pt & 0x7f) | if marker { 0x80 } else { 0 };
    pkt[2..4].copy_from_slice(&seq.to_be_bytes());
    pkt[4..8].copy_from_slice(&ts.to_be_bytes());
    pkt[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// A recording in progress: frames placed by RTP time, decoded, handed to the writer.
pub(super) struct Recording {
    pub handle: RecorderHandle,
    start: Instant,
    /// Per side: (first RTP timestamp, its sample position) to place frames by RTP time.
    anchor: [Option<(u32, u64)>; 2],
    pcm: Vec<i16>,
}

impl Recording {
    pub fn new(handle: RecorderHandle, start: Instant) -> Recording {
        Recording {
            handle,
            start,
            anchor: [None, None],
            pcm: Vec::with_capacity(480),
        }
    }

    /// Where a frame with RTP timestamp `ts` from `side`, arriving at `now`, belongs (8 kHz
    /// samples since the recording started).
    pub fn position(&mut self, side: Side, ts: u32, now: Instant) -> u64 {
        let arrival =
            now.saturating_duration_since(self.start).as_micros() as u64 * SAMPLE_RATE / 1_000_000;
        let i = side.index();
        match self.anchor[i] {
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
        }
    }

    pub fn push(&mut self, side: Side, law: Codec, ts: u32, payload: &[u8], now: Instant) {
        let pos = self.position(side, ts, now);
        self.pcm.resize(payload.len(), 0);
        g711::decode_into(law, payload, &mut self.pcm);
        let channel = match side {
            Side::A => Channel::Caller,
            Side::B => Channel::Agent,
        };
        self.handle.push(channel, pos, &self.pcm);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn own_frames_count_on_and_a_pause_moves_the_timestamp_by_the_time_passed() {
        let t0 = Instant::now();
        let mut out = OutStream::new();
        let (seq0, ts0, m0) = out.next(160, t0);
        assert!(m0, "the first packet is marked");
        let (seq1, ts1, m1) = out.next(160, t0 + Duration::from_millis(20));
        assert_eq!(
            (seq1, ts1, m1),
            (seq0.wrapping_add(1), ts0.wrapping_add(160), false)
        );
        // 1 s of silence, then a new spurt: 8000 samples later than the last packet, marked.
        out.resync(t0 + Duration::from_millis(1020));
        let (seq2, ts2, m2) = out.next(160, t0 + Duration::from_millis(1020));
        assert_eq!(
            (seq2, ts2, m2),
            (seq1.wrapping_add(1), ts1.wrapping_add(8000), true)
        );
    }

    #[test]
    fn a_relayed_stream_continues_ctids_numbering_and_a_new_source_is_marked() {
        let t0 = Instant::now();
        let mut out = OutStream::new();
        let (seq0, ts0, _) = out.next(160, t0);
        let mut mapping = None;
        let mut pkt = [0u8; 172];
        // The bridge's first packet, 20 ms after ctid's last own frame.
        let t1 = t0 + Duration::from_millis(20);
        write_header(&mut pkt, 0, false, 1000, 50_000, 0xabcd);
        out.relay(&mut mapping, &mut pkt, (0xabcd, 1000, 50_000, 160), t1);
        let read = |p: &[u8]| {
            (
                u16::from_be_bytes([p[2], p[3]]),
                u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
                u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
                p[1] & 0x80 != 0,
            )
        };
        assert_eq!(
            read(&pkt),
            (seq0.wrapping_add(1), ts0.wrapping_add(160), out.ssrc, true)
        );
        write_header(&mut pkt, 0, false, 1001, 50_160, 0xabcd);
        out.relay(&mut mapping, &mut pkt, (0xabcd, 1001, 50_160, 160), t1);
        assert_eq!(
            read(&pkt),
            (seq0.wrapping_add(2), ts0.wrapping_add(320), out.ssrc, false)
        );
        // A late, reordered packet is mapped but does not move the stream back.
        write_header(&mut pkt, 0, false, 999, 49_840, 0xabcd);
        out.relay(&mut mapping, &mut pkt, (0xabcd, 999, 49_840, 160), t1);
        assert_eq!(read(&pkt).0, seq0);
        assert_eq!(out.seq, seq0.wrapping_add(3));
        // Another SSRC (the agent's phone restarted its stream): remapped, marked.
        write_header(&mut pkt, 0, false, 7, 7, 0x1234);
        out.relay(&mut mapping, &mut pkt, (0x1234, 7, 7, 160), t1);
        let (seq, _, ssrc, marker) = read(&pkt);
        assert_eq!((seq, ssrc, marker), (seq0.wrapping_add(3), out.ssrc, true));
        assert_eq!(out.packets, 4);
    }

    #[test]
    fn recorded_frames_are_placed_by_rtp_time_and_resynchronised_on_jumps() {
        let t0 = Instant::now();
        let sink = crate::media::recorder::Recorder::start_with_sink(
            Default::default(),
            "/dev/null".into(),
            std::io::Cursor::new(Vec::new()),
        )
        .expect("recorder");
        let mut r = Recording::new(sink, t0);
        // First frame 100 ms after the start: placed by arrival (800 samples).
        assert_eq!(
            r.position(Side::A, 1_000, t0 + Duration::from_millis(100)),
            800
        );
        // The next by its timestamp, although it arrived late.
        assert_eq!(
            r.position(Side::A, 1_160, t0 + Duration::from_millis(150)),
            960
        );
        // The other side has its own anchor.
        assert_eq!(
            r.position(Side::B, 9, t0 + Duration::from_millis(200)),
            1600
        );
        // A jump of more than a second in RTP time: back to arrival time.
        assert_eq!(
            r.position(Side::A, 900_000, t0 + Duration::from_millis(300)),
            2400
        );
    }
}
