//! [`CallRecords`] on SQLite: the pages and single records of `GET /api/v1/calls…`, and the
//! CDR export's scan (streamed row by row: constant memory).

use super::pool::Reader;
use crate::store::reads::{CallEventRow, CallFilter, CallRecord, CallRecords, CdrValue};
use crate::store::Result;
use rusqlite::types::{Value, ValueRef};
use rusqlite::{params, Row};

const COLUMNS: &str =
    "id, sip_call_id, direction, caller_number, caller_name, dialed_number, queue,
    entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms, agent, outcome,
    answered_in_target, short_abandon, hangup_by, hangup_cause, sip_code, disposition, notes,
    recording_path, recording_error, survey_score";

/// The CDR columns (`crate::report::export::COLUMNS`), `entered_at` as `entered_at_ms`.
const CDR_SQL: &str = "
SELECT id, sip_call_id, direction, caller_number, caller_name, dialed_number, queue,
       entered_at_ms, entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms, agent, outcome,
       answered_in_target, short_abandon, hangup_by, hangup_cause, sip_code, disposition, notes,
       recording_path, recording_error, survey_score, caller_rtp_lost, caller_jitter_ms,
       agent_rtp_lost, agent_jitter_ms
FROM calls INDEXED BY calls_entered
WHERE entered_at_ms >= ?1 AND entered_at_ms < ?2
ORDER BY entered_at_ms, id";
const CDR_COLUMNS: usize = 29;

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

impl CallRecords for Reader {
    fn calls(&self, f: &CallFilter) -> Result<Vec<CallRecord>> {
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
        let rows = self
            .sql()
            .prepare(&sql)?
            .query_map(rusqlite::params_from_iter(args), record)?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn call(&self, id: u64) -> Result<Option<CallRecord>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        match self.sql().query_row(
            &format!("SELECT {COLUMNS} FROM calls WHERE id = ?1"),
            [id],
            record,
        ) {
            Ok(r) => Ok(Some(r)),
            Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn call_events(&self, id: u64) -> Result<Vec<CallEventRow>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(vec![]);
        };
        let rows = self
            .sql()
            .prepare_cached(
                "SELECT at_ms, kind, agent, detail FROM call_events WHERE call_id = ?1 ORDER BY id",
            )?
            .query_map([id], |r| {
                Ok(CallEventRow {
                    at_ms: r.get(0)?,
                    kind: r.get(1)?,
                    agent: r.get(2)?,
                    detail: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    fn each_cdr(
        &self,
        start_ms: i64,
        end_ms: i64,
        f: &mut dyn FnMut(&[CdrValue<'_>]) -> bool,
    ) -> Result<u64> {
        let mut stmt = self.sql().prepare(CDR_SQL)?;
        let mut rows = stmt.query(params![start_ms, end_ms])?;
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            let mut values: [CdrValue<'_>; CDR_COLUMNS] = std::array::from_fn(|_| CdrValue::Null);
            for (i, v) in values.iter_mut().enumerate() {
                *v = match r.get_ref(i)? {
                    ValueRef::Null => CdrValue::Null,
                    ValueRef::Integer(v) => CdrValue::Integer(v),
                    ValueRef::Real(v) => CdrValue::Real(v),
                    ValueRef::Text(t) | ValueRef::Blob(t) => {
                        CdrValue::Text(String::from_utf8_lossy(t))
                    }
                };
            }
            n += 1;
            if !f(&values) {
                break;
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::calls::tests::started;
    use crate::store::sqlite::calls::CallOp;
    use crate::store::test_support;

    /// Calls 1..=5 entered at 1001..=1005 in queue sales (odd) or care (even); call 2 answered
    /// by amy, with one event; call 5's caller +4930555.
    fn reader() -> (tempfile::TempDir, Reader) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        for id in 1..=5 {
            let mut op = started(id, if id % 2 == 1 { "sales" } else { "care" });
            if let (5, CallOp::Started { caller_number, .. }) = (id, &mut op) {
                *caller_number = Some("+4930555".into());
            }
            test_support::apply(&conn, op);
        }
        test_support::apply(
            &conn,
            CallOp::Answered {
                id: 2,
                answered_at_ms: 1_500,
                agent: "amy".into(),
                wait_ms: 498,
                in_target: true,
            },
        );
        test_support::apply(
            &conn,
            CallOp::Event {
                id: 2,
                at_ms: 1_500,
                kind: "answered",
                agent: Some("amy".into()),
                detail: None,
            },
        );
        (dir, test_support::reader(conn))
    }

    fn ids(rows: &[CallRecord]) -> Vec<u64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn pages_newest_first_with_filters_and_a_cursor() {
        let (_d, r) = reader();
        let all = CallFilter {
            limit: 2,
            ..CallFilter::default()
        };
        assert_eq!(ids(&r.calls(&all).unwrap()), [5, 4, 3], "limit + 1 rows");
        let next = CallFilter {
            cursor: Some((1_004, 4)),
            ..all.clone()
        };
        assert_eq!(ids(&r.calls(&next).unwrap()), [3, 2, 1]);
        let sales = CallFilter {
            queue: Some("sales".into()),
            from: Some(1_002),
            to: Some(1_005),
            limit: 10,
            ..CallFilter::default()
        };
        assert_eq!(ids(&r.calls(&sales).unwrap()), [3]);
        let amy = CallFilter {
            agent: Some("amy".into()),
            limit: 10,
            ..CallFilter::default()
        };
        assert_eq!(ids(&r.calls(&amy).unwrap()), [2]);
        let caller = CallFilter {
            caller: Some("0555".into()),
            limit: 10,
            ..CallFilter::default()
        };
        assert_eq!(ids(&r.calls(&caller).unwrap()), [5]);
    }

    #[test]
    fn one_call_and_its_events() {
        let (_d, r) = reader();
        let c = r.call(2).unwrap().unwrap();
        assert_eq!(c.agent.as_deref(), Some("amy"));
        assert_eq!(c.answered_in_target, Some(true));
        assert_eq!(c.queue.as_deref(), Some("care"));
        assert!(r.call(99).unwrap().is_none());
        assert!(r.call(u64::MAX).unwrap().is_none());
        let ev = r.call_events(2).unwrap();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].kind, "answered");
        assert!(r.call_events(1).unwrap().is_empty());
    }

    #[test]
    fn the_cdr_scan_is_oldest_first_and_can_stop() {
        let (_d, r) = reader();
        fn keep(v: &CdrValue<'_>) -> CdrValue<'static> {
            match v {
                CdrValue::Text(t) => CdrValue::Text(t.to_string().into()),
                CdrValue::Null => CdrValue::Null,
                CdrValue::Integer(i) => CdrValue::Integer(*i),
                CdrValue::Real(x) => CdrValue::Real(*x),
            }
        }
        let mut seen = vec![];
        let n = r
            .each_cdr(1_002, 1_005, &mut |row| {
                assert_eq!(row.len(), CDR_COLUMNS);
                seen.push((keep(&row[0]), keep(&row[7]), keep(&row[13])));
                true
            })
            .unwrap();
        assert_eq!(n, 3);
        assert_eq!(
            seen,
            [
                (
                    CdrValue::Integer(2),
                    CdrValue::Integer(1_002),
                    CdrValue::Text("amy".into())
                ),
                (
                    CdrValue::Integer(3),
                    CdrValue::Integer(1_003),
                    CdrValue::Null
                ),
                (
                    CdrValue::Integer(4),
                    CdrValue::Integer(1_004),
                    CdrValue::Null
                ),
            ]
        );
        let mut visits = 0;
        let n = r
            .each_cdr(0, i64::MAX, &mut |_| {
                visits += 1;
                false
            })
            .unwrap();
        assert_eq!((n, visits), (1, 1));
    }
}
