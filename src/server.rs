//! The composition root: starts one event loop per core, each with its listener (SO_REUSEPORT),
//! its share of the shards and its API handler, and stops them on request. It is the only
//! module that knows every layer; nothing imports it but the binaries.

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use monoio::net::{ListenerOpts, TcpListener};

use crate::api::cluster::{ClusterView, MemberView};
use crate::api::{Api, ApiConfig};
use crate::cluster::Membership;
use crate::config::Settings;
use crate::http::{serve_pooled_connection, Admission, ConnLimits, DateCache, IdlePool, Refused};
use crate::limits::{CONNECTION_REFUSAL_LOG_INTERVAL_MS, SHUTDOWN_GRACE_MS};
use crate::replication::antientropy::{self, AntiEntropy};
use crate::replication::clock::{Hlc, SkewBound};
use crate::replication::driver::Driver;
use crate::replication::hints::{self, HintStats, Hints};
use crate::replication::peer::frame::Heartbeat;
use crate::replication::peer::{
    serve_peer, Identity, LinkConfig, PeerAdmission, PeerAuth, PeerLink, PeerService,
};
use crate::replication::protocol::{ReplicaReply, ReplicaRequest, SyncRequest};
use crate::replication::recovery::{self, Recovery};
use crate::replication::transport::Link;
use crate::replication::{CoreReplica, Replication};
use crate::runtime::memory::MemoryTrim;
use crate::runtime::{CoreRuntime, Hub, Inbox, Latch};
use crate::storage::Store;
use crate::tls::{self, Tls};

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
    _memory_trim: Option<MemoryTrim>,
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
/// `tls`: the node's TLS (`None`: plain HTTP), built from the settings by the binary.
pub fn start(
    settings: &Settings,
    membership: Arc<Membership>,
    store: Arc<Store>,
    addr: SocketAddr,
    tls: Option<Arc<Tls>>,
) -> Result<Running, String> {
    let threads = settings.threads;
    let (hub, inboxes) = Hub::<CoreReplica>::new(threads);
    let switches = settings.test_switches;
    for name in switches.off() {
        tracing::warn!("{name}=off: switched off (a test setting, never for production)");
    }
    let anti_entropy = Arc::new(AntiEntropy::new(store.clone(), switches.anti_entropy));
    let hint_stats = switches
        .hints
        .then(|| Arc::new(HintStats::new(membership.size())));
    let recovery = Arc::new(start_recovery(settings, &membership, &store)?);
    let admission = Arc::new(peer_admission(settings, &membership));
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
            peer_certificate_required: settings.mtls(),
        }),
        ready: Arc::new(AtomicBool::new(false)),
        connections: Arc::new(Admission::new(
            settings.max_connections,
            settings.max_connections_per_source,
        )),
        addr,
        membership,
        anti_entropy,
        hint_stats,
        recovery,
        admission,
        clock_bound: SkewBound::new(settings.max_clock_skew_ms),
        tls,
    });
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let connections = shared.connections.clone();
    let memory_trim = MemoryTrim::start(move || connections.open())
        .map_err(|err| tracing::warn!(%err, "no memory watcher: memory stays after storms"))
        .ok();
    let mut running = Running {
        threads: Vec::new(),
        _memory_trim: memory_trim,
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
    // Switched off, the node votes at once whatever it lost (a test setting).
    let cause = settings
        .test_switches
        .recovery
        .then(|| recovery::cause(info, settings.sync, membership.size(), root))
        .flatten();
    Recovery::start(cause, info.created, root).map_err(|e| {
        format!(
            "cannot write the recovery marker in {}: {e}",
            root.display()
        )
    })
}

/// Who may open a peer link: the rule (said once here) and the members' addresses.
fn peer_admission(settings: &Settings, membership: &Membership) -> PeerAdmission {
    let auth = PeerAuth::choose(!settings.cluster_secret.is_empty(), settings.mtls());
    if !membership.is_single() {
        auth.log_at_start();
    }
    let authorities = membership.members.iter().map(|m| m.authority.clone());
    PeerAdmission::new(auth, authorities.collect())
}

/// What every core shares.
struct Shared {
    hub: Arc<Hub<CoreReplica>>,
    store: Arc<Store>,
    settings: Settings,
    api: Arc<ApiConfig>,
    ready: Arc<AtomicBool>,
    /// Client connections: node-wide and per-source counts.
    connections: Arc<Admission>,
    addr: SocketAddr,
    membership: Arc<Membership>,
    anti_entropy: Arc<AntiEntropy>,
    /// The node's hint counters; `None`: hints are switched off.
    hint_stats: Option<Arc<HintStats>>,
    recovery: Arc<Recovery>,
    /// Who may open a peer link to this node.
    admission: Arc<PeerAdmission>,
    /// `MOSTDB_MAX_CLOCK_SKEW_MS` and what every core's clock and replica caught with it.
    clock_bound: Arc<SkewBound>,
    /// `None`: plain HTTP.
    tls: Option<Arc<Tls>>,
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
        shared.clock_bound.clone(),
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
        shared.admission.clone(),
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
                        admission: Some(self.admission.clone()),
                        tls: self.tls.as_ref().and_then(|tls| tls.dialer()),
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
            clock_bound: self.clock_bound.clone(),
        }
    }

    fn driver(&self, links: &[Option<Rc<PeerLink>>], hints: Option<Rc<Hints>>) -> Driver {
        let mode = self.settings.write_mode;
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
            Ok(hints) => Some(hints.watch_space(self.store.space().clone())),
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

    fn heartbeat(&self, peer: Heartbeat) -> Heartbeat {
        let hlc = self.replica.hlc();
        hlc.observe(peer.hlc);
        Heartbeat {
            sent_us: 0,
            hlc: hlc.last(),
            wall_ms: hlc.physical_ms(),
        }
    }
}

async fn accept_loop(
    listener: &TcpListener,
    api: Rc<Api>,
    peers: Rc<PeerEndpoint>,
    shared: &Arc<Shared>,
    shutdown: &Latch,
    live: &Rc<std::cell::Cell<usize>>,
) {
    let limits = Rc::new(ConnLimits {
        body_bytes_max: shared.settings.body_bytes_max(),
    });
    let date = Rc::new(DateCache::new());
    let pool = Rc::new(IdlePool::default());
    let refusals = RefusalLog::default();
    let value_bytes_max = shared.settings.max_value_bytes;
    loop {
        let accepted = monoio::select! {
            _ = shutdown.wait() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, source) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(%err, "accept failed");
                monoio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                continue;
            }
        };
        let admitted = match shared
            .connections
            .admit(source.ip(), || pool.evict_oldest())
        {
            Ok(admitted) => admitted,
            Err(refused) => {
                refusals.log(refused, source, &shared.settings);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        live.set(live.get() + 1);
        let registered = pool.register();
        let tls_config = shared.tls.clone();
        let (handler, peers, limits, date, shutdown, live) = (
            api.connection(source),
            peers.clone(),
            limits.clone(),
            date.clone(),
            shutdown.clone(),
            live.clone(),
        );
        monoio::spawn(async move {
            let slot = registered.slot();
            // With TLS on, the handshake comes first (bounded); a failed one ends it here.
            let stream = match tls::accept(tls_config.as_deref(), stream).await {
                Ok(stream) => stream,
                Err(err) => {
                    tracing::debug!(%err, "TLS handshake failed; connection closed");
                    live.set(live.get() - 1);
                    return;
                }
            };
            let served = serve_pooled_connection(stream, &handler, &limits, &shutdown, &date, slot);
            let upgraded = served.await;
            drop(registered);
            // Only a peer handshake the API answered `101` upgrades a connection.
            if let (Some(up), Some(awaited)) = (upgraded, handler.take_awaited()) {
                let leftover = up.leftover;
                serve_peer(
                    up.stream,
                    leftover,
                    awaited,
                    peers,
                    value_bytes_max,
                    &shutdown,
                )
                .await;
            }
            live.set(live.get() - 1);
            drop(admitted);
        });
    }
}

/// The warning for refused connections: at most one per kind and core per
/// `CONNECTION_REFUSAL_LOG_INTERVAL_MS` (a flood would otherwise flood the log too).
#[derive(Default)]
struct RefusalLog {
    last: [std::cell::Cell<Option<Instant>>; 2],
}

impl RefusalLog {
    fn log(&self, refused: Refused, source: SocketAddr, settings: &Settings) {
        let last = &self.last[refused as usize];
        let interval = Duration::from_millis(CONNECTION_REFUSAL_LOG_INTERVAL_MS);
        if last.get().is_some_and(|at| at.elapsed() < interval) {
            return;
        }
        last.set(Some(Instant::now()));
        match refused {
            Refused::PerSource => tracing::warn!(
                %source,
                max = settings.max_connections_per_source,
                "connection refused: this address holds MOSTDB_MAX_CONNECTIONS_PER_SOURCE \
                 connections (logged once a minute)"
            ),
            Refused::Total => tracing::warn!(
                %source,
                max = settings.max_connections,
                "connection refused: MOSTDB_MAX_CONNECTIONS reached and no idle connection to \
                 close on this core (logged once a minute)"
            ),
        }
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
