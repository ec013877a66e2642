//! `ctid check`: the morning check a supervisor runs before the shift (the call center's rule:
//! every system checked before 08:35, problems reported at once). One line per item, each with
//! a verdict, exit 1 if any line fails:
//!
//! - the daemon answers (`/healthz`), the trunk is up (`ctid_trunk_up` on `/metrics`), at least
//!   one agent's phone is registered (the agent board; one seat must always be staffed) — asked
//!   of the running daemon over its API;
//! - the data directory is writable with free disk, the recordings directory writable (when a
//!   queue records), every configured prompt present and readable, yesterday's report figures
//!   available, the system clock synchronised — read on this machine, from the config file the
//!   daemon runs with, so run it on the daemon's host.
//!
//! A clock the kernel reports as unsynchronised is a warning, not a failure: containers and some
//! virtual machines never mark it synchronised although their host keeps time.
//!
//! Must not know: SQL (yesterday's figures come from `crate::report`), SIP.

use super::http::Client;
use super::ClientOpts;
use crate::config::Config;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The daemon's config file (data directory, prompts, queues, trunk).
    #[arg(long, default_value = "config/ctid.toml")]
    pub config: PathBuf,
    /// Free disk below which the data directory's line fails, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    pub min_free_mib: u64,
    #[command(flatten)]
    pub opts: ClientOpts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
}

fn line(check: &'static str, verdict: Verdict, detail: impl Into<String>) -> Line {
    Line {
        check,
        verdict,
        detail: detail.into(),
    }
}

/// Run every check; the exit code is 0 when none failed, 1 otherwise, 64 for a bad config.
pub fn run(args: &CheckArgs) -> u8 {
    let cfg = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            return super::http::EXIT_USAGE;
        }
    };
    let lines = check_all(&cfg, args);
    if args.opts.json {
        let v = serde_json::json!({
            "ok": lines.iter().all(|l| l.verdict != Verdict::Fail),
            "checks": lines,
        });
        println!("{v:#}");
    } else {
        for l in &lines {
            let tag = match l.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            println!("{tag}  {:<12} {}", l.check, l.detail);
        }
    }
    u8::from(lines.iter().any(|l| l.verdict == Verdict::Fail))
}

fn check_all(cfg: &Config, args: &CheckArgs) -> Vec<Line> {
    let client = Client::new(&args.opts.api(), args.opts.token());
    let mut out = Vec::new();
    match &client {
        Ok(c) => {
            out.push(daemon(c));
            out.push(trunk(c, cfg));
            out.push(agents(c, cfg));
        }
        Err(e) => out.push(line("daemon", Verdict::Fail, e.to_string())),
    }
    out.push(data_dir(&cfg.daemon.data_dir, args.min_free_mib));
    out.push(recordings(cfg));
    out.push(prompts(cfg));
    out.push(yesterday(cfg));
    out.push(clock());
    out
}

fn daemon(c: &Client) -> Line {
    match c.get("/healthz") {
        Ok(_) => line("daemon", Verdict::Ok, "answers /healthz"),
        Err(e) => line("daemon", Verdict::Fail, e.to_string()),
    }
}

fn trunk(c: &Client, cfg: &Config) -> Line {
    let Some(t) = &cfg.trunk else {
        return line("trunk", Verdict::Ok, "no [trunk] configured");
    };
    let text = match c.get("/metrics") {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => return line("trunk", Verdict::Fail, format!("no metrics: {e}")),
    };
    let up = text
        .lines()
        .find(|l| l.starts_with("ctid_trunk_up"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<f64>().ok());
    match up {
        Some(v) if v >= 1.0 => line("trunk", Verdict::Ok, format!("{} answers OPTIONS", t.uri)),
        Some(_) => line(
            "trunk",
            Verdict::Fail,
            format!("{} does not answer OPTIONS (ctid_trunk_up 0)", t.uri),
        ),
        None => line(
            "trunk",
            Verdict::Fail,
            "ctid_trunk_up missing from /metrics",
        ),
    }
}

fn agents(c: &Client, cfg: &Config) -> Line {
    let board = match c.get_json("/api/v1/agents") {
        Ok((_, v)) => v,
        Err(e) => return line("agents", Verdict::Fail, format!("agent board: {e}")),
    };
    let rows = board
        .get("agents")
        .and_then(|a| a.as_array())
        .or_else(|| board.as_array())
        .cloned()
        .unwrap_or_default();
    let in_service = rows
        .iter()
        .filter(|a| a.get("state").and_then(|s| s.as_str()) != Some("logged_out"))
        .count();
    let detail = format!(
        "{in_service} of {} agents logged in (phone registered)",
        cfg.agents.len()
    );
    if in_service == 0 {
        line(
            "agents",
            Verdict::Fail,
            format!("{detail}: no seat staffed"),
        )
    } else {
        line("agents", Verdict::Ok, detail)
    }
}

/// Writable (a file is created and removed) with at least `min_free_mib` free.
fn data_dir(dir: &Path, min_free_mib: u64) -> Line {
    if let Err(e) = probe_writable(dir) {
        return line("data dir", Verdict::Fail, format!("{}: {e}", dir.display()));
    }
    match free_mib(dir) {
        Some(free) if free < min_free_mib => line(
            "data dir",
            Verdict::Fail,
            format!("{}: only {free} MiB free (< {min_free_mib})", dir.display()),
        ),
        Some(free) => line(
            "data dir",
            Verdict::Ok,
            format!("{} writable, {free} MiB free", dir.display()),
        ),
        None => line(
            "data dir",
            Verdict::Warn,
            format!("{} writable; free space unknown", dir.display()),
        ),
    }
}

fn recordings(cfg: &Config) -> Line {
    if !cfg.queues.iter().any(|q| q.record) {
        return line("recordings", Verdict::Ok, "no queue records calls");
    }
    let dir = cfg.daemon.data_dir.join(&cfg.media.recordings_dir);
    match probe_writable(&dir) {
        Ok(()) => line(
            "recordings",
            Verdict::Ok,
            format!("{} writable", dir.display()),
        ),
        Err(e) => line(
            "recordings",
            Verdict::Fail,
            format!("{}: {e}", dir.display()),
        ),
    }
}

fn prompts(cfg: &Config) -> Line {
    match crate::media::prompts::Prompts::load(cfg) {
        Ok(p) => line(
            "prompts",
            Verdict::Ok,
            format!(
                "every prompt of {} queue(s) readable in {}",
                p.queues.len(),
                cfg.media.prompts_dir.display()
            ),
        ),
        Err(e) => line("prompts", Verdict::Fail, e.to_string()),
    }
}

fn yesterday(cfg: &Config) -> Line {
    use crate::report::{generate, PeriodKind, Request, Settings};
    let result = Settings::from_config(cfg).and_then(|settings| {
        let date = settings.today().yesterday()?;
        let req = Request {
            kind: PeriodKind::Day,
            date,
            queue: None,
            agent: None,
            interval_minutes: None,
            parts: crate::report::Parts::Queues,
        };
        let report = generate(&cfg.daemon.data_dir, &settings, &req, super::now_ms())?;
        Ok((date, report))
    });
    match result {
        Ok((date, r)) => {
            let offered: u64 = r.queues.iter().map(|q| q.totals.offered).sum();
            let answered: u64 = r.queues.iter().map(|q| q.totals.answered).sum();
            line(
                "yesterday",
                Verdict::Ok,
                format!("report of {date}: {offered} offered, {answered} answered"),
            )
        }
        Err(e) => line("yesterday", Verdict::Fail, format!("{e:#}")),
    }
}

/// The kernel's view of the clock (`adjtimex`, read-only): synchronised by NTP/PTP or not.
fn clock() -> Line {
    let mut tx = zeroed_timex();
    // SAFETY: adjtimex with modes = 0 only reads the kernel's clock state into `tx`, a valid,
    // exclusively borrowed timex.
    let state = unsafe { libc::adjtimex(&mut tx) };
    match state {
        -1 => line("clock", Verdict::Warn, "the clock state cannot be read"),
        libc::TIME_ERROR => line(
            "clock",
            Verdict::Warn,
            "the kernel reports the clock unsynchronised (no NTP/PTP discipline): check chrony or systemd-timesyncd",
        ),
        _ => line(
            "clock",
            Verdict::Ok,
            format!(
                "synchronised (estimated error {} µs)",
                tx.esterror.max(0)
            ),
        ),
    }
}

fn zeroed_timex() -> libc::timex {
    // SAFETY: timex is a plain C struct of integers (and padding); all-zero is a valid value.
    unsafe { std::mem::zeroed() }
}

fn probe_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let probe = dir.join(format!(".ctid-check-{}", std::process::id()));
    std::fs::write(&probe, b"ctid check\n")?;
    std::fs::remove_file(&probe)
}

fn free_mib(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is all integers; zeroed is valid and it is filled by the call below.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path, `st` a valid, exclusively borrowed statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64) / (1024 * 1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writable_directory_passes_and_a_missing_disk_margin_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(data_dir(dir.path(), 1).verdict, Verdict::Ok);
        let l = data_dir(dir.path(), u64::MAX);
        assert_eq!(l.verdict, Verdict::Fail, "{l:?}");
        assert!(l.detail.contains("MiB free"), "{l:?}");
        let file = dir.path().join("a-file");
        std::fs::write(&file, "x").unwrap();
        assert_eq!(data_dir(&file.join("sub"), 1).verdict, Verdict::Fail);
    }

    #[test]
    fn a_missing_prompt_is_named() {
        let mut cfg = Config::parse(
            "[[agents]]\nid = \"1\"\nname = \"A\"\nusername = \"a\"\npassword = \"p\"\n\n[[queues]]\nname = \"q\"\nnumbers = [\"4000\"]\nmembers = [{ agent = \"1\" }]\n",
        )
        .unwrap();
        cfg.media.prompts_dir = PathBuf::from("/nonexistent");
        cfg.queues[0].greeting = Some("greeting.wav".into());
        let l = prompts(&cfg);
        assert_eq!(l.verdict, Verdict::Fail, "{l:?}");
        assert!(l.detail.contains("greeting.wav"), "{l:?}");
    }
}
