//! The contact policy's statements on PostgreSQL (live attempts, candidates, quota usage, the
//! duplicate rules, skips, the claim, a contact with its numbers), as methods of [`PgConn`] that
//! `super::outbound`'s `OutboundDb` implementation forwards to.

use super::outbound::{ids, opt_word};
use super::{u32_of, word, PgConn};
use crate::outbound::{AttemptId, ContactId, ListId};
use crate::store::outbound::ContactRow;
use crate::store::Result;

impl PgConn {
    pub(super) fn pg_live_attempt_of(&self, agent: &str) -> Result<Option<AttemptId>> {
        self.opt(
            "SELECT id FROM outbound_attempts WHERE agent = $1 AND ended_at_ms IS NULL LIMIT 1",
            &[&agent],
        )?
        .map(|r| Ok(AttemptId(r.try_get(0)?)))
        .transpose()
    }

    pub(super) fn pg_candidates(
        &self,
        lists: &[ListId],
        now_ms: i64,
        offset: i64,
    ) -> Result<Vec<ContactId>> {
        self.rows(
            "SELECT c.id FROM outbound_contacts c JOIN outbound_lists l ON l.id = c.list_id
             WHERE c.list_id = ANY($1) AND c.state = 'pending'
               AND (c.next_attempt_at_ms IS NULL OR c.next_attempt_at_ms <= $2)
             ORDER BY l.purpose = 'queue_callback' DESC, c.due_at_ms IS NULL, c.due_at_ms,
               l.priority DESC, c.id
             LIMIT 64 OFFSET $3",
            &[&ids(lists), &now_ms, &offset],
        )?
        .iter()
        .map(|r| Ok(ContactId(r.try_get(0)?)))
        .collect()
    }

    pub(super) fn pg_next_retry(&self, lists: &[ListId], now_ms: i64) -> Result<Option<i64>> {
        Ok(self
            .one(
                "SELECT min(next_attempt_at_ms) FROM outbound_contacts
                 WHERE list_id = ANY($1) AND state = 'pending' AND next_attempt_at_ms > $2",
                &[&ids(lists), &now_ms],
            )?
            .try_get(0)?)
    }

    pub(super) fn pg_list_usage(
        &self,
        list: ListId,
        agent: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(i64, i64)> {
        let used: i64 = self
            .one(
                "SELECT count(*) FROM outbound_attempts
                 WHERE list_id = $1 AND answered_at_ms >= $2 AND answered_at_ms < $3
                   AND ($4::text IS NULL OR agent = $4)",
                &[&list.0, &start_ms, &end_ms, &agent],
            )?
            .try_get(0)?;
        let in_flight: i64 = self
            .one(
                "SELECT count(*) FROM outbound_attempts
                 WHERE list_id = $1 AND ended_at_ms IS NULL AND answered_at_ms IS NULL
                   AND ($2::text IS NULL OR agent = $2)",
                &[&list.0, &agent],
            )?
            .try_get(0)?;
        Ok((used, in_flight))
    }

    pub(super) fn pg_customer_answered_since(
        &self,
        customer_id: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_attempts
                 WHERE customer_id = $1 AND answered_at_ms >= $2 AND contact_id != $3 LIMIT 1",
                &[&customer_id, &since_ms, &contact.0],
            )?
            .is_some())
    }

    pub(super) fn pg_number_answered_since(
        &self,
        number: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_attempts
                 WHERE number = $1 AND answered_at_ms >= $2 AND contact_id != $3 LIMIT 1",
                &[&number, &since_ms, &contact.0],
            )?
            .is_some())
    }

    pub(super) fn pg_live_elsewhere(
        &self,
        contact: ContactId,
        customer_id: Option<&str>,
        number: &str,
    ) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_attempts
                 WHERE ended_at_ms IS NULL AND contact_id != $1
                   AND (($2::text IS NOT NULL AND customer_id = $2) OR number = $3) LIMIT 1",
                &[&contact.0, &customer_id, &number],
            )?
            .is_some())
    }

    pub(super) fn pg_skip_contact(
        &self,
        list: ListId,
        contact: ContactId,
        customer_id: Option<&str>,
        number: Option<&str>,
        reason: &str,
        now_ms: i64,
    ) -> Result<()> {
        self.exec(
            "INSERT INTO outbound_attempts (list_id, contact_id, customer_id, number,
               started_at_ms, ended_at_ms, result, reason)
             VALUES ($1, $2, $3, $4, $5, $5, 'skipped', $6)",
            &[&list.0, &contact.0, &customer_id, &number, &now_ms, &reason],
        )?;
        self.exec(
            "UPDATE outbound_contacts SET state = 'skipped', done_reason = $2,
               last_result = 'skipped', next_attempt_at_ms = NULL, updated_at_ms = $3
             WHERE id = $1",
            &[&contact.0, &reason, &now_ms],
        )?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn pg_insert_attempt(
        &self,
        list: ListId,
        contact: ContactId,
        attempt_no: u32,
        customer_id: Option<&str>,
        agent: &str,
        number: &str,
        now_ms: i64,
    ) -> Result<AttemptId> {
        Ok(AttemptId(
            self.one(
                "INSERT INTO outbound_attempts (list_id, contact_id, attempt_no, customer_id,
                   agent, number, started_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                &[
                    &list.0,
                    &contact.0,
                    &i64::from(attempt_no),
                    &customer_id,
                    &agent,
                    &number,
                    &now_ms,
                ],
            )?
            .try_get(0)?,
        ))
    }

    pub(super) fn pg_claim_contact(
        &self,
        contact: ContactId,
        attempts: u32,
        now_ms: i64,
    ) -> Result<bool> {
        Ok(self.exec(
            "UPDATE outbound_contacts SET state = 'in_progress', attempts = $2, updated_at_ms = $3
             WHERE id = $1 AND state = 'pending'",
            &[&contact.0, &i64::from(attempts), &now_ms],
        )? == 1)
    }

    pub(super) fn pg_load_contact(&self, id: ContactId) -> Result<Option<ContactRow>> {
        let Some(r) = self.opt(
            "SELECT list_id, customer_id, name, fields, due_at_ms, state, attempts,
               next_attempt_at_ms, last_result, done_reason, call_id, created_at_ms
             FROM outbound_contacts WHERE id = $1",
            &[&id.0],
        )?
        else {
            return Ok(None);
        };
        let mut row = ContactRow {
            list_id: r.try_get(0)?,
            customer_id: r.try_get(1)?,
            name: r.try_get(2)?,
            fields_json: r.try_get(3)?,
            due_at_ms: r.try_get(4)?,
            state: word(r.try_get(5)?)?,
            attempts: u32_of(r.try_get(6)?)?,
            next_attempt_at_ms: r.try_get(7)?,
            last_result: opt_word(r.try_get(8)?)?,
            done_reason: r.try_get(9)?,
            call_id: r.try_get(10)?,
            created_at_ms: r.try_get(11)?,
            phones: Vec::new(),
        };
        for p in self.rows(
            "SELECT number FROM outbound_contact_phones WHERE contact_id = $1 ORDER BY position",
            &[&id.0],
        )? {
            row.phones.push(p.try_get(0)?);
        }
        Ok(Some(row))
    }
}
