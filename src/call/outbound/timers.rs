//! The dialer's timers as deadlines, not tasks: the pacing tick, the agent's ring, the
//! customer's dial timeout, the wrap-up, the preview's expiry. A machine with no I/O: the call
//! manager sleeps until [`DialerTimers::poll_timeout`] (with the engine's) and hands back what
//! [`DialerTimers::poll_expired`] gives at the time of that input.
//!
//! Must not know: channels, the clock, what a timer means.

use super::Msg;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Default)]
pub(super) struct DialerTimers {
    /// By deadline, then by order of arming (timers due at the same instant fire in order).
    due: BTreeMap<(Instant, u64), Msg>,
    armed: u64,
}

impl DialerTimers {
    /// `msg` comes back once `now + delay` has passed.
    pub fn after(&mut self, now: Instant, delay: Duration, msg: Msg) {
        self.armed += 1;
        self.due.insert((now + delay, self.armed), msg);
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.due.first_key_value().map(|((at, _), _)| *at)
    }

    /// The next timer due at `now`, earliest first.
    pub fn poll_expired(&mut self, now: Instant) -> Option<Msg> {
        let (&(at, seq), _) = self.due.first_key_value()?;
        if at > now {
            return None;
        }
        self.due.remove(&(at, seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acd::{AgentId, CallId};

    fn name(m: &Msg) -> String {
        match m {
            Msg::Tick => "tick".into(),
            Msg::AgentRingTimeout(c) => format!("ring {}", c.0),
            Msg::DialTimeout(c) => format!("dial {}", c.0),
            Msg::WrapupDone(a) => format!("wrapup {a}"),
            _ => "other".into(),
        }
    }

    #[test]
    fn timers_fire_in_deadline_order_and_not_before() {
        let t0 = Instant::now();
        let mut t = DialerTimers::default();
        t.after(
            t0,
            Duration::from_secs(20),
            Msg::AgentRingTimeout(CallId(1)),
        );
        t.after(t0, Duration::from_millis(250), Msg::Tick);
        t.after(
            t0,
            Duration::from_secs(5),
            Msg::WrapupDone(AgentId("1001".into())),
        );
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_millis(250)));
        assert!(t.poll_expired(t0).is_none(), "nothing is due yet");
        let at = t0 + Duration::from_secs(6);
        let fired: Vec<String> = std::iter::from_fn(|| t.poll_expired(at))
            .map(|m| name(&m))
            .collect();
        assert_eq!(fired, ["tick", "wrapup 1001"]);
        assert_eq!(t.poll_timeout(), Some(t0 + Duration::from_secs(20)));
    }

    #[test]
    fn timers_due_at_the_same_instant_fire_in_the_order_armed() {
        let t0 = Instant::now();
        let mut t = DialerTimers::default();
        for c in [3, 1, 2] {
            t.after(t0, Duration::from_secs(1), Msg::DialTimeout(CallId(c)));
        }
        let at = t0 + Duration::from_secs(1);
        let fired: Vec<String> = std::iter::from_fn(|| t.poll_expired(at))
            .map(|m| name(&m))
            .collect();
        assert_eq!(fired, ["dial 3", "dial 1", "dial 2"]);
        assert_eq!(t.poll_timeout(), None);
    }
}
