//! The second half of the callback lists' statements on PostgreSQL (attempts and their
//! outcomes, queue callbacks, board figures, do-not-call, complaints, contact pages), as methods
//! of [`PgConn`] that `super::outbound`'s `OutboundDb` implementation forwards to (one file would
//! pass 600 lines).

use super::outbound::{opt_u32, opt_word, pairs, sip};
use super::{word, PgConn};
use crate::outbound::{AttemptId, AttemptResult, ContactId, ContactState, ListId};
use crate::store::outbound::{AttemptRow, OpenComplaint, Unlinked};
use crate::store::Result;

impl PgConn {
    pub(super) fn pg_load_attempt(&self, id: AttemptId) -> Result<Option<AttemptRow>> {
        let Some(r) = self.opt(
            "SELECT list_id, contact_id, attempt_no, agent, number, call_id, started_at_ms,
               answered_at_ms, ended_at_ms, result, sip_code, disposition, notes, survey_score,
               reason
             FROM outbound_attempts WHERE id = $1",
            &[&id.0],
        )?
        else {
            return Ok(None);
        };
        let sip_code: Option<i64> = r.try_get(10)?;
        Ok(Some(AttemptRow {
            list_id: r.try_get(0)?,
            contact_id: r.try_get(1)?,
            attempt_no: opt_u32(r.try_get(2)?)?,
            agent: r.try_get(3)?,
            number: r.try_get(4)?,
            call_id: r.try_get(5)?,
            started_at_ms: r.try_get(6)?,
            answered_at_ms: r.try_get(7)?,
            ended_at_ms: r.try_get(8)?,
            result: opt_word(r.try_get(9)?)?,
            sip_code: sip_code.and_then(|c| u16::try_from(c).ok()),
            disposition: r.try_get(11)?,
            notes: r.try_get(12)?,
            survey_score: r.try_get(13)?,
            reason: r.try_get(14)?,
        }))
    }

    pub(super) fn pg_set_attempt_call(&self, id: AttemptId, call_id: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE outbound_attempts SET call_id = $2 WHERE id = $1",
            &[&id.0, &call_id],
        )? > 0)
    }

    pub(super) fn pg_attempt_ringing(&self, id: AttemptId, sip_code: Option<u16>) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'ringing', sip_code = COALESCE($2, sip_code)
             WHERE id = $1",
            &[&id.0, &sip(sip_code)],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_answered(
        &self,
        id: AttemptId,
        at_ms: i64,
        sip_code: Option<u16>,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'answered', answered_at_ms = $2,
               sip_code = COALESCE($3, sip_code)
             WHERE id = $1",
            &[&id.0, &at_ms, &sip(sip_code)],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_skipped_by_agent(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'skipped', reason = 'agent', attempt_no = NULL,
               ended_at_ms = $2
             WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_final(
        &self,
        id: AttemptId,
        result: AttemptResult,
        sip_code: Option<u16>,
        at_ms: i64,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = $2, sip_code = COALESCE($3, sip_code),
               ended_at_ms = $4
             WHERE id = $1",
            &[&id.0, &result.as_str(), &sip(sip_code), &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_ended(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET ended_at_ms = $2 WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_disposition(
        &self,
        id: AttemptId,
        disposition: &str,
        notes: Option<&str>,
        survey_score: Option<i64>,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET disposition = $2, notes = $3, survey_score = $4
             WHERE id = $1",
            &[&id.0, &disposition, &notes, &survey_score],
        )?;
        Ok(())
    }

    pub(super) fn pg_live_attempt_ids(&self) -> Result<Vec<AttemptId>> {
        self.rows(
            "SELECT id FROM outbound_attempts WHERE ended_at_ms IS NULL ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| Ok(AttemptId(r.try_get(0)?)))
        .collect()
    }

    pub(super) fn pg_give_back_attempt(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'skipped', reason = 'interrupted',
               attempt_no = NULL, ended_at_ms = $2
             WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_end_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET ended_at_ms = $2, reason = 'interrupted' WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_attempt_fail_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'failed', ended_at_ms = $2,
               reason = 'interrupted'
             WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_contact_given_back(
        &self,
        contact: ContactId,
        next_at_ms: i64,
        at_ms: i64,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET state = 'pending', attempts = GREATEST(attempts - 1, 0),
               next_attempt_at_ms = $2, updated_at_ms = $3
             WHERE id = $1 AND state = 'in_progress'",
            &[&contact.0, &next_at_ms, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_contact_done(
        &self,
        contact: ContactId,
        reason: &str,
        at_ms: i64,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET state = 'done', done_reason = $2,
               next_attempt_at_ms = NULL, updated_at_ms = $3
             WHERE id = $1",
            &[&contact.0, &reason, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_contact_last_result(
        &self,
        contact: ContactId,
        result: AttemptResult,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET last_result = $2 WHERE id = $1",
            &[&contact.0, &result.as_str()],
        )?;
        Ok(())
    }

    pub(super) fn pg_contact_unreachable(
        &self,
        contact: ContactId,
        result: AttemptResult,
        at_ms: i64,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET state = 'unreachable', done_reason = 'max_attempts',
               last_result = $2, next_attempt_at_ms = NULL, updated_at_ms = $3
             WHERE id = $1",
            &[&contact.0, &result.as_str(), &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_contact_retry(
        &self,
        contact: ContactId,
        result: AttemptResult,
        retry_at_ms: i64,
        at_ms: i64,
    ) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET state = 'pending', last_result = $2,
               next_attempt_at_ms = $3, updated_at_ms = $4
             WHERE id = $1",
            &[&contact.0, &result.as_str(), &retry_at_ms, &at_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_awaiting_disposition(&self) -> Result<i64> {
        Ok(self
            .one(
                "SELECT count(*) FROM outbound_contacts c WHERE c.state = 'in_progress'
                   AND NOT EXISTS (SELECT 1 FROM outbound_attempts a
                                   WHERE a.contact_id = c.id AND a.ended_at_ms IS NULL)",
                &[],
            )?
            .try_get(0)?)
    }

    pub(super) fn pg_unlinked_callbacks(&self) -> Result<Vec<Unlinked>> {
        self.rows(
            "SELECT id, call_id, queue, caller_number, caller_name, entered_at_ms, position,
               requested_at_ms
             FROM callback_requests WHERE status = 'pending' AND contact_id IS NULL
             ORDER BY entered_at_ms, id",
            &[],
        )?
        .iter()
        .map(|r| {
            Ok(Unlinked {
                id: r.try_get(0)?,
                call_id: r.try_get(1)?,
                queue: r.try_get(2)?,
                number: r.try_get(3)?,
                name: r.try_get(4)?,
                entered_at_ms: r.try_get(5)?,
                position: r.try_get(6)?,
                requested_at_ms: r.try_get(7)?,
            })
        })
        .collect()
    }

    pub(super) fn pg_fail_callback(&self, id: i64, reason: &str, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE callback_requests SET status = 'failed', reason = $2, done_at_ms = $3
             WHERE id = $1",
            &[&id, &reason, &now_ms],
        )?;
        Ok(())
    }

    pub(super) fn pg_link_callback(&self, id: i64, contact: ContactId) -> Result<()> {
        self.exec(
            "UPDATE callback_requests SET contact_id = $2 WHERE id = $1",
            &[&id, &contact.0],
        )?;
        Ok(())
    }

    pub(super) fn pg_queue_callback_list(&self, queue: &str) -> Result<Option<(ListId, String)>> {
        self.opt(
            "SELECT id, state FROM outbound_lists WHERE purpose = 'queue_callback' AND queue = $1
             ORDER BY state = 'stopped', id LIMIT 1",
            &[&queue],
        )?
        .map(|r| Ok((ListId(r.try_get(0)?), r.try_get(1)?)))
        .transpose()
    }

    pub(super) fn pg_contact_of_call(
        &self,
        list: ListId,
        call_id: i64,
    ) -> Result<Option<ContactId>> {
        self.opt(
            "SELECT id FROM outbound_contacts WHERE list_id = $1 AND call_id = $2",
            &[&list.0, &call_id],
        )?
        .map(|r| Ok(ContactId(r.try_get(0)?)))
        .transpose()
    }

    pub(super) fn pg_contact_states(&self, list: ListId) -> Result<Vec<(ContactState, i64)>> {
        let rows: Vec<(String, i64)> = pairs(self.rows(
            "SELECT state, count(*) FROM outbound_contacts WHERE list_id = $1 GROUP BY state",
            &[&list.0],
        )?)?;
        rows.into_iter().map(|(s, n)| Ok((word(&s)?, n))).collect()
    }

    pub(super) fn pg_attempt_results(
        &self,
        list: ListId,
    ) -> Result<Vec<(Option<AttemptResult>, i64)>> {
        let rows: Vec<(Option<String>, i64)> = pairs(self.rows(
            "SELECT result, count(*) FROM outbound_attempts WHERE list_id = $1 GROUP BY result",
            &[&list.0],
        )?)?;
        rows.into_iter()
            .map(|(s, n)| Ok((opt_word(s)?, n)))
            .collect()
    }

    pub(super) fn pg_skip_reasons(&self, list: ListId) -> Result<Vec<(String, i64)>> {
        pairs(self.rows(
            "SELECT COALESCE(reason, ''), count(*) FROM outbound_attempts
             WHERE list_id = $1 AND result = 'skipped' GROUP BY 1",
            &[&list.0],
        )?)
    }

    pub(super) fn pg_answered_per_agent(
        &self,
        list: ListId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, i64)>> {
        pairs(self.rows(
            "SELECT COALESCE(agent, ''), count(*) FROM outbound_attempts
             WHERE list_id = $1 AND answered_at_ms >= $2 AND answered_at_ms < $3 GROUP BY 1",
            &[&list.0, &start_ms, &end_ms],
        )?)
    }

    pub(super) fn pg_live_attempts(&self, list: ListId) -> Result<i64> {
        Ok(self
            .one(
                "SELECT count(*) FROM outbound_attempts WHERE list_id = $1 AND ended_at_ms IS NULL",
                &[&list.0],
            )?
            .try_get(0)?)
    }

    pub(super) fn pg_insert_dnc(&self, e164: &str, source: &str, now_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO do_not_call (number, added_at_ms, source) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&e164, &now_ms, &source],
        )?;
        Ok(())
    }

    pub(super) fn pg_delete_dnc(&self, e164: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM do_not_call WHERE number = $1", &[&e164])? > 0)
    }

    pub(super) fn pg_find_dnc(&self, e164: &str) -> Result<Option<(i64, String)>> {
        self.opt(
            "SELECT added_at_ms, source FROM do_not_call WHERE number = $1",
            &[&e164],
        )?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
    }

    pub(super) fn pg_follow_up_of_call(
        &self,
        list: ListId,
        call_id: i64,
    ) -> Result<Option<(ContactId, Option<i64>)>> {
        self.opt(
            "SELECT id, due_at_ms FROM outbound_contacts WHERE list_id = $1 AND call_id = $2",
            &[&list.0, &call_id],
        )?
        .map(|r| Ok((ContactId(r.try_get(0)?), r.try_get(1)?)))
        .transpose()
    }

    pub(super) fn pg_open_complaints(&self, default_reply_ms: i64) -> Result<Vec<OpenComplaint>> {
        self.rows(
            "SELECT c.id, c.list_id, l.name, c.call_id, c.customer_id,
               (SELECT number FROM outbound_contact_phones p WHERE p.contact_id = c.id
                ORDER BY position LIMIT 1),
               c.name, c.state, c.created_at_ms, c.due_at_ms,
               (SELECT min(answered_at_ms) FROM outbound_attempts a
                WHERE a.contact_id = c.id AND a.answered_at_ms IS NOT NULL)
             FROM outbound_contacts c JOIN outbound_lists l ON l.id = c.list_id
             WHERE l.purpose = 'complaint' AND c.state != 'done'
             ORDER BY COALESCE(c.due_at_ms, c.created_at_ms + $1), c.id",
            &[&default_reply_ms],
        )?
        .iter()
        .map(|r| {
            Ok(OpenComplaint {
                contact: ContactId(r.try_get(0)?),
                list: ListId(r.try_get(1)?),
                list_name: r.try_get(2)?,
                call_id: r.try_get(3)?,
                customer_id: r.try_get(4)?,
                number: r.try_get(5)?,
                name: r.try_get(6)?,
                state: word(r.try_get(7)?)?,
                created_at_ms: r.try_get(8)?,
                due_at_ms: r.try_get(9)?,
                first_answer_at_ms: r.try_get(10)?,
            })
        })
        .collect()
    }

    pub(super) fn pg_contact_ids_after(
        &self,
        list: ListId,
        state: Option<ContactState>,
        after: i64,
        agent: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactId>> {
        self.rows(
            "SELECT id FROM outbound_contacts
             WHERE list_id = $1 AND ($2::text IS NULL OR state = $2) AND id > $3
               AND ($4::text IS NULL OR id IN
                    (SELECT contact_id FROM outbound_attempts WHERE list_id = $1 AND agent = $4))
             ORDER BY id LIMIT $5",
            &[
                &list.0,
                &state.map(ContactState::as_str),
                &after,
                &agent,
                &i64::try_from(limit).unwrap_or(i64::MAX),
            ],
        )?
        .iter()
        .map(|r| Ok(ContactId(r.try_get(0)?)))
        .collect()
    }

    pub(super) fn pg_attempted_by(&self, contact: ContactId, agent: &str) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_attempts WHERE contact_id = $1 AND agent = $2 LIMIT 1",
                &[&contact.0, &agent],
            )?
            .is_some())
    }

    pub(super) fn pg_attempt_ids(&self, contact: ContactId) -> Result<Vec<AttemptId>> {
        self.rows(
            "SELECT id FROM outbound_attempts WHERE contact_id = $1 ORDER BY id",
            &[&contact.0],
        )?
        .iter()
        .map(|r| Ok(AttemptId(r.try_get(0)?)))
        .collect()
    }
}
