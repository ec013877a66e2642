//! Registrar bindings: the start-up read and the writes the registrar asks for.

use crate::sip::registrar::{Binding, StoreOp};
use rusqlite::{params, Connection};

/// Every stored binding (expired ones included; the registrar drops those).
pub fn load_bindings(conn: &Connection) -> Result<Vec<Binding>, rusqlite::Error> {
    let mut stmt = conn.prepare(
        "SELECT agent_id, uri, expires_at_ms, call_id, cseq, source, q, updated_at_ms FROM bindings",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(Binding {
            agent_id: r.get(0)?,
            uri: r.get(1)?,
            expires_at_ms: r.get::<_, i64>(2)?.max(0) as u64,
            call_id: r.get(3)?,
            cseq: r.get::<_, i64>(4)?.clamp(0, u32::MAX as i64) as u32,
            source: r.get(5)?,
            q: r.get(6)?,
            updated_at_ms: r.get::<_, i64>(7)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

pub(super) fn apply(conn: &Connection, op: &StoreOp) -> Result<(), rusqlite::Error> {
    match op {
        StoreOp::Upsert(b) => conn
            .prepare_cached(
                "INSERT INTO bindings (agent_id, uri, expires_at_ms, call_id, cseq, source, q, updated_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (agent_id, uri) DO UPDATE SET expires_at_ms = ?3, call_id = ?4,
                   cseq = ?5, source = ?6, q = ?7, updated_at_ms = ?8",
            )?
            .execute(params![
                b.agent_id,
                b.uri,
                b.expires_at_ms as i64,
                b.call_id,
                b.cseq as i64,
                b.source,
                b.q,
                b.updated_at_ms as i64
            ])
            .map(drop),
        StoreOp::Delete { agent_id, uri } => conn
            .prepare_cached("DELETE FROM bindings WHERE agent_id = ?1 AND uri = ?2")?
            .execute(params![agent_id, uri])
            .map(drop),
    }
}
