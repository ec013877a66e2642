//! RTP peers for end-to-end media tests: a thread that answers ctid's RTP (symmetric), sends a
//! tone (and RFC 4733 key presses) on a 20 ms grid and keeps every packet it receives; G.711
//! tone helpers; the PBX's SIPp call whose RTP such a peer handles (`pbx_media.xml`).

use super::*;
use ctid::media::g711::{self, Codec};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// One RTP packet as the test received it.
#[derive(Debug, Clone)]
pub struct Rx {
    pub at: Instant,
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    pub payload: Vec<u8>,
}

pub fn parse_rtp(b: &[u8], at: Instant) -> Option<Rx> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let cc = usize::from(b[0] & 0x0f);
    let start = 12 + 4 * cc;
    Some(Rx {
        at,
        pt: b[1] & 0x7f,
        marker: b[1] & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload: b.get(start..)?.to_vec(),
    })
}

pub fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, (pt & 0x7f) | if marker { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&ts.to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

/// Zero crossings in a frame of G.711 `law`: a 20 ms frame of a tone at f Hz has about f / 25.
pub fn crossings(law: Codec, payload: &[u8]) -> usize {
    let mut pcm = vec![0i16; payload.len()];
    g711::decode_into(law, payload, &mut pcm);
    pcm.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
}

pub fn is_tone(law: Codec, payload: &[u8], hz: u32) -> bool {
    let want = (hz / 25) as usize;
    crossings(law, payload).abs_diff(want) <= 2
}

/// A 20 ms frame of a tone whose period divides 160 samples, so every frame is identical.
pub fn tone_frame(law: Codec, hz: u32) -> Vec<u8> {
    let pcm: Vec<i16> = (0..160)
        .map(|i| {
            let t = f64::from(i) / 8000.0;
            ((t * f64::from(hz) * std::f64::consts::TAU).sin() * 6000.0) as i16
        })
        .collect();
    let mut out = vec![0u8; 160];
    g711::encode_into(law, &pcm, &mut out);
    out
}

/// What an RTP peer thread does.
#[derive(Clone)]
pub struct PeerPlan {
    pub law: Codec,
    /// The tone it sends (None: sends nothing).
    pub tone: Option<u32>,
    /// Stop sending audio this long after it started (None: until stopped).
    pub send_for: Option<Duration>,
    /// Send RFC 4733 telephone-event (PT 101) for this key when `key_when` says so.
    pub key: Option<char>,
}

/// An RTP peer: answers to wherever ctid sends from (symmetric RTP), sends its tone every 20 ms
/// once it knows ctid's address, and keeps everything it receives.
pub struct Peer {
    pub stop: Arc<AtomicBool>,
    /// Set by the test to send the key now.
    pub press: Arc<AtomicBool>,
    pub got: Arc<Mutex<Vec<Rx>>>,
    pub sent_first: Arc<Mutex<Option<Instant>>>,
    pub last_sent: Arc<Mutex<Option<Instant>>>,
    pub thread: Option<JoinHandle<()>>,
    pub port: u16,
}

impl Peer {
    pub fn start(plan: PeerPlan) -> Peer {
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = sock.local_addr().unwrap().port();
        sock.set_read_timeout(Some(Duration::from_millis(2)))
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let press = Arc::new(AtomicBool::new(false));
        let got = Arc::new(Mutex::new(Vec::new()));
        let sent_first = Arc::new(Mutex::new(None));
        let last_sent = Arc::new(Mutex::new(None));
        let (s2, p2, g2, f2, l2) = (
            stop.clone(),
            press.clone(),
            got.clone(),
            sent_first.clone(),
            last_sent.clone(),
        );
        let thread = std::thread::spawn(move || {
            let frame = plan.tone.map(|hz| tone_frame(plan.law, hz));
            let mut dest: Option<SocketAddr> = None;
            let (mut seq, mut ts, ssrc) = (1000u16, 50_000u32, 0x7e57_0001u32 + u32::from(port));
            let mut next = Instant::now();
            let mut started: Option<Instant> = None;
            let mut buf = [0u8; 2048];
            while !s2.load(Ordering::Relaxed) {
                if let Ok((n, src)) = sock.recv_from(&mut buf) {
                    let now = Instant::now();
                    if dest.is_none() {
                        // Audio starts now, on its own 20 ms grid.
                        dest = Some(src);
                        next = now;
                    }
                    if let Some(rx) = parse_rtp(&buf[..n], now) {
                        g2.lock().unwrap().push(rx);
                    }
                }
                let now = Instant::now();
                let Some(to) = dest else { continue };
                if now < next {
                    continue;
                }
                next += Duration::from_millis(20);
                let start = *started.get_or_insert(now);
                let sending = plan.send_for.is_none_or(|d| now.duration_since(start) < d);
                if p2.swap(false, Ordering::Relaxed) {
                    if let Some(k) = plan.key {
                        let ev = ctid::media::dtmf::char_to_event(k).unwrap();
                        // Start, two updates, then the end packet three times (RFC 4733 §2.5.1.4).
                        for (i, dur) in [160u16, 320, 480, 640, 640, 640].iter().enumerate() {
                            let end = i >= 3;
                            let payload = [
                                ev,
                                if end { 0x80 | 10 } else { 10 },
                                (dur >> 8) as u8,
                                *dur as u8,
                            ];
                            let _ = sock.send_to(&rtp(101, i == 0, seq, ts, ssrc, &payload), to);
                            seq = seq.wrapping_add(1);
                        }
                        ts = ts.wrapping_add(640);
                    }
                }
                if let (true, Some(f)) = (sending, &frame) {
                    let _ =
                        sock.send_to(&rtp(plan.law.payload_type(), false, seq, ts, ssrc, f), to);
                    f2.lock().unwrap().get_or_insert(now);
                    *l2.lock().unwrap() = Some(now);
                    seq = seq.wrapping_add(1);
                    ts = ts.wrapping_add(160);
                }
            }
        });
        Peer {
            stop,
            press,
            got,
            sent_first,
            last_sent,
            thread: Some(thread),
            port,
        }
    }

    pub fn got(&self) -> Vec<Rx> {
        self.got.lock().unwrap().clone()
    }

    pub fn finish(mut self) -> Vec<Rx> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.got()
    }
}

pub fn caller_plan(tone: Option<u32>) -> PeerPlan {
    PeerPlan {
        law: Codec::Pcmu,
        tone,
        send_for: None,
        key: None,
    }
}

/// Run the PBX's call in the background; the caller stays `wait_ms` unless ctid hangs up.
pub fn pbx_call(env: &TestEnv, d: &Daemon, caller: &Peer, wait_ms: u32, info_key: &str) -> SippBg {
    let sf = scenario_with(
        env.path(),
        "pbx_media.xml",
        &[
            ("@WAIT_MS@", &wait_ms.to_string()),
            ("@INFO_MS@", if info_key == "none" { "1" } else { "2000" }),
        ],
    );
    let port = caller.port.to_string();
    sipp_spawn(
        env.path(),
        Some(d.addr),
        free_port(),
        &sf,
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-key",
            "rtp_port",
            &port,
            "-key",
            "codec",
            "0",
            "-key",
            "codec_name",
            "PCMU",
            "-key",
            "info_key",
            // A key no queue here uses when the test wants no key press.
            if info_key == "none" { "9" } else { info_key },
            "-timeout",
            "60s",
        ],
    )
}
