//! REGISTER: digest authentication (MD5 with SIPp, SHA-256 with a raw client), replay
//! protection, binding removal, Min-Expires, and bindings that survive a restart.

use ctid_testkit as common;

use common::*;

/// The shared raw registrar client (ctid-testkit, tests/support).
type Reg = RegClient;

/// (uri, expires) of every Contact in a response.
fn bindings(r: &SipResponse) -> Vec<(String, Option<u64>)> {
    r.header_elements("Contact")
        .iter()
        .map(|e| contact_uri_and_expires(e))
        .collect()
}

/// Assert a 200 lists `contact` (host:port part) with 0 < expires <= max.
fn assert_lists(r: &SipResponse, hostport: &str, max: u64) {
    assert_eq!(r.status, 200, "expected 200, got:\n{}", r.raw);
    let b = bindings(r);
    let found = b.iter().find(|(uri, _)| uri.contains(hostport));
    match found {
        Some((uri, Some(e))) => assert!(
            *e > 0 && *e <= max,
            "binding {uri} has expires={e}, expected 1..={max}:\n{}",
            r.raw
        ),
        Some((uri, None)) => panic!("binding {uri} listed without ;expires=N:\n{}", r.raw),
        None => panic!(
            "200 does not list the binding for {hostport} (contacts: {b:?}):\n{}",
            r.raw
        ),
    }
}

fn assert_not_listed(r: &SipResponse, hostport: &str) {
    assert_eq!(r.status, 200, "expected 200, got:\n{}", r.raw);
    let b = bindings(r);
    assert!(
        !b.iter().any(|(uri, _)| uri.contains(hostport)),
        "binding for {hostport} still listed: {b:?}\n{}",
        r.raw
    );
}

#[test]
fn register_md5_with_sipp_over_udp_and_tcp() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    for transport in ["u1", "t1"] {
        let run = sipp(
            env.path(),
            daemon.addr,
            "register_md5.xml",
            &[
                "-t",
                transport,
                "-m",
                "1",
                "-s",
                "1001",
                "-au",
                "1001",
                "-ap",
                "secret1001",
            ],
        );
        assert!(
            run.ok() && run.successful == Some(1),
            "SIPp REGISTER (MD5) over {transport}: expected 401 then 200 listing the binding with expires\n{}\n--- ctid log ---\n{}",
            run.report,
            daemon.log_tail(10_000)
        );
    }
    // The bindings SIPp made are stored: a query (no Contact) lists them.
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
    let r = reg.register(&reg.request());
    assert_eq!(r.status, 200, "query REGISTER:\n{}", r.raw);
    assert!(
        bindings(&r)
            .iter()
            .any(|(u, _)| u.contains("1001@127.0.0.1:")),
        "query after SIPp registrations lists no binding:\n{}",
        r.raw
    );
    daemon.stop();
}

#[test]
fn wrong_password_gets_401_again() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let run = sipp(
        env.path(),
        daemon.addr,
        "register_wrong_password.xml",
        &[
            "-t",
            "u1",
            "-m",
            "1",
            "-s",
            "1001",
            "-au",
            "1001",
            "-ap",
            "not-the-password",
        ],
    );
    assert!(
        run.ok() && run.successful == Some(1),
        "SIPp REGISTER with a wrong password: expected 401, then 401 again (never 200)\n{}\n--- ctid log ---\n{}",
        run.report,
        daemon.log_tail(10_000)
    );

    // Raw client: another agent's password, and an empty one, are refused too.
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
    for bad in ["secret1002", ""] {
        let req = reg
            .request()
            .header(format!("Contact: <sip:1001@{}>", reg.c.local()));
        let ch = reg.challenge(&req);
        let auth = reg.authorized(&req, &ch, bad, 1);
        let r = reg.send(&auth, "REGISTER with a wrong password");
        assert_eq!(
            r.status, 401,
            "REGISTER with password {bad:?} must get 401:\n{}",
            r.raw
        );
    }
    // Nothing was bound by the refused attempts.
    let r = reg.register(&reg.request());
    assert_eq!(r.status, 200, "query:\n{}", r.raw);
    assert!(
        bindings(&r).is_empty(),
        "refused REGISTERs created bindings:\n{}",
        r.raw
    );
    daemon.stop();
}

#[test]
fn sha256_digest_registers() {
    let env = TestEnv::new(&Settings {
        algorithms: vec!["SHA-256".into()],
        ..Settings::default()
    });
    let daemon = env.start();
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Sha256);
    let contact = format!("{}", reg.c.local());
    let req = reg
        .request()
        .header(format!("Contact: <sip:1001@{contact}>"))
        .header("Expires: 1800");

    let first = reg.send(&req, "REGISTER without credentials");
    let ch = assert_challenge(&first, Alg::Sha256, "ctid");
    assert!(
        challenge_for(&first, Alg::Md5).is_none(),
        "algorithms = [\"SHA-256\"] but an MD5 challenge is offered:\n{}",
        first.raw
    );

    // An MD5 answer is not acceptable when only SHA-256 is configured.
    let md5_try = req.next().header(authorization_header(
        &ch,
        Alg::Md5,
        "1001",
        "secret1001",
        "REGISTER",
        &req.uri,
        1,
        "0a4f113b",
    ));
    let r = reg.send(&md5_try, "REGISTER answered with MD5");
    assert_eq!(
        r.status, 401,
        "an MD5 digest was accepted although only SHA-256 is configured:\n{}",
        r.raw
    );

    // A new registration (new Call-ID) answered with SHA-256 succeeds.
    let req = reg
        .request()
        .header(format!("Contact: <sip:1001@{contact}>"))
        .header("Expires: 1800");
    let ch = reg.challenge(&req);
    let auth = reg.authorized(&req, &ch, "secret1001", 1);
    let r = reg.send(&auth, "REGISTER with SHA-256 digest");
    assert_lists(&r, &contact, 1800);
    daemon.stop();
}

#[test]
fn both_algorithms_are_offered_in_order_and_both_work() {
    let env = TestEnv::new(&Settings {
        algorithms: vec!["SHA-256".into(), "MD5".into()],
        ..Settings::default()
    });
    let daemon = env.start();
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Sha256);
    let r = reg.send(&reg.request(), "REGISTER without credentials");
    assert_eq!(r.status, 401, "{}", r.raw);
    let algs: Vec<String> = r
        .header_values("WWW-Authenticate")
        .into_iter()
        .filter_map(Challenge::parse)
        .map(|c| c.algorithm.to_ascii_uppercase())
        .collect();
    assert_eq!(
        algs,
        ["SHA-256", "MD5"],
        "expected one WWW-Authenticate per algorithm, SHA-256 first:\n{}",
        r.raw
    );
    for alg in [Alg::Sha256, Alg::Md5] {
        let reg = Reg::new(daemon.addr, "1001", "secret1001", alg);
        let contact = reg.c.local().to_string();
        let req = reg
            .request()
            .header(format!("Contact: <sip:1001@{contact}>"));
        let r = reg.register(&req);
        assert_lists(&r, &contact, 3600);
    }
    daemon.stop();
}

/// The `[registrar] algorithms` of the shipped `config/ctid.toml` (absent: empty).
fn shipped_algorithms() -> Vec<String> {
    let path = std::path::Path::new(MANIFEST_DIR).join("config/ctid.toml");
    let text = std::fs::read_to_string(&path).expect("read config/ctid.toml");
    let cfg: toml::Table = toml::from_str(&text).expect("config/ctid.toml is TOML");
    cfg.get("registrar")
        .and_then(|r| r.get("algorithms"))
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// SIPp 3.6 (like bookworm's baresip) gives up on a 401 carrying a SHA-256 challenge: its MD5
/// scenario must register against the shipped config's digest settings and against the
/// built-in default, out of the box. An agent set to SHA-256 is challenged with SHA-256 only.
#[test]
fn md5_phones_register_with_the_shipped_and_default_digest_settings() {
    let sha_agent = "\n[[agents]]\nid = \"2001\"\nname = \"Agent 2001\"\nusername = \"2001\"\n\
                     password = \"secret2001\"\nalgorithms = [\"SHA-256\"]\n";
    for (what, algorithms) in [
        ("config/ctid.toml", shipped_algorithms()),
        ("the built-in default", Vec::new()),
    ] {
        let env = TestEnv::new(&Settings {
            algorithms,
            extra_toml: sha_agent.into(),
            ..Settings::default()
        });
        let daemon = env.start();
        let run = sipp(
            env.path(),
            daemon.addr,
            "register_md5.xml",
            &[
                "-t",
                "u1",
                "-m",
                "1",
                "-s",
                "1001",
                "-au",
                "1001",
                "-ap",
                "secret1001",
            ],
        );
        assert!(
            run.ok() && run.successful == Some(1),
            "SIPp's MD5 REGISTER failed with the digest settings of {what}:\n{}",
            run.report
        );
        let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
        let first = reg.send(&reg.request(), "REGISTER without credentials");
        assert!(
            challenge_for(&first, Alg::Sha256).is_none(),
            "{what}: a SHA-256 challenge locks out MD5-only phones:\n{}",
            first.raw
        );
        let sha = Reg::new(daemon.addr, "2001", "secret2001", Alg::Sha256);
        let contact = sha.c.local().to_string();
        let req = sha
            .request()
            .header(format!("Contact: <sip:2001@{contact}>"));
        let first = sha.send(&req, "REGISTER of the SHA-256 agent");
        assert!(
            challenge_for(&first, Alg::Md5).is_none(),
            "{what}: agent 2001 has algorithms = [\"SHA-256\"] but got an MD5 challenge:\n{}",
            first.raw
        );
        assert_lists(&sha.register(&req.next()), &contact, 3600);
        daemon.stop();
    }
}

#[test]
fn replayed_nonce_count_is_rejected() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
    let contact = reg.c.local().to_string();
    let req = reg
        .request()
        .header(format!("Contact: <sip:1001@{contact}>"));
    let ch = reg.challenge(&req);

    let first = reg.authorized(&req, &ch, "secret1001", 1);
    let r = reg.send(&first, "REGISTER nc=00000001");
    assert_lists(&r, &contact, 3600);

    // A retransmission of that very request (same branch) is not a replay: the transaction
    // layer answers it with the same 200.
    let r = reg.send(&first, "retransmitted REGISTER nc=00000001 (same branch)");
    assert_eq!(
        r.status, 200,
        "a retransmission (same Via branch) of an accepted REGISTER must get the 200 again:\n{}",
        r.raw
    );

    // The same credentials in a new request (same Call-ID, CSeq+1, new branch): replay.
    let replay = first.next();
    let r = reg.send(&replay, "replayed REGISTER (same nonce, nc=00000001)");
    assert_eq!(
        r.status, 401,
        "a reused nonce-count (same nonce, nc=00000001 again) must be rejected with 401:\n{}",
        r.raw
    );

    // A lower nonce-count than the highest seen is a replay too (after nc=2 was used).
    let second = reg.authorized(&replay, &ch, "secret1001", 2);
    let r = reg.send(&second, "REGISTER nc=00000002");
    assert_lists(&r, &contact, 3600);
    let lower = reg.authorized(&second, &ch, "secret1001", 1);
    let r = reg.send(&lower, "REGISTER nc=00000001 after nc=00000002");
    assert_eq!(
        r.status, 401,
        "a lower nonce-count (1 after 2) must be rejected:\n{}",
        r.raw
    );
    let third = reg.authorized(&lower, &ch, "secret1001", 3);
    let r = reg.send(&third, "REGISTER nc=00000003");
    assert_lists(&r, &contact, 3600);
    daemon.stop();
}

#[test]
fn expires_zero_and_star_remove_bindings() {
    let env = TestEnv::new(&Settings::default());
    let daemon = env.start();
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
    let a = "127.0.0.1:40001";
    let b = "127.0.0.1:40002";
    let c = "127.0.0.1:40003";

    let r = reg.register(
        &reg.request()
            .header(format!("Contact: <sip:1001@{a}>, <sip:1001@{b}>"))
            .header("Expires: 600"),
    );
    assert_lists(&r, a, 600);
    assert_lists(&r, b, 600);
    let r = reg.register(
        &reg.request()
            .header(format!("Contact: <sip:1001@{c}>;expires=900")),
    );
    assert_lists(&r, a, 600);
    assert_lists(&r, b, 600);
    assert_lists(&r, c, 900);

    // Expires: 0 removes that binding only.
    let r = reg.register(
        &reg.request()
            .header(format!("Contact: <sip:1001@{a}>"))
            .header("Expires: 0"),
    );
    assert_not_listed(&r, a);
    assert_lists(&r, b, 600);
    assert_lists(&r, c, 900);

    // ;expires=0 on the contact does the same.
    let r = reg.register(
        &reg.request()
            .header(format!("Contact: <sip:1001@{b}>;expires=0")),
    );
    assert_not_listed(&r, a);
    assert_not_listed(&r, b);
    assert_lists(&r, c, 900);

    // Another agent's bindings are not touched by 1001's wildcard removal.
    let other = Reg::new(daemon.addr, "1002", "secret1002", Alg::Md5);
    let r = other.register(
        &other
            .request()
            .header("Contact: <sip:1002@127.0.0.1:40010>"),
    );
    assert_lists(&r, "127.0.0.1:40010", 3600);

    // Contact: * with Expires: 0 removes all of 1001's.
    let r = reg.register(&reg.request().header("Contact: *").header("Expires: 0"));
    assert_eq!(r.status, 200, "Contact: * removal:\n{}", r.raw);
    assert!(
        bindings(&r).is_empty(),
        "Contact: * / Expires: 0 left bindings: {:?}\n{}",
        bindings(&r),
        r.raw
    );
    let r = reg.register(&reg.request());
    assert!(
        bindings(&r).is_empty(),
        "query after removing all lists: {:?}\n{}",
        bindings(&r),
        r.raw
    );
    let r = other.register(&other.request());
    assert_lists(&r, "127.0.0.1:40010", 3600);
    daemon.stop();
}

#[test]
fn expires_below_minimum_gets_423() {
    let env = TestEnv::new(&Settings::default()); // min_expires = 60
    let daemon = env.start();
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
    let req = reg
        .request()
        .header(format!("Contact: <sip:1001@{}>", reg.c.local()))
        .header("Expires: 30");
    // A registrar may check Expires before or after authenticating: accept either order.
    let first = reg.send(&req, "REGISTER Expires: 30");
    let r = if first.status == 401 {
        let ch = assert_challenge(&first, Alg::Md5, "ctid");
        let auth = reg.authorized(&req, &ch, "secret1001", 1);
        reg.send(&auth, "authenticated REGISTER Expires: 30")
    } else {
        first
    };
    assert_eq!(r.status, 423, "Expires below min_expires:\n{}", r.raw);
    assert_eq!(
        r.header("Min-Expires").map(str::trim),
        Some("60"),
        "423 must carry Min-Expires: 60:\n{}",
        r.raw
    );
    // Nothing was bound.
    let q = reg.register(&reg.request());
    assert!(bindings(&q).is_empty(), "423 created a binding:\n{}", q.raw);
    daemon.stop();
}

#[test]
fn bindings_survive_a_restart() {
    let env = TestEnv::new(&Settings::default());
    let contact = "127.0.0.1:40777";
    {
        let daemon = env.start();
        let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
        let r = reg.register(
            &reg.request()
                .header(format!("Contact: <sip:1001@{contact}>"))
                .header("Expires: 3600"),
        );
        assert_lists(&r, contact, 3600);
        daemon.stop(); // SIGTERM, exit 0
    }
    assert!(
        env.data_dir.join("ctid.db").exists(),
        "no ctid.db in {}",
        env.data_dir.display()
    );
    let daemon = env.start();
    let reg = Reg::new(daemon.addr, "1001", "secret1001", Alg::Md5);
    let r = reg.register(&reg.request()); // query: no Contact
    assert_lists(&r, contact, 3600);
    daemon.stop();
}

/// IPv6: ctid listening on [::1] registers a seat over UDP, and answers OPTIONS over UDP and TCP
/// with the IPv6 source recorded in the Via.
#[test]
fn ipv6_register_and_options() {
    let env = TestEnv::new(&Settings {
        ipv6: true,
        ..Settings::default()
    });
    let daemon = env.start();
    let v6: std::net::SocketAddr = format!("[::1]:{}", env.port).parse().unwrap();
    let reg = Reg::new(v6, "1001", "secret1001", Alg::Md5);
    let contact = format!("{}", reg.c.local());
    assert!(contact.starts_with("[::1]:"), "{contact}");
    let req = reg
        .request()
        .header(format!("Contact: <sip:1001@{contact}>"))
        .header("Expires: 600");
    let ch = reg.challenge(&req);
    let auth = reg.authorized(&req, &ch, "secret1001", 1);
    let r = reg.send(&auth, "REGISTER over IPv6");
    assert_lists(&r, &contact, 600);
    let via = r.header("Via").unwrap_or_default().to_string();
    assert!(
        via.contains("received=::1"),
        "Via lacks the IPv6 source: {via}"
    );
    assert_eq!(
        common::options_probe_tcp(v6, std::time::Duration::from_secs(2)),
        Some(200),
        "OPTIONS over TCP/IPv6"
    );
    daemon.stop();
}
