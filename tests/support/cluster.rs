//! A cluster of real `mostdb` processes on loopback for the cluster tests, with the faults a
//! test injects into it: kill -9 and restart on the same store, SIGSTOP/SIGCONT, and
//! partitions through a [`LinkProxy`] on every directed link (node i's member list names, for
//! each other node j, the proxy i→j instead of j).
//!
//! Each member is a [`Node`] at a fixed address of this process (`addr.rs`), known before any
//! node starts and kept across restarts (the proxies point at it). All nodes are spawned
//! before any is awaited, so a readiness that depends on peers cannot deadlock the start.
//! Spawn and restart nodes on the thread that owns the cluster: the children die with the
//! thread that spawned them (PR_SET_PDEATHSIG, see `base_command`).
//!
//! Clusters take [`LoadSlot`]s: a test process runs at most as many node threads at once as
//! the machine has cores, and a cluster that needs more runs alone. That is about load (a
//! fault test's 60 s of kill -9 and partitions next to a timed convergence check on 2 cores),
//! not about addresses, which never collide.
//!
//! Must not import the `mostdb` library.

use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use super::proxy::{CutMode, LinkProxy};
use super::{addr, signal, Listen, Node, TempDir, READY_TIMEOUT_MS, TERM_TIMEOUT_MS};

/// Lines of each node's log printed when a cluster test fails.
pub const CLUSTER_LOG_LINES: usize = 150;
/// Consecutive `GET /cluster` answers that must show every link up.
const LINKS_UP_PROBES: usize = 8;
/// How long the nodes may take to connect to each other after starting.
const LINKS_UP_TIMEOUT_MS: u64 = 10_000;
/// Pause between two looks at the links.
const LINKS_POLL_MS: u64 = 20;

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    pub nodes: usize,
    /// `MOSTDB_TIMEOUT_MS`: the per-operation deadline.
    pub op_timeout_ms: u64,
    /// `MOSTDB_THREADS` of each node.
    pub threads: u32,
    /// Further settings for every node (they override the ones above). `MOSTDB_RESP_PORT`
    /// set to [`RESP_PORT_AUTO`] gives each node a RESP port of its own ([`Cluster::resp_addr`]).
    pub env: Vec<(String, String)>,
}

/// The `MOSTDB_RESP_PORT` value that gives each node of a cluster its own Redis port.
pub const RESP_PORT_AUTO: &str = "auto";

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

/// The nodes, the proxies on every directed link, and one temp dir holding stores and logs.
pub struct Cluster {
    nodes: Vec<Node>,
    /// `links[i][j]`: the proxy node i uses to reach node j (`None` on the diagonal).
    links: Vec<Vec<Option<LinkProxy>>>,
    // Dropped after the nodes (fields drop in order): their logs are in it.
    dir: TempDir,
    _slot: LoadSlot,
}

impl Cluster {
    /// Starts every node and waits until each answers `/readyz`. Panics (printing logs) when
    /// the cluster does not come up.
    pub fn start(spec: &ClusterSpec) -> Cluster {
        let slot = LoadSlot::take(spec.nodes * spec.threads as usize);
        let mut cluster = Cluster::build(spec, slot);
        for node in &mut cluster.nodes {
            node.spawn();
        }
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        for (i, node) in cluster.nodes.iter_mut().enumerate() {
            if let Err(e) = node.wait_ready_until(deadline) {
                // Dropping the cluster while panicking prints every node's log.
                panic!("cluster did not start: node {i} {e}");
            }
        }
        cluster
    }

    /// Addresses, proxies and settings; nothing started yet.
    fn build(spec: &ClusterSpec, slot: LoadSlot) -> Cluster {
        let dir = TempDir::new("cluster");
        let addrs: Vec<SocketAddr> = (0..spec.nodes).map(|_| addr::fixed()).collect();
        let links: Vec<Vec<Option<LinkProxy>>> = (0..spec.nodes)
            .map(|i| {
                (0..spec.nodes)
                    .map(|j| (i != j).then(|| LinkProxy::start(addrs[j]).expect("link proxy")))
                    .collect()
            })
            .collect();
        let nodes = (0..spec.nodes)
            .map(|i| {
                let mut env = node_env(spec, i, &addrs, &links);
                for (name, value) in &mut env {
                    if name == "MOSTDB_RESP_PORT" && value == RESP_PORT_AUTO {
                        *value = addr::fixed().port().to_string();
                    }
                }
                let store = dir.path().join(format!("store{i}"));
                let name = format!("node {i}");
                Node::member(&name, dir.path(), Listen::At(addrs[i]), store, env)
                    .with_tail_lines(CLUSTER_LOG_LINES)
            })
            .collect();
        Cluster {
            nodes,
            links,
            dir,
            _slot: slot,
        }
    }

    /// Where node `i` serves Redis clients (started with `MOSTDB_RESP_PORT` = [`RESP_PORT_AUTO`]).
    pub fn resp_addr(&self, i: usize) -> SocketAddr {
        let node = &self.nodes[i];
        let port = node
            .env_value("MOSTDB_RESP_PORT")
            .and_then(|p| p.parse().ok())
            .expect("the cluster was started with a RESP port per node");
        SocketAddr::new(node.addr().ip(), port)
    }

    /// Waits until every core of every node has its links to all the others up (each
    /// `GET /cluster` goes on a new connection, so to any core): a write sent before then may
    /// miss a replica.
    pub fn wait_links_up(&self) {
        let deadline = Instant::now() + Duration::from_millis(LINKS_UP_TIMEOUT_MS);
        let all = self.size() as u64;
        for (i, node) in self.nodes.iter().enumerate() {
            let mut in_a_row = 0;
            while in_a_row < LINKS_UP_PROBES {
                if node.members_up() == Some(all) {
                    in_a_row += 1;
                    continue;
                }
                in_a_row = 0;
                assert!(Instant::now() < deadline, "node {i}: links not all up");
                std::thread::sleep(Duration::from_millis(LINKS_POLL_MS));
            }
        }
    }

    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(Node::addr).collect()
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

    /// Waits until node `i` is ready, at most [`READY_TIMEOUT_MS`].
    pub fn wait_ready(&mut self, i: usize) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        self.nodes[i]
            .wait_ready_until(deadline)
            .map_err(|e| format!("node {i} {e}"))
    }

    /// kill -9: the process gets no chance to flush or say goodbye.
    pub fn kill9(&mut self, i: usize) {
        self.nodes[i].kill9();
    }

    /// Deletes the store of node `i`, which must be down: the disk is lost. Only for showing
    /// that the fault test catches lost acknowledged writes; no correct system survives it
    /// without a recovery protocol.
    pub fn wipe_store(&mut self, i: usize) -> std::io::Result<()> {
        let node = &mut self.nodes[i];
        assert!(!node.is_running(), "node {i} is running");
        node.note("store wiped");
        std::fs::remove_dir_all(node.store_root())
    }

    /// Sets (or replaces) one environment variable of node `i`, from its next start on (e.g.
    /// libfaketime for a node whose clock is off).
    pub fn set_env(&mut self, i: usize, key: &str, value: &str) {
        self.nodes[i].set_env(key, value);
    }

    /// SIGTERM to node `i`, waiting for it to exit (it persists and stops cleanly).
    pub fn stop(&mut self, i: usize) {
        self.nodes[i].stop();
    }

    /// Starts node `i` again on its address and store and waits until it is ready (a node
    /// that is not ready by then keeps running: it may be recovering).
    pub fn restart(&mut self, i: usize) -> Result<(), String> {
        self.nodes[i].spawn();
        self.wait_ready(i)
    }

    /// SIGSTOP: the process stays, its sockets stay open, nothing answers.
    pub fn pause(&mut self, i: usize) {
        self.nodes[i].pause();
    }

    pub fn resume(&mut self, i: usize) {
        self.nodes[i].resume();
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

    /// Cuts every link from node `i`: it cannot send to its peers (nor get answers to what it
    /// sends), they still reach it.
    pub fn cut_from(&self, i: usize, mode: CutMode) {
        self.nodes[i].note(&format!("links from it cut ({mode:?})"));
        for j in (0..self.size()).filter(|&j| j != i) {
            self.link(i, j).cut(mode);
        }
    }

    /// Cuts every link to node `i`: its peers cannot reach it, it still reaches them.
    pub fn cut_to(&self, i: usize, mode: CutMode) {
        self.nodes[i].note(&format!("links to it cut ({mode:?})"));
        for j in (0..self.size()).filter(|&j| j != i) {
            self.link(j, i).cut(mode);
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
        self.revive();
        let deadline = Instant::now() + Duration::from_millis(READY_TIMEOUT_MS);
        for (i, node) in self.nodes.iter_mut().enumerate() {
            node.wait_ready_until(deadline)
                .map_err(|e| format!("node {i} {e}"))?;
        }
        Ok(())
    }

    /// Resumes paused nodes and starts dead ones again (links stay as they are), without
    /// waiting for them.
    pub fn revive(&mut self) {
        for node in &mut self.nodes {
            node.resume();
            if !node.is_running() {
                node.spawn();
            }
        }
    }

    /// SIGTERM to every node (resumed first), then waits for each; a node still running after
    /// [`TERM_TIMEOUT_MS`] is killed and reported as `None`.
    pub fn stop_all(&mut self) -> Vec<Option<ExitStatus>> {
        let mut running = Vec::new();
        for node in &mut self.nodes {
            node.resume();
            let live = node.is_running();
            if live {
                signal(node.pid(), libc::SIGTERM);
            }
            running.push(live);
        }
        let deadline = Instant::now() + Duration::from_millis(TERM_TIMEOUT_MS);
        let mut out = Vec::new();
        for (node, live) in self.nodes.iter_mut().zip(running) {
            if !live {
                out.push(None);
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            out.push(node.wait_exit(left));
        }
        out
    }

    /// The last `lines` lines of every node's log.
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for (i, n) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "----- node {i} ({}), last {lines} lines of {} -----\n{}\n",
                n.url(),
                n.log_path().display(),
                super::file_tail(n.log_path(), lines)
            ));
        }
        out
    }
}

/// Node `i`'s settings: its own URL, and for every other member the proxy i→j.
fn node_env(
    spec: &ClusterSpec,
    i: usize,
    addrs: &[SocketAddr],
    links: &[Vec<Option<LinkProxy>>],
) -> Vec<(String, String)> {
    let own = format!("http://{}", addrs[i]);
    let members: Vec<String> = (0..addrs.len())
        .map(|j| match &links[i][j] {
            None => own.clone(),
            Some(p) => format!("http://{}", p.addr()),
        })
        .collect();
    let mut env: Vec<(String, String)> = vec![
        ("MOSTDB_SERVER_URL".into(), own),
        ("MOSTDB_CLUSTER_URLS".into(), members.join(";")),
        ("MOSTDB_TIMEOUT_MS".into(), spec.op_timeout_ms.to_string()),
        ("MOSTDB_THREADS".into(), spec.threads.to_string()),
    ];
    for (k, v) in &spec.env {
        env.retain(|(name, _)| name != k);
        env.push((k.clone(), v.clone()));
    }
    env
}

/// Node threads of the clusters running now in this process.
static LOAD: Mutex<usize> = Mutex::new(0);
static LOAD_FREED: Condvar = Condvar::new();

thread_local! {
    /// Slots this thread holds: a test that runs two clusters at once takes the second
    /// without waiting (the limit is between tests, and waiting on itself would never end).
    static HELD: Cell<usize> = const { Cell::new(0) };
}

/// A share of the machine, held while a cluster runs: [`LoadSlot::take`] waits until the
/// node threads running now and `weight` more fit the machine's cores, or nothing runs.
pub struct LoadSlot {
    weight: usize,
}

impl LoadSlot {
    pub fn take(weight: usize) -> LoadSlot {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let mut load = LOAD.lock().unwrap_or_else(|p| p.into_inner());
        while HELD.get() == 0 && *load > 0 && *load + weight > cores {
            load = LOAD_FREED.wait(load).unwrap_or_else(|p| p.into_inner());
        }
        *load += weight;
        HELD.set(HELD.get() + 1);
        LoadSlot { weight }
    }
}

impl Drop for LoadSlot {
    fn drop(&mut self) {
        let mut load = LOAD.lock().unwrap_or_else(|p| p.into_inner());
        *load -= self.weight;
        HELD.set(HELD.get() - 1);
        LOAD_FREED.notify_all();
    }
}
