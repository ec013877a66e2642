//! The SQLite backend (the default): schema migrations, the writer thread, the pooled readers,
//! and the typed operations and queries of [`crate::store`]'s interface, each area in a file of
//! its own.
//!
//! Layout: [`bindings`] (registrar bindings), [`calls`] (call detail records and their events),
//! [`api`] (audit rows, dispositions, agent sessions), [`retention`] (purging old calls),
//! [`writer`] (the writer thread and everything it writes), [`pool`] (the read connections),
//! [`reports`] and [`report_lists`] (what `crate::report` reads), [`call_records`] (the call
//! records of the HTTP API), [`callbacks`] (the queue callback requests), [`stats`] (the calls the live figures are rebuilt from).
//!
//! Must not know: SIP parsing, sockets, call logic, report arithmetic.

pub(super) mod api;
pub(super) mod bindings;
pub(super) mod call_records;
pub(super) mod callbacks;
pub(super) mod calls;
mod outbound;
pub(super) mod pool;
pub(super) mod report_lists;
pub(super) mod reports;
pub(super) mod retention;
pub(super) mod stats;
#[cfg(test)]
pub(crate) mod test_support;
pub(super) mod writer;

use super::StoreError;
use rusqlite::Connection;
use std::path::Path;

/// Schema versions, applied in order; `PRAGMA user_version` records how far a file has come.
/// Never edit an entry once released: add a new one.
const MIGRATIONS: &[&str] = &[
    // 1: registrar bindings
    "CREATE TABLE bindings (
        agent_id      TEXT NOT NULL,
        uri           TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        call_id       TEXT NOT NULL,
        cseq          INTEGER NOT NULL,
        source        TEXT NOT NULL,
        q             TEXT,
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (agent_id, uri)
    );",
    // 2: call detail records and their events
    "CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        sip_call_id TEXT NOT NULL,
        direction TEXT NOT NULL,
        caller_number TEXT, caller_name TEXT, dialed_number TEXT,
        queue TEXT,
        entered_at_ms INTEGER NOT NULL,
        answered_at_ms INTEGER, ended_at_ms INTEGER,
        wait_ms INTEGER,
        talk_ms INTEGER,
        agent TEXT,
        outcome TEXT,
        answered_in_target INTEGER,
        short_abandon INTEGER,
        hangup_by TEXT,
        hangup_cause TEXT, sip_code INTEGER
    );
    CREATE INDEX calls_entered ON calls(entered_at_ms);
    CREATE INDEX calls_queue_entered ON calls(queue, entered_at_ms);
    CREATE INDEX calls_live ON calls(ended_at_ms) WHERE ended_at_ms IS NULL;
    CREATE TABLE call_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id INTEGER NOT NULL REFERENCES calls(id),
        at_ms INTEGER NOT NULL,
        kind TEXT NOT NULL,
        agent TEXT, detail TEXT
    );
    CREATE INDEX call_events_call ON call_events(call_id, id);",
    // 3: the HTTP API: audit trail, dispositions, agent sessions
    "CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at_ms INTEGER NOT NULL,
        token_role TEXT,
        agent TEXT,
        action TEXT NOT NULL,
        target TEXT,
        from_addr TEXT,
        result TEXT NOT NULL
    );
    CREATE INDEX audit_at ON audit(at_ms);
    ALTER TABLE calls ADD COLUMN disposition TEXT;
    ALTER TABLE calls ADD COLUMN notes TEXT;
    CREATE INDEX calls_agent_entered ON calls(agent, entered_at_ms);
    CREATE TABLE agent_sessions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        agent TEXT NOT NULL,
        kind TEXT NOT NULL,
        reason TEXT,
        started_at_ms INTEGER NOT NULL,
        ended_at_ms INTEGER
    );
    CREATE INDEX agent_sessions_agent ON agent_sessions(agent, started_at_ms);",
    // 4: media: recordings, survey scores, RTP quality per leg, queue callback requests
    "ALTER TABLE calls ADD COLUMN recording_path TEXT;
    ALTER TABLE calls ADD COLUMN recording_error TEXT;
    ALTER TABLE calls ADD COLUMN survey_score INTEGER;
    ALTER TABLE calls ADD COLUMN caller_rtp_lost INTEGER;
    ALTER TABLE calls ADD COLUMN caller_jitter_ms REAL;
    ALTER TABLE calls ADD COLUMN agent_rtp_lost INTEGER;
    ALTER TABLE calls ADD COLUMN agent_jitter_ms REAL;
    CREATE TABLE callback_requests (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        call_id INTEGER NOT NULL,
        queue TEXT NOT NULL,
        caller_number TEXT NOT NULL,
        caller_name TEXT,
        entered_at_ms INTEGER NOT NULL,
        position INTEGER,
        requested_at_ms INTEGER NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending',
        done_at_ms INTEGER
    );
    CREATE INDEX callback_requests_pending ON callback_requests(queue, entered_at_ms)
        WHERE status = 'pending';",
    // 5: outbound callback lists (src/outbound): lists with their agents, calling windows and
    // holidays; contacts with their numbers; attempts (also the record of skips); do-not-call.
    // Daily quotas are counted from the attempts, so they are right after a restart. No foreign
    // keys to calls(id): retention purges calls.
    "CREATE TABLE outbound_lists (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL UNIQUE,
        purpose TEXT NOT NULL
            CHECK (purpose IN ('follow_up', 'complaint', 'survey', 'queue_callback', 'custom')),
        queue TEXT,
        mode TEXT NOT NULL CHECK (mode IN ('preview', 'progressive')),
        time_zone TEXT NOT NULL,
        quota_per_day INTEGER,
        agent_quota_per_day INTEGER,
        max_attempts INTEGER NOT NULL,
        retry_busy_s INTEGER NOT NULL,
        retry_no_answer_s INTEGER NOT NULL,
        retry_failed_s INTEGER NOT NULL,
        dedupe_period_s INTEGER NOT NULL,
        priority INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'paused', 'stopped')),
        created_at_ms INTEGER NOT NULL,
        state_changed_at_ms INTEGER NOT NULL
    );
    CREATE TABLE outbound_list_agents (
        list_id INTEGER NOT NULL REFERENCES outbound_lists(id),
        agent TEXT NOT NULL,
        PRIMARY KEY (list_id, agent)
    );
    CREATE INDEX outbound_list_agents_agent ON outbound_list_agents(agent);
    CREATE TABLE outbound_list_windows (
        list_id INTEGER NOT NULL REFERENCES outbound_lists(id),
        position INTEGER NOT NULL,
        days INTEGER NOT NULL,
        start_min INTEGER NOT NULL,
        end_min INTEGER NOT NULL,
        PRIMARY KEY (list_id, position)
    );
    CREATE TABLE outbound_list_holidays (
        list_id INTEGER NOT NULL REFERENCES outbound_lists(id),
        date TEXT NOT NULL,
        PRIMARY KEY (list_id, date)
    );
    CREATE TABLE outbound_contacts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        list_id INTEGER NOT NULL REFERENCES outbound_lists(id),
        customer_id TEXT,
        name TEXT,
        fields TEXT NOT NULL DEFAULT '{}',
        due_at_ms INTEGER,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'in_progress', 'done', 'unreachable', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at_ms INTEGER,
        last_result TEXT,
        done_reason TEXT,
        call_id INTEGER,
        created_at_ms INTEGER NOT NULL,
        updated_at_ms INTEGER NOT NULL
    );
    CREATE INDEX outbound_contacts_pending ON outbound_contacts(list_id, due_at_ms, id)
        WHERE state = 'pending';
    CREATE INDEX outbound_contacts_customer ON outbound_contacts(list_id, customer_id);
    CREATE UNIQUE INDEX outbound_contacts_call ON outbound_contacts(list_id, call_id)
        WHERE call_id IS NOT NULL;
    CREATE TABLE outbound_contact_phones (
        contact_id INTEGER NOT NULL REFERENCES outbound_contacts(id),
        position INTEGER NOT NULL,
        number TEXT NOT NULL,
        PRIMARY KEY (contact_id, position)
    );
    CREATE INDEX outbound_contact_phones_number ON outbound_contact_phones(number);
    CREATE TABLE outbound_attempts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        list_id INTEGER NOT NULL REFERENCES outbound_lists(id),
        contact_id INTEGER NOT NULL REFERENCES outbound_contacts(id),
        attempt_no INTEGER,
        customer_id TEXT,
        agent TEXT,
        number TEXT,
        call_id INTEGER,
        started_at_ms INTEGER NOT NULL,
        answered_at_ms INTEGER,
        ended_at_ms INTEGER,
        result TEXT CHECK (result IN
            ('ringing', 'answered', 'busy', 'no_answer', 'rejected', 'failed', 'skipped')),
        sip_code INTEGER,
        disposition TEXT,
        notes TEXT,
        survey_score INTEGER,
        reason TEXT
    );
    CREATE UNIQUE INDEX outbound_attempts_no ON outbound_attempts(contact_id, attempt_no);
    CREATE UNIQUE INDEX outbound_attempts_one_live ON outbound_attempts(contact_id)
        WHERE ended_at_ms IS NULL;
    CREATE INDEX outbound_attempts_contact ON outbound_attempts(contact_id, id);
    CREATE INDEX outbound_attempts_live ON outbound_attempts(list_id, agent)
        WHERE ended_at_ms IS NULL;
    CREATE INDEX outbound_attempts_answered ON outbound_attempts(list_id, answered_at_ms)
        WHERE answered_at_ms IS NOT NULL;
    CREATE INDEX outbound_attempts_customer ON outbound_attempts(customer_id, answered_at_ms)
        WHERE answered_at_ms IS NOT NULL;
    CREATE INDEX outbound_attempts_number ON outbound_attempts(number, answered_at_ms)
        WHERE answered_at_ms IS NOT NULL;
    CREATE TABLE do_not_call (
        number TEXT PRIMARY KEY,
        added_at_ms INTEGER NOT NULL,
        source TEXT NOT NULL
    );",
    // 6: queue callbacks dialed (src/outbound/queue_callbacks): each request becomes a contact
    // of its queue's `queue_callback` list; the request mirrors that contact (triggers, so every
    // change — claim, result, restart reconcile, disposition — moves it in the same
    // transaction): pending → in_progress → done (an attempt answered) or failed (attempts run
    // out, do-not-call, or a number that cannot be dialed, set by the dialer). done and failed
    // are final.
    "ALTER TABLE callback_requests ADD COLUMN contact_id INTEGER;
    ALTER TABLE callback_requests ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE callback_requests ADD COLUMN last_result TEXT;
    ALTER TABLE callback_requests ADD COLUMN reason TEXT;
    CREATE UNIQUE INDEX callback_requests_contact ON callback_requests(contact_id)
        WHERE contact_id IS NOT NULL;
    CREATE INDEX callback_requests_unlinked ON callback_requests(entered_at_ms, id)
        WHERE status = 'pending' AND contact_id IS NULL;
    CREATE TRIGGER callback_requests_follow_contact
    AFTER UPDATE OF state, attempts, last_result ON outbound_contacts
    BEGIN
        UPDATE callback_requests SET
            status = CASE NEW.state
                WHEN 'pending' THEN 'pending'
                WHEN 'in_progress' THEN 'in_progress'
                WHEN 'done' THEN 'done'
                ELSE 'failed' END,
            attempts = NEW.attempts,
            last_result = NEW.last_result,
            reason = CASE WHEN NEW.state IN ('done', 'unreachable', 'skipped')
                THEN NEW.done_reason ELSE reason END,
            done_at_ms = CASE WHEN NEW.state IN ('done', 'unreachable', 'skipped')
                THEN NEW.updated_at_ms ELSE done_at_ms END
        WHERE contact_id = NEW.id AND status NOT IN ('done', 'failed');
    END;
    CREATE TRIGGER callback_requests_answered
    AFTER UPDATE OF answered_at_ms ON outbound_attempts
    WHEN NEW.answered_at_ms IS NOT NULL AND OLD.answered_at_ms IS NULL
    BEGIN
        UPDATE callback_requests SET status = 'done', last_result = 'answered',
            reason = 'answered', done_at_ms = NEW.answered_at_ms
        WHERE contact_id = NEW.contact_id AND status NOT IN ('done', 'failed');
    END;",
];

/// Open (creating if needed) the database under `data_dir` and bring its schema up to date.
pub fn open(data_dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
        path: data_dir.to_path_buf(),
        source,
    })?;
    let path = data_dir.join("ctid.db");
    let err = |source| StoreError::Sqlite {
        path: path.clone(),
        source,
    };
    let conn = Connection::open(&path).map_err(err)?;
    // foreign_keys is per connection and a no-op inside a transaction: set it here, first.
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000;
         PRAGMA foreign_keys=ON;",
    )
    .map_err(err)?;
    conn.set_prepared_statement_cache_capacity(32);
    migrate(&conn).map_err(err)?;
    Ok(conn)
}

/// Apply every migration the file has not seen yet, each in its own transaction.
fn migrate(conn: &Connection) -> Result<(), rusqlite::Error> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::bindings::load_bindings;
    use super::calls::next_call_id;
    use super::*;
    use crate::sip::registrar::Binding;

    fn user_version(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()).unwrap());
        let conn = open(dir.path()).unwrap();
        assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
        assert_eq!(MIGRATIONS.len(), 6);
    }

    #[test]
    fn migration_from_version_1_keeps_the_bindings() {
        let dir = tempfile::tempdir().unwrap();
        {
            // A file as the previous release left it: only the bindings table, with a row.
            let conn = Connection::open(dir.path().join("ctid.db")).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.execute_batch("PRAGMA user_version = 1").unwrap();
            conn.execute(
                "INSERT INTO bindings VALUES ('a1', 'sip:a1@h', 9000, 'cid', 7, 'udp:1.2.3.4:5060', NULL, 42)",
                [],
            )
            .unwrap();
        }
        let conn = open(dir.path()).unwrap();
        assert_eq!(user_version(&conn), MIGRATIONS.len() as i64);
        assert_eq!(
            load_bindings(&conn).unwrap(),
            vec![Binding {
                agent_id: "a1".into(),
                uri: "sip:a1@h".into(),
                expires_at_ms: 9000,
                call_id: "cid".into(),
                cseq: 7,
                source: "udp:1.2.3.4:5060".into(),
                q: None,
                updated_at_ms: 42,
            }]
        );
        let tables: Vec<String> = conn
            .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index', 'trigger') AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            tables,
            [
                "agent_sessions",
                "agent_sessions_agent",
                "audit",
                "audit_at",
                "bindings",
                "call_events",
                "call_events_call",
                "callback_requests",
                "callback_requests_answered",
                "callback_requests_contact",
                "callback_requests_follow_contact",
                "callback_requests_pending",
                "callback_requests_unlinked",
                "calls",
                "calls_agent_entered",
                "calls_entered",
                "calls_live",
                "calls_queue_entered",
                "do_not_call",
                "outbound_attempts",
                "outbound_attempts_answered",
                "outbound_attempts_contact",
                "outbound_attempts_customer",
                "outbound_attempts_live",
                "outbound_attempts_no",
                "outbound_attempts_number",
                "outbound_attempts_one_live",
                "outbound_contact_phones",
                "outbound_contact_phones_number",
                "outbound_contacts",
                "outbound_contacts_call",
                "outbound_contacts_customer",
                "outbound_contacts_pending",
                "outbound_list_agents",
                "outbound_list_agents_agent",
                "outbound_list_holidays",
                "outbound_list_windows",
                "outbound_lists"
            ]
        );
        assert_eq!(next_call_id(&conn).unwrap(), 1);
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(dir.path()).unwrap();
        let on: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(on, 1);
        let journal: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
    }
}
