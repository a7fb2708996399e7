//! Test harness for the integration tests: starts the real `mostdb` binary as a child process on
//! a free loopback port with its own store directory and log file, waits on `/readyz`, stops it
//! with SIGTERM then SIGKILL, kills it with -9 and restarts it on the same store. The raw HTTP
//! client that compares responses byte for byte is in `client.rs`.
//!
//! Must not import the `mostdb` library: the tests see the server only through its process,
//! its port and its store directory, as an operator would.
//!
//! Every wait is bounded (socket timeouts, readiness and exit deadlines), so no test can hang.

// Each `tests/*.rs` file uses a different subset of these helpers.
#![allow(dead_code)]

mod client;
pub mod cluster;
pub mod history;
pub mod proxy;
pub mod workload;

pub use client::*;

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{TcpListener, TcpStream};
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
/// Attempts at starting a node when the port picked turned out to be taken meanwhile.
pub const START_ATTEMPTS_MAX: u32 = 5;
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
// Ports and processes

/// A loopback port that was free a moment ago (bound on port 0, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

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
        .env("MOSTDB_SERVER_PORT", free_port().to_string());
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

// ------------------------------------------------------------------------------------------------
// Nodes

/// Why a node did not become ready.
#[derive(Debug)]
pub enum StartError {
    /// The process exited before it was ready.
    Exited {
        status: ExitStatus,
        log_tail: String,
    },
    /// Still not ready at the deadline (the process has been killed).
    NotReady { log_tail: String },
}

/// One running `mostdb` process with its own store directory and log file. Killed on drop;
/// when the test is failing, the tail of its log is printed.
pub struct Node {
    child: Option<Child>,
    port: u16,
    env: Vec<(String, String)>,
    store_root: PathBuf,
    log_path: PathBuf,
    starts: u32,
    dir: TempDir,
}

impl Node {
    /// A node with the default settings of the harness.
    pub fn start() -> Node {
        Node::start_with(&[])
    }

    /// A node with extra environment variables (they override the harness defaults).
    pub fn start_with(env: &[(&str, &str)]) -> Node {
        let dir = TempDir::new("node");
        let store_root = dir.path().join("store");
        Node::start_on(dir, store_root, env)
    }

    /// A node on an existing store root (e.g. one another node uses), in its own temp dir.
    pub fn start_on(dir: TempDir, store_root: PathBuf, env: &[(&str, &str)]) -> Node {
        let mut node = Node::new_stopped(dir, store_root, env);
        if let Err(e) = node.boot() {
            panic!("mostdb did not start: {e:?}");
        }
        node
    }

    /// A node that has not been started yet: call [`Node::boot`] (or use it for `try_boot`).
    pub fn new_stopped(dir: TempDir, store_root: PathBuf, env: &[(&str, &str)]) -> Node {
        let log_path = dir.path().join("mostdb.log");
        Node {
            child: None,
            port: 0,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            store_root,
            log_path,
            starts: 0,
            dir,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store_root(&self) -> &Path {
        &self.store_root
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// A fresh keep-alive connection to the node.
    pub fn client(&self) -> Client {
        Client::connect(self.port)
    }

    pub fn log_tail(&self) -> String {
        file_tail(&self.log_path, LOG_TAIL_LINES)
    }

    /// Starts the process and waits until `/readyz` answers 200. Picks a new free port and
    /// tries again when the port was taken between picking it and the server binding it.
    pub fn boot(&mut self) -> Result<(), StartError> {
        let mut last = None;
        for _ in 0..START_ATTEMPTS_MAX {
            match self.boot_once(free_port()) {
                Ok(()) => return Ok(()),
                Err(StartError::Exited { status, log_tail }) if is_addr_in_use(&log_tail) => {
                    last = Some(StartError::Exited { status, log_tail });
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// One start on `port`, with no retry, waiting for `/readyz`.
    pub fn boot_once(&mut self, port: u16) -> Result<(), StartError> {
        self.spawn_on(port);
        self.wait_for("/readyz")
    }

    /// One start on a fresh port that waits only for `/healthz` (the process serves), for a
    /// node that is expected to start but not to be ready (e.g. its disk is full).
    pub fn boot_alive(&mut self) -> Result<(), StartError> {
        self.spawn_on(free_port());
        self.wait_for("/healthz")
    }

    fn spawn_on(&mut self, port: u16) {
        assert!(self.child.is_none(), "node already running");
        self.starts += 1;
        self.port = port;
        let log = self.open_log();
        let mut cmd = base_command();
        cmd.env("MOSTDB_HOST", "127.0.0.1")
            .env("MOSTDB_SERVER_PORT", port.to_string())
            .env("MOSTDB_STORE_ROOT", &self.store_root)
            .env("MOSTDB_THREADS", "2");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let err_log = log.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(log).stderr(err_log);
        self.child = Some(cmd.spawn().expect("spawn mostdb"));
    }

    fn open_log(&self) -> File {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        let _ = writeln!(
            log,
            "===== harness: start #{} on port {} =====",
            self.starts, self.port
        );
        log
    }

    fn wait_for(&mut self, probe_path: &str) -> Result<(), StartError> {
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        loop {
            let child = self.child.as_mut().expect("spawned");
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Err(StartError::Exited {
                    status,
                    log_tail: self.log_tail(),
                });
            }
            if probe_ok(self.port, &self.env, probe_path) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill9();
                return Err(StartError::NotReady {
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(READY_POLL_MS));
        }
    }

    /// SIGTERM, then waits at most `timeout` for the exit; SIGKILL and `None` if it did not.
    pub fn terminate_within(&mut self, sig: libc::c_int, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("node is running");
        signal(child.id(), sig);
        match wait_timeout(&mut child, timeout) {
            Some(status) => Some(status),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    /// Graceful stop: SIGTERM and an exit with status 0 within [`TERM_TIMEOUT_MS`].
    pub fn stop(&mut self) {
        let status = self.terminate_within(libc::SIGTERM, Duration::from_millis(TERM_TIMEOUT_MS));
        match status {
            Some(s) if s.success() => {}
            Some(s) => panic!("mostdb exited with {s} after SIGTERM\n{}", self.log_tail()),
            None => panic!(
                "mostdb ignored SIGTERM for {TERM_TIMEOUT_MS} ms\n{}",
                self.log_tail()
            ),
        }
    }

    /// kill -9 and reap: the process gets no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again on the same store root (and settings), on a fresh port.
    pub fn restart(&mut self) {
        if let Err(e) = self.boot() {
            panic!("mostdb did not restart: {e:?}");
        }
    }

    /// The exit status if the process has exited by now (it is then reaped).
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("try_wait")?;
        self.child = None;
        Some(status)
    }

    pub fn is_running(&mut self) -> bool {
        self.child.is_some() && self.try_exited().is_none()
    }

    /// The temp dir that holds the log and (by default) the store.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!(
                "----- tail of {} -----\n{}\n----- end of log -----",
                self.log_path.display(),
                self.log_tail()
            );
        }
    }
}

fn is_addr_in_use(log: &str) -> bool {
    let l = log.to_ascii_lowercase();
    l.contains("address in use") || l.contains("address already in use") || l.contains("addrinuse")
}

/// One probe: `GET {path}` answered 200 (with the API key header if the node uses one).
fn probe_ok(port: u16, env: &[(String, String)], path: &str) -> bool {
    let Ok(stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let mut c = Client::from_stream(stream, Duration::from_millis(2_000));
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: t\r\n");
    if let Some((name, value)) = api_key_header(env) {
        let _ = write!(req, "{name}: {value}\r\n");
    }
    req.push_str("\r\n");
    if c.stream.write_all(req.as_bytes()).is_err() {
        return false;
    }
    matches!(c.try_read_response(), Ok(r) if r.status == 200)
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
