//! The audit log's writer thread: takes encoded lines from the queue, appends them to the
//! file in batches (one write and flush per batch, never per line), marks dropped records with
//! a gap line (at the head of the next batch: where the loss happened is known to within one
//! batch), reopens the file when asked (SIGHUP, after logrotate moved it) and rotates it by
//! size (`PATH` → `PATH.1` → … → `PATH.N`, the oldest removed). A failed write is logged once
//! and the batch counted as dropped; the thread goes on with the next one.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};

use super::record;
use super::Shared;
use crate::limits;

/// Lines written per batch at most (the rest wait for the next).
const BATCH_LINES_MAX: usize = 1024;

/// The writer thread. It ends by itself once every sender of its queue is gone, after writing
/// what is left; [`Handle::join`] waits for that (dropping the handle does not: a retired log,
/// replaced at runtime, drains on its own without blocking whichever core let it go).
pub(super) struct Handle {
    thread: std::thread::JoinHandle<()>,
}

impl Handle {
    /// Waits until the thread has written everything queued (its queue's senders dropped).
    pub(super) fn join(self) {
        let _ = self.thread.join();
    }
}

struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    bytes_max: u64,
    node_id: u64,
    shared: Arc<Shared>,
    failing: bool,
}

pub(super) fn start(
    path: PathBuf,
    bytes_max: u64,
    node_id: u64,
    receiver: Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) -> std::io::Result<Handle> {
    let (file, size) = open(&path)?;
    let mut writer = Writer {
        path,
        file,
        size,
        bytes_max,
        node_id,
        shared,
        failing: false,
    };
    let thread = std::thread::Builder::new()
        .name("mostdb-audit".into())
        .spawn(move || writer.run(&receiver))?;
    Ok(Handle { thread })
}

fn open(path: &Path) -> std::io::Result<(File, u64)> {
    let file = OpenOptions::new().create(true).append(true).open(path)?;
    let size = file.metadata()?.len();
    Ok((file, size))
}

impl Writer {
    fn run(&mut self, receiver: &Receiver<Vec<u8>>) {
        let idle = Duration::from_millis(limits::AUDIT_IDLE_WAKE_MS);
        loop {
            let first = match receiver.recv_timeout(idle) {
                Ok(line) => Some(line),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if self.shared.reopen.swap(false, Ordering::SeqCst) {
                self.reopen();
            }
            let Some(first) = first else {
                continue;
            };
            let mut batch = vec![first];
            while batch.len() < BATCH_LINES_MAX {
                match receiver.try_recv() {
                    Ok(line) => batch.push(line),
                    Err(_) => break,
                }
            }
            self.write_batch(batch);
        }
    }

    /// Writes a batch of lines (after a gap record, if records were dropped), rotating the
    /// file before the line that would take it past its size bound: every file but one that
    /// holds a single longer line stays within the bound, however large the batch.
    fn write_batch(&mut self, batch: Vec<Vec<u8>>) {
        let lines = batch.len() as u64;
        let queued: usize = batch.iter().map(Vec::len).sum();
        let dropped = self.shared.dropped_unmarked.swap(0, Ordering::Relaxed);
        let gap = (dropped > 0).then(|| record::gap(self.node_id, dropped));
        self.shared.queued_bytes.fetch_sub(queued, Ordering::SeqCst);
        let mut chunk = Vec::with_capacity(queued + 128);
        let mut result = Ok(());
        for line in gap.iter().chain(&batch) {
            let pending = self.size + chunk.len() as u64;
            if pending > 0 && pending + line.len() as u64 > self.bytes_max {
                result = result.and_then(|()| self.write_chunk(&mut chunk));
                self.rotate();
            }
            chunk.extend_from_slice(line);
        }
        match result.and_then(|()| self.write_chunk(&mut chunk)) {
            Ok(()) => {
                self.shared
                    .written_total
                    .fetch_add(lines, Ordering::Relaxed);
                self.failing = false;
            }
            Err(err) => {
                if !std::mem::replace(&mut self.failing, true) {
                    tracing::error!(path = %self.path.display(), %err, "cannot write the audit log");
                }
                self.shared
                    .dropped_unmarked
                    .fetch_add(lines + dropped, Ordering::Relaxed);
                self.shared
                    .dropped_total
                    .fetch_add(lines, Ordering::Relaxed);
            }
        }
    }

    /// Appends `chunk` to the file (and empties it).
    fn write_chunk(&mut self, chunk: &mut Vec<u8>) -> std::io::Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.file.write_all(chunk)?;
        self.file.flush()?;
        self.size += chunk.len() as u64;
        chunk.clear();
        Ok(())
    }

    /// Opens the path anew (logrotate moved the old file away, or it was deleted).
    fn reopen(&mut self) {
        match open(&self.path) {
            Ok((file, size)) => {
                self.file = file;
                self.size = size;
                tracing::info!(path = %self.path.display(), "audit log reopened");
            }
            Err(err) => {
                tracing::error!(path = %self.path.display(), %err, "cannot reopen the audit log")
            }
        }
    }

    /// `PATH.{N-1}` → `PATH.N`, …, `PATH` → `PATH.1`, then a new `PATH`.
    fn rotate(&mut self) {
        let numbered = |n: u32| {
            let mut name = self.path.clone().into_os_string();
            name.push(format!(".{n}"));
            PathBuf::from(name)
        };
        for n in (1..limits::AUDIT_FILES_KEPT).rev() {
            let _ = std::fs::rename(numbered(n), numbered(n + 1));
        }
        if let Err(err) = std::fs::rename(&self.path, numbered(1)) {
            tracing::error!(path = %self.path.display(), %err, "cannot rotate the audit log");
            return;
        }
        self.reopen();
    }
}
