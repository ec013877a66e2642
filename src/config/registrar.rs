//! `[registrar]` and `[[agents]]`: registration limits, digest algorithms and nonces, and the
//! agents with their SIP accounts, with their checks.
//!
//! Must not know: sockets, SIP processing.

use super::{AuthThrottle, Config};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[registrar]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Registrar {
    pub min_expires: u32,
    pub max_expires: u32,
    pub default_expires: u32,
    pub max_contacts_per_agent: usize,
    /// Digest algorithms offered, most preferred first: "SHA-256", "MD5".
    pub algorithms: Vec<String>,
    pub nonce_lifetime_secs: u64,
    /// Throttling of failed authentication.
    pub auth: AuthThrottle,
}

impl Default for Registrar {
    fn default() -> Self {
        Registrar {
            min_expires: 60,
            max_expires: 3600,
            default_expires: 600,
            max_contacts_per_agent: 5,
            // MD5 only: phones that cannot answer a SHA-256 challenge (libre/baresip 1.x, SIPp
            // 3.6) give up on any 401 that carries one, even next to an MD5 challenge.
            algorithms: vec!["MD5".into()],
            nonce_lifetime_secs: 300,
            auth: AuthThrottle::default(),
        }
    }
}

/// One `[[agents]]` entry: a person and the SIP account of their seat.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub username: String,
    /// The SIP digest password (or `password_file`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// A file holding the password (first line; e.g. a systemd credential): read at load and
    /// on every reload, so the secret needs no place in the config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Instead of the password: its HA1 digest for MD5, `MD5(username:realm:password)` in hex
    /// (`ctid ha1` prints it), as Asterisk's `md5_cred` and kamailio's `ha1` column hold it.
    /// The password then appears nowhere; it still authenticates for this realm, so keep it
    /// as secret as the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_md5: Option<String>,
    /// The same for SHA-256 (RFC 8760), 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha256: Option<String>,
    /// Digest algorithms offered to this agent's phone, most preferred first; absent: the
    /// registrar's `algorithms`. E.g. `["SHA-256"]` for a phone that speaks RFC 8760.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

/// Checks of `[registrar]` and `[[agents]]`.
pub(super) fn validate(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let r = &cfg.registrar;
    if r.min_expires == 0 || r.min_expires > r.max_expires {
        add(
            "registrar.min_expires",
            "must be > 0 and <= max_expires".into(),
        );
    }
    if r.default_expires < r.min_expires || r.default_expires > r.max_expires {
        add(
            "registrar.default_expires",
            "must lie between min_expires and max_expires".into(),
        );
    }
    if r.max_contacts_per_agent == 0 {
        add(
            "registrar.max_contacts_per_agent",
            "must be at least 1".into(),
        );
    }
    check_algorithms(&r.algorithms, "registrar.algorithms", add);
    for (i, a) in cfg.agents.iter().enumerate() {
        if let Some(list) = &a.algorithms {
            check_algorithms(list, &format!("agents[{i}].algorithms"), add);
        }
    }
    if r.nonce_lifetime_secs == 0 {
        add("registrar.nonce_lifetime_secs", "must be > 0".into());
    }
    let mut ids = std::collections::HashSet::new();
    let mut users = std::collections::HashSet::new();
    for (i, a) in cfg.agents.iter().enumerate() {
        let key = format!("agents[{i}]");
        if a.id.is_empty() || !ids.insert(a.id.clone()) {
            add(
                &format!("{key}.id"),
                format!("agent id {:?} is empty or used twice", a.id),
            );
        }
        if a.username.is_empty() || !users.insert(a.username.clone()) {
            add(
                &format!("{key}.username"),
                format!("username {:?} is empty or used twice", a.username),
            );
        }
        let has_ha1 = a.ha1_md5.is_some() || a.ha1_sha256.is_some();
        let has_password = !a.password.is_empty() || a.password_file.is_some();
        if !has_password && !has_ha1 {
            add(
                &format!("{key}.password"),
                "must not be empty (or give password_file, or ha1_md5 / ha1_sha256)".into(),
            );
        }
        if has_password && has_ha1 {
            add(
                &format!("{key}.ha1_md5"),
                "give the password or its HA1 digests, not both".into(),
            );
        }
        for (field, value, len) in [
            ("ha1_md5", &a.ha1_md5, 32),
            ("ha1_sha256", &a.ha1_sha256, 64),
        ] {
            if let Some(v) = value {
                if v.len() != len || !v.bytes().all(|c| c.is_ascii_hexdigit()) {
                    add(
                        &format!("{key}.{field}"),
                        format!(
                            "must be {len} hex digits (`ctid ha1 {} <realm>` prints it)",
                            a.username
                        ),
                    );
                }
            }
        }
        if has_ha1 && !has_password {
            for alg in a.algorithms.as_ref().unwrap_or(&r.algorithms) {
                let (field, value) = if alg.eq_ignore_ascii_case("MD5") {
                    ("ha1_md5", &a.ha1_md5)
                } else {
                    ("ha1_sha256", &a.ha1_sha256)
                };
                if value.is_none() {
                    add(
                        &format!("{key}.{field}"),
                        format!("the phone is offered {alg} but the agent has no {field}"),
                    );
                }
            }
        }
    }
}

/// A digest algorithm list: not empty, only "SHA-256" and "MD5".
fn check_algorithms(list: &[String], key: &str, add: &mut impl FnMut(&str, String)) {
    if list.is_empty() {
        add(key, "at least one of \"SHA-256\", \"MD5\"".into());
    }
    for a in list {
        if !a.eq_ignore_ascii_case("MD5") && !a.eq_ignore_ascii_case("SHA-256") {
            add(
                key,
                format!("unknown algorithm {a:?} (use \"SHA-256\" or \"MD5\")"),
            );
        }
    }
}
