//! `ctid top` in a real terminal: run inside a detached tmux session against a daemon with a
//! queue and a registered agent, the screen shows the queue row, the agent board and the
//! Ctrl-C hint; Ctrl-C ends it with exit status 0 and the pane closes.
//!
//! Needs `tmux`: scripts/test-all must install it (`command -v tmux || missing+=(tmux)`).

use ctid_testkit as common;

use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const WALLBOARD_TOKEN: &str = "wallboard-token-0001";

/// A tmux server of our own (`tmux -L <socket>`), killed on drop.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run tmux {args:?}: {e}"))
    }

    fn capture(&self) -> Option<String> {
        let out = self.run(&["capture-pane", "-p", "-t", &self.session]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn alive(&self) -> bool {
        self.run(&["has-session", "-t", &self.session])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-session", "-t", &self.session]);
        let _ = self.run(&["kill-server"]);
    }
}

fn require_tmux() {
    let found = Command::new("tmux").arg("-V").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "this test runs `ctid top` inside tmux, and tmux is not installed: install it \
         (`apt-get install -y tmux`) and add `tmux` to the package list in scripts/test-all"
    );
}

#[test]
fn top_shows_queues_and_agents_and_quits_on_ctrl_c() {
    require_tmux();
    let mut s = queue_settings(&["1001", "1002"], "wrapup_secs = 0\n");
    s.extra_toml.push_str(&format!(
        "\n[[api.tokens]]\ntoken = {WALLBOARD_TOKEN:?}\nrole = \"wallboard\"\n"
    ));
    let env = TestEnv::new(&s);
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_answer.xml",
        60,
    );

    let exit_file = env.path().join("top-exit");
    let name = unique("ctid-top");
    let tmux = Tmux {
        socket: name.clone(),
        session: name,
    };
    // The shell records top's exit status; its trap keeps a Ctrl-C from ending the shell
    // before it has done so (ctid top gets the default action back, and its own handler).
    let ctid = CTID.as_str();
    let cmd = format!(
        "trap true INT; {ctid} top --api http://127.0.0.1:{} --token {WALLBOARD_TOKEN} --interval 1; echo $? > {}",
        env.admin_port,
        exit_file.display()
    );
    let out = tmux.run(&[
        "new-session",
        "-d",
        "-s",
        &tmux.session,
        "-x",
        "160",
        "-y",
        "50",
        &cmd,
    ]);
    assert!(
        out.status.success(),
        "tmux new-session failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Wait for a frame that shows the registered agent as available (the first frame may come
    // before the registration is on the board).
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut screen = String::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        match tmux.capture() {
            Some(text) => screen = text,
            None => break,
        }
        if screen.contains("Ctrl-C") && screen.contains("available") {
            break;
        }
    }
    eprintln!("--- ctid top in tmux ---\n{screen}");
    assert!(
        screen.contains("press Ctrl-C to quit"),
        "the header with the Ctrl-C hint:\n{screen}"
    );
    let header = screen.lines().next().unwrap_or_default();
    assert!(
        header.starts_with("ctid top") && header.contains(&format!("127.0.0.1:{}", env.admin_port)),
        "the first line names the daemon: {header:?}\n{screen}"
    );
    let queue_row = screen
        .lines()
        .find(|l| l.trim_start().starts_with("support"))
        .unwrap_or_else(|| panic!("no row for queue support:\n{screen}"));
    assert!(
        queue_row.chars().any(|c| c.is_ascii_digit()),
        "the queue row carries figures: {queue_row:?}"
    );
    let agent_row = |id: &str| {
        screen
            .lines()
            .find(|l| l.trim_start().starts_with(id))
            .unwrap_or_else(|| panic!("no row for agent {id} on the board:\n{screen}"))
            .to_string()
    };
    let a1001 = agent_row("1001");
    assert!(
        a1001.contains("Agent 1001") && a1001.contains("available"),
        "the registered agent is available: {a1001:?}\n{screen}"
    );
    let a1002 = agent_row("1002");
    assert!(
        a1002.contains("Agent 1002") && !a1002.contains("available"),
        "the agent without a phone is not available: {a1002:?}\n{screen}"
    );
    assert!(
        !screen.contains("cannot reach") && !screen.contains("HTTP "),
        "no error on the board:\n{screen}"
    );

    // Ctrl-C: top exits 0, the shell ends, and with it the pane and the session.
    let out = tmux.run(&["send-keys", "-t", &tmux.session, "C-c"]);
    assert!(out.status.success(), "tmux send-keys failed");
    let deadline = Instant::now() + Duration::from_secs(5);
    while tmux.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = tmux.capture().unwrap_or_default();
    assert!(
        !tmux.alive(),
        "the session is still there 5 s after Ctrl-C:\n{last}"
    );
    let status = std::fs::read_to_string(&exit_file).unwrap_or_default();
    assert_eq!(status.trim(), "0", "ctid top's exit status after Ctrl-C");

    drop(tmux);
    let _ = seat.stop(Duration::from_secs(2));
    daemon.stop();
}
