//! Call recording to stereo WAV (caller left, agent right; 8 kHz, 16-bit PCM), written on a
//! dedicated thread so no file I/O ever runs on the async executor.
//!
//! Owns: the recorder thread of one call ([`Recorder::start`] → [`RecorderHandle`]), the alignment
//! of the two sides by sample position, and the start-up repair of recordings cut short by a
//! crash ([`repair_partial_recordings`], in `recorder/repair.rs`). Must not know: SIP, calls,
//! agents or the store — the call layer decides the path and files the [`RecordingResult`].
//!
//! * [`RecorderHandle::push`] never blocks: frames go through a bounded channel with `try_send`;
//!   when it is full the frame is dropped and counted ([`RecordingResult::overflow_frames`]).
//! * Each frame says where it belongs (`at_sample`, 8 kHz samples since the recording started).
//!   The writer keeps the last [`RecorderConfig::reorder_window`] of audio in memory, so frames
//!   arriving out of order or overlapping (the later one wins) within that window land in the right
//!   place; gaps become silence; what falls behind the window is written and final (a frame arriving
//!   later than that is dropped and counted in [`RecordingResult::discarded_samples`]).
//! * The WAV header is brought up to date at least every [`RecorderConfig::flush_interval`]
//!   (1 s), so a crash leaves a valid file missing at most the last couple of seconds; dropping the
//!   handle without [`RecorderHandle::finish`] still finishes the file.
//! * An I/O error (unwritable directory, disk full) stops the recording: it is logged, later
//!   pushes are dropped at the cost of an atomic load, and the error is in the result.

use std::collections::VecDeque;
use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

mod repair;
#[cfg(test)]
use repair::write_u32_at;
pub use repair::{repair_partial_recordings, RepairOutcome, RepairReport};

/// Sample rate of recordings (and of `at_sample` positions).
pub const SAMPLE_RATE: u32 = 8000;
/// Bytes per stereo frame (two 16-bit samples).
const FRAME_BYTES: u64 = 4;
/// Size of hound's canonical PCM header (RIFF, fmt, data chunk header).
const HEADER_BYTES: u64 = 44;
/// Frames a WAV file can hold: its sizes are 32-bit.
const WAV_MAX_FRAMES: u64 = (u32::MAX as u64 - HEADER_BYTES) / FRAME_BYTES;
/// Silence is written in chunks of this many frames.
const SILENCE_CHUNK: usize = 4096;

/// Which side of the call a frame is from; the caller is recorded left, the agent right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Caller,
    Agent,
}

impl Channel {
    fn index(self) -> usize {
        match self {
            Channel::Caller => 0,
            Channel::Agent => 1,
        }
    }
}

/// Tunables of a recording.
#[derive(Debug, Clone)]
pub struct RecorderConfig {
    /// Frames the channel to the writer holds before pushes overflow.
    pub queue_frames: usize,
    /// How much audio is kept in memory for reordering before it is written.
    pub reorder_window: Duration,
    /// How often the WAV header is brought up to date and the file flushed (when audio was
    /// written since the last time).
    pub flush_interval: Duration,
    /// Audio beyond this length is dropped (capped at the ~37 h a WAV file can hold).
    pub max_duration: Duration,
}

impl Default for RecorderConfig {
    fn default() -> Self {
        RecorderConfig {
            queue_frames: 500, // 5 s of 20 ms frames from both sides
            reorder_window: Duration::from_secs(1),
            flush_interval: Duration::from_secs(1),
            max_duration: Duration::from_secs(12 * 3600),
        }
    }
}

/// Why a recording could not be started at all. Problems with the file itself (unwritable
/// directory, disk full) are reported in the [`RecordingResult`] instead, so that starting never
/// touches the disk on the caller's thread.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("recording path {0:?} has no file name")]
    InvalidPath(PathBuf),
    #[error("cannot start the recorder thread: {0}")]
    Spawn(#[source] io::Error),
}

/// What [`RecorderHandle::push`] did with a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// The writer is behind and its queue full: the frame was dropped and counted.
    Overflow,
    /// The recording has stopped (failed or finished): the frame was dropped.
    Stopped,
}

/// The outcome of a recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordingResult {
    pub path: PathBuf,
    /// Length of the audio in the file (after a failure: what had been handed to the file when it
    /// failed).
    pub duration_ms: u64,
    /// Why the recording stopped early, if it did.
    pub error: Option<String>,
    /// Frames dropped because the writer's queue was full.
    pub overflow_frames: u64,
    /// Samples dropped because they arrived after their place was written, or lay beyond
    /// [`RecorderConfig::max_duration`].
    pub discarded_samples: u64,
}

/// Counters shared by the handle and the writer thread.
#[derive(Debug, Default)]
struct Shared {
    failed: AtomicBool,
    overflow: AtomicU64,
}

#[derive(Debug)]
struct Frame {
    channel: Channel,
    at: u64,
    samples: Vec<i16>,
}

/// Starts recordings.
#[derive(Debug)]
pub struct Recorder;

impl Recorder {
    /// Start recording to a new WAV file at `path` with the default [`RecorderConfig`]. Missing
    /// parent directories are created; an existing file is not overwritten (an error in the result).
    pub fn start(path: PathBuf) -> Result<RecorderHandle, RecordError> {
        Recorder::start_with(RecorderConfig::default(), path)
    }

    /// [`Recorder::start`] with explicit tunables.
    pub fn start_with(
        config: RecorderConfig,
        path: PathBuf,
    ) -> Result<RecorderHandle, RecordError> {
        if path.file_name().is_none() {
            return Err(RecordError::InvalidPath(path));
        }
        let target = path.clone();
        spawn(config, path, move || {
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                fs::create_dir_all(dir)?;
            }
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
        })
    }

    /// Record into `sink` instead of a file of our own (`path` is only reported back): for tests,
    /// or a file opened elsewhere.
    pub fn start_with_sink<W>(
        config: RecorderConfig,
        path: PathBuf,
        sink: W,
    ) -> Result<RecorderHandle, RecordError>
    where
        W: Write + Seek + Send + 'static,
    {
        spawn(config, path, move || Ok(sink))
    }
}

fn spawn<W, F>(
    config: RecorderConfig,
    path: PathBuf,
    open: F,
) -> Result<RecorderHandle, RecordError>
where
    W: Write + Seek + Send + 'static,
    F: FnOnce() -> io::Result<W> + Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(config.queue_frames.max(1));
    let (result_tx, result_rx) = oneshot::channel();
    let shared = Arc::new(Shared::default());
    let writer = Writer {
        config,
        path: path.clone(),
        shared: Arc::clone(&shared),
    };
    let span = tracing::Span::current();
    let thread = std::thread::Builder::new()
        .name("ctid-recorder".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _enter = span.enter();
            let result = writer.run(open, rx);
            let _ = result_tx.send(result.clone());
            result
        })
        .map_err(RecordError::Spawn)?;
    Ok(RecorderHandle {
        tx: Some(tx),
        shared,
        thread: Some(thread),
        result: Some(result_rx),
        path,
    })
}

/// A running recording. Dropping it ends the recording like [`finish`](Self::finish), without
/// waiting: the writer thread writes what it has and completes the file on its own.
#[derive(Debug)]
pub struct RecorderHandle {
    tx: Option<SyncSender<Frame>>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<RecordingResult>>,
    result: Option<oneshot::Receiver<RecordingResult>>,
    path: PathBuf,
}

impl RecorderHandle {
    /// Queue `samples` of `channel` starting `at_sample` samples (8 kHz) after the start of the
    /// recording. Never blocks; cheap once the recording has stopped.
    pub fn push(&self, channel: Channel, at_sample: u64, samples: &[i16]) -> PushOutcome {
        if self.shared.failed.load(Ordering::Relaxed) {
            return PushOutcome::Stopped;
        }
        let Some(tx) = &self.tx else {
            return PushOutcome::Stopped;
        };
        if samples.is_empty() {
            return PushOutcome::Queued;
        }
        let frame = Frame {
            channel,
            at: at_sample,
            samples: samples.to_vec(),
        };
        match tx.try_send(frame) {
            Ok(()) => PushOutcome::Queued,
            Err(TrySendError::Full(_)) => {
                let n = self.shared.overflow.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(path = %self.path.display(), dropped = n,
                        "recorder queue full, frames dropped");
                }
                PushOutcome::Overflow
            }
            Err(TrySendError::Disconnected(_)) => PushOutcome::Stopped,
        }
    }

    /// The file being recorded.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the recording has failed (pushes are being dropped).
    pub fn is_failed(&self) -> bool {
        self.shared.failed.load(Ordering::Relaxed)
    }

    /// Frames dropped so far because the writer's queue was full.
    pub fn overflow_frames(&self) -> u64 {
        self.shared.overflow.load(Ordering::Relaxed)
    }

    /// End the recording and wait for the file to be complete. Blocks the thread (up to the time
    /// needed to write the last second of audio): from async code use
    /// `tokio::task::spawn_blocking`, or [`finish_async`](Self::finish_async).
    pub fn finish(mut self) -> RecordingResult {
        self.tx = None;
        let fallback = self.lost_result("recorder thread panicked");
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            _ => fallback,
        }
    }

    /// End the recording; the result arrives when the file is complete, without blocking.
    pub async fn finish_async(mut self) -> RecordingResult {
        self.tx = None;
        let fallback = self.lost_result("recorder thread ended without a result");
        match self.result.take() {
            Some(rx) => rx.await.unwrap_or(fallback),
            None => fallback,
        }
    }

    fn lost_result(&self, why: &str) -> RecordingResult {
        RecordingResult {
            path: self.path.clone(),
            duration_ms: 0,
            error: Some(why.to_owned()),
            overflow_frames: self.overflow_frames(),
            discarded_samples: 0,
        }
    }
}

/// The sans-IO core of the writer: places frames by position in a window of stereo frames and
/// hands out, in order, the interleaved samples that can no longer change.
#[derive(Debug)]
struct Aligner {
    /// Frames handed out so far; `window[0]` is frame `committed`.
    committed: u64,
    window: VecDeque<[i16; 2]>,
    /// Frames kept before committing.
    keep: u64,
    /// No frame at or beyond this position is accepted.
    max_frames: u64,
    discarded: u64,
}

impl Aligner {
    fn new(keep: u64, max_frames: u64) -> Aligner {
        Aligner {
            committed: 0,
            window: VecDeque::new(),
            keep,
            max_frames,
            discarded: 0,
        }
    }

    /// End of the audio received so far.
    fn high(&self) -> u64 {
        self.committed + self.window.len() as u64
    }

    /// Place `samples` of `channel` at frame `at`; first commits (through `emit`) what falls more
    /// than the window behind the frame's end.
    fn insert<E>(
        &mut self,
        channel: Channel,
        at: u64,
        samples: &[i16],
        emit: &mut E,
    ) -> io::Result<()>
    where
        E: FnMut(&[i16]) -> io::Result<()>,
    {
        let len = samples.len() as u64;
        let end = at.saturating_add(len).min(self.max_frames);
        if at >= end {
            self.discarded += len; // beyond the maximum length
            return Ok(());
        }
        self.discarded += len - (end - at); // the part beyond the maximum length
                                            // Frames more than the window behind this frame's end are final. Those before the frame
                                            // go first, so the window never holds more than the window plus one frame.
        let limit = end.saturating_sub(self.keep);
        self.commit_until(limit.min(at), emit)?;
        self.place(channel, at, end, samples);
        self.commit_until(limit, emit)
    }

    /// Put the samples for frames `at..end` into the window (what is already committed is dropped).
    fn place(&mut self, channel: Channel, at: u64, end: u64, samples: &[i16]) {
        if end <= self.committed {
            self.discarded += end - at;
            return;
        }
        let skip = self.committed.saturating_sub(at);
        self.discarded += skip;
        let needed = (end - self.committed) as usize;
        if self.window.len() < needed {
            self.window.resize(needed, [0, 0]);
        }
        let first = (at + skip - self.committed) as usize;
        let usable = &samples[skip as usize..(end - at) as usize];
        for (slot, &s) in self.window.range_mut(first..).zip(usable) {
            slot[channel.index()] = s;
        }
    }

    /// Commit every frame before `limit` (silence where nothing was received).
    fn commit_until<E>(&mut self, limit: u64, emit: &mut E) -> io::Result<()>
    where
        E: FnMut(&[i16]) -> io::Result<()>,
    {
        let mut buf: Vec<i16> = Vec::new();
        while self.committed < limit {
            let n = (limit - self.committed).min(SILENCE_CHUNK as u64) as usize;
            buf.clear();
            for _ in 0..n {
                let [l, r] = self.window.pop_front().unwrap_or([0, 0]);
                buf.extend_from_slice(&[l, r]);
            }
            emit(&buf)?;
            self.committed += n as u64;
        }
        Ok(())
    }

    /// Commit everything received.
    fn commit_all<E>(&mut self, emit: &mut E) -> io::Result<()>
    where
        E: FnMut(&[i16]) -> io::Result<()>,
    {
        self.commit_until(self.high(), emit)
    }
}

/// The writer thread's state.
struct Writer {
    config: RecorderConfig,
    path: PathBuf,
    shared: Arc<Shared>,
}

type Wav<W> = hound::WavWriter<BufWriter<W>>;

impl Writer {
    fn run<W, F>(self, open: F, rx: Receiver<Frame>) -> RecordingResult
    where
        W: Write + Seek,
        F: FnOnce() -> io::Result<W>,
    {
        let rate = u64::from(SAMPLE_RATE);
        let keep = duration_to_frames(self.config.reorder_window);
        let max_frames = duration_to_frames(self.config.max_duration).min(WAV_MAX_FRAMES);
        let mut aligner = Aligner::new(keep, max_frames);
        let mut written: u64 = 0;
        let outcome = self.record(open, &rx, &mut aligner, &mut written);
        drop(rx); // pushes fail fast from now on
        let error = outcome.err().map(|e| {
            self.shared.failed.store(true, Ordering::Relaxed);
            tracing::error!(path = %self.path.display(), error = %e, "recording failed");
            e.to_string()
        });
        let result = RecordingResult {
            path: self.path,
            duration_ms: written * 1000 / rate,
            error,
            overflow_frames: self.shared.overflow.load(Ordering::Relaxed),
            discarded_samples: aligner.discarded,
        };
        if result.overflow_frames > 0 || result.discarded_samples > 0 {
            tracing::warn!(path = %result.path.display(), overflow_frames = result.overflow_frames,
                discarded_samples = result.discarded_samples, "recording has gaps");
        }
        result
    }

    fn record<W, F>(
        &self,
        open: F,
        rx: &Receiver<Frame>,
        aligner: &mut Aligner,
        written: &mut u64,
    ) -> Result<(), hound::Error>
    where
        W: Write + Seek,
        F: FnOnce() -> io::Result<W>,
    {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let file = open().map_err(|e| io::Error::new(e.kind(), format!("cannot create: {e}")))?;
        let file = BufWriter::with_capacity(64 * 1024, file);
        let mut wav = hound::WavWriter::new(file, spec)?;
        wav.flush()?; // the header is on disk from the start
        let mut emit = |wav: &mut Wav<W>, interleaved: &[i16]| -> io::Result<()> {
            for &s in interleaved {
                wav.write_sample(s).map_err(into_io)?;
            }
            *written += interleaved.len() as u64 / 2;
            Ok(())
        };
        let interval = self.config.flush_interval.max(Duration::from_millis(10));
        let idle_after = self.config.reorder_window;
        let mut next_flush = Instant::now() + interval;
        let mut last_input = Instant::now();
        let mut idle_committed = true;
        let mut flushed_at = 0;
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(frame) => {
                    aligner.insert(frame.channel, frame.at, &frame.samples, &mut |s| {
                        emit(&mut wav, s)
                    })?;
                    last_input = Instant::now();
                    idle_committed = false;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            let now = Instant::now();
            if now >= next_flush {
                if !idle_committed && now.duration_since(last_input) >= idle_after {
                    // Nothing new for a whole window: nothing will reorder, write it all.
                    aligner.commit_all(&mut |s| emit(&mut wav, s))?;
                    idle_committed = true;
                }
                if wav.len() != flushed_at {
                    wav.flush()?; // updates the header: a valid file up to here
                    flushed_at = wav.len();
                }
                next_flush = now + interval;
            }
        }
        aligner.commit_all(&mut |s| emit(&mut wav, s))?;
        wav.finalize()
    }
}

fn into_io(e: hound::Error) -> io::Error {
    match e {
        hound::Error::IoError(e) => e,
        other => io::Error::other(other.to_string()),
    }
}

fn duration_to_frames(d: Duration) -> u64 {
    let frames = d.as_nanos().saturating_mul(u128::from(SAMPLE_RATE)) / 1_000_000_000;
    u64::try_from(frames).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Cursor, SeekFrom};
    use std::sync::Mutex;

    fn collect(out: &mut Vec<i16>) -> impl FnMut(&[i16]) -> io::Result<()> + '_ {
        |s| {
            out.extend_from_slice(s);
            Ok(())
        }
    }

    fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).unwrap();
        let spec = r.spec();
        let samples = r.samples::<i16>().collect::<Result<Vec<_>, _>>().unwrap();
        (spec, samples)
    }

    fn split(interleaved: &[i16]) -> (Vec<i16>, Vec<i16>) {
        let left = interleaved.iter().step_by(2).copied().collect();
        let right = interleaved.iter().skip(1).step_by(2).copied().collect();
        (left, right)
    }

    fn caller_sample(n: u64) -> i16 {
        ((n * 7) % 20_000) as i16 + 1
    }

    fn agent_sample(n: u64) -> i16 {
        -(((n * 13) % 20_000) as i16) - 1
    }

    fn test_config() -> RecorderConfig {
        RecorderConfig {
            queue_frames: 4096,
            flush_interval: Duration::from_millis(50),
            ..RecorderConfig::default()
        }
    }

    #[test]
    fn aligner_orders_overlaps_and_fills_gaps() {
        let mut out = Vec::new();
        let mut a = Aligner::new(100, 1_000);
        let mut emit = collect(&mut out);
        a.insert(Channel::Agent, 10, &[5, 6], &mut emit).unwrap();
        a.insert(Channel::Caller, 0, &[1, 2, 3], &mut emit).unwrap();
        a.insert(Channel::Caller, 2, &[9, 4], &mut emit).unwrap(); // overlap: later wins
        a.insert(Channel::Caller, 11, &[7], &mut emit).unwrap();
        a.commit_all(&mut emit).unwrap();
        drop(emit);
        let (l, r) = split(&out);
        assert_eq!(l, vec![1, 2, 9, 4, 0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(r, vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 6]);
        assert_eq!(a.discarded, 0);
    }

    #[test]
    fn aligner_commits_behind_the_window_and_drops_late_frames() {
        let mut out = Vec::new();
        let mut a = Aligner::new(4, 100_000);
        let mut emit = collect(&mut out);
        a.insert(Channel::Caller, 0, &[1, 1, 1, 1], &mut emit)
            .unwrap();
        a.insert(Channel::Caller, 6, &[2, 2], &mut emit).unwrap(); // end 8: commits up to 4
        assert_eq!(a.committed, 4);
        a.insert(Channel::Agent, 2, &[3, 3, 3, 3], &mut emit)
            .unwrap(); // 2 late, 2 placed
        assert_eq!(a.discarded, 2);
        // A frame far ahead commits the gap as silence in chunks, without holding it in memory.
        a.insert(Channel::Agent, 9_996, &[4; 8], &mut emit).unwrap();
        assert_eq!(a.committed, 10_000);
        assert!(a.window.len() <= 8);
        a.commit_all(&mut emit).unwrap();
        drop(emit);
        let (l, r) = split(&out);
        assert_eq!(l.len(), 10_004);
        assert_eq!(&l[..8], &[1, 1, 1, 1, 0, 0, 2, 2]);
        assert_eq!(&r[..8], &[0, 0, 0, 0, 3, 3, 0, 0]);
        assert!(l[8..].iter().all(|&s| s == 0));
        assert!(r[8..9_996].iter().all(|&s| s == 0));
        assert!(r[9_996..].iter().all(|&s| s == 4));
        // Nothing at or beyond the maximum length is kept.
        let mut sink = Vec::new();
        let mut b = Aligner::new(4, 10);
        b.insert(Channel::Caller, 8, &[1, 1, 1, 1], &mut collect(&mut sink))
            .unwrap();
        b.insert(Channel::Caller, 50, &[1], &mut collect(&mut sink))
            .unwrap();
        b.insert(Channel::Caller, u64::MAX, &[1, 2], &mut collect(&mut sink))
            .unwrap();
        assert_eq!(b.high(), 10);
        assert_eq!(b.discarded, 2 + 1 + 2);
    }

    #[test]
    fn ten_second_two_sided_recording() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("2026/11/22/call-1.wav"); // parents are created
        let h = Recorder::start_with(test_config(), path.clone()).unwrap();
        assert_eq!(h.path(), path);
        let frame = 160u64;
        for i in 0..500u64 {
            // The agent side runs a few frames behind and swaps neighbours (reordering).
            let c: Vec<i16> = (i * frame..(i + 1) * frame).map(caller_sample).collect();
            assert_eq!(h.push(Channel::Caller, i * frame, &c), PushOutcome::Queued);
            let j = if i % 2 == 0 { i + 1 } else { i - 1 };
            let a: Vec<i16> = (j * frame..(j + 1) * frame).map(agent_sample).collect();
            assert_eq!(h.push(Channel::Agent, j * frame, &a), PushOutcome::Queued);
        }
        let result = h.finish();
        assert_eq!(result.error, None);
        assert_eq!(result.path, path);
        assert_eq!((result.overflow_frames, result.discarded_samples), (0, 0));
        assert!(result.duration_ms.abs_diff(10_000) <= 100, "{result:?}");
        let (spec, samples) = read_wav(&path);
        assert_eq!(spec.channels, 2);
        assert_eq!(spec.sample_rate, 8000);
        assert_eq!(spec.bits_per_sample, 16);
        let (left, right) = split(&samples);
        assert_eq!(left.len(), 80_000);
        assert!(left
            .iter()
            .enumerate()
            .all(|(n, &s)| s == caller_sample(n as u64)));
        assert!(right
            .iter()
            .enumerate()
            .all(|(n, &s)| s == agent_sample(n as u64)));
    }

    #[test]
    fn gaps_become_silence() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gaps.wav");
        let h = Recorder::start_with(test_config(), path.clone()).unwrap();
        // Caller speaks 0–0.5 s and 1.5–2 s; the agent only 1–2 s (nothing before: hold music
        // not recorded, say).
        h.push(Channel::Caller, 0, &[100; 4000]);
        h.push(Channel::Caller, 12_000, &[200; 4000]);
        h.push(Channel::Agent, 8000, &[-300; 8000]);
        let result = h.finish();
        assert_eq!(result.error, None);
        assert_eq!(result.duration_ms, 2000);
        let (left, right) = split(&read_wav(&path).1);
        assert_eq!(left.len(), 16_000);
        assert!(left[..4000].iter().all(|&s| s == 100));
        assert!(left[4000..12_000].iter().all(|&s| s == 0));
        assert!(left[12_000..].iter().all(|&s| s == 200));
        assert!(right[..8000].iter().all(|&s| s == 0));
        assert!(right[8000..].iter().all(|&s| s == -300));
    }

    #[test]
    fn dropped_handle_still_leaves_a_complete_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dropped.wav");
        let h = Recorder::start_with(test_config(), path.clone()).unwrap();
        for i in 0..100u64 {
            h.push(Channel::Caller, i * 160, &[7; 160]);
        }
        drop(h);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let frames = hound::WavReader::open(&path)
                .map(|r| r.duration())
                .unwrap_or(0);
            if frames == 16_000 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "file not completed: {frames} frames"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let (left, _) = split(&read_wav(&path).1);
        assert!(left.iter().all(|&s| s == 7));
    }

    /// An in-memory file whose bytes can be looked at while the recorder writes it.
    #[derive(Clone, Default)]
    struct SharedFile(Arc<Mutex<Cursor<Vec<u8>>>>);

    impl Write for SharedFile {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for SharedFile {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.0.lock().unwrap().seek(pos)
        }
    }

    #[test]
    fn file_is_valid_while_recording() {
        let file = SharedFile::default();
        let h = Recorder::start_with_sink(test_config(), "mem.wav".into(), file.clone()).unwrap();
        // 3 s of audio; with a 1 s reorder window at least 2 s are committed at once.
        for i in 0..150u64 {
            h.push(Channel::Caller, i * 160, &[1; 160]);
            h.push(Channel::Agent, i * 160, &[2; 160]);
        }
        // What a crash would leave behind, taken at some moment after a header update.
        let deadline = Instant::now() + Duration::from_secs(10);
        let frames = loop {
            let snapshot = file.0.lock().unwrap().get_ref().clone();
            let frames = hound::WavReader::new(Cursor::new(snapshot))
                .map(|r| r.duration())
                .unwrap_or(0);
            if frames >= 16_000 {
                break frames;
            }
            assert!(Instant::now() < deadline, "header never updated");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(frames <= 24_000);
        let result = h.finish();
        assert_eq!(result.duration_ms, 3000);
        let bytes = file.0.lock().unwrap().get_ref().clone();
        let r = hound::WavReader::new(Cursor::new(bytes)).unwrap();
        assert_eq!(r.duration(), 24_000);
    }

    #[test]
    fn disk_full_stops_the_recording() {
        let Ok(full) = OpenOptions::new().write(true).open("/dev/full") else {
            return; // no /dev/full here
        };
        let h = Recorder::start_with_sink(test_config(), "full.wav".into(), full).unwrap();
        h.push(Channel::Caller, 0, &[1; 160]);
        let result = h.finish();
        let error = result.error.unwrap();
        assert!(error.contains("space") || error.contains("28"), "{error}");
        assert_eq!(result.duration_ms, 0);
    }

    /// A writer that fails with ENOSPC once `budget` bytes are written.
    struct FillsUp {
        inner: Cursor<Vec<u8>>,
        budget: usize,
    }

    impl Write for FillsUp {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.inner.get_ref().len() + buf.len() > self.budget {
                return Err(io::Error::from_raw_os_error(28));
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for FillsUp {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn disk_full_mid_call_drops_later_pushes() {
        let sink = FillsUp {
            inner: Cursor::new(Vec::new()),
            budget: 200_000, // ~6 s of audio
        };
        let h = Recorder::start_with_sink(test_config(), "x.wav".into(), sink).unwrap();
        let started = Instant::now();
        let mut outcomes = Vec::new();
        for i in 0..1000u64 {
            outcomes.push(h.push(Channel::Caller, i * 160, &[3; 160]));
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(30));
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !h.is_failed() {
            assert!(Instant::now() < deadline, "failure never noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(h.push(Channel::Agent, 0, &[1; 160]), PushOutcome::Stopped);
        let result = h.finish();
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(result.error.is_some());
        assert!(
            result.duration_ms > 0 && result.duration_ms < 20_000,
            "{result:?}"
        );
        assert!(!outcomes.contains(&PushOutcome::Overflow));
    }

    #[test]
    fn unwritable_directory_is_an_error_in_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let not_a_dir = dir.path().join("file");
        fs::write(&not_a_dir, b"x").unwrap();
        let h = Recorder::start(not_a_dir.join("rec.wav")).unwrap();
        let result = h.finish();
        assert!(result.error.is_some());
        assert_eq!(result.duration_ms, 0);
        // An existing recording is never overwritten.
        let existing = dir.path().join("existing.wav");
        fs::write(&existing, b"precious").unwrap();
        let result = Recorder::start(existing.clone()).unwrap().finish();
        assert!(result.error.is_some());
        assert_eq!(fs::read(&existing).unwrap(), b"precious");
        // A read-only directory (permissions do not apply to root).
        if unsafe { libc::geteuid() } != 0 {
            use std::os::unix::fs::PermissionsExt;
            let ro = dir.path().join("ro");
            fs::create_dir(&ro).unwrap();
            fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
            let result = Recorder::start(ro.join("rec.wav")).unwrap().finish();
            assert!(result.error.is_some());
        }
        assert!(matches!(
            Recorder::start(PathBuf::from("/")),
            Err(RecordError::InvalidPath(_))
        ));
    }

    /// Blocks every write until the gate opens.
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        inner: Cursor<Vec<u8>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cv) = &*self.open;
            let mut open = lock.lock().unwrap();
            while !*open {
                open = cv.wait(open).unwrap();
            }
            self.inner.write(buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Seek for Gate {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.inner.seek(pos)
        }
    }

    #[test]
    fn a_stuck_writer_never_blocks_push() {
        let gate = Arc::new((Mutex::new(false), std::sync::Condvar::new()));
        let sink = Gate {
            open: Arc::clone(&gate),
            inner: Cursor::new(Vec::new()),
        };
        let config = RecorderConfig {
            queue_frames: 4,
            ..test_config()
        };
        let h = Recorder::start_with_sink(config, "stuck.wav".into(), sink).unwrap();
        let started = Instant::now();
        let outcomes: Vec<PushOutcome> = (0..50u64)
            .map(|i| h.push(Channel::Caller, i * 160, &[1; 160]))
            .collect();
        assert!(started.elapsed() < Duration::from_secs(1));
        let overflows = outcomes
            .iter()
            .filter(|o| **o == PushOutcome::Overflow)
            .count() as u64;
        assert!(overflows >= 45, "{outcomes:?}");
        assert_eq!(h.overflow_frames(), overflows);
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
        let result = h.finish();
        assert_eq!(result.error, None);
        assert_eq!(result.overflow_frames, overflows);
    }

    #[tokio::test]
    async fn finish_async_delivers_the_result() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("async.wav");
        let h = Recorder::start_with(test_config(), path.clone()).unwrap();
        h.push(Channel::Agent, 0, &[5; 8000]);
        let result = h.finish_async().await;
        assert_eq!(result.error, None);
        assert_eq!(result.duration_ms, 1000);
        assert_eq!(read_wav(&path).1.len(), 16_000);
    }

    /// Write a stereo WAV of `frames` frames with hound, as a finished recording.
    fn write_wav(path: &Path, frames: u32) -> Vec<i16> {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(path, spec).unwrap();
        let samples: Vec<i16> = (0..frames * 2).map(|n| (n % 1000) as i16).collect();
        for &s in &samples {
            w.write_sample(s).unwrap();
        }
        w.finalize().unwrap();
        samples
    }

    fn set_sizes(path: &Path, riff: u32, data: u32) {
        let mut f = OpenOptions::new().write(true).open(path).unwrap();
        write_u32_at(&mut f, 4, riff).unwrap();
        write_u32_at(&mut f, 40, data).unwrap();
    }

    #[test]
    fn repair_after_a_crash_between_header_updates() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("2026/11");
        fs::create_dir_all(&nested).unwrap();
        let path = nested.join("crashed.WAV");
        let samples = write_wav(&path, 8000);
        // The last header update saw 1600 frames; then 6400 more were written, and half a frame.
        set_sizes(&path, 36 + 6400, 6400);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[1, 2, 3]).unwrap();
        drop(f);
        // A crash before the first header update: sizes still 0.
        let early = dir.path().join("early.wav");
        write_wav(&early, 100);
        set_sizes(&early, 36, 0);
        // Untouched: a good file, a good file with a chunk after the data, a non-WAV file.
        let good = dir.path().join("good.wav");
        write_wav(&good, 50);
        let listed = dir.path().join("listed.wav");
        write_wav(&listed, 50);
        let mut f = OpenOptions::new().append(true).open(&listed).unwrap();
        f.write_all(b"LIST\x04\x00\x00\x00abcd").unwrap();
        drop(f);
        set_sizes(&listed, 36 + 200 + 12, 200);
        fs::write(dir.path().join("notes.txt"), b"RIFF").unwrap();
        let good_before = fs::read(&good).unwrap();
        let listed_before = fs::read(&listed).unwrap();

        let mut reports = repair_partial_recordings(dir.path());
        reports.sort_by(|a, b| a.path.cmp(&b.path));
        let want = vec![
            RepairReport {
                path: path.clone(),
                outcome: RepairOutcome::Repaired {
                    data_bytes: 32_000,
                    truncated_bytes: 3,
                },
            },
            RepairReport {
                path: early.clone(),
                outcome: RepairOutcome::Repaired {
                    data_bytes: 400,
                    truncated_bytes: 0,
                },
            },
        ];
        assert_eq!(reports, want);
        let r = hound::WavReader::open(&path).unwrap();
        assert_eq!(r.duration(), 8000);
        assert_eq!(read_wav(&path).1, samples);
        assert_eq!(hound::WavReader::open(&early).unwrap().duration(), 100);
        assert_eq!(fs::read(&good).unwrap(), good_before);
        assert_eq!(fs::read(&listed).unwrap(), listed_before);
        // Running it again finds nothing to do.
        assert_eq!(repair_partial_recordings(dir.path()), vec![]);
    }

    #[test]
    fn unrepairable_files_are_reported_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.wav");
        fs::write(&empty, b"").unwrap();
        let garbage = dir.path().join("garbage.wav");
        fs::write(&garbage, [0x55u8; 100]).unwrap();
        let reports = repair_partial_recordings(dir.path());
        assert_eq!(reports.len(), 2);
        assert!(reports
            .iter()
            .all(|r| matches!(r.outcome, RepairOutcome::Failed(_))));
        assert_eq!(fs::read(&empty).unwrap(), b"");
        let missing = repair_partial_recordings(&dir.path().join("nope"));
        assert!(matches!(
            missing[..],
            [RepairReport {
                outcome: RepairOutcome::Failed(_),
                ..
            }]
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn repair_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            riff in any::<u32>(),
            data in any::<u32>(),
            keep_header in any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("fuzz.wav");
            let mut content = Vec::new();
            if keep_header {
                content.extend_from_slice(b"RIFF");
                content.extend_from_slice(&riff.to_le_bytes());
                content.extend_from_slice(b"WAVEfmt \x10\x00\x00\x00\x01\x00\x02\x00");
                content.extend_from_slice(&[0x40, 0x1f, 0, 0, 0, 0x7d, 0, 0, 4, 0, 16, 0]);
                content.extend_from_slice(b"data");
                content.extend_from_slice(&data.to_le_bytes());
            }
            content.extend_from_slice(&bytes);
            fs::write(&path, &content).unwrap();
            let reports = repair_partial_recordings(dir.path());
            if let [RepairReport { outcome: RepairOutcome::Repaired { .. }, .. }] = reports[..] {
                let len = fs::metadata(&path).unwrap().len();
                prop_assert!(len >= HEADER_BYTES);
                prop_assert!(hound::WavReader::open(&path).is_ok());
            }
            prop_assert!(repair_partial_recordings(dir.path()).is_empty() || !keep_header);
        }

        #[test]
        fn aligner_never_panics_and_accounts_for_every_frame(
            inserts in proptest::collection::vec(
                (any::<bool>(), 0u64..5000, proptest::collection::vec(any::<i16>(), 0..200)),
                0..40,
            ),
        ) {
            let mut out = Vec::new();
            let mut a = Aligner::new(800, 4000);
            let mut emit = collect(&mut out);
            for (agent, at, samples) in &inserts {
                let ch = if *agent { Channel::Agent } else { Channel::Caller };
                a.insert(ch, *at, samples, &mut emit).unwrap();
            }
            a.commit_all(&mut emit).unwrap();
            drop(emit);
            prop_assert_eq!(out.len() as u64, a.committed * 2);
            prop_assert!(a.committed <= 4000);
        }
    }
}
