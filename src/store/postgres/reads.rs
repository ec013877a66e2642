//! The query traits of `crate::store::reads` on PostgreSQL: what the reports read (here), the
//! call-record routes, the callback pages and the live figures at start (`reads_calls.rs`), with the same rows as SQLite's
//! (`super::super::sqlite::{reports, report_lists, call_records, callbacks, stats}`). Large scans
//! stream their rows (`query_raw`), so a month of a big center is read in constant memory.

use super::{u32_of, PgConn};
use crate::store::reads::{
    AgentCall, ComplaintRow, ListCallbackRow, ListEventKind, ListRow, QueueCall, ReportReads,
    SessionTotal,
};
use crate::store::Result;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::Row;
use std::collections::BTreeSet;

pub(super) type Param<'a> = &'a (dyn ToSql + Sync);

impl PgConn {
    /// Stream the rows of `sql` to `f`, which returns false to stop.
    pub(super) fn each(
        &self,
        sql: &'static str,
        params: &[Param<'_>],
        f: &mut dyn FnMut(&Row) -> Result<bool>,
    ) -> Result<()> {
        let s = self.statement(sql)?;
        let mut c = self.client.borrow_mut();
        let mut rows = c.query_raw(&s, params.iter().copied())?;
        while let Some(r) = rows.next()? {
            if !f(&r)? {
                break;
            }
        }
        Ok(())
    }
}

pub(super) fn flag(v: Option<i64>) -> bool {
    v.unwrap_or(0) != 0
}

impl ReportReads for PgConn {
    fn each_queue_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        queue: Option<&str>,
        f: &mut dyn FnMut(QueueCall<'_>),
    ) -> Result<()> {
        self.each(
            "SELECT queue, (entered_at_ms - $1) / $3,
               CASE WHEN outcome IN ('answered', 'abandoned', 'timeout', 'overflow', 'rejected',
                                     'callback_requested')
                    THEN outcome
                    WHEN answered_at_ms IS NOT NULL THEN 'answered' END,
               wait_ms, talk_ms, outcome = 'answered', answered_in_target, short_abandon
             FROM calls
             WHERE entered_at_ms >= $1 AND entered_at_ms < $2 AND queue IS NOT NULL
               AND ($4::text IS NULL OR queue = $4)",
            &[&start_ms, &end_ms, &step_ms, &queue],
            &mut |r| {
                let outcome: Option<&str> = r.try_get(2)?;
                if let Some(outcome) = outcome {
                    f(QueueCall {
                        queue: r.try_get(0)?,
                        bucket: r.try_get(1)?,
                        outcome,
                        wait_ms: r.try_get(3)?,
                        talk_ms: r.try_get(4)?,
                        really_answered: r.try_get::<_, Option<bool>>(5)?.unwrap_or(false),
                        answered_in_target: flag(r.try_get(6)?),
                        short_abandon: flag(r.try_get(7)?),
                    });
                }
                Ok(true)
            },
        )
    }

    fn each_callback_request(
        &self,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        queue: Option<&str>,
        f: &mut dyn FnMut(&str, i64),
    ) -> Result<()> {
        self.each(
            "SELECT queue, (entered_at_ms - $1) / $3 FROM callback_requests
             WHERE entered_at_ms >= $1 AND entered_at_ms < $2
               AND ($4::text IS NULL OR queue = $4)",
            &[&start_ms, &end_ms, &step_ms, &queue],
            &mut |r| {
                f(r.try_get(0)?, r.try_get(1)?);
                Ok(true)
            },
        )
    }

    fn each_agent_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        agent: Option<&str>,
        queue: Option<&str>,
        f: &mut dyn FnMut(AgentCall<'_>),
    ) -> Result<()> {
        self.each(
            "SELECT agent, talk_ms, answered_at_ms, survey_score FROM calls
             WHERE entered_at_ms >= $1 AND entered_at_ms < $2
               AND agent IS NOT NULL AND answered_at_ms IS NOT NULL
               AND ($3::text IS NULL OR agent = $3) AND ($4::text IS NULL OR queue = $4)",
            &[&start_ms, &end_ms, &agent, &queue],
            &mut |r| {
                f(AgentCall {
                    agent: r.try_get(0)?,
                    talk_ms: r.try_get(1)?,
                    answered_at_ms: r.try_get(2)?,
                    survey_score: r.try_get(3)?,
                });
                Ok(true)
            },
        )
    }

    fn session_totals(
        &self,
        start_ms: i64,
        end_ms: i64,
        now_ms: i64,
        agent: Option<&str>,
    ) -> Result<Vec<SessionTotal>> {
        self.rows(
            "SELECT agent, kind, COALESCE(reason, ''),
               SUM(GREATEST(0, LEAST(COALESCE(ended_at_ms, $3), $2)
                   - GREATEST(started_at_ms, $1)))::bigint
             FROM agent_sessions
             WHERE started_at_ms < $2 AND (ended_at_ms IS NULL OR ended_at_ms > $1)
               AND ($4::text IS NULL OR agent = $4)
             GROUP BY agent, kind, COALESCE(reason, '')",
            &[&start_ms, &end_ms, &now_ms, &agent],
        )?
        .iter()
        .map(|r| {
            Ok(SessionTotal {
                agent: r.try_get(0)?,
                kind: r.try_get(1)?,
                reason: r.try_get(2)?,
                ms: r.try_get::<_, Option<i64>>(3)?.unwrap_or(0),
            })
        })
        .collect()
    }

    fn report_lists(&self, before_ms: i64, name: Option<&str>) -> Result<Vec<ListRow>> {
        self.rows(
            "SELECT id, name, purpose, state, queue, quota_per_day, agent_quota_per_day,
               created_at_ms, state_changed_at_ms
             FROM outbound_lists
             WHERE created_at_ms < $1 AND ($2::text IS NULL OR name = $2)
             ORDER BY name",
            &[&before_ms, &name],
        )?
        .iter()
        .map(|r| {
            let state: String = r.try_get(3)?;
            let changed: i64 = r.try_get(8)?;
            let quota: Option<i64> = r.try_get(5)?;
            let agent_quota: Option<i64> = r.try_get(6)?;
            Ok(ListRow {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                purpose: r.try_get(2)?,
                stopped_at_ms: (state == "stopped").then_some(changed),
                state,
                queue: r.try_get(4)?,
                quota: quota.map(u32_of).transpose()?,
                agent_quota: agent_quota.map(u32_of).transpose()?,
                created_at_ms: r.try_get(7)?,
            })
        })
        .collect()
    }

    fn list_calendar(&self, list: i64) -> Result<(i64, BTreeSet<String>)> {
        let mut mask = 0i64;
        for r in self.rows(
            "SELECT days FROM outbound_list_windows WHERE list_id = $1",
            &[&list],
        )? {
            mask |= r.try_get::<_, i64>(0)?;
        }
        let holidays = self
            .rows(
                "SELECT date FROM outbound_list_holidays WHERE list_id = $1",
                &[&list],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect::<Result<_>>()?;
        Ok((mask, holidays))
    }

    fn list_events(
        &self,
        list: i64,
        kind: ListEventKind,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        let sql = match kind {
            ListEventKind::ContactAdded => {
                "SELECT created_at_ms, NULL::text, NULL::text FROM outbound_contacts
                 WHERE list_id = $1 AND created_at_ms >= $2 AND created_at_ms < $3"
            }
            ListEventKind::AttemptStarted => {
                "SELECT started_at_ms, result, reason FROM outbound_attempts
                 WHERE list_id = $1 AND started_at_ms >= $2 AND started_at_ms < $3"
            }
            ListEventKind::Connect => {
                "SELECT answered_at_ms, NULL::text, NULL::text FROM outbound_attempts
                 WHERE list_id = $1 AND answered_at_ms >= $2 AND answered_at_ms < $3"
            }
            ListEventKind::ContactFinished => {
                "SELECT updated_at_ms, state, NULL::text FROM outbound_contacts
                 WHERE list_id = $1 AND state IN ('done', 'unreachable')
                   AND updated_at_ms >= $2 AND updated_at_ms < $3"
            }
            ListEventKind::RetryScheduled => {
                "SELECT a.ended_at_ms, NULL::text, NULL::text FROM outbound_attempts a
                 JOIN outbound_contacts c ON c.id = a.contact_id
                 WHERE a.list_id = $1 AND a.ended_at_ms >= $2 AND a.ended_at_ms < $3
                   AND a.result IS NOT NULL AND a.result != 'skipped'
                   AND (c.state = 'pending' OR EXISTS (SELECT 1 FROM outbound_attempts b
                        WHERE b.contact_id = a.contact_id AND b.id > a.id))"
            }
        };
        self.rows(sql, &[&list, &start_ms, &end_ms])?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get::<_, Option<String>>(1)?.unwrap_or_default(),
                    r.try_get::<_, Option<String>>(2)?.unwrap_or_default(),
                ))
            })
            .collect()
    }

    fn list_contact_states(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, u64)>> {
        self.rows(
            "SELECT state, count(*) FROM outbound_contacts c
             WHERE list_id = $1 AND ((created_at_ms >= $2 AND created_at_ms < $3)
                OR EXISTS (SELECT 1 FROM outbound_attempts a WHERE a.contact_id = c.id
                           AND a.started_at_ms >= $2 AND a.started_at_ms < $3))
             GROUP BY state",
            &[&list, &start_ms, &end_ms],
        )?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64)))
        .collect()
    }

    fn list_callback_requests(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<ListCallbackRow>> {
        self.rows(
            "SELECT r.status, r.requested_at_ms, r.done_at_ms
             FROM callback_requests r JOIN outbound_contacts c ON c.id = r.contact_id
             WHERE c.list_id = $1 AND r.requested_at_ms >= $2 AND r.requested_at_ms < $3",
            &[&list, &start_ms, &end_ms],
        )?
        .iter()
        .map(|r| {
            Ok(ListCallbackRow {
                status: r.try_get(0)?,
                requested_at_ms: r.try_get(1)?,
                done_at_ms: r.try_get(2)?,
            })
        })
        .collect()
    }

    fn list_complaints(
        &self,
        list: i64,
        start_ms: i64,
        end_ms: i64,
        default_reply_ms: i64,
    ) -> Result<Vec<ComplaintRow>> {
        self.rows(
            "SELECT c.created_at_ms, COALESCE(c.due_at_ms, c.created_at_ms + $4), c.state,
               c.updated_at_ms,
               (SELECT min(answered_at_ms) FROM outbound_attempts a
                WHERE a.contact_id = c.id AND a.answered_at_ms IS NOT NULL)
             FROM outbound_contacts c
             WHERE c.list_id = $1 AND c.created_at_ms >= $2 AND c.created_at_ms < $3",
            &[&list, &start_ms, &end_ms, &default_reply_ms],
        )?
        .iter()
        .map(|r| {
            Ok(ComplaintRow {
                created_at_ms: r.try_get(0)?,
                due_at_ms: r.try_get(1)?,
                state: r.try_get(2)?,
                updated_at_ms: r.try_get(3)?,
                first_answer_at_ms: r.try_get(4)?,
            })
        })
        .collect()
    }

    fn list_agents(&self) -> Result<Vec<(String, i64)>> {
        self.rows("SELECT agent, list_id FROM outbound_list_agents", &[])?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    fn agent_list_counts(
        &self,
        start_ms: i64,
        end_ms: i64,
        connects: bool,
    ) -> Result<Vec<(String, i64, u64)>> {
        let sql = if connects {
            "SELECT agent, list_id, count(*) FROM outbound_attempts
             WHERE agent IS NOT NULL AND answered_at_ms >= $1 AND answered_at_ms < $2
             GROUP BY 1, 2"
        } else {
            "SELECT agent, list_id, count(*) FROM outbound_attempts
             WHERE agent IS NOT NULL AND started_at_ms >= $1 AND started_at_ms < $2
               AND (result IS NULL OR result != 'skipped')
             GROUP BY 1, 2"
        };
        self.rows(sql, &[&start_ms, &end_ms])?
            .iter()
            .map(|r| {
                Ok((
                    r.try_get(0)?,
                    r.try_get(1)?,
                    r.try_get::<_, i64>(2)?.max(0) as u64,
                ))
            })
            .collect()
    }
}
