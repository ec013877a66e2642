//! Races between the caller, ctid and a seat, scripted so they happen on every run: a missed
//! offer re-offered to the same seat (the 487 of the cancelled INVITE arrives while the new one
//! rings), and a caller who hangs up just as the seat answers (CANCEL crossing the seat's 200).

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

/// Per Call-ID, what a SIPp trace shows `direction` ("received"/"sent"): the request methods
/// and response codes, in order.
fn trace_by_call(trace: &str, direction: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in trace.split("----------------------------------------------- ") {
        if !m.contains(&format!("message {direction}")) {
            continue;
        }
        let mut lines = m
            .lines()
            .map(str::trim)
            .skip_while(|l| !(l.starts_with("SIP/2.0 ") || l.split(' ').nth(2) == Some("SIP/2.0")));
        let Some(first) = lines.next() else { continue };
        let what = match first.strip_prefix("SIP/2.0 ") {
            Some(rest) => rest.split(' ').next().unwrap_or("").to_string(),
            None => first.split(' ').next().unwrap_or("").to_string(),
        };
        let Some(call_id) = m
            .lines()
            .find_map(|l| l.trim().strip_prefix("Call-ID:"))
            .map(|id| id.trim().to_string())
        else {
            continue;
        };
        out.entry(call_id).or_default().push(what);
    }
    out
}

/// The Call-IDs of the INVITEs a seat received, and of those it saw finished: a final response
/// sent and its ACK received (so nothing rings on).
fn seat_invites(trace: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let received = trace_by_call(trace, "received");
    let sent = trace_by_call(trace, "sent");
    let invited: BTreeSet<String> = received
        .iter()
        .filter(|(_, v)| v.iter().any(|m| m == "INVITE"))
        .map(|(k, _)| k.clone())
        .collect();
    let finished = invited
        .iter()
        .filter(|id| {
            let final_sent = sent
                .get(*id)
                .is_some_and(|v| v.iter().any(|c| c.len() == 3 && c.as_str() >= "200"));
            final_sent && received[*id].iter().any(|m| m == "ACK")
        })
        .cloned()
        .collect();
    (invited, finished)
}

/// The only seat misses its offer (ring timeout 2 s) and is offered the same call again, and
/// again: each 487 to ctid's CANCEL must end only the INVITE it answers. After the caller hangs
/// up, every INVITE the seat got is finished (CANCEL, 487, ACK): no phone is left ringing.
#[test]
fn a_reoffer_to_the_same_seat_leaves_no_invite_ringing() {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "ring_timeout_secs = 2\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_noanswer.xml",
        60,
    );
    // The caller stays 5 s: offers at about 0, 2 and 4 s, all to seat 1001.
    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "1",
            "-d",
            "5000",
            "-timeout",
            "20s",
            "-timeout_error",
        ],
    );
    assert!(
        pbx.ok() && pbx.successful == Some(1),
        "the caller's call failed:\n{}\n--- ctid ---\n{}",
        pbx.report,
        daemon.log_tail(6000)
    );
    // Every INVITE the seat got must end: poll its trace (ctid cancels the last one when the
    // caller hangs up).
    let deadline = Instant::now() + Duration::from_secs(15);
    let (invited, finished) = loop {
        let (invited, finished) = seat_invites(&seat.messages());
        if (!invited.is_empty() && invited == finished) || Instant::now() > deadline {
            break (invited, finished);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let trace = seat.messages();
    let run = seat.stop(Duration::from_secs(5));
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    let events = read_events(&env);
    let log = daemon.log_tail(8000);
    daemon.stop();
    let story = format!(
        "{}\n{}\n--- seat ---\n{}\n--- seat trace by call ---\n{:#?}\n--- ctid ---\n{log}",
        describe_calls(&rows),
        describe_events(&events),
        run.report,
        trace_by_call(&trace, "received"),
    );

    assert!(
        invited.len() >= 2,
        "the seat should have been offered the call at least twice (ring timeout 2 s, caller stays 5 s): {invited:?}\n{story}"
    );
    let ringing: Vec<&String> = invited.difference(&finished).collect();
    assert!(
        ringing.is_empty(),
        "INVITEs left ringing at the seat after the caller hung up: {ringing:?}\n{story}"
    );
    assert_eq!(
        (run.successful, run.failed),
        (Some(invited.len() as u64), Some(0)),
        "every INVITE to the seat must end with ctid's CANCEL (200, 487, ACK)\n{story}"
    );
    assert_eq!(rows.len(), 1, "{story}");
    assert_eq!(rows[0].outcome.as_deref(), Some("abandoned"), "{story}");
    let ev = events_of(&events, rows[0].id);
    let offered = ev.iter().filter(|e| e.kind == "offered").count();
    let missed = ev.iter().filter(|e| e.kind == "missed").count();
    assert_eq!(
        offered,
        invited.len(),
        "one 'offered' event per INVITE the seat got\n{story}"
    );
    assert_eq!(
        missed,
        offered - 1,
        "every offer but the last (cancelled when the caller left) ends in a miss\n{story}"
    );
    assert!(
        !ev.iter().any(|e| e.kind == "rejected"),
        "a 487 to ctid's own CANCEL was taken as the seat refusing the next offer\n{story}"
    );
}
