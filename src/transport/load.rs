//! Overload detection for the SIP driver: is ctid keeping up? Measured, not guessed, from three
//! signals, each compared with a `[sip.overload]` limit:
//! - events waiting for the call layer (its queue depth, plus what the driver holds back when
//!   that queue is full — events are held, never dropped);
//! - the lag of the SIP event loop (how late a 100 ms tick fires, the least of the last three so
//!   only sustained lag counts: a starved or saturated runtime shows here first);
//! - the CPU the media threads use together, as a share of every CPU of the machine (read from
//!   `/proc/self/task/*/schedstat` of the threads named `ctid-media-*`), so real-time media
//!   threads cannot starve signalling.
//!
//! [`HeapTrim`] gives memory back after a flood.
//!
//! [`Admission`] is the decision (pure: measurements in, state out, with hysteresis so the
//! state does not flap): overloaded when any signal is over its limit, back to normal when all
//! are under 80 % of theirs. [`MediaCpu`] is the measurement of the third signal.
//!
//! Must not know: SIP messages, calls.

use std::time::{Duration, Instant};

/// Limits (0 = that signal is not used).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverloadLimits {
    pub max_pending_events: usize,
    pub max_loop_lag: Duration,
    pub max_media_cpu_percent: u32,
}

/// One set of measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Load {
    pub pending_events: usize,
    pub loop_lag: Duration,
    pub media_cpu_percent: f64,
}

/// Which signal is over its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    PendingEvents,
    LoopLag,
    MediaCpu,
}

impl Signal {
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::PendingEvents => "pending_events",
            Signal::LoopLag => "loop_lag",
            Signal::MediaCpu => "media_cpu",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Admission {
    limits: OverloadLimits,
    overloaded: Option<Signal>,
}

impl Admission {
    pub fn new(limits: OverloadLimits) -> Self {
        Admission {
            limits,
            overloaded: None,
        }
    }

    /// The signal over `share` of its limit, if any.
    fn over(&self, load: &Load, share: f64) -> Option<Signal> {
        let l = &self.limits;
        if l.max_pending_events > 0
            && load.pending_events as f64 > l.max_pending_events as f64 * share
        {
            return Some(Signal::PendingEvents);
        }
        if !l.max_loop_lag.is_zero()
            && load.loop_lag.as_secs_f64() > l.max_loop_lag.as_secs_f64() * share
        {
            return Some(Signal::LoopLag);
        }
        if l.max_media_cpu_percent > 0
            && load.media_cpu_percent > f64::from(l.max_media_cpu_percent) * share
        {
            return Some(Signal::MediaCpu);
        }
        None
    }

    /// Take a measurement; returns the state change, if any (`Some(Some(s))` = now overloaded
    /// because of `s`, `Some(None)` = recovered).
    pub fn update(&mut self, load: &Load) -> Option<Option<Signal>> {
        let next = match self.overloaded {
            None => self.over(load, 1.0),
            Some(s) => self.over(load, 0.8).map(|_| s),
        };
        (next != self.overloaded).then(|| {
            self.overloaded = next;
            next
        })
    }

    pub fn overloaded(&self) -> Option<Signal> {
        self.overloaded
    }
}

/// CPU time of the media threads, sampled from `/proc`.
#[derive(Debug)]
pub struct MediaCpu {
    cpus: f64,
    last: Option<(Instant, u64)>,
}

impl Default for MediaCpu {
    fn default() -> Self {
        MediaCpu {
            cpus: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            last: None,
        }
    }
}

impl MediaCpu {
    /// Percent of all CPUs the media threads used since the last sample (0 on the first one, or
    /// where `/proc` cannot be read).
    pub fn sample(&mut self, now: Instant) -> f64 {
        let Some(ns) = media_cpu_ns() else {
            return 0.0;
        };
        let pct = match self.last {
            Some((t, prev)) => {
                let wall = now.saturating_duration_since(t).as_nanos() as f64;
                if wall <= 0.0 {
                    0.0
                } else {
                    ns.saturating_sub(prev) as f64 / (wall * self.cpus) * 100.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, ns));
        pct
    }
}

/// Total CPU time (ns) of this process's threads named `ctid-media-*`.
fn media_cpu_ns() -> Option<u64> {
    let mut total = 0u64;
    for entry in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let dir = entry.path();
        let Ok(comm) = std::fs::read_to_string(dir.join("comm")) else {
            continue;
        };
        if !comm.starts_with("ctid-media-") {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(dir.join("schedstat")) else {
            continue;
        };
        total += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// Gives freed heap memory back to the system after a flood: glibc's malloc keeps what a burst
/// of transactions, calls and media sessions freed (measured: 13 → 70 MB RSS after 2000
/// half-open INVITEs, and it stayed there, BENCHMARKS.md). When the open SIP transactions fall
/// to an eighth of a peak of at least 256, `malloc_trim(0)` returns the free pages of every
/// arena once. Rare and bounded: at most once per flood.
#[derive(Debug, Default)]
pub struct HeapTrim {
    peak: usize,
}

impl HeapTrim {
    /// `open`: the endpoint's open transactions now. Returns whether it trimmed.
    pub fn sample(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        if self.peak < 256 || open > self.peak / 8 {
            return false;
        }
        self.peak = open;
        trim_heap();
        true
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() {
    // SAFETY: malloc_trim only walks glibc's own arenas; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() {}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission() -> Admission {
        Admission::new(OverloadLimits {
            max_pending_events: 100,
            max_loop_lag: Duration::from_millis(200),
            max_media_cpu_percent: 50,
        })
    }

    #[test]
    fn each_signal_trips_and_recovery_needs_a_margin() {
        let mut a = admission();
        assert_eq!(a.update(&Load::default()), None);
        let busy = Load {
            pending_events: 101,
            ..Load::default()
        };
        assert_eq!(a.update(&busy), Some(Some(Signal::PendingEvents)));
        assert_eq!(a.update(&busy), None, "no change reported twice");
        // Under the limit but not under 80 % of it: still overloaded.
        let almost = Load {
            pending_events: 90,
            ..Load::default()
        };
        assert_eq!(a.update(&almost), None);
        assert_eq!(a.overloaded(), Some(Signal::PendingEvents));
        assert_eq!(a.update(&Load::default()), Some(None));
        let lag = Load {
            loop_lag: Duration::from_millis(250),
            ..Load::default()
        };
        assert_eq!(a.update(&lag), Some(Some(Signal::LoopLag)));
        a.update(&Load::default());
        let media = Load {
            media_cpu_percent: 51.0,
            ..Load::default()
        };
        assert_eq!(a.update(&media), Some(Some(Signal::MediaCpu)));
    }

    #[test]
    fn a_zero_limit_turns_its_signal_off() {
        let mut a = Admission::new(OverloadLimits {
            max_pending_events: 0,
            max_loop_lag: Duration::ZERO,
            max_media_cpu_percent: 0,
        });
        let huge = Load {
            pending_events: 1 << 30,
            loop_lag: Duration::from_secs(60),
            media_cpu_percent: 100.0,
        };
        assert_eq!(a.update(&huge), None);
    }

    #[test]
    fn the_heap_is_trimmed_once_after_a_flood() {
        let mut t = HeapTrim::default();
        assert!(!t.sample(100));
        assert!(!t.sample(10), "no flood, no trim");
        assert!(!t.sample(2000));
        assert!(!t.sample(300));
        assert!(t.sample(200), "down to an eighth of the peak");
        assert!(!t.sample(10), "once per flood");
        assert!(!t.sample(0));
    }

    #[test]
    fn media_cpu_reads_this_process() {
        // No media threads in a unit test: zero, and no panic reading /proc.
        let mut m = MediaCpu::default();
        let t0 = Instant::now();
        assert_eq!(m.sample(t0), 0.0);
        assert_eq!(m.sample(t0 + Duration::from_secs(1)), 0.0);
    }
}
