//! What the HTTP API writes: the audit trail of state-changing requests, call dispositions, and
//! agent login/pause sessions (migration 3).

use super::writer::WriteError;
use rusqlite::{params, Connection};

/// A write on behalf of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiOp {
    /// One state-changing request, whatever came of it.
    Audit {
        at_ms: u64,
        /// agent | supervisor | wallboard, or None when the caller was not authenticated.
        token_role: Option<String>,
        /// The agent a role-`agent` token belongs to.
        agent: Option<String>,
        /// e.g. `agent.pause`, `call.disposition`.
        action: String,
        /// What it acted on (an agent id, a call id).
        target: Option<String>,
        /// The client's address, when known.
        from_addr: Option<String>,
        /// `ok`, or the error code answered (`forbidden`, `conflict`, ...).
        result: String,
    },
    /// Sets a call's disposition code and notes. The call must exist.
    Disposition {
        call: u64,
        code: String,
        notes: Option<String>,
    },
    /// An agent session (`login` or `pause`) starts.
    SessionStart {
        agent: String,
        kind: &'static str,
        reason: Option<String>,
        started_at_ms: u64,
    },
    /// Closes the agent's open sessions of `kind` (no-op when none is open).
    SessionEnd {
        agent: String,
        kind: &'static str,
        ended_at_ms: u64,
    },
}

impl ApiOp {
    /// For logs, without personal data.
    pub fn describe(&self) -> String {
        match self {
            ApiOp::Audit { action, .. } => format!("audit {action}"),
            ApiOp::Disposition { call, .. } => format!("call {call} disposition"),
            ApiOp::SessionStart { kind, .. } => format!("{kind} session start"),
            ApiOp::SessionEnd { kind, .. } => format!("{kind} session end"),
        }
    }
}

pub(super) fn apply(conn: &Connection, op: &ApiOp) -> Result<(), WriteError> {
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
            conn.prepare_cached(
                "INSERT INTO audit (at_ms, token_role, agent, action, target, from_addr, result)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                int(*at_ms)?,
                token_role,
                agent,
                action,
                target,
                from_addr,
                result
            ])?;
        }
        ApiOp::Disposition { call, code, notes } => {
            let n = conn
                .prepare_cached("UPDATE calls SET disposition = ?2, notes = ?3 WHERE id = ?1")?
                .execute(params![int(*call)?, code, notes])?;
            if n == 0 {
                return Err(WriteError::UnknownCall(*call));
            }
        }
        ApiOp::SessionStart {
            agent,
            kind,
            reason,
            started_at_ms,
        } => {
            conn.prepare_cached(
                "INSERT INTO agent_sessions (agent, kind, reason, started_at_ms)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![agent, kind, reason, int(*started_at_ms)?])?;
        }
        ApiOp::SessionEnd {
            agent,
            kind,
            ended_at_ms,
        } => {
            conn.prepare_cached(
                "UPDATE agent_sessions SET ended_at_ms = ?3
                 WHERE agent = ?1 AND kind = ?2 AND ended_at_ms IS NULL",
            )?
            .execute(params![agent, kind, int(*ended_at_ms)?])?;
        }
    }
    Ok(())
}

fn int(v: u64) -> Result<i64, rusqlite::Error> {
    i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::calls::tests::started;
    use crate::store::{open, Op};

    #[test]
    fn api_ops_write_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        crate::store::sqlite::writer::tests_apply(&conn, &Op::Call(started(1, "q"))).unwrap();
        let ops = [
            ApiOp::Audit {
                at_ms: 5,
                token_role: Some("agent".into()),
                agent: Some("1001".into()),
                action: "agent.pause".into(),
                target: Some("1001".into()),
                from_addr: Some("127.0.0.1:4000".into()),
                result: "ok".into(),
            },
            ApiOp::Disposition {
                call: 1,
                code: "resolved".into(),
                notes: Some("fine".into()),
            },
            ApiOp::SessionStart {
                agent: "1001".into(),
                kind: "pause",
                reason: Some("lunch".into()),
                started_at_ms: 10,
            },
            ApiOp::SessionEnd {
                agent: "1001".into(),
                kind: "pause",
                ended_at_ms: 20,
            },
        ];
        for op in &ops {
            apply(&conn, op).unwrap();
        }
        assert!(matches!(
            apply(
                &conn,
                &ApiOp::Disposition {
                    call: 9,
                    code: "x".into(),
                    notes: None
                }
            ),
            Err(WriteError::UnknownCall(9))
        ));
        let (d, n): (String, String) = conn
            .query_row(
                "SELECT disposition, notes FROM calls WHERE id = 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((d.as_str(), n.as_str()), ("resolved", "fine"));
        let audit: (String, String, String) = conn
            .query_row("SELECT token_role, action, result FROM audit", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(audit, ("agent".into(), "agent.pause".into(), "ok".into()));
        let s: (String, i64, i64) = conn
            .query_row(
                "SELECT reason, started_at_ms, ended_at_ms FROM agent_sessions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(s, ("lunch".into(), 10, 20));
    }
}
