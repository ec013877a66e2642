//! Bad input on calls (issue 3: "unknown number, malformed SDP, an agent phone that answers
//! twice or sends garbage get a clear SIP answer, a logged reason and a recorded outcome —
//! never a stuck call or seat"), driven by SIPp:
//! - the PBX offers only G.729 (payload 18), or an SDP body that does not parse: `488` with a
//!   reason phrase naming the problem, a log line, and a `rejected` calls row with its event;
//! - a seat sends a datagram of garbage in the middle of a call: the call goes on to its normal
//!   end and the seat is offered (and answers) the next call.
//!
//! (An agent phone that answers 200 twice, and hold versus the media timeout, are in
//! `calls_media.rs`, which drives a seat byte by byte.)

use ctid_testkit as common;

use common::*;
use std::time::{Duration, Instant};

/// The INVITE body of a PBX that only speaks G.729 (lines for `pbx_offer_refused.xml`).
const G729_ONLY: &str = "      v=0
      o=pbx 5365[call_number] 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 18
      a=rtpmap:18 G729/8000
      a=fmtp:18 annexb=no
      a=sendrecv";

/// An SDP body that is not valid SDP: a connection address that is no address, a port that
/// is no number.
const MALFORMED: &str = "      v=0
      o=pbx 5365[call_number] 1 IN IP4 [local_ip]
      s=-
      c=IN IP4 not-an-address
      t=0 0
      m=audio lots RTP/AVP 0";

#[test]
fn unacceptable_offers_get_488_a_logged_reason_and_a_rejected_row() {
    let env = TestEnv::new(&queue_settings(&["1001"], "ring_timeout_secs = 10\n"));
    let daemon = env.start();
    let cases = [
        ("G.729-only offer", G729_ONLY, "codec"),
        ("malformed SDP", MALFORMED, "c="),
    ];
    for (n, (what, body, reason_word)) in cases.iter().enumerate() {
        let sf = scenario_with(
            env.path(),
            "pbx_offer_refused.xml",
            &[("@BODY@", body), ("@STATUS@", "488")],
        );
        let run = sipp(
            env.path(),
            daemon.addr,
            &sf,
            &["-s", "4000", "-m", "1", "-timeout", "15s", "-timeout_error"],
        );
        assert!(
            run.ok() && run.successful == Some(1),
            "{what}: the PBX expected 488 Not Acceptable Here:\n{}\n--- ctid log ---\n{}",
            run.report,
            daemon.log_tail(6_000)
        );
        let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
            r.len() == n + 1 && r.iter().all(|c| c.outcome.is_some())
        });
        let events = read_events(&env);
        let ctx = format!(
            "{what}:\n{}{}--- ctid log ---\n{}",
            describe_calls(&rows),
            describe_events(&events),
            daemon.log_tail(6_000)
        );
        assert_eq!(rows.len(), n + 1, "one calls row per refused call: {ctx}");
        let c = &rows[n];
        assert_eq!(c.outcome.as_deref(), Some("rejected"), "{ctx}");
        assert_eq!(c.sip_code, Some(488), "{ctx}");
        assert_eq!(c.queue.as_deref(), Some("support"), "{ctx}");
        assert_eq!(c.hangup_by.as_deref(), Some("ctid"), "{ctx}");
        let cause = c.hangup_cause.clone().unwrap_or_default();
        assert!(
            cause.contains("Not Acceptable Here") && cause.contains(reason_word),
            "the recorded cause should name the problem ({reason_word:?}): {cause:?}\n{ctx}"
        );
        let ev = events_of(&events, c.id);
        assert!(
            ev.iter().any(|e| e.kind == "rejected"
                && e.detail.as_deref().is_some_and(|d| d.starts_with("488"))),
            "a rejected event with the 488: {ctx}"
        );
        let logged = daemon
            .log()
            .lines()
            .filter(|l| l.contains("call refused") && l.contains("status=488"))
            .count();
        assert_eq!(
            logged,
            n + 1,
            "one 'call refused' log line with status=488 per refused call: {ctx}"
        );
        // The live figures count the refusal at once, not only after a restart's rebuild.
        // (The API's snapshot is refreshed once a second: poll.)
        let stats = || {
            let (st, body) = http_get(&env, "/api/v1/stats");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let today = v["queues"]
                .as_array()
                .and_then(|qs| qs.iter().find(|q| q["queue"] == "support"))
                .map(|q| q["today"].clone())
                .unwrap_or_default();
            (st, body, today)
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let (st, body, today) = loop {
            let (st, body, today) = stats();
            if today["rejected"].as_u64() == Some(n as u64 + 1) || Instant::now() > deadline {
                break (st, body, today);
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert_eq!(
            (st, today["rejected"].as_u64(), today["offered"].as_u64()),
            (200, Some(n as u64 + 1), Some(n as u64 + 1)),
            "live stats after {what}: {body}"
        );
    }
    daemon.stop();
}

#[test]
fn a_seat_sending_garbage_mid_call_keeps_its_call_and_gets_the_next_one() {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "ring_timeout_secs = 10\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = start_seat(
        env.path(),
        daemon.addr,
        "1001",
        "secret1001",
        "seat_garbage.xml",
        60,
    );
    // Two calls, one after the other; each caller hangs up after 1 s of talk.
    let pbx = sipp(
        env.path(),
        daemon.addr,
        "pbx_call.xml",
        &[
            "-s",
            "4000",
            "-m",
            "2",
            "-l",
            "1",
            "-d",
            "1000",
            "-timeout",
            "30s",
            "-timeout_error",
        ],
    );
    let rows = wait_for_calls(&env, Duration::from_secs(5), |r| {
        r.len() == 2 && r.iter().all(|c| c.outcome.is_some())
    });
    let seat_trace = seat.messages();
    let seat = seat.stop(Duration::from_secs(3));
    let events = read_events(&env);
    let ctx = format!(
        "{}{}--- PBX ---\n{}\n--- seat ---\n{}\n--- ctid log ---\n{}",
        describe_calls(&rows),
        describe_events(&events),
        pbx.report,
        seat.report,
        daemon.log_tail(8_000)
    );
    assert!(
        seat_trace.matches("GARBAGE %%%").count() == 2,
        "the seat should have sent its garbage once per call: {ctx}"
    );
    assert!(
        daemon.log().contains("dropped unparseable message"),
        "ctid should log that it dropped the garbage: {ctx}"
    );
    assert!(
        pbx.ok() && pbx.successful == Some(2),
        "both calls should be answered and hung up normally by the caller: {ctx}"
    );
    assert_eq!(
        (seat.successful, seat.failed),
        (Some(2), Some(0)),
        "the seat should have handled both calls: {ctx}"
    );
    assert_eq!(rows.len(), 2, "{ctx}");
    for c in &rows {
        assert_eq!(c.outcome.as_deref(), Some("answered"), "{ctx}");
        assert_eq!(c.agent.as_deref(), Some("1001"), "{ctx}");
        assert_eq!(c.hangup_by.as_deref(), Some("caller"), "{ctx}");
        let talk = c.talk_ms.unwrap_or(0);
        // The caller hangs up 1 s after ctid's 200, the seat answers ~200 ms into that and
        // sends its garbage 100 ms after the ACK: the talk must outlast the garbage clearly.
        assert!(
            talk >= 500,
            "the call should go on after the garbage until the caller hangs up: talk {talk} ms: {ctx}"
        );
    }
    daemon.stop();
}
