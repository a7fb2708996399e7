//! The table of settings: every `MOSTDB_*` name, its flags, default, help line and whether it
//! can change while the node runs; and [`render`], a setting's current value as text (what
//! `GET /admin/config` shows and a runtime change starts from). Imports only `config`.

use super::{LogLevel, Settings, WriteMode};
use Reload::{Restart, Runtime};

/// The settings, in the order of the `SETTINGS` table (checked at compile time below).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Key {
    StoreRoot,
    Host,
    Port,
    PortFile,
    RespPort,
    ServerUrl,
    ClusterUrls,
    ContextPath,
    LogLevel,
    Threads,
    Sync,
    MaxValueBytes,
    ApiKeyEnable,
    ApiKeyName,
    ApiKeyValue,
    TimeoutMs,
    WriteMode,
    MaxClockSkewMs,
    ClusterSecret,
    ClusterId,
    ClusterEpoch,
    DiskReserveBytes,
    MaxConnections,
    MaxConnectionsPerSource,
    TlsCert,
    TlsKeyPem,
    TlsCa,
    ConfigFile,
    LogFormat,
    AntiEntropyIntervalMs,
    AdminToken,
    AuditLog,
    AuditKeys,
    AuditStrict,
    AuditMaxBytes,
}

pub(super) const KEY_COUNT: usize = 35;

/// Whether a setting can change while the node runs (`PUT /admin/config`, SIGHUP).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Applied at once on every core.
    Runtime,
    /// Read once at start: changing it needs a restart.
    Restart,
}

/// One setting: its names, its default (parsed like any given value) and its help line.
pub(super) struct Spec {
    pub(super) key: Key,
    pub(super) reload: Reload,
    pub(super) env: &'static str,
    /// The first one is the one shown in the help.
    pub(super) flags: &'static [&'static str],
    pub(super) metavar: &'static str,
    /// `None` only for the thread count, whose default is the number of cores.
    pub(super) default: Option<&'static str>,
    pub(super) about: &'static str,
}

pub(super) const ENV_PREFIX: &str = "MOSTDB_";
/// The original's misspelt name for `MOSTDB_API_KEY_VALUE`, still accepted.
pub(super) const ENV_API_KEY_VAULE: &str = "MOSTDB_API_KEY_VAULE";
pub(super) const ENV_API_KEY_VALUE: &str = "MOSTDB_API_KEY_VALUE";
/// The original's default key: anyone who has read its README knows it.
pub(super) const API_KEY_VALUE_WELL_KNOWN: &str = "mostdb";

#[rustfmt::skip]
pub(super) const SETTINGS: [Spec; KEY_COUNT] = [
    Spec { key: Key::StoreRoot, reload: Restart, env: "MOSTDB_STORE_ROOT", flags: &["--store-root"], metavar: "PATH",
           default: Some("/opt/mostdb"), about: "data directory, created if missing" },
    Spec { key: Key::Host, reload: Restart, env: "MOSTDB_HOST", flags: &["--host"], metavar: "ADDR",
           default: Some("0.0.0.0"), about: "IP address to listen on (:: for every IPv6 address)" },
    Spec { key: Key::Port, reload: Restart, env: "MOSTDB_SERVER_PORT", flags: &["--port", "--server-port"], metavar: "N",
           default: Some("5379"), about: "port for clients and peers, 1-65535; 0: any free port" },
    Spec { key: Key::PortFile, reload: Restart, env: "MOSTDB_PORT_FILE", flags: &["--port-file"], metavar: "PATH",
           default: Some(""), about: "once listening, write the port to this file (for port 0)" },
    Spec { key: Key::RespPort, reload: Restart, env: "MOSTDB_RESP_PORT", flags: &["--resp-port"], metavar: "N",
           default: Some(""), about: "port for Redis clients (RESP), 1-65535; empty: off" },
    Spec { key: Key::ServerUrl, reload: Restart, env: "MOSTDB_SERVER_URL", flags: &["--server-url"], metavar: "URL",
           default: Some(""), about: "this node's own URL, http://host:port (optional)" },
    Spec { key: Key::ClusterUrls, reload: Restart, env: "MOSTDB_CLUSTER_URLS", flags: &["--cluster-urls"], metavar: "LIST",
           default: Some(""), about: "every node's URL, separated by ';' or ','; empty: a single node" },
    Spec { key: Key::ContextPath, reload: Restart, env: "MOSTDB_CONTEXT_PATH", flags: &["--context-path"], metavar: "PATH",
           default: Some("/mostdb"), about: "prefix of the API routes, e.g. /mostdb/set" },
    Spec { key: Key::LogLevel, reload: Runtime, env: "MOSTDB_LOG_LEVEL", flags: &["--log-level"], metavar: "LEVEL",
           default: Some("INFO"), about: "TRACE, DEBUG, INFO, WARN or ERROR (FATAL: ERROR), any case" },
    Spec { key: Key::Threads, reload: Restart, env: "MOSTDB_THREADS", flags: &["--threads"], metavar: "N",
           default: None, about: "worker threads, one per core" },
    Spec { key: Key::Sync, reload: Restart, env: "MOSTDB_SYNC", flags: &["--sync"], metavar: "MODE",
           default: Some("os"), about: "os: a write reaches the OS before it is answered (survives a \
           crash of the process);\nalways: it is fsynced (survives a crash of the machine)" },
    Spec { key: Key::MaxValueBytes, reload: Runtime, env: "MOSTDB_MAX_VALUE_BYTES", flags: &["--max-value-bytes"],
           metavar: "SIZE", default: Some("16MiB"), about: "largest value, in bytes or with a suffix:\n\
           K/KiB, M/MiB, G/GiB (x1024), KB/MB/GB (x1000); from 1KiB to 512MiB" },
    Spec { key: Key::ApiKeyEnable, reload: Runtime, env: "MOSTDB_API_KEY_ENABLE", flags: &["--api-key-enable"],
           metavar: "BOOL", default: Some("false"), about: "require the API key on every request \
           (true/false/1/0)" },
    Spec { key: Key::ApiKeyName, reload: Runtime, env: "MOSTDB_API_KEY_NAME", flags: &["--api-key-name"], metavar: "NAME",
           default: Some("X-MOSTDB-AUTH"), about: "header that carries the API key" },
    Spec { key: Key::ApiKeyValue, reload: Runtime, env: ENV_API_KEY_VALUE, flags: &["--api-key-value"], metavar: "KEY",
           default: Some(API_KEY_VALUE_WELL_KNOWN), about: "the API key (the original's misspelt \
           MOSTDB_API_KEY_VAULE is read too);\nchange it when the key is enabled" },
    Spec { key: Key::TimeoutMs, reload: Runtime, env: "MOSTDB_TIMEOUT_MS", flags: &["--timeout-ms"], metavar: "MS",
           default: Some("1500"), about: "deadline of one operation across the cluster, in ms \
           (50-60000)" },
    Spec { key: Key::WriteMode, reload: Runtime, env: "MOSTDB_WRITE_MODE", flags: &["--write-mode"], metavar: "MODE",
           default: Some("fast"), about: "fast: one round trip per write;\nsafe: read versions \
           first (two round trips, never indeterminate under contention)" },
    Spec { key: Key::MaxClockSkewMs, reload: Restart, env: "MOSTDB_MAX_CLOCK_SKEW_MS", flags: &["--max-clock-skew-ms"],
           metavar: "MS", default: Some("60000"), about: "refuse versions more than this ahead of \
           this node's clock, in ms\n(5000-86400000); a node whose clock is further ahead gets \
           its writes refused" },
    Spec { key: Key::ClusterSecret, reload: Restart, env: "MOSTDB_CLUSTER_SECRET", flags: &["--cluster-secret"],
           metavar: "SECRET", default: Some(""), about: "shared by every node (and no client), \
           authenticates peer links;\ndefault: none, and then only the member list's addresses \
           may open peer links" },
    Spec { key: Key::ClusterId, reload: Restart, env: "MOSTDB_CLUSTER_ID", flags: &["--cluster-id"], metavar: "NAME",
           default: Some("mostdb"), about: "name every node of one cluster shares (letters, digits, \
           '-', '_', '.')" },
    Spec { key: Key::ClusterEpoch, reload: Restart, env: "MOSTDB_CLUSTER_EPOCH", flags: &["--cluster-epoch"],
           metavar: "N", default: Some("1"), about: "configuration epoch: raise it on every node \
           when the member list changes" },
    Spec { key: Key::DiskReserveBytes, reload: Restart, env: "MOSTDB_DISK_RESERVE_BYTES", flags: &["--disk-reserve-bytes"],
           metavar: "SIZE", default: Some("16MiB"), about: "free space kept on the store's volume: \
           below it (plus what memtables will\nflush) writes are refused with NoSpace and reads go \
           on; sizes as for MOSTDB_MAX_VALUE_BYTES" },
    Spec { key: Key::MaxConnections, reload: Restart, env: "MOSTDB_MAX_CONNECTIONS", flags: &["--max-connections"],
           metavar: "N", default: Some("16384"), about: "client connections open at once; at the \
           cap the longest-idle one is closed\nto admit a new one" },
    Spec { key: Key::MaxConnectionsPerSource, reload: Restart, env: "MOSTDB_MAX_CONNECTIONS_PER_SOURCE",
           flags: &["--max-connections-per-source"], metavar: "N", default: Some("1024"),
           about: "client connections open at once from one IP address (raise it behind a proxy)" },
    Spec { key: Key::TlsCert, reload: Restart, env: "MOSTDB_TLS_CERT", flags: &["--tls-cert"], metavar: "PATH",
           default: Some(""), about: "PEM certificate chain; with MOSTDB_TLS_KEY the port speaks \
           only TLS (https://),\nto clients and peers; none: plain HTTP" },
    Spec { key: Key::TlsKeyPem, reload: Restart, env: "MOSTDB_TLS_KEY", flags: &["--tls-key"], metavar: "PATH",
           default: Some(""), about: "PEM private key of MOSTDB_TLS_CERT" },
    Spec { key: Key::TlsCa, reload: Restart, env: "MOSTDB_TLS_CA", flags: &["--tls-ca"], metavar: "PATH",
           default: Some(""), about: "PEM CA bundle: mutual TLS between nodes (each presents a \
           certificate signed by it);\nneeded with TLS when there are peers" },
    Spec { key: Key::ConfigFile, reload: Restart, env: "MOSTDB_CONFIG_FILE", flags: &["--config-file"],
           metavar: "PATH", default: Some(""), about: "TOML file of MOSTDB_* settings (the environment \
           wins over it, flags over both);\nre-read on SIGHUP: changed runtime settings are applied" },
    Spec { key: Key::LogFormat, reload: Restart, env: "MOSTDB_LOG_FORMAT", flags: &["--log-format"],
           metavar: "FORMAT", default: Some("text"), about: "text: one line per event; json: one \
           JSON object per line" },
    Spec { key: Key::AntiEntropyIntervalMs, reload: Runtime, env: "MOSTDB_ANTI_ENTROPY_INTERVAL_MS",
           flags: &["--anti-entropy-interval-ms"], metavar: "MS", default: Some("5000"),
           about: "how often replicas are compared with each peer, in ms (1000-60000)" },
    Spec { key: Key::AdminToken, reload: Runtime, env: "MOSTDB_ADMIN_TOKEN", flags: &["--admin-token"],
           metavar: "TOKEN", default: Some(""), about: "bearer token of the /admin routes; none: \
           they answer only clients on loopback" },
    Spec { key: Key::AuditLog, reload: Runtime, env: "MOSTDB_AUDIT_LOG", flags: &["--audit-log"],
           metavar: "PATH", default: Some(""), about: "append a JSON line per write and refused \
           authentication to this file;\nnone: no audit log" },
    Spec { key: Key::AuditKeys, reload: Runtime, env: "MOSTDB_AUDIT_KEYS", flags: &["--audit-keys"],
           metavar: "MODE", default: Some("clear"), about: "clear: keys as sent; hash: a keyed hash \
           of each key (needs MOSTDB_CLUSTER_SECRET)" },
    Spec { key: Key::AuditStrict, reload: Runtime, env: "MOSTDB_AUDIT_STRICT", flags: &["--audit-strict"],
           metavar: "BOOL", default: Some("false"), about: "when the audit queue is full, a \
           write waits for room (true) or its record is dropped\nand counted (false)" },
    Spec { key: Key::AuditMaxBytes, reload: Runtime, env: "MOSTDB_AUDIT_MAX_BYTES",
           flags: &["--audit-max-bytes"], metavar: "SIZE", default: Some("64MiB"), about: "rotate \
           the audit log at this size (PATH.1 ... PATH.5 kept); sizes as for MOSTDB_MAX_VALUE_BYTES" },
];

// `Inputs` is indexed by `Key as usize`: the table must list the keys in declaration order.
const _: () = {
    let mut i = 0;
    while i < KEY_COUNT {
        assert!(SETTINGS[i].key as usize == i);
        i += 1;
    }
};

/// What `GET /admin/config` shows instead of a secret that is set.
pub const REDACTED: &str = "<redacted>";

/// Whether the setting's value is a secret (never shown, never logged).
pub(super) fn is_secret(key: Key) -> bool {
    matches!(key, Key::ApiKeyValue | Key::ClusterSecret | Key::AdminToken)
}

/// The setting's value in `settings` as text that its parser accepts back (secrets included:
/// the caller redacts).
pub(super) fn render(settings: &Settings, key: Key) -> String {
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    };
    let s = settings;
    match key {
        Key::StoreRoot => s.store_root.display().to_string(),
        Key::Host => s.host.to_string(),
        Key::Port => s.port.to_string(),
        Key::PortFile => path(&s.port_file),
        Key::RespPort => s.resp_port.map(|p| p.to_string()).unwrap_or_default(),
        Key::ServerUrl => s.server_url.clone().unwrap_or_default(),
        Key::ClusterUrls => s.cluster_urls.join(","),
        Key::ContextPath if s.context_path.is_empty() => "/".to_string(),
        Key::ContextPath => s.context_path.clone(),
        Key::LogLevel => log_level_name(s.log_level).to_string(),
        Key::Threads => s.threads.to_string(),
        Key::Sync => s.sync.as_str().to_string(),
        Key::MaxValueBytes => s.max_value_bytes.to_string(),
        Key::ApiKeyEnable => s.api_key_enable.to_string(),
        Key::ApiKeyName => s.api_key_name.clone(),
        Key::ApiKeyValue => s.api_key_value.clone(),
        Key::TimeoutMs => s.timeout_ms.to_string(),
        Key::WriteMode => write_mode_name(s.write_mode).to_string(),
        Key::MaxClockSkewMs => s.max_clock_skew_ms.to_string(),
        Key::ClusterSecret => s.cluster_secret.clone(),
        Key::ClusterId => s.cluster_id.clone(),
        Key::ClusterEpoch => s.cluster_epoch.to_string(),
        Key::DiskReserveBytes => s.disk_reserve_bytes.to_string(),
        Key::MaxConnections => s.max_connections.to_string(),
        Key::MaxConnectionsPerSource => s.max_connections_per_source.to_string(),
        Key::TlsCert => path(&s.tls_cert),
        Key::TlsKeyPem => path(&s.tls_key),
        Key::TlsCa => path(&s.tls_ca),
        Key::ConfigFile => path(&s.config_file),
        Key::LogFormat => s.log_format.as_str().to_string(),
        Key::AntiEntropyIntervalMs => s.anti_entropy_interval_ms.to_string(),
        Key::AdminToken => s.admin_token.clone(),
        Key::AuditLog => path(&s.audit_log),
        Key::AuditKeys => if s.audit_keys_hashed { "hash" } else { "clear" }.to_string(),
        Key::AuditStrict => s.audit_strict.to_string(),
        Key::AuditMaxBytes => s.audit_max_bytes.to_string(),
    }
}

fn log_level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "TRACE",
        LogLevel::Debug => "DEBUG",
        LogLevel::Info => "INFO",
        LogLevel::Warn => "WARN",
        LogLevel::Error => "ERROR",
    }
}

fn write_mode_name(mode: WriteMode) -> &'static str {
    match mode {
        WriteMode::Fast => "fast",
        WriteMode::Safe => "safe",
    }
}
