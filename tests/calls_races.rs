//! Races between the caller, ctid and a seat, scripted so they happen on every run: a missed
//! offer re-offered to the same seat (the 487 of the cancelled INVITE arrives while the new one
//! rings), and a caller who hangs up just as the seat answers (CANCEL crossing the seat's 200).

use ctid_testkit as common;

use common::raw::*;
use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, UdpSocket};
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
    let (rows, events, log) = one_call_ended(&env, daemon, 8000);
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

/// The raw PBX's INVITE to queue 4000 from `pbx`, offering PCMU on `rtp_port`.
fn pbx_invite(d: &Daemon, pbx: &UdpClient, rtp_port: u16) -> SipRequest {
    let mut invite = SipRequest::new(
        "INVITE",
        &format!("sip:4000@{}", d.addr),
        "UDP",
        pbx.local(),
    );
    invite.from = format!(
        "\"Caller 7\" <sip:555017@{}>;tag={}",
        pbx.local(),
        unique("t")
    );
    invite.body = offer_sdp("pbx", 1, rtp_port, "sendrecv");
    invite
        .header(format!("Contact: <sip:555017@{}>", pbx.local()))
        .header("Content-Type: application/sdp")
}

/// The CANCEL of `invite` (same branch, Call-ID, From, To and CSeq number; RFC 3261 §9.1).
fn cancel_of(invite: &SipRequest) -> SipRequest {
    let mut c = invite.clone();
    c.method = "CANCEL".into();
    c.body.clear();
    c.headers.clear();
    c
}

/// Responses to `invite` (any method of its Call-ID) arriving at the PBX until its INVITE gets
/// a final response; returns them all, the final last.
fn until_final(pbx: &UdpClient, invite: &SipRequest, d: &Daemon) -> Vec<SipResponse> {
    let deadline = Instant::now() + STEP;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((bytes, _)) = pbx.recv_raw(left) else {
            panic!(
                "no final response to the PBX's INVITE within {STEP:?}; got {:?}\n--- ctid ---\n{}",
                got.iter().map(SipResponse::status_line).collect::<Vec<_>>(),
                d.log_tail(6000)
            );
        };
        let Some(r) = SipResponse::parse(&bytes) else {
            continue;
        };
        if r.call_id() != Some(invite.call_id.as_str()) {
            continue;
        }
        let is_final = r.status >= 200 && r.cseq().is_some_and(|(_, m)| m == "INVITE");
        got.push(r);
        if is_final {
            return got;
        }
    }
}

/// One early-media call whose caller cancels exactly as the seat answers: `cancel_first`
/// sends the CANCEL just before the seat's 200 (ctid sees the CANCEL first), otherwise just
/// after (ctid has the seat's 200 in hand and its own 200 to the caller loses to the CANCEL).
/// Either way the caller is answered 487 and never 200; ctid ACKs the seat's 200 and then hangs
/// up on the seat with a BYE; the call is abandoned, with no answer and no talk time.
fn cancel_crossing_the_seats_200(cancel_first: bool) {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "early_media = true\nring_timeout_secs = 15\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = register_raw_seat(&daemon, "1001", "secret1001");
    let pbx = UdpClient::new(daemon.addr);
    let pbx_rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let invite = pbx_invite(&daemon, &pbx, pbx_rtp.local_addr().unwrap().port());
    pbx.send(invite.render().as_bytes());

    let seat_invite = await_request(&seat, "INVITE", None, None, &daemon, "seat 1001");
    let seat_tag = unique("seat");
    let seat_rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let contact = format!("Contact: <sip:1001@{}>", seat.local());
    let ringing = seat_invite.response(
        "180 Ringing",
        &seat_tag,
        std::slice::from_ref(&contact),
        None,
    );
    seat.send(ringing.as_bytes());
    let answer = offer_sdp("seat", 1, seat_rtp.local_addr().unwrap().port(), "sendrecv");
    let ok = seat_invite.response("200 OK", &seat_tag, &[contact], Some(&answer));
    let cancel = cancel_of(&invite).render();
    // Both go to ctid's one SIP socket, back to back: ctid reads them in this order.
    if cancel_first {
        pbx.send(cancel.as_bytes());
        seat.send(ok.as_bytes());
    } else {
        seat.send(ok.as_bytes());
        pbx.send(cancel.as_bytes());
    }

    let responses = until_final(&pbx, &invite, &daemon);
    let last = responses.last().unwrap();
    let seen: Vec<String> = responses.iter().map(SipResponse::status_line).collect();
    // The seat: ACK of its 200, then a BYE (a CANCEL ctid may send first is answered 200).
    let seat_call = seat_invite
        .header("Call-ID")
        .unwrap_or_default()
        .to_string();
    let ack = await_request(
        &seat,
        "ACK",
        Some(&seat_call),
        Some(&ok),
        &daemon,
        "seat ACK",
    );
    assert!(
        ack.header("To").is_some_and(|t| t.contains(&seat_tag)),
        "ctid's ACK must acknowledge the seat's 200 (its To tag):\n{}",
        ack.raw
    );
    if last.status == 200 && !cancel_first {
        // The CANCEL lost the race on this run (ctid's 200 went out before it read the
        // CANCEL): a real, if short, answered call. The caller ACKs and hangs up.
        eprintln!("note: ctid answered before it read the CANCEL: {seen:?}");
        let to = last.header("To").unwrap_or_default().to_string();
        let target = last
            .header("Contact")
            .map(|c| contact_uri_and_expires(c).0)
            .unwrap_or_default();
        let mut ack = invite.next();
        ack.method = "ACK".into();
        ack.cseq = invite.cseq;
        ack.uri = target.clone();
        ack.to = to.clone();
        ack.body.clear();
        ack.headers.clear();
        pbx.send(ack.render().as_bytes());
        let mut bye = invite.next();
        bye.method = "BYE".into();
        bye.uri = target;
        bye.to = to;
        bye.body.clear();
        bye.headers.clear();
        assert_eq!(
            pbx.final_for(&bye, STEP).map(|r| r.status),
            Some(200),
            "{}",
            daemon.log_tail(6000)
        );
        let bye = await_request(&seat, "BYE", Some(&seat_call), None, &daemon, "seat BYE");
        seat.send(bye.response("200 OK", &seat_tag, &[], None).as_bytes());
        let rows = wait_for_calls(&env, Duration::from_secs(10), |r| {
            r.len() == 1 && r[0].outcome.is_some()
        });
        daemon.stop();
        assert_eq!(rows[0].outcome.as_deref(), Some("answered"), "{rows:?}");
        return;
    }
    assert_eq!(
        last.status, 487,
        "the caller cancelled before ctid answered it: its INVITE must end 487, got {seen:?}\n{}",
        last.raw
    );
    assert!(
        !responses
            .iter()
            .any(|r| r.status == 200 && r.cseq().is_some_and(|(_, m)| m == "INVITE")),
        "a 200 to a cancelled INVITE: {seen:?}"
    );
    let bye = await_request(&seat, "BYE", Some(&seat_call), None, &daemon, "seat BYE");
    assert!(
        bye.header("To").is_some_and(|t| t.contains(&seat_tag)),
        "ctid's BYE must be in the seat's dialog:\n{}",
        bye.raw
    );
    seat.send(bye.response("200 OK", &seat_tag, &[], None).as_bytes());
    // The caller ACKs the 487 (same branch as the INVITE).
    let mut ack487 = invite.clone();
    ack487.method = "ACK".into();
    ack487.to = last.header("To").unwrap_or_default().to_string();
    ack487.body.clear();
    ack487.headers.clear();
    pbx.send(ack487.render().as_bytes());

    let (rows, events, log) = one_call_ended(&env, daemon, 6000);
    let story = format!(
        "{}\n{}\n--- ctid ---\n{log}",
        describe_calls(&rows),
        describe_events(&events)
    );
    assert_eq!(rows.len(), 1, "{story}");
    let c = &rows[0];
    assert_eq!(c.outcome.as_deref(), Some("abandoned"), "{story}");
    assert_eq!(c.hangup_by.as_deref(), Some("caller"), "{story}");
    assert_eq!(
        c.answered_at_ms, None,
        "an abandoned call has no answer time: {story}"
    );
    assert_eq!(
        c.talk_ms, None,
        "an abandoned call has no talk time: {story}"
    );
    assert_eq!(c.agent, None, "no agent talked to this caller: {story}");
    assert!(
        !events.iter().any(|e| e.kind == "answered"),
        "no 'answered' event for a caller who never got a 200: {story}"
    );
}

#[test]
fn a_cancel_just_before_the_seats_200_hangs_up_the_seat() {
    cancel_crossing_the_seats_200(true);
}

#[test]
fn a_cancel_just_after_the_seats_200_hangs_up_the_seat() {
    cancel_crossing_the_seats_200(false);
}

/// The same race with the seat answering the re-offer, ordered by a raw seat so it happens
/// every run: the first INVITE rings out (ring timeout 2 s) and is cancelled; the seat answers
/// the CANCEL but holds the 487 until the second INVITE (the re-offer) rings, then sends the
/// 487 and at once a 200 to the second. ctid must take the 487 for the first INVITE only: the
/// second is answered and bridged, and no third INVITE goes out.
#[test]
fn a_late_487_of_the_missed_offer_does_not_undo_the_answered_reoffer() {
    let env = TestEnv::new(&queue_settings(
        &["1001"],
        "ring_timeout_secs = 2\nwrapup_secs = 0\n",
    ));
    let daemon = env.start();
    let seat = register_raw_seat(&daemon, "1001", "secret1001");
    // The caller stays 6 s after ctid's 200 (answered at once: no early media here).
    let pbx = sipp_spawn(
        env.path(),
        Some(daemon.addr),
        free_port(),
        "pbx_call.xml",
        &["-s", "4000", "-m", "1", "-d", "6000", "-timeout", "30s"],
    );
    let tag = unique("seat");
    let contact = format!("Contact: <sip:1001@{}>", seat.local());
    let first = await_request(&seat, "INVITE", None, None, &daemon, "first offer");
    let first_id = first.header("Call-ID").unwrap_or_default().to_string();
    seat.send(
        first
            .response("180 Ringing", &tag, std::slice::from_ref(&contact), None)
            .as_bytes(),
    );
    let cancel = await_request(
        &seat,
        "CANCEL",
        Some(&first_id),
        None,
        &daemon,
        "ring timeout",
    );
    seat.send(cancel.response("200 OK", &tag, &[], None).as_bytes());
    let second = await_request(&seat, "INVITE", None, None, &daemon, "re-offer");
    let second_id = second.header("Call-ID").unwrap_or_default().to_string();
    assert_ne!(first_id, second_id, "the re-offer is a new INVITE");
    seat.send(
        second
            .response("180 Ringing", &tag, std::slice::from_ref(&contact), None)
            .as_bytes(),
    );
    // Now the late 487 of the first INVITE, then the answer to the second.
    seat.send(
        first
            .response("487 Request Terminated", &tag, &[], None)
            .as_bytes(),
    );
    let rtp = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let sdp = offer_sdp("seat", 1, rtp.local_addr().unwrap().port(), "sendrecv");
    let ok = second.response("200 OK", &tag, &[contact], Some(&sdp));
    seat.send(ok.as_bytes());
    // ctid ACKs both (the 487 inside its INVITE transaction, the 200 end to end), and nothing
    // else rings: the next request on the seat is the BYE after the caller hangs up.
    let mut acked = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut other = Vec::new();
    let bye = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Some((bytes, from)) = seat.recv_raw(left) else {
            panic!(
                "no BYE at the seat after the caller hung up; ACKs {acked:?}, other {other:?}\n{}",
                daemon.log_tail(6000)
            );
        };
        let Some(req) = InRequest::parse(&bytes) else {
            continue;
        };
        let id = req.header("Call-ID").unwrap_or_default().to_string();
        match req.method.as_str() {
            "ACK" => {
                acked.insert(id);
            }
            "BYE" if id == second_id => break req,
            // A retransmitted INVITE (no ACK yet) gets its final response again.
            "INVITE" if id == second_id => {
                seat.sock.send_to(ok.as_bytes(), from).unwrap();
            }
            m => other.push(format!("{m} {id}")),
        }
    };
    seat.send(bye.response("200 OK", &tag, &[], None).as_bytes());
    let pbx = pbx.wait();
    let (rows, events, log) = one_call_ended(&env, daemon, 6000);
    let story = format!(
        "{}\n{}\n--- caller ---\n{}\n--- ctid ---\n{log}",
        describe_calls(&rows),
        describe_events(&events),
        pbx.report
    );
    assert!(
        other.is_empty(),
        "the seat got requests besides the ACKs and the BYE (a third INVITE?): {other:?}\n{story}"
    );
    assert!(
        acked.contains(&first_id) && acked.contains(&second_id),
        "ctid must ACK the 487 of the first INVITE and the 200 of the second: {acked:?}\n{story}"
    );
    assert!(pbx.ok() && pbx.successful == Some(1), "{story}");
    assert_eq!(rows.len(), 1, "{story}");
    let c = &rows[0];
    assert_eq!(c.outcome.as_deref(), Some("answered"), "{story}");
    assert_eq!(c.agent.as_deref(), Some("1001"), "{story}");
    assert_eq!(c.hangup_by.as_deref(), Some("caller"), "{story}");
    let ev = events_of(&events, c.id);
    let kinds = kinds_among(&ev, &["offered", "missed", "rejected", "answered"]);
    assert_eq!(
        kinds,
        ["offered", "missed", "offered", "answered"],
        "one miss, one re-offer answered, no rejection\n{story}"
    );
}
