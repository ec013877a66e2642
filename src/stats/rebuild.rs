//! Today's live figures rebuilt from the call records at start ([`rebuild_today`]), so a
//! restart mid-day loses nothing.
//!
//! Must not know: SQL (the records come through [`StatsReads`]), the clock (`now_ms` is given).

use super::{clamp_ms, LiveStats, DAY_MS};
use crate::store::{StatsReads, StoreError};

/// Something a call record replays, in time order.
enum Replay {
    Left {
        queue: String,
        outcome: String,
        wait_ms: u64,
        short_abandon: bool,
        in_target: bool,
    },
    Talk {
        queue: String,
        talk_ms: u64,
        answered_at_ms: u64,
    },
}

/// Why today's figures could not be rebuilt.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("today's bounds: {0}")]
    Time(#[from] jiff::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rebuild today's figures (and the current and last interval) from the `calls` table as of
/// `now_ms`: the calls that left their queue today (answered: at `answered_at_ms`, others at
/// `ended_at_ms`) and no later than `now_ms`. `stats` is cleared first, so this is idempotent.
///
/// Rows without a queue are skipped. Rows whose outcome is NULL (live) or 'interrupted'
/// count only if they were answered (as answered, without talk time): the live figures
/// counted them when they were answered. Returns how many calls were counted (of the
/// configured queues).
pub fn rebuild_today(
    store: &dyn StatsReads,
    stats: &mut LiveStats,
    now_ms: u64,
) -> Result<usize, RebuildError> {
    let now = clamp_ms(now_ms);
    let (day_start, day_end) = stats.day_bounds(now)?;
    let in_today = |t: i64| t >= day_start && t < day_end && t <= now;
    let mut events: Vec<(i64, Replay)> = Vec::new();
    let mut counted = 0usize;
    store.each_stats_call(day_start - DAY_MS, day_end, &mut |c| {
        if !stats.index.contains_key(&c.queue) {
            return;
        }
        let wait_ms = c.wait_ms.unwrap_or(0).max(0) as u64;
        let (in_target, short_abandon) = (c.answered_in_target, c.short_abandon);
        let (outcome, with_talk) = match c.outcome.as_deref() {
            None | Some("interrupted") => match c.answered_at_ms {
                Some(_) => ("answered".to_owned(), false),
                None => return,
            },
            Some(o) => (o.to_owned(), o == "answered"),
        };
        let Some(left_at) = c.answered_at_ms.or(c.ended_at_ms) else {
            return;
        };
        if !in_today(left_at) {
            return;
        }
        counted += 1;
        let queue = c.queue;
        if with_talk {
            if let (Some(talk), Some(end)) = (c.talk_ms, c.ended_at_ms) {
                if end <= now {
                    events.push((
                        end.max(left_at),
                        Replay::Talk {
                            queue: queue.clone(),
                            talk_ms: talk.max(0) as u64,
                            answered_at_ms: left_at as u64,
                        },
                    ));
                }
            }
        }
        events.push((
            left_at,
            Replay::Left {
                queue,
                outcome,
                wait_ms,
                short_abandon,
                in_target,
            },
        ));
    })?;
    // Replay in time order, a call's leaving before any talk at the same moment.
    events.sort_by_key(|(t, e)| (*t, matches!(e, Replay::Talk { .. })));
    stats.clear();
    for (t, e) in events {
        match e {
            Replay::Left {
                queue,
                outcome,
                wait_ms,
                short_abandon,
                in_target,
            } => stats.record_left(
                &queue,
                &outcome,
                wait_ms,
                short_abandon,
                in_target,
                t as u64,
            ),
            Replay::Talk {
                queue,
                talk_ms,
                answered_at_ms,
            } => {
                // Live, the talk is recorded when the call ends: roll to then first.
                stats.advance(t);
                stats.record_talk(&queue, talk_ms, answered_at_ms);
            }
        }
    }
    stats.advance(now);
    Ok(counted)
}
