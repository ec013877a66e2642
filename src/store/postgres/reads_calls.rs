//! [`CallRecords`], [`CallbackReads`] and [`StatsReads`] on PostgreSQL: the call-record pages
//! and the CDR scan, the queue callback requests, the calls the live figures are rebuilt from.

use super::reads::{flag, Param};
use super::PgConn;
use crate::store::reads::{
    CallEventRow, CallFilter, CallRecord, CallRecords, CallbackReads, CallbackRequestRow, CdrValue,
    OpenCallbacks, StatsCall, StatsReads,
};
use crate::store::Result;
use postgres::types::Type;
use postgres::Row;

const COLUMNS: &str = "id, sip_call_id, direction, caller_number, caller_name, dialed_number,
    queue, entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms, agent, outcome,
    answered_in_target, short_abandon, hangup_by, hangup_cause, sip_code, disposition, notes,
    recording_path, recording_error, survey_score";

fn record(r: &Row) -> Result<CallRecord> {
    let in_target: Option<i64> = r.try_get(14)?;
    let short: Option<i64> = r.try_get(15)?;
    Ok(CallRecord {
        id: r.try_get::<_, i64>(0)?.max(0) as u64,
        sip_call_id: r.try_get(1)?,
        direction: r.try_get(2)?,
        caller_number: r.try_get(3)?,
        caller_name: r.try_get(4)?,
        dialed_number: r.try_get(5)?,
        queue: r.try_get(6)?,
        entered_at_ms: r.try_get(7)?,
        answered_at_ms: r.try_get(8)?,
        ended_at_ms: r.try_get(9)?,
        wait_ms: r.try_get(10)?,
        talk_ms: r.try_get(11)?,
        agent: r.try_get(12)?,
        outcome: r.try_get(13)?,
        answered_in_target: in_target.map(|v| v != 0),
        short_abandon: short.map(|v| v != 0),
        hangup_by: r.try_get(16)?,
        hangup_cause: r.try_get(17)?,
        sip_code: r.try_get(18)?,
        disposition: r.try_get(19)?,
        notes: r.try_get(20)?,
        recording_path: r.try_get(21)?,
        recording_error: r.try_get(22)?,
        survey_score: r.try_get(23)?,
    })
}

impl CallRecords for PgConn {
    fn calls(&self, f: &CallFilter) -> Result<Vec<CallRecord>> {
        let mut sql = format!("SELECT {COLUMNS} FROM calls WHERE 1 = 1");
        let mut ints: Vec<(String, i64)> = Vec::new();
        let mut texts: Vec<(String, String)> = Vec::new();
        if let Some(v) = f.from {
            ints.push(("entered_at_ms >= $".into(), v));
        }
        if let Some(v) = f.to {
            ints.push(("entered_at_ms < $".into(), v));
        }
        for (col, v) in [
            ("queue", &f.queue),
            ("agent", &f.agent),
            ("outcome", &f.outcome),
        ] {
            if let Some(v) = v {
                texts.push((format!("{col} = $"), v.clone()));
            }
        }
        if let Some(v) = &f.caller {
            texts.push(("strpos(caller_number, $".into(), v.clone()));
        }
        let mut params: Vec<Param<'_>> = Vec::new();
        for (cond, v) in &ints {
            params.push(v);
            sql.push_str(&format!(" AND {cond}{}", params.len()));
        }
        for (cond, v) in &texts {
            params.push(v);
            let close = if cond.starts_with("strpos") {
                ") > 0"
            } else {
                ""
            };
            sql.push_str(&format!(" AND {cond}{}{close}", params.len()));
        }
        let cursor = f.cursor;
        if let Some((at, id)) = &cursor {
            params.push(at);
            params.push(id);
            let (a, b) = (params.len() - 1, params.len());
            sql.push_str(&format!(
                " AND (entered_at_ms < ${a} OR (entered_at_ms = ${a} AND id < ${b}))"
            ));
        }
        let limit = f.limit as i64 + 1;
        params.push(&limit);
        sql.push_str(&format!(
            " ORDER BY entered_at_ms DESC, id DESC LIMIT ${}",
            params.len()
        ));
        let rows = self.client.borrow_mut().query(sql.as_str(), &params)?;
        rows.iter().map(record).collect()
    }

    fn call(&self, id: u64) -> Result<Option<CallRecord>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(None);
        };
        let sql = format!("SELECT {COLUMNS} FROM calls WHERE id = $1");
        let row = self.client.borrow_mut().query_opt(sql.as_str(), &[&id])?;
        row.as_ref().map(record).transpose()
    }

    fn call_events(&self, id: u64) -> Result<Vec<CallEventRow>> {
        let Ok(id) = i64::try_from(id) else {
            return Ok(vec![]);
        };
        self.rows(
            "SELECT at_ms, kind, agent, detail FROM call_events WHERE call_id = $1 ORDER BY id",
            &[&id],
        )?
        .iter()
        .map(|r| {
            Ok(CallEventRow {
                at_ms: r.try_get(0)?,
                kind: r.try_get(1)?,
                agent: r.try_get(2)?,
                detail: r.try_get(3)?,
            })
        })
        .collect()
    }

    fn each_cdr(
        &self,
        start_ms: i64,
        end_ms: i64,
        f: &mut dyn FnMut(&[CdrValue<'_>]) -> bool,
    ) -> Result<u64> {
        let mut n = 0u64;
        self.each(
            "SELECT id, sip_call_id, direction, caller_number, caller_name, dialed_number, queue,
               entered_at_ms, entered_at_ms, answered_at_ms, ended_at_ms, wait_ms, talk_ms,
               agent, outcome, answered_in_target, short_abandon, hangup_by, hangup_cause,
               sip_code, disposition, notes, recording_path, recording_error, survey_score,
               caller_rtp_lost, caller_jitter_ms, agent_rtp_lost, agent_jitter_ms
             FROM calls WHERE entered_at_ms >= $1 AND entered_at_ms < $2
             ORDER BY entered_at_ms, id",
            &[&start_ms, &end_ms],
            &mut |r| {
                let mut values = Vec::with_capacity(r.len());
                for (i, c) in r.columns().iter().enumerate() {
                    values.push(match *c.type_() {
                        Type::INT8 => r
                            .try_get::<_, Option<i64>>(i)?
                            .map_or(CdrValue::Null, CdrValue::Integer),
                        Type::FLOAT8 => r
                            .try_get::<_, Option<f64>>(i)?
                            .map_or(CdrValue::Null, CdrValue::Real),
                        _ => r
                            .try_get::<_, Option<String>>(i)?
                            .map_or(CdrValue::Null, |s| CdrValue::Text(s.into())),
                    });
                }
                n += 1;
                Ok(f(&values))
            },
        )?;
        Ok(n)
    }
}

impl CallbackReads for PgConn {
    fn open_callbacks(&self, queue: Option<&str>) -> Result<Vec<(String, OpenCallbacks)>> {
        self.rows(
            "SELECT queue, count(*) FILTER (WHERE status = 'pending'),
               count(*) FILTER (WHERE status = 'in_progress'),
               min(CASE WHEN status = 'pending' THEN entered_at_ms END)
             FROM callback_requests
             WHERE status IN ('pending', 'in_progress') AND ($1::text IS NULL OR queue = $1)
             GROUP BY queue",
            &[&queue],
        )?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0)?,
                OpenCallbacks {
                    pending: r.try_get(1)?,
                    in_progress: r.try_get(2)?,
                    oldest: r.try_get(3)?,
                },
            ))
        })
        .collect()
    }

    fn callback_requests(
        &self,
        queue: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<(String, CallbackRequestRow)>> {
        self.rows(
            "SELECT r.id, r.call_id, r.queue, r.caller_number, r.caller_name,
               r.entered_at_ms, r.position, r.requested_at_ms, r.status, r.attempts,
               r.last_result, r.reason, r.done_at_ms, r.contact_id, l.name
             FROM callback_requests r
             LEFT JOIN outbound_contacts c ON c.id = r.contact_id
             LEFT JOIN outbound_lists l ON l.id = c.list_id
             WHERE ($1::text IS NULL OR r.queue = $1) AND ($2::text IS NULL OR r.status = $2)
             ORDER BY r.queue, r.entered_at_ms, r.id",
            &[&queue, &status],
        )?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(2)?,
                CallbackRequestRow {
                    id: r.try_get(0)?,
                    call_id: r.try_get(1)?,
                    caller_number: r.try_get(3)?,
                    caller_name: r.try_get(4)?,
                    entered_at_ms: r.try_get(5)?,
                    position: r.try_get(6)?,
                    requested_at_ms: r.try_get(7)?,
                    status: r.try_get(8)?,
                    attempts: r.try_get(9)?,
                    last_result: r.try_get(10)?,
                    reason: r.try_get(11)?,
                    done_at_ms: r.try_get(12)?,
                    contact_id: r.try_get(13)?,
                    list: r.try_get(14)?,
                },
            ))
        })
        .collect()
    }
}

impl StatsReads for PgConn {
    fn each_stats_call(
        &self,
        start_ms: i64,
        end_ms: i64,
        f: &mut dyn FnMut(StatsCall),
    ) -> Result<()> {
        self.each(
            "SELECT queue, outcome, answered_at_ms, ended_at_ms, wait_ms, talk_ms,
               answered_in_target, short_abandon
             FROM calls
             WHERE entered_at_ms >= $1 AND entered_at_ms < $2 AND queue IS NOT NULL",
            &[&start_ms, &end_ms],
            &mut |r| {
                f(StatsCall {
                    queue: r.try_get(0)?,
                    outcome: r.try_get(1)?,
                    answered_at_ms: r.try_get(2)?,
                    ended_at_ms: r.try_get(3)?,
                    wait_ms: r.try_get(4)?,
                    talk_ms: r.try_get(5)?,
                    answered_in_target: flag(r.try_get(6)?),
                    short_abandon: flag(r.try_get(7)?),
                });
                Ok(true)
            },
        )
    }
}
