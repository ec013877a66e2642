//! Audio prompts: WAV files read once at startup, held as 8 kHz mono 16-bit linear PCM, and played
//! out frame by frame.
//!
//! Owns: reading WAV files with hound ([`load`]) — 8/16/24/32-bit integer or 32-bit float, mono
//! or stereo (downmixed), 8 kHz to 48 kHz (resampled to 8 kHz through a Kaiser-windowed sinc
//! low-pass, so nothing above the 4 kHz telephone Nyquist folds back into the band) — the frame
//! cursor the media layer sends from ([`PromptCursor`], with a looped mode for hold music) and the
//! words that say a queue position ([`number_words`]).
//!
//! Must not know: codecs, RTP, calls or queues, or where prompt files live (the caller hands in
//! paths; the shipped English set is under `prompts/en/`, made by `scripts/make-prompts`).
//!
//! Loading never panics: every way a file can be missing, unreadable, malformed or unsupported is
//! a [`PromptError`] whose `Display` starts with the file's path.

use std::fmt;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use thiserror::Error;

/// The rate prompts are held and played at (G.711's 8 kHz).
pub const SAMPLE_RATE: u32 = 8000;
/// Lowest sample rate [`load`] accepts.
pub const MIN_INPUT_RATE: u32 = 8000;
/// Highest sample rate [`load`] accepts.
pub const MAX_INPUT_RATE: u32 = 48_000;
/// Longest prompt [`load`] accepts, in seconds (hold music loops, so longer is never needed; the
/// limit keeps a mistaken multi-hour file from eating memory at startup).
pub const MAX_DURATION_SECS: u32 = 300;
/// Frame length used when a ptime of 0 is asked for.
pub const DEFAULT_PTIME_MS: u32 = 20;
/// Longest frame a cursor hands out (longer ptimes are clamped).
pub const MAX_PTIME_MS: u32 = 200;

/// A prompt file that could not be loaded: the path and why.
#[derive(Debug, Error)]
#[error("{}: {reason}", path.display())]
pub struct PromptError {
    path: PathBuf,
    reason: PromptErrorReason,
}

impl PromptError {
    /// The file that failed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why it failed.
    pub fn reason(&self) -> &PromptErrorReason {
        &self.reason
    }
}

/// Why a prompt file was rejected.
#[derive(Debug, Error)]
pub enum PromptErrorReason {
    /// The file could not be opened (missing, permissions, a directory…).
    #[error("cannot open: {0}")]
    Open(std::io::Error),
    /// The file ends inside its header or its audio data.
    #[error("truncated file")]
    Truncated,
    /// Not a WAV file hound can read, or reading it failed.
    #[error("not a readable WAV file: {0}")]
    Wav(hound::Error),
    /// More than two channels.
    #[error("{0} channels (expected mono or stereo)")]
    Channels(u16),
    /// A sample rate outside 8 kHz..=48 kHz.
    #[error("sample rate {0} Hz (expected {MIN_INPUT_RATE} to {MAX_INPUT_RATE} Hz)")]
    SampleRate(u32),
    /// A sample format other than 8/16/24/32-bit integer or 32-bit float.
    #[error(
        "{bits}-bit {} samples (expected 8/16/24/32-bit integer or 32-bit float)",
        if *float { "float" } else { "integer" }
    )]
    SampleFormat { bits: u16, float: bool },
    /// No audio frames at all.
    #[error("no audio samples")]
    Empty,
    /// Longer than [`MAX_DURATION_SECS`].
    #[error("longer than {MAX_DURATION_SECS} s")]
    TooLong,
}

impl From<hound::Error> for PromptErrorReason {
    fn from(e: hound::Error) -> PromptErrorReason {
        match e {
            hound::Error::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
                PromptErrorReason::Truncated
            }
            e => PromptErrorReason::Wav(e),
        }
    }
}

/// An audio prompt: 8 kHz mono 16-bit linear samples, cheap to clone (the samples are shared).
#[derive(Clone)]
pub struct Prompt {
    name: String,
    path: Option<PathBuf>,
    samples: Arc<[i16]>,
}

impl fmt::Debug for Prompt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prompt")
            .field("name", &self.name)
            .field("path", &self.path)
            .field("samples", &self.samples.len())
            .finish()
    }
}

impl Prompt {
    /// A prompt from samples already at 8 kHz (tones, tests). It has no path.
    pub fn from_samples(name: impl Into<String>, samples: impl Into<Arc<[i16]>>) -> Prompt {
        Prompt {
            name: name.into(),
            path: None,
            samples: samples.into(),
        }
    }

    /// The name: the file stem for a loaded prompt (`greeting` for `prompts/en/greeting.wav`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file it was loaded from.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The samples, 8 kHz mono.
    pub fn samples(&self) -> &[i16] {
        &self.samples
    }

    /// The samples as a shared handle.
    pub fn shared_samples(&self) -> Arc<[i16]> {
        Arc::clone(&self.samples)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when there are no samples (only possible through [`Prompt::from_samples`]).
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Playing time.
    pub fn duration(&self) -> Duration {
        Duration::from_micros(self.samples.len() as u64 * 1_000_000 / u64::from(SAMPLE_RATE))
    }

    /// A cursor that plays the prompt once in frames of `ptime_ms`.
    pub fn cursor(&self, ptime_ms: u32) -> PromptCursor {
        PromptCursor::new(self, ptime_ms, false)
    }

    /// A cursor that plays the prompt over and over (hold music) in frames of `ptime_ms`.
    pub fn looped(&self, ptime_ms: u32) -> PromptCursor {
        PromptCursor::new(self, ptime_ms, true)
    }
}

/// Samples per frame of `ptime_ms` at 8 kHz: 160 for 20 ms. A ptime of 0 means
/// [`DEFAULT_PTIME_MS`]; ptimes above [`MAX_PTIME_MS`] are clamped to it.
pub fn frame_len(ptime_ms: u32) -> usize {
    let ms = match ptime_ms {
        0 => DEFAULT_PTIME_MS,
        ms => ms.min(MAX_PTIME_MS),
    };
    (ms * SAMPLE_RATE / 1000) as usize
}

/// Plays a prompt in fixed-size frames. Owns a handle to the samples, so it can move into the
/// task that sends them.
///
/// Played once, the last frame is padded with silence (0) and then [`PromptCursor::next_frame`]
/// returns `None`. Looped, the end runs straight on into the start (no gap, no padding) and the
/// cursor never finishes — except for an empty prompt, which yields nothing in either mode.
#[derive(Debug, Clone)]
pub struct PromptCursor {
    samples: Arc<[i16]>,
    pos: usize,
    frame: Vec<i16>,
    looped: bool,
    finished: bool,
}

impl PromptCursor {
    /// A cursor at the start of `prompt`; see [`frame_len`] for how `ptime_ms` is read.
    pub fn new(prompt: &Prompt, ptime_ms: u32, looped: bool) -> PromptCursor {
        PromptCursor {
            samples: prompt.shared_samples(),
            pos: 0,
            frame: vec![0; frame_len(ptime_ms)],
            looped,
            finished: prompt.is_empty(),
        }
    }

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame.len()
    }

    /// Whether the cursor loops.
    pub fn is_looped(&self) -> bool {
        self.looped
    }

    /// True once a play-once cursor has handed out its last frame (or the prompt is empty).
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Offset of the next sample to play.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Back to the start.
    pub fn rewind(&mut self) {
        self.pos = 0;
        self.finished = self.samples.is_empty();
    }

    /// The next frame, always [`PromptCursor::frame_len`] samples, or `None` when done.
    pub fn next_frame(&mut self) -> Option<&[i16]> {
        if self.finished {
            return None;
        }
        let mut filled = 0;
        while filled < self.frame.len() {
            let rest = self.samples.get(self.pos..).unwrap_or_default();
            let n = rest.len().min(self.frame.len() - filled);
            self.frame[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            self.pos += n;
            if self.pos >= self.samples.len() {
                if self.looped {
                    self.pos = 0;
                } else {
                    self.frame[filled..].fill(0);
                    self.finished = true;
                    break;
                }
            }
        }
        Some(&self.frame)
    }
}

/// Load a WAV file as an 8 kHz mono prompt named after the file stem.
pub fn load(path: &Path) -> Result<Prompt, PromptError> {
    let fail = |reason| PromptError {
        path: path.to_path_buf(),
        reason,
    };
    let file = File::open(path).map_err(|e| fail(PromptErrorReason::Open(e)))?;
    let meta = file
        .metadata()
        .map_err(|e| fail(PromptErrorReason::Open(e)))?;
    if !meta.is_file() {
        let e = std::io::Error::other("not a regular file");
        return Err(fail(PromptErrorReason::Open(e)));
    }
    let samples = decode_wav(BufReader::new(file), meta.len()).map_err(fail)?;
    Ok(Prompt {
        name: path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        path: Some(path.to_path_buf()),
        samples: samples.into(),
    })
}

/// A reader that remembers whether it ran out of input, so that hound's I/O errors (whose kinds
/// vary) can be told apart as truncation.
struct EofTracker<R> {
    inner: R,
    at_eof: bool,
}

impl<R: Read> Read for EofTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.at_eof = true;
        }
        Ok(n)
    }
}

/// Read, check, downmix and resample a whole WAV stream of at most `size` bytes.
fn decode_wav<R: Read>(reader: R, size: u64) -> Result<Vec<i16>, PromptErrorReason> {
    let mut src = EofTracker {
        inner: reader,
        at_eof: false,
    };
    match decode_wav_from(&mut src, size) {
        Err(PromptErrorReason::Wav(hound::Error::IoError(_))) if src.at_eof => {
            Err(PromptErrorReason::Truncated)
        }
        r => r,
    }
}

fn decode_wav_from<R: Read>(reader: R, size: u64) -> Result<Vec<i16>, PromptErrorReason> {
    let mut wav = hound::WavReader::new(reader)?;
    let spec = wav.spec();
    if !(1..=2).contains(&spec.channels) {
        return Err(PromptErrorReason::Channels(spec.channels));
    }
    if !(MIN_INPUT_RATE..=MAX_INPUT_RATE).contains(&spec.sample_rate) {
        return Err(PromptErrorReason::SampleRate(spec.sample_rate));
    }
    let bits = spec.bits_per_sample;
    let float = spec.sample_format == hound::SampleFormat::Float;
    let supported = if float {
        bits == 32
    } else {
        matches!(bits, 8 | 16 | 24 | 32)
    };
    if !supported {
        return Err(PromptErrorReason::SampleFormat { bits, float });
    }
    // The header's frame count may lie (a truncated or streamed file); the file size bounds it.
    let frame_bytes = u64::from(bits / 8) * u64::from(spec.channels);
    let frames = u64::from(wav.duration()).min(size / frame_bytes);
    if frames > u64::from(MAX_DURATION_SECS) * u64::from(spec.sample_rate) {
        return Err(PromptErrorReason::TooLong);
    }
    let mut mono = Vec::with_capacity(usize::try_from(frames).unwrap_or(0));
    let channels = usize::from(spec.channels);
    if float {
        let samples = wav
            .samples::<f32>()
            .map(|s| s.map(|v| if v.is_finite() { v } else { 0.0 }));
        downmix(samples, channels, &mut mono)?;
    } else {
        let scale = 1.0 / (1u64 << (bits - 1)) as f32;
        let samples = wav.samples::<i32>().map(|s| s.map(|v| v as f32 * scale));
        downmix(samples, channels, &mut mono)?;
    }
    if mono.is_empty() {
        return Err(PromptErrorReason::Empty);
    }
    Ok(resample(&mono, spec.sample_rate)
        .into_iter()
        .map(|v| (v * 32768.0).round().clamp(-32768.0, 32767.0) as i16)
        .collect())
}

/// Average interleaved `channels` into `out`.
fn downmix(
    samples: impl Iterator<Item = hound::Result<f32>>,
    channels: usize,
    out: &mut Vec<f32>,
) -> Result<(), PromptErrorReason> {
    let (mut acc, mut n) = (0.0f32, 0);
    for s in samples {
        acc += s?;
        n += 1;
        if n == channels {
            out.push(acc / channels as f32);
            (acc, n) = (0.0, 0);
        }
    }
    Ok(())
}

// The anti-aliasing low-pass, in units of output (8 kHz) sample periods so one table serves every
// input rate: passband to 3.4 kHz, stopband from 4.2 kHz at 70 dB down. Anything that still folds
// back lands above 3.8 kHz, outside the telephone band.
/// Cutoff (−6 dB) as a fraction of the output rate's Nyquist: 3.8 kHz / 4 kHz.
const CUTOFF: f64 = 3800.0 / 4000.0;
/// Stopband attenuation the Kaiser window is sized for, dB.
const ATTENUATION_DB: f64 = 70.0;
/// Transition band width as a fraction of the output rate: 800 Hz / 8 kHz.
const TRANSITION: f64 = 800.0 / 8000.0;
/// Kernel table entries per output sample period (linear interpolation in between).
const OVERSAMPLE: f64 = 256.0;

/// Half the kernel's length in output sample periods (Kaiser's estimate of the taps needed).
fn kernel_half_width() -> f64 {
    (ATTENUATION_DB - 7.95) / (14.36 * TRANSITION) / 2.0
}

/// Zeroth-order modified Bessel function of the first kind (power series).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term, mut k) = (1.0, 1.0, 1.0);
    while term > sum * 1e-12 {
        term *= (x / (2.0 * k)) * (x / (2.0 * k));
        sum += term;
        k += 1.0;
    }
    sum
}

/// The low-pass impulse response for `u` ≥ 0 output periods from the centre, sampled every
/// 1/[`OVERSAMPLE`] period, with two trailing zeros so interpolation never reads past the end.
static KERNEL: LazyLock<Vec<f32>> = LazyLock::new(|| {
    let half = kernel_half_width();
    let beta = 0.1102 * (ATTENUATION_DB - 8.7);
    let norm = bessel_i0(beta);
    let n = (half * OVERSAMPLE).ceil() as usize;
    let mut table: Vec<f32> = (0..=n)
        .map(|i| {
            let u = i as f64 / OVERSAMPLE;
            let x = u / half;
            if x >= 1.0 {
                return 0.0;
            }
            let a = std::f64::consts::PI * CUTOFF * u;
            let sinc = if a == 0.0 { 1.0 } else { a.sin() / a };
            (CUTOFF * sinc * bessel_i0(beta * (1.0 - x * x).sqrt()) / norm) as f32
        })
        .collect();
    table.extend([0.0, 0.0]);
    table
});

/// Resample mono `input` at `rate` Hz to [`SAMPLE_RATE`], preserving duration (the output has
/// `round(len · 8000 / rate)` samples). Output sample `n` sits at input time `n · rate / 8000`;
/// samples outside the input count as silence.
fn resample(input: &[f32], rate: u32) -> Vec<f32> {
    if rate == SAMPLE_RATE {
        return input.to_vec();
    }
    let kernel = &*KERNEL;
    let rate = f64::from(rate);
    let out_rate = f64::from(SAMPLE_RATE);
    // Input samples per output period, and the reverse.
    let step_in = rate / out_rate;
    let step_out = out_rate / rate;
    let reach = kernel_half_width() * step_in;
    let out_len = ((input.len() as f64) * step_out).round() as usize;
    let last = input.len() as f64 - 1.0;
    (0..out_len)
        .map(|n| {
            let centre = n as f64 * step_in;
            let first = (centre - reach).ceil().max(0.0) as usize;
            let end = (centre + reach).floor().min(last) as usize;
            let mut acc = 0.0f64;
            for (k, x) in input.iter().enumerate().take(end + 1).skip(first) {
                let pos = (centre - k as f64).abs() * step_out * OVERSAMPLE;
                let i = pos as usize;
                let frac = (pos - i as f64) as f32;
                let (a, b) = match (kernel.get(i), kernel.get(i + 1)) {
                    (Some(a), Some(b)) => (*a, *b),
                    _ => continue,
                };
                acc += f64::from(*x * (a + (b - a) * frac));
            }
            (acc * step_out) as f32
        })
        .collect()
}

/// Every word [`number_words`] can return; each is a prompt `numbers/<word>.wav`.
pub const NUMBER_WORDS: &[&str] = &[
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "sixty",
    "seventy",
    "eighty",
    "ninety",
    "hundred",
    "and",
    "more-than",
];

/// The files of the position prompt set, relative to `media.prompts_dir`.
pub fn position_files() -> Vec<String> {
    let mut files = vec![
        "position-intro.wav".to_string(),
        "position-outro.wav".into(),
    ];
    files.extend(NUMBER_WORDS.iter().map(|w| format!("numbers/{w}.wav")));
    files
}

/// The prompt names that say `n` in English, for "You are number … in the queue":
///
/// - 0..=19 and the tens 20, 30, …, 90: one word (`seven`, `forty`);
/// - 21..=99: tens then unit (`twenty`, `three`);
/// - 100..=999: unit, `hundred`, then `and` and the rest when it is not 0
///   (`three hundred`, `one hundred and five`, `two hundred and forty two`);
/// - 1000 and above: `more-than` followed by the words for 999 ("more than nine hundred and
///   ninety nine"), since an exact figure that high means nothing to a caller.
pub fn number_words(n: u32) -> Vec<&'static str> {
    const UNITS: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 10] = [
        "", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    let mut words = Vec::with_capacity(6);
    let n = if n >= 1000 {
        words.push("more-than");
        999
    } else {
        n as usize
    };
    let (hundreds, rest) = (n / 100, n % 100);
    if hundreds > 0 {
        words.extend([UNITS[hundreds], "hundred"]);
        if rest == 0 {
            return words;
        }
        words.push("and");
    }
    if rest < 20 {
        words.push(UNITS[rest]);
    } else {
        words.push(TENS[rest / 10]);
        if rest % 10 != 0 {
            words.push(UNITS[rest % 10]);
        }
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;
    use hound::{SampleFormat, WavSpec, WavWriter};
    use std::f64::consts::PI;

    fn spec(channels: u16, rate: u32, bits: u16, float: bool) -> WavSpec {
        WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                SampleFormat::Float
            } else {
                SampleFormat::Int
            },
        }
    }

    /// A sine of `freq` Hz at `amp` (full scale 1.0) lasting `secs`, at `rate`.
    fn sine(freq: f64, amp: f64, rate: u32, secs: f64) -> Vec<f64> {
        let n = (secs * f64::from(rate)).round() as usize;
        (0..n)
            .map(|i| amp * (2.0 * PI * freq * i as f64 / f64::from(rate)).sin())
            .collect()
    }

    /// Write `frames` (one value per channel, full scale 1.0) with `spec`.
    fn write_wav(path: &Path, spec: WavSpec, frames: &[f64]) {
        let mut w = WavWriter::create(path, spec).unwrap();
        for v in frames {
            for _ in 0..spec.channels {
                match spec.sample_format {
                    SampleFormat::Float => w.write_sample(*v as f32).unwrap(),
                    SampleFormat::Int => {
                        let full = f64::from(1u32 << (spec.bits_per_sample - 1));
                        let s = (v * full).round().clamp(-full, full - 1.0) as i32;
                        w.write_sample(s).unwrap();
                    }
                }
            }
        }
        w.finalize().unwrap();
    }

    /// RMS of the middle of `s` (edges, where the filter sees silence, left out).
    fn rms_middle(s: &[i16]) -> f64 {
        let mid = &s[s.len() / 5..s.len() * 4 / 5];
        (mid.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / mid.len() as f64).sqrt()
    }

    fn load_written(spec: WavSpec, frames: &[f64]) -> Prompt {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.wav");
        write_wav(&path, spec, frames);
        load(&path).unwrap()
    }

    fn assert_duration(p: &Prompt, secs: f64) {
        let got = p.len() as f64 / f64::from(SAMPLE_RATE);
        assert!((got - secs).abs() <= secs * 0.01, "{got} s, want {secs} s");
    }

    #[test]
    fn loads_8k_mono_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("greeting.wav");
        let mut w = WavWriter::create(&path, spec(1, 8000, 16, false)).unwrap();
        let samples: Vec<i16> = (0..8000).map(|i| (i * 7 % 2001 - 1000) as i16).collect();
        for s in &samples {
            w.write_sample(*s).unwrap();
        }
        w.finalize().unwrap();
        let p = load(&path).unwrap();
        assert_eq!(p.name(), "greeting");
        assert_eq!(p.path(), Some(path.as_path()));
        assert_eq!(p.samples(), &samples[..]);
        assert_eq!(p.duration(), Duration::from_secs(1));
    }

    #[test]
    fn loads_16k_stereo() {
        let p = load_written(spec(2, 16_000, 16, false), &sine(440.0, 0.5, 16_000, 1.5));
        assert_duration(&p, 1.5);
        let want = 0.5 * 32768.0 / 2f64.sqrt();
        let got = rms_middle(p.samples());
        assert!((got / want - 1.0).abs() < 0.01, "rms {got}, want {want}");
    }

    #[test]
    fn stereo_is_averaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("st.wav");
        let mut w = WavWriter::create(&path, spec(2, 8000, 16, false)).unwrap();
        for _ in 0..100 {
            w.write_sample(1000i16).unwrap();
            w.write_sample(-3000i16).unwrap();
        }
        w.finalize().unwrap();
        assert!(load(&path).unwrap().samples().iter().all(|s| *s == -1000));
    }

    #[test]
    fn loads_44k1_float_and_24_bit_and_other_depths() {
        for (spec, secs) in [
            (spec(1, 44_100, 32, true), 1.0),
            (spec(2, 48_000, 24, false), 0.7),
            (spec(1, 22_050, 24, false), 1.3),
            (spec(1, 11_025, 8, false), 0.9),
            (spec(2, 32_000, 32, false), 1.1),
            (spec(1, 12_345, 16, false), 0.5),
        ] {
            let p = load_written(spec, &sine(1000.0, 0.3, spec.sample_rate, secs));
            assert_duration(&p, secs);
            let want = 0.3 * 32768.0 / 2f64.sqrt();
            let got = rms_middle(p.samples());
            // 8-bit input carries its own quantisation noise; the rest must be within 1 %.
            assert!(
                (got / want - 1.0).abs() < 0.02,
                "{spec:?}: rms {got}, want {want}"
            );
        }
    }

    #[test]
    fn resampling_keeps_passband_and_removes_aliases() {
        let rate = 44_100;
        let kept = load_written(spec(1, rate, 32, true), &sine(1000.0, 0.5, rate, 1.0));
        let want = 0.5 * 32768.0 / 2f64.sqrt();
        let got = rms_middle(kept.samples());
        let gain_db = 20.0 * (got / want).log10();
        assert!(gain_db.abs() < 0.1, "1 kHz gain {gain_db} dB");

        // 6 kHz is above the 4 kHz Nyquist of 8 kHz; without filtering it would alias to 2 kHz.
        let gone = load_written(spec(1, rate, 32, true), &sine(6000.0, 0.5, rate, 1.0));
        let got = rms_middle(gone.samples()).max(1e-9);
        let gain_db = 20.0 * (got / want).log10();
        assert!(gain_db < -30.0, "6 kHz gain {gain_db} dB");

        // Near the band edge: 3.3 kHz passes, 4.5 kHz (aliasing to 3.5 kHz) is stopped.
        let edge = load_written(spec(1, 48_000, 16, false), &sine(3300.0, 0.5, 48_000, 1.0));
        let gain_db = 20.0 * (rms_middle(edge.samples()) / want).log10();
        assert!(gain_db.abs() < 0.5, "3.3 kHz gain {gain_db} dB");
        let over = load_written(spec(1, 48_000, 16, false), &sine(4500.0, 0.5, 48_000, 1.0));
        let gain_db = 20.0 * (rms_middle(over.samples()).max(1e-9) / want).log10();
        assert!(gain_db < -50.0, "4.5 kHz gain {gain_db} dB");
    }

    #[test]
    fn full_scale_input_does_not_wrap() {
        let p = load_written(spec(1, 48_000, 32, true), &sine(3000.0, 1.0, 48_000, 0.3));
        let max = p.samples().iter().map(|s| i32::from(*s).abs()).max();
        assert!(max > Some(30_000));
        let square: Vec<f64> = (0..4800)
            .map(|i| if i % 96 < 48 { 1.0 } else { -1.0 })
            .collect();
        let p = load_written(spec(1, 48_000, 16, false), &square);
        // Gibbs overshoot is clamped, never wrapped: a wrapped sample would flip sign mid-run.
        for w in p.samples().windows(2) {
            assert!((i32::from(w[0]) - i32::from(w[1])).abs() < 40_000);
        }
    }

    fn load_err(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.wav");
        std::fs::write(&path, bytes).unwrap();
        let e = load(&path).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("{}: ", path.display())), "{msg}");
        assert_eq!(e.path(), path);
        msg
    }

    fn wav_bytes(spec: WavSpec, frames: usize) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        let mut w = WavWriter::new(&mut buf, spec).unwrap();
        for i in 0..frames * usize::from(spec.channels) {
            w.write_sample((i % 200) as i16 * 50).unwrap();
        }
        w.finalize().unwrap();
        buf.into_inner()
    }

    #[test]
    fn missing_file_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prompts/greeting.wav");
        let e = load(&path).unwrap_err();
        assert!(matches!(e.reason(), PromptErrorReason::Open(_)));
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("{}: cannot open: ", path.display())),
            "{msg}"
        );
        assert!(msg.contains("No such file or directory"), "{msg}");
        let e = load(dir.path()).unwrap_err();
        assert!(
            e.to_string().contains("cannot open: not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors() {
        let msg = load_err(b"this is not a wav file at all, just some text\n");
        assert!(msg.contains("not a readable WAV file"), "{msg}");
        load_err(&[]);
        let good = wav_bytes(spec(1, 8000, 16, false), 400);
        let msg = load_err(&good[..20]);
        assert!(msg.ends_with("truncated file"), "{msg}");
        let msg = load_err(&good[..good.len() - 101]);
        assert!(msg.ends_with("truncated file"), "{msg}");
    }

    #[test]
    fn unsupported_layouts_are_named() {
        let msg = load_err(&wav_bytes(spec(3, 8000, 16, false), 100));
        assert!(
            msg.ends_with(": 3 channels (expected mono or stereo)"),
            "{msg}"
        );
        let msg = load_err(&wav_bytes(spec(1, 96_000, 16, false), 100));
        assert!(
            msg.ends_with(": sample rate 96000 Hz (expected 8000 to 48000 Hz)"),
            "{msg}"
        );
        let msg = load_err(&wav_bytes(spec(1, 6000, 16, false), 100));
        assert!(msg.contains("sample rate 6000 Hz"), "{msg}");
        let msg = load_err(&wav_bytes(spec(2, 16_000, 16, false), 0));
        assert!(msg.ends_with(": no audio samples"), "{msg}");
    }

    #[test]
    fn too_long_is_rejected_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("long.wav");
        // A real 8-bit file one second over the limit: header from hound, lengths patched.
        let data_len = (MAX_DURATION_SECS + 1) * 8000;
        let mut bytes = wav_bytes(spec(1, 8000, 8, false), 0);
        assert_eq!(bytes.len(), 44);
        bytes[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
        bytes[40..44].copy_from_slice(&data_len.to_le_bytes());
        bytes.resize(44 + data_len as usize, 0);
        std::fs::write(&path, bytes).unwrap();
        let e = load(&path).unwrap_err();
        assert!(matches!(e.reason(), PromptErrorReason::TooLong), "{e}");
    }

    #[test]
    fn corrupted_files_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let bases = [
            wav_bytes(spec(1, 8000, 16, false), 64),
            wav_bytes(spec(2, 44_100, 16, false), 64),
            {
                let mut buf = std::io::Cursor::new(Vec::new());
                let mut w = WavWriter::new(&mut buf, spec(1, 16_000, 32, true)).unwrap();
                for i in 0..64 {
                    w.write_sample(i as f32 / 64.0).unwrap();
                }
                w.finalize().unwrap();
                buf.into_inner()
            },
        ];
        for round in 0..6000 {
            let mut bytes = bases[round % bases.len()].clone();
            // Mostly hit the 44-byte header, sometimes the data.
            for _ in 0..1 + rnd() % 4 {
                let span = if rnd() % 4 == 0 { bytes.len() } else { 44 };
                let at = (rnd() % span as u64) as usize;
                bytes[at] = rnd() as u8;
            }
            if rnd() % 5 == 0 {
                bytes.truncate((rnd() % bytes.len() as u64) as usize);
            }
            let len = bytes.len() as u64;
            let _ = decode_wav(std::io::Cursor::new(bytes), len);
        }
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
            let _ = decode_wav(std::io::Cursor::new(bytes), len as u64);
        }
    }

    #[test]
    fn frames_pad_the_last_one() {
        let p = Prompt::from_samples("t", (1..=350).collect::<Vec<i16>>());
        let mut c = p.cursor(20);
        assert_eq!(c.frame_len(), 160);
        assert!(!c.is_looped());
        let f = c.next_frame().unwrap().to_vec();
        assert_eq!(f, (1..=160).collect::<Vec<i16>>());
        assert_eq!(c.next_frame().unwrap()[0], 161);
        let last = c.next_frame().unwrap();
        assert_eq!(last.len(), 160);
        assert_eq!(&last[..30], &(321..=350).collect::<Vec<i16>>()[..]);
        assert!(last[30..].iter().all(|s| *s == 0));
        assert!(c.is_finished());
        assert!(c.next_frame().is_none());
        assert!(c.next_frame().is_none());
        c.rewind();
        assert_eq!(c.next_frame().unwrap()[0], 1);

        // An exact multiple needs no padding frame.
        let p = Prompt::from_samples("t", vec![5i16; 320]);
        let mut c = p.cursor(20);
        assert_eq!(
            std::iter::from_fn(|| c.next_frame().map(<[i16]>::to_vec)).count(),
            2
        );
    }

    #[test]
    fn ptime_sets_frame_length() {
        assert_eq!(frame_len(20), 160);
        assert_eq!(frame_len(10), 80);
        assert_eq!(frame_len(30), 240);
        assert_eq!(frame_len(0), 160);
        assert_eq!(frame_len(u32::MAX), (MAX_PTIME_MS * 8) as usize);
    }

    #[test]
    fn looping_runs_on_without_gaps() {
        let p = Prompt::from_samples("hold", (0..250).collect::<Vec<i16>>());
        let mut c = p.looped(20);
        assert!(c.is_looped());
        let mut played = Vec::new();
        for _ in 0..10 {
            played.extend_from_slice(c.next_frame().unwrap());
        }
        assert!(!c.is_finished());
        assert_eq!(played.len(), 1600);
        for (i, s) in played.iter().enumerate() {
            assert_eq!(*s as usize, i % 250);
        }
        assert_eq!(c.position(), 1600 % 250);

        // A prompt shorter than one frame repeats inside the frame.
        let p = Prompt::from_samples("beep", vec![1i16, 2, 3]);
        let mut c = p.looped(10);
        let f = c.next_frame().unwrap();
        assert_eq!(f.len(), 80);
        assert_eq!(&f[..7], &[1, 2, 3, 1, 2, 3, 1]);
    }

    #[test]
    fn empty_prompt_yields_nothing() {
        let p = Prompt::from_samples("none", Vec::<i16>::new());
        assert!(p.is_empty());
        assert!(p.cursor(20).next_frame().is_none());
        assert!(p.looped(20).next_frame().is_none());
    }

    #[test]
    fn number_words_in_english() {
        assert_eq!(number_words(0), ["zero"]);
        assert_eq!(number_words(1), ["one"]);
        assert_eq!(number_words(13), ["thirteen"]);
        assert_eq!(number_words(19), ["nineteen"]);
        assert_eq!(number_words(20), ["twenty"]);
        assert_eq!(number_words(21), ["twenty", "one"]);
        assert_eq!(number_words(90), ["ninety"]);
        assert_eq!(number_words(99), ["ninety", "nine"]);
        assert_eq!(number_words(100), ["one", "hundred"]);
        assert_eq!(number_words(105), ["one", "hundred", "and", "five"]);
        assert_eq!(number_words(110), ["one", "hundred", "and", "ten"]);
        assert_eq!(
            number_words(342),
            ["three", "hundred", "and", "forty", "two"]
        );
        assert_eq!(number_words(700), ["seven", "hundred"]);
        let most = ["more-than", "nine", "hundred", "and", "ninety", "nine"];
        assert_eq!(number_words(1000), most);
        assert_eq!(number_words(u32::MAX), most);
        let mut used = std::collections::BTreeSet::new();
        for n in (0..=2000).chain([u32::MAX]) {
            for w in number_words(n) {
                assert!(NUMBER_WORDS.contains(&w), "{n}: {w}");
                used.insert(w);
            }
        }
        // …and NUMBER_WORDS lists nothing that is never said.
        assert_eq!(used.len(), NUMBER_WORDS.len());
    }

    /// The shipped English set made by `scripts/make-prompts`.
    const SHIPPED: &[&str] = &[
        "greeting",
        "hold",
        "announcement",
        "position-intro",
        "position-outro",
        "callback-offer",
        "callback-confirm",
        "survey",
        "survey-thanks",
    ];

    #[test]
    fn shipped_prompts_load() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/en");
        let mut found = 0;
        for dir in [root.clone(), root.join("numbers")] {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.extension().is_some_and(|e| e == "wav") {
                    let spec = hound::WavReader::open(&path).unwrap().spec();
                    assert_eq!(spec, self::spec(1, 8000, 16, false), "{}", path.display());
                    let p = load(&path).unwrap();
                    assert!(p.duration() > Duration::from_millis(150), "{p:?}");
                    let peak = p.samples().iter().map(|s| i32::from(*s).abs()).max();
                    assert!(
                        peak > Some(3000) && peak < Some(32767),
                        "{p:?}: peak {peak:?}"
                    );
                    found += 1;
                }
            }
        }
        for name in SHIPPED {
            assert!(root.join(format!("{name}.wav")).is_file(), "{name}");
        }
        for word in NUMBER_WORDS {
            assert!(root.join(format!("numbers/{word}.wav")).is_file(), "{word}");
        }
        assert_eq!(found, SHIPPED.len() + NUMBER_WORDS.len());
        let hold = load(&root.join("hold.wav")).unwrap();
        assert!(hold.duration() >= Duration::from_secs(15), "{hold:?}");
    }
}
