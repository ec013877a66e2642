//! Callback lists: their settings ([`ListSpec`], validated with every problem reported at once),
//! create / get / list, pause / resume / stop, and the counters a team lead and `/metrics` read.

use super::calendar::{self, Calendar, WindowRule};
use super::{
    ms_from_sql, sql_ms, AttemptResult, ListId, ListState, Mode, OutboundError, Purpose, Result,
};
use crate::store::outbound::Db;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Longest accepted retry delay and duplicate period.
const MAX_RETRY_SECS: u64 = 30 * 86_400;
const MAX_DEDUPE_SECS: u64 = 400 * 86_400;
const MAX_ATTEMPTS: u32 = 100;

/// A list's settings, as the API and CLI give them (JSON / TOML friendly).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSpec {
    /// Unique, 1–100 characters.
    pub name: String,
    pub purpose: Purpose,
    /// Agents who work the list. At least one of `agents` and `queue` is required.
    #[serde(default)]
    pub agents: Vec<String>,
    /// A queue whose agents work the list (membership is the dialer's to check).
    #[serde(default)]
    pub queue: Option<String>,
    pub mode: Mode,
    /// IANA name, e.g. `Europe/London`: windows, holidays and quota days are local to it.
    pub time_zone: String,
    /// When dialing is allowed (local wall clock). At least one.
    pub windows: Vec<Window>,
    /// Local dates (`YYYY-MM-DD`) with no dialing at all.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Successful callbacks (answered attempts) per local day for the whole list; none = no cap.
    #[serde(default)]
    pub quota_per_day: Option<u32>,
    /// Successful callbacks per agent per local day on this list; none = no cap.
    #[serde(default)]
    pub agent_quota_per_day: Option<u32>,
    /// Dial attempts per contact before it is `unreachable`.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub retry: RetryDelays,
    /// A customer (same customer id or number) answered on any list within this many seconds is
    /// not dialed again from this list: the contact is skipped as `duplicate`. 0 = no such rule.
    #[serde(default)]
    pub dedupe_period_secs: u64,
    /// Higher first, among contacts due at the same time across lists.
    #[serde(default)]
    pub priority: i32,
}

fn default_max_attempts() -> u32 {
    3
}

/// Delay before the next attempt, per result of the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryDelays {
    /// Busy, and rejected (declined) calls.
    pub busy_secs: u64,
    /// No answer, and an answered call whose disposition is not `done`.
    pub no_answer_secs: u64,
    /// Failed (network, trunk, interrupted by a restart).
    pub failed_secs: u64,
}

impl Default for RetryDelays {
    fn default() -> Self {
        RetryDelays {
            busy_secs: 600,
            no_answer_secs: 3_600,
            failed_secs: 900,
        }
    }
}

impl RetryDelays {
    /// The delay after a final result, in ms.
    pub(crate) fn after_ms(&self, result: AttemptResult) -> u64 {
        let secs = match result {
            AttemptResult::Busy | AttemptResult::Rejected => self.busy_secs,
            AttemptResult::Failed => self.failed_secs,
            _ => self.no_answer_secs,
        };
        secs.saturating_mul(1000)
    }
}

/// A calling window: `days` like `["mon-fri"]` or `["sat", "sun"]`, `start`/`end` as `HH:MM`
/// on the local wall clock (`end` exclusive, may be `24:00`; windows do not cross midnight —
/// write two).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub days: Vec<String>,
    pub start: String,
    pub end: String,
}

/// A spec that passed validation, in the form stored.
pub(crate) struct Checked {
    rules: Vec<WindowRule>,
    holidays: BTreeSet<Date>,
}

impl ListSpec {
    /// Check every setting; all problems are reported together.
    pub fn validate(&self) -> Result<()> {
        self.check().map(|_| ())
    }

    fn check(&self) -> Result<Checked> {
        let mut errs = Vec::new();
        let name = self.name.trim();
        if name.is_empty() || name.chars().count() > 100 || name != self.name {
            errs.push(format!(
                "name {:?} must be 1 to 100 characters without leading or trailing spaces",
                self.name
            ));
        }
        if name.chars().any(char::is_control) {
            errs.push("name must not contain control characters".into());
        }
        if self.agents.is_empty() && self.queue.is_none() {
            errs.push("give the agents or the queue (or both) that work the list".into());
        }
        let mut seen = BTreeSet::new();
        for a in &self.agents {
            if a.trim().is_empty() || a.trim() != a {
                errs.push(format!("agent {a:?} is not a valid agent id"));
            } else if !seen.insert(a) {
                errs.push(format!("agent {a:?} is listed twice"));
            }
        }
        if let Some(q) = &self.queue {
            if q.trim().is_empty() {
                errs.push("queue is empty".into());
            }
        }
        if let Err(e) = calendar::time_zone_named(&self.time_zone) {
            errs.push(e);
        }
        if self.windows.is_empty() {
            errs.push("at least one calling window is required".into());
        }
        let mut rules = Vec::new();
        for (i, w) in self.windows.iter().enumerate() {
            let days = calendar::parse_days(&w.days);
            let start = calendar::parse_hhmm(&w.start, false);
            let end = calendar::parse_hhmm(&w.end, true);
            match (days, start, end) {
                (Ok(days), Ok(start_min), Ok(end_min)) if start_min < end_min => {
                    rules.push(WindowRule {
                        days,
                        start_min,
                        end_min,
                    })
                }
                (Ok(_), Ok(_), Ok(_)) => errs.push(format!(
                    "windows[{i}]: start {} is not before end {} (a window cannot cross midnight: split it in two)",
                    w.start, w.end
                )),
                (d, s, e) => {
                    for err in [d.err(), s.err(), e.err()].into_iter().flatten() {
                        errs.push(format!("windows[{i}]: {err}"));
                    }
                }
            }
        }
        let mut holidays = BTreeSet::new();
        for h in &self.holidays {
            match h.trim().parse::<Date>() {
                Ok(d) => {
                    holidays.insert(d);
                }
                Err(_) => errs.push(format!("holiday {h:?} is not a date YYYY-MM-DD")),
            }
        }
        if self.quota_per_day == Some(0) {
            errs.push("quota_per_day must be at least 1 (pause the list to stop dialing)".into());
        }
        if self.agent_quota_per_day == Some(0) {
            errs.push("agent_quota_per_day must be at least 1".into());
        }
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            errs.push(format!("max_attempts must be 1 to {MAX_ATTEMPTS}"));
        }
        for (what, secs) in [
            ("retry.busy_secs", self.retry.busy_secs),
            ("retry.no_answer_secs", self.retry.no_answer_secs),
            ("retry.failed_secs", self.retry.failed_secs),
        ] {
            if secs > MAX_RETRY_SECS {
                errs.push(format!("{what} must be at most {MAX_RETRY_SECS} (30 days)"));
            }
        }
        if self.dedupe_period_secs > MAX_DEDUPE_SECS {
            errs.push(format!(
                "dedupe_period_secs must be at most {MAX_DEDUPE_SECS} (400 days)"
            ));
        }
        if errs.is_empty() {
            Ok(Checked { rules, holidays })
        } else {
            Err(OutboundError::InvalidList(errs))
        }
    }
}

/// A stored list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct List {
    pub id: ListId,
    pub spec: ListSpec,
    pub state: ListState,
    pub created_at_ms: u64,
    pub state_changed_at_ms: u64,
}

impl List {
    pub(crate) fn calendar(&self) -> Result<Calendar> {
        let checked = self
            .spec
            .check()
            .map_err(|e| OutboundError::Corrupt(format!("list {}: {e}", self.id)))?;
        Calendar::new(&self.spec.time_zone, checked.rules, checked.holidays)
    }
}

/// Validate and store a new list (state `active`).
pub fn create_list(conn: &Db, spec: &ListSpec, now_ms: u64) -> Result<List> {
    let tx = super::write_tx(conn)?;
    let list = insert_list(&*tx, spec, now_ms)?;
    tx.commit()?;
    Ok(list)
}

/// [`create_list`] inside the caller's transaction.
pub(crate) fn insert_list(tx: &Db, spec: &ListSpec, now_ms: u64) -> Result<List> {
    let checked = spec.check()?;
    let now = sql_ms(now_ms)?;
    if tx.list_name_taken(&spec.name)? {
        return Err(OutboundError::Conflict(format!(
            "a callback list named {:?} already exists",
            spec.name
        )));
    }
    let secs = [
        sql_ms(spec.retry.busy_secs)?,
        sql_ms(spec.retry.no_answer_secs)?,
        sql_ms(spec.retry.failed_secs)?,
        sql_ms(spec.dedupe_period_secs)?,
    ];
    let windows: Vec<(u8, u16, u16)> = checked
        .rules
        .iter()
        .map(|r| (r.days, r.start_min, r.end_min))
        .collect();
    let holidays: Vec<String> = checked.holidays.iter().map(|d| d.to_string()).collect();
    let id = tx.insert_list(spec, secs, &windows, &holidays, now)?;
    load(tx, id)
}

pub fn get_list(conn: &Db, id: ListId) -> Result<List> {
    load(conn, id)
}

pub fn get_list_by_name(conn: &Db, name: &str) -> Result<List> {
    match conn.list_id_by_name(name)? {
        Some(id) => load(conn, id),
        None => Err(OutboundError::NoSuchList(format!("{name:?}"))),
    }
}

/// Every list, oldest first.
pub fn list_lists(conn: &Db) -> Result<Vec<List>> {
    conn.list_ids()?
        .into_iter()
        .map(|id| load(conn, id))
        .collect()
}

/// Stop dialing new contacts for now (live attempts go on). Idempotent.
pub fn pause_list(conn: &Db, id: ListId, now_ms: u64) -> Result<List> {
    set_state(conn, id, ListState::Paused, now_ms)
}

/// Dial again after a pause. Idempotent; a stopped list cannot be resumed.
pub fn resume_list(conn: &Db, id: ListId, now_ms: u64) -> Result<List> {
    set_state(conn, id, ListState::Active, now_ms)
}

/// End the list for good: nothing more is dialed from it. Idempotent.
pub fn stop_list(conn: &Db, id: ListId, now_ms: u64) -> Result<List> {
    set_state(conn, id, ListState::Stopped, now_ms)
}

fn set_state(conn: &Db, id: ListId, to: ListState, now_ms: u64) -> Result<List> {
    let tx = super::write_tx(conn)?;
    let list = load(&*tx, id)?;
    if list.state == to {
        return Ok(list);
    }
    if list.state == ListState::Stopped {
        return Err(OutboundError::Conflict(format!(
            "list {:?} is stopped; a stopped list cannot be {}",
            list.spec.name,
            if to == ListState::Active {
                "resumed"
            } else {
                "paused"
            }
        )));
    }
    tx.set_list_state(id, to, sql_ms(now_ms)?)?;
    let list = load(&*tx, id)?;
    tx.commit()?;
    Ok(list)
}

pub(crate) fn load(conn: &Db, id: ListId) -> Result<List> {
    let r = conn
        .load_list(id)?
        .ok_or_else(|| OutboundError::NoSuchList(id.to_string()))?;
    Ok(List {
        id,
        spec: ListSpec {
            name: r.name,
            purpose: r.purpose,
            queue: r.queue,
            mode: r.mode,
            time_zone: r.time_zone,
            quota_per_day: r.quota_per_day,
            agent_quota_per_day: r.agent_quota_per_day,
            max_attempts: r.max_attempts,
            retry: RetryDelays {
                busy_secs: ms_from_sql(r.retry_busy_s),
                no_answer_secs: ms_from_sql(r.retry_no_answer_s),
                failed_secs: ms_from_sql(r.retry_failed_s),
            },
            dedupe_period_secs: ms_from_sql(r.dedupe_period_s),
            priority: r.priority,
            agents: r.agents,
            windows: r
                .windows
                .into_iter()
                .map(|(days, start, end)| Window {
                    days: calendar::day_names(days),
                    start: calendar::fmt_hhmm(start),
                    end: calendar::fmt_hhmm(end),
                })
                .collect(),
            holidays: r.holidays,
        },
        state: r.state,
        created_at_ms: ms_from_sql(r.created_at_ms),
        state_changed_at_ms: ms_from_sql(r.state_changed_at_ms),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::testutil::{db, spec};

    #[test]
    fn create_get_and_round_trip() {
        let (_dir, conn) = db();
        let mut s = spec("follow-ups");
        s.holidays = vec!["2024-12-26".into(), "2024-12-25".into()];
        s.windows.push(Window {
            days: vec!["Saturday".into()],
            start: "10:00".into(),
            end: "24:00".into(),
        });
        let list = create_list(&conn, &s, 1_000).unwrap();
        assert_eq!(list.state, ListState::Active);
        assert_eq!(list.created_at_ms, 1_000);
        let got = get_list_by_name(&conn, "follow-ups").unwrap();
        assert_eq!(got, list);
        assert_eq!(got.spec.holidays, ["2024-12-25", "2024-12-26"]);
        assert_eq!(
            got.spec.windows[0].days,
            ["mon", "tue", "wed", "thu", "fri"]
        );
        assert_eq!(got.spec.windows[1].days, ["sat"]);
        assert_eq!(got.spec.windows[1].end, "24:00");
        assert_eq!(list_lists(&conn).unwrap().len(), 1);
        let dup = create_list(&conn, &s, 2_000).unwrap_err();
        assert!(matches!(dup, OutboundError::Conflict(_)), "{dup}");
        assert!(matches!(
            get_list(&conn, ListId(99)),
            Err(OutboundError::NoSuchList(_))
        ));
    }

    #[test]
    fn validation_reports_every_problem() {
        let mut s = spec(" bad ");
        s.agents.clear();
        s.queue = None;
        s.time_zone = "Europe/Londres".into();
        s.windows = vec![Window {
            days: vec!["funday".into()],
            start: "18:00".into(),
            end: "25:00".into(),
        }];
        s.holidays = vec!["31/12/2024".into()];
        s.quota_per_day = Some(0);
        s.max_attempts = 0;
        s.retry.busy_secs = 10_000_000;
        let Err(OutboundError::InvalidList(errs)) = s.validate() else {
            panic!("accepted");
        };
        let all = errs.join("\n");
        for needle in [
            "name",
            "agents or the queue",
            "Europe/Londres",
            "funday",
            "25:00",
            "31/12/2024",
            "quota_per_day",
            "max_attempts",
            "retry.busy_secs",
        ] {
            assert!(all.contains(needle), "{needle} missing in:\n{all}");
        }
        let mut s = spec("night");
        s.windows[0].start = "22:00".into();
        s.windows[0].end = "06:00".into();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("cannot cross midnight"), "{err}");
    }

    #[test]
    fn spec_from_json_with_defaults() {
        let s: ListSpec = serde_json::from_value(serde_json::json!({
            "name": "survey", "purpose": "survey", "queue": "sales", "mode": "progressive",
            "time_zone": "Europe/London",
            "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "17:00"}],
            "quota_per_day": 30
        }))
        .unwrap();
        assert_eq!(s.max_attempts, 3);
        assert_eq!(s.retry, RetryDelays::default());
        s.validate().unwrap();
        assert!(serde_json::from_value::<ListSpec>(serde_json::json!({
            "name": "x", "purpose": "survey", "queue": "q", "mode": "preview",
            "time_zone": "UTC", "windows": [], "quota": 3
        }))
        .is_err());
    }

    #[test]
    fn pause_resume_stop() {
        let (_dir, conn) = db();
        let id = create_list(&conn, &spec("l"), 0).unwrap().id;
        assert_eq!(pause_list(&conn, id, 5).unwrap().state, ListState::Paused);
        assert_eq!(pause_list(&conn, id, 6).unwrap().state_changed_at_ms, 5);
        assert_eq!(resume_list(&conn, id, 7).unwrap().state, ListState::Active);
        assert_eq!(stop_list(&conn, id, 8).unwrap().state, ListState::Stopped);
        assert!(matches!(
            resume_list(&conn, id, 9),
            Err(OutboundError::Conflict(_))
        ));
        assert_eq!(stop_list(&conn, id, 9).unwrap().state, ListState::Stopped);
    }
}
