//! The client side of digest authentication: reading a `WWW-Authenticate` /
//! `Proxy-Authenticate` challenge, choosing the best of several, and answering it with an
//! `Authorization` value (ctid's own requests to the trunk).
//!
//! Must not know: nonces of the server side, transactions, the clock.

use super::params::{parse_digest_params, quote};
use super::{Algorithm, AuthError, DigestInput, QopAuth};

/// A parsed `WWW-Authenticate` / `Proxy-Authenticate` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: Algorithm,
    /// Whether `qop` offered `auth`.
    pub qop_auth: bool,
    pub opaque: Option<String>,
    pub stale: bool,
}

/// Parse one `WWW-Authenticate` / `Proxy-Authenticate` value. A missing
/// `algorithm` means MD5; `qop_auth` is set when `auth` is among the offered
/// qop values.
///
/// # Errors
/// [`AuthError::NotDigest`] for another scheme, [`AuthError::Malformed`] for
/// syntax errors or a missing `realm` / `nonce`, and
/// [`AuthError::UnsupportedAlgorithm`] for anything but MD5 and SHA-256
/// (including the `-sess` variants).
pub fn parse_challenge(value: &str) -> Result<Challenge, AuthError> {
    let p = parse_digest_params(value)?;
    let algorithm = match p.get("algorithm") {
        None => Algorithm::Md5,
        Some(a) => {
            Algorithm::from_token(a).ok_or_else(|| AuthError::UnsupportedAlgorithm(a.to_owned()))?
        }
    };
    let qop_auth = p.get("qop").is_some_and(|list| {
        list.split(',').any(|q| {
            q.trim_matches([' ', '\t', '\r', '\n'])
                .eq_ignore_ascii_case("auth")
        })
    });
    Ok(Challenge {
        realm: p.require("realm")?.to_owned(),
        nonce: p.require("nonce")?.to_owned(),
        algorithm,
        qop_auth,
        opaque: p.get("opaque").map(str::to_owned),
        stale: p
            .get("stale")
            .is_some_and(|s| s.eq_ignore_ascii_case("true")),
    })
}

/// Pick the best challenge among several header values: SHA-256 over MD5,
/// earlier over later on a tie; unparsable or unsupported ones are skipped.
pub fn pick_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    values
        .into_iter()
        .filter_map(|v| parse_challenge(v).ok())
        .fold(None, |best: Option<Challenge>, ch| match best {
            Some(b) if b.algorithm.strength() >= ch.algorithm.strength() => Some(b),
            _ => Some(ch),
        })
}

/// Build the `Authorization` / `Proxy-Authorization` value answering `ch`.
///
/// With `qop=auth` offered, `nc` is sent as 8 lowercase hex digits along with
/// `cnonce`; otherwise the RFC 2617 compatibility form (no qop/nc/cnonce) is
/// used. `opaque` is echoed when present.
pub fn authorization(
    ch: &Challenge,
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let nc_str = format!("{nc:08x}");
    let response = DigestInput {
        algorithm: ch.algorithm,
        username,
        realm: &ch.realm,
        password,
        method,
        uri,
        nonce: &ch.nonce,
        qop: ch.qop_auth.then_some(QopAuth {
            qop: "auth",
            nc: &nc_str,
            cnonce,
        }),
    }
    .response();

    let mut v = format!(
        "Digest username={}, realm={}, nonce={}, uri={}, response=\"{response}\", algorithm={}",
        quote(username),
        quote(&ch.realm),
        quote(&ch.nonce),
        quote(uri),
        ch.algorithm,
    );
    if ch.qop_auth {
        v.push_str(", cnonce=");
        v.push_str(&quote(cnonce));
        v.push_str(", qop=auth, nc=");
        v.push_str(&nc_str);
    }
    if let Some(opaque) = &ch.opaque {
        v.push_str(", opaque=");
        v.push_str(&quote(opaque));
    }
    v
}
