//! The callback lists' operations ([`OutboundDb`]) on PostgreSQL: the statements of
//! `super::super::sqlite::outbound` in PostgreSQL's dialect (`$n` parameters, `RETURNING id`,
//! `ON CONFLICT DO NOTHING`, `= ANY($n)` for a set of lists), reading the same rows. The lists
//! and contacts are here; the claim's statements in `outbound_claim.rs`, the rest in
//! `outbound_more.rs` (methods of [`PgConn`] the implementation forwards to).

use super::{u32_of, word, PgConn};
use crate::outbound::{
    AttemptId, AttemptResult, ContactId, ContactState, ListId, ListSpec, ListState,
};
use crate::store::outbound::{
    AttemptRow, ContactRow, ListRecord, NewContactRow, OpenComplaint, OutboundDb, Tx, Unlinked,
};
use crate::store::Result;
use postgres::Row;

pub(super) fn ids(list: &[ListId]) -> Vec<i64> {
    list.iter().map(|l| l.0).collect()
}

pub(super) fn opt_word<T>(v: Option<String>) -> Result<Option<T>>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    v.as_deref().map(word).transpose()
}

pub(super) fn opt_u32(v: Option<i64>) -> Result<Option<u32>> {
    v.map(u32_of).transpose()
}

pub(super) fn sip(code: Option<u16>) -> Option<i64> {
    code.map(i64::from)
}

pub(super) fn pairs<K: for<'a> postgres::types::FromSql<'a>>(
    rows: Vec<Row>,
) -> Result<Vec<(K, i64)>> {
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
        self.pg_live_attempt_of(agent)
    }

    fn candidates(&self, lists: &[ListId], now_ms: i64, offset: i64) -> Result<Vec<ContactId>> {
        self.pg_candidates(lists, now_ms, offset)
    }

    fn next_retry(&self, lists: &[ListId], now_ms: i64) -> Result<Option<i64>> {
        self.pg_next_retry(lists, now_ms)
    }

    fn list_usage(
        &self,
        list: ListId,
        agent: Option<&str>,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<(i64, i64)> {
        self.pg_list_usage(list, agent, start_ms, end_ms)
    }

    fn customer_answered_since(
        &self,
        customer_id: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool> {
        self.pg_customer_answered_since(customer_id, since_ms, contact)
    }

    fn number_answered_since(
        &self,
        number: &str,
        since_ms: i64,
        contact: ContactId,
    ) -> Result<bool> {
        self.pg_number_answered_since(number, since_ms, contact)
    }

    fn live_elsewhere(
        &self,
        contact: ContactId,
        customer_id: Option<&str>,
        number: &str,
    ) -> Result<bool> {
        self.pg_live_elsewhere(contact, customer_id, number)
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
        self.pg_skip_contact(list, contact, customer_id, number, reason, now_ms)
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
        self.pg_insert_attempt(
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
        self.pg_claim_contact(contact, attempts, now_ms)
    }

    fn load_contact(&self, id: ContactId) -> Result<Option<ContactRow>> {
        self.pg_load_contact(id)
    }

    fn load_attempt(&self, id: AttemptId) -> Result<Option<AttemptRow>> {
        self.pg_load_attempt(id)
    }

    fn set_attempt_call(&self, id: AttemptId, call_id: i64) -> Result<bool> {
        self.pg_set_attempt_call(id, call_id)
    }

    fn attempt_ringing(&self, id: AttemptId, sip_code: Option<u16>) -> Result<()> {
        self.pg_attempt_ringing(id, sip_code)
    }

    fn attempt_answered(&self, id: AttemptId, at_ms: i64, sip_code: Option<u16>) -> Result<()> {
        self.pg_attempt_answered(id, at_ms, sip_code)
    }

    fn attempt_skipped_by_agent(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.pg_attempt_skipped_by_agent(id, at_ms)
    }

    fn attempt_final(
        &self,
        id: AttemptId,
        result: AttemptResult,
        sip_code: Option<u16>,
        at_ms: i64,
    ) -> Result<()> {
        self.pg_attempt_final(id, result, sip_code, at_ms)
    }

    fn attempt_ended(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.pg_attempt_ended(id, at_ms)
    }

    fn attempt_disposition(
        &self,
        id: AttemptId,
        disposition: &str,
        notes: Option<&str>,
        survey_score: Option<i64>,
    ) -> Result<()> {
        self.pg_attempt_disposition(id, disposition, notes, survey_score)
    }

    fn live_attempt_ids(&self) -> Result<Vec<AttemptId>> {
        self.pg_live_attempt_ids()
    }

    fn give_back_attempt(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.pg_give_back_attempt(id, at_ms)
    }

    fn attempt_end_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.pg_attempt_end_interrupted(id, at_ms)
    }

    fn attempt_fail_interrupted(&self, id: AttemptId, at_ms: i64) -> Result<()> {
        self.pg_attempt_fail_interrupted(id, at_ms)
    }

    fn contact_given_back(&self, contact: ContactId, next_at_ms: i64, at_ms: i64) -> Result<()> {
        self.pg_contact_given_back(contact, next_at_ms, at_ms)
    }

    fn contact_done(&self, contact: ContactId, reason: &str, at_ms: i64) -> Result<()> {
        self.pg_contact_done(contact, reason, at_ms)
    }

    fn contact_last_result(&self, contact: ContactId, result: AttemptResult) -> Result<()> {
        self.pg_contact_last_result(contact, result)
    }

    fn contact_unreachable(
        &self,
        contact: ContactId,
        result: AttemptResult,
        at_ms: i64,
    ) -> Result<()> {
        self.pg_contact_unreachable(contact, result, at_ms)
    }

    fn contact_retry(
        &self,
        contact: ContactId,
        result: AttemptResult,
        retry_at_ms: i64,
        at_ms: i64,
    ) -> Result<()> {
        self.pg_contact_retry(contact, result, retry_at_ms, at_ms)
    }

    fn awaiting_disposition(&self) -> Result<i64> {
        self.pg_awaiting_disposition()
    }

    fn unlinked_callbacks(&self) -> Result<Vec<Unlinked>> {
        self.pg_unlinked_callbacks()
    }

    fn fail_callback(&self, id: i64, reason: &str, now_ms: i64) -> Result<()> {
        self.pg_fail_callback(id, reason, now_ms)
    }

    fn link_callback(&self, id: i64, contact: ContactId) -> Result<()> {
        self.pg_link_callback(id, contact)
    }

    fn queue_callback_list(&self, queue: &str) -> Result<Option<(ListId, String)>> {
        self.pg_queue_callback_list(queue)
    }

    fn contact_of_call(&self, list: ListId, call_id: i64) -> Result<Option<ContactId>> {
        self.pg_contact_of_call(list, call_id)
    }

    fn contact_states(&self, list: ListId) -> Result<Vec<(ContactState, i64)>> {
        self.pg_contact_states(list)
    }

    fn attempt_results(&self, list: ListId) -> Result<Vec<(Option<AttemptResult>, i64)>> {
        self.pg_attempt_results(list)
    }

    fn skip_reasons(&self, list: ListId) -> Result<Vec<(String, i64)>> {
        self.pg_skip_reasons(list)
    }

    fn answered_per_agent(
        &self,
        list: ListId,
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<(String, i64)>> {
        self.pg_answered_per_agent(list, start_ms, end_ms)
    }

    fn live_attempts(&self, list: ListId) -> Result<i64> {
        self.pg_live_attempts(list)
    }

    fn insert_dnc(&self, e164: &str, source: &str, now_ms: i64) -> Result<()> {
        self.pg_insert_dnc(e164, source, now_ms)
    }

    fn delete_dnc(&self, e164: &str) -> Result<bool> {
        self.pg_delete_dnc(e164)
    }

    fn find_dnc(&self, e164: &str) -> Result<Option<(i64, String)>> {
        self.pg_find_dnc(e164)
    }

    fn follow_up_of_call(
        &self,
        list: ListId,
        call_id: i64,
    ) -> Result<Option<(ContactId, Option<i64>)>> {
        self.pg_follow_up_of_call(list, call_id)
    }

    fn open_complaints(&self, default_reply_ms: i64) -> Result<Vec<OpenComplaint>> {
        self.pg_open_complaints(default_reply_ms)
    }

    fn contact_ids_after(
        &self,
        list: ListId,
        state: Option<ContactState>,
        after: i64,
        agent: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ContactId>> {
        self.pg_contact_ids_after(list, state, after, agent, limit)
    }

    fn attempted_by(&self, contact: ContactId, agent: &str) -> Result<bool> {
        self.pg_attempted_by(contact, agent)
    }

    fn attempt_ids(&self, contact: ContactId) -> Result<Vec<AttemptId>> {
        self.pg_attempt_ids(contact)
    }
}
