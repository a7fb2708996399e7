//! The composition root: starts one event loop per core, each with its listener (SO_REUSEPORT),
//! its share of the shards and its API handler, and stops them on request. It is the only
//! module that knows every layer; nothing imports it but the binaries.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};

use crate::api::cluster::{ClusterView, MemberView};
use crate::api::{Api, ApiConfig};
use crate::cluster::Membership;
use crate::config::Settings;
use crate::http::{serve_connection, ConnLimits, DateCache, Handler};
use crate::limits::{CONNECTIONS_MAX, SHUTDOWN_GRACE_MS};
use crate::replication::antientropy::{self, AntiEntropy};
use crate::replication::clock::Hlc;
use crate::replication::driver::{DefaultWriteMode, Driver, Link};
use crate::replication::hints::{self, HintStats, Hints};
use crate::replication::peer::{serve_peer, Identity, LinkConfig, PeerLink, PeerService};
use crate::replication::protocol::{ReplicaReply, ReplicaRequest, SyncRequest};
use crate::replication::recovery::{self, Recovery};
use crate::replication::{CoreReplica, Replication};
use crate::runtime::{CoreRuntime, Hub, Inbox, Latch};
use crate::storage::Store;

/// Pending connections the kernel keeps per core's listener.
const LISTEN_BACKLOG: i32 = 4096;
/// Pause after an accept error (e.g. out of file descriptors) before accepting again.
const ACCEPT_ERROR_PAUSE_MS: u64 = 50;
/// How often a stopping core looks whether its connections have finished.
const DRAIN_POLL_MS: u64 = 10;
/// The core that runs the node's anti-entropy passes.
const ANTI_ENTROPY_CORE: usize = 0;

/// Fails with a clear error when the address is taken. Needed because monoio's listeners set
/// SO_REUSEPORT, so a second process would otherwise silently share the port.
pub fn probe_port(addr: SocketAddr) -> std::io::Result<()> {
    std::net::TcpListener::bind(addr).map(drop)
}

/// A running node: its core threads and the means to stop them.
pub struct Running {
    threads: Vec<std::thread::JoinHandle<()>>,
    stops: Vec<flume::Sender<()>>,
    ready: Arc<AtomicBool>,
}

impl Running {
    /// Asks every core to stop accepting and finish its connections; waits for them.
    pub fn stop(self) {
        self.ready.store(false, Ordering::SeqCst);
        for stop in &self.stops {
            let _ = stop.send(());
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Starts every core; returns once each has bound its listener and opened its shards (or
/// the first error).
pub fn start(
    settings: &Settings,
    membership: Arc<Membership>,
    store: Arc<Store>,
    addr: SocketAddr,
) -> Result<Running, String> {
    let threads = settings.threads;
    let (hub, inboxes) = Hub::<CoreReplica>::new(threads);
    let passes_on = !antientropy::switched_off_by_env();
    if !passes_on {
        tracing::info!(
            "anti-entropy passes switched off by {}=off (a test setting)",
            antientropy::SWITCH_ENV
        );
    }
    let anti_entropy = Arc::new(AntiEntropy::new(store.clone(), passes_on));
    let hint_stats = if hints::switched_off_by_env() {
        tracing::info!(
            "hints switched off by {}=off (a test setting)",
            hints::SWITCH_ENV
        );
        None
    } else {
        Some(Arc::new(HintStats::new(membership.size())))
    };
    let recovery = Arc::new(start_recovery(settings, &membership, &store)?);
    let shared = Arc::new(Shared {
        hub: Arc::new(hub),
        store,
        settings: settings.clone(),
        api: Arc::new(ApiConfig {
            context_path: settings.context_path.clone(),
            api_key: settings.api_key_enable.then(|| {
                (
                    settings.api_key_name.clone(),
                    settings.api_key_value.clone().into_bytes(),
                )
            }),
            max_value_bytes: settings.max_value_bytes,
        }),
        ready: Arc::new(AtomicBool::new(false)),
        connections: AtomicUsize::new(0),
        addr,
        membership,
        anti_entropy,
        hint_stats,
        recovery,
    });
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let mut running = Running {
        threads: Vec::new(),
        stops: Vec::new(),
        ready: shared.ready.clone(),
    };
    for (core, inbox) in inboxes.into_iter().enumerate() {
        let (stop_tx, stop_rx) = flume::bounded(1);
        let (shared, up_tx) = (shared.clone(), up_tx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("core-{core}"))
            .stack_size(crate::limits::CORE_STACK_BYTES)
            .spawn(move || run_core(core, shared, inbox, stop_rx, up_tx))
            .map_err(|e| format!("cannot start thread for core {core}: {e}"))?;
        running.threads.push(thread);
        running.stops.push(stop_tx);
    }
    for _ in 0..threads {
        match up_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                running.stop();
                return Err(err);
            }
            Err(_) => return Err("a core thread died while starting".to_string()),
        }
    }
    // A recovering node becomes ready when its recovery task finishes.
    if !shared.recovery.is_recovering() {
        shared.ready.store(true, Ordering::SeqCst);
    }
    Ok(running)
}

/// Whether this node must recover before it votes (DESIGN §4, §7), with its marker written.
fn start_recovery(
    settings: &Settings,
    membership: &Membership,
    store: &Store,
) -> Result<Recovery, String> {
    let root = &settings.store_root;
    let info = store.info();
    let cause = if recovery::switched_off_by_env() {
        tracing::warn!(
            "recovery switched off by {}=off (a test setting): this node votes at once whatever it lost",
            recovery::SWITCH_ENV
        );
        None
    } else {
        recovery::cause(info, settings.sync, membership.size(), root)
    };
    Recovery::start(cause, info.created, root).map_err(|e| {
        format!(
            "cannot write the recovery marker in {}: {e}",
            root.display()
        )
    })
}

/// What every core shares.
struct Shared {
    hub: Arc<Hub<CoreReplica>>,
    store: Arc<Store>,
    settings: Settings,
    api: Arc<ApiConfig>,
    ready: Arc<AtomicBool>,
    connections: AtomicUsize,
    addr: SocketAddr,
    membership: Arc<Membership>,
    anti_entropy: Arc<AntiEntropy>,
    /// The node's hint counters; `None`: hints are switched off.
    hint_stats: Option<Arc<HintStats>>,
    recovery: Arc<Recovery>,
}

fn run_core(
    core: usize,
    shared: Arc<Shared>,
    inbox: Inbox<CoreReplica>,
    stop: flume::Receiver<()>,
    up: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let mut runtime = match CoreRuntime::build() {
        Ok(rt) => rt,
        Err(err) => {
            let _ = up.send(Err(format!(
                "core {core}: cannot build its event loop: {err}"
            )));
            return;
        }
    };
    tracing::info!(core, driver = runtime.driver(), "core event loop up");
    runtime.block_on(core_main(core, shared, inbox, stop, up));
}

async fn core_main(
    core: usize,
    shared: Arc<Shared>,
    inbox: Inbox<CoreReplica>,
    stop: flume::Receiver<()>,
    up: std::sync::mpsc::Sender<Result<(), String>>,
) {
    let settings = &shared.settings;
    let identity = Rc::new(shared.identity());
    let mut links = Vec::new();
    let mut hints = None;
    let started = CoreReplica::open(
        &shared.store,
        core,
        settings.threads,
        &settings.store_root,
        |hlc| {
            links = shared.start_links(&identity, hlc);
            hints = shared.open_hints(core);
            shared.driver(&links, hints.clone())
        },
    )
    .map_err(|e| format!("core {core}: cannot open its clock: {e}"))
    .and_then(|replica| {
        let opts = ListenerOpts::new().reuse_port(true).backlog(LISTEN_BACKLOG);
        TcpListener::bind_with_config(shared.addr, &opts)
            .map(|listener| (replica, listener))
            .map_err(|e| format!("core {core}: cannot listen on {}: {e}", shared.addr))
    });
    let (replica, listener) = match started {
        Ok(ok) => ok,
        Err(err) => {
            let _ = up.send(Err(err));
            return;
        }
    };
    let replica = Rc::new(replica);
    monoio::spawn(inbox.run(replica.clone()));
    let replication = Rc::new(
        Replication::new(
            core,
            replica.clone(),
            shared.hub.clone(),
            shared.store.clone(),
        )
        .with_recovery(shared.recovery.clone()),
    );
    let cluster = Rc::new(shared.cluster_view(&links));
    let api = Rc::new(Api::new(
        replication.clone(),
        shared.api.clone(),
        shared.ready.clone(),
        identity,
        cluster,
    ));
    let shutdown = Latch::new();
    if let Some(hints) = hints {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let replay = hints::replay(hints, dyn_links(&links), timeout, shutdown.clone());
        monoio::spawn(replay);
    }
    if core == ANTI_ENTROPY_CORE {
        let peer_links: Vec<PeerLink> = links.iter().flatten().map(|l| (**l).clone()).collect();
        if !peer_links.is_empty() {
            monoio::spawn(recover_then_converge(
                shared.clone(),
                replication.clone(),
                peer_links,
                shutdown.clone(),
            ));
        }
    }
    let peers = Rc::new(PeerEndpoint {
        replication,
        replica,
        anti_entropy: shared.anti_entropy.clone(),
        recovery: shared.recovery.clone(),
    });
    monoio::spawn({
        let shutdown = shutdown.clone();
        async move {
            let _ = stop.recv_async().await;
            shutdown.set();
        }
    });
    let _ = up.send(Ok(()));
    let live = Rc::new(std::cell::Cell::new(0usize));
    accept_loop(&listener, api, peers, &shared, &shutdown, &live).await;
    drop(listener);
    drain(core, &live).await;
    for link in links.iter().flatten() {
        link.stop();
    }
}

/// The node's recovery, if it needs one, then its anti-entropy passes (if on): both pull
/// from the same peers, so they do not run at once.
async fn recover_then_converge(
    shared: Arc<Shared>,
    replication: Rc<Replication>,
    peer_links: Vec<PeerLink>,
    shutdown: Latch,
) {
    if shared.recovery.is_recovering() {
        let members = shared.membership.size();
        let task = recovery::Task {
            recovery: shared.recovery.clone(),
            anti_entropy: shared.anti_entropy.clone(),
            replication: replication.clone(),
            links: peer_links.clone(),
            needed: members - shared.membership.quorum() + 1,
            timeout: Duration::from_millis(shared.settings.timeout_ms),
            root: shared.settings.store_root.clone(),
            ready: shared.ready.clone(),
        };
        recovery::run(task, shutdown.clone()).await;
        if shared.recovery.is_recovering() {
            return;
        }
    }
    if shared.anti_entropy.passes_on() {
        let ae = shared.anti_entropy.clone();
        antientropy::run(ae, replication, peer_links, shutdown).await;
    }
}

impl Shared {
    /// How this node introduces itself to its peers.
    fn identity(&self) -> Identity {
        let s = &self.settings;
        Identity::new(
            self.store.info().node_id,
            &s.cluster_id,
            s.cluster_epoch,
            self.membership.size() as u32,
            s.cluster_secret.as_bytes(),
        )
    }

    /// One link per peer for this core, indexed like the members (`None`: this node).
    fn start_links(&self, identity: &Rc<Identity>, hlc: Rc<Hlc>) -> Vec<Option<Rc<PeerLink>>> {
        let host = self.settings.host;
        // Outgoing sockets bind to the node's own address when it has a specific one, so
        // per-link network rules can cut exactly one link.
        let bind_ip = (!host.is_unspecified()).then_some(host);
        self.membership
            .members
            .iter()
            .map(|member| {
                (!member.is_self).then(|| {
                    let config = LinkConfig {
                        addr: member.authority.clone(),
                        bind_ip,
                        identity: identity.clone(),
                        value_bytes_max: self.settings.max_value_bytes,
                    };
                    Rc::new(PeerLink::start(config, hlc.clone()))
                })
            })
            .collect()
    }

    /// The members as this core's links see them, for `GET /cluster`.
    fn cluster_view(&self, links: &[Option<Rc<PeerLink>>]) -> ClusterView {
        let members = self
            .membership
            .members
            .iter()
            .zip(links)
            .map(|(member, link)| MemberView {
                url: member.url.clone(),
                link: link.as_deref().cloned(),
            })
            .collect();
        ClusterView {
            node_id: self.store.info().node_id,
            quorum: self.membership.quorum(),
            members,
            anti_entropy: self.anti_entropy.clone(),
            hints: self.hint_stats.clone(),
        }
    }

    fn driver(&self, links: &[Option<Rc<PeerLink>>], hints: Option<Rc<Hints>>) -> Driver {
        let mode = match self.settings.write_mode {
            crate::config::WriteMode::Fast => DefaultWriteMode::Fast,
            crate::config::WriteMode::Safe => DefaultWriteMode::Safe,
        };
        let timeout = Duration::from_millis(self.settings.timeout_ms);
        let driver = Driver::new(dyn_links(links), timeout, mode);
        match hints {
            Some(hints) => driver.with_hints(hints),
            None => driver,
        }
    }

    /// This core's hint queue, unless hints are off or there is no peer. A queue that cannot
    /// be opened leaves the core without hints (anti-entropy still repairs what peers miss).
    fn open_hints(&self, core: usize) -> Option<Rc<Hints>> {
        let stats = self.hint_stats.clone()?;
        let is_peer: Vec<bool> = self.membership.members.iter().map(|m| !m.is_self).collect();
        if !is_peer.contains(&true) {
            return None;
        }
        let root = &self.settings.store_root;
        match Hints::open(root, core, self.settings.threads, &is_peer, stats) {
            Ok(hints) => Some(hints),
            Err(err) => {
                tracing::error!(core, %err, "cannot open the hint queue; this core keeps no hints");
                None
            }
        }
    }
}

fn dyn_links(links: &[Option<Rc<PeerLink>>]) -> Vec<Option<Rc<dyn Link>>> {
    links
        .iter()
        .map(|link| link.clone().map(|l| l as Rc<dyn Link>))
        .collect()
}

/// The accepting side of peer links on one core: replica operations from the peers'
/// coordinators go to the owner core of their key.
struct PeerEndpoint {
    replication: Rc<Replication>,
    replica: Rc<CoreReplica>,
    anti_entropy: Arc<AntiEntropy>,
    recovery: Arc<Recovery>,
}

impl PeerEndpoint {
    /// The node's recovery state and record count. Records are never removed (tombstones are
    /// kept), so any digest scan of this run that counted some is still right and is reused:
    /// only an empty count is checked with a new scan.
    async fn status(&self) -> Option<ReplicaReply> {
        let count = |d: &[crate::replication::protocol::BucketDigest]| -> u64 {
            d.iter().map(|b| b.records).sum()
        };
        let ae = &self.anti_entropy;
        let mut records = count(&ae.digests(self.recovery.started()).await.ok()?);
        if records == 0 {
            records = count(&ae.digests(Instant::now()).await.ok()?);
        }
        Some(self.recovery.status(records))
    }
}

impl PeerService for PeerEndpoint {
    async fn dispatch(&self, request: ReplicaRequest) -> Option<ReplicaReply> {
        // A recovering node gives no vote and shows no data it may lack (DESIGN §4). A COPY
        // (hint replay, a peer's repair) is no vote and only adds what is newer.
        if self.recovery.is_recovering() && !matches!(request, ReplicaRequest::Copy { .. }) {
            return None;
        }
        match self.replication.serve_peer_request(request).await {
            Ok(reply) => Some(reply),
            // Busy, or a core stopping: nothing was applied.
            Err(err) => {
                tracing::debug!(%err, "peer request not served");
                None
            }
        }
    }

    async fn dispatch_sync(&self, request: SyncRequest) -> Option<ReplicaReply> {
        if request == SyncRequest::Status {
            return self.status().await;
        }
        if self.recovery.is_recovering() {
            return None;
        }
        self.anti_entropy.serve(request).await
    }

    fn heartbeat(&self, peer_hlc: u64) -> u64 {
        let hlc = self.replica.hlc();
        hlc.observe(peer_hlc);
        hlc.last()
    }
}

async fn accept_loop<H: Handler + 'static>(
    listener: &TcpListener,
    handler: Rc<H>,
    peers: Rc<PeerEndpoint>,
    shared: &Arc<Shared>,
    shutdown: &Latch,
    live: &Rc<std::cell::Cell<usize>>,
) {
    let limits = Rc::new(ConnLimits {
        body_bytes_max: shared.settings.body_bytes_max(),
    });
    let date = Rc::new(DateCache::new());
    let value_bytes_max = shared.settings.max_value_bytes;
    loop {
        let accepted = monoio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                monoio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                continue;
            }
        };
        if shared.connections.fetch_add(1, Ordering::Relaxed) >= CONNECTIONS_MAX {
            shared.connections.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(
                max = CONNECTIONS_MAX,
                "connection limit reached; closing a new connection"
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        live.set(live.get() + 1);
        let (handler, peers, limits, date, shutdown, live, shared) = (
            handler.clone(),
            peers.clone(),
            limits.clone(),
            date.clone(),
            shutdown.clone(),
            live.clone(),
            shared.clone(),
        );
        monoio::spawn(async move {
            if let Some(up) = serve_connection(stream, &*handler, &limits, &shutdown, &date).await {
                serve_peer(up.stream, up.leftover, peers, value_bytes_max, &shutdown).await;
            }
            live.set(live.get() - 1);
            shared.connections.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Waits, bounded by the grace period, for this core's connections to finish.
async fn drain(core: usize, live: &Rc<std::cell::Cell<usize>>) {
    let deadline = Instant::now() + Duration::from_millis(SHUTDOWN_GRACE_MS);
    while live.get() > 0 && Instant::now() < deadline {
        monoio::time::sleep(Duration::from_millis(DRAIN_POLL_MS)).await;
    }
    if live.get() > 0 {
        tracing::warn!(
            core,
            open = live.get(),
            "grace period over; closing connections"
        );
    }
}
