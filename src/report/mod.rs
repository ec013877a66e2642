//! Offline reports read straight from the database: `ctid report` (queue and agent figures for a
//! day, week or month) and `ctid cdr export` (call detail records, streamed).
//!
//! Opens `<data_dir>/ctid.db` read-only, so it runs while the daemon writes (WAL). Periods are
//! cut in `[reports] time_zone`: a day is a local calendar day (23 or 25 hours on DST change
//! days), a week starts on Monday, a month is a calendar month. Calls belong to the period (and
//! interval) in which they *entered* (`entered_at_ms`), so every query is a range scan on the
//! `calls_entered` index, aggregated in SQL.
//!
//! Definitions match the live figures (`crate::stats`): SL % of offered =
//! answered_in_target / (offered − short abandons); SL % of answered = answered_in_target /
//! answered; answer rate = answered / (offered − short abandons); ASA = mean wait of answered
//! calls; AHT = mean talk time of answered calls that ended. Ratios are `None` when their
//! denominator is 0.

pub mod agent;
pub mod export;
pub mod queue;
pub mod render;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::config::Config;

/// Exit code for usage errors (bad dates, bad config), as elsewhere in the CLI.
pub const EXIT_USAGE: u8 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
    Md,
}

/// `ctid report`: queue and agent figures for one period, from the database.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// day (local calendar day), week (Monday to Sunday) or month.
    #[arg(long, value_enum, default_value = "day")]
    pub period: PeriodKind,
    /// A date inside the period (YYYY-MM-DD, in the configured time zone); default today.
    #[arg(long)]
    pub date: Option<String>,
    /// Only this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only this agent.
    #[arg(long)]
    pub agent: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ReportFormat,
    /// Config file (for data_dir, the time zone, the queues' targets).
    #[arg(long, default_value = "config/ctid.toml")]
    pub config: PathBuf,
}

/// `ctid cdr …`: call detail records.
#[derive(Subcommand, Debug)]
pub enum CdrCommand {
    /// Stream the calls that entered between two local dates (inclusive) to stdout
    /// (columns: docs/cdr.md).
    Export(CdrExportArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CdrFormat {
    Csv,
    Jsonl,
}

#[derive(Args, Debug)]
pub struct CdrExportArgs {
    /// First day (YYYY-MM-DD, local), inclusive.
    #[arg(long)]
    pub from: String,
    /// Last day (YYYY-MM-DD, local), inclusive.
    #[arg(long)]
    pub to: String,
    #[arg(long, value_enum, default_value = "csv")]
    pub format: CdrFormat,
    #[arg(long, default_value = "config/ctid.toml")]
    pub config: PathBuf,
}

/// A period: `[start_ms, end_ms)` in unix milliseconds, and how it was asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    pub kind: PeriodKind,
    /// First local day of the period.
    pub first_day: String,
    /// Last local day of the period (inclusive).
    pub last_day: String,
    pub time_zone: String,
    pub start_ms: i64,
    pub end_ms: i64,
    /// Local start with offset (RFC 3339).
    pub start: String,
    pub end: String,
}

pub fn parse_date(s: &str) -> Result<Date> {
    s.trim()
        .parse::<Date>()
        .with_context(|| format!("{s:?} is not a date (YYYY-MM-DD)"))
}

/// Start of a local day as a unix-ms timestamp (the first instant of that day, even if
/// midnight falls in a DST gap).
pub fn day_start_ms(date: Date, tz: &TimeZone) -> Result<i64> {
    Ok(date.to_zoned(tz.clone())?.timestamp().as_millisecond())
}

/// The period of `kind` that contains `date`.
pub fn period(kind: PeriodKind, date: Date, tz: &TimeZone, tz_name: &str) -> Result<Period> {
    let (first, next) = match kind {
        PeriodKind::Day => (date, date.tomorrow()?),
        PeriodKind::Week => {
            let back = date.weekday().to_monday_zero_offset() as i64;
            let monday = date.checked_sub(back.days())?;
            (monday, monday.checked_add(7.days())?)
        }
        PeriodKind::Month => {
            let first = date.first_of_month();
            (first, date.last_of_month().tomorrow()?)
        }
    };
    let start_ms = day_start_ms(first, tz)?;
    let end_ms = day_start_ms(next, tz)?;
    Ok(Period {
        kind,
        first_day: first.to_string(),
        last_day: next.yesterday()?.to_string(),
        time_zone: tz_name.to_string(),
        start_ms,
        end_ms,
        start: local(start_ms, tz),
        end: local(end_ms, tz),
    })
}

/// A unix-ms instant as local time with offset: `2026-03-29T03:00:00+02:00`.
pub fn local(ms: i64, tz: &TimeZone) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t
            .to_zoned(tz.clone())
            .strftime("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
        Err(_) => ms.to_string(),
    }
}

/// Open `<data_dir>/ctid.db` read-only (no schema changes; safe while the daemon runs).
pub fn open_read_only(data_dir: &Path) -> Result<Connection> {
    let path = data_dir.join("ctid.db");
    if !path.exists() {
        bail!("no database at {}", path.display());
    }
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// The whole report, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub period: Period,
    pub interval_minutes: u32,
    pub queues: Vec<queue::QueueReport>,
    pub agents: Vec<agent::AgentReport>,
}

/// Build the report for a config, a period and the filters.
pub fn build(
    conn: &Connection,
    cfg: &Config,
    period: Period,
    queue_filter: Option<&str>,
    agent_filter: Option<&str>,
    now_ms: i64,
) -> Result<Report> {
    let interval_minutes = match period.kind {
        PeriodKind::Day => cfg.reports.interval_minutes,
        _ => 60,
    };
    let interval_minutes = if crate::stats::INTERVAL_MINUTES.contains(&interval_minutes) {
        interval_minutes
    } else {
        60
    };
    let tz = crate::stats::time_zone(&cfg.reports.time_zone)?;
    // The queue and agent figures are two independent scans: run them side by side on two
    // read-only connections when the database is a file (a month of a big center halves).
    let second = conn
        .path()
        .filter(|p| !p.is_empty())
        .and_then(|p| open_read_only(Path::new(p).parent()?).ok());
    let (queues, agents) = match second {
        Some(conn2) => std::thread::scope(|s| {
            let period2 = period.clone();
            let agents = s.spawn(move || {
                agent::agent_report(&conn2, &period2, queue_filter, agent_filter, now_ms)
            });
            let queues =
                queue::queue_report(conn, cfg, &period, interval_minutes, queue_filter, &tz);
            let agents = agents
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("agent report thread failed")));
            (queues, agents)
        }),
        None => (
            queue::queue_report(conn, cfg, &period, interval_minutes, queue_filter, &tz),
            agent::agent_report(conn, &period, queue_filter, agent_filter, now_ms),
        ),
    };
    let (queues, agents) = (queues?, agents?);
    Ok(Report {
        period,
        interval_minutes,
        queues,
        agents,
    })
}

fn load(config: &Path) -> Result<(Config, TimeZone), u8> {
    let cfg = Config::load(config).map_err(|e| {
        eprint!("{e}");
        EXIT_USAGE
    })?;
    let tz = crate::stats::time_zone(&cfg.reports.time_zone).map_err(|e| {
        eprintln!("ctid: reports.time_zone: {e}");
        EXIT_USAGE
    })?;
    Ok((cfg, tz))
}

/// `ctid report`: returns the exit code.
pub fn run_report(args: ReportArgs) -> u8 {
    let (cfg, tz) = match load(&args.config) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let date = match &args.date {
        Some(d) => match parse_date(d) {
            Ok(d) => d,
            Err(e) => {
                eprintln!("ctid: --date: {e:#}");
                return EXIT_USAGE;
            }
        },
        None => Timestamp::now().to_zoned(tz.clone()).date(),
    };
    let result = (|| -> Result<String> {
        let p = period(args.period, date, &tz, &cfg.reports.time_zone)?;
        let conn = open_read_only(&cfg.daemon.data_dir)?;
        let report = build(
            &conn,
            &cfg,
            p,
            args.queue.as_deref(),
            args.agent.as_deref(),
            now_ms(),
        )?;
        Ok(match args.format {
            ReportFormat::Json => serde_json::to_string_pretty(&report)? + "\n",
            ReportFormat::Table => render::table(&report, false),
            ReportFormat::Md => render::table(&report, true),
            ReportFormat::Csv => render::csv(&report),
        })
    })();
    match result {
        Ok(text) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
            0
        }
        Err(e) => {
            eprintln!("ctid: report: {e:#}");
            1
        }
    }
}

/// `ctid cdr …`: returns the exit code.
pub fn run_cdr(cmd: CdrCommand) -> u8 {
    match cmd {
        CdrCommand::Export(args) => {
            let (cfg, tz) = match load(&args.config) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let range = (|| -> Result<(i64, i64)> {
                let from = parse_date(&args.from).context("--from")?;
                let to = parse_date(&args.to).context("--to")?;
                if to < from {
                    bail!("--to {to} is before --from {from}");
                }
                Ok((day_start_ms(from, &tz)?, day_start_ms(to.tomorrow()?, &tz)?))
            })();
            let (start, end) = match range {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("ctid: cdr export: {e:#}");
                    return EXIT_USAGE;
                }
            };
            let result = open_read_only(&cfg.daemon.data_dir).and_then(|conn| {
                let stdout = std::io::stdout().lock();
                let mut out = std::io::BufWriter::with_capacity(64 * 1024, stdout);
                export::export(&conn, start, end, args.format, &tz, &mut out)
            });
            match result {
                Ok(_) => 0,
                Err(e) => {
                    // A closed pipe (`| head`) is not an error worth reporting.
                    if e.chain().any(|c| {
                        c.downcast_ref::<std::io::Error>()
                            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
                    }) {
                        return 0;
                    }
                    eprintln!("ctid: cdr export: {e:#}");
                    1
                }
            }
        }
    }
}
