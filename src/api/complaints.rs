//! `GET /api/v1/complaints/summary`, `GET /api/v1/complaints` (open complaint follow-ups and
//! their deadlines: a reply within `[outbound] complaint_reply_hours`, resolution within
//! `complaint_resolve_hours`) and `GET /api/v1/callbacks` (queue callback requests — pending by
//! default, or those of one `status` — per queue, in the order the callers joined the queue,
//! with their attempts and the callback list that dials them).
//!
//! The summary is for every role; the complaints themselves (caller numbers) for supervisors.
//! Callback requests: a supervisor sees every queue, an agent the queues it is a member of, a
//! wallboard the counts only.

use std::collections::BTreeMap;

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rusqlite::params;
use serde::Serialize;

use super::auth::{Authed, Role};
use super::outbound::{db_read, own_agent, supervisor_only};
use super::{now_ms, parse_query, ApiError, ApiState};
use crate::outbound::{ComplaintStatus, ComplaintSummary};
use crate::outbound_metrics::{open_complaints_as_configured, summarize};

#[derive(Debug, Serialize)]
struct Summary {
    #[serde(flatten)]
    counts: ComplaintSummary,
    reply_within_hours: u32,
    resolve_within_hours: u32,
}

#[derive(Debug, Serialize)]
struct Complaints {
    #[serde(flatten)]
    summary: Summary,
    complaints: Vec<ComplaintStatus>,
}

async fn load(st: &ApiState) -> Result<(Summary, Vec<ComplaintStatus>), ApiError> {
    let cfg = st.outbound().cfg.clone();
    let (reply, resolve) = (cfg.complaint_reply_hours, cfg.complaint_resolve_hours);
    let all = st
        .inner
        .store
        .read(move |r| Ok::<_, ApiError>(open_complaints_as_configured(r, &cfg, now_ms())?))
        .await?;
    Ok((
        Summary {
            counts: summarize(&all),
            reply_within_hours: reply,
            resolve_within_hours: resolve,
        },
        all,
    ))
}

pub(super) async fn summary(
    State(st): State<ApiState>,
    Authed(_): Authed,
) -> Result<Response, ApiError> {
    let (summary, _) = load(&st).await?;
    Ok(Json(summary).into_response())
}

pub(super) async fn list(
    State(st): State<ApiState>,
    Authed(p): Authed,
) -> Result<Response, ApiError> {
    supervisor_only(&p, "read complaints (the summary is open to every role)")?;
    let (summary, complaints) = load(&st).await?;
    Ok(Json(Complaints {
        summary,
        complaints,
    })
    .into_response())
}

/// The `status` values of `GET /api/v1/callbacks` (`all`: no filter).
const CALLBACK_STATUSES: [&str; 5] = ["pending", "in_progress", "done", "failed", "all"];

/// One callback request (`callback_requests`).
#[derive(Debug, Serialize)]
struct Request {
    id: i64,
    /// The inbound call the caller left.
    call_id: i64,
    caller_number: String,
    caller_name: Option<String>,
    /// When the caller joined the queue: requests are served in this order.
    entered_at_ms: i64,
    /// The caller's position in the queue when asking.
    position: Option<i64>,
    requested_at_ms: i64,
    /// pending, in_progress (being dialed), done (an attempt was answered) or failed.
    status: String,
    /// Dial attempts so far.
    attempts: i64,
    last_result: Option<String>,
    /// Why done or failed: `answered`, `max_attempts`, `do_not_call`, `invalid_number: …`.
    reason: Option<String>,
    done_at_ms: Option<i64>,
    /// The contact and callback list dialing it, once the dialer took it up.
    contact_id: Option<i64>,
    list: Option<String>,
}

#[derive(Debug, Serialize)]
struct QueueCallbacks {
    queue: String,
    /// Requests waiting to be dialed (whatever `status` asked for).
    pending: i64,
    /// Requests being dialed now.
    in_progress: i64,
    /// Of the pending requests.
    oldest_entered_at_ms: Option<i64>,
    /// Absent for a wallboard.
    #[serde(skip_serializing_if = "Option::is_none")]
    requests: Option<Vec<Request>>,
}

/// The open requests of a queue.
#[derive(Debug, Default)]
struct Open {
    pending: i64,
    in_progress: i64,
    oldest: Option<i64>,
}

#[derive(Debug, Serialize)]
struct Callbacks {
    queues: Vec<QueueCallbacks>,
}

pub(super) async fn callbacks(
    State(st): State<ApiState>,
    Authed(p): Authed,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let mut only: Option<String> = None;
    let mut status: Option<String> = None;
    for (k, v) in parse_query(q.as_deref()) {
        match k.as_str() {
            "queue" if only.is_none() && !v.is_empty() => only = Some(v),
            "queue" => {
                return Err(ApiError::bad_parameter(
                    "queue",
                    "queue: give one queue name, once",
                ))
            }
            "status" if status.is_none() && CALLBACK_STATUSES.contains(&v.as_str()) => {
                status = Some(v)
            }
            "status" => {
                return Err(ApiError::bad_parameter(
                    "status",
                    format!("status: one of {}, once", CALLBACK_STATUSES.join(", ")),
                ))
            }
            _ => {
                return Err(ApiError::bad_parameter(
                    &k,
                    format!("unknown parameter {k:?} (known: queue, status)"),
                ))
            }
        }
    }
    let wanted = match status.as_deref() {
        None => Some("pending".to_string()),
        Some("all") => None,
        Some(s) => Some(s.to_string()),
    };
    let settings = st.outbound();
    // The queues this caller may see, configured ones first (with 0 pending).
    let allowed: Option<Vec<String>> =
        own_agent(&p)?.map(|agent| settings.queues_of(agent).into_iter().collect());
    if let (Some(q), Some(a)) = (&only, &allowed) {
        if !a.contains(q) {
            return Err(ApiError::forbidden(format!(
                "an agent may read only the callbacks of its queues, not {q:?}"
            )));
        }
    }
    let mut queues: BTreeMap<String, (Open, Vec<Request>)> = settings
        .queues
        .keys()
        .map(|q| (q.clone(), Default::default()))
        .collect();
    let filter = only.clone();
    let (open, rows) = db_read(&st, move |c| {
        let open = c
            .prepare(
                "SELECT queue, sum(status = 'pending'), sum(status = 'in_progress'),
                   min(CASE WHEN status = 'pending' THEN entered_at_ms END)
                 FROM callback_requests
                 WHERE status IN ('pending', 'in_progress') AND (?1 IS NULL OR queue = ?1)
                 GROUP BY queue",
            )?
            .query_map(params![filter], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Open {
                        pending: r.get(1)?,
                        in_progress: r.get(2)?,
                        oldest: r.get(3)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let rows = c
            .prepare(
                "SELECT r.id, r.call_id, r.queue, r.caller_number, r.caller_name,
                   r.entered_at_ms, r.position, r.requested_at_ms, r.status, r.attempts,
                   r.last_result, r.reason, r.done_at_ms, r.contact_id, l.name
                 FROM callback_requests r
                 LEFT JOIN outbound_contacts c ON c.id = r.contact_id
                 LEFT JOIN outbound_lists l ON l.id = c.list_id
                 WHERE (?1 IS NULL OR r.queue = ?1) AND (?2 IS NULL OR r.status = ?2)
                 ORDER BY r.queue, r.entered_at_ms, r.id",
            )?
            .query_map(params![filter, wanted], |r| {
                Ok((
                    r.get::<_, String>(2)?,
                    Request {
                        id: r.get(0)?,
                        call_id: r.get(1)?,
                        caller_number: r.get(3)?,
                        caller_name: r.get(4)?,
                        entered_at_ms: r.get(5)?,
                        position: r.get(6)?,
                        requested_at_ms: r.get(7)?,
                        status: r.get(8)?,
                        attempts: r.get(9)?,
                        last_result: r.get(10)?,
                        reason: r.get(11)?,
                        done_at_ms: r.get(12)?,
                        contact_id: r.get(13)?,
                        list: r.get(14)?,
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok((open, rows))
    })
    .await?;
    for (queue, o) in open {
        queues.entry(queue).or_default().0 = o;
    }
    for (queue, req) in rows {
        queues.entry(queue).or_default().1.push(req);
    }
    let wallboard = p.role == Role::Wallboard;
    let out = queues
        .into_iter()
        .filter(|(q, _)| only.as_ref().is_none_or(|o| o == q))
        .filter(|(q, _)| allowed.as_ref().is_none_or(|a| a.contains(q)))
        .map(|(queue, (open, requests))| QueueCallbacks {
            pending: open.pending,
            in_progress: open.in_progress,
            oldest_entered_at_ms: open.oldest,
            requests: (!wallboard).then_some(requests),
            queue,
        })
        .collect();
    Ok(Json(Callbacks { queues: out }).into_response())
}
