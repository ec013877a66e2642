//! `ctid check-config FILE`: exit 0 for a good file; exit 64 listing every problem with its
//! line number for a bad one.

use ctid_testkit as common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn shipped_config_is_valid() {
    let out = Command::new(CTID.as_str())
        .args(["check-config", "config/ctid.toml"])
        .current_dir(MANIFEST_DIR)
        .output()
        .expect("run ctid check-config");
    assert_eq!(
        out.status.code(),
        Some(0),
        "ctid check-config config/ctid.toml failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn generated_test_config_is_valid() {
    let env = TestEnv::new(&Settings::default());
    let out = Command::new(CTID.as_str())
        .arg("check-config")
        .arg(&env.config)
        .output()
        .expect("run ctid check-config");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the config the e2e tests use is refused:\n{}\nstderr: {}",
        std::fs::read_to_string(&env.config).unwrap(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Line numbers matter here: keep the layout.
const BROKEN: &str = r#"[daemon]
data_dir = "/tmp/ctid-broken-config"
no_such_key = true

[sip]
realm = 42
force_rport = true

[[agents]]
id = "1001"
name = "Agent 1001"
username = "1001"
password = ""
"#;

#[test]
fn broken_config_lists_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let out = Command::new(CTID.as_str())
        .arg("check-config")
        .arg(&path)
        .output()
        .expect("run ctid check-config");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(64),
        "check-config of a broken file must exit 64\nstderr: {stderr}\nstdout: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    // (line, words that must appear on that problem's line of output)
    let expected: [(usize, &[&str]); 3] = [
        (3, &["no_such_key"]), // unknown key
        (6, &["sip.realm"]),   // bad value type (integer for a string) in [sip]
        (13, &["password"]),   // empty agent password
    ];
    for (line, words) in expected {
        let tag = format!("line {line}:");
        let found = stderr
            .lines()
            .any(|l| l.contains(&tag) && words.iter().all(|w| l.contains(w)));
        assert!(
            found,
            "stderr does not report the problem on line {line} (expected a line with {tag:?} and {words:?}):\n{stderr}"
        );
    }
}

#[test]
fn run_refuses_a_broken_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, BROKEN).unwrap();
    let mut child = Command::new(CTID.as_str())
        .arg("run")
        .arg("--config")
        .arg(&path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn ctid run");
    let t = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ctid run with a broken config was still running after 10 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        !status.success(),
        "ctid run with a broken config exited successfully"
    );
}
