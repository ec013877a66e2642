//! When ctid answers a caller, when it refuses one, and when it may hang up: a refusal decided
//! at once is a final 4xx/5xx (never a 200 then a BYE, so a PBX can fail over); no BYE before
//! the caller's ACK of ctid's 200 (RFC 3261 §15); no media timeout on a caller whose answer is
//! not confirmed yet (183 only, or a 200 still unacknowledged). Driven by a raw PBX, so every
//! retransmission and its time is seen.

use ctid_testkit as common;

use common::raw::*;
use common::*;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::{Duration, Instant};

/// `[sip] t1_ms` in these tests: ctid retransmits its 200 at 0.1, 0.3, 0.7, 1.5, 3.1 s and
/// gives up waiting for the ACK after 64·T1 = 6.4 s.
const T1_MS: u64 = 100;

/// One agent 1001 (whose phone never registers unless a test says so) in queue 4000 with
/// `queue_lines`, `[media] media_timeout_secs` as given, T1 = 100 ms.
fn settings(queue_lines: &str, media_timeout_secs: u64) -> Settings {
    let mut s = queue_settings(&["1001"], queue_lines);
    s.extra_toml = s.extra_toml.replacen(
        "\n\n[[queues]]",
        &format!("\nmedia_timeout_secs = {media_timeout_secs}\n\n[[queues]]"),
        1,
    );
    assert!(
        s.extra_toml
            .contains(&format!("media_timeout_secs = {media_timeout_secs}")),
        "could not set [media] media_timeout_secs:\n{}",
        s.extra_toml
    );
    s.sip_toml = format!("t1_ms = {T1_MS}\n");
    s
}

/// The raw PBX's INVITE to 4000.
fn invite_4000(d: &Daemon, pbx: &UdpClient, rtp: &UdpSocket) -> SipRequest {
    let mut invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", d.addr),
        "UDP",
        pbx.local(),
    );
    invite.from = format!(
        "\"Caller 3\" <sip:555013@{}>;tag={}",
        pbx.local(),
        unique("t")
    );
    invite.body = offer_sdp("pbx", 1, rtp.local_addr().unwrap().port(), "sendrecv");
    invite
        .header(format!("Contact: <sip:555013@{}>", pbx.local()))
        .header("Content-Type: application/sdp")
}

/// What reached the PBX about one call, with the time since the INVITE went out.
#[derive(Debug)]
enum Seen {
    /// A response: status and CSeq method.
    Response(u16, String, SipResponse),
    /// A request from ctid (BYE…): its method.
    Request(String),
}

/// Read the PBX socket until `stop` says so or `limit` passes; a BYE from ctid is answered 200.
fn watch(
    pbx: &UdpClient,
    call_id: &str,
    start: Instant,
    limit: Duration,
    mut stop: impl FnMut(&[(Duration, Seen)]) -> bool,
) -> Vec<(Duration, Seen)> {
    let deadline = start + limit;
    let mut seen = Vec::new();
    while !stop(&seen) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Some((bytes, from)) = pbx.recv_raw(left) else {
            break;
        };
        let at = start.elapsed();
        if let Some(r) = SipResponse::parse(&bytes) {
            if r.call_id() == Some(call_id) {
                let method = r.cseq().map(|(_, m)| m).unwrap_or_default();
                seen.push((at, Seen::Response(r.status, method, r)));
            }
        } else if let Some(req) = InRequest::parse(&bytes) {
            if req.header("Call-ID") == Some(call_id) {
                if req.method == "BYE" {
                    let ok = req.response("200 OK", "", &[], None);
                    pbx.sock.send_to(ok.as_bytes(), from).unwrap();
                }
                seen.push((at, Seen::Request(req.method.clone())));
            }
        }
    }
    seen
}

fn oks(seen: &[(Duration, Seen)]) -> Vec<Duration> {
    seen.iter()
        .filter(|(_, s)| matches!(s, Seen::Response(200, m, _) if m == "INVITE"))
        .map(|(t, _)| *t)
        .collect()
}

fn bye_at(seen: &[(Duration, Seen)]) -> Option<Duration> {
    seen.iter()
        .find(|(_, s)| matches!(s, Seen::Request(m) if m == "BYE"))
        .map(|(t, _)| *t)
}

fn describe(seen: &[(Duration, Seen)]) -> String {
    seen.iter()
        .map(|(t, s)| match s {
            Seen::Response(c, m, _) => format!("{t:.2?} {c} ({m})"),
            Seen::Request(m) => format!("{t:.2?} {m}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The ACK to ctid's 200 (`ok`) of `invite`.
fn ack_for(invite: &SipRequest, ok: &SipResponse) -> SipRequest {
    let mut ack = invite.next();
    ack.method = "ACK".into();
    ack.cseq = invite.cseq;
    ack.uri = ok
        .header("Contact")
        .map(|c| contact_uri_and_expires(c).0)
        .unwrap_or_else(|| invite.uri.clone());
    ack.to = ok.header("To").unwrap_or_default().to_string();
    ack.body.clear();
    ack.headers.clear();
    ack
}

/// A caller that never ACKs ctid's 200, in a queue with a 1 s media timeout: ctid keeps
/// retransmitting its 200 and only after 64·T1 without an ACK ends the call with a BYE; the
/// call is recorded as ended by ctid for `no_ack`, not as abandoned by the caller, and not as
/// a media timeout.
#[test]
fn no_bye_before_the_ack_wait_ends_and_no_ack_is_recorded_as_such() {
    let env = TestEnv::new(&settings("", 1));
    let daemon = env.start();
    let pbx = UdpClient::new(daemon.addr);
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let invite = invite_4000(&daemon, &pbx, &rtp);
    let start = Instant::now();
    pbx.send(invite.render().as_bytes());
    let seen = watch(&pbx, &invite.call_id, start, Duration::from_secs(20), |s| {
        bye_at(s).is_some()
    });
    let (rows, events, log) = one_call_ended(&env, daemon, 6000);
    let story = format!(
        "--- at the PBX ---\n{}\n{}{}--- ctid ---\n{log}",
        describe(&seen),
        describe_calls(&rows),
        describe_events(&events)
    );
    let oks = oks(&seen);
    let bye = bye_at(&seen).unwrap_or_else(|| panic!("ctid never hung up:\n{story}"));
    assert!(
        oks.len() >= 4,
        "ctid should retransmit its unacknowledged 200:\n{story}"
    );
    let wait = Duration::from_millis(64 * T1_MS);
    assert!(
        bye >= oks[0] + wait - Duration::from_millis(300),
        "BYE {bye:?} after the first 200 at {:?}: before the 64·T1 = {wait:?} ACK wait was over (RFC 3261 §15)\n{story}",
        oks[0]
    );
    assert!(
        oks.iter().all(|t| *t < bye),
        "a 200 was retransmitted after ctid's BYE\n{story}"
    );
    assert_eq!(rows.len(), 1, "{story}");
    let c = &rows[0];
    assert_eq!(c.hangup_by.as_deref(), Some("ctid"), "{story}");
    assert_eq!(c.hangup_cause.as_deref(), Some("no_ack"), "{story}");
    assert!(
        !events.iter().any(|e| e.kind == "media_timeout"),
        "the media timeout ran before the caller's dialog was confirmed\n{story}"
    );
}

/// The queue gives up on the caller (max_wait 1 s) while its ACK is still missing: ctid holds
/// its BYE until the ACK arrives (here after the 6th copy of the 200, ~3 s), then sends it.
#[test]
fn a_bye_wanted_before_the_ack_waits_for_it() {
    let env = TestEnv::new(&settings("max_wait_secs = 1\n", 30));
    let daemon = env.start();
    let pbx = UdpClient::new(daemon.addr);
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let invite = invite_4000(&daemon, &pbx, &rtp);
    let start = Instant::now();
    pbx.send(invite.render().as_bytes());
    let before = watch(&pbx, &invite.call_id, start, Duration::from_secs(10), |s| {
        oks(s).len() >= 6 || bye_at(s).is_some()
    });
    let story = |seen: &[(Duration, Seen)]| {
        format!(
            "--- at the PBX ---\n{}\n{}--- ctid ---\n{}",
            describe(seen),
            describe_calls(&read_calls(&env)),
            daemon.log_tail(6000)
        )
    };
    assert!(
        bye_at(&before).is_none(),
        "ctid sent BYE before the caller's ACK (RFC 3261 §15)\n{}",
        story(&before)
    );
    assert!(oks(&before).len() >= 6, "{}", story(&before));
    let Some((_, Seen::Response(_, _, ok))) = before
        .iter()
        .find(|(_, s)| matches!(s, Seen::Response(200, m, _) if m == "INVITE"))
    else {
        unreachable!()
    };
    let acked = start.elapsed();
    pbx.send(ack_for(&invite, ok).render().as_bytes());
    let after = watch(&pbx, &invite.call_id, start, Duration::from_secs(10), |s| {
        bye_at(s).is_some()
    });
    let bye = bye_at(&after).unwrap_or_else(|| {
        panic!(
            "no BYE after the ACK although the queue's max wait passed\n{}",
            story(&after)
        )
    });
    assert!(bye >= acked, "{}", story(&after));
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    assert_eq!(
        rows[0].outcome.as_deref(),
        Some("timeout"),
        "{}",
        story(&after)
    );
    assert_eq!(rows[0].hangup_by.as_deref(), Some("ctid"));
    daemon.stop();
}

/// Refusals decided when the call arrives (no agent logged in and `join_empty = false`;
/// the same with `overflow = "hangup:503"`) end the INVITE with that final status: no 200,
/// no BYE, so a PBX can try its next destination.
#[test]
fn a_refused_caller_gets_a_final_error_and_never_a_200() {
    for (lines, status) in [
        ("join_empty = false\n", 480),
        ("join_empty = false\noverflow = \"hangup:503\"\n", 503),
    ] {
        let env = TestEnv::new(&settings(lines, 30));
        let daemon = env.start();
        let pbx = UdpClient::new(daemon.addr);
        let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let invite = invite_4000(&daemon, &pbx, &rtp);
        let start = Instant::now();
        pbx.send(invite.render().as_bytes());
        let seen = watch(&pbx, &invite.call_id, start, STEP, |s| {
            s.iter()
                .any(|(_, x)| matches!(x, Seen::Response(c, m, _) if *c >= 200 && m == "INVITE"))
        });
        let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
            r.len() == 1 && r[0].outcome.is_some()
        });
        let story = format!(
            "queue: {lines}--- at the PBX ---\n{}\n{}--- ctid ---\n{}",
            describe(&seen),
            describe_calls(&rows),
            daemon.log_tail(4000)
        );
        daemon.stop();
        let finals: Vec<u16> = seen
            .iter()
            .filter_map(|(_, x)| match x {
                Seen::Response(c, m, _) if *c >= 200 && m == "INVITE" => Some(*c),
                _ => None,
            })
            .collect();
        assert_eq!(finals, [status], "{story}");
        assert!(bye_at(&seen).is_none(), "{story}");
        assert_eq!(rows.len(), 1, "{story}");
        assert_eq!(rows[0].sip_code, Some(i64::from(status)), "{story}");
        assert_eq!(rows[0].answered_at_ms, None, "{story}");
    }
}

/// An early-media queue with no hold music sends the caller no RTP, and the caller sends none
/// either before it is answered: the media timeout (1 s here) must not cut it. After 3 s the
/// caller is still queued; it hangs up (CANCEL) and is recorded as abandoned by the caller.
#[test]
fn an_early_media_caller_in_silence_is_not_cut_by_the_media_timeout() {
    let env = TestEnv::new(&settings("early_media = true\n", 1));
    let daemon = env.start();
    let pbx = UdpClient::new(daemon.addr);
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let invite = invite_4000(&daemon, &pbx, &rtp);
    let start = Instant::now();
    pbx.send(invite.render().as_bytes());
    let seen = watch(&pbx, &invite.call_id, start, Duration::from_secs(3), |s| {
        s.iter().any(|(_, x)| match x {
            Seen::Response(c, _, _) => *c >= 200,
            Seen::Request(_) => true,
        })
    });
    let story = |seen: &[(Duration, Seen)]| {
        format!(
            "--- at the PBX ---\n{}\n{}{}--- ctid ---\n{}",
            describe(seen),
            describe_calls(&read_calls(&env)),
            describe_events(&read_events(&env)),
            daemon.log_tail(6000)
        )
    };
    assert!(
        seen.iter()
            .any(|(_, x)| matches!(x, Seen::Response(183, _, _))),
        "an early-media queue answers 183\n{}",
        story(&seen)
    );
    assert!(
        seen.iter()
            .all(|(_, x)| matches!(x, Seen::Response(c, _, _) if *c < 200)),
        "the caller was ended while waiting in silence (media timeout 1 s)\n{}",
        story(&seen)
    );
    let mut cancel = invite.clone();
    cancel.method = "CANCEL".into();
    cancel.body.clear();
    cancel.headers.clear();
    pbx.send(cancel.render().as_bytes());
    let after = watch(&pbx, &invite.call_id, start, STEP, |s| {
        s.iter()
            .any(|(_, x)| matches!(x, Seen::Response(c, m, _) if *c >= 200 && m == "INVITE"))
    });
    assert!(
        after
            .iter()
            .any(|(_, x)| matches!(x, Seen::Response(487, m, _) if m == "INVITE")),
        "{}",
        story(&after)
    );
    let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
        r.len() == 1 && r[0].outcome.is_some()
    });
    let ctx = story(&after);
    daemon.stop();
    assert_eq!(rows[0].outcome.as_deref(), Some("abandoned"), "{ctx}");
    assert_eq!(rows[0].hangup_by.as_deref(), Some("caller"), "{ctx}");
}
