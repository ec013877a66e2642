//! The browser pages: the agent desktop `/agent` and the supervisor's board `/board` (contract:
//! `docs/web.md`), served on the admin listener next to the API.
//!
//! Owns: the pages and their assets (plain HTML, CSS and JavaScript modules under
//! `src/web/assets/`, embedded with `include_str!`: no front-end toolchain, no vendored library
//! — the pages need a few `fetch` calls, an `EventSource` and `Intl` date formatting, all in the
//! browser), sign-in and sessions ([`session`]), CSRF checks, the security headers, and the
//! session-authenticated path `/web/api/v1/...` the pages use. That path hands the request to
//! the very API router behind `/api/v1` with the session's principal attached
//! ([`crate::api::SessionPrincipal`]), so roles, validation, audit rows and answers are the
//! API's own; the web layer only adds the CSRF check and keeps the `wallboard` role to figures
//! without customer data. [`live`] keeps what the screen pop needs about a ringing call.
//!
//! Must not know: call state, SQL, the API's handlers (it sees them only as a `Router`).

pub mod live;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use crate::api::{ApiState, Principal, Role, SessionPrincipal};
use crate::config::Config;
pub use live::Live;
use session::{AgentLogin, Credentials, Session, Sessions, SignInError};

/// The session cookie.
pub const COOKIE: &str = "ctid_session";
/// The header carrying the session's CSRF token on every state change.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// No inline script or style, nothing from elsewhere, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest sign-in body.
const MAX_LOGIN_BYTES: usize = 4096;
/// Largest answer the wallboard filter reads to redact.
const MAX_FILTERED_BYTES: usize = 8 * 1024 * 1024;

const AGENT_HTML: &str = include_str!("assets/agent.html");
const BOARD_HTML: &str = include_str!("assets/board.html");
/// (file name, content type, content)
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("assets/style.css"),
    ),
    (
        "common.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/common.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/i18n.js"),
    ),
    (
        "agent.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/agent.js"),
    ),
    (
        "board.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/board.js"),
    ),
];

/// What the pages are told about the center (`GET /web/session`).
#[derive(Debug, Clone, Serialize)]
struct Center {
    time_zone: String,
    pause_reasons: Vec<String>,
    dispositions: Vec<String>,
    queues: Vec<QueueInfo>,
    agents: Vec<AgentInfo>,
    preview_timeout_secs: u64,
}

#[derive(Debug, Clone, Serialize)]
struct QueueInfo {
    name: String,
    sl_target_secs: u64,
    sl_goal_percent: u8,
    answer_rate_target_percent: u8,
    members: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct AgentInfo {
    id: String,
    name: String,
}

#[derive(Clone)]
struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    api_state: ApiState,
    api: Router,
    sessions: Sessions,
    live: Arc<Live>,
    center: Center,
}

/// The page routes, to merge into the admin Router. `api` is the `/api/v1` router the pages'
/// requests are handed to; `live` must be fed every published event ([`Live::observe`]).
pub fn router(cfg: &Config, api_state: ApiState, api: Router, live: Arc<Live>) -> Router {
    let center = Center {
        time_zone: cfg.reports.time_zone.clone(),
        pause_reasons: cfg.api.pause_reasons.clone(),
        dispositions: cfg.api.dispositions.clone(),
        queues: cfg
            .queues
            .iter()
            .map(|q| QueueInfo {
                name: q.name.clone(),
                sl_target_secs: q.sl_target_secs,
                sl_goal_percent: q.sl_goal_percent,
                answer_rate_target_percent: q.answer_rate_target_percent,
                members: q.members.iter().map(|m| m.agent.clone()).collect(),
            })
            .collect(),
        agents: cfg
            .agents
            .iter()
            .map(|a| AgentInfo {
                id: a.id.clone(),
                name: a.name.clone(),
            })
            .collect(),
        preview_timeout_secs: cfg.outbound.preview_timeout_secs,
    };
    let logins = cfg
        .agents
        .iter()
        .map(|a| AgentLogin {
            id: a.id.clone(),
            username: a.username.clone(),
            password: a.password.clone(),
        })
        .collect();
    let web = Web {
        inner: Arc::new(Inner {
            api_state,
            api,
            sessions: Sessions::new(logins),
            live,
            center,
        }),
    };
    Router::new()
        .route(
            "/agent",
            get(|h: HeaderMap| async move { page(AGENT_HTML, &h) }),
        )
        .route(
            "/board",
            get(|h: HeaderMap| async move { page(BOARD_HTML, &h) }),
        )
        .route("/web/assets/{name}", get(asset))
        .route("/web/session", get(session_info))
        .route("/web/login", post(login))
        .route("/web/logout", post(logout))
        .route("/web/api/live/calls/{id}", get(live_call))
        .route("/web/api/v1/{*rest}", any(proxy))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(web)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// `zh-CN` when the browser's first language that we have is Chinese, else `en`.
pub fn language(accept_language: Option<&str>) -> &'static str {
    let Some(v) = accept_language else {
        return "en";
    };
    let mut best: Option<(f32, &'static str)> = None;
    for item in v.split(',') {
        let mut parts = item.split(';');
        let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .find_map(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
            })
            .unwrap_or(1.0);
        let lang = if tag.starts_with("zh") {
            "zh-CN"
        } else if tag.starts_with("en") {
            "en"
        } else {
            continue;
        };
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map_or("en", |(_, l)| l)
}

fn page(html: &str, h: &HeaderMap) -> Response {
    let accept = h.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let body = html.replace("{{lang}}", language(accept));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, ct, body)) => (
            [
                (header::CONTENT_TYPE, *ct),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    (status, Json(body)).into_response()
}

/// A refusal before the API is reached: status, error code, message (the API's error shape).
struct Refusal(StatusCode, &'static str, &'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

/// The session id from the `Cookie` header(s).
pub fn session_cookie(h: &HeaderMap) -> Option<&str> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|v| !v.is_empty())
}

impl Web {
    fn session(&self, h: &HeaderMap) -> Result<(String, Session), Refusal> {
        let id = session_cookie(h).ok_or(Refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "not signed in",
        ))?;
        let s = self.inner.sessions.get(id, now_ms()).ok_or(Refusal(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "the session has ended: sign in again",
        ))?;
        Ok((id.to_string(), s))
    }
}

/// 403 unless the request carries the session's CSRF token.
fn check_csrf(h: &HeaderMap, s: &Session) -> Result<(), Refusal> {
    let given = h
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if session::same(given, &s.csrf) {
        Ok(())
    } else {
        Err(Refusal(
            StatusCode::FORBIDDEN,
            "csrf",
            "missing or wrong X-CSRF-Token: reload the page",
        ))
    }
}

#[derive(Serialize)]
struct SessionView<'a> {
    role: &'static str,
    agent: Option<&'a str>,
    agent_name: Option<&'a str>,
    csrf: &'a str,
    server_now_ms: u64,
    expires_at_ms: u64,
    center: &'a Center,
}

fn session_view(web: &Web, s: &Session) -> Response {
    let p = &s.principal;
    let agent_name = p.agent.as_deref().and_then(|id| {
        web.inner
            .center
            .agents
            .iter()
            .find(|a| a.id == id)
            .map(|a| a.name.as_str())
    });
    Json(SessionView {
        role: p.role.as_str(),
        agent: p.agent.as_deref(),
        agent_name,
        csrf: &s.csrf,
        server_now_ms: now_ms(),
        expires_at_ms: s.created_ms + session::ABSOLUTE_MS,
        center: &web.inner.center,
    })
    .into_response()
}

async fn session_info(State(web): State<Web>, h: HeaderMap) -> Response {
    match web.session(&h) {
        Ok((_, s)) => session_view(&web, &s),
        Err(r) => r.into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    token: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

async fn login(State(web): State<Web>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let h = &parts.headers;
    let from = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "sign in with a JSON body",
        );
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_LOGIN_BYTES).await else {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "sign-in body too large",
        );
    };
    let creds = match serde_json::from_slice::<LoginBody>(&body) {
        Ok(LoginBody {
            token: Some(t),
            username: None,
            password: None,
        }) => Credentials::Token(t),
        Ok(LoginBody {
            token: None,
            username: Some(username),
            password: Some(password),
        }) => Credentials::Password { username, password },
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_input",
                "give {\"token\"} or {\"username\", \"password\"}",
            )
        }
    };
    let api = web.inner.api_state.clone();
    let r = web
        .inner
        .sessions
        .sign_in(&creds, from, now_ms(), |t| api.principal_for_token(t));
    match r {
        Ok((id, s)) => {
            tracing::info!(role = s.principal.role.as_str(), agent = ?s.principal.agent, from = ?from, "web sign-in");
            let cookie = format!(
                "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
                session::ABSOLUTE_MS / 1000
            );
            let mut r = session_view(&web, &s);
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(SignInError::Bad) => {
            tracing::info!(from = ?from, "web sign-in refused");
            error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "wrong credentials",
            )
        }
        Err(SignInError::Throttled) => error(
            StatusCode::TOO_MANY_REQUESTS,
            "throttled",
            "too many failed sign-ins: wait a few minutes",
        ),
    }
}

async fn logout(State(web): State<Web>, h: HeaderMap) -> Response {
    let (id, s) = match web.session(&h) {
        Ok(v) => v,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = check_csrf(&h, &s) {
        return r.into_response();
    }
    web.inner.sessions.end(&id);
    let clear = format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
    let mut r = Json(serde_json::json!({})).into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn live_call(State(web): State<Web>, h: HeaderMap, Path(id): Path<String>) -> Response {
    let s = match web.session(&h) {
        Ok((_, s)) => s,
        Err(r) => return r.into_response(),
    };
    if s.principal.role == Role::Wallboard {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "role wallboard sees no customer data",
        );
    }
    let not_found = || error(StatusCode::NOT_FOUND, "not_found", "no such live call");
    let Ok(id) = id.parse::<u64>() else {
        return not_found();
    };
    let Some(c) = web.inner.live.get(id) else {
        return not_found();
    };
    match s.principal.role {
        Role::Supervisor => Json(c).into_response(),
        Role::Agent if c.agent.is_some() && c.agent == s.principal.agent => Json(c).into_response(),
        Role::Agent | Role::Wallboard => not_found(),
    }
}

/// What a wallboard session may read through the pages: figures, no customer data.
fn wallboard_may(method: &Method, rest: &str) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    read && (matches!(
        rest,
        "stats" | "agents" | "complaints/summary" | "reports/queues" | "callbacks" | "lists"
    ) || rest
        .strip_prefix("queues/")
        .is_some_and(|q| !q.is_empty() && !q.contains('/')))
}

/// Blanks the caller's number and name of every waiting caller in a queue view.
fn redact_queue(v: &mut serde_json::Value) {
    if let Some(w) = v.get_mut("waiting").and_then(|w| w.as_array_mut()) {
        for c in w {
            if let Some(o) = c.as_object_mut() {
                o.insert("caller_number".into(), serde_json::Value::Null);
                o.insert("caller_name".into(), serde_json::Value::Null);
            }
        }
    }
}

/// `/web/api/v1/{rest}` → the API's `/api/v1/{rest}`, as the session's principal.
async fn proxy(State(web): State<Web>, Path(rest): Path<String>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let s = match web.session(&parts.headers) {
        Ok((_, s)) => s,
        Err(r) => return r.into_response(),
    };
    let reads = parts.method == Method::GET || parts.method == Method::HEAD;
    if !reads {
        if let Err(r) = check_csrf(&parts.headers, &s) {
            return r.into_response();
        }
    }
    let wallboard = s.principal.role == Role::Wallboard;
    if wallboard && !wallboard_may(&parts.method, &rest) {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "role wallboard sees figures only through the pages",
        );
    }
    let target = match parts.uri.query() {
        Some(q) => format!("/api/v1/{rest}?{q}"),
        None => format!("/api/v1/{rest}"),
    };
    let Ok(uri) = target.parse::<Uri>() else {
        return error(StatusCode::BAD_REQUEST, "bad_input", "bad path");
    };
    // A fresh request: the outer router's extensions (its path parameters above all) must not
    // reach the API's extractors; only the client address and the session's principal do.
    let mut inner = Request::new(body);
    *inner.method_mut() = parts.method.clone();
    *inner.uri_mut() = uri;
    *inner.version_mut() = parts.version;
    *inner.headers_mut() = std::mem::take(&mut parts.headers);
    let h = inner.headers_mut();
    h.remove(header::AUTHORIZATION);
    h.remove(header::COOKIE);
    h.remove(CSRF_HEADER);
    if let Some(c) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        inner.extensions_mut().insert(*c);
    }
    let principal: Principal = s.principal.clone();
    inner.extensions_mut().insert(SessionPrincipal(principal));
    let req = inner;
    let resp = match web.inner.api.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    if wallboard && rest.starts_with("queues/") && resp.status() == StatusCode::OK {
        let (parts, body) = resp.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_FILTERED_BYTES).await else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "answer too large",
            );
        };
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "answer not JSON",
            );
        };
        redact_queue(&mut v);
        let mut r = Json(v).into_response();
        *r.status_mut() = parts.status;
        return r;
    }
    let mut resp = resp.map(Body::new);
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_follows_accept_language() {
        assert_eq!(language(None), "en");
        assert_eq!(language(Some("zh-CN,zh;q=0.9,en;q=0.8")), "zh-CN");
        assert_eq!(language(Some("en-GB,en;q=0.9,zh-CN;q=0.8")), "en");
        assert_eq!(language(Some("fr-FR, zh;q=0.5")), "zh-CN");
        assert_eq!(language(Some("de")), "en");
        assert_eq!(language(Some("en;q=0.3, zh-TW;q=0.7")), "zh-CN");
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        assert_eq!(session_cookie(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ctid_session=abc; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("abc"));
        h.insert(header::COOKIE, HeaderValue::from_static("ctid_sessionx=1"));
        assert_eq!(session_cookie(&h), None);
    }

    #[test]
    fn a_wallboard_reads_figures_only() {
        assert!(wallboard_may(&Method::GET, "stats"));
        assert!(wallboard_may(&Method::GET, "queues/support"));
        assert!(!wallboard_may(&Method::GET, "calls"));
        assert!(!wallboard_may(&Method::GET, "events"));
        assert!(!wallboard_may(&Method::GET, "complaints"));
        assert!(!wallboard_may(&Method::GET, "queues/support/x"));
        assert!(!wallboard_may(&Method::POST, "agents"));
    }

    #[test]
    fn redaction_blanks_numbers_and_names() {
        let mut v = serde_json::json!({"queue": "q", "waiting": [
            {"call": 1, "caller_number": "555", "caller_name": "Ann", "wait_secs": 3.0}]});
        redact_queue(&mut v);
        assert_eq!(v["waiting"][0]["caller_number"], serde_json::Value::Null);
        assert_eq!(v["waiting"][0]["caller_name"], serde_json::Value::Null);
        assert_eq!(v["waiting"][0]["wait_secs"], 3.0);
    }
}
