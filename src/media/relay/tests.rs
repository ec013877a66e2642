//! The relay with real UDP sockets on 127.0.0.1: "phones" are plain sockets.

use super::*;
use crate::media::test_support::free_range;
use crate::media::{MediaError, PortPool};
use std::net::{IpAddr, Ipv4Addr};
use tokio::net::UdpSocket;
use tokio::time::timeout;

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const WAIT: Duration = Duration::from_secs(5);
/// How long "nothing arrives" is watched for.
const QUIET: Duration = Duration::from_millis(100);

fn pool(pairs: u16) -> PortPool {
    PortPool::new(LO, free_range(pairs)).expect("valid range")
}

async fn phone() -> (UdpSocket, SocketAddr) {
    let s = UdpSocket::bind((LO, 0)).await.expect("bind phone");
    let a = s.local_addr().expect("addr");
    (s, a)
}

/// A closed port: bound once, then released.
async fn dead_addr() -> SocketAddr {
    phone().await.1
}

fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(payload);
    p
}

fn rtcp_rr(ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 201, 0, 1];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p
}

async fn recv(s: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = [0u8; 4096];
    let (n, from) = timeout(WAIT, s.recv_from(&mut buf))
        .await
        .expect("packet expected")
        .expect("recv");
    (buf[..n].to_vec(), from)
}

async fn assert_quiet(s: &UdpSocket) {
    let mut buf = [0u8; 4096];
    if let Ok(r) = timeout(QUIET, s.recv_from(&mut buf)).await {
        panic!("unexpected packet: {r:?}");
    }
}

async fn wait_stats(h: &RelayHandle, what: &str, pred: impl Fn(&RelayStats) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !pred(&h.stats()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:?}",
            h.stats()
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// A relay between two fresh legs; returns the legs' local RTP addresses too.
async fn relay(
    a_remote: Option<SocketAddr>,
    b_remote: Option<SocketAddr>,
    config: RelayConfig,
) -> (RelayHandle, SocketAddr, SocketAddr, PortPool) {
    let pool = pool(2);
    let a = pool.allocate().await.expect("leg a");
    let b = pool.allocate().await.expect("leg b");
    let (la, lb) = (a.local_rtp, b.local_rtp);
    let h = start_relay_with_config(config, a, b, a_remote, b_remote, CancellationToken::new());
    (h, la, lb, pool)
}

#[tokio::test]
async fn relays_both_ways_byte_identical_and_in_order() {
    let (pa, pa_addr) = phone().await;
    let (pb, pb_addr) = phone().await;
    let (h, la, lb, _pool) = relay(Some(pa_addr), Some(pb_addr), RelayConfig::default()).await;
    let mut sent_a = Vec::new();
    let mut sent_b = Vec::new();
    for seq in 0..20u16 {
        let p = rtp(seq, 0xA, &[seq as u8; 160]);
        pa.send_to(&p, la).await.expect("send");
        sent_a.push(p);
        let p = rtp(seq, 0xB, &vec![!(seq as u8); 33 + usize::from(seq)]);
        pb.send_to(&p, lb).await.expect("send");
        sent_b.push(p);
    }
    for expected in &sent_a {
        let (got, from) = recv(&pb).await;
        assert_eq!(&got, expected);
        assert_eq!(
            from, lb,
            "B hears A from B's own leg address (symmetric RTP)"
        );
    }
    for expected in &sent_b {
        let (got, from) = recv(&pa).await;
        assert_eq!(&got, expected);
        assert_eq!(from, la);
    }
    assert_quiet(&pa).await;
    assert_quiet(&pb).await;
    let s = h.stats();
    assert_eq!(s.a_to_b.rtp_packets, 20);
    assert_eq!(s.a_to_b.rtp_bytes, 20 * 172);
    assert_eq!(s.b_to_a.rtp_packets, 20);
    assert_eq!(
        s.b_to_a.rtp_bytes,
        sent_b.iter().map(|p| p.len() as u64).sum::<u64>()
    );
    assert!(s.a_to_b.last_rtp.is_some() && s.b_to_a.last_rtp.is_some());
    assert_eq!(s.dropped, DropStats::default());
    assert!(!h.is_finished());
}

#[tokio::test]
async fn latching_reaches_a_phone_whose_sdp_address_is_wrong() {
    let (pa, _) = phone().await;
    let (pb, pb_addr) = phone().await;
    // A's SDP names a closed port (private address behind NAT, in real life).
    let (h, la, lb, _pool) =
        relay(Some(dead_addr().await), Some(pb_addr), Default::default()).await;
    // Before A speaks, B's media goes to the SDP address and is lost.
    pb.send_to(&rtp(1, 0xB, b"lost"), lb).await.expect("send");
    wait_stats(&h, "first B packet", |s| {
        s.b_to_a.rtp_packets + s.dropped.send_failed == 1
    })
    .await;
    // A speaks: B hears it, and A's source address is latched.
    pa.send_to(&rtp(1, 0xA, b"hello"), la).await.expect("send");
    assert_eq!(recv(&pb).await.0, rtp(1, 0xA, b"hello"));
    pb.send_to(&rtp(2, 0xB, b"reaches A"), lb)
        .await
        .expect("send");
    let (got, from) = recv(&pa).await;
    assert_eq!((got, from), (rtp(2, 0xB, b"reaches A"), la));
}

#[tokio::test]
async fn stray_source_cannot_hijack_a_latched_stream() {
    let (pa, _) = phone().await;
    let (pb, pb_addr) = phone().await;
    let (stray, _) = phone().await;
    let (h, la, lb, _pool) = relay(None, Some(pb_addr), Default::default()).await;
    pa.send_to(&rtp(1, 0xA, b"latch"), la).await.expect("send");
    assert_eq!(recv(&pb).await.0, rtp(1, 0xA, b"latch"));
    // A third party sends valid RTP to A's leg: dropped, not relayed, not latched.
    stray
        .send_to(&rtp(99, 0xBAD, b"inject"), la)
        .await
        .expect("send");
    wait_stats(&h, "stray drop", |s| s.dropped.stray == 1).await;
    pb.send_to(&rtp(2, 0xB, b"for A"), lb).await.expect("send");
    assert_eq!(recv(&pa).await.0, rtp(2, 0xB, b"for A"));
    pa.send_to(&rtp(2, 0xA, b"still A"), la)
        .await
        .expect("send");
    assert_eq!(recv(&pb).await.0, rtp(2, 0xA, b"still A"));
    assert_quiet(&stray).await;
    assert_quiet(&pb).await;
    assert_eq!(h.stats().a_to_b.rtp_packets, 2);
}

#[tokio::test]
async fn relatches_after_silence() {
    let config = RelayConfig {
        latch_timeout: Duration::from_millis(50),
    };
    let (pa, _) = phone().await;
    let (pa_moved, _) = phone().await; // A's NAT binding changed
    let (pb, pb_addr) = phone().await;
    let (h, la, lb, _pool) = relay(None, Some(pb_addr), config).await;
    pa.send_to(&rtp(1, 0xA, b"old"), la).await.expect("send");
    assert_eq!(recv(&pb).await.0, rtp(1, 0xA, b"old"));
    tokio::time::sleep(Duration::from_millis(80)).await;
    pa_moved
        .send_to(&rtp(2, 0xA, b"new"), la)
        .await
        .expect("send");
    assert_eq!(recv(&pb).await.0, rtp(2, 0xA, b"new"));
    pb.send_to(&rtp(1, 0xB, b"to new"), lb).await.expect("send");
    assert_eq!(recv(&pa_moved).await.0, rtp(1, 0xB, b"to new"));
    assert_quiet(&pa).await;
    assert_eq!(h.stats().dropped.stray, 0);
}

#[tokio::test]
async fn garbage_is_dropped_and_counted() {
    let (pa, pa_addr) = phone().await;
    let (pb, pb_addr) = phone().await;
    let (h, la, lb, _pool) = relay(Some(pa_addr), Some(pb_addr), Default::default()).await;
    let mut v1 = rtp(1, 0xA, b"x");
    v1[0] = 0x40;
    let mut bad_cc = rtp(1, 0xA, b"x");
    bad_cc[0] = 0x8f; // 15 CSRCs announced, none present
    for junk in [&b"hi"[..], &[0u8; 11], &v1, &bad_cc, &[0x80; 3000], &[]] {
        pa.send_to(junk, la).await.expect("send");
    }
    pb.send_to(b"not rtcp", (LO, lb.port() + 1))
        .await
        .expect("send");
    wait_stats(&h, "invalid drops", |s| s.dropped.invalid == 7).await;
    assert_quiet(&pb).await;
    // The relay is unharmed.
    pa.send_to(&rtp(2, 0xA, b"ok"), la).await.expect("send");
    assert_eq!(recv(&pb).await.0, rtp(2, 0xA, b"ok"));
    assert_quiet(&pa).await;
    let s = h.stats();
    assert_eq!(s.a_to_b.rtp_packets, 1);
    assert_eq!(s.dropped.invalid, 7);
}

#[tokio::test]
async fn rtcp_is_relayed_on_the_odd_ports() {
    // The phones have even/odd pairs too, so RTCP reaches them at SDP port + 1 before latching.
    let phones = pool(2);
    let pa = phones.allocate().await.expect("phone a");
    let pb = phones.allocate().await.expect("phone b");
    let relay_pool = pool(2);
    let a = relay_pool.allocate().await.expect("leg a");
    let b = relay_pool.allocate().await.expect("leg b");
    let (la, lb) = (a.local_rtcp, b.local_rtcp);
    let h = start_relay(
        a,
        b,
        Some(pa.local_rtp),
        Some(pb.local_rtp),
        CancellationToken::new(),
    );
    pa.rtcp.send_to(&rtcp_rr(0xA), la).await.expect("send");
    assert_eq!(recv(&pb.rtcp).await, (rtcp_rr(0xA), lb));
    pb.rtcp.send_to(&rtcp_rr(0xB), lb).await.expect("send");
    assert_eq!(recv(&pa.rtcp).await, (rtcp_rr(0xB), la));
    assert_quiet(&pa.rtp).await;
    assert_quiet(&pb.rtp).await;
    let s = h.stats();
    assert_eq!((s.a_to_b.rtcp_packets, s.a_to_b.rtcp_bytes), (1, 8));
    assert_eq!((s.b_to_a.rtcp_packets, s.b_to_a.rtp_packets), (1, 0));
}

#[tokio::test]
async fn packets_before_the_destination_is_known_are_dropped() {
    let (pa, _) = phone().await;
    let (pb, _) = phone().await;
    let (h, la, lb, _pool) = relay(None, None, Default::default()).await;
    pa.send_to(&rtp(1, 0xA, b"early"), la).await.expect("send");
    wait_stats(&h, "no-destination drop", |s| s.dropped.no_destination == 1).await;
    pb.send_to(&rtp(1, 0xB, b"b"), lb).await.expect("send");
    assert_eq!(recv(&pa).await.0, rtp(1, 0xB, b"b"));
    pa.send_to(&rtp(2, 0xA, b"a"), la).await.expect("send");
    assert_eq!(recv(&pb).await.0, rtp(2, 0xA, b"a"));
    let s = h.stats();
    assert_eq!(s.dropped.no_destination, 1);
    assert!(s.a_to_b.last_rtp.is_some());
}

#[tokio::test]
async fn update_remote_redirects_media() {
    let (pa, pa_addr) = phone().await;
    let (pb_old, pb_old_addr) = phone().await;
    let (pb_new, pb_new_addr) = phone().await;
    let (h, la, _lb, _pool) = relay(Some(pa_addr), Some(pb_old_addr), Default::default()).await;
    pa.send_to(&rtp(1, 0xA, b"1"), la).await.expect("send");
    assert_eq!(recv(&pb_old).await.0, rtp(1, 0xA, b"1"));
    // Re-INVITE: B moved. Effective for the very next packet.
    h.update_remote(Side::B, pb_new_addr);
    pa.send_to(&rtp(2, 0xA, b"2"), la).await.expect("send");
    assert_eq!(recv(&pb_new).await.0, rtp(2, 0xA, b"2"));
    // Hold (c=0.0.0.0): nothing is sent to B.
    h.update_remote(Side::B, SocketAddr::from(([0, 0, 0, 0], 9)));
    pa.send_to(&rtp(3, 0xA, b"3"), la).await.expect("send");
    wait_stats(&h, "drop while on hold", |s| s.dropped.no_destination == 1).await;
    assert_quiet(&pb_new).await;
    assert_quiet(&pb_old).await;
}

#[tokio::test]
async fn stop_ends_the_task_and_frees_the_ports() {
    let pool = pool(2);
    let a = pool.allocate().await.expect("leg a");
    let b = pool.allocate().await.expect("leg b");
    let la = a.local_rtp;
    let (pa, _) = phone().await;
    let (pb, pb_addr) = phone().await;
    let h = start_relay(a, b, None, Some(pb_addr), CancellationToken::new());
    assert!(matches!(pool.allocate().await, Err(MediaError::Exhausted)));
    pa.send_to(&rtp(1, 0xA, b"x"), la).await.expect("send");
    recv(&pb).await;
    let stats = timeout(WAIT, h.stop()).await.expect("stop is prompt");
    assert_eq!(stats.a_to_b.rtp_packets, 1);
    assert_eq!(pool.in_use(), 0);
    let _a = pool.allocate().await.expect("re-allocatable");
    let _b = pool.allocate().await.expect("re-allocatable");
}

#[tokio::test]
async fn cancel_token_and_drop_also_stop_the_relay() {
    let pool = pool(2);
    let cancel = CancellationToken::new();
    let a = pool.allocate().await.expect("leg a");
    let b = pool.allocate().await.expect("leg b");
    let h = start_relay(a, b, None, None, cancel.clone());
    cancel.cancel();
    timeout(WAIT, async {
        while !h.is_finished() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("task ends on cancel");
    assert_eq!(pool.in_use(), 0);

    let a = pool.allocate().await.expect("leg a");
    let b = pool.allocate().await.expect("leg b");
    drop(start_relay(a, b, None, None, CancellationToken::new()));
    timeout(WAIT, async {
        while pool.in_use() != 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("ports freed after the handle is dropped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_packets_each_way_without_loss() {
    // A sanity check, not a benchmark: lockstep windows keep socket buffers from overflowing.
    const TOTAL: u16 = 10_000;
    const WINDOW: u16 = 50;
    let (pa, pa_addr) = phone().await;
    let (pb, pb_addr) = phone().await;
    let (h, la, lb, _pool) = relay(Some(pa_addr), Some(pb_addr), Default::default()).await;
    let payload = [0x55u8; 160];
    let mut buf = [0u8; 2048];
    for start in (0..TOTAL).step_by(usize::from(WINDOW)) {
        for seq in start..start + WINDOW {
            pa.send_to(&rtp(seq, 0xA, &payload), la)
                .await
                .expect("send");
            pb.send_to(&rtp(seq, 0xB, &payload), lb)
                .await
                .expect("send");
        }
        for seq in start..start + WINDOW {
            for (sock, ssrc) in [(&pb, 0xAu8), (&pa, 0xB)] {
                let (n, _) = timeout(WAIT, sock.recv_from(&mut buf))
                    .await
                    .expect("no loss")
                    .expect("recv");
                assert_eq!(n, 172);
                assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), seq, "in order");
                assert_eq!(buf[11], ssrc);
            }
        }
    }
    let s = h.stop().await;
    assert_eq!(s.a_to_b.rtp_packets, u64::from(TOTAL));
    assert_eq!(s.b_to_a.rtp_packets, u64::from(TOTAL));
    assert_eq!(s.dropped, DropStats::default());
}
