//! Config table `[sip.tls]`: the certificate and key of ctid's SIP-over-TLS listeners
//! (`[sip] listen_tls`), and how ctid checks the servers it connects to over TLS (a trunk or a
//! PBX named by a `sips:` URI or `;transport=tls`). Paths are relative to the config file.
//! The files are read and parsed by the check, so a wrong path or a key that is not PEM is
//! named with its key and line before ctid starts; `transport::tls` loads them again on
//! SIGHUP.
//!
//! Must not know: sockets, SIP processing.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// `[sip.tls]`
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// PEM file with ctid's certificate chain (leaf first). Needed when `listen_tls` is set.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the private key of `cert_file` (PKCS #8, PKCS #1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// PEM file with the certificate authorities ctid trusts when it connects to a TLS server
    /// (and, with `verify_clients`, for phones' client certificates). Unset: the Mozilla
    /// roots built into ctid (webpki-roots).
    pub ca_file: Option<PathBuf>,
    /// Ask TLS clients (phones, PBXs) for a certificate signed by `ca_file` and refuse those
    /// without one. Off: clients authenticate with SIP digest, as over UDP and TCP.
    pub verify_clients: bool,
    /// The name ctid expects in the certificate of each TLS server it connects to, by address
    /// (`"10.0.0.5:5061" = "pbx.example.com"`). Unset for an address: the IP address itself
    /// (the certificate then needs it as an IP subject alternative name).
    pub server_names: std::collections::BTreeMap<String, String>,
}

impl Tls {
    /// Paths made absolute against the config file's directory.
    pub(super) fn resolve(&mut self, base: Option<&Path>) {
        let Some(base) = base else { return };
        for p in [&mut self.cert_file, &mut self.key_file, &mut self.ca_file]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }
}

/// What a PEM file holds, counted: certificates and private keys.
fn pem_items(path: &Path) -> Result<(usize, usize), String> {
    use rustls_pki_types::pem::{PemObject, SectionKind};
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let (mut certs, mut keys) = (0, 0);
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        match item {
            Ok((SectionKind::Certificate, _)) => certs += 1,
            Ok((
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey | SectionKind::EcPrivateKey,
                _,
            )) => keys += 1,
            Ok(_) => {}
            Err(e) => return Err(format!("{} is not valid PEM: {e}", path.display())),
        }
    }
    Ok((certs, keys))
}

/// Checks of `[sip] listen_tls` and `[sip.tls]`: every problem, with its key.
pub(super) fn validate(cfg: &super::Config, add: &mut impl FnMut(&str, String)) {
    let t = &cfg.sip.tls;
    let listening = !cfg.sip.listen_tls.is_empty();
    match (&t.cert_file, listening) {
        (None, true) => add(
            "sip.tls.cert_file",
            "listen_tls is set: give the certificate (PEM)".into(),
        ),
        (Some(f), _) => match pem_items(f) {
            Ok((0, _)) => add(
                "sip.tls.cert_file",
                format!("{} holds no certificate", f.display()),
            ),
            Ok(_) => {}
            Err(e) => add("sip.tls.cert_file", e),
        },
        (None, false) => {}
    }
    match (&t.key_file, listening) {
        (None, true) => add(
            "sip.tls.key_file",
            "listen_tls is set: give the private key (PEM)".into(),
        ),
        (Some(f), _) => match pem_items(f) {
            Ok((_, 1)) => {}
            Ok((_, n)) => add(
                "sip.tls.key_file",
                format!("{} holds {n} private keys; it must hold one", f.display()),
            ),
            Err(e) => add("sip.tls.key_file", e),
        },
        (None, false) => {}
    }
    if t.cert_file.is_some() != t.key_file.is_some() && !listening {
        add(
            "sip.tls.key_file",
            "give both cert_file and key_file, or neither".into(),
        );
    }
    match &t.ca_file {
        Some(f) => match pem_items(f) {
            Ok((0, _)) => add(
                "sip.tls.ca_file",
                format!("{} holds no certificate", f.display()),
            ),
            Ok(_) => {}
            Err(e) => add("sip.tls.ca_file", e),
        },
        None if t.verify_clients => add(
            "sip.tls.verify_clients",
            "needs ca_file: the authorities whose client certificates are accepted".into(),
        ),
        None => {}
    }
    for (addr, name) in &t.server_names {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            add(
                "sip.tls.server_names",
                format!("{addr:?} is not an address with a port (e.g. \"10.0.0.5:5061\")"),
            );
        }
        if rustls_pki_types::ServerName::try_from(name.as_str()).is_err() {
            add(
                "sip.tls.server_names",
                format!("{name:?} is not a DNS name or IP address"),
            );
        }
    }
    for a in &cfg.sip.listen_tls {
        if cfg.sip.listen_tcp.contains(a) {
            add(
                "sip.listen_tls",
                format!("{a} is also in listen_tcp: TLS needs a port of its own (5061)"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn problems(text: &str, base: &std::path::Path) -> Vec<String> {
        match Config::parse_in(text, Some(base)) {
            Ok(_) => vec![],
            Err(p) => p.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn a_tls_listener_needs_a_certificate_and_a_key_that_are_pem() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("not-pem.crt"), "hello\n").unwrap();
        let p = problems(
            "[sip]\nlisten_tls = [\"127.0.0.1:5061\"]\n\n[sip.tls]\ncert_file = \"not-pem.crt\"\n",
            dir.path(),
        );
        assert!(
            p.iter()
                .any(|p| p.contains("line 5: sip.tls.cert_file") && p.contains("no certificate")),
            "{p:?}"
        );
        assert!(
            p.iter()
                .any(|p| p.contains("sip.tls.key_file") && p.contains("give the private key")),
            "{p:?}"
        );
        let p = problems(
            "[sip]\nlisten_tls = [\"127.0.0.1:5060\"]\n\n[sip.tls]\ncert_file = \"missing.crt\"\nkey_file = \"missing.key\"\nverify_clients = true\nserver_names = { \"pbx\" = \"pbx.example.com\" }\n",
            dir.path(),
        );
        for want in [
            "sip.tls.cert_file: cannot read",
            "sip.tls.key_file: cannot read",
            "sip.tls.verify_clients: needs ca_file",
            "sip.tls.server_names: \"pbx\" is not an address",
            "sip.listen_tls: 127.0.0.1:5060 is also in listen_tcp",
        ] {
            assert!(p.iter().any(|p| p.contains(want)), "{want}: {p:?}");
        }
        assert!(
            p.iter()
                .any(|p| p.contains(&dir.path().join("missing.crt").display().to_string())),
            "paths are taken relative to the config file: {p:?}"
        );
    }

    #[test]
    fn no_tls_keys_no_problems() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            problems("[sip]\nrealm = \"x\"\n", dir.path()),
            Vec::<String>::new()
        );
    }
}
