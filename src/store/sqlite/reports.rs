//! [`ReportReads`] on SQLite: the scans of the queue and agent reports (below) and of the
//! callback-list figures ([`super::report_lists`]).
//!
//! Each scan is one ordered range scan of the `calls_entered` index, aggregated by the caller
//! (a SQL `GROUP BY queue, bucket` makes SQLite sort every row through a temporary B-tree, which
//! costs seconds over a month of a big call center; this scan does not).

use super::pool::Reader;
use crate::store::reads::{
    AgentCall, ComplaintRow, ListCallbackRow, ListEventKind, ListRow, QueueCall, ReportReads,
    SessionTotal,
};
use crate::store::Result;
use rusqlite::params;
use std::collections::BTreeSet;

/// One row per call of the period. Rows whose outcome is NULL (still live) or 'interrupted'
/// come as answered if they were answered, else not at all.
const QUEUE_SQL: &str = "
SELECT queue, (entered_at_ms - ?1) / ?3,
       CASE WHEN outcome IN ('answered', 'abandoned', 'timeout', 'overflow', 'rejected',
                             'callback_requested')
            THEN outcome
            WHEN answered_at_ms IS NOT NULL THEN 'answered' END,
       wait_ms, talk_ms, outcome = 'answered', answered_in_target, short_abandon
FROM calls INDEXED BY calls_entered
WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2 AND queue IS NOT NULL
  AND (?4 IS NULL OR queue = ?4)";

/// Callback requests (queue, interval) by the time the caller entered the queue. A small table:
/// no index on `entered_at_ms` is needed.
const CALLBACK_SQL: &str = "
SELECT queue, (entered_at_ms - ?1) / ?3
FROM callback_requests
WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2 AND (?4 IS NULL OR queue = ?4)";

/// One row per answered call of the period.
const AGENT_CALLS_SQL: &str = "
SELECT agent, talk_ms, answered_at_ms, survey_score
FROM calls INDEXED BY calls_entered
WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2
  AND agent IS NOT NULL AND answered_at_ms IS NOT NULL
  AND (?3 IS NULL OR agent = ?3) AND (?4 IS NULL OR queue = ?4)";

const SESSIONS_SQL: &str = "
SELECT agent, kind, COALESCE(reason, ''),
       SUM(MAX(0, MIN(COALESCE(ended_at_ms, ?3), ?2) - MAX(started_at_ms, ?1)))
FROM agent_sessions
WHERE started_at_ms < ?2 AND (ended_at_ms IS NULL OR ended_at_ms > ?1)
  AND (?4 IS NULL OR agent = ?4)
GROUP BY agent, kind, COALESCE(reason, '')";

fn flag(v: Option<i64>) -> bool {
    v.unwrap_or(0) != 0
}

impl ReportReads for Reader {
    fn each_queue_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        queue: Option<&str>,
        f: &mut dyn FnMut(QueueCall<'_>),
    ) -> Result<()> {
        let mut stmt = self.sql().prepare_cached(QUEUE_SQL)?;
        let mut rows = stmt.query(params![start_ms, end_ms, step_ms, queue])?;
        while let Some(r) = rows.next()? {
            let outcome = match r.get_ref(2)?.as_str_or_null() {
                Ok(Some(o)) => o,
                _ => continue,
            };
            f(QueueCall {
                queue: r.get_ref(0)?.as_str().unwrap_or_default(),
                bucket: r.get(1)?,
                outcome,
                wait_ms: r.get(3)?,
                talk_ms: r.get(4)?,
                really_answered: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
                answered_in_target: flag(r.get(6)?),
                short_abandon: flag(r.get(7)?),
            });
        }
        Ok(())
    }

    fn each_callback_request(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        queue: Option<&str>,
        f: &mut dyn FnMut(&str, i64),
    ) -> Result<()> {
        let mut stmt = self.sql().prepare_cached(CALLBACK_SQL)?;
        let mut rows = stmt.query(params![start_ms, end_ms, step_ms, queue])?;
        while let Some(r) = rows.next()? {
            let queue: String = r.get(0)?;
            f(&queue, r.get(1)?);
        }
        Ok(())
    }

    fn each_agent_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        agent: Option<&str>,
        queue: Option<&str>,
        f: &mut dyn FnMut(AgentCall<'_>),
    ) -> Result<()> {
        let mut stmt = self.sql().prepare_cached(AGENT_CALLS_SQL)?;
        let mut rows = stmt.query(params![start_ms, end_ms, agent, queue])?;
        while let Some(r) = rows.next()? {
            f(AgentCall {
                agent: r.get_ref(0)?.as_str().unwrap_or_default(),
                talk_ms: r.get(1)?,
                answered_at_ms: r.get(2)?,
                survey_score: r.get(3)?,
            });
        }
        Ok(())
    }

    fn session_totals(
        &self,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
        agent: Option<&str>,
    ) -> Result<Vec<SessionTotal>> {
        let mut stmt = self.sql().prepare_cached(SESSIONS_SQL)?;
        let rows = stmt.query_map(params![start_ms, end_ms, now_ms, agent], |r| {
            Ok(SessionTotal {
                agent: r.get(0)?,
                kind: r.get(1)?,
                reason: r.get(2)?,
                ms: r.get::<_, Option<i64>>(3)?.unwrap_or(0),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn report_lists(&self, before_ms: i64, name: Option<&str>) -> Result<Vec<ListRow>> {
        super::report_lists::report_lists(self.sql(), before_ms, name)
    }

    fn list_calendar(&self, list: i64) -> Result<(i64, BTreeSet<String>)> {
        super::report_lists::list_calendar(self.sql(), list)
    }

    fn list_events(
        &self,
        list: i64,
        kind: ListEventKind,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        super::report_lists::list_events(self.sql(), list, kind, start_ms, end_ms)
    }

    fn list_contact_states(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, u64)>> {
        super::report_lists::list_contact_states(self.sql(), list, start_ms, end_ms)
    }

    fn list_callback_requests(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ListCallbackRow>> {
        super::report_lists::list_callback_requests(self.sql(), list, start_ms, end_ms)
    }

    fn list_complaints(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
        default_reply_ms: i64,
    ) -> Result<Vec<ComplaintRow>> {
        super::report_lists::list_complaints(self.sql(), list, start_ms, end_ms, default_reply_ms)
    }

    fn list_agents(&self) -> Result<Vec<(String, i64)>> {
        super::report_lists::list_agents(self.sql())
    }

    fn agent_list_counts(
        &self,
        start_ms: i64,
        end_ms: i64,
        connects: bool,
    ) -> Result<Vec<(String, i64, u64)>> {
        super::report_lists::agent_list_counts(self.sql(), start_ms, end_ms, connects)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::api::ApiOp;
    use crate::store::sqlite::calls::tests::started;
    use crate::store::sqlite::calls::CallOp;
    use crate::store::sqlite::writer::{tests_apply, Op};

    fn reader_with(ops: Vec<Op>) -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        for op in &ops {
            tests_apply(&conn, op).unwrap();
        }
        (dir, Reader::from_connection(conn))
    }

    fn answered(id: u64, at: u64, agent: &str) -> Op {
        CallOp::Answered {
            id,
            answered_at_ms: at,
            agent: agent.into(),
            wait_ms: at - (1_000 + id),
            in_target: true,
        }
        .into()
    }

    fn ended(id: u64, at: u64, outcome: &'static str, talk: Option<u64>) -> Op {
        CallOp::Ended {
            id,
            ended_at_ms: at,
            outcome,
            queue: None,
            wait_ms: None,
            talk_ms: talk,
            short_abandon: (outcome == "abandoned").then_some(true),
            hangup_by: Some("caller"),
            hangup_cause: None,
            sip_code: None,
        }
        .into()
    }

    #[test]
    fn the_scans_range_over_calls_entered() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        for sql in [QUEUE_SQL, AGENT_CALLS_SQL] {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(params![0i64, 1i64, 60_000i64, None::<String>], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains("calls_entered (entered_at_ms>? AND entered_at_ms<?)"),
                "{plan}"
            );
        }
    }

    #[test]
    fn queue_scan_gives_each_call_its_bucket_and_outcome() {
        let (_d, r) = reader_with(vec![
            started(1, "sales").into(), // entered 1001
            answered(1, 1_500, "amy"),
            ended(1, 9_000, "answered", Some(7_500)),
            started(2, "sales").into(), // entered 1002, abandoned short
            ended(2, 1_100, "abandoned", None),
            started(3, "care").into(), // live and answered: counts as answered
            answered(3, 1_200, "bob"),
            started(4, "care").into(), // live, never answered: not visited
        ]);
        let mut seen = vec![];
        r.each_queue_call(1_000, 2_000, 2, None, &mut |c| {
            seen.push((
                c.queue.to_string(),
                c.bucket,
                c.outcome.to_string(),
                c.talk_ms,
                c.really_answered,
                c.answered_in_target,
                c.short_abandon,
            ))
        })
        .unwrap();
        seen.sort();
        assert_eq!(
            seen,
            [
                (
                    "care".into(),
                    1,
                    "answered".into(),
                    None,
                    false,
                    true,
                    false
                ),
                (
                    "sales".into(),
                    0,
                    "answered".into(),
                    Some(7_500),
                    true,
                    true,
                    false
                ),
                (
                    "sales".into(),
                    1,
                    "abandoned".into(),
                    None,
                    false,
                    false,
                    true
                ),
            ]
        );
        let mut n = 0;
        r.each_queue_call(1_000, 2_000, 2, Some("care"), &mut |_| n += 1)
            .unwrap();
        assert_eq!(n, 1);
        // The range is half-open on entered_at_ms.
        let mut n = 0;
        r.each_queue_call(1_002, 1_003, 1, None, &mut |_| n += 1)
            .unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn agent_scan_and_session_totals_clip_to_the_period() {
        let session = |kind, started_at_ms| ApiOp::SessionStart {
            agent: "amy".into(),
            kind,
            reason: (kind == "pause").then(|| "lunch".into()),
            started_at_ms,
        };
        let (_d, r) = reader_with(vec![
            started(1, "sales").into(),
            answered(1, 1_500, "amy"),
            ended(1, 9_000, "answered", Some(7_500)),
            started(2, "sales").into(),
            session("login", 500).into(),
            session("pause", 1_000).into(),
            ApiOp::SessionEnd {
                agent: "amy".into(),
                kind: "pause",
                ended_at_ms: 1_300,
            }
            .into(),
        ]);
        let mut calls = vec![];
        r.each_agent_call(0, 2_000, None, Some("sales"), &mut |c| {
            calls.push((c.agent.to_string(), c.talk_ms, c.answered_at_ms))
        })
        .unwrap();
        assert_eq!(calls, [("amy".to_string(), Some(7_500), 1_500)]);
        let mut totals = r.session_totals(0, 2_000, 1_800, Some("amy")).unwrap();
        totals.sort_by(|a, b| a.kind.cmp(&b.kind));
        let got: Vec<_> = totals
            .iter()
            .map(|t| (t.kind.as_str(), t.reason.as_str(), t.ms))
            .collect();
        // login open since 500, counted until now (1800); pause 1000..1300.
        assert_eq!(got, [("login", "", 1_300), ("pause", "lunch", 300)]);
    }
}
