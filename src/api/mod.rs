//! The HTTP API under `/api/v1` (contract: `docs/api.md`), served on the admin listener.
//!
//! Owns: bearer-token auth and roles ([`auth`]), the routes ([`handlers`], listed once in
//! [`ROUTES`], from which both the router and the OpenAPI document are built), the event stream
//! with its replay buffer ([`events`]), the call records read from the store's pooled readers ([`queries`]), the
//! period reports ([`reports`], built by `crate::report` off the executor), and the callback
//! lists around the dialer ([`lists`], [`dnc`], [`complaints`], sharing [`outbound`]; the work
//! is `crate::outbound`'s, run off the executor: reads on a pooled reader, writes on the store
//! writer's connection).
//!
//! Must not know: call state. Commands go to the call manager as [`Control`] messages and their
//! replies come back on oneshots; writes (audit rows, dispositions) go through the store writer.
//!
//! The client address written to the audit table comes from axum's `ConnectInfo<SocketAddr>`:
//! serve with `into_make_service_with_connect_info::<SocketAddr>()` to have it.

mod auth;
mod complaints;
mod dnc;
pub mod events;
mod handlers;
mod lists;
mod openapi;
mod outbound;
mod queries;
mod reports;

#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, delete, get, post, MethodRouter};
use axum::Router;
use tokio::sync::{mpsc, watch};

use crate::call::control::{CallEvent, Control, ControlError};
use crate::stats::Snapshot;
use crate::store::Store;

pub use auth::{Principal, Role, SessionPrincipal};

/// How long the API waits for the call manager to answer a [`Control`].
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(5);

/// Events kept for clients that reconnect with `Last-Event-ID`.
pub const REPLAY_BUFFER: usize = 10_000;

/// Everything the API serves: method, path (axum syntax), who may call it, summary.
/// The router and the OpenAPI document are both built from this table.
pub const ROUTES: &[Route] = &[
    Route::new("GET", "/api/v1/stats", "any", "Live figures per queue"),
    Route::new(
        "GET",
        "/api/v1/queues/{queue}",
        "any",
        "A queue's waiting callers",
    ),
    Route::new(
        "GET",
        "/api/v1/agents",
        "any",
        "All agents and their states",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/login",
        "agent(self), supervisor",
        "Log an agent in",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/logout",
        "agent(self), supervisor",
        "Log an agent out",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/pause",
        "agent(self), supervisor",
        "Pause an agent",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/unpause",
        "agent(self), supervisor",
        "Unpause an agent",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/wrapup/end",
        "agent(self), supervisor",
        "End an agent's wrap-up",
    ),
    Route::new(
        "GET",
        "/api/v1/agents/{id}/preview",
        "agent(self), supervisor",
        "The contact shown to an agent in preview mode",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/preview/accept",
        "agent(self), supervisor",
        "Accept the preview: ring the agent, then dial the customer",
    ),
    Route::new(
        "POST",
        "/api/v1/agents/{id}/preview/skip",
        "agent(self), supervisor",
        "Skip the preview: the contact returns later",
    ),
    Route::new(
        "POST",
        "/api/v1/calls/{id}/disposition",
        "agent(own call), supervisor",
        "Set a call's disposition",
    ),
    Route::new(
        "POST",
        "/api/v1/calls/{id}/move",
        "supervisor",
        "Move a waiting caller",
    ),
    Route::new(
        "GET",
        "/api/v1/calls",
        "agent(own), supervisor",
        "Call records, newest first",
    ),
    Route::new(
        "GET",
        "/api/v1/calls/{id}",
        "agent(own), supervisor",
        "One call and its timeline",
    ),
    Route::new(
        "GET",
        "/api/v1/calls/{id}/recording",
        "agent(own), supervisor",
        "Download a call's recording (stereo WAV: caller left, agent right)",
    ),
    Route::new(
        "GET",
        "/api/v1/reports/queues",
        "supervisor, wallboard",
        "Queue report for a day, week, half month, month or quarter",
    ),
    Route::new(
        "GET",
        "/api/v1/reports/agents",
        "agent(self), supervisor, wallboard",
        "Agent report for a day, week, half month, month or quarter",
    ),
    Route::new(
        "GET",
        "/api/v1/reports/lists",
        "supervisor, wallboard",
        "Callback list report for a day, week, half month, month or quarter",
    ),
    Route::new(
        "GET",
        "/api/v1/lists",
        "agent(lists it works), supervisor, wallboard",
        "Callback lists with their counters",
    ),
    Route::new(
        "POST",
        "/api/v1/lists",
        "supervisor",
        "Create a callback list",
    ),
    Route::new(
        "GET",
        "/api/v1/lists/{list}",
        "agent(lists it works), supervisor, wallboard",
        "One callback list with its counters",
    ),
    Route::new(
        "POST",
        "/api/v1/lists/{list}/pause",
        "supervisor",
        "Pause a callback list",
    ),
    Route::new(
        "POST",
        "/api/v1/lists/{list}/resume",
        "supervisor",
        "Resume a paused callback list",
    ),
    Route::new(
        "POST",
        "/api/v1/lists/{list}/stop",
        "supervisor",
        "Stop a callback list for good",
    ),
    Route::new(
        "POST",
        "/api/v1/lists/{list}/contacts",
        "supervisor",
        "Import contacts (CSV or JSON); bad rows reported by row number",
    ),
    Route::new(
        "GET",
        "/api/v1/lists/{list}/contacts",
        "agent(contacts it was offered), supervisor",
        "Contacts of a list, by import order",
    ),
    Route::new(
        "GET",
        "/api/v1/lists/{list}/contacts/{id}",
        "agent(contacts it was offered), supervisor",
        "One contact and its attempts",
    ),
    Route::new(
        "POST",
        "/api/v1/dnc",
        "supervisor",
        "Put a number on the do-not-call list",
    ),
    Route::new(
        "POST",
        "/api/v1/dnc/import",
        "supervisor",
        "Import do-not-call numbers (CSV or JSON)",
    ),
    Route::new(
        "GET",
        "/api/v1/dnc/{number}",
        "agent, supervisor",
        "Is a number on the do-not-call list?",
    ),
    Route::new(
        "DELETE",
        "/api/v1/dnc/{number}",
        "supervisor",
        "Take a number off the do-not-call list",
    ),
    Route::new(
        "GET",
        "/api/v1/complaints/summary",
        "any",
        "Open complaints, past reply and past resolution time",
    ),
    Route::new(
        "GET",
        "/api/v1/complaints",
        "supervisor",
        "Open complaints and their deadlines",
    ),
    Route::new(
        "GET",
        "/api/v1/callbacks",
        "agent(its queues), supervisor, wallboard(counts)",
        "Queue callback requests (pending, or by status), in the order callers joined",
    ),
    Route::new(
        "GET",
        "/api/v1/events",
        "any",
        "Live events (text/event-stream)",
    ),
    Route::new(
        "GET",
        "/api/v1/openapi.json",
        "none",
        "This API as OpenAPI 3.0",
    ),
];

/// One row of [`ROUTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub roles: &'static str,
    pub summary: &'static str,
}

impl Route {
    const fn new(
        method: &'static str,
        path: &'static str,
        roles: &'static str,
        summary: &'static str,
    ) -> Route {
        Route {
            method,
            path,
            roles,
            summary,
        }
    }
}

/// Shared by every request; cheap to clone.
#[derive(Clone)]
pub struct ApiState {
    inner: Arc<Inner>,
}

struct Inner {
    tokens: auth::Tokens,
    pause_reasons: Vec<String>,
    dispositions: Vec<String>,
    /// (id, name) of every configured agent.
    agents: Vec<(String, String)>,
    control: mpsc::Sender<Control>,
    /// The writer's queue and the pooled readers.
    store: Store,
    stats: watch::Receiver<Snapshot>,
    hub: events::Hub,
    /// Time zone, queue goals and agents for the reports; unset = the report routes answer 503.
    reports: std::sync::OnceLock<crate::report::Settings>,
    /// Reports running at once (each a scan of a period's calls on a blocking thread).
    report_permits: Arc<tokio::sync::Semaphore>,
    /// `[outbound]`, queues and agents for the callback-list routes (see `with_outbound`).
    outbound: std::sync::OnceLock<outbound::Settings>,
}

/// Reports built at the same time: half the CPU cores, at least one, so call handling always
/// keeps a core; more wait their turn (at most [`REPORT_WAIT`]).
pub fn max_concurrent_reports() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}
/// How long a report request waits for a free slot before answering 503.
pub const REPORT_WAIT: Duration = Duration::from_secs(30);

impl ApiState {
    pub fn new(
        cfg: &crate::config::Api,
        agents: Vec<(String, String)>,
        control: mpsc::Sender<Control>,
        store: Store,
        stats: watch::Receiver<Snapshot>,
    ) -> ApiState {
        ApiState {
            inner: Arc::new(Inner {
                tokens: auth::Tokens::new(&cfg.tokens),
                pause_reasons: cfg.pause_reasons.clone(),
                dispositions: cfg.dispositions.clone(),
                agents,
                control,
                store,
                stats,
                hub: events::Hub::new(REPLAY_BUFFER),
                reports: std::sync::OnceLock::new(),
                report_permits: Arc::new(tokio::sync::Semaphore::new(max_concurrent_reports())),
                outbound: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Serve the report routes with the time zone, queue goals and agents of `cfg` (without
    /// this they answer 503). Set once; later calls change nothing.
    ///
    /// Also gives the callback-list routes their settings ([`ApiState::with_outbound`]), so a
    /// daemon that calls only this one serves them configured.
    pub fn with_reports(self, cfg: &crate::config::Config) -> ApiState {
        match crate::report::Settings::from_config(cfg) {
            Ok(settings) => {
                let _ = self.inner.reports.set(settings);
            }
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "API reports disabled"),
        }
        self.with_outbound(cfg)
    }

    /// Publish a call-layer event to SSE clients: assigns the next sequence number and keeps
    /// the event in the bounded replay buffer. Never blocks on clients (a short mutex only).
    /// (Agent sessions are written by the call layer, which owns agent state.)
    pub fn publish(&self, ev: CallEvent) {
        self.inner.hub.publish(ev);
    }

    fn agent_exists(&self, id: &str) -> bool {
        self.inner.agents.iter().any(|(a, _)| a == id)
    }
}

/// The `/api/v1` routes, to merge into the admin Router. Sets no fallback of its own (admin's
/// stays), but unknown paths under `/api/v1/` get a JSON 404 and a known path with the wrong
/// method a JSON 405.
pub fn router(state: ApiState) -> Router {
    let mut r: Router<ApiState> = Router::new();
    for route in ROUTES {
        r = r.route(route.path, handler_for(route));
    }
    r.route(
        "/api/v1/{*rest}",
        any(|| async { ApiError::not_found("no such API route") }),
    )
    .method_not_allowed_fallback(|| async {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this path",
        )
    })
    .with_state(state)
}

/// Largest import body (contacts or do-not-call numbers): about a million CSV rows.
pub const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

/// The handler of one [`ROUTES`] entry (panics on an entry without one: caught by the tests).
fn handler_for(route: &Route) -> MethodRouter<ApiState> {
    use handlers as h;
    match (route.method, route.path) {
        ("GET", "/api/v1/stats") => get(h::stats),
        ("GET", "/api/v1/queues/{queue}") => get(h::queue),
        ("GET", "/api/v1/agents") => get(h::agents),
        ("POST", "/api/v1/agents/{id}/login") => post(h::login),
        ("POST", "/api/v1/agents/{id}/logout") => post(h::logout),
        ("POST", "/api/v1/agents/{id}/pause") => post(h::pause),
        ("POST", "/api/v1/agents/{id}/unpause") => post(h::unpause),
        ("POST", "/api/v1/agents/{id}/wrapup/end") => post(h::end_wrapup),
        ("GET", "/api/v1/agents/{id}/preview") => get(h::preview),
        ("POST", "/api/v1/agents/{id}/preview/accept") => post(h::preview_accept),
        ("POST", "/api/v1/agents/{id}/preview/skip") => post(h::preview_skip),
        ("POST", "/api/v1/calls/{id}/disposition") => post(h::disposition),
        ("POST", "/api/v1/calls/{id}/move") => post(h::move_call),
        ("GET", "/api/v1/calls") => get(h::calls),
        ("GET", "/api/v1/calls/{id}") => get(h::call),
        ("GET", "/api/v1/calls/{id}/recording") => get(h::recording),
        ("GET", "/api/v1/reports/queues") => get(reports::queues),
        ("GET", "/api/v1/reports/agents") => get(reports::agents),
        ("GET", "/api/v1/reports/lists") => get(reports::lists),
        ("GET", "/api/v1/lists") => get(lists::index),
        ("POST", "/api/v1/lists") => post(lists::create),
        ("GET", "/api/v1/lists/{list}") => get(lists::show),
        ("POST", "/api/v1/lists/{list}/pause") => post(lists::pause),
        ("POST", "/api/v1/lists/{list}/resume") => post(lists::resume),
        ("POST", "/api/v1/lists/{list}/stop") => post(lists::stop),
        ("POST", "/api/v1/lists/{list}/contacts") => {
            post(lists::import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
        }
        ("GET", "/api/v1/lists/{list}/contacts") => get(lists::contacts),
        ("GET", "/api/v1/lists/{list}/contacts/{id}") => get(lists::contact),
        ("POST", "/api/v1/dnc") => post(dnc::add),
        ("POST", "/api/v1/dnc/import") => {
            post(dnc::import).layer(DefaultBodyLimit::max(MAX_IMPORT_BYTES))
        }
        ("GET", "/api/v1/dnc/{number}") => get(dnc::check),
        ("DELETE", "/api/v1/dnc/{number}") => delete(dnc::remove),
        ("GET", "/api/v1/complaints/summary") => get(complaints::summary),
        ("GET", "/api/v1/complaints") => get(complaints::list),
        ("GET", "/api/v1/callbacks") => get(complaints::callbacks),
        ("GET", "/api/v1/events") => get(events::stream),
        ("GET", "/api/v1/openapi.json") => get(openapi::serve),
        (m, p) => panic!("no handler for {m} {p}"),
    }
}

/// An error answer: `{"error": {"code", "message"}}`, plus `"parameter"` naming the query
/// parameter at fault for a `bad_parameter`, `"field"` naming the body field at fault for a
/// `bad_input`, and `"errors"` listing every problem when there are several (each bad row of an
/// import as `row N: reason`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub parameter: Option<String>,
    pub field: Option<String>,
    pub errors: Vec<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            parameter: None,
            field: None,
            errors: Vec::new(),
        }
    }
    /// 400 `bad_input`: the body (or a path segment) is wrong; `field` names what, when known.
    pub fn bad_input(field: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: field.map(str::to_string),
            ..ApiError::new(StatusCode::BAD_REQUEST, "bad_input", message)
        }
    }
    /// The same error listing every problem.
    pub fn with_errors(mut self, errors: Vec<String>) -> ApiError {
        self.errors = errors;
        self
    }
    /// 400 `bad_parameter`: the query parameter `name` is unknown, repeated or invalid.
    pub fn bad_parameter(name: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            parameter: Some(name.to_string()),
            ..ApiError::new(StatusCode::BAD_REQUEST, "bad_parameter", message)
        }
    }
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }
}

impl From<ControlError> for ApiError {
    fn from(e: ControlError) -> ApiError {
        match e {
            ControlError::NotFound(m) => ApiError::not_found(format!("unknown {m}")),
            ControlError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ControlError::Invalid(m) => ApiError::invalid(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        if let Some(p) = self.parameter {
            body["error"]["parameter"] = p.into();
        }
        if let Some(f) = self.field {
            body["error"]["field"] = f.into();
        }
        if !self.errors.is_empty() {
            body["error"]["errors"] = self.errors.into();
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `a=1&b=x%20y` → pairs, percent- and `+`-decoded. Invalid UTF-8 is replaced.
pub(crate) fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    let Some(q) = q else { return vec![] };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    fn hex(c: u8) -> Option<u8> {
        (c as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
