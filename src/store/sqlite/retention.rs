//! Retention: call records older than the configured number of days are deleted in small
//! batches, each its own short transaction, so the writer thread (and call handling behind it)
//! never waits more than one batch. Live calls (not yet ended) are never touched. A purged
//! call's recording file goes with it (after its row is gone, so a crash never leaves a row
//! pointing at a deleted file).

use rusqlite::{params, Connection};

/// Delete at most `batch` ended calls that entered before `cutoff_ms`, with their events.
/// Returns how many calls were deleted (0 when nothing is left to purge).
pub fn purge_batch(
    conn: &Connection,
    cutoff_ms: u64,
    batch: usize,
) -> Result<usize, rusqlite::Error> {
    let cutoff = i64::try_from(cutoff_ms).unwrap_or(i64::MAX);
    // IMMEDIATE: take the write lock before reading the batch. A deferred transaction that reads
    // first fails at once with SQLITE_BUSY ("database is locked", no busy wait) when the store
    // writer commits between the SELECT and the DELETE.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let rows: Vec<(i64, Option<String>)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, recording_path FROM calls INDEXED BY calls_entered
             WHERE entered_at_ms < ?1 AND ended_at_ms IS NOT NULL
             ORDER BY entered_at_ms LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![cutoff, batch as i64], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, _) in &rows {
        tx.prepare_cached("DELETE FROM call_events WHERE call_id = ?1")?
            .execute([id])?;
        tx.prepare_cached("DELETE FROM calls WHERE id = ?1")?
            .execute([id])?;
    }
    tx.commit()?;
    for (id, path) in &rows {
        if let Some(p) = path {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(call = id, path = %p, error = %e, "cannot delete a purged call's recording")
                }
            }
        }
    }
    Ok(rows.len())
}

/// Purge everything older than `cutoff_ms`, batch by batch, pausing `pause` between batches (the
/// daemon's retention thread runs the batches as writer jobs instead, `Store::purge_batch_blocking`).
#[cfg(test)]
pub fn purge(
    conn: &Connection,
    cutoff_ms: u64,
    batch: usize,
    pause: std::time::Duration,
) -> Result<usize, rusqlite::Error> {
    let mut total = 0;
    let mut busy = 0;
    loop {
        let n = match purge_batch(conn, cutoff_ms, batch.max(1)) {
            Ok(n) => {
                busy = 0;
                n
            }
            // The writer held the database longer than the busy timeout: try this batch again.
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy && busy < 10 =>
            {
                busy += 1;
                std::thread::sleep(pause.max(std::time::Duration::from_millis(100)));
                continue;
            }
            Err(e) => return Err(e),
        };
        total += n;
        if n == 0 {
            return Ok(total);
        }
        std::thread::sleep(pause);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(conn: &Connection, id: i64, entered: i64, ended: Option<i64>) {
        conn.execute(
            "INSERT INTO calls (id, sip_call_id, direction, entered_at_ms, ended_at_ms, outcome)
             VALUES (?1, 'c', 'inbound', ?2, ?3, 'answered')",
            params![id, entered, ended],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO call_events (call_id, at_ms, kind) VALUES (?1, ?2, 'entered')",
            params![id, entered],
        )
        .unwrap();
    }

    #[test]
    fn removes_exactly_what_is_older_than_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        let day = 86_400_000i64;
        for i in 0..25 {
            insert(&conn, i + 1, i * day, Some(i * day + 1000));
        }
        // A live call from long ago (never ended) is not purged.
        insert(&conn, 100, 0, None);
        let cutoff = (10 * day) as u64;
        let n = purge(&conn, cutoff, 3, std::time::Duration::ZERO).unwrap();
        assert_eq!(n, 10, "calls entered on days 0..=9 go");
        let left: Vec<i64> = conn
            .prepare("SELECT id FROM calls ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let mut expected: Vec<i64> = (11..=25).collect();
        expected.push(100);
        assert_eq!(left, expected);
        let orphans: i64 = conn
            .query_row(
                "SELECT count(*) FROM call_events WHERE call_id NOT IN (SELECT id FROM calls)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(orphans, 0);
        assert_eq!(
            purge(&conn, cutoff, 3, std::time::Duration::ZERO).unwrap(),
            0
        );
    }

    #[test]
    fn recordings_of_purged_calls_go_and_newer_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let conn = crate::store::open(dir.path()).unwrap();
        let day = 86_400_000i64;
        let mut files = Vec::new();
        for i in 0..4 {
            insert(&conn, i + 1, i * day, Some(i * day + 1000));
            let f = dir.path().join(format!("call-{}.wav", i + 1));
            std::fs::write(&f, b"RIFF").unwrap();
            conn.execute(
                "UPDATE calls SET recording_path = ?2 WHERE id = ?1",
                params![i + 1, f.display().to_string()],
            )
            .unwrap();
            files.push(f);
        }
        // A recording already removed by hand does not stop the purge.
        std::fs::remove_file(&files[0]).unwrap();
        let n = purge(&conn, (2 * day) as u64, 10, std::time::Duration::ZERO).unwrap();
        assert_eq!(n, 2);
        assert!(!files[1].exists(), "the purged call's recording is deleted");
        assert!(
            files[2].exists() && files[3].exists(),
            "newer recordings stay"
        );
    }
}
