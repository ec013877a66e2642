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
        _ => vec![],
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
        let content_type = if r.path.ends_with("/events") {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut op = json!({
            "summary": r.summary,
            "description": format!("Roles: {}", r.roles),
            "parameters": params,
            "responses": {
                "200": {"description": "OK", "content": {content_type: {"schema": answer(r.method, r.path)}}},
            }
        });
        if r.roles == "none" {
            op["security"] = json!([]);
        } else {
            for (code, what) in [
                ("400", "malformed JSON body"),
                ("401", "no or unknown token"),
                ("403", "role not allowed"),
                ("404", "not found"),
                ("409", "state does not allow it"),
                ("422", "invalid input"),
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
                    "code": s("string"), "message": s("string")}}}},
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
