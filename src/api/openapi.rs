//! `GET /api/v1/openapi.json`: the API as OpenAPI 3.0, generated from [`super::ROUTES`] so the
//! document lists exactly the routes the router serves.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::ROUTES;

pub(super) async fn serve() -> Response {
    Json(document()).into_response()
}

/// `{name}` segments of an axum path.
fn path_params(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// The success answer's schema of a route.
fn answer(method: &str, path: &str) -> Value {
    match (method, path) {
        ("GET", "/api/v1/agents") => json!({"type": "array", "items": schema_ref("AgentView")}),
        ("POST", p) if p.starts_with("/api/v1/agents/") => schema_ref("AgentView"),
        ("POST", _) => json!({"type": "object"}),
        ("GET", "/api/v1/queues/{queue}") => schema_ref("QueueView"),
        ("GET", "/api/v1/reports/queues") => json!({
            "type": "object",
            "properties": {
                "period": schema_ref("ReportPeriod"),
                "interval_minutes": {"type": "integer", "enum": [15, 30, 60]},
                "queues": {"type": "array", "items": schema_ref("QueueReport")}
            }
        }),
        ("GET", "/api/v1/reports/agents") => json!({
            "type": "object",
            "properties": {
                "period": schema_ref("ReportPeriod"),
                "agents": {"type": "array", "items": schema_ref("AgentReport")}
            }
        }),
        ("GET", "/api/v1/calls") => json!({
            "type": "object",
            "properties": {
                "calls": {"type": "array", "items": schema_ref("CallRecord")},
                "next_cursor": {"type": "string", "nullable": true}
            }
        }),
        ("GET", "/api/v1/calls/{id}") => json!({
            "type": "object",
            "properties": {
                "call": schema_ref("CallRecord"),
                "events": {"type": "array", "items": {"type": "object", "properties": {
                    "at_ms": {"type": "integer"}, "kind": {"type": "string"},
                    "agent": {"type": "string", "nullable": true},
                    "detail": {"type": "string", "nullable": true}}}}
            }
        }),
        _ => json!({"type": "object"}),
    }
}

fn request_body(method: &str, path: &str) -> Option<Value> {
    let (schema, required) = match path.rsplit('/').next()? {
        "login" => (
            json!({"type": "object", "properties": {"queues": {"type": "array", "items": {"type": "string"}}}}),
            false,
        ),
        "pause" => (
            json!({"type": "object", "required": ["reason"], "properties": {"reason": {"type": "string"}}}),
            true,
        ),
        "disposition" => (
            json!({"type": "object", "required": ["code"], "properties": {"code": {"type": "string"}, "notes": {"type": "string"}}}),
            true,
        ),
        "move" => (
            json!({"type": "object", "properties": {"to_front": {"type": "boolean"}, "queue": {"type": "string"}}}),
            true,
        ),
        _ => return None,
    };
    (method == "POST")
        .then(|| json!({"required": required, "content": {"application/json": {"schema": schema}}}))
}

fn query_params(path: &str) -> Vec<Value> {
    let q = |name: &str, ty: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": desc});
    match path {
        "/api/v1/calls" => vec![
            q("from", "integer", "entered at or after (unix ms)"),
            q("to", "integer", "entered before (unix ms)"),
            q("queue", "string", "queue name"),
            q("agent", "string", "agent id"),
            q(
                "outcome",
                "string",
                "answered, abandoned, timeout, overflow, rejected, interrupted",
            ),
            q("caller", "string", "part of the caller's number"),
            q("limit", "integer", "1-500, default 50"),
            q("cursor", "string", "next_cursor of the previous page"),
        ],
        "/api/v1/events" => vec![q(
            "since",
            "integer",
            "last event id seen (or the Last-Event-ID header)",
        )],
        "/api/v1/reports/queues" | "/api/v1/reports/agents" => {
            let mut v = vec![
                q("period", "string", "day (default), week (Monday to Sunday) or month"),
                q(
                    "date",
                    "string",
                    "YYYY-MM-DD, a local day inside the period; default today ([reports] time_zone)",
                ),
                q("queue", "string", "only this queue"),
            ];
            if path.ends_with("/queues") {
                v.push(q(
                    "interval",
                    "integer",
                    "15, 30 or 60 minutes; default [reports] interval_minutes for a day, 60 otherwise",
                ));
            } else {
                v.push(q(
                    "agent",
                    "string",
                    "only this agent (an agent token: its own, the default)",
                ));
            }
            v.push(q(
                "format",
                "string",
                "json (default), csv, md or table; without it the Accept header decides",
            ));
            v
        }
        _ => vec![],
    }
}

/// The success answer's content: JSON, an event stream, or a report in any of its formats.
fn content(path: &str, schema: Value) -> Value {
    if path.ends_with("/events") {
        json!({"text/event-stream": {"schema": schema}})
    } else if path.starts_with("/api/v1/reports/") {
        let text = json!({"schema": {"type": "string"}});
        json!({
            "application/json": {"schema": schema},
            "text/csv": text,
            "text/markdown": text,
            "text/plain": text,
        })
    } else {
        json!({"application/json": {"schema": schema}})
    }
}

pub(super) fn document() -> Value {
    let mut paths = Map::new();
    for r in ROUTES {
        let mut params: Vec<Value> = path_params(r.path)
            .into_iter()
            .map(|p| json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        params.extend(query_params(r.path));
        let mut op = json!({
            "summary": r.summary,
            "description": format!("Roles: {}", r.roles),
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": content(r.path, answer(r.method, r.path))},
            }
        });
        if r.roles == "none" {
            op["security"] = json!([]);
        } else {
            for (code, what) in [
                (
                    "400",
                    "malformed JSON body, or a bad query parameter (named in error.parameter)",
                ),
                ("401", "no or unknown token"),
                ("403", "role not allowed"),
                ("404", "not found"),
                ("409", "state does not allow it"),
                ("422", "invalid input"),
                ("503", "the call manager or the reports are not available"),
            ] {
                op["responses"][code] = json!({"description": what, "content": {"application/json": {"schema": schema_ref("Error")}}});
            }
        }
        if let Some(b) = request_body(r.method, r.path) {
            op["requestBody"] = b;
        }
        let entry = paths.entry(r.path.to_string()).or_insert_with(|| json!({}));
        entry[r.method.to_ascii_lowercase()] = op;
    }
    let s = |t: &str| json!({"type": t});
    let ns = |t: &str| json!({"type": t, "nullable": true});
    json!({
        "openapi": "3.0.3",
        "info": {"title": "ctid API", "version": "1"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": s("string"), "message": s("string"), "parameter": s("string")}}}},
                "ReportPeriod": {"type": "object", "properties": {
                    "kind": {"type": "string", "enum": ["day", "week", "month"]},
                    "first_day": s("string"), "last_day": s("string"), "time_zone": s("string"),
                    "start_ms": s("integer"), "end_ms": s("integer"), "start": s("string"),
                    "end": s("string")}},
                "ReportFigures": report_figures(),
                "QueueReport": {"type": "object", "properties": {
                    "queue": s("string"),
                    "goals": {"type": "object", "nullable": true, "properties": {
                        "sl_target_secs": s("integer"), "sl_goal": s("number"),
                        "answer_rate_goal": s("number")}},
                    "totals": schema_ref("ReportFigures"),
                    "intervals": {"type": "array", "items": {"allOf": [
                        schema_ref("ReportFigures"),
                        {"type": "object", "properties": {
                            "start": s("string"), "start_ms": s("integer"), "end_ms": s("integer")}}]}}}},
                "AgentReport": {"type": "object", "properties": {
                    "agent": s("string"), "answered": s("integer"), "aht_secs": ns("number"),
                    "talk_secs": s("number"), "logged_in_secs": s("number"), "paused_secs": s("number"),
                    "pause_by_reason": {"type": "object", "additionalProperties": s("number")},
                    "occupancy": ns("number")}},
                "AgentView": {"type": "object", "properties": {
                    "id": s("string"), "name": s("string"), "state": s("string"),
                    "reason": ns("string"), "pending_pause": ns("string"), "since_ms": s("integer"),
                    "call": ns("integer"), "calls_answered": s("integer"), "registered": s("boolean")}},
                "QueueView": {"type": "object", "properties": {
                    "queue": s("string"),
                    "waiting": {"type": "array", "items": {"type": "object", "properties": {
                        "call": s("integer"), "position": s("integer"), "caller_number": ns("string"),
                        "caller_name": ns("string"), "priority": s("integer"), "wait_secs": s("number")}}}}},
                "CallRecord": {"type": "object", "properties": {
                    "id": s("integer"), "sip_call_id": s("string"), "direction": s("string"),
                    "caller_number": ns("string"), "caller_name": ns("string"), "dialed_number": ns("string"),
                    "queue": ns("string"), "entered_at_ms": s("integer"), "answered_at_ms": ns("integer"),
                    "ended_at_ms": ns("integer"), "wait_ms": ns("integer"), "talk_ms": ns("integer"),
                    "agent": ns("string"), "outcome": ns("string"), "answered_in_target": ns("boolean"),
                    "short_abandon": ns("boolean"), "hangup_by": ns("string"), "hangup_cause": ns("string"),
                    "sip_code": ns("integer"), "disposition": ns("string"), "notes": ns("string")}}
            }
        }
    })
}

/// A report's figures of one queue over a period or an interval (`crate::report::queue::Figures`).
fn report_figures() -> Value {
    let mut props = Map::new();
    for k in [
        "offered",
        "answered",
        "short_abandons",
        "timeouts",
        "overflows",
        "rejected",
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
