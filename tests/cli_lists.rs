//! `ctid lists`, `ctid list …`, `ctid dnc …` and `ctid complaints` run as the real binary
//! against a real daemon: create (flags and a spec file), show, pause / resume / stop, import a
//! CSV with bad rows (each printed with its row number; exit 1; `--all-or-nothing` imports
//! none), contacts, the do-not-call list, and the errors a lead meets (unknown list, stopped
//! list, no token).

use ctid_testkit as common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};

/// `ctid ARGS --api … --token …`, no color.
fn ctid(env: &TestEnv, token: Option<&str>, args: &[&str]) -> Output {
    let mut c = Command::new(CTID.as_str());
    c.args(args)
        .arg("--api")
        .arg(format!("http://127.0.0.1:{}", env.admin_port))
        .env("NO_COLOR", "1")
        .env_remove("CTID_TOKEN")
        .env_remove("CTID_API");
    if let Some(t) = token {
        c.arg("--token").arg(t);
    }
    c.output().expect("run ctid")
}

fn sup(env: &TestEnv, args: &[&str]) -> Output {
    ctid(env, Some(SUPERVISOR_TOKEN), args)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[track_caller]
fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

#[track_caller]
fn exit(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

fn env() -> TestEnv {
    let mut s = Settings::default();
    s.extra_toml.push_str(
        "\n[reports]\ntime_zone = \"Europe/London\"\n\
         \n[[queues]]\nname = \"support\"\nnumbers = [\"4000\"]\nmembers = [{ agent = \"1001\" }]\n\
         \n[outbound]\ndefault_country_code = \"44\"\n",
    );
    TestEnv::new(&s)
}

#[test]
fn a_lead_sets_up_and_runs_a_list() {
    let env = env();
    let daemon = env.start();
    let out = ok(&sup(
        &env,
        &[
            "list",
            "create",
            "follow-up",
            "--purpose",
            "follow_up",
            "--agents",
            "1001,1002",
            "--mode",
            "preview",
            "--window",
            "mon-sun 00:00-24:00",
            "--quota",
            "30",
            "--dedupe-days",
            "7",
        ],
    ));
    assert!(out.starts_with("list follow-up (active)"), "{out}");
    assert!(
        out.contains("windows mon-sun 00:00-24:00 (Europe/London)"),
        "{out}"
    );
    assert!(out.contains("quota 30 a day"), "{out}");
    assert!(out.contains("within 7 days is not called again"), "{out}");
    // From a spec file.
    let spec = write(
        env.path(),
        "survey.json",
        r#"{"name": "survey", "purpose": "survey", "queue": "support", "mode": "progressive",
            "windows": [{"days": ["mon-fri"], "start": "09:00", "end": "17:00"}]}"#,
    );
    let out = ok(&sup(&env, &["list", "create", "--file", &spec]));
    assert!(out.contains("list survey (active)"), "{out}");
    assert!(out.contains("progressive dialing"), "{out}");
    // A bad spec is refused with the field named.
    let out = sup(
        &env,
        &[
            "list",
            "create",
            "bad",
            "--agents",
            "1001",
            "--mode",
            "preview",
            "--purpose",
            "survey",
            "--window",
            "mon 18:00-09:00",
        ],
    );
    exit(&out, 1);
    assert!(
        stderr(&out).contains("400") && stderr(&out).contains("windows[0]"),
        "{}",
        stderr(&out)
    );

    let table = ok(&sup(&env, &["lists"]));
    let row = table
        .lines()
        .find(|l| l.starts_with("follow-up"))
        .expect(&table);
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[..6],
        ["follow-up", "active", "follow_up", "preview", "0/30", "0"],
        "{table}"
    );
    assert!(table.lines().next().unwrap().starts_with("LIST"), "{table}");

    // Import: two bad rows of six.
    let csv = write(
        env.path(),
        "contacts.csv",
        "customer_id,name,phone,notes\n\
         c1,Ann,020 7946 0001,likes mornings\n\
         c2,Bob,call me,\n\
         c3,Cy,020 7946 0003,\n\
         c4,Di,,\n\
         c5,Ed,020 7946 0005,\n\
         c6,Flo,+33 1 23 45 67 89,\n",
    );
    let out = sup(
        &env,
        &["list", "import", "follow-up", &csv, "--all-or-nothing"],
    );
    exit(&out, 1);
    let text = stdout(&out);
    assert!(
        text.starts_with("nothing imported into list \"follow-up\""),
        "{text}"
    );
    assert!(
        text.contains("\n  row 3: phone \"call me\": contains letters"),
        "{text}"
    );
    assert!(text.contains("\n  row 5: no phone number"), "{text}");
    let out = sup(&env, &["list", "import", "follow-up", &csv]);
    exit(&out, 1);
    let text = stdout(&out);
    assert_eq!(
        text.trim_end(),
        "imported 4 of 6 rows into list \"follow-up\"; 2 bad rows:\n  \
         row 3: phone \"call me\": contains letters\n  row 5: no phone number"
    );
    // A clean file exits 0; --json gives the server's report.
    let more = write(
        env.path(),
        "more.csv",
        "customer_id,phone\nc7,0161 496 0007\n",
    );
    let out = ok(&sup(
        &env,
        &["list", "import", "follow-up", &more, "--json"],
    ));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["imported"].as_u64(), v["errors"].as_array().map(Vec::len)),
        (Some(1), Some(0))
    );

    let show = ok(&sup(&env, &["list", "show", "follow-up"]));
    let pending = show
        .lines()
        .find(|l| l.starts_with("pending"))
        .expect(&show);
    assert_eq!(pending.split_whitespace().nth(1), Some("5"), "{show}");
    let contacts = ok(&sup(
        &env,
        &["list", "contacts", "follow-up", "--limit", "2"],
    ));
    assert!(contacts.contains("+442079460001"), "{contacts}");
    assert!(
        contacts.contains("more contacts: repeat with --cursor"),
        "{contacts}"
    );
    let none = ok(&sup(
        &env,
        &["list", "contacts", "follow-up", "--state", "done"],
    ));
    assert_eq!(none.trim(), "no contacts");

    // Pause, resume, stop; a stopped list cannot be resumed.
    assert!(ok(&sup(&env, &["list", "pause", "follow-up"])).starts_with("list follow-up (paused)"));
    assert!(ok(&sup(&env, &["list", "resume", "follow-up"])).starts_with("list follow-up (active)"));
    assert!(ok(&sup(&env, &["list", "stop", "follow-up"])).starts_with("list follow-up (stopped)"));
    let out = sup(&env, &["list", "resume", "follow-up"]);
    exit(&out, 1);
    assert!(
        stderr(&out).contains("409") && stderr(&out).contains("stopped"),
        "{}",
        stderr(&out)
    );
    let out = sup(&env, &["list", "show", "nope"]);
    exit(&out, 1);
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));
    let out = sup(&env, &["list", "import", "follow-up", "/nonexistent.csv"]);
    exit(&out, 64);

    let complaints = ok(&sup(&env, &["complaints"]));
    assert!(
        complaints.starts_with("open complaints: 0,"),
        "{complaints}"
    );
    daemon.stop();
}

#[test]
fn the_do_not_call_list() {
    let env = env();
    let daemon = env.start();
    let out = ok(&sup(
        &env,
        &[
            "dnc",
            "add",
            "020 7946 0958",
            "--source",
            "asked on the phone",
        ],
    ));
    assert!(
        out.starts_with("+442079460958 is on the do-not-call list (since ")
            && out.contains("source asked on the phone"),
        "{out}"
    );
    let out = ok(&sup(&env, &["dnc", "check", "+44 20 7946 0958"]));
    assert!(
        out.starts_with("+442079460958 is on the do-not-call list"),
        "{out}"
    );
    let out = ok(&sup(&env, &["dnc", "check", "020 7946 0959"]));
    assert_eq!(out.trim(), "+442079460959 is not on the do-not-call list");
    let out = sup(&env, &["dnc", "add", "call me"]);
    exit(&out, 1);
    assert!(
        stderr(&out).contains("not a phone number"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        ok(&sup(&env, &["dnc", "remove", "02079460958"])).trim(),
        "+442079460958 removed from the do-not-call list"
    );
    assert_eq!(
        ok(&sup(&env, &["dnc", "remove", "02079460958"])).trim(),
        "+442079460958 was not on the do-not-call list"
    );
    let file = write(
        env.path(),
        "dnc.csv",
        "number\n020 7946 0001\nx\n020 7946 0002\n",
    );
    let out = sup(&env, &["dnc", "import", &file]);
    exit(&out, 1);
    assert_eq!(
        stdout(&out).trim_end(),
        "imported 2 of 3 rows into the do-not-call list; 1 bad row:\n  row 3: \"x\": contains letters"
    );
    assert!(ok(&sup(&env, &["dnc", "check", "02079460002"])).contains("source import"));
    // No token: refused, with the hint.
    let out = ctid(&env, None, &["dnc", "check", "02079460002"]);
    exit(&out, 1);
    assert!(
        stderr(&out).contains("no token was given"),
        "{}",
        stderr(&out)
    );
    daemon.stop();
}
