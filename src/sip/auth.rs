//! SIP digest authentication (RFC 7616 with the RFC 8760 SIP profile, plus the
//! RFC 2617 compatibility form), for both roles.
//!
//! This module owns:
//! - the digest math (HA1 / HA2 / response for MD5 and SHA-256);
//! - the server-side nonce lifecycle: stateless, self-validating nonces keyed
//!   with a process secret, freshness, and bounded nonce-count (replay)
//!   tracking ([`NonceManager`]);
//! - parsing and formatting of the *values* of the `WWW-Authenticate`,
//!   `Proxy-Authenticate`, `Authorization` and `Proxy-Authorization` headers.
//!
//! It must not know about SIP transactions, dialogs, sockets, user databases or
//! the clock: it is sans-IO. Callers pass the current time in (milliseconds
//! since the Unix epoch), look the password up themselves, and decide which
//! header name (401 vs 407 flavour) carries the values built here.
//!
//! Files: the math, the server side's credentials and nonces here; the header-value lexer in
//! `auth/params.rs`; the client side (challenges, `Authorization`) in `auth/client.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use md5::{Digest, Md5};
use sha2::Sha256;
use subtle::ConstantTimeEq;

mod client;
mod params;
pub use client::{authorization, parse_challenge, pick_challenge, Challenge};
use params::{parse_digest_params, quote};

/// Errors from parsing authentication header values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header uses an authentication scheme other than `Digest`.
    #[error("authentication scheme is not Digest")]
    NotDigest,
    /// Syntax error or a mandatory parameter is missing.
    #[error("malformed digest header: {0}")]
    Malformed(String),
    /// The challenge names an algorithm we do not implement (including `-sess`).
    #[error("unsupported digest algorithm: {0}")]
    UnsupportedAlgorithm(String),
}

/// Digest hash algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Md5,
    Sha256,
}

impl Algorithm {
    /// The token used on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Sha256 => "SHA-256",
        }
    }

    /// Parse an `algorithm` token (case-insensitive). `-sess` variants and
    /// unknown algorithms yield `None`.
    pub fn from_token(token: &str) -> Option<Self> {
        if token.eq_ignore_ascii_case("MD5") {
            Some(Algorithm::Md5)
        } else if token.eq_ignore_ascii_case("SHA-256") {
            Some(Algorithm::Sha256)
        } else {
            None
        }
    }

    /// Client-side preference rank: higher is better.
    const fn strength(self) -> u8 {
        match self {
            Algorithm::Md5 => 0,
            Algorithm::Sha256 => 1,
        }
    }

    /// Lowercase hex of H(parts joined by ':').
    fn h(self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 => digest_hex::<Md5>(parts),
            Algorithm::Sha256 => digest_hex::<Sha256>(parts),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn digest_hex<D: Digest>(parts: &[&str]) -> String {
    let mut d = D::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(part.as_bytes());
    }
    hex(&d.finalize())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// HMAC-SHA-256 (RFC 2104) with a 32-byte key over the concatenation of `parts`.
fn hmac_sha256(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for (i, k) in key.iter().enumerate() {
        ipad[i] ^= k;
        opad[i] ^= k;
    }
    let mut inner = Sha256::new();
    inner.update(ipad);
    for part in parts {
        inner.update(part);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(opad);
    outer.update(inner);
    outer.finalize().into()
}

/// `qop=auth` fields that enter the response computation.
struct QopAuth<'a> {
    qop: &'a str,
    nc: &'a str,
    cnonce: &'a str,
}

/// What the server knows of an account's secret: the password, or only the HA1 digests
/// `H(username:realm:password)` per algorithm (RFC 7616 §3.4.2), so that the config need not
/// hold the password itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret<'a> {
    Password(&'a str),
    /// Lowercase-hex HA1 for MD5 and for SHA-256; an algorithm without one cannot be used.
    Ha1 {
        md5: Option<&'a str>,
        sha256: Option<&'a str>,
    },
}

impl<'a> From<&'a str> for Secret<'a> {
    fn from(password: &'a str) -> Self {
        Secret::Password(password)
    }
}

impl Secret<'_> {
    /// HA1 for `alg` (`None`: no secret for that algorithm).
    fn ha1(&self, alg: Algorithm, username: &str, realm: &str) -> Option<String> {
        match *self {
            Secret::Password(p) => Some(alg.h(&[username, realm, p])),
            Secret::Ha1 { md5, sha256 } => match alg {
                Algorithm::Md5 => md5,
                Algorithm::Sha256 => sha256,
            }
            .map(str::to_ascii_lowercase),
        }
    }
}

/// HA1 of `username`, `realm` and `password` for `alg` (what `[[agents]] ha1_*` holds).
pub fn ha1(alg: Algorithm, username: &str, realm: &str, password: &str) -> String {
    alg.h(&[username, realm, password])
}

/// Everything the RFC 7616 §3.4.1 response depends on.
struct DigestInput<'a> {
    algorithm: Algorithm,
    username: &'a str,
    realm: &'a str,
    password: &'a str,
    method: &'a str,
    uri: &'a str,
    nonce: &'a str,
    /// `None` selects the RFC 2617 compatibility form (no qop).
    qop: Option<QopAuth<'a>>,
}

impl DigestInput<'_> {
    /// The lowercase-hex `response` value.
    fn response(&self) -> String {
        let ha1 = self
            .algorithm
            .h(&[self.username, self.realm, self.password]);
        self.response_from(&ha1)
    }

    /// The `response` value from a known HA1 (`password` unused).
    fn response_from(&self, ha1: &str) -> String {
        let alg = self.algorithm;
        let ha1 = ha1.to_string();
        let ha2 = alg.h(&[self.method, self.uri]);
        match &self.qop {
            Some(q) => alg.h(&[&ha1, self.nonce, q.nc, q.cnonce, q.qop, &ha2]),
            None => alg.h(&[&ha1, self.nonce, &ha2]),
        }
    }
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

/// Parsed `Authorization` / `Proxy-Authorization` header value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub realm: String,
    pub nonce: String,
    pub uri: String,
    pub response: String,
    pub algorithm: Option<String>,
    pub cnonce: Option<String>,
    pub opaque: Option<String>,
    pub qop: Option<String>,
    pub nc: Option<String>,
}

/// Parse the value of an `Authorization` / `Proxy-Authorization` header, e.g.
/// `Digest username="bob", realm="x", nonce="..", uri="sip:a", response="..",
/// algorithm=MD5, cnonce="..", qop=auth, nc=00000001`.
///
/// Values may be quoted-strings or tokens; unknown parameters are ignored,
/// duplicated ones are an error. Never panics.
///
/// # Errors
/// [`AuthError::NotDigest`] for another scheme, [`AuthError::Malformed`] for
/// syntax errors or a missing `username`, `realm`, `nonce`, `uri` or `response`.
pub fn parse_credentials(value: &str) -> Result<Credentials, AuthError> {
    let p = parse_digest_params(value)?;
    let opt = |name: &str| p.get(name).map(str::to_owned);
    Ok(Credentials {
        username: p.require("username")?.to_owned(),
        realm: p.require("realm")?.to_owned(),
        nonce: p.require("nonce")?.to_owned(),
        uri: p.require("uri")?.to_owned(),
        response: p.require("response")?.to_owned(),
        algorithm: opt("algorithm"),
        cnonce: opt("cnonce"),
        opaque: opt("opaque"),
        qop: opt("qop"),
        nc: opt("nc"),
    })
}

/// Outcome of [`NonceManager::verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    /// Nonce was ours and the response correct but the nonce has expired:
    /// re-challenge with `stale=true`.
    Stale,
    /// Wrong password / wrong response / unknown or forged nonce / realm
    /// mismatch / algorithm not allowed / missing qop fields: re-challenge
    /// (no stale).
    Rejected(&'static str),
    /// nonce-count not strictly greater than the highest seen for this nonce
    /// (replay): re-challenge, not stale.
    Replay,
}

/// Identity of a nonce we issued; ordered by issue time, then issue sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct NonceId {
    issued_ms: u64,
    seq: u64,
}

/// Hex digits of the timestamp, sequence and MAC parts of a nonce.
const TS_HEX: usize = 16;
const SEQ_HEX: usize = 16;
const MAC_BYTES: usize = 16;
const NONCE_LEN: usize = TS_HEX + SEQ_HEX + 2 * MAC_BYTES;

/// Issues and verifies server nonces.
///
/// Nonces are stateless and self-validating:
/// `hex(issued_ms) || hex(seq) || hex(HMAC-SHA-256(secret, issued_ms || seq || realm)[..16])`.
/// Only nonce-counts are stateful; they live in a map bounded by `max_tracked`
/// that drops expired entries first, then the oldest. A nonce whose record was
/// dropped while still fresh is answered with [`Verdict::Stale`] rather than
/// being treated as new, so eviction can never re-open a replay window.
///
/// Records do not survive the process: use a fresh random secret per start so
/// that nonces issued before a restart are rejected rather than replayable.
pub struct NonceManager {
    secret: [u8; 32],
    lifetime_ms: u64,
    max_tracked: usize,
    next_seq: u64,
    /// Highest nonce-count accepted per nonce.
    nc_seen: BTreeMap<NonceId, u32>,
    /// Greatest id whose record was evicted while the nonce was still fresh.
    evicted_fresh: Option<NonceId>,
}

impl fmt::Debug for NonceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NonceManager")
            .field("secret", &"<redacted>")
            .field("lifetime_ms", &self.lifetime_ms)
            .field("max_tracked", &self.max_tracked)
            .field("tracked", &self.nc_seen.len())
            .finish_non_exhaustive()
    }
}

impl NonceManager {
    /// `secret`: 32 random bytes (supplied by the caller so tests are
    /// deterministic); `lifetime`: how long a nonce stays fresh;
    /// `max_tracked`: bound on the number of nonces whose nonce-count is
    /// tracked (clamped to at least 1).
    pub fn new(secret: [u8; 32], lifetime: Duration, max_tracked: usize) -> Self {
        NonceManager {
            secret,
            lifetime_ms: u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX),
            max_tracked: max_tracked.max(1),
            next_seq: 0,
            nc_seen: BTreeMap::new(),
            evicted_fresh: None,
        }
    }

    /// Number of nonces whose nonce-count is currently tracked.
    pub fn tracked(&self) -> usize {
        self.nc_seen.len()
    }

    fn mac_hex(&self, id: NonceId, realm: &str) -> String {
        let mac = hmac_sha256(
            &self.secret,
            &[
                &id.issued_ms.to_be_bytes(),
                &id.seq.to_be_bytes(),
                realm.as_bytes(),
            ],
        );
        hex(&mac[..MAC_BYTES])
    }

    /// Build a fresh nonce for `realm` at `now_unix_ms`.
    pub fn issue(&mut self, realm: &str, now_unix_ms: u64) -> String {
        let id = NonceId {
            issued_ms: now_unix_ms,
            seq: self.next_seq,
        };
        self.next_seq = self.next_seq.wrapping_add(1);
        format!(
            "{:016x}{:016x}{}",
            id.issued_ms,
            id.seq,
            self.mac_hex(id, realm)
        )
    }

    /// Check that `nonce` was issued by us for `realm`; returns its identity.
    fn decode(&self, nonce: &str, realm: &str) -> Option<NonceId> {
        if nonce.len() != NONCE_LEN || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let issued_ms = u64::from_str_radix(nonce.get(..TS_HEX)?, 16).ok()?;
        let seq = u64::from_str_radix(nonce.get(TS_HEX..TS_HEX + SEQ_HEX)?, 16).ok()?;
        let mac = nonce.get(TS_HEX + SEQ_HEX..)?;
        let id = NonceId { issued_ms, seq };
        let expected = self.mac_hex(id, realm);
        bool::from(expected.as_bytes().ct_eq(mac.as_bytes())).then_some(id)
    }

    fn is_expired(&self, id: NonceId, now_unix_ms: u64) -> bool {
        now_unix_ms.saturating_sub(id.issued_ms) > self.lifetime_ms
    }

    /// The challenge header values: one per algorithm, in the given
    /// preference order (RFC 8760 §2.4), all sharing one fresh nonce.
    /// An empty `algorithms` slice yields no challenges.
    pub fn challenge(
        &mut self,
        realm: &str,
        algorithms: &[Algorithm],
        stale: bool,
        now_unix_ms: u64,
    ) -> Vec<String> {
        if algorithms.is_empty() {
            return Vec::new();
        }
        let nonce = self.issue(realm, now_unix_ms);
        let realm = quote(realm);
        let nonce = quote(&nonce);
        algorithms
            .iter()
            .map(|alg| {
                let mut v =
                    format!("Digest realm={realm}, nonce={nonce}, algorithm={alg}, qop=\"auth\"");
                if stale {
                    v.push_str(", stale=true");
                }
                v
            })
            .collect()
    }

    /// Verify `creds` for a request with `method`, given the user's
    /// secret (a password, or HA1 digests), the expected `realm` and the algorithms we accept.
    ///
    /// The `uri` of the credentials is used in HA2; comparing it with the
    /// Request-URI is the caller's business.
    pub fn verify<'s>(
        &mut self,
        creds: &Credentials,
        method: &str,
        secret: impl Into<Secret<'s>>,
        realm: &str,
        allowed: &[Algorithm],
        now_unix_ms: u64,
    ) -> Verdict {
        let secret = secret.into();
        if creds.realm != realm {
            return Verdict::Rejected("realm mismatch");
        }
        let algorithm = match creds.algorithm.as_deref() {
            None => Algorithm::Md5,
            Some(a) if is_sess(a) => {
                return Verdict::Rejected("-sess algorithms are not supported");
            }
            Some(a) => match Algorithm::from_token(a) {
                Some(alg) => alg,
                None => return Verdict::Rejected("unknown algorithm"),
            },
        };
        if !allowed.contains(&algorithm) {
            return Verdict::Rejected("algorithm not allowed");
        }
        let Some(qop) = creds.qop.as_deref() else {
            return Verdict::Rejected("qop=auth required");
        };
        if !qop.eq_ignore_ascii_case("auth") {
            return Verdict::Rejected("unsupported qop");
        }
        let (Some(cnonce), Some(nc_str)) = (creds.cnonce.as_deref(), creds.nc.as_deref()) else {
            return Verdict::Rejected("cnonce and nc required with qop");
        };
        let Some(nc) = parse_nc(nc_str) else {
            return Verdict::Rejected("malformed nc");
        };
        if nc == 0 {
            return Verdict::Rejected("nc must start at 1");
        }
        let Some(id) = self.decode(&creds.nonce, realm) else {
            return Verdict::Rejected("unknown nonce");
        };

        let Some(ha1) = secret.ha1(algorithm, &creds.username, realm) else {
            return Verdict::Rejected("no secret for this algorithm");
        };
        let expected = DigestInput {
            algorithm,
            username: &creds.username,
            realm,
            password: "",
            method,
            uri: &creds.uri,
            nonce: &creds.nonce,
            qop: Some(QopAuth {
                qop,
                nc: nc_str,
                cnonce,
            }),
        }
        .response_from(&ha1);
        let received = creds.response.to_ascii_lowercase();
        if !bool::from(expected.as_bytes().ct_eq(received.as_bytes())) {
            return Verdict::Rejected("wrong response");
        }

        // The response is correct from here on: only now may state change.
        if self.is_expired(id, now_unix_ms) {
            return Verdict::Stale;
        }
        match self.nc_seen.get_mut(&id) {
            Some(last) if nc <= *last => Verdict::Replay,
            Some(last) => {
                *last = nc;
                Verdict::Ok
            }
            None if self.evicted_fresh.is_some_and(|w| id <= w) => {
                // Its record may have been evicted: the nc history is lost,
                // so make the client fetch a new nonce instead of guessing.
                Verdict::Stale
            }
            None => {
                self.make_room(now_unix_ms);
                self.nc_seen.insert(id, nc);
                Verdict::Ok
            }
        }
    }

    /// Drop expired records, then the oldest ones, until one more fits.
    fn make_room(&mut self, now_unix_ms: u64) {
        while let Some((&oldest, _)) = self.nc_seen.first_key_value() {
            if self.is_expired(oldest, now_unix_ms) {
                self.nc_seen.pop_first();
            } else if self.nc_seen.len() >= self.max_tracked {
                self.nc_seen.pop_first();
                self.evicted_fresh = Some(self.evicted_fresh.map_or(oldest, |w| w.max(oldest)));
            } else {
                break;
            }
        }
    }
}

/// Whether an algorithm token names a `-sess` variant (e.g. `MD5-sess`).
fn is_sess(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() > 5 && b[b.len() - 5..].eq_ignore_ascii_case(b"-sess")
}

/// Parse an `nc` value: exactly 8 hexadecimal digits.
fn parse_nc(s: &str) -> Option<u32> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    const REALM: &str = "ctid.example";
    const NOW: u64 = 1_700_000_000_000;
    const SECRET: [u8; 32] = [7; 32];

    const RFC_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const RFC_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
    const RFC_OPAQUE: &str = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS";
    const RFC_REALM: &str = "http-auth@example.org";

    fn rfc_input(algorithm: Algorithm) -> DigestInput<'static> {
        DigestInput {
            algorithm,
            username: "Mufasa",
            realm: RFC_REALM,
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: RFC_NONCE,
            qop: Some(QopAuth {
                qop: "auth",
                nc: "00000001",
                cnonce: RFC_CNONCE,
            }),
        }
    }

    fn rfc_challenge(algorithm: Algorithm) -> Challenge {
        Challenge {
            realm: RFC_REALM.into(),
            nonce: RFC_NONCE.into(),
            algorithm,
            qop_auth: true,
            opaque: Some(RFC_OPAQUE.into()),
            stale: false,
        }
    }

    fn manager() -> NonceManager {
        NonceManager::new(SECRET, Duration::from_secs(300), 64)
    }

    /// Challenge for `alg`, answered by the client, parsed back by the server.
    fn answer(
        mgr: &mut NonceManager,
        alg: Algorithm,
        password: &str,
        nc: u32,
        now: u64,
    ) -> Credentials {
        let values = mgr.challenge(REALM, &[alg], false, now);
        let ch = parse_challenge(&values[0]).unwrap();
        let value = authorization(
            &ch,
            "REGISTER",
            "sip:ctid.example",
            "1001",
            password,
            nc,
            "abc123",
        );
        parse_credentials(&value).unwrap()
    }

    /// Re-sign `creds` as the client would for a different nc / cnonce.
    fn resign(creds: &Credentials, alg: Algorithm, password: &str, nc: &str) -> Credentials {
        let response = DigestInput {
            algorithm: alg,
            username: &creds.username,
            realm: &creds.realm,
            password,
            method: "REGISTER",
            uri: &creds.uri,
            nonce: &creds.nonce,
            qop: Some(QopAuth {
                qop: "auth",
                nc,
                cnonce: "abc123",
            }),
        }
        .response();
        Credentials {
            nc: Some(nc.into()),
            response,
            ..creds.clone()
        }
    }

    fn verify(mgr: &mut NonceManager, creds: &Credentials, now: u64) -> Verdict {
        mgr.verify(
            creds,
            "REGISTER",
            "secret",
            REALM,
            &[Algorithm::Sha256, Algorithm::Md5],
            now,
        )
    }

    #[test]
    fn rfc7616_md5_vector() {
        assert_eq!(
            rfc_input(Algorithm::Md5).response(),
            "8ca523f5e9506fed4657c9700eebdbec"
        );
    }

    #[test]
    fn rfc7616_sha256_vector() {
        assert_eq!(
            rfc_input(Algorithm::Sha256).response(),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
    }

    #[test]
    fn rfc2617_vector() {
        let input = DigestInput {
            algorithm: Algorithm::Md5,
            username: "Mufasa",
            realm: "testrealm@host.com",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop: Some(QopAuth {
                qop: "auth",
                nc: "00000001",
                cnonce: "0a4f113b",
            }),
        };
        assert_eq!(input.response(), "6629fae49393a05397450978507c4ef1");
    }

    #[test]
    fn hmac_rfc4231_case2() {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        assert_eq!(
            hex(&hmac_sha256(&key, &[b"what do ya want ", b"for nothing?"])),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn authorization_matches_rfc7616_example() {
        for (alg, expected) in [
            (Algorithm::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
            (
                Algorithm::Sha256,
                "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
            ),
        ] {
            let value = authorization(
                &rfc_challenge(alg),
                "GET",
                "/dir/index.html",
                "Mufasa",
                "Circle of Life",
                1,
                RFC_CNONCE,
            );
            let creds = parse_credentials(&value).unwrap();
            assert_eq!(creds.response, expected);
            assert_eq!(creds.username, "Mufasa");
            assert_eq!(creds.realm, RFC_REALM);
            assert_eq!(creds.nonce, RFC_NONCE);
            assert_eq!(creds.uri, "/dir/index.html");
            assert_eq!(creds.algorithm.as_deref(), Some(alg.as_str()));
            assert_eq!(creds.cnonce.as_deref(), Some(RFC_CNONCE));
            assert_eq!(creds.qop.as_deref(), Some("auth"));
            assert_eq!(creds.nc.as_deref(), Some("00000001"));
            assert_eq!(creds.opaque.as_deref(), Some(RFC_OPAQUE));
        }
    }

    #[test]
    fn authorization_nc_is_lowercase_hex() {
        let value = authorization(
            &rfc_challenge(Algorithm::Md5),
            "GET",
            "/",
            "u",
            "p",
            0xab,
            "c",
        );
        assert!(value.contains("nc=000000ab"), "{value}");
    }

    #[test]
    fn authorization_compat_form_without_qop() {
        let ch = Challenge {
            qop_auth: false,
            opaque: None,
            ..rfc_challenge(Algorithm::Md5)
        };
        let value = authorization(
            &ch,
            "GET",
            "/dir/index.html",
            "Mufasa",
            "Circle of Life",
            1,
            "x",
        );
        let creds = parse_credentials(&value).unwrap();
        assert_eq!(creds.qop, None);
        assert_eq!(creds.nc, None);
        assert_eq!(creds.cnonce, None);
        assert_eq!(creds.opaque, None);
        let ha1 = digest_hex::<Md5>(&["Mufasa", RFC_REALM, "Circle of Life"]);
        let ha2 = digest_hex::<Md5>(&["GET", "/dir/index.html"]);
        assert_eq!(creds.response, digest_hex::<Md5>(&[&ha1, RFC_NONCE, &ha2]));
    }

    #[test]
    fn authorization_quotes_awkward_values() {
        let ch = Challenge {
            realm: "a \"quoted\" \\ realm, with comma".into(),
            ..rfc_challenge(Algorithm::Sha256)
        };
        let value = authorization(&ch, "INVITE", "sip:x@y", "we\"ird,user", "pw", 3, "c\"n");
        let creds = parse_credentials(&value).unwrap();
        assert_eq!(creds.realm, ch.realm);
        assert_eq!(creds.username, "we\"ird,user");
        assert_eq!(creds.cnonce.as_deref(), Some("c\"n"));
        assert_eq!(creds.uri, "sip:x@y");
    }

    #[test]
    fn quote_drops_crlf() {
        assert_eq!(quote("a\r\nVia: evil"), "\"aVia: evil\"");
    }

    #[test]
    fn round_trip_md5_and_sha256() {
        for alg in [Algorithm::Md5, Algorithm::Sha256] {
            let mut mgr = manager();
            let creds = answer(&mut mgr, alg, "secret", 1, NOW);
            assert_eq!(creds.algorithm.as_deref(), Some(alg.as_str()));
            assert_eq!(verify(&mut mgr, &creds, NOW + 1_000), Verdict::Ok);
        }
    }

    #[test]
    fn uppercase_response_is_accepted() {
        let mut mgr = manager();
        let mut creds = answer(&mut mgr, Algorithm::Sha256, "secret", 1, NOW);
        creds.response = creds.response.to_ascii_uppercase();
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
    }

    #[test]
    fn ha1_digests_stand_in_for_the_password() {
        let both = [Algorithm::Md5, Algorithm::Sha256];
        for alg in both {
            let mut mgr = manager();
            let creds = answer(&mut mgr, alg, "secret", 1, NOW);
            let md5 = ha1(Algorithm::Md5, &creds.username, REALM, "secret").to_uppercase();
            let sha = ha1(Algorithm::Sha256, &creds.username, REALM, "secret");
            let secret = Secret::Ha1 {
                md5: Some(&md5),
                sha256: Some(&sha),
            };
            assert_eq!(
                mgr.verify(&creds, "REGISTER", secret, REALM, &both, NOW),
                Verdict::Ok
            );
            // Only the other algorithm's HA1: this answer cannot be checked.
            let mut mgr = manager();
            let creds = answer(&mut mgr, alg, "secret", 1, NOW);
            let only_other = match alg {
                Algorithm::Md5 => Secret::Ha1 {
                    md5: None,
                    sha256: Some(&sha),
                },
                Algorithm::Sha256 => Secret::Ha1 {
                    md5: Some(&md5),
                    sha256: None,
                },
            };
            assert_eq!(
                mgr.verify(&creds, "REGISTER", only_other, REALM, &both, NOW),
                Verdict::Rejected("no secret for this algorithm")
            );
            // The HA1 of another password is a wrong response.
            let mut mgr = manager();
            let creds = answer(&mut mgr, alg, "secret", 1, NOW);
            let wrong_md5 = ha1(Algorithm::Md5, &creds.username, REALM, "guess");
            let wrong_sha = ha1(Algorithm::Sha256, &creds.username, REALM, "guess");
            let wrong = Secret::Ha1 {
                md5: Some(&wrong_md5),
                sha256: Some(&wrong_sha),
            };
            assert!(matches!(
                mgr.verify(&creds, "REGISTER", wrong, REALM, &both, NOW),
                Verdict::Rejected(_)
            ));
        }
    }

    #[test]
    fn wrong_password_is_rejected() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "guess", 1, NOW);
        assert!(matches!(
            verify(&mut mgr, &creds, NOW),
            Verdict::Rejected(_)
        ));
    }

    #[test]
    fn tampered_fields_are_rejected() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Sha256, "secret", 1, NOW);
        let other_uri = Credentials {
            uri: "sip:elsewhere".into(),
            ..creds.clone()
        };
        assert!(matches!(
            verify(&mut mgr, &other_uri, NOW),
            Verdict::Rejected(_)
        ));
        let other_method = mgr.verify(&creds, "INVITE", "secret", REALM, &[Algorithm::Sha256], NOW);
        assert!(matches!(other_method, Verdict::Rejected(_)));
        let empty = Credentials {
            response: String::new(),
            ..creds.clone()
        };
        assert!(matches!(
            verify(&mut mgr, &empty, NOW),
            Verdict::Rejected(_)
        ));
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
    }

    #[test]
    fn replayed_nc_is_detected_and_higher_nc_accepted() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Sha256, "secret", 1, NOW);
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Replay);
        let two = resign(&creds, Algorithm::Sha256, "secret", "00000002");
        assert_eq!(verify(&mut mgr, &two, NOW), Verdict::Ok);
        assert_eq!(verify(&mut mgr, &two, NOW), Verdict::Replay);
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Replay);
    }

    #[test]
    fn nc_is_hexadecimal() {
        assert_eq!(parse_nc("0000000a"), Some(10));
        assert_eq!(parse_nc("0000000A"), Some(10));
        assert_eq!(parse_nc("00000010"), Some(16));
        assert_eq!(parse_nc("ffffffff"), Some(u32::MAX));
        for bad in [
            "",
            "1",
            "000000001",
            "+0000001",
            "0000000g",
            "0000 001",
            "00000éé",
        ] {
            assert_eq!(parse_nc(bad), None, "{bad:?}");
        }

        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 9, NOW);
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
        let ten = resign(&creds, Algorithm::Md5, "secret", "0000000a");
        assert_eq!(verify(&mut mgr, &ten, NOW), Verdict::Ok);
        let sixteen = resign(&creds, Algorithm::Md5, "secret", "00000010");
        assert_eq!(verify(&mut mgr, &sixteen, NOW), Verdict::Ok);
        let fifteen = resign(&creds, Algorithm::Md5, "secret", "0000000f");
        assert_eq!(verify(&mut mgr, &fifteen, NOW), Verdict::Replay);
    }

    #[test]
    fn malformed_or_zero_nc_is_rejected() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        for nc in ["1", "00000000", "0000000x"] {
            let c = resign(&creds, Algorithm::Md5, "secret", nc);
            assert!(
                matches!(verify(&mut mgr, &c, NOW), Verdict::Rejected(_)),
                "{nc}"
            );
        }
    }

    #[test]
    fn wrong_guess_does_not_burn_counts() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Sha256, "secret", 1, NOW);
        let guess = resign(&creds, Algorithm::Sha256, "guess", "00000050");
        assert!(matches!(
            verify(&mut mgr, &guess, NOW),
            Verdict::Rejected(_)
        ));
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
    }

    #[test]
    fn expired_nonce_is_stale_only_with_correct_response() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        let later = NOW + 300_001;
        assert_eq!(verify(&mut mgr, &creds, NOW + 300_000), Verdict::Ok);
        let two = resign(&creds, Algorithm::Md5, "secret", "00000002");
        assert_eq!(verify(&mut mgr, &two, later), Verdict::Stale);
        let wrong = resign(&creds, Algorithm::Md5, "guess", "00000003");
        assert!(matches!(
            verify(&mut mgr, &wrong, later),
            Verdict::Rejected(_)
        ));
    }

    #[test]
    fn foreign_or_forged_nonce_is_rejected() {
        let mut other = NonceManager::new([9; 32], Duration::from_secs(300), 64);
        let mut mgr = manager();
        let foreign = answer(&mut other, Algorithm::Md5, "secret", 1, NOW);
        assert_eq!(verify(&mut other, &foreign, NOW), Verdict::Ok);
        assert!(matches!(
            verify(&mut mgr, &foreign, NOW),
            Verdict::Rejected(_)
        ));

        // Move the timestamp forward without re-keying: MAC no longer matches.
        let ours = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        let mut forged_nonce = ours.nonce.clone();
        forged_nonce.replace_range(..TS_HEX, &format!("{:016x}", NOW + 10_000_000));
        let forged = Credentials {
            nonce: forged_nonce,
            ..ours.clone()
        };
        let forged = resign(&forged, Algorithm::Md5, "secret", "00000001");
        assert!(matches!(
            verify(&mut mgr, &forged, NOW + 400_000),
            Verdict::Rejected(_)
        ));

        for junk in [
            "",
            "abc",
            RFC_NONCE,
            &"é".repeat(32),
            &"0".repeat(NONCE_LEN),
        ] {
            let c = resign(
                &Credentials {
                    nonce: junk.to_owned(),
                    ..ours.clone()
                },
                Algorithm::Md5,
                "secret",
                "00000001",
            );
            assert!(
                matches!(verify(&mut mgr, &c, NOW), Verdict::Rejected(_)),
                "{junk:?}"
            );
        }
    }

    #[test]
    fn nonce_is_bound_to_realm() {
        let mut mgr = manager();
        let nonce = mgr.issue("other.realm", NOW);
        let creds = resign(
            &Credentials {
                username: "1001".into(),
                realm: REALM.into(),
                nonce,
                uri: "sip:ctid.example".into(),
                response: String::new(),
                algorithm: None,
                cnonce: Some("abc123".into()),
                opaque: None,
                qop: Some("auth".into()),
                nc: None,
            },
            Algorithm::Md5,
            "secret",
            "00000001",
        );
        assert!(matches!(
            verify(&mut mgr, &creds, NOW),
            Verdict::Rejected(_)
        ));
    }

    #[test]
    fn realm_mismatch_is_rejected() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        let v = mgr.verify(
            &creds,
            "REGISTER",
            "secret",
            "other.realm",
            &[Algorithm::Md5],
            NOW,
        );
        assert!(matches!(v, Verdict::Rejected(_)));
    }

    #[test]
    fn absent_algorithm_means_md5() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        let creds = Credentials {
            algorithm: None,
            ..creds
        };
        assert!(matches!(
            mgr.verify(
                &creds,
                "REGISTER",
                "secret",
                REALM,
                &[Algorithm::Sha256],
                NOW
            ),
            Verdict::Rejected(_)
        ));
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
    }

    #[test]
    fn algorithm_not_allowed_is_rejected() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        let v = mgr.verify(
            &creds,
            "REGISTER",
            "secret",
            REALM,
            &[Algorithm::Sha256],
            NOW,
        );
        assert_eq!(v, Verdict::Rejected("algorithm not allowed"));
        // Algorithm tokens are case-insensitive.
        let lower = Credentials {
            algorithm: Some("md5".into()),
            ..creds
        };
        assert_eq!(verify(&mut mgr, &lower, NOW), Verdict::Ok);
    }

    #[test]
    fn sess_and_unknown_algorithms_are_rejected() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        for alg in ["MD5-sess", "SHA-256-SESS", "SHA-512-256", "é-sess", "é"] {
            let c = Credentials {
                algorithm: Some(alg.into()),
                ..creds.clone()
            };
            assert!(
                matches!(verify(&mut mgr, &c, NOW), Verdict::Rejected(_)),
                "{alg}"
            );
        }
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
    }

    #[test]
    fn qop_fields_are_required() {
        let mut mgr = manager();
        let creds = answer(&mut mgr, Algorithm::Sha256, "secret", 1, NOW);
        let cases = [
            Credentials {
                qop: None,
                ..creds.clone()
            },
            Credentials {
                qop: Some("auth-int".into()),
                ..creds.clone()
            },
            Credentials {
                cnonce: None,
                ..creds.clone()
            },
            Credentials {
                nc: None,
                ..creds.clone()
            },
        ];
        for c in &cases {
            assert!(
                matches!(verify(&mut mgr, c, NOW), Verdict::Rejected(_)),
                "{c:?}"
            );
        }
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
    }

    #[test]
    fn tracked_map_is_bounded_and_eviction_never_reopens_replay() {
        let mut mgr = NonceManager::new(SECRET, Duration::from_secs(300), 4);
        let mut all = Vec::new();
        for i in 0..20 {
            let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW + i);
            assert_eq!(verify(&mut mgr, &creds, NOW + i), Verdict::Ok);
            assert!(mgr.tracked() <= 4);
            all.push(creds);
        }
        assert_eq!(mgr.tracked(), 4);
        // The most recent nonces are still tracked: a replay is detected.
        assert_eq!(verify(&mut mgr, &all[19], NOW + 20), Verdict::Replay);
        // Evicted ones must not be accepted again as if new.
        assert_eq!(verify(&mut mgr, &all[0], NOW + 20), Verdict::Stale);
        // A nonce issued after the evictions but never used is fine.
        let fresh = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW + 21);
        assert_eq!(verify(&mut mgr, &fresh, NOW + 21), Verdict::Ok);
        assert_eq!(mgr.tracked(), 4);
    }

    #[test]
    fn expired_records_are_purged_first() {
        let mut mgr = NonceManager::new(SECRET, Duration::from_secs(1), 3);
        for i in 0..3 {
            let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW + i);
            assert_eq!(verify(&mut mgr, &creds, NOW + i), Verdict::Ok);
        }
        let later = NOW + 10_000;
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, later);
        assert_eq!(verify(&mut mgr, &creds, later), Verdict::Ok);
        assert_eq!(mgr.tracked(), 1);
        assert_eq!(mgr.evicted_fresh, None);
    }

    #[test]
    fn zero_max_tracked_is_clamped() {
        let mut mgr = NonceManager::new(SECRET, Duration::from_secs(300), 0);
        let creds = answer(&mut mgr, Algorithm::Md5, "secret", 1, NOW);
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Ok);
        assert_eq!(verify(&mut mgr, &creds, NOW), Verdict::Replay);
        assert_eq!(mgr.tracked(), 1);
    }

    #[test]
    fn nonces_are_unique_and_opaque() {
        let mut mgr = manager();
        let a = mgr.issue(REALM, NOW);
        let b = mgr.issue(REALM, NOW);
        assert_ne!(a, b);
        assert_eq!(a.len(), NONCE_LEN);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert!(mgr.decode(&a, REALM).is_some());
        assert!(mgr.decode(&a, "other").is_none());
    }

    #[test]
    fn challenge_values() {
        let mut mgr = manager();
        let values = mgr.challenge(REALM, &[Algorithm::Sha256, Algorithm::Md5], false, NOW);
        assert_eq!(values.len(), 2);
        assert!(values[0].starts_with("Digest realm=\"ctid.example\", nonce=\""));
        assert!(values[0].ends_with(", algorithm=SHA-256, qop=\"auth\""));
        assert!(values[1].ends_with(", algorithm=MD5, qop=\"auth\""));
        let a = parse_challenge(&values[0]).unwrap();
        let b = parse_challenge(&values[1]).unwrap();
        assert_eq!(a.algorithm, Algorithm::Sha256);
        assert_eq!(b.algorithm, Algorithm::Md5);
        assert_eq!(a.nonce, b.nonce);
        assert!(a.qop_auth && !a.stale);

        let stale = mgr.challenge(REALM, &[Algorithm::Md5], true, NOW);
        assert_eq!(stale.len(), 1);
        assert!(stale[0].ends_with(", stale=true"));
        assert!(parse_challenge(&stale[0]).unwrap().stale);
        assert!(mgr.challenge(REALM, &[], false, NOW).is_empty());
    }

    #[test]
    fn parses_rfc7616_authorization_example() {
        let value = "Digest username=\"Mufasa\",\r\n       realm=\"http-auth@example.org\",\r\n       \
                     uri=\"/dir/index.html\",\r\n       algorithm=SHA-256,\r\n       \
                     nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n       nc=00000001,\r\n       \
                     cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\",\r\n       qop=auth,\r\n       \
                     response=\"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1\",\r\n       \
                     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        let c = parse_credentials(value).unwrap();
        assert_eq!(c.username, "Mufasa");
        assert_eq!(c.realm, RFC_REALM);
        assert_eq!(c.uri, "/dir/index.html");
        assert_eq!(c.algorithm.as_deref(), Some("SHA-256"));
        assert_eq!(c.nonce, RFC_NONCE);
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.cnonce.as_deref(), Some(RFC_CNONCE));
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.opaque.as_deref(), Some(RFC_OPAQUE));
        assert_eq!(c.response, rfc_input(Algorithm::Sha256).response());
    }

    #[test]
    fn parses_escapes_lws_and_scheme_case() {
        let value =
            "DIGEST   username = \"a\\\"b, c\\\\d\" ,realm=\"r,=\\\"x\\\"\"\t,\tnonce=\"n\" , \
                     uri=\"sip:a@b;transport=tcp\",response=\"R\",, qop=\"auth\", nc = 00000001 ,";
        let c = parse_credentials(value).unwrap();
        assert_eq!(c.username, "a\"b, c\\d");
        assert_eq!(c.realm, "r,=\"x\"");
        assert_eq!(c.nonce, "n");
        assert_eq!(c.uri, "sip:a@b;transport=tcp");
        assert_eq!(c.response, "R");
        assert_eq!(c.qop.as_deref(), Some("auth"));
        assert_eq!(c.nc.as_deref(), Some("00000001"));
        assert_eq!(c.algorithm, None);
        assert_eq!(c.cnonce, None);
        assert!(
            parse_credentials("digest username=u, realm=r, nonce=n, uri=u, response=x").is_ok()
        );
    }

    #[test]
    fn missing_mandatory_fields_are_malformed() {
        let full = [
            ("username", "\"u\""),
            ("realm", "\"r\""),
            ("nonce", "\"n\""),
            ("uri", "\"sip:x\""),
            ("response", "\"00\""),
        ];
        for skip in 0..full.len() {
            let params: Vec<String> = full
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, (k, v))| format!("{k}={v}"))
                .collect();
            let value = format!("Digest {}", params.join(", "));
            assert!(
                matches!(parse_credentials(&value), Err(AuthError::Malformed(_))),
                "{value}"
            );
        }
    }

    #[test]
    fn syntax_errors_are_malformed() {
        for value in [
            "",
            "   ",
            "\"Digest\" username=\"u\"",
            "Digest username",
            "Digest username=",
            "Digest username=\"unterminated",
            "Digest username=\"u\\",
            "Digest username=\"u\" realm=\"r\"",
            "Digest username=\"u\", username=\"v\"",
            "Digest =\"u\"",
            "Digest, username=@",
            "Digest username=\"u\"x",
        ] {
            assert!(
                matches!(parse_credentials(value), Err(AuthError::Malformed(_))),
                "{value:?}"
            );
        }
    }

    #[test]
    fn other_schemes_are_not_digest() {
        for value in [
            "NoOneKnowsThisScheme opaque-data=here",
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==",
            "Digestive username=\"u\"",
        ] {
            assert_eq!(
                parse_credentials(value),
                Err(AuthError::NotDigest),
                "{value}"
            );
            assert_eq!(parse_challenge(value), Err(AuthError::NotDigest), "{value}");
        }
    }

    #[test]
    fn error_messages_display() {
        assert_eq!(
            AuthError::NotDigest.to_string(),
            "authentication scheme is not Digest"
        );
        assert!(AuthError::Malformed("x".into()).to_string().contains('x'));
        assert!(AuthError::UnsupportedAlgorithm("MD5-sess".into())
            .to_string()
            .contains("MD5-sess"));
    }

    #[test]
    fn parses_rfc7616_challenge_example() {
        let value = "Digest\r\n       realm=\"http-auth@example.org\",\r\n       \
                     qop=\"auth, auth-int\",\r\n       algorithm=SHA-256,\r\n       \
                     nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\",\r\n       \
                     opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"";
        assert_eq!(
            parse_challenge(value).unwrap(),
            rfc_challenge(Algorithm::Sha256)
        );
    }

    #[test]
    fn challenge_variants() {
        let ch = parse_challenge("Digest realm=\"r\", nonce=\"n\"").unwrap();
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert!(!ch.qop_auth);
        assert!(!ch.stale);
        assert_eq!(ch.opaque, None);

        let ch = parse_challenge("Digest realm=\"r\", nonce=\"n\", qop=\"auth-int\", stale=TRUE")
            .unwrap();
        assert!(!ch.qop_auth);
        assert!(ch.stale);
        let ch = parse_challenge(
            "Digest realm=\"r\", nonce=\"n\", qop=\"auth-int,auth\", algorithm=sha-256",
        )
        .unwrap();
        assert!(ch.qop_auth);
        assert_eq!(ch.algorithm, Algorithm::Sha256);

        for (alg, name) in [("MD5-sess", "MD5-sess"), ("\"SHA-512-256\"", "SHA-512-256")] {
            let value = format!("Digest realm=\"r\", nonce=\"n\", algorithm={alg}");
            assert_eq!(
                parse_challenge(&value),
                Err(AuthError::UnsupportedAlgorithm(name.into()))
            );
        }
        assert!(matches!(
            parse_challenge("Digest realm=\"r\""),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            parse_challenge("Digest nonce=\"n\""),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn pick_prefers_sha256_and_skips_unsupported() {
        let md5 = "Digest realm=\"r\", nonce=\"n1\", algorithm=MD5, qop=\"auth\"";
        let sha = "Digest realm=\"r\", nonce=\"n2\", algorithm=SHA-256, qop=\"auth\"";
        let sess = "Digest realm=\"r\", nonce=\"n3\", algorithm=SHA-256-sess, qop=\"auth\"";
        let other = "Digest realm=\"r\", nonce=\"n4\", algorithm=SHA-512-256, qop=\"auth\"";
        let md5b = "Digest realm=\"r\", nonce=\"n5\", qop=\"auth\"";

        let best = pick_challenge([md5, sess, sha, other]).unwrap();
        assert_eq!(best.algorithm, Algorithm::Sha256);
        assert_eq!(best.nonce, "n2");
        let best = pick_challenge([sha, md5]).unwrap();
        assert_eq!(best.nonce, "n2");
        let best = pick_challenge([other, "garbage", md5, md5b]).unwrap();
        assert_eq!(best.nonce, "n1");
        assert_eq!(pick_challenge([sess, other, "Basic realm=\"r\""]), None);
        assert_eq!(pick_challenge(std::iter::empty()), None);
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let alphabet: Vec<char> = "Digest digest=\",\\ \t\r\n abcnoreuAZ09-=é€\u{0}\u{7f}𝄞"
            .chars()
            .collect();
        let mut mgr = manager();
        for _ in 0..20_000 {
            let len = rng.random_range(0..64);
            let s: String = if rng.random_bool(0.5) {
                let bytes: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else {
                let mut s = String::from(if rng.random_bool(0.7) { "Digest " } else { "" });
                s.extend((0..len).map(|_| alphabet[rng.random_range(0..alphabet.len())]));
                s
            };
            let _ = parse_challenge(&s);
            if let Ok(c) = parse_credentials(&s) {
                let _ = verify(&mut mgr, &c, NOW);
            }
        }
    }

    #[test]
    fn truncations_and_mutations_never_panic() {
        let mut mgr = manager();
        let creds_value = authorization(
            &Challenge {
                realm: "réalm €".into(),
                ..rfc_challenge(Algorithm::Sha256)
            },
            "REGISTER",
            "sip:ü@x",
            "us\"er",
            "pw",
            1,
            "cn",
        );
        let mut values = mgr.challenge(REALM, &[Algorithm::Sha256, Algorithm::Md5], true, NOW);
        values.push(creds_value);
        let mut rng = StdRng::seed_from_u64(42);
        for value in &values {
            for (i, _) in value.char_indices() {
                let prefix = &value[..i];
                let _ = parse_credentials(prefix);
                let _ = parse_challenge(prefix);
                let suffix = &value[i..];
                let _ = parse_credentials(suffix);
                let _ = parse_challenge(suffix);
            }
            for _ in 0..500 {
                let mut chars: Vec<char> = value.chars().collect();
                let at = rng.random_range(0..chars.len());
                chars[at] = ['"', '\\', ',', '=', ' ', 'é', '\u{0}'][rng.random_range(0..7)];
                let s: String = chars.into_iter().collect();
                let _ = parse_challenge(&s);
                if let Ok(c) = parse_credentials(&s) {
                    let _ = verify(&mut mgr, &c, NOW);
                }
            }
        }
    }

    #[test]
    fn debug_redacts_secret() {
        let dbg = format!("{:?}", manager());
        assert!(dbg.contains("redacted"));
        assert!(!dbg.contains("[7, 7"));
    }
}
