//! Start-up repair of recordings cut short by a crash: a WAV file whose RIFF/data sizes disagree
//! with its length (the daemon stopped between two header updates) gets its header fixed.
//! Blocking file I/O: run from a plain thread or `spawn_blocking`, before recordings start.

use super::HEADER_BYTES;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// What [`repair_partial_recordings`] did to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    pub path: PathBuf,
    pub outcome: RepairOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepairOutcome {
    /// The header now matches the audio in the file: `data_bytes` of audio, after cutting
    /// `truncated_bytes` (an incomplete last frame) from the end.
    Repaired {
        data_bytes: u32,
        truncated_bytes: u64,
    },
    /// The file could not be read or is not a PCM WAV file ctid can repair; left as it was.
    Failed(String),
}

/// At daemon start (before any recording begins; blocking, so from a plain thread or
/// `spawn_blocking`): find every `*.wav` under `dir` (recursively, symbolic links not followed)
/// whose RIFF/data chunk sizes do not match the file's length — the daemon stopped between two
/// header updates — and fix the header, truncating to a whole number of frames. Consistent files are
/// not touched and not reported.
pub fn repair_partial_recordings(dir: &Path) -> Vec<RepairReport> {
    let mut reports = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) => {
                reports.push(RepairReport {
                    path: d,
                    outcome: RepairOutcome::Failed(format!("cannot list directory: {e}")),
                });
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file()
                && path
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("wav"))
            {
                let outcome = match repair_file(&path) {
                    Ok(None) => continue,
                    Ok(Some((data_bytes, truncated_bytes))) => RepairOutcome::Repaired {
                        data_bytes,
                        truncated_bytes,
                    },
                    Err(e) => RepairOutcome::Failed(e.to_string()),
                };
                match &outcome {
                    RepairOutcome::Repaired { data_bytes, .. } => tracing::warn!(
                        path = %path.display(), data_bytes, "repaired recording cut short"),
                    RepairOutcome::Failed(e) => tracing::warn!(
                        path = %path.display(), error = %e, "cannot repair recording"),
                }
                reports.push(RepairReport { path, outcome });
            }
        }
    }
    reports
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

pub(super) fn write_u32_at(f: &mut File, at: u64, v: u32) -> io::Result<()> {
    f.seek(SeekFrom::Start(at))?;
    f.write_all(&v.to_le_bytes())
}

/// A plausible chunk id: four printable ASCII characters.
fn chunk_id_ok(id: &[u8]) -> bool {
    id.iter().all(|b| (0x20..0x7f).contains(b))
}

/// The bytes from `at` to the end of the file are a chain of whole chunks.
fn chunks_fill(f: &mut File, mut at: u64, len: u64) -> io::Result<bool> {
    for _ in 0..64 {
        if at == len {
            return Ok(true);
        }
        if at + 8 > len {
            return Ok(false);
        }
        let mut head = [0u8; 8];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut head)?;
        if !chunk_id_ok(&head[..4]) {
            return Ok(false);
        }
        let size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
        at += 8 + size + (size & 1);
    }
    Ok(false)
}

/// Fix one file's header if it disagrees with the file's length. `Ok(None)`: nothing to do.
fn repair_file(path: &Path) -> io::Result<Option<(u32, u64)>> {
    let mut f = OpenOptions::new().read(true).write(true).open(path)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 12];
    if len < HEADER_BYTES {
        return Err(invalid("too short for a WAV file"));
    }
    f.read_exact(&mut head)?;
    if &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Err(invalid("not a RIFF/WAVE file"));
    }
    let riff_size = u64::from(u32::from_le_bytes([head[4], head[5], head[6], head[7]]));
    // Walk the chunks up to `data`, reading the frame size from `fmt `.
    let mut at = 12u64;
    let mut block_align: Option<u64> = None;
    let mut chunks = 0;
    let (data_off, declared) = loop {
        chunks += 1;
        if chunks > 64 {
            return Err(invalid("too many chunks before the data"));
        }
        if at + 8 > len {
            return Err(invalid("no data chunk"));
        }
        let mut ch = [0u8; 8];
        f.seek(SeekFrom::Start(at))?;
        f.read_exact(&mut ch)?;
        let size = u64::from(u32::from_le_bytes([ch[4], ch[5], ch[6], ch[7]]));
        match &ch[..4] {
            b"data" => break (at + 8, size),
            b"fmt " => {
                if size < 16 || at + 8 + 16 > len {
                    return Err(invalid("short fmt chunk"));
                }
                let mut fmt = [0u8; 16];
                f.read_exact(&mut fmt)?;
                block_align = Some(u64::from(u16::from_le_bytes([fmt[12], fmt[13]])).max(1));
            }
            id if !chunk_id_ok(id) => return Err(invalid("garbled chunk list")),
            _ => {}
        }
        at += 8 + size + (size & 1);
    };
    let block_align = block_align.ok_or_else(|| invalid("no fmt chunk before the data"))?;
    let available = len - data_off;
    let padded = declared + (declared & 1);
    let data_ok = declared % block_align == 0
        && (declared == available
            || (padded <= available && chunks_fill(&mut f, data_off + padded, len)?));
    if data_ok && riff_size + 8 == len {
        return Ok(None);
    }
    let (data, new_len) = if data_ok {
        (declared, len)
    } else {
        let max = u64::from(u32::MAX) - (data_off - 8);
        let data = available.min(max) / block_align * block_align;
        (data, data_off + data)
    };
    if new_len < len {
        f.set_len(new_len)?;
    }
    let riff = u32::try_from(new_len - 8).map_err(|_| invalid("file too large for WAV"))?;
    let data = u32::try_from(data).map_err(|_| invalid("data too large for WAV"))?;
    write_u32_at(&mut f, data_off - 4, data)?;
    write_u32_at(&mut f, 4, riff)?;
    f.sync_all()?;
    Ok(Some((data, len - new_len)))
}
