//! The default number of event-loop threads (`MOSTDB_THREADS`).

use crate::limits;

/// The default thread count: the cores this process may run on, within the bound; one on a
/// machine of up to `limits::SMALL_MACHINE_CORES` cores.
pub(super) fn default_threads() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    threads_for(cores)
}

/// Event-loop threads for `cores` cores. On two cores, one loop served 1.4-1.9x the requests
/// of two (GET and SET, wrk sharing the machine, README "Benchmarks"): with two, half of the
/// operations hop to the other core, and the hop's wake-ups and the kernel's network work
/// compete for the same two CPUs; a fixed-answer server, which never hops, serves the same
/// with one loop or two.
pub(crate) fn threads_for(cores: usize) -> usize {
    if cores <= limits::SMALL_MACHINE_CORES {
        return 1;
    }
    cores.clamp(1, limits::THREADS_MAX)
}
