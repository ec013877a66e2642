//! The PostgreSQL backend (issue "More than one node"): a shared database for several ctid
//! nodes. [`PgConn`] (connect, migrate, statements, write transactions) implements the store's
//! whole backend-neutral interface: the schema ([`schema`]), the writer's ops in batches and the
//! start-up reads (`writes`: `PgConn::write_ops`, bindings, live calls, next call id, retention
//! through `WriteDb`), the query traits of `crate::store::reads` (`reads`, `reads_calls`) and the
//! callback lists' [`OutboundDb`](crate::store::outbound::OutboundDb) ([`outbound`],
//! `outbound_claim`, `outbound_more`); the daemon's writer thread runs on it (`BatchDb`). Not yet
//! selectable by the daemon: the reader pool and the `Store` handle are still SQLite's, and
//! connection loss is not yet handled (docs/store.md).
//!
//! Driver: the sync `postgres` crate (the blocking wrapper of `tokio-postgres`, maintained with
//! it). The store is built around one writer thread and a fixed pool of blocking readers, off the
//! async executor; the blocking client fits that as it is, where an async driver (tokio-postgres,
//! sqlx) would need the whole store turned async or a runtime bridge per call. The connection is
//! used from one thread at a time (`RefCell`); prepared statements are cached per connection.
//!
//! Write transactions ([`OutboundDb::write_tx`](crate::store::outbound::OutboundDb::write_tx))
//! take a transaction-scoped advisory lock ([`WRITE_LOCK`]) when they begin: PostgreSQL's
//! equivalent of SQLite's `BEGIN IMMEDIATE`, and across nodes. The contact policy reads (quotas,
//! duplicates, live attempts) and then claims inside one transaction; with the lock, two nodes
//! claiming at once run one after the other, so quotas and "never twice" hold across nodes
//! exactly as they do for two dialers on one SQLite file.
//!
//! Must not know: SIP parsing, sockets, call logic, report arithmetic.

pub mod outbound;
mod outbound_claim;
mod outbound_more;
mod reads;
mod reads_calls;
mod schema;
mod writes;

use super::outbound::{Db, Tx, TxInner};
use super::{Result, StoreError};
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;

/// The advisory lock key every write transaction holds (`pg_advisory_xact_lock`): "ctid" in
/// ASCII.
pub const WRITE_LOCK: i64 = 0x6374_6964;

/// The advisory lock key held while migrating.
const MIGRATE_LOCK: i64 = 0x6374_6964_0001;

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        StoreError::Backend(Box::new(e))
    }
}

/// One connection to the database.
pub struct PgConn {
    client: RefCell<Client>,
    statements: RefCell<HashMap<&'static str, Statement>>,
    in_tx: Cell<bool>,
}

impl std::fmt::Debug for PgConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConn").finish_non_exhaustive()
    }
}

impl PgConn {
    /// Connect to `url` (`postgres://user:password@host:port/db`, or `host=/run/dir` for a unix
    /// socket) and bring the schema up to date.
    pub fn connect(url: &str) -> Result<PgConn> {
        let client = Client::connect(url, NoTls)?;
        let conn = PgConn {
            client: RefCell::new(client),
            statements: RefCell::new(HashMap::new()),
            in_tx: Cell::new(false),
        };
        conn.migrate()?;
        Ok(conn)
    }

    /// The schema version of the database (0: none of ctid's tables).
    pub fn schema_version(&self) -> Result<i64> {
        let row = self.client.borrow_mut().query_one(
            "SELECT COALESCE((SELECT max(version) FROM ctid_schema), 0)",
            &[],
        )?;
        Ok(row.try_get(0)?)
    }

    /// Apply every migration the database has not seen, each in its own transaction, under an
    /// advisory lock (two nodes starting at once apply each migration once).
    fn migrate(&self) -> Result<()> {
        let mut c = self.client.borrow_mut();
        // Under the lock too: two sessions running CREATE TABLE IF NOT EXISTS at once can both
        // miss the table and one fails on the catalogue's unique index.
        {
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
            tx.batch_execute(
                "CREATE TABLE IF NOT EXISTS ctid_schema (version BIGINT PRIMARY KEY)",
            )?;
            tx.commit()?;
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate() {
            let version = i as i64 + 1;
            let mut tx = c.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])?;
            let have: i64 = tx
                .query_one(
                    "SELECT COALESCE((SELECT max(version) FROM ctid_schema), 0)",
                    &[],
                )?
                .try_get(0)?;
            if have >= version {
                continue;
            }
            tx.batch_execute(sql)?;
            tx.execute("INSERT INTO ctid_schema (version) VALUES ($1)", &[&version])?;
            tx.commit()?;
        }
        Ok(())
    }

    fn statement(&self, sql: &'static str) -> Result<Statement> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.borrow_mut().prepare(sql)?;
        self.statements.borrow_mut().insert(sql, s.clone());
        Ok(s)
    }

    /// Run `sql`; the number of rows it changed.
    pub(super) fn exec(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let s = self.statement(sql)?;
        Ok(self.client.borrow_mut().execute(&s, params)?)
    }

    /// The rows of `sql`.
    pub(super) fn rows(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.borrow_mut().query(&s, params)?)
    }

    /// The row of `sql`, if any (more than one is an error).
    pub(super) fn opt(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.statement(sql)?;
        Ok(self.client.borrow_mut().query_opt(&s, params)?)
    }

    /// The one row of `sql`.
    pub(super) fn one(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.statement(sql)?;
        Ok(self.client.borrow_mut().query_one(&s, params)?)
    }

    /// Begin a write transaction holding [`WRITE_LOCK`].
    fn begin(&self) -> Result<Tx<'_>> {
        if self.in_tx.get() {
            return Err(StoreError::Backend(
                "a write transaction inside a write transaction".into(),
            ));
        }
        let mut c = self.client.borrow_mut();
        c.batch_execute("BEGIN")?;
        if let Err(e) = c.execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK]) {
            let _ = c.batch_execute("ROLLBACK");
            return Err(e.into());
        }
        self.in_tx.set(true);
        Ok(Tx::new(Box::new(PgTx {
            conn: self,
            open: true,
        })))
    }
}

/// An open write transaction on a [`PgConn`]: rolled back when dropped unless committed.
struct PgTx<'a> {
    conn: &'a PgConn,
    open: bool,
}

impl TxInner for PgTx<'_> {
    fn db(&self) -> &Db {
        self.conn
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        self.open = false;
        self.conn.in_tx.set(false);
        Ok(self.conn.client.borrow_mut().batch_execute("COMMIT")?)
    }
}

impl Drop for PgTx<'_> {
    fn drop(&mut self) {
        if self.open {
            self.conn.in_tx.set(false);
            if let Ok(mut c) = self.conn.client.try_borrow_mut() {
                let _ = c.batch_execute("ROLLBACK");
            }
        }
    }
}

/// A stored integer as the `u32` the domain uses (a negative or huge one is corrupt data).
pub(super) fn u32_of(v: i64) -> Result<u32> {
    u32::try_from(v)
        .map_err(|_| StoreError::Backend(format!("stored value {v} out of range").into()))
}

/// A stored vocabulary word (`Purpose`, `ContactState`, …) parsed.
pub(super) fn word<T>(s: &str) -> Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    s.parse().map_err(|e| StoreError::Backend(Box::new(e)))
}
