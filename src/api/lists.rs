//! `/api/v1/lists…`: callback lists (create, read with their counters, pause / resume / stop),
//! contact imports (CSV or JSON, bad rows reported as `row N: reason`), and contacts with their
//! attempts.
//!
//! Who may do what: a supervisor everything; a wallboard reads lists and their counters; an
//! agent reads the lists it works (named on the list, or a member of its queue) and, of those,
//! the contacts it was offered. Order of checks: 401, 403 (role), 404 (the list), 403 (an agent
//! and a list it does not work), 400 (input, naming the field, parameter or rows), 409 (state).
//! Every change is audited.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::Value;

use super::auth::{Authed, Caller, Principal, Role};
use super::handlers::audited;
use super::outbound::{
    body_kind, db_read, db_write, import_options, json_value, own_agent, serde_field,
    supervisor_only, BodyKind, Settings,
};
use super::{now_ms, parse_query, ApiError, ApiState};
use crate::outbound::{
    self as ob, Attempt, Contact, ContactId, ContactState, ImportReport, List, ListCounters,
    ListSpec,
};

/// Most contacts in one page, and the default.
pub const MAX_CONTACTS: usize = 500;
pub const DEFAULT_CONTACTS: usize = 50;

/// A list with its counters of now.
#[derive(Debug, Serialize)]
pub(super) struct ListView {
    #[serde(flatten)]
    list: List,
    /// The list's name (also in `spec`), for tables.
    name: String,
    counters: ListCounters,
}

fn view(conn: &ob::Db, list: List, now: u64) -> Result<ListView, ApiError> {
    let counters = ob::list_counters(conn, list.id, now)?;
    Ok(ListView {
        name: list.spec.name.clone(),
        list,
        counters,
    })
}

/// Set the list's gauges from counters just read (the periodic refresher,
/// `crate::outbound_metrics`, keeps them current as the dialer works).
fn publish(list: &List, c: &ListCounters) {
    crate::metrics::register_callback_list(&list.spec.name);
    crate::metrics::set_callback_list(
        &list.spec.name,
        c.quota_per_day,
        c.quota_used_today,
        c.contacts.pending,
        c.state == ob::ListState::Active,
    );
}

/// 403 unless `p` may read `list`.
fn may_read(settings: &Settings, p: &Principal, list: &List) -> Result<(), ApiError> {
    match own_agent(p)? {
        Some(agent) if !settings.works(agent, list) => Err(ApiError::forbidden(format!(
            "agent {agent} does not work list {:?}",
            list.spec.name
        ))),
        _ => Ok(()),
    }
}

// ---- lists ----

#[derive(Serialize)]
struct Lists {
    lists: Vec<ListView>,
}

pub(super) async fn index(
    State(st): State<ApiState>,
    Authed(p): Authed,
) -> Result<Response, ApiError> {
    let agent = own_agent(&p)?.map(str::to_string);
    let settings = st.outbound().clone();
    let lists = db_read(&st, move |c| {
        let now = now_ms();
        ob::list_lists(c)?
            .into_iter()
            .filter(|l| agent.as_deref().is_none_or(|a| settings.works(a, l)))
            .map(|l| view(c, l, now))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(Json(Lists { lists }).into_response())
}

pub(super) async fn show(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let list = db_read(&st, move |c| Ok(ob::get_list_by_name(c, &name)?)).await?;
    may_read(st.outbound(), &p, &list)?;
    let v = db_read(&st, move |c| view(c, list, now_ms())).await?;
    Ok(Json(v).into_response())
}

/// A list spec from a JSON body: `time_zone` defaults to `[reports] time_zone` and
/// `dedupe_period_secs` to `[outbound] duplicate_period_days`; agents and the queue must be
/// configured.
fn spec_from(settings: &Settings, bytes: &[u8]) -> Result<ListSpec, ApiError> {
    let mut v = json_value(bytes)?;
    let Some(obj) = v.as_object_mut() else {
        return Err(ApiError::bad_input(
            Some("body"),
            "the body must be a JSON object (a list spec)",
        ));
    };
    if !obj.contains_key("time_zone") {
        if let Some(tz) = &settings.time_zone {
            obj.insert("time_zone".into(), Value::from(tz.clone()));
        }
    }
    if !obj.contains_key("dedupe_period_secs") {
        obj.insert(
            "dedupe_period_secs".into(),
            Value::from(settings.cfg.duplicate_period_secs()),
        );
    }
    let spec: ListSpec = serde_json::from_value(v).map_err(|e| {
        let msg = e.to_string();
        ApiError::bad_input(serde_field(&msg), format!("list spec: {msg}"))
    })?;
    spec.validate()?;
    for a in &spec.agents {
        if !settings.agents.contains(a) {
            return Err(ApiError::bad_input(
                Some("agents"),
                format!("agent {a:?} is not defined in [[agents]]"),
            ));
        }
    }
    if let Some(q) = &spec.queue {
        if !settings.queues.contains_key(q) {
            return Err(ApiError::bad_input(
                Some("queue"),
                format!("queue {q:?} is not defined in [[queues]]"),
            ));
        }
    }
    Ok(spec)
}

pub(super) async fn create(State(st): State<ApiState>, caller: Caller, bytes: Bytes) -> Response {
    let target = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v["name"].as_str().map(str::to_string))
        .unwrap_or_default();
    audited(&st, &caller, "list.create", target, async {
        let p = caller.principal()?;
        supervisor_only(p, "create lists")?;
        let spec = spec_from(st.outbound(), &bytes)?;
        let v = db_write(&st, move |c| {
            let now = now_ms();
            let list = ob::create_list(c, &spec, now)?;
            view(c, list, now)
        })
        .await?;
        publish(&v.list, &v.counters);
        Ok(v)
    })
    .await
}

#[derive(Clone, Copy)]
enum Change {
    Pause,
    Resume,
    Stop,
}

async fn change(st: ApiState, caller: Caller, name: String, bytes: Bytes, how: Change) -> Response {
    let action = match how {
        Change::Pause => "list.pause",
        Change::Resume => "list.resume",
        Change::Stop => "list.stop",
    };
    audited(&st, &caller, action, name.clone(), async {
        let p = caller.principal()?;
        supervisor_only(p, "change lists")?;
        if !bytes.iter().all(u8::is_ascii_whitespace)
            && json_value(&bytes)? != serde_json::json!({})
        {
            return Err(ApiError::bad_input(
                Some("body"),
                "this request takes no body",
            ));
        }
        db_write(&st, move |c| {
            let now = now_ms();
            let id = ob::get_list_by_name(c, &name)?.id;
            let list = match how {
                Change::Pause => ob::pause_list(c, id, now)?,
                Change::Resume => ob::resume_list(c, id, now)?,
                Change::Stop => ob::stop_list(c, id, now)?,
            };
            view(c, list, now)
        })
        .await
        .inspect(|v| publish(&v.list, &v.counters))
    })
    .await
}

pub(super) async fn pause(
    State(st): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    change(st, caller, name, bytes, Change::Pause).await
}

pub(super) async fn resume(
    State(st): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    change(st, caller, name, bytes, Change::Resume).await
}

pub(super) async fn stop(
    State(st): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    bytes: Bytes,
) -> Response {
    change(st, caller, name, bytes, Change::Stop).await
}

// ---- imports ----

/// What an import did: rows read, rows imported, and each bad row as `row N: reason`.
#[derive(Debug, Serialize)]
pub(super) struct Imported {
    pub rows: usize,
    pub imported: usize,
    pub all_or_nothing: bool,
    pub errors: Vec<String>,
}

/// The answer to an import: 200 with the report when any row was imported or none was bad;
/// otherwise (every row bad, a bad header, or `all_or_nothing` with a bad row) nothing changed:
/// 400 `bad_rows` listing each bad row.
pub(super) fn import_answer(r: ImportReport, all_or_nothing: bool) -> Result<Imported, ApiError> {
    let errors: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    if r.imported == 0 && !errors.is_empty() {
        let message = if all_or_nothing && r.rows > errors.len() {
            format!(
                "{} of {} rows are bad; nothing imported (all_or_nothing)",
                errors.len(),
                r.rows
            )
        } else {
            format!("{} bad rows; nothing imported", errors.len())
        };
        return Err(
            ApiError::new(axum::http::StatusCode::BAD_REQUEST, "bad_rows", message)
                .with_errors(errors),
        );
    }
    Ok(Imported {
        rows: r.rows,
        imported: r.imported,
        all_or_nothing,
        errors,
    })
}

pub(super) async fn import(
    State(st): State<ApiState>,
    caller: Caller,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    audited(&st, &caller, "list.import", name.clone(), async {
        let p = caller.principal()?;
        supervisor_only(p, "import contacts")?;
        let (opts, _) = import_options(st.outbound(), &parse_query(q.as_deref()), &[])?;
        let kind = body_kind(&headers)?;
        let json = match kind {
            BodyKind::Json => Some(json_value(&bytes)?),
            BodyKind::Csv => None,
        };
        let all_or_nothing = opts.all_or_nothing;
        let report = db_write(&st, move |c| {
            let now = now_ms();
            let list = ob::get_list_by_name(c, &name)?;
            let report = match json {
                Some(v) => ob::import_contacts_json(c, list.id, &v, &opts, now)?,
                None => ob::import_contacts_csv(c, list.id, &bytes[..], &opts, now)?,
            };
            if report.imported > 0 {
                publish(&list, &ob::list_counters(c, list.id, now)?);
            }
            Ok(report)
        })
        .await?;
        import_answer(report, all_or_nothing)
    })
    .await
}

// ---- contacts ----

#[derive(Serialize)]
struct ContactPage {
    contacts: Vec<Contact>,
    next_cursor: Option<String>,
}

#[derive(Debug, Default)]
struct ContactFilter {
    state: Option<ContactState>,
    limit: usize,
    after: i64,
}

fn contact_filter(q: Option<&str>) -> Result<ContactFilter, ApiError> {
    let mut f = ContactFilter {
        limit: DEFAULT_CONTACTS,
        ..ContactFilter::default()
    };
    let mut seen: Vec<String> = Vec::new();
    for (k, v) in parse_query(q) {
        if seen.contains(&k) {
            return Err(ApiError::bad_parameter(&k, format!("{k}: given twice")));
        }
        seen.push(k.clone());
        let bad = |what: &str| ApiError::bad_parameter(&k, format!("{k}: {v:?} {what}"));
        match k.as_str() {
            "state" => {
                f.state = Some(v.parse().map_err(|_| {
                    bad("is not pending, in_progress, done, unreachable or skipped")
                })?)
            }
            "limit" => {
                f.limit = v
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=MAX_CONTACTS).contains(n))
                    .ok_or_else(|| bad(&format!("is not 1 to {MAX_CONTACTS}")))?
            }
            "cursor" => {
                f.after = v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 0)
                    .ok_or_else(|| bad("is not a cursor this API gave"))?
            }
            _ => {
                return Err(ApiError::bad_parameter(
                    &k,
                    format!("unknown parameter {k:?} (known: state, limit, cursor)"),
                ))
            }
        }
    }
    Ok(f)
}

/// Contacts of `list` by id after `f.after`; only those offered to `agent` when given.
fn contact_page(
    c: &ob::Db,
    list: &List,
    f: &ContactFilter,
    agent: Option<&str>,
) -> Result<ContactPage, ApiError> {
    let mut contacts = ob::contacts_after(c, list.id, f.state, f.after, agent, f.limit)?;
    let more = contacts.len() > f.limit;
    contacts.truncate(f.limit);
    let next_cursor = more
        .then(|| contacts.last().map(|c| c.id.to_string()))
        .flatten();
    Ok(ContactPage {
        contacts,
        next_cursor,
    })
}

pub(super) async fn contacts(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    if p.role == Role::Wallboard {
        return Err(ApiError::forbidden("role wallboard may not read contacts"));
    }
    let agent = own_agent(&p)?.map(str::to_string);
    let list = db_read(&st, move |c| Ok(ob::get_list_by_name(c, &name)?)).await?;
    may_read(st.outbound(), &p, &list)?;
    let f = contact_filter(q.as_deref())?;
    let page = db_read(&st, move |c| contact_page(c, &list, &f, agent.as_deref())).await?;
    Ok(Json(page).into_response())
}

#[derive(Serialize)]
struct ContactDetail {
    contact: Contact,
    attempts: Vec<Attempt>,
}

pub(super) async fn contact(
    State(st): State<ApiState>,
    Authed(p): Authed,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    if p.role == Role::Wallboard {
        return Err(ApiError::forbidden("role wallboard may not read contacts"));
    }
    let agent = own_agent(&p)?.map(str::to_string);
    let what = format!("no contact {id:?} in list {name:?}");
    let unknown = || ApiError::not_found(what.clone());
    let cid = ContactId(id.parse().map_err(|_| unknown())?);
    let list = db_read(&st, move |c| Ok(ob::get_list_by_name(c, &name)?)).await?;
    may_read(st.outbound(), &p, &list)?;
    let found = db_read(&st, move |c| {
        let contact = match ob::get_contact(c, cid) {
            Ok(ct) if ct.list == list.id => ct,
            Ok(_) | Err(ob::OutboundError::NoSuchContact(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let offered = match &agent {
            None => true,
            Some(a) => ob::offered_to(c, cid, a)?,
        };
        let attempts = ob::attempts_of(c, cid)?;
        Ok(Some((offered, ContactDetail { contact, attempts })))
    })
    .await?;
    match found {
        None => Err(unknown()),
        Some((false, _)) => Err(ApiError::forbidden(
            "an agent may read only the contacts it was offered",
        )),
        Some((true, d)) => Ok(Json(d).into_response()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::RowError;

    #[test]
    fn an_import_that_changed_nothing_is_a_400_naming_each_row() {
        let errs = vec![
            RowError {
                row: 3,
                reason: "no phone number".into(),
            },
            RowError {
                row: 7,
                reason: "phone \"x\": contains letters".into(),
            },
        ];
        let ok = import_answer(
            ImportReport {
                rows: 10,
                imported: 8,
                errors: errs.clone(),
            },
            false,
        )
        .unwrap();
        assert_eq!(
            ok.errors,
            [
                "row 3: no phone number",
                "row 7: phone \"x\": contains letters"
            ]
        );
        let e = import_answer(
            ImportReport {
                rows: 10,
                imported: 0,
                errors: errs,
            },
            true,
        )
        .unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (400, "bad_rows"));
        assert!(e.message.contains("2 of 10 rows"), "{}", e.message);
        assert_eq!(e.errors.len(), 2);
        let empty = import_answer(ImportReport::default(), true).unwrap();
        assert_eq!((empty.rows, empty.imported), (0, 0));
    }

    #[test]
    fn contact_filters() {
        let f = contact_filter(Some("state=pending&limit=10&cursor=42")).unwrap();
        assert_eq!(
            (f.state, f.limit, f.after),
            (Some(ContactState::Pending), 10, 42)
        );
        for (q, p) in [
            ("state=open", "state"),
            ("limit=0", "limit"),
            ("limit=501", "limit"),
            ("cursor=x", "cursor"),
            ("page=2", "page"),
            ("limit=1&limit=2", "limit"),
        ] {
            let e = contact_filter(Some(q)).unwrap_err();
            assert_eq!(e.parameter.as_deref(), Some(p), "{q}");
        }
    }
}
