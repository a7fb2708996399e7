//! The mostdb server binary: a boot script, one log line per step.
//!
//! 1. settings (environment and flags)
//! 2. logging
//! 3. signals
//! 4. file-descriptor limit
//! 5. TLS files
//! 6. the port (retried briefly while a dead predecessor still holds it; port 0: any free one)
//! 7. the store
//! 8. the cores
//! 9. serving: the address in the log and the port in `MOSTDB_PORT_FILE` (if set); the
//!    "ready" line follows once `/readyz` says so (the monitor logs it: after recovery, with
//!    a majority)
//! 10. serve until SIGTERM/SIGINT; SIGHUP re-reads the settings (`MOSTDB_CONFIG_FILE`)
//! 11. stop the cores, persist the store, mark a clean shutdown

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mostdb::audit::{Audit, AuditLog, AuditOptions, KeyMode};
use mostdb::cluster::Membership;
use mostdb::config::{self, Command, Live, LogFormat, LogLevel, Settings};
use mostdb::limits::{PORT_IN_USE_POLL_MS, PORT_IN_USE_RETRY_MS};
use mostdb::server;
use mostdb::storage::{Store, StoreOptions};
use mostdb::tls::Tls;

fn main() -> ExitCode {
    match config::parse_process() {
        Ok(Command::Run(settings, warnings)) => run(*settings, warnings),
        Ok(Command::Help(text)) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Command::Version(text)) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Ok(Command::Probe(settings, probe)) => run_probe(&settings, &probe),
        Ok(Command::Client(settings, args)) => {
            let url = std::env::var("MOSTDB_URL").ok().filter(|u| !u.is_empty());
            ExitCode::from(mostdb::cli::run(args, &settings, url) as u8)
        }
        Err(err) => {
            eprintln!("mostdb: {err}");
            ExitCode::from(config::EXIT_STATUS_USAGE as u8)
        }
    }
}

fn run(mut settings: Settings, warnings: Vec<String>) -> ExitCode {
    // What the sources said, to tell what a re-read (SIGHUP) changes.
    let sources = settings.clone();
    let log_filter = init_logging(&settings);
    log_start(&settings, &warnings);
    let signals = block_stop_signals();
    raise_fd_limit();

    let tls = match load_tls(&settings) {
        Ok(tls) => tls,
        Err(code) => return code,
    };

    let Some((addr, port_hold)) = claim_port(&settings) else {
        return ExitCode::FAILURE;
    };
    // From here on the node knows the port it got (its own member entry, `GET /cluster`).
    settings.port = addr.port();
    if !resp_port_free(&settings) {
        return ExitCode::FAILURE;
    }

    let Some(store) = open_store(&settings) else {
        return ExitCode::FAILURE;
    };

    let membership = match membership(&settings) {
        Ok(membership) => membership,
        Err(code) => return code,
    };
    let live = live_settings(&settings, log_filter);
    let Some(audit) = open_audit(&settings, &store, &live) else {
        return ExitCode::FAILURE;
    };
    let running = match server::start(
        &settings,
        membership,
        store.clone(),
        addr,
        tls,
        live.clone(),
        audit.clone(),
    ) {
        Ok(running) => running,
        Err(err) => {
            tracing::error!(%err, "cannot start");
            return ExitCode::FAILURE;
        }
    };
    drop(port_hold);
    if !announce_ready(&settings, addr) {
        running.stop();
        return ExitCode::FAILURE;
    }

    let signal = wait_for_stop_signal(&signals, sources, &live, &audit);
    tracing::info!(
        signal,
        "stopping: no new connections, finishing requests in flight"
    );
    running.stop();
    audit.close();
    if let Err(err) = store.close() {
        tracing::error!(%err, "could not persist the store on shutdown");
        return ExitCode::FAILURE;
    }
    tracing::info!("stopped cleanly");
    ExitCode::SUCCESS
}

/// The node's TLS from its PEM files (`None`: plain HTTP); a bad file is a usage error.
fn load_tls(settings: &Settings) -> Result<Option<Arc<Tls>>, ExitCode> {
    match Tls::from_settings(settings) {
        Ok(tls) => {
            if tls.is_some() {
                tracing::info!(mutual = settings.mtls(), "TLS on: the port speaks only TLS");
            }
            Ok(tls.map(Arc::new))
        }
        Err(err) => {
            eprintln!("mostdb: {err}");
            Err(ExitCode::from(config::EXIT_STATUS_USAGE as u8))
        }
    }
}

/// The members, logged; a bad member list is a usage error.
fn membership(settings: &Settings) -> Result<Arc<Membership>, ExitCode> {
    match Membership::from_settings(settings) {
        Ok(membership) => {
            log_membership(settings, &membership);
            Ok(Arc::new(membership))
        }
        Err(err) => {
            tracing::error!(%err, "bad cluster member list");
            Err(ExitCode::from(config::EXIT_STATUS_USAGE as u8))
        }
    }
}

/// `mostdb probe`: exit 0 when the node answers `/healthz` (or `/readyz`) with 200; else the
/// answer or the error on stderr, exit 1.
fn run_probe(settings: &Settings, probe: &config::Probe) -> ExitCode {
    let url = probe.url.clone().unwrap_or_else(|| {
        let host = match settings.host {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        format!("http://{}", SocketAddr::new(host, settings.port))
    });
    let tls = match settings.tls() {
        false => None,
        true => match Tls::from_settings(settings).map(|t| t.and_then(|t| t.dialer())) {
            Ok(Some(dialer)) => Some(dialer),
            Ok(None) => {
                eprintln!(
                    "mostdb probe: the node speaks TLS: MOSTDB_TLS_CA must be set to check it"
                );
                return ExitCode::FAILURE;
            }
            Err(err) => {
                eprintln!("mostdb probe: {err}");
                return ExitCode::FAILURE;
            }
        },
    };
    let headers = match settings.api_key_enable {
        true => vec![format!(
            "{}: {}",
            settings.api_key_name, settings.api_key_value
        )],
        false => Vec::new(),
    };
    let path = if probe.ready { "/readyz" } else { "/healthz" };
    let request = mostdb::http::probe::ProbeRequest::get(&url, path, headers, tls);
    match mostdb::http::probe::probe(&request) {
        Ok((200, body)) => {
            println!("{body}");
            ExitCode::SUCCESS
        }
        Ok((status, body)) => {
            eprintln!("mostdb probe: {url}{path} answered {status}: {body}");
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("mostdb probe: {url}{path}: {err}");
            ExitCode::FAILURE
        }
    }
}

/// The settings' warnings, then what is starting.
fn log_start(settings: &Settings, warnings: &[String]) {
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        threads = settings.threads,
        sync = settings.sync.as_str(),
        "mostdb starting"
    );
}

/// What the audit settings ask for (`node_id` on every record).
fn audit_options(settings: &Settings, node_id: u64) -> AuditOptions {
    let keys = match settings.audit_keys_hashed {
        true => KeyMode::hashed_with_secret(settings.cluster_secret.as_bytes()),
        false => KeyMode::Clear,
    };
    AuditOptions {
        path: settings.audit_log.clone(),
        keys,
        strict: settings.audit_strict,
        file_bytes_max: settings.audit_max_bytes,
        node_id,
    }
}

fn audit_changed(old: &Settings, new: &Settings) -> bool {
    (
        &old.audit_log,
        old.audit_keys_hashed,
        old.audit_strict,
        old.audit_max_bytes,
    ) != (
        &new.audit_log,
        new.audit_keys_hashed,
        new.audit_strict,
        new.audit_max_bytes,
    )
}

/// The audit log (`MOSTDB_AUDIT_LOG`), or an unused one, following its settings at runtime (a
/// change whose file cannot be opened is refused); `None` (logged) when its file cannot be
/// opened at start: a node told to audit does not run without.
fn open_audit(settings: &Settings, store: &Store, live: &Live) -> Option<Arc<AuditLog>> {
    let node_id = store.info().node_id;
    let audit = match Audit::open(audit_options(settings, node_id)) {
        Ok(audit) => Arc::new(AuditLog::new(audit)),
        Err(err) => {
            let path = settings.audit_log.as_deref().unwrap_or(Path::new(""));
            tracing::error!(path = %path.display(), %err, "cannot open the audit log");
            return None;
        }
    };
    log_audit(settings);
    live.before_change(|new| match &new.audit_log {
        // A file that cannot be opened refuses the change before anything is applied.
        Some(path) => std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(drop)
            .map_err(|e| format!("cannot open the audit log {}: {e}", path.display())),
        None => Ok(()),
    });
    let following = audit.clone();
    live.on_change(move |old, new| {
        if !audit_changed(old, new) {
            return;
        }
        match following.reconfigure(audit_options(new, node_id)) {
            Ok(()) => log_audit(new),
            Err(err) => tracing::error!(%err, "the audit log could not follow its new settings"),
        }
    });
    Some(audit)
}

fn log_audit(settings: &Settings) {
    match &settings.audit_log {
        Some(path) => tracing::info!(
            path = %path.display(),
            strict = settings.audit_strict,
            hashed_keys = settings.audit_keys_hashed,
            "audit log on"
        ),
        None => tracing::info!("audit log off"),
    }
}

/// The runtime settings (`PUT /admin/config`, SIGHUP), the log level following them.
fn live_settings(settings: &Settings, log_filter: LogFilter) -> Arc<Live> {
    let live = Live::new(settings.clone());
    live.on_change(move |old, new| {
        if old.log_level != new.log_level {
            log_filter.set(new.log_level);
        }
    });
    live
}

fn log_membership(settings: &Settings, membership: &Membership) {
    let peers: Vec<&str> = membership.peers().map(|(_, m)| m.url.as_str()).collect();
    tracing::info!(
        members = membership.size(),
        quorum = membership.quorum(),
        peers = ?peers,
        cluster_id = %settings.cluster_id,
        epoch = settings.cluster_epoch,
        "membership"
    );
    // How peer links are admitted is said once by the server, which decides it.
}

/// The log filter, which `MOSTDB_LOG_LEVEL` changes at runtime.
struct LogFilter(
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>,
);

impl LogFilter {
    fn set(&self, level: LogLevel) {
        match self.0.reload(log_filter(level)) {
            Ok(()) => tracing::warn!(level = level.as_filter_str(), "log level changed"),
            Err(err) => tracing::error!(%err, "cannot change the log level"),
        }
    }
}

fn log_filter(level: LogLevel) -> tracing_subscriber::EnvFilter {
    let mut directives = level.as_filter_str().to_string();
    for target in mostdb::storage::ENGINE_LOG_TARGETS {
        directives.push_str(&format!(",{target}=warn"));
    }
    tracing_subscriber::EnvFilter::new(directives)
}

fn init_logging(settings: &Settings) -> LogFilter {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let (filter, handle) = tracing_subscriber::reload::Layer::new(log_filter(settings.log_level));
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Text => registry
            .with(layer.with_ansi(std::io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => registry.with(layer.json()).init(),
    }
    LogFilter(handle)
}

/// The store, opened and logged; `None` (logged) when it cannot be opened.
fn open_store(settings: &Settings) -> Option<Arc<Store>> {
    let opened = Store::open(StoreOptions {
        root: settings.store_root.clone(),
        shards_if_new: settings.threads as u32,
        sync: settings.sync,
        disk_reserve_bytes: settings.disk_reserve_bytes,
    });
    match opened {
        Ok(store) => {
            log_store(settings, &store);
            Some(Arc::new(store))
        }
        Err(err) => {
            tracing::error!(store = %settings.store_root.display(), %err, "cannot open the store");
            None
        }
    }
}

fn log_store(settings: &Settings, store: &Store) {
    // The store logs what it opened; this adds what it means for durability.
    let info = store.info();
    if !info.created
        && !info.last_shutdown_clean
        && info.boot_changed
        && settings.sync == config::SyncMode::Os
    {
        tracing::warn!(
            "the machine restarted without a clean shutdown while MOSTDB_SYNC=os: writes acknowledged \
             just before the crash may be lost on this node (only MOSTDB_SYNC=always survives power loss)"
        );
    }
}

/// The address the cores will listen on. A given port is probed (see
/// [`probe_port_patiently`]). Port 0 asks the kernel for any free port, held by a bound socket
/// that does not listen (so it takes no connection) until every core's listener has bound the
/// same port beside it (SO_REUSEADDR on both): no other process can take it meanwhile. Drop
/// the socket once the cores listen. `None` (logged) when the port cannot be had.
fn claim_port(settings: &Settings) -> Option<(SocketAddr, Option<socket2::Socket>)> {
    let addr = SocketAddr::new(settings.host, settings.port);
    let claimed = match settings.port {
        0 => bind_any_port(addr).map(|(bound, socket)| (bound, Some(socket))),
        _ => probe_port_patiently(addr).map(|()| (addr, None)),
    };
    claimed
        .map_err(
            |err| tracing::error!(%addr, %err, "cannot listen: is another server using this port?"),
        )
        .ok()
}

/// Whether the Redis port, if on, is free (logged when not).
fn resp_port_free(settings: &Settings) -> bool {
    let Some(port) = settings.resp_port else {
        return true;
    };
    let addr = SocketAddr::new(settings.host, port);
    probe_port_patiently(addr)
        .map_err(|err| {
            tracing::error!(%addr, %err,
                "cannot listen for Redis clients: is another server using this port?")
        })
        .is_ok()
}

/// A free port on `addr`'s host, bound (not listening) by the socket returned.
fn bind_any_port(addr: SocketAddr) -> std::io::Result<(SocketAddr, socket2::Socket)> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        None,
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    let bound = socket.local_addr()?.as_socket();
    let bound = bound.ok_or_else(|| std::io::Error::other("bound to a non-IP address"))?;
    Ok((bound, socket))
}

/// Says the node serves: the port in `MOSTDB_PORT_FILE` (if set), then the address in the
/// log. `false` (logged) when the port file cannot be written. Not "ready": a node that
/// recovers or reaches no majority is not (`replication::peer::monitor` says when it is).
fn announce_ready(settings: &Settings, addr: SocketAddr) -> bool {
    if let Some(path) = &settings.port_file {
        if let Err(err) = write_port_file(path, addr.port()) {
            tracing::error!(file = %path.display(), %err, "cannot write the port file");
            return false;
        }
    }
    tracing::info!(%addr, context_path = %settings.context_path, "serving");
    true
}

/// Writes `port` (decimal, one line) to `path` whole: to a file beside it, then renamed, so a
/// reader never sees a part of it.
fn write_port_file(path: &Path, port: u16) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, format!("{port}\n"))?;
    std::fs::rename(&partial, path)
}

/// The port, retried for a bounded time while it is in use: right after a kill -9 the dead
/// predecessor's io_uring instance still holds its listener for a few tens of milliseconds
/// (the kernel tears the ring down asynchronously), and a supervisor restarts at once. A live
/// server on the port keeps it past the bound: that is still a clear error.
fn probe_port_patiently(addr: SocketAddr) -> std::io::Result<()> {
    let deadline = Instant::now() + Duration::from_millis(PORT_IN_USE_RETRY_MS);
    let mut logged = false;
    loop {
        match server::probe_port(addr) {
            Err(err)
                if err.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                if !logged {
                    tracing::info!(
                        %addr,
                        retry_ms = PORT_IN_USE_RETRY_MS,
                        "port in use, maybe by a process that just died; retrying"
                    );
                    logged = true;
                }
                std::thread::sleep(Duration::from_millis(PORT_IN_USE_POLL_MS));
            }
            result => return result,
        }
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP in this thread before any other starts, so every thread
/// inherits the mask and only [`wait_for_stop_signal`] ever sees them.
fn block_stop_signals() -> libc::sigset_t {
    // SAFETY: plain libc signal-set calls on a set owned by this function.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGHUP);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for SIGTERM or SIGINT. SIGHUP (a closed terminal, `kill -HUP`, logrotate) does not
/// stop the node: it re-reads the settings ([`reload_settings`]).
fn wait_for_stop_signal(
    set: &libc::sigset_t,
    mut sources: Settings,
    live: &Live,
    audit: &AuditLog,
) -> &'static str {
    loop {
        let mut signal: libc::c_int = 0;
        // SAFETY: `set` is a valid, initialised signal set; sigwait only writes `signal`.
        let rc = unsafe { libc::sigwait(set, &mut signal) };
        match (rc, signal) {
            (0, libc::SIGTERM) => return "SIGTERM",
            (0, libc::SIGINT) => return "SIGINT",
            (0, libc::SIGHUP) => {
                // logrotate moved the audit log away: write a new one.
                audit.reopen();
                reload_settings(&mut sources, live)
            }
            _ => return "unknown",
        }
    }
}

/// SIGHUP: reads the environment, the flags and the settings file again, and applies the
/// runtime settings whose value changed there since the last read; restart-only ones that
/// changed are logged as ignored. A bad file changes nothing.
fn reload_settings(sources: &mut Settings, live: &Live) {
    let reread = match config::parse_process() {
        Ok(Command::Run(settings, warnings)) => {
            for warning in &warnings {
                tracing::warn!("{warning}");
            }
            *settings
        }
        Ok(_) => return,
        Err(err) => {
            tracing::error!(%err, "SIGHUP: settings not reloaded");
            return;
        }
    };
    match live.reload(sources, &reread) {
        Ok((applied, ignored)) => {
            if !ignored.is_empty() {
                tracing::warn!(?ignored, "SIGHUP: these settings need a restart; ignored");
            }
            tracing::info!(?applied, "SIGHUP: settings reloaded");
            *sources = reread;
        }
        Err(err) => tracing::error!(%err, "SIGHUP: settings not reloaded"),
    }
}

/// Raises the soft limit on open files to the hard limit: every client connection is one.
fn raise_fd_limit() {
    // SAFETY: getrlimit/setrlimit with a valid, owned struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
