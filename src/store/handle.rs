//! [`Store`]: what the daemon hands every part that reads or writes durable state — the writer
//! thread's queue and the pool of readers. Cheap to clone.
//!
//! Reads ([`Store::read`]) run on a pooled reader off the async executor; writes are [`Op`]s
//! sent to the writer ([`Store::sender`]), or, for work that needs its own transaction, a job
//! the writer runs in queue order on its connection seen through the backend-neutral traits:
//! the callback lists of `crate::outbound` ([`Store::sql_write`], on an
//! [`OutboundDb`](super::outbound::OutboundDb)) and retention ([`Store::purge_batch_blocking`]).

use super::outbound::Db;
use super::sqlite::writer::Job;
use super::{Op, ReadPool, Reader, StoreError, WriteDb};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

#[derive(Clone)]
pub struct Store {
    writer: mpsc::Sender<Op>,
    readers: Arc<ReadPool>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("data_dir", &self.readers.data_dir())
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The store of the writer fed by `writer`, read through `readers`.
    pub fn new(writer: mpsc::Sender<Op>, readers: ReadPool) -> Store {
        Store {
            writer,
            readers: Arc::new(readers),
        }
    }

    /// The data directory of the database.
    pub fn data_dir(&self) -> &Path {
        self.readers.data_dir()
    }

    /// The writer's queue, for the fire-and-forget [`Op`]s (calls, bindings, audit rows).
    pub fn sender(&self) -> &mpsc::Sender<Op> {
        &self.writer
    }

    /// Wait until every write queued before this call is committed (a barrier in the writer's
    /// queue): for an API answer that must only say "saved" once a read would see it.
    pub async fn flushed(&self) -> std::result::Result<(), StoreError> {
        self.sql_write(|_| Ok::<(), StoreError>(())).await
    }

    /// Run `f` on a pooled reader, on a blocking thread.
    pub async fn read<T, E>(
        &self,
        f: impl FnOnce(&Reader) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Run `f` on a pooled reader, here (blocking: not on the async executor).
    pub fn read_blocking<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Reader) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.readers.with(f)
    }

    /// Run `f` on two pooled readers when two are free (the second is `None` otherwise), for
    /// two scans side by side. Blocking.
    pub fn read_two_blocking<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Reader, Option<&mut Reader>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.readers.with_two(f)
    }

    /// Run `f` on the writer's connection, after every write queued before it, and wait for
    /// its result. `f` takes its own transaction ([`Db::write_tx`]) if it needs one.
    pub async fn sql_write<T, E>(
        &self,
        f: impl FnOnce(&Db) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, done) = job(move |w| f(w.outbound()));
        self.writer
            .send(Op::Job(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// [`Store::sql_write`] from a plain thread (never from the async executor: it blocks).
    pub fn sql_write_blocking<T, E>(
        &self,
        f: impl FnOnce(&Db) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.job_blocking(move |w| f(w.outbound()))
    }

    /// Retention: one batch of [`WriteDb::purge_batch`] as a writer job (after every write
    /// queued before it). Blocking: from a plain thread.
    pub fn purge_batch_blocking(&self, cutoff_ms: u64, batch: usize) -> super::Result<usize> {
        self.job_blocking(move |w| w.purge_batch(cutoff_ms, batch))
    }

    fn job_blocking<T, E>(
        &self,
        f: impl FnOnce(&dyn WriteDb) -> std::result::Result<T, E> + Send + 'static,
    ) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (job, done) = job(f);
        self.writer
            .blocking_send(Op::Job(job))
            .map_err(|_| StoreError::Closed)?;
        done.blocking_recv().map_err(|_| StoreError::Closed)?
    }
}

/// `f` as a [`Job`] and the receiver of its result (dropped unanswered if `f` panics).
fn job<T, E>(
    f: impl FnOnce(&dyn WriteDb) -> std::result::Result<T, E> + Send + 'static,
) -> (Job, oneshot::Receiver<std::result::Result<T, E>>)
where
    T: Send + 'static,
    E: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    let job = Job::new(move |conn| {
        let _ = tx.send(f(conn));
    });
    (job, rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{open, CallOp, Writer};

    /// A queue callback request of call `id` (written by the writer's batch).
    fn requested(id: u64) -> Op {
        CallOp::CallbackRequested {
            id,
            queue: "q".into(),
            caller_number: format!("+4930{id}"),
            caller_name: None,
            entered_at_ms: 1_000 + id,
            position: None,
            requested_at_ms: 2_000 + id,
        }
        .into()
    }

    fn requests(db: &Db) -> std::result::Result<usize, StoreError> {
        Ok(db.unlinked_callbacks()?.len())
    }

    #[test]
    fn a_job_runs_after_the_writes_queued_before_it_and_the_writer_survives_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 64).unwrap();
        let store = Store::new(w.sender.clone(), ReadPool::open(dir.path(), 2).unwrap());
        for id in 1..=3 {
            w.sender.blocking_send(requested(id)).unwrap();
        }
        assert_eq!(store.sql_write_blocking(requests).unwrap(), 3);
        // A job that panics inside a transaction it leaked: rolled back, the writer goes on.
        let r: std::result::Result<(), StoreError> = store.sql_write_blocking(|db| {
            let tx = db.write_tx()?;
            tx.insert_dnc("+4930999", "test", 1)?;
            std::mem::forget(tx);
            panic!("boom")
        });
        assert!(matches!(r, Err(StoreError::Closed)));
        w.sender.blocking_send(requested(4)).unwrap();
        assert_eq!(store.sql_write_blocking(requests).unwrap(), 4);
        assert_eq!(
            store
                .sql_write_blocking(|db| db.find_dnc("+4930999"))
                .unwrap(),
            None,
            "the panicked job's write was rolled back"
        );
        // Readers see what the writer committed.
        let n = store.read_blocking(|r| requests(r.outbound())).unwrap();
        assert_eq!(n, 4);
        drop(store);
        w.join();
    }

    #[tokio::test]
    async fn async_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 64).unwrap();
        let store = Store::new(w.sender.clone(), ReadPool::open(dir.path(), 1).unwrap());
        store.sender().send(requested(1)).await.unwrap();
        assert_eq!(store.sql_write(requests).await.unwrap(), 1);
        assert_eq!(store.read(|r| requests(r.outbound())).await.unwrap(), 1);
        drop(store);
        tokio::task::spawn_blocking(move || w.join()).await.unwrap();
    }

    #[test]
    fn retention_runs_as_a_writer_job() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 64).unwrap();
        let store = Store::new(w.sender.clone(), ReadPool::open(dir.path(), 1).unwrap());
        for id in 1..=3 {
            let started = CallOp::Started {
                id,
                sip_call_id: format!("c{id}"),
                direction: "inbound",
                caller_number: None,
                caller_name: None,
                dialed_number: None,
                queue: Some("q".into()),
                entered_at_ms: id * 1_000,
            };
            let ended = CallOp::Ended {
                id,
                ended_at_ms: id * 1_000 + 10,
                outcome: "abandoned",
                queue: None,
                wait_ms: Some(10),
                talk_ms: None,
                short_abandon: Some(true),
                hangup_by: Some("caller"),
                hangup_cause: None,
                sip_code: None,
            };
            w.sender.blocking_send(started.into()).unwrap();
            w.sender.blocking_send(ended.into()).unwrap();
        }
        // Calls 1 and 2 entered before 2_500, one per batch.
        assert_eq!(store.purge_batch_blocking(2_500, 1).unwrap(), 1);
        assert_eq!(store.purge_batch_blocking(2_500, 1).unwrap(), 1);
        assert_eq!(store.purge_batch_blocking(2_500, 1).unwrap(), 0);
        let left = store
            .read_blocking(|r| crate::store::CallRecords::call(r, 3))
            .unwrap();
        assert!(left.is_some());
        let gone = store
            .read_blocking(|r| crate::store::CallRecords::call(r, 1))
            .unwrap();
        assert!(gone.is_none());
        drop(store);
        w.join();
    }
}
