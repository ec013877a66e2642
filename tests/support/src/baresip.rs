//! Debian's baresip as a real SIP phone for the end-to-end tests: its own config dir, headless
//! (no sound card: the `ausine` tone source, the `sndfile` filter keeps what it sent and
//! received as WAV files), an account that answers by itself, a `ctrl_tcp` listener to drive
//! it; over UDP, or over TLS checking ctid's certificate against a CA file.

use crate::free_port;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The frequency of baresip's `ausine` source.
pub const TONE_HZ: f64 = 440.0;

/// A baresip process with its own config dir (`-f`), headless: no sound card (the `ausine`
/// source, no player; the `sndfile` filter keeps what it sends and receives as WAV files), an
/// account that answers by itself, and a `ctrl_tcp` listener to drive it.
pub struct Baresip {
    child: Child,
    dir: PathBuf,
    ctrl: SocketAddr,
}

impl Baresip {
    /// A phone registering as `user` with ctid at `ctid` over UDP.
    pub fn start(dir: &Path, ctid: SocketAddr, user: &str, password: &str) -> Baresip {
        let account =
            format!("<sip:{user}@{ctid}>;auth_pass={password};answermode=auto;regint=600\n");
        Baresip::spawn(dir, &account, "")
    }

    /// A phone registering over TLS with ctid's TLS listener `ctid`, trusting the authorities
    /// in `ca_file` (PEM).
    pub fn start_tls(
        dir: &Path,
        ctid: SocketAddr,
        user: &str,
        password: &str,
        ca_file: &Path,
    ) -> Baresip {
        let account = format!(
            "<sip:{user}@{ctid};transport=tls>;auth_pass={password};answermode=auto;regint=600\n"
        );
        Baresip::spawn(
            dir,
            &account,
            &format!("sip_cafile {}\n", ca_file.display()),
        )
    }

    fn spawn(dir: &Path, account: &str, extra_config: &str) -> Baresip {
        let dir = dir.join("baresip");
        std::fs::create_dir_all(&dir).unwrap();
        let sip = free_port();
        let ctrl = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let config = format!(
            "poll_method epoll\n\
             net_interface 127.0.0.1\n\
             sip_listen 127.0.0.1:{sip}\n\
             audio_player none\n\
             audio_source ausine,{TONE_HZ}\n\
             audio_alert none\n\
             ausrc_srate 48000\n\
             ausrc_channels 2\n\
             module_path /usr/lib/baresip/modules\n\
             module g711.so\n\
             module ausine.so\n\
             module sndfile.so\n\
             snd_path {}\n\
             module_app account.so\n\
             module_app menu.so\n\
             module_app ctrl_tcp.so\n\
             ctrl_tcp_listen {ctrl}\n\
             {extra_config}",
            dir.display()
        );
        std::fs::write(dir.join("config"), config).unwrap();
        std::fs::write(dir.join("accounts"), account).unwrap();
        let log = std::fs::File::create(dir.join("baresip.log")).unwrap();
        let child = Command::new("baresip")
            .arg("-f")
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("run baresip (Debian package baresip-core)");
        Baresip { child, dir, ctrl }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("baresip.log")).unwrap_or_default()
    }

    /// Send `command` over ctrl_tcp (a JSON netstring) and return what came back until its
    /// response (events included).
    pub fn command(&self, command: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut s = loop {
            match TcpStream::connect(self.ctrl) {
                Ok(s) => break s,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("baresip ctrl_tcp {}: {e}\n{}", self.ctrl, self.log()),
            }
        };
        let msg = format!(r#"{{"command":"{command}","token":"e2e"}}"#);
        s.write_all(format!("{}:{msg},", msg.len()).as_bytes())
            .unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while Instant::now() < deadline && !String::from_utf8_lossy(&got).contains("\"response\"") {
            if let Ok(n) = s.read(&mut buf) {
                got.extend_from_slice(&buf[..n]);
            }
        }
        String::from_utf8_lossy(&got).into_owned()
    }

    /// The WAV the `sndfile` filter wrote for `kind` ("enc": what baresip sent, "dec": what it
    /// received and decoded).
    pub fn dump(&self, kind: &str) -> Option<PathBuf> {
        std::fs::read_dir(&self.dir)
            .ok()?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("dump-") && n.ends_with(&format!("-{kind}.wav")))
            })
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per channel of a WAV file: (RMS level, dominant frequency by zero crossings) over its loud
/// part (samples above 1 % of full scale), and how many seconds that part lasts.
pub fn channels(path: &Path) -> Vec<(f64, f64, f64)> {
    let mut r = hound::WavReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    let n = usize::from(spec.channels);
    let samples: Vec<i16> = r.samples::<i16>().map_while(Result::ok).collect();
    (0..n)
        .map(|c| {
            let ch: Vec<i16> = samples.iter().skip(c).step_by(n).copied().collect();
            // The loud stretch: from the first to the last sample above 1 % of full scale.
            let loud = |s: &i16| s.unsigned_abs() > 327;
            let (Some(a), Some(b)) = (ch.iter().position(loud), ch.iter().rposition(loud)) else {
                return (0.0, 0.0, 0.0);
            };
            let part = &ch[a..=b];
            let secs = part.len() as f64 / f64::from(spec.sample_rate);
            let rms = (part.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / part.len() as f64)
                .sqrt();
            let crossings = part.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
            (rms, crossings as f64 / 2.0 / secs.max(1e-9), secs)
        })
        .collect()
}

pub fn poll<T>(
    what: &str,
    within: Duration,
    story: impl Fn() -> String,
    f: impl Fn() -> Option<T>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "{what} (within {within:?})\n{}",
            story()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
