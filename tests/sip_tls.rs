//! SIP over TLS (RFC 3261 §26) with real peers, each test in a network namespace of its own:
//! Debian's baresip registers over TLS and takes a queued call with audio both ways; OpenSSL's
//! `s_client` checks the certificate ctid serves against the test CA, before and after a SIGHUP
//! that renews it (baresip 1.0 of bookworm loads a CA file but does not check the server's
//! certificate with it: a phone given the wrong CA still registers, so it cannot prove that); a client that speaks plain SIP to the
//! TLS port is refused and counted, and the listener keeps serving.

use ctid_testkit as common;

use common::baresip::*;
use common::pki::{write_pki, Pki};
use common::rtp::*;
use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The queue's settings with a TLS listener on `tls_port` serving `pki`'s certificate.
fn tls_settings(tls_port: u16, pki: &Pki) -> Settings {
    let mut s = queue_settings(&["1001"], "ring_timeout_secs = 15\nwrapup_secs = 0\n");
    s.algorithms = Vec::new();
    s.sip_toml = format!(
        "listen_tls = [\"127.0.0.1:{tls_port}\"]\n\n[sip.tls]\ncert_file = \"{}\"\nkey_file = \"{}\"\n",
        pki.cert.display(),
        pki.key.display()
    );
    s
}

/// OpenSSL's client against `addr`, trusting `ca`: `Ok(subject line)` when the handshake and
/// the certificate check pass, `Err(output)` otherwise.
fn s_client(addr: SocketAddr, ca: &std::path::Path) -> Result<String, String> {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr.to_string(),
            "-verify_return_error",
            "-brief",
        ])
        .arg("-CAfile")
        .arg(ca)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl (Debian package openssl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() && text.contains("Verification: OK") {
        Ok(text)
    } else {
        Err(text)
    }
}

#[test]
fn baresip_registers_over_tls_and_takes_a_call_with_audio() {
    let ns = Netns::create("tls-baresip");
    let certs = tempfile::tempdir().unwrap();
    let pki = write_pki(certs.path(), "", "ctid test CA", &["127.0.0.1"]);
    let tls_port = free_port();
    let env = TestEnv::new(&tls_settings(tls_port, &pki));
    let daemon = env.start_in_netns(&ns);
    let tls_addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let (row, source, pbx, log) = ns.run(|| {
        let phone = Baresip::start_tls(env.path(), tls_addr, "1001", "secret1001", &pki.ca);
        let story = || {
            format!(
                "--- baresip ---\n{}\n--- ctid ---\n{}",
                phone.log(),
                daemon.log_tail(6000)
            )
        };
        let source = poll(
            "baresip did not register over TLS",
            Duration::from_secs(20),
            story,
            || {
                open_db(&env).and_then(|db| {
                    db.query_row(
                        "SELECT source FROM bindings WHERE agent_id = '1001'",
                        [],
                        |r| r.get::<_, String>(0),
                    )
                    .ok()
                })
            },
        );
        let caller = Peer::start(caller_plan(Some(500)));
        let pbx = pbx_call(&env, &daemon, &caller, 30_000, "none");
        poll(
            "baresip did not answer the call offered over TLS",
            Duration::from_secs(20),
            story,
            || read_calls(&env).first().and_then(|c| c.answered_at_ms),
        );
        // Audio both ways through ctid: baresip's dumps of what it sent and decoded grow.
        poll(
            "no audio between baresip and the caller",
            Duration::from_secs(30),
            story,
            || {
                let size = |kind| {
                    phone
                        .dump(kind)
                        .and_then(|p| std::fs::metadata(p).ok())
                        .map_or(0, |m| m.len())
                };
                (size("enc") >= 44 + 2 * 16_000 && size("dec") >= 44 + 2 * 16_000).then_some(())
            },
        );
        let answer = phone.command("hangup");
        assert!(
            answer.contains("\"ok\":true"),
            "baresip hangup: {answer}\n{}",
            story()
        );
        let pbx = pbx.wait();
        let row = poll(
            "the call record did not end",
            Duration::from_secs(10),
            story,
            || read_calls(&env).into_iter().find(|c| c.outcome.is_some()),
        );
        drop(caller.finish());
        (row, source, pbx, story())
    });
    daemon.stop();
    assert!(
        source.starts_with("tls:127.0.0.1:"),
        "the binding should be learned over TLS, got {source:?}\n{log}"
    );
    assert!(pbx.ok(), "the PBX caller's call\n{}\n{log}", pbx.report);
    assert_eq!(row.outcome.as_deref(), Some("answered"), "{row:?}\n{log}");
    assert_eq!(row.agent.as_deref(), Some("1001"), "{row:?}\n{log}");
    assert_eq!(
        row.hangup_by.as_deref(),
        Some("agent"),
        "baresip's BYE came over TLS\n{row:?}\n{log}"
    );
}

#[test]
fn sighup_serves_a_renewed_certificate_and_plain_sip_on_the_tls_port_is_refused() {
    let ns = Netns::create("tls-renew");
    let certs = tempfile::tempdir().unwrap();
    let old = write_pki(certs.path(), "old-", "ctid old CA", &["127.0.0.1"]);
    let tls_port = free_port();
    // The config names fixed paths; renewing writes new files there (as certbot does).
    let live = Pki {
        ca: certs.path().join("ca.pem"),
        cert: certs.path().join("cert.pem"),
        key: certs.path().join("key.pem"),
    };
    std::fs::copy(&old.cert, &live.cert).unwrap();
    std::fs::copy(&old.key, &live.key).unwrap();
    let env = TestEnv::new(&tls_settings(tls_port, &live));
    let daemon = env.start_in_netns(&ns);
    let addr = SocketAddr::from(([127, 0, 0, 1], tls_port));
    let new = write_pki(certs.path(), "new-", "ctid new CA", &["127.0.0.1"]);
    let story = || daemon.log_tail(6000);
    ns.run(|| {
        let first = s_client(addr, &old.ca);
        assert!(first.is_ok(), "the first certificate: {first:?}\n{}", story());
        assert!(
            s_client(addr, &new.ca).is_err(),
            "the new CA must not verify the old certificate yet"
        );

        // A client speaking plain SIP to the TLS port: no SIP answer, the connection closed,
        // the failed handshake counted.
        let mut plain = TcpStream::connect(addr).expect("connect to the TLS port");
        plain
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let options = "OPTIONS sip:ctid@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bKplain\r\nFrom: <sip:x@127.0.0.1>;tag=1\r\nTo: <sip:ctid@127.0.0.1>\r\nCall-ID: plain-1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n";
        plain.write_all(options.as_bytes()).unwrap();
        let mut got = Vec::new();
        let _ = plain.read_to_end(&mut got);
        assert!(
            !String::from_utf8_lossy(&got).contains("SIP/2.0 200"),
            "plain SIP on the TLS port must not be answered: {}",
            String::from_utf8_lossy(&got)
        );
        poll(
            "ctid_sip_tls_handshake_failures_total stayed 0",
            Duration::from_secs(10),
            story,
            || {
                let n = metric_value(&env, "ctid_sip_tls_handshake_failures_total")?;
                (n >= 1.0).then_some(())
            },
        );

        // Renew, SIGHUP: new connections get the new certificate.
        std::fs::copy(&new.cert, &live.cert).unwrap();
        std::fs::copy(&new.key, &live.key).unwrap();
        // SAFETY: kill with a pid of a child this test started and still holds.
        unsafe { libc::kill(daemon.pid(), libc::SIGHUP) };
        poll(
            "after SIGHUP ctid still serves the old certificate",
            Duration::from_secs(15),
            story,
            || s_client(addr, &new.ca).ok(),
        );
        assert!(
            daemon.log().contains("reload: TLS certificate and key read again"),
            "{}",
            story()
        );
    });
    daemon.stop();
}
