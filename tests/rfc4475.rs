//! RFC 4475 torture messages, then garbage, against a ctid running inside its own network
//! namespace (only loopback up), so that nothing the messages name (192.0.2.x, example.com,
//! 255.255.255.255) can be reached. Needs root for `ip netns`.
//!
//! Every message is sent over UDP (a fresh socket per message, so that a late retransmission
//! of one message's response cannot be mistaken for the next one's) and over TCP (a fresh
//! connection per message), the exact bytes of the file. Each transport talks to its own ctid
//! (see [`rounds`] for why). After each message ctid must still answer an OPTIONS with 200.
//! The whole table (message, transport, statuses, verdict) is printed, and shown on failure.

use ctid_testkit as common;

use common::*;
use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REQUEST_WAIT: Duration = Duration::from_secs(2);
const NO_REPLY_WAIT: Duration = Duration::from_millis(300);
/// How long the "is ctid still alive" OPTIONS probes may take: liveness, not latency (on a
/// loaded 2-core CI machine ctid was seen descheduled for 2 s while it worked through garbage).
const PROBE_WAIT: Duration = Duration::from_secs(5);

/// An OPTIONS over UDP sent the way a SIP client sends it: retransmitted (RFC 3261 Timer E:
/// 500 ms, doubling) until a final response arrives or [`PROBE_WAIT`] has passed. A datagram
/// can be lost to a full socket buffer when ctid is descheduled behind a burst of garbage; a
/// real UAC's retransmission still gets through, and ctid must answer it.
fn probe_udp(server: SocketAddr) -> Option<u16> {
    let c = UdpClient::new(server);
    let req = options_request(server, c.local(), "UDP");
    let bytes = req.render();
    let deadline = Instant::now() + PROBE_WAIT;
    let mut interval = Duration::from_millis(500);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        c.send(bytes.as_bytes());
        if let Some(r) = c.final_for(&req, interval.min(left)) {
            return Some(r.status);
        }
        interval = (interval * 2).min(Duration::from_secs(4));
    }
}

fn conformance_dir() -> PathBuf {
    Path::new(MANIFEST_DIR).join("tests/conformance/rfc4475")
}

/// One row of `manifest.tsv` and its message.
#[derive(Debug)]
struct Case {
    name: String,
    kind: String,
    validity: String,
    ok_codes: Vec<u16>,
    accept_2xx: String,
    expected: String,
    method: String,
    /// The To header has a tag: an in-dialog request.
    in_dialog: bool,
    /// What a server transaction would match this request on (RFC 3261 17.2.3): top Via
    /// branch + sent-by + method (+ Call-ID for RFC 2543 branches). `None` for responses.
    txn_key: Option<String>,
    bytes: Vec<u8>,
}

/// A lenient look at a message head: first line and unfolded headers (long names).
fn head_of(bytes: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(bytes);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let mut lines: Vec<String> = Vec::new();
    for l in head.split("\r\n") {
        if l.starts_with(' ') || l.starts_with('\t') {
            if let Some(last) = lines.last_mut() {
                last.push(' ');
                last.push_str(l.trim());
            }
        } else {
            lines.push(l.to_string());
        }
    }
    let first = lines.first().cloned().unwrap_or_default();
    let headers = lines
        .iter()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (long_name(k), v.trim().to_string()))
        .collect();
    (first, headers)
}

fn param<'a>(params: impl Iterator<Item = &'a str>, name: &str) -> Option<String> {
    params
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_string())
}

fn txn_key(bytes: &[u8]) -> Option<String> {
    let (first, headers) = head_of(bytes);
    let method = first.split(' ').next()?.to_string();
    if method.starts_with("SIP/") {
        return None;
    }
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let via = get("via").unwrap_or_default();
    let top = via.split(',').next().unwrap_or("");
    let mut parts = top.split(';');
    let sent_by = parts
        .next()
        .unwrap_or("")
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_ascii_lowercase();
    let branch = param(parts, "branch").unwrap_or_default();
    let mut key = format!("{branch}|{sent_by}|{method}");
    if !branch.starts_with("z9hG4bK") {
        key.push('|');
        key.push_str(&get("call-id").unwrap_or_default());
    }
    Some(key)
}

fn has_to_tag(bytes: &[u8]) -> bool {
    let (_, headers) = head_of(bytes);
    headers.iter().any(|(k, v)| {
        k == "to" && {
            let after_uri = v.rsplit('>').next().unwrap_or(v);
            param(after_uri.split(';').skip(1), "tag").is_some()
        }
    })
}

fn cases() -> Vec<Case> {
    let dir = conformance_dir();
    let tsv = std::fs::read_to_string(dir.join("manifest.tsv")).expect("manifest.tsv");
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().expect("empty manifest").split('\t').collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("manifest.tsv has no column {name}"))
    };
    let (c_name, c_kind, c_validity, c_ok, c_2xx, c_expected) = (
        col("name"),
        col("kind"),
        col("validity"),
        col("ok_codes"),
        col("accept_2xx"),
        col("expected"),
    );
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        let name = f[c_name].to_string();
        let bytes = std::fs::read(dir.join(format!("{name}.dat")))
            .unwrap_or_else(|e| panic!("{name}.dat: {e}"));
        let method = String::from_utf8_lossy(&bytes)
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string();
        out.push(Case {
            ok_codes: f[c_ok]
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(|s| s.trim().parse().expect("ok_codes"))
                .collect(),
            kind: f[c_kind].to_string(),
            validity: f[c_validity].to_string(),
            accept_2xx: f[c_2xx].to_string(),
            expected: f[c_expected].to_string(),
            in_dialog: has_to_tag(&bytes),
            txn_key: txn_key(&bytes),
            name,
            method,
            bytes,
        });
    }
    assert_eq!(out.len(), 49, "RFC 4475 has 49 messages");
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tp {
    Udp,
    Tcp,
}

/// What happened to one message on one transport.
#[derive(Debug, Default)]
struct Outcome {
    /// Every status received, in order (provisional included).
    statuses: Vec<u16>,
    final_status: Option<u16>,
    final_reason: String,
    /// TCP: ctid closed the connection.
    closed: bool,
    /// UDP: replies that came from somewhere other than ctid's address.
    foreign_sources: Vec<SocketAddr>,
    /// Anything received that was not a SIP response.
    junk: usize,
    /// Status of the OPTIONS probe sent right after.
    probe: Option<u16>,
    error: Option<String>,
}

fn sip_status(bytes: &[u8]) -> Option<(u16, String)> {
    SipResponse::parse(bytes).map(|r| (r.status, r.reason))
}

fn send_udp(server: SocketAddr, c: &Case) -> Outcome {
    let mut o = Outcome::default();
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
    if let Err(e) = sock.send_to(&c.bytes, server) {
        o.error = Some(format!("send: {e}"));
        return o;
    }
    let wait = if c.kind == "request" {
        REQUEST_WAIT
    } else {
        NO_REPLY_WAIT
    };
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 65_536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left)).unwrap();
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                if from != server {
                    o.foreign_sources.push(from);
                }
                match sip_status(&buf[..n]) {
                    Some((st, reason)) => {
                        o.statuses.push(st);
                        if st >= 200 {
                            o.final_status = Some(st);
                            o.final_reason = reason;
                            break;
                        }
                    }
                    None => o.junk += 1,
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                o.error = Some(format!("recv: {e}"));
                break;
            }
        }
    }
    o
}

fn send_tcp(server: SocketAddr, c: &Case) -> Outcome {
    let mut o = Outcome::default();
    let mut t = match TcpClient::connect(server, Duration::from_secs(2)) {
        Ok(t) => t,
        Err(e) => {
            o.error = Some(format!("connect: {e}"));
            return o;
        }
    };
    if let Err(e) = t.send(&c.bytes) {
        o.error = Some(format!("write: {e}"));
        return o;
    }
    let wait = if c.kind == "request" {
        REQUEST_WAIT
    } else {
        NO_REPLY_WAIT
    };
    let deadline = Instant::now() + wait;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match t.read_message(left) {
            TcpRead::Message(m) => match sip_status(&m) {
                Some((st, reason)) => {
                    o.statuses.push(st);
                    if st >= 200 {
                        o.final_status = Some(st);
                        o.final_reason = reason;
                        break;
                    }
                }
                None => o.junk += 1,
            },
            TcpRead::Closed(rest) => {
                o.closed = true;
                if !rest.is_empty() {
                    // A response without a usable Content-Length, cut by the close.
                    match sip_status(&rest) {
                        Some((st, reason)) => {
                            o.statuses.push(st);
                            if st >= 200 {
                                o.final_status = Some(st);
                                o.final_reason = reason;
                            }
                        }
                        None => o.junk += 1,
                    }
                }
                break;
            }
            TcpRead::Timeout => break,
        }
    }
    o
}

/// What ctid answers when it processes a well-formed request of this method normally (from a
/// trusted peer, without credentials, to a number it does not know). A request with a To tag
/// belongs to a dialog ctid does not have: 481 (RFC 3261 12.2.2) is normal for it too.
fn normal_outcome(c: &Case) -> Vec<u16> {
    let mut v: Vec<u16> = match c.method.as_str() {
        "OPTIONS" => vec![200],
        "REGISTER" => vec![401],
        "INVITE" => vec![404],
        "BYE" | "CANCEL" => vec![481],
        "MESSAGE" | "INFO" | "UPDATE" | "PRACK" | "SUBSCRIBE" | "NOTIFY" | "REFER" | "PUBLISH" => {
            vec![405]
        }
        _ => vec![501],
    };
    if c.in_dialog && c.method != "REGISTER" {
        v.push(481);
    }
    v
}

/// The verdict on one outcome: Ok(why it is fine) or Err(what is wrong).
fn judge(c: &Case, tp: Tp, o: &Outcome) -> Result<String, String> {
    if let Some(e) = &o.error {
        return Err(format!("transport error: {e}"));
    }
    if !o.foreign_sources.is_empty() {
        return Err(format!(
            "reply came from {:?}, not from ctid's listening address",
            o.foreign_sources
        ));
    }
    if o.junk > 0 {
        return Err(format!("{} non-SIP reply(ies)", o.junk));
    }
    if c.kind == "response" {
        return if o.statuses.is_empty() {
            Ok("discarded silently".into())
        } else {
            Err(format!(
                "replied {:?} to a response (must discard silently)",
                o.statuses
            ))
        };
    }
    let lenient = matches!(c.accept_2xx.as_str(), "yes" | "liberal" | "dubious");
    let normal = normal_outcome(c);
    // Over TCP, a Content-Length that promises more than is sent leaves ctid waiting for the
    // rest; a missing Content-Length is a framing error. Either may end in 400 or a close.
    if tp == Tp::Tcp && (c.name == "clerr" || c.name == "inv2543") {
        return match o.final_status {
            None => Ok("no answer yet / closed (TCP framing)".into()),
            Some(400) => Ok("400 (TCP framing)".into()),
            Some(st)
                if c.name == "inv2543" && (normal.contains(&st) || (200..300).contains(&st)) =>
            {
                Ok(format!("{st}: processed normally"))
            }
            Some(st) => Err(format!("got {st}; expected 400, a close, or no answer")),
        };
    }
    let Some(st) = o.final_status else {
        return Err(format!(
            "no final response within {REQUEST_WAIT:?}{}",
            if o.closed { " (connection closed)" } else { "" }
        ));
    };
    if c.ok_codes.contains(&st) {
        return Ok(format!("{st} is one of {:?}", c.ok_codes));
    }
    if lenient && (200..300).contains(&st) {
        return Ok(format!("{st}: 2xx accepted ({})", c.accept_2xx));
    }
    if lenient && normal.contains(&st) {
        return Ok(format!(
            "{st}: processed as a well-formed {} ({})",
            c.method, c.accept_2xx
        ));
    }
    let mut want = format!("{:?}", c.ok_codes);
    if lenient {
        write!(want, " or 2xx or {normal:?} (normal {} outcome)", c.method).unwrap();
    }
    Err(format!("got {st} {:?}, expected {want}", o.final_reason))
}

struct Row {
    name: String,
    tp: Tp,
    /// Which ctid of that transport (see [`rounds`]).
    round: usize,
    outcome: Outcome,
    verdict: Result<String, String>,
    expected: String,
}

fn table(rows: &[Row]) -> String {
    let mut s = String::new();
    writeln!(
        s,
        "{:<11} {:<6} {:<14} {:<6} {:<5} {:<4} verdict",
        "message", "to", "statuses", "final", "closd", "prob"
    )
    .unwrap();
    for r in rows {
        let statuses: Vec<String> = r.outcome.statuses.iter().map(|s| s.to_string()).collect();
        let verdict = match (&r.verdict, r.outcome.probe) {
            (Ok(why), Some(200)) => format!("ok: {why}"),
            (Ok(why), p) => format!("FAIL: OPTIONS probe after it got {p:?} ({why})"),
            (Err(e), p) => format!(
                "FAIL: {e} [probe {p:?}] -- manifest: {}",
                r.expected.chars().take(110).collect::<String>()
            ),
        };
        writeln!(
            s,
            "{:<11} {:<6} {:<14} {:<6} {:<5} {:<4} {verdict}",
            r.name,
            format!("{:?}#{}", r.tp, r.round).to_uppercase(),
            if statuses.is_empty() {
                "-".to_string()
            } else {
                statuses.join(",")
            },
            r.outcome
                .final_status
                .map_or("-".to_string(), |s| s.to_string()),
            if r.outcome.closed { "yes" } else { "" },
            r.outcome.probe.map_or("-".to_string(), |s| s.to_string()),
        )
        .unwrap();
    }
    s
}

/// UDP sockets on the ports the messages' Via headers name (5060 default, 5070, 5050): a
/// response sent to the Via instead of the packet's source would land here.
fn via_catchers() -> Vec<UdpSocket> {
    [5060u16, 5070, 5050]
        .iter()
        .map(|p| {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, *p))
                .unwrap_or_else(|e| panic!("bind catcher on port {p} in the namespace: {e}"));
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect()
}

fn drain_catchers(catchers: &[UdpSocket]) -> Vec<String> {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    for c in catchers {
        while let Ok((n, from)) = c.recv_from(&mut buf) {
            got.push(format!(
                "to port {} from {from}: {:?}",
                c.local_addr().unwrap().port(),
                String::from_utf8_lossy(&buf[..n.min(120)])
            ));
        }
    }
    got
}

/// Which ctid instance each message goes to, per transport. The torture messages reuse Via
/// branches (cparam01/cparam02, unkscm/novelsc, ...): sent to the same ctid within a
/// transaction's lifetime, the second one would rightly be treated as a retransmission of the
/// first. So each transport has its own ctid, and a message whose transaction key was already
/// used on that ctid goes to the next one ("round").
fn rounds(cases: &[Case]) -> Vec<usize> {
    let mut seen: Vec<Vec<String>> = Vec::new();
    cases
        .iter()
        .map(|c| {
            let Some(k) = &c.txn_key else { return 0 };
            let round = (0..)
                .find(|r| {
                    seen.get(*r)
                        .is_none_or(|keys: &Vec<String>| !keys.contains(k))
                })
                .unwrap();
            if seen.len() <= round {
                seen.resize(round + 1, Vec::new());
            }
            seen[round].push(k.clone());
            round
        })
        .collect()
}

#[test]
fn rfc4475_torture_messages_over_udp_and_tcp() {
    let cases = cases();
    let rounds = rounds(&cases);
    let n_rounds = rounds.iter().max().unwrap() + 1;
    let ns = Netns::create("torture");
    // trusted_peers = ["127.0.0.1/32"]: INVITEs are processed, not refused.
    let envs: Vec<(Tp, usize, TestEnv)> = [Tp::Udp, Tp::Tcp]
        .into_iter()
        .flat_map(|tp| (0..n_rounds).map(move |r| (tp, r)))
        .map(|(tp, r)| (tp, r, TestEnv::new(&Settings::default())))
        .collect();
    let mut daemons: Vec<(Tp, usize, Daemon)> = envs
        .iter()
        .map(|(tp, r, env)| (*tp, *r, env.start_in_netns(&ns)))
        .collect();
    let addrs: Vec<(Tp, usize, SocketAddr)> =
        daemons.iter().map(|(t, r, d)| (*t, *r, d.addr)).collect();
    let server_for = |tp: Tp, r: usize| {
        addrs
            .iter()
            .find(|(t, n, _)| *t == tp && *n == r)
            .map(|(_, _, a)| *a)
            .unwrap()
    };

    let (rows, misdirected) = ns.run(|| {
        let catchers = via_catchers();
        let mut rows = Vec::new();
        for tp in [Tp::Udp, Tp::Tcp] {
            for (c, round) in cases.iter().zip(&rounds) {
                let server = server_for(tp, *round);
                let mut outcome = match tp {
                    Tp::Udp => send_udp(server, c),
                    Tp::Tcp => send_tcp(server, c),
                };
                outcome.probe = match tp {
                    Tp::Udp => probe_udp(server),
                    Tp::Tcp => options_probe_tcp(server, PROBE_WAIT),
                };
                let verdict = judge(c, tp, &outcome);
                rows.push(Row {
                    name: c.name.clone(),
                    tp,
                    round: *round,
                    outcome,
                    verdict,
                    expected: format!("[{}] {}", c.validity, c.expected),
                });
            }
        }
        // Late retransmissions toward a Via would have arrived by now.
        std::thread::sleep(Duration::from_millis(600));
        (rows, drain_catchers(&catchers))
    });

    let shown = table(&rows);
    println!("{shown}");
    let failed = rows
        .iter()
        .filter(|r| r.verdict.is_err() || r.outcome.probe != Some(200))
        .count();
    let mut logs = String::new();
    let mut dead = Vec::new();
    for (tp, r, d) in daemons.iter_mut() {
        if !d.is_alive() {
            dead.push(format!("{tp:?}#{r}"));
        }
        if failed > 0 || !d.is_alive() {
            writeln!(
                logs,
                "--- ctid {tp:?}#{r} log (tail) ---\n{}",
                d.log_tail(5_000)
            )
            .unwrap();
        }
    }
    assert!(
        failed == 0 && misdirected.is_empty() && dead.is_empty(),
        "{failed} of {} (message, transport) checks failed; ctid instances that died: {dead:?}; responses sent to a Via address instead of the source: {misdirected:#?}\n{shown}\n{logs}",
        rows.len(),
    );
    for (_, _, d) in daemons {
        d.stop();
    }
}

/// Deterministic xorshift64* generator, so a failure can be reproduced.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A torture message with 1..=6 random edits: byte changes, insertions, deletions, truncation,
/// duplicated ranges, broken line ends, huge numbers, swapped lines.
fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(6) {
        let len = v.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] = rng.next() as u8;
            }
            1 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let ins = rng.bytes(n);
                v.splice(i..i, ins);
            }
            2 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                v.drain(a..b);
            }
            3 => v.truncate(rng.below(len + 1)),
            4 if len > 0 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(256)).min(len);
                let chunk = v[a..b].to_vec();
                let at = rng.below(v.len() + 1);
                v.splice(at..at, chunk);
            }
            5 => {
                let start = rng.below(len + 1);
                if let Some(off) = find(&v[start..], b"\r\n") {
                    let i = start + off;
                    if rng.below(2) == 0 {
                        v.remove(i);
                    } else {
                        v.remove(i + 1);
                    }
                }
            }
            6 => {
                let i = rng.below(len + 1);
                let big: &[u8] = match rng.below(3) {
                    0 => b"99999999999999999999999",
                    1 => b"18446744073709551616",
                    _ => b"-1",
                };
                v.splice(i..i, big.iter().copied());
            }
            _ => {
                let lines: Vec<&[u8]> = v.split(|b| *b == b'\n').collect();
                if lines.len() > 2 {
                    let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                    let mut ls: Vec<Vec<u8>> = lines.iter().map(|l| l.to_vec()).collect();
                    ls.swap(a, b);
                    v = ls.join(&b'\n');
                }
            }
        }
    }
    v.truncate(8_000);
    v
}

#[test]
fn garbage_datagrams_and_connections_do_not_hurt_ctid() {
    let cases = cases();
    let ns = Netns::create("garbage");
    let env = TestEnv::new(&Settings::default());
    let mut daemon = env.start_in_netns(&ns);
    let server = daemon.addr;
    const SEED: u64 = 0x4475_5EED_C71D;
    const DATAGRAMS: usize = 2000;
    const CONNECTIONS: usize = 300;

    let (problems, stats) = ns.run(|| {
        let mut rng = Rng(SEED);
        let mut problems = Vec::new();
        let mut replies = 0usize;
        let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        sock.set_nonblocking(true).unwrap();
        let mut buf = vec![0u8; 65_536];
        let mut drain = |sock: &UdpSocket, problems: &mut Vec<String>| {
            while let Ok((_, from)) = sock.recv_from(&mut buf) {
                replies += 1;
                if from != server {
                    problems.push(format!("reply to garbage from {from}"));
                }
            }
        };
        for i in 0..DATAGRAMS {
            let msg = if i % 2 == 0 {
                let n = rng.below(1500);
                rng.bytes(n)
            } else {
                let base = &cases[rng.below(cases.len())].bytes;
                mutate(&mut rng, base)
            };
            if let Err(e) = sock.send_to(&msg, server) {
                if e.kind() != ErrorKind::WouldBlock {
                    problems.push(format!("datagram {i}: send: {e}"));
                }
            }
            if i % 50 == 49 {
                drain(&sock, &mut problems);
                std::thread::sleep(Duration::from_millis(5));
            }
            if i % 250 == 249 {
                let p = probe_udp(server);
                if p != Some(200) {
                    problems.push(format!(
                        "after {} garbage datagrams, OPTIONS over UDP got {p:?}",
                        i + 1
                    ));
                }
            }
        }
        drain(&sock, &mut problems);

        for i in 0..CONNECTIONS {
            let msg = match i % 3 {
                0 => {
                    let n = rng.below(4000);
                    rng.bytes(n)
                }
                _ => {
                    let base = &cases[rng.below(cases.len())].bytes;
                    mutate(&mut rng, base)
                }
            };
            let mut s = match TcpStream::connect_timeout(&server, Duration::from_secs(2)) {
                Ok(s) => s,
                Err(e) => {
                    problems.push(format!("garbage connection {i}: connect: {e}"));
                    continue;
                }
            };
            let _ = s.write_all(&msg);
            match i % 4 {
                // Abrupt close (unread replies turn it into a reset).
                0 => drop(s),
                // Half-close and read what comes back for a moment.
                1 | 2 => {
                    let _ = s.shutdown(Shutdown::Write);
                    s.set_read_timeout(Some(Duration::from_millis(30))).unwrap();
                    let mut sink = [0u8; 4096];
                    while let Ok(n) = s.read(&mut sink) {
                        if n == 0 {
                            break;
                        }
                    }
                }
                // Leave it open with the garbage pending; closed at the end of the batch.
                _ => {
                    s.set_read_timeout(Some(Duration::from_millis(5))).unwrap();
                    let mut sink = [0u8; 4096];
                    let _ = s.read(&mut sink);
                }
            }
            if i % 50 == 49 {
                let p = options_probe_tcp(server, PROBE_WAIT);
                if p != Some(200) {
                    problems.push(format!(
                        "after {} garbage TCP connections, OPTIONS over TCP got {p:?}",
                        i + 1
                    ));
                }
            }
        }

        for (what, p) in [
            ("UDP", probe_udp(server)),
            ("TCP", options_probe_tcp(server, PROBE_WAIT)),
        ] {
            if p != Some(200) {
                problems.push(format!("final OPTIONS over {what} got {p:?}"));
            }
        }
        (
            problems,
            format!("{DATAGRAMS} datagrams ({replies} replies), {CONNECTIONS} TCP connections, seed {SEED:#x}"),
        )
    });
    println!("garbage: {stats}");
    daemon.assert_alive("after the garbage");
    assert!(
        problems.is_empty(),
        "garbage ({stats}):\n  {}\n--- ctid log (tail) ---\n{}",
        problems.join("\n  "),
        daemon.log_tail(12_000)
    );
    daemon.stop();
}
