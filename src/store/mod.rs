//! Durable state in SQLite: schema migrations, one writer thread fed by a channel, and the reads
//! the daemon needs at start.
//!
//! Owns: the database file (`<data_dir>/ctid.db`), its schema, and every SQL statement. Writes are
//! batched into one transaction per wake-up of the writer thread, so a burst of REGISTERs costs one
//! fsync. Nothing here runs on the async executor: the writer is a plain thread, and the start-up
//! reads happen before the runtime serves traffic.
//!
//! Must not know: SIP parsing, sockets, calls.

use crate::sip::registrar::{Binding, StoreOp};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use thiserror::Error;
use tokio::sync::mpsc;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("data directory {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the store writer thread: {0}")]
    Thread(std::io::Error),
}

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file has come.
const MIGRATIONS: &[&str] = &[
    // 1: registrar bindings
    "CREATE TABLE bindings (
        agent_id      TEXT NOT NULL,
        uri           TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        call_id       TEXT NOT NULL,
        cseq          INTEGER NOT NULL,
        source        TEXT NOT NULL,
        q             TEXT,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (agent_id, uri)
    );",
];

/// Open (creating if needed) the database under `data_dir` and bring its schema up to date.
pub fn open(data_dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let path = data_dir.join("ctid.db");
    let err = |source| StoreError::Sqlite {
        path: path.clone(),
        source,
    };
    let conn = Connection::open(&path).map_err(err)?;
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;",
    )
    .map_err(err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.unchecked_transaction().map_err(err)?;
        tx.execute_batch(sql).map_err(err)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))
            .map_err(err)?;
        tx.commit().map_err(err)?;
    }
    Ok(conn)
}

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

fn apply(conn: &Connection, op: &StoreOp) -> Result<(), rusqlite::Error> {
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

/// Handle to the writer thread. Dropping every sender lets the thread finish its queue and exit;
/// [`Writer::join`] waits for that.
pub struct Writer {
    pub sender: mpsc::Sender<StoreOp>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Start the writer on `conn`. `queue` bounds the number of pending writes.
    pub fn start(conn: Connection, queue: usize) -> Result<Writer, StoreError> {
        let (sender, mut rx) = mpsc::channel::<StoreOp>(queue);
        let thread = std::thread::Builder::new()
            .name("ctid-store".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(256);
                while let Some(op) = rx.blocking_recv() {
                    batch.push(op);
                    while batch.len() < 1024 {
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    let started = std::time::Instant::now();
                    if let Err(e) = write_batch(&conn, &batch) {
                        tracing::error!(error = %e, lost = batch.len(), "store write failed");
                        metrics::counter!("ctid_store_write_errors_total").increment(1);
                    }
                    metrics::histogram!("ctid_store_write_seconds")
                        .record(started.elapsed().as_secs_f64());
                    batch.clear();
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Writer { sender, thread })
    }

    /// Close the queue and wait until everything queued is written.
    pub fn join(self) {
        drop(self.sender);
        if self.thread.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
    }
}

fn write_batch(conn: &Connection, batch: &[StoreOp]) -> Result<(), rusqlite::Error> {
    let tx = conn.unchecked_transaction()?;
    for op in batch {
        apply(&tx, op)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(uri: &str) -> Binding {
        Binding {
            agent_id: "a1".into(),
            uri: uri.into(),
            expires_at_ms: 10_000,
            call_id: "c".into(),
            cseq: 3,
            source: "udp:127.0.0.1:5070".into(),
            q: Some("0.5".into()),
            updated_at_ms: 5,
        }
    }

    #[test]
    fn bindings_round_trip_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 16).unwrap();
        w.sender
            .blocking_send(StoreOp::Upsert(binding("sip:a@h")))
            .unwrap();
        w.sender
            .blocking_send(StoreOp::Upsert(binding("sip:b@h")))
            .unwrap();
        let mut updated = binding("sip:a@h");
        updated.cseq = 4;
        w.sender
            .blocking_send(StoreOp::Upsert(updated.clone()))
            .unwrap();
        w.sender
            .blocking_send(StoreOp::Delete {
                agent_id: "a1".into(),
                uri: "sip:b@h".into(),
            })
            .unwrap();
        w.join();
        let conn = open(dir.path()).unwrap();
        assert_eq!(load_bindings(&conn).unwrap(), vec![updated]);
    }

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()).unwrap());
        let conn = open(dir.path()).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }
}
