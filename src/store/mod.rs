//! Durable state: the only module that speaks SQL. Typed operations and queries behind an
//! interface that a second backend can implement: the reads ([`ReportReads`], [`CallRecords`],
//! [`CallbackReads`], [`StatsReads`]), the write [`Op`]s, the callback lists' operations
//! ([`outbound::OutboundDb`], with their transaction [`outbound::Tx`]) and what a writer job runs
//! on ([`WriteDb`]). SQLite (`sqlite/`) is the default and today the only backend.
//!
//! Owns: the database file (`<data_dir>/ctid.db`), its schema, and every SQL statement. One
//! writer thread owns every write ([`Writer`]): call and binding ops are batched into one
//! transaction per wake-up, so a burst of REGISTERs or call events costs one fsync; the work of
//! the callback lists (`crate::outbound`, which takes its own write transactions through
//! [`outbound::OutboundDb::write_tx`]) and retention batches run on the same thread, in order with
//! the rest, as jobs on the backend-neutral [`WriteDb`] ([`Store::sql_write`],
//! [`Store::purge_batch_blocking`]). Reads go through a small pool of read-only connections
//! opened once at start ([`Store::read`]); the migration check runs once, when the writer's
//! connection is opened ([`open`]). Nothing here runs on the async executor.
//!
//! Layout: [`reads`] (the query interface and its row types, backend-neutral), `ops` (the
//! write ops and [`WriteDb`], backend-neutral), [`outbound`] (the callback lists' operations and
//! rows, backend-neutral), [`handle`] (the [`Store`] the daemon passes around: writer queue +
//! readers), `sqlite/` (the SQLite backend: schema, writer, pool and one file per area,
//! `sqlite/outbound/` implementing [`outbound::OutboundDb`] on the connection).
//!
//! Must not know: SIP parsing, sockets, call logic, report arithmetic.

mod handle;
mod lock;
mod ops;
pub mod outbound;
pub mod postgres;
pub mod reads;
mod sqlite;

pub use handle::Store;
pub use lock::{lock_data_dir, DataDirLock, LockError};
pub use ops::{ApiOp, CallOp, WriteDb};
pub use reads::{
    AgentCall, CallEventRow, CallFilter, CallRecord, CallRecords, CallbackReads,
    CallbackRequestRow, CdrValue, ComplaintRow, ListCallbackRow, ListEventKind, ListRow,
    OpenCallbacks, QueueCall, ReportReads, SessionTotal, StatsCall, StatsReads,
};
pub use sqlite::bindings::load_bindings;
pub use sqlite::calls::{interrupt_live_calls, next_call_id};
pub use sqlite::open;
pub use sqlite::pool::{ReadPool, Reader};
pub use sqlite::writer::{BatchDb, Job, Op, Writer};

#[cfg(test)]
pub(crate) use sqlite::test_support;

use std::path::PathBuf;
use thiserror::Error;

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
    /// No database file where one was expected (a report run before the daemon ever started).
    #[error("no database at {}", .0.display())]
    Missing(PathBuf),
    /// The database stayed locked (or every reader busy) longer than the wait allowed.
    #[error("the database is busy")]
    Busy,
    /// A query or write failed in the backend.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The writer thread is gone (shutting down), or dropped the request.
    #[error("the store is closed")]
    Closed,
}

/// Results of the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
