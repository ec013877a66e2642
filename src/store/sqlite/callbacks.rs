//! [`CallbackReads`] on SQLite: the queue callback requests (`callback_requests`, with the list
//! of the contact that dials each).

use super::pool::Reader;
use crate::store::reads::{CallbackReads, CallbackRequestRow, OpenCallbacks};
use crate::store::Result;
use rusqlite::params;

impl CallbackReads for Reader {
    fn open_callbacks(&self, queue: Option<&str>) -> Result<Vec<(String, OpenCallbacks)>> {
        let rows = self
            .sql()
            .prepare_cached(
                "SELECT queue, sum(status = 'pending'), sum(status = 'in_progress'),
                   min(CASE WHEN status = 'pending' THEN entered_at_ms END)
                 FROM callback_requests
                 WHERE status IN ('pending', 'in_progress') AND (?1 IS NULL OR queue = ?1)
                 GROUP BY queue",
            )?
            .query_map(params![queue], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    OpenCallbacks {
                        pending: r.get(1)?,
                        in_progress: r.get(2)?,
                        oldest: r.get(3)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn callback_requests(
        &self,
        queue: Option<&str>,
        status: Option<&str>,
    ) -> Result<Vec<(String, CallbackRequestRow)>> {
        let rows = self
            .sql()
            .prepare_cached(
                "SELECT r.id, r.call_id, r.queue, r.caller_number, r.caller_name,
                   r.entered_at_ms, r.position, r.requested_at_ms, r.status, r.attempts,
                   r.last_result, r.reason, r.done_at_ms, r.contact_id, l.name
                 FROM callback_requests r
                 LEFT JOIN outbound_contacts c ON c.id = r.contact_id
                 LEFT JOIN outbound_lists l ON l.id = c.list_id
                 WHERE (?1 IS NULL OR r.queue = ?1) AND (?2 IS NULL OR r.status = ?2)
                 ORDER BY r.queue, r.entered_at_ms, r.id",
            )?
            .query_map(params![queue, status], |r| {
                Ok((
                    r.get::<_, String>(2)?,
                    CallbackRequestRow {
                        id: r.get(0)?,
                        call_id: r.get(1)?,
                        caller_number: r.get(3)?,
                        caller_name: r.get(4)?,
                        entered_at_ms: r.get(5)?,
                        position: r.get(6)?,
                        requested_at_ms: r.get(7)?,
                        status: r.get(8)?,
                        attempts: r.get(9)?,
                        last_result: r.get(10)?,
                        reason: r.get(11)?,
                        done_at_ms: r.get(12)?,
                        contact_id: r.get(13)?,
                        list: r.get(14)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::calls::CallOp;
    use crate::store::test_support;

    fn request(id: u64, queue: &str, entered_at_ms: u64) -> CallOp {
        CallOp::CallbackRequested {
            id,
            queue: queue.into(),
            caller_number: format!("+4477009000{id:02}"),
            caller_name: None,
            entered_at_ms,
            position: Some(2),
            requested_at_ms: entered_at_ms + 30_000,
        }
    }

    #[test]
    fn open_counts_and_requests_per_queue_in_joining_order() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        test_support::apply(&conn, request(1, "support", 5_000));
        test_support::apply(&conn, request(2, "support", 4_000));
        test_support::apply(&conn, request(3, "sales", 6_000));
        let r = test_support::reader(conn);
        let open = r.open_callbacks(None).unwrap();
        assert_eq!(
            open,
            [
                (
                    "sales".to_string(),
                    OpenCallbacks {
                        pending: 1,
                        in_progress: 0,
                        oldest: Some(6_000)
                    }
                ),
                (
                    "support".to_string(),
                    OpenCallbacks {
                        pending: 2,
                        in_progress: 0,
                        oldest: Some(4_000)
                    }
                ),
            ]
        );
        let ids: Vec<(String, i64)> = r
            .callback_requests(Some("support"), Some("pending"))
            .unwrap()
            .into_iter()
            .map(|(q, c)| (q, c.call_id))
            .collect();
        assert_eq!(ids, [("support".into(), 2), ("support".into(), 1)]);
        assert!(r.callback_requests(None, Some("done")).unwrap().is_empty());
        let all = r.callback_requests(None, None).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].1.position, Some(2));
        assert_eq!(all[0].1.list, None, "not taken up by a list yet");
    }
}
