//! The Redis commands (DESIGN §13) on the same quorum, versions and outcomes as the HTTP
//! API: [`RedisCommands`] is what `resp` runs each command with.
//!
//! Errors keep the HTTP API's honesty. A definite failure is `-NOTMOST …` (nothing applied);
//! an unknown outcome `-INDETERMINATE …` (it may take effect), never a code client libraries
//! retry by themselves (`LOADING`, `TRYAGAIN`, `BUSY`: a replayed INCR would count twice).
//! `-LOADING` only while this node recovers and `-TRYAGAIN` only when storage is busy: in both
//! cases nothing was tried. `-NOSPACE` when the disk is full. Everything is a string: no
//! command answers `WRONGTYPE`; commands on other types are unknown, as Redis words it.

mod keys;
mod scan;
mod server;

use std::rc::Rc;

use super::Api;
use crate::limits::KEY_BYTES_MAX;
use crate::metrics::{self, Outcome};
use crate::replication::coordinator::CasDone;
use crate::replication::OpError;
use crate::resp::{Commands, Reply, Session, Step};

pub use scan::ScanCursors;

/// The Redis commands of one core, over its API.
pub struct RedisCommands {
    api: Rc<Api>,
    cursors: std::sync::Arc<ScanCursors>,
    /// The RESP port, for `INFO` and `CONFIG GET port`.
    port: u16,
}

impl RedisCommands {
    pub fn new(api: Rc<Api>, cursors: std::sync::Arc<ScanCursors>, port: u16) -> Self {
        RedisCommands { api, cursors, port }
    }
}

/// Why a command failed: written as one error line.
#[derive(Debug)]
pub(super) enum Failure {
    /// `-ERR …` and the like: the text after the dash.
    Said(String),
    /// The replication's failure.
    Op(OpError),
    /// A compare-and-set that others kept preempting: definite, nothing applied.
    Contended,
}

impl From<OpError> for Failure {
    fn from(err: OpError) -> Self {
        Failure::Op(err)
    }
}

pub(super) fn said(text: impl Into<String>) -> Failure {
    Failure::Said(text.into())
}

pub(super) const SYNTAX: &str = "ERR syntax error";
pub(super) const NOT_INTEGER: &str = "ERR value is not an integer or out of range";

impl Commands for RedisCommands {
    fn bulk_bytes_max(&self) -> usize {
        self.api.max_value_bytes().max(KEY_BYTES_MAX)
    }

    async fn run<'a>(
        &'a self,
        session: &'a mut Session,
        args: &'a [&'a [u8]],
        reply: &'a mut Reply<'_>,
    ) -> Step {
        let started = self.api.metrics.start();
        let mut name_buf = [0u8; 24];
        let name = upper(args[0], &mut name_buf);
        if !session.authenticated && self.api.resp_key_required() && !server::before_auth(name) {
            reply.error("NOAUTH Authentication required.");
            let outcome = Outcome::Unauthorized;
            self.api
                .metrics
                .record(metrics::Route::Redis, outcome, started);
            return Step::Continue;
        }
        // The key commands first: they are nearly all of the load.
        let done = match keys::run(self, name, args, reply).await {
            Some(done) => done,
            None => match server::run(self, session, name, args, reply).await {
                Some(done) => done,
                None => match scan::run(self, name, args, reply).await {
                    Some(done) => done,
                    None => {
                        reply.error(&unknown(args));
                        Ok(Step::Continue)
                    }
                },
            },
        };
        let (step, outcome) = match done {
            Ok(step) => (step, Outcome::Ok),
            Err(failure) => (Step::Continue, write_failure(reply, failure)),
        };
        self.api
            .metrics
            .record(metrics::Route::Redis, outcome, started);
        step
    }
}

/// The command's name in capitals, if it is short enough to be one.
fn upper<'b>(name: &[u8], buf: &'b mut [u8; 24]) -> &'b [u8] {
    if name.len() > buf.len() {
        return b"";
    }
    let upper = &mut buf[..name.len()];
    upper.copy_from_slice(name);
    upper.make_ascii_uppercase();
    upper
}

/// Redis's words for a command it does not know.
fn unknown(args: &[&[u8]]) -> String {
    let mut text = format!(
        "ERR unknown command '{}', with args beginning with: ",
        shown(args[0])
    );
    for arg in args.iter().skip(1).take(8) {
        text.push_str(&format!("'{}' ", shown(arg)));
    }
    text
}

/// An argument as an error line may show it (at most 128 bytes, no line breaks).
pub(super) fn shown(arg: &[u8]) -> String {
    String::from_utf8_lossy(&arg[..arg.len().min(128)]).replace(['\r', '\n'], " ")
}

pub(super) fn arity(name: &[u8]) -> Failure {
    said(format!(
        "ERR wrong number of arguments for '{}' command",
        shown(name).to_lowercase()
    ))
}

/// Writes the failure's error line; the outcome `/metrics` counts for it.
fn write_failure(reply: &mut Reply<'_>, failure: Failure) -> Outcome {
    let text = match failure {
        Failure::Said(text) => text,
        Failure::Contended => "NOTMOST contended by other writers, nothing applied".to_string(),
        Failure::Op(err) => op_error(&err),
    };
    reply.error(&text);
    match text.split(' ').next().unwrap_or_default() {
        "NOTMOST" => Outcome::NotMost,
        "INDETERMINATE" => Outcome::Indeterminate,
        "TRYAGAIN" => Outcome::Busy,
        "LOADING" => Outcome::NotReady,
        "NOSPACE" => Outcome::NoSpace,
        "NOAUTH" | "WRONGPASS" => Outcome::Unauthorized,
        _ if text.starts_with("ERR storage") => Outcome::Internal,
        _ => Outcome::BadRequest,
    }
}

/// The error line of a replication failure.
pub(super) fn op_error(err: &OpError) -> String {
    match err {
        OpError::NotMost {
            indeterminate: false,
        } => "NOTMOST no majority of the nodes agreed, nothing applied".to_string(),
        OpError::NotMost {
            indeterminate: true,
        } => indeterminate().to_string(),
        OpError::Busy => "TRYAGAIN storage is busy, nothing applied".to_string(),
        OpError::NoSpace => "NOSPACE no disk space, nothing applied".to_string(),
        OpError::Storage(detail) => format!("ERR storage: {detail}"),
        OpError::Unsupported(detail) => format!("ERR {detail}"),
    }
}

/// The error line of an unknown outcome.
#[cfg(not(feature = "planted-resp-retryable-indeterminate"))]
fn indeterminate() -> &'static str {
    "INDETERMINATE no majority yet, the write may or may not take effect"
}

/// The planted bug: an unknown outcome worded as an error clients retry by themselves.
#[cfg(feature = "planted-resp-retryable-indeterminate")]
fn indeterminate() -> &'static str {
    "TRYAGAIN the write may or may not take effect"
}

/// A CAS's failures as [`Failure`]s (its success and failed compare are the caller's).
pub(super) fn cas_failure(done: &CasDone) -> Option<Failure> {
    match done {
        CasDone::NotMost { contended: true } => Some(Failure::Contended),
        CasDone::NotMost { contended: false } => Some(Failure::Op(OpError::NotMost {
            indeterminate: false,
        })),
        CasDone::Indeterminate { .. } => Some(Failure::Op(OpError::NotMost {
            indeterminate: true,
        })),
        CasDone::Ok { .. } | CasDone::CompareFailed { .. } => None,
    }
}

/// A key as the store takes it: 1 to 8,192 bytes.
pub(super) fn key(arg: &[u8]) -> Result<Vec<u8>, Failure> {
    if arg.is_empty() || arg.len() > KEY_BYTES_MAX {
        return Err(said("ERR a key is 1 to 8192 bytes"));
    }
    Ok(arg.to_vec())
}

/// A whole number argument.
pub(super) fn integer(arg: &[u8]) -> Result<i64, Failure> {
    std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or(said(NOT_INTEGER))
}

impl Api {
    /// Whether RESP clients must `AUTH` (the API key is on).
    fn resp_key_required(&self) -> bool {
        match self.settings_now() {
            Some(now) => now.api_key_enable,
            None => self.config.api_key.is_some(),
        }
    }

    /// Whether `password` is the API key.
    fn resp_key_matches(&self, password: &[u8]) -> bool {
        match self.settings_now() {
            Some(now) => super::constant_time_eq(password, now.api_key_value.as_bytes()),
            None => self
                .config
                .api_key
                .as_ref()
                .is_some_and(|(_, expected)| super::constant_time_eq(password, expected)),
        }
    }

    /// Whether writes are fsynced before they are answered (`MOSTDB_SYNC=always`).
    fn sync_always(&self) -> bool {
        self.settings_now()
            .is_some_and(|now| now.sync == crate::config::SyncMode::Always)
    }

    /// A value as the store takes it: at most `MOSTDB_MAX_VALUE_BYTES`.
    fn resp_value(&self, arg: &[u8]) -> Result<Vec<u8>, Failure> {
        if arg.len() > self.max_value_bytes() {
            return Err(said("ERR the value is longer than MOSTDB_MAX_VALUE_BYTES"));
        }
        Ok(arg.to_vec())
    }
}
