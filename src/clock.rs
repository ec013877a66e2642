//! The clock, read in one place: [`Now`] is the time of one input — a monotonic instant (for
//! timers and durations) and the wall time (for records, the board and the live figures) read
//! together, so everything one event causes carries the same time.
//!
//! Drivers (the tasks that own channels and sockets) call [`Now::read`] once per input and pass
//! the value down; the machines they feed (the call layer's parts, `stats`, the ACD engine) take
//! it as an argument and never read a clock themselves, so their unit tests run in virtual time
//! ([`Now::at`], [`Now::later`]).
//!
//! The monotonic half comes from tokio's clock, which is the system's monotonic clock unless a
//! test paused it (`tokio::time::pause`): a paused driver test moves both halves together.
//!
//! Must not know: what the time is used for.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time of one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic: timers, waits, talk times.
    pub mono: Instant,
    /// Wall clock, Unix milliseconds: what is recorded and shown.
    pub wall_ms: u64,
}

impl Now {
    /// Read the clock (drivers only).
    pub fn read() -> Now {
        Now {
            mono: tokio::time::Instant::now().into_std(),
            wall_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// A given time (tests, virtual time).
    pub fn at(mono: Instant, wall_ms: u64) -> Now {
        Now { mono, wall_ms }
    }

    /// This time plus `d`, on both clocks.
    pub fn later(self, d: Duration) -> Now {
        Now {
            mono: self.mono + d,
            wall_ms: self.wall_ms.saturating_add(d.as_millis() as u64),
        }
    }

    /// How long ago `earlier` was (0 if it is not earlier).
    pub fn since(self, earlier: Instant) -> Duration {
        self.mono.saturating_duration_since(earlier)
    }

    /// The wall time of `earlier` (a monotonic instant of the past), in Unix ms.
    pub fn wall_of(self, earlier: Instant) -> u64 {
        self.wall_ms
            .saturating_sub(self.since(earlier).as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_moves_both_clocks() {
        let t0 = Now::at(Instant::now(), 1_000);
        let t1 = t0.later(Duration::from_millis(2_500));
        assert_eq!(t1.wall_ms, 3_500);
        assert_eq!(t1.since(t0.mono), Duration::from_millis(2_500));
        assert_eq!(t0.since(t1.mono), Duration::ZERO);
        assert_eq!(t1.wall_of(t0.mono), 1_000);
    }

    #[test]
    fn read_gives_a_wall_time_after_2020() {
        let n = Now::read();
        assert!(n.wall_ms > 1_577_836_800_000, "{n:?}");
    }
}
