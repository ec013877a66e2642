//! The writer thread: drains the op channel in batches, one transaction per batch.
//!
//! A batch that fails is rolled back and retried op by op, each in its own transaction, so one bad
//! op costs only itself: it is logged and counted in `ctid_store_write_errors_total`.
//! A [`Job`] (the callback-list work of `crate::outbound`, retention batches) runs on the same
//! connection between batches, outside any batch transaction (it takes its own), in the order it
//! was queued; a job that panics is caught and logged, and the writer goes on.
//! Metrics: `ctid_store_write_seconds` (histogram, per batch), `ctid_store_queue_depth` (gauge,
//! ops still waiting in the channel after each batch), `ctid_store_write_errors_total`.

use super::{api, bindings, calls};
use crate::sip::registrar::StoreOp;
use crate::store::{ApiOp, CallOp, StoreError, WriteDb};
use rusqlite::Connection;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use thiserror::Error;
use tokio::sync::mpsc;

/// Most ops in one transaction.
const MAX_BATCH: usize = 1024;

/// Everything the writer thread writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Binding(StoreOp),
    Call(CallOp),
    /// Audit rows, dispositions and agent sessions, for the HTTP API.
    Api(ApiOp),
    /// Work that takes its own transaction on the writer's connection (see [`Job`]).
    Job(Job),
}

type JobFn = Box<dyn FnOnce(&dyn WriteDb) + Send>;

/// A closure the writer thread runs once on its connection (as the backend-neutral [`WriteDb`]),
/// between batches. It reports its
/// own result (a oneshot, see [`crate::store::Store::sql_write`]). Clones share the one
/// closure: whichever runs first takes it.
#[derive(Clone)]
pub struct Job(Arc<Mutex<Option<JobFn>>>);

impl Job {
    pub fn new(f: impl FnOnce(&dyn WriteDb) + Send + 'static) -> Job {
        Job(Arc::new(Mutex::new(Some(Box::new(f)))))
    }

    /// Run the closure on `db` (once: later calls do nothing).
    pub fn run(&self, db: &dyn WriteDb) {
        let f = self.0.lock().ok().and_then(|mut f| f.take());
        if let Some(f) = f {
            let run = std::panic::AssertUnwindSafe(|| f(db));
            if std::panic::catch_unwind(run).is_err() {
                tracing::error!("a store job panicked; the writer goes on");
                metrics::counter!("ctid_store_write_errors_total").increment(1);
                db.recover();
            }
        }
    }
}

impl WriteDb for Connection {
    fn outbound(&self) -> &crate::store::outbound::Db {
        self
    }

    fn purge_batch(&self, cutoff_ms: u64, batch: usize) -> crate::store::Result<usize> {
        Ok(super::retention::purge_batch(self, cutoff_ms, batch)?)
    }

    fn recover(&self) {
        if !self.is_autocommit() {
            let _ = self.execute_batch("ROLLBACK");
        }
    }
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Job")
    }
}

impl PartialEq for Job {
    fn eq(&self, other: &Job) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Job {}

impl From<ApiOp> for Op {
    fn from(op: ApiOp) -> Op {
        Op::Api(op)
    }
}

impl From<StoreOp> for Op {
    fn from(op: StoreOp) -> Op {
        Op::Binding(op)
    }
}

impl From<CallOp> for Op {
    fn from(op: CallOp) -> Op {
        Op::Call(op)
    }
}

impl Op {
    /// For logs, without personal data (phone numbers, names).
    pub(crate) fn describe(&self) -> String {
        match self {
            Op::Binding(StoreOp::Upsert(_)) => "binding upsert".into(),
            Op::Binding(StoreOp::Delete { .. }) => "binding delete".into(),
            Op::Call(c) => format!("call {} {}", c.call_id(), c.kind()),
            Op::Api(a) => a.describe(),
            Op::Job(_) => "job".into(),
        }
    }
}

#[derive(Debug, Error)]
pub(super) enum WriteError {
    #[error(transparent)]
    Sql(#[from] rusqlite::Error),
    #[error("no call with id {0}")]
    UnknownCall(u64),
}

fn apply(conn: &Connection, op: &Op) -> Result<(), WriteError> {
    match op {
        Op::Binding(op) => Ok(bindings::apply(conn, op)?),
        Op::Call(op) => calls::apply(conn, op),
        Op::Api(op) => api::apply(conn, op),
        // Never in a batch: the writer runs jobs between batches.
        Op::Job(_) => Ok(()),
    }
}

#[cfg(test)]
pub(super) fn tests_apply(conn: &Connection, op: &Op) -> Result<(), WriteError> {
    apply(conn, op)
}

/// Write `ops` in one transaction, all or nothing.
fn write_all(conn: &Connection, ops: &[Op]) -> Result<(), WriteError> {
    let tx = conn.unchecked_transaction()?;
    for op in ops {
        apply(&tx, op)?;
    }
    tx.commit()?;
    Ok(())
}

/// Write a batch; if it fails, retry op by op. Returns how many ops could not be written (each
/// logged and counted).
fn commit(conn: &Connection, batch: &[Op]) -> usize {
    let failed = match write_all(conn, batch) {
        Ok(()) => 0,
        Err(e) if batch.len() == 1 => {
            tracing::error!(error = %e, op = %batch[0].describe(), "store write failed; op lost");
            1
        }
        Err(e) => {
            tracing::warn!(error = %e, ops = batch.len(), "store batch failed; retrying op by op");
            batch
                .iter()
                .filter(|op| match write_all(conn, std::slice::from_ref(*op)) {
                    Ok(()) => false,
                    Err(e) => {
                        tracing::error!(error = %e, op = %op.describe(), "store write failed; op lost");
                        true
                    }
                })
                .count()
        }
    };
    if failed > 0 {
        metrics::counter!("ctid_store_write_errors_total").increment(failed as u64);
    }
    failed
}

/// What the writer thread writes on: a backend's connection (SQLite's here, PostgreSQL's in
/// `crate::store::postgres`), which also runs the jobs.
pub trait BatchDb: WriteDb + Send {
    /// Write `ops` (no jobs among them) in one transaction; when that fails, op by op. Returns
    /// how many ops could not be written (each logged and counted).
    fn commit_ops(&self, ops: &[Op]) -> usize;
}

impl BatchDb for Connection {
    fn commit_ops(&self, ops: &[Op]) -> usize {
        commit(self, ops)
    }
}

/// Write the ops of `batch` in order, in one transaction per run of ops between jobs, and run
/// its jobs between them. Leaves `batch` empty.
fn write_batch(conn: &dyn BatchDb, batch: &mut Vec<Op>) {
    let mut start = 0;
    for i in 0..=batch.len() {
        let job = match batch.get(i) {
            Some(Op::Job(job)) => Some(job),
            Some(_) => continue,
            None => None,
        };
        if start < i {
            let started = std::time::Instant::now();
            conn.commit_ops(&batch[start..i]);
            metrics::histogram!("ctid_store_write_seconds").record(started.elapsed().as_secs_f64());
        }
        if let Some(job) = job {
            job.run(conn);
        }
        start = i + 1;
    }
    batch.clear();
}

/// Handle to the writer thread. Dropping every sender lets the thread finish its queue and exit;
/// [`Writer::join`] waits for that.
pub struct Writer {
    pub sender: mpsc::Sender<Op>,
    thread: JoinHandle<()>,
}

impl Writer {
    /// Start the writer on `conn` (a SQLite or PostgreSQL connection). `queue` bounds the number
    /// of pending writes.
    pub fn start(conn: impl BatchDb + 'static, queue: usize) -> Result<Writer, StoreError> {
        let (sender, mut rx) = mpsc::channel::<Op>(queue);
        let thread = std::thread::Builder::new()
            .name("ctid-store".into())
            .spawn(move || {
                let depth = metrics::gauge!("ctid_store_queue_depth");
                depth.set(0.0);
                let mut batch = Vec::with_capacity(256);
                while let Some(op) = rx.blocking_recv() {
                    batch.push(op);
                    while batch.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(op) => batch.push(op),
                            Err(_) => break,
                        }
                    }
                    write_batch(&conn, &mut batch);
                    depth.set(rx.len() as f64);
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Writer { sender, thread })
    }

    /// Close the queue and wait until everything queued is written (or logged as failed).
    /// Other clones of `sender` must be dropped too, or this waits for them.
    pub fn join(self) {
        drop(self.sender);
        if self.thread.join().is_err() {
            tracing::error!("store writer thread panicked");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::registrar::Binding;
    use crate::store::sqlite::calls::tests::{event, events, row, started};
    use crate::store::{interrupt_live_calls, load_bindings, next_call_id, open};

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

    fn integrity_ok(conn: &Connection) {
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let fk_violations: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_violations, 0);
    }

    fn count(conn: &Connection, sql: &str) -> i64 {
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn bindings_round_trip_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 16).unwrap();
        w.sender
            .blocking_send(StoreOp::Upsert(binding("sip:a@h")).into())
            .unwrap();
        w.sender
            .blocking_send(StoreOp::Upsert(binding("sip:b@h")).into())
            .unwrap();
        let mut updated = binding("sip:a@h");
        updated.cseq = 4;
        w.sender
            .blocking_send(StoreOp::Upsert(updated.clone()).into())
            .unwrap();
        w.sender
            .blocking_send(
                StoreOp::Delete {
                    agent_id: "a1".into(),
                    uri: "sip:b@h".into(),
                }
                .into(),
            )
            .unwrap();
        w.join();
        let conn = open(dir.path()).unwrap();
        assert_eq!(load_bindings(&conn).unwrap(), vec![updated]);
    }

    #[test]
    fn a_call_round_trips_through_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 4).unwrap();
        let ops: Vec<Op> = vec![
            started(1, "sales").into(),
            event(1, 1_001, "entered").into(),
            CallOp::Event {
                id: 1,
                at_ms: 1_500,
                kind: "offered",
                agent: Some("bob".into()),
                detail: None,
            }
            .into(),
            CallOp::Event {
                id: 1,
                at_ms: 1_600,
                kind: "missed",
                agent: Some("bob".into()),
                detail: Some("no answer".into()),
            }
            .into(),
            CallOp::Event {
                id: 1,
                at_ms: 2_000,
                kind: "answered",
                agent: Some("amy".into()),
                detail: None,
            }
            .into(),
            CallOp::Answered {
                id: 1,
                answered_at_ms: 2_000,
                agent: "amy".into(),
                wait_ms: 999,
                in_target: true,
            }
            .into(),
            event(1, 9_000, "ended").into(),
            CallOp::Ended {
                id: 1,
                ended_at_ms: 9_000,
                outcome: "answered",
                queue: Some("sales-overflow".into()),
                wait_ms: None,
                talk_ms: Some(7_000),
                short_abandon: None,
                hangup_by: Some("agent"),
                hangup_cause: Some("normal".into()),
                sip_code: Some(200),
            }
            .into(),
        ];
        for op in ops {
            w.sender.blocking_send(op).unwrap();
        }
        w.join();

        let conn = open(dir.path()).unwrap();
        let r = row(&conn, 1).unwrap();
        assert_eq!(r.sip_call_id, "sip-1@example");
        assert_eq!(r.direction, "inbound");
        assert_eq!(r.caller_number.as_deref(), Some("+15551234"));
        assert_eq!(r.queue.as_deref(), Some("sales-overflow"));
        assert_eq!(r.entered_at_ms, 1_001);
        assert_eq!(r.answered_at_ms, Some(2_000));
        assert_eq!(r.ended_at_ms, Some(9_000));
        assert_eq!(r.wait_ms, Some(999), "Ended with wait_ms None keeps it");
        assert_eq!(r.talk_ms, Some(7_000));
        assert_eq!(r.agent.as_deref(), Some("amy"));
        assert_eq!(r.outcome.as_deref(), Some("answered"));
        assert_eq!(r.answered_in_target, Some(1));
        assert_eq!(r.short_abandon, None);
        assert_eq!(r.hangup_by.as_deref(), Some("agent"));
        assert_eq!(r.hangup_cause.as_deref(), Some("normal"));
        assert_eq!(r.sip_code, Some(200));
        let kinds: Vec<String> = events(&conn, 1).into_iter().map(|e| e.1).collect();
        assert_eq!(kinds, ["entered", "offered", "missed", "answered", "ended"]);
        assert_eq!(
            events(&conn, 1)[2],
            (
                1_600,
                "missed".into(),
                Some("bob".into()),
                Some("no answer".into())
            )
        );
        assert_eq!(next_call_id(&conn).unwrap(), 2);
        integrity_ok(&conn);
    }

    fn batch_with_bad_ops() -> Vec<Op> {
        vec![
            started(1, "sales").into(),
            event(1, 10, "entered").into(),
            event(99, 11, "entered").into(), // no call 99: foreign key
            StoreOp::Upsert(binding("sip:a@h")).into(),
            CallOp::Ended {
                id: 42, // no call 42: updates nothing
                ended_at_ms: 12,
                outcome: "abandoned",
                queue: None,
                wait_ms: Some(2),
                talk_ms: None,
                short_abandon: Some(true),
                hangup_by: Some("caller"),
                hangup_cause: None,
                sip_code: None,
            }
            .into(),
            event(1, 13, "hold").into(),
        ]
    }

    fn assert_good_ops_written(conn: &Connection) {
        assert!(row(conn, 1).is_some());
        assert!(row(conn, 42).is_none());
        let kinds: Vec<String> = events(conn, 1).into_iter().map(|e| e.1).collect();
        assert_eq!(kinds, ["entered", "hold"]);
        assert!(events(conn, 99).is_empty());
        assert_eq!(load_bindings(conn).unwrap(), vec![binding("sip:a@h")]);
        integrity_ok(conn);
    }

    #[test]
    fn a_job_in_a_batch_sees_the_ops_before_it_and_not_those_after() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let into = seen.clone();
        let job = Job::new(move |w| {
            // Outside any batch transaction: the job can take its own.
            let tx = w.outbound().write_tx().unwrap();
            let n = tx.unlinked_callbacks().unwrap().len();
            drop(tx);
            *into.lock().unwrap() = Some(n);
        });
        let request = |id: u64| -> Op {
            CallOp::CallbackRequested {
                id,
                queue: "q".into(),
                caller_number: format!("+4930{id}"),
                caller_name: None,
                entered_at_ms: id,
                position: None,
                requested_at_ms: id,
            }
            .into()
        };
        let mut batch: Vec<Op> = vec![request(1), request(2), Op::Job(job.clone()), request(3)];
        write_batch(&conn, &mut batch);
        assert!(batch.is_empty());
        assert_eq!(*seen.lock().unwrap(), Some(2));
        assert_eq!(count(&conn, "SELECT count(*) FROM callback_requests"), 3);
        // A clone shares the one closure: it ran once.
        *seen.lock().unwrap() = None;
        job.run(&conn);
        assert_eq!(*seen.lock().unwrap(), None);
    }

    #[test]
    fn a_bad_op_does_not_lose_the_rest_of_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        assert_eq!(commit(&conn, &batch_with_bad_ops()), 2);
        assert_good_ops_written(&conn);
        // An all-good batch still goes in whole.
        assert_eq!(commit(&conn, &[event(1, 14, "resumed").into()]), 0);
        assert_eq!(events(&conn, 1).len(), 3);
    }

    #[test]
    fn a_bad_op_through_the_writer_does_not_lose_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 64).unwrap();
        for op in batch_with_bad_ops() {
            w.sender.blocking_send(op).unwrap();
        }
        w.join();
        assert_good_ops_written(&open(dir.path()).unwrap());
    }

    /// Sends call `id` (Started + one event) for each id in `ids`.
    fn send_calls(w: &Writer, ids: std::ops::RangeInclusive<u64>) {
        for id in ids {
            w.sender.blocking_send(started(id, "q").into()).unwrap();
            w.sender
                .blocking_send(event(id, 2_000 + id, "entered").into())
                .unwrap();
        }
    }

    /// Calls 1..=k are all there (no gap), each but possibly the last with its event.
    fn assert_prefix_written(conn: &Connection, at_least: i64) -> i64 {
        let n = count(conn, "SELECT count(*) FROM calls");
        assert!(n >= at_least, "{n} calls on disk, {at_least} acknowledged");
        assert_eq!(count(conn, "SELECT COALESCE(MAX(id), 0) FROM calls"), n);
        let with_event = count(conn, "SELECT count(DISTINCT call_id) FROM call_events");
        assert!(with_event == n || with_event == n - 1, "{with_event} / {n}");
        n
    }

    #[test]
    fn joined_writes_survive_a_writer_dropped_without_join() {
        let dir = tempfile::tempdir().unwrap();
        let w = Writer::start(open(dir.path()).unwrap(), 64).unwrap();
        send_calls(&w, 1..=200);
        w.join();

        let w = Writer::start(open(dir.path()).unwrap(), 64).unwrap();
        send_calls(&w, 201..=400);
        drop(w); // detached: the thread may still be writing while we read

        let conn = open(dir.path()).unwrap();
        let n = assert_prefix_written(&conn, 200);
        assert!(n <= 400);
        assert_eq!(events(&conn, 200).len(), 1);
        integrity_ok(&conn);
    }

    const CRASH_DIR: &str = "CTID_STORE_CRASH_TEST_DIR";
    const ACKED: u64 = 300;

    /// The child half of [`acknowledged_writes_survive_a_process_crash`]; does nothing unless
    /// run by it.
    #[test]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR) else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        let w = Writer::start(open(&dir).unwrap(), 128).unwrap();
        send_calls(&w, 1..=ACKED);
        w.join();
        let w = Writer::start(open(&dir).unwrap(), 4096).unwrap();
        send_calls(&w, ACKED + 1..=ACKED + 20_000);
        // Die mid-write: no destructors, no join, no atexit.
        unsafe { libc::_exit(7) };
    }

    #[test]
    fn acknowledged_writes_survive_a_process_crash() {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store::sqlite::writer::tests::crash_child",
                "--test-threads=1",
                "--nocapture",
            ])
            .env(CRASH_DIR, dir.path())
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(7), "child did not reach the crash");

        let conn = open(dir.path()).unwrap();
        let n = assert_prefix_written(&conn, ACKED as i64);
        assert!(n <= (ACKED + 20_000) as i64);
        integrity_ok(&conn);
        assert_eq!(next_call_id(&conn).unwrap(), n as u64 + 1);
        // The restart path: the crashed run's calls are live, and get closed.
        assert_eq!(interrupt_live_calls(&conn, 99).unwrap(), n as usize);
    }
}
