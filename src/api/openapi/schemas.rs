//! The OpenAPI component schemas of the callback lists and of the report figures, apart from
//! the document's paths (`api/openapi.rs`).

use serde_json::{json, Map, Value};

use super::schema_ref;

/// The schemas of the callback-list routes.
pub(super) fn outbound_schemas() -> Map<String, Value> {
    let s = |t: &str| json!({"type": t});
    let ns = |t: &str| json!({"type": t, "nullable": true});
    let v = json!({
                "ListSpec": list_spec(),
                "ListView": {"type": "object", "properties": {
                    "id": s("integer"), "name": s("string"),
                    "state": {"type": "string", "enum": ["active", "paused", "stopped"]},
                    "spec": schema_ref("ListSpec"), "created_at_ms": s("integer"),
                    "state_changed_at_ms": s("integer"),
                    "counters": {"type": "object", "properties": {
                        "contacts": counts(&["pending", "in_progress", "done", "unreachable", "skipped"]),
                        "attempts": counts(&["claimed", "ringing", "answered", "busy", "no_answer", "rejected", "failed", "skipped"]),
                        "skipped_by_reason": {"type": "object", "additionalProperties": s("integer")},
                        "quota_per_day": ns("integer"), "quota_used_today": s("integer"),
                        "agents_today": {"type": "object", "additionalProperties": s("integer")},
                        "live": s("integer"), "day_start_ms": s("integer"), "day_end_ms": s("integer")}}}},
                "ImportReport": {"type": "object", "properties": {
                    "rows": s("integer"), "imported": s("integer"), "all_or_nothing": s("boolean"),
                    "errors": {"type": "array", "items": s("string"), "description": "row N: reason"}}},
                "Contact": {"type": "object", "properties": {
                    "id": s("integer"), "list": s("integer"), "customer_id": ns("string"),
                    "phones": {"type": "array", "items": s("string")}, "name": ns("string"),
                    "fields": {"type": "object"}, "due_at_ms": ns("integer"), "state": s("string"),
                    "attempts": s("integer"), "next_attempt_at_ms": ns("integer"),
                    "last_result": ns("string"), "done_reason": ns("string"), "call_id": ns("integer"),
                    "created_at_ms": s("integer")}},
                "Attempt": {"type": "object", "properties": {
                    "id": s("integer"), "list": s("integer"), "contact": s("integer"),
                    "attempt_no": ns("integer"), "agent": ns("string"), "number": ns("string"),
                    "call_id": ns("integer"), "started_at_ms": s("integer"),
                    "answered_at_ms": ns("integer"), "ended_at_ms": ns("integer"),
                    "result": ns("string"), "sip_code": ns("integer"), "disposition": ns("string"),
                    "notes": ns("string"), "survey_score": ns("integer"), "reason": ns("string")}},
                "DoNotCall": {"type": "object", "properties": {
                    "number": s("string"), "on_list": s("boolean"), "added_at_ms": ns("integer"),
                    "source": ns("string")}},
                "ComplaintSummary": {"type": "object", "properties": {
                    "open": s("integer"), "past_reply": s("integer"), "past_resolve": s("integer"),
                    "reply_within_hours": s("integer"), "resolve_within_hours": s("integer")}},
                "Complaint": {"type": "object", "properties": {
                    "contact": s("integer"), "list": s("integer"), "list_name": s("string"),
                    "call_id": ns("integer"), "customer_id": ns("string"), "number": ns("string"),
                    "name": ns("string"), "state": s("string"), "complained_at_ms": s("integer"),
                    "reply_due_at_ms": s("integer"), "resolve_due_at_ms": s("integer"),
                    "replied_at_ms": ns("integer"), "past_reply": s("boolean"),
                    "past_resolve": s("boolean")}}
    });
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// An object of integer counts.
fn counts(keys: &[&str]) -> Value {
    let props: Map<String, Value> = keys
        .iter()
        .map(|k| (k.to_string(), json!({"type": "integer"})))
        .collect();
    json!({"type": "object", "properties": props})
}

/// `crate::outbound::ListSpec` (missing `time_zone` and `dedupe_period_secs` are filled from
/// the config by the API).
fn list_spec() -> Value {
    let s = |t: &str| json!({"type": t});
    let strings = json!({"type": "array", "items": {"type": "string"}});
    json!({
        "type": "object",
        "required": ["name", "purpose", "mode", "windows"],
        "additionalProperties": false,
        "properties": {
            "name": s("string"),
            "purpose": {"type": "string", "enum": ["follow_up", "complaint", "survey", "queue_callback", "custom"]},
            "agents": strings,
            "queue": {"type": "string", "nullable": true},
            "mode": {"type": "string", "enum": ["preview", "progressive"]},
            "time_zone": {"type": "string", "description": "IANA name; default [reports] time_zone"},
            "windows": {"type": "array", "items": {"type": "object", "required": ["days", "start", "end"], "properties": {
                "days": strings, "start": s("string"), "end": s("string")}}},
            "holidays": strings,
            "quota_per_day": {"type": "integer", "nullable": true},
            "agent_quota_per_day": {"type": "integer", "nullable": true},
            "max_attempts": {"type": "integer", "default": 3},
            "retry": {"type": "object", "properties": {
                "busy_secs": s("integer"), "no_answer_secs": s("integer"), "failed_secs": s("integer")}},
            "dedupe_period_secs": {"type": "integer", "description": "default [outbound] duplicate_period_days"},
            "priority": {"type": "integer", "default": 0}
        }
    })
}

/// A report's figures of one queue over a period or an interval (`crate::report::queue::Figures`).
pub(super) fn report_figures() -> Value {
    let mut props = Map::new();
    for k in [
        "offered",
        "answered",
        "short_abandons",
        "timeouts",
        "overflows",
        "rejected",
        "callback_requested",
        "callback_requests",
        "answered_in_target",
    ] {
        props.insert(k.into(), json!({"type": "integer"}));
    }
    props.insert(
        "abandoned".into(),
        json!({"type": "integer", "description": "short abandons NOT included (unlike /api/v1/stats)"}),
    );
    for k in [
        "answer_rate",
        "sl_offered",
        "sl_answered",
        "asa_secs",
        "longest_wait_secs",
        "aht_secs",
    ] {
        props.insert(k.into(), json!({"type": "number", "nullable": true}));
    }
    for k in ["answer_rate_met", "sl_offered_met", "sl_answered_met"] {
        props.insert(k.into(), json!({"type": "boolean", "nullable": true}));
    }
    props.insert("missed".into(), json!({"type": "boolean"}));
    json!({"type": "object", "properties": props})
}

/// `ListReport` of `GET /api/v1/reports/lists` (definitions: docs/reports.md).
pub(super) fn list_report() -> Value {
    let int = || json!({"type": "integer"});
    let nint = || json!({"type": "integer", "nullable": true});
    let num = || json!({"type": "number", "nullable": true});
    let mut figures = Map::new();
    for k in [
        "contacts_added",
        "attempts",
        "connects",
        "completed",
        "skipped_duplicate",
        "skipped_do_not_call",
        "skipped_agent",
        "retries_scheduled",
        "unreachable",
    ] {
        figures.insert(k.into(), int());
    }
    let figures = json!({"type": "object", "properties": figures});
    let mut contacts = Map::new();
    for k in [
        "total",
        "pending",
        "in_progress",
        "done",
        "unreachable",
        "skipped",
    ] {
        contacts.insert(k.into(), int());
    }
    json!({"type": "object", "properties": {
        "list": {"type": "string"}, "purpose": {"type": "string"}, "state": {"type": "string"},
        "quota_per_day": nint(), "agent_quota_per_day": nint(),
        "contacts": {"type": "object", "properties": contacts},
        "totals": figures,
        "trading_days": int(), "quota_capacity": nint(), "quota_use": num(),
        "days_quota_reached": nint(),
        "complaints": {"type": "object", "nullable": true, "properties": {
            "complaints": int(), "replied_in_12h": int(), "replied_in_12h_rate": num(),
            "resolved_in_48h": int(), "resolved_in_48h_rate": num(),
            "awaiting_reply": int(), "awaiting_resolution": int()}},
        "days": {"type": "array", "items": {"allOf": [figures, {"type": "object", "properties": {
            "date": {"type": "string"}, "start_ms": int(), "end_ms": int(),
            "trading_day": {"type": "boolean"}, "quota": nint(),
            "quota_reached": {"type": "boolean", "nullable": true}}}]}}
    }})
}
