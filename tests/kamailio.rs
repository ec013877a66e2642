//! ctid behind a real proxy: Debian's kamailio 5.6 (`tests/kamailio/proxy.cfg`), stateful and
//! record-routing with its stock in-dialog handling (`loose_route`, otherwise 404; an ACK that
//! matches no transaction is dropped), its `dispatcher` module choosing ctid once ctid answered
//! its OPTIONS pings. A SIPp caller sends everything to kamailio; a SIPp seat is registered
//! straight with ctid. Each test runs in a network namespace of its own (only loopback up).
//!
//! What a user of ctid behind a PBX proxy checks: the call stays up for its whole talk time
//! (ctid sent its 200 OK once, at most one retransmission before the ACK came through the
//! proxy), in-dialog INFO and hold reach ctid, either side can hang up through the proxy, a
//! CANCEL before answer works, and the call record says who hung up.

use ctid_testkit as common;

use common::pki::{write_pki, Pki};
use common::*;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KAMAILIO: &str = "/usr/sbin/kamailio";

/// A running kamailio; stopped (SIGTERM, then SIGKILL) on drop.
struct Kamailio {
    child: Child,
    log_path: PathBuf,
    addr: SocketAddr,
}

impl Kamailio {
    /// Start kamailio on a free port of 127.0.0.1 with its dispatcher set 1 = `ctid`, and wait
    /// until the dispatcher marked ctid up (ctid answered an OPTIONS ping).
    fn start(dir: &Path, ctid: SocketAddr) -> Kamailio {
        Kamailio::spawn(dir, &format!("sip:{ctid}"), None)
    }

    /// [`Kamailio::start`] reaching ctid's TLS listener `ctid_tls` over TLS, checking ctid's
    /// certificate against `pki.ca` and serving `pki`'s certificate on its own TLS listener.
    fn start_tls(dir: &Path, ctid_tls: SocketAddr, pki: &Pki) -> Kamailio {
        Kamailio::spawn(dir, &format!("sip:{ctid_tls};transport=tls"), Some(pki))
    }

    fn spawn(dir: &Path, ctid_uri: &str, tls: Option<&Pki>) -> Kamailio {
        let port = free_port();
        let tls_port = free_port();
        let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kamailio/proxy.cfg");
        let cfg = std::fs::read_to_string(&template)
            .unwrap_or_else(|e| panic!("{}: {e}", template.display()))
            .replace("@KAMAILIO_PORT@", &port.to_string())
            .replace("@KAMAILIO_TLS_PORT@", &tls_port.to_string())
            .replace("@DIR@", &dir.display().to_string());
        let cfg_path = dir.join("kamailio.cfg");
        std::fs::write(&cfg_path, cfg).unwrap();
        // Set 1, ctid, flags 1|8: inactive and probing until it answers a ping.
        std::fs::write(dir.join("dispatcher.list"), format!("1 {ctid_uri} 9\n")).unwrap();
        let mut args = vec!["-DD", "-E"];
        if let Some(pki) = tls {
            // Its server side for connections ctid makes to it; its client side checks ctid.
            let tls_cfg = format!(
                "[server:default]\nmethod = TLSv1.2+\ncertificate = {}\nprivate_key = {}\nverify_certificate = no\nrequire_certificate = no\n\n[client:default]\nmethod = TLSv1.2+\nverify_certificate = yes\nrequire_certificate = yes\nca_list = {}\n",
                pki.cert.display(),
                pki.key.display(),
                pki.ca.display()
            );
            std::fs::write(dir.join("tls.cfg"), tls_cfg).unwrap();
            args.extend(["-A", "WITH_TLS"]);
        }
        args.push("-f");
        let log_path = dir.join("kamailio.log");
        let log = File::create(&log_path).unwrap();
        let child = Command::new(KAMAILIO)
            .args(&args)
            .arg(&cfg_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {KAMAILIO} (Debian package kamailio): {e}"));
        let mut k = Kamailio {
            child,
            log_path,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !k.log().contains("KAM-DISPATCHER-UP") {
            let exited = matches!(k.child.try_wait(), Ok(Some(_)));
            assert!(
                !exited && Instant::now() < deadline,
                "kamailio did not see ctid answer its OPTIONS pings (exited: {exited}):\n{}",
                tail(&k.log(), 6_000)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        k
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(&self.log_path).unwrap_or_default()).into_owned()
    }

    /// The lines of kamailio's log with `marker` (see the `xlog` calls of proxy.cfg).
    fn lines(&self, marker: &str) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.find(marker).map(|i| l[i..].to_string()))
            .collect()
    }
}

impl Drop for Kamailio {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Queue `support` (4000) with agent 1001, and ctid's T1 at 250 ms: a 200 OK whose ACK never
/// arrives is given up after 64·T1 = 16 s, shorter than the test calls' talk time.
fn settings(queue_lines: &str) -> Settings {
    Settings {
        sip_toml: "t1_ms = 250".into(),
        ..queue_settings(
            &["1001"],
            &format!("strategy = \"longest-idle\"\nring_timeout_secs = 30\nwrapup_secs = 0\n{queue_lines}"),
        )
    }
}

/// The one call row, once it has an outcome.
fn the_call(env: &TestEnv) -> CallRow {
    let rows = wait_for_calls(env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert_eq!(
        rows.len(),
        1,
        "expected one call:\n{}",
        describe_calls(&rows)
    );
    rows[0].clone()
}

fn no_stock_failures(kam: &Kamailio) {
    let dropped = kam.lines("KAM-ACK-DROPPED");
    let not_found = kam.lines("KAM-404");
    assert!(
        dropped.is_empty() && not_found.is_empty(),
        "kamailio found no route for in-dialog requests (the route set ctid gave the caller is wrong):\n{}\n{}",
        dropped.join("\n"),
        not_found.join("\n")
    );
}

#[test]
fn a_call_through_kamailio_stays_up_with_info_and_hold_and_the_caller_hangs_up() {
    let ns = Netns::create("kam-talk");
    ns.run(|| {
        let env = TestEnv::new(&settings(""));
        let daemon = env.start();
        let kam = Kamailio::start(env.path(), daemon.addr);
        let seat = start_seat(
            env.path(),
            daemon.addr,
            "1001",
            "secret1001",
            "seat_answer.xml",
            60,
        );
        // Two talk periods of 9 s: 18 s after the 200 OK, beyond the 16 s ctid would wait for
        // an ACK that never came.
        let caller = sipp(
            env.path(),
            kam.addr,
            "proxy_call.xml",
            &[
                "-t",
                "u1",
                "-m",
                "1",
                "-s",
                "4000",
                "-d",
                "9000",
                "-timeout",
                "60s",
                "-timeout_error",
            ],
        );
        let seat = seat.stop(Duration::from_secs(5));
        let kam_log = || tail(&kam.lines("KAM-").join("\n"), 8_000);
        assert!(
            caller.ok() && caller.successful == Some(1),
            "the caller's call through kamailio (INVITE, 200, ACK, INFO, hold re-INVITE, BYE) failed:\n{}\n--- kamailio ---\n{}\n--- ctid ---\n{}",
            caller.report,
            kam_log(),
            daemon.log_tail(8_000)
        );
        no_stock_failures(&kam);
        // ctid's 200 OK to the INVITE, as kamailio received it: once, at most one
        // retransmission before the ACK came through the proxy.
        let oks = kam.lines("KAM-REPLY 200 INVITE cseq=1 ");
        assert!(
            (1..=2).contains(&oks.len()),
            "ctid sent its 200 OK {} times (the ACK did not reach it):\n{}",
            oks.len(),
            kam_log()
        );
        // The caller's in-dialog requests went by the route set (loose routing).
        for method in ["ACK", "INFO", "INVITE", "BYE"] {
            assert!(
                !kam.lines(&format!("KAM-LOOSE-ROUTE {method} ")).is_empty(),
                "no {method} loose-routed by kamailio:\n{}",
                kam_log()
            );
        }
        assert_eq!(
            seat.successful,
            Some(1),
            "the seat's call did not complete:\n{}",
            seat.report
        );
        let call = the_call(&env);
        assert_eq!(call.outcome.as_deref(), Some("answered"), "{call:?}");
        assert_eq!(call.hangup_by.as_deref(), Some("caller"), "{call:?}");
        assert!(
            call.talk_ms.is_some_and(|t| t >= 17_000),
            "the call did not stay up for the caller's 18 s: {call:?}"
        );
        daemon.stop();
    });
}

#[test]
fn ctid_hangs_up_the_caller_through_kamailio_when_the_agent_does() {
    let ns = Netns::create("kam-agentbye");
    ns.run(|| {
        let env = TestEnv::new(&settings(""));
        let daemon = env.start();
        let kam = Kamailio::start(env.path(), daemon.addr);
        let seat = start_seat(
            env.path(),
            daemon.addr,
            "1001",
            "secret1001",
            "seat_answer_hangup.xml",
            60,
        );
        let caller = sipp(
            env.path(),
            kam.addr,
            "pbx_wait_for_bye.xml",
            &["-t", "u1", "-m", "1", "-s", "4000"],
        );
        let seat = seat.stop(Duration::from_secs(5));
        let kam_log = || tail(&kam.lines("KAM-").join("\n"), 8_000);
        assert!(
            caller.ok() && caller.successful == Some(1),
            "the caller behind kamailio never got ctid's BYE:\n{}\n--- kamailio ---\n{}\n--- ctid ---\n{}",
            caller.report,
            kam_log(),
            daemon.log_tail(8_000)
        );
        no_stock_failures(&kam);
        let from_ctid = format!("KAM-LOOSE-ROUTE BYE from {} ", daemon.addr);
        assert_eq!(
            kam.lines(&from_ctid).len(),
            1,
            "ctid's BYE to the caller did not go through kamailio by the route set:\n{}",
            kam_log()
        );
        assert_eq!(seat.successful, Some(1), "{}", seat.report);
        let call = the_call(&env);
        assert_eq!(call.outcome.as_deref(), Some("answered"), "{call:?}");
        assert_eq!(call.hangup_by.as_deref(), Some("agent"), "{call:?}");
        daemon.stop();
    });
}

#[test]
fn a_caller_behind_kamailio_cancels_before_an_agent_answers() {
    let ns = Netns::create("kam-cancel");
    ns.run(|| {
        // Early media: the caller hears 183 while the seat rings, and can still CANCEL.
        let env = TestEnv::new(&settings("early_media = true\n"));
        let daemon = env.start();
        let kam = Kamailio::start(env.path(), daemon.addr);
        let seat = start_seat(
            env.path(),
            daemon.addr,
            "1001",
            "secret1001",
            "seat_noanswer.xml",
            60,
        );
        let caller = sipp(
            env.path(),
            kam.addr,
            "proxy_cancel.xml",
            &["-t", "u1", "-m", "1", "-s", "4000", "-d", "1500"],
        );
        let kam_log = || tail(&kam.lines("KAM-").join("\n"), 8_000);
        assert!(
            caller.ok() && caller.successful == Some(1),
            "the caller's CANCEL through kamailio (183, CANCEL, 200, 487, ACK) failed:\n{}\n--- kamailio ---\n{}\n--- ctid ---\n{}",
            caller.report,
            kam_log(),
            daemon.log_tail(8_000)
        );
        assert!(
            !kam.lines("KAM-REPLY 487 INVITE cseq=1 ").is_empty(),
            "ctid's 487 did not come through kamailio:\n{}",
            kam_log()
        );
        let call = the_call(&env);
        assert_eq!(call.outcome.as_deref(), Some("abandoned"), "{call:?}");
        assert_eq!(call.hangup_by.as_deref(), Some("caller"), "{call:?}");
        // ctid stopped ringing the seat (CANCEL, 487, ACK: one completed seat call).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut seat = seat;
        while seat.is_running() && Instant::now() < deadline {
            if seat.messages().contains("CANCEL sip:") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let seat = seat.stop(Duration::from_secs(5));
        assert_eq!(
            seat.successful,
            Some(1),
            "the ringing seat was not cancelled:\n{}",
            seat.report
        );
        daemon.stop();
    });
}

/// The same two hang-ups with kamailio reaching ctid over TLS (kamailio checks ctid's
/// certificate against the test CA): the caller's INVITE, ACK and INFO reach ctid over TLS,
/// and when the agent hangs up ctid's BYE goes back to kamailio over TLS by the route set.
#[test]
fn kamailio_reaches_ctid_over_tls_and_ctids_bye_goes_back_over_tls() {
    let ns = Netns::create("kam-tls");
    ns.run(|| {
        let certs = tempfile::tempdir().unwrap();
        let pki = write_pki(certs.path(), "", "ctid test CA", &["127.0.0.1"]);
        let tls_port = free_port();
        let mut s = settings("");
        s.sip_toml = format!(
            "t1_ms = 250\nlisten_tls = [\"127.0.0.1:{tls_port}\"]\n\n[sip.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\nca_file = \"{}\"\n",
            pki.cert.display(),
            pki.key.display(),
            pki.ca.display()
        );
        let env = TestEnv::new(&s);
        let daemon = env.start();
        let ctid_tls = SocketAddr::from(([127, 0, 0, 1], tls_port));
        let kam = Kamailio::start_tls(env.path(), ctid_tls, &pki);
        let seat = start_seat(
            env.path(),
            daemon.addr,
            "1001",
            "secret1001",
            "seat_answer_hangup.xml",
            60,
        );
        let caller = sipp(
            env.path(),
            kam.addr,
            "pbx_wait_for_bye.xml",
            &["-t", "u1", "-m", "1", "-s", "4000"],
        );
        let seat = seat.stop(Duration::from_secs(5));
        let kam_log = || tail(&kam.lines("KAM-").join("\n"), 8_000);
        let story = || format!("--- kamailio ---\n{}\n--- ctid ---\n{}", kam_log(), daemon.log_tail(8_000));
        assert!(
            caller.ok() && caller.successful == Some(1),
            "the caller behind kamailio (TLS to ctid) never got ctid's BYE:\n{}\n{}",
            caller.report,
            story()
        );
        no_stock_failures(&kam);
        assert!(
            kam.lines("KAM-REPLY 200 INVITE cseq=1 ")
                .iter()
                .any(|l| l.contains(&format!("from {ctid_tls} proto=tls"))),
            "ctid's 200 OK should come to kamailio over TLS from its TLS listener:\n{}",
            story()
        );
        let byes = kam.lines("KAM-LOOSE-ROUTE BYE from 127.0.0.1:");
        assert!(
            byes.len() == 1 && byes[0].contains("proto=tls"),
            "ctid's BYE to the caller should reach kamailio once, over TLS, by the route set:\n{}",
            story()
        );
        assert_eq!(seat.successful, Some(1), "{}", seat.report);
        let call = the_call(&env);
        assert_eq!(call.outcome.as_deref(), Some("answered"), "{call:?}");
        assert_eq!(call.hangup_by.as_deref(), Some("agent"), "{call:?}");
        daemon.stop();
    });
}
