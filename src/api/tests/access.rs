//! Tokens, roles, audits and the agent actions the API passes to the call manager.

use super::*;

#[tokio::test]
async fn tokens_are_required_and_errors_are_json() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/agents", None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.error_code(), "unauthorized");
    assert!(r.headers.contains("www-authenticate: bearer"));
    let r = get_(&h, "/api/v1/agents", Some("not-a-configured-token")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["error"]["message"], "unknown bearer token");
    let r = request(
        h.addr,
        "GET",
        "/api/v1/agents",
        None,
        &[("Authorization", "Basic eDp5")],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    // A prefix of a real token is not a token.
    let r = get_(&h, "/api/v1/agents", Some(&SUP[..10])).await;
    assert_eq!(r.status, 401);

    let r = get_(&h, "/api/v1/agents", Some(WB)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["id"], "1001");
    let r = get_(&h, "/api/v1/stats", Some(AG)).await;
    assert_eq!(
        (r.status, r.json()["day"].clone()),
        (200, json!("2026-01-01"))
    );
    // A wallboard sees who waits how long, not who it is; a supervisor sees the caller.
    let r = get_(&h, "/api/v1/queues/sales", Some(WB)).await;
    assert_eq!(
        r.json(),
        json!({"queue": "sales", "waiting": [{"call": 7, "position": 1, "caller_number": null,
            "caller_name": null, "priority": 0, "wait_secs": 3.0}]})
    );
    let r = get_(&h, "/api/v1/queues/sales", Some(SUP)).await;
    assert_eq!(r.json()["waiting"][0]["caller_number"], "+442079460958");
    let r = get_(&h, "/api/v1/queues/nope", Some(WB)).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found".into()));

    // Unknown API paths and wrong methods answer JSON too; other paths keep admin's fallback.
    let r = get_(&h, "/api/v1/nothing/here", Some(SUP)).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found".into()));
    let r = request(h.addr, "DELETE", "/api/v1/agents", Some(SUP), &[], None).await;
    assert_eq!(
        (r.status, r.error_code()),
        (405, "method_not_allowed".into())
    );
    let r = get_(&h, "/healthz", None).await;
    assert_eq!((r.status, r.body.as_str()), (200, "ok"));
    let r = get_(&h, "/elsewhere", None).await;
    assert_eq!((r.status, r.body.as_str()), (404, "not found\n"));
}

#[tokio::test]
async fn roles_are_enforced_and_every_post_is_audited() {
    let mut h = harness().await;
    let r = post(&h, "/api/v1/agents/1001/login", WB, None).await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden".into()));
    let r = post(
        &h,
        "/api/v1/agents/1002/pause",
        AG,
        Some(json!({"reason": "break"})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (403, "forbidden".into()));
    let r = post(
        &h,
        "/api/v1/calls/7/move",
        AG,
        Some(json!({"to_front": true})),
    )
    .await;
    assert_eq!(r.status, 403);
    let r = request(
        h.addr,
        "POST",
        "/api/v1/agents/1001/logout",
        None,
        &[],
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = post(&h, "/api/v1/agents/9999/login", SUP, None).await;
    assert_eq!((r.status, r.error_code()), (404, "not_found".into()));
    assert!(
        h.controls.lock().unwrap().is_empty(),
        "nothing reached the call manager"
    );

    let a = audits(&mut h).await;
    assert_eq!(
        a,
        vec![
            (
                Some("wallboard".into()),
                "agent.login".into(),
                "1001".into(),
                "forbidden".into(),
                true
            ),
            (
                Some("agent".into()),
                "agent.pause".into(),
                "1002".into(),
                "forbidden".into(),
                true
            ),
            (
                Some("agent".into()),
                "call.move".into(),
                "7".into(),
                "forbidden".into(),
                true
            ),
            (
                None,
                "agent.logout".into(),
                "1001".into(),
                "unauthorized".into(),
                true
            ),
            (
                Some("supervisor".into()),
                "agent.login".into(),
                "9999".into(),
                "not_found".into(),
                true
            ),
        ]
    );
}

#[tokio::test]
async fn agent_actions_reach_the_call_manager() {
    let mut h = harness().await;
    let r = post(&h, "/api/v1/agents/1001/login", AG, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["state"], "available");
    assert_eq!(r.json()["name"], "None", "no queues named");
    let r = post(
        &h,
        "/api/v1/agents/1002/login",
        SUP,
        Some(json!({"queues": ["sales"]})),
    )
    .await;
    assert_eq!(r.json()["name"], "Some([\"sales\"])");
    let r = post(
        &h,
        "/api/v1/agents/1001/pause",
        AG,
        Some(json!({"reason": "lunch"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (r.json()["state"].clone(), r.json()["reason"].clone()),
        (json!("paused"), json!("lunch"))
    );
    // The API checks the reason against the config before asking anyone.
    let r = post(
        &h,
        "/api/v1/agents/1001/pause",
        AG,
        Some(json!({"reason": "nap"})),
    )
    .await;
    assert_eq!((r.status, r.error_code()), (422, "invalid".into()));
    let r = post(&h, "/api/v1/agents/1001/pause", AG, None).await;
    assert_eq!(r.status, 422);
    let r = post(
        &h,
        "/api/v1/agents/1001/pause",
        AG,
        Some(json!({"reason": "break", "x": 1})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = post(&h, "/api/v1/agents/1001/unpause", AG, None).await;
    assert_eq!(r.status, 200);
    let r = post(&h, "/api/v1/agents/1001/wrapup/end", SUP, None).await;
    assert_eq!(r.status, 200);
    // The call manager's refusal comes back as its HTTP code.
    let r = post(&h, "/api/v1/agents/1001/logout", AG, None).await;
    assert_eq!((r.status, r.error_code()), (409, "conflict".into()));
    assert_eq!(r.json()["error"]["message"], "agent is on a call");
    let r = post(
        &h,
        "/api/v1/calls/7/move",
        SUP,
        Some(json!({"to_front": true})),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = post(
        &h,
        "/api/v1/calls/8/move",
        SUP,
        Some(json!({"queue": "support"})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &h,
        "/api/v1/calls/7/move",
        SUP,
        Some(json!({"to_front": true, "queue": "q"})),
    )
    .await;
    assert_eq!(r.status, 422);

    assert_eq!(
        *h.controls.lock().unwrap(),
        [
            "Login",
            "Login",
            "Pause",
            "Unpause",
            "EndWrapup",
            "Logout",
            "MoveCall",
            "MoveCall"
        ]
    );
    let results: Vec<String> = audits(&mut h)
        .await
        .into_iter()
        .map(|a| format!("{} {}", a.1, a.3))
        .collect();
    assert_eq!(
        results,
        [
            "agent.login ok",
            "agent.login ok",
            "agent.pause ok",
            "agent.pause invalid",
            "agent.pause invalid",
            "agent.pause invalid",
            "agent.unpause ok",
            "agent.wrapup_end ok",
            "agent.logout conflict",
            "call.move ok",
            "call.move not_found",
            "call.move invalid"
        ]
    );
}
