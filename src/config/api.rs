//! `[admin]` (the HTTP listener) and `[api]` (pause reasons, dispositions, bearer tokens), with
//! their checks and the token digests the API compares with.
//!
//! Must not know: HTTP handling, SQL.

use super::Config;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[admin]`: the HTTP listener for `/metrics` (and, later, the API).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Admin {
    /// Address of the admin HTTP listener; loopback by default.
    pub listen: SocketAddr,
}

impl Default for Admin {
    fn default() -> Self {
        Admin {
            listen: SocketAddr::from(([127, 0, 0, 1], 9060)),
        }
    }
}

/// `[api]`: the HTTP API under `/api/v1` (see docs/api.md).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Api {
    /// Reasons an agent may pause with.
    pub pause_reasons: Vec<String>,
    /// Codes a call may be dispositioned with.
    pub dispositions: Vec<String>,
    /// Bearer tokens; none = the API answers every request with 401.
    pub tokens: Vec<ApiToken>,
}

impl Default for Api {
    fn default() -> Self {
        Api {
            pause_reasons: ["break", "lunch", "training", "meeting"]
                .map(String::from)
                .to_vec(),
            dispositions: ["resolved", "complaint", "callback", "wrong_number"]
                .map(String::from)
                .to_vec(),
            tokens: vec![],
        }
    }
}

/// One `[[api.tokens]]` entry.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiToken {
    /// At least 16 characters, unique. Exactly one of `token`, `token_file` and `token_sha256`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token: String,
    /// A file holding the token (first line), read at load and on every reload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    /// The token's SHA-256, hex: the config then holds no usable secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    /// agent | supervisor | wallboard
    pub role: String,
    /// For role `agent`: the agent id the token acts as.
    pub agent: Option<String>,
}

impl ApiToken {
    /// SHA-256 of the token: what the API compares a presented token's hash with.
    pub fn digest(&self) -> [u8; 32] {
        match &self.token_sha256 {
            Some(h) if self.token.is_empty() => token_digest_from_hex(h).unwrap_or([0; 32]),
            _ => token_digest(self.token.as_bytes()),
        }
    }
}

/// SHA-256 of a presented or configured token.
pub fn token_digest(token: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(token).into()
}

/// `token_sha256` read as 32 bytes (64 hex digits, either case).
pub fn token_digest_from_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// The roles an API token may have.
pub const API_ROLES: &[&str] = &["agent", "supervisor", "wallboard"];

pub(super) fn validate(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let agents: std::collections::HashSet<&str> =
        cfg.agents.iter().map(|a| a.id.as_str()).collect();
    for (field, list) in [
        ("api.pause_reasons", &cfg.api.pause_reasons),
        ("api.dispositions", &cfg.api.dispositions),
    ] {
        let mut seen = std::collections::HashSet::new();
        for v in list {
            if v.trim().is_empty() || !seen.insert(v.as_str()) {
                add(field, format!("{v:?} is empty or listed twice"));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, t) in cfg.api.tokens.iter().enumerate() {
        let key = format!("api.tokens[{i}]");
        match (&t.token_sha256, t.token.is_empty()) {
            (Some(_), false) => add(
                &format!("{key}.token_sha256"),
                "give the token or its SHA-256, not both".into(),
            ),
            (Some(h), true) if token_digest_from_hex(h).is_none() => add(
                &format!("{key}.token_sha256"),
                "must be 64 hex digits (sha256sum of the token)".into(),
            ),
            (None, true) if t.token_file.is_none() => {
                add(&key, "needs token, token_file or token_sha256".into())
            }
            (None, false) if t.token.chars().count() < 16 => add(
                &format!("{key}.token"),
                "must be at least 16 characters".into(),
            ),
            _ => {}
        }
        if !seen.insert(t.digest()) {
            add(
                &format!("{key}.token"),
                "the same token is configured twice".into(),
            );
        }
        if !API_ROLES.contains(&t.role.as_str()) {
            add(
                &format!("{key}.role"),
                format!(
                    "unknown role {:?} (one of {})",
                    t.role,
                    API_ROLES.join(", ")
                ),
            );
        }
        match (&t.agent, t.role.as_str()) {
            (None, "agent") => add(
                &format!("{key}.agent"),
                "role \"agent\" needs the agent id it acts as".into(),
            ),
            (Some(a), _) if !agents.contains(a.as_str()) => add(
                &format!("{key}.agent"),
                format!("agent {a:?} is not defined in [[agents]]"),
            ),
            _ => {}
        }
    }
}
