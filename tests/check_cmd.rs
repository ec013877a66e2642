//! `ctid check`, the morning check: passes on a healthy daemon, and fails naming the line when
//! no seat is staffed or the trunk is down.

use ctid_testkit as common;

use common::*;
use std::process::{Command, Output};

fn check(env: &TestEnv) -> (Option<i32>, String) {
    let out: Output = Command::new(CTID.as_str())
        .arg("check")
        .arg("--config")
        .arg(&env.config)
        .args(["--api", &format!("http://127.0.0.1:{}", env.admin_port)])
        .args(["--token", SUPERVISOR_TOKEN])
        .current_dir(MANIFEST_DIR)
        .output()
        .expect("run ctid check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn verdict<'a>(text: &'a str, name: &str) -> &'a str {
    text.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no line for {name}:\n{text}"))
}

#[test]
fn the_morning_check_passes_once_a_seat_is_staffed() {
    let env = TestEnv::new(&Settings::default());
    let d = env.start();
    let (code, text) = check(&env);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(verdict(&text, "agents"), "FAIL", "{text}");
    for name in [
        "daemon",
        "trunk",
        "data",
        "recordings",
        "prompts",
        "yesterday",
    ] {
        assert_eq!(verdict(&text, name), "ok", "{name}:\n{text}");
    }

    register_seat(env.path(), env.addr(), free_port(), "1001", "secret1001");
    let (code, text) = check(&env);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(verdict(&text, "agents"), "ok", "{text}");
    assert!(text.contains("1 of 2 agents logged in"), "{text}");
    d.stop();

    // The daemon gone: the first line says so.
    let (code, text) = check(&env);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(verdict(&text, "daemon"), "FAIL", "{text}");
}

#[test]
fn a_trunk_that_does_not_answer_fails_its_line() {
    let dead = free_port();
    let env = TestEnv::new(&Settings {
        extra_toml: format!(
            "\n[trunk]\nuri = \"sip:127.0.0.1:{dead}\"\nqualify_interval_secs = 3600\n"
        ),
        ..Settings::default()
    });
    let d = env.start();
    register_seat(env.path(), env.addr(), free_port(), "1001", "secret1001");
    let (code, text) = check(&env);
    assert_eq!(code, Some(1), "{text}");
    assert_eq!(verdict(&text, "trunk"), "FAIL", "{text}");
    assert!(text.contains(&format!("127.0.0.1:{dead}")), "{text}");
    assert_eq!(verdict(&text, "agents"), "ok", "{text}");
    d.stop();
}
