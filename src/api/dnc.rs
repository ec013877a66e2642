//! `/api/v1/dnc…`: the do-not-call list — add, check, remove one number, import many (CSV with
//! a `phone` or `number` column, or a JSON array of strings). Numbers are normalised to E.164
//! with `[outbound] default_country_code`; a number that cannot be is a 400 naming `number`
//! (or, in an import, its row).
//!
//! A supervisor may do everything; an agent may check a number; a wallboard nothing. Every
//! change is audited (the target is the number as given).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::auth::{Authed, Caller, Role};
use super::handlers::{audited, body};
use super::lists::import_answer;
use super::outbound::{
    body_kind, db_read, db_write, import_options, json_value, serde_field, supervisor_only,
    BodyKind,
};
use super::{now_ms, parse_query, ApiError, ApiState};
use crate::outbound::{self as ob, normalise};

/// Longest accepted `source`.
const MAX_SOURCE: usize = 100;

/// A number and whether it is on the do-not-call list.
#[derive(Debug, Serialize)]
struct DncView {
    /// E.164.
    number: String,
    on_list: bool,
    added_at_ms: Option<u64>,
    source: Option<String>,
}

fn dnc_view(c: &ob::Db, number: String) -> Result<DncView, ApiError> {
    let found = ob::is_do_not_call(c, &number)?;
    Ok(DncView {
        on_list: found.is_some(),
        added_at_ms: found.as_ref().map(|f| f.0),
        source: found.map(|f| f.1),
        number,
    })
}

fn e164(st: &ApiState, number: &str) -> Result<String, ApiError> {
    normalise(number, &st.outbound().country).map_err(|reason| {
        ApiError::bad_input(
            Some("number"),
            format!("{number:?} is not a phone number: {reason}"),
        )
    })
}

fn source(s: Option<String>, default: &str) -> Result<String, ApiError> {
    let s = s.unwrap_or_else(|| default.to_string());
    if s.trim().is_empty() || s.chars().count() > MAX_SOURCE || s.chars().any(char::is_control) {
        return Err(ApiError::bad_input(
            Some("source"),
            format!("source: 1 to {MAX_SOURCE} characters"),
        ));
    }
    Ok(s)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddBody {
    number: Option<String>,
    source: Option<String>,
}

pub(super) async fn add(State(st): State<ApiState>, caller: Caller, bytes: Bytes) -> Response {
    let target = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["number"].as_str().map(str::to_string))
        .unwrap_or_default();
    audited(&st, &caller, "dnc.add", target, async {
        supervisor_only(caller.principal()?, "change the do-not-call list")?;
        let b: AddBody = body(&bytes, false).map_err(|e| match e.code {
            "invalid" => {
                let field = serde_field(&e.message).unwrap_or("body").to_string();
                ApiError::bad_input(Some(&field), e.message)
            }
            _ => e,
        })?;
        let raw = b
            .number
            .ok_or_else(|| ApiError::bad_input(Some("number"), "number is required"))?;
        let number = e164(&st, &raw)?;
        let source = source(b.source, "api")?;
        let country = st.outbound().country.clone();
        db_write(&st, move |c| {
            let number = ob::add_do_not_call(c, &number, &country, &source, now_ms())?;
            dnc_view(c, number)
        })
        .await
    })
    .await
}

pub(super) async fn check(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path(number): Path<String>,
) -> Result<Response, ApiError> {
    if p.role == Role::Wallboard {
        return Err(ApiError::forbidden(
            "role wallboard may not read the do-not-call list",
        ));
    }
    let number = e164(&st, &number)?;
    let v = db_read(&st, move |c| dnc_view(c, number)).await?;
    Ok(Json(v).into_response())
}

#[derive(Debug, Serialize)]
struct Removed {
    number: String,
    /// Whether it was on the list.
    removed: bool,
}

pub(super) async fn remove(
    State(st): State<ApiState>,
    caller: Caller,
    Path(number): Path<String>,
) -> Response {
    audited(&st, &caller, "dnc.remove", number.clone(), async {
        supervisor_only(caller.principal()?, "change the do-not-call list")?;
        let e164 = e164(&st, &number)?;
        let country = st.outbound().country.clone();
        db_write(&st, move |c| {
            let removed = ob::remove_do_not_call(c, &e164, &country)?;
            Ok(Removed {
                number: e164,
                removed,
            })
        })
        .await
    })
    .await
}

pub(super) async fn import(
    State(st): State<ApiState>,
    caller: Caller,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    audited(
        &st,
        &caller,
        "dnc.import",
        "do-not-call".to_string(),
        async {
            supervisor_only(caller.principal()?, "change the do-not-call list")?;
            let (opts, rest) =
                import_options(st.outbound(), &parse_query(q.as_deref()), &["source"])?;
            let src = source(rest.into_iter().next().map(|(_, v)| v), "import")?;
            let numbers = match body_kind(&headers)? {
                BodyKind::Csv => None,
                BodyKind::Json => {
                    let v = json_value(&bytes)?;
                    let items = v.as_array().ok_or_else(|| {
                        ApiError::bad_input(Some("body"), "expected a JSON array of numbers")
                    })?;
                    // A non-string item is kept as "" so its row is reported, not skipped.
                    Some(
                        items
                            .iter()
                            .map(|i| i.as_str().unwrap_or("").to_string())
                            .collect::<Vec<_>>(),
                    )
                }
            };
            let all_or_nothing = opts.all_or_nothing;
            let report = db_write(&st, move |c| {
                let now = now_ms();
                Ok(match numbers {
                    Some(n) => ob::import_do_not_call_numbers(c, &n, &opts, &src, now)?,
                    None => ob::import_do_not_call_csv(c, &bytes[..], &opts, &src, now)?,
                })
            })
            .await?;
            import_answer(report, all_or_nothing)
        },
    )
    .await
}
