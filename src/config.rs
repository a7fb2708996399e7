//! Settings from `MOSTDB_*` environment variables and command-line flags, validated once at
//! start. A leaf: imports only `crate::limits` and std (no logging either: warnings are
//! returned for the binary to log, errors for it to print before exiting with status 2).
//!
//! The environment names, defaults and quirks are the original's (`ORIGINAL.md` §1); each
//! setting also has a flag, and a flag wins over the environment, which wins over the optional
//! settings file (`MOSTDB_CONFIG_FILE`, TOML, `config/file.rs`). The table of settings is
//! `config/registry.rs`, the value parsers `config/values.rs`, runtime changes (a snapshot
//! behind a generation counter, DESIGN §12) `config/live.rs`; this file holds the wiring.

mod file;
mod live;
mod registry;
mod switches;
mod threads;
mod values;

pub use live::{describe, Change, ChangeError, Live, SettingState, View, CHANGE_NAMES_MAX};
pub use registry::{Reload, REDACTED};
pub use switches::TestSwitches;

use registry::{
    Key, API_KEY_VALUE_WELL_KNOWN, ENV_API_KEY_VALUE, ENV_API_KEY_VAULE, ENV_PREFIX, KEY_COUNT,
    SETTINGS,
};
use threads::default_threads;
#[cfg(test)]
use threads::threads_for;

use crate::limits;
use std::net::IpAddr;
use std::path::PathBuf;

/// Exit status of the binary when the command line or the environment is invalid.
pub const EXIT_STATUS_USAGE: i32 = 2;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every write reaches the OS before it is answered (survives kill -9, not power loss).
    Os,
    /// Every write is fsynced (group commit per loop turn) before it is answered.
    Always,
}

impl SyncMode {
    /// The setting's spelling (`os`, `always`), for logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            SyncMode::Os => "os",
            SyncMode::Always => "always",
        }
    }
}

/// How a write finds its version (DESIGN §3): the node's default (`MOSTDB_WRITE_MODE`), and
/// the path each write's state machine takes (a contended key goes safe whatever the default).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// One round trip, the version straight from the clock; concurrent writers to one key can
    /// make a write indeterminate.
    Fast,
    /// Read the versions of a majority first and take one above the largest: two round trips,
    /// never indeterminate under contention (only when replicas do not answer).
    Safe,
}

/// How log lines are written (`MOSTDB_LOG_FORMAT`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

impl LogFormat {
    pub fn as_str(&self) -> &'static str {
        match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    /// The level as a `tracing` filter directive (`"trace"` … `"error"`).
    pub fn as_filter_str(&self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }

    /// A level by name, any case, as the original accepts them: `FATAL` is `Error` (we have no
    /// fatal level), `WARNING` is `Warn`. For runtime changes of the level too.
    pub fn from_name(name: &str) -> Option<LogLevel> {
        values::log_level(name.trim()).ok()
    }
}

/// Every setting of a node, validated. `Settings::default()` is what an empty environment gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// `MOSTDB_STORE_ROOT`: data directory (non-empty path).
    pub store_root: PathBuf,
    /// `MOSTDB_HOST`: address the listeners bind to.
    pub host: IpAddr,
    /// `MOSTDB_SERVER_PORT`: 0..=65535; 0: any free port, chosen at start.
    pub port: u16,
    /// `MOSTDB_PORT_FILE`: where the node writes the port it listens on once it does.
    pub port_file: Option<PathBuf>,
    /// `MOSTDB_RESP_PORT`: the port of the Redis protocol; `None`: off.
    pub resp_port: Option<u16>,
    /// `MOSTDB_SERVER_URL`: this node's own URL as given (validated `http://host:port[/]`).
    pub server_url: Option<String>,
    /// `MOSTDB_CLUSTER_URLS`: every item as given (trimmed), each validated
    /// `http://host:port[/]`, no two alike; this node may or may not be among them.
    pub cluster_urls: Vec<String>,
    /// `MOSTDB_CONTEXT_PATH`, normalised: starts with `/`, no trailing or repeated `/`
    /// (e.g. `/mostdb`); `""` when configured as `/`, i.e. the routes sit at the root.
    pub context_path: String,
    pub log_level: LogLevel,
    pub api_key_enable: bool,
    /// A valid header name (RFC 9110 token).
    pub api_key_name: String,
    /// Visible ASCII and spaces, non-empty; never logged.
    pub api_key_value: String,
    /// 1..=`limits::THREADS_MAX`.
    pub threads: usize,
    pub sync: SyncMode,
    /// `VALUE_BYTES_MAX_LOWEST..=VALUE_BYTES_MAX_HIGHEST`.
    pub max_value_bytes: usize,
    /// `MOSTDB_TIMEOUT_MS`: the deadline of one client operation across the cluster.
    pub timeout_ms: u64,
    pub write_mode: WriteMode,
    /// `MOSTDB_MAX_CLOCK_SKEW_MS`: a version more than this ahead of a replica's physical clock
    /// is refused, and no clock observes beyond it (DESIGN §14).
    pub max_clock_skew_ms: u64,
    /// `MOSTDB_CLUSTER_SECRET` (never derived from the API key: clients are not peers); empty:
    /// peer links are admitted only from the member list's addresses. Never logged.
    pub cluster_secret: String,
    pub cluster_id: String,
    pub cluster_epoch: u64,
    /// `MOSTDB_DISK_RESERVE_BYTES`: writes are refused below this much free space.
    pub disk_reserve_bytes: u64,
    /// `MOSTDB_MAX_CONNECTIONS`: client connections open at once, node-wide.
    pub max_connections: usize,
    /// `MOSTDB_MAX_CONNECTIONS_PER_SOURCE`: client connections open at once from one address.
    pub max_connections_per_source: usize,
    /// `MOSTDB_TLS_CERT`: PEM certificate chain; with `tls_key`, the port speaks only TLS
    /// (to clients and peers). Set together with `tls_key` or not at all.
    pub tls_cert: Option<PathBuf>,
    /// `MOSTDB_TLS_KEY`: PEM private key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// `MOSTDB_TLS_CA`: PEM CA bundle for mutual TLS between nodes (needs `tls_cert`).
    pub tls_ca: Option<PathBuf>,
    /// `MOSTDB_AUDIT_LOG`: the audit log's file; `None`: no audit log.
    pub audit_log: Option<PathBuf>,
    /// `MOSTDB_AUDIT_KEYS=hash`: keys appear as a keyed hash (under the cluster secret).
    pub audit_keys_hashed: bool,
    /// `MOSTDB_AUDIT_STRICT`: a write waits for room in a full audit queue.
    pub audit_strict: bool,
    /// `MOSTDB_AUDIT_MAX_BYTES`: the audit log is rotated at this size.
    pub audit_max_bytes: u64,
    /// `MOSTDB_CONFIG_FILE`: the TOML settings file, re-read on SIGHUP.
    pub config_file: Option<PathBuf>,
    pub log_format: LogFormat,
    /// `MOSTDB_ANTI_ENTROPY_INTERVAL_MS`: how often replicas are compared with each peer.
    pub anti_entropy_interval_ms: u64,
    /// `MOSTDB_ADMIN_TOKEN`: the bearer token of the admin routes; empty: loopback only.
    /// Never logged.
    pub admin_token: String,
    /// Parts a test may switch off; all on unless the environment says otherwise.
    pub test_switches: TestSwitches,
}

impl Settings {
    /// The largest request body accepted: the largest value plus room for the key and JSON.
    pub fn body_bytes_max(&self) -> usize {
        self.max_value_bytes + limits::BODY_OVERHEAD_BYTES
    }

    /// Whether the port speaks TLS (certificate and key given); peers are then dialled over
    /// TLS too.
    pub fn tls(&self) -> bool {
        self.tls_cert.is_some() && self.tls_key.is_some()
    }

    /// Mutual TLS between nodes (`MOSTDB_TLS_CA` given): a peer proves itself with a
    /// certificate signed by that CA, and the peer upgrade is refused on a connection
    /// without one.
    pub fn mtls(&self) -> bool {
        self.tls() && self.tls_ca.is_some()
    }
}

impl Default for Settings {
    fn default() -> Settings {
        let no_input = Inputs::empty(default_threads());
        // The defaults are constants of this file, checked by the unit tests: not input.
        build(&no_input).expect("the built-in defaults are valid")
    }
}

/// The first words that make the binary the command-line client (`cli`).
pub const CLIENT_COMMANDS: [&str; 4] = ["kv", "cluster", "backup", "restore"];

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    /// Run the server with these settings; the warnings are for the binary to log.
    Run(Box<Settings>, Vec<String>),
    /// Print this usage text and exit 0.
    Help(String),
    /// Print this (`mostdb <version>`) and exit 0.
    Version(String),
    /// `mostdb probe [--url URL] [--ready]`: ask a node (by default this one, from the same
    /// settings) whether it is alive, or ready; exit 0 when it is.
    Probe(Box<Settings>, Probe),
    /// `mostdb kv …` or `mostdb cluster`: the command-line client (`cli`), with the settings
    /// the environment gives (API key, context path, TLS) and its arguments.
    Client(Box<Settings>, Vec<String>),
}

/// What `mostdb probe` asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// `http://host:port`; `None`: this node's own port on loopback (or on its host).
    pub url: Option<String>,
    /// `/readyz` instead of `/healthz`.
    pub ready: bool,
}

/// A bad command line or environment. Each one's `Display` is one line naming the setting,
/// the value given and what is expected; the binary prints it and exits with `EXIT_STATUS_USAGE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `name` is the environment variable or the flag as typed.
    #[error("{name}={value:?}: expected {expected}")]
    Invalid {
        name: String,
        value: String,
        expected: String,
    },
    /// Like `Invalid`, for a secret: the value is not repeated.
    #[error("{name} (value not shown): expected {expected}")]
    InvalidSecret { name: String, expected: String },
    /// One item (counted from 1) of a list setting is wrong.
    #[error("{name}={value:?}: item {index} {item:?} {problem}")]
    InvalidItem {
        name: String,
        value: String,
        index: usize,
        item: String,
        problem: String,
    },
    /// Two names for the same setting disagree (the values are not shown: they may be secrets).
    #[error("{first} and {second} are both set and differ: set only {first}")]
    Conflict {
        first: &'static str,
        second: &'static str,
    },
    /// The settings file cannot be read or is not a flat TOML table of `MOSTDB_*` settings.
    #[error("settings file {path}: {problem}")]
    File { path: String, problem: String },
    #[error("unknown flag {flag:?}{}; see --help", did_you_mean(.suggestion))]
    UnknownFlag {
        flag: String,
        suggestion: Option<&'static str>,
    },
    #[error("{flag} needs a value, as `{flag} VALUE` or `{flag}=VALUE`")]
    MissingValue { flag: String },
    #[error("unexpected argument {arg:?}{hint}; see --help")]
    UnexpectedArgument { arg: String, hint: &'static str },
}

fn did_you_mean(suggestion: &Option<&'static str>) -> String {
    match suggestion {
        Some(name) => format!(" (did you mean {name}?)"),
        None => String::new(),
    }
}

/// One value as given, with the name it was given under (env variable or flag as typed).
#[derive(Clone, Debug)]
struct Given {
    name: String,
    value: String,
}

/// The raw values, before validation: the environment overlaid with the flags.
struct Inputs {
    given: [Option<Given>; KEY_COUNT],
    /// `MOSTDB_API_KEY_VAULE`, until `apply_api_key_vaule` folds it in.
    api_key_vaule: Option<Given>,
    default_threads: usize,
    warnings: Vec<String>,
    test_switches: TestSwitches,
}

impl Inputs {
    fn empty(default_threads: usize) -> Inputs {
        Inputs {
            given: std::array::from_fn(|_| None),
            api_key_vaule: None,
            default_threads,
            warnings: Vec::new(),
            test_switches: TestSwitches::default(),
        }
    }
}

/// Reads the command line (without the program name) and the environment. Pure: the caller
/// passes both in, so tests need not touch the process; `parse_process` reads the real ones.
/// `--help` and `--version` win over any bad value elsewhere.
pub fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Command, ConfigError> {
    let mut args = args.into_iter().peekable();
    if args
        .peek()
        .is_some_and(|first| CLIENT_COMMANDS.contains(&first.as_str()))
    {
        let mut inputs = Inputs::empty(default_threads());
        read_env(env, &mut inputs);
        apply_api_key_vaule(&mut inputs, false)?;
        return Ok(Command::Client(Box::new(build(&inputs)?), args.collect()));
    }
    if args.next_if(|first| first == "probe").is_some() {
        let probe = read_probe_args(args)?;
        let mut inputs = Inputs::empty(default_threads());
        read_env(env, &mut inputs);
        apply_api_key_vaule(&mut inputs, false)?;
        return Ok(Command::Probe(Box::new(build(&inputs)?), probe));
    }
    let flags = match read_args(args)? {
        Args::Help => return Ok(Command::Help(usage(default_threads()))),
        Args::Version => return Ok(Command::Version(version())),
        Args::Flags(flags) => flags,
    };
    let mut inputs = Inputs::empty(default_threads());
    read_env(env, &mut inputs);
    let api_key_value_flag = flags[Key::ApiKeyValue as usize].is_some();
    for (index, given) in flags.into_iter().enumerate() {
        if given.is_some() {
            inputs.given[index] = given;
        }
    }
    read_config_file(&mut inputs)?;
    apply_api_key_vaule(&mut inputs, api_key_value_flag)?;
    let settings = build(&inputs)?;
    let mut warnings = inputs.warnings;
    warnings.extend(settings_warnings(&settings));
    Ok(Command::Run(Box::new(settings), warnings))
}

/// Fills in from `MOSTDB_CONFIG_FILE` (if given) what neither the environment nor a flag gave.
fn read_config_file(inputs: &mut Inputs) -> Result<(), ConfigError> {
    let Some(path) = setting(inputs, Key::ConfigFile, values::file_path)? else {
        return Ok(());
    };
    let (entries, warnings) = file::read(&path)?;
    inputs.warnings.extend(warnings);
    let vaule_from_env = inputs.api_key_vaule.is_some();
    for (name, value) in entries {
        let given = Given {
            name: format!("{name} (in {})", path.display()),
            value,
        };
        match SETTINGS.iter().position(|spec| spec.env == name) {
            Some(index) if index == Key::ApiKeyValue as usize && vaule_from_env => {}
            Some(index) if inputs.given[index].is_none() => inputs.given[index] = Some(given),
            Some(_) => {}
            None if inputs.api_key_vaule.is_none()
                && inputs.given[Key::ApiKeyValue as usize].is_none() =>
            {
                inputs.api_key_vaule = Some(given)
            }
            None => {}
        }
    }
    Ok(())
}

/// `parse` on this process's arguments and environment. Names or values that are not UTF-8
/// are converted lossily (so a bad value is reported rather than a panic).
pub fn parse_process() -> Result<Command, ConfigError> {
    let lossy = |s: std::ffi::OsString| s.to_string_lossy().into_owned();
    let args = std::env::args_os().skip(1).map(lossy);
    let env = std::env::vars_os().map(|(name, value)| (lossy(name), lossy(value)));
    parse(args, env)
}

/// `mostdb <version>`, as the original's `-v` prints it.
pub fn version() -> String {
    format!(
        "mostdb {} (commit {COMMIT}, built {BUILD_DATE})",
        env!("CARGO_PKG_VERSION")
    )
}

/// The commit this binary was built from (`unknown` outside a git checkout without
/// `MOSTDB_COMMIT`), set by `build.rs`.
pub const COMMIT: &str = env!("MOSTDB_COMMIT");
/// The day this binary was built (`YYYY-MM-DD`, UTC; `SOURCE_DATE_EPOCH` when given).
pub const BUILD_DATE: &str = env!("MOSTDB_BUILD_DATE");

enum Args {
    Help,
    Version,
    Flags(Box<[Option<Given>; KEY_COUNT]>),
}

fn read_args(args: impl IntoIterator<Item = String>) -> Result<Args, ConfigError> {
    let mut flags: [Option<Given>; KEY_COUNT] = std::array::from_fn(|_| None);
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" | "-help" | "help" => return Ok(Args::Help),
            "-v" | "-V" | "--version" | "-version" | "version" => return Ok(Args::Version),
            _ => {}
        }
        if !arg.starts_with('-') || arg == "-" || arg == "-d" {
            return Err(unexpected_argument(arg));
        }
        let (flag, inline_value) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_string(), Some(value.to_string())),
            None => (arg, None),
        };
        let Some(index) = SETTINGS
            .iter()
            .position(|spec| spec.flags.contains(&flag.as_str()))
        else {
            let suggestion = closest(
                &flag,
                SETTINGS.iter().flat_map(|spec| spec.flags.iter().copied()),
            );
            return Err(ConfigError::UnknownFlag { flag, suggestion });
        };
        // A flag right after a flag is a forgotten value, not a value (none starts with "--").
        let value = match inline_value {
            Some(value) => value,
            None => match args.next_if(|next| !next.starts_with("--")) {
                Some(value) => value,
                None => return Err(ConfigError::MissingValue { flag }),
            },
        };
        flags[index] = Some(Given { name: flag, value });
    }
    Ok(Args::Flags(Box::new(flags)))
}

/// `[--url URL] [--ready]` after `probe`.
fn read_probe_args(args: impl Iterator<Item = String>) -> Result<Probe, ConfigError> {
    let mut probe = Probe {
        url: None,
        ready: false,
    };
    let mut args = args.peekable();
    while let Some(arg) = args.next() {
        match arg.split_once('=') {
            _ if arg == "--ready" => probe.ready = true,
            Some(("--url", url)) => probe.url = Some(url.to_string()),
            None if arg == "--url" => match args.next() {
                Some(url) => probe.url = Some(url),
                None => return Err(ConfigError::MissingValue { flag: arg }),
            },
            _ => {
                return Err(ConfigError::UnexpectedArgument {
                    arg,
                    hint: " (mostdb probe takes --url URL and --ready)",
                })
            }
        }
    }
    Ok(probe)
}

fn unexpected_argument(arg: String) -> ConfigError {
    // The original's daemon commands: a service manager (systemd, Docker) does this now.
    let hint = match arg.as_str() {
        "-d" | "start" | "stop" | "restart" => {
            " (no daemon mode: run mostdb under a service manager)"
        }
        _ => "",
    };
    ConfigError::UnexpectedArgument { arg, hint }
}

/// Takes the `MOSTDB_*` variables; warns about unknown ones. An empty value counts as unset,
/// as in the original (and as `VAR=` lines in compose files mean).
fn read_env(env: impl IntoIterator<Item = (String, String)>, inputs: &mut Inputs) {
    for (name, value) in env {
        if !name.to_ascii_uppercase().starts_with(ENV_PREFIX) {
            continue;
        }
        let value = value.trim();
        let index = SETTINGS.iter().position(|spec| spec.env == name);
        if inputs.test_switches.take(&name, value) {
            continue;
        }
        if index.is_none() && name != ENV_API_KEY_VAULE {
            inputs.warnings.push(unknown_env_warning(&name));
            continue;
        }
        if value.is_empty() {
            continue;
        }
        let given = Some(Given {
            name: name.clone(),
            value: value.to_string(),
        });
        match index {
            Some(index) => inputs.given[index] = given,
            None => inputs.api_key_vaule = given,
        }
    }
}

/// Folds the original's misspelt `MOSTDB_API_KEY_VAULE` into the API key value, after the
/// flags are in: the flag wins over both names, and the two names must not disagree.
fn apply_api_key_vaule(inputs: &mut Inputs, from_flag: bool) -> Result<(), ConfigError> {
    let Some(vaule) = inputs.api_key_vaule.take() else {
        return Ok(());
    };
    let value = &mut inputs.given[Key::ApiKeyValue as usize];
    match value {
        _ if from_flag => Ok(()),
        Some(value) if value.value != vaule.value => Err(ConfigError::Conflict {
            first: ENV_API_KEY_VALUE,
            second: ENV_API_KEY_VAULE,
        }),
        Some(_) => Ok(()),
        None => {
            *value = Some(vaule);
            Ok(())
        }
    }
}

fn unknown_env_warning(name: &str) -> String {
    let known = SETTINGS
        .iter()
        .map(|spec| spec.env)
        .chain([ENV_API_KEY_VAULE]);
    let hint = did_you_mean(&closest(name, known));
    format!("unknown setting {name} ignored{hint}")
}

/// The candidate closest to `name`, if close enough to be a misspelling. Compared without
/// the `MOSTDB_` or `--` prefix and case, allowing more typos in longer names.
fn closest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let stem = |text: &str| {
        let upper = text.to_ascii_uppercase();
        let upper = upper.strip_prefix(ENV_PREFIX).unwrap_or(&upper);
        upper.trim_start_matches('-').to_string()
    };
    let name = stem(name);
    let distance_max = match name.len() {
        0..=4 => 1,
        5..=8 => 2,
        _ => 3,
    };
    candidates
        .map(|candidate| (values::edit_distance(&name, &stem(candidate)), candidate))
        .filter(|(distance, _)| *distance <= distance_max)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

/// Validates every setting: the given value, else the default.
fn build(inputs: &Inputs) -> Result<Settings, ConfigError> {
    Ok(Settings {
        store_root: setting(inputs, Key::StoreRoot, values::store_root)?,
        host: setting(inputs, Key::Host, values::host)?,
        port: setting(inputs, Key::Port, values::port)?,
        port_file: setting(inputs, Key::PortFile, values::file_path)?,
        resp_port: setting(inputs, Key::RespPort, values::optional_port)?,
        server_url: setting(inputs, Key::ServerUrl, values::server_url)?,
        cluster_urls: cluster_urls(inputs)?,
        context_path: setting(inputs, Key::ContextPath, values::context_path)?,
        log_level: setting(inputs, Key::LogLevel, values::log_level)?,
        api_key_enable: setting(inputs, Key::ApiKeyEnable, values::boolean)?,
        api_key_name: setting(inputs, Key::ApiKeyName, values::header_name)?,
        api_key_value: api_key_value(inputs)?,
        threads: threads(inputs)?,
        sync: setting(inputs, Key::Sync, values::sync_mode)?,
        max_value_bytes: setting(inputs, Key::MaxValueBytes, values::value_bytes_max)?,
        timeout_ms: setting(inputs, Key::TimeoutMs, values::timeout_ms)?,
        write_mode: setting(inputs, Key::WriteMode, values::write_mode)?,
        max_clock_skew_ms: setting(inputs, Key::MaxClockSkewMs, values::max_clock_skew_ms)?,
        cluster_secret: optional_secret(inputs, Key::ClusterSecret)?,
        cluster_id: setting(inputs, Key::ClusterId, values::cluster_id)?,
        cluster_epoch: setting(inputs, Key::ClusterEpoch, values::cluster_epoch)?,
        disk_reserve_bytes: setting(inputs, Key::DiskReserveBytes, values::disk_reserve_bytes)?,
        max_connections: setting(inputs, Key::MaxConnections, values::connections_max)?,
        max_connections_per_source: setting(
            inputs,
            Key::MaxConnectionsPerSource,
            values::connections_max,
        )?,
        tls_cert: setting(inputs, Key::TlsCert, values::file_path)?,
        tls_key: setting(inputs, Key::TlsKeyPem, values::file_path)?,
        tls_ca: setting(inputs, Key::TlsCa, values::file_path)?,
        audit_log: setting(inputs, Key::AuditLog, values::file_path)?,
        audit_keys_hashed: setting(inputs, Key::AuditKeys, values::audit_keys)?,
        audit_strict: setting(inputs, Key::AuditStrict, values::boolean)?,
        audit_max_bytes: setting(inputs, Key::AuditMaxBytes, values::audit_max_bytes)?,
        config_file: setting(inputs, Key::ConfigFile, values::file_path)?,
        log_format: setting(inputs, Key::LogFormat, values::log_format)?,
        anti_entropy_interval_ms: setting(
            inputs,
            Key::AntiEntropyIntervalMs,
            values::anti_entropy_interval_ms,
        )?,
        admin_token: optional_secret(inputs, Key::AdminToken)?,
        test_switches: inputs.test_switches,
    })
    .and_then(|settings| check_tls(inputs, settings))
    .and_then(|settings| check_audit(inputs, settings))
}

/// The TLS settings that only make sense together. The files themselves are read by
/// `tls::Tls::from_settings` at start.
/// Hashed audit keys are keyed with the cluster secret: without one there is no key.
fn check_audit(inputs: &Inputs, settings: Settings) -> Result<Settings, ConfigError> {
    if settings.audit_keys_hashed && settings.cluster_secret.is_empty() {
        let (name, value) = raw(inputs, Key::AuditKeys);
        return Err(ConfigError::Invalid {
            name: name.to_string(),
            value: value.to_string(),
            expected: "MOSTDB_CLUSTER_SECRET to be set too (it keys the hash)".to_string(),
        });
    }
    Ok(settings)
}

fn check_tls(inputs: &Inputs, settings: Settings) -> Result<Settings, ConfigError> {
    let needs = |key: Key, expected: &str| {
        let (name, value) = raw(inputs, key);
        Err(ConfigError::Invalid {
            name: name.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        })
    };
    match (&settings.tls_cert, &settings.tls_key, &settings.tls_ca) {
        (Some(_), None, _) => needs(
            Key::TlsCert,
            "MOSTDB_TLS_KEY to be set too (the certificate's private key)",
        ),
        (None, Some(_), _) => needs(
            Key::TlsKeyPem,
            "MOSTDB_TLS_CERT to be set too (the key's certificate chain)",
        ),
        (None, None, Some(_)) => needs(
            Key::TlsCa,
            "MOSTDB_TLS_CERT and MOSTDB_TLS_KEY to be set too (this node's own certificate)",
        ),
        (Some(_), Some(_), None) if settings.cluster_urls.len() > 1 => needs(
            Key::TlsCert,
            "MOSTDB_TLS_CA to be set too when MOSTDB_CLUSTER_URLS names peers (they are \
             dialled over TLS and verified against it)",
        ),
        _ => Ok(settings),
    }
}

/// The value to validate for `key` and the name to blame for it: as given, else the default.
fn raw(inputs: &Inputs, key: Key) -> (&str, &str) {
    let spec = &SETTINGS[key as usize];
    match &inputs.given[key as usize] {
        Some(given) => (given.name.as_str(), given.value.as_str()),
        None => (spec.env, spec.default.unwrap_or("")),
    }
}

fn setting<T>(
    inputs: &Inputs,
    key: Key,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, ConfigError> {
    let (name, value) = raw(inputs, key);
    parse(value).map_err(|expected| ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        expected,
    })
}

fn threads(inputs: &Inputs) -> Result<usize, ConfigError> {
    match &inputs.given[Key::Threads as usize] {
        Some(_) => setting(inputs, Key::Threads, values::threads),
        None => Ok(inputs.default_threads),
    }
}

fn api_key_value(inputs: &Inputs) -> Result<String, ConfigError> {
    let (name, value) = raw(inputs, Key::ApiKeyValue);
    values::api_key_value(value).map_err(|expected| ConfigError::InvalidSecret {
        name: name.to_string(),
        expected,
    })
}

/// A secret as given, or none (empty). The peer-link secret is never derived from the API
/// key: every client holds that key, and a client must not be able to join as a peer.
fn optional_secret(inputs: &Inputs, key: Key) -> Result<String, ConfigError> {
    let (name, value) = raw(inputs, key);
    if value.is_empty() {
        return Ok(String::new());
    }
    values::api_key_value(value).map_err(|expected| ConfigError::InvalidSecret {
        name: name.to_string(),
        expected,
    })
}

fn cluster_urls(inputs: &Inputs) -> Result<Vec<String>, ConfigError> {
    let (name, value) = raw(inputs, Key::ClusterUrls);
    values::url_list(value).map_err(|(index, item, problem)| ConfigError::InvalidItem {
        name: name.to_string(),
        value: value.to_string(),
        index,
        item,
        problem,
    })
}

/// Valid but risky combinations.
fn settings_warnings(settings: &Settings) -> Vec<String> {
    let mut warnings = Vec::new();
    if settings.api_key_enable && settings.api_key_value == API_KEY_VALUE_WELL_KNOWN {
        warnings.push(format!(
            "MOSTDB_API_KEY_ENABLE is true but the API key is the well-known default \
             {API_KEY_VALUE_WELL_KNOWN:?}: set {ENV_API_KEY_VALUE} to a secret"
        ));
    }
    if !settings.cluster_secret.is_empty()
        && settings.api_key_enable
        && settings.cluster_secret == settings.api_key_value
    {
        warnings.push(
            "MOSTDB_CLUSTER_SECRET is the API key: every client can then join as a peer; \
             give the peers a secret of their own"
                .to_string(),
        );
    }
    warnings
}

/// The `--help` text: every setting with its flag, environment variable and default.
fn usage(default_threads: usize) -> String {
    let mut text = format!(
        "{} - a leaderless, replicated key-value database\n\n\
         Usage: mostdb [--FLAG VALUE | --FLAG=VALUE]...\n       \
         mostdb --help | --version\n       \
         mostdb probe [--url URL] [--ready]\n       \
         mostdb kv get|set|del|cas|list ... | mostdb cluster   (the client; mostdb kv --help)\n\n\
         Every setting is read from its environment variable; a flag wins over it.\n\n",
        version()
    );
    for spec in &SETTINGS {
        let flags = spec.flags.join(", ");
        let default = match spec.default {
            Some("") => "none".to_string(),
            Some(default) => default.to_string(),
            None => format!(
                "the number of cores ({default_threads} here), at most {}",
                limits::THREADS_MAX
            ),
        };
        text.push_str(&format!(
            "  {flags} {metavar}\n      {env}, default {default}\n      {about}\n",
            metavar = spec.metavar,
            env = spec.env,
            about = spec.about.replace('\n', "\n      "),
        ));
    }
    text
}

#[cfg(test)]
mod tests;
