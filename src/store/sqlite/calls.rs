//! Call detail records: one row per call in `calls`, and its history in `call_events`.
//!
//! The call layer chooses the ids (unique across restarts: it starts from [`next_call_id`]) and
//! sends [`CallOp`]s through the writer. At start, [`interrupt_live_calls`] closes the calls a
//! previous run left open.

use super::writer::WriteError;
use rusqlite::{params, Connection};

/// A change to the call records. Ids are ctid's call ids, not SIP Call-IDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOp {
    /// A call entered ctid. Idempotent: a second `Started` for the same id is ignored.
    Started {
        id: u64,
        sip_call_id: String,
        /// `"inbound"` or `"outbound"`.
        direction: &'static str,
        caller_number: Option<String>,
        caller_name: Option<String>,
        dialed_number: Option<String>,
        queue: Option<String>,
        /// Wall clock, unix ms.
        entered_at_ms: u64,
    },
    /// Something happened to the call (`entered`, `offered`, `missed`, `answered`, `hold`, …).
    /// The call must have been `Started`.
    Event {
        id: u64,
        at_ms: u64,
        kind: &'static str,
        agent: Option<String>,
        detail: Option<String>,
    },
    /// An agent took the call.
    Answered {
        id: u64,
        answered_at_ms: u64,
        agent: String,
        /// Monotonic: entering the queue -> answered.
        wait_ms: u64,
        in_target: bool,
    },
    /// The call is over. Also sets queue (a call may have moved by overflow).
    /// `queue: None` and `wait_ms: None` keep what the row already has.
    Ended {
        id: u64,
        ended_at_ms: u64,
        /// answered | abandoned | timeout | overflow | rejected
        outcome: &'static str,
        queue: Option<String>,
        wait_ms: Option<u64>,
        talk_ms: Option<u64>,
        short_abandon: Option<bool>,
        /// caller | agent | ctid
        hangup_by: Option<&'static str>,
        hangup_cause: Option<String>,
        sip_code: Option<u16>,
    },
    /// The call's recording: its path when it starts, and an error if it failed.
    Recording {
        id: u64,
        path: Option<String>,
        error: Option<String>,
    },
    /// The caller's answer to the satisfaction survey (1 very satisfied … 5 very dissatisfied).
    Survey { id: u64, score: u8 },
    /// RTP receive figures per leg, when the call's media ended.
    Quality {
        id: u64,
        caller_lost: u64,
        /// Interarrival jitter in microseconds (stored in ms).
        caller_jitter_us: u64,
        agent_lost: Option<u64>,
        agent_jitter_us: Option<u64>,
    },
    /// A waiting caller asked to be called back (queue callback).
    CallbackRequested {
        id: u64,
        queue: String,
        caller_number: String,
        caller_name: Option<String>,
        entered_at_ms: u64,
        position: Option<u32>,
        requested_at_ms: u64,
    },
}

impl CallOp {
    pub fn call_id(&self) -> u64 {
        match self {
            CallOp::Started { id, .. }
            | CallOp::Event { id, .. }
            | CallOp::Answered { id, .. }
            | CallOp::Ended { id, .. }
            | CallOp::Recording { id, .. }
            | CallOp::Survey { id, .. }
            | CallOp::Quality { id, .. }
            | CallOp::CallbackRequested { id, .. } => *id,
        }
    }

    /// For logs: the variant's name (the op itself may carry phone numbers).
    pub fn kind(&self) -> &'static str {
        match self {
            CallOp::Started { .. } => "started",
            CallOp::Event { .. } => "event",
            CallOp::Answered { .. } => "answered",
            CallOp::Ended { .. } => "ended",
            CallOp::Recording { .. } => "recording",
            CallOp::Survey { .. } => "survey",
            CallOp::Quality { .. } => "quality",
            CallOp::CallbackRequested { .. } => "callback_requested",
        }
    }
}

pub(super) fn apply(conn: &Connection, op: &CallOp) -> Result<(), WriteError> {
    match op {
        CallOp::Started {
            id,
            sip_call_id,
            direction,
            caller_number,
            caller_name,
            dialed_number,
            queue,
            entered_at_ms,
        } => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO calls (id, sip_call_id, direction, caller_number, caller_name,
                   dialed_number, queue, entered_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                int(*id)?,
                sip_call_id,
                direction,
                caller_number,
                caller_name,
                dialed_number,
                queue,
                int(*entered_at_ms)?
            ])?;
        }
        CallOp::Event {
            id,
            at_ms,
            kind,
            agent,
            detail,
        } => {
            // The foreign key rejects an event for a call that was never started.
            conn.prepare_cached(
                "INSERT INTO call_events (call_id, at_ms, kind, agent, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![int(*id)?, int(*at_ms)?, kind, agent, detail])?;
        }
        CallOp::Answered {
            id,
            answered_at_ms,
            agent,
            wait_ms,
            in_target,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE calls SET answered_at_ms = ?2, agent = ?3, wait_ms = ?4,
                       answered_in_target = ?5
                     WHERE id = ?1",
                )?
                .execute(params![
                    int(*id)?,
                    int(*answered_at_ms)?,
                    agent,
                    int(*wait_ms)?,
                    in_target
                ])?;
            if n == 0 {
                return Err(WriteError::UnknownCall(*id));
            }
        }
        CallOp::Ended {
            id,
            ended_at_ms,
            outcome,
            queue,
            wait_ms,
            talk_ms,
            short_abandon,
            hangup_by,
            hangup_cause,
            sip_code,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE calls SET ended_at_ms = ?2, outcome = ?3, queue = COALESCE(?4, queue),
                       wait_ms = COALESCE(?5, wait_ms), talk_ms = ?6, short_abandon = ?7,
                       hangup_by = ?8, hangup_cause = ?9, sip_code = ?10
                     WHERE id = ?1",
                )?
                .execute(params![
                    int(*id)?,
                    int(*ended_at_ms)?,
                    outcome,
                    queue,
                    wait_ms.map(int).transpose()?,
                    talk_ms.map(int).transpose()?,
                    short_abandon,
                    hangup_by,
                    hangup_cause,
                    sip_code
                ])?;
            if n == 0 {
                return Err(WriteError::UnknownCall(*id));
            }
        }
        CallOp::Recording { id, path, error } => {
            let n = conn
                .prepare_cached(
                    "UPDATE calls SET recording_path = COALESCE(?2, recording_path),
                       recording_error = COALESCE(?3, recording_error)
                     WHERE id = ?1",
                )?
                .execute(params![int(*id)?, path, error])?;
            if n == 0 {
                return Err(WriteError::UnknownCall(*id));
            }
        }
        CallOp::Survey { id, score } => {
            let n = conn
                .prepare_cached("UPDATE calls SET survey_score = ?2 WHERE id = ?1")?
                .execute(params![int(*id)?, score])?;
            if n == 0 {
                return Err(WriteError::UnknownCall(*id));
            }
        }
        CallOp::Quality {
            id,
            caller_lost,
            caller_jitter_us,
            agent_lost,
            agent_jitter_us,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE calls SET caller_rtp_lost = ?2, caller_jitter_ms = ?3 / 1000.0,
                       agent_rtp_lost = ?4, agent_jitter_ms = ?5 / 1000.0
                     WHERE id = ?1",
                )?
                .execute(params![
                    int(*id)?,
                    int(*caller_lost)?,
                    int(*caller_jitter_us)?,
                    agent_lost.map(int).transpose()?,
                    agent_jitter_us.map(int).transpose()?
                ])?;
            if n == 0 {
                return Err(WriteError::UnknownCall(*id));
            }
        }
        CallOp::CallbackRequested {
            id,
            queue,
            caller_number,
            caller_name,
            entered_at_ms,
            position,
            requested_at_ms,
        } => {
            conn.prepare_cached(
                "INSERT INTO callback_requests (call_id, queue, caller_number, caller_name,
                   entered_at_ms, position, requested_at_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?
            .execute(params![
                int(*id)?,
                queue,
                caller_number,
                caller_name,
                int(*entered_at_ms)?,
                position,
                int(*requested_at_ms)?
            ])?;
        }
    }
    Ok(())
}

/// At start: every call without ended_at is closed with outcome 'interrupted' (ended_at_ms =
/// `now_ms`, hangup_by 'ctid', an 'interrupted' event added). Returns how many.
///
/// Call it before the writer starts (it writes on `conn` directly, in one transaction).
pub fn interrupt_live_calls(conn: &Connection, now_ms: u64) -> Result<usize, rusqlite::Error> {
    let tx = conn.unchecked_transaction()?;
    tx.execute(
        "INSERT INTO call_events (call_id, at_ms, kind)
         SELECT id, ?1, 'interrupted' FROM calls WHERE ended_at_ms IS NULL ORDER BY id",
        params![int(now_ms)?],
    )?;
    let n = tx.execute(
        "UPDATE calls SET ended_at_ms = ?1, outcome = 'interrupted', hangup_by = 'ctid'
         WHERE ended_at_ms IS NULL",
        params![int(now_ms)?],
    )?;
    tx.commit()?;
    Ok(n)
}

/// The first free call id: max(id)+1 (1 for an empty table).
pub fn next_call_id(conn: &Connection) -> Result<u64, rusqlite::Error> {
    let max: i64 = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM calls", [], |r| r.get(0))?;
    Ok(max.max(0) as u64 + 1)
}

/// SQLite integers are i64: refuse (rather than wrap) a u64 beyond that.
fn int(v: u64) -> Result<i64, rusqlite::Error> {
    i64::try_from(v).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::open;

    /// What a test reads back of one call row.
    #[derive(Debug, PartialEq)]
    pub struct Row {
        pub sip_call_id: String,
        pub direction: String,
        pub caller_number: Option<String>,
        pub queue: Option<String>,
        pub entered_at_ms: i64,
        pub answered_at_ms: Option<i64>,
        pub ended_at_ms: Option<i64>,
        pub wait_ms: Option<i64>,
        pub talk_ms: Option<i64>,
        pub agent: Option<String>,
        pub outcome: Option<String>,
        pub answered_in_target: Option<i64>,
        pub short_abandon: Option<i64>,
        pub hangup_by: Option<String>,
        pub hangup_cause: Option<String>,
        pub sip_code: Option<i64>,
    }

    pub fn row(conn: &Connection, id: u64) -> Option<Row> {
        conn.query_row(
            "SELECT sip_call_id, direction, caller_number, queue, entered_at_ms, answered_at_ms,
               ended_at_ms, wait_ms, talk_ms, agent, outcome, answered_in_target, short_abandon,
               hangup_by, hangup_cause, sip_code
             FROM calls WHERE id = ?1",
            [id as i64],
            |r| {
                Ok(Row {
                    sip_call_id: r.get(0)?,
                    direction: r.get(1)?,
                    caller_number: r.get(2)?,
                    queue: r.get(3)?,
                    entered_at_ms: r.get(4)?,
                    answered_at_ms: r.get(5)?,
                    ended_at_ms: r.get(6)?,
                    wait_ms: r.get(7)?,
                    talk_ms: r.get(8)?,
                    agent: r.get(9)?,
                    outcome: r.get(10)?,
                    answered_in_target: r.get(11)?,
                    short_abandon: r.get(12)?,
                    hangup_by: r.get(13)?,
                    hangup_cause: r.get(14)?,
                    sip_code: r.get(15)?,
                })
            },
        )
        .ok()
    }

    /// (at_ms, kind, agent, detail) of a call's events, in insertion order.
    pub fn events(
        conn: &Connection,
        id: u64,
    ) -> Vec<(i64, String, Option<String>, Option<String>)> {
        conn.prepare(
            "SELECT at_ms, kind, agent, detail FROM call_events WHERE call_id = ?1 ORDER BY id",
        )
        .unwrap()
        .query_map([id as i64], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    }

    pub fn started(id: u64, queue: &str) -> CallOp {
        CallOp::Started {
            id,
            sip_call_id: format!("sip-{id}@example"),
            direction: "inbound",
            caller_number: Some("+15551234".into()),
            caller_name: Some("Ann".into()),
            dialed_number: Some("+15550000".into()),
            queue: Some(queue.into()),
            entered_at_ms: 1_000 + id,
        }
    }

    pub fn event(id: u64, at_ms: u64, kind: &'static str) -> CallOp {
        CallOp::Event {
            id,
            at_ms,
            kind,
            agent: None,
            detail: None,
        }
    }

    #[test]
    fn started_twice_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        apply(&conn, &started(1, "sales")).unwrap();
        apply(&conn, &started(1, "support")).unwrap();
        assert_eq!(row(&conn, 1).unwrap().queue.as_deref(), Some("sales"));
    }

    #[test]
    fn updates_and_events_for_unknown_calls_fail() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        assert!(matches!(
            apply(&conn, &event(9, 1, "entered")),
            Err(WriteError::Sql(_))
        ));
        let answered = CallOp::Answered {
            id: 9,
            answered_at_ms: 2,
            agent: "a".into(),
            wait_ms: 1,
            in_target: true,
        };
        assert!(matches!(
            apply(&conn, &answered),
            Err(WriteError::UnknownCall(9))
        ));
    }

    #[test]
    fn interrupt_live_calls_closes_only_live_calls() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        for id in 1..=3 {
            apply(&conn, &started(id, "sales")).unwrap();
            apply(&conn, &event(id, 1_000 + id, "entered")).unwrap();
        }
        apply(
            &conn,
            &CallOp::Ended {
                id: 2,
                ended_at_ms: 5_000,
                outcome: "abandoned",
                queue: None,
                wait_ms: Some(3_000),
                talk_ms: None,
                short_abandon: Some(false),
                hangup_by: Some("caller"),
                hangup_cause: None,
                sip_code: None,
            },
        )
        .unwrap();

        assert_eq!(interrupt_live_calls(&conn, 9_999).unwrap(), 2);
        for id in [1, 3] {
            let r = row(&conn, id).unwrap();
            assert_eq!(r.ended_at_ms, Some(9_999));
            assert_eq!(r.outcome.as_deref(), Some("interrupted"));
            assert_eq!(r.hangup_by.as_deref(), Some("ctid"));
            assert_eq!(
                events(&conn, id),
                vec![
                    (1_000 + id as i64, "entered".into(), None, None),
                    (9_999, "interrupted".into(), None, None)
                ]
            );
        }
        let ended = row(&conn, 2).unwrap();
        assert_eq!(ended.ended_at_ms, Some(5_000));
        assert_eq!(ended.outcome.as_deref(), Some("abandoned"));
        assert_eq!(ended.hangup_by.as_deref(), Some("caller"));
        assert_eq!(ended.queue.as_deref(), Some("sales"), "queue None keeps it");
        assert_eq!(ended.wait_ms, Some(3_000));
        assert_eq!(events(&conn, 2).len(), 1);

        // Nothing left to interrupt.
        assert_eq!(interrupt_live_calls(&conn, 10_000).unwrap(), 0);
        assert_eq!(row(&conn, 1).unwrap().ended_at_ms, Some(9_999));
    }

    #[test]
    fn next_call_id_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let conn = open(dir.path()).unwrap();
            assert_eq!(next_call_id(&conn).unwrap(), 1);
            apply(&conn, &started(7, "q")).unwrap();
            apply(&conn, &started(3, "q")).unwrap();
            assert_eq!(next_call_id(&conn).unwrap(), 8);
        }
        let conn = open(dir.path()).unwrap();
        assert_eq!(next_call_id(&conn).unwrap(), 8);
        // Interrupted calls keep their ids.
        interrupt_live_calls(&conn, 1).unwrap();
        assert_eq!(next_call_id(&conn).unwrap(), 8);
    }
}
