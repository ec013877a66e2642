//! Admission of TCP connections: a cap per source address for untrusted sources, a share of the
//! connection pool only trusted peers (the PBX) may use, and rate-limited logging of refusals.
//!
//! Owns: the live connection counts (total, untrusted, per untrusted address) and the refusal
//! log budget. A [`ConnGuard`] holds one connection's place and gives it back when dropped.
//!
//! Must not know: SIP messages, calls. (Reads the clock only to pace its log lines.)

use crate::config::PeerNet;
use crate::sip::throttle::LogBudget;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The limits (`[sip.limits]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    pub max_total: usize,
    pub reserved_for_trusted: usize,
    pub per_source: usize,
}

/// Why a connection was refused (the `reason` label of `ctid_sip_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    PerSource,
    Limit,
}

impl Refused {
    pub fn as_str(self) -> &'static str {
        match self {
            Refused::PerSource => "tcp_per_source",
            Refused::Limit => "tcp_limit",
        }
    }
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    untrusted: usize,
    by_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
pub struct ConnLimiter {
    limits: ConnLimits,
    trusted: Vec<PeerNet>,
    counts: Mutex<Counts>,
    log: Mutex<LogBudget>,
    started: Instant,
}

impl ConnLimiter {
    pub fn new(limits: ConnLimits, trusted: Vec<PeerNet>) -> Arc<Self> {
        Arc::new(ConnLimiter {
            limits,
            trusted,
            counts: Mutex::new(Counts::default()),
            log: Mutex::new(LogBudget::new(5, Duration::from_secs(10))),
            started: Instant::now(),
        })
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(ip))
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // A panic elsewhere while holding the lock leaves plain counters: keep using them.
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for a new connection from `ip`, or why not.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<ConnGuard, Refused> {
        let trusted = self.is_trusted(ip);
        let mut c = self.counts();
        if c.total >= self.limits.max_total {
            return Err(Refused::Limit);
        }
        if !trusted {
            let open = c.by_ip.get(&ip).copied().unwrap_or(0);
            if open >= self.limits.per_source {
                return Err(Refused::PerSource);
            }
            let share = self
                .limits
                .max_total
                .saturating_sub(self.limits.reserved_for_trusted);
            if c.untrusted >= share {
                return Err(Refused::Limit);
            }
            c.untrusted += 1;
            *c.by_ip.entry(ip).or_default() += 1;
        }
        c.total += 1;
        Ok(ConnGuard {
            limiter: self.clone(),
            ip,
            trusted,
        })
    }

    /// Count and (within the log budget) log a refused connection.
    pub fn refused(&self, ip: IpAddr, why: Refused) {
        metrics::counter!("ctid_sip_tcp_rejected_total").increment(1);
        metrics::counter!(crate::metrics::edge::SIP_REFUSED, "reason" => why.as_str()).increment(1);
        let now_ms = self.started.elapsed().as_millis() as u64;
        let allowed = self
            .log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(now_ms);
        if let Some(suppressed) = allowed {
            tracing::warn!(
                source = %ip,
                reason = why.as_str(),
                suppressed,
                "tcp connection refused"
            );
        }
    }

    /// (total, untrusted) connections now.
    pub fn open(&self) -> (usize, usize) {
        let c = self.counts();
        (c.total, c.untrusted)
    }
}

/// One admitted connection's place.
#[derive(Debug)]
pub struct ConnGuard {
    limiter: Arc<ConnLimiter>,
    ip: IpAddr,
    trusted: bool,
}

impl ConnGuard {
    pub fn trusted(&self) -> bool {
        self.trusted
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut c = self.limiter.counts();
        c.total = c.total.saturating_sub(1);
        if !self.trusted {
            c.untrusted = c.untrusted.saturating_sub(1);
            if let Some(n) = c.by_ip.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    c.by_ip.remove(&self.ip);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter() -> Arc<ConnLimiter> {
        ConnLimiter::new(
            ConnLimits {
                max_total: 10,
                reserved_for_trusted: 4,
                per_source: 3,
            },
            vec![PeerNet::try_from("10.0.0.1".to_string()).unwrap()],
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn one_source_gets_its_share_and_no_more() {
        let l = limiter();
        let held: Vec<_> = (0..3).map(|_| l.admit(ip("192.0.2.1")).unwrap()).collect();
        assert_eq!(l.admit(ip("192.0.2.1")).unwrap_err(), Refused::PerSource);
        let other = l
            .admit(ip("192.0.2.2"))
            .expect("another source is admitted");
        drop(held);
        let again = l
            .admit(ip("192.0.2.1"))
            .expect("room again once they closed");
        assert_eq!(l.open(), (2, 2));
        drop((other, again));
        assert_eq!(l.open(), (0, 0));
    }

    #[test]
    fn the_trusted_peer_always_has_its_reserve() {
        let l = limiter();
        let mut held = Vec::new();
        for i in 0..10u8 {
            if let Ok(g) = l.admit(IpAddr::from([192, 0, 2, i])) {
                held.push(g);
            }
        }
        assert_eq!(
            held.len(),
            6,
            "untrusted sources share max_total - reserved"
        );
        assert_eq!(l.admit(ip("192.0.2.200")).unwrap_err(), Refused::Limit);
        let pbx: Vec<_> = (0..4).map(|_| l.admit(ip("10.0.0.1")).unwrap()).collect();
        assert!(pbx.iter().all(ConnGuard::trusted));
        // The pool is full now: even the PBX waits for a place.
        assert_eq!(l.admit(ip("10.0.0.1")).unwrap_err(), Refused::Limit);
        drop(held);
        assert_eq!(l.open(), (4, 0));
    }
}
