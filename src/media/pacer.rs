//! Drift-free pacing of ctid's own audio: frame `n` is due at `start + n × ptime`, computed from the
//! start every time (never by adding to the previous deadline), so a one-hour hold sends exactly
//! 3600 s / ptime frames whatever the scheduling jitter. Sans-IO: the caller passes `now`.
//!
//! A late wake-up sends the frames that are due, in a short burst, so the receiver's jitter buffer
//! catches up; when ctid fell far behind (the process was stopped, the machine overloaded) the
//! missed frames are skipped instead — their time still passes on the RTP timestamp — so the
//! peer never gets seconds of stale audio at once.

use std::time::Duration;
use tokio::time::Instant;

/// Most frames sent at once to catch up; beyond that the backlog is skipped.
pub const MAX_BURST: u64 = 5;

/// What to do at a wake-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Frames to skip first (their audio is dropped, their timestamps advance).
    pub skip: u64,
    /// Frames to send now.
    pub send: u64,
}

#[derive(Debug, Clone)]
pub struct Pacer {
    start: Instant,
    period: Duration,
    /// Frames handed out (sent or skipped) so far.
    done: u64,
}

impl Pacer {
    /// Frame 0 is due at `start`.
    pub fn new(start: Instant, period: Duration) -> Pacer {
        Pacer {
            start,
            period: period.max(Duration::from_millis(1)),
            done: 0,
        }
    }

    /// When the next frame is due.
    pub fn next_deadline(&self) -> Instant {
        self.deadline(self.done)
    }

    fn deadline(&self, n: u64) -> Instant {
        let nanos = self.period.as_nanos().saturating_mul(u128::from(n));
        let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
        self.start + Duration::from_nanos(nanos)
    }

    /// Frames handed out so far (sent or skipped).
    pub fn frames(&self) -> u64 {
        self.done
    }

    /// The frames due at `now`, which are then counted as handed out.
    pub fn poll(&mut self, now: Instant) -> Due {
        if now < self.start {
            return Due { skip: 0, send: 0 };
        }
        let elapsed = now.duration_since(self.start).as_nanos();
        let due_total = u64::try_from(elapsed / self.period.as_nanos())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        let owed = due_total.saturating_sub(self.done);
        self.done = self.done.max(due_total);
        if owed > MAX_BURST {
            Due {
                skip: owed - 1,
                send: 1,
            }
        } else {
            Due {
                skip: 0,
                send: owed,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A one-hour hold in virtual time, woken with up to 7 ms of jitter (and now and then a
    /// 60 ms stall): 50 packets/s exactly, nothing skipped, never more than the burst cap.
    #[test]
    fn one_hour_hold_keeps_fifty_packets_a_second_without_drift() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(20));
        let mut sent = 0u64;
        let mut per_second = vec![0u32; 3600];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        while p.next_deadline() < t0 + Duration::from_secs(3600) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let jitter = Duration::from_micros(seed % 7_000);
            let stall = if seed.is_multiple_of(997) {
                Duration::from_millis(60)
            } else {
                Duration::ZERO
            };
            let wake = p.next_deadline() + jitter + stall;
            let due = p.poll(wake);
            assert_eq!(due.skip, 0, "a 67 ms delay must not skip audio");
            assert!(due.send >= 1 && due.send <= MAX_BURST);
            let second = (wake - t0).as_secs() as usize;
            if second < 3600 {
                per_second[second] += due.send as u32;
            }
            sent += due.send;
        }
        assert_eq!(sent, 180_000, "3600 s at 20 ms");
        // Every full second (but the last, where the jitter spills over) carries 50 ± 4 packets.
        for (s, n) in per_second.iter().enumerate().take(3599) {
            assert!((46..=54).contains(n), "second {s}: {n} packets");
        }
        let mean = per_second.iter().map(|n| u64::from(*n)).sum::<u64>() as f64 / 3600.0;
        assert!((mean - 50.0).abs() <= 0.05, "{mean} packets/s");
    }

    #[test]
    fn a_long_stall_skips_the_backlog_and_keeps_the_clock() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0, Duration::from_millis(20));
        assert_eq!(p.poll(t0), Due { skip: 0, send: 1 });
        // 2 s asleep: frames 1..=100 are due; 99 skipped, one sent.
        let due = p.poll(t0 + Duration::from_secs(2));
        assert_eq!(due, Due { skip: 99, send: 1 });
        assert_eq!(p.frames(), 101);
        assert_eq!(p.next_deadline(), t0 + Duration::from_millis(2020));
        // Early wake-ups send nothing.
        assert_eq!(
            p.poll(t0 + Duration::from_millis(2010)),
            Due { skip: 0, send: 0 }
        );
    }

    #[test]
    fn before_start_nothing_is_due() {
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut p = Pacer::new(t0, Duration::from_millis(30));
        assert_eq!(p.poll(Instant::now()), Due { skip: 0, send: 0 });
        assert_eq!(p.next_deadline(), t0);
    }
}
