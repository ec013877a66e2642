//! What the agent's screen pop needs about a live call, kept from the event feed.
//!
//! Owns: a small map call id → queue, caller number, when it entered and which agent it was
//! offered to, filled from the same [`CallEvent`]s the API publishes (`call_entered` carries the
//! number; `call_offered` names the agent). The event stream alone is not enough for a page
//! that was (re)loaded after the caller entered, so the page asks
//! `GET /web/api/live/calls/{id}` instead of searching the stream.
//!
//! Must not know: call state beyond the events, HTTP, SQL. Bounded: ended calls are dropped
//! after [`KEEP_ENDED_MS`], and never more than [`MAX_CALLS`] are held.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::call::control::CallEvent;

/// An ended call stays this long (a wrap-up screen reloaded meanwhile still finds it).
pub const KEEP_ENDED_MS: u64 = 30 * 60 * 1000;
/// Most calls held; beyond it the oldest go.
pub const MAX_CALLS: usize = 20_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveCall {
    pub call: u64,
    pub queue: String,
    pub caller_number: Option<String>,
    pub entered_at_ms: u64,
    /// The agent it was last offered to (ringing, then talking).
    pub agent: Option<String>,
    pub answered_at_ms: Option<u64>,
    pub ended_at_ms: Option<u64>,
}

/// Ended calls are swept at most this often.
const SWEEP_EVERY_MS: u64 = 60 * 1000;

#[derive(Default)]
pub struct Live {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    calls: HashMap<u64, LiveCall>,
    last_sweep_ms: u64,
}

impl Live {
    pub fn new() -> Live {
        Live::default()
    }

    /// Takes note of one published event.
    pub fn observe(&self, ev: &CallEvent, now_ms: u64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let calls = &mut inner.calls;
        match ev {
            CallEvent::CallEntered {
                call,
                queue,
                caller_number,
            } => {
                // An overflow re-enters the call into another queue: keep when it first came.
                let c = calls.entry(*call).or_insert_with(|| LiveCall {
                    call: *call,
                    queue: queue.clone(),
                    caller_number: caller_number.clone(),
                    entered_at_ms: now_ms,
                    agent: None,
                    answered_at_ms: None,
                    ended_at_ms: None,
                });
                c.queue = queue.clone();
                if caller_number.is_some() {
                    c.caller_number = caller_number.clone();
                }
            }
            CallEvent::CallOffered { call, agent } => {
                if let Some(c) = calls.get_mut(call) {
                    c.agent = Some(agent.clone());
                }
            }
            CallEvent::CallAnswered { call, agent, .. } => {
                if let Some(c) = calls.get_mut(call) {
                    c.agent = Some(agent.clone());
                    c.answered_at_ms = Some(now_ms);
                }
            }
            CallEvent::CallEnded { call, .. } | CallEvent::CallAbandoned { call, .. } => {
                if let Some(c) = calls.get_mut(call) {
                    c.ended_at_ms.get_or_insert(now_ms);
                }
            }
            _ => return,
        }
        if calls.len() > MAX_CALLS {
            // Down to 90 %, so the sort is rare.
            let mut by_age: Vec<(u64, u64)> =
                calls.values().map(|c| (c.entered_at_ms, c.call)).collect();
            by_age.sort_unstable();
            let excess = calls.len() - MAX_CALLS * 9 / 10;
            for (_, id) in by_age.iter().take(excess) {
                calls.remove(id);
            }
        }
        if now_ms.saturating_sub(inner.last_sweep_ms) >= SWEEP_EVERY_MS {
            inner.last_sweep_ms = now_ms;
            inner.calls.retain(|_, c| {
                c.ended_at_ms
                    .is_none_or(|e| now_ms.saturating_sub(e) < KEEP_ENDED_MS)
            });
        }
    }

    pub fn get(&self, call: u64) -> Option<LiveCall> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.calls.get(&call).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entered(call: u64, queue: &str, n: &str) -> CallEvent {
        CallEvent::CallEntered {
            call,
            queue: queue.into(),
            caller_number: Some(n.into()),
        }
    }

    #[test]
    fn a_call_is_followed_from_entry_to_end() {
        let l = Live::new();
        l.observe(&entered(7, "support", "5550101"), 1_000);
        l.observe(
            &CallEvent::CallOffered {
                call: 7,
                agent: "1001".into(),
            },
            2_000,
        );
        let c = l.get(7).unwrap();
        assert_eq!(c.caller_number.as_deref(), Some("5550101"));
        assert_eq!(c.agent.as_deref(), Some("1001"));
        assert_eq!(c.entered_at_ms, 1_000);
        l.observe(
            &CallEvent::CallAnswered {
                call: 7,
                agent: "1001".into(),
                wait_secs: 1.0,
            },
            3_000,
        );
        l.observe(
            &CallEvent::CallEnded {
                call: 7,
                by: "caller".into(),
            },
            9_000,
        );
        let c = l.get(7).unwrap();
        assert_eq!(
            (c.answered_at_ms, c.ended_at_ms),
            (Some(3_000), Some(9_000))
        );
        // Overflow into another queue keeps the entry time and the number.
        l.observe(
            &CallEvent::CallEntered {
                call: 7,
                queue: "sales".into(),
                caller_number: None,
            },
            9_500,
        );
        let c = l.get(7).unwrap();
        assert_eq!((c.queue.as_str(), c.entered_at_ms), ("sales", 1_000));
        assert_eq!(c.caller_number.as_deref(), Some("5550101"));
    }

    #[test]
    fn ended_calls_are_forgotten_after_a_while() {
        let l = Live::new();
        l.observe(&entered(1, "q", "1"), 0);
        l.observe(
            &CallEvent::CallEnded {
                call: 1,
                by: "agent".into(),
            },
            10,
        );
        l.observe(&entered(2, "q", "2"), 10 + KEEP_ENDED_MS);
        assert!(l.get(1).is_none());
        assert!(l.get(2).is_some());
    }

    #[test]
    fn the_map_is_bounded() {
        let l = Live::new();
        for i in 0..(MAX_CALLS as u64 + 5) {
            l.observe(&entered(i, "q", "1"), i);
        }
        assert!(l.get(0).is_none(), "the oldest went");
        assert!(l.get(MAX_CALLS as u64 + 4).is_some());
    }
}
