//! The live event feed: sequence numbers, a bounded replay buffer, and `GET /api/v1/events`.
//!
//! Every published [`CallEvent`] gets the next sequence number (from 1) and is kept, already
//! rendered as an SSE frame (`id`, `event`, JSON `data`), in a ring of [`super::REPLAY_BUFFER`]
//! frames. A client names the last id it has seen (`Last-Event-ID`, or `?since=N`); one whose
//! next event has already left the ring (or that names an id from the future, e.g. from before a
//! restart) gets `event: resync` carrying the current id, and must reload its state.
//!
//! Delivery is one endless SSE response per client: first everything after its id, then every
//! new event as it is published, with a keepalive comment every [`HOLD`] of silence. If the
//! connection breaks, `retry:` makes an `EventSource` reconnect at once with its
//! `Last-Event-ID`, and the replay buffer gives it what it missed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use tokio::sync::watch;

use super::auth::Authed;
use super::{parse_query, ApiError, ApiState};
use crate::call::control::CallEvent;

/// Silence longer than this gets a keepalive comment.
pub const HOLD: Duration = Duration::from_secs(25);

/// After the first event is ready, gather what follows it this briefly (bursts go together).
const COALESCE: Duration = Duration::from_millis(20);

/// Most frames in one response; the client comes back for the rest.
pub const MAX_BATCH: usize = 1000;

/// Milliseconds an `EventSource` waits before reconnecting.
const RETRY_MS: u32 = 100;

pub(super) struct Hub {
    ring: Mutex<Ring>,
    /// The id of the newest event (0 = none yet).
    latest: watch::Sender<u64>,
}

struct Ring {
    cap: usize,
    /// Oldest first; ids are consecutive.
    frames: VecDeque<(u64, Arc<str>)>,
    last_id: u64,
}

/// What a client at a given id is owed.
#[derive(Debug, PartialEq)]
enum Owed {
    Frames(Vec<Arc<str>>, u64),
    Resync(u64),
}

impl Hub {
    pub(super) fn new(cap: usize) -> Hub {
        Hub {
            ring: Mutex::new(Ring {
                cap: cap.max(1),
                frames: VecDeque::new(),
                last_id: 0,
            }),
            latest: watch::channel(0).0,
        }
    }

    /// Number `ev`, keep it, wake waiting clients. (Agent sessions are not derived from here:
    /// the call layer, which owns agent state, writes them; see `call::board`.)
    pub(super) fn publish(&self, ev: CallEvent) {
        let id = {
            let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
            ring.last_id += 1;
            let id = ring.last_id;
            let frame: Arc<str> = render(id, &ev).into();
            ring.frames.push_back((id, frame));
            while ring.frames.len() > ring.cap {
                ring.frames.pop_front();
            }
            id
        };
        self.latest.send_replace(id);
    }

    fn latest(&self) -> u64 {
        *self.latest.borrow()
    }

    /// Frames after `since` (at most `max`), or a resync when the client cannot catch up.
    fn owed(&self, since: u64, max: usize) -> Owed {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if since > ring.last_id {
            return Owed::Resync(ring.last_id);
        }
        if since == ring.last_id {
            return Owed::Frames(vec![], since);
        }
        let oldest = ring.frames.front().map_or(ring.last_id + 1, |f| f.0);
        if since + 1 < oldest {
            return Owed::Resync(ring.last_id);
        }
        let skip = (since + 1 - oldest) as usize;
        let frames: Vec<Arc<str>> = ring
            .frames
            .iter()
            .skip(skip)
            .take(max)
            .map(|f| f.1.clone())
            .collect();
        let last = since + frames.len() as u64;
        Owed::Frames(frames, last)
    }
}

/// `id`, `event` (the variant's snake_case name) and the event as JSON `data` (one line).
fn render(id: u64, ev: &CallEvent) -> String {
    let data = serde_json::to_string(ev).unwrap_or_else(|_| "{}".into());
    let kind = serde_json::to_value(ev)
        .ok()
        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(String::from))
        .unwrap_or_else(|| "event".into());
    format!("id: {id}\nevent: {kind}\ndata: {data}\n\n")
}

/// `GET /api/v1/events`.
pub(super) async fn stream(
    State(st): State<ApiState>,
    Authed(p): Authed,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut since = None;
    for (k, v) in parse_query(q.as_deref()) {
        match k.as_str() {
            "since" => since = Some(v),
            _ => return Err(ApiError::invalid(format!("unknown parameter {k:?}"))),
        }
    }
    if let Some(h) = headers.get("last-event-id") {
        since = Some(
            h.to_str()
                .map_err(|_| ApiError::invalid("Last-Event-ID is not text"))?
                .trim()
                .to_string(),
        );
    }
    let since = match since {
        Some(s) => s
            .parse::<u64>()
            .map_err(|_| ApiError::invalid(format!("event id {s:?} is not a number")))?,
        None => st.inner.hub.latest(),
    };

    // One endless response: a task writes frames into a pipe whose read end is the body. It
    // ends when the client goes away (the write fails), on resync, or when ctid stops.
    //
    // The task holds the API state only weakly (upgraded for a moment per batch, never across
    // a write): a stream must not keep the state — and with it the store writer's queue, which
    // ctid's shutdown waits to see closed — alive after the listener is gone. Once the state is
    // dropped, the hub's `latest` sender goes with it and the wait below ends.
    // A wallboard sees what happens, not who calls (docs/api.md: no customer data).
    let redact = p.role == super::auth::Role::Wallboard;
    let (mut writer, reader) = tokio::io::duplex(64 * 1024);
    let weak = Arc::downgrade(&st.inner);
    let mut rx = st.inner.hub.latest.subscribe();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut since = since;
        if writer
            .write_all(format!("retry: {RETRY_MS}\n\n").as_bytes())
            .await
            .is_err()
        {
            return;
        }
        loop {
            let owed = match weak.upgrade() {
                Some(inner) => inner.hub.owed(since, MAX_BATCH),
                None => return,
            };
            match owed {
                Owed::Resync(latest) => {
                    let _ = writer.write_all(resync(latest).as_bytes()).await;
                    return;
                }
                Owed::Frames(frames, last) if !frames.is_empty() => {
                    let mut chunk = String::new();
                    for f in &frames {
                        if redact {
                            chunk.push_str(&without_customer_data(f));
                        } else {
                            chunk.push_str(f);
                        }
                    }
                    if writer.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                    since = last;
                    continue;
                }
                Owed::Frames(..) => {}
            }
            // Wait for the next event; a comment line every HOLD keeps proxies from timing out
            // and tells us when the client is gone.
            let next = tokio::time::timeout(HOLD, async {
                loop {
                    if *rx.borrow_and_update() > since {
                        return true;
                    }
                    if rx.changed().await.is_err() {
                        return false;
                    }
                }
            })
            .await;
            match next {
                Ok(true) => tokio::time::sleep(COALESCE).await,
                Ok(false) => return,
                Err(_) => {
                    if writer.write_all(b": keepalive\n\n").await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(reader));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::HeaderName::from_static("x-accel-buffering"),
                HeaderValue::from_static("no"),
            ),
        ],
        body,
    )
        .into_response())
}

/// An event frame (`id:`, `event:`, `data: {json}`) with the caller's number and name blanked.
fn without_customer_data(frame: &str) -> String {
    let mut out = String::with_capacity(frame.len());
    for line in frame.split_inclusive('\n') {
        let Some(json) = line
            .strip_prefix("data: ")
            .filter(|j| j.contains("\"caller_number\"") || j.contains("\"caller_name\""))
        else {
            // Frames without customer data go out as the hub rendered them.
            out.push_str(line);
            continue;
        };
        match serde_json::from_str::<serde_json::Value>(json.trim_end()) {
            Ok(mut v) => {
                if let Some(o) = v.as_object_mut() {
                    for key in ["caller_number", "caller_name"] {
                        if o.contains_key(key) {
                            o.insert(key.into(), serde_json::Value::Null);
                        }
                    }
                }
                out.push_str("data: ");
                out.push_str(&v.to_string());
                out.push('\n');
            }
            // Not JSON (never written by the hub): dropped rather than passed on unread.
            Err(_) => out.push_str("data: {}\n"),
        }
    }
    out
}

fn resync(latest: u64) -> String {
    format!("id: {latest}\nevent: resync\ndata: {{\"latest\":{latest}}}\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_replays_and_resyncs() {
        let hub = Hub::new(3);
        assert_eq!(hub.owed(0, 10), Owed::Frames(vec![], 0));
        assert_eq!(hub.owed(5, 10), Owed::Resync(0));
        for i in 0..5 {
            hub.publish(CallEvent::CallEnded {
                call: i,
                by: "caller".into(),
            });
        }
        // Ring holds 3, 4, 5.
        assert_eq!(hub.owed(1, 10), Owed::Resync(5));
        let Owed::Frames(f, last) = hub.owed(2, 10) else {
            panic!()
        };
        assert_eq!(last, 5);
        assert_eq!(f.len(), 3);
        assert!(
            f[0].starts_with("id: 3\nevent: call_ended\ndata: {\"type\":\"call_ended\",\"call\":2")
        );
        let Owed::Frames(f, last) = hub.owed(3, 1) else {
            panic!()
        };
        assert_eq!((f.len(), last), (1, 4));
        assert_eq!(hub.owed(5, 10), Owed::Frames(vec![], 5));
        assert_eq!(hub.owed(6, 10), Owed::Resync(5));
    }
}
