//! A throwaway PostgreSQL server for a test: Debian's PostgreSQL 15 (`/usr/lib/postgresql/15`,
//! package `postgresql`), a fresh cluster in a temp dir, listening only on a unix socket in that
//! dir (no TCP port, so tests and helpers in parallel never clash), run as the `postgres` user
//! (PostgreSQL refuses to run as root), fsync off (a test's data need not survive a power cut).
//! Stopped (fast shutdown) and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's PostgreSQL 15 server binaries are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// How long a fresh server may take to accept connections.
pub const PG_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running PostgreSQL server.
pub struct Postgres {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Postgres {
    /// Whether PostgreSQL 15 is installed (tests that need it say so and skip otherwise only
    /// where the caller decides; the suite's install list has it).
    pub fn available() -> bool {
        Path::new(PG_BIN).join("postgres").exists()
    }

    /// Start a fresh server; panics (with the server's log) when it does not come up.
    pub fn start() -> Postgres {
        let dir = tempfile::Builder::new()
            .prefix("ctid-pg-")
            .tempdir()
            .expect("temp dir for PostgreSQL");
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("data dir");
        let (uid, gid) = postgres_ids();
        for p in [dir.path(), data.as_path()] {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).expect("chown to postgres");
        }
        let out = as_postgres(&Path::new(PG_BIN).join("initdb"))
            .args(["-D", &data.display().to_string()])
            .args(["-U", "ctid", "-A", "trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let log = std::fs::File::create(dir.path().join("postgres.log")).expect("log file");
        std::os::unix::fs::chown(dir.path().join("postgres.log"), Some(uid), Some(gid))
            .expect("chown log");
        let child = as_postgres(&Path::new(PG_BIN).join("postgres"))
            .args(["-D", &data.display().to_string()])
            .args(["-k", &dir.path().display().to_string()])
            .args(["-c", "listen_addresses="])
            .args(["-c", "fsync=off", "-c", "synchronous_commit=off"])
            .args(["-c", "full_page_writes=off", "-c", "max_connections=200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start postgres");
        let pg = Postgres {
            dir,
            child: Some(child),
        };
        pg.wait_ready();
        pg
    }

    /// The directory of the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The connection string of database `db` (`postgres`, the default one, or one made by
    /// [`Postgres::create_db`]).
    pub fn url(&self, db: &str) -> String {
        format!(
            "host={} port=5432 user=ctid dbname={db}",
            self.dir.path().display()
        )
    }

    /// A new empty database named `name`; its connection string.
    pub fn create_db(&self, name: &str) -> String {
        let out = Command::new(Path::new(PG_BIN).join("psql"))
            .args(["-h", &self.dir.path().display().to_string()])
            .args([
                "-U",
                "ctid",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
                "-c",
            ])
            .arg(format!("CREATE DATABASE \"{name}\""))
            .output()
            .expect("run psql");
        assert!(
            out.status.success(),
            "CREATE DATABASE {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.url(name)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("postgres.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + PG_READY_TIMEOUT;
        loop {
            let ok = Command::new(Path::new(PG_BIN).join("pg_isready"))
                .args(["-h", &self.dir.path().display().to_string(), "-U", "ctid"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL not ready after {PG_READY_TIMEOUT:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown (disconnects clients, no checkpoint wait).
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `program` run as the `postgres` user.
fn as_postgres(program: &PathBuf) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--"]).arg(program);
    c
}

fn postgres_ids() -> (u32, u32) {
    let out = Command::new("id")
        .args(["-u", "postgres"])
        .output()
        .expect("id -u postgres");
    let uid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("postgres uid");
    let out = Command::new("id")
        .args(["-g", "postgres"])
        .output()
        .expect("id -g postgres");
    let gid = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("postgres gid");
    (uid, gid)
}
