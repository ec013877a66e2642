//! Shared helpers for ctid's end-to-end tests: a daemon per test (own ports, own temp dir),
//! raw SIP over UDP/TCP, digest authentication, SIPp runs, and network namespaces.
//!
//! A crate of its own (`ctid-testkit`, a dev-dependency of ctid) so that it is compiled once
//! and linked into every test binary, instead of once per binary as a `mod common;` would be.
//! Each test binary names it `common` (`use ctid_testkit as common;`).

pub mod baresip;
pub mod browser;
pub mod outbound;
pub mod pki;
pub mod postgres;
pub mod raw;
pub mod rtp;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The daemon binary under test: `$CTID_BIN` when set, else the `ctid` that cargo built beside
/// the running test binary (`target/<profile>/deps/<test>` → `target/<profile>/ctid`; cargo
/// builds the package's binaries before its integration tests). `CARGO_BIN_EXE_ctid` is only
/// given to the integration tests themselves, not to a library they use.
pub static CTID: LazyLock<String> = LazyLock::new(|| {
    if let Ok(bin) = std::env::var("CTID_BIN") {
        return bin;
    }
    let exe = std::env::current_exe().expect("the path of the running test binary");
    let profile = exe
        .parent()
        .and_then(Path::parent)
        .expect("a test binary under target/<profile>/deps");
    let bin = profile.join(format!("ctid{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "no ctid binary at {} (run the tests with cargo, or set CTID_BIN)",
        bin.display()
    );
    bin.to_string_lossy().into_owned()
});
/// The ctid crate's root (for `tests/sipp/*.xml`, `tests/conformance/`, `config/`).
pub const MANIFEST_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// How long a daemon may take to answer its first OPTIONS.
pub const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a daemon may take to exit after SIGTERM (its drain grace is 2 s in tests).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// Ports, ids
// ---------------------------------------------------------------------------------------------

static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port on 127.0.0.1 that is free for both UDP and TCP right now, and that this test process
/// has not handed out before.
pub fn free_port() -> u16 {
    for _ in 0..500 {
        let udp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind UDP 127.0.0.1:0");
        let port = udp.local_addr().unwrap().port();
        if HANDED_OUT.lock().unwrap().contains(&port) {
            continue;
        }
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            HANDED_OUT.lock().unwrap().insert(port);
            return port;
        }
    }
    panic!("no port free for both UDP and TCP on 127.0.0.1 after 500 tries");
}

/// A UDP port `p` such that `p` and `p + 2` are free (SIPp's media echo binds both).
pub fn free_udp_pair() -> u16 {
    for _ in 0..500 {
        let p = free_port();
        if p < 65000 && UdpSocket::bind((Ipv4Addr::LOCALHOST, p + 2)).is_ok() {
            HANDED_OUT.lock().unwrap().insert(p + 2);
            return p;
        }
    }
    panic!("no free UDP port pair");
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A string unique within this machine for the life of the test run (Call-IDs, tags, branches).
pub fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{tag}-{}-{n}-{t:x}", std::process::id())
}

// ---------------------------------------------------------------------------------------------
// Config and daemon
// ---------------------------------------------------------------------------------------------

/// What a test changes in the daemon's config; everything else is written with test defaults.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `[registrar] algorithms`; empty: the key is left out (ctid's built-in default).
    pub algorithms: Vec<String>,
    pub trusted_peers: Vec<String>,
    pub tcp_message_timeout_secs: u64,
    pub min_expires: u32,
    pub max_expires: u32,
    pub shutdown_grace_secs: u64,
    /// (username, password); the agent id is the username.
    pub agents: Vec<(String, String)>,
    /// Also listen on `[::1]` (same port).
    pub ipv6: bool,
    /// Appended to the generated file verbatim.
    pub extra_toml: String,
    /// More `[sip]` keys (e.g. `t1_ms = 300`, `advertise = "…"`), written inside that section.
    pub sip_toml: String,
    /// Lines added to the generated `[sip.limits]` table.
    pub sip_limits_toml: String,
    /// The generated `[sip.overload]` table. By default the event-loop lag signal is off: a
    /// test machine that is busy with other tests lags without ctid being overloaded, and a
    /// test would get a 503 it did not ask for. Tests of overload control set their own.
    pub overload_toml: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            algorithms: vec!["MD5".into()],
            trusted_peers: vec!["127.0.0.1/32".into()],
            tcp_message_timeout_secs: 10,
            min_expires: 60,
            max_expires: 3600,
            shutdown_grace_secs: 2,
            agents: vec![
                ("1001".into(), "secret1001".into()),
                ("1002".into(), "secret1002".into()),
            ],
            ipv6: false,
            extra_toml: String::new(),
            sip_toml: String::new(),
            sip_limits_toml: String::new(),
            overload_toml: "max_loop_lag_ms = 0\n".into(),
        }
    }
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("{s:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// A test's own directory, port and config file. Daemons started from it share the data dir,
/// so a second daemon sees what the first one stored.
pub struct TestEnv {
    /// Removed when the test passes; kept (and its path printed) when it panics.
    dir: Option<tempfile::TempDir>,
    pub port: u16,
    /// The admin HTTP listener (`/metrics`, `/api/v1/stats`).
    pub admin_port: u16,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    runs: AtomicU64,
}

impl TestEnv {
    pub fn new(s: &Settings) -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("ctid-e2e-")
            .tempdir()
            .expect("create temp dir");
        let port = free_port();
        let admin_port = free_port();
        let data_dir = dir.path().join("data");
        let config = dir.path().join("ctid.toml");
        let mut t = String::new();
        writeln!(t, "[daemon]").unwrap();
        writeln!(t, "data_dir = {:?}", data_dir.display().to_string()).unwrap();
        writeln!(t, "shutdown_grace_secs = {}", s.shutdown_grace_secs).unwrap();
        writeln!(t, "\n[sip]").unwrap();
        let v6 = if s.ipv6 {
            format!(", \"[::1]:{port}\"")
        } else {
            String::new()
        };
        writeln!(t, "listen_udp = [\"127.0.0.1:{port}\"{v6}]").unwrap();
        writeln!(t, "listen_tcp = [\"127.0.0.1:{port}\"{v6}]").unwrap();
        writeln!(t, "realm = \"ctid\"").unwrap();
        writeln!(t, "trusted_peers = {}", toml_list(&s.trusted_peers)).unwrap();
        writeln!(t, "force_rport = true").unwrap();
        writeln!(t, "{}", s.sip_toml).unwrap();
        writeln!(t, "\n[sip.limits]").unwrap();
        writeln!(
            t,
            "tcp_message_timeout_secs = {}",
            s.tcp_message_timeout_secs
        )
        .unwrap();
        t.push_str(&s.sip_limits_toml);
        if !s.sip_limits_toml.ends_with('\n') {
            t.push('\n');
        }
        writeln!(t, "\n[sip.overload]\n{}", s.overload_toml).unwrap();
        writeln!(t, "\n[admin]\nlisten = \"127.0.0.1:{admin_port}\"").unwrap();
        writeln!(
            t,
            "\n[[api.tokens]]\ntoken = {SUPERVISOR_TOKEN:?}\nrole = \"supervisor\""
        )
        .unwrap();
        writeln!(t, "\n[registrar]").unwrap();
        writeln!(t, "min_expires = {}", s.min_expires).unwrap();
        writeln!(t, "max_expires = {}", s.max_expires).unwrap();
        if !s.algorithms.is_empty() {
            writeln!(t, "algorithms = {}", toml_list(&s.algorithms)).unwrap();
        }
        for (user, pass) in &s.agents {
            writeln!(t, "\n[[agents]]").unwrap();
            writeln!(t, "id = {user:?}").unwrap();
            writeln!(t, "name = \"Agent {user}\"").unwrap();
            writeln!(t, "username = {user:?}").unwrap();
            writeln!(t, "password = {pass:?}").unwrap();
        }
        t.push_str(&s.extra_toml);
        std::fs::write(&config, t).expect("write config");
        TestEnv {
            dir: Some(dir),
            port,
            admin_port,
            config,
            data_dir,
            runs: AtomicU64::new(0),
        }
    }

    /// ctid's SIP address (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    pub fn path(&self) -> &Path {
        self.dir.as_ref().expect("temp dir").path()
    }

    /// Start ctid on this env's config and wait until it answers OPTIONS over UDP.
    pub fn start(&self) -> Daemon {
        self.spawn(None, &[])
    }

    /// [`TestEnv::start`] with more environment variables for ctid (e.g. libfaketime's).
    pub fn start_with_env(&self, vars: &[(String, String)]) -> Daemon {
        self.spawn(None, vars)
    }

    /// Same, with ctid inside the network namespace `ns` (and the readiness probe sent there).
    pub fn start_in_netns(&self, ns: &Netns) -> Daemon {
        self.spawn(Some(ns), &[])
    }

    fn spawn(&self, ns: Option<&Netns>, vars: &[(String, String)]) -> Daemon {
        let run = self.runs.fetch_add(1, Ordering::Relaxed) + 1;
        let log_path = self.path().join(format!("ctid-run{run}.log"));
        let log = File::create(&log_path).expect("create daemon log");
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", &ns.name, CTID.as_str()]);
                c
            }
            None => Command::new(CTID.as_str()),
        };
        cmd.arg("run")
            .arg("--config")
            .arg(&self.config)
            .args(["--log-level", "debug"])
            .current_dir(self.path())
            .env("NO_COLOR", "1")
            .envs(vars.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", *CTID));
        let mut d = Daemon {
            child,
            addr: self.addr(),
            log_path,
            netns: ns.map(|n| n.name.clone()),
            stopped: false,
        };
        d.wait_ready();
        d
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("test files kept for inspection: {}", kept.display());
            }
        }
    }
}

/// A running ctid. Killed (SIGKILL) on drop unless [`Daemon::stop`] was called.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
    pub log_path: PathBuf,
    netns: Option<String>,
    stopped: bool,
}

impl Daemon {
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Everything the daemon wrote to stdout/stderr so far.
    pub fn log(&self) -> String {
        let bytes = std::fs::read(&self.log_path).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The last `max` bytes of the log (for assertion messages).
    pub fn log_tail(&self, max: usize) -> String {
        tail(&self.log(), max)
    }

    /// What ctid logged about the calls SIPp reported as failed (`Call-Id: X, …` lines of a
    /// SIPp report): for assertion messages, so a failure seen once in CI can be explained.
    pub fn story_of_failed_calls(&self, sipp_report: &str) -> String {
        let log = self.log();
        let mut out = String::new();
        let mut seen = std::collections::BTreeSet::new();
        for part in sipp_report.split("Call-Id: ").skip(1) {
            let sip_id: String = part
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != ',')
                .collect();
            if sip_id.is_empty() || !seen.insert(sip_id.clone()) {
                continue;
            }
            let needle = format!("sip_call_id={sip_id}");
            let Some(call) = log.lines().find(|l| l.contains(&needle)).and_then(|l| {
                l.split("call=").nth(1).map(|r| {
                    r.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
            }) else {
                out.push_str(&format!(
                    "--- ctid log: nothing about SIP call {sip_id} ---\n"
                ));
                continue;
            };
            out.push_str(&format!(
                "--- ctid log about SIP call {sip_id} (call={call}) ---\n"
            ));
            let key = format!("call={call}");
            for l in log.lines().filter(|l| {
                l.match_indices(&key)
                    .any(|(i, _)| !l[i + key.len()..].starts_with(|c: char| c.is_ascii_digit()))
                    || l.contains(&sip_id)
            }) {
                out.push_str(l);
                out.push('\n');
            }
        }
        tail(&out, 30_000)
    }

    /// Whether the process is still running; panics with the log if it is gone.
    pub fn assert_alive(&mut self, context: &str) {
        if let Some(st) = self.child.try_wait().expect("try_wait") {
            panic!(
                "ctid is no longer running ({context}): exited with {st}\n--- ctid log (tail) ---\n{}",
                self.log_tail(20_000)
            );
        }
    }

    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        let addr = self.addr;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                panic!(
                    "ctid exited during startup with {st}\n--- ctid log ---\n{}",
                    self.log_tail(20_000)
                );
            }
            let probe = || options_probe_udp(addr, Duration::from_millis(250));
            let got = match &self.netns {
                Some(ns) => Netns::run_in(ns, probe),
                None => probe(),
            };
            if got == Some(200) {
                return;
            }
            if start.elapsed() > READY_TIMEOUT {
                panic!(
                    "ctid did not answer OPTIONS over UDP at {addr} with 200 within {READY_TIMEOUT:?} (last: {got:?})\n--- ctid log ---\n{}",
                    self.log_tail(20_000)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Send SIGTERM and wait for the exit; returns the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.stopped = true;
        // SAFETY: plain kill(2) on our own child's pid.
        let rc = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "ctid did not exit within {STOP_TIMEOUT:?} of SIGTERM\n--- ctid log ---\n{}",
                    self.log_tail(20_000)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, then assert a clean exit (status 0).
    pub fn stop(mut self) {
        let st = self.terminate();
        assert!(
            st.success(),
            "ctid exited with {st} after SIGTERM (expected 0)\n--- ctid log ---\n{}",
            self.log_tail(20_000)
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if !self.stopped || matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            eprintln!(
                "--- ctid log ({}) tail ---\n{}",
                self.log_path.display(),
                self.log_tail(8_000)
            );
        }
    }
}

pub fn tail(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut start = s.len() - max;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    format!("[... {start} bytes cut ...]\n{}", &s[start..])
}

// ---------------------------------------------------------------------------------------------
// Network namespaces
// ---------------------------------------------------------------------------------------------

/// A network namespace with only loopback up; deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Create `ctid-t-<pid>-<tag>`. Panics (clearly) when not root.
    pub fn create(tag: &str) -> Netns {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "this test needs root: it creates a network namespace with `ip netns add` \
             (run the tests as root, e.g. in the project's CI container)"
        );
        let name = format!("ctid-t-{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        ip(&["netns", "add", &name]);
        let ns = Netns { name };
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Run `f` on a thread that has moved into this namespace (only that thread moves).
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        Netns::run_in(&self.name, f)
    }

    pub fn run_in<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{name}");
        std::thread::scope(|s| {
            let h = s.spawn(|| {
                let file = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                use std::os::fd::AsRawFd;
                // SAFETY: setns on a valid namespace fd; affects only this thread.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(
                    rc,
                    0,
                    "setns({path}) failed: {}",
                    std::io::Error::last_os_error()
                );
                f()
            });
            match h.join() {
                Ok(v) => v,
                Err(p) => std::panic::resume_unwind(p),
            }
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `ip`: {e}"));
    assert!(
        out.status.success(),
        "`ip {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---------------------------------------------------------------------------------------------
// SIP messages
// ---------------------------------------------------------------------------------------------

/// Full header name for a compact form.
pub fn long_name(name: &str) -> String {
    let n = name.trim().to_ascii_lowercase();
    let long = match n.as_str() {
        "i" => "call-id",
        "m" => "contact",
        "f" => "from",
        "t" => "to",
        "v" => "via",
        "l" => "content-length",
        "c" => "content-type",
        "k" => "supported",
        "e" => "content-encoding",
        "s" => "subject",
        "o" => "event",
        _ => return n,
    };
    long.to_string()
}

/// A parsed SIP response (lenient: only what the tests look at).
#[derive(Clone, Debug)]
pub struct SipResponse {
    pub status: u16,
    pub reason: String,
    /// (name as sent, value) in order; folded lines are joined.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub raw: String,
}

impl SipResponse {
    /// Parse a whole message; `None` unless it starts with `SIP/2.0 NNN`.
    pub fn parse(bytes: &[u8]) -> Option<SipResponse> {
        let raw = String::from_utf8_lossy(bytes).into_owned();
        let (head, body) = match find(bytes, b"\r\n\r\n") {
            Some(i) => (&bytes[..i], bytes[i + 4..].to_vec()),
            None => (bytes, Vec::new()),
        };
        let head = String::from_utf8_lossy(head);
        let mut lines = head.split("\r\n");
        let first = lines.next()?;
        let rest = first.strip_prefix("SIP/2.0 ")?;
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 {
            return None;
        }
        let status: u16 = code.parse().ok()?;
        let mut headers: Vec<(String, String)> = Vec::new();
        for line in lines {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some(last) = headers.last_mut() {
                    last.1.push(' ');
                    last.1.push_str(line.trim());
                }
                continue;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_string(), v.trim().to_string()));
            }
        }
        Some(SipResponse {
            status,
            reason: reason.to_string(),
            headers,
            body,
            raw,
        })
    }

    /// First value of a header (case-insensitive, compact forms understood).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).into_iter().next()
    }

    /// Every header line with this name (not split at commas).
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        let want = long_name(name);
        self.headers
            .iter()
            .filter(|(k, _)| long_name(k) == want)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Every comma-separated element of every header with this name (commas inside `<>` and
    /// quotes do not split).
    pub fn header_elements(&self, name: &str) -> Vec<String> {
        self.header_values(name)
            .into_iter()
            .flat_map(split_commas)
            .collect()
    }

    /// `1 OPTIONS` → (1, "OPTIONS")
    pub fn cseq(&self) -> Option<(u32, String)> {
        let v = self.header("CSeq")?;
        let mut it = v.split_whitespace();
        let n = it.next()?.parse().ok()?;
        let m = it.next()?.to_string();
        Some((n, m))
    }

    pub fn call_id(&self) -> Option<&str> {
        self.header("Call-ID")
    }

    /// Method tokens of an `Allow`-style header (all lines, comma-split, uppercase).
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.header_elements(name)
            .into_iter()
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The status line, for messages.
    pub fn status_line(&self) -> String {
        format!("{} {}", self.status, self.reason)
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Split a header value at top-level commas.
pub fn split_commas(v: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut in_quote, mut in_angle, mut escaped) = (false, false, false);
    for ch in v.chars() {
        if escaped {
            escaped = false;
            cur.push(ch);
            continue;
        }
        match ch {
            '\\' if in_quote => escaped = true,
            '"' => in_quote = !in_quote,
            '<' if !in_quote => in_angle = true,
            '>' if !in_quote => in_angle = false,
            ',' if !in_quote && !in_angle => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// A contact element `<sip:...>;expires=N;...` → (uri, expires param).
pub fn contact_uri_and_expires(element: &str) -> (String, Option<u64>) {
    let e = element.trim();
    let (uri, params) = if let Some(start) = e.find('<') {
        let end = e[start..].find('>').map(|i| start + i).unwrap_or(e.len());
        (
            e[start + 1..end].to_string(),
            e.get(end + 1..).unwrap_or("").to_string(),
        )
    } else {
        match e.split_once(';') {
            Some((u, p)) => (u.to_string(), format!(";{p}")),
            None => (e.to_string(), String::new()),
        }
    };
    let expires = params.split(';').find_map(|p| {
        let (k, v) = p.split_once('=')?;
        if k.trim().eq_ignore_ascii_case("expires") {
            v.trim().trim_matches('"').parse().ok()
        } else {
            None
        }
    });
    (uri, expires)
}

/// A request the tests send. `to_string()` renders it; keep the struct to resend it unchanged
/// (same branch) as a retransmission.
#[derive(Clone, Debug)]
pub struct SipRequest {
    pub method: String,
    pub uri: String,
    /// "UDP" or "TCP"
    pub transport: String,
    pub local: SocketAddr,
    pub branch: String,
    pub call_id: String,
    pub cseq: u32,
    pub from: String,
    pub to: String,
    pub headers: Vec<String>,
    pub body: String,
}

impl SipRequest {
    pub fn new(method: &str, uri: &str, transport: &str, local: SocketAddr) -> SipRequest {
        SipRequest {
            method: method.to_string(),
            uri: uri.to_string(),
            transport: transport.to_string(),
            local,
            branch: format!("z9hG4bK{}", unique("b")),
            call_id: unique("call"),
            cseq: 1,
            from: format!("<sip:e2e@{local}>;tag={}", unique("t")),
            to: format!("<{uri}>"),
            headers: Vec::new(),
            body: String::new(),
        }
    }

    /// Next request of the same dialog-less sequence: same Call-ID and From, CSeq + 1, new branch.
    pub fn next(&self) -> SipRequest {
        let mut r = self.clone();
        r.cseq += 1;
        r.branch = format!("z9hG4bK{}", unique("b"));
        r
    }

    pub fn header(mut self, h: impl Into<String>) -> SipRequest {
        self.headers.push(h.into());
        self
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        write!(s, "{} {} SIP/2.0\r\n", self.method, self.uri).unwrap();
        write!(
            s,
            "Via: SIP/2.0/{} {};branch={};rport\r\n",
            self.transport, self.local, self.branch
        )
        .unwrap();
        write!(s, "Max-Forwards: 70\r\n").unwrap();
        write!(s, "From: {}\r\n", self.from).unwrap();
        write!(s, "To: {}\r\n", self.to).unwrap();
        write!(s, "Call-ID: {}\r\n", self.call_id).unwrap();
        write!(s, "CSeq: {} {}\r\n", self.cseq, self.method).unwrap();
        for h in &self.headers {
            write!(s, "{h}\r\n").unwrap();
        }
        write!(s, "User-Agent: ctid-e2e\r\n").unwrap();
        write!(
            s,
            "Content-Length: {}\r\n\r\n{}",
            self.body.len(),
            self.body
        )
        .unwrap();
        s
    }
}

/// An OPTIONS request to ctid at `server` from `local`.
pub fn options_request(server: SocketAddr, local: SocketAddr, transport: &str) -> SipRequest {
    SipRequest::new("OPTIONS", &format!("sip:{server}"), transport, local)
        .header("Accept: application/sdp")
}

/// A REGISTER for `user` (AOR `sip:user@server`), Request-URI `sip:server`.
pub fn register_request(
    server: SocketAddr,
    local: SocketAddr,
    transport: &str,
    user: &str,
) -> SipRequest {
    let mut r = SipRequest::new("REGISTER", &format!("sip:{server}"), transport, local);
    r.from = format!("<sip:{user}@{server}>;tag={}", unique("t"));
    r.to = format!("<sip:{user}@{server}>");
    r
}

/// One OPTIONS over a fresh UDP socket; the final status, if any arrived within `timeout`.
pub fn options_probe_udp(server: SocketAddr, timeout: Duration) -> Option<u16> {
    let c = UdpClient::new(server);
    let req = options_request(server, c.local(), "UDP");
    c.transaction(&req, timeout).map(|r| r.status)
}

/// One OPTIONS over a fresh TCP connection.
pub fn options_probe_tcp(server: SocketAddr, timeout: Duration) -> Option<u16> {
    let mut c = TcpClient::connect(server, timeout).ok()?;
    let req = options_request(server, c.local(), "TCP");
    c.transaction(&req, timeout).map(|r| r.status)
}

/// A UDP socket on 127.0.0.1 talking to ctid.
pub struct UdpClient {
    pub sock: UdpSocket,
    pub server: SocketAddr,
}

impl UdpClient {
    pub fn new(server: SocketAddr) -> UdpClient {
        let ip: IpAddr = if server.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        UdpClient::bind(ip, server)
    }

    /// A UDP socket on `ip` (e.g. `127.0.0.2`, a second loopback source) talking to ctid.
    pub fn bind(ip: IpAddr, server: SocketAddr) -> UdpClient {
        let sock = UdpSocket::bind((ip, 0)).unwrap_or_else(|e| panic!("bind UDP on {ip}: {e}"));
        UdpClient { sock, server }
    }

    pub fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    pub fn send(&self, bytes: &[u8]) {
        self.sock.send_to(bytes, self.server).expect("send_to");
    }

    /// Next datagram (from anyone) within `timeout`, with its source.
    pub fn recv_raw(&self, timeout: Duration) -> Option<(Vec<u8>, SocketAddr)> {
        let deadline = Instant::now() + timeout;
        let mut buf = vec![0u8; 65_536];
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            self.sock.set_read_timeout(Some(left)).unwrap();
            match self.sock.recv_from(&mut buf) {
                Ok((n, from)) => return Some((buf[..n].to_vec(), from)),
                Err(e)
                    if e.kind() == ErrorKind::WouldBlock
                        || e.kind() == ErrorKind::TimedOut
                        || e.kind() == ErrorKind::Interrupted =>
                {
                    continue
                }
                // ICMP port unreachable from an earlier send surfaces here: keep waiting.
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => continue,
                Err(e) => panic!("recv_from: {e}"),
            }
        }
    }

    /// Drop whatever is queued.
    pub fn drain(&self) {
        while self.recv_raw(Duration::from_millis(1)).is_some() {}
    }

    /// Send `req` and return the first final response that matches its Call-ID and CSeq
    /// (provisional responses and strays are skipped).
    pub fn transaction(&self, req: &SipRequest, timeout: Duration) -> Option<SipResponse> {
        self.send(req.render().as_bytes());
        self.final_for(req, timeout)
    }

    /// Wait for the final response to `req` (already sent).
    pub fn final_for(&self, req: &SipRequest, timeout: Duration) -> Option<SipResponse> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let (bytes, _) = self.recv_raw(left)?;
            let Some(r) = SipResponse::parse(&bytes) else {
                continue;
            };
            if r.status >= 200 && matches_request(&r, req) {
                return Some(r);
            }
        }
    }
}

/// How long [`RegClient`] waits for a final response.
pub const REG_TIMEOUT: Duration = Duration::from_secs(3);

/// A raw UDP registrar client for one agent (digest over UDP, from a chosen address).
pub struct RegClient {
    pub c: UdpClient,
    pub server: SocketAddr,
    pub user: String,
    pub pass: String,
    pub alg: Alg,
}

impl RegClient {
    pub fn new(server: SocketAddr, user: &str, pass: &str, alg: Alg) -> RegClient {
        let ip: IpAddr = if server.is_ipv6() {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            Ipv4Addr::LOCALHOST.into()
        };
        RegClient::new_from(ip, server, user, pass, alg)
    }

    /// Same, sending from `ip` (any 127.0.0.0/8 address works on loopback).
    pub fn new_from(ip: IpAddr, server: SocketAddr, user: &str, pass: &str, alg: Alg) -> RegClient {
        RegClient {
            c: UdpClient::bind(ip, server),
            server,
            user: user.into(),
            pass: pass.into(),
            alg,
        }
    }

    pub fn request(&self) -> SipRequest {
        register_request(self.server, self.c.local(), "UDP", &self.user)
    }

    pub fn send(&self, req: &SipRequest, what: &str) -> SipResponse {
        self.c.transaction(req, REG_TIMEOUT).unwrap_or_else(|| {
            panic!(
                "no final response within {REG_TIMEOUT:?} to {what}:\n{}",
                req.render()
            )
        })
    }

    /// Send `req` without credentials, expect a 401 challenge for our algorithm.
    pub fn challenge(&self, req: &SipRequest) -> Challenge {
        let r = self.send(req, "REGISTER without credentials");
        assert_challenge(&r, self.alg, "ctid")
    }

    /// `req` (CSeq+1, new branch) with an Authorization answering `ch` using nonce-count `nc`.
    pub fn authorized(&self, req: &SipRequest, ch: &Challenge, pass: &str, nc: u32) -> SipRequest {
        let cnonce = unique("cn").replace('-', "");
        let mut next = req.next();
        next.headers.retain(|h| !h.starts_with("Authorization:"));
        next.header(authorization_header(
            ch, self.alg, &self.user, pass, "REGISTER", &req.uri, nc, &cnonce,
        ))
    }

    /// The whole 401 → authenticated REGISTER flow; returns the final response to the second.
    pub fn register(&self, req: &SipRequest) -> SipResponse {
        let ch = self.challenge(req);
        let auth = self.authorized(req, &ch, &self.pass, 1);
        self.send(&auth, "authenticated REGISTER")
    }
}

pub fn matches_request(r: &SipResponse, req: &SipRequest) -> bool {
    r.call_id() == Some(req.call_id.as_str()) && r.cseq() == Some((req.cseq, req.method.clone()))
}

/// A TCP connection to ctid with message framing (Content-Length).
pub struct TcpClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
    pub closed: bool,
}

/// What reading a TCP message produced.
#[derive(Debug)]
pub enum TcpRead {
    Message(Vec<u8>),
    /// The peer closed (read returned 0 or a reset); bytes left unframed are included.
    Closed(Vec<u8>),
    Timeout,
}

impl TcpClient {
    pub fn connect(server: SocketAddr, timeout: Duration) -> std::io::Result<TcpClient> {
        let stream = TcpStream::connect_timeout(&server, timeout)?;
        stream.set_nodelay(true)?;
        Ok(TcpClient {
            stream,
            buf: Vec::new(),
            closed: false,
        })
    }

    /// A connection from `ip` (e.g. `127.0.0.2`, a second loopback source).
    pub fn connect_from(
        ip: IpAddr,
        server: SocketAddr,
        timeout: Duration,
    ) -> std::io::Result<TcpClient> {
        use socket2::{Domain, Socket, Type};
        let sock = Socket::new(Domain::for_address(server), Type::STREAM, None)?;
        sock.bind(&SocketAddr::new(ip, 0).into())?;
        sock.connect_timeout(&server.into(), timeout)?;
        let stream: TcpStream = sock.into();
        stream.set_nodelay(true)?;
        Ok(TcpClient {
            stream,
            buf: Vec::new(),
            closed: false,
        })
    }

    pub fn local(&self) -> SocketAddr {
        self.stream.local_addr().unwrap()
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Next complete message within `timeout`.
    pub fn read_message(&mut self, timeout: Duration) -> TcpRead {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(msg) = take_frame(&mut self.buf) {
                return TcpRead::Message(msg);
            }
            if self.closed {
                return TcpRead::Closed(std::mem::take(&mut self.buf));
            }
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return TcpRead::Timeout;
            };
            if left.is_zero() {
                return TcpRead::Timeout;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 16_384];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.closed = true,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {
                    return TcpRead::Timeout
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.closed = true,
            }
        }
    }

    pub fn transaction(&mut self, req: &SipRequest, timeout: Duration) -> Option<SipResponse> {
        self.send(req.render().as_bytes()).ok()?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.read_message(left) {
                TcpRead::Message(m) => {
                    if let Some(r) = SipResponse::parse(&m) {
                        if r.status >= 200 && matches_request(&r, req) {
                            return Some(r);
                        }
                    }
                }
                TcpRead::Closed(_) | TcpRead::Timeout => return None,
            }
        }
    }
}

/// Cut one message (headers + Content-Length body) off the front of a stream buffer.
/// Leading CRLFs (keep-alives) are skipped.
pub fn take_frame(buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    while buf.starts_with(b"\r\n") {
        buf.drain(..2);
    }
    let end = find(buf, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut len = 0usize;
    for line in head.split("\r\n").skip(1) {
        if let Some((k, v)) = line.split_once(':') {
            if long_name(k) == "content-length" {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let total = end + 4 + len;
    if buf.len() < total {
        return None;
    }
    Some(buf.drain(..total).collect())
}

// ---------------------------------------------------------------------------------------------
// Digest authentication (client side, RFC 7616 / RFC 2617 with qop=auth)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Alg {
    Md5,
    Sha256,
}

impl Alg {
    pub fn name(self) -> &'static str {
        match self {
            Alg::Md5 => "MD5",
            Alg::Sha256 => "SHA-256",
        }
    }

    /// Lowercase hex digest of `s`.
    pub fn hex(self, s: &str) -> String {
        use sha2::Digest as _;
        let bytes: Vec<u8> = match self {
            Alg::Md5 => md5::Md5::digest(s.as_bytes()).to_vec(),
            Alg::Sha256 => sha2::Sha256::digest(s.as_bytes()).to_vec(),
        };
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A parsed `WWW-Authenticate: Digest ...` challenge.
#[derive(Clone, Debug)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub algorithm: String,
    pub qop: String,
    pub opaque: Option<String>,
    pub stale: bool,
    pub raw: String,
}

impl Challenge {
    pub fn parse(v: &str) -> Option<Challenge> {
        let v = v.trim();
        let rest = v
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("digest"))
            .map(|_| &v[6..])?;
        let params = parse_auth_params(rest);
        let get = |k: &str| {
            params
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.clone())
        };
        Some(Challenge {
            realm: get("realm")?,
            nonce: get("nonce")?,
            algorithm: get("algorithm").unwrap_or_else(|| "MD5".into()),
            qop: get("qop").unwrap_or_default(),
            opaque: get("opaque"),
            stale: get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
            raw: v.to_string(),
        })
    }

    pub fn alg(&self) -> Option<Alg> {
        if self.algorithm.eq_ignore_ascii_case("MD5") {
            Some(Alg::Md5)
        } else if self.algorithm.eq_ignore_ascii_case("SHA-256") {
            Some(Alg::Sha256)
        } else {
            None
        }
    }
}

/// `a=b, c="d, e"` → [(a, b), (c, "d, e")]
pub fn parse_auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in split_commas(s) {
        if let Some((k, v)) = part.split_once('=') {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|x| x.strip_suffix('"'))
                .unwrap_or(v);
            out.push((k.trim().to_string(), v.to_string()));
        }
    }
    out
}

/// The digest `response` value for qop=auth.
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    alg: Alg,
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: &str,
    cnonce: &str,
) -> String {
    let ha1 = alg.hex(&format!("{user}:{realm}:{password}"));
    let ha2 = alg.hex(&format!("{method}:{uri}"));
    alg.hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"))
}

/// An `Authorization` header line answering `ch` with qop=auth and nonce-count `nc`.
#[allow(clippy::too_many_arguments)]
pub fn authorization_header(
    ch: &Challenge,
    alg: Alg,
    user: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let nc = format!("{nc:08x}");
    let resp = digest_response(
        alg, user, &ch.realm, password, method, uri, &ch.nonce, &nc, cnonce,
    );
    let mut h = format!(
        "Authorization: Digest username=\"{user}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", \
         response=\"{resp}\", algorithm={}, cnonce=\"{cnonce}\", qop=auth, nc={nc}",
        ch.realm,
        ch.nonce,
        alg.name()
    );
    if let Some(o) = &ch.opaque {
        write!(h, ", opaque=\"{o}\"").unwrap();
    }
    h
}

/// The challenge for `alg` among the response's `WWW-Authenticate` headers.
pub fn challenge_for(r: &SipResponse, alg: Alg) -> Option<Challenge> {
    r.header_values("WWW-Authenticate")
        .into_iter()
        .filter_map(Challenge::parse)
        .find(|c| c.alg() == Some(alg))
}

/// Whether a response is a proper digest challenge for `alg` (what ctid sends on 401).
pub fn assert_challenge(r: &SipResponse, alg: Alg, realm: &str) -> Challenge {
    assert_eq!(r.status, 401, "expected 401, got:\n{}", r.raw);
    let ch = challenge_for(r, alg).unwrap_or_else(|| {
        panic!(
            "401 has no Digest challenge with algorithm={}:\n{}",
            alg.name(),
            r.raw
        )
    });
    assert_eq!(ch.realm, realm, "challenge realm:\n{}", r.raw);
    assert!(!ch.nonce.is_empty(), "empty nonce:\n{}", r.raw);
    assert!(
        ch.qop.split(',').any(|q| q.trim() == "auth"),
        "challenge does not offer qop=auth:\n{}",
        r.raw
    );
    ch
}

// ---------------------------------------------------------------------------------------------
// SIPp
// ---------------------------------------------------------------------------------------------

/// The outcome of one SIPp run.
#[derive(Debug)]
pub struct SippRun {
    /// SIPp's exit code (0: every call succeeded, 1: some failed, other: SIPp error/timeout).
    pub code: Option<i32>,
    pub successful: Option<u64>,
    pub failed: Option<u64>,
    /// Requests SIPp had to retransmit (UDP).
    pub retransmissions: Option<u64>,
    /// Command line, exit, counters, error log, final screen, message trace tail.
    pub report: String,
}

impl SippRun {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Path of a scenario in `tests/sipp/`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests/sipp").join(name)
}

/// A copy of the template `tests/sipp/<name>` under `dir` with each `(placeholder, value)`
/// substituted (timings SIPp cannot take from the command line); its absolute path works as a
/// scenario name for [`sipp`] and friends.
pub fn scenario_with(dir: &Path, name: &str, subst: &[(&str, &str)]) -> String {
    let mut text =
        std::fs::read_to_string(scenario(name)).unwrap_or_else(|e| panic!("scenario {name}: {e}"));
    for (k, v) in subst {
        text = text.replace(k, v);
    }
    let out = dir.join(unique(name.trim_end_matches(".xml")) + ".xml");
    std::fs::write(&out, text).unwrap();
    out.display().to_string()
}

/// Run SIPp as UAC against `target` with `tests/sipp/<scenario_name>` and `args`
/// (e.g. `-t u1 -m 1 -s 1001`). SIPp binds 127.0.0.1 on its own free ports; its logs go to
/// `dir`. Unless `args` says otherwise, `-timeout 30s -timeout_error` bound the run; the
/// process is killed if it outlives that by 30 s.
pub fn sipp(dir: &Path, target: SocketAddr, scenario_name: &str, args: &[&str]) -> SippRun {
    sipp_at(dir, Some(target), free_port(), scenario_name, args)
}

/// Like [`sipp`], with SIPp's own SIP port chosen by the caller (a UAS that ctid must reach)
/// and the target optional (a UAS has none).
pub fn sipp_at(
    dir: &Path,
    target: Option<SocketAddr>,
    sip_port: u16,
    scenario_name: &str,
    args: &[&str],
) -> SippRun {
    let tag = unique(
        Path::new(scenario_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("sipp"),
    );
    let err_file = dir.join(format!("sipp-{tag}-errors.log"));
    let stat_file = dir.join(format!("sipp-{tag}-stats.csv"));
    let screen_file = dir.join(format!("sipp-{tag}-screen.log"));
    let msg_file = dir.join(format!("sipp-{tag}-messages.log"));
    let out_file = dir.join(format!("sipp-{tag}-stdout.log"));
    let sf = scenario(scenario_name);
    assert!(sf.exists(), "missing scenario {}", sf.display());
    let sip_port = sip_port.to_string();
    let media_port = free_udp_pair().to_string();
    let control_port = free_port().to_string();
    let mut full: Vec<String> = target.iter().map(ToString::to_string).collect();
    full.extend([
        "-sf".into(),
        sf.display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        sip_port,
        "-mp".into(),
        media_port,
        "-cp".into(),
        control_port,
        "-nostdin".into(),
        "-trace_err".into(),
        "-error_file".into(),
        err_file.display().to_string(),
        "-trace_stat".into(),
        "-stf".into(),
        stat_file.display().to_string(),
        "-fd".into(),
        "1".into(),
        "-trace_screen".into(),
        "-screen_file".into(),
        screen_file.display().to_string(),
        "-trace_msg".into(),
        "-message_file".into(),
        msg_file.display().to_string(),
    ]);
    let mut timeout_secs = 30u64;
    if let Some(i) = args.iter().position(|a| *a == "-timeout") {
        let v = args.get(i + 1).expect("-timeout needs a value");
        timeout_secs = v
            .trim_end_matches('s')
            .parse()
            .expect("-timeout value in seconds, like 60s");
    } else {
        full.extend(["-timeout".into(), "30s".into(), "-timeout_error".into()]);
    }
    full.extend(args.iter().map(|s| s.to_string()));
    let out = File::create(&out_file).unwrap();
    let mut child = Command::new("sipp")
        .args(&full)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sipp (Debian package sip-tester): {e}"));
    let hard = Duration::from_secs(timeout_secs + 30);
    let start = Instant::now();
    let mut killed = false;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if start.elapsed() > hard {
            let _ = child.kill();
            killed = true;
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let [successful, failed, retransmissions] = read_sipp_stats(
        &stat_file,
        ["SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)"],
    );
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let mut report = String::new();
    writeln!(report, "$ sipp {}", full.join(" ")).unwrap();
    writeln!(
        report,
        "exit: {:?}{}; successful calls: {successful:?}; failed calls: {failed:?}; retransmissions: {retransmissions:?}; took {:.1?}",
        status.code(),
        if killed {
            " (KILLED: ran too long)"
        } else {
            ""
        },
        start.elapsed()
    )
    .unwrap();
    writeln!(
        report,
        "--- sipp errors ---\n{}",
        tail(&read(&err_file), 6_000)
    )
    .unwrap();
    writeln!(
        report,
        "--- sipp screen ---\n{}",
        tail(&read(&screen_file), 4_000)
    )
    .unwrap();
    writeln!(
        report,
        "--- sipp output ---\n{}",
        tail(&read(&out_file), 2_000)
    )
    .unwrap();
    writeln!(
        report,
        "--- sipp messages (tail) ---\n{}",
        tail(&read(&msg_file), 5_000)
    )
    .unwrap();
    SippRun {
        code: if killed { None } else { status.code() },
        successful,
        failed,
        retransmissions,
        report,
    }
}

/// The named counters from the last line of SIPp's statistics CSV.
fn read_sipp_stats<const N: usize>(path: &Path, names: [&str; N]) -> [Option<u64>; N] {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return [None; N];
    };
    let Some(last) = lines.next_back() else {
        return [None; N];
    };
    let cols: Vec<&str> = header.split(';').collect();
    let vals: Vec<&str> = last.split(';').collect();
    let get = |name: &str| {
        let i = cols.iter().position(|c| *c == name)?;
        vals.get(i)?.trim().parse().ok()
    };
    names.map(get)
}

// ---------------------------------------------------------------------------------------------
// Calls: SIPp in the background, seats, RTP port ranges, call records
// ---------------------------------------------------------------------------------------------

/// A SIPp run in the background: a seat (UAS) that serves calls until the test is done with it,
/// or a PBX whose traffic the test interrupts. Killed on drop if still running.
pub struct SippBg {
    child: Option<Child>,
    full: Vec<String>,
    err_file: PathBuf,
    stat_file: PathBuf,
    screen_file: PathBuf,
    msg_file: PathBuf,
    out_file: PathBuf,
    timeout: Duration,
    start: Instant,
}

/// Start SIPp like [`sipp_at`] does (same arguments and log files), without waiting for it.
pub fn sipp_spawn(
    dir: &Path,
    target: Option<SocketAddr>,
    sip_port: u16,
    scenario_name: &str,
    args: &[&str],
) -> SippBg {
    let tag = unique(
        Path::new(scenario_name)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("sipp"),
    );
    let err_file = dir.join(format!("sipp-{tag}-errors.log"));
    let stat_file = dir.join(format!("sipp-{tag}-stats.csv"));
    let screen_file = dir.join(format!("sipp-{tag}-screen.log"));
    let msg_file = dir.join(format!("sipp-{tag}-messages.log"));
    let out_file = dir.join(format!("sipp-{tag}-stdout.log"));
    let sf = scenario(scenario_name);
    assert!(sf.exists(), "missing scenario {}", sf.display());
    let mut full: Vec<String> = target.iter().map(ToString::to_string).collect();
    full.extend([
        "-sf".into(),
        sf.display().to_string(),
        "-i".into(),
        "127.0.0.1".into(),
        "-p".into(),
        sip_port.to_string(),
        "-mp".into(),
        free_udp_pair().to_string(),
        "-cp".into(),
        free_port().to_string(),
        "-nostdin".into(),
        "-trace_err".into(),
        "-error_file".into(),
        err_file.display().to_string(),
        "-trace_stat".into(),
        "-stf".into(),
        stat_file.display().to_string(),
        "-fd".into(),
        "1".into(),
        "-trace_screen".into(),
        "-screen_file".into(),
        screen_file.display().to_string(),
        "-trace_msg".into(),
        "-message_file".into(),
        msg_file.display().to_string(),
    ]);
    let mut timeout_secs = 30u64;
    if let Some(i) = args.iter().position(|a| *a == "-timeout") {
        let v = args.get(i + 1).expect("-timeout needs a value");
        timeout_secs = v
            .trim_end_matches('s')
            .parse()
            .expect("-timeout value in seconds, like 60s");
    } else {
        full.extend(["-timeout".into(), "30s".into(), "-timeout_error".into()]);
    }
    full.extend(args.iter().map(|s| s.to_string()));
    let out = File::create(&out_file).unwrap();
    let child = Command::new("sipp")
        .args(&full)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run sipp (Debian package sip-tester): {e}"));
    SippBg {
        child: Some(child),
        full,
        err_file,
        stat_file,
        screen_file,
        msg_file,
        out_file,
        timeout: Duration::from_secs(timeout_secs),
        start: Instant::now(),
    }
}

impl SippBg {
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// Wait for SIPp to finish on its own (killed 30 s after its -timeout).
    pub fn wait(mut self) -> SippRun {
        let hard = self.timeout + Duration::from_secs(30);
        let left = hard.saturating_sub(self.start.elapsed());
        self.finish(None, left)
    }

    /// Ask SIPp to stop (SIGUSR1: no new calls, exit once the calls in progress are done), wait
    /// up to `grace`, then kill it. Counters are SIPp's last statistics dump.
    pub fn stop(mut self, grace: Duration) -> SippRun {
        self.finish(Some(libc::SIGUSR1), grace)
    }

    /// SIGKILL now (calls in progress are abandoned, no final statistics dump).
    pub fn kill(mut self) -> SippRun {
        self.finish(Some(libc::SIGKILL), Duration::from_secs(5))
    }

    fn finish(&mut self, signal: Option<i32>, grace: Duration) -> SippRun {
        let mut child = self.child.take().expect("SIPp already finished");
        if let Some(sig) = signal {
            if matches!(child.try_wait(), Ok(None)) {
                // SAFETY: plain kill(2) on our own child's pid.
                unsafe { libc::kill(child.id() as i32, sig) };
            }
        }
        let deadline = Instant::now() + grace;
        let mut killed = false;
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                killed = true;
                break child.wait().unwrap();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let [successful, failed, retransmissions] = read_sipp_stats(
            &self.stat_file,
            ["SuccessfulCall(C)", "FailedCall(C)", "Retransmissions(C)"],
        );
        let read =
            |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
        let mut report = String::new();
        writeln!(report, "$ sipp {}", self.full.join(" ")).unwrap();
        writeln!(
            report,
            "exit: {:?}{}{}; successful calls: {successful:?}; failed calls: {failed:?}; retransmissions: {retransmissions:?}; took {:.1?}",
            status.code(),
            match signal {
                Some(libc::SIGUSR1) => " (asked to stop)",
                Some(libc::SIGKILL) => " (killed by the test)",
                _ => "",
            },
            if killed { " (KILLED: did not exit in time)" } else { "" },
            self.start.elapsed()
        )
        .unwrap();
        writeln!(
            report,
            "--- sipp errors ---\n{}",
            tail(&read(&self.err_file), 6_000)
        )
        .unwrap();
        writeln!(
            report,
            "--- sipp screen ---\n{}",
            tail(&read(&self.screen_file), 4_000)
        )
        .unwrap();
        writeln!(
            report,
            "--- sipp output ---\n{}",
            tail(&read(&self.out_file), 2_000)
        )
        .unwrap();
        writeln!(
            report,
            "--- sipp messages (tail) ---\n{}",
            tail(&read(&self.msg_file), 5_000)
        )
        .unwrap();
        SippRun {
            code: if killed { None } else { status.code() },
            successful,
            failed,
            retransmissions,
            report,
        }
    }

    /// SIPp's message trace so far (what it sent and received).
    pub fn messages(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.msg_file).unwrap_or_default()).into_owned()
    }
}

impl Drop for SippBg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Register agent `user` with SIPp (`register_md5.xml`, UDP) from 127.0.0.1:`port`, the port
/// its seat will then listen on; panics unless ctid answered 200 listing the binding.
pub fn register_seat(dir: &Path, ctid: SocketAddr, port: u16, user: &str, password: &str) {
    let run = sipp_at(
        dir,
        Some(ctid),
        port,
        "register_md5.xml",
        &[
            "-t",
            "u1",
            "-m",
            "1",
            "-s",
            user,
            "-au",
            user,
            "-ap",
            password,
            "-timeout",
            "10s",
            "-timeout_error",
        ],
    );
    assert!(
        run.ok() && run.successful == Some(1),
        "agent {user} could not register from 127.0.0.1:{port}:\n{}",
        run.report
    );
}

/// Register agent `user` from a fresh port, then run the seat scenario `scenario_name` (UAS,
/// answering OPTIONS & co. automatically) on that port, for at most `timeout_secs`.
pub fn start_seat(
    dir: &Path,
    ctid: SocketAddr,
    user: &str,
    password: &str,
    scenario_name: &str,
    timeout_secs: u64,
) -> SippBg {
    start_seat_with(dir, ctid, user, password, scenario_name, timeout_secs, &[])
}

/// [`start_seat`] with more SIPp arguments (e.g. `-rtp_echo`).
pub fn start_seat_with(
    dir: &Path,
    ctid: SocketAddr,
    user: &str,
    password: &str,
    scenario_name: &str,
    timeout_secs: u64,
    extra: &[&str],
) -> SippBg {
    let port = free_port();
    register_seat(dir, ctid, port, user, password);
    let timeout = format!("{timeout_secs}s");
    let mut args = vec![
        "-t", "u1", "-s", user, "-m", "10000", "-aa", "-timeout", &timeout,
    ];
    args.extend_from_slice(extra);
    let mut seat = sipp_spawn(dir, None, port, scenario_name, &args);
    // Ready once SIPp holds the port (ctid may send the first INVITE right away).
    let deadline = Instant::now() + Duration::from_secs(5);
    while !udp_port_bound(port) {
        assert!(
            seat.is_running() && Instant::now() < deadline,
            "seat {user} (SIPp {scenario_name}) did not bind 127.0.0.1:{port}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    seat
}

/// Whether some socket is bound to UDP `port` on this host (read from /proc's UDP table, so the
/// probe never holds the port itself).
pub fn udp_port_bound(port: u16) -> bool {
    // The calling thread's network namespace (a test inside `Netns::run` moved only its
    // thread; /proc/net shows the main thread's).
    let table = std::fs::read_to_string("/proc/thread-self/net/udp").unwrap_or_default();
    let want = format!(":{port:04X}");
    table.lines().skip(1).any(|l| {
        l.split_whitespace()
            .nth(1)
            .is_some_and(|local| local.ends_with(&want))
    })
}

static RTP_NEXT: Mutex<Option<u16>> = Mutex::new(None);

/// A range of `n` consecutive UDP ports on 127.0.0.1, free right now, below the kernel's
/// ephemeral range (so SIPp's and the tests' own sockets do not land in it) and different for
/// every call in this process (and, by a pid-based start, likely for concurrent test binaries).
pub fn rtp_port_range(n: u16) -> (u16, u16) {
    const LOW: u32 = 10_000;
    const HIGH: u32 = 32_000;
    let mut next = RTP_NEXT.lock().unwrap();
    let mut start = next.unwrap_or_else(|| {
        let slots = (HIGH - LOW) / 1_000;
        (LOW + (std::process::id() % slots) * 1_000) as u16
    });
    for _ in 0..200 {
        if u32::from(start) + u32::from(n) >= HIGH {
            start = LOW as u16;
        }
        let all_free =
            (start..start + n).all(|p| UdpSocket::bind((Ipv4Addr::LOCALHOST, p)).is_ok());
        if all_free {
            *next = Some(start + n);
            return (start, start + n - 1);
        }
        start += n;
    }
    panic!("no range of {n} free UDP ports between {LOW} and {HIGH}");
}

/// `[media]` with a fresh port range of `n` ports.
pub fn media_toml(n: u16) -> String {
    let (lo, hi) = rtp_port_range(n);
    format!("\n[media]\nrtp_ip = \"127.0.0.1\"\nrtp_port_min = {lo}\nrtp_port_max = {hi}\n")
}

/// One row of the `calls` table.
#[derive(Clone, Debug, PartialEq)]
pub struct CallRow {
    pub id: i64,
    pub sip_call_id: String,
    pub direction: String,
    pub caller_number: Option<String>,
    pub caller_name: Option<String>,
    pub dialed_number: Option<String>,
    pub queue: Option<String>,
    pub entered_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub answered_in_target: Option<i64>,
    pub short_abandon: Option<i64>,
    pub hangup_by: Option<String>,
    pub hangup_cause: Option<String>,
    pub sip_code: Option<i64>,
}

/// One row of the `call_events` table.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub id: i64,
    pub call_id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub agent: Option<String>,
    pub detail: Option<String>,
}

/// ctid's database file in this env's data dir.
pub fn db_path(env: &TestEnv) -> PathBuf {
    env.data_dir.join("ctid.db")
}

/// The rows of `sql` (no parameters) in the test's database, each read by `row`; none while the
/// database is busy or not yet created and migrated (see [`rows_or_transient`]).
pub fn db_rows<T>(
    env: &TestEnv,
    sql: &str,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Vec<T> {
    let Some(c) = open_db(env) else {
        return vec![];
    };
    let rows = c
        .prepare(sql)
        .and_then(|mut st| st.query_map([], row)?.collect::<rusqlite::Result<Vec<T>>>());
    rows_or_transient(env, rows)
}

/// The database opened read-only (while ctid runs, or after it stopped); `None` while the file
/// does not exist or cannot be read yet.
pub fn open_db(env: &TestEnv) -> Option<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let path = db_path(env);
    if !path.exists() {
        return None;
    }
    let c = rusqlite::Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    c.busy_timeout(Duration::from_secs(2)).ok()?;
    Some(c)
}

fn text_of(v: rusqlite::types::Value) -> Option<String> {
    use rusqlite::types::Value;
    match v {
        Value::Null => None,
        Value::Integer(i) => Some(i.to_string()),
        Value::Real(f) => Some(f.to_string()),
        Value::Text(s) => Some(s),
        Value::Blob(b) => Some(String::from_utf8_lossy(&b).into_owned()),
    }
}

fn try_read_calls(c: &rusqlite::Connection) -> rusqlite::Result<Vec<CallRow>> {
    let mut st = c.prepare(
        "SELECT id, sip_call_id, direction, caller_number, caller_name, dialed_number, queue,
                entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms, agent, outcome,
                answered_in_target, short_abandon, hangup_by, hangup_cause, sip_code
         FROM calls ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(CallRow {
            id: r.get(0)?,
            sip_call_id: r.get(1)?,
            direction: r.get(2)?,
            caller_number: text_of(r.get(3)?),
            caller_name: text_of(r.get(4)?),
            dialed_number: text_of(r.get(5)?),
            queue: text_of(r.get(6)?),
            entered_at_ms: r.get(7)?,
            answered_at_ms: r.get(8)?,
            ended_at_ms: r.get(9)?,
            wait_ms: r.get(10)?,
            talk_ms: r.get(11)?,
            agent: text_of(r.get(12)?),
            outcome: text_of(r.get(13)?),
            answered_in_target: r.get(14)?,
            short_abandon: r.get(15)?,
            hangup_by: text_of(r.get(16)?),
            hangup_cause: text_of(r.get(17)?),
            sip_code: r.get(18)?,
        })
    })?;
    rows.collect()
}

fn try_read_events(c: &rusqlite::Connection) -> rusqlite::Result<Vec<EventRow>> {
    let mut st = c.prepare(
        "SELECT id, call_id, at_ms, kind, agent, detail FROM call_events ORDER BY call_id, id",
    )?;
    let rows = st.query_map([], |r| {
        Ok(EventRow {
            id: r.get(0)?,
            call_id: r.get(1)?,
            at_ms: r.get(2)?,
            kind: r.get(3)?,
            agent: text_of(r.get(4)?),
            detail: text_of(r.get(5)?),
        })
    })?;
    rows.collect()
}

/// Every `calls` row (empty while the database or table does not exist yet).
pub fn read_calls(env: &TestEnv) -> Vec<CallRow> {
    open_db(env)
        .map(|c| rows_or_transient(env, try_read_calls(&c)))
        .unwrap_or_default()
}

/// Every `call_events` row, by call then insertion order.
pub fn read_events(env: &TestEnv) -> Vec<EventRow> {
    open_db(env)
        .map(|c| rows_or_transient(env, try_read_events(&c)))
        .unwrap_or_default()
}

/// The rows read, none while the database is busy or not yet migrated (the caller polls) —
/// and a panic on any other error, so a broken query never passes for "no rows".
fn rows_or_transient<T>(env: &TestEnv, r: rusqlite::Result<Vec<T>>) -> Vec<T> {
    match r {
        Ok(rows) => rows,
        Err(rusqlite::Error::SqliteFailure(e, _))
            if matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) =>
        {
            Vec::new()
        }
        Err(e) if e.to_string().contains("no such table") => Vec::new(),
        Err(e) => panic!("reading {}: {e}", db_path(env).display()),
    }
}

/// The events of one call, in insertion order.
pub fn events_of(events: &[EventRow], call_id: i64) -> Vec<EventRow> {
    events
        .iter()
        .filter(|e| e.call_id == call_id)
        .cloned()
        .collect()
}

/// Poll the `calls` table (the writer batches) until `done` holds or `timeout` passes; returns
/// the last rows read either way, for the caller to assert on.
pub fn wait_for_calls(
    env: &TestEnv,
    timeout: Duration,
    done: impl Fn(&[CallRow]) -> bool,
) -> Vec<CallRow> {
    let deadline = Instant::now() + timeout;
    loop {
        let rows = read_calls(env);
        if done(&rows) || Instant::now() > deadline {
            return rows;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The end of a one-call test: wait (10 s at most) for its calls row to be ended, then read the
/// rows and events, keep the last `log_tail` bytes of ctid's log and stop ctid (exit 0).
pub fn one_call_ended(
    env: &TestEnv,
    daemon: Daemon,
    log_tail: usize,
) -> (Vec<CallRow>, Vec<EventRow>, String) {
    let rows = wait_for_calls(env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    let events = read_events(env);
    let log = daemon.log_tail(log_tail);
    daemon.stop();
    (rows, events, log)
}

/// `calls` rows, one per line, for assertion messages.
pub fn describe_calls(rows: &[CallRow]) -> String {
    let mut s = String::new();
    for r in rows {
        writeln!(s, "{r:?}").unwrap();
    }
    s
}

/// `call_events` rows, one per line, for assertion messages.
pub fn describe_events(rows: &[EventRow]) -> String {
    let mut s = String::new();
    for e in rows {
        writeln!(
            s,
            "call {} #{} at {} {} agent={:?} detail={:?}",
            e.call_id, e.id, e.at_ms, e.kind, e.agent, e.detail
        )
        .unwrap();
    }
    s
}

/// Settings for a call center: agents `ids` (password `secret<id>`), `[calls]` with
/// short_abandon_secs = 5, a fresh `[media]` port range, and one queue `support` on number
/// 4000 with every agent as a member plus `queue_lines` (TOML `key = value` lines).
pub fn queue_settings(ids: &[&str], queue_lines: &str) -> Settings {
    let members: Vec<String> = ids.iter().map(|a| format!("{{ agent = {a:?} }}")).collect();
    Settings {
        agents: ids
            .iter()
            .map(|a| (a.to_string(), format!("secret{a}")))
            .collect(),
        extra_toml: format!(
            "\n[calls]\npriority_header = \"X-Queue-Priority\"\nshort_abandon_secs = 5\n{}\n[[queues]]\nname = \"support\"\nnumbers = [\"4000\"]\nmembers = [{}]\n{queue_lines}\n",
            media_toml(400),
            members.join(", ")
        ),
        ..Settings::default()
    }
}

/// The kinds of `events`, keeping only those in `keep`, in order.
pub fn kinds_among(events: &[EventRow], keep: &[&str]) -> Vec<String> {
    events
        .iter()
        .filter(|e| keep.contains(&e.kind.as_str()))
        .map(|e| e.kind.clone())
        .collect()
}

/// SIPp's call number N of a PBX call (its Call-ID is `N-PID@IP`), to relate a `calls` row to
/// the caller "Caller N" <sip:55501N@...> of `pbx_*.xml`.
pub fn sipp_call_number(sip_call_id: &str) -> Option<u64> {
    sip_call_id.split('-').next()?.parse().ok()
}

/// The supervisor API token every test config carries.
pub const SUPERVISOR_TOKEN: &str = "test-supervisor-token-0001";

/// The value of one series (`name{labels}` exactly as exported) on `GET /metrics`.
pub fn metric_value(env: &TestEnv, series: &str) -> Option<f64> {
    let (status, body) = http_get(env, "/metrics");
    assert_eq!(status, 200, "GET /metrics: {body}");
    body.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `GET path` on the admin listener of `env` as a supervisor; the status and body.
pub fn http_get(env: &TestEnv, path: &str) -> (u16, String) {
    http_request(env, "GET", path, Some(SUPERVISOR_TOKEN), None)
}

/// Agent `id`'s entry on the agent board (`GET /api/v1/agents`); panics (with the board) when
/// the request fails or the agent is not there.
pub fn board_agent(env: &TestEnv, id: &str) -> serde_json::Value {
    let (status, body) = http_get(env, "/api/v1/agents");
    assert_eq!(status, 200, "GET /api/v1/agents: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("agents JSON");
    v.as_array()
        .and_then(|a| a.iter().find(|x| x["id"] == id))
        .unwrap_or_else(|| panic!("agent {id} not on the board: {body}"))
        .clone()
}

/// An HTTP/1.1 request to the admin listener of `env`; the status and body.
pub fn http_request(
    env: &TestEnv,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", env.admin_port)).expect("connect admin");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let body = json.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read admin response");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// One request to the admin listener: status and JSON body (`serde_json::Value::Null` when not JSON).
pub fn api_call(
    env: &TestEnv,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> (u16, serde_json::Value) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", env.admin_port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    let (ct, text) = body.unwrap_or(("", ""));
    if !ct.is_empty() {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{text}", text.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read answer");
    let text = String::from_utf8(buf).expect("UTF-8 answer");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let status = head[9..12].parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

/// A row's first six columns.
pub fn six<A, B, C, D, E, F>(r: &rusqlite::Row<'_>) -> rusqlite::Result<(A, B, C, D, E, F)>
where
    A: rusqlite::types::FromSql,
    B: rusqlite::types::FromSql,
    C: rusqlite::types::FromSql,
    D: rusqlite::types::FromSql,
    E: rusqlite::types::FromSql,
    F: rusqlite::types::FromSql,
{
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}
