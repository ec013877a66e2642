//! [`StatsReads`] on SQLite: the calls today's live figures are rebuilt from at start.

use super::pool::Reader;
use crate::store::reads::{StatsCall, StatsReads};
use crate::store::Result;
use rusqlite::params;

impl StatsReads for Reader {
    fn each_stats_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        f: &mut dyn FnMut(StatsCall),
    ) -> Result<()> {
        let mut stmt = self.sql().prepare_cached(
            "SELECT queue, outcome, answered_at_ms, ended_at_ms, wait_ms, talk_ms,
                    answered_in_target, short_abandon
             FROM calls
             WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2 AND queue IS NOT NULL",
        )?;
        let mut rows = stmt.query(params![start_ms, end_ms])?;
        while let Some(r) = rows.next()? {
            f(StatsCall {
                queue: r.get(0)?,
                outcome: r.get(1)?,
                answered_at_ms: r.get(2)?,
                ended_at_ms: r.get(3)?,
                wait_ms: r.get(4)?,
                talk_ms: r.get(5)?,
                answered_in_target: r.get::<_, Option<bool>>(6)?.unwrap_or(false),
                short_abandon: r.get::<_, Option<bool>>(7)?.unwrap_or(false),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::calls::tests::started;
    use crate::store::sqlite::calls::CallOp;
    use crate::store::sqlite::writer::tests_apply;

    #[test]
    fn visits_the_calls_with_a_queue_that_entered_in_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        for op in [
            started(1, "q"), // entered 1001
            started(2, "q"), // entered 1002
            CallOp::Started {
                id: 3,
                sip_call_id: "out".into(),
                direction: "outbound",
                caller_number: None,
                caller_name: None,
                dialed_number: None,
                queue: None,
                entered_at_ms: 1_001,
            },
            CallOp::Answered {
                id: 1,
                answered_at_ms: 1_500,
                agent: "amy".into(),
                wait_ms: 499,
                in_target: true,
            },
        ] {
            tests_apply(&conn, &op.into()).unwrap();
        }
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT queue FROM calls
                 WHERE entered_at_ms >= 1 AND entered_at_ms < 2 AND queue IS NOT NULL",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("calls_entered"), "{plan}");
        let r = Reader::from_connection(conn);
        let mut seen = vec![];
        r.each_stats_call(1_000, 1_002, &mut |c| seen.push(c))
            .unwrap();
        assert_eq!(
            seen,
            [StatsCall {
                queue: "q".into(),
                outcome: None,
                answered_at_ms: Some(1_500),
                ended_at_ms: None,
                wait_ms: Some(499),
                talk_ms: None,
                answered_in_target: true,
                short_abandon: false,
            }]
        );
    }
}
