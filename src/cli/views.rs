//! Pure rendering of the API's JSON answers into tables and text. Every field may be missing
//! or null: it then shows as `-`.

use super::format::{
    clock_ms, datetime, dur_ms, dur_secs, met, pct_mark, Align, Cell, Color, Table,
};
use serde_json::Value;

/// A number field (JSON number), if present.
fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// A field as display text: strings as is, numbers and booleans printed, null/missing `-`.
pub fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.into(),
        other => other.to_string(),
    }
}

/// A count field (`-` when missing).
fn count(v: &Value) -> String {
    match v.as_u64() {
        Some(n) => n.to_string(),
        None => text(v),
    }
}

/// The one-line summary above the status table.
pub fn stats_header(stats: &Value) -> String {
    let day = text(&stats["day"]);
    let mut s = format!("day {day}");
    if let Some(m) = stats["interval_minutes"].as_u64() {
        s.push_str(&format!(", {m}-minute intervals"));
    }
    s
}

/// GET /api/v1/stats → one row per queue.
pub fn status_table(stats: &Value) -> Table {
    let mut t = Table::new(&[
        ("QUEUE", Align::Left),
        ("WAITING", Align::Right),
        ("LONGEST", Align::Right),
        ("SL TODAY", Align::Left),
        ("ANSWER RATE", Align::Left),
        ("OFFERED", Align::Right),
        ("ANSWERED", Align::Right),
        ("ABANDONED", Align::Right),
        ("ASA", Align::Right),
        ("AVAILABLE", Align::Right),
    ]);
    let empty = Vec::new();
    for q in stats["queues"].as_array().unwrap_or(&empty) {
        let today = &q["today"];
        let now = &q["now"];
        let sl = num(&today["sl_offered"]);
        let ar = num(&today["answer_rate"]);
        let sl_met = met(sl, num(&q["sl_goal"]), today["sl_met"].as_bool());
        let ar_met = met(
            ar,
            num(&q["answer_rate_goal"]),
            today["answer_rate_met"].as_bool(),
        );
        let waiting = now["waiting"].as_u64();
        let available = if now["agents"].is_object() {
            Some(now["agents"]["available"].as_u64().unwrap_or(0))
        } else {
            None
        };
        t.push(vec![
            Cell::plain(text(&q["queue"])),
            Cell::colored(
                count(&now["waiting"]),
                waiting.filter(|w| *w > 0).map(|_| Color::Yellow),
            ),
            Cell::plain(dur_secs(num(&now["longest_wait_secs"]))),
            pct_mark(sl, sl_met),
            pct_mark(ar, ar_met),
            Cell::plain(count(&today["offered"])),
            Cell::plain(count(&today["answered"])),
            Cell::plain(count(&today["abandoned"])),
            Cell::plain(dur_secs(num(&today["asa_secs"]))),
            Cell::colored(
                available.map_or_else(|| "-".into(), |a| a.to_string()),
                match (available, waiting) {
                    (Some(0), Some(w)) if w > 0 => Some(Color::Red),
                    _ => None,
                },
            ),
        ]);
    }
    t
}

fn state_color(state: &str) -> Option<Color> {
    match state {
        "available" => Some(Color::Green),
        "ringing" | "on_call" => Some(Color::Cyan),
        "wrapup" | "paused" => Some(Color::Yellow),
        "logged_out" => Some(Color::Dim),
        _ => None,
    }
}

/// The REASON column: the pause reason, and a pause asked during a call.
fn agent_reason(a: &Value) -> String {
    let reason = a["reason"].as_str().filter(|s| !s.is_empty());
    let pending = a["pending_pause"].as_str().filter(|s| !s.is_empty());
    match (reason, pending) {
        (Some(r), Some(p)) => format!("{r} (then {p})"),
        (Some(r), None) => r.to_string(),
        (None, Some(p)) => format!("pause pending: {p}"),
        (None, None) => "-".into(),
    }
}

fn agent_row(a: &Value, now_ms: i64) -> Vec<Cell> {
    let state = text(&a["state"]);
    let since = num(&a["since_ms"])
        .filter(|ms| *ms > 0.0)
        .map(|ms| (now_ms as f64 - ms) / 1000.0);
    let registered = match a["registered"].as_bool() {
        Some(true) => Cell::plain("yes"),
        Some(false) => Cell::colored("no", Some(Color::Red)),
        None => Cell::plain("-"),
    };
    vec![
        Cell::plain(text(&a["id"])),
        Cell::plain(text(&a["name"])),
        Cell::colored(state.clone(), state_color(&state)),
        Cell::plain(agent_reason(a)),
        Cell::plain(dur_secs(since)),
        Cell::plain(text(&a["call"])),
        Cell::plain(count(&a["calls_answered"])),
        registered,
    ]
}

fn agents_columns() -> Table {
    Table::new(&[
        ("ID", Align::Left),
        ("NAME", Align::Left),
        ("STATE", Align::Left),
        ("REASON", Align::Left),
        ("SINCE", Align::Right),
        ("CALL", Align::Right),
        ("ANSWERED", Align::Right),
        ("REGISTERED", Align::Left),
    ])
}

/// GET /api/v1/agents (`[AgentView]`) → the agent board; `now_ms` is the local clock.
pub fn agents_table(agents: &Value, now_ms: i64) -> Table {
    let mut t = agents_columns();
    let empty = Vec::new();
    for a in agents.as_array().unwrap_or(&empty) {
        t.push(agent_row(a, now_ms));
    }
    t
}

/// One `AgentView` (the answer to an agent action) as a one-row board.
pub fn agent_table(agent: &Value, now_ms: i64) -> Table {
    let mut t = agents_columns();
    t.push(agent_row(agent, now_ms));
    t
}

fn outcome_color(outcome: &str) -> Option<Color> {
    match outcome {
        "answered" => Some(Color::Green),
        "abandoned" | "timeout" | "rejected" | "interrupted" | "failed" => Some(Color::Red),
        "overflow" => Some(Color::Yellow),
        _ => None,
    }
}

/// A call's outcome; a call without one that has not ended is still live.
fn outcome(c: &Value) -> String {
    match c["outcome"].as_str().filter(|s| !s.is_empty()) {
        Some(o) => o.to_string(),
        None if c["ended_at_ms"].is_null() => "live".into(),
        None => "-".into(),
    }
}

fn caller(c: &Value) -> String {
    let number = c["caller_number"].as_str().filter(|s| !s.is_empty());
    let name = c["caller_name"].as_str().filter(|s| !s.is_empty());
    match (number, name) {
        (Some(n), Some(m)) => format!("{n} ({m})"),
        (Some(n), None) => n.to_string(),
        (None, Some(m)) => m.to_string(),
        (None, None) => "-".into(),
    }
}

fn time_cell(v: &Value, tz: &jiff::tz::TimeZone) -> String {
    match v.as_i64() {
        Some(ms) => datetime(ms, tz),
        None => text(v),
    }
}

/// GET /api/v1/calls (`{calls, next_cursor}`) → one row per call.
pub fn calls_table(answer: &Value, tz: &jiff::tz::TimeZone) -> Table {
    let mut t = Table::new(&[
        ("ID", Align::Right),
        ("TIME", Align::Left),
        ("CALLER", Align::Left),
        ("QUEUE", Align::Left),
        ("AGENT", Align::Left),
        ("OUTCOME", Align::Left),
        ("WAIT", Align::Right),
        ("TALK", Align::Right),
    ]);
    let empty = Vec::new();
    for c in answer["calls"].as_array().unwrap_or(&empty) {
        let o = outcome(c);
        t.push(vec![
            Cell::plain(text(&c["id"])),
            Cell::plain(time_cell(&c["entered_at_ms"], tz)),
            Cell::plain(caller(c)),
            Cell::plain(text(&c["queue"])),
            Cell::plain(text(&c["agent"])),
            Cell::colored(o.clone(), outcome_color(&o)),
            Cell::plain(dur_ms(num(&c["wait_ms"]))),
            Cell::plain(dur_ms(num(&c["talk_ms"]))),
        ]);
    }
    t
}

/// GET /api/v1/calls/{id} (`{call, events}`) → the call's fields and its timeline.
/// The answer of `GET /api/v1/agents/{id}/preview` as text: the contact and its free fields.
pub fn preview(answer: &Value, tz: &jiff::tz::TimeZone) -> String {
    let p = &answer["preview"];
    if p.is_null() {
        return format!("agent {}: no contact in preview\n", text(&answer["agent"]));
    }
    let c = &p["contact"];
    let phones = c["phones"]
        .as_array()
        .map(|a| a.iter().map(text).collect::<Vec<_>>().join(", "))
        .unwrap_or_else(|| "-".into());
    let mut fields: Vec<(String, String)> = vec![
        ("agent".into(), text(&p["agent"])),
        ("list".into(), text(&p["list_name"])),
        ("attempt".into(), text(&p["attempt"])),
        ("customer".into(), text(&c["customer_id"])),
        ("name".into(), text(&c["name"])),
        ("number to dial".into(), text(&p["number"])),
        ("numbers".into(), phones),
        ("attempts so far".into(), count(&c["attempts"])),
        ("last result".into(), text(&c["last_result"])),
        ("due".into(), time_cell(&c["due_at_ms"], tz)),
        ("shown".into(), time_cell(&p["shown_at_ms"], tz)),
        ("goes back at".into(), time_cell(&p["expires_at_ms"], tz)),
    ];
    if let Some(extra) = c["fields"].as_object() {
        for (k, v) in extra {
            fields.push((k.clone(), text(v)));
        }
    }
    let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in &fields {
        out.push_str(&format!("{k:<w$}  {v}\n"));
    }
    out.push_str("\naccept: ctid agent accept ID    skip: ctid agent skip ID\n");
    out
}

pub fn call_detail(answer: &Value, tz: &jiff::tz::TimeZone, color: bool) -> String {
    let c = &answer["call"];
    let mut out = String::new();
    let fields: Vec<(&str, String)> = vec![
        ("call", text(&c["id"])),
        ("sip call-id", text(&c["sip_call_id"])),
        ("direction", text(&c["direction"])),
        ("caller", caller(c)),
        ("dialed", text(&c["dialed_number"])),
        ("queue", text(&c["queue"])),
        ("entered", time_cell(&c["entered_at_ms"], tz)),
        ("answered", time_cell(&c["answered_at_ms"], tz)),
        ("ended", time_cell(&c["ended_at_ms"], tz)),
        ("wait", dur_ms(num(&c["wait_ms"]))),
        ("talk", dur_ms(num(&c["talk_ms"]))),
        ("agent", text(&c["agent"])),
        ("outcome", outcome(c)),
        ("in target", text(&c["answered_in_target"])),
        ("short abandon", text(&c["short_abandon"])),
        ("hangup by", text(&c["hangup_by"])),
        ("hangup cause", text(&c["hangup_cause"])),
        ("sip code", text(&c["sip_code"])),
        ("disposition", text(&c["disposition"])),
        ("notes", text(&c["notes"])),
    ];
    let w = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in &fields {
        out.push_str(&format!("{k:<w$}  {v}\n"));
    }
    let empty = Vec::new();
    let events = answer["events"].as_array().unwrap_or(&empty);
    out.push('\n');
    if events.is_empty() {
        out.push_str("no events\n");
        return out;
    }
    let start = c["entered_at_ms"]
        .as_i64()
        .or_else(|| events.first().and_then(|e| e["at_ms"].as_i64()));
    let mut t = Table::new(&[
        ("AT", Align::Left),
        ("+", Align::Right),
        ("EVENT", Align::Left),
        ("AGENT", Align::Left),
        ("DETAIL", Align::Left),
    ]);
    for e in events {
        let at = e["at_ms"].as_i64();
        let offset = match (at, start) {
            (Some(a), Some(s)) => format!("+{:.1}s", (a - s) as f64 / 1000.0),
            _ => "-".into(),
        };
        let detail = match &e["detail"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            Value::Object(m) if m.is_empty() => String::new(),
            other => other.to_string(),
        };
        t.push(vec![
            Cell::plain(at.map_or_else(|| "-".into(), |a| clock_ms(a, tz))),
            Cell::plain(offset),
            Cell::plain(text(&e["kind"])),
            Cell::plain(text(&e["agent"])),
            Cell::plain(detail),
        ]);
    }
    out.push_str(&t.render(color));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stats() -> Value {
        json!({
            "day": "2024-05-02", "interval_minutes": 15,
            "queues": [{
                "queue": "sales", "sl_target_secs": 20, "sl_goal": 0.8, "answer_rate_goal": 0.9,
                "today": {"offered": 50, "answered": 46, "abandoned": 4, "short_abandons": 1,
                    "timeouts": 0, "overflows": 0, "rejected": 0, "answered_in_target": 45,
                    "sl_offered": 0.9183, "sl_answered": 0.97, "answer_rate": 0.8163,
                    "asa_secs": 8.4, "aht_secs": 190.0, "longest_wait_secs": 75.0,
                    "sl_met": true, "answer_rate_met": false},
                "current_interval": {"start": "10:00", "end": "10:15", "figures": {}},
                "last_interval": {"start": "09:45", "end": "10:00", "figures": {}},
                "now": {"waiting": 2, "longest_wait_secs": 65.2,
                        "agents": {"available": 3, "on_call": 4}}
            }, {
                "queue": "empty", "sl_target_secs": 20, "sl_goal": 0.8, "answer_rate_goal": 0.9,
                "today": {"offered": 0, "answered": 0, "abandoned": 0, "sl_offered": null,
                    "answer_rate": null, "asa_secs": null, "sl_met": null, "answer_rate_met": null},
                "now": {"waiting": 0, "longest_wait_secs": 0.0, "agents": {}}
            }]
        })
    }

    #[test]
    fn status_rows() {
        let s = status_table(&stats()).render(false);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 3, "{s}");
        assert!(
            lines[0].starts_with("QUEUE  WAITING  LONGEST  SL TODAY  ANSWER RATE"),
            "{s}"
        );
        let sales: Vec<&str> = lines[1].split_whitespace().collect();
        assert_eq!(
            sales,
            ["sales", "2", "1m05s", "91%", "✓", "81%", "✗", "50", "46", "4", "8s", "3"]
        );
        let empty: Vec<&str> = lines[2].split_whitespace().collect();
        assert_eq!(
            empty,
            ["empty", "0", "0s", "-", "-", "0", "0", "0", "-", "0"]
        );
        assert_eq!(
            stats_header(&stats()),
            "day 2024-05-02, 15-minute intervals"
        );
    }

    #[test]
    fn status_marks_computed_when_server_gives_none() {
        let v = json!({"queues": [{"queue": "q", "sl_goal": 0.8, "answer_rate_goal": 0.9,
            "today": {"sl_offered": 0.85, "answer_rate": 0.5}}]});
        let s = status_table(&v).render(false);
        assert!(s.contains("85% ✓"), "{s}");
        assert!(s.contains("50% ✗"), "{s}");
        // `now` missing: waiting and available unknown.
        let row: Vec<&str> = s.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(row[1], "-");
        assert_eq!(*row.last().unwrap(), "-");
    }

    #[test]
    fn status_survives_garbage() {
        assert_eq!(status_table(&json!(null)).rows.len(), 0);
        assert_eq!(status_table(&json!({"queues": [42]})).rows.len(), 1);
    }

    #[test]
    fn agents_rows() {
        let now = 1_700_000_723_000;
        let v = json!([
            {"id": "1001", "name": "Alice", "state": "on_call", "reason": null,
             "pending_pause": "lunch", "since_ms": 1_700_000_000_000u64, "call": 42,
             "calls_answered": 7, "registered": true},
            {"id": "1002", "name": "Bob", "state": "paused", "reason": "break",
             "pending_pause": null, "since_ms": 1_700_000_720_000u64, "call": null,
             "calls_answered": 0, "registered": false}
        ]);
        let s = agents_table(&v, now).render(false);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0],
            "ID    NAME   STATE    REASON                 SINCE  CALL  ANSWERED  REGISTERED"
        );
        assert_eq!(
            lines[1],
            "1001  Alice  on_call  pause pending: lunch  12m03s    42         7  yes"
        );
        assert_eq!(
            lines[2],
            "1002  Bob    paused   break                     3s     -         0  no"
        );
        assert_eq!(agent_table(&v[0], now).rows.len(), 1);
    }

    #[test]
    fn calls_rows_and_detail() {
        let tz = jiff::tz::TimeZone::UTC;
        let v = json!({"calls": [
            {"id": 7, "caller_number": "+4930123", "caller_name": "Ann", "queue": "sales",
             "entered_at_ms": 1_700_000_000_000i64, "ended_at_ms": 1_700_000_100_000i64,
             "agent": "1001", "outcome": "answered", "wait_ms": 8_000, "talk_ms": 65_000},
            {"id": 8, "caller_number": null, "queue": "sales",
             "entered_at_ms": 1_700_000_050_000i64, "ended_at_ms": null,
             "agent": null, "outcome": null, "wait_ms": null, "talk_ms": null}
        ], "next_cursor": null});
        let s = calls_table(&v, &tz).render(false);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[1],
            " 7  2023-11-14 22:13:20  +4930123 (Ann)  sales  1001   answered    8s  1m05s"
        );
        assert_eq!(
            lines[2],
            " 8  2023-11-14 22:14:10  -               sales  -      live         -      -"
        );

        let d = json!({"call": v["calls"][0], "events": [
            {"at_ms": 1_700_000_000_000i64, "kind": "entered", "agent": null, "detail": null},
            {"at_ms": 1_700_000_008_000i64, "kind": "answered", "agent": "1001",
             "detail": {"sip_code": 200}}
        ]});
        let out = call_detail(&d, &tz, false);
        assert!(out.contains("outcome        answered\n"), "{out}");
        assert!(
            out.contains("22:13:28.000  +8.0s  answered  1001   {\"sip_code\":200}"),
            "{out}"
        );
        let none = call_detail(&json!({"call": {}, "events": []}), &tz, false);
        assert!(none.ends_with("no events\n"));
    }
}
