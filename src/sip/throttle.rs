//! Throttling of failed digest authentication (password guessing), and a log budget so that a
//! flood of refusals cannot flood the log.
//!
//! Owns: strike counters per source address, per account and per (account, source) pair, the
//! blocks they lead to (a first block of `block`, doubling on each new block up to `max_block`:
//! the backoff), the sources each account recently authenticated from ("known" sources), and the
//! rate-limited info lines that report failures and blocks.
//!
//! The rule, as an SBC operator would expect it:
//! - a source that keeps failing (any account) is blocked; a known source of an account is not
//!   held to that block for that account (phones behind one NAT keep working when a neighbour
//!   guesses), it has its own pair counter instead;
//! - an account that keeps failing from anywhere is blocked for every source that is not known
//!   for it: a distributed guesser cannot lock the real phone out, and cannot go on guessing;
//! - a blocked request is refused before any digest is computed.
//!
//! Memory is bounded: entries are forgotten `forget_after` after their last failure, and at most
//! `max_tracked` entries per table are kept (new keys are not tracked beyond that: the account
//! table still catches a guesser spread over many addresses).
//!
//! Sans-IO: time comes in as unix milliseconds. Must not know: SIP messages, sockets, the clock.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::Duration;

/// How long an account remembers a source it authenticated from.
const KNOWN_FOR_MS: u64 = 24 * 3600 * 1000;
/// Known sources kept per account (the most recent ones).
const KNOWN_PER_ACCOUNT: usize = 8;

/// Settings (`[registrar]` `auth_*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleConfig {
    /// Failures from one source (or one known source of an account) before it is blocked.
    pub max_failures: u32,
    /// Failures for one account, from any unknown source, before it is blocked for them.
    pub account_max_failures: u32,
    /// The first block; each further block of the same key doubles it.
    pub block: Duration,
    pub max_block: Duration,
    /// Failures (and the backoff level) are forgotten this long after the last one.
    pub forget_after: Duration,
    /// Entries kept per table.
    pub max_tracked: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            max_failures: 5,
            account_max_failures: 20,
            block: Duration::from_secs(30),
            max_block: Duration::from_secs(900),
            forget_after: Duration::from_secs(600),
            max_tracked: 16_384,
        }
    }
}

/// Why an authentication failed (the `reason` label of `ctid_sip_auth_failures_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    /// The digest response was wrong: a wrong password.
    WrongPassword,
    /// The username is no account of ctid's.
    UnknownUser,
    /// Credentials that cannot be checked: forged or unknown nonce, realm, algorithm, qop, nc.
    Invalid,
    /// A nonce-count seen before.
    Replay,
    /// Authenticated, but for another address-of-record than the one in To.
    AorMismatch,
}

impl FailReason {
    pub const ALL: [FailReason; 5] = [
        FailReason::WrongPassword,
        FailReason::UnknownUser,
        FailReason::Invalid,
        FailReason::Replay,
        FailReason::AorMismatch,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailReason::WrongPassword => "wrong_password",
            FailReason::UnknownUser => "unknown_user",
            FailReason::Invalid => "invalid",
            FailReason::Replay => "replay",
            FailReason::AorMismatch => "aor_mismatch",
        }
    }

    /// Index into per-reason counters (same order as [`FailReason::ALL`]).
    pub fn index(self) -> usize {
        FailReason::ALL.iter().position(|r| *r == self).unwrap_or(0)
    }
}

/// A refusal: when to come back (whole seconds, for Retry-After) and which block it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub retry_after_secs: u64,
    pub scope: &'static str,
}

#[derive(Debug, Clone, Copy, Default)]
struct Strikes {
    failures: u32,
    last_ms: u64,
    blocked_until_ms: u64,
    /// Blocks so far (the backoff exponent).
    blocks: u32,
}

/// A table of strike counters with bounded size.
#[derive(Debug)]
struct Table<K> {
    map: HashMap<K, Strikes>,
}

impl<K: Hash + Eq + Clone> Table<K> {
    fn new() -> Self {
        Table {
            map: HashMap::new(),
        }
    }

    fn blocked(&self, key: &K, now_ms: u64) -> Option<u64> {
        let s = self.map.get(key)?;
        (s.blocked_until_ms > now_ms).then(|| s.blocked_until_ms - now_ms)
    }

    /// Count a failure; `Some(block_ms)` when it starts a block.
    fn strike(&mut self, key: &K, limit: u32, cfg: &ThrottleConfig, now_ms: u64) -> Option<u64> {
        let forget = cfg.forget_after.as_millis() as u64;
        if !self.map.contains_key(key) {
            if self.map.len() >= cfg.max_tracked {
                self.map.retain(|_, s| {
                    s.blocked_until_ms > now_ms || now_ms.saturating_sub(s.last_ms) < forget
                });
            }
            if self.map.len() >= cfg.max_tracked {
                return None;
            }
        }
        let s = self.map.entry(key.clone()).or_default();
        if s.blocked_until_ms <= now_ms && now_ms.saturating_sub(s.last_ms) >= forget {
            *s = Strikes::default();
        }
        s.failures += 1;
        s.last_ms = now_ms;
        if s.failures < limit.max(1) || s.blocked_until_ms > now_ms {
            return None;
        }
        let base = cfg.block.as_millis() as u64;
        let cap = (cfg.max_block.as_millis() as u64).max(base);
        let ms = base.saturating_mul(1u64 << s.blocks.min(20)).min(cap);
        s.blocked_until_ms = now_ms.saturating_add(ms);
        s.blocks = s.blocks.saturating_add(1);
        s.failures = 0;
        Some(ms)
    }

    fn clear(&mut self, key: &K) {
        self.map.remove(key);
    }
}

/// At most `burst` lines per `window`; lines over the budget are counted, and the count is
/// handed to the next line that may be written.
#[derive(Debug, Clone)]
pub struct LogBudget {
    burst: u32,
    window_ms: u64,
    window_start_ms: u64,
    used: u32,
    suppressed: u64,
}

impl LogBudget {
    pub fn new(burst: u32, window: Duration) -> Self {
        LogBudget {
            burst,
            window_ms: window.as_millis() as u64,
            window_start_ms: 0,
            used: 0,
            suppressed: 0,
        }
    }

    /// `Some(suppressed_before)` when a line may be written now.
    pub fn allow(&mut self, now_ms: u64) -> Option<u64> {
        if now_ms.saturating_sub(self.window_start_ms) >= self.window_ms {
            self.window_start_ms = now_ms;
            self.used = 0;
        }
        if self.used >= self.burst {
            self.suppressed += 1;
            return None;
        }
        self.used += 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// The throttle itself; see the module header for the rule.
#[derive(Debug)]
pub struct AuthThrottle {
    cfg: ThrottleConfig,
    sources: Table<IpAddr>,
    accounts: Table<String>,
    pairs: Table<(String, IpAddr)>,
    known: HashMap<String, Vec<(IpAddr, u64)>>,
    log: LogBudget,
}

impl AuthThrottle {
    pub fn new(cfg: ThrottleConfig) -> Self {
        AuthThrottle {
            cfg,
            sources: Table::new(),
            accounts: Table::new(),
            pairs: Table::new(),
            known: HashMap::new(),
            log: LogBudget::new(20, Duration::from_secs(10)),
        }
    }

    fn is_known(&self, account: &str, ip: IpAddr, now_ms: u64) -> bool {
        self.known.get(account).is_some_and(|v| {
            v.iter()
                .any(|(a, at)| *a == ip && now_ms.saturating_sub(*at) < KNOWN_FOR_MS)
        })
    }

    /// May credentials for `account` (an existing account, or `None`) from `ip` be checked now?
    pub fn check(&self, account: Option<&str>, ip: IpAddr, now_ms: u64) -> Option<Blocked> {
        let refuse = |ms: u64, scope| Blocked {
            retry_after_secs: ms.div_ceil(1000).max(1),
            scope,
        };
        if let Some(a) = account {
            if self.is_known(a, ip, now_ms) {
                return self
                    .pairs
                    .blocked(&(a.to_string(), ip), now_ms)
                    .map(|ms| refuse(ms, "account at this source"));
            }
        }
        if let Some(ms) = self.sources.blocked(&ip, now_ms) {
            return Some(refuse(ms, "source"));
        }
        let a = account?;
        self.accounts
            .blocked(&a.to_string(), now_ms)
            .map(|ms| refuse(ms, "account"))
    }

    /// Count a failed authentication and log it (within the log budget).
    pub fn failed(&mut self, account: Option<&str>, ip: IpAddr, reason: FailReason, now_ms: u64) {
        let cfg = self.cfg.clone();
        let mut blocks: Vec<(&'static str, u64)> = Vec::new();
        let known = account.is_some_and(|a| self.is_known(a, ip, now_ms));
        if let Some(ms) = self.sources.strike(&ip, cfg.max_failures, &cfg, now_ms) {
            blocks.push(("source", ms));
        }
        if let Some(a) = account {
            if known {
                let key = (a.to_string(), ip);
                if let Some(ms) = self.pairs.strike(&key, cfg.max_failures, &cfg, now_ms) {
                    blocks.push(("account at this source", ms));
                }
            } else {
                let key = a.to_string();
                if let Some(ms) = self
                    .accounts
                    .strike(&key, cfg.account_max_failures, &cfg, now_ms)
                {
                    blocks.push(("account", ms));
                }
            }
        }
        let account = account.unwrap_or("-");
        if let Some(suppressed) = self.log.allow(now_ms) {
            tracing::info!(
                account,
                source = %ip,
                reason = reason.as_str(),
                suppressed,
                "SIP authentication failed"
            );
        }
        for (scope, ms) in blocks {
            if let Some(suppressed) = self.log.allow(now_ms) {
                tracing::info!(
                    account,
                    source = %ip,
                    scope,
                    block_secs = ms.div_ceil(1000),
                    suppressed,
                    "too many failed SIP authentications; blocking"
                );
            }
        }
    }

    /// A refused request (blocked): only logged, within the budget.
    pub fn refused(&mut self, account: Option<&str>, ip: IpAddr, b: Blocked, now_ms: u64) {
        if let Some(suppressed) = self.log.allow(now_ms) {
            tracing::info!(
                account = account.unwrap_or("-"),
                source = %ip,
                scope = b.scope,
                retry_after = b.retry_after_secs,
                suppressed,
                "SIP authentication refused: blocked after failures"
            );
        }
    }

    /// A successful authentication: the source becomes known for the account, and the pair's
    /// and the source's failures are forgiven.
    pub fn succeeded(&mut self, account: &str, ip: IpAddr, now_ms: u64) {
        self.pairs.clear(&(account.to_string(), ip));
        if self.sources.blocked(&ip, now_ms).is_none() {
            self.sources.clear(&ip);
        }
        let list = self.known.entry(account.to_string()).or_default();
        list.retain(|(a, at)| *a != ip && now_ms.saturating_sub(*at) < KNOWN_FOR_MS);
        if list.len() >= KNOWN_PER_ACCOUNT {
            list.remove(0);
        }
        list.push((ip, now_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_700_000_000_000;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn throttle() -> AuthThrottle {
        AuthThrottle::new(ThrottleConfig {
            max_failures: 3,
            account_max_failures: 5,
            block: Duration::from_secs(10),
            max_block: Duration::from_secs(40),
            forget_after: Duration::from_secs(60),
            max_tracked: 100,
        })
    }

    #[test]
    fn a_failing_source_is_blocked_with_growing_blocks() {
        let mut t = throttle();
        let bad = ip("192.0.2.9");
        for _ in 0..2 {
            t.failed(Some("1001"), bad, FailReason::WrongPassword, T0);
            assert_eq!(t.check(Some("1001"), bad, T0), None);
        }
        t.failed(Some("1001"), bad, FailReason::WrongPassword, T0);
        let b = t.check(Some("1001"), bad, T0).expect("blocked");
        assert_eq!((b.retry_after_secs, b.scope), (10, "source"));
        // Any account from that source.
        assert!(t.check(Some("1002"), bad, T0 + 9_000).is_some());
        assert_eq!(t.check(Some("1002"), bad, T0 + 10_000), None);
        // Three more failures after the block: the next block is twice as long, then capped.
        let mut now = T0 + 10_000;
        for expect in [20, 40, 40] {
            for _ in 0..3 {
                t.failed(None, bad, FailReason::UnknownUser, now);
            }
            let b = t.check(None, bad, now).expect("blocked again");
            assert_eq!(b.retry_after_secs, expect);
            now += expect * 1000;
        }
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while() {
        let mut t = throttle();
        let src = ip("192.0.2.9");
        for i in 0..2 {
            t.failed(None, src, FailReason::Invalid, T0 + i);
        }
        t.failed(None, src, FailReason::Invalid, T0 + 61_000);
        assert_eq!(t.check(None, src, T0 + 61_000), None);
    }

    #[test]
    fn an_account_under_attack_still_works_from_its_known_source() {
        let mut t = throttle();
        let phone = ip("10.0.0.50");
        t.succeeded("1001", phone, T0);
        // A guesser spread over many addresses: each stays under the source limit.
        for i in 0..5u8 {
            let a = IpAddr::from([198, 51, 100, i]);
            t.failed(Some("1001"), a, FailReason::WrongPassword, T0 + 1);
        }
        let fresh = ip("198.51.100.200");
        let b = t
            .check(Some("1001"), fresh, T0 + 2)
            .expect("account blocked");
        assert_eq!(b.scope, "account");
        assert_eq!(t.check(Some("1001"), phone, T0 + 2), None);
        // Another account is not affected.
        assert_eq!(t.check(Some("1002"), fresh, T0 + 2), None);
    }

    #[test]
    fn a_known_source_is_not_held_to_its_neighbours_block() {
        let mut t = throttle();
        let nat = ip("203.0.113.1");
        t.succeeded("1001", nat, T0);
        for _ in 0..3 {
            t.failed(Some("1002"), nat, FailReason::WrongPassword, T0 + 1);
        }
        assert!(t.check(Some("1002"), nat, T0 + 2).is_some());
        assert_eq!(t.check(Some("1001"), nat, T0 + 2), None);
        // But guessing 1001's password from there is limited by the pair counter.
        for _ in 0..3 {
            t.failed(Some("1001"), nat, FailReason::WrongPassword, T0 + 3);
        }
        let b = t.check(Some("1001"), nat, T0 + 4).expect("pair blocked");
        assert_eq!(b.scope, "account at this source");
    }

    #[test]
    fn tables_stay_bounded() {
        let mut t = throttle();
        for i in 0..500u32 {
            let a = IpAddr::from(i.to_be_bytes());
            t.failed(None, a, FailReason::UnknownUser, T0);
        }
        assert!(t.sources.map.len() <= 100);
        // Once the entries are forgotten, new ones are tracked again.
        let late = ip("192.0.2.77");
        for _ in 0..3 {
            t.failed(None, late, FailReason::UnknownUser, T0 + 61_000);
        }
        assert!(t.check(None, late, T0 + 61_000).is_some());
    }

    #[test]
    fn log_budget_counts_what_it_suppressed() {
        let mut b = LogBudget::new(2, Duration::from_secs(10));
        assert_eq!(b.allow(T0), Some(0));
        assert_eq!(b.allow(T0 + 1), Some(0));
        assert_eq!(b.allow(T0 + 2), None);
        assert_eq!(b.allow(T0 + 3), None);
        assert_eq!(b.allow(T0 + 10_000), Some(2));
        assert_eq!(b.allow(T0 + 10_001), Some(0));
    }

    #[test]
    fn reasons_have_stable_indices() {
        for (i, r) in FailReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
