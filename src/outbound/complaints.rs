//! Complaint follow-ups: a call dispositioned `complaint` becomes a contact of the complaint list
//! (created on demand from configured settings), due 12 h after the complaint; and the view of
//! open complaints with the two deadlines — a reply (an answered follow-up call) within 12 h and
//! resolution (the contact dispositioned done) within 48 h.
//!
//! A complaint is open while its contact is not `done`: an unreachable or do-not-call complaint is
//! still unresolved, and stays visible until a lead closes it (disposition `done`).

use super::e164::{normalise, CountryCode};
use super::import::insert_single;
use super::lists::{get_list_by_name, insert_list, ListSpec, RetryDelays, Window};
use super::{
    ms_from_sql, sql_ms, write_tx, ContactId, ContactState, ListId, ListState, Mode, OutboundError,
    Purpose, Result,
};
use crate::store::outbound::Db;
use serde::Serialize;
use serde_json::{Map, Value};

/// A complaint must get a reply (an answered call) within 12 h …
pub const COMPLAINT_REPLY_WITHIN_MS: u64 = 12 * 3_600_000;
/// … and be resolved (contact done) within 48 h.
pub const COMPLAINT_RESOLVE_WITHIN_MS: u64 = 48 * 3_600_000;

/// Where complaint follow-ups go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplaintSettings {
    /// The list, created with these settings when no list of that name exists yet. Its purpose
    /// must be `complaint`.
    pub list: ListSpec,
    /// For caller numbers that arrive in national form.
    pub country_code: CountryCode,
}

impl ComplaintSettings {
    /// A complaint list worked by `queue` and/or `agents`: preview, every day 08:00–20:00 local,
    /// 6 attempts (busy after 10 min, no answer after 30 min, failed after 15 min), no duplicate
    /// rule (the customer asked for the call), priority 100 (before other lists).
    pub fn new(
        list_name: &str,
        time_zone: &str,
        queue: Option<String>,
        agents: Vec<String>,
        country_code: CountryCode,
    ) -> Self {
        ComplaintSettings {
            list: ListSpec {
                name: list_name.to_string(),
                purpose: Purpose::Complaint,
                agents,
                queue,
                mode: Mode::Preview,
                time_zone: time_zone.to_string(),
                windows: vec![Window {
                    days: vec!["mon-sun".into()],
                    start: "08:00".into(),
                    end: "20:00".into(),
                }],
                holidays: Vec::new(),
                quota_per_day: None,
                agent_quota_per_day: None,
                max_attempts: 6,
                retry: RetryDelays {
                    busy_secs: 600,
                    no_answer_secs: 1_800,
                    failed_secs: 900,
                },
                dedupe_period_secs: 0,
                priority: 100,
            },
            country_code,
        }
    }
}

/// What [`complaint_follow_up`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplaintFollowUp {
    pub list: ListId,
    pub contact: ContactId,
    pub due_at_ms: u64,
    /// The complaint list did not exist and was created.
    pub list_created: bool,
    /// The call already had its follow-up (a repeated disposition): nothing added.
    pub already_existed: bool,
}

/// Add the follow-up of the complaint made on inbound call `call_id` at `at_ms`: a contact for
/// the caller, due `at_ms` + 12 h, on the complaint list. Idempotent per call.
pub fn complaint_follow_up(
    conn: &Db,
    settings: &ComplaintSettings,
    call_id: u64,
    caller_number: &str,
    caller_name: Option<&str>,
    at_ms: u64,
) -> Result<ComplaintFollowUp> {
    if settings.list.purpose != Purpose::Complaint {
        return Err(OutboundError::Invalid(format!(
            "complaint list {:?} must have purpose complaint",
            settings.list.name
        )));
    }
    let number = normalise(caller_number, &settings.country_code).map_err(|reason| {
        OutboundError::InvalidNumber {
            input: caller_number.to_string(),
            reason,
        }
    })?;
    let due_at_ms = at_ms.saturating_add(COMPLAINT_REPLY_WITHIN_MS);
    let call = sql_ms(call_id)?;
    let tx = write_tx(conn)?;
    let (list, list_created) = match get_list_by_name(&*tx, &settings.list.name) {
        Ok(l) => (l, false),
        Err(OutboundError::NoSuchList(_)) => (insert_list(&*tx, &settings.list, at_ms)?, true),
        Err(e) => return Err(e),
    };
    if list.spec.purpose != Purpose::Complaint {
        return Err(OutboundError::Conflict(format!(
            "list {:?} exists with purpose {}, not complaint",
            list.spec.name, list.spec.purpose
        )));
    }
    if list.state == ListState::Stopped {
        return Err(OutboundError::Conflict(format!(
            "complaint list {:?} is stopped",
            list.spec.name
        )));
    }
    if let Some((contact, due)) = tx.follow_up_of_call(list.id, call)? {
        return Ok(ComplaintFollowUp {
            list: list.id,
            contact,
            due_at_ms: due.map_or(due_at_ms, ms_from_sql),
            list_created,
            already_existed: true,
        });
    }
    let mut fields = Map::new();
    fields.insert("complaint_call_id".into(), Value::from(call_id));
    let contact = insert_single(
        &*tx,
        list.id,
        &number,
        &number,
        caller_name,
        fields,
        due_at_ms,
        call,
        at_ms,
    )?;
    tx.commit()?;
    Ok(ComplaintFollowUp {
        list: list.id,
        contact,
        due_at_ms,
        list_created,
        already_existed: false,
    })
}

/// One open complaint and where it stands against its deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComplaintStatus {
    pub contact: ContactId,
    pub list: ListId,
    pub list_name: String,
    /// The inbound call of the complaint (none for contacts imported into a complaint list).
    pub call_id: Option<u64>,
    pub customer_id: Option<String>,
    pub number: Option<String>,
    pub name: Option<String>,
    pub state: ContactState,
    pub complained_at_ms: u64,
    pub reply_due_at_ms: u64,
    pub resolve_due_at_ms: u64,
    /// First answered follow-up call.
    pub replied_at_ms: Option<u64>,
    /// No answered follow-up yet and the 12 h are over.
    pub past_reply: bool,
    /// Not done and the 48 h are over.
    pub past_resolve: bool,
}

/// Open complaints (contacts of complaint lists not `done`), most urgent reply first.
pub fn open_complaints(conn: &Db, now_ms: u64) -> Result<Vec<ComplaintStatus>> {
    let rows = conn.open_complaints(sql_ms(COMPLAINT_REPLY_WITHIN_MS)?)?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let complained_at_ms = ms_from_sql(r.created_at_ms);
            let reply_due_at_ms = r
                .due_at_ms
                .map_or(complained_at_ms + COMPLAINT_REPLY_WITHIN_MS, ms_from_sql);
            let resolve_due_at_ms = complained_at_ms + COMPLAINT_RESOLVE_WITHIN_MS;
            let replied_at_ms = r.first_answer_at_ms.map(ms_from_sql);
            ComplaintStatus {
                contact: r.contact,
                list: r.list,
                list_name: r.list_name,
                call_id: r.call_id.map(ms_from_sql),
                customer_id: r.customer_id,
                number: r.number,
                name: r.name,
                state: r.state,
                complained_at_ms,
                reply_due_at_ms,
                resolve_due_at_ms,
                replied_at_ms,
                past_reply: replied_at_ms.is_none() && now_ms >= reply_due_at_ms,
                past_resolve: now_ms >= resolve_due_at_ms,
            }
        })
        .collect())
}

/// Counts for metrics and the board.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ComplaintSummary {
    pub open: u64,
    pub past_reply: u64,
    pub past_resolve: u64,
}

pub fn complaint_summary(conn: &Db, now_ms: u64) -> Result<ComplaintSummary> {
    let mut s = ComplaintSummary::default();
    for c in open_complaints(conn, now_ms)? {
        s.open += 1;
        s.past_reply += u64::from(c.past_reply);
        s.past_resolve += u64::from(c.past_resolve);
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::testutil::{db, ms, HOUR};
    use crate::outbound::{
        next_contact, record_hangup, record_result, set_disposition, AttemptResult, Decision,
    };

    fn settings() -> ComplaintSettings {
        ComplaintSettings::new(
            "complaints",
            "Europe/London",
            Some("support".into()),
            Vec::new(),
            CountryCode::new("44").unwrap(),
        )
    }

    #[test]
    fn a_complaint_becomes_a_follow_up_due_in_12_hours() {
        let (_dir, conn) = db();
        let t = ms("2024-03-04T09:00:00Z");
        let f =
            complaint_follow_up(&conn, &settings(), 41, "020 7946 0958", Some("Ann"), t).unwrap();
        assert!(f.list_created && !f.already_existed);
        assert_eq!(f.due_at_ms, t + 12 * HOUR);
        let again =
            complaint_follow_up(&conn, &settings(), 41, "020 7946 0958", Some("Ann"), t + 5)
                .unwrap();
        assert!(again.already_existed && !again.list_created);
        assert_eq!(again.contact, f.contact);
        let other =
            complaint_follow_up(&conn, &settings(), 42, "+33 1 23 45 67 89", None, t).unwrap();
        assert!(!other.list_created);
        assert!(complaint_follow_up(&conn, &settings(), 43, "anonymous", None, t).is_err());

        let open = open_complaints(&conn, t + HOUR).unwrap();
        assert_eq!(open.len(), 2);
        assert_eq!(open[0].number.as_deref(), Some("+442079460958"));
        assert_eq!(open[0].call_id, Some(41));
        assert_eq!(open[0].name.as_deref(), Some("Ann"));
        assert_eq!(
            complaint_summary(&conn, t + HOUR).unwrap(),
            ComplaintSummary {
                open: 2,
                past_reply: 0,
                past_resolve: 0
            }
        );

        // Call 41 is answered after 2 h; call 42 nobody reaches.
        let Decision::Dial {
            attempt, contact, ..
        } = next_contact(&conn, f.list, "agent7", t + 2 * HOUR).unwrap()
        else {
            panic!("nothing to dial");
        };
        assert_eq!(contact.id, f.contact, "the earliest due complaint first");
        record_result(
            &conn,
            attempt,
            AttemptResult::Answered,
            Some(200),
            t + 2 * HOUR,
        )
        .unwrap();
        record_hangup(&conn, attempt, t + 3 * HOUR).unwrap();
        assert_eq!(
            complaint_summary(&conn, t + 13 * HOUR).unwrap(),
            ComplaintSummary {
                open: 2,
                past_reply: 1,
                past_resolve: 0
            }
        );
        assert_eq!(
            complaint_summary(&conn, t + 49 * HOUR).unwrap(),
            ComplaintSummary {
                open: 2,
                past_reply: 1,
                past_resolve: 2
            }
        );
        set_disposition(
            &conn,
            attempt,
            "done",
            Some("refund agreed"),
            None,
            t + 3 * HOUR,
        )
        .unwrap();
        let open = open_complaints(&conn, t + 49 * HOUR).unwrap();
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].call_id, Some(42));
        assert!(open[0].past_reply && open[0].past_resolve);
    }

    #[test]
    fn the_complaint_list_must_be_a_complaint_list() {
        let (_dir, conn) = db();
        let mut s = settings();
        crate::outbound::create_list(
            &conn,
            &ListSpec {
                purpose: Purpose::Survey,
                ..s.list.clone()
            },
            0,
        )
        .unwrap();
        assert!(matches!(
            complaint_follow_up(&conn, &s, 1, "+442079460958", None, 0),
            Err(OutboundError::Conflict(_))
        ));
        s.list.purpose = Purpose::Survey;
        assert!(matches!(
            complaint_follow_up(&conn, &s, 1, "+442079460958", None, 0),
            Err(OutboundError::Invalid(_))
        ));
    }
}
