//! The figures of one list's board (`crate::outbound::list_counters`).

use super::Conn;
use crate::outbound::{AttemptResult, ContactState, ListId};
use crate::store::Result;
use rusqlite::params;

/// Contacts of `list` per state.
pub fn contact_states(conn: &Conn, list: ListId) -> Result<Vec<(ContactState, i64)>> {
    let rows = conn
        .prepare_cached(
            "SELECT state, count(*) FROM outbound_contacts WHERE list_id = ?1 GROUP BY state",
        )?
        .query_map([list], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Attempts of `list` per result (`None`: claimed, no progress yet).
pub fn attempt_results(conn: &Conn, list: ListId) -> Result<Vec<(Option<AttemptResult>, i64)>> {
    let rows = conn
        .prepare_cached(
            "SELECT result, count(*) FROM outbound_attempts WHERE list_id = ?1 GROUP BY result",
        )?
        .query_map([list], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Skip records of `list` per reason ("" when none).
pub fn skip_reasons(conn: &Conn, list: ListId) -> Result<Vec<(String, i64)>> {
    let rows = conn
        .prepare_cached(
            "SELECT COALESCE(reason, ''), count(*) FROM outbound_attempts
             WHERE list_id = ?1 AND result = 'skipped' GROUP BY 1",
        )?
        .query_map([list], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Attempts of `list` answered in `start_ms..end_ms`, per agent ("" when none).
pub fn answered_per_agent(
    conn: &Conn,
    list: ListId,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(String, i64)>> {
    let rows = conn
        .prepare_cached(
            "SELECT COALESCE(agent, ''), count(*) FROM outbound_attempts
             WHERE list_id = ?1 AND answered_at_ms >= ?2 AND answered_at_ms < ?3 GROUP BY 1",
        )?
        .query_map(params![list, start_ms, end_ms], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Attempts of `list` not yet ended.
pub fn live_attempts(conn: &Conn, list: ListId) -> Result<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT count(*) FROM outbound_attempts WHERE list_id = ?1 AND ended_at_ms IS NULL",
        )?
        .query_row([list], |r| r.get(0))?)
}
