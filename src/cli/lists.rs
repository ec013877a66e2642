//! `ctid lists`, `ctid list …`, `ctid dnc …` and `ctid complaints`: the callback lists, their
//! contacts and the do-not-call list, through `/api/v1/lists…`, `/api/v1/dnc…` and
//! `/api/v1/complaints…`.
//!
//! Imports print each bad row (`row N: reason`) and exit 1 when any row was refused (the good
//! ones are imported unless `--all-or-nothing`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use super::http::{encode, Client, ClientError, EXIT_OK, EXIT_REFUSED};
use super::views::text;
use super::{out, raw, ClientOpts};

mod views;
pub use views::{complaints_table, contacts_table, days, dnc_line, list_detail, lists_table};

#[derive(Subcommand, Debug)]
pub enum ListAction {
    /// One list: its settings and today's figures.
    Show { name: String },
    /// Create a list from a JSON spec (`--file`, `-` for stdin) and/or flags (flags win).
    Create(Box<CreateArgs>),
    /// Stop dialing the list for now (calls in progress go on).
    Pause { name: String },
    /// Dial the list again after a pause.
    Resume { name: String },
    /// End the list for good.
    Stop { name: String },
    /// Import contacts from a CSV file (`-` for stdin): a header row with `phone` (and phone2,
    /// …), optional `customer_id`, `name`, `due_at`, `not_before`; other columns are shown to
    /// the agent.
    Import {
        name: String,
        file: PathBuf,
        /// Import nothing when any row is bad.
        #[arg(long)]
        all_or_nothing: bool,
        /// Field separator: `,` (default), `;` or `tab`.
        #[arg(long, value_name = "SEP")]
        delimiter: Option<String>,
        /// Country calling code of national numbers (default: the server's).
        #[arg(long, value_name = "CC")]
        country_code: Option<String>,
    },
    /// The contacts of a list, in import order.
    Contacts {
        name: String,
        /// pending, in_progress, done, unreachable or skipped.
        #[arg(long)]
        state: Option<String>,
        /// At most this many (1–500; the server's default is 50).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=500))]
        limit: Option<u32>,
        /// Continue a previous listing.
        #[arg(long)]
        cursor: Option<String>,
    },
}

#[derive(Args, Debug, Default)]
pub struct CreateArgs {
    /// The list's name (or `name` in the file).
    pub name: Option<String>,
    /// A JSON list spec (docs/api.md); `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// follow_up, complaint, survey, queue_callback or custom.
    #[arg(long)]
    pub purpose: Option<String>,
    /// Agents who work the list.
    #[arg(long, value_delimiter = ',', value_name = "A1,A2")]
    pub agents: Option<Vec<String>>,
    /// A queue whose agents work the list.
    #[arg(long)]
    pub queue: Option<String>,
    /// preview or progressive.
    #[arg(long)]
    pub mode: Option<String>,
    /// IANA time zone (default: the server's `[reports] time_zone`).
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// A calling window, e.g. `mon-fri 09:00-17:00` or `sat,sun 10:00-14:00`; repeat for more.
    #[arg(long = "window", value_name = "DAYS HH:MM-HH:MM")]
    pub windows: Vec<String>,
    /// A date without dialing (YYYY-MM-DD); repeat for more.
    #[arg(long = "holiday", value_name = "DATE")]
    pub holidays: Vec<String>,
    /// Successful callbacks per day for the list.
    #[arg(long, value_name = "N")]
    pub quota: Option<u32>,
    /// Successful callbacks per agent per day.
    #[arg(long, value_name = "N")]
    pub agent_quota: Option<u32>,
    /// Dial attempts per contact.
    #[arg(long, value_name = "N")]
    pub max_attempts: Option<u32>,
    /// Seconds before retrying after busy (and rejected).
    #[arg(long, value_name = "SECS")]
    pub retry_busy: Option<u64>,
    /// Seconds before retrying after no answer.
    #[arg(long, value_name = "SECS")]
    pub retry_no_answer: Option<u64>,
    /// Seconds before retrying after a failed call.
    #[arg(long, value_name = "SECS")]
    pub retry_failed: Option<u64>,
    /// A customer answered within this many days is not called again (default: the server's).
    #[arg(long, value_name = "DAYS")]
    pub dedupe_days: Option<u64>,
    /// Higher first among contacts due at the same time.
    #[arg(long)]
    pub priority: Option<i32>,
}

#[derive(Subcommand, Debug)]
pub enum DncAction {
    /// Put a number on the do-not-call list.
    Add {
        number: String,
        /// Why (recorded with the number).
        #[arg(long)]
        source: Option<String>,
    },
    /// Take a number off the do-not-call list.
    Remove { number: String },
    /// Is a number on the do-not-call list?
    Check { number: String },
    /// Import numbers from a CSV file with a `phone` or `number` column (`-` for stdin).
    Import {
        file: PathBuf,
        /// Import nothing when any row is bad.
        #[arg(long)]
        all_or_nothing: bool,
        /// Recorded with each number (default `import`).
        #[arg(long)]
        source: Option<String>,
        /// Field separator: `,` (default), `;` or `tab`.
        #[arg(long, value_name = "SEP")]
        delimiter: Option<String>,
    },
}

fn read_input(path: &PathBuf) -> Result<Vec<u8>, ClientError> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| ClientError::Usage(format!("reading stdin: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| ClientError::Usage(format!("{}: {e}", path.display())))
}

fn query(pairs: &[(&str, Option<String>)]) -> String {
    let q: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", encode(v))))
        .collect();
    if q.is_empty() {
        String::new()
    } else {
        format!("?{}", q.join("&"))
    }
}

/// `ctid lists`.
pub fn lists(opts: &ClientOpts, color: bool) -> Result<u8, ClientError> {
    let (body, v) = opts.client()?.get_json("/api/v1/lists")?;
    if opts.json {
        raw(&body);
    } else if v["lists"].as_array().is_none_or(|l| l.is_empty()) {
        out("no callback lists");
    } else {
        out(&lists_table(&v).render(color));
    }
    Ok(EXIT_OK)
}

/// `ctid list …`.
pub fn list(action: ListAction, opts: &ClientOpts, color: bool) -> Result<u8, ClientError> {
    let client = opts.client()?;
    let path = |name: &str, rest: &str| format!("/api/v1/lists/{}{rest}", encode(name));
    let (body, v) = match action {
        ListAction::Show { name } => client.get_json(&path(&name, ""))?,
        ListAction::Create(args) => {
            let spec = spec_from_args(&args)?;
            client.post_json("/api/v1/lists", &spec)?
        }
        ListAction::Pause { name } => client.post_json(&path(&name, "/pause"), &json!({}))?,
        ListAction::Resume { name } => client.post_json(&path(&name, "/resume"), &json!({}))?,
        ListAction::Stop { name } => client.post_json(&path(&name, "/stop"), &json!({}))?,
        ListAction::Import {
            name,
            file,
            all_or_nothing,
            delimiter,
            country_code,
        } => {
            let csv = read_input(&file)?;
            let q = query(&[
                ("all_or_nothing", all_or_nothing.then(|| "true".to_string())),
                ("delimiter", delimiter),
                ("country_code", country_code),
            ]);
            let target = format!("list {name:?}");
            return import(
                &client,
                opts,
                &path(&name, &format!("/contacts{q}")),
                &csv,
                &target,
            );
        }
        ListAction::Contacts {
            name,
            state,
            limit,
            cursor,
        } => {
            let q = query(&[
                ("state", state),
                ("limit", limit.map(|l| l.to_string())),
                ("cursor", cursor),
            ]);
            let (body, v) = client.get_json(&path(&name, &format!("/contacts{q}")))?;
            if opts.json {
                raw(&body);
                return Ok(EXIT_OK);
            }
            if v["contacts"].as_array().is_none_or(|c| c.is_empty()) {
                out("no contacts");
            } else {
                out(&contacts_table(&v, &jiff::tz::TimeZone::system()).render(color));
            }
            if let Some(c) = v["next_cursor"].as_str() {
                out(&format!("more contacts: repeat with --cursor {c}"));
            }
            return Ok(EXIT_OK);
        }
    };
    if opts.json {
        raw(&body);
    } else {
        out(&list_detail(&v, color));
    }
    Ok(EXIT_OK)
}

/// `ctid dnc …`.
pub fn dnc(action: DncAction, opts: &ClientOpts) -> Result<u8, ClientError> {
    let client = opts.client()?;
    let tz = jiff::tz::TimeZone::system();
    let (body, v) = match action {
        DncAction::Add { number, source } => {
            let mut b = json!({ "number": number });
            if let Some(s) = source {
                b["source"] = json!(s);
            }
            client.post_json("/api/v1/dnc", &b)?
        }
        DncAction::Remove { number } => {
            let (body, v) = client.delete_json(&format!("/api/v1/dnc/{}", encode(&number)))?;
            if opts.json {
                raw(&body);
            } else if v["removed"].as_bool() == Some(true) {
                out(&format!(
                    "{} removed from the do-not-call list",
                    text(&v["number"])
                ));
            } else {
                out(&format!(
                    "{} was not on the do-not-call list",
                    text(&v["number"])
                ));
            }
            return Ok(EXIT_OK);
        }
        DncAction::Check { number } => {
            client.get_json(&format!("/api/v1/dnc/{}", encode(&number)))?
        }
        DncAction::Import {
            file,
            all_or_nothing,
            source,
            delimiter,
        } => {
            let csv = read_input(&file)?;
            let q = query(&[
                ("all_or_nothing", all_or_nothing.then(|| "true".to_string())),
                ("source", source),
                ("delimiter", delimiter),
            ]);
            let target = "the do-not-call list".to_string();
            return import(
                &client,
                opts,
                &format!("/api/v1/dnc/import{q}"),
                &csv,
                &target,
            );
        }
    };
    if opts.json {
        raw(&body);
    } else {
        out(&dnc_line(&v, &tz));
    }
    Ok(EXIT_OK)
}

/// `ctid complaints`.
pub fn complaints(opts: &ClientOpts, color: bool) -> Result<u8, ClientError> {
    let (body, v) = opts.client()?.get_json("/api/v1/complaints")?;
    if opts.json {
        raw(&body);
        return Ok(EXIT_OK);
    }
    out(&format!(
        "open complaints: {}, past the {} h reply time: {}, past the {} h resolution time: {}",
        text(&v["open"]),
        text(&v["reply_within_hours"]),
        text(&v["past_reply"]),
        text(&v["resolve_within_hours"]),
        text(&v["past_resolve"]),
    ));
    if v["complaints"].as_array().is_some_and(|c| !c.is_empty()) {
        out(&complaints_table(&v, &jiff::tz::TimeZone::system()).render(color));
    }
    Ok(EXIT_OK)
}

/// Upload `csv` to `path` and print the import report (or the bad rows that stopped it).
fn import(
    client: &Client,
    opts: &ClientOpts,
    path: &str,
    csv: &[u8],
    target: &str,
) -> Result<u8, ClientError> {
    let resp = client.upload("POST", path, "text/csv", csv)?;
    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
    let bad_rows = resp.status == 400 && v["error"]["code"] == "bad_rows";
    if !(200..300).contains(&resp.status) && !bad_rows {
        return Err(client.refusal(resp));
    }
    if opts.json {
        raw(&resp.body);
    } else {
        out(&import_report(&v, target));
    }
    let any_bad = bad_rows || v["errors"].as_array().is_some_and(|e| !e.is_empty());
    Ok(if any_bad { EXIT_REFUSED } else { EXIT_OK })
}

/// The text of an import answer (a report, or a `bad_rows` error).
pub fn import_report(v: &Value, target: &str) -> String {
    let (head, errors) = if v["error"].is_object() {
        (
            format!(
                "nothing imported into {target}: {}",
                text(&v["error"]["message"])
            ),
            &v["error"]["errors"],
        )
    } else {
        let bad = v["errors"].as_array().map_or(0, Vec::len);
        let mut h = format!(
            "imported {} of {} rows into {target}",
            text(&v["imported"]),
            text(&v["rows"])
        );
        if bad > 0 {
            h.push_str(&format!(
                "; {bad} bad {}:",
                if bad == 1 { "row" } else { "rows" }
            ));
        }
        (h, &v["errors"])
    };
    let mut s = head;
    for e in errors.as_array().into_iter().flatten() {
        s.push_str(&format!("\n  {}", text(e)));
    }
    s
}

/// A JSON list spec from `--file` and the flags (flags win).
pub fn spec_from_args(a: &CreateArgs) -> Result<Value, ClientError> {
    let mut spec: Map<String, Value> = match &a.file {
        Some(f) => {
            let bytes = read_input(f)?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(ClientError::Usage(format!(
                        "{}: expected a JSON object (a list spec)",
                        f.display()
                    )))
                }
                Err(e) => {
                    return Err(ClientError::Usage(format!(
                        "{}: not JSON: {e}",
                        f.display()
                    )))
                }
            }
        }
        None => Map::new(),
    };
    let mut set = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            spec.insert(k.to_string(), v);
        }
    };
    set("name", a.name.clone().map(Value::from));
    set("purpose", a.purpose.clone().map(Value::from));
    set("agents", a.agents.clone().map(Value::from));
    set("queue", a.queue.clone().map(Value::from));
    set("mode", a.mode.clone().map(Value::from));
    set("time_zone", a.time_zone.clone().map(Value::from));
    set("quota_per_day", a.quota.map(Value::from));
    set("agent_quota_per_day", a.agent_quota.map(Value::from));
    set("max_attempts", a.max_attempts.map(Value::from));
    set(
        "dedupe_period_secs",
        a.dedupe_days.map(|d| Value::from(d * 86_400)),
    );
    set("priority", a.priority.map(Value::from));
    if !a.windows.is_empty() {
        let w = a
            .windows
            .iter()
            .map(|w| parse_window(w))
            .collect::<Result<Vec<_>, _>>()?;
        set("windows", Some(Value::from(w)));
    }
    if !a.holidays.is_empty() {
        set("holidays", Some(Value::from(a.holidays.clone())));
    }
    if a.retry_busy.is_some() || a.retry_no_answer.is_some() || a.retry_failed.is_some() {
        // The server needs all three: unset ones keep the defaults of docs/api.md.
        let mut r = spec.get("retry").cloned().unwrap_or_else(
            || json!({"busy_secs": 600, "no_answer_secs": 3600, "failed_secs": 900}),
        );
        for (k, v) in [
            ("busy_secs", a.retry_busy),
            ("no_answer_secs", a.retry_no_answer),
            ("failed_secs", a.retry_failed),
        ] {
            if let Some(v) = v {
                r[k] = json!(v);
            }
        }
        spec.insert("retry".into(), r);
    }
    if !spec.contains_key("name") {
        return Err(ClientError::Usage(
            "give the list's name (ctid list create NAME …) or a --file with one".into(),
        ));
    }
    Ok(Value::Object(spec))
}

/// `mon-fri 09:00-17:00` → `{"days": ["mon-fri"], "start": "09:00", "end": "17:00"}`.
pub fn parse_window(s: &str) -> Result<Value, ClientError> {
    let bad = || {
        ClientError::Usage(format!(
            "--window {s:?}: expected DAYS HH:MM-HH:MM, e.g. \"mon-fri 09:00-17:00\""
        ))
    };
    let (days, hours) = s.trim().rsplit_once(' ').ok_or_else(bad)?;
    let (start, end) = hours.split_once('-').ok_or_else(bad)?;
    let days: Vec<&str> = days
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .collect();
    if days.is_empty() {
        return Err(bad());
    }
    Ok(json!({"days": days, "start": start.trim(), "end": end.trim()}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_specs_from_flags() {
        assert_eq!(
            parse_window("mon-fri 09:00-17:00").unwrap(),
            json!({"days": ["mon-fri"], "start": "09:00", "end": "17:00"})
        );
        assert_eq!(
            parse_window("sat,sun 10:00-14:00").unwrap()["days"],
            json!(["sat", "sun"])
        );
        assert!(parse_window("09:00-17:00").is_err());
        assert!(parse_window("mon 0900").is_err());
        let a = CreateArgs {
            name: Some("fu".into()),
            purpose: Some("follow_up".into()),
            agents: Some(vec!["1001".into()]),
            mode: Some("preview".into()),
            windows: vec!["mon-fri 09:00-17:00".into()],
            quota: Some(30),
            retry_busy: Some(120),
            dedupe_days: Some(7),
            ..CreateArgs::default()
        };
        let s = spec_from_args(&a).unwrap();
        assert_eq!(s["quota_per_day"], 30);
        assert_eq!(s["dedupe_period_secs"], 7 * 86_400);
        assert_eq!(
            s["retry"],
            json!({"busy_secs": 120, "no_answer_secs": 3600, "failed_secs": 900})
        );
        assert!(s.get("time_zone").is_none(), "the server's default");
        assert!(spec_from_args(&CreateArgs::default()).is_err());
    }

    #[test]
    fn week_days_are_written_short() {
        assert_eq!(days(&json!(["mon", "tue", "wed", "thu", "fri"])), "mon-fri");
        assert_eq!(days(&json!(["mon", "tue", "wed", "sat"])), "mon-wed,sat");
        assert_eq!(days(&json!(["sat", "sun"])), "sat,sun");
        assert_eq!(days(&json!(["mon", "wed", "fri"])), "mon,wed,fri");
        assert_eq!(
            days(&json!(["mon", "tue", "wed", "thu", "fri", "sat", "sun"])),
            "mon-sun"
        );
        assert_eq!(days(&json!(["funday"])), "funday");
    }

    #[test]
    fn import_reports() {
        let ok = json!({"rows": 3, "imported": 2, "errors": ["row 3: no phone number"]});
        assert_eq!(
            import_report(&ok, "list \"fu\""),
            "imported 2 of 3 rows into list \"fu\"; 1 bad row:\n  row 3: no phone number"
        );
        let refused = json!({"error": {"code": "bad_rows", "message": "1 of 3 rows are bad; nothing imported (all_or_nothing)", "errors": ["row 3: no phone number"]}});
        assert_eq!(
            import_report(&refused, "list \"fu\""),
            "nothing imported into list \"fu\": 1 of 3 rows are bad; nothing imported (all_or_nothing)\n  row 3: no phone number"
        );
    }

    #[test]
    fn the_lists_table() {
        let v = json!({"lists": [{"name": "fu", "state": "active",
            "spec": {"purpose": "follow_up", "mode": "preview"},
            "counters": {"contacts": {"pending": 93, "in_progress": 1, "done": 4, "unreachable": 1, "skipped": 1},
                "attempts": {"answered": 4, "busy": 2, "no_answer": 2, "skipped": 3},
                "quota_per_day": 30, "quota_used_today": 4, "live": 1}}]});
        let text = lists_table(&v).render(false);
        let row = text.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "fu",
                "active",
                "follow_up",
                "preview",
                "4/30",
                "93",
                "1",
                "4",
                "1",
                "1",
                "50%",
                "1"
            ]
        );
    }
}
