//! `ctid top`: a live wallboard in the terminal, redrawn every few seconds until Ctrl-C.

use super::http::{ClientError, EXIT_OK};
use super::{now_ms, use_color, views, ClientOpts};
use serde_json::Value;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Enter the alternate screen and hide the cursor.
const ENTER: &str = "\x1b[?1049h\x1b[?25l";
/// Show the cursor and leave the alternate screen.
const LEAVE: &str = "\x1b[?25h\x1b[?1049l";

/// One wallboard frame (pure). `stats`/`agents` are the answers or the error to show instead.
pub fn frame(
    clock: &str,
    api: &str,
    interval: u64,
    stats: Result<&Value, &str>,
    agents: Result<&Value, &str>,
    now_ms: i64,
    color: bool,
) -> String {
    let mut s =
        format!("ctid top — {api} — {clock} — every {interval}s — press Ctrl-C to quit\n\n");
    if let (Err(a), Err(b)) = (&stats, &agents) {
        if a == b {
            s.push_str(a);
            s.push('\n');
            return s;
        }
    }
    match stats {
        Ok(v) => {
            s.push_str(&views::stats_header(v));
            s.push_str("\n\n");
            if v["queues"].as_array().is_none_or(|q| q.is_empty()) {
                s.push_str("no queues\n");
            } else {
                s.push_str(&views::status_table(v).render(color));
            }
        }
        Err(e) => s.push_str(&format!("queues: {e}\n")),
    }
    s.push('\n');
    match agents {
        Ok(v) if v.as_array().is_none_or(|a| a.is_empty()) => s.push_str("no agents\n"),
        Ok(v) => s.push_str(&views::agents_table(v, now_ms).render(color)),
        Err(e) => s.push_str(&format!("agents: {e}\n")),
    }
    s
}

/// Register Ctrl-C (and SIGTERM) before the first frame; the flag is set when one arrives.
fn install_stop() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .ok()?;
    let (mut int, mut term) = rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        Some((
            signal(SignalKind::interrupt()).ok()?,
            signal(SignalKind::terminate()).ok()?,
        ))
    })?;
    let f = flag.clone();
    std::thread::Builder::new()
        .name("ctid-top-signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            f.store(true, Ordering::SeqCst);
        })
        .ok()?;
    Some(flag)
}

/// Run the wallboard until Ctrl-C. A refused token ends it (exit 1); an unreachable daemon
/// or a server error is shown on the board and retried.
pub fn run(opts: &ClientOpts, interval: u64) -> Result<u8, ClientError> {
    if opts.json {
        return Err(ClientError::Usage(
            "ctid top has no --json output; use `ctid status --json` in a loop".into(),
        ));
    }
    let client = opts.client()?;
    let api = client.url.authority();
    let stop = install_stop()
        .ok_or_else(|| ClientError::Usage("cannot install the Ctrl-C handler".into()))?;
    let tty = std::io::stdout().is_terminal();
    let color = use_color();
    let mut stdout = std::io::stdout();
    if tty {
        let _ = write!(stdout, "{ENTER}");
    }
    let result = loop {
        let stats = client.get_json("/api/v1/stats").map(|(_, v)| v);
        let agents = client.get_json("/api/v1/agents").map(|(_, v)| v);
        if let Some(e @ ClientError::Auth { .. }) = [&stats, &agents].into_iter().find_map(|r| {
            r.as_ref()
                .err()
                .filter(|e| matches!(e, ClientError::Auth { .. }))
        }) {
            break Err(e.clone());
        }
        let stats_err = stats.as_ref().err().map(|e| e.to_string());
        let agents_err = agents.as_ref().err().map(|e| e.to_string());
        let clock = jiff::Zoned::now().strftime("%Y-%m-%d %H:%M:%S").to_string();
        let text = frame(
            &clock,
            &api,
            interval,
            stats
                .as_ref()
                .map_err(|_| stats_err.as_deref().unwrap_or_default()),
            agents
                .as_ref()
                .map_err(|_| agents_err.as_deref().unwrap_or_default()),
            now_ms(),
            color,
        );
        let written = if tty {
            // Home, each line clearing its rest, then clear below: no flicker.
            let body: String = text.lines().map(|l| format!("{l}\x1b[K\n")).collect();
            write!(stdout, "\x1b[H{body}\x1b[J")
        } else {
            writeln!(stdout, "{text}")
        };
        if written.and_then(|()| stdout.flush()).is_err() {
            // stdout closed (e.g. piped into `head`): stop quietly.
            break Ok(EXIT_OK);
        }
        let until = Instant::now() + Duration::from_secs(interval);
        while Instant::now() < until && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50));
        }
        if stop.load(Ordering::SeqCst) {
            break Ok(EXIT_OK);
        }
    };
    if tty {
        let _ = write!(stdout, "{LEAVE}");
        let _ = stdout.flush();
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn frame_with_data_and_errors() {
        let stats = json!({"day": "2024-05-02", "interval_minutes": 15, "queues": [
            {"queue": "sales", "sl_goal": 0.8, "answer_rate_goal": 0.9,
             "today": {"offered": 10, "answered": 9, "abandoned": 1, "sl_offered": 0.9,
                       "answer_rate": 0.9, "asa_secs": 3.0, "sl_met": true, "answer_rate_met": true},
             "now": {"waiting": 0, "longest_wait_secs": 0.0, "agents": {"available": 2}}}]});
        let agents = json!([{"id": "1001", "name": "Alice", "state": "available",
                             "since_ms": 1000, "calls_answered": 3, "registered": true}]);
        let f = frame(
            "12:00:00",
            "127.0.0.1:9060",
            2,
            Ok(&stats),
            Ok(&agents),
            61_000,
            false,
        );
        assert!(f.starts_with(
            "ctid top — 127.0.0.1:9060 — 12:00:00 — every 2s — press Ctrl-C to quit\n\n"
        ));
        assert!(f.contains("sales"), "{f}");
        assert!(f.contains("90% ✓"), "{f}");
        assert!(f.contains("1001  Alice  available"), "{f}");
        assert!(f.contains("1m00s"), "{f}");
        assert!(!f.contains('\x1b'));

        let f = frame(
            "t",
            "a",
            5,
            Err("cannot reach ctid"),
            Err("cannot reach ctid"),
            0,
            false,
        );
        assert!(f.ends_with("quit\n\ncannot reach ctid\n"), "{f}");
        let f = frame("t", "a", 5, Err("HTTP 404"), Err("HTTP 500"), 0, false);
        assert!(f.contains("queues: HTTP 404\n"), "{f}");
        assert!(f.contains("agents: HTTP 500\n"), "{f}");
        let f = frame(
            "t",
            "a",
            5,
            Ok(&json!({"queues": []})),
            Ok(&json!([])),
            0,
            false,
        );
        assert!(
            f.contains("no queues\n") && f.contains("no agents\n"),
            "{f}"
        );
    }
}
