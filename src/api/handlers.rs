//! The route handlers (see [`super::ROUTES`]).
//!
//! Order of checks on every route: 401 (token), 403 (role), 404 (what it names), 400 (a body
//! that is not JSON) or 422 (input), then the call manager's own answer (404/409/422). Every
//! POST writes one audit row with the outcome, whatever it was.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use super::auth::{Authed, Caller, Role};
use super::queries::{self, CallFilter};
use super::{now_ms, parse_query, ApiError, ApiState, CONTROL_TIMEOUT};
use crate::call::control::{AgentView, Control, ControlError, Reply};
use crate::store::{ApiOp, CallRecords};

/// Most characters of disposition notes.
pub const MAX_NOTES: usize = 4000;

/// Ask the call manager and await its answer.
async fn ask<T>(st: &ApiState, make: impl FnOnce(Reply<T>) -> Control) -> Result<T, ApiError> {
    let (tx, rx) = oneshot::channel();
    deliver(st, make(tx), rx).await
}

/// Send `cmd` (whose reply goes to `rx`'s sender) and await the answer.
async fn deliver<T>(
    st: &ApiState,
    cmd: Control,
    rx: oneshot::Receiver<Result<T, ControlError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(CONTROL_TIMEOUT, st.inner.control.send(cmd)).await {
        Ok(Ok(())) => {}
        Ok(Err(_)) => return Err(ApiError::unavailable("the call manager is not running")),
        Err(_) => return Err(ApiError::unavailable("the call manager is busy")),
    }
    match tokio::time::timeout(CONTROL_TIMEOUT, rx).await {
        Ok(Ok(r)) => r.map_err(ApiError::from),
        Ok(Err(_)) => Err(ApiError::unavailable(
            "the call manager dropped the request",
        )),
        Err(_) => Err(ApiError::unavailable(
            "the call manager did not answer in time",
        )),
    }
}

/// Run a state-changing request and write its audit row.
pub(super) async fn audited<T: Serialize>(
    st: &ApiState,
    caller: &Caller,
    action: &str,
    target: String,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Response {
    let outcome = work.await;
    let principal = caller.auth.as_ref().ok();
    let op = ApiOp::Audit {
        at_ms: now_ms(),
        token_role: principal.map(|p| p.role.as_str().to_string()),
        agent: principal.and_then(|p| p.agent.clone()),
        action: action.to_string(),
        target: Some(target),
        from_addr: caller.from.map(|a| a.to_string()),
        result: match &outcome {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code.to_string(),
        },
    };
    if st.inner.store.sender().send(op.into()).await.is_err() {
        tracing::warn!(action, "audit row not written: the store writer is gone");
    }
    match outcome {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A JSON body; an empty body is `T::default()` when `optional`.
pub(super) fn body<T: DeserializeOwned + Default>(
    bytes: &Bytes,
    optional: bool,
) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return if optional {
            Ok(T::default())
        } else {
            Err(ApiError::invalid("a JSON body is required"))
        };
    }
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            // Not JSON at all (or cut short): the request itself is malformed.
            Category::Syntax | Category::Eof | Category::Io => ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "bad_json",
                format!("the body is not valid JSON: {e}"),
            ),
            // JSON of the wrong shape (unknown field, wrong type): invalid input.
            Category::Data => ApiError::invalid(format!("body: {e}")),
        }
    })
}

fn known_agent(st: &ApiState, id: &str) -> Result<(), ApiError> {
    if st.agent_exists(id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("unknown agent {id:?}")))
    }
}

fn call_id(s: &str) -> Result<u64, ApiError> {
    s.parse()
        .map_err(|_| ApiError::not_found(format!("unknown call {s:?}")))
}

// ---- reads ----

pub(super) async fn stats(State(st): State<ApiState>, Authed(_): Authed) -> Response {
    let snapshot = st.inner.stats.borrow().clone();
    Json(snapshot).into_response()
}

pub(super) async fn queue(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path(queue): Path<String>,
) -> Result<Response, ApiError> {
    let mut v = ask(&st, |reply| Control::Queue { queue, reply }).await?;
    // A wallboard shows the queue to the floor: how many wait and how long, never who.
    if p.role == Role::Wallboard {
        for c in &mut v.waiting {
            c.caller_number = None;
            c.caller_name = None;
        }
    }
    Ok(Json(v).into_response())
}

pub(super) async fn agents(
    State(st): State<ApiState>,
    Authed(_): Authed,
) -> Result<Response, ApiError> {
    let v = ask(&st, |reply| Control::Agents { reply }).await?;
    Ok(Json(v).into_response())
}

// ---- agent actions ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    queues: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PauseBody {
    reason: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NoBody {}

/// The common path of the agent actions: auth, agent exists, then `make` builds the command.
async fn agent_action(
    st: ApiState,
    caller: Caller,
    id: String,
    action: &str,
    make: impl FnOnce(&ApiState, String, Reply<AgentView>) -> Result<Control, ApiError>,
) -> Response {
    let target = id.clone();
    audited(&st, &caller, action, target, async {
        caller.require_agent_self(&id)?;
        known_agent(&st, &id)?;
        // Built before sending: input errors (422) never reach the call manager.
        let (tx, rx) = oneshot::channel();
        let cmd = make(&st, id, tx)?;
        deliver(&st, cmd, rx).await
    })
    .await
}

pub(super) async fn login(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    agent_action(st, caller, id, "agent.login", |_, agent, reply| {
        let b: LoginBody = body(&bytes, true)?;
        if b.queues.as_ref().is_some_and(|q| q.is_empty()) {
            return Err(ApiError::invalid(
                "queues: name at least one queue, or leave it out",
            ));
        }
        Ok(Control::Login {
            agent,
            queues: b.queues,
            reply,
        })
    })
    .await
}

pub(super) async fn logout(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    agent_action(st, caller, id, "agent.logout", |_, agent, reply| {
        body::<NoBody>(&bytes, true)?;
        Ok(Control::Logout { agent, reply })
    })
    .await
}

pub(super) async fn pause(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    agent_action(st, caller, id, "agent.pause", |st, agent, reply| {
        let b: PauseBody = body(&bytes, false)?;
        let reason = b
            .reason
            .ok_or_else(|| ApiError::invalid("reason is required"))?;
        if !st.inner.pause_reasons.contains(&reason) {
            return Err(ApiError::invalid(format!(
                "unknown pause reason {reason:?} (one of {})",
                st.inner.pause_reasons.join(", ")
            )));
        }
        Ok(Control::Pause {
            agent,
            reason,
            reply,
        })
    })
    .await
}

pub(super) async fn unpause(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    agent_action(st, caller, id, "agent.unpause", |_, agent, reply| {
        body::<NoBody>(&bytes, true)?;
        Ok(Control::Unpause { agent, reply })
    })
    .await
}

pub(super) async fn end_wrapup(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    agent_action(st, caller, id, "agent.wrapup_end", |_, agent, reply| {
        body::<NoBody>(&bytes, true)?;
        Ok(Control::EndWrapup { agent, reply })
    })
    .await
}

// ---- preview dialing ----

/// The contact shown to an agent in preview mode (`preview: null` when there is none).
#[derive(Serialize)]
struct PreviewReply {
    agent: String,
    preview: Option<crate::call::control::PreviewView>,
}

pub(super) async fn preview(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_agent_self(&id)?;
    known_agent(&st, &id)?;
    let agent = id.clone();
    let preview = ask(&st, |reply| Control::Preview { agent, reply }).await?;
    Ok(Json(PreviewReply { agent: id, preview }).into_response())
}

#[derive(Serialize)]
struct AcceptedReply {
    agent: String,
    /// The outbound call: ctid rings the agent, then dials the customer.
    call: u64,
}

/// Accept or skip: the agent itself or a supervisor, no body, audited.
async fn preview_decision<T: Serialize>(
    st: ApiState,
    caller: Caller,
    id: String,
    bytes: Bytes,
    action: &str,
    decide: impl Future<Output = Result<T, ApiError>>,
) -> Response {
    let target = id.clone();
    audited(&st, &caller, action, target, async {
        caller.require_agent_self(&id)?;
        known_agent(&st, &id)?;
        body::<NoBody>(&bytes, true)?;
        decide.await
    })
    .await
}

pub(super) async fn preview_accept(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let (s, agent) = (st.clone(), id.clone());
    let decide = async move {
        let a = agent.clone();
        let call = ask(&s, |reply| Control::PreviewAccept { agent: a, reply }).await?;
        Ok(AcceptedReply { agent, call })
    };
    preview_decision(st, caller, id, bytes, "agent.preview_accept", decide).await
}

pub(super) async fn preview_skip(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let (s, agent) = (st.clone(), id.clone());
    let decide = async move {
        ask(&s, |reply| Control::PreviewSkip { agent, reply }).await?;
        Ok(Empty {})
    };
    preview_decision(st, caller, id, bytes, "agent.preview_skip", decide).await
}

// ---- call actions ----

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct DispositionBody {
    code: Option<String>,
    notes: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MoveBody {
    to_front: Option<bool>,
    queue: Option<String>,
}

#[derive(Serialize)]
struct Empty {}

pub(super) async fn disposition(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    audited(&st, &caller, "call.disposition", id.clone(), async {
        let p = caller.require(&[Role::Agent, Role::Supervisor])?.clone();
        let call = call_id(&id)?;
        let record = queries::run(&st, move |r| r.call(call))
            .await?
            .ok_or_else(|| ApiError::not_found(format!("unknown call {call}")))?;
        if p.role == Role::Agent
            && record
                .agent
                .as_ref()
                .is_none_or(|a| Some(a) != p.agent.as_ref())
        {
            return Err(ApiError::forbidden(
                "an agent may disposition only its own calls",
            ));
        }
        let b: DispositionBody = body(&bytes, false)?;
        let code = b
            .code
            .ok_or_else(|| ApiError::invalid("code is required"))?;
        if !st.inner.dispositions.contains(&code) {
            return Err(ApiError::invalid(format!(
                "unknown disposition {code:?} (one of {})",
                st.inner.dispositions.join(", ")
            )));
        }
        if b.notes
            .as_ref()
            .is_some_and(|n| n.chars().count() > MAX_NOTES)
        {
            return Err(ApiError::invalid(format!(
                "notes: at most {MAX_NOTES} characters"
            )));
        }
        let complaint = code == "complaint";
        st.inner
            .store
            .sender()
            .send(
                ApiOp::Disposition {
                    call,
                    code,
                    notes: b.notes,
                }
                .into(),
            )
            .await
            .map_err(|_| ApiError::unavailable("the store is not running"))?;
        if complaint {
            complaint_follow_up(&st, &record).await?;
        }
        Ok(Empty {})
    })
    .await
}

pub(super) async fn move_call(
    State(st): State<ApiState>,
    caller: Caller,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    audited(&st, &caller, "call.move", id.clone(), async {
        caller.require(&[Role::Supervisor])?;
        let call = call_id(&id)?;
        let b: MoveBody = body(&bytes, false)?;
        let to_queue = match (b.to_front, b.queue) {
            (Some(true), None) => None,
            (None | Some(false), Some(q)) if !q.is_empty() => Some(q),
            _ => {
                return Err(ApiError::invalid(
                    "give either {\"to_front\": true} or {\"queue\": \"name\"}",
                ))
            }
        };
        ask(&st, |reply| Control::MoveCall {
            call,
            to_queue,
            reply,
        })
        .await?;
        Ok(Empty {})
    })
    .await
}

// ---- call records ----

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

pub(super) async fn calls(
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

pub(super) async fn call(
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
pub(super) async fn recording(
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

/// A call dispositioned `complaint`: the customer gets a follow-up contact on the complaint list,
/// due `complaint_reply_hours` (12 h) later (the list is created on first use). A second
/// `complaint` disposition of the same call adds nothing.
async fn complaint_follow_up(
    st: &ApiState,
    record: &super::queries::CallRecord,
) -> Result<(), ApiError> {
    let Some(settings) = st.inner.outbound.get().cloned() else {
        return Ok(());
    };
    let Some(number) = record.caller_number.clone().filter(|n| !n.is_empty()) else {
        tracing::warn!(
            call = record.id,
            "complaint without a caller number: no follow-up"
        );
        return Ok(());
    };
    let (call, name, queue) = (record.id, record.caller_name.clone(), record.queue.clone());
    let tz = settings.time_zone.clone().unwrap_or_else(|| "UTC".into());
    super::outbound::db_write(st, move |conn| {
        let cs = settings.cfg.complaint_settings(&tz, queue.as_deref());
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        crate::outbound::complaint_follow_up(conn, &cs, call, &number, name.as_deref(), now)
            .map(|f| tracing::info!(call, follow_up = ?f, "complaint follow-up scheduled"))
            .map_err(|e| ApiError::invalid(format!("complaint follow-up: {e}")))
    })
    .await
}
