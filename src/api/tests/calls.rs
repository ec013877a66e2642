//! Call records: listing with filters and cursors, a call's timeline, dispositions.

use super::*;

fn ids(r: &Resp) -> Vec<u64> {
    r.json()["calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_u64().unwrap())
        .collect()
}

#[tokio::test]
async fn calls_are_listed_with_filters_and_cursors() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/calls", Some(SUP)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ids(&r), [6, 5, 4, 3, 2, 1]);
    assert_eq!(r.json()["next_cursor"], Value::Null);
    let first = &r.json()["calls"][5];
    assert_eq!(first["caller_number"], "+493011");
    assert_eq!(first["disposition"], Value::Null);

    // Pages of 4: two pages, no overlap, no gap.
    let r = get_(&h, "/api/v1/calls?limit=4", Some(SUP)).await;
    assert_eq!(ids(&r), [6, 5, 4, 3]);
    let cursor = r.json()["next_cursor"].as_str().unwrap().to_string();
    let r = get_(
        &h,
        &format!("/api/v1/calls?limit=4&cursor={cursor}"),
        Some(SUP),
    )
    .await;
    assert_eq!(ids(&r), [2, 1]);
    assert_eq!(r.json()["next_cursor"], Value::Null);

    let r = get_(&h, "/api/v1/calls?queue=sales&from=2000&to=4000", Some(SUP)).await;
    assert_eq!(ids(&r), [3, 2]);
    let r = get_(&h, "/api/v1/calls?outcome=abandoned", Some(SUP)).await;
    assert_eq!(ids(&r), [6]);
    let r = get_(&h, "/api/v1/calls?caller=%2B493033", Some(SUP)).await;
    assert_eq!(ids(&r), [3]);
    let r = get_(&h, "/api/v1/calls?agent=1002&limit=1", Some(SUP)).await;
    assert_eq!(ids(&r), [4]);
    assert!(r.json()["next_cursor"].is_string());

    // An agent sees its own calls only.
    let r = get_(&h, "/api/v1/calls", Some(AG)).await;
    assert_eq!(ids(&r), [5, 3, 1]);
    let r = get_(&h, "/api/v1/calls?agent=1002", Some(AG)).await;
    assert_eq!(r.status, 403);
    let r = get_(&h, "/api/v1/calls", Some(WB)).await;
    assert_eq!(r.status, 403);

    for bad in [
        "limit=0",
        "limit=501",
        "from=yesterday",
        "cursor=zzz",
        "colour=red",
    ] {
        let r = get_(&h, &format!("/api/v1/calls?{bad}"), Some(SUP)).await;
        assert_eq!((r.status, r.error_code()), (422, "invalid".into()), "{bad}");
    }
}

#[tokio::test]
async fn a_call_has_its_timeline() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/calls/1", Some(AG)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["call"]["id"], 1);
    assert_eq!(v["call"]["agent"], "1001");
    let kinds: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["entered", "offered", "answered"]);
    assert_eq!(
        v["events"][0],
        json!({"at_ms": 1001, "kind": "entered", "agent": "1001", "detail": null})
    );
    assert_eq!(get_(&h, "/api/v1/calls/2", Some(AG)).await.status, 403);
    assert_eq!(get_(&h, "/api/v1/calls/2", Some(SUP)).await.status, 200);
    assert_eq!(get_(&h, "/api/v1/calls/99", Some(SUP)).await.status, 404);
    assert_eq!(get_(&h, "/api/v1/calls/abc", Some(SUP)).await.status, 404);
}

#[tokio::test]
async fn dispositions_are_checked_and_written() {
    let mut h = harness().await;
    let r = post(
        &h,
        "/api/v1/calls/1/disposition",
        AG,
        Some(json!({"code": "resolved", "notes": "ok"})),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (200, "{}"));
    let r = post(
        &h,
        "/api/v1/calls/2/disposition",
        AG,
        Some(json!({"code": "resolved"})),
    )
    .await;
    assert_eq!(r.status, 403, "not its call");
    let r = post(
        &h,
        "/api/v1/calls/2/disposition",
        SUP,
        Some(json!({"code": "sold"})),
    )
    .await;
    assert_eq!(r.status, 422);
    let r = post(
        &h,
        "/api/v1/calls/99/disposition",
        SUP,
        Some(json!({"code": "resolved"})),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        &h,
        "/api/v1/calls/1/disposition",
        WB,
        Some(json!({"code": "resolved"})),
    )
    .await;
    assert_eq!(r.status, 403);
    let mut dispositions = vec![];
    let mut results = vec![];
    written(&h).await;
    while let Ok(op) = h.ops.try_recv() {
        match op {
            Op::Api(ApiOp::Disposition { call, code, notes }) => {
                dispositions.push((call, code, notes))
            }
            Op::Api(ApiOp::Audit { action, result, .. }) => {
                results.push(format!("{action} {result}"))
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(
        dispositions,
        [(1, "resolved".to_string(), Some("ok".to_string()))]
    );
    assert_eq!(
        results,
        [
            "call.disposition ok",
            "call.disposition forbidden",
            "call.disposition invalid",
            "call.disposition not_found",
            "call.disposition forbidden"
        ]
    );
    // Through the real writer, the row gets it.
    let conn = crate::store::open(h.dir.path()).unwrap();
    let w = crate::store::Writer::start(conn, 4).unwrap();
    w.sender
        .send(
            ApiOp::Disposition {
                call: 1,
                code: "resolved".into(),
                notes: Some("ok".into()),
            }
            .into(),
        )
        .await
        .unwrap();
    tokio::task::spawn_blocking(move || w.join()).await.unwrap();
    let r = get_(&h, "/api/v1/calls/1", Some(SUP)).await;
    assert_eq!(
        (
            r.json()["call"]["disposition"].clone(),
            r.json()["call"]["notes"].clone()
        ),
        (json!("resolved"), json!("ok"))
    );
}
