//! What the unit tests share: a runtime to run one future on, as a core has it (monoio with
//! timers and a blocking pool of one thread, which the store's file operations use). Test
//! code only; imports nothing of the crate.

use std::future::Future;

/// Runs `f` to completion on a fresh single-thread runtime.
pub fn run<F: Future>(f: F) -> F::Output {
    let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(1)))
        .build()
        .expect("runtime");
    rt.block_on(f)
}
