//! Callback lists (`crate::outbound::lists`): the `outbound_lists` row with its agents, calling
//! windows and holidays.

use super::Conn;
use crate::outbound::{ListId, ListSpec, ListState};
use crate::store::outbound::ListRecord;
use crate::store::Result;
use rusqlite::{params, OptionalExtension};

/// Whether a list is named `name`.
pub fn name_taken(conn: &Conn, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM outbound_lists WHERE name = ?1")?
        .exists([name])?)
}

/// Store a new list (state `active`) with its agents, windows and holidays. `secs`: the retry
/// delays (busy, no answer, failed) and the duplicate period.
pub fn insert(
    conn: &Conn,
    spec: &ListSpec,
    secs: [i64; 4],
    windows: &[(u8, u16, u16)],
    holidays: &[String],
    now_ms: i64,
) -> Result<ListId> {
    conn.execute(
        "INSERT INTO outbound_lists (name, purpose, queue, mode, time_zone, quota_per_day,
           agent_quota_per_day, max_attempts, retry_busy_s, retry_no_answer_s, retry_failed_s,
           dedupe_period_s, priority, state, created_at_ms, state_changed_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'active', ?14, ?14)",
        params![
            spec.name,
            spec.purpose,
            spec.queue,
            spec.mode,
            spec.time_zone,
            spec.quota_per_day,
            spec.agent_quota_per_day,
            spec.max_attempts,
            secs[0],
            secs[1],
            secs[2],
            secs[3],
            spec.priority,
            now_ms,
        ],
    )?;
    let id = ListId(conn.last_insert_rowid());
    for agent in &spec.agents {
        conn.execute(
            "INSERT INTO outbound_list_agents (list_id, agent) VALUES (?1, ?2)",
            params![id, agent],
        )?;
    }
    for (i, (days, start, end)) in windows.iter().enumerate() {
        conn.execute(
            "INSERT INTO outbound_list_windows (list_id, position, days, start_min, end_min)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, i as i64, days, start, end],
        )?;
    }
    for d in holidays {
        conn.execute(
            "INSERT INTO outbound_list_holidays (list_id, date) VALUES (?1, ?2)",
            params![id, d],
        )?;
    }
    Ok(id)
}

/// The list named `name`.
pub fn id_by_name(conn: &Conn, name: &str) -> Result<Option<ListId>> {
    Ok(conn
        .prepare_cached("SELECT id FROM outbound_lists WHERE name = ?1")?
        .query_row([name], |r| Ok(ListId(r.get(0)?)))
        .optional()?)
}

/// Every list, oldest first.
pub fn ids(conn: &Conn) -> Result<Vec<ListId>> {
    let ids = conn
        .prepare_cached("SELECT id FROM outbound_lists ORDER BY id")?
        .query_map([], |r| Ok(ListId(r.get(0)?)))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}

/// Set the state of list `id` (and when it changed).
pub fn set_state(conn: &Conn, id: ListId, to: ListState, now_ms: i64) -> Result<()> {
    conn.execute(
        "UPDATE outbound_lists SET state = ?2, state_changed_at_ms = ?3 WHERE id = ?1",
        params![id, to, now_ms],
    )?;
    Ok(())
}

/// List `id` as stored, if it exists.
pub fn load(conn: &Conn, id: ListId) -> Result<Option<ListRecord>> {
    let row = conn
        .prepare_cached(
            "SELECT name, purpose, queue, mode, time_zone, quota_per_day, agent_quota_per_day,
               max_attempts, retry_busy_s, retry_no_answer_s, retry_failed_s, dedupe_period_s,
               priority, state, created_at_ms, state_changed_at_ms
             FROM outbound_lists WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(ListRecord {
                name: r.get(0)?,
                purpose: r.get(1)?,
                queue: r.get(2)?,
                mode: r.get(3)?,
                time_zone: r.get(4)?,
                quota_per_day: r.get(5)?,
                agent_quota_per_day: r.get(6)?,
                max_attempts: r.get(7)?,
                retry_busy_s: r.get(8)?,
                retry_no_answer_s: r.get(9)?,
                retry_failed_s: r.get(10)?,
                dedupe_period_s: r.get(11)?,
                priority: r.get(12)?,
                state: r.get(13)?,
                created_at_ms: r.get(14)?,
                state_changed_at_ms: r.get(15)?,
                agents: Vec::new(),
                windows: Vec::new(),
                holidays: Vec::new(),
            })
        })
        .optional()?;
    let Some(mut list) = row else {
        return Ok(None);
    };
    list.agents = conn
        .prepare_cached("SELECT agent FROM outbound_list_agents WHERE list_id = ?1 ORDER BY rowid")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    list.windows = conn
        .prepare_cached(
            "SELECT days, start_min, end_min FROM outbound_list_windows
             WHERE list_id = ?1 ORDER BY position",
        )?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    list.holidays = conn
        .prepare_cached("SELECT date FROM outbound_list_holidays WHERE list_id = ?1 ORDER BY date")?
        .query_map([id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(list))
}
