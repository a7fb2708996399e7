//! Free space on the store's volume, watched against a reserve, so that a full disk is a state
//! (writes refused with `NoSpace`, reads served, writes resumed by themselves once space is
//! freed) and never an `ENOSPC` inside fjall: a failed flush poisons a shard's journal, after
//! which the node must stop (DESIGN §4: it cannot promise that an accepted write is kept).
//!
//! A watcher thread measures the volume (`statvfs`) every `DISK_CHECK_INTERVAL_MS` and keeps
//! one number: the bytes that may still be written. That is the free space less the reserve
//! (`MOSTDB_DISK_RESERVE_BYTES`) and less the bytes still in memtables: their flush writes that
//! much again as tables before the journal behind them is deleted (when only they stand in the
//! way, the watcher flushes them at once). The write path only loads that number (no
//! syscall, nothing shared written but a counter of refusals).
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fjall::{Database, Keyspace};

use crate::limits::{DISK_CHECK_INTERVAL_MS, DISK_RESUME_MARGIN_BYTES};

/// What the volume looked like at the last check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpaceReport {
    /// Bytes free for this process on the store's volume.
    pub available_bytes: u64,
    /// `MOSTDB_DISK_RESERVE_BYTES`.
    pub reserve_bytes: u64,
    /// Bytes in memtables, to be written as tables by their flush.
    pub unflushed_bytes: u64,
    /// Writes are refused until enough space is free again.
    pub low: bool,
}

/// The shared view of the store's free space. Cheap to read from any core.
#[derive(Debug)]
pub struct DiskSpace {
    root: PathBuf,
    reserve_bytes: u64,
    available: AtomicU64,
    unflushed: AtomicU64,
    /// Bytes that may still be written: free less reserve less unflushed (0 when low).
    writable: AtomicU64,
    low: AtomicBool,
    /// Writes refused for lack of space, counted by every core.
    refused: AtomicU64,
}

impl DiskSpace {
    /// Measures the volume of `root` once; `Err` when it cannot be measured at all.
    pub fn new(root: &Path, reserve_bytes: u64) -> std::io::Result<DiskSpace> {
        let space = DiskSpace {
            root: root.to_path_buf(),
            reserve_bytes,
            available: AtomicU64::new(0),
            unflushed: AtomicU64::new(0),
            writable: AtomicU64::new(0),
            low: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        };
        space.update(available_bytes(root)?, 0);
        Ok(space)
    }

    /// Whether a write of about `bytes` fits above the reserve. A write that does not fit
    /// marks the store low until the next measurement finds room again (with the margin): the
    /// volume is at the brim, whatever size the next write has.
    pub fn admits(&self, bytes: usize) -> bool {
        let fits = !self.low.load(Ordering::Relaxed)
            && self.writable.load(Ordering::Relaxed) > bytes as u64;
        if !fits {
            self.refused.fetch_add(1, Ordering::Relaxed);
            if !self.low.swap(true, Ordering::Relaxed) {
                self.writable.store(0, Ordering::Relaxed);
                log_change(true, &self.report());
            }
        }
        fits
    }

    /// Whether writes are refused now.
    pub fn is_low(&self) -> bool {
        self.low.load(Ordering::Relaxed)
    }

    pub fn report(&self) -> SpaceReport {
        SpaceReport {
            available_bytes: self.available.load(Ordering::Relaxed),
            reserve_bytes: self.reserve_bytes,
            unflushed_bytes: self.unflushed.load(Ordering::Relaxed),
            low: self.is_low(),
        }
    }

    /// Writes refused for lack of space since start.
    pub fn refused_writes(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes a new measurement. Low below the reserve; back to normal only with
    /// `DISK_RESUME_MARGIN_BYTES` to spare, so a volume at the brim does not flap.
    fn update(&self, available: u64, unflushed: u64) {
        let needed = self.reserve_bytes.saturating_add(unflushed);
        let writable = available.saturating_sub(needed);
        let was_low = self.low.load(Ordering::Relaxed);
        let low = if was_low {
            writable < DISK_RESUME_MARGIN_BYTES
        } else {
            writable == 0
        };
        self.available.store(available, Ordering::Relaxed);
        self.unflushed.store(unflushed, Ordering::Relaxed);
        self.writable
            .store(if low { 0 } else { writable }, Ordering::Relaxed);
        self.low.store(low, Ordering::Relaxed);
        if low != was_low {
            log_change(low, &self.report());
        }
    }

    /// Measures again now: the volume, and what the shards hold in memtables. When only
    /// memtables keep the store below its reserve, and the volume has room for their flush,
    /// they are flushed now (a memtable flushes by itself only when full): the flush writes
    /// them as tables and frees their journals, so writes can resume.
    pub fn refresh(&self, shards: &[(Database, Keyspace)]) -> std::io::Result<()> {
        let unflushed = shards.iter().map(|(db, _)| db.write_buffer_size()).sum();
        let available = available_bytes(&self.root)?;
        self.update(available, unflushed);
        if self.is_low() && unflushed > 0 && available >= unflushed {
            for (_, keyspace) in shards {
                if let Err(err) = keyspace.rotate_memtable() {
                    tracing::warn!(%err, "cannot flush a memtable to make room");
                }
            }
        }
        Ok(())
    }
}

fn log_change(low: bool, report: &SpaceReport) {
    let (free_mib, reserve_mib, unflushed_mib) = (
        report.available_bytes >> 20,
        report.reserve_bytes >> 20,
        report.unflushed_bytes >> 20,
    );
    if low {
        tracing::warn!(
            free_mib,
            reserve_mib,
            unflushed_mib,
            "disk almost full: refusing writes (NoSpace) until space is freed; reads go on"
        );
    } else {
        tracing::warn!(
            free_mib,
            reserve_mib,
            "disk space freed: taking writes again"
        );
    }
}

/// Bytes an unprivileged writer may still use on the volume of `path`.
fn available_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other("path contains a NUL byte"))?;
    // SAFETY: statvfs writes only into `stat`, which lives for the call; the path is a valid
    // NUL-terminated string.
    let stat = unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        stat
    };
    // The fields are 32-bit on some targets, 64-bit on this one.
    #[allow(clippy::useless_conversion)]
    let (blocks, block_bytes) = (u64::from(stat.f_bavail), u64::from(stat.f_frsize));
    Ok(blocks.saturating_mul(block_bytes))
}

/// The watcher thread; stops (within one interval) when dropped.
pub(super) struct SpaceWatch {
    stop: Arc<AtomicBool>,
}

impl SpaceWatch {
    pub(super) fn start(
        space: Arc<DiskSpace>,
        shards: Vec<(Database, Keyspace)>,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("disk-watch".into())
            .spawn(move || {
                let mut failing = false;
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(DISK_CHECK_INTERVAL_MS));
                    match space.refresh(&shards) {
                        Ok(()) => failing = false,
                        Err(err) if !failing => {
                            failing = true;
                            tracing::warn!(%err, "cannot measure the store's free space");
                        }
                        Err(_) => {}
                    }
                }
            })?;
        Ok(SpaceWatch { stop })
    }
}

impl Drop for SpaceWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn space(reserve: u64) -> DiskSpace {
        DiskSpace::new(Path::new("/"), reserve).expect("statvfs /")
    }

    #[test]
    fn below_the_reserve_writes_are_refused_and_counted() {
        let s = space(16 * MIB);
        s.update(100 * MIB, 0);
        assert!(s.admits(1024));
        s.update(10 * MIB, 0);
        assert!(s.is_low());
        assert!(!s.admits(1));
        assert_eq!(s.refused_writes(), 1);
    }

    #[test]
    fn a_write_that_does_not_fit_marks_the_store_low() {
        let s = space(16 * MIB);
        s.update(100 * MIB, 0);
        assert!(!s.admits(90 * MIB as usize), "larger than what is left");
        assert!(s.is_low() && !s.admits(1));
        s.update(100 * MIB, 0);
        assert!(s.admits(1), "the next measurement finds room again");
    }

    #[test]
    fn memtables_to_flush_count_against_the_space() {
        let s = space(16 * MIB);
        s.update(40 * MIB, 30 * MIB);
        assert!(s.is_low(), "their flush would eat into the reserve");
        s.update(40 * MIB, 0);
        assert!(!s.is_low());
    }

    #[test]
    fn writes_resume_only_with_a_margin() {
        let s = space(16 * MIB);
        s.update(15 * MIB, 0);
        assert!(s.is_low());
        s.update(16 * MIB + DISK_RESUME_MARGIN_BYTES - 1, 0);
        assert!(s.is_low(), "no flapping at the brim");
        s.update(16 * MIB + DISK_RESUME_MARGIN_BYTES, 0);
        assert!(!s.is_low());
        assert!(s.admits(1));
    }

    #[test]
    fn a_real_volume_can_be_measured() {
        let s = space(0);
        assert!(s.report().available_bytes > 0);
    }
}
