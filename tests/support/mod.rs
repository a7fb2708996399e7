//! Test harness of the integration tests (`tests/node.rs`, `tests/cluster.rs`) and of the
//! benches that start the real binary: temp directories, the command that starts `mostdb`
//! with a clean environment, signals and bounded waits, and a run of the binary that is
//! expected to exit by itself. One node is [`Node`] (`node.rs`), single or a cluster member;
//! a cluster with its link proxies is `cluster.rs`; where nodes listen, `addr.rs`; the raw
//! HTTP client that compares responses byte for byte, `client.rs`; the key-value client that
//! sorts answers by what they tell, `kv.rs`; recorded histories and their linearizability
//! check, `history.rs`, and synthetic ones to test the check, `synthetic.rs`; a recorded run
//! with its statistics and final reads, racing creates and a CAS counter, `recorded.rs`;
//! listers beside its clients, whose pages are checked as reads, `lister.rs`.
//!
//! Must not import the `mostdb` library: the tests see the server only through its process,
//! its port and its store directory, as an operator would.
//!
//! Every wait is bounded (socket timeouts, readiness and exit deadlines), so no test can hang.

// Each test binary and bench uses a different subset of these helpers.
#![allow(dead_code)]

pub mod addr;
mod client;
pub mod cluster;
pub mod history;
pub mod kv;
pub mod lister;
mod node;
pub mod proxy;
pub mod recorded;
pub mod synthetic;
pub mod tls;
pub mod workload;

pub use client::*;
pub use node::{Listen, Node};

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a node may take from spawn to answering `GET /readyz` with 200.
pub const READY_TIMEOUT_MS: u64 = 10_000;
/// How long a node may take to exit after SIGTERM before it is killed (and the test fails).
pub const TERM_TIMEOUT_MS: u64 = 10_000;
/// How long a process started for a startup error may run before it counts as hung.
pub const EXIT_TIMEOUT_MS: u64 = 10_000;
/// Socket read/write timeout of the test client: no single read or write waits longer.
pub const IO_TIMEOUT_MS: u64 = 15_000;
/// Pause between two readiness probes (a poll interval, not a wait for an event).
pub const READY_POLL_MS: u64 = 20;
/// Lines of the node's log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 60;

static DIR_SEQ: AtomicU32 = AtomicU32::new(0);

// ------------------------------------------------------------------------------------------------
// Temporary directories

/// A unique directory under the system temp dir, removed on drop unless the test is failing
/// (then it is kept for inspection and its path printed).
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seq = DIR_SEQ.fetch_add(1, Ordering::Relaxed);
        let name = format!("mostdb-it-{label}-{}-{seq}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("(test failed: keeping {})", self.path.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Processes

/// The binary under test, built by cargo for this test run.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_mostdb")
}

/// A command for the binary with a clean `MOSTDB_*` environment (the developer's own settings
/// must not leak into a test) and, as a safety net, SIGKILL when the spawning thread dies
/// (PR_SET_PDEATHSIG follows the thread, not the process: start a node on the thread that
/// owns it, as each test does, so an interrupted `cargo test` leaves no server behind).
pub fn base_command() -> Command {
    let mut cmd = Command::new(binary());
    for (k, _) in std::env::vars_os() {
        let Some(k) = k.to_str() else { continue };
        if k.starts_with("MOSTDB_") || k == "RUST_LOG" {
            cmd.env_remove(k);
        }
    }
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec here.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    cmd
}

/// Sends `sig` to the process `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: plain kill(2) on a child we own (not yet reaped, so the pid is still ours).
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(
        rc,
        0,
        "kill({pid}, {sig}) failed: {}",
        std::io::Error::last_os_error()
    );
}

/// Waits for `child` to exit, at most `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            Err(e) => panic!("try_wait: {e}"),
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What a process that is expected to exit by itself printed, and how it ended.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs the binary with `args` and `env` (plus a private store root unless `env` names one)
/// and waits for it to exit on its own within [`EXIT_TIMEOUT_MS`]; panics if it does not.
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> Exited {
    let dir = TempDir::new("exit");
    let mut cmd = base_command();
    cmd.args(args)
        .env("MOSTDB_HOST", "127.0.0.1")
        .env("MOSTDB_STORE_ROOT", dir.path().join("store"))
        .env("MOSTDB_THREADS", "2")
        .env("MOSTDB_SERVER_PORT", "0");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn mostdb");
    let status = wait_timeout(&mut child, Duration::from_millis(EXIT_TIMEOUT_MS));
    let elapsed = start.elapsed();
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "mostdb {args:?} {env:?} did not exit within {EXIT_TIMEOUT_MS} ms\nstdout:\n{}\nstderr:\n{}",
            read(&out_path),
            read(&err_path)
        );
    };
    Exited {
        status,
        stdout: read(&out_path),
        stderr: read(&err_path),
        elapsed,
    }
}

/// The last `lines` lines of a text file (empty if it cannot be read).
pub fn file_tail(path: &Path, lines: usize) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The API key header a node started with `env` expects, if the feature is on.
pub fn api_key_header(env: &[(String, String)]) -> Option<(String, String)> {
    let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let enabled = get("MOSTDB_API_KEY_ENABLE").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if !enabled {
        return None;
    }
    let name = get("MOSTDB_API_KEY_NAME").unwrap_or_else(|| "X-MOSTDB-AUTH".to_string());
    let value = get("MOSTDB_API_KEY_VALUE")
        .or_else(|| get("MOSTDB_API_KEY_VAULE"))
        .unwrap_or_else(|| "mostdb".to_string());
    Some((name, value))
}
