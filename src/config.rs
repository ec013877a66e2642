//! Configuration: the TOML file, its defaults, and validation into settings each subsystem uses.
//!
//! Owns: the file format (every table `deny_unknown_fields`), defaults, and checks that name the
//! key and line of every problem. Each top-level table and each `[[agents]]` entry is read on its
//! own, so one mistake does not hide the next: `ctid check-config` lists them all.
//!
//! Must not know: sockets, SIP processing, SQL.

use ipnet::IpNet;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

mod edge;
mod tls;
pub use edge::{AuthThrottle, Overload};
pub use tls::Tls;

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path (`sip.listen_udp`, `agents[2].password`), empty for syntax errors.
    pub key: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (Some(l), false) => write!(f, "line {l}: {}: {}", self.key, self.message),
            (Some(l), true) => write!(f, "line {l}: {}", self.message),
            (None, false) => write!(f, "{}: {}", self.key, self.message),
            (None, true) => write!(f, "{}", self.message),
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} problem(s)",
            self.file.display(),
            self.problems.len()
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

/// `[daemon]`
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Daemon {
    /// Where the database and recordings live; created if missing. Relative paths are relative
    /// to the working directory.
    pub data_dir: PathBuf,
    /// Default log filter when neither `--log-level` nor `RUST_LOG` is given.
    pub log_level: String,
    /// How log lines are written to stderr: human-readable text, or one JSON object a line for
    /// log shippers.
    pub log_format: LogFormat,
    /// On SIGINT/SIGTERM: how long open transactions may take to finish.
    pub shutdown_grace_secs: u64,
}

impl Default for Daemon {
    fn default() -> Self {
        Daemon {
            data_dir: PathBuf::from("./data"),
            log_level: "info".into(),
            log_format: LogFormat::Text,
            shutdown_grace_secs: 5,
        }
    }
}

/// `[daemon] log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

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
    pub tls: Tls,
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
            tls: Tls::default(),
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

/// An address or CIDR block (`192.0.2.10`, `10.0.0.0/8`, `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(try_from = "String", into = "String")]
pub struct PeerNet(pub IpNet);

impl PeerNet {
    pub fn contains(&self, ip: IpAddr) -> bool {
        // IPv4-mapped IPv6 sources (dual-stack sockets) match IPv4 blocks.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.0.contains(&ip)
    }
}

impl TryFrom<String> for PeerNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if let Ok(net) = s.parse::<IpNet>() {
            return Ok(PeerNet(net));
        }
        s.parse::<IpAddr>()
            .map(|ip| PeerNet(IpNet::from(ip)))
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))
    }
}

impl From<PeerNet> for String {
    fn from(p: PeerNet) -> String {
        p.0.to_string()
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
    /// Digest algorithms offered to this agent's phone, most preferred first; absent: the
    /// registrar's `algorithms`. E.g. `["SHA-256"]` for a phone that speaks RFC 8760.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
}

/// `[trunk]`: the PBX trunk ctid sends its own requests to.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Trunk {
    /// Where requests go, e.g. `sip:pbx.example.com:5060` or `sip:192.0.2.10;transport=tcp`.
    pub uri: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// Send OPTIONS to the trunk this often (0 = never) and log when it goes up or down.
    #[serde(default = "default_qualify")]
    pub qualify_interval_secs: u64,
}

fn default_qualify() -> u64 {
    30
}

/// `[calls]`: settings of the inbound call path shared by every queue.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Calls {
    /// Header the PBX sets to give a caller priority (integer, higher first; absent = 0).
    pub priority_header: String,
    /// Calls beyond this many at once are refused with `503` (protects the machine).
    pub max_calls: usize,
    /// Caller hangs up within this many seconds of entering the queue: a "short abandon".
    pub short_abandon_secs: u64,
}

impl Default for Calls {
    fn default() -> Self {
        Calls {
            priority_header: "X-Queue-Priority".into(),
            max_calls: 5_000,
            short_abandon_secs: 5,
        }
    }
}

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

/// `[reports]`: how days and intervals are cut for live figures and reports.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Reports {
    /// IANA time zone of the call center ("Europe/Berlin"); "system" = the machine's.
    pub time_zone: String,
    /// Length of the live-figure interval: 15, 30 or 60 minutes.
    pub interval_minutes: u32,
    /// Call records older than this many days are purged (hourly, in small batches);
    /// 0 keeps them forever.
    pub retention_days: u32,
    /// Calls deleted per retention batch (one short write transaction each): 1..=100000.
    pub retention_batch: usize,
    /// Pause between two retention batches, so call records keep being written: 0..=60000 ms.
    pub retention_pause_ms: u64,
}

impl Default for Reports {
    fn default() -> Self {
        Reports {
            time_zone: "UTC".into(),
            interval_minutes: 15,
            retention_days: 0,
            retention_batch: 500,
            retention_pause_ms: 20,
        }
    }
}

/// `[outbound]`: callback lists (outbound dialing). The dialer and the API read it as
/// `cfg.outbound`; see docs/config.md.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Outbound {
    /// `false`: nothing is dialed (lists, imports and the do-not-call list can still be managed
    /// through the API, to prepare a campaign).
    pub enabled: bool,
    /// Country calling code for numbers written in national form (`020 7946 0958` with `"44"`
    /// is `+442079460958`): 1–3 digits, not starting with 0; a leading `+` is accepted.
    pub default_country_code: String,
    /// Default for new lists that do not set `dedupe_period_secs`: a customer answered on any
    /// list within this many days is not called again (0 = no such rule).
    pub duplicate_period_days: u32,
    /// The list complaint follow-ups go to (created on the first complaint).
    pub complaint_list: String,
    /// The queue whose agents work the complaint list when it is created; absent: the queue of
    /// the call the complaint was made on.
    pub complaint_queue: Option<String>,
    /// A complaint must get a reply (an answered follow-up call) within this many hours …
    pub complaint_reply_hours: u32,
    /// … and be resolved (its follow-up dispositioned done) within this many hours.
    pub complaint_resolve_hours: u32,
    /// Blending: outbound dialing for an agent holds back while any inbound queue the agent
    /// serves has this many callers waiting or more (0 = this rule is off).
    pub blend_hold_back_waiting: u32,
    /// … or while the longest wait of such a queue has reached this percentage of the queue's
    /// service-level target (`sl_target_secs`; 0 = this rule is off).
    pub blend_hold_back_wait_percent: u32,
    /// A customer call not answered within this many seconds ends as `no_answer`.
    pub dial_timeout_secs: u64,
    /// Preview mode: a contact shown to an agent who neither accepts nor skips it within this
    /// many seconds is given back (it returns later) and the agent is paused `no_answer`.
    pub preview_timeout_secs: u64,
}

impl Default for Outbound {
    fn default() -> Self {
        Outbound {
            enabled: true,
            default_country_code: "44".into(),
            duplicate_period_days: 30,
            complaint_list: "complaints".into(),
            complaint_queue: None,
            complaint_reply_hours: 12,
            complaint_resolve_hours: 48,
            blend_hold_back_waiting: 1,
            blend_hold_back_wait_percent: 80,
            dial_timeout_secs: 30,
            preview_timeout_secs: 120,
        }
    }
}

/// Longest accepted `[outbound] duplicate_period_days` (the lists accept at most 400 days).
pub const MAX_DUPLICATE_PERIOD_DAYS: u32 = 400;

impl Outbound {
    /// `default_country_code` as the import and the dialer take it (validated at load; the
    /// default `44` if it is not valid, which `Config::parse` never lets through).
    pub fn country_code(&self) -> crate::outbound::CountryCode {
        crate::outbound::CountryCode::new(&self.default_country_code).unwrap_or_else(|_| {
            crate::outbound::CountryCode::new("44").expect("44 is a country code")
        })
    }

    /// `duplicate_period_days` in seconds (a list's `dedupe_period_secs`).
    pub fn duplicate_period_secs(&self) -> u64 {
        u64::from(self.duplicate_period_days) * 86_400
    }

    /// `complaint_reply_hours` in milliseconds.
    pub fn complaint_reply_ms(&self) -> u64 {
        u64::from(self.complaint_reply_hours) * 3_600_000
    }

    /// `complaint_resolve_hours` in milliseconds.
    pub fn complaint_resolve_ms(&self) -> u64 {
        u64::from(self.complaint_resolve_hours) * 3_600_000
    }

    /// How long the dialer lets a customer's phone ring.
    pub fn dial_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.dial_timeout_secs)
    }

    /// The blending rule for one inbound queue an agent serves: should outbound dialing for
    /// that agent hold back, with `waiting` callers in the queue, the longest waiting
    /// `longest_wait_secs`, and the queue's SL target `sl_target_secs`?
    pub fn hold_back(&self, waiting: usize, longest_wait_secs: f64, sl_target_secs: u64) -> bool {
        let by_count =
            self.blend_hold_back_waiting > 0 && waiting >= self.blend_hold_back_waiting as usize;
        let by_wait = self.blend_hold_back_wait_percent > 0
            && waiting > 0
            && longest_wait_secs * 100.0
                >= f64::from(self.blend_hold_back_wait_percent) * sl_target_secs as f64;
        by_count || by_wait
    }

    /// Where complaint follow-ups go: the complaint list (created with these settings on the
    /// first complaint) worked by `complaint_queue`, else by `call_queue` (the queue of the
    /// complaint call), in `time_zone` (the list's calling windows are local to it).
    pub fn complaint_settings(
        &self,
        time_zone: &str,
        call_queue: Option<&str>,
    ) -> crate::outbound::ComplaintSettings {
        let queue = self
            .complaint_queue
            .clone()
            .or_else(|| call_queue.map(str::to_string));
        crate::outbound::ComplaintSettings::new(
            &self.complaint_list,
            time_zone,
            queue,
            Vec::new(),
            self.country_code(),
        )
    }
}

/// `[media]`: where ctid anchors RTP.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Address RTP sockets bind to and that ctid announces in SDP.
    pub rtp_ip: IpAddr,
    pub rtp_port_min: u16,
    pub rtp_port_max: u16,
    /// No RTP from a leg (not on hold) for this long ends the call, cause `media_timeout`
    /// (0 = never).
    pub media_timeout_secs: u64,
    /// `relay`: the caller's RFC 4733 key presses reach the agent (IVRs behind the agent, card
    /// numbers); `consume`: ctid keeps them (nobody hears or sees the keys).
    pub dtmf: String,
    /// Where relative prompt file names of the queues are looked up (relative to the working
    /// directory, like `daemon.data_dir`). Holds the position prompts too (`position-intro.wav`,
    /// `position-outro.wav`, `numbers/<word>.wav`).
    pub prompts_dir: PathBuf,
    /// Where call recordings go; relative to `daemon.data_dir`.
    pub recordings_dir: PathBuf,
    /// Threads that run the media sessions (pacing, relay, recording feed), apart from SIP and
    /// call handling; 0 = one per CPU core.
    pub threads: usize,
    /// 1–99: the media threads run `SCHED_FIFO` at this priority (audio frames on time even
    /// when the machine is busy; needs CAP_SYS_NICE or `LimitRTPRIO`, falls back to nice −10
    /// with a warning); 0: nice −10.
    pub realtime_priority: u8,
}

impl Default for Media {
    fn default() -> Self {
        Media {
            rtp_ip: IpAddr::from([127, 0, 0, 1]),
            rtp_port_min: 20_000,
            rtp_port_max: 29_999,
            media_timeout_secs: 30,
            dtmf: "relay".into(),
            prompts_dir: PathBuf::from("prompts/en"),
            recordings_dir: PathBuf::from("recordings"),
            threads: 0,
            realtime_priority: 10,
        }
    }
}

/// A queue member: an agent id and its skill tier (0 = best).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueMember {
    pub agent: String,
    #[serde(default)]
    pub tier: u32,
}

/// One `[[queues]]` entry: a hotline.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Queue {
    pub name: String,
    /// Dialed numbers (Request-URI user part) that reach this queue.
    pub numbers: Vec<String>,
    /// longest-idle, round-robin, ring-all, fewest-calls, random, skills.
    #[serde(default = "default_strategy")]
    pub strategy: String,
    pub members: Vec<QueueMember>,
    /// Between queues an agent serves, the higher weight wins a tie.
    #[serde(default)]
    pub weight: u32,
    #[serde(default = "default_sl_target")]
    pub sl_target_secs: u64,
    #[serde(default = "default_answer_rate")]
    pub answer_rate_target_percent: u8,
    /// Share of calls to answer within `sl_target_secs` (the service-level goal).
    #[serde(default = "default_answer_rate")]
    pub sl_goal_percent: u8,
    #[serde(default = "default_ring_timeout")]
    pub ring_timeout_secs: u64,
    #[serde(default)]
    pub wrapup_secs: u64,
    /// Callers beyond this many waiting are refused (or overflow). Absent = no limit.
    pub max_waiting: Option<usize>,
    /// A caller waiting this long leaves (overflow or timeout). Absent = no limit.
    pub max_wait_secs: Option<u64>,
    #[serde(default = "yes")]
    pub join_empty: bool,
    #[serde(default)]
    pub leave_empty: bool,
    /// `queue:NAME` (continue in another queue) or `hangup:CODE` (end with that SIP code).
    pub overflow: Option<String>,
    /// Skills strategy: widen to the next tier after this many seconds of waiting.
    #[serde(default = "default_widen")]
    pub widen_after_secs: u64,
    /// Consecutive unanswered offers before an agent is paused with reason `no_answer`
    /// (0 = never).
    #[serde(default = "default_max_missed")]
    pub max_missed: u32,
    /// Answer the caller with `183 Session Progress` (early media) and send `200 OK` only when an
    /// agent answers, so the PBX starts billing at the agent's answer.
    #[serde(default)]
    pub early_media: bool,
    /// Played once when the caller enters the queue (a WAV file; relative to
    /// `media.prompts_dir`). Absent: none.
    pub greeting: Option<String>,
    /// Played in a loop while the caller waits. Absent: silence.
    pub hold_music: Option<String>,
    /// Played every `announce_every_secs` while waiting (before the position, if announced).
    pub announcement: Option<String>,
    /// Period of the announcements (0 = none).
    #[serde(default)]
    pub announce_every_secs: u64,
    /// Tell the caller their position ("you are number 3 in the queue") with each announcement.
    #[serde(default)]
    pub announce_position: bool,
    /// The key a waiting caller presses to be called back instead (absent = no callback offer).
    pub callback_key: Option<String>,
    /// Offered with each announcement when `callback_key` is set.
    pub callback_offer: Option<String>,
    /// Played to confirm a callback request before ctid hangs up.
    pub callback_confirm: Option<String>,
    /// After the agent hangs up, ask the caller to rate the call (keys 1–5).
    #[serde(default)]
    pub survey: bool,
    pub survey_prompt: Option<String>,
    pub survey_thanks: Option<String>,
    /// No key within this many seconds after the survey prompt: no score.
    #[serde(default = "default_survey_timeout")]
    pub survey_timeout_secs: u64,
    /// Record bridged calls (stereo WAV: caller left, agent right) under `media.recordings_dir`.
    #[serde(default)]
    pub record: bool,
}

fn default_survey_timeout() -> u64 {
    10
}

fn default_strategy() -> String {
    "longest-idle".into()
}
fn default_sl_target() -> u64 {
    15
}
fn default_answer_rate() -> u8 {
    90
}
fn default_ring_timeout() -> u64 {
    15
}
fn yes() -> bool {
    true
}
fn default_widen() -> u64 {
    30
}
fn default_max_missed() -> u32 {
    3
}

/// The strategy names the config accepts.
pub const STRATEGIES: &[&str] = &[
    "longest-idle",
    "round-robin",
    "ring-all",
    "fewest-calls",
    "random",
    "skills",
];

/// The whole configuration.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Config {
    pub daemon: Daemon,
    pub sip: Sip,
    pub registrar: Registrar,
    pub agents: Vec<Agent>,
    pub trunk: Option<Trunk>,
    pub calls: Calls,
    pub media: Media,
    pub queues: Vec<Queue>,
    pub admin: Admin,
    pub reports: Reports,
    pub api: Api,
    pub outbound: Outbound,
}

impl Config {
    /// Read and validate a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            problems: vec![Problem {
                key: String::new(),
                line: None,
                message: format!("cannot read: {e}"),
            }],
        })?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        Config::parse_in(&text, base).map_err(|problems| ConfigError {
            file: path.to_path_buf(),
            problems,
        })
    }

    /// Parse and validate config text; every problem found is returned. Relative `*_file`
    /// paths are taken from the working directory.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        Config::parse_in(text, None)
    }

    /// [`Config::parse`] with relative `*_file` paths taken from `base` (the config file's
    /// directory).
    pub fn parse_in(text: &str, base: Option<&Path>) -> Result<Config, Vec<Problem>> {
        let lines = LineIndex::new(text);
        let root = match DeTable::parse(text) {
            Ok(r) => r,
            Err(e) => {
                return Err(vec![Problem {
                    key: String::new(),
                    line: e.span().map(|s| lines.line(s.start)),
                    message: e.message().to_string(),
                }])
            }
        };
        let mut cfg = Config::default();
        let mut problems = Vec::new();
        for (k, v) in root.get_ref().iter() {
            let key = k.get_ref().to_string();
            let line = lines.line(k.span().start);
            match key.as_str() {
                "daemon" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.daemon),
                "sip" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.sip),
                "registrar" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.registrar),
                "trunk" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.trunk),
                "calls" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.calls),
                "media" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.media),
                "admin" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.admin),
                "reports" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.reports),
                "api" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.api),
                "outbound" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.outbound),
                "queues" => read(v.clone(), &key, &lines, &mut problems, &mut cfg.queues),
                "agents" => match v.get_ref() {
                    DeValue::Array(items) => {
                        for (i, item) in items.iter().enumerate() {
                            let mut a: Option<Agent> = None;
                            let k = format!("agents[{i}]");
                            read(item.clone(), &k, &lines, &mut problems, &mut a);
                            if let Some(a) = a {
                                cfg.agents.push(a);
                            }
                        }
                    }
                    _ => problems.push(Problem {
                        key: key.clone(),
                        line: Some(line),
                        message: "must be an array of tables ([[agents]])".into(),
                    }),
                },
                _ => problems.push(Problem {
                    key: key.clone(),
                    line: Some(line),
                    message: "unknown section (expected daemon, sip, registrar, agents, trunk, calls, media, queues, admin, reports, api, outbound)"
                        .into(),
                }),
            }
        }
        read_secret_files(&mut cfg, base, text, &lines, &mut problems);
        cfg.sip.tls.resolve(base);
        validate(&cfg, text, &lines, &mut problems);
        if problems.is_empty() {
            Ok(cfg)
        } else {
            Err(problems)
        }
    }
}

/// Fill `password` / `token` from their `*_file` keys. Both a secret and its file is a problem
/// (which one would win?), and so is a file that cannot be read or is empty.
fn read_secret_files(
    cfg: &mut Config,
    base: Option<&Path>,
    text: &str,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
) {
    let mut add = |key: String, message: String| {
        problems.push(Problem {
            line: find_key_line(text, &key, lines),
            key,
            message,
        })
    };
    let mut read = |file: &Path, key: String, inline: &str| -> Option<String> {
        if !inline.is_empty() {
            add(key, "give the secret or its file, not both".into());
            return None;
        }
        let path = match base {
            Some(b) if file.is_relative() => b.join(file),
            _ => file.to_path_buf(),
        };
        match std::fs::read_to_string(&path) {
            Ok(t) => match t.lines().next().map(str::trim_end) {
                Some(first) if !first.is_empty() => Some(first.to_string()),
                _ => {
                    add(key, format!("{} is empty", path.display()));
                    None
                }
            },
            Err(e) => {
                add(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    };
    for (i, a) in cfg.agents.iter_mut().enumerate() {
        if let Some(f) = a.password_file.clone() {
            if let Some(p) = read(&f, format!("agents[{i}].password_file"), &a.password) {
                a.password = p;
            }
        }
    }
    for (i, t) in cfg.api.tokens.iter_mut().enumerate() {
        if let Some(f) = t.token_file.clone() {
            if let Some(v) = read(&f, format!("api.tokens[{i}].token_file"), &t.token) {
                t.token = v;
            }
        }
    }
}

/// Deserialize one table into `out`, recording a problem (with its line) for every key that
/// fails: serde stops at the first error, so the failing key is dropped and the table read
/// again until it reads (or nothing more can be dropped, e.g. a required key is missing).
fn read<T: DeserializeOwned>(
    v: Spanned<DeValue<'_>>,
    key: &str,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
    out: &mut T,
) {
    let start = v.span().start;
    let whole = v.clone();
    let mut v = v;
    // Each round drops one key or array item, so the rounds are bounded by the table's size.
    for _ in 0..=text_entries(whole.get_ref()) {
        let err = match T::deserialize(ValueDeserializer::from(v.clone())) {
            Ok(t) => {
                *out = t;
                return;
            }
            Err(e) => e,
        };
        let offset = err.span().map_or(start, |s| s.start);
        // Paths are found in the file as written (spans never move), not in the pruned copy.
        let mut path = key.to_string();
        key_path_at(whole.get_ref(), offset, &mut path);
        problems.push(Problem {
            key: path,
            line: Some(lines.line(offset)),
            message: err.message().trim().to_string(),
        });
        if !drop_at(v.get_mut(), offset) {
            return;
        }
    }
}

/// How many keys and array items a value holds, all levels counted.
fn text_entries(v: &DeValue<'_>) -> usize {
    match v {
        DeValue::Table(t) => t.iter().map(|(_, v)| 1 + text_entries(v.get_ref())).sum(),
        DeValue::Array(items) => items.iter().map(|v| 1 + text_entries(v.get_ref())).sum(),
        _ => 0,
    }
}

fn spans(span: std::ops::Range<usize>, offset: usize) -> bool {
    span.start <= offset && offset < span.end.max(span.start + 1)
}

/// Whether an array item holds byte `offset`. An `[[array]]` table's own span is only its
/// header, so its entries are asked too.
fn item_holds(item: &Spanned<DeValue<'_>>, offset: usize) -> bool {
    spans(item.span(), offset)
        || match item.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .any(|(k, v)| spans(k.span(), offset) || spans(v.span(), offset)),
            _ => false,
        }
}

/// Remove the innermost key or array item whose key or value holds byte `offset`, so that the
/// rest of the table can be checked. False when nothing there can be removed.
fn drop_at(v: &mut DeValue<'_>, offset: usize) -> bool {
    match v {
        DeValue::Table(t) => {
            let mut hit = None;
            for (k, val) in t.iter_mut() {
                let in_value = spans(val.span(), offset);
                if in_value || spans(k.span(), offset) {
                    if in_value && drop_at(val.get_mut(), offset) {
                        return true;
                    }
                    hit = Some(k.get_ref().to_string());
                    break;
                }
            }
            hit.is_some_and(|name| t.remove(name.as_str()).is_some())
        }
        DeValue::Array(items) => {
            let Some(i) = items.iter().position(|val| item_holds(val, offset)) else {
                return false;
            };
            if let Some(item) = items.get_mut(i) {
                if drop_at(item.get_mut(), offset) {
                    return true;
                }
            }
            let rest: toml::de::DeArray<'_> = items
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, val)| val.clone())
                .collect();
            *items = rest;
            true
        }
        _ => false,
    }
}

/// Extend `path` with the keys (and array indexes) whose values contain byte `offset`, so an
/// error inside `[sip]` is reported as `sip.realm` rather than `sip`.
fn key_path_at(v: &DeValue<'_>, offset: usize, path: &mut String) {
    match v {
        DeValue::Table(t) => {
            for (k, val) in t.iter() {
                let span = val.span();
                if span.start <= offset && offset < span.end.max(span.start + 1) {
                    path.push('.');
                    path.push_str(k.get_ref());
                    key_path_at(val.get_ref(), offset, path);
                    return;
                }
            }
        }
        DeValue::Array(items) => {
            for (i, val) in items.iter().enumerate() {
                if item_holds(val, offset) {
                    path.push_str(&format!("[{i}]"));
                    key_path_at(val.get_ref(), offset, path);
                    return;
                }
            }
        }
        _ => {}
    }
}

/// Check a log filter (`[daemon] log_level`, `--log-level`): comma-separated directives, each a
/// level (`trace`, `debug`, `info`, `warn`, `error`, `off`), `target=level`, or a bare module
/// path (`ctid`, `ctid::sip`). tracing's own parser takes any word as a target, so a misspelt
/// level (`debg`, `verbose`) would silently turn all logging off.
pub fn check_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let is_level = |l: &str| LEVELS.contains(&l.to_ascii_lowercase().as_str());
    let is_path = |t: &str| {
        !t.is_empty()
            && t.split("::")
                .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    };
    if filter.trim().is_empty() {
        return Err("is empty (expected a level such as \"info\")".into());
    }
    for d in filter.split(',').map(str::trim) {
        let ok = match d.split_once('=') {
            Some((target, level)) => is_path(target) && is_level(level),
            None => is_level(d) || (is_path(d) && (d == "ctid" || d.contains("::"))),
        };
        if !ok {
            return Err(format!(
                "\"{d}\" is not a log directive (expected trace, debug, info, warn, error, off, or target=level such as ctid::sip=debug)"
            ));
        }
    }
    Ok(())
}

/// Semantic checks that serde cannot make.
fn validate(cfg: &Config, text: &str, lines: &LineIndex, problems: &mut Vec<Problem>) {
    if let Err(e) = check_log_filter(&cfg.daemon.log_level) {
        problems.push(Problem {
            key: "daemon.log_level".into(),
            line: find_key_line(text, "daemon.log_level", lines),
            message: e,
        });
    }
    let mut add = |key: &str, message: String| {
        problems.push(Problem {
            key: key.to_string(),
            line: find_key_line(text, key, lines),
            message,
        })
    };
    let s = &cfg.sip;
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
    check_algorithms(&r.algorithms, "registrar.algorithms", &mut add);
    for (i, a) in cfg.agents.iter().enumerate() {
        if let Some(list) = &a.algorithms {
            check_algorithms(list, &format!("agents[{i}].algorithms"), &mut add);
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
        if a.password.is_empty() && a.password_file.is_none() {
            add(
                &format!("{key}.password"),
                "must not be empty (or give password_file)".into(),
            );
        }
    }
    validate_queues(cfg, &mut add);
    validate_api(cfg, &mut add);
    validate_outbound(cfg, &mut add);
    let m = &cfg.media;
    if m.rtp_port_min == 0 || m.rtp_port_max <= m.rtp_port_min {
        add(
            "media.rtp_port_min",
            "need 0 < rtp_port_min < rtp_port_max".into(),
        );
    }
    if m.dtmf != "relay" && m.dtmf != "consume" {
        add(
            "media.dtmf",
            format!("{:?}: expected \"relay\" or \"consume\"", m.dtmf),
        );
    }
    if m.threads > 64 {
        add("media.threads", "at most 64 (0 = one per CPU core)".into());
    }
    if m.realtime_priority > 99 {
        add(
            "media.realtime_priority",
            "1 to 99 (SCHED_FIFO priority), or 0 for none".into(),
        );
    }
    edge::validate(cfg, &mut add);
    tls::validate(cfg, &mut add);
    validate_prompts(cfg, &mut add);
    if let Err(e) = crate::stats::time_zone(&cfg.reports.time_zone) {
        add(
            "reports.time_zone",
            format!("{:?}: {e}", cfg.reports.time_zone),
        );
    }
    if !crate::stats::INTERVAL_MINUTES.contains(&cfg.reports.interval_minutes) {
        add("reports.interval_minutes", "must be 15, 30 or 60".into());
    }
    if !(1..=100_000).contains(&cfg.reports.retention_batch) {
        add("reports.retention_batch", "must be 1..=100000".into());
    }
    if cfg.reports.retention_pause_ms > 60_000 {
        add("reports.retention_pause_ms", "at most 60000".into());
    }
    if cfg.calls.max_calls == 0 {
        add("calls.max_calls", "must be at least 1".into());
    }
    if let Some(t) = &cfg.trunk {
        // An IP literal or a DNS name (A/AAAA, or SRV without a port: resolved at start).
        if let Err(e) = crate::resolve::plan(&t.uri) {
            add("trunk.uri", e);
        }
        if t.username.is_some() != t.password.is_some() {
            add("trunk.username", "username and password go together".into());
        }
    }
}

/// Every prompt a queue names must load (exists, readable, a WAV ctid can convert): found by
/// `ctid check-config`, not by a caller hearing silence.
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

fn validate_prompts(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let mut position_needed = false;
    for (i, q) in cfg.queues.iter().enumerate() {
        for (field, name) in q.prompt_fields() {
            if let Some(name) = name {
                if let Err(e) = crate::media::prompt::load(&cfg.media.prompt_path(name)) {
                    add(&format!("queues[{i}].{field}"), e.to_string());
                }
            }
        }
        if let Some(k) = &q.callback_key {
            if k.chars().count() != 1 || !k.chars().all(|c| "0123456789*#".contains(c)) {
                add(
                    &format!("queues[{i}].callback_key"),
                    format!("{k:?}: expected one key of 0-9, * or #"),
                );
            }
        }
        position_needed |= q.announce_position;
    }
    if position_needed {
        for name in crate::media::prompts::position_files() {
            if let Err(e) = crate::media::prompt::load(&cfg.media.prompt_path(&name)) {
                add(
                    "media.prompts_dir",
                    format!("position announcements need it: {e}"),
                );
                break;
            }
        }
    }
}

impl Media {
    /// A prompt file name from the config: absolute, or relative to `prompts_dir`.
    pub fn prompt_path(&self, name: &str) -> PathBuf {
        let p = Path::new(name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.prompts_dir.join(p)
        }
    }
}

impl Queue {
    /// The prompt files this queue names, by config key.
    pub fn prompt_fields(&self) -> [(&'static str, Option<&str>); 7] {
        [
            ("greeting", self.greeting.as_deref()),
            ("hold_music", self.hold_music.as_deref()),
            ("announcement", self.announcement.as_deref()),
            ("callback_offer", self.callback_offer.as_deref()),
            ("callback_confirm", self.callback_confirm.as_deref()),
            ("survey_prompt", self.survey_prompt.as_deref()),
            ("survey_thanks", self.survey_thanks.as_deref()),
        ]
    }
}

fn validate_queues(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let agents: std::collections::HashSet<&str> =
        cfg.agents.iter().map(|a| a.id.as_str()).collect();
    let names: std::collections::HashSet<&str> =
        cfg.queues.iter().map(|q| q.name.as_str()).collect();
    let mut seen_names = std::collections::HashSet::new();
    let mut seen_numbers = std::collections::HashMap::new();
    for (i, q) in cfg.queues.iter().enumerate() {
        let key = format!("queues[{i}]");
        if q.name.is_empty() || !seen_names.insert(q.name.as_str()) {
            add(
                &format!("{key}.name"),
                format!("queue name {:?} is empty or used twice", q.name),
            );
        }
        if q.numbers.is_empty() {
            add(
                &format!("{key}.numbers"),
                "a queue needs at least one dialed number".into(),
            );
        }
        for n in &q.numbers {
            if let Some(other) = seen_numbers.insert(n.as_str(), q.name.as_str()) {
                add(
                    &format!("{key}.numbers"),
                    format!("number {n:?} already reaches queue {other:?}"),
                );
            }
        }
        if !STRATEGIES.contains(&q.strategy.as_str()) {
            add(
                &format!("{key}.strategy"),
                format!(
                    "unknown strategy {:?} (one of {})",
                    q.strategy,
                    STRATEGIES.join(", ")
                ),
            );
        }
        for m in &q.members {
            if !agents.contains(m.agent.as_str()) {
                add(
                    &format!("{key}.members"),
                    format!("agent {:?} is not defined in [[agents]]", m.agent),
                );
            }
        }
        if q.ring_timeout_secs == 0 {
            add(
                &format!("{key}.ring_timeout_secs"),
                "must be at least 1".into(),
            );
        }
        if q.sl_target_secs == 0 {
            add(
                &format!("{key}.sl_target_secs"),
                "must be at least 1".into(),
            );
        }
        if q.sl_goal_percent > 100 {
            add(
                &format!("{key}.sl_goal_percent"),
                "a percentage (0-100)".into(),
            );
        }
        if q.answer_rate_target_percent > 100 {
            add(
                &format!("{key}.answer_rate_target_percent"),
                "a percentage (0-100)".into(),
            );
        }
        if let Some(o) = &q.overflow {
            match parse_overflow(o) {
                Some(crate::acd::Overflow::Queue(t))
                    if !names.contains(t.0.as_str()) || t.0 == q.name =>
                {
                    add(
                        &format!("{key}.overflow"),
                        format!("overflow queue {:?} does not exist (or is this queue)", t.0),
                    )
                }
                Some(_) => {}
                None => add(
                    &format!("{key}.overflow"),
                    format!("{o:?}: use \"queue:NAME\" or \"hangup:CODE\" (CODE 400-699)"),
                ),
            }
        }
    }
}

fn validate_api(cfg: &Config, add: &mut impl FnMut(&str, String)) {
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

fn validate_outbound(cfg: &Config, add: &mut impl FnMut(&str, String)) {
    let o = &cfg.outbound;
    if let Err(e) = crate::outbound::CountryCode::new(&o.default_country_code) {
        add("outbound.default_country_code", e);
    }
    if o.duplicate_period_days > MAX_DUPLICATE_PERIOD_DAYS {
        add(
            "outbound.duplicate_period_days",
            format!("must be at most {MAX_DUPLICATE_PERIOD_DAYS}"),
        );
    }
    let name = o.complaint_list.as_str();
    if name.trim().is_empty()
        || name.trim() != name
        || name.chars().count() > 100
        || name.chars().any(char::is_control)
    {
        add(
            "outbound.complaint_list",
            format!("{name:?}: 1 to 100 characters, no leading or trailing spaces"),
        );
    }
    if let Some(q) = &o.complaint_queue {
        if !cfg.queues.iter().any(|c| &c.name == q) {
            add(
                "outbound.complaint_queue",
                format!("queue {q:?} is not defined in [[queues]]"),
            );
        }
    }
    if o.complaint_reply_hours == 0 {
        add(
            "outbound.complaint_reply_hours",
            "must be at least 1".into(),
        );
    }
    if o.complaint_resolve_hours < o.complaint_reply_hours {
        add(
            "outbound.complaint_resolve_hours",
            "must be at least complaint_reply_hours".into(),
        );
    }
    if o.blend_hold_back_wait_percent > 100 {
        add(
            "outbound.blend_hold_back_wait_percent",
            "a percentage (0-100; 0 = off)".into(),
        );
    }
    if !(5..=300).contains(&o.dial_timeout_secs) {
        add("outbound.dial_timeout_secs", "must be 5 to 300".into());
    }
    if !(5..=3600).contains(&o.preview_timeout_secs) {
        add("outbound.preview_timeout_secs", "must be 5 to 3600".into());
    }
}

/// `queue:NAME` or `hangup:CODE`.
pub fn parse_overflow(s: &str) -> Option<crate::acd::Overflow> {
    if let Some(q) = s.strip_prefix("queue:") {
        return (!q.is_empty())
            .then(|| crate::acd::Overflow::Queue(crate::acd::QueueId(q.to_string())));
    }
    let code: u16 = s.strip_prefix("hangup:")?.parse().ok()?;
    (400..=699)
        .contains(&code)
        .then_some(crate::acd::Overflow::Hangup { cause: code })
}

/// Best-effort line of a dotted key (`sip.limits.max_headers`, `agents[1].id`): the line of the
/// last path element inside its table, falling back to the table header.
fn find_key_line(text: &str, key: &str, lines: &LineIndex) -> Option<usize> {
    let root = DeTable::parse(text).ok()?;
    let mut table: &DeTable<'_> = root.get_ref();
    let mut best = None;
    for seg in key.split('.') {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        let (k, v) = table.iter().find(|(k, _)| k.get_ref().as_ref() == name)?;
        best = Some(lines.line(k.span().start));
        let v = match (v.get_ref(), index) {
            (DeValue::Array(items), Some(i)) => {
                let item = items.get(i)?;
                best = Some(lines.line(item.span().start));
                item
            }
            _ => v,
        };
        match v.get_ref() {
            DeValue::Table(t) => table = t,
            _ => break,
        }
    }
    best
}

/// Byte offset → 1-based line number.
struct LineIndex(Vec<usize>);

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex(starts)
    }

    fn line(&self, offset: usize) -> usize {
        match self.0.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_configs_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config");
        let mut n = 0;
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "toml") {
                let r = Config::load(&e.path());
                assert!(r.is_ok(), "{}: {:?}", e.path().display(), r.err());
                n += 1;
            }
        }
        assert!(n >= 1, "no example configs found");
    }

    #[test]
    fn sip_advertise_is_an_address_or_name_with_an_optional_port() {
        let cfg = Config::parse("[sip]\nadvertise = \"203.0.113.7:5070\"\n").unwrap();
        let a = cfg.sip.advertise.unwrap().literal().unwrap();
        assert_eq!(
            (a.ip.to_string(), a.port),
            ("203.0.113.7".into(), Some(5070))
        );
        let cfg = Config::parse("[sip]\nadvertise = \"[2001:db8::7]\"\n").unwrap();
        assert_eq!(cfg.sip.advertise.unwrap().literal().unwrap().port, None);
        // A DNS name, resolved at start.
        let cfg = Config::parse("[sip]\nadvertise = \"sip.example.com:5070\"\n").unwrap();
        let h = cfg.sip.advertise.unwrap();
        assert_eq!((h.host.as_str(), h.port), ("sip.example.com", Some(5070)));
        assert_eq!(h.literal(), None);
        for bad in [
            "0.0.0.0",
            "203.0.113.7:0",
            "not an address",
            "-x.example",
            "a..b",
            "h:99999",
        ] {
            let text = format!("[sip]\nadvertise = {bad:?}\n");
            let p = Config::parse(&text).unwrap_err();
            let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
            assert!(
                shown.iter().any(|s| s.contains("line 2: sip.advertise")),
                "{bad}: {shown:#?}"
            );
        }
    }

    #[test]
    fn trusted_peers_are_addresses_blocks_or_names() {
        let cfg = Config::parse(
            "[sip]\ntrusted_peers = [\"192.0.2.10\", \"10.0.0.0/8\", \"pbx.example.com\"]\n",
        )
        .unwrap();
        assert_eq!(cfg.sip.trusted_peers.len(), 3);
        assert!(
            matches!(&cfg.sip.trusted_peers[0], PeerSpec::Net(n) if n.contains("192.0.2.10".parse().unwrap()))
        );
        assert_eq!(
            cfg.sip.trusted_peers[2],
            PeerSpec::Name("pbx.example.com".into())
        );
        for bad in [
            "pbx.example.com:5060",
            "10.0.0.0/33",
            "not a host",
            "0.0.0.0:1",
        ] {
            let text = format!("[sip]\ntrusted_peers = [{bad:?}]\n");
            let p = Config::parse(&text).unwrap_err();
            let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
            assert!(
                shown
                    .iter()
                    .any(|s| s.contains("line 2: sip.trusted_peers")),
                "{bad}: {shown:#?}"
            );
        }
    }

    #[test]
    fn empty_config_is_the_default() {
        assert_eq!(Config::parse("").ok(), Some(Config::default()));
    }

    #[test]
    fn every_problem_is_listed_with_key_and_line() {
        let text = "[daemon]\nlog_level = \"info\"\nbogus = 1\n\n[sip]\nt1_ms = \"x\"\n\n[registrar]\nmin_expires = 0\n\n[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"\"\n\n[[agents]]\nid = \"1\"\nname = \"B\"\nusername = \"b\"\npasword = \"x\"\n\n[nonsense]\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 3: daemon: unknown field `bogus`"), "{shown:#?}");
        assert!(find("line 6: sip.t1_ms: invalid type"), "{shown:#?}");
        assert!(
            find("line 21: agents[1]: unknown field `pasword`"),
            "{shown:#?}"
        );
        assert!(find("line 23: nonsense: unknown section"), "{shown:#?}");
        assert!(find("line 9: registrar.min_expires"), "{shown:#?}");
        assert!(find("line 15: agents[0].password"), "{shown:#?}");
    }

    #[test]
    fn every_problem_of_one_section_is_listed() {
        // Three mistakes in [sip], two in one [[queues]] entry and one in the next: serde stops
        // at the first of each table, check-config must still name all six.
        let text = "[sip]\nt1_ms = \"x\"\nbogus = 1\nrealm = 5\n\n[[queues]]\nname = \"q\"\nnumbers = [\"4000\"]\nmax_wait_secs = \"long\"\nsl_target = 15\n\n[[queues]]\nname = \"r\"\nnumbers = [\"4001\"]\nwrapup = 3\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 2: sip.t1_ms: invalid type"), "{shown:#?}");
        assert!(find("line 3: sip: unknown field `bogus`"), "{shown:#?}");
        assert!(find("line 4: sip.realm: invalid type"), "{shown:#?}");
        assert!(find("line 9: queues[0].max_wait_secs"), "{shown:#?}");
        assert!(
            find("line 10: queues[0]: unknown field `sl_target`"),
            "{shown:#?}"
        );
        assert!(
            find("line 15: queues[1]: unknown field `wrapup`"),
            "{shown:#?}"
        );
    }

    #[test]
    fn secrets_can_live_in_files_or_as_hashes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("sip-1001"), "from-a-file\n").unwrap();
        std::fs::write(dir.path().join("sup-token"), "supervisor-token-in-a-file\n").unwrap();
        let hash = "3c8a2b1d0b5bd43d0ad4e8ef1f6b3e0e2b1e6f43f0c9e4f3a8d6c1b2a3f4e5d6";
        let text = format!(
            "[[agents]]\nid = \"1001\"\nname = \"A\"\nusername = \"1001\"\npassword_file = \"sip-1001\"\n\n[[api.tokens]]\ntoken_file = \"sup-token\"\nrole = \"supervisor\"\n\n[[api.tokens]]\ntoken_sha256 = \"{hash}\"\nrole = \"wallboard\"\n"
        );
        // Relative files are found beside the config file.
        let cfg = Config::parse_in(&text, Some(dir.path())).unwrap();
        assert_eq!(cfg.agents[0].password, "from-a-file");
        assert_eq!(cfg.api.tokens[0].token, "supervisor-token-in-a-file");
        assert_eq!(
            cfg.api.tokens[0].digest(),
            token_digest(b"supervisor-token-in-a-file")
        );
        assert_eq!(cfg.api.tokens[1].token, "");
        assert_eq!(
            cfg.api.tokens[1].digest(),
            token_digest_from_hex(hash).unwrap()
        );

        let bad = "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\npassword_file = \"p\"\n\n[[agents]]\nid = \"2\"\nname = \"B\"\nusername = \"b\"\npassword_file = \"missing\"\n\n[[api.tokens]]\ntoken_sha256 = \"abc\"\nrole = \"supervisor\"\n\n[[api.tokens]]\nrole = \"supervisor\"\n";
        let p = Config::parse_in(bad, Some(dir.path())).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(
            find("line 6: agents[0].password_file: give the secret or its file"),
            "{shown:#?}"
        );
        assert!(
            find("line 12: agents[1].password_file: cannot read"),
            "{shown:#?}"
        );
        assert!(
            find("line 15: api.tokens[0].token_sha256: must be 64 hex digits"),
            "{shown:#?}"
        );
        assert!(
            find("api.tokens[1]: needs token, token_file or token_sha256"),
            "{shown:#?}"
        );
    }

    #[test]
    fn log_levels_are_checked() {
        for good in [
            "info",
            "debug,ctid::sip=trace",
            "warn,hyper=off",
            "ctid=debug",
            "ctid",
        ] {
            assert_eq!(check_log_filter(good), Ok(()), "{good}");
        }
        for bad in ["verbose", "debg", "info,ctid::sip=loud", ""] {
            assert!(check_log_filter(bad).is_err(), "{bad}");
        }
        let p = Config::parse("[daemon]\nlog_level = \"verbose\"\n").unwrap_err();
        assert!(
            p[0].to_string().contains("line 2: daemon.log_level"),
            "{p:?}"
        );
    }

    #[test]
    fn retention_batch_and_pause_are_bounded() {
        let ok = Config::parse(
            "[reports]\nretention_days = 30\nretention_batch = 100\nretention_pause_ms = 50\n",
        )
        .unwrap();
        assert_eq!(
            (ok.reports.retention_batch, ok.reports.retention_pause_ms),
            (100, 50)
        );
        let text =
            "[reports]\nretention_days = 30\nretention_batch = 0\nretention_pause_ms = 60001\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 3: reports.retention_batch"), "{shown:#?}");
        assert!(find("line 4: reports.retention_pause_ms"), "{shown:#?}");
    }

    #[test]
    fn queue_mistakes_are_named() {
        let text = "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[queues]]\nname = \"q\"\nnumbers = [\"4000\"]\nstrategy = \"fastest\"\nmembers = [{ agent = \"9\" }]\noverflow = \"queue:nowhere\"\n\n[[queues]]\nname = \"r\"\nnumbers = [\"4000\"]\nmembers = []\noverflow = \"hangup:200\"\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(
            find("line 10: queues[0].strategy: unknown strategy \"fastest\""),
            "{shown:#?}"
        );
        assert!(
            find("line 11: queues[0].members: agent \"9\" is not defined"),
            "{shown:#?}"
        );
        assert!(find("line 12: queues[0].overflow"), "{shown:#?}");
        assert!(
            find("queues[1].numbers: number \"4000\" already reaches queue \"q\""),
            "{shown:#?}"
        );
        assert!(find("queues[1].overflow: \"hangup:200\""), "{shown:#?}");
    }

    #[test]
    fn api_tokens_are_validated() {
        let text = "[[agents]]\nid = \"1001\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[api]\npause_reasons = [\"break\"]\n\n[[api.tokens]]\ntoken = \"short\"\nrole = \"boss\"\n\n[[api.tokens]]\ntoken = \"0123456789abcdef\"\nrole = \"agent\"\n\n[[api.tokens]]\ntoken = \"0123456789abcdef\"\nrole = \"agent\"\nagent = \"9999\"\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(
            find("line 11: api.tokens[0].token: must be at least 16"),
            "{shown:#?}"
        );
        assert!(
            find("line 12: api.tokens[0].role: unknown role \"boss\""),
            "{shown:#?}"
        );
        assert!(
            find("api.tokens[1].agent: role \"agent\" needs"),
            "{shown:#?}"
        );
        assert!(find("api.tokens[2].token: the same token"), "{shown:#?}");
        assert!(
            find("api.tokens[2].agent: agent \"9999\" is not defined"),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 5, "{shown:#?}");

        let ok = "[[agents]]\nid = \"1001\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[api.tokens]]\ntoken = \"0123456789abcdef\"\nrole = \"agent\"\nagent = \"1001\"\n";
        let cfg = Config::parse(ok).unwrap();
        assert_eq!(cfg.api.tokens[0].agent.as_deref(), Some("1001"));
        assert_eq!(cfg.api.pause_reasons, Api::default().pause_reasons);
        let bad = Config::parse("[api]\nbogus = 1\n").unwrap_err();
        assert!(
            bad[0].to_string().contains("api: unknown field `bogus`"),
            "{bad:?}"
        );
    }

    #[test]
    fn outbound_defaults_and_helpers() {
        let cfg = Config::parse("").unwrap();
        let o = &cfg.outbound;
        assert!(o.enabled);
        assert_eq!(o.complaint_list, "complaints");
        assert_eq!(
            (o.complaint_reply_hours, o.complaint_resolve_hours),
            (12, 48)
        );
        assert_eq!(o.complaint_reply_ms(), 12 * 3_600_000);
        assert_eq!(o.complaint_resolve_ms(), 48 * 3_600_000);
        assert_eq!(o.dial_timeout(), std::time::Duration::from_secs(30));
        assert_eq!(o.duplicate_period_secs(), 30 * 86_400);
        assert_eq!(
            o.country_code(),
            crate::outbound::CountryCode::new("44").unwrap()
        );
        // Blending: 1 caller waiting holds back; so does a wait at 80 % of a 15 s target.
        assert!(o.hold_back(1, 0.0, 15));
        let mut relaxed = o.clone();
        relaxed.blend_hold_back_waiting = 3;
        assert!(!relaxed.hold_back(2, 11.9, 15));
        assert!(relaxed.hold_back(2, 12.0, 15));
        assert!(relaxed.hold_back(3, 0.0, 15));
        assert!(!relaxed.hold_back(0, 0.0, 15));
        relaxed.blend_hold_back_waiting = 0;
        relaxed.blend_hold_back_wait_percent = 0;
        assert!(!relaxed.hold_back(50, 500.0, 15), "0 turns both rules off");

        let text = "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[queues]]\nname = \"support\"\nnumbers = [\"4000\"]\nmembers = [{ agent = \"1\" }]\n\n[outbound]\nenabled = false\ndefault_country_code = \"+33\"\nduplicate_period_days = 7\ncomplaint_list = \"plaintes\"\ncomplaint_queue = \"support\"\ncomplaint_reply_hours = 4\ncomplaint_resolve_hours = 24\nblend_hold_back_waiting = 2\nblend_hold_back_wait_percent = 50\ndial_timeout_secs = 25\n";
        let cfg = Config::parse(text).unwrap();
        let o = &cfg.outbound;
        assert!(!o.enabled);
        assert_eq!(
            o.country_code(),
            crate::outbound::CountryCode::new("33").unwrap()
        );
        assert_eq!(o.duplicate_period_secs(), 7 * 86_400);
        assert_eq!(o.dial_timeout_secs, 25);
        let s = o.complaint_settings("Europe/Paris", Some("sales"));
        assert_eq!(s.list.name, "plaintes");
        assert_eq!(
            s.list.queue.as_deref(),
            Some("support"),
            "complaint_queue wins"
        );
        assert_eq!(s.list.time_zone, "Europe/Paris");
        s.list.validate().unwrap();
        let mut o = o.clone();
        o.complaint_queue = None;
        assert_eq!(
            o.complaint_settings("UTC", Some("sales"))
                .list
                .queue
                .as_deref(),
            Some("sales")
        );
    }

    #[test]
    fn outbound_mistakes_are_named() {
        let text = "[outbound]\ndefault_country_code = \"0044\"\nduplicate_period_days = 401\ncomplaint_list = \" \"\ncomplaint_queue = \"nowhere\"\ncomplaint_reply_hours = 0\nblend_hold_back_wait_percent = 150\ndial_timeout_secs = 1\n";
        let p = Config::parse(text).unwrap_err();
        let shown: Vec<String> = p.iter().map(|p| p.to_string()).collect();
        let find = |needle: &str| shown.iter().any(|s| s.contains(needle));
        assert!(find("line 2: outbound.default_country_code:"), "{shown:#?}");
        assert!(
            find("line 3: outbound.duplicate_period_days: must be at most 400"),
            "{shown:#?}"
        );
        assert!(find("line 4: outbound.complaint_list:"), "{shown:#?}");
        assert!(
            find("line 5: outbound.complaint_queue: queue \"nowhere\""),
            "{shown:#?}"
        );
        assert!(
            find("line 6: outbound.complaint_reply_hours: must be at least 1"),
            "{shown:#?}"
        );
        assert!(
            find("line 7: outbound.blend_hold_back_wait_percent"),
            "{shown:#?}"
        );
        assert!(
            find("line 8: outbound.dial_timeout_secs: must be 5 to 300"),
            "{shown:#?}"
        );
        assert_eq!(shown.len(), 7, "{shown:#?}");
        for (text, needle) in [
            (
                "[outbound]\ncomplaint_reply_hours = 24\ncomplaint_resolve_hours = 12\n",
                "outbound.complaint_resolve_hours: must be at least complaint_reply_hours",
            ),
            (
                "[outbound]\ndefault_country_code = \"4a\"\n",
                "outbound.default_country_code",
            ),
            (
                "[outbound]\nduplicate_period = 3\n",
                "outbound: unknown field `duplicate_period`",
            ),
            (
                "[outbound]\ndial_timeout_secs = \"30\"\n",
                "outbound.dial_timeout_secs: invalid type",
            ),
        ] {
            let p = Config::parse(text).unwrap_err();
            assert!(
                p.iter().any(|p| p.to_string().contains(needle)),
                "{needle}: {p:#?}"
            );
        }
        let unknown = Config::parse("[outbond]\n").unwrap_err();
        assert!(
            unknown[0].to_string().contains("reports, api, outbound)"),
            "{unknown:?}"
        );
    }

    #[test]
    fn syntax_error_has_a_line() {
        let p = Config::parse("[sip]\nrealm = \n").unwrap_err();
        assert_eq!(p[0].line, Some(2));
    }
}
