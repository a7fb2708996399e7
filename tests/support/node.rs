//! One `mostdb` process, for single-node tests and as a cluster member alike: its own store
//! directory, log file and port file; started and probed for readiness (`/readyz` in plain
//! HTTP, or any probe, e.g. over TLS), stopped with SIGTERM, killed with -9, paused with
//! SIGSTOP, and started again on the same store.
//!
//! Where it listens ([`Listen`]): on port 0 the node picks a free port and writes it to its
//! port file (`MOSTDB_PORT_FILE`), read here, so no harness guesses a port (a restart may get
//! another one); at a fixed address (a cluster member, whose peers name it before it starts;
//! see `addr.rs`) it keeps that address across restarts.
//!
//! Spawn and restart a node on the thread that owns it: it dies with the thread that spawned
//! it (PR_SET_PDEATHSIG, see `base_command`). Every wait is bounded.
//!
//! Must not import the `mostdb` library.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{
    addr, api_key_header, base_command, file_tail, request, signal, wait_timeout, Client, TempDir,
    LOG_TAIL_LINES, READY_POLL_MS, READY_TIMEOUT_MS, TERM_TIMEOUT_MS,
};

/// Timeout of one readiness probe (connect, then the answer).
pub const PROBE_TIMEOUT_MS: u64 = 1_000;

/// Where a node listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// Port 0 of 127.0.0.1: a free port, reported by the node, maybe another after a restart.
    AnyPort,
    /// This address, at every start.
    At(SocketAddr),
}

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

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Exited { status, .. } => {
                write!(f, "exited with {status} before it was ready")
            }
            StartError::NotReady { .. } => write!(f, "not ready by the deadline"),
        }
    }
}

/// One `mostdb` process. Its settings, store, log and port file stay the same across
/// restarts. Killed on drop; when the test is failing, the tail of its log is printed.
pub struct Node {
    /// "node", or "node 2" in a cluster: for logs and messages.
    name: String,
    listen: Listen,
    /// Where it listens now; `None` until the port file said (port 0).
    addr: Option<SocketAddr>,
    env: Vec<(String, String)>,
    store_root: PathBuf,
    log_path: PathBuf,
    port_file: PathBuf,
    /// Lines of the log printed when a test fails.
    tail_lines: usize,
    child: Option<Child>,
    paused: bool,
    starts: u32,
    /// The directory of the log and port file when the node owns it (a single node).
    dir: Option<TempDir>,
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

    /// A node on an address of its own (see `addr.rs`) that it keeps across restarts.
    pub fn start_fixed() -> Node {
        let dir = TempDir::new("node");
        let store_root = dir.path().join("store");
        let mut node = Node::new_stopped(dir, store_root, &[]).listening(Listen::At(addr::fixed()));
        if let Err(e) = node.boot() {
            panic!("mostdb did not start: {e:?}");
        }
        node
    }

    /// A node that has not been started yet, on port 0, its files in `dir`: call
    /// [`Node::boot`] (or [`Node::spawn`] and a wait).
    pub fn new_stopped(dir: TempDir, store_root: PathBuf, env: &[(&str, &str)]) -> Node {
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut node = Node::member("node", dir.path(), Listen::AnyPort, store_root, env);
        node.tail_lines = LOG_TAIL_LINES;
        node.dir = Some(dir);
        node
    }

    /// A stopped node whose files (`{name}.log`, `{name}.port`, spaces as `-`) go into `home`,
    /// which outlives it (a cluster's directory).
    pub fn member(
        name: &str,
        home: &Path,
        listen: Listen,
        store_root: PathBuf,
        env: Vec<(String, String)>,
    ) -> Node {
        let file = name.replace(' ', "-");
        Node {
            name: name.to_string(),
            listen,
            addr: None,
            env,
            store_root,
            log_path: home.join(format!("{file}.log")),
            port_file: home.join(format!("{file}.port")),
            tail_lines: LOG_TAIL_LINES,
            child: None,
            paused: false,
            starts: 0,
            dir: None,
        }
    }

    /// The same node listening elsewhere from its next start on.
    pub fn listening(mut self, listen: Listen) -> Node {
        self.listen = listen;
        self
    }

    /// Lines of the log printed when a test fails.
    pub fn with_tail_lines(mut self, lines: usize) -> Node {
        self.tail_lines = lines;
        self
    }

    /// The value of one of the node's settings given in its environment.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Where the node listens (known once it has started).
    pub fn addr(&self) -> SocketAddr {
        match (self.addr, self.listen) {
            (Some(addr), _) | (None, Listen::At(addr)) => addr,
            (None, Listen::AnyPort) => panic!("{}: no port yet (not started)", self.name),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    pub fn store_root(&self) -> &Path {
        &self.store_root
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// The temp dir that holds the log and (by default) the store, for a node that owns one.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("a node of its own").path()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("node is running").id()
    }

    /// A fresh keep-alive connection to the node.
    pub fn client(&self) -> Client {
        Client::connect(self.addr())
    }

    pub fn log_tail(&self) -> String {
        file_tail(&self.log_path, self.tail_lines)
    }

    /// Sets (or replaces) one environment variable, from the next start on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.to_string()));
    }

    /// Starts the process and waits until `/readyz` answers 200 (killing it if it never does).
    pub fn boot(&mut self) -> Result<(), StartError> {
        self.boot_until_ok("/readyz")
    }

    /// Starts the process and waits only for `/healthz` (the process serves), for a node that
    /// is expected to start but not to be ready (e.g. its disk is full).
    pub fn boot_alive(&mut self) -> Result<(), StartError> {
        self.boot_until_ok("/healthz")
    }

    fn boot_until_ok(&mut self, path: &str) -> Result<(), StartError> {
        self.spawn();
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        let env = self.env.clone();
        let result = self.wait_until(deadline, |addr| probe_ok(addr, &env, path));
        if matches!(result, Err(StartError::NotReady { .. })) {
            self.kill9();
        }
        result
    }

    /// Starts the process again on the same store and settings, and waits until it is ready.
    pub fn restart(&mut self) {
        if let Err(e) = self.boot() {
            panic!("mostdb did not restart: {e:?}");
        }
    }

    /// Starts the process without waiting for anything.
    pub fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} already running", self.name);
        self.starts += 1;
        self.paused = false;
        let _ = std::fs::remove_file(&self.port_file);
        self.addr = match self.listen {
            Listen::At(addr) => Some(addr),
            Listen::AnyPort => None,
        };
        let (host, port) = match self.listen {
            Listen::At(addr) => (addr.ip().to_string(), addr.port()),
            Listen::AnyPort => ("127.0.0.1".to_string(), 0),
        };
        let log = self.open_log(&format!("start #{} on {host}:{port}", self.starts));
        let mut cmd = base_command();
        cmd.env("MOSTDB_HOST", host)
            .env("MOSTDB_SERVER_PORT", port.to_string())
            .env("MOSTDB_PORT_FILE", &self.port_file)
            .env("MOSTDB_STORE_ROOT", &self.store_root)
            .env("MOSTDB_THREADS", "2");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let err_log = log.try_clone().expect("clone log handle");
        cmd.stdin(Stdio::null()).stdout(log).stderr(err_log);
        self.child = Some(cmd.spawn().expect("spawn mostdb"));
    }

    /// Polls until `ready(addr)` holds, the process exits, or `deadline` (the process is then
    /// left running). With port 0, the address is first read from the port file.
    pub fn wait_until(
        &mut self,
        deadline: Instant,
        mut ready: impl FnMut(SocketAddr) -> bool,
    ) -> Result<(), StartError> {
        loop {
            let Some(child) = self.child.as_mut() else {
                panic!("{} is not running", self.name);
            };
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return Err(StartError::Exited {
                    status,
                    log_tail: self.log_tail(),
                });
            }
            if self.addr.is_none() {
                self.addr =
                    read_port_file(&self.port_file).map(|p| SocketAddr::from(([127, 0, 0, 1], p)));
            }
            if self.addr.is_some_and(&mut ready) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(StartError::NotReady {
                    log_tail: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(READY_POLL_MS));
        }
    }

    /// Waits until `/readyz` answers 200, the process exits, or `deadline`.
    pub fn wait_ready_until(&mut self, deadline: Instant) -> Result<(), StartError> {
        let env = self.env.clone();
        self.wait_until(deadline, |addr| probe_ok(addr, &env, "/readyz"))
    }

    /// Sends `sig`, then waits at most `timeout` for the exit; SIGKILL and `None` if it did
    /// not exit by then.
    pub fn terminate_within(&mut self, sig: libc::c_int, timeout: Duration) -> Option<ExitStatus> {
        self.resume();
        signal(self.pid(), sig);
        self.wait_exit(timeout)
    }

    /// Waits at most `timeout` for the process to exit (e.g. after a signal); SIGKILL and
    /// `None` if it did not.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take().expect("node is running");
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
            self.note("kill -9");
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing answers.
    pub fn pause(&mut self) {
        self.note("SIGSTOP");
        signal(self.pid(), libc::SIGSTOP);
        self.paused = true;
    }

    /// SIGCONT, if paused.
    pub fn resume(&mut self) {
        if self.paused {
            if let Some(child) = &self.child {
                signal(child.id(), libc::SIGCONT);
                self.note("SIGCONT");
            }
            self.paused = false;
        }
    }

    pub fn is_paused(&self) -> bool {
        self.paused
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

    /// Writes a line into the node's log, marking what the test did to it.
    pub fn note(&self, text: &str) {
        if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(
                log,
                "===== harness: {text} at {} ms (unix) =====",
                unix_ms()
            );
        }
    }

    fn open_log(&self, text: &str) -> File {
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        let _ = writeln!(
            log,
            "===== harness: {} {text} at {} ms (unix) =====",
            self.name,
            unix_ms()
        );
        log
    }

    /// How many members the answering core of this node reaches (itself included).
    pub fn members_up(&self) -> Option<u64> {
        let key = api_key_header(&self.env).map(|(name, value)| format!("{name}: {value}"));
        let headers: Vec<&str> = key.iter().map(String::as_str).collect();
        let resp = self
            .client()
            .call(&request("GET", "/cluster", &headers, b""));
        let body: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
        body.get("result")?.get("up")?.as_u64()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let at = self.addr.map(|a| a.to_string()).unwrap_or_default();
            eprintln!(
                "----- {} ({at}): last {} lines of {} -----\n{}\n----- end of log -----",
                self.name,
                self.tail_lines,
                self.log_path.display(),
                self.log_tail()
            );
        }
    }
}

/// The port a node wrote to its port file, once it has (the file appears whole).
fn read_port_file(path: &Path) -> Option<u16> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// One probe: `GET {path}` answered 200 (with the API key header if the node uses one).
pub fn probe_ok(addr: SocketAddr, env: &[(String, String)], path: &str) -> bool {
    let timeout = Duration::from_millis(PROBE_TIMEOUT_MS);
    let Ok(stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let mut c = Client::from_stream(stream, timeout);
    let key = api_key_header(env).map(|(name, value)| format!("{name}: {value}"));
    let headers: Vec<&str> = key.iter().map(String::as_str).collect();
    if c.stream
        .write_all(&request("GET", path, &headers, b""))
        .is_err()
    {
        return false;
    }
    matches!(c.try_read_response(), Ok(r) if r.status == 200)
}

pub fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
