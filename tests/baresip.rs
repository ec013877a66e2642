//! Debian's baresip as an agent's phone: it registers with ctid's default digest settings, a
//! SIPp PBX caller calls the queue, baresip rings and answers by itself, audio flows both ways
//! through ctid (baresip's `ausine` tone one way, the caller's own tone the other), baresip hangs up (BYE from
//! the phone, asked over its `ctrl_tcp` interface), and the call record, its RTP figures and
//! its recording say so. Everything runs in a network namespace of its own.

use ctid_testkit as common;

use common::baresip::*;
use common::rtp::*;
use common::*;
use ctid::media::g711::Codec;
use std::path::Path;
use std::time::Duration;

/// The caller's tone (the test's RTP peer behind the SIPp PBX).
const CALLER_HZ: u32 = 500;

#[test]
fn baresip_registers_answers_talks_both_ways_and_hangs_up() {
    let ns = Netns::create("baresip");
    // ctid's built-in digest default (no `algorithms` key), the queue records its calls.
    let env = TestEnv::new(&Settings {
        algorithms: Vec::new(),
        ..queue_settings(
            &["1001"],
            "record = true\nring_timeout_secs = 15\nwrapup_secs = 0\n",
        )
    });
    let daemon = env.start_in_netns(&ns);
    let (row, phone_log, pbx, sent, received, lost, heard) = ns.run(|| {
        let phone = Baresip::start(env.path(), daemon.addr, "1001", "secret1001");
        let story = || {
            format!(
                "--- baresip ---\n{}\n--- ctid ---\n{}",
                phone.log(),
                daemon.log_tail(6000)
            )
        };
        poll(
            "baresip did not register with ctid's default digest settings",
            Duration::from_secs(20),
            story,
            || {
                daemon
                    .log()
                    .contains("agent logged in (phone registered) agent=\"1001\"")
                    .then_some(())
            },
        );
        let caller = Peer::start(caller_plan(Some(CALLER_HZ)));
        let pbx = pbx_call(&env, &daemon, &caller, 30_000, "none");
        poll(
            "baresip did not answer the call",
            Duration::from_secs(20),
            story,
            || read_calls(&env).first().and_then(|c| c.answered_at_ms),
        );
        // Talk until baresip has sent and received (decoded) 3 s of audio through ctid:
        // its `sndfile` dumps grow as it goes (8 kHz, 16 bit, mono).
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
                (size("enc") >= 44 + 3 * 16_000 && size("dec") >= 44 + 3 * 16_000).then_some(())
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
        let lost = poll(
            "no RTP figures on the call record",
            Duration::from_secs(10),
            story,
            || {
                open_db(&env)
                    .and_then(|db| {
                        db.query_row(
                            "SELECT caller_rtp_lost, agent_rtp_lost FROM calls",
                            [],
                            |r| Ok((r.get::<_, Option<i64>>(0)?, r.get::<_, Option<i64>>(1)?)),
                        )
                        .ok()
                    })
                    .filter(|(c, a)| c.is_some() && a.is_some())
            },
        );
        let (sent, received) = (phone.dump("enc"), phone.dump("dec"));
        let heard = caller.finish();
        (row, phone.log(), pbx, sent, received, lost, heard)
    });
    let recording: Option<String> = open_db(&env).and_then(|db| {
        db.query_row("SELECT recording_path FROM calls", [], |r| r.get(0))
            .ok()
    });
    let log = daemon.log_tail(8000);
    daemon.stop();
    let story = format!(
        "{row:?}\nRTP lost (caller, agent): {lost:?}\n--- baresip ---\n{phone_log}\n--- caller ---\n{}\n--- ctid ---\n{log}",
        pbx.report
    );

    assert!(
        pbx.ok() && pbx.successful == Some(1),
        "the caller should get ctid's BYE once baresip hung up\n{story}"
    );
    assert_eq!(row.outcome.as_deref(), Some("answered"), "{story}");
    assert_eq!(row.agent.as_deref(), Some("1001"), "{story}");
    assert_eq!(
        row.hangup_by.as_deref(),
        Some("agent"),
        "baresip sent the BYE\n{story}"
    );
    assert!(
        row.talk_ms.is_some_and(|t| t >= 2500),
        "talk time should cover the 3 s of relayed audio\n{story}"
    );

    // The caller heard baresip's tone, relayed by ctid.
    let toned = heard
        .iter()
        .filter(|p| p.pt == 0 && is_tone(Codec::Pcmu, &p.payload, TONE_HZ as u32))
        .count();
    eprintln!(
        "caller got {} RTP packets, {toned} of them baresip's tone",
        heard.len()
    );
    assert!(
        toned >= 100,
        "the caller got {} RTP packets, only {toned} carrying baresip's {TONE_HZ} Hz tone\n{story}",
        heard.len()
    );

    // The recording: left the caller's tone, right the agent's (baresip's).
    let path = recording.unwrap_or_else(|| panic!("the call was not recorded\n{story}"));
    let ch = channels(Path::new(&path));
    eprintln!("recording {path}: (rms, Hz, seconds) per channel {ch:?}; RTP lost {lost:?}");
    assert_eq!(ch.len(), 2, "{path}: stereo expected\n{story}");
    let hz_of = |side: &str| {
        if side == "caller" {
            f64::from(CALLER_HZ)
        } else {
            TONE_HZ
        }
    };
    for (side, (rms, hz, secs)) in ["caller", "agent"].iter().zip(&ch) {
        let want = hz_of(side);
        assert!(
            *rms > 500.0 && *secs >= 2.0,
            "{side} channel of {path} is silent or short: rms {rms:.0}, {secs:.1} s\n{story}"
        );
        assert!(
            (hz - want).abs() < want * 0.1,
            "{side} channel of {path}: {hz:.0} Hz, expected {want} Hz\n{story}"
        );
    }
    // baresip's side (its `sndfile` dumps): it sent its tone and decoded the caller's.
    for (kind, file, want) in [
        ("sent", &sent, TONE_HZ),
        ("received", &received, f64::from(CALLER_HZ)),
    ] {
        let file = file
            .as_ref()
            .unwrap_or_else(|| panic!("baresip wrote no {kind} dump\n{story}"));
        let ch = channels(file);
        eprintln!("baresip {kind}: {} {ch:?}", file.display());
        let (rms, hz, secs) = ch[0];
        assert!(
            rms > 500.0 && secs >= 2.0 && (hz - want).abs() < want * 0.1,
            "audio baresip {kind} ({}): rms {rms:.0}, {hz:.0} Hz, {secs:.1} s; expected {want} Hz\n{story}",
            file.display()
        );
    }
}
