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
use serde::Serialize;

use super::auth::{Authed, Role};
use super::outbound::{own_agent, supervisor_only};
use super::{now_ms, parse_query, ApiError, ApiState};
use crate::outbound::{ComplaintStatus, ComplaintSummary};
use crate::outbound_metrics::{open_complaints_as_configured, summarize};
use crate::store::{CallbackReads, CallbackRequestRow, OpenCallbacks};

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
type Request = CallbackRequestRow;

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
    let mut queues: BTreeMap<String, (OpenCallbacks, Vec<Request>)> = settings
        .queues
        .keys()
        .map(|q| (q.clone(), Default::default()))
        .collect();
    let filter = only.clone();
    let (open, rows) = st
        .inner
        .store
        .read(move |r| {
            let open = r.open_callbacks(filter.as_deref())?;
            let rows = r.callback_requests(filter.as_deref(), wanted.as_deref())?;
            Ok::<_, ApiError>((open, rows))
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
