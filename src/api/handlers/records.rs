//! The call-record routes: `GET /calls` (filtered, paged by cursor), `GET /calls/{id}` (with
//! legs and events) and the recording of a call.

use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use super::super::auth::{Authed, Role};
use super::super::queries::{self, CallFilter};
use super::super::{parse_query, ApiError, ApiState};
use super::call_id;
use crate::store::CallRecords;

/// Most calls in one page.
pub const MAX_LIMIT: usize = 500;
pub const DEFAULT_LIMIT: usize = 50;

#[derive(Serialize)]
struct CallPage {
    calls: Vec<queries::CallRecord>,
    next_cursor: Option<String>,
}

fn parse_filter(q: Option<&str>) -> Result<CallFilter, ApiError> {
    let mut f = CallFilter {
        limit: DEFAULT_LIMIT,
        ..CallFilter::default()
    };
    let int = |k: &str, v: &str| {
        v.parse::<i64>()
            .map_err(|_| ApiError::invalid(format!("{k}: {v:?} is not an integer")))
    };
    for (k, v) in parse_query(q) {
        match k.as_str() {
            "from" => f.from = Some(int(&k, &v)?),
            "to" => f.to = Some(int(&k, &v)?),
            "queue" => f.queue = Some(v),
            "agent" => f.agent = Some(v),
            "outcome" => f.outcome = Some(v),
            "caller" => f.caller = Some(v),
            "limit" => {
                f.limit = match v.parse::<usize>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                    _ => {
                        return Err(ApiError::invalid(format!(
                            "limit: 1 to {MAX_LIMIT}, not {v:?}"
                        )))
                    }
                }
            }
            "cursor" => {
                f.cursor = Some(
                    queries::decode_cursor(&v)
                        .ok_or_else(|| ApiError::invalid("cursor: not one this API gave"))?,
                )
            }
            _ => return Err(ApiError::invalid(format!("unknown parameter {k:?}"))),
        }
    }
    Ok(f)
}

pub(in crate::api) async fn calls(
    State(st): State<ApiState>,
    Authed(p): Authed,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if p.role == Role::Wallboard {
        return Err(ApiError::forbidden(
            "role wallboard may not read call records",
        ));
    }
    let mut f = parse_filter(q.as_deref())?;
    if p.role == Role::Agent {
        if f.agent.is_some() && f.agent != p.agent {
            return Err(ApiError::forbidden("an agent may read only its own calls"));
        }
        f.agent = p.agent.clone();
    }
    let (calls, next_cursor) = queries::run(&st, move |r| queries::list_calls(r, &f)).await?;
    Ok(Json(CallPage { calls, next_cursor }).into_response())
}

#[derive(Serialize)]
struct CallDetail {
    call: queries::CallRecord,
    events: Vec<queries::CallEventRow>,
}

pub(in crate::api) async fn call(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if p.role == Role::Wallboard {
        return Err(ApiError::forbidden(
            "role wallboard may not read call records",
        ));
    }
    let id = call_id(&id)?;
    let found = queries::run(&st, move |r| {
        Ok(match r.call(id)? {
            Some(call) => Some((call, r.call_events(id)?)),
            None => None,
        })
    })
    .await?;
    let Some((call, events)) = found else {
        return Err(ApiError::not_found(format!("unknown call {id}")));
    };
    if p.role == Role::Agent && (call.agent.is_none() || call.agent != p.agent) {
        return Err(ApiError::forbidden("an agent may read only its own calls"));
    }
    Ok(Json(CallDetail { call, events }).into_response())
}

/// The call's recording as `audio/wav`, streamed from its file.
pub(in crate::api) async fn recording(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if p.role == Role::Wallboard {
        return Err(ApiError::forbidden(
            "role wallboard may not read call records",
        ));
    }
    let id = call_id(&id)?;
    let call = queries::run(&st, move |r| r.call(id))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("unknown call {id}")))?;
    if p.role == Role::Agent && (call.agent.is_none() || call.agent != p.agent) {
        return Err(ApiError::forbidden("an agent may read only its own calls"));
    }
    let Some(path) = call.recording_path else {
        return Err(ApiError::not_found(format!("call {id} has no recording")));
    };
    // Streamed from the file in chunks (never whole in memory), its length from the metadata.
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::not_found(format!("recording of call {id}: {e}")))?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ApiError::not_found(format!("recording of call {id}: {e}")))?
        .len();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "audio/wav".to_string()),
            (axum::http::header::CONTENT_LENGTH, len.to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"call-{id}.wav\""),
            ),
        ],
        body,
    )
        .into_response())
}
