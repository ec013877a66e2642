//! The OpenAPI document against the router, and the report routes by role and format.

use super::*;

#[tokio::test]
async fn openapi_lists_exactly_the_routes() {
    let h = harness().await;
    let r = get_(&h, "/api/v1/openapi.json", None).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let mut served: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_ascii_uppercase(), p.clone()))
        })
        .collect();
    served.sort();
    let mut table: Vec<(String, String)> = ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    table.sort();
    assert_eq!(served, table);
    // Every schema a route refers to is defined.
    fn refs(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(r)) = m.get("$ref") {
                    out.push(r.clone());
                }
                m.values().for_each(|x| refs(x, out));
            }
            Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = vec![];
    refs(&doc, &mut all);
    assert!(all.iter().any(|r| r.ends_with("/ListSpec")), "{all:?}");
    for r in all {
        let name = r.trim_start_matches("#/components/schemas/");
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} is not defined"
        );
    }
    // Every documented route is routed (not the JSON 404 of unknown API paths, not a 405):
    // without a token each answers 401, except the document itself.
    for (method, path) in table {
        let concrete = path
            .replace("{queue}", "sales")
            .replace("{id}", "1001")
            .replace("{list}", "follow-up")
            .replace("{number}", "%2B442079460958");
        let r = request(h.addr, &method, &concrete, None, &[], None).await;
        let want = if path.ends_with("openapi.json") {
            200
        } else {
            401
        };
        assert_eq!(r.status, want, "{method} {path}: {}", r.body);
    }
}

#[tokio::test]
async fn reports_are_served_by_role_in_every_format() {
    let h = harness().await;
    let day = "/api/v1/reports/queues?date=1970-01-01";
    let r = get_(&h, day, Some(WB)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.headers.contains("content-type: application/json"),
        "{}",
        r.headers
    );
    assert!(r.headers.contains("vary: accept"), "{}", r.headers);
    let v = r.json();
    assert_eq!(v["period"]["first_day"], "1970-01-01");
    assert_eq!(v["interval_minutes"], 30);
    assert!(v.get("agents").is_none(), "{v}");
    let queues = v["queues"].as_array().unwrap();
    assert_eq!(queues.len(), 2, "{v}");
    assert_eq!(queues[0]["queue"], "sales");
    assert_eq!(queues[0]["totals"]["offered"], 4);
    assert_eq!(queues[0]["totals"]["answered"], 4);
    assert_eq!(queues[0]["goals"]["sl_goal"], 0.8);
    assert_eq!(queues[1]["totals"]["abandoned"], 1);

    // The same content as `ctid report`'s renderings.
    let settings = crate::report::Settings::from_config(&report_config()).unwrap();
    let req = |parts, agent: Option<&str>| crate::report::Request {
        kind: crate::report::PeriodKind::Day,
        date: "1970-01-01".parse().unwrap(),
        queue: None,
        agent: agent.map(String::from),
        interval_minutes: None,
        parts,
    };
    let cli = |parts, agent, format| {
        let rep = crate::report::generate(h.dir.path(), &settings, &req(parts, agent), 0).unwrap();
        crate::report::render::render(&rep, format).unwrap()
    };
    use crate::report::{Parts, ReportFormat};
    assert_eq!(r.body, cli(Parts::Queues, None, ReportFormat::Json));
    let csv = get_(&h, &format!("{day}&format=csv"), Some(SUP)).await;
    assert!(
        csv.headers.contains("content-type: text/csv"),
        "{}",
        csv.headers
    );
    assert_eq!(csv.body, cli(Parts::Queues, None, ReportFormat::Csv));
    let md = request(
        h.addr,
        "GET",
        day,
        Some(SUP),
        &[("Accept", "text/markdown")],
        None,
    )
    .await;
    assert!(
        md.headers.contains("content-type: text/markdown"),
        "{}",
        md.headers
    );
    assert_eq!(md.body, cli(Parts::Queues, None, ReportFormat::Md));
    assert!(
        md.body.contains("| sales | SL 80%/20s, AR 90% | 4 |"),
        "{}",
        md.body
    );

    // Agents: wallboard and supervisor see everyone, an agent itself only.
    let agents = "/api/v1/reports/agents?date=1970-01-01";
    let r = get_(&h, agents, Some(WB)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, cli(Parts::Agents, None, ReportFormat::Json));
    let names: Vec<String> = r.json()["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["agent"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["1001", "1002"]);
    let own = get_(&h, agents, Some(AG)).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(
        own.body,
        cli(Parts::Agents, Some("1001"), ReportFormat::Json)
    );
    let mine = own.json();
    assert_eq!(mine["agents"].as_array().unwrap().len(), 1, "{mine}");
    assert_eq!(mine["agents"][0]["agent"], "1001", "{mine}");
    let own = get_(&h, &format!("{agents}&agent=1001&format=csv"), Some(AG)).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(own.body.starts_with("agent,answered,"), "{}", own.body);
    assert_eq!(own.body.lines().count(), 2, "{}", own.body);
    let other = get_(&h, &format!("{agents}&agent=1002"), Some(AG)).await;
    assert_eq!(other.status, 403, "{}", other.body);
    assert_eq!(other.error_code(), "forbidden");
    let r = get_(&h, day, Some(AG)).await;
    assert_eq!(r.status, 403, "an agent reads no queue report: {}", r.body);
    let r = get_(&h, day, None).await;
    assert_eq!(r.status, 401, "{}", r.body);

    // Bad parameters: 400, the parameter named.
    for (q, param) in [
        ("period=year", "period"),
        ("date=yesterday", "date"),
        ("interval=45", "interval"),
        ("format=pdf", "format"),
        ("nonsense=1", "nonsense"),
        ("date=9999-12-31&period=week", "date"),
    ] {
        let r = get_(&h, &format!("/api/v1/reports/queues?{q}"), Some(SUP)).await;
        assert_eq!(r.status, 400, "{q}: {}", r.body);
        let e = &r.json()["error"];
        assert_eq!(e["code"], "bad_parameter", "{q}");
        assert_eq!(e["parameter"], param, "{q}: {e}");
    }

    // An empty period: zeros, every configured queue and agent.
    let r = get_(
        &h,
        "/api/v1/reports/queues?period=month&date=2001-02-03",
        Some(SUP),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["period"]["first_day"], "2001-02-01");
    assert_eq!(v["period"]["last_day"], "2001-02-28");
    assert_eq!(v["interval_minutes"], 60);
    for q in v["queues"].as_array().unwrap() {
        assert_eq!(q["totals"]["offered"], 0, "{q}");
        assert!(q["totals"]["answer_rate"].is_null(), "{q}");
        assert_eq!(q["intervals"].as_array().unwrap().len(), 0, "{q}");
    }
    let r = get_(
        &h,
        "/api/v1/reports/agents?period=week&date=2001-02-03",
        Some(AG),
    )
    .await;
    let v = r.json();
    assert_eq!(v["agents"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["agents"][0]["agent"], "1001");
    assert_eq!(v["agents"][0]["answered"], 0);
    assert_eq!(v["agents"][0]["logged_in_secs"], 0.0);
}

#[tokio::test]
async fn reports_without_settings_answer_503() {
    let dir = tempfile::tempdir().unwrap();
    let (ctl_tx, _ctl_rx) = mpsc::channel(1);
    let (store, _ops) = fake_writer(dir.path());
    let (_stats_tx, stats) = watch::channel(Snapshot {
        day: "2026-01-01".into(),
        interval_minutes: 15,
        queues: vec![],
    });
    let cfg = Api {
        tokens: vec![ApiToken {
            token: SUP.into(),
            role: "supervisor".into(),
            agent: None,
            ..ApiToken::default()
        }],
        ..Api::default()
    };
    let state = ApiState::new(&cfg, vec![], ctl_tx, store, stats);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    let r = request(addr, "GET", "/api/v1/reports/queues", Some(SUP), &[], None).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.error_code(), "unavailable");
}
