//! The callback-list reads of [`crate::store::ReportReads`] on SQLite (the `outbound_*` tables of
//! migration 5, `callback_requests`). A file older than migration 5 has no lists: every read
//! here then finds none.

use crate::store::reads::{ComplaintRow, ListCallbackRow, ListEventKind, ListRow};
use crate::store::Result;
use rusqlite::{params, Connection};
use std::collections::BTreeSet;

/// Whether the database has the outbound tables.
fn has_lists(conn: &Connection) -> Result<bool> {
    let n: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'outbound_lists'",
        [],
        |r| r.get(0),
    )?;
    Ok(n > 0)
}

pub(super) fn report_lists(
    conn: &Connection,
    before_ms: i64,
    name: Option<&str>,
) -> Result<Vec<ListRow>> {
    if !has_lists(conn)? {
        return Ok(vec![]);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, purpose, state, queue, quota_per_day, agent_quota_per_day,
                created_at_ms, state_changed_at_ms
         FROM outbound_lists
         WHERE created_at_ms < ?1 AND (?2 IS NULL OR name = ?2)
         ORDER BY name",
    )?;
    let rows = stmt.query_map(params![before_ms, name], |r| {
        let state: String = r.get(3)?;
        let changed: i64 = r.get(8)?;
        Ok(ListRow {
            id: r.get(0)?,
            name: r.get(1)?,
            purpose: r.get(2)?,
            stopped_at_ms: (state == "stopped").then_some(changed),
            state,
            queue: r.get(4)?,
            quota: r.get(5)?,
            agent_quota: r.get(6)?,
            created_at_ms: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_calendar(conn: &Connection, list: i64) -> Result<(i64, BTreeSet<String>)> {
    let mut mask = 0i64;
    let mut stmt =
        conn.prepare_cached("SELECT days FROM outbound_list_windows WHERE list_id = ?1")?;
    for m in stmt.query_map([list], |r| r.get::<_, i64>(0))? {
        mask |= m?;
    }
    let holidays: BTreeSet<String> = conn
        .prepare_cached("SELECT date FROM outbound_list_holidays WHERE list_id = ?1")?
        .query_map([list], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    Ok((mask, holidays))
}

pub(super) fn list_events(
    conn: &Connection,
    list: i64,
    kind: ListEventKind,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(i64, String, String)>> {
    let sql = match kind {
        ListEventKind::ContactAdded => {
            "SELECT created_at_ms, NULL, NULL FROM outbound_contacts
             WHERE list_id = ?1 AND created_at_ms >= ?2 AND created_at_ms < ?3"
        }
        ListEventKind::AttemptStarted => {
            "SELECT started_at_ms, result, reason FROM outbound_attempts
             WHERE list_id = ?1 AND started_at_ms >= ?2 AND started_at_ms < ?3"
        }
        ListEventKind::Connect => {
            "SELECT answered_at_ms, NULL, NULL FROM outbound_attempts
             WHERE list_id = ?1 AND answered_at_ms >= ?2 AND answered_at_ms < ?3"
        }
        ListEventKind::ContactFinished => {
            "SELECT updated_at_ms, state, NULL FROM outbound_contacts
             WHERE list_id = ?1 AND state IN ('done', 'unreachable')
               AND updated_at_ms >= ?2 AND updated_at_ms < ?3"
        }
        // A dial attempt scheduled a retry when its contact was dialed (or skipped) again
        // later, or is waiting for that now.
        ListEventKind::RetryScheduled => {
            "SELECT a.ended_at_ms, NULL, NULL FROM outbound_attempts a
             JOIN outbound_contacts c ON c.id = a.contact_id
             WHERE a.list_id = ?1 AND a.ended_at_ms >= ?2 AND a.ended_at_ms < ?3
               AND a.result IS NOT NULL AND a.result != 'skipped'
               AND (c.state = 'pending' OR EXISTS (SELECT 1 FROM outbound_attempts b
                    WHERE b.contact_id = a.contact_id AND b.id > a.id))"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![list, start_ms, end_ms], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, Option<String>>(1)?.unwrap_or_default(),
            r.get::<_, Option<String>>(2)?.unwrap_or_default(),
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_contact_states(
    conn: &Connection,
    list: i64,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT state, count(*) FROM outbound_contacts c
         WHERE list_id = ?1 AND ((created_at_ms >= ?2 AND created_at_ms < ?3)
            OR EXISTS (SELECT 1 FROM outbound_attempts a WHERE a.contact_id = c.id
                       AND a.started_at_ms >= ?2 AND a.started_at_ms < ?3))
         GROUP BY state",
    )?;
    let rows = stmt.query_map(params![list, start_ms, end_ms], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_callback_requests(
    conn: &Connection,
    list: i64,
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<ListCallbackRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.status, r.requested_at_ms, r.done_at_ms
         FROM callback_requests r JOIN outbound_contacts c ON c.id = r.contact_id
         WHERE c.list_id = ?1 AND r.requested_at_ms >= ?2 AND r.requested_at_ms < ?3",
    )?;
    let rows = stmt.query_map(params![list, start_ms, end_ms], |r| {
        Ok(ListCallbackRow {
            status: r.get(0)?,
            requested_at_ms: r.get(1)?,
            done_at_ms: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_complaints(
    conn: &Connection,
    list: i64,
    start_ms: i64,
    end_ms: i64,
    default_reply_ms: i64,
) -> Result<Vec<ComplaintRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT c.created_at_ms, COALESCE(c.due_at_ms, c.created_at_ms + ?4), c.state,
                c.updated_at_ms,
                (SELECT min(answered_at_ms) FROM outbound_attempts a
                 WHERE a.contact_id = c.id AND a.answered_at_ms IS NOT NULL)
         FROM outbound_contacts c
         WHERE c.list_id = ?1 AND c.created_at_ms >= ?2 AND c.created_at_ms < ?3",
    )?;
    let rows = stmt.query_map(params![list, start_ms, end_ms, default_reply_ms], |r| {
        Ok(ComplaintRow {
            created_at_ms: r.get(0)?,
            due_at_ms: r.get(1)?,
            state: r.get(2)?,
            updated_at_ms: r.get(3)?,
            first_answer_at_ms: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn list_agents(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached("SELECT agent, list_id FROM outbound_list_agents")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn agent_list_counts(
    conn: &Connection,
    start_ms: i64,
    end_ms: i64,
    connects: bool,
) -> Result<Vec<(String, i64, u64)>> {
    let sql = if connects {
        "SELECT agent, list_id, count(*) FROM outbound_attempts
         WHERE agent IS NOT NULL AND answered_at_ms >= ?1 AND answered_at_ms < ?2
         GROUP BY 1, 2"
    } else {
        "SELECT agent, list_id, count(*) FROM outbound_attempts
         WHERE agent IS NOT NULL AND started_at_ms >= ?1 AND started_at_ms < ?2
           AND (result IS NULL OR result != 'skipped')
         GROUP BY 1, 2"
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![start_ms, end_ms], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?.max(0) as u64,
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{create_list, ListSpec, Window};
    use crate::store::{Reader, ReportReads};

    fn spec(name: &str, holidays: Vec<String>) -> ListSpec {
        let mut spec = crate::outbound::testutil::spec(name);
        spec.agents = vec!["1001".into()];
        spec.windows = vec![Window {
            days: vec!["mon".into(), "tue".into()],
            start: "09:00".into(),
            end: "17:00".into(),
        }];
        spec.holidays = holidays;
        spec.quota_per_day = Some(5);
        spec
    }

    #[test]
    fn lists_their_calendar_and_agents() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        let a = create_list(&conn, &spec("b-list", vec!["2026-12-25".into()]), 1_000).unwrap();
        create_list(&conn, &spec("a-list", vec![]), 5_000).unwrap();
        let r = Reader::from_connection(conn);
        let names: Vec<String> = r
            .report_lists(10_000, None)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["a-list", "b-list"], "by name");
        // Created before the period's end only; one by name.
        let before: Vec<String> = r
            .report_lists(2_000, None)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(before, ["b-list"]);
        let one = r.report_lists(10_000, Some("b-list")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].quota, Some(5));
        assert_eq!(one[0].stopped_at_ms, None);
        let (mask, holidays) = r.list_calendar(a.id.0).unwrap();
        assert_eq!(mask, 0b11, "Monday and Tuesday");
        assert_eq!(holidays.into_iter().collect::<Vec<_>>(), ["2026-12-25"]);
        let mut agents = r.list_agents().unwrap();
        agents.sort();
        assert_eq!(agents.len(), 2);
        assert!(agents.iter().all(|(a, _)| a == "1001"));
        assert!(r.agent_list_counts(0, 10_000, false).unwrap().is_empty());
        assert!(r
            .list_events(a.id.0, ListEventKind::AttemptStarted, 0, 10_000)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn a_database_without_lists_has_none() {
        let conn = Connection::open_in_memory().unwrap();
        let r = Reader::from_connection(conn);
        assert!(r.report_lists(i64::MAX, None).unwrap().is_empty());
    }
}
