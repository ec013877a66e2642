//! `[sip]` and `[sip.limits]`: listen addresses, realm, timers, the advertised address and the
//! trusted peers, with their checks. Values are converted into the sans-IO core's own types
//! (`crate::sip::advertise::Advertise`, `crate::sip::PeerNet`); the core does not know this
//! module.
//!
//! Must not know: sockets, SIP processing.

use super::Overload;
use crate::sip::PeerNet;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// `[sip]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Sip {
    pub listen_udp: Vec<SocketAddr>,
    pub listen_tcp: Vec<SocketAddr>,
    /// SIP over TLS listeners (RFC 3261 §26; usually port 5061); certificate in `[sip.tls]`.
    pub listen_tls: Vec<SocketAddr>,
    /// Digest realm for REGISTER challenges.
    pub realm: String,
    /// Host name ctid puts in its own URIs when no listen address fits.
    pub domain: String,
    pub user_agent: String,
    /// PBX addresses allowed to send out-of-dialog requests other than REGISTER/OPTIONS: IP
    /// addresses, CIDR blocks, or DNS names (every A/AAAA address of the name, at start).
    pub trusted_peers: Vec<PeerSpec>,
    /// Always answer UDP requests at the packet's source port (RFC 3581 behaviour even without
    /// `rport`), as PBXs behind NAT need.
    pub force_rport: bool,
    pub t1_ms: u64,
    pub t2_ms: u64,
    pub t4_ms: u64,
    /// The address peers must use for ctid (NAT, load balancer): written into Via, Contact,
    /// ctid's From URIs and SDP instead of the bind address. `None`: the bind address. A DNS
    /// name is resolved when ctid starts.
    pub advertise: Option<HostPort>,
    pub limits: SipLimits,
    pub overload: Overload,
    pub tls: super::Tls,
}

impl Default for Sip {
    fn default() -> Self {
        Sip {
            listen_udp: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            listen_tcp: vec![SocketAddr::from(([127, 0, 0, 1], 5060))],
            listen_tls: vec![],
            realm: "ctid".into(),
            domain: "ctid.invalid".into(),
            user_agent: concat!("ctid/", env!("CARGO_PKG_VERSION")).into(),
            trusted_peers: vec![],
            force_rport: true,
            t1_ms: 500,
            t2_ms: 4000,
            t4_ms: 5000,
            advertise: None,
            limits: SipLimits::default(),
            overload: Overload::default(),
            tls: super::Tls::default(),
        }
    }
}

/// `host` or `host:port` where host is an IP address (`[v6]` with a port) or a DNS name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct HostPort {
    pub host: String,
    pub port: Option<u16>,
}

impl HostPort {
    /// The address when `host` is an IP literal (`None` for a name, resolved at start).
    pub fn literal(&self) -> Option<crate::sip::advertise::Advertise> {
        let ip = self.host.parse().ok()?;
        Some(crate::sip::advertise::Advertise {
            ip,
            port: self.port,
        })
    }
}

impl TryFrom<String> for HostPort {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        if let Ok(a) = crate::sip::advertise::Advertise::parse(&s) {
            return Ok(HostPort {
                host: a.ip.to_string(),
                port: a.port,
            });
        }
        let bad = || {
            format!(
                "{s:?} is neither an address nor a host name (expected ip, ip:port, [v6]:port, \
                 name or name:port, port 1-65535; not 0.0.0.0 or ::)"
            )
        };
        let (host, port) = match s.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?;
                (h, Some(port))
            }
            None => (s.as_str(), None),
        };
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        let name = host.trim_end_matches('.');
        let is_name = !name.is_empty()
            && name.len() <= 253
            && name.split('.').all(label_ok)
            && name.parse::<std::net::IpAddr>().is_err();
        if !is_name {
            return Err(bad());
        }
        Ok(HostPort {
            host: name.to_ascii_lowercase(),
            port,
        })
    }
}

impl From<HostPort> for String {
    fn from(h: HostPort) -> String {
        match (h.port, h.host.contains(':')) {
            (Some(p), true) => format!("[{}]:{p}", h.host),
            (Some(p), false) => format!("{}:{p}", h.host),
            (None, _) => h.host,
        }
    }
}

/// A `trusted_peers` entry: an address or block, or a host name resolved when ctid starts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub enum PeerSpec {
    Net(PeerNet),
    Name(String),
}

impl TryFrom<String> for PeerSpec {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Ok(net) = PeerNet::try_from(s.clone()) {
            return Ok(PeerSpec::Net(net));
        }
        match HostPort::try_from(s.clone()) {
            Ok(h) if h.port.is_none() && h.literal().is_none() => Ok(PeerSpec::Name(h.host)),
            _ => Err(format!(
                "{s:?} is not an IP address, CIDR block or host name"
            )),
        }
    }
}

impl From<PeerSpec> for String {
    fn from(p: PeerSpec) -> String {
        match p {
            PeerSpec::Net(n) => n.into(),
            PeerSpec::Name(n) => n,
        }
    }
}

/// `[sip.limits]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SipLimits {
    pub max_message_size: usize,
    pub max_headers: usize,
    pub max_header_len: usize,
    pub max_tcp_connections: usize,
    /// A TCP connection with no traffic for this long is closed.
    pub tcp_idle_timeout_secs: u64,
    /// A message started on a TCP connection must be complete within this time (slow-loris).
    pub tcp_message_timeout_secs: u64,
    /// Connections from one untrusted address at a time.
    pub tcp_max_connections_per_source: usize,
    /// Of `max_tcp_connections`, how many only trusted peers may use.
    pub tcp_reserved_for_trusted: usize,
    /// Idle timeout of a connection that has not yet carried a valid message from a trusted
    /// peer or an authenticated REGISTER.
    pub tcp_unproven_idle_timeout_secs: u64,
    /// The listen(2) backlog of SIP TCP listeners.
    pub tcp_listen_backlog: u32,
}

impl Default for SipLimits {
    fn default() -> Self {
        SipLimits {
            max_message_size: 65_535,
            max_headers: 128,
            max_header_len: 8_192,
            max_tcp_connections: 1_024,
            tcp_idle_timeout_secs: 300,
            tcp_message_timeout_secs: 10,
            tcp_max_connections_per_source: 64,
            tcp_reserved_for_trusted: 64,
            tcp_unproven_idle_timeout_secs: 10,
            tcp_listen_backlog: 1_024,
        }
    }
}

/// Checks of `[sip]` and `[sip.limits]`.
pub(super) fn validate(s: &Sip, add: &mut impl FnMut(&str, String)) {
    if s.listen_udp.is_empty() && s.listen_tcp.is_empty() {
        add(
            "sip.listen_udp",
            "no SIP listen address (listen_udp and listen_tcp are both empty)".into(),
        );
    }
    if s.realm.is_empty() || s.realm.contains('"') {
        add("sip.realm", "must be non-empty and contain no '\"'".into());
    }
    if s.t1_ms == 0 || s.t2_ms < s.t1_ms {
        add("sip.t1_ms", "T1 must be > 0 and T2 >= T1".into());
    }
    let l = &s.limits;
    if l.max_message_size < 1024 {
        add(
            "sip.limits.max_message_size",
            "must be at least 1024".into(),
        );
    }
    if l.max_headers < 10 {
        add("sip.limits.max_headers", "must be at least 10".into());
    }
    if l.max_header_len < 256 {
        add("sip.limits.max_header_len", "must be at least 256".into());
    }
    if l.max_tcp_connections == 0 {
        add(
            "sip.limits.max_tcp_connections",
            "must be at least 1".into(),
        );
    }
    if l.tcp_message_timeout_secs == 0 || l.tcp_idle_timeout_secs == 0 {
        add(
            "sip.limits.tcp_message_timeout_secs",
            "TCP timeouts must be > 0".into(),
        );
    }
}
