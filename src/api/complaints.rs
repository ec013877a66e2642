//! `GET /api/v1/complaints/summary`, `GET /api/v1/complaints` (open complaint follow-ups and
//! their deadlines: a reply within `[outbound] complaint_reply_hours`, resolution within
//! `complaint_resolve_hours`) and `GET /api/v1/callbacks` (pending queue callback requests,
//! per queue, in the order the callers joined the queue).
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
use super::outbound::{db, own_agent, supervisor_only};
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
    let all = db(st, move |c| {
        Ok(open_complaints_as_configured(c, &cfg, now_ms())?)
    })
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

/// One pending callback request (`callback_requests`).
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
}

#[derive(Debug, Serialize)]
struct QueueCallbacks {
    queue: String,
    pending: usize,
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
    for (k, v) in parse_query(q.as_deref()) {
        match k.as_str() {
            "queue" if only.is_none() && !v.is_empty() => only = Some(v),
            "queue" => {
                return Err(ApiError::bad_parameter(
                    "queue",
                    "queue: give one queue name, once",
                ))
            }
            _ => {
                return Err(ApiError::bad_parameter(
                    &k,
                    format!("unknown parameter {k:?} (known: queue)"),
                ))
            }
        }
    }
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
    let mut queues: BTreeMap<String, Vec<Request>> = settings
        .queues
        .keys()
        .map(|q| (q.clone(), Vec::new()))
        .collect();
    let filter = only.clone();
    let rows = db(&st, move |c| {
        let rows = c
            .prepare(
                "SELECT id, call_id, queue, caller_number, caller_name, entered_at_ms, position,
                   requested_at_ms
                 FROM callback_requests WHERE status = 'pending' AND (?1 IS NULL OR queue = ?1)
                 ORDER BY queue, entered_at_ms, id",
            )?
            .query_map(params![filter], |r| {
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
                    },
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    })
    .await?;
    for (queue, req) in rows {
        queues.entry(queue).or_default().push(req);
    }
    let wallboard = p.role == Role::Wallboard;
    let out = queues
        .into_iter()
        .filter(|(q, _)| only.as_ref().is_none_or(|o| o == q))
        .filter(|(q, _)| allowed.as_ref().is_none_or(|a| a.contains(q)))
        .map(|(queue, requests)| QueueCallbacks {
            pending: requests.len(),
            oldest_entered_at_ms: requests.first().map(|r| r.entered_at_ms),
            requests: (!wallboard).then_some(requests),
            queue,
        })
        .collect();
    Ok(Json(Callbacks { queues: out }).into_response())
}
