//! Giving memory back to the system after a storm: freed connection buffers stay in the
//! allocator's arenas (glibc returns the top of a heap only), so a node that once held
//! thousands of connections would keep their memory resident for good. A watcher thread looks
//! at the connection count and, once it has fallen far below its peak, asks the allocator to
//! release its free pages (`malloc_trim`). Never on the request path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::limits::{TRIM_CHECK_INTERVAL_MS, TRIM_CONNECTIONS_DROP};

/// The watcher thread; stops (within one interval) when dropped.
pub struct MemoryTrim {
    stop: Arc<AtomicBool>,
}

impl MemoryTrim {
    /// Watches `open_connections` (read every `TRIM_CHECK_INTERVAL_MS`).
    pub fn start(open_connections: impl Fn() -> usize + Send + 'static) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("memory-trim".into())
            .spawn(move || {
                let mut peak = 0;
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(TRIM_CHECK_INTERVAL_MS));
                    let open = open_connections();
                    peak = peak.max(open);
                    if peak - open >= TRIM_CONNECTIONS_DROP {
                        release_free_memory();
                        peak = open;
                    }
                }
            })?;
        Ok(MemoryTrim { stop })
    }
}

impl Drop for MemoryTrim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Returns the allocator's free pages to the system, in every arena.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions; it locks each arena while it works.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released, "returned free memory to the system");
    }
}
