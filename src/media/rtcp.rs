//! RTCP (RFC 3550 §6 and appendix A): receiver statistics of an RTP stream, and building/parsing
//! compound RTCP packets.
//!
//! Owns: [`RtpRxStats`] (sequence tracking with wraparound and the probation/restart rule of
//! A.1, loss of A.3, interarrival jitter of A.8), report blocks, SR/RR + SDES CNAME (+ BYE)
//! building, and [`parse_compound`], which reads what a peer reports about our stream (those two
//! in `rtcp/packet.rs`).
//!
//! Pure: no sockets and no clock. Arrival times are a [`Duration`] since any fixed origin the caller
//! picks for the stream (e.g. `Instant::now() - call_start`); wall-clock time for SR NTP
//! timestamps is passed in as a [`SystemTime`]. Nothing here panics on any input bytes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod packet;
pub use packet::{append_bye, build_compound, parse_compound, RtcpError, RtcpInfo, SenderInfo};

/// RTP clock rate of G.711 and telephone-event.
pub const CLOCK_RATE_8K: u32 = 8000;

/// A.1: packets in sequence needed before a new source is valid.
const MIN_SEQUENTIAL: u16 = 2;
/// A.1: the largest forward jump taken as loss rather than as a restart.
const MAX_DROPOUT: u16 = 3000;
/// A.1: the largest backward step taken as reordering rather than as a restart.
const MAX_MISORDER: u16 = 100;
/// Seconds from 1900-01-01 (NTP era 0) to 1970-01-01.
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

const PT_SR: u8 = 200;
const PT_RR: u8 = 201;
const PT_SDES: u8 = 202;
const PT_BYE: u8 = 203;
const SDES_END: u8 = 0;
const SDES_CNAME: u8 = 1;
/// Report blocks one SR/RR can carry (5-bit count).
const MAX_BLOCKS: usize = 31;

/// The 64-bit NTP timestamp (seconds since 1900 in the high 32 bits, fraction in the low 32) of
/// a wall-clock time. Times before 1970 give 0.
pub fn ntp_time(t: SystemTime) -> u64 {
    let Ok(since_unix) = t.duration_since(UNIX_EPOCH) else {
        return 0;
    };
    let secs = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Validation state of one RTP source (RFC 3550 A.1), plus its jitter (A.8).
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    /// Sequence number wraps seen (A.1 keeps them shifted; a plain count here).
    cycles: u64,
    /// Extended sequence number of the first packet counted (may be negative: see `update`).
    base: i64,
    /// A.1 `bad_seq`: the sequence number that confirms a restart (0..=65536).
    bad_seq: u32,
    probation: u16,
    received: u64,
    expected_prior: i64,
    received_prior: u64,
    /// Relative transit time of the previous packet (timestamp units); `None` before the first.
    transit: Option<u32>,
    /// A.8 estimate, timestamp units.
    jitter: f64,
    /// Middle 32 bits of the NTP time of the last SR from this source and when it arrived.
    last_sr: Option<(u32, Duration)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqVerdict {
    Counted,
    /// Still on probation (new source): not counted yet.
    Probation,
    /// A large jump not (yet) confirmed as a restart: ignored.
    Jump,
    /// The jump was confirmed by the next packet in sequence: the counters start over.
    Restarted,
}

impl Source {
    fn new(ssrc: u32, seq: u16) -> Source {
        Source {
            ssrc,
            max_seq: seq.wrapping_sub(1),
            cycles: 0,
            base: i64::from(seq),
            bad_seq: 0x1_0001,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            transit: None,
            jitter: 0.0,
            last_sr: None,
        }
    }

    /// A.1 `init_seq`.
    fn init_seq(&mut self, seq: u16) {
        self.base = i64::from(seq);
        self.max_seq = seq;
        self.bad_seq = 0x1_0001;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
    }

    /// A.1 `update_seq`. Unlike A.1, the packets of a successful probation are all counted (A.1
    /// counts only the last one): `base` then starts `MIN_SEQUENTIAL - 1` packets earlier.
    fn update(&mut self, seq: u16) -> SeqVerdict {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.base = i64::from(seq) - i64::from(MIN_SEQUENTIAL - 1);
                    self.received = u64::from(MIN_SEQUENTIAL);
                    return SeqVerdict::Counted;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return SeqVerdict::Probation;
        }
        let mut verdict = SeqVerdict::Counted;
        if udelta < MAX_DROPOUT {
            if seq < self.max_seq {
                self.cycles += 1; // wrapped
            }
            self.max_seq = seq;
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // A very large jump: a restart if the next packet follows it, else ignored.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
                verdict = SeqVerdict::Restarted;
            } else {
                self.bad_seq = (u32::from(seq) + 1) & 0xffff;
                return SeqVerdict::Jump;
            }
        } // else: duplicate or reordered packet, counted
        self.received += 1;
        verdict
    }

    fn extended_max(&self) -> u64 {
        self.cycles
            .wrapping_mul(1 << 16)
            .wrapping_add(u64::from(self.max_seq))
    }

    /// A.3 packets expected (0 while on probation).
    fn expected(&self) -> i64 {
        if self.probation > 0 {
            return 0;
        }
        i64::try_from(self.extended_max())
            .unwrap_or(i64::MAX)
            .saturating_sub(self.base)
            .saturating_add(1)
    }

    /// A.3 cumulative number of packets lost (negative with duplicates).
    fn lost(&self) -> i64 {
        let received = i64::try_from(self.received).unwrap_or(i64::MAX);
        self.expected().saturating_sub(received)
    }

    /// A.8: one packet's transit time update.
    fn update_jitter(&mut self, arrival_ts: u32, rtp_ts: u32) {
        let transit = arrival_ts.wrapping_sub(rtp_ts);
        if let Some(prev) = self.transit {
            let d = f64::from((transit.wrapping_sub(prev) as i32).unsigned_abs());
            self.jitter += (d - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }
}

/// Receiver statistics of one incoming RTP stream (RFC 3550 A.1, A.3, A.8), for the report
/// blocks we send and for the call's final quality figures.
///
/// A change of SSRC (a new source) or a sequence restart confirmed by the A.1 rule starts the
/// per-source counters over (with probation for a new SSRC); the call totals
/// ([`received`](Self::received), [`lost`](Self::lost)) keep what the earlier sources contributed.
#[derive(Debug, Clone)]
pub struct RtpRxStats {
    clock_rate: u32,
    source: Option<Source>,
    /// Totals of the sources and sequence runs before the current one.
    prior_received: u64,
    prior_lost: u64,
}

impl RtpRxStats {
    /// Statistics for a stream with this RTP clock rate (`CLOCK_RATE_8K` for G.711). A rate of 0 is
    /// taken as 8000.
    pub fn new(clock_rate: u32) -> RtpRxStats {
        RtpRxStats {
            clock_rate: if clock_rate == 0 {
                CLOCK_RATE_8K
            } else {
                clock_rate
            },
            source: None,
            prior_received: 0,
            prior_lost: 0,
        }
    }

    /// One RTP packet received: its SSRC, sequence number and timestamp, and its arrival time.
    /// Returns whether it was counted (not on probation, not an unconfirmed jump).
    pub fn on_packet(&mut self, ssrc: u32, seq: u16, rtp_ts: u32, arrival: Duration) -> bool {
        let arrival_ts = self.to_timestamp_units(arrival);
        let source = match self.source.take() {
            Some(s) if s.ssrc == ssrc => self.source.insert(s),
            old => {
                if let Some(old) = old {
                    self.retire(&old);
                }
                self.source.insert(Source::new(ssrc, seq))
            }
        };
        let retired_before_restart = (source.received, source.lost());
        match source.update(seq) {
            SeqVerdict::Jump => false,
            SeqVerdict::Probation => {
                source.update_jitter(arrival_ts, rtp_ts);
                false
            }
            SeqVerdict::Counted => {
                source.update_jitter(arrival_ts, rtp_ts);
                true
            }
            SeqVerdict::Restarted => {
                source.transit = None; // the timestamps restarted too, most likely
                source.update_jitter(arrival_ts, rtp_ts);
                let (received, lost) = retired_before_restart;
                self.prior_received = self.prior_received.saturating_add(received);
                self.prior_lost = self.prior_lost.saturating_add(lost.max(0).unsigned_abs());
                true
            }
        }
    }

    /// An SR from the source arrived: remembered for the LSR/DLSR fields of our next report block.
    /// `ntp` is the SR's 64-bit NTP timestamp. Ignored if `ssrc` is not the current source.
    pub fn on_sender_report(&mut self, ssrc: u32, ntp: u64, arrival: Duration) {
        if let Some(s) = self.source.as_mut().filter(|s| s.ssrc == ssrc) {
            s.last_sr = Some(((ntp >> 16) as u32, arrival));
        }
    }

    /// The report block about the current source at `now` (same origin as arrival times), or
    /// `None` before a source is valid. Starts a new interval for the fraction lost (A.3).
    pub fn report_block(&mut self, now: Duration) -> Option<ReportBlock> {
        let s = self.source.as_mut().filter(|s| s.probation == 0)?;
        let expected = s.expected();
        let expected_interval = expected.saturating_sub(s.expected_prior);
        s.expected_prior = expected;
        let received_interval = s.received.saturating_sub(s.received_prior);
        s.received_prior = s.received;
        let lost_interval =
            expected_interval.saturating_sub(i64::try_from(received_interval).unwrap_or(i64::MAX));
        let fraction_lost = if expected_interval <= 0 || lost_interval <= 0 {
            0
        } else {
            u8::try_from(lost_interval.saturating_mul(256) / expected_interval).unwrap_or(u8::MAX)
        };
        let (lsr, dlsr) = match s.last_sr {
            Some((lsr, at)) => {
                let delay = now.saturating_sub(at);
                let units = delay.as_nanos().saturating_mul(65_536) / 1_000_000_000;
                (lsr, u32::try_from(units).unwrap_or(u32::MAX))
            }
            None => (0, 0),
        };
        Some(ReportBlock {
            ssrc: s.ssrc,
            fraction_lost,
            cumulative_lost: s.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: s.extended_max() as u32,
            jitter: s.jitter as u32,
            lsr,
            dlsr,
        })
    }

    /// SSRC of the current source.
    pub fn ssrc(&self) -> Option<u32> {
        self.source.as_ref().map(|s| s.ssrc)
    }

    /// Extended highest sequence number received from the current source (cycles × 65536 + seq).
    pub fn extended_highest_seq(&self) -> Option<u64> {
        self.source.as_ref().map(Source::extended_max)
    }

    /// Packets expected from the current source (A.3).
    pub fn expected(&self) -> u64 {
        self.source
            .as_ref()
            .map_or(0, |s| s.expected().max(0).unsigned_abs())
    }

    /// Cumulative lost of the current source as RFC 3550 defines it (negative with duplicates).
    pub fn cumulative_lost(&self) -> i64 {
        self.source.as_ref().map_or(0, Source::lost)
    }

    /// Packets received over the whole call (duplicates included, as in RFC 3550).
    pub fn received(&self) -> u64 {
        let current = self.source.as_ref().map_or(0, |s| s.received);
        self.prior_received.saturating_add(current)
    }

    /// Packets lost over the whole call; each source's count clamped at 0.
    pub fn lost(&self) -> u64 {
        let current = self.cumulative_lost().max(0).unsigned_abs();
        self.prior_lost.saturating_add(current)
    }

    /// Interarrival jitter of the current source, timestamp units (A.8).
    pub fn jitter(&self) -> u32 {
        self.source.as_ref().map_or(0, |s| s.jitter as u32)
    }

    /// Interarrival jitter of the current source, milliseconds.
    pub fn jitter_ms(&self) -> f64 {
        self.source
            .as_ref()
            .map_or(0.0, |s| s.jitter * 1000.0 / f64::from(self.clock_rate))
    }

    fn retire(&mut self, old: &Source) {
        self.prior_received = self.prior_received.saturating_add(old.received);
        self.prior_lost = self
            .prior_lost
            .saturating_add(old.lost().max(0).unsigned_abs());
    }

    /// `arrival` in timestamp units, modulo 2^32 (only differences matter).
    fn to_timestamp_units(&self, arrival: Duration) -> u32 {
        (arrival.as_nanos().wrapping_mul(u128::from(self.clock_rate)) / 1_000_000_000) as u32
    }
}

/// One reception report block (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReportBlock {
    /// The source this block is about.
    pub ssrc: u32,
    /// Fraction lost since the previous report, in 1/256.
    pub fraction_lost: u8,
    /// Cumulative packets lost (24-bit signed on the wire).
    pub cumulative_lost: i32,
    /// Extended highest sequence number received.
    pub highest_seq: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP timestamp of the last SR received from the source (0: none).
    pub lsr: u32,
    /// Delay since that SR, in 1/65536 s.
    pub dlsr: u32,
}

impl ReportBlock {
    /// Fraction lost as a ratio 0.0–1.0.
    pub fn fraction_lost_ratio(&self) -> f64 {
        f64::from(self.fraction_lost) / 256.0
    }

    /// Cumulative lost, clamped at 0.
    pub fn lost(&self) -> u64 {
        u64::from(self.cumulative_lost.max(0).unsigned_abs())
    }

    /// Jitter in milliseconds for a stream of `clock_rate` (0 taken as 8000).
    pub fn jitter_ms(&self, clock_rate: u32) -> f64 {
        let rate = if clock_rate == 0 {
            CLOCK_RATE_8K
        } else {
            clock_rate
        };
        f64::from(self.jitter) * 1000.0 / f64::from(rate)
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.ssrc.to_be_bytes());
        let lost = self.cumulative_lost.clamp(-0x80_0000, 0x7f_ffff) as u32 & 0x00ff_ffff;
        out.extend_from_slice(&((u32::from(self.fraction_lost) << 24) | lost).to_be_bytes());
        out.extend_from_slice(&self.highest_seq.to_be_bytes());
        out.extend_from_slice(&self.jitter.to_be_bytes());
        out.extend_from_slice(&self.lsr.to_be_bytes());
        out.extend_from_slice(&self.dlsr.to_be_bytes());
    }

    /// The block at the start of `b`, if `b` holds one.
    fn read(b: &[u8]) -> Option<ReportBlock> {
        let word = |i: usize| -> Option<u32> {
            let w = b.get(i..i + 4)?;
            Some(u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
        };
        let lost_word = word(4)?;
        // Sign-extend the 24-bit cumulative lost.
        let cumulative_lost = ((lost_word << 8) as i32) >> 8;
        Some(ReportBlock {
            ssrc: word(0)?,
            fraction_lost: (lost_word >> 24) as u8,
            cumulative_lost,
            highest_seq: word(8)?,
            jitter: word(12)?,
            lsr: word(16)?,
            dlsr: word(20)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS20: Duration = Duration::from_millis(20);

    /// Feed packets `seqs` of `ssrc`, 20 ms apart, timestamps following the sequence numbers.
    fn feed(st: &mut RtpRxStats, ssrc: u32, seqs: impl IntoIterator<Item = u16>, t0: Duration) {
        for (i, seq) in seqs.into_iter().enumerate() {
            st.on_packet(ssrc, seq, u32::from(seq) * 160, t0 + MS20 * i as u32);
        }
    }

    #[test]
    fn ntp_timestamps() {
        let t = UNIX_EPOCH + Duration::from_millis(1500);
        assert_eq!(ntp_time(t), ((NTP_UNIX_OFFSET + 1) << 32) | 0x8000_0000);
        assert_eq!(ntp_time(UNIX_EPOCH - Duration::from_secs(1)), 0);
        let si = SenderInfo::new(t, 7, 8, 9);
        assert_eq!((si.ntp >> 32) as u32, 2_208_988_801);
    }

    #[test]
    fn in_order_stream() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        assert_eq!(st.report_block(Duration::ZERO), None);
        feed(&mut st, 7, 1000..1100, Duration::ZERO);
        assert_eq!(st.received(), 100); // the probation packets count too
        assert_eq!(st.expected(), 100);
        assert_eq!(st.lost(), 0);
        assert_eq!(st.cumulative_lost(), 0);
        assert_eq!(st.extended_highest_seq(), Some(1099));
        assert_eq!(st.jitter(), 0);
        let rb = st.report_block(Duration::from_secs(2)).unwrap();
        assert_eq!(
            rb,
            ReportBlock {
                ssrc: 7,
                highest_seq: 1099,
                ..ReportBlock::default()
            }
        );
    }

    #[test]
    fn loss_and_fraction_lost_per_interval() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        // 0..400, every 4th packet lost.
        feed(&mut st, 1, (0..400).filter(|s| s % 4 != 2), Duration::ZERO);
        assert_eq!(st.lost(), 100);
        assert_eq!(st.received(), 300);
        let rb = st.report_block(Duration::from_secs(8)).unwrap();
        assert_eq!(rb.fraction_lost, 64); // 25 %
        assert_eq!(rb.cumulative_lost, 100);
        assert_eq!(rb.lost(), 100);
        assert!((rb.fraction_lost_ratio() - 0.25).abs() < 1e-9);
        // Next interval without loss: fraction 0, cumulative unchanged.
        feed(&mut st, 1, 400..500, Duration::from_secs(8));
        let rb = st.report_block(Duration::from_secs(10)).unwrap();
        assert_eq!(rb.fraction_lost, 0);
        assert_eq!(rb.cumulative_lost, 100);
        assert_eq!(rb.highest_seq, 499);
    }

    #[test]
    fn sequence_wraparound() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        let seqs = (65_500u32..65_536 + 50).map(|s| s as u16);
        feed(&mut st, 1, seqs, Duration::ZERO);
        assert_eq!(st.extended_highest_seq(), Some(65_536 + 49));
        assert_eq!(st.received(), 86);
        assert_eq!(st.lost(), 0);
        let rb = st.report_block(Duration::ZERO).unwrap();
        assert_eq!(rb.highest_seq, 0x0001_0031);
    }

    #[test]
    fn duplicates_and_reordering() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        feed(&mut st, 1, [10, 11, 13, 12, 14, 14, 15], Duration::ZERO);
        assert_eq!(st.received(), 7);
        assert_eq!(st.expected(), 6);
        assert_eq!(st.cumulative_lost(), -1); // negative, as RFC 3550 allows
        assert_eq!(st.lost(), 0); // clamped
        let rb = st.report_block(Duration::ZERO).unwrap();
        assert_eq!(rb.cumulative_lost, -1);
        assert_eq!(rb.fraction_lost, 0);
        let mut bytes = Vec::new();
        rb.write(&mut bytes);
        assert_eq!(&bytes[4..8], &[0x00, 0xff, 0xff, 0xff]); // 24-bit two's complement
        assert_eq!(ReportBlock::read(&bytes), Some(rb));
    }

    #[test]
    fn big_jump_is_ignored_unless_confirmed() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        feed(&mut st, 1, 100..110, Duration::ZERO);
        // One stray packet far away, then the stream goes on: the stray is ignored.
        assert!(!st.on_packet(1, 50_000, 0, Duration::from_secs(1)));
        feed(&mut st, 1, 110..120, Duration::from_secs(1));
        assert_eq!((st.received(), st.lost()), (20, 0));
        assert_eq!(st.extended_highest_seq(), Some(119));
        // The sender restarts its sequence: two packets in sequence confirm it.
        assert!(!st.on_packet(1, 30_000, 0, Duration::from_secs(2)));
        assert!(st.on_packet(1, 30_001, 160, Duration::from_secs(2) + MS20));
        feed(&mut st, 1, 30_002..30_010, Duration::from_secs(3));
        assert_eq!(st.extended_highest_seq(), Some(30_009));
        assert_eq!(st.expected(), 9); // counted from the restart
        assert_eq!(st.received(), 29); // call total keeps the first run
        assert_eq!(st.lost(), 0);
    }

    #[test]
    fn new_ssrc_starts_over_with_probation() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        feed(&mut st, 1, (0..50).filter(|s| *s != 20), Duration::ZERO);
        assert_eq!((st.received(), st.lost()), (49, 1));
        // A new source (transfer, re-INVITE): first packet on probation.
        assert!(!st.on_packet(2, 5000, 0, Duration::from_secs(5)));
        assert_eq!(st.ssrc(), Some(2));
        assert_eq!(st.report_block(Duration::from_secs(5)), None);
        assert!(st.on_packet(2, 5001, 160, Duration::from_secs(5) + MS20));
        feed(&mut st, 2, 5002..5010, Duration::from_secs(6));
        assert_eq!(st.expected(), 10);
        assert_eq!(st.received(), 49 + 10);
        assert_eq!(st.lost(), 1);
        assert_eq!(st.report_block(Duration::from_secs(7)).unwrap().ssrc, 2);
        // Probation failing (out of sequence) starts it over: nothing counted yet.
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        assert!(!st.on_packet(3, 10, 0, Duration::ZERO));
        assert!(!st.on_packet(3, 40, 0, Duration::ZERO));
        assert_eq!((st.received(), st.expected()), (0, 0));
        assert!(st.on_packet(3, 41, 0, Duration::ZERO));
        assert_eq!((st.received(), st.expected()), (2, 2));
    }

    #[test]
    fn interarrival_jitter() {
        // Constant delay: no jitter.
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        feed(&mut st, 1, 0..100, Duration::from_millis(37));
        assert_eq!(st.jitter(), 0);
        // Every other packet 10 ms late: |D| = 80 units each time, J converges to 80 (10 ms).
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        for i in 0..300u32 {
            let late = if i % 2 == 1 { 10 } else { 0 };
            let arrival = Duration::from_millis(u64::from(i) * 20 + late);
            st.on_packet(1, i as u16, i * 160, arrival);
        }
        assert!((79..=80).contains(&st.jitter()), "jitter {}", st.jitter());
        assert!((st.jitter_ms() - 10.0).abs() < 0.2, "{}", st.jitter_ms());
        let rb = st.report_block(Duration::from_secs(6)).unwrap();
        assert!((rb.jitter_ms(8000) - 10.0).abs() < 0.2);
        // Timestamp wraparound does not disturb the transit differences.
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        for i in 0..100u32 {
            let ts = (u32::MAX - 800).wrapping_add(i * 160);
            st.on_packet(1, i as u16, ts, MS20 * i);
        }
        assert_eq!(st.jitter(), 0);
    }

    #[test]
    fn lsr_and_dlsr() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        feed(&mut st, 9, 0..10, Duration::ZERO);
        st.on_sender_report(8, 0xffff_ffff_ffff_ffff, Duration::from_secs(1)); // other SSRC
        assert_eq!(st.report_block(Duration::from_secs(1)).unwrap().lsr, 0);
        st.on_sender_report(9, 0x1234_5678_9abc_def0, Duration::from_secs(1));
        let rb = st.report_block(Duration::from_millis(2500)).unwrap();
        assert_eq!(rb.lsr, 0x5678_9abc);
        assert_eq!(rb.dlsr, 98_304); // 1.5 s in 1/65536 s
    }

    /// One hand-made SR + SDES compound, checked against RFC 3550 §6.4.1 and §6.5 byte by byte.
    #[test]
    fn sender_report_layout() {
        let sender = SenderInfo {
            ntp: 0x83aa_7e80_8000_0000,
            rtp_ts: 0x0000_1f40,
            packets: 100,
            octets: 16_000,
        };
        let block = ReportBlock {
            ssrc: 0xaabb_ccdd,
            fraction_lost: 0x40,
            cumulative_lost: 5,
            highest_seq: 0x0001_0010,
            jitter: 24,
            lsr: 0x7e80_8000,
            dlsr: 0x0001_0000,
        };
        let bytes = build_compound(0x1122_3344, Some(&sender), &[block], "ctid@h");
        #[rustfmt::skip]
        let want: [u8; 72] = [
            // SR header: V=2 P=0 RC=1, PT=200, length 12 (13 words)
            0x81, 0xc8, 0x00, 0x0c,
            0x11, 0x22, 0x33, 0x44, // SSRC of sender
            0x83, 0xaa, 0x7e, 0x80, // NTP timestamp, most significant word
            0x80, 0x00, 0x00, 0x00, // NTP timestamp, least significant word
            0x00, 0x00, 0x1f, 0x40, // RTP timestamp
            0x00, 0x00, 0x00, 0x64, // sender's packet count
            0x00, 0x00, 0x3e, 0x80, // sender's octet count
            0xaa, 0xbb, 0xcc, 0xdd, // SSRC_1
            0x40, 0x00, 0x00, 0x05, // fraction lost | cumulative lost
            0x00, 0x01, 0x00, 0x10, // extended highest sequence number
            0x00, 0x00, 0x00, 0x18, // interarrival jitter
            0x7e, 0x80, 0x80, 0x00, // LSR
            0x00, 0x01, 0x00, 0x00, // DLSR
            // SDES header: V=2 P=0 SC=1, PT=202, length 4 (5 words)
            0x81, 0xca, 0x00, 0x04,
            0x11, 0x22, 0x33, 0x44, // SSRC
            0x01, 0x06, b'c', b't', // CNAME, length 6
            b'i', b'd', b'@', b'h',
            0x00, 0x00, 0x00, 0x00, // END, padding to a word boundary
        ];
        assert_eq!(bytes, want);
        let info = parse_compound(&bytes).unwrap();
        assert_eq!(info.sender_ssrc, Some(0x1122_3344));
        assert_eq!(info.sender_info, Some(sender));
        assert_eq!(info.report_about(0xaabb_ccdd), Some(&block));
        assert_eq!(info.report_about(1), None);
        assert_eq!(info.cname.as_deref(), Some("ctid@h"));
    }

    #[test]
    fn round_trip_rr_bye_and_stats() {
        let mut st = RtpRxStats::new(CLOCK_RATE_8K);
        feed(
            &mut st,
            0xdead_beef,
            (0..200).filter(|s| s % 10 != 5),
            Duration::ZERO,
        );
        let block = st.report_block(Duration::from_secs(4)).unwrap();
        let mut bytes = build_compound(42, None, &[block], "agent-7@ctid.example");
        append_bye(&mut bytes, 42, Some("call ended"));
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(bytes[1], PT_RR);
        let info = parse_compound(&bytes).unwrap();
        assert_eq!(info.sender_ssrc, Some(42));
        assert_eq!(info.sender_info, None);
        assert_eq!(info.blocks, vec![block]);
        let peer = info.report_about(0xdead_beef).unwrap();
        assert_eq!(peer.lost(), 20);
        assert_eq!(peer.fraction_lost, 25); // 20 of 200: 0.1 × 256
        assert_eq!(info.cname.as_deref(), Some("agent-7@ctid.example"));
        assert_eq!(info.bye, vec![42]);
        // No report block yet (nothing received); a CNAME needing no padding after END.
        let bytes = build_compound(1, None, &[], "abcde");
        assert_eq!(bytes.len(), 8 + 16);
        assert_eq!(&bytes[8..12], &[0x81, 202, 0, 3]);
        let info = parse_compound(&bytes).unwrap();
        assert!(info.blocks.is_empty());
        assert_eq!(info.cname.as_deref(), Some("abcde"));
        // An over-long CNAME is cut at 255 bytes on a character boundary.
        let long = "é".repeat(200);
        let info = parse_compound(&build_compound(1, None, &[], &long)).unwrap();
        assert_eq!(info.cname.map(|c| c.len()), Some(254));
    }

    #[test]
    fn tolerated_packets() {
        let mut bytes = build_compound(5, None, &[], "x");
        // APP (204) and an unknown feedback type (205) are skipped.
        bytes.extend_from_slice(&[0x80, 204, 0x00, 0x02, 0, 0, 0, 5, b'n', b'a', b'm', b'e']);
        bytes.extend_from_slice(&[0x81, 205, 0x00, 0x02, 0, 0, 0, 5, 0, 0, 0, 9]);
        // Padding in the last packet: a BYE with 4 padding bytes.
        bytes.extend_from_slice(&[0xa1, 203, 0x00, 0x02, 0, 0, 0, 5, 0, 0, 0, 4]);
        let info = parse_compound(&bytes).unwrap();
        assert_eq!(info.bye, vec![5]);
        // Reduced-size RTCP (RFC 5506): a lone BYE.
        let info = parse_compound(&[0x81, 203, 0x00, 0x01, 0, 0, 0, 7]).unwrap();
        assert_eq!(info.bye, vec![7]);
        assert_eq!(info.sender_ssrc, None);
    }

    #[test]
    fn malformed_packets_are_rejected() {
        let good = build_compound(5, None, &[ReportBlock::default()], "x");
        assert!(parse_compound(&good).is_ok());
        assert_eq!(parse_compound(&[]), Err(RtcpError::Truncated));
        assert_eq!(parse_compound(&good[..3]), Err(RtcpError::Truncated));
        for cut in [4, 8, 20, 31, good.len() - 1] {
            assert!(parse_compound(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut v1 = good.clone();
        v1[0] = 0x41;
        assert_eq!(parse_compound(&v1), Err(RtcpError::BadVersion));
        let mut rtp = good.clone();
        rtp[1] = 0; // an RTP packet with PT 0, not RTCP
        assert_eq!(parse_compound(&rtp), Err(RtcpError::BadType(0)));
        // RC=2 but room for one block.
        let mut rc = good.clone();
        rc[0] = 0x82;
        assert_eq!(parse_compound(&rc), Err(RtcpError::Malformed("RR")));
        // Padding bit in the first of two packets.
        let mut pad = good.clone();
        pad[0] |= 0x20;
        assert_eq!(parse_compound(&pad), Err(RtcpError::Malformed("padding")));
        // Trailing bytes that are not a whole packet.
        let mut trailing = good.clone();
        trailing.extend_from_slice(&[0x80, 201]);
        assert_eq!(parse_compound(&trailing), Err(RtcpError::Truncated));
        // SDES item longer than its packet.
        let sdes = [0x81, 202, 0x00, 0x02, 0, 0, 0, 1, 1, 200, b'a', b'b'];
        assert_eq!(parse_compound(&sdes), Err(RtcpError::Malformed("SDES")));
        // SDES chunk without END.
        let sdes = [0x81, 202, 0x00, 0x02, 0, 0, 0, 1, 1, 2, b'a', b'b'];
        assert_eq!(parse_compound(&sdes), Err(RtcpError::Malformed("SDES")));
        // BYE with more SSRCs than bytes.
        let bye = [0x83, 203, 0x00, 0x01, 0, 0, 0, 1];
        assert_eq!(parse_compound(&bye), Err(RtcpError::Malformed("BYE")));
        // SR too short for its sender info.
        let sr = [0x80, 200, 0x00, 0x02, 0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(parse_compound(&sr), Err(RtcpError::Malformed("SR")));
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_compound(&bytes);
        }

        #[test]
        fn mutated_packets_never_panic(
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
            cut in any::<usize>(),
        ) {
            let mut st = RtpRxStats::new(CLOCK_RATE_8K);
            feed(&mut st, 3, 0..20, Duration::ZERO);
            let blocks: Vec<ReportBlock> = st.report_block(Duration::ZERO).into_iter().collect();
            let sender = SenderInfo::new(SystemTime::now(), 1, 2, 3);
            let mut bytes = build_compound(1, Some(&sender), &blocks, "someone@example.org");
            append_bye(&mut bytes, 1, Some("bye"));
            for (at, v) in flips {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            let n = bytes.len();
            let _ = parse_compound(&bytes[..cut % (n + 1)]);
            let _ = parse_compound(&bytes);
        }

        #[test]
        fn stats_never_panic_and_stay_consistent(
            packets in proptest::collection::vec(
                (0u32..3, any::<u16>(), any::<u32>(), any::<u64>()), 0..300),
            clock in any::<u32>(),
        ) {
            let mut st = RtpRxStats::new(clock);
            let mut fed = 0u64;
            for (ssrc, seq, ts, nanos) in packets {
                st.on_packet(ssrc, seq, ts, Duration::from_nanos(nanos));
                fed += 1;
                if seq % 7 == 0 {
                    let _ = st.report_block(Duration::from_nanos(nanos));
                    st.on_sender_report(ssrc, u64::from(ts) << 20, Duration::from_nanos(nanos));
                }
            }
            prop_assert!(st.received() <= fed);
            prop_assert!(st.jitter_ms().is_finite());
            let _ = (st.lost(), st.expected(), st.cumulative_lost());
        }
    }
}
