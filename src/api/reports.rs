//! `GET /api/v1/reports/queues`, `GET /api/v1/reports/agents` and `GET /api/v1/reports/lists`:
//! the figures of `ctid report` for a day, week, half month, month or quarter, as JSON (default), CSV, Markdown or a
//! text table.
//!
//! Owns: the query parameters, who may read what, content negotiation. The figures come from
//! [`crate::report::generate`] and [`crate::report::render::render`], the very functions of the
//! CLI, run on a blocking thread with their own read-only connection (never on the executor),
//! at most [`super::max_concurrent_reports`] at a time.
//!
//! Order of checks: 401 (token), 403 (role; an agent token naming another agent), 400 (a
//! parameter: unknown, repeated, empty or invalid, named in `error.parameter`), 503 (reports not
//! set up, or too many running).

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::auth::{Authed, Principal, Role};
use super::{parse_query, ApiError, ApiState, REPORT_WAIT};
use crate::report::{self, Parts, PeriodKind, ReportFormat, Request};
use crate::store::ReportReads;

/// The parameters each route takes.
const QUEUE_PARAMS: &[&str] = &["period", "date", "queue", "interval", "format"];
const AGENT_PARAMS: &[&str] = &["period", "date", "agent", "queue", "format"];
const LIST_PARAMS: &[&str] = &["period", "date", "list", "format"];

pub(super) async fn queues(
    State(st): State<ApiState>,
    Authed(p): Authed,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(p.role, Role::Supervisor | Role::Wallboard) {
        return Err(ApiError::forbidden(format!(
            "role {} may not read queue reports",
            p.role.as_str()
        )));
    }
    serve(&st, &p, q.as_deref(), &headers, Parts::Queues).await
}

pub(super) async fn lists(
    State(st): State<ApiState>,
    Authed(p): Authed,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !matches!(p.role, Role::Supervisor | Role::Wallboard) {
        return Err(ApiError::forbidden(format!(
            "role {} may not read callback list reports",
            p.role.as_str()
        )));
    }
    serve(&st, &p, q.as_deref(), &headers, Parts::Lists).await
}

pub(super) async fn agents(
    State(st): State<ApiState>,
    Authed(p): Authed,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    serve(&st, &p, q.as_deref(), &headers, Parts::Agents).await
}

async fn serve(
    st: &ApiState,
    p: &Principal,
    q: Option<&str>,
    headers: &HeaderMap,
    parts: Parts,
) -> Result<Response, ApiError> {
    let pairs = parse_query(q);
    // An agent token reads its own figures only: decided before the parameters are checked.
    let own_agent = if p.role == Role::Agent {
        let own = p
            .agent
            .clone()
            .ok_or_else(|| ApiError::forbidden("this agent token names no agent".to_string()))?;
        if let Some((_, asked)) = pairs.iter().find(|(k, _)| k == "agent") {
            if *asked != own {
                return Err(ApiError::forbidden("an agent may read only its own report"));
            }
        }
        Some(own)
    } else {
        None
    };
    let settings = st
        .inner
        .reports
        .get()
        .ok_or_else(|| ApiError::unavailable("reports are not set up on this server"))?
        .clone();
    let allowed = match parts {
        Parts::Agents => AGENT_PARAMS,
        Parts::Lists => LIST_PARAMS,
        _ => QUEUE_PARAMS,
    };
    let params = Params::parse(&pairs, allowed)?;
    let date = match params.date {
        Some(d) => d,
        None => settings.today(),
    };
    // The period itself can be out of range (year 9999's last week): a bad date, not a 500.
    settings
        .period(params.period, date)
        .map_err(|e| ApiError::bad_parameter("date", format!("date: {e:#}")))?;
    let format = match params.format {
        Some(f) => f,
        None => negotiate(
            headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or(""),
        ),
    };
    let req = Request {
        kind: params.period,
        date,
        queue: params.queue,
        agent: own_agent.or(params.agent),
        interval_minutes: params.interval,
        parts,
    };

    let permit = tokio::time::timeout(REPORT_WAIT, st.inner.report_permits.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::unavailable("too many reports are running; try again"))?
        .map_err(|_| ApiError::unavailable("reports are shutting down"))?;
    let store = st.inner.store.clone();
    let list = params.list;
    let text = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let now = super::now_ms() as i64;
        store.read_two_blocking(|first, second| -> anyhow::Result<String> {
            let second = second.map(|r| r as &mut (dyn ReportReads + Send));
            let r = report::build_with_list(first, second, &settings, &req, list.as_deref(), now)?;
            report::render::render(&r, format)
        })
    })
    .await
    .map_err(|_| ApiError::internal("report task failed"))?
    .map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "API report failed");
        ApiError::internal("the report could not be built")
    })?;
    let mut resp = (StatusCode::OK, text).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(format)),
    );
    h.insert(header::VARY, HeaderValue::from_static("accept"));
    Ok(resp)
}

/// Validated query parameters.
#[derive(Debug, Default, PartialEq)]
struct Params {
    period: PeriodKind,
    date: Option<jiff::civil::Date>,
    queue: Option<String>,
    agent: Option<String>,
    list: Option<String>,
    interval: Option<u32>,
    format: Option<ReportFormat>,
}

impl Params {
    fn parse(pairs: &[(String, String)], allowed: &[&str]) -> Result<Params, ApiError> {
        let mut p = Params::default();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in pairs {
            let k = k.as_str();
            if !allowed.contains(&k) {
                return Err(ApiError::bad_parameter(
                    k,
                    format!("unknown parameter {k:?} (known: {})", allowed.join(", ")),
                ));
            }
            if seen.contains(&k) {
                return Err(ApiError::bad_parameter(k, format!("{k}: given twice")));
            }
            seen.push(k);
            if v.is_empty() {
                return Err(ApiError::bad_parameter(k, format!("{k}: empty")));
            }
            let bad = |what: &str| ApiError::bad_parameter(k, format!("{k}: {v:?} {what}"));
            match k {
                "period" => {
                    p.period = PeriodKind::parse(v)
                        .ok_or_else(|| bad("is not day, week, half-month, month or quarter"))?
                }
                "date" => {
                    p.date = Some(parse_date(v).ok_or_else(|| bad("is not a date (YYYY-MM-DD)"))?)
                }
                "queue" => p.queue = Some(v.clone()),
                "agent" => p.agent = Some(v.clone()),
                "list" => p.list = Some(v.clone()),
                "interval" => {
                    p.interval = Some(
                        v.parse::<u32>()
                            .ok()
                            .filter(|m| report::INTERVALS.contains(m))
                            .ok_or_else(|| bad("is not 15, 30 or 60"))?,
                    )
                }
                "format" => {
                    p.format = Some(
                        ReportFormat::parse(v)
                            .ok_or_else(|| bad("is not json, csv, md or table"))?,
                    )
                }
                _ => unreachable!("every allowed parameter is handled"),
            }
        }
        Ok(p)
    }
}

/// Exactly `YYYY-MM-DD`, a real calendar date.
fn parse_date(s: &str) -> Option<jiff::civil::Date> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    shape.then(|| s.parse().ok()).flatten()
}

/// The format an `Accept` header asks for: the supported media range with the highest `q`
/// (the more specific on a tie, then the first listed); JSON when none is supported.
fn negotiate(accept: &str) -> ReportFormat {
    let mut best: Option<(f32, u8, ReportFormat)> = None;
    for range in accept.split(',') {
        let mut fields = range.split(';');
        let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = fields
            .filter_map(|f| {
                let (k, v) = f.split_once('=')?;
                (k.trim().eq_ignore_ascii_case("q")).then(|| v.trim().parse::<f32>().ok())?
            })
            .next()
            .unwrap_or(1.0);
        if q.is_nan() || q <= 0.0 {
            continue;
        }
        let (format, specific) = match media.as_str() {
            "application/json" => (ReportFormat::Json, 2),
            "text/csv" => (ReportFormat::Csv, 2),
            "text/markdown" => (ReportFormat::Md, 2),
            "text/plain" => (ReportFormat::Table, 2),
            "application/*" => (ReportFormat::Json, 1),
            "*/*" => (ReportFormat::Json, 0),
            _ => continue,
        };
        if best.is_none_or(|(bq, bs, _)| q > bq || (q == bq && specific > bs)) {
            best = Some((q, specific, format));
        }
    }
    best.map_or(ReportFormat::Json, |b| b.2)
}

fn content_type(f: ReportFormat) -> &'static str {
    match f {
        ReportFormat::Json => "application/json",
        ReportFormat::Csv => "text/csv; charset=utf-8; header=present",
        ReportFormat::Md => "text/markdown; charset=utf-8",
        ReportFormat::Table => "text/plain; charset=utf-8",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &str) -> Vec<(String, String)> {
        parse_query(Some(q))
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let p = Params::parse(
            &pairs("period=week&date=2026-03-29&queue=sales&interval=30&format=csv"),
            QUEUE_PARAMS,
        )
        .unwrap();
        assert_eq!(p.period, PeriodKind::Week);
        assert_eq!(p.date.unwrap().to_string(), "2026-03-29");
        assert_eq!(p.queue.as_deref(), Some("sales"));
        assert_eq!(p.interval, Some(30));
        assert_eq!(p.format, Some(ReportFormat::Csv));
        assert_eq!(Params::parse(&[], QUEUE_PARAMS).unwrap(), Params::default());
        for (q, kind) in [
            ("period=half-month", PeriodKind::HalfMonth),
            ("period=quarter", PeriodKind::Quarter),
        ] {
            assert_eq!(Params::parse(&pairs(q), QUEUE_PARAMS).unwrap().period, kind);
        }
        for (q, param) in [
            ("period=year", "period"),
            ("date=2026-02-30", "date"),
            ("date=29.03.2026", "date"),
            ("date=2026-3-29", "date"),
            ("interval=20", "interval"),
            ("format=xml", "format"),
            ("queue=", "queue"),
            ("period=day&period=week", "period"),
            ("agent=1001", "agent"),
            ("limit=5", "limit"),
        ] {
            let e = Params::parse(&pairs(q), QUEUE_PARAMS).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{q}");
            assert_eq!(e.code, "bad_parameter", "{q}");
            assert_eq!(e.parameter.as_deref(), Some(param), "{q}");
            assert!(
                e.message.starts_with(param) || e.message.contains(param),
                "{q}: {e:?}"
            );
        }
        assert!(Params::parse(&pairs("interval=15"), AGENT_PARAMS).is_err());
        assert!(Params::parse(&pairs("agent=1001&queue=q"), AGENT_PARAMS).is_ok());
        let p = Params::parse(&pairs("period=month&list=complaints"), LIST_PARAMS).unwrap();
        assert_eq!(p.list.as_deref(), Some("complaints"));
        for q in ["queue=q", "agent=1001", "interval=15", "list="] {
            assert!(Params::parse(&pairs(q), LIST_PARAMS).is_err(), "{q}");
        }
    }

    #[test]
    fn accept_picks_the_format() {
        use ReportFormat::*;
        for (accept, want) in [
            ("", Json),
            ("*/*", Json),
            ("application/json", Json),
            ("text/csv", Csv),
            ("text/markdown", Md),
            ("text/plain", Table),
            ("text/html, */*;q=0.1", Json),
            ("image/png", Json),
            ("*/*, text/csv", Csv),
            ("text/csv;q=0.5, text/markdown", Md),
            ("text/csv;q=0, application/json;q=0.2", Json),
            ("TEXT/CSV; charset=utf-8", Csv),
        ] {
            assert_eq!(negotiate(accept), want, "{accept:?}");
        }
    }
}
