//! Step tests of the media session: a [`Session`] on real loopback sockets (the legs' peers are
//! sockets of the test), driven by hand — commands, datagrams put in a batch, and
//! `handle_timeout` at chosen instants (virtual time: nothing waits for the clock).

use super::core::{Output, Session, RTCP_INTERVAL};
use super::*;
use crate::media::batch::Batch;
use crate::media::dtmf::TelephoneEvent;
use crate::media::latch::Kind;
use crate::media::recorder::{Recorder, RecorderConfig};
use crate::media::test_support::free_range;
use crate::media::PortPool;
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::UdpSocket;
use tokio::time::Instant;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(10);

struct Rig {
    session: Session,
    t0: Instant,
    pool: PortPool,
    /// The caller's phone (or PBX) and the agent's phone.
    caller: UdpSocket,
    agent: UdpSocket,
}

async fn peer() -> UdpSocket {
    UdpSocket::bind((LO, 0)).await.expect("bind peer")
}

async fn leg(pool: &PortPool, remote: SocketAddr, law: Codec, pt: u8, te: u8) -> LegMedia {
    let sockets = pool.allocate().await.expect("ports");
    // The session sends without waiting: let the reactor see the sockets writable first.
    sockets.rtp.writable().await.expect("writable");
    sockets.rtcp.writable().await.expect("writable");
    LegMedia {
        sockets,
        remote: Some(remote),
        law,
        pt,
        te_pt: Some(te),
        ptime: 20,
    }
}

async fn rig(config: SessionConfig) -> Rig {
    let pool = PortPool::new(LO, free_range(4)).expect("pool");
    let (caller, agent) = (peer().await, peer().await);
    let a = leg(
        &pool,
        caller.local_addr().expect("addr"),
        Codec::Pcmu,
        0,
        101,
    )
    .await;
    let t0 = Instant::now();
    let session = Session::new(a, config, t0, std::time::SystemTime::now());
    Rig {
        session,
        t0,
        pool,
        caller,
        agent,
    }
}

impl Rig {
    fn at(&self, ms: u64) -> Instant {
        self.t0 + Duration::from_millis(ms)
    }

    async fn bridge(&mut self, recorder: Option<crate::media::recorder::RecorderHandle>) {
        let b = leg(
            &self.pool,
            self.agent.local_addr().expect("addr"),
            Codec::Pcma,
            8,
            96,
        )
        .await;
        self.session.handle_command(
            Command::Bridge {
                agent: Box::new(b),
                recorder,
            },
            self.at(0),
        );
    }

    /// `packets` arriving from `side`'s peer on its RTP socket at `ms`.
    fn feed(&mut self, side: Side, packets: &[Vec<u8>], ms: u64) {
        let from = match side {
            Side::A => self.caller.local_addr(),
            Side::B => self.agent.local_addr(),
        }
        .expect("addr");
        let list: Vec<(&[u8], SocketAddr)> = packets.iter().map(|p| (&p[..], from)).collect();
        let mut batch = Batch::new();
        batch.fill(&list);
        let now = self.at(ms);
        self.session.handle_batch(side, Kind::Rtp, &mut batch, now);
    }

    fn events(&mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(o) = self.session.poll_output() {
            v.push(match o {
                Output::Notify(e) => format!("{e:?}"),
                Output::FinishRecording(_) => "FinishRecording".into(),
            });
        }
        v
    }
}

fn rtp(pt: u8, marker: bool, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 12];
    p[0] = 0x80;
    p[1] = pt | if marker { 0x80 } else { 0 };
    p[2..4].copy_from_slice(&seq.to_be_bytes());
    p[4..8].copy_from_slice(&ts.to_be_bytes());
    p[8..12].copy_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

struct Got {
    pt: u8,
    marker: bool,
    seq: u16,
    ts: u32,
    ssrc: u32,
    payload: Vec<u8>,
}

async fn recv(peer: &UdpSocket) -> Got {
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .expect("a packet within the deadline")
        .expect("recv");
    let p = &buf[..n];
    Got {
        pt: p[1] & 0x7f,
        marker: p[1] & 0x80 != 0,
        seq: u16::from_be_bytes([p[2], p[3]]),
        ts: u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        ssrc: u32::from_be_bytes([p[8], p[9], p[10], p[11]]),
        payload: p[12..].to_vec(),
    }
}

/// Whether `peer` has a datagram waiting (loopback delivers during the send).
fn nothing_waiting(peer: &UdpSocket) -> bool {
    let mut buf = [0u8; 2048];
    peer.try_recv_from(&mut buf).is_err()
}

#[tokio::test]
async fn the_bridge_relays_both_ways_transcodes_and_keeps_ctids_stream_towards_the_caller() {
    let mut r = rig(SessionConfig::default()).await;
    r.bridge(None).await;
    // Caller → agent: µ-law silence (0xff) arrives as A-law silence (0xd5), payload type 8,
    // numbering as sent.
    r.feed(
        Side::A,
        &[rtp(0, true, 500, 16_000, 0xaaaa, &[0xff; 160])],
        10,
    );
    let g = recv(&r.agent).await;
    assert_eq!((g.pt, g.seq, g.ts, g.ssrc), (8, 500, 16_000, 0xaaaa));
    assert_eq!(g.payload, vec![0xd5; 160]);
    // Agent → caller: in ctid's stream (its SSRC, marked as a new spurt), payload type 0.
    r.feed(Side::B, &[rtp(8, false, 9, 900, 0xbbbb, &[0xd5; 160])], 20);
    r.feed(
        Side::B,
        &[rtp(8, false, 10, 1060, 0xbbbb, &[0xd5; 160])],
        40,
    );
    let (g1, g2) = (recv(&r.caller).await, recv(&r.caller).await);
    let mut expected = vec![0xd5; 160];
    crate::media::g711::transcode_in_place(Codec::Pcma, Codec::Pcmu, &mut expected);
    assert_eq!((g1.pt, g1.marker, g1.payload), (0, true, expected));
    assert_ne!(g1.ssrc, 0xbbbb);
    assert_eq!(
        (g2.ssrc, g2.seq, g2.ts, g2.marker),
        (
            g1.ssrc,
            g1.seq.wrapping_add(1),
            g1.ts.wrapping_add(160),
            false
        )
    );
    // Several packets in one batch leave in one go, in order.
    let burst: Vec<Vec<u8>> = (0..5)
        .map(|i| {
            rtp(
                0,
                false,
                501 + i,
                16_160 + 160 * u32::from(i),
                0xaaaa,
                &[0xff; 160],
            )
        })
        .collect();
    r.feed(Side::A, &burst, 60);
    for i in 0..5 {
        assert_eq!(recv(&r.agent).await.seq, 501 + i);
    }
    let stats = r.session.end();
    assert_eq!((stats.relayed, stats.dropped), (8, 0));
    assert_eq!(stats.caller.received, 6);
    assert_eq!(stats.agent.map(|a| a.received), Some(2));
}

#[tokio::test]
async fn stray_and_malformed_datagrams_are_dropped_and_counted_not_relayed() {
    let mut r = rig(SessionConfig::default()).await;
    r.bridge(None).await;
    // The caller's stream is latched ...
    r.feed(Side::A, &[rtp(0, false, 1, 1, 1, &[0xff; 160])], 0);
    recv(&r.agent).await;
    // ... so a packet from somewhere else, within the latch timeout, is not let in.
    let stranger = peer().await;
    let mut batch = Batch::new();
    let pkt = rtp(0, false, 1, 1, 1, &[0xff; 160]);
    batch.fill(&[(&pkt, stranger.local_addr().expect("addr"))]);
    r.session
        .handle_batch(Side::A, Kind::Rtp, &mut batch, r.at(5));
    // Too short to be RTP, from the right address.
    r.feed(Side::A, &[vec![0x80, 0x00, 0x01]], 6);
    assert!(nothing_waiting(&r.agent));
    // The metrics hear of them by reason (invalid, stray, no destination, send failed), once.
    assert_eq!(r.session.counter_deltas(), (1, [1, 1, 0, 0]));
    assert_eq!(r.session.counter_deltas(), (0, [0; 4]));
    let stats = r.session.end();
    assert_eq!((stats.relayed, stats.dropped), (1, 2));
}

fn dtmf(marker: bool, seq: u16, end: bool, duration: u16) -> Vec<u8> {
    let ev = TelephoneEvent {
        event: 5,
        end,
        volume: 10,
        duration,
    };
    rtp(101, marker, seq, 80_000, 0xaaaa, &ev.to_bytes())
}

#[tokio::test]
async fn a_caller_key_is_reported_once_and_relayed_with_the_agents_event_type() {
    let mut r = rig(SessionConfig::default()).await;
    r.bridge(None).await;
    let packets = [
        dtmf(true, 1, false, 160),
        dtmf(false, 2, false, 320),
        dtmf(false, 3, true, 480),
        dtmf(false, 4, true, 480),
        dtmf(false, 5, true, 480),
    ];
    r.feed(Side::A, &packets, 10);
    assert_eq!(r.events(), ["Dtmf('5')"]);
    for seq in 1..=5 {
        let g = recv(&r.agent).await;
        assert_eq!((g.pt, g.seq), (96, seq));
    }
}

#[tokio::test]
async fn with_dtmf_relay_off_keys_are_detected_but_not_passed_on() {
    let mut r = rig(SessionConfig {
        relay_dtmf: false,
        ..SessionConfig::default()
    })
    .await;
    r.bridge(None).await;
    r.feed(Side::A, &[dtmf(true, 1, true, 480)], 10);
    assert_eq!(r.events(), ["Dtmf('5')"]);
    assert!(nothing_waiting(&r.agent));
    assert_eq!(r.session.end().dropped, 0, "consumed, not lost");
}

#[tokio::test]
async fn the_media_timeout_fires_once_without_rtp_and_not_while_held() {
    let mut r = rig(SessionConfig {
        media_timeout: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    })
    .await;
    r.bridge(None).await;
    r.session.handle_timeout(r.at(29_000));
    assert!(r.events().is_empty());
    // The caller speaks at 20 s; the agent stays silent.
    r.feed(Side::A, &[rtp(0, false, 1, 1, 7, &[0xff; 160])], 20_000);
    r.session.handle_timeout(r.at(30_000));
    assert_eq!(r.events(), ["MediaTimeout(B)"]);
    r.session.handle_timeout(r.at(45_000));
    assert!(
        r.events().is_empty(),
        "the caller spoke 25 s ago; B reported once"
    );
    // Held: no timeout however long.
    r.session.handle_command(
        Command::Hold {
            side: Side::A,
            held: true,
        },
        r.at(46_000),
    );
    r.session.handle_timeout(r.at(200_000));
    assert!(r.events().is_empty());
    // Resumed: counts from the resume.
    r.session.handle_command(
        Command::Hold {
            side: Side::A,
            held: false,
        },
        r.at(200_000),
    );
    r.session.handle_timeout(r.at(229_000));
    assert!(r.events().is_empty());
    r.session.handle_timeout(r.at(230_000));
    assert_eq!(r.events(), ["MediaTimeout(A)"]);
}

#[tokio::test]
async fn a_quiet_bridged_call_wakes_only_for_rtcp_and_the_media_timeout() {
    let mut r = rig(SessionConfig {
        media_timeout: Some(Duration::from_secs(30)),
        ..SessionConfig::default()
    })
    .await;
    r.bridge(None).await;
    // A steady stream moves no timer: the next wake-up is the RTCP report.
    for i in 0..50u16 {
        let ms = 20 * u64::from(i);
        r.feed(
            Side::A,
            &[rtp(0, false, i, 160 * u32::from(i), 7, &[0xff; 160])],
            ms,
        );
        assert_eq!(r.session.poll_timeout(), Some(r.t0 + RTCP_INTERVAL));
    }
    // The report goes to each leg's RTCP address (RTP port + 1), both at the same wake-up.
    let rtcp_a = UdpSocket::bind((LO, r.caller.local_addr().expect("a").port() + 1)).await;
    r.session.handle_timeout(r.t0 + RTCP_INTERVAL);
    let next = r.session.poll_timeout().expect("a next wake-up");
    assert_eq!(next, r.t0 + 2 * RTCP_INTERVAL);
    if let Ok(s) = rtcp_a {
        let mut buf = [0u8; 512];
        let (n, _) = tokio::time::timeout(WAIT, s.recv_from(&mut buf))
            .await
            .expect("an RTCP report")
            .expect("recv");
        assert!(n >= 8 && (200..=201).contains(&buf[1]), "SR or RR first");
    }
}

fn tone(samples: usize) -> Prompt {
    Prompt::from_samples("tone", vec![1000i16; samples])
}

#[tokio::test]
async fn hold_audio_is_paced_per_frame_stops_while_bridged_and_resumes_after() {
    let mut r = rig(SessionConfig::default()).await;
    r.session
        .handle_command(Command::Background(Some(tone(8000))), r.at(0));
    assert_eq!(r.session.poll_timeout(), Some(r.at(0)));
    r.session.handle_timeout(r.at(0));
    let f1 = recv(&r.caller).await;
    assert_eq!((f1.pt, f1.marker, f1.payload.len()), (0, true, 160));
    assert_eq!(r.session.poll_timeout(), Some(r.at(20)));
    r.session.handle_timeout(r.at(20));
    let f2 = recv(&r.caller).await;
    assert_eq!(
        (f2.seq, f2.ts, f2.ssrc, f2.marker),
        (
            f1.seq.wrapping_add(1),
            f1.ts.wrapping_add(160),
            f1.ssrc,
            false
        )
    );
    // Bridged: ctid's own audio stops.
    r.bridge(None).await;
    assert_eq!(r.session.poll_timeout(), Some(r.t0 + RTCP_INTERVAL));
    r.session.handle_command(Command::Unbridge, r.at(3_000));
    assert_eq!(r.session.poll_timeout(), Some(r.at(3_000)));
    r.session.handle_timeout(r.at(3_000));
    let f3 = recv(&r.caller).await;
    // The same stream goes on: next number, timestamp moved by the 3 s that passed, marked.
    assert_eq!(
        (f3.ssrc, f3.seq, f3.marker),
        (f1.ssrc, f1.seq.wrapping_add(2), true)
    );
    assert_eq!(f3.ts.wrapping_sub(f2.ts), 8 * 2_980);
}

#[tokio::test]
async fn prompts_play_in_order_and_report_their_tag_when_done() {
    let mut r = rig(SessionConfig::default()).await;
    r.session.handle_command(
        Command::Play {
            prompts: vec![tone(160), tone(320)],
            tag: 7,
        },
        r.at(0),
    );
    for ms in [0, 20, 40] {
        r.session.handle_timeout(r.at(ms));
        assert!(r.events().is_empty());
        recv(&r.caller).await;
    }
    // The fourth frame finds the prompts over: reported, and silence from then (no background).
    r.session.handle_timeout(r.at(60));
    assert_eq!(r.events(), ["PlayDone(7)"]);
    assert_eq!(r.session.poll_timeout(), Some(r.t0 + RTCP_INTERVAL));
    // An empty list is done at once.
    r.session.handle_command(
        Command::Play {
            prompts: vec![],
            tag: 8,
        },
        r.at(70),
    );
    assert_eq!(r.events(), ["PlayDone(8)"]);
}

#[tokio::test]
async fn announcements_and_timers_come_when_due() {
    let mut r = rig(SessionConfig::default()).await;
    r.session.handle_command(
        Command::AnnounceEvery(Some(Duration::from_secs(10))),
        r.at(0),
    );
    r.session.handle_command(
        Command::After {
            delay: Duration::from_secs(3),
            tag: 9,
        },
        r.at(0),
    );
    assert_eq!(r.session.poll_timeout(), Some(r.at(3_000)));
    r.session.handle_timeout(r.at(3_000));
    assert_eq!(r.events(), ["Timer(9)"]);
    r.session.handle_timeout(r.at(10_000));
    assert_eq!(r.events(), ["AnnounceDue"]);
    assert_eq!(r.session.poll_timeout(), Some(r.at(15_000)), "RTCP at 15 s");
    r.session.handle_timeout(r.at(20_000));
    assert_eq!(r.events(), ["AnnounceDue"]);
    // Not while bridged.
    r.bridge(None).await;
    r.session.handle_timeout(r.at(29_000));
    assert!(r.events().is_empty());
}

#[tokio::test]
async fn the_recording_gets_both_sides_and_is_handed_over_on_unbridge() {
    let mut r = rig(SessionConfig::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("call.wav");
    let rec = Recorder::start_with(RecorderConfig::default(), path.clone()).expect("recorder");
    r.bridge(Some(rec)).await;
    for i in 0..50u16 {
        let ms = 20 * u64::from(i);
        let ts = 160 * u32::from(i);
        r.feed(Side::A, &[rtp(0, false, i, ts, 1, &[0x80; 160])], ms);
        r.feed(Side::B, &[rtp(8, false, i, ts, 2, &[0xaa; 160])], ms);
    }
    r.session.handle_command(Command::Unbridge, r.at(1_000));
    let mut finished = None;
    while let Some(o) = r.session.poll_output() {
        if let Output::FinishRecording(h) = o {
            finished = Some(h.finish_async().await);
        }
    }
    let result = finished.expect("the recording is handed over on unbridge");
    assert_eq!(result.error, None);
    assert!(
        (980..=1020).contains(&result.duration_ms),
        "{}",
        result.duration_ms
    );
    let wav = hound::WavReader::open(&path).expect("a valid WAV file");
    assert_eq!(wav.spec().channels, 2);
    // Nothing more to hand over at the end.
    r.session.end();
    assert!(r.events().is_empty());
}
