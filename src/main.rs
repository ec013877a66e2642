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
    /// Queue and agent report for a day, week or month, read from the database.
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
            let filter = std::env::var("RUST_LOG")
                .ok()
                .or(log_level)
                .unwrap_or_else(|| cfg.daemon.log_level.clone());
            tracing_subscriber::fmt()
                .with_env_filter(
                    EnvFilter::try_new(&filter).unwrap_or_else(|_| EnvFilter::new("info")),
                )
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .init();
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
            match runtime.block_on(run(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    eprintln!("ctid: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

async fn run(cfg: Config) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        signals.cancel();
    });
    ctid::app::run(cfg, shutdown, None).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
