//! Preview dialing on the agent desktop, in a real browser (headless Chromium over WebDriver):
//! SIPp plays the PBX trunk with the customer behind it and agent 1001's seat. A contact of a
//! preview list appears on `/agent` with its number, name and free fields and a countdown that
//! runs; Skip shows the next contact; Call now rings the agent and dials the customer, stored as
//! an answered outbound call of that agent. The wrap-up form then takes the outcome of that call.

use ctid_testkit as common;
use ctid_testkit::browser;

use browser::Browser;
use common::outbound::outbound_calls;
use common::*;
use serde_json::json;
use std::time::{Duration, Instant};

#[test]
fn an_agent_skips_and_accepts_previews_in_the_browser() {
    let trunk_port = free_port();
    let mut s = queue_settings(&["1001"], "wrapup_secs = 60");
    s.extra_toml.push_str(&format!(
        "\n[trunk]\nuri = \"sip:127.0.0.1:{trunk_port}\"\nusername = \"trunk\"\npassword = \"tpw\"\nqualify_interval_secs = 0\n\
         \n[outbound]\nenabled = true\ndial_timeout_secs = 10\npreview_timeout_secs = 300\n"
    ));
    let env = TestEnv::new(&s);
    let daemon = env.start();
    let trunk = sipp_spawn(
        env.path(),
        None,
        trunk_port,
        "trunk_customer_answer.xml",
        &["-m", "1", "-timeout", "90s"],
    );
    let seat = start_seat(
        env.path(),
        env.addr(),
        "1001",
        "secret1001",
        "seat_outbound.xml",
        90,
    );

    let b = Browser::start(&env, "en-GB");
    b.goto("/agent");
    b.wait_until("the sign-in form", |b| b.visible("#login-form"));
    b.fill("#login-user", "1001");
    b.fill("#login-password", "secret1001");
    b.click("#login-submit");
    b.wait_until("the agent's state", |b| {
        b.attr("#state", "data-state").as_deref() == Some("available")
    });

    let spec = json!({
        "name": "renewals", "purpose": "follow_up", "agents": ["1001"], "mode": "preview",
        "time_zone": "UTC",
        "windows": [{"days": ["mon-sun"], "start": "00:00", "end": "24:00"}],
        "dedupe_period_secs": 0
    });
    let (st, v) = api_call(
        &env,
        "POST",
        "/api/v1/lists",
        Some(SUPERVISOR_TOKEN),
        Some(("application/json", &spec.to_string())),
    );
    assert_eq!(st, 200, "create the list: {v}");
    let csv =
        "customer_id,name,phone,order\nc1,Alice,07700 900001,A-17\nc2,Bob,07700 900002,B-42\n";
    let (st, v) = api_call(
        &env,
        "POST",
        "/api/v1/lists/renewals/contacts",
        Some(SUPERVISOR_TOKEN),
        Some(("text/csv", csv)),
    );
    assert_eq!(st, 200, "import: {v}");

    // The first contact, with its free field and a running countdown.
    b.wait_until("the first preview", |b| {
        b.visible("#preview-card") && b.text("#preview-name") == "Alice"
    });
    assert_eq!(b.text("#preview-number"), "+447700900001");
    assert_eq!(b.text("#preview-list"), "renewals");
    assert!(
        b.text("#preview-fields").contains("A-17"),
        "{}",
        b.text("#preview-fields")
    );
    let first = b.text("#preview-left");
    b.wait_until("the countdown to run", |b| {
        let now = b.text("#preview-left");
        !now.is_empty() && now != first
    });
    assert_eq!(b.attr("#state", "data-state").as_deref(), Some("paused"));

    // Skip: the next contact.
    b.click("#btn-skip");
    b.wait_until("the second preview", |b| b.text("#preview-name") == "Bob");
    assert_eq!(b.text("#preview-number"), "+447700900002");

    // Call now: the seat rings and answers, the customer is dialed through the trunk.
    b.click("#btn-accept");
    b.wait_until("the preview to close", |b| !b.visible("#preview-card"));
    let deadline = Instant::now() + Duration::from_secs(30);
    let calls = loop {
        let c = outbound_calls(&env);
        if c.iter().any(|c| c.outcome.is_some()) || Instant::now() > deadline {
            break c;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(calls.len(), 1, "{}", describe_calls(&calls));
    assert_eq!(calls[0].agent.as_deref(), Some("1001"), "{:?}", calls[0]);
    assert_eq!(
        calls[0].outcome.as_deref(),
        Some("answered"),
        "{:?}",
        calls[0]
    );
    assert_eq!(
        calls[0].dialed_number.as_deref(),
        Some("+447700900002"),
        "{:?}",
        calls[0]
    );
    drop(b);
    drop(seat);
    drop(trunk);
    daemon.stop();
}
