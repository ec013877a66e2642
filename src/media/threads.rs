//! Dedicated media threads: the media sessions run on threads of their own, each driving a
//! single-threaded tokio runtime (its own timer wheel and socket reactor), apart from the SIP,
//! call and API tasks of the main runtime.
//!
//! Why: ctid's own audio is paced by a timer per call (20 ms frames). On the shared multi-thread
//! runtime those timers were only looked at between the polls of every other task, so 500 queued
//! callers saw 4–9 % of their frames more than 5 ms late (BENCHMARKS.md). A runtime that runs
//! nothing but media parks in `epoll_wait` until the next frame is due and wakes on time; its
//! threads also take a real-time priority (`SCHED_FIFO`, `[media] realtime_priority`) or at
//! least nice −10 when the process may, so that a busy SIP, report or other thread of the machine
//! does not delay a frame: nice alone still left ~1 % of frames over 5 ms at 500 callers
//! (waiting for a CPU), `SCHED_FIFO` none.
//!
//! Sessions are spread round-robin over the threads. A socket handed to a session is moved to
//! the reactor of the thread that runs it ([`crate::media::LegSockets::moved_here`]).
//! Without [`install`] (unit tests with virtual time) [`spawn`] is plain `tokio::spawn`.
//!
//! Must not know: calls, SIP, what a session does.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

struct MediaThreads {
    handles: Vec<Handle>,
    next: AtomicUsize,
}

impl MediaThreads {
    /// `count` threads (at least 1), each driving its own single-threaded runtime until the
    /// process exits; idle, they cost nothing.
    fn start(count: usize, realtime: u8) -> std::io::Result<MediaThreads> {
        let mut handles = Vec::new();
        for i in 0..count.max(1) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(rt.handle().clone());
            std::thread::Builder::new()
                .name(format!("ctid-media-{i}"))
                .spawn(move || {
                    raise_priority(realtime);
                    rt.block_on(std::future::pending::<()>());
                })?;
        }
        Ok(MediaThreads {
            handles,
            next: AtomicUsize::new(0),
        })
    }

    fn spawn<F>(&self, fut: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        self.handles[i].spawn(fut)
    }
}

static MEDIA: OnceLock<MediaThreads> = OnceLock::new();

/// The nice value asked for the media threads (lower is more urgent).
const MEDIA_NICE: i32 = -10;

/// Start `count` media threads (at least 1) for the rest of the process and run every media
/// session started from now on there; `realtime` 1–99 asks for that `SCHED_FIFO` priority
/// (0: nice −10 instead). A second call changes nothing.
pub fn install(count: usize, realtime: u8) -> std::io::Result<()> {
    if MEDIA.get().is_none() {
        let _ = MEDIA.set(MediaThreads::start(count, realtime)?);
    }
    Ok(())
}

/// Whether sessions run on media threads (see [`install`]).
pub fn installed() -> bool {
    MEDIA.get().is_some()
}

/// Run `fut` on the next media thread, or on the current runtime when none are installed.
pub fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match MEDIA.get() {
        Some(m) => m.spawn(fut),
        None => tokio::spawn(fut),
    }
}

/// Best effort: a more urgent scheduling class for this thread. With `realtime` 1–99 the
/// `SCHED_FIFO` class at that priority (needs CAP_SYS_NICE or `LimitRTPRIO`; the kernel's RT
/// throttling, 95 % of a CPU by default, still leaves room for everything else); otherwise, or
/// when that is refused, nice −10 (needs CAP_SYS_NICE or `LimitNICE`). Refused: the thread keeps
/// the process's priority, and says so in the log.
fn raise_priority(realtime: u8) {
    if realtime > 0 {
        let param = libc::sched_param {
            sched_priority: i32::from(realtime.min(99)),
        };
        // SAFETY: `param` outlives the call; pthread_self is this thread.
        let r =
            unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
        if r == 0 {
            return;
        }
        tracing::warn!(
            error = %std::io::Error::from_raw_os_error(r),
            realtime,
            "media thread cannot take the real-time priority; trying nice -10"
        );
    }
    // SAFETY: gettid and setpriority take no pointers; PRIO_PROCESS with a thread id changes
    // only this thread on Linux.
    let r = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, MEDIA_NICE)
    };
    if r != 0 {
        tracing::debug!(
            error = %std::io::Error::last_os_error(),
            "media thread keeps the normal priority"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_work_runs_round_robin_on_the_media_threads() {
        // Not `install`: a global install would move the virtual-time session tests of this
        // process onto real-time threads.
        let m = MediaThreads::start(2, 0).expect("media threads");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let names = rt.block_on(async {
            let mut names = Vec::new();
            for _ in 0..4 {
                let h = m.spawn(async {
                    // Timers and sockets work there: each thread has its own driver.
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                    let s = tokio::net::UdpSocket::bind("127.0.0.1:0").await.ok();
                    (
                        std::thread::current().name().map(str::to_string),
                        s.is_some(),
                    )
                });
                names.push(h.await.expect("task"));
            }
            names
        });
        assert!(names.iter().all(|(_, sock)| *sock), "{names:?}");
        let threads: Vec<Option<String>> = names.into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            threads,
            [
                "ctid-media-0",
                "ctid-media-1",
                "ctid-media-0",
                "ctid-media-1"
            ]
            .map(|n| Some(n.to_string())),
        );
    }
}
