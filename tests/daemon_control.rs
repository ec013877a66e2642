//! Operating the daemon: SIGHUP re-reads the config and never stops ctid (logrotate sends it),
//! a broken file is refused while the running config stays; one daemon per data directory; a
//! misspelt `--log-level` is refused instead of silencing every log line.

use ctid_testkit as common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

fn signal(d: &Daemon, sig: i32) {
    // SAFETY: plain kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(d.pid(), sig) };
    assert_eq!(rc, 0, "kill({sig}) failed");
}

/// Poll the daemon's log until `needle` has appeared `count` times.
fn wait_log(d: &Daemon, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while d.log().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "ctid never logged {needle:?} ({count}×)\n--- ctid log ---\n{}",
            d.log_tail(6_000)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sighup_rereads_the_config_and_a_broken_file_is_refused() {
    let env = TestEnv::new(&Settings::default());
    let mut d = env.start();
    let good = std::fs::read_to_string(&env.config).unwrap();

    signal(&d, libc::SIGHUP);
    wait_log(&d, "reload: the file is valid", 1);
    d.assert_alive("after SIGHUP with a valid file");
    assert_eq!(
        options_probe_udp(env.addr(), Duration::from_secs(5)),
        Some(200),
        "OPTIONS after SIGHUP"
    );

    // Two mistakes: both are named in the log and the daemon carries on as it was.
    std::fs::write(
        &env.config,
        format!("{good}\n[calls]\nno_such_key = 1\nshort_abandon_secs = \"x\"\n"),
    )
    .unwrap();
    signal(&d, libc::SIGHUP);
    wait_log(&d, "reload refused: the running configuration stays", 1);
    let log = d.log();
    assert!(
        log.contains("unknown field `no_such_key`") && log.contains("calls.short_abandon_secs"),
        "each problem of the refused file is logged:\n{}",
        d.log_tail(6_000)
    );
    d.assert_alive("after SIGHUP with a broken file");
    assert_eq!(
        options_probe_udp(env.addr(), Duration::from_secs(5)),
        Some(200),
        "OPTIONS after a refused reload"
    );
    d.stop();
}

#[test]
fn a_second_daemon_on_the_same_data_directory_is_refused() {
    let env = TestEnv::new(&Settings::default());
    let mut first = env.start();

    // Same data_dir, other ports: only the directory is shared.
    let (sip, admin) = (free_port(), free_port());
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace(
            &format!("127.0.0.1:{}", env.port),
            &format!("127.0.0.1:{sip}"),
        )
        .replace(
            &format!("127.0.0.1:{}", env.admin_port),
            &format!("127.0.0.1:{admin}"),
        );
    let second_cfg = env.path().join("second.toml");
    std::fs::write(&second_cfg, text).unwrap();
    let out = Command::new(CTID.as_str())
        .arg("run")
        .arg("--config")
        .arg(&second_cfg)
        .output()
        .expect("run a second ctid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "second daemon: {stderr}");
    assert!(
        stderr.contains("is in use by another ctid")
            && stderr.contains(&format!("pid {}", first.pid())),
        "the refusal names the directory's owner:\n{stderr}"
    );
    first.assert_alive("after the second daemon was refused");
    assert_eq!(
        options_probe_udp(env.addr(), Duration::from_secs(5)),
        Some(200),
        "the first daemon still answers"
    );
    first.stop();

    // Once the first has stopped, the directory is free again.
    let d = env.start();
    d.stop();
}

#[test]
fn a_misspelt_log_level_is_refused() {
    let env = TestEnv::new(&Settings::default());
    let out = Command::new(CTID.as_str())
        .arg("run")
        .arg("--config")
        .arg(&env.config)
        .args(["--log-level", "debg"])
        .env_remove("RUST_LOG")
        .output()
        .expect("run ctid");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("--log-level") && stderr.contains("debg"),
        "{stderr}"
    );
}

#[test]
fn json_logs_are_one_object_a_line() {
    let env = TestEnv::new(&Settings::default());
    let text = std::fs::read_to_string(&env.config).unwrap().replacen(
        "[daemon]\n",
        "[daemon]\nlog_format = \"json\"\n",
        1,
    );
    std::fs::write(&env.config, text).unwrap();
    let d = env.start();
    wait_log(&d, "ctid ready", 1);
    let log = d.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}\n--- log ---\n{log}"));
        assert!(
            v["level"].is_string() && v["timestamp"].is_string() && v["fields"].is_object(),
            "{l}"
        );
    }
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"message\":\"ctid ready\"") && l.contains("\"udp\"")),
        "the ready line with its fields:\n{log}"
    );
    d.stop();
}

#[test]
fn secrets_from_files_and_hashes_work_and_the_config_holds_none() {
    use sha2::Digest;
    let env = TestEnv::new(&Settings::default());
    // The supervisor's token from a file beside the config, a wallboard token given as its
    // SHA-256 only, and agent 1001's SIP password from a file.
    let wallboard = "wallboard-token-known-only-by-hash";
    let hash: String = sha2::Sha256::digest(wallboard.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(
        env.path().join("supervisor.token"),
        format!("{SUPERVISOR_TOKEN}\n"),
    )
    .unwrap();
    std::fs::write(env.path().join("1001.password"), "secret1001\n").unwrap();
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace(
            &format!("token = {SUPERVISOR_TOKEN:?}"),
            "token_file = \"supervisor.token\"",
        )
        .replace(
            "password = \"secret1001\"",
            "password_file = \"1001.password\"",
        )
        + &format!("\n[[api.tokens]]\ntoken_sha256 = \"{hash}\"\nrole = \"wallboard\"\n");
    assert!(
        !text.contains(SUPERVISOR_TOKEN)
            && !text.contains("secret1001")
            && !text.contains(wallboard)
    );
    std::fs::write(&env.config, text).unwrap();
    let d = env.start();

    let (st, body) = http_request(&env, "GET", "/api/v1/agents", Some(SUPERVISOR_TOKEN), None);
    assert_eq!(st, 200, "supervisor token from its file: {body}");
    let (st, body) = http_request(&env, "GET", "/api/v1/stats", Some(wallboard), None);
    assert_eq!(st, 200, "wallboard token by its hash: {body}");
    let (st, _) = http_request(&env, "GET", "/api/v1/stats", Some(&hash), None);
    assert_eq!(st, 401, "the hash itself is no token");
    // The phone registers with the password read from the file.
    register_seat(env.path(), env.addr(), free_port(), "1001", "secret1001");
    d.stop();
}
