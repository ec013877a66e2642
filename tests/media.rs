//! Media end to end: SIPp places the PBX's call (`pbx_media.xml`) and plays the agent's phone
//! (`seat_media.xml`) while the test owns both RTP sockets (their ports go into SIPp's SDP with
//! `-key rtp_port`), so it can check every packet ctid sends and send audio and key presses
//! itself.
//!
//! Prompts are test-made tones whose frequency says which prompt a frame belongs to (zero
//! crossings per 20 ms frame): greeting 1000 Hz, hold music 250 Hz, announcement 2000 Hz; the
//! position words are the shipped speech prompts.

use ctid_testkit as common;

use common::rtp::*;
use common::*;
use ctid::media::g711::{self, Codec};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const GREETING_HZ: u32 = 1000;
const HOLD_HZ: u32 = 250;
const ANNOUNCE_HZ: u32 = 2000;

/// Write a mono 8 kHz 16-bit WAV of a sine at `hz` lasting `ms`.
fn tone_wav(dir: &Path, name: &str, hz: u32, ms: u32) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for i in 0..(8 * ms) {
        let t = f64::from(i) / 8000.0;
        let v = (t * f64::from(hz) * std::f64::consts::TAU).sin() * 8000.0;
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
    path
}

/// One queue `support` (4000) with agent 1001 as member plus `queue_lines`; `[media]` gets the
/// shipped prompts dir (for the position words) plus `media_lines`.
fn media_env(queue_lines: &str, media_lines: &str) -> TestEnv {
    let mut s = queue_settings(&["1001"], queue_lines);
    let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en");
    s.extra_toml = s.extra_toml.replacen(
        "[media]\n",
        &format!(
            "[media]\nprompts_dir = {:?}\n{media_lines}",
            prompts.display().to_string()
        ),
        1,
    );
    TestEnv::new(&s)
}

/// The one call row, once it has ended.
fn ended_call(env: &TestEnv, within: Duration) -> CallRow {
    let rows = wait_for_calls(env, within, |r| r.len() == 1 && r[0].outcome.is_some());
    assert_eq!(rows.len(), 1, "{}", describe_calls(&rows));
    rows[0].clone()
}

/// GET `path` on the admin listener as a supervisor: (status line and headers, raw body).
fn http_get_raw(env: &TestEnv, path: &str) -> (String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", env.admin_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAuthorization: Bearer {SUPERVISOR_TOKEN}\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP head");
    (
        String::from_utf8_lossy(&buf[..split]).into_owned(),
        buf[split + 4..].to_vec(),
    )
}

fn db_value<T: rusqlite::types::FromSql>(env: &TestEnv, sql: &str) -> Option<T> {
    open_db(env)?.query_row(sql, [], |r| r.get(0)).ok()
}

/// Agent 1001's phone (`seat_media.xml`) answering with `law`, sending a 1000 Hz tone from a
/// test-owned RTP socket, hanging up after `talk_ms`.
fn media_seat(env: &TestEnv, d: &Daemon, law: Codec, talk_ms: u32) -> (Peer, SippBg) {
    let seat_rtp = Peer::start(PeerPlan {
        law,
        tone: Some(1000),
        send_for: None,
        key: None,
    });
    let sf = scenario_with(
        env.path(),
        "seat_media.xml",
        &[("@TALK_MS@", &talk_ms.to_string())],
    );
    let port = free_port();
    register_seat(env.path(), d.addr, port, "1001", "secret1001");
    let seat_port = seat_rtp.port.to_string();
    let pt = law.payload_type().to_string();
    let seat = sipp_spawn(
        env.path(),
        None,
        port,
        &sf,
        &[
            "-t",
            "u1",
            "-s",
            "1001",
            "-m",
            "1",
            "-key",
            "rtp_port",
            &seat_port,
            "-key",
            "codec",
            &pt,
            "-key",
            "codec_name",
            law.encoding_name(),
            "-timeout",
            "60s",
        ],
    );
    (seat_rtp, seat)
}

#[test]
fn queued_caller_hears_greeting_then_paced_hold_music_and_position_announcements() {
    let tones = tempfile::tempdir().unwrap();
    let greeting = tone_wav(tones.path(), "greeting.wav", GREETING_HZ, 1000);
    let hold = tone_wav(tones.path(), "hold.wav", HOLD_HZ, 500);
    let announce = tone_wav(tones.path(), "announce.wav", ANNOUNCE_HZ, 400);
    // Nobody logged in (no seat registers); the queue lets callers wait 12 s, then ctid ends it.
    let lines = format!(
        "greeting = {:?}\nhold_music = {:?}\nannouncement = {:?}\nannounce_every_secs = 5\nannounce_position = true\nmax_wait_secs = 12\n",
        greeting.display().to_string(),
        hold.display().to_string(),
        announce.display().to_string()
    );
    let env = media_env(&lines, "");
    let d = env.start();
    let caller = Peer::start(caller_plan(Some(500)));
    let pbx = pbx_call(&env, &d, &caller, 20_000, "none");
    let run = pbx.wait();
    let got = caller.finish();
    assert!(run.ok(), "PBX call:\n{}", run.report);
    let call = ended_call(&env, Duration::from_secs(5));
    assert_eq!(call.outcome.as_deref(), Some("timeout"), "{call:?}");

    assert!(got.len() > 550, "only {} RTP packets in 12 s", got.len());
    let t0 = got[0].at;
    // One stream: one SSRC, PCMU, seq +1 and timestamp +160 from packet to packet.
    for w in got.windows(2) {
        assert_eq!(w[1].ssrc, w[0].ssrc, "SSRC changed at seq {}", w[1].seq);
        assert_eq!(w[1].pt, 0, "payload type");
        assert_eq!(w[1].seq, w[0].seq.wrapping_add(1), "sequence gap/reorder");
        assert_eq!(
            w[1].ts,
            w[0].ts.wrapping_add(160),
            "timestamp not +160 at seq {}",
            w[1].seq
        );
        assert_eq!(w[1].payload.len(), 160);
    }
    // 50 packets/s: between 1 s and 11 s after the first packet.
    let n = got
        .iter()
        .filter(|r| {
            let t = r.at.duration_since(t0);
            t >= Duration::from_secs(1) && t < Duration::from_secs(11)
        })
        .count();
    assert!(
        (490..=510).contains(&n),
        "{n} packets in 10 s (expected 500 ± 2 %)"
    );
    // (Timing jitter is measured by scripts/bench-media on a quiet machine, not here.)

    let law = Codec::Pcmu;
    let class: Vec<char> = got
        .iter()
        .map(|r| {
            if is_tone(law, &r.payload, GREETING_HZ) {
                'G'
            } else if is_tone(law, &r.payload, HOLD_HZ) {
                'H'
            } else if is_tone(law, &r.payload, ANNOUNCE_HZ) {
                'A'
            } else {
                's' // speech (position words) or a frame that straddles two prompts
            }
        })
        .collect();
    let text: String = class.iter().collect();
    // The greeting first (1 s = 50 frames), then hold music.
    assert!(
        class[..48].iter().all(|c| *c == 'G'),
        "greeting first: {}",
        &text[..60]
    );
    assert_eq!(
        class[52],
        'H',
        "hold music after the greeting: {}",
        &text[..80]
    );
    // Announcements start every 5 s (± 60 ms), each followed by the position ("you are number
    // one in the queue": speech), then hold music again.
    let starts: Vec<usize> = (1..class.len())
        .filter(|&i| class[i] == 'A' && class[i - 1] != 'A')
        .collect();
    assert_eq!(starts.len(), 2, "two announcements in 12 s: {text}");
    for (k, &i) in starts.iter().enumerate() {
        let at = got[i].at.duration_since(t0).as_millis() as i64;
        let want = 5000 * (k as i64 + 1);
        assert!(
            (at - want).abs() <= 60,
            "announcement {k} at {at} ms, expected {want} ms"
        );
        // From the end of the tone to where hold music runs again (5 frames in a row: a speech
        // frame may look like one hold-music frame).
        let after = i + class[i..].iter().take_while(|c| **c == 'A').count();
        let resume = (after..class.len() - 5)
            .find(|&j| class[j] == 'A' || class[j..j + 5].iter().all(|c| *c == 'H'))
            .unwrap_or(class.len());
        if resume == class.len() {
            assert!(k > 0, "the first announcement ends before the call: {text}");
            continue; // cut short by the end of the call
        }
        let speech = resume - after;
        // position-intro + "one" + position-outro, as shipped.
        let prompts = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en");
        let frames: usize = [
            "position-intro.wav",
            "numbers/one.wav",
            "position-outro.wav",
        ]
        .iter()
        .map(|f| {
            let r = hound::WavReader::open(prompts.join(f)).unwrap();
            (r.duration() as usize).div_ceil(160)
        })
        .sum();
        assert!(
            speech.abs_diff(frames) <= 3,
            "position announcement: {speech} frames, expected {frames}: {text}"
        );
    }
    d.stop();
}

#[test]
fn pcmu_caller_and_pcma_agent_hear_each_other_and_the_call_is_recorded() {
    let tones = tempfile::tempdir().unwrap();
    let hold = tone_wav(tones.path(), "hold.wav", HOLD_HZ, 500);
    let lines = format!(
        "hold_music = {:?}\nrecord = true\nring_timeout_secs = 10\n",
        hold.display().to_string()
    );
    let env = media_env(&lines, "");
    let d = env.start();
    // The agent answers A-law and talks 10 s, sending a 1000 Hz tone; the caller sends 500 Hz.
    let (seat_rtp, seat) = media_seat(&env, &d, Codec::Pcma, 10000);
    let caller = Peer::start(caller_plan(Some(500)));
    let pbx = pbx_call(&env, &d, &caller, 30_000, "none");
    let run = pbx.wait();
    let seat_run = seat.wait();
    let to_caller = caller.finish();
    let to_seat = seat_rtp.finish();
    assert!(run.ok(), "PBX call:\n{}", run.report);
    assert!(seat_run.ok(), "seat:\n{}", seat_run.report);
    let call = ended_call(&env, Duration::from_secs(5));
    assert_eq!(call.outcome.as_deref(), Some("answered"), "{call:?}");
    assert_eq!(call.hangup_by.as_deref(), Some("agent"), "{call:?}");

    // Caller → agent: every voice packet is the caller's µ-law frame transcoded to A-law.
    let ulaw = tone_frame(Codec::Pcmu, 500);
    let want: Vec<u8> = ulaw.iter().map(|b| g711::ulaw_to_alaw(*b)).collect();
    let voice: Vec<&Rx> = to_seat.iter().filter(|r| r.pt == 8).collect();
    assert!(
        voice.len() > 400,
        "the agent got {} A-law packets in 10 s",
        voice.len()
    );
    assert!(
        to_seat.iter().all(|r| r.pt == 8),
        "only PCMA to a PCMA seat"
    );
    assert!(
        voice.iter().all(|r| r.payload == want),
        "caller audio reaches the agent transcoded"
    );
    // Agent → caller: after the hold music, the agent's A-law frames transcoded to µ-law, in
    // ctid's stream (same SSRC as the hold music, sequence continuous, marker at the switch).
    let alaw = tone_frame(Codec::Pcma, 1000);
    let want: Vec<u8> = alaw.iter().map(|b| g711::alaw_to_ulaw(*b)).collect();
    let first_agent = to_caller
        .iter()
        .position(|r| r.payload == want)
        .expect("agent audio reaches the caller");
    let bridged = &to_caller[first_agent..];
    assert!(
        bridged.len() > 400,
        "{} agent packets reached the caller",
        bridged.len()
    );
    assert!(bridged.iter().all(|r| r.payload == want && r.pt == 0));
    let ssrc = to_caller[0].ssrc;
    assert!(
        to_caller.iter().all(|r| r.ssrc == ssrc),
        "one SSRC towards the caller"
    );
    assert!(
        to_caller[first_agent].marker,
        "marker bit at the switch to the agent's audio"
    );
    for w in to_caller.windows(2) {
        assert_eq!(
            w[1].seq,
            w[0].seq.wrapping_add(1),
            "caller's sequence continuous"
        );
    }

    // The recording: stereo, 8 kHz, 16 bit, 10 s ± 1 %; left the caller (500 Hz), right the
    // agent (1000 Hz).
    let path: String = db_value(&env, "SELECT recording_path FROM calls").expect("recording_path");
    let mut r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, 8000, 16)
    );
    let secs = f64::from(r.duration()) / 8000.0;
    assert!((secs - 10.0).abs() <= 0.1, "recording lasts {secs} s");
    let samples: Vec<i16> = r.samples::<i16>().map(Result::unwrap).collect();
    let mid = (samples.len() / 2) & !1;
    let left: Vec<i16> = samples[mid..mid + 320].iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples[mid + 1..mid + 321]
        .iter()
        .step_by(2)
        .copied()
        .collect();
    let zc = |x: &[i16]| x.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    assert!(
        zc(&left).abs_diff(20) <= 2,
        "left channel is the caller's 500 Hz: {}",
        zc(&left)
    );
    assert!(
        zc(&right).abs_diff(40) <= 2,
        "right channel is the agent's 1000 Hz: {}",
        zc(&right)
    );
    // A supervisor downloads it through the API: the same bytes, as audio/wav.
    let id: i64 = db_value(&env, "SELECT id FROM calls").unwrap();
    let (head, body) = http_get_raw(&env, &format!("/api/v1/calls/{id}/recording"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: audio/wav"),
        "{head}"
    );
    let file = std::fs::read(&path).unwrap();
    // Streamed from the file, with its length announced up front.
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("content-length: {}", file.len())),
        "{head}"
    );
    assert_eq!(body, file, "downloaded recording differs from the file");
    d.stop();
}

fn callback_env(tones: &Path) -> TestEnv {
    let hold = tone_wav(tones, "hold.wav", HOLD_HZ, 500);
    let confirm = tone_wav(tones, "confirm.wav", ANNOUNCE_HZ, 300);
    let lines = format!(
        "hold_music = {:?}\ncallback_key = \"1\"\ncallback_confirm = {:?}\n",
        hold.display().to_string(),
        confirm.display().to_string()
    );
    media_env(&lines, "")
}

fn assert_callback_requested(env: &TestEnv, got: &[Rx]) {
    let call = ended_call(env, Duration::from_secs(5));
    assert_eq!(
        call.outcome.as_deref(),
        Some("callback_requested"),
        "{call:?}"
    );
    assert_eq!(call.hangup_by.as_deref(), Some("ctid"), "{call:?}");
    let conn = open_db(env).unwrap();
    let (queue, number, position, status): (String, String, Option<i64>, String) = conn
        .query_row(
            "SELECT queue, caller_number, position, status FROM callback_requests",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .expect("one callback request");
    assert_eq!(queue, "support");
    assert_eq!(Some(number.as_str()), call.caller_number.as_deref());
    assert_eq!(position, Some(1));
    assert_eq!(status, "pending");
    assert!(
        got.iter()
            .any(|r| is_tone(Codec::Pcmu, &r.payload, ANNOUNCE_HZ)),
        "the caller heard the confirmation"
    );
}

#[test]
fn pressing_1_while_queued_requests_a_callback_rfc4733() {
    let tones = tempfile::tempdir().unwrap();
    let env = callback_env(tones.path());
    let d = env.start();
    let caller = Peer::start(PeerPlan {
        key: Some('1'),
        ..caller_plan(Some(500))
    });
    let pbx = pbx_call(&env, &d, &caller, 20_000, "none");
    std::thread::sleep(Duration::from_millis(1500));
    caller.press.store(true, Ordering::Relaxed);
    let run = pbx.wait();
    let got = caller.finish();
    assert!(
        run.ok(),
        "PBX call (ctid must hang up after the confirmation):\n{}",
        run.report
    );
    assert_callback_requested(&env, &got);
    d.stop();
}

#[test]
fn pressing_1_while_queued_requests_a_callback_sip_info() {
    let tones = tempfile::tempdir().unwrap();
    let env = callback_env(tones.path());
    let d = env.start();
    let caller = Peer::start(caller_plan(Some(500)));
    let pbx = pbx_call(&env, &d, &caller, 20_000, "1");
    let run = pbx.wait();
    let got = caller.finish();
    assert!(run.ok(), "PBX call:\n{}", run.report);
    assert_callback_requested(&env, &got);
    d.stop();
}

#[test]
fn survey_after_the_agent_hangs_up_stores_the_score() {
    let tones = tempfile::tempdir().unwrap();
    let survey = tone_wav(tones.path(), "survey.wav", ANNOUNCE_HZ, 400);
    let thanks = tone_wav(tones.path(), "thanks.wav", GREETING_HZ, 300);
    let hold = tone_wav(tones.path(), "hold.wav", HOLD_HZ, 500);
    let lines = format!(
        "hold_music = {:?}\nsurvey = true\nsurvey_prompt = {:?}\nsurvey_thanks = {:?}\nsurvey_timeout_secs = 5\n",
        hold.display().to_string(),
        survey.display().to_string(),
        thanks.display().to_string()
    );
    let env = media_env(&lines, "");
    let d = env.start();
    let (seat_rtp, seat) = media_seat(&env, &d, Codec::Pcmu, 2000);
    let caller = Peer::start(PeerPlan {
        key: Some('4'),
        ..caller_plan(Some(500))
    });
    let pbx = pbx_call(&env, &d, &caller, 30_000, "none");
    // Press 4 once the survey prompt (2000 Hz) has been heard.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !caller
        .got()
        .iter()
        .any(|r| is_tone(Codec::Pcmu, &r.payload, ANNOUNCE_HZ))
    {
        assert!(Instant::now() < deadline, "no survey prompt heard");
        std::thread::sleep(Duration::from_millis(20));
    }
    caller.press.store(true, Ordering::Relaxed);
    let run = pbx.wait();
    let _ = seat.wait();
    let got = caller.finish();
    seat_rtp.finish();
    assert!(
        run.ok(),
        "PBX call (ctid hangs up after the thanks):\n{}",
        run.report
    );
    assert!(
        got.iter()
            .rev()
            .take(40)
            .any(|r| is_tone(Codec::Pcmu, &r.payload, GREETING_HZ)),
        "the caller heard the thanks last"
    );
    let call = ended_call(&env, Duration::from_secs(5));
    assert_eq!(call.outcome.as_deref(), Some("answered"), "{call:?}");
    assert_eq!(call.hangup_by.as_deref(), Some("agent"), "{call:?}");
    let score: Option<i64> = db_value(&env, "SELECT survey_score FROM calls");
    assert_eq!(score, Some(4));
    d.stop();
}

#[test]
fn caller_that_stops_sending_rtp_is_hung_up_after_the_media_timeout() {
    let tones = tempfile::tempdir().unwrap();
    let hold = tone_wav(tones.path(), "hold.wav", HOLD_HZ, 500);
    let lines = format!("hold_music = {:?}\n", hold.display().to_string());
    let env = media_env(&lines, "media_timeout_secs = 2\n");
    let d = env.start();
    let caller = Peer::start(PeerPlan {
        send_for: Some(Duration::from_secs(1)),
        ..caller_plan(Some(500))
    });
    let pbx = pbx_call(&env, &d, &caller, 20_000, "none");
    let run = pbx.wait();
    let ended = Instant::now();
    let last = caller
        .last_sent
        .lock()
        .unwrap()
        .expect("the caller sent RTP");
    let first = caller
        .sent_first
        .lock()
        .unwrap()
        .expect("the caller sent RTP");
    caller.finish();
    assert!(run.ok(), "PBX call (ctid's BYE expected):\n{}", run.report);
    assert!(last.duration_since(first) < Duration::from_millis(1100));
    let silent = ended.duration_since(last);
    assert!(
        silent >= Duration::from_secs(2) && silent < Duration::from_secs(5),
        "hung up {silent:?} after the last RTP packet (timeout 2 s)"
    );
    let call = ended_call(&env, Duration::from_secs(5));
    assert_eq!(
        call.hangup_cause.as_deref(),
        Some("media_timeout"),
        "{call:?}"
    );
    assert_eq!(call.hangup_by.as_deref(), Some("ctid"), "{call:?}");
    d.stop();
}
