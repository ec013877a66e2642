//! The writer's ops on PostgreSQL: call records ([`CallOp`]), API rows ([`ApiOp`]), registrar
//! bindings, in batches like SQLite's writer (one transaction per batch; a batch that fails is
//! retried op by op so one bad op costs only itself), and what the daemon does at start (the
//! stored bindings, closing the calls a previous run left live, the next call id) and for
//! retention.

use super::PgConn;
use crate::sip::registrar::{Binding, StoreOp};
use crate::store::outbound::Db;
use crate::store::{ApiOp, BatchDb, CallOp, Op, Result, StoreError, WriteDb};

fn int(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|e| StoreError::Backend(Box::new(e)))
}

fn opt_int(v: Option<u64>) -> Result<Option<i64>> {
    v.map(int).transpose()
}

fn unknown(id: u64) -> StoreError {
    StoreError::Backend(format!("no call with id {id}").into())
}

impl PgConn {
    /// Write `ops` (jobs excluded: the writer runs those between batches) in one transaction;
    /// when that fails, op by op. Returns how many ops failed (logged, counted).
    pub fn write_ops(&self, ops: &[Op]) -> usize {
        let all = (|| -> Result<()> {
            self.client.borrow_mut().batch_execute("BEGIN")?;
            for op in ops {
                if let Err(e) = self.apply(op) {
                    let _ = self.client.borrow_mut().batch_execute("ROLLBACK");
                    return Err(e);
                }
            }
            Ok(self.client.borrow_mut().batch_execute("COMMIT")?)
        })();
        if all.is_ok() {
            return 0;
        }
        let mut failed = 0;
        for op in ops {
            if let Err(e) = self.apply(op) {
                tracing::warn!(op = %op.describe(), error = %e, "store write failed");
                metrics::counter!("ctid_store_write_errors_total").increment(1);
                failed += 1;
            }
        }
        failed
    }

    /// Apply one op (a job is a no-op here).
    pub fn apply(&self, op: &Op) -> Result<()> {
        match op {
            Op::Binding(op) => self.apply_binding(op),
            Op::Call(op) => self.apply_call(op),
            Op::Api(op) => self.apply_api(op),
            Op::Job(_) => Ok(()),
        }
    }

    fn apply_binding(&self, op: &StoreOp) -> Result<()> {
        match op {
            StoreOp::Upsert(b) => self.exec(
                "INSERT INTO bindings (agent_id, uri, expires_at_ms, call_id, cseq, source, q,
                   updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (agent_id, uri) DO UPDATE SET expires_at_ms = $3, call_id = $4,
                   cseq = $5, source = $6, q = $7, updated_at_ms = $8",
                &[
                    &b.agent_id,
                    &b.uri,
                    &int(b.expires_at_ms)?,
                    &b.call_id,
                    &i64::from(b.cseq),
                    &b.source,
                    &b.q,
                    &int(b.updated_at_ms)?,
                ],
            )?,
            StoreOp::Delete { agent_id, uri } => self.exec(
                "DELETE FROM bindings WHERE agent_id = $1 AND uri = $2",
                &[agent_id, uri],
            )?,
        };
        Ok(())
    }

    fn apply_call(&self, op: &CallOp) -> Result<()> {
        let changed = match op {
            CallOp::Started {
                id,
                sip_call_id,
                direction,
                caller_number,
                caller_name,
                dialed_number,
                queue,
                entered_at_ms,
            } => {
                self.exec(
                    "INSERT INTO calls (id, sip_call_id, direction, caller_number, caller_name,
                       dialed_number, queue, entered_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
                    &[
                        &int(*id)?,
                        sip_call_id,
                        direction,
                        caller_number,
                        caller_name,
                        dialed_number,
                        queue,
                        &int(*entered_at_ms)?,
                    ],
                )?;
                1
            }
            CallOp::Event {
                id,
                at_ms,
                kind,
                agent,
                detail,
            } => self.exec(
                // The foreign key rejects an event for a call that was never started.
                "INSERT INTO call_events (call_id, at_ms, kind, agent, detail)
                 VALUES ($1, $2, $3, $4, $5)",
                &[&int(*id)?, &int(*at_ms)?, kind, agent, detail],
            )?,
            CallOp::Answered {
                id,
                answered_at_ms,
                agent,
                wait_ms,
                in_target,
            } => self.exec(
                "UPDATE calls SET answered_at_ms = $2, agent = $3, wait_ms = $4,
                   answered_in_target = $5
                 WHERE id = $1",
                &[
                    &int(*id)?,
                    &int(*answered_at_ms)?,
                    agent,
                    &int(*wait_ms)?,
                    &i64::from(*in_target),
                ],
            )?,
            CallOp::Ended {
                id,
                ended_at_ms,
                outcome,
                queue,
                wait_ms,
                talk_ms,
                short_abandon,
                hangup_by,
                hangup_cause,
                sip_code,
            } => self.exec(
                "UPDATE calls SET ended_at_ms = $2, outcome = $3, queue = COALESCE($4, queue),
                   wait_ms = COALESCE($5, wait_ms), talk_ms = $6, short_abandon = $7,
                   hangup_by = $8, hangup_cause = $9, sip_code = $10
                 WHERE id = $1",
                &[
                    &int(*id)?,
                    &int(*ended_at_ms)?,
                    outcome,
                    queue,
                    &opt_int(*wait_ms)?,
                    &opt_int(*talk_ms)?,
                    &short_abandon.map(i64::from),
                    hangup_by,
                    hangup_cause,
                    &sip_code.map(i64::from),
                ],
            )?,
            CallOp::Recording { id, path, error } => self.exec(
                "UPDATE calls SET recording_path = COALESCE($2, recording_path),
                   recording_error = COALESCE($3, recording_error)
                 WHERE id = $1",
                &[&int(*id)?, path, error],
            )?,
            CallOp::Survey { id, score } => self.exec(
                "UPDATE calls SET survey_score = $2 WHERE id = $1",
                &[&int(*id)?, &i64::from(*score)],
            )?,
            CallOp::Quality {
                id,
                caller_lost,
                caller_jitter_us,
                agent_lost,
                agent_jitter_us,
            } => self.exec(
                "UPDATE calls SET caller_rtp_lost = $2, caller_jitter_ms = $3::bigint / 1000.0,
                   agent_rtp_lost = $4, agent_jitter_ms = $5::bigint / 1000.0
                 WHERE id = $1",
                &[
                    &int(*id)?,
                    &int(*caller_lost)?,
                    &int(*caller_jitter_us)?,
                    &opt_int(*agent_lost)?,
                    &opt_int(*agent_jitter_us)?,
                ],
            )?,
            CallOp::CallbackRequested {
                id,
                queue,
                caller_number,
                caller_name,
                entered_at_ms,
                position,
                requested_at_ms,
            } => self.exec(
                "INSERT INTO callback_requests (call_id, queue, caller_number, caller_name,
                   entered_at_ms, position, requested_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &int(*id)?,
                    queue,
                    caller_number,
                    caller_name,
                    &int(*entered_at_ms)?,
                    &position.map(i64::from),
                    &int(*requested_at_ms)?,
                ],
            )?,
        };
        if changed == 0 {
            return Err(unknown(op.call_id()));
        }
        Ok(())
    }

    fn apply_api(&self, op: &ApiOp) -> Result<()> {
        match op {
            ApiOp::Audit {
                at_ms,
                token_role,
                agent,
                action,
                target,
                from_addr,
                result,
            } => {
                self.exec(
                    "INSERT INTO audit (at_ms, token_role, agent, action, target, from_addr,
                       result)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    &[
                        &int(*at_ms)?,
                        token_role,
                        agent,
                        action,
                        target,
                        from_addr,
                        result,
                    ],
                )?;
            }
            ApiOp::Disposition { call, code, notes } => {
                let n = self.exec(
                    "UPDATE calls SET disposition = $2, notes = $3 WHERE id = $1",
                    &[&int(*call)?, code, notes],
                )?;
                if n == 0 {
                    return Err(unknown(*call));
                }
            }
            ApiOp::SessionStart {
                agent,
                kind,
                reason,
                started_at_ms,
            } => {
                self.exec(
                    "INSERT INTO agent_sessions (agent, kind, reason, started_at_ms)
                     VALUES ($1, $2, $3, $4)",
                    &[agent, kind, reason, &int(*started_at_ms)?],
                )?;
            }
            ApiOp::SessionEnd {
                agent,
                kind,
                ended_at_ms,
            } => {
                self.exec(
                    "UPDATE agent_sessions SET ended_at_ms = $3
                     WHERE agent = $1 AND kind = $2 AND ended_at_ms IS NULL",
                    &[agent, kind, &int(*ended_at_ms)?],
                )?;
            }
        }
        Ok(())
    }

    /// Every stored binding (expired ones included; the registrar drops those).
    pub fn load_bindings(&self) -> Result<Vec<Binding>> {
        self.rows(
            "SELECT agent_id, uri, expires_at_ms, call_id, cseq, source, q, updated_at_ms
             FROM bindings",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(Binding {
                agent_id: r.try_get(0)?,
                uri: r.try_get(1)?,
                expires_at_ms: r.try_get::<_, i64>(2)?.max(0) as u64,
                call_id: r.try_get(3)?,
                cseq: r.try_get::<_, i64>(4)?.clamp(0, u32::MAX as i64) as u32,
                source: r.try_get(5)?,
                q: r.try_get(6)?,
                updated_at_ms: r.try_get::<_, i64>(7)?.max(0) as u64,
            })
        })
        .collect()
    }

    /// At start: every call without an end is closed as `interrupted` at `now_ms` (hangup by
    /// ctid, an `interrupted` event added), in one transaction. Returns how many.
    pub fn interrupt_live_calls(&self, now_ms: u64) -> Result<usize> {
        let now = int(now_ms)?;
        let tx = self.begin()?;
        self.exec(
            "INSERT INTO call_events (call_id, at_ms, kind)
             SELECT id, $1, 'interrupted' FROM calls WHERE ended_at_ms IS NULL ORDER BY id",
            &[&now],
        )?;
        let n = self.exec(
            "UPDATE calls SET ended_at_ms = $1, outcome = 'interrupted', hangup_by = 'ctid'
             WHERE ended_at_ms IS NULL",
            &[&now],
        )?;
        tx.commit()?;
        Ok(n as usize)
    }

    /// The first free call id: max(id)+1 (1 for an empty table).
    pub fn next_call_id(&self) -> Result<u64> {
        let max: i64 = self
            .one("SELECT COALESCE(MAX(id), 0) FROM calls", &[])?
            .try_get(0)?;
        Ok(max.max(0) as u64 + 1)
    }
}

impl WriteDb for PgConn {
    fn outbound(&self) -> &Db {
        self
    }

    fn purge_batch(&self, cutoff_ms: u64, batch: usize) -> Result<usize> {
        let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
        let tx = self.begin()?;
        let rows: Vec<(i64, Option<String>)> = self
            .rows(
                "SELECT id, recording_path FROM calls
                 WHERE entered_at_ms < $1 AND ended_at_ms IS NOT NULL
                 ORDER BY entered_at_ms LIMIT $2",
                &[&cutoff, &(batch as i64)],
            )?
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect::<Result<_>>()?;
        let ids: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        self.exec("DELETE FROM call_events WHERE call_id = ANY($1)", &[&ids])?;
        self.exec("DELETE FROM calls WHERE id = ANY($1)", &[&ids])?;
        tx.commit()?;
        for (id, path) in &rows {
            if let Some(p) = path {
                match std::fs::remove_file(p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(call = id, path = %p, error = %e, "cannot delete a purged call's recording")
                    }
                }
            }
        }
        Ok(rows.len())
    }

    fn recover(&self) {
        if self.in_tx.get() {
            self.in_tx.set(false);
            let _ = self.client.borrow_mut().batch_execute("ROLLBACK");
        }
    }
}

impl BatchDb for PgConn {
    fn commit_ops(&self, ops: &[Op]) -> usize {
        self.write_ops(ops)
    }
}
