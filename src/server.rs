//! The composition root: wires the layers together and starts them in order. It holds no
//! policy of its own: connections (caps, drain) are `http`'s [`Listener`], who may vote and be
//! served is `replication`'s [`PeerEndpoint`] and gate, threads are `runtime`'s. It is the only
//! module that knows every layer; nothing imports it but the binaries.
//!
//! Starting a node ([`start`]):
//! 1. the test switches (anti-entropy passes, hints)
//! 2. the recovery state, its marker written before anything can vote
//! 3. who may open a peer link
//! 4. the memory watcher
//! 5. the cores, one thread and event loop each, running [`core_main`]
//! 6. ready, unless the node recovers (then its recovery task says when)
//!
//! Each core ([`core_main`]):
//! 1. its replica: its shards, its clock, its peer links, its hint queue, its driver
//! 2. its listener on the node's port (SO_REUSEPORT: every core listens)
//! 3. its inboxes (replica jobs, metrics scrapes), its entry to the data, the API (with its
//!    request counters and its way to scrape the node) and the peer endpoint
//! 4. hint replay; on one core, recovery then anti-entropy
//! 5. up: it serves until stopped, drains its connections, stops its links

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod probes;

use monoio::net::{ListenerOpts, TcpListener};

use crate::api::cluster::{ClusterView, MemberView};
use crate::api::redis::{RedisCommands, ScanCursors};
use crate::api::{self, Api, ApiConfig};
use crate::audit::{AuditLog, AuditRecord};
use crate::cluster::health::Health;
use crate::cluster::Membership;
use crate::config::{Live, Settings, View};
use crate::http::{Admission, ConnLimits, Listener, ListenerConfig, Service, Upgraded};
use crate::limits::PEER_VALUE_BYTES_MAX;
use crate::metrics::{Build, CoreMetrics, Scraper};
use crate::replication::antientropy::{self, AntiEntropy};
use crate::replication::clock::{self, Hlc, SkewBound};
use crate::replication::driver::Driver;
use crate::replication::endpoint::PeerEndpoint;
use crate::replication::expiry::{self, ExpiryStats};
use crate::replication::hints::{self, HintStats, Hints};
use crate::replication::peer::monitor::{self, Monitor};
use crate::replication::peer::{
    serve_peer, Identity, LinkConfig, PeerAdmission, PeerAuth, PeerLink, Watched,
};
use crate::replication::recovery::{self, Recovery};
use crate::replication::transport::Link;
use crate::replication::{CoreReplica, Replication};
use crate::resp::RespListener;
use crate::runtime::memory::MemoryTrim;
use crate::runtime::{threads, Hub, Inbox, Latch, Running, Startup};
use crate::storage::Store;
use crate::tls::Tls;

/// Pending connections the kernel keeps per core's listener.
const LISTEN_BACKLOG: i32 = 4096;
/// The core that runs the node's anti-entropy passes.
const ANTI_ENTROPY_CORE: usize = 0;
/// The core that runs the node's monitor (the node-wide view of the members).
const MONITOR_CORE: usize = 0;

/// Fails with a clear error when the address is taken. Needed because monoio's listeners set
/// SO_REUSEPORT, so a second process would otherwise silently share the port.
pub fn probe_port(addr: SocketAddr) -> std::io::Result<()> {
    std::net::TcpListener::bind(addr).map(drop)
}

/// Starts every core; returns once each has bound its listener and opened its shards (or
/// the first error).
/// `tls`: the node's TLS (`None`: plain HTTP), built from the settings by the binary.
/// `live`: the runtime settings (`settings` as they are now), read by every core.
pub fn start(
    settings: &Settings,
    membership: Arc<Membership>,
    store: Arc<Store>,
    addr: SocketAddr,
    tls: Option<Arc<Tls>>,
    live: Arc<Live>,
    audit: Arc<AuditLog>,
) -> Result<Running, String> {
    let doorbells = |e: std::io::Error| format!("cannot make the cores' doorbells: {e}");
    let (hub, inboxes) = Hub::<CoreReplica>::new(settings.threads).map_err(doorbells)?;
    let (metrics_hub, metrics_inboxes) =
        Hub::<CoreMetrics>::new(settings.threads).map_err(doorbells)?;
    // Steps 1 to 3.
    let hubs = (hub, metrics_hub);
    let shared = Shared::new(settings, membership, store, addr, tls, hubs)?;
    let shared = Arc::new(shared.with_live(live)?.with_audit(audit));
    // 4. Trims the allocator's memory once a storm of connections is over.
    let connections = shared.connections.clone();
    let memory_trim = MemoryTrim::start(move || connections.open())
        .map_err(|err| tracing::warn!(%err, "no memory watcher: memory stays after storms"))
        .ok();
    // 5.
    let mains = inboxes
        .into_iter()
        .zip(metrics_inboxes)
        .enumerate()
        .map(|(core, inboxes)| {
            let shared = shared.clone();
            move |shutdown, up| core_main(core, shared, inboxes, shutdown, up)
        })
        .collect();
    let running = threads::start(mains, shared.ready.clone(), memory_trim)?;
    // 6. A recovering node becomes ready when its recovery task finishes.
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

/// What the API needs from the settings.
fn api_config(settings: &Settings) -> ApiConfig {
    ApiConfig {
        context_path: settings.context_path.clone(),
        api_key: settings.api_key_enable.then(|| {
            (
                settings.api_key_name.clone(),
                settings.api_key_value.clone().into_bytes(),
            )
        }),
        max_value_bytes: settings.max_value_bytes,
        timeout_ms: settings.timeout_ms,
        peer_certificate_required: settings.mtls(),
        audit: Arc::new(AuditLog::off()),
        peer_urls: Vec::new(),
        peer_tls: None,
    }
}

/// What every core shares.
struct Shared {
    hub: Arc<Hub<CoreReplica>>,
    /// Every core's metrics, for scrapes.
    metrics_hub: Arc<Hub<CoreMetrics>>,
    store: Arc<Store>,
    settings: Settings,
    api: Arc<ApiConfig>,
    ready: Arc<AtomicBool>,
    /// Client connections: node-wide and per-source counts.
    connections: Arc<Admission>,
    /// Every connection's body bound (follows `MOSTDB_MAX_VALUE_BYTES` at runtime).
    conn_limits: ConnLimits,
    addr: SocketAddr,
    membership: Arc<Membership>,
    anti_entropy: Arc<AntiEntropy>,
    /// What the expiry sweeper did.
    expiry: Arc<ExpiryStats>,
    /// The node's hint counters; `None`: hints are switched off.
    hint_stats: Option<Arc<HintStats>>,
    recovery: Arc<Recovery>,
    /// Who may open a peer link to this node.
    admission: Arc<PeerAdmission>,
    /// `MOSTDB_MAX_CLOCK_SKEW_MS` and what every core's clock and replica caught with it.
    clock_bound: Arc<SkewBound>,
    /// The highest clock ceiling earlier runs left, read before any core opens its clock.
    previous_ceiling: u64,
    /// `None`: plain HTTP.
    tls: Option<Arc<Tls>>,
    /// The runtime settings; every core keeps a [`View`] of them.
    live: Arc<Live>,
    /// The largest operation timeout ever in force on this node, in ms: what recovery waits.
    timeout_max_ms: u64,
    /// The node-wide view of every member: every core's links write it, the monitor folds it.
    health: Arc<Health>,
    /// Where unfinished Redis `SCAN`s stopped, for every core.
    scan_cursors: Arc<ScanCursors>,
}

impl Shared {
    /// What every core shares: steps 1 to 3 of [`start`].
    fn new(
        settings: &Settings,
        membership: Arc<Membership>,
        store: Arc<Store>,
        addr: SocketAddr,
        tls: Option<Arc<Tls>>,
        (hub, metrics_hub): (Hub<CoreReplica>, Hub<CoreMetrics>),
    ) -> Result<Shared, String> {
        // 1.
        let switches = settings.test_switches;
        for name in switches.off() {
            tracing::warn!("{name}=off: switched off (a test setting, never for production)");
        }
        let anti_entropy = Arc::new(AntiEntropy::new(store.clone(), switches.anti_entropy));
        let hint_stats = switches
            .hints
            .then(|| Arc::new(HintStats::new(membership.size())));
        // 2.
        let recovery = Arc::new(start_recovery(settings, &membership, &store)?);
        let previous_ceiling = clock::previous_ceiling(&settings.store_root)
            .map_err(|e| format!("cannot read the clock ceilings: {e}"))?;
        // 3.
        let admission = Arc::new(peer_admission(settings, &membership));
        let urls = membership.members.iter().map(|m| m.url.clone()).collect();
        let health = Health::new(
            store.info().node_id,
            urls,
            membership.self_index,
            membership.quorum(),
            settings.threads,
        );
        Ok(Shared {
            hub: Arc::new(hub),
            metrics_hub: Arc::new(metrics_hub),
            store,
            settings: settings.clone(),
            api: Arc::new(api_config(settings)),
            ready: Arc::new(AtomicBool::new(false)),
            connections: Arc::new(Admission::new(
                settings.max_connections,
                settings.max_connections_per_source,
            )),
            addr,
            membership,
            anti_entropy,
            expiry: Arc::default(),
            hint_stats,
            recovery,
            admission,
            clock_bound: SkewBound::new(settings.max_clock_skew_ms),
            previous_ceiling,
            tls,
            live: Live::new(settings.clone()),
            conn_limits: ConnLimits::new(settings.body_bytes_max()),
            timeout_max_ms: settings.timeout_ms,
            health: Arc::new(health),
            scan_cursors: Arc::default(),
        })
    }

    /// The runtime settings wired in: the largest timeout recorded before any takes effect
    /// (recovery waits it out, DESIGN §12), the anti-entropy interval and the body bound
    /// followed, the peers' URLs given to the admin routes.
    fn with_live(mut self, live: Arc<Live>) -> Result<Shared, String> {
        let root = self.settings.store_root.clone();
        let now = live.current();
        self.timeout_max_ms = recovery::timeout_high_water(&root, now.timeout_ms)
            .map_err(|e| format!("cannot record the timeout in {}: {e}", root.display()))?;
        live.before_change(move |new| {
            recovery::timeout_high_water(&root, new.timeout_ms)
                .map(drop)
                .map_err(|e| format!("cannot record the timeout in {}: {e}", root.display()))
        });
        self.anti_entropy
            .set_interval_ms(now.anti_entropy_interval_ms);
        let anti_entropy = self.anti_entropy.clone();
        live.on_change(move |_, new| anti_entropy.set_interval_ms(new.anti_entropy_interval_ms));
        self.conn_limits.set_body_bytes_max(now.body_bytes_max());
        let conn_limits = self.conn_limits.clone();
        live.on_change(move |_, new| conn_limits.set_body_bytes_max(new.body_bytes_max()));
        let mut api = (*self.api).clone();
        api.peer_urls = self
            .membership
            .peers()
            .map(|(_, m)| m.url.clone())
            .collect();
        api.peer_tls = self.tls.as_ref().and_then(|tls| tls.dialer());
        self.api = Arc::new(api);
        self.live = live;
        Ok(self)
    }

    /// The audit log the API records writes, admin actions and refusals in.
    fn with_audit(mut self, audit: Arc<AuditLog>) -> Shared {
        let mut api = (*self.api).clone();
        api.audit = audit;
        self.api = Arc::new(api);
        self
    }

    /// Step 1 of a core: its replica, with the links and hint queue its driver uses (made
    /// with the core's clock, which the links observe).
    fn open_replica(&self, core: usize) -> Result<CoreParts, String> {
        let settings = &self.settings;
        let identity = Rc::new(self.identity());
        let view = Rc::new(self.live.view());
        let mut links = Vec::new();
        let mut hints = None;
        let replica = CoreReplica::open(
            &self.store,
            core,
            settings.threads,
            &settings.store_root,
            (self.clock_bound.clone(), self.previous_ceiling),
            |hlc| {
                links = self.start_links(core, &identity, hlc);
                hints = self.open_hints(core);
                self.driver(&links, hints.clone())
                    .with_settings(view.clone())
            },
        )
        .map_err(|e| format!("core {core}: cannot open its clock: {e}"))?;
        Ok(CoreParts {
            replica: Rc::new(replica),
            links,
            hints,
            identity,
            view,
        })
    }

    /// Step 3 of a core: the API and the peer endpoint, on `replication`.
    fn port(
        self: &Arc<Self>,
        replication: &Rc<Replication>,
        identity: Rc<Identity>,
        links: &[Option<Rc<PeerLink>>],
        view: Rc<View>,
        metrics: Rc<CoreMetrics>,
    ) -> Port {
        let scraper = Scraper::new(
            self.metrics_hub.clone(),
            probes::node(self),
            Build {
                version: env!("CARGO_PKG_VERSION"),
                revision: crate::config::COMMIT,
            },
        );
        let peers = Rc::new(PeerEndpoint::new(
            replication.clone(),
            self.anti_entropy.clone(),
            self.recovery.clone(),
            self.health.clone(),
        ));
        let api = Api::new(
            replication.clone(),
            self.api.clone(),
            self.ready.clone(),
            identity,
            self.admission.clone(),
            Rc::new(self.cluster_view(links, peers.clone())),
        )
        .with_settings(view)
        .with_metrics(metrics, Rc::new(scraper));
        Port {
            api: Rc::new(api),
            peers,
            connections: self.connections.clone(),
        }
    }

    /// Step 4 of a core: hint replay (if this core keeps hints) and, on
    /// `ANTI_ENTROPY_CORE`, the expiry sweeper and the node's recovery then anti-entropy (if
    /// it has peers).
    fn spawn_tasks(
        self: &Arc<Self>,
        core: usize,
        hints: Option<Rc<Hints>>,
        links: &[Option<Rc<PeerLink>>],
        replication: &Rc<Replication>,
        shutdown: &Latch,
    ) {
        if let Some(hints) = hints {
            let timeout = Duration::from_millis(self.settings.timeout_ms);
            let names = self
                .membership
                .members
                .iter()
                .map(|m| m.url.clone())
                .collect();
            let links = dyn_links(links);
            let replay = hints::replay_named(hints, links, names, timeout, shutdown.clone());
            monoio::spawn(replay);
        }
        if core == MONITOR_CORE {
            let monitor = Monitor {
                health: self.health.clone(),
                links: links.iter().map(|l| l.as_deref().cloned()).collect(),
                ready: self.ready.clone(),
                addr: self.addr,
                audit: self.api.audit.clone(),
            };
            monoio::spawn(monitor::run(monitor, shutdown.clone()));
        }
        if core == ANTI_ENTROPY_CORE {
            monoio::spawn(expiry::run(
                replication.clone(),
                self.store.clone(),
                self.expiry.clone(),
                shutdown.clone(),
            ));
            let peer_links: Vec<PeerLink> = links.iter().flatten().map(|l| (**l).clone()).collect();
            if !peer_links.is_empty() {
                monoio::spawn(recover_then_converge(
                    self.clone(),
                    replication.clone(),
                    peer_links,
                    shutdown.clone(),
                ));
            }
        }
    }

    /// Step 5 of a core: its listener's caps, TLS and limits.
    fn listener_config(&self, core: usize) -> ListenerConfig {
        ListenerConfig {
            core,
            admission: self.connections.clone(),
            tls: self.tls.clone(),
            limits: self.conn_limits.clone(),
        }
    }

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
        .with_cas_mark(self.store.cas_mark().clone())
    }

    /// One link per peer for this core, indexed like the members (`None`: this node), each
    /// publishing what it sees into the node-wide view.
    fn start_links(
        &self,
        core: usize,
        identity: &Rc<Identity>,
        hlc: Rc<Hlc>,
    ) -> Vec<Option<Rc<PeerLink>>> {
        let host = self.settings.host;
        // Outgoing sockets bind to the node's own address when it has a specific one, so
        // per-link network rules can cut exactly one link.
        let bind_ip = (!host.is_unspecified()).then_some(host);
        self.membership
            .members
            .iter()
            .enumerate()
            .map(|(i, member)| {
                (!member.is_self).then(|| {
                    let config = LinkConfig {
                        addr: member.authority.clone(),
                        bind_ip,
                        identity: identity.clone(),
                        value_bytes_max: PEER_VALUE_BYTES_MAX,
                        admission: Some(self.admission.clone()),
                        tls: self.tls.as_ref().and_then(|tls| tls.dialer()),
                    };
                    let watched = Watched {
                        url: member.url.clone(),
                        slot: self.health.slot(core, i),
                    };
                    Rc::new(PeerLink::start_watched(config, hlc.clone(), Some(watched)))
                })
            })
            .collect()
    }

    /// The members as this core's links see them, for `GET /cluster`.
    fn cluster_view(
        &self,
        links: &[Option<Rc<PeerLink>>],
        endpoint: Rc<PeerEndpoint>,
    ) -> ClusterView {
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
            health: self.health.clone(),
            endpoint,
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

/// One core, on its own thread and event loop (see the steps above).
async fn core_main(
    core: usize,
    shared: Arc<Shared>,
    (inbox, metrics_inbox): (Inbox<CoreReplica>, Inbox<CoreMetrics>),
    shutdown: Latch,
    up: Startup,
) {
    // 1 and 2.
    let started = shared
        .open_replica(core)
        .and_then(|opened| Ok((opened, bind(core, shared.addr)?)));
    let (opened, tcp) = match started {
        Ok(ok) => ok,
        Err(err) => return up.report(Err(err)),
    };
    let CoreParts {
        replica,
        links,
        hints,
        identity,
        view,
    } = opened;
    // 3.
    monoio::spawn(inbox.run(replica.clone()));
    let metrics = Rc::new(CoreMetrics::default());
    metrics.set_storage(probes::storage(replica.clone()));
    monoio::spawn(metrics_inbox.run(metrics.clone()));
    let replication = Rc::new(
        Replication::new(core, replica, shared.hub.clone(), shared.store.clone())
            .with_recovery(shared.recovery.clone()),
    );
    let port = shared.port(&replication, identity, &links, view, metrics);
    // 4.
    shared.spawn_tasks(core, hints, &links, &replication, &shutdown);
    // 5.
    let resp = match shared.settings.resp_port {
        None => None,
        Some(resp_port) => {
            let addr = SocketAddr::new(shared.settings.host, resp_port);
            match bind(core, addr) {
                Ok(tcp) => Some((tcp, resp_port)),
                Err(err) => return up.report(Err(err)),
            }
        }
    };
    let resp = resp.map(|(tcp, resp_port)| {
        let commands = RedisCommands::new(port.api.clone(), shared.scan_cursors.clone(), resp_port);
        let listener = RespListener::new(
            tcp,
            core,
            shared.connections.clone(),
            shared.tls.clone(),
            Rc::new(commands),
        );
        monoio::spawn(listener.run(shutdown.clone()))
    });
    let listener = Listener::new(tcp, port, shared.listener_config(core));
    up.report(Ok(()));
    listener.run(&shutdown).await;
    if let Some(resp) = resp {
        resp.await;
    }
    for link in links.iter().flatten() {
        link.stop();
    }
}

/// One core's listener on the node's address; every core binds it (SO_REUSEPORT).
fn bind(core: usize, addr: SocketAddr) -> Result<TcpListener, String> {
    let opts = ListenerOpts::new().reuse_port(true).backlog(LISTEN_BACKLOG);
    TcpListener::bind_with_config(addr, &opts)
        .map_err(|e| format!("core {core}: cannot listen on {addr}: {e}"))
}

/// What step 1 of a core opens.
struct CoreParts {
    replica: Rc<CoreReplica>,
    /// Indexed like the members (`None`: this node).
    links: Vec<Option<Rc<PeerLink>>>,
    hints: Option<Rc<Hints>>,
    identity: Rc<Identity>,
    /// This core's copy of the runtime settings.
    view: Rc<View>,
}

/// What serves a connection on the node's port: the API, and behind a peer handshake's
/// `101`, the peer endpoint.
struct Port {
    api: Rc<Api>,
    peers: Rc<PeerEndpoint>,
    /// Counts the connections switched to peer links.
    connections: Arc<Admission>,
}

impl Service for Port {
    type Conn = api::Connection;

    fn connection(&self, source: SocketAddr) -> api::Connection {
        self.api.connection(source)
    }

    async fn upgraded(&self, conn: api::Connection, up: Upgraded, shutdown: &Latch) {
        // Only a peer handshake the API answered `101` upgrades a connection.
        if let Some(awaited) = conn.take_awaited() {
            let _counted = self.connections.count_upgraded();
            let peers = self.peers.clone();
            serve_peer(
                up.stream,
                up.leftover,
                awaited,
                peers,
                PEER_VALUE_BYTES_MAX,
                shutdown,
            )
            .await;
        }
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
            // The largest ever in force, not the one now (DESIGN §12).
            timeout: Duration::from_millis(shared.timeout_max_ms),
            root: shared.settings.store_root.clone(),
            ready: shared.ready.clone(),
        };
        let audit = shared.api.audit.clone();
        audit.record(recovery_event("started")).await;
        recovery::run(task, shutdown.clone()).await;
        if shared.recovery.is_recovering() {
            return;
        }
        audit.record(recovery_event("finished")).await;
    }
    if shared.anti_entropy.passes_on() {
        let ae = shared.anti_entropy.clone();
        antientropy::run(ae, replication, peer_links, shutdown).await;
    }
}

/// A recovery's start or end, for the audit log.
fn recovery_event(outcome: &'static str) -> AuditRecord<'static> {
    AuditRecord {
        op: "recovery",
        outcome,
        ..AuditRecord::default()
    }
}

fn dyn_links(links: &[Option<Rc<PeerLink>>]) -> Vec<Option<Rc<dyn Link>>> {
    links
        .iter()
        .map(|link| link.clone().map(|l| l as Rc<dyn Link>))
        .collect()
}
