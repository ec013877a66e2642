//! One daemon per data directory: an exclusive lock on `<data_dir>/ctid.lock`, held for the
//! life of the process (the kernel releases it when the process ends, also after kill -9, so a
//! crash never leaves a stale lock behind). A second `ctid run` on the same directory would mark
//! the first one's live calls interrupted and write the same database: it is refused instead.
//!
//! Must not know: SQL, SIP, call logic.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Held while the daemon runs; dropping it releases the directory.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

#[derive(Debug, Error)]
pub enum LockError {
    #[error(
        "data directory {dir} is in use by another ctid (pid {pid}): stop it first, or give this one its own [daemon] data_dir"
    )]
    Held { dir: PathBuf, pid: String },
    #[error("data directory {dir}: cannot lock {file}: {source}")]
    Io {
        dir: PathBuf,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Take the data directory for this process (creating it if needed).
pub fn lock_data_dir(dir: &Path) -> Result<DataDirLock, LockError> {
    let path = dir.join("ctid.lock");
    let io = |source| LockError::Io {
        dir: dir.to_path_buf(),
        file: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            return Err(LockError::Held {
                dir: dir.to_path_buf(),
                pid: if pid.is_empty() {
                    "unknown".into()
                } else {
                    pid.to_string()
                },
            });
        }
        Err(TryLockError::Error(e)) => return Err(io(e)),
    }
    // Who holds it, for the message a second daemon prints.
    file.set_len(0).map_err(io)?;
    file.seek(SeekFrom::Start(0)).map_err(io)?;
    writeln!(file, "{}", std::process::id()).map_err(io)?;
    Ok(DataDirLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = lock_data_dir(dir.path()).unwrap();
        match lock_data_dir(dir.path()) {
            Err(LockError::Held { pid, .. }) => assert_eq!(pid, std::process::id().to_string()),
            other => panic!("second lock: {other:?}"),
        }
        drop(first);
        lock_data_dir(dir.path()).unwrap();
    }
}
