//! The core threads: one named thread per core with its own event loop, started together
//! (each says when it is up, or why it cannot be) and stopped together (each is asked to stop,
//! then joined). What a core runs is the caller's: a function given the core's shutdown latch
//! and its [`Startup`] report.
//!
//! Must not import `http`, `api`, `replication` or `storage`.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use super::memory::MemoryTrim;
use super::{CoreRuntime, Latch};
use crate::limits::CORE_STACK_BYTES;

/// A running node: its core threads and the means to stop them.
pub struct Running {
    threads: Vec<JoinHandle<()>>,
    stops: Vec<flume::Sender<()>>,
    /// Cleared first on stop, so the node says it is not ready while its cores drain.
    ready: Arc<AtomicBool>,
    _memory_trim: Option<MemoryTrim>,
}

impl Running {
    /// Asks every core to stop accepting and finish its connections; waits for them.
    pub fn stop(self) {
        self.ready.store(false, Ordering::SeqCst);
        for stop in &self.stops {
            let _ = stop.send(());
        }
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// How a core tells [`start`] that it is up, or why it cannot be. Once, and before it serves.
pub struct Startup {
    up: mpsc::Sender<Result<(), String>>,
}

impl Startup {
    /// `Ok`: the core is up; `Err`: it cannot start (and [`start`] fails with this).
    pub fn report(self, result: Result<(), String>) {
        let _ = self.up.send(result);
    }
}

/// Starts one core thread per element of `mains`, in core order: each builds its event loop
/// and runs its main on it with its shutdown latch (set by [`Running::stop`]). Returns once
/// every core reported up, or the first error (the cores already started are stopped).
/// `ready` and `memory_trim` stop with the cores.
pub fn start<M, Fut>(
    mains: Vec<M>,
    ready: Arc<AtomicBool>,
    memory_trim: Option<MemoryTrim>,
) -> Result<Running, String>
where
    M: FnOnce(Latch, Startup) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let cores = mains.len();
    let (up_tx, up_rx) = mpsc::channel();
    let mut running = Running {
        threads: Vec::new(),
        stops: Vec::new(),
        ready,
        _memory_trim: memory_trim,
    };
    for (core, main) in mains.into_iter().enumerate() {
        let (stop_tx, stop_rx) = flume::bounded(1);
        let up = Startup { up: up_tx.clone() };
        let thread = std::thread::Builder::new()
            .name(format!("core-{core}"))
            .stack_size(CORE_STACK_BYTES)
            .spawn(move || run_core(core, main, stop_rx, up))
            .map_err(|e| format!("cannot start thread for core {core}: {e}"))?;
        running.threads.push(thread);
        running.stops.push(stop_tx);
    }
    for _ in 0..cores {
        match up_rx.recv() {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                running.stop();
                return Err(err);
            }
            Err(_) => return Err("a core thread died while starting".to_string()),
        }
    }
    Ok(running)
}

/// One core thread: its event loop, the latch its stop request sets, then its main.
fn run_core<M, Fut>(core: usize, main: M, stop: flume::Receiver<()>, up: Startup)
where
    M: FnOnce(Latch, Startup) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut runtime = match CoreRuntime::build() {
        Ok(rt) => rt,
        Err(err) => {
            up.report(Err(format!(
                "core {core}: cannot build its event loop: {err}"
            )));
            return;
        }
    };
    tracing::info!(core, driver = runtime.driver(), "core event loop up");
    runtime.block_on(async move {
        let shutdown = Latch::new();
        monoio::spawn({
            let shutdown = shutdown.clone();
            async move {
                // A stop request, or `Running` dropped without one.
                let _ = stop.recv_async().await;
                shutdown.set();
            }
        });
        main(shutdown, up).await
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_start_serve_until_stopped_and_join() {
        let stopped = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mains: Vec<_> = (0..2)
            .map(|_| {
                let stopped = stopped.clone();
                move |shutdown: Latch, up: Startup| async move {
                    up.report(Ok(()));
                    shutdown.wait().await;
                    stopped.fetch_add(1, Ordering::SeqCst);
                }
            })
            .collect();
        let ready = Arc::new(AtomicBool::new(true));
        let running = start(mains, ready.clone(), None).expect("started");
        assert_eq!(stopped.load(Ordering::SeqCst), 0);
        running.stop();
        assert_eq!(
            stopped.load(Ordering::SeqCst),
            2,
            "every core ran to its end"
        );
        assert!(!ready.load(Ordering::SeqCst), "stop clears readiness");
    }

    #[test]
    fn a_core_that_cannot_start_fails_the_start_and_stops_the_others() {
        let mains: Vec<_> = (0..3)
            .map(|core| {
                move |shutdown: Latch, up: Startup| async move {
                    if core == 1 {
                        return up.report(Err("core 1: no".to_string()));
                    }
                    up.report(Ok(()));
                    shutdown.wait().await;
                }
            })
            .collect();
        let err = start(mains, Arc::new(AtomicBool::new(false)), None).err();
        assert_eq!(err.as_deref(), Some("core 1: no"));
    }
}
