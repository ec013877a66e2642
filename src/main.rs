//! The `ctid` command: `ctid run` starts the daemon, `ctid check-config` validates a config;
//! `status`, `agents`, `agent`, `calls`, `top`, `lists`, `list`, `dnc` and `complaints` talk to a
//! running daemon (see `ctid::cli`).

use clap::{Parser, Subcommand};
use ctid::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// EX_USAGE from sysexits.h: the config (the user's input) is wrong.
const EX_USAGE: u8 = 64;

#[derive(Parser)]
#[command(name = "ctid", version, about = "ctid: a SIP call-center daemon")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the daemon in the foreground.
    Run {
        /// Config file.
        #[arg(long, default_value = "config/ctid.toml")]
        config: PathBuf,
        /// Log filter (e.g. `info`, `debug`, `ctid::sip=trace`); RUST_LOG wins if set.
        #[arg(long)]
        log_level: Option<String>,
    },
    /// Check a config file: exit 0 if it is valid, 64 listing every problem.
    CheckConfig { file: PathBuf },
    /// Print the HA1 digests of an agent's SIP password (read from stdin) for `[[agents]]
    /// ha1_md5` / `ha1_sha256`, so the config need not hold the password.
    Ha1 {
        /// The agent's SIP username.
        username: String,
        /// The digest realm (`[sip] realm`; HA1s are valid for this realm only).
        #[arg(long, default_value = "ctid")]
        realm: String,
    },
    /// Queue and agent report for a day, week, half month, month or quarter, read from the database.
    Report(ctid::report::ReportArgs),
    /// Call detail records (`ctid cdr export`; columns in docs/cdr.md).
    Cdr {
        #[command(subcommand)]
        command: ctid::report::CdrCommand,
    },
    #[command(flatten)]
    Client(ctid::cli::Command),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Help and version go to stdout and succeed; usage errors exit 64 (EX_USAGE).
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EX_USAGE } else { 0 });
        }
    };
    match cli.command {
        Cmd::Client(cmd) => ExitCode::from(ctid::cli::run(cmd)),
        Cmd::Report(args) => ExitCode::from(ctid::report::run_report(args)),
        Cmd::Cdr { command } => ExitCode::from(ctid::report::run_cdr(command)),
        Cmd::Ha1 { username, realm } => {
            let mut password = String::new();
            if std::io::stdin().read_line(&mut password).is_err() || password.trim_end().is_empty()
            {
                eprintln!("ctid ha1: give the password on stdin (one line)");
                return ExitCode::from(EX_USAGE);
            }
            let password = password.trim_end_matches(['\r', '\n']);
            use ctid::sip::auth::{ha1, Algorithm};
            println!(
                "ha1_md5 = \"{}\"",
                ha1(Algorithm::Md5, &username, &realm, password)
            );
            println!(
                "ha1_sha256 = \"{}\"",
                ha1(Algorithm::Sha256, &username, &realm, password)
            );
            ExitCode::SUCCESS
        }
        Cmd::CheckConfig { file } => match Config::load(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprint!("{e}");
                ExitCode::from(EX_USAGE)
            }
        },
        Cmd::Run { config, log_level } => {
            let cfg = match Config::load(&config) {
                Ok(c) => c,
                Err(e) => {
                    eprint!("{e}");
                    return ExitCode::from(EX_USAGE);
                }
            };
            let from_env = std::env::var("RUST_LOG").ok();
            if let (None, Some(l)) = (&from_env, &log_level) {
                if let Err(e) = ctid::config::check_log_filter(l) {
                    eprintln!("--log-level: {e}");
                    return ExitCode::from(EX_USAGE);
                }
            }
            let filter = from_env
                .or(log_level.clone())
                .unwrap_or_else(|| cfg.daemon.log_level.clone());
            let initial = || EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info"));
            let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
            let set_filter: Box<SetFilter> = match cfg.daemon.log_format {
                ctid::config::LogFormat::Json => {
                    let logs = tracing_subscriber::fmt()
                        .json()
                        .with_env_filter(initial())
                        .with_writer(std::io::stderr)
                        .with_filter_reloading();
                    let handle = logs.reload_handle();
                    logs.init();
                    Box::new(move |f| handle.reload(f).is_ok())
                }
                ctid::config::LogFormat::Text => {
                    let logs = tracing_subscriber::fmt()
                        .with_env_filter(initial())
                        .with_writer(std::io::stderr)
                        .with_ansi(ansi)
                        .with_filter_reloading();
                    let handle = logs.reload_handle();
                    logs.init();
                    Box::new(move |f| handle.reload(f).is_ok())
                }
            };
            // A log level fixed on the command line or by RUST_LOG stays; the file's follows a
            // reload.
            let reload = Reload {
                path: config.clone(),
                log_filter: (std::env::var_os("RUST_LOG").is_none() && log_level.is_none())
                    .then_some(set_filter),
            };
            // Timers and sockets are checked every 8 task polls instead of tokio's 61: with
            // thousands of media tasks waking every 20 ms, 61 polls are several ms of delay
            // before a due frame's timer is even seen (scripts/bench-media, BENCHMARKS.md).
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .event_interval(8)
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(run(cfg, reload)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.downcast_ref::<ctid::store::LockError>().is_some() => {
                    tracing::error!("{e:#}");
                    eprintln!("ctid: {e:#}");
                    ExitCode::from(EX_USAGE)
                }
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("ctid: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// What SIGHUP re-reads.
struct Reload {
    path: PathBuf,
    /// The running log filter, when the config file sets it.
    log_filter: Option<Box<SetFilter>>,
}

/// Replaces the running log filter; false if the logger is gone.
type SetFilter = dyn Fn(EnvFilter) -> bool + Send + Sync;

impl Reload {
    /// SIGHUP (logrotate, `systemctl reload`): the config file is read and checked again. A file
    /// with problems is refused, each problem logged, and ctid goes on with what it runs. A good
    /// file's log level is applied at once; the other sections take effect at the next restart,
    /// and the log says so — no call is dropped either way.
    fn apply(&self) {
        let cfg = match Config::load(&self.path) {
            Ok(c) => c,
            Err(e) => {
                for p in &e.problems {
                    tracing::error!(file = %self.path.display(), "reload refused: {p}");
                }
                tracing::error!(
                    problems = e.problems.len(),
                    "reload refused: the running configuration stays"
                );
                return;
            }
        };
        match &self.log_filter {
            Some(set) => match EnvFilter::try_new(&cfg.daemon.log_level).map(set) {
                Ok(true) => {
                    tracing::info!(log_level = %cfg.daemon.log_level, "reload: log level applied")
                }
                _ => tracing::warn!("reload: the log level could not be applied"),
            },
            None => tracing::info!("reload: log level fixed by --log-level or RUST_LOG, kept"),
        }
        tracing::warn!(
            file = %self.path.display(),
            "reload: the file is valid; changes to agents, queues, tokens and other sections take effect at the next restart"
        );
    }
}

async fn run(cfg: Config, reload: Reload) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal(&reload).await;
        tracing::info!("shutdown requested");
        signals.cancel();
    });
    ctid::app::run(cfg, shutdown, None).await
}

/// Until SIGTERM or Ctrl-C; SIGHUP in between re-reads the config (it must never stop ctid).
async fn wait_for_signal(reload: &Reload) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut hup) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(t), Ok(h)) => (t, h),
        _ => {
            tracing::warn!("cannot watch SIGTERM/SIGHUP; only Ctrl-C stops ctid");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            _ = hup.recv() => {
                tracing::info!("SIGHUP: re-reading the configuration");
                // Reading the file is blocking, but small and rare.
                tokio::task::block_in_place(|| reload.apply());
            }
        }
    }
}
