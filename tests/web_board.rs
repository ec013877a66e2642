//! The supervisor's board `/board` in a real browser (headless Chromium over WebDriver) against
//! a real daemon, a SIPp seat and a SIPp PBX: a supervisor signs in with its token, sees a
//! caller waiting in a queue nobody serves (its number, the waiting count), moves it to the
//! queue whose agent is ready, and sees that queue's service level change once the seat has
//! answered; then forces the agent into a pause and out of its queues from the agent board.
//! A wallboard session sees the waiting count but no caller's number, on the page and through
//! the pages' API path.

use ctid_testkit as common;
use ctid_testkit::browser;

use browser::{http, sign_in, Browser};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const WALLBOARD_TOKEN: &str = "wallboard-token-0001";

/// Queue `support` (4000) served by 1002 only, whose phone never registers; queue `sales`
/// (4001) served by 1001.
fn settings() -> Settings {
    Settings {
        extra_toml: format!(
            "\n[calls]\nshort_abandon_secs = 5\n{}\n[[queues]]\nname = \"support\"\nnumbers = [\"4000\"]\nmembers = [{{ agent = \"1002\" }}]\nsl_target_secs = 10\n\n[[queues]]\nname = \"sales\"\nnumbers = [\"4001\"]\nmembers = [{{ agent = \"1001\" }}]\nwrapup_secs = 0\nring_timeout_secs = 15\n\n[[api.tokens]]\ntoken = {WALLBOARD_TOKEN:?}\nrole = \"wallboard\"\n",
            media_toml(410)
        ),
        ..Settings::default()
    }
}

fn agent_until(env: &TestEnv, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = board_agent(env, id);
        if pred(&a) || Instant::now() > deadline {
            return a;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PBX caller into `support` who stays on the line `on_line_ms` after ctid answers it
/// (ctid answers at once and queues it with music: the wait is part of that time).
fn caller(env: &TestEnv, daemon: &Daemon, on_line_ms: u64) -> SippBg {
    let d = on_line_ms.to_string();
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
            "60s",
            "-timeout_error",
        ],
    )
}

fn fig(b: &Browser, queue: &str, key: &str) -> String {
    b.text(&format!("[data-queue='{queue}'] [data-fig='{key}'] .value"))
}

#[test]
fn a_supervisor_sees_a_waiting_caller_and_moves_it() {
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
    let a = agent_until(&env, "1001", |a| a["state"] == "available");
    assert_eq!(a["state"], "available", "{a}");

    let b = Browser::start(&env, "en-US");
    b.goto("/board");
    b.wait_until("the sign-in form", |b| b.visible("#login-form"));
    b.fill("#login-token", SUPERVISOR_TOKEN);
    b.click("#login-submit");
    b.wait_until("both queue tiles", |b| {
        b.visible("[data-queue='support']") && b.visible("[data-queue='sales']")
    });
    assert_eq!(fig(&b, "sales", "sl-today"), "—", "no call yet");
    assert_eq!(fig(&b, "support", "waiting"), "0");

    // A caller waits in support: the board shows it with its number.
    let pbx = caller(&env, &daemon, 25_000);
    b.wait_until("the waiting caller", |b| {
        fig(b, "support", "waiting") == "1"
            && b.text("[data-queue='support'] .callers .number") == "555011"
    });
    // Let the wait pass the 80 % mark of the 10 s target so the tile shows the risk.
    b.wait_until("the longest wait to turn amber", |b| {
        b.attr("[data-queue='support'] [data-fig='longest']", "class")
            .is_some_and(|c| c.contains("warn") || c.contains("bad"))
    });
    b.keep_screenshot(&env, "board.png");

    // Move it to sales: 1001 answers there, and sales' service level is no longer empty.
    b.select(
        "[data-queue='support'] tr[data-call] select.move-to",
        "sales",
    );
    b.click("[data-queue='support'] tr[data-call] button.move");
    let sl = b.wait_text("[data-queue='sales'] [data-fig='sl-today'] .value", |t| {
        t.ends_with('%')
    });
    assert_eq!(sl, "100 %", "sales SL today");
    assert_eq!(fig(&b, "support", "waiting"), "0");
    let run = pbx.wait();
    assert!(run.ok(), "the moved caller's call failed:\n{}", run.report);
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

    // The call ends in a complaint: it is on the board among the open complaints near their
    // deadline (a reply is due within complaint_reply_hours = 12).
    let (st, v) = api_call(
        &env,
        "POST",
        &format!("/api/v1/calls/{}/disposition", rows[0].id),
        Some(SUPERVISOR_TOKEN),
        Some((
            "application/json",
            r#"{"code":"complaint","notes":"line was bad"}"#,
        )),
    );
    assert_eq!(st, 200, "{v}");
    let deadline = Instant::now() + Duration::from_secs(45);
    while !b.text("#complaints").contains("Caller 1") {
        assert!(
            Instant::now() < deadline,
            "the complaint never reached the board: {}\n{}",
            b.text("#complaints-card"),
            daemon.log_tail(3000)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        b.text("#complaints-summary").starts_with("1 open"),
        "{}",
        b.text("#complaints-summary")
    );

    // Force 1001 into a pause, then out of its queues, from the agent board.
    agent_until(&env, "1001", |a| a["state"] == "available");
    b.select("tr[data-agent='1001'] select", "meeting");
    // The pick survives the board's redraws (every 2 s) once the menu has lost the focus.
    b.eval("document.activeElement.blur(); return null");
    for _ in 0..2 {
        let before = b.text("#conn");
        b.wait_until("a redraw", |b| b.text("#conn") != before);
    }
    assert_eq!(
        b.eval("return document.querySelector(\"tr[data-agent='1001'] select\").value"),
        "meeting"
    );
    b.click("tr[data-agent='1001'] button.force-pause");
    let a = agent_until(&env, "1001", |a| a["state"] == "paused");
    assert_eq!(
        (a["state"].as_str(), a["reason"].as_str()),
        (Some("paused"), Some("meeting")),
        "{a}"
    );
    b.wait_until("the pause on the board", |b| {
        b.text("tr[data-agent='1001']").contains("meeting")
    });
    b.click("tr[data-agent='1001'] button.force-logout");
    let a = agent_until(&env, "1001", |a| a["state"] == "logged_out");
    assert_eq!(a["state"], "logged_out", "{a}");

    // A callback list, paused from the board (1001 is logged out: nothing is dialed).
    let spec = serde_json::json!({
        "name": "renewals", "purpose": "follow_up", "agents": ["1001"], "mode": "progressive",
        "windows": [{"days": ["mon-sun"], "start": "00:00", "end": "24:00"}]
    });
    let (st, v) = api_call(
        &env,
        "POST",
        "/api/v1/lists",
        Some(SUPERVISOR_TOKEN),
        Some(("application/json", &spec.to_string())),
    );
    assert_eq!(st, 200, "create the list: {v}");
    b.click("tr[data-list='renewals'] button.list-toggle");
    let deadline = Instant::now() + Duration::from_secs(15);
    let state = loop {
        let (_, v) = api_call(
            &env,
            "GET",
            "/api/v1/lists/renewals",
            Some(SUPERVISOR_TOKEN),
            None,
        );
        if v["state"] == "paused" || Instant::now() > deadline {
            break v["state"].clone();
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(state, "paused");
    b.wait_until("the list shown paused", |b| {
        b.text("tr[data-list='renewals']").contains("paused")
    });

    // A wallboard sees the next caller waiting, but not who it is.
    b.click("#signout");
    b.wait_until("the sign-in form again", |b| b.visible("#login-form"));
    b.fill("#login-token", WALLBOARD_TOKEN);
    b.click("#login-submit");
    let pbx = caller(&env, &daemon, 40_000);
    b.wait_until("the waiting count on the wallboard", |b| {
        fig(b, "support", "waiting") == "1" && b.visible("[data-queue='support'] tr[data-call]")
    });
    let page = b.text("body");
    assert!(
        !page.contains("555011") && !page.contains("Caller 1"),
        "{page}"
    );
    assert!(
        !b.visible("button.move") && !b.visible("button.force-pause"),
        "{page}"
    );

    let ws = sign_in(&env, &format!("{{\"token\":{WALLBOARD_TOKEN:?}}}"));
    let h = vec![ws.cookie.clone()];
    let q = http(&env, "GET", "/web/api/v1/queues/support", &h, "");
    assert_eq!(q.status, 200, "{q:?}");
    let w = &q.json()["waiting"][0];
    assert!(w["call"].is_u64() && w["caller_number"].is_null(), "{q:?}");
    for path in [
        "/web/api/v1/calls",
        "/web/api/v1/events",
        "/web/api/live/calls/1",
    ] {
        let a = http(&env, "GET", path, &h, "");
        assert_eq!(a.status, 403, "{path}: {a:?}");
    }

    // The board on a phone, with that caller still waiting: nothing wider than the screen.
    let phone = Browser::phone(&env, "zh-CN", 390, 844);
    phone.goto("/board");
    phone.wait_until("the sign-in form", |b| b.visible("#login-form"));
    assert_eq!(phone.text("#login-submit"), "登录", "Accept-Language zh-CN");
    phone.fill("#login-token", SUPERVISOR_TOKEN);
    phone.click("#login-submit");
    phone.wait_until("the waiting caller on the phone", |b| {
        b.visible("[data-queue='support'] tr[data-call] button.move")
    });
    assert!(
        phone.text("body").contains("排队"),
        "{}",
        phone.text("body")
    );
    phone.keep_screenshot(&env, "board-phone.png");
    phone.assert_fits(390);
    drop(phone);
    drop(pbx.kill());
    drop(b);
    drop(seat);
    daemon.stop();
}
