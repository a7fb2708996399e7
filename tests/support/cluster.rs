//! A cluster of real `mostdb` processes on loopback for fault tests, with the faults a test
//! injects into it: kill -9 and restart on the same store, SIGSTOP/SIGCONT, and partitions
//! through a [`LinkProxy`] on every directed link (node i's member list names, for each other
//! node j, the proxy i→j instead of j). Also the key-value client the workload uses, which
//! sorts every answer into what it tells about the operation's fate.
//!
//! Nodes keep their port across restarts (the proxies point at it), so ports are picked below
//! the kernel's ephemeral range, where no outgoing connection can take them meanwhile. All
//! nodes are spawned before any is awaited, so a readiness that depends on peers cannot
//! deadlock the start. Spawn and restart nodes on the thread that owns the cluster: the
//! children die with the thread that spawned them (PR_SET_PDEATHSIG, see `base_command`).
//!
//! Must not import the `mostdb` library.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::history::{splitmix64, KvOp, Outcome};
use super::proxy::{CutMode, LinkProxy};
use super::{
    api_key_header, base_command, file_tail, post, signal, wait_timeout, Client, ReadError,
    TempDir, READY_POLL_MS, READY_TIMEOUT_MS, START_ATTEMPTS_MAX, TERM_TIMEOUT_MS,
};

/// Lowest port picked for a node (the kernel's ephemeral range starts above).
pub const NODE_PORT_LOW: u16 = 20_000;
/// Random ports tried before giving up on finding a free one.
pub const PORT_PICKS_MAX: u32 = 200;
/// Lines of each node's log printed when a fault test fails.
pub const CLUSTER_LOG_LINES: usize = 150;
/// How long the workload client waits to connect to a node.
pub const CLIENT_CONNECT_TIMEOUT_MS: u64 = 500;
/// Timeout of one readiness probe.
pub const PROBE_TIMEOUT_MS: u64 = 1_000;

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub nodes: usize,
    /// `MOSTDB_TIMEOUT_MS`: the per-operation deadline.
    pub op_timeout_ms: u64,
    /// `MOSTDB_THREADS` of each node.
    pub threads: u32,
    /// Further settings for every node (they override the ones above).
    pub env: Vec<(String, String)>,
}

impl Default for ClusterSpec {
    fn default() -> ClusterSpec {
        ClusterSpec {
            nodes: 3,
            op_timeout_ms: 1_000,
            threads: 2,
            env: Vec::new(),
        }
    }
}

/// One member process. Its port, settings, store and log stay the same across restarts.
pub struct ClusterNode {
    pub index: usize,
    pub port: u16,
    env: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
    paused: bool,
    starts: u32,
}

impl ClusterNode {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "node {} already running", self.index);
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open node log");
        let _ = writeln!(
            log,
            "===== harness: node {} start #{} on port {} at {} ms (unix) =====",
            self.index,
            self.starts,
            self.port,
            unix_ms()
        );
        let err_log: File = log.try_clone().expect("clone log handle");
        let mut cmd = base_command();
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(log).stderr(err_log);
        self.child = Some(cmd.spawn().expect("spawn mostdb"));
    }

    /// The exit status if the process has exited (it is then reaped).
    fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().expect("try_wait")?;
        self.child = None;
        Some(status)
    }

    fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    fn note(&self, text: &str) {
        if let Ok(mut log) = OpenOptions::new().append(true).open(&self.log_path) {
            let _ = writeln!(
                log,
                "===== harness: {text} at {} ms (unix) =====",
                unix_ms()
            );
        }
    }
}

/// The nodes, the proxies on every directed link, and one temp dir holding stores and logs.
pub struct Cluster {
    nodes: Vec<ClusterNode>,
    /// `links[i][j]`: the proxy node i uses to reach node j (`None` on the diagonal).
    links: Vec<Vec<Option<LinkProxy>>>,
    dir: TempDir,
}

impl Cluster {
    /// Waits until every core of every node has its links to all the others up (each
    /// `GET /cluster` goes on a new connection, so to any core): a write sent before then may
    /// miss a replica.
    pub fn wait_links_up(&self) {
        let deadline = Instant::now() + Duration::from_millis(LINKS_UP_TIMEOUT_MS);
        let all = self.size() as u64;
        for node in 0..self.size() {
            let mut in_a_row = 0;
            while in_a_row < LINKS_UP_PROBES {
                if members_up(self.node(node).port, &self.node(node).env) == Some(all) {
                    in_a_row += 1;
                    continue;
                }
                in_a_row = 0;
                assert!(Instant::now() < deadline, "node {node}: links not all up");
                std::thread::sleep(Duration::from_millis(LINKS_POLL_MS));
            }
        }
    }

    /// Starts every node and waits until each answers `/readyz`; retries with new ports when
    /// one was taken meanwhile. Panics (printing logs) when the cluster does not come up.
    pub fn start(spec: &ClusterSpec) -> Cluster {
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS_MAX {
            let mut cluster = Cluster::build(spec);
            for node in &mut cluster.nodes {
                node.spawn();
            }
            let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
            let all = (0..cluster.size()).try_for_each(|i| cluster.wait_ready_until(i, deadline));
            match all {
                Ok(()) => return cluster,
                Err(e) if is_addr_in_use(&e) => last = e,
                // Dropping the cluster while panicking prints every node's log.
                Err(e) => panic!("cluster did not start: {e}"),
            }
        }
        panic!("cluster did not start, ports kept being taken: {last}");
    }

    /// Ports, proxies and settings; nothing started yet.
    fn build(spec: &ClusterSpec) -> Cluster {
        let dir = TempDir::new("cluster");
        let ports = pick_ports(spec.nodes);
        let mut links: Vec<Vec<Option<LinkProxy>>> = Vec::new();
        for i in 0..spec.nodes {
            let row = (0..spec.nodes)
                .map(|j| {
                    (i != j).then(|| {
                        let target = SocketAddr::from(([127, 0, 0, 1], ports[j]));
                        LinkProxy::start(target).expect("start link proxy")
                    })
                })
                .collect();
            links.push(row);
        }
        let nodes = (0..spec.nodes)
            .map(|i| {
                let env = node_env(spec, i, &ports, &links, dir.path());
                ClusterNode {
                    index: i,
                    port: ports[i],
                    env,
                    log_path: dir.path().join(format!("node{i}.log")),
                    child: None,
                    paused: false,
                    starts: 0,
                }
            })
            .collect();
        Cluster { nodes, links, dir }
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, i: usize) -> &ClusterNode {
        &self.nodes[i]
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The proxy node `from` uses to reach node `to`.
    pub fn link(&self, from: usize, to: usize) -> &LinkProxy {
        self.links[from][to]
            .as_ref()
            .expect("no link from a node to itself")
    }

    /// Polls `/readyz` of node `i` until it answers 200, the process exits, or `deadline`.
    pub fn wait_ready_until(&mut self, i: usize, deadline: Instant) -> Result<(), String> {
        loop {
            let node = &mut self.nodes[i];
            if let Some(status) = node.exited() {
                return Err(format!("node {i} exited with {status} before it was ready"));
            }
            if node.child.is_none() {
                return Err(format!("node {i} is not running"));
            }
            if probe_ready(node.port, &node.env) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("node {i} not ready by the deadline"));
            }
            std::thread::sleep(Duration::from_millis(READY_POLL_MS));
        }
    }

    /// Waits until node `i` is ready, at most [`READY_TIMEOUT_MS`].
    pub fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        self.wait_ready_until(i, deadline)
    }

    /// kill -9: the process gets no chance to flush or say goodbye.
    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].note("kill -9");
        self.nodes[i].kill9();
    }

    /// Deletes the store of node `i`, which must be down: the disk is lost. Only for showing
    /// that the fault test catches lost acknowledged writes; no correct system survives it
    /// without a recovery protocol.
    pub fn wipe_store(&mut self, i: usize) -> std::io::Result<()> {
        assert!(self.nodes[i].child.is_none(), "node {i} is running");
        self.nodes[i].note("store wiped");
        let root = self.nodes[i]
            .env
            .iter()
            .find(|(k, _)| k == "MOSTDB_STORE_ROOT")
            .map(|(_, v)| PathBuf::from(v))
            .expect("every node has a store root");
        std::fs::remove_dir_all(root)
    }

    /// Sets (or replaces) one environment variable of node `i`, from its next start on (e.g.
    /// libfaketime for a node whose clock is off).
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) {
        let env = &mut self.nodes[i].env;
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    /// Starts node `i` again on its port and store and waits until it is ready.
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].spawn();
        self.wait_ready(i)
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing answers.
    pub fn pause(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let pid = node.child.as_ref().expect("node is running").id();
        node.note("SIGSTOP");
        signal(pid, libc::SIGSTOP);
        node.paused = true;
    }

    pub fn resume(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        if let Some(child) = &node.child {
            signal(child.id(), libc::SIGCONT);
            node.note("SIGCONT");
        }
        node.paused = false;
    }

    /// Cuts every link to and from node `i` (clients still reach it directly).
    pub fn isolate(&self, i: usize, mode: CutMode) {
        self.nodes[i].note(&format!("isolated ({mode:?})"));
        for j in 0..self.size() {
            if j != i {
                self.link(i, j).cut(mode);
                self.link(j, i).cut(mode);
            }
        }
    }

    /// Lets every link pass again.
    pub fn heal_links(&self) {
        for (i, row) in self.links.iter().enumerate() {
            let mut healed = false;
            for p in row.iter().flatten() {
                healed |= p.is_cut();
                p.heal();
            }
            if healed {
                self.nodes[i].note("links healed");
            }
        }
    }

    /// Undoes every fault: resumes paused nodes, restarts dead ones, heals links; then waits
    /// until every node is ready.
    pub fn heal_all(&mut self) -> Result<(), String> {
        self.heal_links();
        for i in 0..self.size() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            if self.nodes[i].exited().is_some() || self.nodes[i].child.is_none() {
                self.nodes[i].spawn();
            }
        }
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        (0..self.size()).try_for_each(|i| self.wait_ready_until(i, deadline))
    }

    /// SIGTERM to every node (resumed first), then waits for each; a node still running after
    /// [`TERM_TIMEOUT_MS`] is killed and reported as `None`.
    pub fn stop_all(&mut self) -> Vec<Option<ExitStatus>> {
        for i in 0..self.size() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            if let Some(child) = &self.nodes[i].child {
                signal(child.id(), libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_millis(TERM_TIMEOUT_MS);
        let mut out = Vec::new();
        for node in &mut self.nodes {
            let Some(mut child) = node.child.take() else {
                out.push(None);
                continue;
            };
            let left = deadline.saturating_duration_since(Instant::now());
            let status = wait_timeout(&mut child, left);
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
            out.push(status);
        }
        out
    }

    /// The last `lines` lines of every node's log.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            out.push_str(&format!(
                "----- node {} ({}), last {lines} lines of {} -----\n{}\n",
                n.index,
                n.url(),
                n.log_path.display(),
                file_tail(&n.log_path, lines)
            ));
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                self.resume(i);
            }
            self.nodes[i].kill9();
        }
        if std::thread::panicking() {
            eprintln!("{}", self.logs(CLUSTER_LOG_LINES));
        }
    }
}

/// Node `i`'s settings: its own URL, and for every other member the proxy i→j.
fn node_env(
    spec: &ClusterSpec,
    i: usize,
    ports: &[u16],
    links: &[Vec<Option<LinkProxy>>],
    dir: &Path,
) -> Vec<(String, String)> {
    let own = format!("http://127.0.0.1:{}", ports[i]);
    let members: Vec<String> = (0..ports.len())
        .map(|j| match &links[i][j] {
            None => own.clone(),
            Some(p) => format!("http://{}", p.addr()),
        })
        .collect();
    let mut env: Vec<(String, String)> = vec![
        ("MOSTDB_HOST".into(), "127.0.0.1".into()),
        ("MOSTDB_SERVER_PORT".into(), ports[i].to_string()),
        ("MOSTDB_SERVER_URL".into(), own),
        ("MOSTDB_CLUSTER_URLS".into(), members.join(";")),
        (
            "MOSTDB_STORE_ROOT".into(),
            dir.join(format!("store{i}")).display().to_string(),
        ),
        ("MOSTDB_TIMEOUT_MS".into(), spec.op_timeout_ms.to_string()),
        ("MOSTDB_THREADS".into(), spec.threads.to_string()),
    ];
    for (k, v) in &spec.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

fn is_addr_in_use(log: &str) -> bool {
    let l = log.to_ascii_lowercase();
    l.contains("address in use") || l.contains("address already in use") || l.contains("addrinuse")
}

/// The first port of the kernel's ephemeral range (where connect() takes its source ports).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(32_768)
}

/// `n` distinct loopback ports below the ephemeral range, each free when picked.
fn pick_ports(n: usize) -> Vec<u16> {
    let high = ephemeral_low().max(NODE_PORT_LOW + 1_000);
    let span = u64::from(high - NODE_PORT_LOW);
    static DRAWS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let draw = DRAWS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut seed = unix_ms() as u64 ^ (u64::from(std::process::id()) << 32) ^ (draw << 48);
    let mut ports: Vec<u16> = Vec::new();
    for _ in 0..PORT_PICKS_MAX {
        if ports.len() == n {
            break;
        }
        seed = splitmix64(seed);
        let p = NODE_PORT_LOW + (seed % span) as u16;
        if !ports.contains(&p) && TcpListener::bind(("127.0.0.1", p)).is_ok() {
            ports.push(p);
        }
    }
    assert_eq!(ports.len(), n, "no free ports in {NODE_PORT_LOW}..{high}");
    ports
}

/// Consecutive `GET /cluster` answers that must show every link up.
const LINKS_UP_PROBES: usize = 8;
/// How long the nodes may take to connect to each other after starting.
const LINKS_UP_TIMEOUT_MS: u64 = 10_000;
/// Pause between two looks at the links.
const LINKS_POLL_MS: u64 = 20;

/// The API key header line of a node started with `env`, if it uses one.
pub fn key_header(env: &[(String, String)]) -> Option<String> {
    api_key_header(env).map(|(name, value)| format!("{name}: {value}"))
}

/// How many members node `port`'s answering core reaches (itself included).
fn members_up(port: u16, env: &[(String, String)]) -> Option<u64> {
    let mut client = Client::connect(port);
    let key = key_header(env);
    let headers: Vec<&str> = key.iter().map(String::as_str).collect();
    let resp = client.call(&super::request("GET", "/cluster", &headers, b""));
    let body: serde_json::Value = serde_json::from_slice(&resp.body).ok()?;
    body.get("result")?.get("up")?.as_u64()
}

/// One readiness probe: `GET /readyz` answered 200 (with the API key when the node uses one).
fn probe_ready(port: u16, env: &[(String, String)]) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let timeout = Duration::from_millis(PROBE_TIMEOUT_MS);
    let Ok(stream) = TcpStream::connect_timeout(&addr, timeout) else {
        return false;
    };
    let mut c = Client::from_stream(stream, timeout);
    let key = key_header(env)
        .map(|h| format!("{h}\r\n"))
        .unwrap_or_default();
    let probe = format!("GET /readyz HTTP/1.1\r\nHost: t\r\n{key}\r\n");
    if c.stream.write_all(probe.as_bytes()).is_err() {
        return false;
    }
    matches!(c.try_read_response(), Ok(r) if r.status == 200)
}

// ------------------------------------------------------------------------------------------------
// The workload's client

/// What one answer (or its absence) tells about an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `{"code":200,"success":true}`.
    Ok,
    /// A get's result (`None`: NotFound).
    Value(Option<String>),
    /// `NotMost`; `indeterminate`: the write may or may not take effect.
    NotMost { indeterminate: bool },
    /// 503 (not ready, busy): nothing applied.
    Unavailable(String),
    /// No connection: the request never left the client.
    NotSent(String),
    /// Sent (maybe only in part) and no complete answer: timeout, reset, end of stream.
    Lost(String),
    /// Any other answer.
    Unexpected(String),
}

/// A client of every node, with one keep-alive connection per node, reopened after errors.
pub struct KvClient {
    ports: Vec<u16>,
    conns: Vec<Option<Client>>,
    io_timeout: Duration,
}

impl KvClient {
    /// `io_timeout`: how long one request waits for its answer before counting as lost.
    pub fn new(ports: Vec<u16>, io_timeout: Duration) -> KvClient {
        let conns = ports.iter().map(|_| None).collect();
        KvClient {
            ports,
            conns,
            io_timeout,
        }
    }

    pub fn set(&mut self, node: usize, key: &str, value: &str) -> Reply {
        let body = serde_json::json!({ "key": key, "value": value }).to_string();
        self.call(node, "/mostdb/set", &body)
    }

    pub fn del(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key }).to_string();
        self.call(node, "/mostdb/del", &body)
    }

    pub fn get(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key }).to_string();
        self.call(node, "/mostdb/get", &body)
    }

    fn call(&mut self, node: usize, path: &str, body: &str) -> Reply {
        let mut client = match self.conns[node].take().filter(is_open) {
            Some(c) => c,
            None => match self.connect(node) {
                Ok(c) => c,
                Err(e) => return Reply::NotSent(e),
            },
        };
        if let Err(e) = client.stream.write_all(&post(path, body.as_bytes())) {
            return Reply::Lost(format!("write: {e}"));
        }
        let resp = match client.try_read_response() {
            Ok(r) => r,
            Err(ReadError::Timeout) => return Reply::Lost("timeout".into()),
            Err(e) => return Reply::Lost(format!("{e:?}")),
        };
        let reply = classify(resp.status, &resp.body);
        let keep = resp
            .header("Connection")
            .is_none_or(|v| !v.eq_ignore_ascii_case("close"));
        if keep && !matches!(reply, Reply::Unexpected(_)) {
            self.conns[node] = Some(client);
        }
        reply
    }

    fn connect(&self, node: usize) -> Result<Client, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.ports[node]));
        let timeout = Duration::from_millis(CLIENT_CONNECT_TIMEOUT_MS);
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
        Ok(Client::from_stream(stream, self.io_timeout))
    }
}

/// Whether a kept-alive connection is still open: a node that was killed or restarted closed
/// it, and writing a request into it would turn a clean "not sent" into a lost answer.
fn is_open(c: &Client) -> bool {
    if c.stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut probe = [0u8; 1];
    let open = match c.stream.peek(&mut probe) {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        // Bytes nobody asked for, or the end of the stream: either way not reusable.
        Ok(_) => false,
    };
    open && c.stream.set_nonblocking(false).is_ok()
}

/// Sorts an answer by what it means for the operation.
pub fn classify(status: u16, body: &[u8]) -> Reply {
    let text = || String::from_utf8_lossy(body).into_owned();
    if status == 503 {
        return Reply::Unavailable(text());
    }
    if status != 200 {
        return Reply::Unexpected(format!("status {status}: {}", text()));
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Reply::Unexpected(format!("not JSON: {}", text()));
    };
    let success = v.get("success").and_then(|s| s.as_bool());
    let message = v.get("message").and_then(|m| m.as_str());
    match (success, message) {
        (Some(true), _) => match v.get("result") {
            None => Reply::Ok,
            Some(result) => match result.get("value") {
                None => Reply::Value(Some(String::new())),
                Some(serde_json::Value::String(s)) => Reply::Value(Some(s.clone())),
                Some(_) => Reply::Unexpected(format!("value not a string: {}", text())),
            },
        },
        (Some(false), Some("NotFound")) => Reply::Value(None),
        (Some(false), Some("NotMost")) => Reply::NotMost {
            indeterminate: v.get("indeterminate").and_then(|i| i.as_bool()) == Some(true),
        },
        _ => Reply::Unexpected(text()),
    }
}

/// What one request came to, for the run's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyClass {
    Ok,
    NotFound,
    NotMost,
    NotMostIndeterminate,
    Unavailable,
    NotSent,
    Lost,
    Unexpected,
}

/// How many [`ReplyClass`] values there are (for counters indexed by class).
pub const REPLY_CLASSES: usize = 8;

/// What a reply to `op` means for the history: its outcome, the op as recorded (a get with the
/// value it read), its class, and a note when the answer made no sense for the op.
pub fn interpret(op: KvOp, reply: Reply) -> (Outcome, KvOp, ReplyClass, Option<String>) {
    let is_get = matches!(op, KvOp::Get(_));
    match reply {
        Reply::Value(v) if is_get => {
            let class = if v.is_none() {
                ReplyClass::NotFound
            } else {
                ReplyClass::Ok
            };
            (Outcome::Ok, KvOp::Get(v), class, None)
        }
        Reply::Ok if !is_get => (Outcome::Ok, op, ReplyClass::Ok, None),
        Reply::NotMost {
            indeterminate: false,
        } => (Outcome::Failed, op, ReplyClass::NotMost, None),
        // A read has no effect: whatever happened to it, it observed nothing.
        Reply::NotMost {
            indeterminate: true,
        } if is_get => (Outcome::Failed, op, ReplyClass::NotMostIndeterminate, None),
        Reply::NotMost {
            indeterminate: true,
        } => (
            Outcome::Indeterminate,
            op,
            ReplyClass::NotMostIndeterminate,
            None,
        ),
        Reply::Unavailable(_) => (Outcome::Failed, op, ReplyClass::Unavailable, None),
        Reply::NotSent(_) => (Outcome::Failed, op, ReplyClass::NotSent, None),
        Reply::Lost(_) if is_get => (Outcome::Failed, op, ReplyClass::Lost, None),
        Reply::Lost(_) => (Outcome::Indeterminate, op, ReplyClass::Lost, None),
        other => {
            let note = Some(format!("{op:?}: {other:?}"));
            // An answer we cannot read may still stand for a write that took effect.
            let outcome = if is_get {
                Outcome::Failed
            } else {
                Outcome::Indeterminate
            };
            (outcome, op, ReplyClass::Unexpected, note)
        }
    }
}
