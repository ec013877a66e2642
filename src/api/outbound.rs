//! What the callback-list routes ([`super::lists`], [`super::dnc`], [`super::complaints`])
//! share: their settings from the config, the blocking database runner, the mapping of
//! [`OutboundError`] to answers, and who may read which list.
//!
//! Every handler's database work runs off the executor: reads in [`db_read`], on one of the
//! store's pooled read-only connections; changes in [`db_write`], on the store writer's
//! connection, in order with every other write (the `crate::outbound` functions that change
//! state take their own `BEGIN IMMEDIATE` transactions on it). No connection is opened per
//! request.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::{header, HeaderMap, StatusCode};

use super::auth::{Principal, Role};
use super::{ApiError, ApiState};
use crate::config::{Config, Outbound};
use crate::outbound::{CountryCode, Db, ImportOptions, List, OutboundError};
use crate::store::StoreError;

/// The callback-list settings of the API, from the config.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    /// `[outbound]` as configured.
    pub cfg: Outbound,
    /// `[outbound] default_country_code`.
    pub country: CountryCode,
    /// Time zone given to new lists that name none (`[reports] time_zone`, resolved).
    pub time_zone: Option<String>,
    /// Configured queues and their members.
    pub queues: BTreeMap<String, BTreeSet<String>>,
    /// Configured agent ids.
    pub agents: BTreeSet<String>,
}

impl Settings {
    pub fn from_config(cfg: &Config) -> Settings {
        let tz = &cfg.reports.time_zone;
        let time_zone = if tz == "system" {
            jiff::tz::TimeZone::system().iana_name().map(str::to_string)
        } else {
            Some(tz.clone())
        };
        Settings {
            country: cfg.outbound.country_code(),
            cfg: cfg.outbound.clone(),
            time_zone,
            queues: cfg
                .queues
                .iter()
                .map(|q| {
                    let members = q.members.iter().map(|m| m.agent.clone()).collect();
                    (q.name.clone(), members)
                })
                .collect(),
            agents: cfg.agents.iter().map(|a| a.id.clone()).collect(),
        }
    }

    /// Does `agent` work `list` (named on it, or a member of its queue)?
    pub fn works(&self, agent: &str, list: &List) -> bool {
        list.spec.agents.iter().any(|a| a == agent)
            || list
                .spec
                .queue
                .as_ref()
                .and_then(|q| self.queues.get(q))
                .is_some_and(|m| m.contains(agent))
    }

    /// The queues `agent` is a member of.
    pub fn queues_of(&self, agent: &str) -> BTreeSet<String> {
        self.queues
            .iter()
            .filter(|(_, m)| m.contains(agent))
            .map(|(q, _)| q.clone())
            .collect()
    }
}

impl ApiState {
    /// Serve the callback-list routes with the `[outbound]` settings, queues and agents of
    /// `cfg` (without it they use the defaults of an empty config). Set once.
    pub fn with_outbound(self, cfg: &Config) -> ApiState {
        let _ = self.inner.outbound.set(Settings::from_config(cfg));
        self
    }

    pub(super) fn outbound(&self) -> &Settings {
        self.inner
            .outbound
            .get_or_init(|| Settings::from_config(&Config::default()))
    }
}

/// Run `f` on a pooled read-only connection, on a blocking thread.
pub(super) async fn db_read<T: Send + 'static>(
    st: &ApiState,
    f: impl FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    st.inner.store.read(move |r| f(r.outbound())).await
}

/// Run `f` on the store writer's connection (after the writes queued before it).
pub(super) async fn db_write<T: Send + 'static>(
    st: &ApiState,
    f: impl FnOnce(&Db) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    st.inner.store.sql_write(f).await
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Busy => ApiError::unavailable("the database is busy; try again"),
            StoreError::Missing(_) | StoreError::Closed => {
                tracing::warn!(error = %e, "API cannot reach the database");
                ApiError::unavailable("the database is not available")
            }
            e => {
                tracing::warn!(error = %e, "API database work failed");
                ApiError::internal("database error")
            }
        }
    }
}

impl From<OutboundError> for ApiError {
    fn from(e: OutboundError) -> ApiError {
        match e {
            OutboundError::InvalidList(errs) => ApiError::bad_input(
                field_of(errs.first()),
                format!("invalid list: {}", errs.join("; ")),
            )
            .with_errors(errs),
            OutboundError::Invalid(m) => ApiError::bad_input(None, m),
            OutboundError::InvalidNumber { input, reason } => ApiError::bad_input(
                Some("number"),
                format!("{input:?} is not a phone number: {reason}"),
            ),
            OutboundError::Read(m) => ApiError::bad_input(Some("body"), m),
            OutboundError::NoSuchList(m) => ApiError::not_found(format!("no callback list {m}")),
            OutboundError::NoSuchContact(id) => ApiError::not_found(format!("no contact {id}")),
            OutboundError::NoSuchAttempt(id) => ApiError::not_found(format!("no attempt {id}")),
            OutboundError::Conflict(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            OutboundError::Store(e) => e.into(),
            OutboundError::Corrupt(m) => {
                tracing::warn!(error = %m, "stored callback data cannot be read");
                ApiError::internal("stored data cannot be read")
            }
        }
    }
}

/// The setting a list validation message is about (`windows[0]: …` → `windows`).
fn field_of(msg: Option<&String>) -> Option<&str> {
    let m = msg?;
    let word = m
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .next()?;
    const FIELDS: &[&str] = &[
        "name",
        "agent",
        "queue",
        "windows",
        "holiday",
        "quota_per_day",
        "agent_quota_per_day",
        "max_attempts",
        "retry.busy_secs",
        "retry.no_answer_secs",
        "retry.failed_secs",
        "dedupe_period_secs",
        "time_zone",
    ];
    if let Some(f) = FIELDS.iter().find(|f| **f == word) {
        return Some(match *f {
            "agent" => "agents",
            "holiday" => "holidays",
            f => f,
        });
    }
    if m.contains("time zone") {
        return Some("time_zone");
    }
    if m.contains("agents or the queue") {
        return Some("agents");
    }
    if m.contains("calling window") {
        return Some("windows");
    }
    None
}

/// The first backquoted name of a serde message (`unknown field `quota`, expected …`).
pub(super) fn serde_field(msg: &str) -> Option<&str> {
    let start = msg.find('`')? + 1;
    let len = msg[start..].find('`')?;
    Some(&msg[start..start + len])
}

/// A JSON body that must be valid JSON: 400 `bad_json` otherwise.
pub(super) fn json_value(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_input(Some("body"), "a JSON body is required"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("the body is not valid JSON: {e}"),
        )
    })
}

/// How an import body is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum BodyKind {
    Csv,
    Json,
}

/// `text/csv` (also `application/csv`, `text/plain`) or `application/json`; else 415.
pub(super) fn body_kind(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match ct.as_str() {
        "text/csv" | "application/csv" | "text/plain" => Ok(BodyKind::Csv),
        "application/json" => Ok(BodyKind::Json),
        other => Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!(
                "send the rows as text/csv or application/json, not {:?}",
                if other.is_empty() {
                    "(no Content-Type)"
                } else {
                    other
                }
            ),
        )),
    }
}

/// Import options from the query: `all_or_nothing`, `delimiter` (`,` `;` `tab`),
/// `country_code`; plus the names in `extra` (returned as pairs). Anything else is a 400.
pub(super) fn import_options(
    settings: &Settings,
    pairs: &[(String, String)],
    extra: &[&str],
) -> Result<(ImportOptions, Vec<(String, String)>), ApiError> {
    let mut opts = ImportOptions::new(settings.country.clone());
    let mut rest = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        let k = k.as_str();
        if seen.contains(&k) {
            return Err(ApiError::bad_parameter(k, format!("{k}: given twice")));
        }
        seen.push(k);
        let bad = |what: &str| ApiError::bad_parameter(k, format!("{k}: {v:?} {what}"));
        match k {
            "all_or_nothing" => {
                opts.all_or_nothing = match v.as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(bad("is not true or false")),
                }
            }
            "delimiter" => {
                opts.delimiter = match v.as_str() {
                    "," | "comma" => b',',
                    ";" | "semicolon" => b';',
                    "\t" | "tab" => b'\t',
                    _ => return Err(bad("is not one of , ; tab")),
                }
            }
            "country_code" => {
                opts.country_code = CountryCode::new(v).map_err(|e| bad(&format!("({e})")))?
            }
            k if extra.contains(&k) => rest.push((k.to_string(), v.clone())),
            k => {
                let mut known = vec!["all_or_nothing", "delimiter", "country_code"];
                known.extend_from_slice(extra);
                return Err(ApiError::bad_parameter(
                    k,
                    format!("unknown parameter {k:?} (known: {})", known.join(", ")),
                ));
            }
        }
    }
    Ok((opts, rest))
}

/// The agent an agent token acts as (403 when it names none).
pub(super) fn own_agent(p: &Principal) -> Result<Option<&str>, ApiError> {
    match p.role {
        Role::Agent => p
            .agent
            .as_deref()
            .map(Some)
            .ok_or_else(|| ApiError::forbidden("this agent token names no agent")),
        _ => Ok(None),
    }
}

/// Supervisor only, with a message naming the action.
pub(super) fn supervisor_only(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.role == Role::Supervisor {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!(
            "role {} may not {what}",
            p.role.as_str()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named() {
        let f = |m: &str| field_of(Some(&m.to_string())).map(str::to_string);
        assert_eq!(
            f("windows[0]: start 18:00 is not before end 09:00").as_deref(),
            Some("windows")
        );
        assert_eq!(
            f("quota_per_day must be at least 1").as_deref(),
            Some("quota_per_day")
        );
        assert_eq!(
            f("retry.busy_secs must be at most 2592000").as_deref(),
            Some("retry.busy_secs")
        );
        assert_eq!(
            f("agent \"x \" is not a valid agent id").as_deref(),
            Some("agents")
        );
        assert_eq!(
            f("give the agents or the queue (or both) that work the list").as_deref(),
            Some("agents")
        );
        assert_eq!(
            f("holiday \"x\" is not a date").as_deref(),
            Some("holidays")
        );
        assert_eq!(
            serde_field("unknown field `quota`, expected one of `name`"),
            Some("quota")
        );
        assert_eq!(serde_field("no field"), None);
    }

    #[test]
    fn import_options_are_checked() {
        let s = Settings::from_config(&Config::default());
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let (o, rest) = import_options(
            &s,
            &pairs(&[
                ("all_or_nothing", "true"),
                ("delimiter", ";"),
                ("source", "x"),
            ]),
            &["source"],
        )
        .unwrap();
        assert!(o.all_or_nothing);
        assert_eq!(o.delimiter, b';');
        assert_eq!(rest, pairs(&[("source", "x")]));
        for bad in [
            vec![("all_or_nothing", "yes")],
            vec![("delimiter", "|")],
            vec![("country_code", "0")],
            vec![("limit", "3")],
            vec![("delimiter", ","), ("delimiter", ";")],
        ] {
            let e = import_options(&s, &pairs(&bad), &[]).unwrap_err();
            assert_eq!(
                (e.status.as_u16(), e.code),
                (400, "bad_parameter"),
                "{bad:?}"
            );
            assert_eq!(e.parameter.as_deref(), Some(bad[0].0));
        }
    }
}
