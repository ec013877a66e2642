//! Offline reports read straight from the database: `ctid report` (queue and agent figures for a
//! day, week, half month, month or quarter), the same figures on the API (`GET /api/v1/reports/…`, see `docs/api.md`)
//! and `ctid cdr export` (call detail records, streamed).
//!
//! [`generate`] is the one entry point the CLI and the API share: it opens `<data_dir>/ctid.db`
//! read-only (so it runs while the daemon writes, WAL) and returns the [`Report`]; [`render`]
//! turns it into JSON, CSV, Markdown or a table. It blocks: the API calls it through
//! `spawn_blocking`. Periods are cut in `[reports] time_zone`: a day is a local calendar day (23
//! or 25 hours on DST change days), a week starts on Monday, a month is a calendar month. Calls
//! belong to the period (and interval) in which they *entered* (`entered_at_ms`), so every query
//! is a range scan on the `calls_entered` index.
//!
//! Definitions (docs/reports.md): SL % of offered = answered_in_target / (offered − short
//! abandons); SL % of answered = answered_in_target / answered; answer rate = answered /
//! (offered − short abandons); ASA = mean wait of answered calls; AHT = mean talk time of answered
//! calls that ended. Ratios are `None` when their denominator is 0. Unlike the live figures
//! (`crate::stats`, `GET /api/v1/stats`), whose `abandoned` *includes* the short abandons and
//! which count a call when it leaves the queue, a report's `abandoned` *excludes* them (they are
//! in `short_abandons` only) and calls count by the time they entered.

pub mod agent;
pub mod export;
pub mod lists;
pub mod queue;
pub mod render;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;
use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::store::{Reader, ReportReads};

/// Exit code for usage errors (bad dates, bad config), as elsewhere in the CLI.
pub const EXIT_USAGE: u8 = 64;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    #[default]
    Day,
    Week,
    /// The 1st to the 15th, or the 16th to the month's end (call records summarised every half
    /// month).
    #[serde(rename = "half-month")]
    HalfMonth,
    Month,
    /// January–March, April–June, July–September, October–December.
    Quarter,
}

impl PeriodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodKind::Day => "day",
            PeriodKind::Week => "week",
            PeriodKind::HalfMonth => "half-month",
            PeriodKind::Month => "month",
            PeriodKind::Quarter => "quarter",
        }
    }

    pub fn parse(s: &str) -> Option<PeriodKind> {
        match s {
            "day" => Some(PeriodKind::Day),
            "week" => Some(PeriodKind::Week),
            "half-month" => Some(PeriodKind::HalfMonth),
            "month" => Some(PeriodKind::Month),
            "quarter" => Some(PeriodKind::Quarter),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Table,
    Csv,
    Json,
    Md,
}

impl ReportFormat {
    pub fn parse(s: &str) -> Option<ReportFormat> {
        match s {
            "table" => Some(ReportFormat::Table),
            "csv" => Some(ReportFormat::Csv),
            "json" => Some(ReportFormat::Json),
            "md" => Some(ReportFormat::Md),
            _ => None,
        }
    }
}

/// Which part of a report to build and show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Parts {
    /// Queues, agents and callback lists (`ctid report`'s default).
    All,
    /// Queue totals and intervals (`GET /api/v1/reports/queues`).
    Queues,
    /// Agent figures (`GET /api/v1/reports/agents`).
    Agents,
    /// Callback-list figures (`GET /api/v1/reports/lists`).
    Lists,
}

impl Parts {
    pub fn queues(self) -> bool {
        matches!(self, Parts::All | Parts::Queues)
    }
    pub fn agents(self) -> bool {
        matches!(self, Parts::All | Parts::Agents)
    }
    pub fn lists(self) -> bool {
        matches!(self, Parts::All | Parts::Lists)
    }
}

/// Interval lengths a report can break a period into (minutes).
pub const INTERVALS: [u32; 3] = [15, 30, 60];

fn parse_interval(s: &str) -> Result<u32, String> {
    s.parse::<u32>()
        .ok()
        .filter(|m| INTERVALS.contains(m))
        .ok_or_else(|| format!("{s:?}: 15, 30 or 60"))
}

/// `ctid report`: queue and agent figures for one period, from the database.
#[derive(Args, Debug)]
pub struct ReportArgs {
    /// day (local calendar day), week (Monday to Sunday), half-month (1st–15th or 16th–end),
    /// month or quarter.
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
    /// Only this callback list.
    #[arg(long)]
    pub list: Option<String>,
    /// Interval breakdown in minutes: 15, 30 or 60 (default: `[reports] interval_minutes` for
    /// a day, 60 for a week or a month).
    #[arg(long, value_parser = parse_interval)]
    pub interval: Option<u32>,
    /// Which figures: all, queues (totals and intervals), agents or lists (callback lists).
    /// CSV holds one table: the queues' for `all` and `queues`, else the part's.
    #[arg(long, value_enum, default_value = "all")]
    pub part: Parts,
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
        PeriodKind::HalfMonth => {
            let sixteenth = date.first_of_month().checked_add(15.days())?;
            if date < sixteenth {
                (date.first_of_month(), sixteenth)
            } else {
                (sixteenth, date.last_of_month().tomorrow()?)
            }
        }
        PeriodKind::Month => {
            let first = date.first_of_month();
            (first, date.last_of_month().tomorrow()?)
        }
        PeriodKind::Quarter => {
            let month = (date.month() - 1) / 3 * 3 + 1;
            let first = jiff::civil::Date::new(date.year(), month, 1)?;
            (first, first.checked_add(3.months())?)
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
pub fn open_read_only(data_dir: &Path) -> Result<Reader> {
    Reader::open(data_dir)
        .with_context(|| format!("cannot open {}", data_dir.join("ctid.db").display()))
}

fn now_ms() -> i64 {
    Timestamp::now().as_millisecond()
}

/// What a report needs from the config, resolved once (by the daemon at start for the API, by
/// the CLI per run).
#[derive(Debug, Clone)]
pub struct Settings {
    /// `[reports] time_zone` as configured ("Europe/Berlin").
    pub time_zone: String,
    pub tz: TimeZone,
    /// Default interval of a day report: `[reports] interval_minutes` (60 if not 15/30/60).
    pub day_interval_minutes: u32,
    /// The configured queues and their goals, in config order.
    pub queues: Vec<(String, queue::Goals)>,
    /// The configured agent ids, in config order.
    pub agents: Vec<String>,
    /// The configured queues' member agents (for the callback lists a queue works).
    pub queue_members: Vec<(String, Vec<String>)>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Result<Settings> {
        let tz = crate::stats::time_zone(&cfg.reports.time_zone)
            .with_context(|| format!("reports.time_zone {:?}", cfg.reports.time_zone))?;
        let m = cfg.reports.interval_minutes;
        Ok(Settings {
            time_zone: cfg.reports.time_zone.clone(),
            tz,
            day_interval_minutes: if INTERVALS.contains(&m) { m } else { 60 },
            queues: cfg
                .queues
                .iter()
                .map(|q| {
                    let goals = queue::Goals {
                        sl_target_secs: q.sl_target_secs,
                        sl_goal: q.sl_goal_percent as f64 / 100.0,
                        answer_rate_goal: q.answer_rate_target_percent as f64 / 100.0,
                    };
                    (q.name.clone(), goals)
                })
                .collect(),
            agents: cfg.agents.iter().map(|a| a.id.clone()).collect(),
            queue_members: cfg
                .queues
                .iter()
                .map(|q| {
                    let members = q.members.iter().map(|m| m.agent.clone()).collect();
                    (q.name.clone(), members)
                })
                .collect(),
        })
    }

    /// Today's local date in the report time zone.
    pub fn today(&self) -> Date {
        Timestamp::now().to_zoned(self.tz.clone()).date()
    }

    /// The period of `kind` containing `date`.
    pub fn period(&self, kind: PeriodKind, date: Date) -> Result<Period> {
        period(kind, date, &self.tz, &self.time_zone)
    }
}

/// One report asked for: `ctid report`'s flags, or the API's query parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub kind: PeriodKind,
    /// A local date inside the period.
    pub date: Date,
    pub queue: Option<String>,
    pub agent: Option<String>,
    /// 15, 30 or 60; `None`: the configured one for a day, 60 for a week or a month.
    pub interval_minutes: Option<u32>,
    pub parts: Parts,
}

/// The whole report, as `--format json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub period: Period,
    pub interval_minutes: u32,
    /// Empty when only the agents were asked for.
    pub queues: Vec<queue::QueueReport>,
    /// Empty when the agents were not asked for.
    pub agents: Vec<agent::AgentReport>,
    /// Callback lists; empty when they were not asked for.
    pub lists: Vec<lists::ListReport>,
    /// What was built (and is rendered).
    #[serde(skip)]
    pub parts: Parts,
}

/// The one way to a report from the command line: open `<data_dir>/ctid.db` read-only and
/// build. Blocking: run it off the async executor. (The daemon's API builds on its pooled
/// readers: [`build_with_list`].)
pub fn generate(
    data_dir: &Path,
    settings: &Settings,
    req: &Request,
    now_ms: i64,
) -> Result<Report> {
    generate_with_list(data_dir, settings, req, None, now_ms)
}

/// [`generate`] with the callback lists narrowed to the one named `list` (`--list`, API `list`).
pub fn generate_with_list(
    data_dir: &Path,
    settings: &Settings,
    req: &Request,
    list: Option<&str>,
    now_ms: i64,
) -> Result<Report> {
    let first = open_read_only(data_dir)?;
    let mut second = first.reopen();
    build_with_list(
        &first,
        second.as_mut().map(|r| r as &mut (dyn ReportReads + Send)),
        settings,
        req,
        list,
        now_ms,
    )
}

/// Build the report of `req` from `store`.
pub fn build(
    store: &dyn ReportReads,
    settings: &Settings,
    req: &Request,
    now_ms: i64,
) -> Result<Report> {
    build_with_list(store, None, settings, req, None, now_ms)
}

/// [`build`] with the callback lists narrowed to the one named `list`. With a `second` reader
/// of the same store, the queue and agent figures (two independent scans) are read side by side
/// (a month of a big center halves).
pub fn build_with_list(
    store: &dyn ReportReads,
    second: Option<&mut (dyn ReportReads + Send)>,
    settings: &Settings,
    req: &Request,
    list: Option<&str>,
    now_ms: i64,
) -> Result<Report> {
    let period = settings.period(req.kind, req.date)?;
    let interval_minutes = match (req.interval_minutes, req.kind) {
        (Some(m), _) if INTERVALS.contains(&m) => m,
        (Some(m), _) => bail!("interval {m}: 15, 30 or 60"),
        (None, PeriodKind::Day) => settings.day_interval_minutes,
        (None, _) => 60,
    };
    let (queue_filter, agent_filter) = (req.queue.as_deref(), req.agent.as_deref());
    let queues = |store: &dyn ReportReads| {
        queue::queue_report(
            store,
            &settings.queues,
            &period,
            interval_minutes,
            queue_filter,
            &settings.tz,
        )
    };
    let agents = |store: &dyn ReportReads| {
        agent::agent_report(store, settings, &period, queue_filter, agent_filter, now_ms)
    };
    let lists = if req.parts.lists() {
        lists::list_report(store, settings, &period, list, now_ms)?
    } else {
        vec![]
    };
    let (queues, agents) = match req.parts {
        Parts::Queues => (queues(store)?, vec![]),
        Parts::Agents => (vec![], agents(store)?),
        Parts::Lists => (vec![], vec![]),
        Parts::All => {
            let (q, a) = match second {
                Some(store2) => std::thread::scope(|s| {
                    let agents = &agents;
                    let a = s.spawn(move || agents(&*store2));
                    let q = queues(store);
                    let a = a
                        .join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("agent report thread failed")));
                    (q, a)
                }),
                None => (queues(store), agents(store)),
            };
            (q?, a?)
        }
    };
    Ok(Report {
        period,
        interval_minutes,
        queues,
        agents,
        lists,
        parts: req.parts,
    })
}

fn load(config: &Path) -> Result<(Config, Settings), u8> {
    let cfg = Config::load(config).map_err(|e| {
        eprint!("{e}");
        EXIT_USAGE
    })?;
    let settings = Settings::from_config(&cfg).map_err(|e| {
        eprintln!("ctid: {e:#}");
        EXIT_USAGE
    })?;
    Ok((cfg, settings))
}

/// `ctid report`: returns the exit code.
pub fn run_report(args: ReportArgs) -> u8 {
    let (cfg, settings) = match load(&args.config) {
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
        None => settings.today(),
    };
    let req = Request {
        kind: args.period,
        date,
        queue: args.queue,
        agent: args.agent,
        interval_minutes: args.interval,
        parts: args.part,
    };
    let list = args.list.as_deref();
    let result = generate_with_list(&cfg.daemon.data_dir, &settings, &req, list, now_ms())
        .and_then(|report| render::render(&report, args.format));
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
            let (cfg, settings) = match load(&args.config) {
                Ok(x) => x,
                Err(code) => return code,
            };
            let tz = settings.tz;
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

#[cfg(test)]
mod period_tests {
    use super::*;

    fn bounds(kind: PeriodKind, date: &str) -> (String, String) {
        let tz = TimeZone::get("Asia/Shanghai").unwrap();
        let p = period(kind, date.parse().unwrap(), &tz, "Asia/Shanghai").unwrap();
        (p.first_day, p.last_day)
    }

    #[test]
    fn half_months_split_at_the_16th_and_quarters_at_every_third_month() {
        let half = |d| bounds(PeriodKind::HalfMonth, d);
        assert_eq!(
            half("2026-03-01"),
            ("2026-03-01".into(), "2026-03-15".into())
        );
        assert_eq!(
            half("2026-03-15"),
            ("2026-03-01".into(), "2026-03-15".into())
        );
        assert_eq!(
            half("2026-03-16"),
            ("2026-03-16".into(), "2026-03-31".into())
        );
        assert_eq!(
            half("2026-02-28"),
            ("2026-02-16".into(), "2026-02-28".into())
        );
        assert_eq!(
            half("2028-02-29"),
            ("2028-02-16".into(), "2028-02-29".into())
        );
        let quarter = |d| bounds(PeriodKind::Quarter, d);
        assert_eq!(
            quarter("2026-01-01"),
            ("2026-01-01".into(), "2026-03-31".into())
        );
        assert_eq!(
            quarter("2026-05-20"),
            ("2026-04-01".into(), "2026-06-30".into())
        );
        assert_eq!(
            quarter("2026-09-30"),
            ("2026-07-01".into(), "2026-09-30".into())
        );
        assert_eq!(
            quarter("2026-12-07"),
            ("2026-10-01".into(), "2026-12-31".into())
        );
        for (s, k) in [
            ("half-month", PeriodKind::HalfMonth),
            ("quarter", PeriodKind::Quarter),
        ] {
            assert_eq!(PeriodKind::parse(s), Some(k));
            assert_eq!(k.as_str(), s);
        }
    }
}
