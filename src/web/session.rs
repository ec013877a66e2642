//! Signed-in browser sessions of the web pages: who may sign in, and the server-side session
//! table behind the `ctid_session` cookie.
//!
//! Owns: checking a sign-in (an API token, or an agent's `[[agents]]` SIP username and
//! password, both compared in constant time), session ids and CSRF tokens (32 random bytes from
//! the thread's CSPRNG, hex), their expiry (idle and absolute), and a brake on repeated failed
//! sign-ins from one address.
//!
//! Must not know: HTTP (the caller reads the cookie and headers), the API's routes or call
//! state. Time is an input (`now_ms`) so the rules are unit-tested without a clock.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use rand::Rng;
use subtle::ConstantTimeEq;

use crate::api::{Principal, Role};

/// A session unused this long is gone (every page request refreshes it; an open page polls).
pub const IDLE_MS: u64 = 2 * 3600 * 1000;
/// A session lasts at most this long, however busy: a 12-hour shift and some, then sign in again.
pub const ABSOLUTE_MS: u64 = 14 * 3600 * 1000;
/// Most sessions held at once (the oldest goes first beyond it).
pub const MAX_SESSIONS: usize = 10_000;
/// Failed sign-ins from one address within [`FAIL_WINDOW_MS`] before it is refused for the rest
/// of the window.
pub const MAX_FAILURES: u32 = 10;
pub const FAIL_WINDOW_MS: u64 = 5 * 60 * 1000;

/// An agent's SIP credentials, usable to sign in to `/agent`.
#[derive(Debug, Clone)]
pub struct AgentLogin {
    pub id: String,
    pub username: String,
    pub password: String,
}

/// What a sign-in presents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    Token(String),
    Password { username: String, password: String },
}

/// One signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub principal: Principal,
    /// Sent back by the page in `X-CSRF-Token` on every state change.
    pub csrf: String,
    pub created_ms: u64,
    pub last_seen_ms: u64,
}

impl Session {
    fn expired(&self, now_ms: u64) -> bool {
        now_ms.saturating_sub(self.last_seen_ms) >= IDLE_MS
            || now_ms.saturating_sub(self.created_ms) >= ABSOLUTE_MS
    }
}

/// Why a sign-in was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInError {
    /// Unknown token, or wrong username/password (the answer never says which).
    Bad,
    /// Too many failures from this address lately.
    Throttled,
}

/// The session table. Cheap operations under one short mutex.
pub struct Sessions {
    agents: Vec<AgentLogin>,
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    by_id: HashMap<String, Session>,
    failures: HashMap<IpAddr, (u32, u64)>,
}

/// 32 random bytes as 64 hex digits.
pub fn random_hex() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time equality of two strings (length may leak, content does not).
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    pub fn new(agents: Vec<AgentLogin>) -> Sessions {
        Sessions {
            agents,
            inner: Mutex::new(Table::default()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Checks `creds` (a token through `token_lookup`, the API's own check) and opens a
    /// session: its id (for the cookie) and the session.
    pub fn sign_in(
        &self,
        creds: &Credentials,
        from: Option<IpAddr>,
        now_ms: u64,
        token_lookup: impl Fn(&[u8]) -> Option<Principal>,
    ) -> Result<(String, Session), SignInError> {
        if let Some(ip) = from {
            let t = self.table();
            if let Some((n, since)) = t.failures.get(&ip) {
                if *n >= MAX_FAILURES && now_ms.saturating_sub(*since) < FAIL_WINDOW_MS {
                    return Err(SignInError::Throttled);
                }
            }
        }
        let principal = match creds {
            Credentials::Token(t) => token_lookup(t.trim().as_bytes()),
            Credentials::Password { username, password } => self.check_password(username, password),
        };
        let mut t = self.table();
        let Some(principal) = principal else {
            if let Some(ip) = from {
                let e = t.failures.entry(ip).or_insert((0, now_ms));
                if now_ms.saturating_sub(e.1) >= FAIL_WINDOW_MS {
                    *e = (0, now_ms);
                }
                e.0 += 1;
            }
            return Err(SignInError::Bad);
        };
        if let Some(ip) = from {
            t.failures.remove(&ip);
        }
        t.by_id.retain(|_, s| !s.expired(now_ms));
        while t.by_id.len() >= MAX_SESSIONS {
            let oldest = t
                .by_id
                .iter()
                .min_by_key(|(_, s)| s.last_seen_ms)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => t.by_id.remove(&k),
                None => break,
            };
        }
        let session = Session {
            principal,
            csrf: random_hex(),
            created_ms: now_ms,
            last_seen_ms: now_ms,
        };
        let id = random_hex();
        t.by_id.insert(id.clone(), session.clone());
        Ok((id, session))
    }

    /// An agent's SIP username and password: the agent itself. Every agent is compared.
    fn check_password(&self, username: &str, password: &str) -> Option<Principal> {
        let mut found = None;
        for a in &self.agents {
            let ok = same(&a.username, username) & same(&a.password, password);
            if ok && !a.password.is_empty() {
                found = Some(Principal {
                    role: Role::Agent,
                    agent: Some(a.id.clone()),
                });
            }
        }
        found
    }

    /// The live session `id`, refreshed; `None` when unknown or expired (then removed).
    pub fn get(&self, id: &str, now_ms: u64) -> Option<Session> {
        let mut t = self.table();
        let s = t.by_id.get_mut(id)?;
        if s.expired(now_ms) {
            t.by_id.remove(id);
            return None;
        }
        s.last_seen_ms = now_ms;
        Some(s.clone())
    }

    /// Ends session `id` (signing out).
    pub fn end(&self, id: &str) {
        self.table().by_id.remove(id);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUP: &str = "supervisor-token-000000";

    fn sessions() -> Sessions {
        Sessions::new(vec![AgentLogin {
            id: "a1".into(),
            username: "1001".into(),
            password: "pw1001".into(),
        }])
    }

    fn lookup(t: &[u8]) -> Option<Principal> {
        (t == SUP.as_bytes()).then_some(Principal {
            role: Role::Supervisor,
            agent: None,
        })
    }

    fn pw(u: &str, p: &str) -> Credentials {
        Credentials::Password {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn token_and_password_sign_in_give_the_right_principal() {
        let s = sessions();
        let (_, sup) = s
            .sign_in(&Credentials::Token(SUP.into()), None, 0, lookup)
            .unwrap();
        assert_eq!(sup.principal.role, Role::Supervisor);
        let (id, ag) = s.sign_in(&pw("1001", "pw1001"), None, 0, lookup).unwrap();
        assert_eq!(ag.principal.role, Role::Agent);
        assert_eq!(ag.principal.agent.as_deref(), Some("a1"));
        assert_eq!(id.len(), 64);
        assert_ne!(ag.csrf, id);
        assert_eq!(s.get(&id, 1).unwrap().principal, ag.principal);
    }

    #[test]
    fn wrong_credentials_are_refused() {
        let s = sessions();
        for c in [
            pw("1001", "nope"),
            pw("1002", "pw1001"),
            pw("", ""),
            Credentials::Token("x".into()),
        ] {
            assert_eq!(s.sign_in(&c, None, 0, lookup), Err(SignInError::Bad));
        }
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn sessions_expire_when_idle_and_after_the_absolute_limit() {
        let s = sessions();
        let (id, _) = s.sign_in(&pw("1001", "pw1001"), None, 0, lookup).unwrap();
        assert!(s.get(&id, IDLE_MS - 1).is_some());
        // Refreshed at IDLE_MS - 1: still there one idle period later, minus one.
        assert!(s.get(&id, 2 * IDLE_MS - 2).is_some());
        let (id2, _) = s.sign_in(&pw("1001", "pw1001"), None, 0, lookup).unwrap();
        assert!(s.get(&id2, IDLE_MS).is_none(), "idle for IDLE_MS");
        // Kept busy, it still ends at ABSOLUTE_MS.
        let (id3, _) = s.sign_in(&pw("1001", "pw1001"), None, 0, lookup).unwrap();
        let mut t = 0;
        while t + IDLE_MS / 2 < ABSOLUTE_MS {
            t += IDLE_MS / 2;
            assert!(s.get(&id3, t).is_some(), "at {t}");
        }
        assert!(s.get(&id3, ABSOLUTE_MS).is_none());
    }

    #[test]
    fn signing_out_ends_the_session() {
        let s = sessions();
        let (id, _) = s.sign_in(&pw("1001", "pw1001"), None, 0, lookup).unwrap();
        s.end(&id);
        assert!(s.get(&id, 1).is_none());
        assert!(s.get("not-a-session", 1).is_none());
    }

    #[test]
    fn repeated_failures_from_one_address_are_throttled_for_the_window() {
        let s = sessions();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert_eq!(
                s.sign_in(&pw("1001", "bad"), Some(ip), 10, lookup),
                Err(SignInError::Bad)
            );
        }
        // Even the right password is refused now, from that address only.
        assert_eq!(
            s.sign_in(&pw("1001", "pw1001"), Some(ip), 20, lookup),
            Err(SignInError::Throttled)
        );
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(s
            .sign_in(&pw("1001", "pw1001"), Some(other), 20, lookup)
            .is_ok());
        assert!(s
            .sign_in(&pw("1001", "pw1001"), Some(ip), 10 + FAIL_WINDOW_MS, lookup)
            .is_ok());
    }

    #[test]
    fn session_ids_are_random() {
        let a = random_hex();
        let b = random_hex();
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
