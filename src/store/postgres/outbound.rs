//! The callback lists' operations ([`OutboundDb`]) on PostgreSQL: the statements of
//! `super::super::sqlite::outbound` in PostgreSQL's dialect (`$n` parameters, `RETURNING id`,
//! `ON CONFLICT DO NOTHING`, `= ANY($n)` for a set of lists), reading the same rows.

use super::{u32_of, word, PgConn};
use crate::outbound::{
    AttemptId, AttemptResult, ContactId, ContactState, ListId, ListSpec, ListState,
};
use crate::store::outbound::{
    AttemptRow, ContactRow, ListRecord, NewContactRow, OpenComplaint, OutboundDb, Tx, Unlinked,
};
use crate::store::Result;
use postgres::Row;

fn ids(list: &[ListId]) -> Vec<i64> {
    list.iter().map(|l| l.0).collect()
}

fn opt_word<T>(v: Option<String>) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.as_deref().map(word).transpose()
}

fn opt_u32(v: Option<i64>) -> Result<Option<u32>> {
    v.map(u32_of).transpose()
}

fn sip(code: Option<u16>) -> Option<i64> {
    code.map(i64::from)
}

fn pairs<K: for<'a> postgres::types::FromSql<'a>>(rows: Vec<Row>) -> Result<Vec<(K, i64)>> {
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

impl OutboundDb for PgConn {
    fn write_tx(&self) -> Result<Tx<'_>> {
        self.begin()
    }

    fn list_name_taken(&self, name: &str) -> Result<bool> {
        Ok(self
            .opt("SELECT 1 FROM outbound_lists WHERE name = $1", &[&name])?
            .is_some())
    }

    fn insert_list(
        &self,
        spec: &ListSpec,
        secs: [i64; 4],
        windows: &[(u8, u16, u16)],
        holidays: &[String],
        now_ms: i64,
    ) -> Result<ListId> {
        let row = self.one(
            "INSERT INTO outbound_lists (name, purpose, queue, mode, time_zone, quota_per_day,
               agent_quota_per_day, max_attempts, retry_busy_s, retry_no_answer_s,
               retry_failed_s, dedupe_period_s, priority, state, created_at_ms,
               state_changed_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'active', $14, $14)
             RETURNING id",
            &[
                &spec.name,
                &spec.purpose.as_str(),
                &spec.queue,
                &spec.mode.as_str(),
                &spec.time_zone,
                &spec.quota_per_day.map(i64::from),
                &spec.agent_quota_per_day.map(i64::from),
                &i64::from(spec.max_attempts),
                &secs[0],
                &secs[1],
                &secs[2],
                &secs[3],
                &i64::from(spec.priority),
                &now_ms,
            ],
        )?;
        let id: i64 = row.try_get(0)?;
        for agent in &spec.agents {
            self.exec(
                "INSERT INTO outbound_list_agents (list_id, agent) VALUES ($1, $2)",
                &[&id, agent],
            )?;
        }
        for (i, (days, start, end)) in windows.iter().enumerate() {
            self.exec(
                "INSERT INTO outbound_list_windows (list_id, position, days, start_min, end_min)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &id,
                    &(i as i64),
                    &i64::from(*days),
                    &i64::from(*start),
                    &i64::from(*end),
                ],
            )?;
        }
        for d in holidays {
            self.exec(
                "INSERT INTO outbound_list_holidays (list_id, date) VALUES ($1, $2)",
                &[&id, d],
            )?;
        }
        Ok(ListId(id))
    }

    fn list_id_by_name(&self, name: &str) -> Result<Option<ListId>> {
        self.opt("SELECT id FROM outbound_lists WHERE name = $1", &[&name])?
            .map(|r| Ok(ListId(r.try_get(0)?)))
            .transpose()
    }

    fn list_ids(&self) -> Result<Vec<ListId>> {
        self.rows("SELECT id FROM outbound_lists ORDER BY id", &[])?
            .iter()
            .map(|r| Ok(ListId(r.try_get(0)?)))
            .collect()
    }

    fn set_list_state(&self, id: ListId, to: ListState, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_lists SET state = $2, state_changed_at_ms = $3 WHERE id = $1",
            &[&id.0, &to.as_str(), &now_ms],
        )?;
        Ok(())
    }

    fn load_list(&self, id: ListId) -> Result<Option<ListRecord>> {
        let Some(r) = self.opt(
            "SELECT name, purpose, queue, mode, time_zone, quota_per_day, agent_quota_per_day,
               max_attempts, retry_busy_s, retry_no_answer_s, retry_failed_s, dedupe_period_s,
               priority, state, created_at_ms, state_changed_at_ms
             FROM outbound_lists WHERE id = $1",
            &[&id.0],
        )?
        else {
            return Ok(None);
        };
        let priority: i64 = r.try_get(12)?;
        let mut list = ListRecord {
            name: r.try_get(0)?,
            purpose: word(r.try_get(1)?)?,
            queue: r.try_get(2)?,
            mode: word(r.try_get(3)?)?,
            time_zone: r.try_get(4)?,
            quota_per_day: opt_u32(r.try_get(5)?)?,
            agent_quota_per_day: opt_u32(r.try_get(6)?)?,
            max_attempts: u32_of(r.try_get(7)?)?,
            retry_busy_s: r.try_get(8)?,
            retry_no_answer_s: r.try_get(9)?,
            retry_failed_s: r.try_get(10)?,
            dedupe_period_s: r.try_get(11)?,
            priority: i32::try_from(priority).unwrap_or(0),
            state: word(r.try_get(13)?)?,
            created_at_ms: r.try_get(14)?,
            state_changed_at_ms: r.try_get(15)?,
            agents: Vec::new(),
            windows: Vec::new(),
            holidays: Vec::new(),
        };
        for r in self.rows(
            "SELECT agent FROM outbound_list_agents WHERE list_id = $1 ORDER BY seq",
            &[&id.0],
        )? {
            list.agents.push(r.try_get(0)?);
        }
        for r in self.rows(
            "SELECT days, start_min, end_min FROM outbound_list_windows
             WHERE list_id = $1 ORDER BY position",
            &[&id.0],
        )? {
            let (d, s, e): (i64, i64, i64) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            list.windows.push((
                u8::try_from(d).unwrap_or(0),
                u16::try_from(s).unwrap_or(0),
                u16::try_from(e).unwrap_or(0),
            ));
        }
        for r in self.rows(
            "SELECT date FROM outbound_list_holidays WHERE list_id = $1 ORDER BY date",
            &[&id.0],
        )? {
            list.holidays.push(r.try_get(0)?);
        }
        Ok(Some(list))
    }

    fn customer_pending(&self, list: ListId, customer_id: &str) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_contacts WHERE list_id = $1 AND customer_id = $2
                 AND state IN ('pending', 'in_progress') LIMIT 1",
                &[&list.0, &customer_id],
            )?
            .is_some())
    }

    fn number_pending(&self, list: ListId, number: &str) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_contact_phones p JOIN outbound_contacts c
                   ON c.id = p.contact_id
                 WHERE p.number = $2 AND p.position = 0 AND c.list_id = $1
                   AND c.customer_id IS NULL AND c.state IN ('pending', 'in_progress') LIMIT 1",
                &[&list.0, &number],
            )?
            .is_some())
    }

    fn insert_contact(
        &self,
        list: ListId,
        c: &NewContactRow<'_>,
        now_ms: i64,
    ) -> Result<ContactId> {
        let id: i64 = self
            .one(
                "INSERT INTO outbound_contacts (list_id, customer_id, name, fields, due_at_ms,
                   state, attempts, next_attempt_at_ms, call_id, created_at_ms, updated_at_ms)
                 VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8, $8) RETURNING id",
                &[
                    &list.0,
                    &c.customer_id,
                    &c.name,
                    &c.fields_json,
                    &c.due_at_ms,
                    &c.not_before_ms,
                    &c.call_id,
                    &now_ms,
                ],
            )?
            .try_get(0)?;
        for (i, n) in c.phones.iter().enumerate() {
            self.exec(
                "INSERT INTO outbound_contact_phones (contact_id, position, number)
                 VALUES ($1, $2, $3)",
                &[&id, &(i as i64), n],
            )?;
        }
        Ok(ContactId(id))
    }

    fn live_attempt_of(&self, agent: &str) -> Result<Option<AttemptId>> {
        self.opt(
            "SELECT id FROM outbound_attempts WHERE agent = $1 AND ended_at_ms IS NULL LIMIT 1",
            &[&agent],
        )?
        .map(|r| Ok(AttemptId(r.try_get(0)?)))
        .transpose()
    }

    fn candidates(&self, lists: &[ListId], now_ms: i64, offset: i64) -> Result<Vec<ContactId>> {
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

    fn next_retry(&self, lists: &[ListId], now_ms: i64) -> Result<Option<i64>> {
        Ok(self
            .one(
                "SELECT min(next_attempt_at_ms) FROM outbound_contacts
                 WHERE list_id = ANY($1) AND state = 'pending' AND next_attempt_at_ms > $2",
                &[&ids(lists), &now_ms],
            )?
            .try_get(0)?)
    }

    fn list_usage(
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

    fn customer_answered_since(
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

    fn number_answered_since(
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

    fn live_elsewhere(
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

    fn skip_contact(
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

    fn claim_contact(&self, contact: ContactId, attempts: u32, now_ms: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE outbound_contacts SET state = 'in_progress', attempts = $2, updated_at_ms = $3
             WHERE id = $1 AND state = 'pending'",
            &[&contact.0, &i64::from(attempts), &now_ms],
        )? == 1)
    }

    fn load_contact(&self, id: ContactId) -> Result<Option<ContactRow>> {
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

    fn load_attempt(&self, id: AttemptId) -> Result<Option<AttemptRow>> {
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

    fn set_attempt_call(&self, id: AttemptId, call_id: i64) -> Result<bool> {
        Ok(self.exec(
            "UPDATE outbound_attempts SET call_id = $2 WHERE id = $1",
            &[&id.0, &call_id],
        )? > 0)
    }

    fn attempt_ringing(&self, id: AttemptId, sip_code: Option<u16>) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'ringing', sip_code = COALESCE($2, sip_code)
             WHERE id = $1",
            &[&id.0, &sip(sip_code)],
        )?;
        Ok(())
    }

    fn attempt_answered(&self, id: AttemptId, at_ms: i64, sip_code: Option<u16>) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'answered', answered_at_ms = $2,
               sip_code = COALESCE($3, sip_code)
             WHERE id = $1",
            &[&id.0, &at_ms, &sip(sip_code)],
        )?;
        Ok(())
    }

    fn attempt_skipped_by_agent(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'skipped', reason = 'agent', attempt_no = NULL,
               ended_at_ms = $2
             WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    fn attempt_final(
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

    fn attempt_ended(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET ended_at_ms = $2 WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    fn attempt_disposition(
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

    fn live_attempt_ids(&self) -> Result<Vec<AttemptId>> {
        self.rows(
            "SELECT id FROM outbound_attempts WHERE ended_at_ms IS NULL ORDER BY id",
            &[],
        )?
        .iter()
        .map(|r| Ok(AttemptId(r.try_get(0)?)))
        .collect()
    }

    fn give_back_attempt(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'skipped', reason = 'interrupted',
               attempt_no = NULL, ended_at_ms = $2
             WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    fn attempt_end_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET ended_at_ms = $2, reason = 'interrupted' WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    fn attempt_fail_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_attempts SET result = 'failed', ended_at_ms = $2,
               reason = 'interrupted'
             WHERE id = $1",
            &[&id.0, &at_ms],
        )?;
        Ok(())
    }

    fn contact_given_back(&self, contact: ContactId, next_at_ms: i64, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET state = 'pending', attempts = GREATEST(attempts - 1, 0),
               next_attempt_at_ms = $2, updated_at_ms = $3
             WHERE id = $1 AND state = 'in_progress'",
            &[&contact.0, &next_at_ms, &at_ms],
        )?;
        Ok(())
    }

    fn contact_done(&self, contact: ContactId, reason: &str, at_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET state = 'done', done_reason = $2,
               next_attempt_at_ms = NULL, updated_at_ms = $3
             WHERE id = $1",
            &[&contact.0, &reason, &at_ms],
        )?;
        Ok(())
    }

    fn contact_last_result(&self, contact: ContactId, result: AttemptResult) -> Result<()> {
        self.exec(
            "UPDATE outbound_contacts SET last_result = $2 WHERE id = $1",
            &[&contact.0, &result.as_str()],
        )?;
        Ok(())
    }

    fn contact_unreachable(
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

    fn contact_retry(
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

    fn awaiting_disposition(&self) -> Result<i64> {
        Ok(self
            .one(
                "SELECT count(*) FROM outbound_contacts c WHERE c.state = 'in_progress'
                   AND NOT EXISTS (SELECT 1 FROM outbound_attempts a
                                   WHERE a.contact_id = c.id AND a.ended_at_ms IS NULL)",
                &[],
            )?
            .try_get(0)?)
    }

    fn unlinked_callbacks(&self) -> Result<Vec<Unlinked>> {
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

    fn fail_callback(&self, id: i64, reason: &str, now_ms: i64) -> Result<()> {
        self.exec(
            "UPDATE callback_requests SET status = 'failed', reason = $2, done_at_ms = $3
             WHERE id = $1",
            &[&id, &reason, &now_ms],
        )?;
        Ok(())
    }

    fn link_callback(&self, id: i64, contact: ContactId) -> Result<()> {
        self.exec(
            "UPDATE callback_requests SET contact_id = $2 WHERE id = $1",
            &[&id, &contact.0],
        )?;
        Ok(())
    }

    fn queue_callback_list(&self, queue: &str) -> Result<Option<(ListId, String)>> {
        self.opt(
            "SELECT id, state FROM outbound_lists WHERE purpose = 'queue_callback' AND queue = $1
             ORDER BY state = 'stopped', id LIMIT 1",
            &[&queue],
        )?
        .map(|r| Ok((ListId(r.try_get(0)?), r.try_get(1)?)))
        .transpose()
    }

    fn contact_of_call(&self, list: ListId, call_id: i64) -> Result<Option<ContactId>> {
        self.opt(
            "SELECT id FROM outbound_contacts WHERE list_id = $1 AND call_id = $2",
            &[&list.0, &call_id],
        )?
        .map(|r| Ok(ContactId(r.try_get(0)?)))
        .transpose()
    }

    fn contact_states(&self, list: ListId) -> Result<Vec<(ContactState, i64)>> {
        let rows: Vec<(String, i64)> = pairs(self.rows(
            "SELECT state, count(*) FROM outbound_contacts WHERE list_id = $1 GROUP BY state",
            &[&list.0],
        )?)?;
        rows.into_iter().map(|(s, n)| Ok((word(&s)?, n))).collect()
    }

    fn attempt_results(&self, list: ListId) -> Result<Vec<(Option<AttemptResult>, i64)>> {
        let rows: Vec<(Option<String>, i64)> = pairs(self.rows(
            "SELECT result, count(*) FROM outbound_attempts WHERE list_id = $1 GROUP BY result",
            &[&list.0],
        )?)?;
        rows.into_iter()
            .map(|(s, n)| Ok((opt_word(s)?, n)))
            .collect()
    }

    fn skip_reasons(&self, list: ListId) -> Result<Vec<(String, i64)>> {
        pairs(self.rows(
            "SELECT COALESCE(reason, ''), count(*) FROM outbound_attempts
             WHERE list_id = $1 AND result = 'skipped' GROUP BY 1",
            &[&list.0],
        )?)
    }

    fn answered_per_agent(
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

    fn live_attempts(&self, list: ListId) -> Result<i64> {
        Ok(self
            .one(
                "SELECT count(*) FROM outbound_attempts WHERE list_id = $1 AND ended_at_ms IS NULL",
                &[&list.0],
            )?
            .try_get(0)?)
    }

    fn insert_dnc(&self, e164: &str, source: &str, now_ms: i64) -> Result<()> {
        self.exec(
            "INSERT INTO do_not_call (number, added_at_ms, source) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
            &[&e164, &now_ms, &source],
        )?;
        Ok(())
    }

    fn delete_dnc(&self, e164: &str) -> Result<bool> {
        Ok(self.exec("DELETE FROM do_not_call WHERE number = $1", &[&e164])? > 0)
    }

    fn find_dnc(&self, e164: &str) -> Result<Option<(i64, String)>> {
        self.opt(
            "SELECT added_at_ms, source FROM do_not_call WHERE number = $1",
            &[&e164],
        )?
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .transpose()
    }

    fn follow_up_of_call(
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

    fn open_complaints(&self, default_reply_ms: i64) -> Result<Vec<OpenComplaint>> {
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

    fn contact_ids_after(
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

    fn attempted_by(&self, contact: ContactId, agent: &str) -> Result<bool> {
        Ok(self
            .opt(
                "SELECT 1 FROM outbound_attempts WHERE contact_id = $1 AND agent = $2 LIMIT 1",
                &[&contact.0, &agent],
            )?
            .is_some())
    }

    fn attempt_ids(&self, contact: ContactId) -> Result<Vec<AttemptId>> {
        self.rows(
            "SELECT id FROM outbound_attempts WHERE contact_id = $1 ORDER BY id",
            &[&contact.0],
        )?
        .iter()
        .map(|r| Ok(AttemptId(r.try_get(0)?)))
        .collect()
    }
}
