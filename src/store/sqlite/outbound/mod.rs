//! The SQL of the callback lists (`crate::outbound`) on SQLite, per area: [`counters`] (a list's
//! board figures), [`dnc`] (the do-not-call list), [`complaints`] (complaint follow-ups),
//! [`browse`] (the API's contact pages), [`contacts`] (imported contacts), [`lists`] (the lists with their calendars), [`queue_callbacks`] (requests taken up by the dialer),
//! and [`types`] (how the outbound ids and vocabularies are
//! stored). The contact policy, imports and outcomes still hold their SQL in
//! `crate::outbound` and take the connection ([`Db`]) the store hands them.
//!
//! Each function is one statement (or one read of several rows) on the connection it is given,
//! inside whatever transaction the caller holds ([`write_tx`]).

pub mod browse;
pub mod complaints;
pub mod contacts;
pub mod counters;
pub mod dnc;
pub mod lists;
pub mod queue_callbacks;
mod types;

use crate::store::Result;

/// The connection the callback-list work runs on: the store writer's for changes, a pooled
/// reader's for reads (see `crate::store::Store`).
pub type Db = rusqlite::Connection;

/// A transaction on a [`Db`]; it derefs to one.
pub type Tx<'a> = rusqlite::Transaction<'a>;

/// A write transaction that takes the write lock at once (`BEGIN IMMEDIATE`): reads inside it see
/// the state it writes over, and with WAL a deferred transaction that reads and then writes could
/// fail with `SQLITE_BUSY` when another connection wrote in between, whatever the busy timeout.
pub fn write_tx(conn: &Db) -> Result<Tx<'_>> {
    Ok(rusqlite::Transaction::new_unchecked(
        conn,
        rusqlite::TransactionBehavior::Immediate,
    )?)
}
