//! The SQL of the callback lists (`crate::outbound`) on SQLite, per area: [`lists`] (the lists
//! with their calendars), [`contacts`] (imported contacts), [`policy`] (what the contact policy
//! reads and writes while it claims a contact), [`attempts`] (attempts and what their outcomes
//! do to contacts), [`queue_callbacks`] (requests taken up by the dialer), [`counters`] (a list's
//! board figures), [`dnc`] (the do-not-call list), [`complaints`] (complaint follow-ups),
//! [`browse`] (the API's contact pages), and [`types`] (how the outbound ids and vocabularies
//! are stored). The domain code (validation, contact policy, retry rules) stays in
//! `crate::outbound` and runs on the connection ([`Db`]) the store hands it.
//!
//! Each function is one statement (or one read of several rows) on the connection it is given,
//! inside whatever transaction the caller holds ([`write_tx`]).

pub mod attempts;
pub mod browse;
pub mod complaints;
pub mod contacts;
pub mod counters;
pub mod dnc;
pub mod lists;
pub mod policy;
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
