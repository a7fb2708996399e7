//! STUB — being written (config helper). Settings from `MOSTDB_*` environment variables and flags.
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SyncMode {
    /// Every write reaches the OS before it is answered (survives kill -9, not power loss).
    Os,
    /// Every write is fsynced (group commit per loop turn) before it is answered.
    Always,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub store_root: PathBuf,
    pub host: IpAddr,
    pub port: u16,
    pub server_url: Option<String>,
    pub cluster_urls: Vec<String>,
    pub context_path: String,
    pub log_level: LogLevel,
    pub api_key_enable: bool,
    pub api_key_name: String,
    pub api_key_value: String,
    pub threads: usize,
    pub sync: SyncMode,
    pub max_value_bytes: usize,
}
