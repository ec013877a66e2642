//! The text views of `ctid lists`, `ctid list show|contacts`, `ctid complaints` and `ctid dnc`:
//! tables and lines built from the API's JSON answers, with the shared formatter
//! (`crate::table`).

use serde_json::Value;

use super::super::format::{datetime, Align, Cell, Color, Table};
use super::super::views::text;

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

fn state_cell(state: &Value) -> Cell {
    let color = match state.as_str() {
        Some("active") => Some(Color::Green),
        Some("paused") => Some(Color::Yellow),
        Some("stopped") => Some(Color::Dim),
        _ => None,
    };
    Cell::colored(text(state), color)
}

/// Today's successful callbacks against the quota: `12/30` or `12` without a quota.
fn today(counters: &Value) -> String {
    match counters["quota_per_day"].as_u64() {
        Some(q) => format!("{}/{q}", n(&counters["quota_used_today"])),
        None => n(&counters["quota_used_today"]).to_string(),
    }
}

/// Answered / dialed attempts (skips are not dials), as a percentage.
fn connect_rate(attempts: &Value) -> String {
    let answered = n(&attempts["answered"]);
    let dialed: u64 = ["answered", "busy", "no_answer", "rejected", "failed"]
        .iter()
        .map(|k| n(&attempts[*k]))
        .sum();
    if dialed == 0 {
        "-".into()
    } else {
        super::super::format::pct(Some(answered as f64 / dialed as f64))
    }
}

/// GET /api/v1/lists → one row per list.
pub fn lists_table(v: &Value) -> Table {
    let mut t = Table::new(&[
        ("LIST", Align::Left),
        ("STATE", Align::Left),
        ("PURPOSE", Align::Left),
        ("MODE", Align::Left),
        ("TODAY", Align::Right),
        ("PENDING", Align::Right),
        ("IN PROGRESS", Align::Right),
        ("DONE", Align::Right),
        ("UNREACHABLE", Align::Right),
        ("SKIPPED", Align::Right),
        ("CONNECT", Align::Right),
        ("LIVE", Align::Right),
    ]);
    for l in v["lists"].as_array().into_iter().flatten() {
        let c = &l["counters"];
        let k = &c["contacts"];
        t.push(vec![
            text(&l["name"]).into(),
            state_cell(&l["state"]),
            text(&l["spec"]["purpose"]).into(),
            text(&l["spec"]["mode"]).into(),
            today(c).into(),
            n(&k["pending"]).to_string().into(),
            n(&k["in_progress"]).to_string().into(),
            n(&k["done"]).to_string().into(),
            n(&k["unreachable"]).to_string().into(),
            n(&k["skipped"]).to_string().into(),
            connect_rate(&c["attempts"]).into(),
            n(&c["live"]).to_string().into(),
        ]);
    }
    t
}

fn join(v: &Value) -> String {
    let items: Vec<String> = v.as_array().into_iter().flatten().map(text).collect();
    if items.is_empty() {
        "-".into()
    } else {
        items.join(", ")
    }
}

/// `agents 1001, 1002 and queue support`, `queue support`, `agents 1001`.
fn worked_by(spec: &Value) -> String {
    let agents = spec["agents"].as_array().is_some_and(|a| !a.is_empty());
    match (agents, spec["queue"].as_str()) {
        (true, Some(q)) => format!("agents {} and queue {q}", join(&spec["agents"])),
        (true, None) => format!("agents {}", join(&spec["agents"])),
        (false, Some(q)) => format!("queue {q}"),
        (false, None) => "nobody".into(),
    }
}

/// Week days as stored (`["mon", "tue", "wed", "sat"]`) written short: `mon-wed,sat`.
pub fn days(v: &Value) -> String {
    const WEEK: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    let names: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let idx: Vec<usize> = names
        .iter()
        .filter_map(|d| WEEK.iter().position(|w| w == d))
        .collect();
    if idx.len() != names.len() || idx.windows(2).any(|w| w[0] >= w[1]) {
        return join(v);
    }
    let mut parts = Vec::new();
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && idx[j + 1] == idx[j] + 1 {
            j += 1;
        }
        parts.push(match j - i {
            0 => WEEK[idx[i]].to_string(),
            1 => format!("{},{}", WEEK[idx[i]], WEEK[idx[j]]),
            _ => format!("{}-{}", WEEK[idx[i]], WEEK[idx[j]]),
        });
        i = j + 1;
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(",")
    }
}

/// A count table of one object's fields, in `keys` order (then any others).
fn counts_table(title: &str, obj: &Value, keys: &[&str]) -> Table {
    let mut t = Table::new(&[(title, Align::Left), ("COUNT", Align::Right)]);
    let mut seen = Vec::new();
    for k in keys {
        t.push(vec![(*k).into(), n(&obj[*k]).to_string().into()]);
        seen.push(k.to_string());
    }
    for (k, v) in obj.as_object().into_iter().flatten() {
        if !seen.contains(k) {
            t.push(vec![k.clone().into(), n(v).to_string().into()]);
        }
    }
    t
}

/// One list (GET /api/v1/lists/{list}, and the answer of create/pause/resume/stop).
pub fn list_detail(v: &Value, color: bool) -> String {
    let s = &v["spec"];
    let c = &v["counters"];
    let windows: Vec<String> = s["windows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|w| {
            format!(
                "{} {}-{}",
                days(&w["days"]),
                text(&w["start"]),
                text(&w["end"])
            )
        })
        .collect();
    let r = &s["retry"];
    let dedupe = s["dedupe_period_secs"].as_u64().unwrap_or(0);
    let mut lines = vec![
        format!("list {} ({})", text(&v["name"]), text(&v["state"])),
        format!(
            "  purpose {}, {} dialing, priority {}",
            text(&s["purpose"]),
            text(&s["mode"]),
            text(&s["priority"])
        ),
        format!("  worked by {}", worked_by(s)),
        format!(
            "  windows {} ({})",
            windows.join("; "),
            text(&s["time_zone"])
        ),
        format!("  holidays {}", join(&s["holidays"])),
        format!(
            "  quota {} a day (per agent {}), today {}",
            text(&s["quota_per_day"]),
            text(&s["agent_quota_per_day"]),
            today(c)
        ),
        format!(
            "  {} attempts; retry after busy {} s, no answer {} s, failed {} s",
            text(&s["max_attempts"]),
            text(&r["busy_secs"]),
            text(&r["no_answer_secs"]),
            text(&r["failed_secs"])
        ),
        if dedupe == 0 {
            "  no duplicate rule".to_string()
        } else if dedupe.is_multiple_of(86_400) {
            format!(
                "  a customer answered within {} days is not called again",
                dedupe / 86_400
            )
        } else {
            format!("  a customer answered within {dedupe} s is not called again")
        },
        format!(
            "  live attempts {}, connect rate {}",
            n(&c["live"]),
            connect_rate(&c["attempts"])
        ),
        String::new(),
    ];
    lines.push(
        counts_table(
            "CONTACTS",
            &c["contacts"],
            &["pending", "in_progress", "done", "unreachable", "skipped"],
        )
        .render(color),
    );
    lines.push(
        counts_table(
            "ATTEMPTS",
            &c["attempts"],
            &[
                "claimed",
                "ringing",
                "answered",
                "busy",
                "no_answer",
                "rejected",
                "failed",
                "skipped",
            ],
        )
        .render(color),
    );
    if c["skipped_by_reason"]
        .as_object()
        .is_some_and(|m| !m.is_empty())
    {
        lines.push(counts_table("SKIPPED BECAUSE", &c["skipped_by_reason"], &[]).render(color));
    }
    if c["agents_today"].as_object().is_some_and(|m| !m.is_empty()) {
        lines.push(counts_table("AGENT TODAY", &c["agents_today"], &[]).render(color));
    }
    lines.join("\n")
}

/// GET /api/v1/lists/{list}/contacts → one row per contact.
pub fn contacts_table(v: &Value, tz: &jiff::tz::TimeZone) -> Table {
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("CUSTOMER", Align::Left),
        ("NAME", Align::Left),
        ("PHONES", Align::Left),
        ("STATE", Align::Left),
        ("ATTEMPTS", Align::Right),
        ("LAST", Align::Left),
        ("NEXT", Align::Left),
        ("DUE", Align::Left),
        ("WHY DONE", Align::Left),
    ]);
    let when = |v: &Value| v.as_i64().map_or("-".to_string(), |ms| datetime(ms, tz));
    for c in v["contacts"].as_array().into_iter().flatten() {
        t.push(vec![
            text(&c["id"]).into(),
            text(&c["customer_id"]).into(),
            text(&c["name"]).into(),
            join(&c["phones"]).into(),
            text(&c["state"]).into(),
            text(&c["attempts"]).into(),
            text(&c["last_result"]).into(),
            when(&c["next_attempt_at_ms"]).into(),
            when(&c["due_at_ms"]).into(),
            text(&c["done_reason"]).into(),
        ]);
    }
    t
}

/// GET /api/v1/complaints → one row per open complaint.
pub fn complaints_table(v: &Value, tz: &jiff::tz::TimeZone) -> Table {
    let mut t = Table::new(&[
        ("CALL", Align::Right),
        ("NUMBER", Align::Left),
        ("NAME", Align::Left),
        ("COMPLAINED", Align::Left),
        ("REPLY BY", Align::Left),
        ("REPLIED", Align::Left),
        ("RESOLVE BY", Align::Left),
        ("STATE", Align::Left),
    ]);
    let when = |v: &Value| v.as_i64().map_or("-".to_string(), |ms| datetime(ms, tz));
    for c in v["complaints"].as_array().into_iter().flatten() {
        let late = |flag: &Value| (flag.as_bool() == Some(true)).then_some(Color::Red);
        t.push(vec![
            text(&c["call_id"]).into(),
            text(&c["number"]).into(),
            text(&c["name"]).into(),
            when(&c["complained_at_ms"]).into(),
            Cell::colored(when(&c["reply_due_at_ms"]), late(&c["past_reply"])),
            when(&c["replied_at_ms"]).into(),
            Cell::colored(when(&c["resolve_due_at_ms"]), late(&c["past_resolve"])),
            text(&c["state"]).into(),
        ]);
    }
    t
}

/// A do-not-call answer as one line.
pub fn dnc_line(v: &Value, tz: &jiff::tz::TimeZone) -> String {
    if v["on_list"].as_bool() == Some(true) {
        let since = v["added_at_ms"]
            .as_i64()
            .map_or("-".to_string(), |ms| datetime(ms, tz));
        format!(
            "{} is on the do-not-call list (since {since}, source {})",
            text(&v["number"]),
            text(&v["source"])
        )
    } else {
        format!("{} is not on the do-not-call list", text(&v["number"]))
    }
}
