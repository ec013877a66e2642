//! `ctid cdr export`: call detail records streamed row by row (constant memory). The columns
//! and their meaning are documented in `docs/cdr.md`; keep [`COLUMNS`] and that file in step.

use super::{local, CdrFormat};
use crate::store::{CallRecords, CdrValue};
use anyhow::Result;
use jiff::tz::TimeZone;
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
    store: &dyn CallRecords,
    start_ms: i64,
    end_ms: i64,
    format: CdrFormat,
    tz: &TimeZone,
    out: &mut impl Write,
) -> Result<u64> {
    let mut line = String::with_capacity(512);
    if format == CdrFormat::Csv {
        line.push_str(&COLUMNS.join(","));
        line.push_str("\r\n");
        out.write_all(line.as_bytes())?;
    }
    let mut failed: Option<anyhow::Error> = None;
    let n = store.each_cdr(start_ms, end_ms, &mut |row| {
        line.clear();
        match format {
            CdrFormat::Csv => {
                for (i, v) in row.iter().enumerate() {
                    if i > 0 {
                        line.push(',');
                    }
                    match v {
                        CdrValue::Null => {}
                        CdrValue::Integer(v) if i == ENTERED_AT => line.push_str(&local(*v, tz)),
                        CdrValue::Integer(v) => line.push_str(&v.to_string()),
                        CdrValue::Real(v) => line.push_str(&v.to_string()),
                        CdrValue::Text(t) => csv_field(t, &mut line),
                    }
                }
                line.push_str("\r\n");
            }
            CdrFormat::Jsonl => {
                let mut obj = serde_json::Map::with_capacity(COLUMNS.len());
                for (i, (name, v)) in COLUMNS.iter().zip(row).enumerate() {
                    let v = match v {
                        CdrValue::Null => serde_json::Value::Null,
                        CdrValue::Integer(v) if i == ENTERED_AT => local(*v, tz).into(),
                        CdrValue::Integer(v) if FLAGS.contains(&i) => (*v != 0).into(),
                        CdrValue::Integer(v) => (*v).into(),
                        CdrValue::Real(v) => (*v).into(),
                        CdrValue::Text(t) => t.to_string().into(),
                    };
                    obj.insert((*name).to_string(), v);
                }
                match serde_json::to_string(&obj) {
                    Ok(json) => line.push_str(&json),
                    Err(e) => {
                        failed = Some(e.into());
                        return false;
                    }
                }
                line.push('\n');
            }
        }
        if let Err(e) = out.write_all(line.as_bytes()) {
            failed = Some(e.into());
            return false;
        }
        true
    })?;
    if let Some(e) = failed {
        return Err(e);
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
