//! The RTP port pool: one even RTP port and the odd RTCP port above it per call leg (RFC 3550 §11),
//! handed out round-robin from a configured range and given back when the [`LegSockets`] drop.
//!
//! Round-robin (rather than "lowest free") keeps a just-released port out of use for as long as
//! possible, so late packets of an ended call do not land in the next one.

use super::MediaError;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::net::UdpSocket;

/// A range of RTP/RTCP port pairs on one local address. Cheap to clone; clones share the pool.
#[derive(Clone)]
pub struct PortPool {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the sockets are bound.
    bind_ip: IpAddr,
    /// The address SDP carries for these ports (`[sip] advertise`, else `bind_ip`).
    ip: IpAddr,
    /// The RTP port of pair 0 (even).
    first: u16,
    /// Number of pairs; pair `i` is `first + 2i` (RTP) and `first + 2i + 1` (RTCP).
    pairs: usize,
    state: Mutex<State>,
}

struct State {
    in_use: Vec<bool>,
    /// Where the round-robin search starts next.
    next: usize,
    used: usize,
}

impl PortPool {
    /// A pool over the even/odd pairs inside `range` on `ip`. The first RTP port is the first even
    /// port in the range; a trailing even port without its odd partner is not used.
    pub fn new(ip: IpAddr, range: RangeInclusive<u16>) -> Result<PortPool, MediaError> {
        PortPool::advertised(ip, ip, range)
    }

    /// Like [`PortPool::new`], with `sdp_ip` as the address peers are told to send to (NAT: the
    /// public address; the sockets stay bound to `ip`).
    pub fn advertised(
        ip: IpAddr,
        sdp_ip: IpAddr,
        range: RangeInclusive<u16>,
    ) -> Result<PortPool, MediaError> {
        let (start, end) = (*range.start(), *range.end());
        let invalid = MediaError::InvalidRange { start, end };
        if start == 0 {
            return Err(invalid);
        }
        let first = u32::from(start) + u32::from(start) % 2;
        let end = u32::from(end);
        if end < first + 1 {
            return Err(invalid);
        }
        // `end - first + 1` ports, halved and rounded down.
        let pairs = (end - first).div_ceil(2) as usize;
        let first = u16::try_from(first).map_err(|_| invalid)?;
        Ok(PortPool {
            inner: Arc::new(Inner {
                bind_ip: ip,
                ip: sdp_ip,
                first,
                pairs,
                state: Mutex::new(State {
                    in_use: vec![false; pairs],
                    next: 0,
                    used: 0,
                }),
            }),
        })
    }

    /// The address put in SDP `c=`/`o=` for these ports: the advertised one, else the one the
    /// sockets are bound to.
    pub fn ip(&self) -> IpAddr {
        self.inner.ip
    }

    /// How many pairs the range holds.
    pub fn capacity(&self) -> usize {
        self.inner.pairs
    }

    /// How many pairs are handed out right now.
    pub fn in_use(&self) -> usize {
        self.inner.lock().used
    }

    /// Bind the next free pair (round-robin). A pair that cannot be bound (another process holds
    /// one of its ports) is skipped. `Err(Exhausted)` when every pair is in use or unbindable;
    /// `Err(Descriptors)` at once when no socket can be made at all (out of file descriptors).
    ///
    /// Cancel-safe: a pair reserved by a cancelled call goes straight back to the pool.
    pub async fn allocate(&self) -> Result<LegSockets, MediaError> {
        for _ in 0..self.inner.pairs {
            let Some(index) = self.inner.reserve() else {
                break;
            };
            // Created before any await, so the reservation is released on every exit path.
            let guard = PortGuard {
                pool: Arc::clone(&self.inner),
                index,
            };
            let rtp_port = self.inner.rtp_port(index);
            let local_rtp = SocketAddr::new(self.inner.bind_ip, rtp_port);
            let local_rtcp = SocketAddr::new(self.inner.bind_ip, rtp_port + 1);
            let rtp = match UdpSocket::bind(local_rtp).await {
                Ok(s) => s,
                Err(e) if out_of_resources(&e) => return Err(MediaError::Descriptors(e)),
                Err(e) => {
                    tracing::debug!(port = rtp_port, error = %e, "RTP port busy, skipping pair");
                    continue;
                }
            };
            let rtcp = match UdpSocket::bind(local_rtcp).await {
                Ok(s) => s,
                Err(e) if out_of_resources(&e) => return Err(MediaError::Descriptors(e)),
                Err(e) => {
                    tracing::debug!(port = rtp_port + 1, error = %e, "RTCP port busy, skipping pair");
                    continue;
                }
            };
            return Ok(LegSockets {
                rtp,
                rtcp,
                local_rtp,
                local_rtcp,
                _guard: guard,
            });
        }
        Err(MediaError::Exhausted)
    }
}

/// Whether a bind failed for want of descriptors or memory (any port would fail the same way),
/// rather than because this port is taken.
fn out_of_resources(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

impl fmt::Debug for PortPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = u32::from(self.inner.first) + 2 * self.inner.pairs as u32 - 1;
        f.debug_struct("PortPool")
            .field("ip", &self.inner.bind_ip)
            .field("sdp_ip", &self.inner.ip)
            .field("ports", &format_args!("{}-{}", self.inner.first, last))
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while the lock is held, so a poisoned state is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn rtp_port(&self, index: usize) -> u16 {
        // `new` checked that the last pair fits in u16.
        self.first + 2 * index as u16
    }

    /// Mark the next free pair (round-robin from `next`) as in use.
    fn reserve(&self) -> Option<usize> {
        let mut st = self.lock();
        let index = (0..self.pairs)
            .map(|i| (st.next + i) % self.pairs)
            .find(|&i| !st.in_use[i])?;
        st.in_use[index] = true;
        st.used += 1;
        st.next = (index + 1) % self.pairs;
        Some(index)
    }

    fn release(&self, index: usize) {
        let mut st = self.lock();
        if let Some(slot) = st.in_use.get_mut(index) {
            if *slot {
                *slot = false;
                st.used -= 1;
            }
        }
    }
}

/// Gives a pair back to its pool when dropped.
struct PortGuard {
    pool: Arc<Inner>,
    index: usize,
}

impl Drop for PortGuard {
    fn drop(&mut self) {
        self.pool.release(self.index);
    }
}

/// The two bound sockets of one call leg. Dropping it closes both and returns the pair to the pool.
pub struct LegSockets {
    /// Bound to `local_rtp` (even port).
    pub rtp: UdpSocket,
    /// Bound to `local_rtcp` (`local_rtp` port + 1).
    pub rtcp: UdpSocket,
    /// The address to put in this leg's SDP (`c=`/`m=`), unless the pool is bound to a wildcard.
    pub local_rtp: SocketAddr,
    pub local_rtcp: SocketAddr,
    /// Declared last: fields drop in order, so the sockets are closed before the pair is free.
    _guard: PortGuard,
}

impl LegSockets {
    /// The same sockets, registered with the reactor of the runtime this is called on (a media
    /// thread's, see [`crate::media::threads`]) instead of the one they were bound on, so their
    /// readiness wakes the thread that serves them. Must run inside a tokio runtime.
    pub fn moved_here(self) -> std::io::Result<LegSockets> {
        let LegSockets {
            rtp,
            rtcp,
            local_rtp,
            local_rtcp,
            _guard,
        } = self;
        let rtp = UdpSocket::from_std(rtp.into_std()?)?;
        let rtcp = UdpSocket::from_std(rtcp.into_std()?)?;
        Ok(LegSockets {
            rtp,
            rtcp,
            local_rtp,
            local_rtcp,
            _guard,
        })
    }
}

impl fmt::Debug for LegSockets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LegSockets")
            .field("local_rtp", &self.local_rtp)
            .field("local_rtcp", &self.local_rtcp)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::test_support::free_range;
    use std::net::Ipv4Addr;

    const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

    fn pool(pairs: u16) -> (PortPool, u16) {
        let range = free_range(pairs);
        let first = *range.start();
        (PortPool::new(LO, range).expect("valid range"), first)
    }

    #[test]
    fn range_validation() {
        let ok = |s, e| PortPool::new(LO, s..=e).map(|p| p.capacity());
        assert_eq!(ok(20000, 20001).expect("one pair"), 1);
        assert_eq!(ok(20001, 20004).expect("odd start"), 1); // 20002/20003; 20004 has no partner
        assert_eq!(ok(20000, 20009).expect("ten ports"), 5);
        assert_eq!(ok(65534, 65535).expect("top of range"), 1);
        assert_eq!(ok(1, 65535).expect("everything"), 32767);
        for (s, e) in [
            (20000, 20000),
            (20001, 20002),
            (0, 1),
            (0, 100),
            (20010, 20000),
        ] {
            assert!(
                matches!(ok(s, e), Err(MediaError::InvalidRange { .. })),
                "{s}-{e}"
            );
        }
        assert!(matches!(
            ok(65535, 65535),
            Err(MediaError::InvalidRange { .. })
        ));
    }

    #[tokio::test]
    async fn an_advertised_pool_binds_locally_and_names_the_advertised_address_for_sdp() {
        let range = free_range(1);
        let public = IpAddr::from([203, 0, 113, 7]);
        let pool = PortPool::advertised(LO, public, range).expect("valid range");
        assert_eq!(pool.ip(), public);
        let a = pool.allocate().await.expect("pair 0");
        assert_eq!(a.rtp.local_addr().expect("addr").ip(), LO);
        assert_eq!(PortPool::new(LO, free_range(1)).expect("range").ip(), LO);
    }

    #[tokio::test]
    async fn allocates_even_odd_pairs_round_robin() {
        let (pool, first) = pool(3);
        let a = pool.allocate().await.expect("pair 0");
        assert_eq!(a.local_rtp, SocketAddr::new(LO, first));
        assert_eq!(a.local_rtcp, SocketAddr::new(LO, first + 1));
        assert_eq!(a.rtp.local_addr().expect("addr"), a.local_rtp);
        assert_eq!(a.rtcp.local_addr().expect("addr"), a.local_rtcp);
        assert_eq!(first % 2, 0);
        let b = pool.allocate().await.expect("pair 1");
        assert_eq!(b.local_rtp.port(), first + 2);
        assert_eq!(pool.in_use(), 2);
        drop(a);
        assert_eq!(pool.in_use(), 1);
        // Round-robin: pair 2 comes before the just-freed pair 0.
        let c = pool.allocate().await.expect("pair 2");
        assert_eq!(c.local_rtp.port(), first + 4);
        let d = pool.allocate().await.expect("pair 0 again");
        assert_eq!(d.local_rtp.port(), first);
        drop((b, c, d));
        assert_eq!(pool.in_use(), 0);
    }

    #[tokio::test]
    async fn exhaustion_and_reuse_after_drop() {
        let (pool, first) = pool(2);
        let a = pool.allocate().await.expect("pair 0");
        let b = pool.allocate().await.expect("pair 1");
        assert!(matches!(pool.allocate().await, Err(MediaError::Exhausted)));
        let clone = pool.clone();
        assert!(matches!(clone.allocate().await, Err(MediaError::Exhausted)));
        drop(b);
        let c = clone.allocate().await.expect("freed pair is reusable");
        assert_eq!(c.local_rtp.port(), first + 2);
        assert_eq!(pool.in_use(), 2);
        drop((a, c));
        assert_eq!(pool.in_use(), 0);
    }

    #[tokio::test]
    async fn pairs_held_by_someone_else_are_skipped() {
        let (pool, first) = pool(3);
        // Another process holds the RTCP port of pair 0 and the RTP port of pair 1.
        let _rtcp0 = std::net::UdpSocket::bind((LO, first + 1)).expect("bind");
        let _rtp1 = std::net::UdpSocket::bind((LO, first + 2)).expect("bind");
        let a = pool.allocate().await.expect("pair 2 is free");
        assert_eq!(a.local_rtp.port(), first + 4);
        // The skipped pairs were not leaked: only one is in use, and with every other pair busy
        // the pool reports exhaustion instead of looping.
        assert_eq!(pool.in_use(), 1);
        assert!(matches!(pool.allocate().await, Err(MediaError::Exhausted)));
        assert_eq!(pool.in_use(), 1);
        drop(_rtp1);
        let b = pool
            .allocate()
            .await
            .expect("pair 1 freed by the other process");
        assert_eq!(b.local_rtp.port(), first + 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_allocations_get_distinct_pairs() {
        let (pool, _) = pool(8);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.allocate().await })
            })
            .collect();
        let mut ports = Vec::new();
        let mut legs = Vec::new();
        for t in tasks {
            let leg = t.await.expect("join").expect("allocate");
            ports.push(leg.local_rtp.port());
            legs.push(leg);
        }
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 8);
        assert!(matches!(pool.allocate().await, Err(MediaError::Exhausted)));
        drop(legs);
        assert_eq!(pool.in_use(), 0);
    }

    #[test]
    fn only_a_want_of_descriptors_or_memory_stops_the_search() {
        use std::io::{Error, ErrorKind};
        for errno in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(
                out_of_resources(&Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        for errno in [libc::EADDRINUSE, libc::EACCES, libc::EADDRNOTAVAIL] {
            assert!(
                !out_of_resources(&Error::from_raw_os_error(errno)),
                "{errno}"
            );
        }
        assert!(!out_of_resources(&Error::from(ErrorKind::Other)));
    }

    /// Runs in a child process (its open-files limit is lowered, which would starve the other
    /// tests of this process): with no descriptor left, `allocate` says so at once.
    #[test]
    fn out_of_descriptors_is_reported_as_such_not_as_an_exhausted_range() {
        const CHILD: &str = "CTID_PORTS_EMFILE_CHILD";
        if std::env::var_os(CHILD).is_none() {
            let exe = std::env::current_exe().expect("test binary");
            let out = std::process::Command::new(exe)
                .args([
                    "--exact",
                    "media::ports::tests::out_of_descriptors_is_reported_as_such_not_as_an_exhausted_range",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, "1")
                .output()
                .expect("run the child");
            let text = String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{text}");
            assert!(text.contains("child: descriptors error"), "{text}");
            return;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let (pool, _) = pool(500);
            let mut legs = Vec::new();
            // Leave only a few descriptors above those open now.
            let open = std::fs::read_dir("/proc/self/fd").expect("fds").count() as u64;
            use nix::sys::resource::{getrlimit, setrlimit, Resource};
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
            setrlimit(Resource::RLIMIT_NOFILE, open + 6, hard).expect("setrlimit");
            let err = loop {
                match pool.allocate().await {
                    Ok(leg) => legs.push(leg),
                    Err(e) => break e,
                }
            };
            // The limit counts descriptor numbers, and numbers below it may be free: a few pairs.
            assert!(legs.len() <= 10, "{} pairs with ~6 descriptors", legs.len());
            assert!(
                matches!(&err, MediaError::Descriptors(e) if e.raw_os_error() == Some(libc::EMFILE)),
                "{err:?}"
            );
            assert_eq!(pool.in_use(), legs.len(), "the failed pair went back");
            assert!(err.to_string().contains("open-files limit"), "{err}");
            println!("child: descriptors error: {err}");
        });
    }

    #[tokio::test]
    async fn cancelled_allocation_releases_its_reservation() {
        let (pool, _) = pool(1);
        // Poll once then drop; the reservation must not leak whatever point it reached.
        let fut = pool.allocate();
        drop(tokio::time::timeout(std::time::Duration::ZERO, fut).await);
        assert_eq!(pool.in_use(), 0);
        let _leg = pool.allocate().await.expect("pair still available");
    }
}
