//! Cores: one monoio runtime per thread, the cross-core hop to a shard's owner, the core
//! threads' start and stop ([`threads`]), shutdown.
//!
//! Each core runs its own event loop (io_uring where the kernel and seccomp allow it, epoll
//! otherwise). Work for another core travels as a boxed job over that core's bounded,
//! lock-free inbox and its answer comes back the same way ([`hop`]); nothing on the hot path
//! takes a lock shared between cores. Must not import `http`, `api`, `replication` or `storage`: the per-core
//! state a job receives is a type parameter.

pub mod hop;
pub mod join;
pub mod latch;
pub mod memory;
pub mod threads;

pub use hop::{CoreGone, Hub, Inbox, Job};
pub use join::{join_all, Local};
pub use latch::Latch;
pub use threads::{Running, Startup};

use std::future::Future;

/// Ring entries of an io_uring runtime (monoio's default; 256 is its minimum).
const URING_ENTRIES: u32 = 1024;
/// Threads in each core's blocking pool (fsyncs, clock ceilings): one is enough to keep
/// group commits of the core's shards going while the loop serves requests.
const BLOCKING_THREADS_PER_CORE: usize = 1;

type UringRuntime = monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
>;
type EpollRuntime = monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>>;

/// The event loop of one core, whichever driver it got.
pub enum CoreRuntime {
    Fusion(UringRuntime),
    Epoll(EpollRuntime),
}

impl CoreRuntime {
    /// Builds the runtime for one core: monoio's Fusion driver (io_uring, or epoll when
    /// io_uring is unavailable), and if building that fails outright (e.g. a small memlock
    /// limit on an old kernel), the epoll driver.
    pub fn build() -> std::io::Result<CoreRuntime> {
        let fusion = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .with_entries(URING_ENTRIES)
            .enable_timer()
            .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(
                BLOCKING_THREADS_PER_CORE,
            )))
            .build();
        match fusion {
            Ok(rt) => Ok(CoreRuntime::Fusion(rt)),
            Err(err) => {
                tracing::warn!(%err, "io_uring runtime failed to build; using epoll");
                monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                    .enable_timer()
                    .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(
                        BLOCKING_THREADS_PER_CORE,
                    )))
                    .build()
                    .map(CoreRuntime::Epoll)
            }
        }
    }

    /// The I/O driver this core got, for the log.
    pub fn driver(&self) -> &'static str {
        match self {
            CoreRuntime::Fusion(monoio::FusionRuntime::Uring(_)) => "io_uring",
            CoreRuntime::Fusion(monoio::FusionRuntime::Legacy(_)) => "epoll",
            CoreRuntime::Epoll(_) => "epoll",
        }
    }

    pub fn block_on<F: Future>(&mut self, future: F) -> F::Output {
        match self {
            CoreRuntime::Fusion(rt) => rt.block_on(future),
            CoreRuntime::Epoll(rt) => rt.block_on(future),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;
    use std::sync::Arc;

    #[test]
    fn jobs_hop_to_their_core_and_answer() {
        let (hub, mut inboxes) = Hub::<usize>::new(2).unwrap();
        let hub = Arc::new(hub);
        let inbox1 = inboxes.pop().unwrap();
        let core1 = std::thread::spawn(move || {
            let mut rt = CoreRuntime::build().unwrap();
            rt.block_on(inbox1.run(Rc::new(1usize)));
        });
        let mut rt = CoreRuntime::build().unwrap();
        let thread_of_core1 = rt.block_on({
            let hub = hub.clone();
            async move {
                let mut answers = Vec::new();
                for i in 0..100u64 {
                    let got = hub
                        .run_on(1, move |local: Rc<usize>| async move { (*local, i * 2) })
                        .await
                        .unwrap();
                    answers.push(got);
                }
                assert!(answers
                    .iter()
                    .enumerate()
                    .all(|(i, a)| *a == (1, i as u64 * 2)));
                hub.run_on(1, |_| async {
                    format!("{:?}", std::thread::current().id())
                })
                .await
                .unwrap()
            }
        });
        assert_ne!(
            thread_of_core1,
            format!("{:?}", std::thread::current().id())
        );
        drop(inboxes);
        drop(hub);
        core1.join().unwrap();
    }
}
