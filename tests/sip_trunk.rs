//! ctid as a UAC towards the PBX trunk: its OPTIONS keepalive is challenged by the "PBX" (SIPp as
//! UAS, `tests/sipp/trunk_uas_auth.xml`), and ctid must answer the 401 with the configured
//! credentials (digest MD5, qop=auth, checked by SIPp's `verifyauth`).

use ctid_testkit as common;

use common::{free_port, sipp_at, udp_port_bound, Settings, TestEnv};
use std::time::{Duration, Instant};

fn trunk_settings(host: &str, port: u16, password: &str) -> Settings {
    Settings {
        extra_toml: format!(
            "\n[trunk]\nuri = \"sip:{host}:{port}\"\nusername = \"trunk\"\npassword = \"{password}\"\nqualify_interval_secs = 3600\n"
        ),
        ..Settings::default()
    }
}

/// Run the challenging PBX, start ctid pointed at it, return the PBX's verdict and ctid's log
/// (once a log line has all of `expected`, or after 10 s).
fn qualify_against_pbx(host: &str, password: &str, expected: &[&str]) -> (common::SippRun, String) {
    let port = free_port();
    let env = TestEnv::new(&trunk_settings(host, port, password));
    let dir = env.path().to_path_buf();
    let pbx = std::thread::spawn(move || {
        sipp_at(
            &dir,
            None,
            port,
            "trunk_uas_auth.xml",
            &["-m", "1", "-timeout", "15s", "-timeout_error"],
        )
    });
    // SIPp listening before ctid's first OPTIONS (which ctid retransmits anyway).
    let bound_by = Instant::now() + Duration::from_secs(10);
    while !udp_port_bound(port) && Instant::now() < bound_by {
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon = env.start();
    let run = pbx.join().expect("sipp thread");
    // ctid logs its verdict once it has the PBX's last answer, which SIPp sent just before it
    // exited: wait (up to 10 s) for the line the test expects (a fixed 200 ms was too short when
    // ctid was descheduled on a loaded machine). The test's assertions then judge the log.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = daemon.log();
    while !log.lines().any(|l| expected.iter().all(|e| l.contains(e))) && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(50));
        log = daemon.log();
    }
    daemon.stop();
    (run, log)
}

#[test]
fn trunk_challenge_is_answered_with_configured_credentials() {
    let (run, log) = qualify_against_pbx("127.0.0.1", "tpw", &["trunk is up"]);
    assert!(
        run.ok(),
        "the PBX did not accept ctid's digest answer:\n{}",
        run.report
    );
    assert_eq!(run.successful, Some(1), "{}", run.report);
    assert!(
        log.contains("trunk is up"),
        "ctid did not see the trunk come up:\n{log}"
    );
}

/// The trunk given by a DNS name (`localhost`, from /etc/hosts): ctid resolves it (A/AAAA, as
/// the URI has a port) and qualifies the PBX at that address.
#[test]
fn a_trunk_named_by_dns_is_resolved_and_qualified() {
    let (run, log) = qualify_against_pbx("localhost", "tpw", &["trunk is up"]);
    assert!(
        run.ok() && run.successful == Some(1),
        "the PBX at localhost never got ctid's OPTIONS:\n{}\n--- ctid ---\n{log}",
        run.report
    );
    assert!(
        log.contains("trunk address") && log.contains("target=127.0.0.1:"),
        "ctid did not log where the trunk name resolved:\n{log}"
    );
}

#[test]
fn wrong_trunk_password_is_refused_and_reported_down() {
    let (run, log) = qualify_against_pbx(
        "127.0.0.1",
        "not-the-password",
        &["trunk is down", "status=403"],
    );
    assert!(
        !run.ok(),
        "the PBX accepted a wrong password?\n{}",
        run.report
    );
    assert!(
        log.contains("trunk is down"),
        "ctid did not report the trunk down:\n{log}"
    );
    assert!(
        log.contains("status=403"),
        "the PBX's answer is not in the log:\n{log}"
    );
}
