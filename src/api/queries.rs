//! Read-only SQL over the call records, on a connection of its own (WAL lets it read while the
//! writer writes). Everything here blocks: call it through [`run`], which uses `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags, Row};
use serde::Serialize;

use super::ApiError;

/// A row of `calls`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallRecord {
    pub id: u64,
    pub sip_call_id: String,
    pub direction: String,
    pub caller_number: Option<String>,
    pub caller_name: Option<String>,
    pub dialed_number: Option<String>,
    pub queue: Option<String>,
    pub entered_at_ms: i64,
    pub answered_at_ms: Option<i64>,
    pub ended_at_ms: Option<i64>,
    pub wait_ms: Option<i64>,
    pub talk_ms: Option<i64>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    pub answered_in_target: Option<bool>,
    pub short_abandon: Option<bool>,
    pub hangup_by: Option<String>,
    pub hangup_cause: Option<String>,
    pub sip_code: Option<i64>,
    pub disposition: Option<String>,
    pub notes: Option<String>,
    /// The call's recording, if the queue records (download: GET /api/v1/calls/{id}/recording).
    pub recording_path: Option<String>,
    pub recording_error: Option<String>,
    /// Post-call survey: 1 very satisfied … 5 very dissatisfied.
    pub survey_score: Option<i64>,
}

const COLUMNS: &str =
    "id, sip_call_id, direction, caller_number, caller_name, dialed_number, queue,
    entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms, agent, outcome,
    answered_in_target, short_abandon, hangup_by, hangup_cause, sip_code, disposition, notes,
    recording_path, recording_error, survey_score";

fn record(r: &Row<'_>) -> rusqlite::Result<CallRecord> {
    Ok(CallRecord {
        id: r.get::<_, i64>(0)? as u64,
        sip_call_id: r.get(1)?,
        direction: r.get(2)?,
        caller_number: r.get(3)?,
        caller_name: r.get(4)?,
        dialed_number: r.get(5)?,
        queue: r.get(6)?,
        entered_at_ms: r.get(7)?,
        answered_at_ms: r.get(8)?,
        ended_at_ms: r.get(9)?,
        wait_ms: r.get(10)?,
        talk_ms: r.get(11)?,
        agent: r.get(12)?,
        outcome: r.get(13)?,
        answered_in_target: r.get(14)?,
        short_abandon: r.get(15)?,
        hangup_by: r.get(16)?,
        hangup_cause: r.get(17)?,
        sip_code: r.get(18)?,
        disposition: r.get(19)?,
        notes: r.get(20)?,
        recording_path: r.get(21)?,
        recording_error: r.get(22)?,
        survey_score: r.get(23)?,
    })
}

/// One entry of a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CallEventRow {
    pub at_ms: i64,
    pub kind: String,
    pub agent: Option<String>,
    pub detail: Option<String>,
}

/// Filters of `GET /api/v1/calls`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// entered_at_ms >= from
    pub from: Option<i64>,
    /// entered_at_ms < to
    pub to: Option<i64>,
    pub queue: Option<String>,
    pub agent: Option<String>,
    pub outcome: Option<String>,
    /// Part of the caller's number.
    pub caller: Option<String>,
    pub limit: usize,
    /// Continue after this (entered_at_ms, id).
    pub cursor: Option<(i64, i64)>,
}

pub fn encode_cursor(r: &CallRecord) -> String {
    format!("{}.{}", r.entered_at_ms, r.id)
}

pub fn decode_cursor(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Run blocking `f` on a fresh read-only connection to `<data_dir>/ctid.db`.
pub async fn run<T: Send + 'static>(
    data_dir: PathBuf,
    f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || {
        let conn = open(&data_dir).map_err(|e| {
            tracing::warn!(error = %e, "API cannot open the database");
            ApiError::unavailable("call records are not available")
        })?;
        f(&conn).map_err(|e| {
            tracing::warn!(error = %e, "API query failed");
            ApiError::internal("query failed")
        })
    })
    .await
    .map_err(|_| ApiError::internal("query task failed"))?
}

fn open(data_dir: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        data_dir.join("ctid.db"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(2))?;
    Ok(conn)
}

/// Calls matching `f`, newest first, and the cursor of the next page (None on the last page).
pub fn list_calls(
    conn: &Connection,
    f: &CallFilter,
) -> rusqlite::Result<(Vec<CallRecord>, Option<String>)> {
    let mut sql = format!("SELECT {COLUMNS} FROM calls WHERE 1 = 1");
    let mut args: Vec<Value> = vec![];
    let mut add = |cond: &str, v: Value, sql: &mut String| {
        args.push(v);
        sql.push_str(&format!(
            " AND {}",
            cond.replace('?', &format!("?{}", args.len()))
        ));
    };
    if let Some(v) = f.from {
        add("entered_at_ms >= ?", Value::Integer(v), &mut sql);
    }
    if let Some(v) = f.to {
        add("entered_at_ms < ?", Value::Integer(v), &mut sql);
    }
    for (col, v) in [
        ("queue", &f.queue),
        ("agent", &f.agent),
        ("outcome", &f.outcome),
    ] {
        if let Some(v) = v {
            add(&format!("{col} = ?"), Value::Text(v.clone()), &mut sql);
        }
    }
    if let Some(v) = &f.caller {
        add(
            "instr(caller_number, ?) > 0",
            Value::Text(v.clone()),
            &mut sql,
        );
    }
    if let Some((at, id)) = f.cursor {
        args.push(Value::Integer(at));
        args.push(Value::Integer(id));
        let (a, b) = (args.len() - 1, args.len());
        sql.push_str(&format!(
            " AND (entered_at_ms < ?{a} OR (entered_at_ms = ?{a} AND id < ?{b}))"
        ));
    }
    args.push(Value::Integer(f.limit as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY entered_at_ms DESC, id DESC LIMIT ?{}",
        args.len()
    ));
    let mut rows: Vec<CallRecord> = conn
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(args), record)?
        .collect::<Result<_, _>>()?;
    let next = if rows.len() > f.limit {
        rows.truncate(f.limit);
        rows.last().map(encode_cursor)
    } else {
        None
    };
    Ok((rows, next))
}

pub fn call(conn: &Connection, id: u64) -> rusqlite::Result<Option<CallRecord>> {
    let Ok(id) = i64::try_from(id) else {
        return Ok(None);
    };
    match conn.query_row(
        &format!("SELECT {COLUMNS} FROM calls WHERE id = ?1"),
        [id],
        record,
    ) {
        Ok(r) => Ok(Some(r)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn call_events(conn: &Connection, id: u64) -> rusqlite::Result<Vec<CallEventRow>> {
    conn.prepare(
        "SELECT at_ms, kind, agent, detail FROM call_events WHERE call_id = ?1 ORDER BY id",
    )?
    .query_map([id as i64], |r| {
        Ok(CallEventRow {
            at_ms: r.get(0)?,
            kind: r.get(1)?,
            agent: r.get(2)?,
            detail: r.get(3)?,
        })
    })?
    .collect()
}
