//! The audit log (`MOSTDB_AUDIT_LOG`, off by default): one JSON line per write, per admin
//! action, per refused authentication and per membership or recovery event, on the node that
//! took the request. Each line says when, which node, the operation (the route's name), the
//! key (in clear, or with `MOSTDB_AUDIT_KEYS=hash` a keyed hash of it), the client's address,
//! the outcome, the version and the duration. Never a value, an API key, a token or a secret.
//!
//! Lines are encoded on the core that took the request and handed to one writer thread
//! ([`writer`]) through a queue bounded in records and bytes: off the event loop. When the
//! queue is full a record is dropped and counted, and the writer marks the gap with a record
//! of its own; with `MOSTDB_AUDIT_STRICT=true` the write waits for room instead (bounded).
//! The file is reopened on SIGHUP (logrotate) and rotated by size. [`AuditLog`] is what the
//! node holds: the current log, replaced at runtime when its settings change.
//!
//! Must not import `http`, `api`, `replication`, `storage`, `runtime` or `server`.

mod log;
mod record;
mod writer;

pub use log::AuditLog;
pub use record::{AuditRecord, KeyMode};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::limits;

/// How the audit log is set up (from the settings).
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// `None`: no audit log.
    pub path: Option<PathBuf>,
    pub keys: KeyMode,
    pub strict: bool,
    /// A file is rotated once it holds this many bytes.
    pub file_bytes_max: u64,
    /// This node's id, on every record.
    pub node_id: u64,
}

/// What the queue and the writer share.
struct Shared {
    queued_bytes: AtomicUsize,
    /// Records dropped since the writer last wrote a gap record.
    dropped_unmarked: AtomicU64,
    dropped_total: AtomicU64,
    written_total: AtomicU64,
    reopen: AtomicBool,
}

/// The node's audit log: cheap to clone around (`Arc`), a no-op when off.
pub struct Audit {
    sender: Option<crossbeam_channel::Sender<Vec<u8>>>,
    shared: Arc<Shared>,
    keys: KeyMode,
    strict: bool,
    node_id: u64,
    _writer: Option<writer::Handle>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("on", &self.is_on())
            .field("keys", &self.keys)
            .field("strict", &self.strict)
            .finish()
    }
}

/// The audit log's counters.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditStats {
    pub written: u64,
    pub dropped: u64,
}

impl Audit {
    /// An audit log that records nothing.
    pub fn off() -> Audit {
        Audit {
            sender: None,
            shared: Arc::new(Shared::default()),
            keys: KeyMode::Clear,
            strict: false,
            node_id: 0,
            _writer: None,
        }
    }

    /// Opens (creates or appends to) the file and starts the writer thread.
    pub fn open(options: AuditOptions) -> std::io::Result<Audit> {
        let Some(path) = options.path.clone() else {
            return Ok(Audit::off());
        };
        let (mut audit, start) = Audit::paused(&options, path);
        audit._writer = Some(start()?);
        Ok(audit)
    }

    /// The log with its queue, and what starts its writer (tests start it late, to fill the
    /// queue first).
    fn paused(
        options: &AuditOptions,
        path: PathBuf,
    ) -> (Audit, impl FnOnce() -> std::io::Result<writer::Handle>) {
        let shared = Arc::new(Shared::default());
        let (sender, receiver) = crossbeam_channel::bounded(limits::AUDIT_QUEUE_RECORDS_MAX);
        let audit = Audit {
            sender: Some(sender),
            shared: shared.clone(),
            keys: options.keys.clone(),
            strict: options.strict,
            node_id: options.node_id,
            _writer: None,
        };
        let (bytes_max, node_id) = (options.file_bytes_max, options.node_id);
        let start = move || writer::start(path, bytes_max, node_id, receiver, shared);
        (audit, start)
    }

    pub fn is_on(&self) -> bool {
        self.sender.is_some()
    }

    /// Asks the writer to reopen its file (after logrotate moved it away): on SIGHUP.
    pub fn reopen(&self) {
        self.shared.reopen.store(true, Ordering::SeqCst);
    }

    /// Stops taking records and waits until the writer has written every one queued.
    pub fn close(mut self) {
        self.sender = None;
        if let Some(writer) = self._writer.take() {
            writer.join();
        }
    }

    pub fn stats(&self) -> AuditStats {
        AuditStats {
            written: self.shared.written_total.load(Ordering::Relaxed),
            dropped: self.shared.dropped_total.load(Ordering::Relaxed),
        }
    }

    /// Queues one record. Best effort: a full queue drops it (counted). In strict mode the
    /// caller waits (asynchronously, on its own core) for room, up to a bound.
    pub async fn record(&self, record: AuditRecord<'_>) {
        let Some(sender) = &self.sender else {
            return;
        };
        let line = record.encode(self.node_id, &self.keys);
        let mut waited = Duration::ZERO;
        let mut line = Some(line);
        while let Some(bytes) = line.take() {
            match self.try_queue(sender, bytes) {
                Ok(()) => return,
                Err(bytes)
                    if self.strict
                        && waited.as_millis() < limits::AUDIT_STRICT_WAIT_MS_MAX as u128 =>
                {
                    let pause = Duration::from_millis(limits::AUDIT_STRICT_RETRY_MS);
                    monoio::time::sleep(pause).await;
                    waited += pause;
                    line = Some(bytes);
                }
                Err(_) => {
                    if self.strict {
                        tracing::error!("audit queue full for {waited:?}: a record was dropped");
                    }
                    self.shared.dropped_unmarked.fetch_add(1, Ordering::Relaxed);
                    self.shared.dropped_total.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Queues `bytes` if the queue has room in records and bytes; gives them back if not.
    fn try_queue(
        &self,
        sender: &crossbeam_channel::Sender<Vec<u8>>,
        bytes: Vec<u8>,
    ) -> Result<(), Vec<u8>> {
        let len = bytes.len();
        let before = self.shared.queued_bytes.fetch_add(len, Ordering::SeqCst);
        if before + len > limits::AUDIT_QUEUE_BYTES_MAX {
            self.shared.queued_bytes.fetch_sub(len, Ordering::SeqCst);
            return Err(bytes);
        }
        sender.try_send(bytes).map_err(|err| {
            self.shared.queued_bytes.fetch_sub(len, Ordering::SeqCst);
            err.into_inner()
        })
    }
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            queued_bytes: AtomicUsize::new(0),
            dropped_unmarked: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            written_total: AtomicU64::new(0),
            reopen: AtomicBool::new(false),
        }
    }
}

#[cfg(test)]
mod tests;
