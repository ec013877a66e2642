//! DTMF key presses: RFC 4733 telephone-events carried in RTP, and SIP INFO bodies.
//!
//! Owns: the 4-byte telephone-event payload ([`TelephoneEvent`]), the key-press detector fed with
//! telephone-event packets ([`DtmfDetector`]), and the two INFO body formats phones and PBXs send
//! ([`parse_info`]). Pure: no sockets, no clock, no SIP dialogs; nothing here panics on any bytes.
//!
//! # When the detector reports a key
//!
//! All packets of one RFC 4733 event carry the RTP timestamp of the event's start; that timestamp
//! identifies the key press. A key is reported exactly once, at the first of these moments:
//! 1. the first packet of the event with the end bit arrives (the usual three retransmitted end
//!    packets and any late start/update packets of that timestamp are then ignored);
//! 2. a packet of a *newer* event arrives while the event has not ended — its end packets were
//!    lost, so the key is reported as interrupted (`ended: false`);
//! 3. a packet of an *earlier* event never seen before arrives (its packets were reordered behind
//!    a newer event's): a newer event has begun, so it is over and reported at once — unless a key
//!    after it was already reported, in which case it is dropped rather than reported out of order;
//! 4. [`DtmfDetector::flush`] (or [`DtmfDetector::reset`]) is called while an event is open.
//!
//! "Earlier" means at most 8 s (64 000 timestamp units) before, in RFC 1982 serial order; anything
//! else is newer (a sender whose timestamps jump backwards has started a new RTP stream). A long
//! event split into segments (RFC 4733 §2.5.1.3: duration saturated at 0xFFFF, the next segment
//! continues the same key at timestamp + 0xFFFF without marker) stays one key press.

use std::collections::VecDeque;

/// Largest event duration in a packet; a longer event is sent in segments.
const MAX_SEGMENT: u32 = 0xFFFF;
/// How many recent event timestamps the detector remembers to recognise duplicates.
const HISTORY: usize = 16;

/// Why a telephone-event payload was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DtmfError {
    /// Fewer than the 4 bytes of one event block.
    #[error("telephone-event payload of {0} bytes, 4 needed")]
    Truncated(usize),
}

/// One RFC 4733 §2.3 event block: event code, end bit, volume (−dBm0) and duration (timestamp
/// units, 8 kHz for DTMF). The R bit is ignored on reception and sent as 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    /// 0–63 (power level below 0 dBm0); higher bits are dropped when building.
    pub volume: u8,
    pub duration: u16,
}

impl TelephoneEvent {
    /// Parse the first event block of a payload. Trailing bytes (further blocks, padding some
    /// senders add) are ignored.
    pub fn parse(payload: &[u8]) -> Result<TelephoneEvent, DtmfError> {
        match payload {
            [event, flags, d0, d1, ..] => Ok(TelephoneEvent {
                event: *event,
                end: flags & 0x80 != 0,
                volume: flags & 0x3f,
                duration: u16::from_be_bytes([*d0, *d1]),
            }),
            _ => Err(DtmfError::Truncated(payload.len())),
        }
    }

    /// The 4-byte payload.
    pub fn to_bytes(&self) -> [u8; 4] {
        let [d0, d1] = self.duration.to_be_bytes();
        let flags = (u8::from(self.end) << 7) | (self.volume & 0x3f);
        [self.event, flags, d0, d1]
    }

    /// The DTMF key of this event, if it is one (events 0–15).
    pub fn key(&self) -> Option<char> {
        event_to_char(self.event)
    }
}

/// The DTMF key of an RFC 4733 §3.2 event code: 0–9, 10 = `*`, 11 = `#`, 12–15 = `A`–`D`.
pub fn event_to_char(event: u8) -> Option<char> {
    match event {
        0..=9 => Some(char::from(b'0' + event)),
        10 => Some('*'),
        11 => Some('#'),
        12..=15 => Some(char::from(b'A' + (event - 12))),
        _ => None,
    }
}

/// The event code of a DTMF key (`a`–`d` accepted as `A`–`D`).
pub fn char_to_event(key: char) -> Option<u8> {
    match key {
        '0'..='9' => Some(key as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(key as u8 - b'A' + 12),
        'a'..='d' => Some(key as u8 - b'a' + 12),
        _ => None,
    }
}

/// A key press found by the [`DtmfDetector`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfKey {
    pub key: char,
    /// RTP timestamp of the event's start (of its first segment for a segmented event).
    pub timestamp: u32,
    /// Duration known when reported, in timestamp units (all segments together).
    pub duration: u32,
    /// `false` when reported without an end packet (interrupted or flushed).
    pub ended: bool,
}

/// The event currently being received (not reported yet).
#[derive(Debug, Clone, Copy)]
struct Open {
    key: char,
    /// Timestamp of the latest segment.
    ts: u32,
    /// Timestamp of the first segment.
    first_ts: u32,
    /// Duration of the segments before the latest one.
    prior: u32,
    /// Largest duration seen in the latest segment.
    duration: u16,
}

impl Open {
    fn new(ts: u32, key: char, duration: u16) -> Open {
        Open {
            key,
            ts,
            first_ts: ts,
            prior: 0,
            duration,
        }
    }

    fn key(&self, ended: bool) -> DtmfKey {
        DtmfKey {
            key: self.key,
            timestamp: self.first_ts,
            duration: self.prior.saturating_add(u32::from(self.duration)),
            ended,
        }
    }
}

/// Where a timestamp lies relative to a reference one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    Same,
    /// Later (RFC 1982 serial order), or so much earlier that the sender's timestamps must have
    /// started over (new RTP stream after a re-INVITE or transfer).
    Newer,
    /// Earlier, within [`REORDER_WINDOW`]: a reordered or late packet.
    Late,
}

/// How far back (timestamp units, 8 s at 8 kHz) a packet is taken as late rather than as the start
/// of a new timestamp line.
const REORDER_WINDOW: u32 = 64_000;

fn order(ts: u32, reference: u32) -> Order {
    let back = reference.wrapping_sub(ts);
    if ts == reference {
        Order::Same
    } else if back <= REORDER_WINDOW {
        Order::Late
    } else {
        Order::Newer
    }
}

/// Turns a stream of telephone-event packets into key presses, each exactly once (see the module
/// documentation for the rule). Feed it with [`handle_packet`](Self::handle_packet), collect with
/// [`poll_key`](Self::poll_key). One detector per RTP stream; call [`reset`](Self::reset) when the
/// sender's SSRC changes.
#[derive(Debug, Default)]
pub struct DtmfDetector {
    open: Option<Open>,
    /// Start timestamp of the newest key reported, to keep reported keys in order.
    last_reported: Option<u32>,
    /// Timestamps of events already handled (reported, or earlier segments of the open event),
    /// newest last.
    seen: VecDeque<u32>,
    out: VecDeque<DtmfKey>,
}

impl DtmfDetector {
    pub fn new() -> DtmfDetector {
        DtmfDetector::default()
    }

    /// One RTP packet of the telephone-event payload type: its timestamp, marker bit and payload.
    /// Malformed payloads and non-DTMF events (flash, tones…) are ignored.
    pub fn handle_packet(&mut self, timestamp: u32, marker: bool, payload: &[u8]) {
        let Ok(ev) = TelephoneEvent::parse(payload) else {
            return;
        };
        let Some(key) = ev.key() else {
            return;
        };
        if self.seen.contains(&timestamp) {
            return; // retransmitted end, duplicate or late packet of a handled event
        }
        let Some(mut open) = self.open else {
            if self.last_reported.map(|last| order(timestamp, last)) == Some(Order::Late) {
                self.remember(timestamp); // belongs before the last key reported: too late
            } else {
                self.start(timestamp, key, ev);
            }
            return;
        };
        match order(timestamp, open.ts) {
            Order::Same => {
                open.duration = open.duration.max(ev.duration);
                self.open = Some(open);
                if ev.end {
                    self.emit(open.key(true));
                    self.close();
                }
            }
            Order::Newer if continues(&open, timestamp, marker, key) => {
                self.remember(open.ts);
                open.prior = open.prior.saturating_add(u32::from(open.duration));
                open.ts = timestamp;
                open.duration = ev.duration;
                self.open = Some(open);
                if ev.end {
                    self.emit(open.key(true));
                    self.close();
                }
            }
            Order::Newer => {
                self.emit(open.key(false));
                self.close();
                self.start(timestamp, key, ev);
            }
            Order::Late => {
                // An earlier event never seen: a newer one has begun, so it is over. Reported unless
                // a key after it was already reported.
                let behind_last =
                    self.last_reported.map(|last| order(timestamp, last)) == Some(Order::Late);
                if !behind_last {
                    self.emit(Open::new(timestamp, key, ev.duration).key(ev.end));
                }
                self.remember(timestamp);
            }
        }
    }

    /// The next key press found, oldest first.
    pub fn poll_key(&mut self) -> Option<DtmfKey> {
        self.out.pop_front()
    }

    /// End of the stream (call ended, telephone-event stream silent): report the open event, if
    /// any.
    pub fn flush(&mut self) {
        if let Some(open) = self.open {
            self.emit(open.key(false));
            self.close();
        }
    }

    /// The sender's RTP stream changed (new SSRC, new timestamp line): report the open event and
    /// forget the old timestamps. Keys not yet polled stay queued.
    pub fn reset(&mut self) {
        self.flush();
        self.last_reported = None;
        self.seen.clear();
    }

    fn start(&mut self, timestamp: u32, key: char, ev: TelephoneEvent) {
        let open = Open::new(timestamp, key, ev.duration);
        if ev.end {
            self.emit(open.key(true));
            self.remember(timestamp);
        } else {
            self.open = Some(open);
        }
    }

    fn emit(&mut self, key: DtmfKey) {
        let newest = match self.last_reported {
            Some(last) if order(key.timestamp, last) == Order::Late => last,
            _ => key.timestamp,
        };
        self.last_reported = Some(newest);
        self.out.push_back(key);
    }

    fn close(&mut self) {
        if let Some(open) = self.open.take() {
            self.remember(open.ts);
        }
    }

    fn remember(&mut self, timestamp: u32) {
        if !self.seen.contains(&timestamp) {
            if self.seen.len() == HISTORY {
                self.seen.pop_front();
            }
            self.seen.push_back(timestamp);
        }
    }
}

/// `timestamp` is the next segment of the long event `open` (RFC 4733 §2.5.1.3).
fn continues(open: &Open, timestamp: u32, marker: bool, key: char) -> bool {
    !marker
        && key == open.key
        && u32::from(open.duration) == MAX_SEGMENT
        && timestamp == open.ts.wrapping_add(MAX_SEGMENT)
}

/// The key of a SIP INFO request body, or `None` if the body is not a DTMF body ctid understands.
///
/// * `application/dtmf-relay`: lines `Signal=1` and `Duration=160` (keys case-insensitive, spaces
///   around keys, `=` and values tolerated, CRLF or LF line ends, other lines ignored).
/// * `application/dtmf`: the body is the key itself (`1`, `#`), surrounding whitespace ignored.
///
/// Keys: `0`–`9`, `*`, `#`, `A`–`D` (also lower case), and the event codes `10`–`15` some devices
/// send instead of `*`, `#`, `A`–`D`. Media type parameters (`;charset=…`) are ignored.
pub fn parse_info(content_type: &str, body: &[u8]) -> Option<char> {
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type.eq_ignore_ascii_case("application/dtmf-relay") {
        let text = std::str::from_utf8(body).ok()?;
        text.lines().find_map(|line| {
            let (name, value) = line.split_once('=')?;
            if name.trim().eq_ignore_ascii_case("signal") {
                signal_key(value)
            } else {
                None
            }
        })
    } else if media_type.eq_ignore_ascii_case("application/dtmf") {
        signal_key(std::str::from_utf8(body).ok()?)
    } else {
        None
    }
}

/// A `Signal=` value or `application/dtmf` body: one key, or an event code 0–15.
fn signal_key(value: &str) -> Option<char> {
    let value = value.trim();
    let mut chars = value.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => char_to_event(c).and_then(event_to_char),
        (Some(_), Some(_)) => value.parse::<u8>().ok().and_then(event_to_char),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pkt(event: u8, end: bool, duration: u16) -> [u8; 4] {
        TelephoneEvent {
            event,
            end,
            volume: 10,
            duration,
        }
        .to_bytes()
    }

    fn keys(d: &mut DtmfDetector) -> Vec<(char, u32, bool)> {
        std::iter::from_fn(|| d.poll_key())
            .map(|k| (k.key, k.timestamp, k.ended))
            .collect()
    }

    #[test]
    fn payload_layout_and_round_trip() {
        // RFC 4733 §2.3: event 5, E=1, volume 10, duration 800 → 05 8A 03 20.
        let ev = TelephoneEvent {
            event: 5,
            end: true,
            volume: 10,
            duration: 800,
        };
        assert_eq!(ev.to_bytes(), [0x05, 0x8a, 0x03, 0x20]);
        assert_eq!(TelephoneEvent::parse(&ev.to_bytes()), Ok(ev));
        // R bit set by the sender is ignored; extra bytes are ignored.
        let parsed = TelephoneEvent::parse(&[11, 0x40 | 0x3f, 0xff, 0xff, 9, 9]);
        assert_eq!(
            parsed,
            Ok(TelephoneEvent {
                event: 11,
                end: false,
                volume: 63,
                duration: 0xffff
            })
        );
        assert_eq!(
            TelephoneEvent::parse(&[1, 2, 3]),
            Err(DtmfError::Truncated(3))
        );
        // Volume is masked to 6 bits when building.
        let loud = TelephoneEvent {
            event: 0,
            end: false,
            volume: 0xff,
            duration: 0,
        };
        assert_eq!(loud.to_bytes()[1], 0x3f);
    }

    #[test]
    fn key_mapping() {
        let all: String = (0..=15).filter_map(event_to_char).collect();
        assert_eq!(all, "0123456789*#ABCD");
        for (code, c) in all.chars().enumerate() {
            assert_eq!(char_to_event(c), Some(code as u8));
        }
        assert_eq!(char_to_event('c'), Some(14));
        assert_eq!(event_to_char(16), None); // flash
        assert_eq!(char_to_event('E'), None);
    }

    /// The shape of RFC 4733 §5's example: "9" then "1", 50 ms packets at 8 kHz, each event's end
    /// packet sent three times.
    #[test]
    fn rfc4733_example_digits_9_and_1() {
        let mut d = DtmfDetector::new();
        d.handle_packet(0, true, &pkt(9, false, 400));
        d.handle_packet(0, false, &pkt(9, false, 800));
        d.handle_packet(0, false, &pkt(9, false, 1200));
        d.handle_packet(0, false, &pkt(9, false, 1600));
        assert_eq!(keys(&mut d), vec![]);
        for _ in 0..3 {
            d.handle_packet(0, false, &pkt(9, true, 1600));
        }
        let k = d.poll_key();
        assert_eq!(
            k,
            Some(DtmfKey {
                key: '9',
                timestamp: 0,
                duration: 1600,
                ended: true
            })
        );
        assert_eq!(d.poll_key(), None);
        d.handle_packet(7040, true, &pkt(1, false, 400));
        d.handle_packet(7040, false, &pkt(1, false, 800));
        d.handle_packet(7040, false, &pkt(1, true, 1600));
        d.handle_packet(7040, false, &pkt(1, true, 1600));
        d.handle_packet(7040, false, &pkt(1, true, 1600));
        assert_eq!(keys(&mut d), vec![('1', 7040, true)]);
    }

    #[test]
    fn same_key_twice_is_two_presses() {
        let mut d = DtmfDetector::new();
        for ts in [1000u32, 3000] {
            d.handle_packet(ts, true, &pkt(5, false, 160));
            for _ in 0..3 {
                d.handle_packet(ts, false, &pkt(5, true, 800));
            }
        }
        assert_eq!(keys(&mut d), vec![('5', 1000, true), ('5', 3000, true)]);
    }

    #[test]
    fn duplicated_and_reordered_start_packets() {
        let mut d = DtmfDetector::new();
        // Start sent three times (some phones do), one update overtakes a start.
        d.handle_packet(100, true, &pkt(2, false, 0));
        d.handle_packet(100, false, &pkt(2, false, 320));
        d.handle_packet(100, true, &pkt(2, false, 0));
        d.handle_packet(100, true, &pkt(2, false, 0));
        d.handle_packet(100, false, &pkt(2, true, 960));
        // A start duplicated after the end arrives late: ignored.
        d.handle_packet(100, true, &pkt(2, false, 0));
        d.handle_packet(100, false, &pkt(2, true, 960));
        assert_eq!(keys(&mut d), vec![('2', 100, true)]);
        let mut d = DtmfDetector::new();
        // The end packet arrives before any start.
        d.handle_packet(500, false, &pkt(3, true, 800));
        d.handle_packet(500, true, &pkt(3, false, 0));
        assert_eq!(keys(&mut d), vec![('3', 500, true)]);
    }

    #[test]
    fn missing_end_is_reported_when_the_next_event_starts() {
        let mut d = DtmfDetector::new();
        d.handle_packet(0, true, &pkt(4, false, 400));
        d.handle_packet(0, false, &pkt(4, false, 800));
        // All end packets of "4" lost; "7" starts.
        d.handle_packet(4000, true, &pkt(7, false, 400));
        assert_eq!(keys(&mut d), vec![('4', 0, false)]);
        // The late end of "4" arrives after all: already reported.
        d.handle_packet(0, false, &pkt(4, true, 1600));
        assert_eq!(keys(&mut d), vec![]);
        d.handle_packet(4000, false, &pkt(7, true, 1600));
        assert_eq!(keys(&mut d), vec![('7', 4000, true)]);
        // An event with no end and no successor is reported by flush, once.
        d.handle_packet(9000, true, &pkt(8, false, 400));
        d.flush();
        d.flush();
        assert_eq!(keys(&mut d), vec![('8', 9000, false)]);
    }

    #[test]
    fn reordered_events_keep_their_order() {
        let mut d = DtmfDetector::new();
        // "1" (ts 0) is entirely overtaken by the start of "2" (ts 2000).
        d.handle_packet(2000, true, &pkt(2, false, 160));
        d.handle_packet(0, true, &pkt(1, false, 160));
        d.handle_packet(0, false, &pkt(1, true, 800));
        d.handle_packet(2000, false, &pkt(2, true, 800));
        assert_eq!(keys(&mut d), vec![('1', 0, false), ('2', 2000, true)]);
        // An event older than the last reported key is dropped rather than reported out of order.
        d.handle_packet(1000, true, &pkt(9, true, 800));
        assert_eq!(keys(&mut d), vec![]);
    }

    #[test]
    fn timestamp_wraparound() {
        let mut d = DtmfDetector::new();
        let t1 = u32::MAX - 100;
        d.handle_packet(t1, true, &pkt(0, false, 160));
        d.handle_packet(500, true, &pkt(6, false, 160)); // after t1 modulo 2^32
        d.handle_packet(500, false, &pkt(6, true, 800));
        assert_eq!(keys(&mut d), vec![('0', t1, false), ('6', 500, true)]);
    }

    #[test]
    fn timestamps_jumping_back_start_a_new_line() {
        let mut d = DtmfDetector::new();
        d.handle_packet(1_000_000, true, &pkt(1, true, 800));
        // The sender restarted its timestamps far below (new RTP stream): not "late".
        d.handle_packet(500, true, &pkt(2, false, 160));
        d.handle_packet(500, false, &pkt(2, true, 800));
        assert_eq!(keys(&mut d), vec![('1', 1_000_000, true), ('2', 500, true)]);
        // reset() after an SSRC change reports an open event and forgets old timestamps.
        d.handle_packet(4000, true, &pkt(3, false, 160));
        d.reset();
        d.handle_packet(500, true, &pkt(4, true, 800)); // same timestamp as "2", new stream
        assert_eq!(keys(&mut d), vec![('3', 4000, false), ('4', 500, true)]);
    }

    #[test]
    fn long_event_segments_are_one_press() {
        let mut d = DtmfDetector::new();
        d.handle_packet(10, true, &pkt(0, false, 60_000));
        d.handle_packet(10, false, &pkt(0, false, 0xffff));
        let next = 10 + 0xffff;
        d.handle_packet(next, false, &pkt(0, false, 8000));
        d.handle_packet(next, false, &pkt(0, true, 16_000));
        d.handle_packet(next, false, &pkt(0, true, 16_000));
        let k = d.poll_key();
        assert_eq!(
            k,
            Some(DtmfKey {
                key: '0',
                timestamp: 10,
                duration: 0xffff + 16_000,
                ended: true
            })
        );
        assert_eq!(d.poll_key(), None);
    }

    #[test]
    fn garbage_and_non_dtmf_events_are_ignored() {
        let mut d = DtmfDetector::new();
        d.handle_packet(0, true, &[]);
        d.handle_packet(0, true, &[1, 2]);
        d.handle_packet(0, true, &pkt(16, true, 800)); // flash
        d.handle_packet(0, true, &pkt(200, false, 800));
        d.flush();
        assert_eq!(keys(&mut d), vec![]);
    }

    #[test]
    fn info_dtmf_relay() {
        let ct = "application/dtmf-relay";
        assert_eq!(parse_info(ct, b"Signal=1\r\nDuration=160\r\n"), Some('1'));
        assert_eq!(parse_info(ct, b"signal = #\nduration= 250"), Some('#'));
        assert_eq!(
            parse_info(ct, b"Duration=160\r\nSIGNAL=  *  \r\n"),
            Some('*')
        );
        assert_eq!(parse_info(ct, b"Signal=a\r\n"), Some('A'));
        assert_eq!(parse_info(ct, b"Signal=10\r\n"), Some('*'));
        assert_eq!(parse_info(ct, b"Signal=11"), Some('#'));
        assert_eq!(
            parse_info("Application/DTMF-Relay; charset=utf-8", b"Signal=9"),
            Some('9')
        );
        assert_eq!(parse_info(ct, b"Signal=\r\nDuration=160"), None);
        assert_eq!(parse_info(ct, b"Signal=16"), None);
        assert_eq!(parse_info(ct, b"Signal=x"), None);
        assert_eq!(parse_info(ct, b"Duration=160"), None);
        assert_eq!(parse_info(ct, b"Signal=1"), Some('1'));
        assert_eq!(parse_info(ct, b"\xff\xfe"), None);
        assert_eq!(parse_info(ct, b""), None);
    }

    #[test]
    fn info_dtmf() {
        assert_eq!(parse_info("application/dtmf", b"1"), Some('1'));
        assert_eq!(parse_info("application/dtmf", b" #\r\n"), Some('#'));
        assert_eq!(parse_info("APPLICATION/DTMF ", b"D"), Some('D'));
        assert_eq!(parse_info("application/dtmf", b"12"), Some('A'));
        assert_eq!(parse_info("application/dtmf", b""), None);
        assert_eq!(parse_info("application/dtmf", b"1 2"), None);
        assert_eq!(parse_info("text/plain", b"1"), None);
        assert_eq!(parse_info("application/sdp", b"Signal=1"), None);
    }

    proptest! {
        #[test]
        fn never_panics(
            ct in "[a-zA-Z/;= -]{0,40}",
            body in proptest::collection::vec(any::<u8>(), 0..64),
            packets in proptest::collection::vec(
                (any::<u32>(), any::<bool>(), proptest::collection::vec(any::<u8>(), 0..8)),
                0..64,
            ),
        ) {
            let _ = parse_info(&ct, &body);
            let _ = parse_info("application/dtmf-relay", &body);
            let _ = parse_info("application/dtmf", &body);
            let mut d = DtmfDetector::new();
            let mut seen = 0usize;
            for (ts, m, p) in &packets {
                // Small timestamps make duplicates and reordering likely.
                d.handle_packet(ts % 4096, *m, p);
                while d.poll_key().is_some() {
                    seen += 1;
                }
            }
            d.flush();
            while d.poll_key().is_some() {
                seen += 1;
            }
            prop_assert!(seen <= packets.len());
        }

        #[test]
        fn each_event_reported_once_despite_duplicates(
            digits in proptest::collection::vec(0u8..16, 1..10),
            dup in 1usize..4,
        ) {
            let mut d = DtmfDetector::new();
            for (i, &ev) in digits.iter().enumerate() {
                let ts = i as u32 * 4000;
                for _ in 0..dup {
                    d.handle_packet(ts, true, &pkt(ev, false, 160));
                }
                d.handle_packet(ts, false, &pkt(ev, false, 320));
                for _ in 0..3 {
                    d.handle_packet(ts, false, &pkt(ev, true, 800));
                }
            }
            let got: String = std::iter::from_fn(|| d.poll_key()).map(|k| k.key).collect();
            let want: String = digits.iter().filter_map(|&e| event_to_char(e)).collect();
            prop_assert_eq!(got, want);
        }
    }
}
