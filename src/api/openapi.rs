//! `GET /api/v1/openapi.json`: the API as OpenAPI 3.0, generated from [`super::ROUTES`] so the
//! document lists exactly the routes the router serves.

use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};

use super::ROUTES;

mod schemas;
use schemas::{list_report, outbound_schemas, report_figures};

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
        ("GET", "/api/v1/agents/{id}/preview") => json!({
            "type": "object",
            "properties": {
                "agent": {"type": "string"},
                "preview": {"allOf": [schema_ref("PreviewView")], "nullable": true}
            }
        }),
        ("POST", "/api/v1/agents/{id}/preview/accept") => json!({
            "type": "object",
            "properties": {"agent": {"type": "string"}, "call": {"type": "integer"}}
        }),
        ("POST", "/api/v1/agents/{id}/preview/skip") => json!({"type": "object"}),
        ("POST", p) if p.starts_with("/api/v1/agents/") => schema_ref("AgentView"),
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
        ("GET", "/api/v1/reports/lists") => json!({
            "type": "object",
            "properties": {
                "period": schema_ref("ReportPeriod"),
                "lists": {"type": "array", "items": schema_ref("ListReport")}
            }
        }),
        ("GET", "/api/v1/lists") => json!({
            "type": "object",
            "properties": {"lists": {"type": "array", "items": schema_ref("ListView")}}
        }),
        ("POST", "/api/v1/lists") | ("GET", "/api/v1/lists/{list}") => schema_ref("ListView"),
        ("POST", p) if p.starts_with("/api/v1/lists/") && !p.ends_with("/contacts") => {
            schema_ref("ListView")
        }
        ("POST", "/api/v1/lists/{list}/contacts") | ("POST", "/api/v1/dnc/import") => {
            schema_ref("ImportReport")
        }
        ("GET", "/api/v1/lists/{list}/contacts") => json!({
            "type": "object",
            "properties": {
                "contacts": {"type": "array", "items": schema_ref("Contact")},
                "next_cursor": {"type": "string", "nullable": true}
            }
        }),
        ("GET", "/api/v1/lists/{list}/contacts/{id}") => json!({
            "type": "object",
            "properties": {
                "contact": schema_ref("Contact"),
                "attempts": {"type": "array", "items": schema_ref("Attempt")}
            }
        }),
        ("POST", "/api/v1/dnc") | ("GET", "/api/v1/dnc/{number}") => schema_ref("DoNotCall"),
        ("DELETE", "/api/v1/dnc/{number}") => json!({
            "type": "object",
            "properties": {"number": {"type": "string"}, "removed": {"type": "boolean"}}
        }),
        ("GET", "/api/v1/complaints/summary") => schema_ref("ComplaintSummary"),
        ("GET", "/api/v1/complaints") => json!({"allOf": [
            schema_ref("ComplaintSummary"),
            {"type": "object", "properties": {
                "complaints": {"type": "array", "items": schema_ref("Complaint")}}}
        ]}),
        ("GET", "/api/v1/callbacks") => json!({
            "type": "object",
            "properties": {"queues": {"type": "array", "items": {"type": "object", "properties": {
                "queue": {"type": "string"},
                "pending": {"type": "integer"},
                "in_progress": {"type": "integer"},
                "oldest_entered_at_ms": {"type": "integer", "nullable": true},
                "requests": {"type": "array", "description": "absent for a wallboard", "items": {
                    "type": "object", "properties": {
                        "id": {"type": "integer"}, "call_id": {"type": "integer"},
                        "caller_number": {"type": "string"},
                        "caller_name": {"type": "string", "nullable": true},
                        "entered_at_ms": {"type": "integer"},
                        "position": {"type": "integer", "nullable": true},
                        "requested_at_ms": {"type": "integer"},
                        "status": {"type": "string",
                            "enum": ["pending", "in_progress", "done", "failed"]},
                        "attempts": {"type": "integer"},
                        "last_result": {"type": "string", "nullable": true},
                        "reason": {"type": "string", "nullable": true},
                        "done_at_ms": {"type": "integer", "nullable": true},
                        "contact_id": {"type": "integer", "nullable": true},
                        "list": {"type": "string", "nullable": true}}}}}}}}
        }),
        ("POST", _) => json!({"type": "object"}),
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

/// Import bodies: CSV (the rows) or JSON.
fn import_body(json_items: Value) -> Value {
    json!({"required": true, "content": {
        "text/csv": {"schema": {"type": "string", "description": "a header row, then one row per entry; bad rows are reported as `row N: reason` (the header is row 1)"}},
        "application/json": {"schema": {"type": "array", "items": json_items}}
    }})
}

fn request_body(method: &str, path: &str) -> Option<Value> {
    match (method, path) {
        ("POST", "/api/v1/lists") => {
            return Some(
                json!({"required": true, "content": {"application/json": {"schema": schema_ref("ListSpec")}}}),
            )
        }
        ("POST", "/api/v1/lists/{list}/contacts") => {
            return Some(import_body(
                json!({"type": "object", "description": "CSV column names as keys; phone may be an array; a fields object is merged into the free fields"}),
            ))
        }
        ("POST", "/api/v1/dnc/import") => return Some(import_body(json!({"type": "string"}))),
        ("POST", "/api/v1/dnc") => {
            return Some(
                json!({"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["number"],
                "properties": {"number": {"type": "string"}, "source": {"type": "string"}}}}}}),
            )
        }
        ("POST", p) if p.starts_with("/api/v1/lists/") => return None,
        _ => {}
    }
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
        "/api/v1/lists/{list}/contacts" | "/api/v1/dnc/import" => {
            let mut v = vec![
                q(
                    "all_or_nothing",
                    "boolean",
                    "import nothing when any row is bad (default false: good rows are imported)",
                ),
                q("delimiter", "string", "CSV separator: , (default), ; or tab"),
                q(
                    "country_code",
                    "string",
                    "country calling code of national numbers; default [outbound] default_country_code",
                ),
            ];
            if path.starts_with("/api/v1/dnc") {
                v.push(q(
                    "source",
                    "string",
                    "recorded with each number; default import",
                ));
            }
            v
        }
        "/api/v1/callbacks" => vec![
            q("queue", "string", "only this queue"),
            q(
                "status",
                "string",
                "pending (default), in_progress, done, failed or all",
            ),
        ],
        "/api/v1/events" => vec![q(
            "since",
            "integer",
            "last event id seen (or the Last-Event-ID header)",
        )],
        "/api/v1/reports/queues" | "/api/v1/reports/agents" => {
            let mut v = vec![
                q("period", "string", "day (default), week (Monday to Sunday), half-month (1st-15th, 16th-end), month or quarter"),
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
        "/api/v1/reports/lists" => {
            vec![
            q("period", "string", "day (default), week (Monday to Sunday), half-month (1st-15th, 16th-end), month or quarter"),
            q(
                "date",
                "string",
                "YYYY-MM-DD, a local day inside the period; default today ([reports] time_zone)",
            ),
            q("list", "string", "only this callback list"),
            q(
                "format",
                "string",
                "json (default), csv, md or table; without it the Accept header decides",
            ),
        ]
        }
        _ => vec![],
    }
}

/// The success answer's content: JSON, an event stream, or a report in any of its formats.
fn content(path: &str, schema: Value) -> Value {
    if path.ends_with("/recording") {
        json!({"audio/wav": {"schema": {"type": "string", "format": "binary"}}})
    } else if path.ends_with("/events") {
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
        if r.method == "GET" && r.path == "/api/v1/lists/{list}/contacts" {
            let q = |name: &str, ty: &str, desc: &str| json!({"name": name, "in": "query", "required": false, "schema": {"type": ty}, "description": desc});
            params.extend([
                q(
                    "state",
                    "string",
                    "pending, in_progress, done, unreachable or skipped",
                ),
                q("limit", "integer", "1-500, default 50"),
                q("cursor", "string", "next_cursor of the previous page"),
            ]);
        } else if r.method == "POST" || r.path != "/api/v1/lists/{list}/contacts" {
            params.extend(query_params(r.path));
        }
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
                    "malformed JSON body (bad_json), a bad query parameter (bad_parameter, named in error.parameter), bad input (bad_input, the field in error.field), or an import that changed nothing (bad_rows, each row in error.errors)",
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
    let mut doc = json!({
        "openapi": "3.0.3",
        "info": {"title": "ctid API", "version": "1"},
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
                    "code": s("string"), "message": s("string"), "parameter": s("string"),
                    "field": s("string"),
                    "errors": {"type": "array", "items": s("string")}}}}},
                "ReportPeriod": {"type": "object", "properties": {
                    "kind": {"type": "string", "enum": ["day", "week", "half-month", "month", "quarter"]},
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
                    "occupancy": ns("number"), "survey_responses": s("integer"),
                    "survey_by_level": {"type": "object", "additionalProperties": s("integer")},
                    "survey_avg": ns("number"), "outbound_attempts": s("integer"),
                    "outbound_connects": s("integer"), "outbound_quota": ns("integer"),
                    "outbound_quota_use": ns("number"),
                    "outbound_lists": {"type": "array", "items": {"type": "object", "properties": {
                        "list": s("string"), "attempts": s("integer"), "connects": s("integer"),
                        "agent_quota_per_day": ns("integer"), "quota": ns("integer")}}}}},
                "ListReport": list_report(),
                "AgentView": {"type": "object", "properties": {
                    "id": s("string"), "name": s("string"), "state": s("string"),
                    "reason": ns("string"), "pending_pause": ns("string"), "since_ms": s("integer"),
                    "call": ns("integer"), "calls_answered": s("integer"), "registered": s("boolean")}},
                "PreviewView": {"type": "object", "properties": {
                    "agent": s("string"), "attempt": s("integer"), "list": s("integer"),
                    "list_name": s("string"), "number": s("string"),
                    "contact": schema_ref("Contact"), "shown_at_ms": s("integer"),
                    "expires_at_ms": s("integer")}},
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
    });
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.extend(outbound_schemas());
    }
    if let Some(props) = doc["components"]["schemas"]["CallRecord"]["properties"].as_object_mut() {
        props.insert("recording_path".into(), ns("string"));
        props.insert("recording_error".into(), ns("string"));
        props.insert("survey_score".into(), ns("integer"));
    }
    doc
}
