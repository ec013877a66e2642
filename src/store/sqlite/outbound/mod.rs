//! The SQL of the callback lists (`crate::outbound`) on SQLite, per area: [`lists`] (the lists
//! with their calendars), [`contacts`] (imported contacts), [`policy`] (what the contact policy
//! reads and writes while it claims a contact), [`attempts`] (attempts and what their outcomes
//! do to contacts), [`queue_callbacks`] (requests taken up by the dialer), [`counters`] (a list's
//! board figures), [`dnc`] (the do-not-call list), [`complaints`] (complaint follow-ups),
//! [`browse`] (the API's contact pages), and [`types`] (how the outbound ids and vocabularies
//! are stored). The domain code (validation, contact policy, retry rules) stays in
//! `crate::outbound` and sees only the backend-neutral [`OutboundDb`], implemented here on the
//! SQLite connection (the writer's and the pooled readers').
//!
//! Each function is one statement (or one read of several rows) on the connection it is given,
//! inside whatever transaction the caller holds ([`OutboundDb::write_tx`]).

mod attempts;
mod browse;
mod complaints;
mod contacts;
mod counters;
mod dnc;
mod lists;
mod policy;
mod queue_callbacks;
mod types;

use crate::outbound::{
    AttemptId, AttemptResult, ContactId, ContactState, ListId, ListSpec, ListState,
};
use crate::store::outbound::{
    AttemptRow, ContactRow, Db, ListRecord, NewContactRow, OpenComplaint, OutboundDb, Tx, TxInner,
    Unlinked,
};
use crate::store::Result;

/// The SQLite connection the statements run on.
type Conn = rusqlite::Connection;

/// A SQLite write transaction (`BEGIN IMMEDIATE`: it takes the write lock at once, so reads
/// inside it see the state it writes over; with WAL a deferred transaction that reads and then
/// writes could fail with `SQLITE_BUSY` when another connection wrote in between, whatever the
/// busy timeout). Rolled back when dropped.
struct SqliteTx<'a>(rusqlite::Transaction<'a>);

impl TxInner for SqliteTx<'_> {
    fn db(&self) -> &Db {
        let conn: &Conn = &self.0;
        conn
    }

    fn commit(self: Box<Self>) -> Result<()> {
        Ok(self.0.commit()?)
    }
}

impl OutboundDb for Conn {
    fn write_tx(&self) -> Result<Tx<'_>> {
        let tx =
            rusqlite::Transaction::new_unchecked(self, rusqlite::TransactionBehavior::Immediate)?;
        Ok(Tx::new(Box::new(SqliteTx(tx))))
    }

    fn list_name_taken(&self, name: &str) -> Result<bool> {
        lists::name_taken(self, name)
    }
    fn insert_list(
        &self,
        spec: &ListSpec,
        secs: [i64; 4],
        windows: &[(u8, u16, u16)],
        holidays: &[String],
        now_ms: i64,
    ) -> Result<ListId> {
        lists::insert(self, spec, secs, windows, holidays, now_ms)
    }
    fn list_id_by_name(&self, name: &str) -> Result<Option<ListId>> {
        lists::id_by_name(self, name)
    }
    fn list_ids(&self) -> Result<Vec<ListId>> {
        lists::ids(self)
    }
    fn set_list_state(&self, id: ListId, to: ListState, now_ms: i64) -> Result<()> {
        lists::set_state(self, id, to, now_ms)
    }
    fn load_list(&self, id: ListId) -> Result<Option<ListRecord>> {
        lists::load(self, id)
    }

    fn customer_pending(&self, list: ListId, customer_id: &str) -> Result<bool> {
        contacts::customer_pending(self, list, customer_id)
    }
    fn number_pending(&self, list: ListId, number: &str) -> Result<bool> {
        contacts::number_pending(self, list, number)
    }
    fn insert_contact(
        &self,
        list: ListId,
        c: &NewContactRow<'_>,
        now_ms: i64,
    ) -> Result<ContactId> {
        contacts::insert(self, list, c, now_ms)
    }

    fn live_attempt_of(&self, agent: &str) -> Result<Option<AttemptId>> {
        policy::live_attempt_of(self, agent)
    }
    fn candidates(&self, lists: &[ListId], now_ms: i64, offset: i64) -> Result<Vec<ContactId>> {
        policy::candidates(self, lists, now_ms, offset)
    }
    fn next_retry(&self, lists: &[ListId], now_ms: i64) -> Result<Option<i64>> {
        policy::next_retry(self, lists, now_ms)
    }
    fn list_usage(
        &self,
        list: ListId,
        agent: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(i64, i64)> {
        policy::usage(self, list, agent, start_ms, end_ms)
    }
    fn customer_answered_since(
        &self,
        customer_id: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool> {
        policy::customer_answered_since(self, customer_id, since_ms, contact)
    }
    fn number_answered_since(
        &self,
        number: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool> {
        policy::number_answered_since(self, number, since_ms, contact)
    }
    fn live_elsewhere(
        &self,
        contact: ContactId,
        customer_id: Option<&str>,
        number: &str,
    ) -> Result<bool> {
        policy::live_elsewhere(self, contact, customer_id, number)
    }
    fn skip_contact(
        &self,
        list: ListId,
        contact: ContactId,
        customer_id: Option<&str>,
        number: Option<&str>,
        reason: &str,
        now_ms: i64,
    ) -> Result<()> {
        policy::skip(self, list, contact, customer_id, number, reason, now_ms)
    }
    fn insert_attempt(
        &self,
        list: ListId,
        contact: ContactId,
        attempt_no: u32,
        customer_id: Option<&str>,
        agent: &str,
        number: &str,
        now_ms: i64,
    ) -> Result<AttemptId> {
        policy::insert_attempt(
            self,
            list,
            contact,
            attempt_no,
            customer_id,
            agent,
            number,
            now_ms,
        )
    }
    fn claim_contact(&self, contact: ContactId, attempts: u32, now_ms: i64) -> Result<bool> {
        policy::claim_contact(self, contact, attempts, now_ms)
    }
    fn load_contact(&self, id: ContactId) -> Result<Option<ContactRow>> {
        policy::load_contact(self, id)
    }

    fn load_attempt(&self, id: AttemptId) -> Result<Option<AttemptRow>> {
        attempts::load(self, id)
    }
    fn set_attempt_call(&self, id: AttemptId, call_id: i64) -> Result<bool> {
        attempts::set_call(self, id, call_id)
    }
    fn attempt_ringing(&self, id: AttemptId, sip_code: Option<u16>) -> Result<()> {
        attempts::set_ringing(self, id, sip_code)
    }
    fn attempt_answered(&self, id: AttemptId, at_ms: i64, sip_code: Option<u16>) -> Result<()> {
        attempts::set_answered(self, id, at_ms, sip_code)
    }
    fn attempt_skipped_by_agent(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        attempts::set_skipped_by_agent(self, id, at_ms)
    }
    fn attempt_final(
        &self,
        id: AttemptId,
        result: AttemptResult,
        sip_code: Option<u16>,
        at_ms: i64,
    ) -> Result<()> {
        attempts::set_final(self, id, result, sip_code, at_ms)
    }
    fn attempt_ended(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        attempts::set_ended(self, id, at_ms)
    }
    fn attempt_disposition(
        &self,
        id: AttemptId,
        disposition: &str,
        notes: Option<&str>,
        survey_score: Option<i64>,
    ) -> Result<()> {
        attempts::set_disposition(self, id, disposition, notes, survey_score)
    }
    fn live_attempt_ids(&self) -> Result<Vec<AttemptId>> {
        attempts::live_ids(self)
    }
    fn give_back_attempt(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        attempts::give_back(self, id, at_ms)
    }
    fn attempt_end_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        attempts::end_interrupted(self, id, at_ms)
    }
    fn attempt_fail_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        attempts::fail_interrupted(self, id, at_ms)
    }
    fn contact_given_back(&self, contact: ContactId, next_at_ms: i64, at_ms: i64) -> Result<()> {
        attempts::contact_given_back(self, contact, next_at_ms, at_ms)
    }
    fn contact_done(&self, contact: ContactId, reason: &str, at_ms: i64) -> Result<()> {
        attempts::contact_done(self, contact, reason, at_ms)
    }
    fn contact_last_result(&self, contact: ContactId, result: AttemptResult) -> Result<()> {
        attempts::contact_last_result(self, contact, result)
    }
    fn contact_unreachable(
        &self,
        contact: ContactId,
        result: AttemptResult,
        at_ms: i64,
    ) -> Result<()> {
        attempts::contact_unreachable(self, contact, result, at_ms)
    }
    fn contact_retry(
        &self,
        contact: ContactId,
        result: AttemptResult,
        retry_at_ms: i64,
        at_ms: i64,
    ) -> Result<()> {
        attempts::contact_retry(self, contact, result, retry_at_ms, at_ms)
    }
    fn awaiting_disposition(&self) -> Result<i64> {
        attempts::awaiting_disposition(self)
    }

    fn unlinked_callbacks(&self) -> Result<Vec<Unlinked>> {
        queue_callbacks::unlinked(self)
    }
    fn fail_callback(&self, id: i64, reason: &str, now_ms: i64) -> Result<()> {
        queue_callbacks::fail(self, id, reason, now_ms)
    }
    fn link_callback(&self, id: i64, contact: ContactId) -> Result<()> {
        queue_callbacks::link(self, id, contact)
    }
    fn queue_callback_list(&self, queue: &str) -> Result<Option<(ListId, String)>> {
        queue_callbacks::queue_list(self, queue)
    }
    fn contact_of_call(&self, list: ListId, call_id: i64) -> Result<Option<ContactId>> {
        queue_callbacks::contact_of_call(self, list, call_id)
    }

    fn contact_states(&self, list: ListId) -> Result<Vec<(ContactState, i64)>> {
        counters::contact_states(self, list)
    }
    fn attempt_results(&self, list: ListId) -> Result<Vec<(Option<AttemptResult>, i64)>> {
        counters::attempt_results(self, list)
    }
    fn skip_reasons(&self, list: ListId) -> Result<Vec<(String, i64)>> {
        counters::skip_reasons(self, list)
    }
    fn answered_per_agent(
        &self,
        list: ListId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, i64)>> {
        counters::answered_per_agent(self, list, start_ms, end_ms)
    }
    fn live_attempts(&self, list: ListId) -> Result<i64> {
        counters::live_attempts(self, list)
    }

    fn insert_dnc(&self, e164: &str, source: &str, now_ms: i64) -> Result<()> {
        dnc::insert(self, e164, source, now_ms)
    }
    fn delete_dnc(&self, e164: &str) -> Result<bool> {
        dnc::delete(self, e164)
    }
    fn find_dnc(&self, e164: &str) -> Result<Option<(i64, String)>> {
        dnc::find(self, e164)
    }

    fn follow_up_of_call(
        &self,
        list: ListId,
        call_id: i64,
    ) -> Result<Option<(ContactId, Option<i64>)>> {
        complaints::follow_up_of_call(self, list, call_id)
    }
    fn open_complaints(&self, default_reply_ms: i64) -> Result<Vec<OpenComplaint>> {
        complaints::open_complaints(self, default_reply_ms)
    }

    fn contact_ids_after(
        &self,
        list: ListId,
        state: Option<ContactState>,
        after: i64,
        agent: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactId>> {
        browse::contact_ids_after(self, list, state, after, agent, limit)
    }
    fn attempted_by(&self, contact: ContactId, agent: &str) -> Result<bool> {
        browse::attempted_by(self, contact, agent)
    }
    fn attempt_ids(&self, contact: ContactId) -> Result<Vec<AttemptId>> {
        browse::attempt_ids(self, contact)
    }
}

#[cfg(test)]
mod tests {
    use crate::store::outbound::Db;

    fn db() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        (dir, conn)
    }

    #[test]
    fn a_transaction_dropped_uncommitted_leaves_nothing_and_a_committed_one_stays() {
        let (_dir, conn) = db();
        let db: &Db = &conn;
        {
            let tx = db.write_tx().unwrap();
            tx.insert_dnc("+4930111", "test", 5).unwrap();
            assert_eq!(tx.find_dnc("+4930111").unwrap(), Some((5, "test".into())));
        }
        assert_eq!(db.find_dnc("+4930111").unwrap(), None);
        let tx = db.write_tx().unwrap();
        tx.insert_dnc("+4930111", "test", 5).unwrap();
        // Adding it again keeps the first time and source.
        tx.insert_dnc("+4930111", "other", 9).unwrap();
        tx.commit().unwrap();
        assert_eq!(db.find_dnc("+4930111").unwrap(), Some((5, "test".into())));
        assert!(db.delete_dnc("+4930111").unwrap());
        assert!(!db.delete_dnc("+4930111").unwrap());
    }

    #[test]
    fn transactions_do_not_nest_and_readers_cannot_write() {
        let (dir, conn) = db();
        let db: &Db = &conn;
        let tx = db.write_tx().unwrap();
        assert!(tx.write_tx().is_err(), "a transaction inside a transaction");
        drop(tx);
        let reader = crate::store::ReadPool::open(dir.path(), 1).unwrap();
        let err = reader
            .with(|r| r.outbound().insert_dnc("+4930222", "test", 1))
            .unwrap_err();
        assert!(matches!(err, crate::store::StoreError::Backend(_)), "{err}");
    }
}
