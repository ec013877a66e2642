//! Read connections: [`Reader`] (one read-only connection, on which the query traits of
//! [`crate::store::reads`] are implemented) and [`ReadPool`], a fixed set of them opened once at
//! start and lent out one at a time.
//!
//! Hand-written rather than r2d2/deadpool: the set is fixed (no growth, no health checks, no
//! async), so a mutex-guarded stack and a condition variable (~60 lines) are the whole pool, and
//! `r2d2_sqlite` pins an exact `rusqlite` release that would hold back the one this crate uses.
//! WAL lets every reader run while the writer writes.

use super::super::{Result, StoreError};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a read waits for the database lock (a checkpoint) and for a free reader.
const WAIT: Duration = Duration::from_secs(5);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        if let rusqlite::Error::SqliteFailure(f, _) = &e {
            if matches!(
                f.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            ) {
                return StoreError::Busy;
            }
        }
        StoreError::Backend(Box::new(e))
    }
}

/// One read-only connection to `<data_dir>/ctid.db`.
pub struct Reader {
    conn: Connection,
}

impl Reader {
    /// Open `<data_dir>/ctid.db` read-only: no schema changes, safe while the daemon runs. The
    /// file must exist ([`StoreError::Missing`] otherwise).
    pub fn open(data_dir: &Path) -> Result<Reader> {
        let path = data_dir.join("ctid.db");
        if !path.exists() {
            return Err(StoreError::Missing(path));
        }
        let err = |source| StoreError::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(err)?;
        conn.busy_timeout(WAIT).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(Reader { conn })
    }

    /// A second reader of the same file, for a scan run beside this one; `None` for an
    /// in-memory database.
    pub fn reopen(&self) -> Option<Reader> {
        let path = self.conn.path().filter(|p| !p.is_empty())?;
        Reader::open(Path::new(path).parent()?).ok()
    }

    /// The callback lists' operations on this reader (read-only: a write fails).
    pub fn outbound(&self) -> &crate::store::outbound::Db {
        &self.conn
    }

    /// The SQLite connection, for this backend's queries.
    pub(in crate::store) fn sql(&self) -> &Connection {
        &self.conn
    }

    #[cfg(test)]
    pub(crate) fn from_connection(conn: Connection) -> Reader {
        Reader { conn }
    }
}

/// A fixed set of [`Reader`]s, lent out one at a time.
pub struct ReadPool {
    dir: PathBuf,
    idle: Mutex<Vec<Reader>>,
    freed: Condvar,
    /// How long [`ReadPool::with`] waits for a free reader.
    wait: Duration,
}

impl ReadPool {
    /// Open `size` (at least 1) readers of `<data_dir>/ctid.db`, which must exist (open the
    /// writer's connection first: it creates and migrates the file).
    pub fn open(data_dir: &Path, size: usize) -> Result<ReadPool> {
        let idle = (0..size.max(1))
            .map(|_| Reader::open(data_dir))
            .collect::<Result<Vec<_>>>()?;
        Ok(ReadPool {
            dir: data_dir.to_path_buf(),
            idle: Mutex::new(idle),
            freed: Condvar::new(),
            wait: WAIT,
        })
    }

    /// The data directory the readers read.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Run `f` on a free reader, waiting for one at most 5 s ([`StoreError::Busy`] then).
    /// Blocking: call it off the async executor.
    pub fn with<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Reader) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let reader = self.take()?;
        // Put it back whatever `f` does (a panic included), so the pool never shrinks.
        struct Back<'a>(&'a ReadPool, Option<Reader>);
        impl Drop for Back<'_> {
            fn drop(&mut self) {
                if let Some(r) = self.1.take() {
                    if let Ok(mut idle) = self.0.idle.lock() {
                        idle.push(r);
                    }
                    self.0.freed.notify_one();
                }
            }
        }
        let back = Back(self, Some(reader));
        match &back.1 {
            Some(r) => f(r),
            None => Err(StoreError::Closed.into()),
        }
    }

    /// Like [`ReadPool::with`] with two readers, for two scans side by side.
    pub fn with_two<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&Reader, Option<&mut Reader>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        self.with(|first| {
            // Never wait for the second one: the scans also run one after the other.
            let second = self.idle.lock().ok().and_then(|mut idle| idle.pop());
            let mut second = second;
            let result = f(first, second.as_mut());
            if let Some(r) = second {
                if let Ok(mut idle) = self.idle.lock() {
                    idle.push(r);
                }
                self.freed.notify_one();
            }
            result
        })
    }

    fn take(&self) -> Result<Reader> {
        let deadline = Instant::now() + self.wait;
        let mut idle = self.idle.lock().map_err(|_| StoreError::Closed)?;
        loop {
            if let Some(r) = idle.pop() {
                return Ok(r);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(StoreError::Busy);
            }
            idle = self
                .freed
                .wait_timeout(idle, left)
                .map_err(|_| StoreError::Closed)?
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        match Reader::open(dir.path()) {
            Err(StoreError::Missing(p)) => assert_eq!(p, dir.path().join("ctid.db")),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("opened a missing database"),
        }
    }

    #[test]
    fn readers_are_read_only_and_come_back() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::store::open(dir.path()).unwrap());
        let pool = ReadPool::open(dir.path(), 2).unwrap();
        let err = pool
            .with(|r| -> Result<()> {
                r.sql()
                    .execute("DELETE FROM calls", [])
                    .map_err(StoreError::from)?;
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(err, StoreError::Backend(_)), "{err}");
        // Both readers are back: two at once, and again.
        for _ in 0..2 {
            pool.with_two(|_, second| -> Result<()> {
                assert!(second.is_some());
                Ok(())
            })
            .unwrap();
        }
    }

    #[test]
    fn a_reader_taken_by_a_panic_is_not_lost() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::store::open(dir.path()).unwrap());
        let pool = ReadPool::open(dir.path(), 1).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            pool.with(|_| -> Result<()> { panic!("boom") })
        }));
        assert!(caught.is_err());
        let n: i64 = pool
            .with(|r| -> Result<i64> {
                Ok(r.sql()
                    .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(n, 0);
    }

    #[test]
    fn a_busy_pool_answers_busy_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        drop(crate::store::open(dir.path()).unwrap());
        let mut pool = ReadPool::open(dir.path(), 1).unwrap();
        pool.wait = Duration::from_millis(50);
        let inner = pool.with(|_| -> Result<()> { pool.with(|_| -> Result<()> { Ok(()) }) });
        assert!(matches!(inner, Err(StoreError::Busy)));
    }
}
