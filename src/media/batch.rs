//! Batched datagram I/O for the media sessions: `recvmmsg` takes every datagram waiting on a
//! socket (up to [`BATCH`]) in one system call and `sendmmsg` sends what a batch forwards in one.
//! One [`Batch`] per thread ([`with_batch`]) serves every session of a media thread, so nothing is
//! allocated per packet, nor per session.
//!
//! Readiness: a receive that returns fewer datagrams than it had room for has emptied the socket's
//! queue, so it clears tokio's readiness for the socket at once (the reactor is edge-triggered: a
//! datagram arriving afterwards raises a new event). The `recv_from` loop this replaces paid a
//! second `recvfrom` per packet only to learn that the queue was empty (EAGAIN).
//!
//! Must not know: RTP, calls, what a session does with the packets. No `unsafe` here: the system
//! calls go through `nix`.

use super::latch::MAX_DATAGRAM;
use nix::sys::socket::{recvmmsg, sendmmsg, MsgFlags, MultiHeaders, SockaddrStorage};
use std::cell::RefCell;
use std::io::{self, IoSlice, IoSliceMut};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::io::Interest;
use tokio::net::UdpSocket;

/// Datagrams taken from a socket per system call. A leg carries 50 packets/s, so a drain rarely
/// finds more than one or two; the room is for catching up after the thread was held up.
pub const BATCH: usize = 16;
/// Room per datagram: one byte over the largest one accepted, so a longer one shows as too long.
pub const BUF_LEN: usize = MAX_DATAGRAM + 1;

/// Buffers and headers for one receive and the sends it leads to.
pub struct Batch {
    bufs: Box<[[u8; BUF_LEN]; BATCH]>,
    len: [usize; BATCH],
    src: [Option<SocketAddr>; BATCH],
    count: usize,
    /// Where each datagram goes once processed (None: not sent).
    dest: [Option<SocketAddr>; BATCH],
    recv_hdrs: MultiHeaders<SockaddrStorage>,
    send_hdrs: MultiHeaders<SockaddrStorage>,
}

/// What a receive found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Datagrams now in the batch.
    pub count: usize,
    /// The socket's queue was emptied (its readiness is cleared).
    pub drained: bool,
}

impl Batch {
    pub fn new() -> Batch {
        Batch {
            bufs: Box::new([[0; BUF_LEN]; BATCH]),
            len: [0; BATCH],
            src: [None; BATCH],
            count: 0,
            dest: [None; BATCH],
            recv_hdrs: MultiHeaders::preallocate(BATCH, None),
            send_hdrs: MultiHeaders::preallocate(BATCH, None),
        }
    }

    /// How many datagrams the batch holds.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Datagram `i`: its bytes (to read and rewrite in place) and where it came from.
    pub fn datagram(&mut self, i: usize) -> Option<(&mut [u8], SocketAddr)> {
        if i >= self.count {
            return None;
        }
        let src = self.src[i]?;
        Some((&mut self.bufs[i][..self.len[i]], src))
    }

    /// Send datagram `i` (as it is now) to `to` in the next [`Batch::send`]; None: do not.
    pub fn set_dest(&mut self, i: usize, to: Option<SocketAddr>) {
        if let Some(d) = self.dest.get_mut(i) {
            *d = to;
        }
    }

    /// Take what is waiting on `socket`, without waiting. Replaces the previous contents.
    /// A socket error other than "nothing there" is returned (the batch is then empty).
    pub fn recv(&mut self, socket: &UdpSocket) -> io::Result<Received> {
        self.count = 0;
        self.dest = [None; BATCH];
        let mut drained = false;
        let fd = socket.as_raw_fd();
        let r = socket.try_io(Interest::READABLE, || {
            let n = self.recv_raw(fd)?;
            if n < BATCH {
                // Emptied: report "would block" so tokio clears the readiness now.
                drained = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Ok(())
        });
        match r {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => drained = true,
            Err(e) => return Err(e),
        }
        Ok(Received {
            count: self.count,
            drained,
        })
    }

    fn recv_raw(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        let Batch {
            bufs,
            len,
            src,
            count,
            recv_hdrs,
            ..
        } = self;
        let mut slices = bufs.each_mut().map(|b| [IoSliceMut::new(&mut b[..])]);
        let results = recvmmsg(
            fd,
            recv_hdrs,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        let mut n = 0;
        for (i, m) in results.enumerate() {
            len[i] = m.bytes;
            src[i] = m.address.as_ref().and_then(std_addr);
            n = i + 1;
        }
        *count = n;
        Ok(n)
    }

    /// Send every datagram given a destination, from `socket`, in one system call when the
    /// socket can take them. Returns (sent, dropped): a full send buffer drops the rest, as a
    /// router would; nothing waits.
    pub fn send(&mut self, socket: &UdpSocket) -> (u64, u64) {
        let want: usize = self.dest[..self.count].iter().flatten().count();
        if want == 0 {
            return (0, 0);
        }
        let fd = socket.as_raw_fd();
        let r = socket.try_io(Interest::WRITABLE, || self.send_raw(fd));
        let sent = r.unwrap_or(0).min(want);
        (sent as u64, (want - sent) as u64)
    }

    fn send_raw(&mut self, fd: std::os::fd::RawFd) -> io::Result<usize> {
        let Batch {
            bufs,
            len,
            count,
            dest,
            send_hdrs,
            ..
        } = self;
        let mut order = [0usize; BATCH];
        let mut addrs: [Option<SockaddrStorage>; BATCH] = [None; BATCH];
        let mut k = 0;
        for (i, d) in dest[..*count].iter().enumerate() {
            if let Some(to) = d {
                order[k] = i;
                addrs[k] = Some(SockaddrStorage::from(*to));
                k += 1;
            }
        }
        let sized: [[IoSlice<'_>; 1]; BATCH] =
            std::array::from_fn(|i| [IoSlice::new(&bufs[i][..len[i]])]);
        let picked = order[..k].iter().map(|&i| &sized[i]);
        let results = sendmmsg(
            fd,
            send_hdrs,
            picked,
            &addrs[..k],
            [],
            MsgFlags::MSG_DONTWAIT,
        )
        .map_err(io::Error::from)?;
        Ok(results.count())
    }

    /// Put `packets` in the batch as if received (unit tests of the sessions).
    #[cfg(test)]
    pub fn fill(&mut self, packets: &[(&[u8], SocketAddr)]) {
        self.count = 0;
        self.dest = [None; BATCH];
        for (i, (data, from)) in packets.iter().take(BATCH).enumerate() {
            let n = data.len().min(BUF_LEN);
            self.bufs[i][..n].copy_from_slice(&data[..n]);
            self.len[i] = n;
            self.src[i] = Some(*from);
            self.count = i + 1;
        }
    }
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

fn std_addr(a: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    a.as_sockaddr_in6().map(|v6| SocketAddr::V6((*v6).into()))
}

thread_local! {
    static BATCH_OF_THREAD: RefCell<Batch> = RefCell::new(Batch::new());
}

/// Run `f` with this thread's batch. Not re-entrant (`f` must not call it again).
pub fn with_batch<R>(f: impl FnOnce(&mut Batch) -> R) -> R {
    BATCH_OF_THREAD.with(|b| match b.try_borrow_mut() {
        Ok(mut b) => f(&mut b),
        // Only reachable by a nested call: give that one a batch of its own.
        Err(_) => f(&mut Batch::new()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let b = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        (a, b)
    }

    #[tokio::test]
    async fn a_drain_takes_every_waiting_datagram_in_one_call_and_clears_readiness() {
        let (rx, tx) = pair().await;
        let to = rx.local_addr().expect("addr");
        for i in 0..5u8 {
            tx.send_to(&[i; 10], to).await.expect("send");
        }
        rx.readable().await.expect("readable");
        let mut b = Batch::new();
        let r = b.recv(&rx).expect("recv");
        assert_eq!(
            r,
            Received {
                count: 5,
                drained: true
            }
        );
        let from = tx.local_addr().expect("addr");
        for i in 0..5 {
            let (data, src) = b.datagram(i).expect("datagram");
            assert_eq!((data.to_vec(), src), (vec![i as u8; 10], from));
        }
        assert!(b.datagram(5).is_none());
        // Readiness was cleared: `readable` waits until the next datagram.
        let waiting =
            tokio::time::timeout(std::time::Duration::from_millis(50), rx.readable()).await;
        assert!(waiting.is_err(), "readiness should be cleared");
        tx.send_to(b"again", to).await.expect("send");
        tokio::time::timeout(std::time::Duration::from_secs(5), rx.readable())
            .await
            .expect("a new datagram wakes the socket")
            .expect("readable");
        assert_eq!(b.recv(&rx).expect("recv").count, 1);
    }

    #[tokio::test]
    async fn a_full_batch_leaves_the_rest_for_the_next_drain() {
        let (rx, tx) = pair().await;
        let to = rx.local_addr().expect("addr");
        for i in 0..(BATCH + 3) {
            tx.send_to(&[i as u8; 4], to).await.expect("send");
        }
        rx.readable().await.expect("readable");
        let mut b = Batch::new();
        let first = b.recv(&rx).expect("recv");
        assert_eq!((first.count, first.drained), (BATCH, false));
        rx.readable().await.expect("still readable");
        let second = b.recv(&rx).expect("recv");
        assert_eq!((second.count, second.drained), (3, true));
        assert_eq!(b.datagram(0).expect("first of the rest").0[0], BATCH as u8);
    }

    #[tokio::test]
    async fn send_forwards_the_chosen_datagrams_as_rewritten() {
        let (rx, out) = pair().await;
        let peer = UdpSocket::bind("127.0.0.1:0").await.expect("bind");
        let dest = peer.local_addr().expect("addr");
        let from = rx.local_addr().expect("addr");
        let mut b = Batch::new();
        b.fill(&[(b"one", from), (b"two", from), (b"three", from)]);
        if let Some((d, _)) = b.datagram(2) {
            d[0] = b'T';
        }
        b.set_dest(0, Some(dest));
        b.set_dest(2, Some(dest));
        out.writable().await.expect("writable");
        assert_eq!(b.send(&out), (2, 0));
        let mut buf = [0u8; 64];
        let (n, src) = peer.recv_from(&mut buf).await.expect("recv");
        assert_eq!(
            (&buf[..n], src),
            (&b"one"[..], out.local_addr().expect("addr"))
        );
        let (n, _) = peer.recv_from(&mut buf).await.expect("recv");
        assert_eq!(&buf[..n], b"Three");
        // Nothing chosen: no system call, nothing counted.
        b.fill(&[(b"x", from)]);
        assert_eq!(b.send(&out), (0, 0));
    }

    #[test]
    fn the_thread_batch_is_reused_and_a_nested_call_gets_its_own() {
        let outer = with_batch(|b| {
            b.fill(&[(b"x", "127.0.0.1:9".parse().expect("addr"))]);
            let inner = with_batch(|b2| b2.len());
            (b.len(), inner)
        });
        assert_eq!(outer, (1, 0));
        assert_eq!(with_batch(|b| b.len()), 1, "the same batch next time");
    }
}
