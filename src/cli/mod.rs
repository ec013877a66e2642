//! The client side of `ctid`: commands that talk to a running daemon over its HTTP API
//! (`docs/api.md`): `status`, `agents`, `agent …`, `calls`, `top`, and the callback lists
//! (`lists`, `list …`, `dnc …`, `complaints`: [`lists`]).
//!
//! Exit codes: 0 ok, 1 the server refused the request or answered with an error, 64 usage,
//! 69 the daemon cannot be reached.

pub mod check;
/// The text tables and figure formatting, shared with the reports (`crate::table`).
pub use crate::table as format;
pub mod http;
pub mod lists;
pub mod top;
pub mod views;

use clap::{Args, Subcommand};
use http::{encode, Client, ClientError, EXIT_OK, EXIT_USAGE};
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};

/// The default admin API address.
pub const DEFAULT_API: &str = "http://127.0.0.1:9060";

/// Options shared by the client commands.
#[derive(Args, Debug, Clone, Default)]
pub struct ClientOpts {
    /// The daemon's admin API [env: CTID_API] [default: http://127.0.0.1:9060]
    #[arg(long, global = true, value_name = "URL")]
    pub api: Option<String>,
    /// Bearer token from the daemon's [[api.tokens]] [env: CTID_TOKEN]
    #[arg(long, global = true, value_name = "TOKEN")]
    pub token: Option<String>,
    /// Print the server's JSON as is (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
}

impl ClientOpts {
    /// `--api`, else `CTID_API`, else the default.
    pub fn api(&self) -> String {
        self.api
            .clone()
            .or_else(|| std::env::var("CTID_API").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| DEFAULT_API.to_string())
    }

    /// `--token`, else `CTID_TOKEN`.
    pub fn token(&self) -> Option<String> {
        self.token
            .clone()
            .or_else(|| std::env::var("CTID_TOKEN").ok())
            .filter(|s| !s.is_empty())
    }

    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(&self.api(), self.token())
    }
}

/// The client subcommands (flattened into the `ctid` command).
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Queues at a glance: waiting callers, today's service level and answer rate, agents free.
    Status {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// The agent board: state, reason, time in state, current call.
    Agents {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Act on one agent: login, logout, pause, unpause, wrapup-end.
    Agent {
        #[command(subcommand)]
        action: AgentAction,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Call records, newest first (`ctid calls show ID` for one call and its timeline).
    Calls(CallsArgs),
    /// Callback lists: state, today against the quota, contacts by state, connect rate.
    Lists {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// One callback list: show, create, pause, resume, stop, import contacts, contacts.
    List {
        #[command(subcommand)]
        action: lists::ListAction,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// The do-not-call list: add, remove, check a number; import a file of numbers.
    Dnc {
        #[command(subcommand)]
        action: lists::DncAction,
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// Open complaints and their reply and resolution deadlines.
    Complaints {
        #[command(flatten)]
        opts: ClientOpts,
    },
    /// The morning check: daemon, trunk, agents, data and recordings directories, prompts,
    /// yesterday's report, clock — one verdict a line, exit 1 if any fails.
    Check(check::CheckArgs),
    /// A live wallboard: the status table and the agent board, refreshed until Ctrl-C.
    Top {
        /// Seconds between refreshes.
        #[arg(long, value_name = "SECS", default_value_t = 2,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        #[command(flatten)]
        opts: ClientOpts,
    },
}

#[derive(Subcommand, Debug)]
pub enum AgentAction {
    /// Log the agent in (optionally into some queues only).
    Login {
        id: String,
        /// Comma-separated queues.
        #[arg(long, value_delimiter = ',', value_name = "Q1,Q2")]
        queues: Option<Vec<String>>,
    },
    /// Log the agent out.
    Logout { id: String },
    /// Pause the agent (after the current call if on one).
    Pause {
        id: String,
        /// One of the configured pause reasons.
        #[arg(long)]
        reason: Option<String>,
    },
    /// End the agent's pause.
    Unpause { id: String },
    /// End the agent's wrap-up now.
    WrapupEnd { id: String },
    /// Show the contact offered to the agent in preview mode (a preview callback list).
    Preview { id: String },
    /// Accept the agent's preview: ctid rings the agent's phone, then dials the customer.
    Accept { id: String },
    /// Skip the agent's preview: the contact returns later, the agent gets the next one.
    Skip { id: String },
}

#[derive(Args, Debug)]
pub struct CallsArgs {
    #[command(subcommand)]
    pub show: Option<CallsCmd>,
    /// Calls from this time on (unix ms).
    #[arg(long, value_name = "MS", conflicts_with = "today")]
    pub from: Option<i64>,
    /// Calls before this time (unix ms).
    #[arg(long, value_name = "MS")]
    pub to: Option<i64>,
    /// Calls since local midnight.
    #[arg(long)]
    pub today: bool,
    /// Only calls of this queue.
    #[arg(long)]
    pub queue: Option<String>,
    /// Only calls handled by this agent.
    #[arg(long)]
    pub agent: Option<String>,
    /// answered, abandoned, timeout, overflow, rejected, …
    #[arg(long)]
    pub outcome: Option<String>,
    /// Caller number.
    #[arg(long, value_name = "NUMBER")]
    pub caller: Option<String>,
    /// At most this many calls (1–500; the server's default is 50).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
    pub limit: Option<u32>,
    /// Continue a previous listing (its `next_cursor`).
    #[arg(long)]
    pub cursor: Option<String>,
    #[command(flatten)]
    pub opts: ClientOpts,
}

#[derive(Subcommand, Debug)]
pub enum CallsCmd {
    /// One call with its timeline.
    Show { id: String },
}

/// Whether to color human output: stdout is a terminal and NO_COLOR is unset.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The local clock in unix ms.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Run a client command; returns the process exit code.
pub fn run(cmd: Command) -> u8 {
    let result = match cmd {
        Command::Top { interval, opts } => top::run(&opts, interval),
        Command::Check(args) => return check::run(&args),
        Command::Lists { opts } => lists::lists(&opts, use_color()),
        Command::List { action, opts } => lists::list(action, &opts, use_color()),
        Command::Dnc { action, opts } => lists::dnc(action, &opts),
        Command::Complaints { opts } => lists::complaints(&opts, use_color()),
        other => run_once(other).map(|()| EXIT_OK),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = std::io::stdout().flush();
            eprintln!("ctid: {e}");
            e.exit_code()
        }
    }
}

fn out(s: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(s.as_bytes());
    if !s.ends_with('\n') {
        let _ = stdout.write_all(b"\n");
    }
    let _ = stdout.flush();
}

fn raw(body: &[u8]) {
    out(&String::from_utf8_lossy(body));
}

fn run_once(cmd: Command) -> Result<(), ClientError> {
    let color = use_color();
    match cmd {
        Command::Top { .. }
        | Command::Check(_)
        | Command::Lists { .. }
        | Command::List { .. }
        | Command::Dnc { .. }
        | Command::Complaints { .. } => Ok(()),
        Command::Status { opts } => {
            let (body, v) = opts.client()?.get_json("/api/v1/stats")?;
            if opts.json {
                raw(&body);
            } else if v["queues"].as_array().is_none_or(|q| q.is_empty()) {
                out("no queues");
            } else {
                out(&format!(
                    "{}\n\n{}",
                    views::stats_header(&v),
                    views::status_table(&v).render(color)
                ));
            }
            Ok(())
        }
        Command::Agents { opts } => {
            let (body, v) = opts.client()?.get_json("/api/v1/agents")?;
            if opts.json {
                raw(&body);
            } else if v.as_array().is_none_or(|a| a.is_empty()) {
                out("no agents");
            } else {
                out(&views::agents_table(&v, now_ms()).render(color));
            }
            Ok(())
        }
        Command::Agent { action, opts } => {
            let accept = matches!(action, AgentAction::Accept { .. });
            let (id, verb, body) = match action {
                AgentAction::Preview { id } => {
                    let client = opts.client()?;
                    let path = format!("/api/v1/agents/{}/preview", encode(&id));
                    let (raw_body, v) = client.get_json(&path)?;
                    if opts.json {
                        raw(&raw_body);
                    } else {
                        out(&views::preview(&v, &jiff::tz::TimeZone::system()));
                    }
                    return Ok(());
                }
                AgentAction::Accept { id } | AgentAction::Skip { id } => {
                    let client = opts.client()?;
                    let verb = if accept { "accept" } else { "skip" };
                    let path = format!("/api/v1/agents/{}/preview/{verb}", encode(&id));
                    let (raw_body, v) = client.post_json(&path, &json!({}))?;
                    if opts.json {
                        raw(&raw_body);
                    } else if accept {
                        out(&format!(
                            "agent {id}: calling (call {}); the customer is dialed once the agent answers",
                            views::text(&v["call"])
                        ));
                    } else {
                        out(&format!("agent {id}: contact skipped; it returns later"));
                    }
                    return Ok(());
                }
                AgentAction::Login { id, queues } => (
                    id,
                    "login",
                    match queues {
                        Some(q) => json!({ "queues": q }),
                        None => json!({}),
                    },
                ),
                AgentAction::Logout { id } => (id, "logout", json!({})),
                AgentAction::Pause { id, reason } => (
                    id,
                    "pause",
                    match reason {
                        Some(r) => json!({ "reason": r }),
                        None => json!({}),
                    },
                ),
                AgentAction::Unpause { id } => (id, "unpause", json!({})),
                AgentAction::WrapupEnd { id } => (id, "wrapup/end", json!({})),
            };
            let client = opts.client()?;
            let path = format!("/api/v1/agents/{}/{verb}", encode(&id));
            let (raw_body, v) = client.post_json(&path, &body)?;
            if opts.json {
                raw(&raw_body);
            } else {
                out(&views::agent_table(&v, now_ms()).render(color));
            }
            Ok(())
        }
        Command::Calls(args) => calls(args, color),
    }
}

fn calls(args: CallsArgs, color: bool) -> Result<(), ClientError> {
    let client = args.opts.client()?;
    let tz = jiff::tz::TimeZone::system();
    if let Some(CallsCmd::Show { id }) = &args.show {
        let (body, v) = client.get_json(&format!("/api/v1/calls/{}", encode(id)))?;
        if args.opts.json {
            raw(&body);
        } else {
            out(&views::call_detail(&v, &tz, color));
        }
        return Ok(());
    }
    let from = if args.today {
        Some(start_of_today_ms().map_err(ClientError::Usage)?)
    } else {
        args.from
    };
    let query = calls_query(&args, from);
    let (body, v) = client.get_json(&format!("/api/v1/calls{query}"))?;
    if args.opts.json {
        raw(&body);
        return Ok(());
    }
    if v["calls"].as_array().is_none_or(|c| c.is_empty()) {
        out("no calls");
    } else {
        out(&views::calls_table(&v, &tz).render(color));
    }
    match &v["next_cursor"] {
        Value::Null => {}
        c => out(&format!(
            "more calls: repeat with --cursor {}",
            views::text(c)
        )),
    }
    Ok(())
}

/// The query string for GET /api/v1/calls (empty or starting with `?`).
pub fn calls_query(args: &CallsArgs, from: Option<i64>) -> String {
    let mut q: Vec<String> = Vec::new();
    let mut add = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            q.push(format!("{k}={}", encode(&v)));
        }
    };
    add("from", from.map(|f| f.to_string()));
    add("to", args.to.map(|t| t.to_string()));
    add("queue", args.queue.clone());
    add("agent", args.agent.clone());
    add("outcome", args.outcome.clone());
    add("caller", args.caller.clone());
    add("limit", args.limit.map(|l| l.to_string()));
    add("cursor", args.cursor.clone());
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

fn start_of_today_ms() -> Result<i64, String> {
    jiff::Zoned::now()
        .start_of_day()
        .map(|z| z.timestamp().as_millisecond())
        .map_err(|e| format!("cannot compute local midnight: {e}"))
}

/// Exit code for usage errors (re-exported for `main`).
pub const EX_USAGE: u8 = EXIT_USAGE;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: Command,
    }

    fn parse(args: &[&str]) -> Result<Command, clap::Error> {
        T::try_parse_from(std::iter::once("ctid").chain(args.iter().copied())).map(|t| t.cmd)
    }

    #[test]
    fn query_string() {
        let Command::Calls(args) = parse(&[
            "calls",
            "--queue",
            "sales & co",
            "--limit",
            "10",
            "--caller",
            "+49",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            calls_query(&args, Some(5)),
            "?from=5&queue=sales%20%26%20co&caller=%2B49&limit=10"
        );
        let Command::Calls(args) = parse(&["calls"]).unwrap() else {
            panic!()
        };
        assert_eq!(calls_query(&args, None), "");
    }

    #[test]
    fn parsing() {
        assert!(parse(&["calls", "--limit", "501"]).is_err());
        assert!(parse(&["calls", "--from", "1", "--today"]).is_err());
        assert!(parse(&["top", "--interval", "0"]).is_err());
        let Command::Calls(a) = parse(&["calls", "show", "17", "--json"]).unwrap() else {
            panic!()
        };
        assert!(a.opts.json);
        assert!(matches!(a.show, Some(CallsCmd::Show { ref id }) if id == "17"));
        let Command::Agent { action, opts } =
            parse(&["agent", "login", "1001", "--queues", "a,b", "--token", "t"]).unwrap()
        else {
            panic!()
        };
        assert_eq!(opts.token.as_deref(), Some("t"));
        let AgentAction::Login { id, queues } = action else {
            panic!()
        };
        assert_eq!(id, "1001");
        assert_eq!(queues, Some(vec!["a".to_string(), "b".to_string()]));
        assert!(parse(&["agent", "logout", "1", "--reason", "x"]).is_err());
    }

    #[test]
    fn list_and_dnc_commands_parse() {
        let Command::List { action, opts } = parse(&[
            "list",
            "import",
            "follow-up",
            "c.csv",
            "--all-or-nothing",
            "--json",
        ])
        .unwrap() else {
            panic!()
        };
        assert!(opts.json);
        assert!(matches!(
            action,
            lists::ListAction::Import { ref name, all_or_nothing: true, .. } if name == "follow-up"
        ));
        let Command::List {
            action: lists::ListAction::Create(c),
            ..
        } = parse(&[
            "list",
            "create",
            "fu",
            "--agents",
            "1001,1002",
            "--window",
            "mon-fri 09:00-17:00",
            "--window",
            "sat 10:00-12:00",
            "--quota",
            "30",
        ])
        .unwrap()
        else {
            panic!()
        };
        assert_eq!(c.windows.len(), 2);
        assert_eq!(c.agents.as_deref().map(<[String]>::len), Some(2));
        for args in [
            &["lists"][..],
            &["list", "show", "fu"],
            &["list", "pause", "fu"],
            &["list", "resume", "fu"],
            &["list", "stop", "fu"],
            &["list", "create", "--file", "spec.json"],
            &[
                "list", "contacts", "fu", "--state", "pending", "--limit", "10",
            ],
            &["dnc", "add", "+442079460958", "--source", "asked"],
            &["dnc", "remove", "+442079460958"],
            &["dnc", "check", "02079460958"],
            &["dnc", "import", "dnc.csv", "--all-or-nothing"],
            &["complaints"],
        ] {
            assert!(parse(args).is_ok(), "{args:?}");
        }
        assert!(
            parse(&["list", "import", "fu"]).is_err(),
            "the file is required"
        );
        assert!(parse(&["dnc", "add"]).is_err());
        assert!(parse(&["list", "contacts", "fu", "--limit", "0"]).is_err());
    }
}
