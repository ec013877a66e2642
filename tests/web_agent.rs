//! The agent desktop `/agent` in a real browser (headless Chromium over WebDriver) against a
//! real daemon, a SIPp seat and a SIPp PBX: the agent signs in with its SIP username and
//! password, pauses with a reason and gets ready again (the API's board agrees each time), a
//! call rings in and the page pops the caller's number and queue, the seat answers, after the
//! call the agent saves an outcome and notes and the call record shows them; a second call from
//! the same number shows the first one in the customer's history. Then, over raw HTTP, what a
//! browser would never send: a state change without the CSRF token is refused (403), the
//! security headers are there, and the session ends on sign-out.

use ctid_testkit as common;
use ctid_testkit::browser;

use browser::{http, sign_in, Browser};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn settings() -> Settings {
    let mut s = queue_settings(&["1001"], "ring_timeout_secs = 15\nwrapup_secs = 120\n");
    s.extra_toml
        .push_str("\n[reports]\ntime_zone = \"Asia/Shanghai\"\n");
    s
}

/// Agent 1001 on the board once `pred` holds (the board's last view either way).
fn agent_until(env: &TestEnv, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = board_agent(env, "1001");
        if pred(&a) || Instant::now() > deadline {
            return a;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One PBX call into `support` (4000) that stays `talk_ms` after ctid's 200, in the background.
fn call_in(env: &TestEnv, daemon: &Daemon, talk_ms: u64) -> SippBg {
    let d = talk_ms.to_string();
    sipp_spawn(
        env.path(),
        Some(daemon.addr),
        free_port(),
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            &d,
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    )
}

fn state(b: &Browser) -> String {
    b.attr("#state", "data-state").unwrap_or_default()
}

#[test]
fn an_agent_works_a_call_from_the_browser() {
    let env = TestEnv::new(&settings());
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer.xml",
        120,
    );
    let a = agent_until(&env, |a| a["state"] == "available");
    assert_eq!(a["state"], "available", "{a}");

    let b = Browser::start(&env, "en-US");
    b.goto("/agent");
    b.wait_until("the sign-in form", |b| b.visible("#login-form"));
    b.fill("#login-user", "1001");
    b.fill("#login-password", "secret1001");
    b.click("#login-submit");
    b.wait_until("the agent's state", |b| state(b) == "available");
    assert_eq!(b.text("#state"), "Ready");
    assert!(b.text("#who").contains("1001"), "{}", b.text("#who"));

    // Pause with a configured reason, then ready again.
    b.select("#pause-reason", "lunch");
    b.click("#btn-pause");
    b.wait_until("paused on the page", |b| state(b) == "paused");
    assert_eq!(b.text("#reason"), "lunch");
    let a = agent_until(&env, |a| a["state"] == "paused");
    assert_eq!(
        (a["state"].as_str(), a["reason"].as_str()),
        (Some("paused"), Some("lunch")),
        "{a}"
    );
    b.click("#btn-ready");
    b.wait_until("ready on the page", |b| state(b) == "available");
    let a = agent_until(&env, |a| a["state"] == "available");
    assert_eq!(a["state"], "available", "{a}");

    // A call rings in: the screen pop shows the caller and the queue; the seat answers.
    let pbx = call_in(&env, &daemon, 4000);
    b.wait_text("#call-number", |t| t == "555011");
    assert_eq!(b.text("#call-queue"), "support");
    b.wait_until("the call to be answered", |b| {
        b.text("#call-banner") == "On a call" || b.visible("#wrapup-card")
    });
    let run = pbx.wait();
    assert!(run.ok(), "the PBX call failed:\n{}", run.report);

    // After the call: the wrap-up form; save an outcome with notes.
    b.wait_until("the wrap-up form", |b| b.visible("#wrapup-card"));
    assert!(
        b.text("#wrapup-call").contains("555011"),
        "{}",
        b.text("#wrapup-call")
    );
    b.select("#disposition", "callback");
    b.fill("#notes", "wants a call back on Friday");
    b.click("#btn-save");
    b.wait_text("#wrapup-msg", |t| t == "Outcome saved.");

    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    assert_eq!(rows[0].agent.as_deref(), Some("1001"), "{:?}", rows[0]);
    assert_eq!(
        rows[0].outcome.as_deref(),
        Some("answered"),
        "{:?}",
        rows[0]
    );
    let (status, rec) = api_call(
        &env,
        "GET",
        &format!("/api/v1/calls/{}", rows[0].id),
        Some(SUPERVISOR_TOKEN),
        None,
    );
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["call"]["disposition"], "callback", "{rec}");
    assert_eq!(rec["call"]["notes"], "wants a call back on Friday", "{rec}");

    // End the wrap-up; today's figures count the call.
    b.click("#btn-end-wrapup");
    b.wait_until("ready after wrap-up", |b| state(b) == "available");
    b.wait_until("the figures to count the call", |b| {
        b.text("[data-figure='figures.answered']") == "1"
    });

    // The same number calls again: its history shows the first call and its outcome.
    let pbx = call_in(&env, &daemon, 1500);
    b.wait_until("the second screen pop", |b| {
        b.text("#call-number") == "555011" && b.text("#history").contains("callback")
    });
    assert!(
        b.text("#history").contains("wants a call back on Friday"),
        "{}",
        b.text("#history")
    );
    // Times are the center's ([reports] time_zone), not the machine's or the browser's (UTC).
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").expect("tz");
    let local = jiff::Timestamp::from_millisecond(rows[0].entered_at_ms)
        .expect("timestamp")
        .to_zoned(tz)
        .strftime("%H:%M:%S")
        .to_string();
    assert!(
        b.text("#history").contains(&local),
        "the first call entered at {local} Shanghai time: {}",
        b.text("#history")
    );
    b.keep_screenshot(&env, "agent.png");
    let run = pbx.wait();
    assert!(run.ok(), "the second PBX call failed:\n{}", run.report);

    // The pages' event stream resumes where a client left off (what EventSource sends after
    // a network blip): from Last-Event-ID 2, the next event is 3.
    let ws = sign_in(&env, r#"{"username":"1001","password":"secret1001"}"#);
    let all = browser::sse_ids(
        &env,
        "/web/api/v1/events?since=0",
        std::slice::from_ref(&ws.cookie),
        4,
        Duration::from_secs(10),
    );
    assert_eq!(all, vec![1, 2, 3, 4], "the stream from the start");
    let resumed = browser::sse_ids(
        &env,
        "/web/api/v1/events",
        &[ws.cookie.clone(), "Last-Event-ID: 2".into()],
        2,
        Duration::from_secs(10),
    );
    assert_eq!(resumed, vec![3, 4], "the stream after Last-Event-ID 2");

    // The desktop on a phone, in Chinese: nothing wider than the screen.
    let phone = Browser::phone(&env, "zh-CN", 390, 844);
    phone.goto("/agent");
    phone.wait_until("the sign-in form", |b| b.visible("#login-form"));
    // By keyboard alone: the username field has the focus, Tab goes to the password, Enter
    // signs in.
    phone.wait_until("the focus on the username", |b| {
        b.focused_id() == "login-user"
    });
    phone.keys("1001\u{E004}");
    assert_eq!(phone.focused_id(), "login-password");
    phone.keys("secret1001\u{E007}");
    phone.wait_until("the agent's state", |b| !state(b).is_empty());
    // Tab from the pause reason reaches Pause; Enter presses it.
    phone.eval("document.getElementById('pause-reason').focus(); return null");
    phone.keys("\u{E004}");
    assert_eq!(phone.focused_id(), "btn-pause");
    assert_eq!(phone.text("#state-h"), "我的状态");
    phone.keep_screenshot(&env, "agent-phone.png");
    phone.assert_fits(390);
    drop(phone);
    drop(b);
    drop(seat);
    daemon.stop();
}

#[test]
fn state_changes_need_the_csrf_token_and_sessions_end() {
    let mut s = settings();
    s.extra_toml.push_str(
        "\n[[api.tokens]]\ntoken = \"agent-1001-token-xyz\"\nrole = \"agent\"\nagent = \"1001\"\n",
    );
    let env = TestEnv::new(&s);
    let daemon = env.start();

    // The page itself: the security headers, and no script inline (the CSP forbids it).
    let page = http(&env, "GET", "/agent", &[], "");
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap_or("");
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
    assert!(!page.body.contains("<script>"), "inline script in /agent");

    // Wrong credentials: 401, no cookie.
    let bad = http(
        &env,
        "POST",
        "/web/login",
        &[],
        r#"{"username":"1001","password":"nope"}"#,
    );
    assert_eq!(bad.status, 401, "{bad:?}");
    assert!(bad.header("set-cookie").is_none());

    let ws = sign_in(&env, r#"{"token":"agent-1001-token-xyz"}"#);
    let set = http(
        &env,
        "POST",
        "/web/login",
        &[],
        r#"{"token":"agent-1001-token-xyz"}"#,
    );
    let cookie = set.header("set-cookie").unwrap_or("");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "cookie without {attr}: {cookie}");
    }
    assert_eq!(ws.info["role"], "agent");
    assert_eq!(ws.info["center"]["time_zone"], "Asia/Shanghai");

    // Without the token, or with a wrong one: 403, and the agent stays logged out.
    let before = board_agent(&env, "1001");
    for extra in [None, Some("X-CSRF-Token: 0000")] {
        let mut h = vec![ws.cookie.clone()];
        h.extend(extra.map(String::from));
        let a = http(
            &env,
            "POST",
            "/web/api/v1/agents/1001/pause",
            &h,
            r#"{"reason":"break"}"#,
        );
        assert_eq!(a.status, 403, "{a:?}");
        assert_eq!(a.json()["error"]["code"], "csrf", "{a:?}");
    }
    assert_eq!(board_agent(&env, "1001")["state"], before["state"]);
    // A bearer token does not open the session path, and no cookie is no session.
    let a = http(
        &env,
        "GET",
        "/web/api/v1/agents",
        &["Authorization: Bearer agent-1001-token-xyz".into()],
        "",
    );
    assert_eq!(a.status, 401, "{a:?}");

    // With the token the same request reaches the API (which answers as for the agent's token:
    // its phone is not registered, so pausing is refused by the call layer, not by the web).
    let h = vec![ws.cookie.clone(), format!("X-CSRF-Token: {}", ws.csrf)];
    let a = http(&env, "POST", "/web/api/v1/agents/1001/logout", &h, "{}");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.json()["id"], "1001", "{a:?}");
    // The agent acts only on itself, as with its token.
    let a = http(&env, "GET", "/web/api/v1/calls?agent=1002", &h, "");
    assert_eq!(a.status, 403, "{a:?}");

    // Signing out ends the session for good.
    let a = http(&env, "POST", "/web/logout", &h, "");
    assert_eq!(a.status, 200, "{a:?}");
    let a = http(&env, "GET", "/web/api/v1/agents", &h, "");
    assert_eq!(a.status, 401, "{a:?}");
    daemon.stop();
}
