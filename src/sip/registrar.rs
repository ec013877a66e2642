//! The registrar for agents' seats (RFC 3261 §10.3) with digest authentication.
//!
//! Owns: agent SIP accounts, the bindings of their phones (in memory, authoritative while ctid
//! runs), digest challenges, and the list of changes the store must persist ([`StoreOp`]).
//! Bindings are loaded from the store at start, so seats stay reachable across a restart.
//!
//! Must not know: sockets, SQL, the clock (time comes in as unix milliseconds).

use super::auth::{self, Algorithm, NonceManager, Verdict};
use super::build::response_to;
use super::header::{parse_bounded, NameAddr};
use super::message::{Request, Response};
use super::throttle::{AuthThrottle, FailReason, ThrottleConfig};
use super::uri::Uri;
use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::time::Duration;

/// One agent's SIP account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub agent_id: String,
    pub username: String,
    pub password: String,
    /// HA1 digests instead of the password (`[[agents]] ha1_md5` / `ha1_sha256`): when set,
    /// `password` is unused and an algorithm without its HA1 cannot authenticate.
    pub ha1: Option<Ha1>,
    /// Digest algorithms offered to this account's phone; `None`: the registrar's.
    pub algorithms: Option<Vec<Algorithm>>,
}

/// An account's HA1 digests (lowercase hex), per algorithm.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ha1 {
    pub md5: Option<String>,
    pub sha256: Option<String>,
}

impl Account {
    /// What the digest check compares against.
    pub fn secret(&self) -> auth::Secret<'_> {
        match &self.ha1 {
            Some(h) => auth::Secret::Ha1 {
                md5: h.md5.as_deref(),
                sha256: h.sha256.as_deref(),
            },
            None => auth::Secret::Password(&self.password),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RegistrarConfig {
    pub realm: String,
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts: usize,
    pub algorithms: Vec<Algorithm>,
    pub nonce_lifetime: Duration,
    pub throttle: ThrottleConfig,
}

/// A registered contact of an agent's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub agent_id: String,
    /// Contact URI as the phone sent it.
    pub uri: String,
    /// When the binding lapses (unix ms).
    pub expires_at_ms: u64,
    pub call_id: String,
    pub cseq: u32,
    /// Where the REGISTER really came from (`udp:1.2.3.4:5060`): requests to the seat go there,
    /// so phones behind NAT stay reachable.
    pub source: String,
    /// `q` preference, as sent.
    pub q: Option<String>,
    pub updated_at_ms: u64,
}

/// A change the store must make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreOp {
    Upsert(Binding),
    Delete { agent_id: String, uri: String },
}

/// What happened to a REGISTER, for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Challenged,
    Registered,
    Rejected,
    /// Credentials were checked and failed (answered with a new challenge, or 403).
    AuthFailed(FailReason),
    /// Refused without checking: the source or account is blocked after failures (403 with
    /// Retry-After).
    Throttled,
}

pub struct Registrar {
    cfg: RegistrarConfig,
    by_username: HashMap<String, Account>,
    /// agent id → username.
    by_agent: HashMap<String, String>,
    bindings: HashMap<String, Vec<Binding>>,
    /// (expires_at_ms, agent id, uri) of every binding: expiry pops what is due instead of
    /// scanning every binding on each REGISTER.
    expiry: BTreeSet<(u64, String, String)>,
    nonces: NonceManager,
    throttle: AuthThrottle,
    ops: Vec<StoreOp>,
}

impl Registrar {
    pub fn new(cfg: RegistrarConfig, accounts: Vec<Account>, nonce_secret: [u8; 32]) -> Self {
        let nonces = NonceManager::new(nonce_secret, cfg.nonce_lifetime, 16_384);
        let throttle = AuthThrottle::new(cfg.throttle.clone());
        Registrar {
            by_agent: accounts
                .iter()
                .map(|a| (a.agent_id.clone(), a.username.clone()))
                .collect(),
            by_username: accounts
                .into_iter()
                .map(|a| (a.username.clone(), a))
                .collect(),
            cfg,
            bindings: HashMap::new(),
            expiry: BTreeSet::new(),
            nonces,
            throttle,
            ops: Vec::new(),
        }
    }

    /// Bindings read back from the store at start; expired ones are dropped (and deleted).
    pub fn load(&mut self, bindings: Vec<Binding>, now_ms: u64) {
        for b in bindings {
            if b.expires_at_ms <= now_ms {
                self.ops.push(StoreOp::Delete {
                    agent_id: b.agent_id,
                    uri: b.uri,
                });
            } else {
                self.expiry
                    .insert((b.expires_at_ms, b.agent_id.clone(), b.uri.clone()));
                self.bindings.entry(b.agent_id.clone()).or_default().push(b);
            }
        }
    }

    /// Store changes accumulated since the last call.
    pub fn take_ops(&mut self) -> Vec<StoreOp> {
        std::mem::take(&mut self.ops)
    }

    /// Live bindings of an agent (the phones to ring), best `q` first.
    pub fn contacts(&self, agent_id: &str, now_ms: u64) -> Vec<&Binding> {
        let mut v: Vec<&Binding> = self
            .bindings
            .get(agent_id)
            .map(|v| v.iter().filter(|b| b.expires_at_ms > now_ms).collect())
            .unwrap_or_default();
        v.sort_by(|a, b| q_value(b).total_cmp(&q_value(a)));
        v
    }

    /// Number of live bindings, for metrics.
    pub fn binding_count(&self) -> usize {
        self.expiry.len()
    }

    /// Remove lapsed bindings; returns when the next one lapses. Costs what is due, not what
    /// is registered.
    pub fn expire(&mut self, now_ms: u64) -> Option<u64> {
        while let Some(first) = self.expiry.first() {
            if first.0 > now_ms {
                return Some(first.0);
            }
            let Some((_, agent_id, uri)) = self.expiry.pop_first() else {
                break;
            };
            if let Some(list) = self.bindings.get_mut(&agent_id) {
                list.retain(|b| b.uri != uri);
                if list.is_empty() {
                    self.bindings.remove(&agent_id);
                }
            }
            self.ops.push(StoreOp::Delete { agent_id, uri });
        }
        None
    }

    /// Answer a REGISTER. `source` is where it came from (`udp:ip:port`), `ip` its address
    /// (what authentication throttling counts by).
    pub fn handle_register(
        &mut self,
        req: &Request,
        source: &str,
        ip: IpAddr,
        now_ms: u64,
    ) -> (Response, Outcome) {
        // The AOR in To must be a SIP URI naming one of our agents.
        let to = req.headers.get("To").and_then(|v| NameAddr::parse(v).ok());
        let aor_user = match to.as_ref().map(|t| Uri::parse(&t.uri)) {
            Some(Ok(Uri::Sip(u))) => u.user.as_deref().map(super::uri::unescape),
            _ => return (reject(req, 400, "To must be a SIP URI"), Outcome::Rejected),
        };
        let tag = super::build::new_tag();
        // Authenticate.
        let creds = req
            .headers
            .get_all("Authorization")
            .filter_map(|v| auth::parse_credentials(v).ok())
            .find(|c| c.realm == self.cfg.realm);
        // The challenge offers the algorithms of the account the To header names (its phone
        // may speak only some), else the registrar's.
        let aor = aor_user.as_deref().unwrap_or("");
        let Some(creds) = creds else {
            return (
                self.challenge(req, aor, false, now_ms, &tag),
                Outcome::Challenged,
            );
        };
        let account = self.by_username.get(&creds.username).cloned();
        let name = account.as_ref().map(|a| a.username.as_str());
        if let Some(b) = self.throttle.check(name, ip, now_ms) {
            self.throttle.refused(name, ip, b, now_ms);
            let mut r = reject(req, 403, "Forbidden: too many failed authentications");
            r.headers
                .push("Retry-After", b.retry_after_secs.to_string());
            return (r, Outcome::Throttled);
        }
        let Some(account) = account else {
            let reason = FailReason::UnknownUser;
            self.throttle.failed(None, ip, reason, now_ms);
            return (
                self.challenge(req, aor, false, now_ms, &tag),
                Outcome::AuthFailed(reason),
            );
        };
        let user = account.username.as_str();
        let failure = match self.nonces.verify(
            &creds,
            "REGISTER",
            account.secret(),
            &self.cfg.realm,
            account.algorithms.as_ref().unwrap_or(&self.cfg.algorithms),
            now_ms,
        ) {
            Verdict::Ok => None,
            Verdict::Stale => {
                return (
                    self.challenge(req, aor, true, now_ms, &tag),
                    Outcome::Challenged,
                )
            }
            Verdict::Rejected("wrong response") => Some(FailReason::WrongPassword),
            Verdict::Rejected(_) => Some(FailReason::Invalid),
            Verdict::Replay => Some(FailReason::Replay),
        };
        if let Some(reason) = failure {
            self.throttle.failed(Some(user), ip, reason, now_ms);
            return (
                self.challenge(req, aor, false, now_ms, &tag),
                Outcome::AuthFailed(reason),
            );
        }
        if aor_user.as_deref() != Some(user) {
            self.throttle
                .failed(Some(user), ip, FailReason::AorMismatch, now_ms);
            return (
                reject(
                    req,
                    403,
                    "Forbidden: To does not match the authenticated user",
                ),
                Outcome::AuthFailed(FailReason::AorMismatch),
            );
        }
        self.throttle.succeeded(user, ip, now_ms);
        match self.apply(req, &account, source, now_ms) {
            Ok(()) => {
                let mut resp = response_to(req, 200, Some(&tag));
                for b in self.contacts(&account.agent_id, now_ms) {
                    let left = b.expires_at_ms.saturating_sub(now_ms).div_ceil(1000);
                    resp.headers
                        .push("Contact", format!("<{}>;expires={}", b.uri, left));
                }
                (resp, Outcome::Registered)
            }
            Err(resp) => (*resp, Outcome::Rejected),
        }
    }

    fn challenge(
        &mut self,
        req: &Request,
        username: &str,
        stale: bool,
        now_ms: u64,
        tag: &str,
    ) -> Response {
        let mut resp = response_to(req, 401, Some(tag));
        let algorithms = self
            .by_username
            .get(username)
            .and_then(|a| a.algorithms.as_ref())
            .unwrap_or(&self.cfg.algorithms);
        for v in self
            .nonces
            .challenge(&self.cfg.realm, algorithms, stale, now_ms)
        {
            resp.headers.push("WWW-Authenticate", v);
        }
        resp
    }

    /// Apply the Contact changes of an authenticated REGISTER (§10.3 steps 6–8).
    fn apply(
        &mut self,
        req: &Request,
        account: &Account,
        source: &str,
        now_ms: u64,
    ) -> Result<(), Box<Response>> {
        let header_expires = req
            .headers
            .get("Expires")
            .and_then(|e| parse_bounded(e, u32::MAX as u64));
        let call_id = req.headers.get("Call-ID").unwrap_or("").to_string();
        let cseq = req
            .headers
            .get("CSeq")
            .and_then(|c| super::header::CSeq::parse(c).ok())
            .map_or(0, |c| c.seq);
        let contacts: Vec<&str> = req.headers.get_all("Contact").collect();
        if contacts.iter().any(|c| c.trim() == "*") {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Err(Box::new(reject(
                    req,
                    400,
                    "Contact * needs Expires: 0 and no other contacts",
                )));
            }
            if let Some(list) = self.bindings.get_mut(&account.agent_id) {
                for b in list.drain(..) {
                    self.expiry
                        .remove(&(b.expires_at_ms, b.agent_id.clone(), b.uri.clone()));
                    self.ops.push(StoreOp::Delete {
                        agent_id: b.agent_id,
                        uri: b.uri,
                    });
                }
            }
            return Ok(());
        }
        // Validate every contact before changing anything.
        let mut changes = Vec::with_capacity(contacts.len());
        for c in contacts {
            let na = NameAddr::parse(c)
                .map_err(|e| Box::new(reject(req, 400, &format!("Invalid Contact: {e}"))))?;
            let expires = match na.params.value("expires") {
                Some(e) => parse_bounded(e, u32::MAX as u64),
                None => header_expires,
            }
            .map_or(self.cfg.default_expires, |e| e.min(u32::MAX as u64) as u32);
            if expires != 0 && expires < self.cfg.min_expires {
                let mut r = response_to(req, 423, Some(&super::build::new_tag()));
                r.headers
                    .push("Min-Expires", self.cfg.min_expires.to_string());
                return Err(Box::new(r));
            }
            changes.push((na, expires.min(self.cfg.max_expires)));
        }
        let list = self.bindings.entry(account.agent_id.clone()).or_default();
        for (na, expires) in changes {
            let existing = list.iter().position(|b| same_uri(&b.uri, &na.uri));
            if let Some(i) = existing {
                if list[i].call_id == call_id && list[i].cseq >= cseq {
                    return Err(Box::new(reject(
                        req,
                        400,
                        "Out-of-order CSeq for this binding",
                    )));
                }
            }
            if expires == 0 {
                if let Some(i) = existing {
                    let b = list.remove(i);
                    self.expiry
                        .remove(&(b.expires_at_ms, b.agent_id.clone(), b.uri.clone()));
                    self.ops.push(StoreOp::Delete {
                        agent_id: b.agent_id,
                        uri: b.uri,
                    });
                }
                continue;
            }
            let binding = Binding {
                agent_id: account.agent_id.clone(),
                uri: na.uri.clone(),
                expires_at_ms: now_ms + u64::from(expires) * 1000,
                call_id: call_id.clone(),
                cseq,
                source: source.to_string(),
                q: na.params.value("q").map(str::to_string),
                updated_at_ms: now_ms,
            };
            match existing {
                Some(i) => {
                    let old = std::mem::replace(&mut list[i], binding.clone());
                    self.expiry
                        .remove(&(old.expires_at_ms, old.agent_id, old.uri));
                }
                None => {
                    if list.len() >= self.cfg.max_contacts {
                        // The phone that has been quiet longest makes room (a rebooted phone
                        // registers under a new Call-ID and leaves its old binding behind).
                        if let Some(oldest) = (0..list.len()).min_by_key(|&i| list[i].updated_at_ms)
                        {
                            let b = list.remove(oldest);
                            self.expiry.remove(&(
                                b.expires_at_ms,
                                b.agent_id.clone(),
                                b.uri.clone(),
                            ));
                            self.ops.push(StoreOp::Delete {
                                agent_id: b.agent_id,
                                uri: b.uri,
                            });
                        }
                    }
                    list.push(binding.clone());
                }
            }
            self.expiry.insert((
                binding.expires_at_ms,
                binding.agent_id.clone(),
                binding.uri.clone(),
            ));
            self.ops.push(StoreOp::Upsert(binding));
        }
        Ok(())
    }

    pub fn account_by_agent(&self, agent_id: &str) -> Option<&Account> {
        self.by_agent
            .get(agent_id)
            .and_then(|u| self.by_username.get(u))
    }
}

fn q_value(b: &Binding) -> f64 {
    b.q.as_deref()
        .and_then(|q| q.parse::<f64>().ok())
        .unwrap_or(1.0)
}

/// Contact URIs compare case-insensitively here (phones re-send the same text).
fn same_uri(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn reject(req: &Request, status: u16, reason: &str) -> Response {
    let mut r = response_to(req, status, Some(&super::build::new_tag()));
    r.reason = reason.to_string();
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::message::Method;

    const NOW: u64 = 1_700_000_000_000;
    const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn registrar() -> Registrar {
        Registrar::new(
            RegistrarConfig {
                realm: "ctid".into(),
                min_expires: 60,
                max_expires: 3600,
                default_expires: 600,
                max_contacts: 2,
                algorithms: vec![Algorithm::Sha256, Algorithm::Md5],
                nonce_lifetime: Duration::from_secs(300),
                throttle: ThrottleConfig::default(),
            },
            vec![Account {
                agent_id: "a1".into(),
                username: "1001".into(),
                password: "pw".into(),
                ha1: None,
                algorithms: None,
            }],
            [7; 32],
        )
    }

    fn register(contact: Option<&str>, expires: Option<&str>, cseq: u32) -> Request {
        let mut r = Request::new(Method::Register, "sip:ctid");
        r.headers
            .push("Via", "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1");
        r.headers.push("From", "<sip:1001@ctid>;tag=x");
        r.headers.push("To", "<sip:1001@ctid>");
        r.headers.push("Call-ID", "reg-1");
        r.headers.push("CSeq", format!("{cseq} REGISTER"));
        if let Some(c) = contact {
            r.headers.push("Contact", c);
        }
        if let Some(e) = expires {
            r.headers.push("Expires", e);
        }
        r
    }

    /// Answer the challenge in `resp` the way a phone would.
    fn authed(reg: &mut Registrar, mut req: Request, nc: u32, password: &str) -> Response {
        let (resp, outcome) = reg.handle_register(&req, "udp:127.0.0.1:5070", LOCAL, NOW);
        assert_eq!(outcome, Outcome::Challenged);
        let ch = auth::pick_challenge(resp.headers.get_all("WWW-Authenticate")).unwrap();
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        let a = auth::authorization(&ch, "REGISTER", "sip:ctid", "1001", password, nc, "cn");
        req.headers.push("Authorization", a);
        reg.handle_register(&req, "udp:127.0.0.1:5070", LOCAL, NOW)
            .0
    }

    #[test]
    fn challenge_then_register_lists_binding() {
        let mut reg = registrar();
        let resp = authed(
            &mut reg,
            register(Some("<sip:1001@10.0.0.5:5062>"), Some("120"), 1),
            1,
            "pw",
        );
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.headers.get("Contact"),
            Some("<sip:1001@10.0.0.5:5062>;expires=120")
        );
        assert_eq!(reg.contacts("a1", NOW).len(), 1);
        assert!(matches!(reg.take_ops().as_slice(), [StoreOp::Upsert(_)]));
    }

    #[test]
    fn wrong_password_is_challenged_again() {
        let mut reg = registrar();
        let resp = authed(&mut reg, register(Some("<sip:1001@h>"), None, 1), 1, "nope");
        assert_eq!(resp.status, 401);
        assert!(reg.contacts("a1", NOW).is_empty());
    }

    #[test]
    fn too_brief_and_unregister() {
        let mut reg = registrar();
        let resp = authed(
            &mut reg,
            register(Some("<sip:1001@h>"), Some("10"), 1),
            1,
            "pw",
        );
        assert_eq!(resp.status, 423);
        assert_eq!(resp.headers.get("Min-Expires"), Some("60"));
        let resp = authed(
            &mut reg,
            register(Some("<sip:1001@h>"), Some("100"), 2),
            1,
            "pw",
        );
        assert_eq!(resp.status, 200);
        let resp = authed(
            &mut reg,
            register(Some("<sip:1001@h>;expires=0"), None, 3),
            1,
            "pw",
        );
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers.get("Contact"), None);
        assert!(reg.contacts("a1", NOW).is_empty());
    }

    #[test]
    fn star_removes_all_and_limit_evicts_oldest() {
        let mut reg = registrar();
        for (i, c) in ["<sip:a@h1>", "<sip:b@h2>", "<sip:c@h3>"]
            .iter()
            .enumerate()
        {
            let mut r = register(Some(c), Some("300"), i as u32 + 1);
            r.headers.set("Call-ID", format!("call-{i}"));
            assert_eq!(authed(&mut reg, r, 1, "pw").status, 200);
        }
        assert_eq!(reg.contacts("a1", NOW).len(), 2);
        let resp = authed(&mut reg, register(Some("*"), Some("0"), 9), 1, "pw");
        assert_eq!(resp.status, 200);
        assert!(reg.contacts("a1", NOW).is_empty());
        let resp = authed(&mut reg, register(Some("*"), Some("5"), 10), 1, "pw");
        assert_eq!(resp.status, 400);
    }

    #[test]
    fn bindings_expire_and_load_skips_lapsed() {
        let mut reg = registrar();
        authed(
            &mut reg,
            register(Some("<sip:a@h>"), Some("60"), 1),
            1,
            "pw",
        );
        reg.take_ops();
        assert_eq!(reg.expire(NOW + 59_000), Some(NOW + 60_000));
        assert_eq!(reg.expire(NOW + 60_000), None);
        assert!(matches!(
            reg.take_ops().as_slice(),
            [StoreOp::Delete { .. }]
        ));
        let mut fresh = registrar();
        let b = Binding {
            agent_id: "a1".into(),
            uri: "sip:a@h".into(),
            expires_at_ms: NOW + 1000,
            call_id: "c".into(),
            cseq: 1,
            source: "udp:127.0.0.1:5070".into(),
            q: None,
            updated_at_ms: NOW,
        };
        let lapsed = Binding {
            uri: "sip:b@h".into(),
            expires_at_ms: NOW - 1,
            ..b.clone()
        };
        fresh.load(vec![b, lapsed], NOW);
        assert_eq!(fresh.contacts("a1", NOW).len(), 1);
        assert_eq!(fresh.take_ops().len(), 1);
    }

    /// One REGISTER answering a fresh challenge with `password`, from `ip`.
    fn attempt(reg: &mut Registrar, ip: IpAddr, password: &str, cseq: u32, now: u64) -> Response {
        let mut req = register(Some("<sip:1001@10.0.0.5:5062>"), Some("120"), cseq);
        let src = format!("udp:{ip}:5070");
        let (resp, _) = reg.handle_register(&req, &src, ip, now);
        let ch = auth::pick_challenge(resp.headers.get_all("WWW-Authenticate")).unwrap();
        let a = auth::authorization(&ch, "REGISTER", "sip:ctid", "1001", password, 1, "cn");
        req.headers.push("Authorization", a);
        reg.handle_register(&req, &src, ip, now).0
    }

    #[test]
    fn password_guessing_is_blocked_but_the_phone_elsewhere_registers() {
        let mut reg = registrar();
        let attacker: IpAddr = "192.0.2.66".parse().unwrap();
        let phone: IpAddr = "10.0.0.5".parse().unwrap();
        let limit = ThrottleConfig::default().max_failures;
        for i in 0..limit {
            let r = attempt(&mut reg, attacker, "guess", i + 1, NOW);
            assert_eq!(r.status, 401, "guess {i} is challenged again");
        }
        // Blocked: refused before any digest is checked, even with the right password.
        let r = attempt(&mut reg, attacker, "pw", 50, NOW + 1);
        assert_eq!(r.status, 403);
        let retry: u64 = r.headers.get("Retry-After").unwrap().parse().unwrap();
        assert_eq!(retry, ThrottleConfig::default().block.as_secs());
        assert!(reg.contacts("a1", NOW).is_empty());
        // The real phone, from its own address, is not locked out.
        let r = attempt(&mut reg, phone, "pw", 60, NOW + 2);
        assert_eq!(r.status, 200);
        // After the block the attacker's right password works again.
        let later = NOW + retry * 1000;
        let r = attempt(&mut reg, attacker, "pw", 70, later);
        assert_eq!(r.status, 200);
    }

    #[test]
    fn failures_are_reported_with_their_reason() {
        let mut reg = registrar();
        let mut req = register(Some("<sip:1001@h>"), None, 1);
        req.headers.push(
            "Authorization",
            "Digest username=\"nobody\", realm=\"ctid\", nonce=\"x\", uri=\"sip:ctid\", response=\"00\"",
        );
        let (r, outcome) = reg.handle_register(&req, "udp:x", LOCAL, NOW);
        assert_eq!(r.status, 401);
        assert_eq!(outcome, Outcome::AuthFailed(FailReason::UnknownUser));
        req.headers.set(
            "Authorization",
            "Digest username=\"1001\", realm=\"ctid\", nonce=\"forged\", uri=\"sip:ctid\", response=\"00\", qop=auth, nc=00000001, cnonce=\"c\"",
        );
        let (_, outcome) = reg.handle_register(&req, "udp:x", LOCAL, NOW);
        assert_eq!(outcome, Outcome::AuthFailed(FailReason::Invalid));
    }

    #[test]
    fn expiry_pops_only_what_is_due() {
        let mut reg = registrar();
        let mut many = Vec::new();
        for i in 0..1000u64 {
            many.push(Binding {
                agent_id: format!("a{i}"),
                uri: format!("sip:p{i}@h"),
                expires_at_ms: NOW + 1000 + i,
                call_id: "c".into(),
                cseq: 1,
                source: "udp:127.0.0.1:5070".into(),
                q: None,
                updated_at_ms: NOW,
            });
        }
        reg.load(many, NOW);
        assert_eq!(reg.binding_count(), 1000);
        assert_eq!(reg.expire(NOW + 1009), Some(NOW + 1010));
        assert_eq!(reg.binding_count(), 990);
        assert_eq!(reg.take_ops().len(), 10);
        assert!(reg.contacts("a5", NOW).is_empty());
        assert_eq!(reg.contacts("a10", NOW).len(), 1);
        // A refreshed binding moves in the index: it does not lapse at its old time.
        let r = authed(
            &mut reg,
            register(Some("<sip:1001@h>"), Some("60"), 1),
            1,
            "pw",
        );
        assert_eq!(r.status, 200);
        let r = authed(
            &mut reg,
            register(Some("<sip:1001@h>"), Some("120"), 2),
            1,
            "pw",
        );
        assert_eq!(r.status, 200);
        reg.expire(NOW + 61_000);
        assert_eq!(reg.contacts("a1", NOW + 61_000).len(), 1);
        reg.expire(NOW + 120_000);
        assert!(reg.contacts("a1", NOW + 120_000).is_empty());
        assert_eq!(reg.binding_count(), 0);
    }

    #[test]
    fn non_sip_aor_is_400() {
        let mut reg = registrar();
        let mut r = register(None, None, 1);
        r.headers.set("To", "isbn:2983792873");
        assert_eq!(reg.handle_register(&r, "udp:x", LOCAL, NOW).0.status, 400);
    }

    /// Global MD5 (what old phones need), one account on SHA-256 only: each phone is challenged
    /// with its own list, and only an answer in that list is accepted.
    #[test]
    fn per_account_algorithms_choose_the_challenge() {
        let account = |id: &str, algorithms| Account {
            agent_id: id.into(),
            username: id.into(),
            password: "pw".into(),
            ha1: None,
            algorithms,
        };
        let mut reg = Registrar::new(
            RegistrarConfig {
                algorithms: vec![Algorithm::Md5],
                ..registrar().cfg
            },
            vec![
                account("1001", None),
                account("1002", Some(vec![Algorithm::Sha256])),
            ],
            [7; 32],
        );
        let as_user = |user: &str| {
            let mut r = register(Some("<sip:x@h>"), Some("120"), 1);
            r.headers.set("From", format!("<sip:{user}@ctid>;tag=x"));
            r.headers.set("To", format!("<sip:{user}@ctid>"));
            r.headers.set("Call-ID", format!("reg-{user}"));
            r
        };
        let algorithms = |resp: &Response| -> Vec<Algorithm> {
            resp.headers
                .get_all("WWW-Authenticate")
                .filter_map(|v| auth::parse_challenge(v).ok())
                .map(|c| c.algorithm)
                .collect()
        };
        let (old, _) = reg.handle_register(&as_user("1001"), "udp:127.0.0.1:5070", LOCAL, NOW);
        assert_eq!(algorithms(&old), vec![Algorithm::Md5]);
        let (new, _) = reg.handle_register(&as_user("1002"), "udp:127.0.0.1:5071", LOCAL, NOW);
        assert_eq!(algorithms(&new), vec![Algorithm::Sha256]);
        // 1002 answering an MD5 challenge (issued to 1001) is refused; its own SHA-256 works.
        let md5 = auth::pick_challenge(old.headers.get_all("WWW-Authenticate")).unwrap();
        let mut r = as_user("1002");
        r.headers.push(
            "Authorization",
            auth::authorization(&md5, "REGISTER", "sip:ctid", "1002", "pw", 1, "c1"),
        );
        assert_eq!(
            reg.handle_register(&r, "udp:127.0.0.1:5071", LOCAL, NOW)
                .0
                .status,
            401
        );
        let sha = auth::pick_challenge(new.headers.get_all("WWW-Authenticate")).unwrap();
        let mut r = as_user("1002");
        r.headers.push(
            "Authorization",
            auth::authorization(&sha, "REGISTER", "sip:ctid", "1002", "pw", 1, "c2"),
        );
        assert_eq!(
            reg.handle_register(&r, "udp:127.0.0.1:5071", LOCAL, NOW)
                .0
                .status,
            200
        );
        assert_eq!(reg.contacts("1002", NOW).len(), 1);
    }
}
