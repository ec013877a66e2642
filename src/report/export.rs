//! `ctid cdr export`: call detail records streamed row by row (constant memory). The columns
//! and their meaning are documented in `docs/cdr.md`; keep [`COLUMNS`] and that file in step.

use super::{local, CdrFormat};
use anyhow::Result;
use jiff::tz::TimeZone;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection};
use std::io::Write;

/// The stable column set, in order. `entered_at` is derived (local time of `entered_at_ms`);
/// the others are the `calls` columns of the same name.
pub const COLUMNS: &[&str] = &[
    "id",
    "sip_call_id",
    "direction",
    "caller_number",
    "caller_name",
    "dialed_number",
    "queue",
    "entered_at",
    "entered_at_ms",
    "answered_at_ms",
    "ended_at_ms",
    "wait_ms",
    "talk_ms",
    "agent",
    "outcome",
    "answered_in_target",
    "short_abandon",
    "hangup_by",
    "hangup_cause",
    "sip_code",
    "disposition",
    "notes",
    "recording_path",
    "recording_error",
    "survey_score",
    "caller_rtp_lost",
    "caller_jitter_ms",
    "agent_rtp_lost",
    "agent_jitter_ms",
];

const SQL: &str = "
SELECT id, sip_call_id, direction, caller_number, caller_name, dialed_number, queue,
       entered_at_ms, entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms, agent, outcome,
       answered_in_target, short_abandon, hangup_by, hangup_cause, sip_code, disposition, notes,
       recording_path, recording_error, survey_score, caller_rtp_lost, caller_jitter_ms,
       agent_rtp_lost, agent_jitter_ms
FROM calls INDEXED BY calls_entered
WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2
ORDER BY entered_at_ms, id";

/// Columns holding 0/1 flags, exported as booleans in JSONL.
const FLAGS: &[usize] = &[15, 16];
const ENTERED_AT: usize = 7;

/// Quote a CSV field (RFC 4180): fields with `,` `"` CR or LF are enclosed in double quotes,
/// inner double quotes doubled.
pub fn csv_field(s: &str, out: &mut String) {
    if s.contains([',', '"', '\r', '\n']) {
        out.push('"');
        for c in s.chars() {
            if c == '"' {
                out.push('"');
            }
            out.push(c);
        }
        out.push('"');
    } else {
        out.push_str(s);
    }
}

/// Write the calls entered in `[start_ms, end_ms)`; returns the number of rows.
pub fn export(
    conn: &Connection,
    start_ms: i64,
    end_ms: i64,
    format: CdrFormat,
    tz: &TimeZone,
    out: &mut impl Write,
) -> Result<u64> {
    let mut stmt = conn.prepare(SQL)?;
    let mut rows = stmt.query(params![start_ms, end_ms])?;
    let mut line = String::with_capacity(512);
    if format == CdrFormat::Csv {
        line.push_str(&COLUMNS.join(","));
        line.push_str("\r\n");
        out.write_all(line.as_bytes())?;
    }
    let mut n = 0u64;
    while let Some(r) = rows.next()? {
        line.clear();
        match format {
            CdrFormat::Csv => {
                for i in 0..COLUMNS.len() {
                    if i > 0 {
                        line.push(',');
                    }
                    match r.get_ref(i)? {
                        ValueRef::Null => {}
                        ValueRef::Integer(v) if i == ENTERED_AT => line.push_str(&local(v, tz)),
                        ValueRef::Integer(v) => line.push_str(&v.to_string()),
                        ValueRef::Real(v) => line.push_str(&v.to_string()),
                        ValueRef::Text(t) => csv_field(&String::from_utf8_lossy(t), &mut line),
                        ValueRef::Blob(b) => csv_field(&String::from_utf8_lossy(b), &mut line),
                    }
                }
                line.push_str("\r\n");
            }
            CdrFormat::Jsonl => {
                let mut obj = serde_json::Map::with_capacity(COLUMNS.len());
                for (i, name) in COLUMNS.iter().enumerate() {
                    let v = match r.get_ref(i)? {
                        ValueRef::Null => serde_json::Value::Null,
                        ValueRef::Integer(v) if i == ENTERED_AT => local(v, tz).into(),
                        ValueRef::Integer(v) if FLAGS.contains(&i) => (v != 0).into(),
                        ValueRef::Integer(v) => v.into(),
                        ValueRef::Real(v) => v.into(),
                        ValueRef::Text(t) | ValueRef::Blob(t) => {
                            String::from_utf8_lossy(t).into_owned().into()
                        }
                    };
                    obj.insert((*name).to_string(), v);
                }
                line.push_str(&serde_json::to_string(&obj)?);
                line.push('\n');
            }
        }
        out.write_all(line.as_bytes())?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        let q = |s: &str| {
            let mut o = String::new();
            csv_field(s, &mut o);
            o
        };
        assert_eq!(q("plain"), "plain");
        assert_eq!(q("a,b"), "\"a,b\"");
        assert_eq!(q("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(q("l1\nl2"), "\"l1\nl2\"");
        assert_eq!(q("cr\r"), "\"cr\r\"");
    }
}
