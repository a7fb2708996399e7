//! Prometheus metrics (`GET /metrics`): per-core counters and fixed-bucket histograms in plain
//! cells, written only by their own core (nothing shared is written on the request path),
//! summed when scraped; node-wide figures (peers, hints, anti-entropy, connections) read at
//! the scrape from the counters their layers already keep; the text exposition format
//! (version 0.0.4) encoded by `prometheus-client` ([`encode`]).
//!
//! How a scrape reads the cores: it hops to every core over a [`Hub`] of its own
//! ([`Scraper`]) and copies that core's cells there. The alternative, each core publishing
//! its cells into a shared slot on a timer, would write shared memory on every core all the
//! time and give stale, inexact figures; the hop costs only the scrape (one job per core per
//! scrape) and its figures are exact at the moment it reads them, which the tests rely on.
//!
//! A leaf but for `runtime` (the hop) and `limits`: the layers whose figures it shows hand
//! them over as plain numbers ([`StorageSample`], [`NodeFigures`]) through closures that the
//! composition root wires. Must not import `api`, `cluster`, `config`, `http`,
//! `replication`, `server`, `storage` or `tls`.

pub mod encode;
pub mod histogram;
pub mod process;
mod scrape;

pub use encode::{Build, NodeFigures, PeerFigures};
pub use histogram::{FsyncHistogram, Histogram, HistogramSample, FSYNC_BUCKETS, REQUEST_BUCKETS};
pub use scrape::Scraper;

use std::cell::{Cell, RefCell};

use histogram::REQUEST_BUCKETS_NS;

/// What a client request asked for: the `route` label. A fixed set, so every series exists
/// from the first scrape and no client can add one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Set,
    Get,
    Del,
    Get1,
    ApiGet,
    /// The original's `api/set|del`, refused.
    ApiWrite,
    /// Compare-and-set.
    Cas,
    /// Several operations in one request (counted once, whatever they are).
    Batch,
    /// A listing.
    List,
    /// A watch (long poll).
    Watch,
    /// `/admin/export` and `/admin/import`.
    Backup,
    /// A command on the Redis port.
    Redis,
    Healthz,
    Readyz,
    Cluster,
    Metrics,
    /// `GET` and `PUT /admin/config`.
    AdminConfig,
    /// A path no route serves.
    Other,
}

impl Route {
    pub const ALL: [Route; 18] = [
        Route::Set,
        Route::Get,
        Route::Del,
        Route::Get1,
        Route::ApiGet,
        Route::ApiWrite,
        Route::Cas,
        Route::Batch,
        Route::List,
        Route::Watch,
        Route::Backup,
        Route::Redis,
        Route::Healthz,
        Route::Readyz,
        Route::Cluster,
        Route::Metrics,
        Route::AdminConfig,
        Route::Other,
    ];
    pub const COUNT: usize = Route::ALL.len();

    pub fn label(self) -> &'static str {
        match self {
            Route::Set => "set",
            Route::Get => "get",
            Route::Del => "del",
            Route::Get1 => "get1",
            Route::ApiGet => "api_get",
            Route::ApiWrite => "api_write",
            Route::Cas => "cas",
            Route::Batch => "batch",
            Route::List => "list",
            Route::Watch => "watch",
            Route::Backup => "backup",
            Route::Redis => "redis",
            Route::Healthz => "healthz",
            Route::AdminConfig => "admin_config",
            Route::Readyz => "readyz",
            Route::Cluster => "cluster",
            Route::Metrics => "metrics",
            Route::Other => "other",
        }
    }
}

/// How a request ended: the `outcome` label (the API's answer, named once in `api`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    NotFound,
    NotMost,
    /// Not a majority, and the write may yet take effect.
    Indeterminate,
    BadRequest,
    Unauthorized,
    Forbidden,
    Busy,
    NotReady,
    NoSpace,
    /// `/readyz` while the node serves only part of the API (e.g. reads on a full disk).
    Degraded,
    Internal,
    /// No route has this path (404).
    NoRoute,
    /// The route does not take this method (405).
    BadMethod,
    /// Refused as it stands (409: e.g. a setting that needs a restart).
    Conflict,
    /// A CAS whose compare failed: nothing applied.
    CompareFailed,
    /// The cluster cannot do it (a member runs an older mostdb).
    Unsupported,
}

impl Outcome {
    pub const ALL: [Outcome; 17] = [
        Outcome::Ok,
        Outcome::NotFound,
        Outcome::NotMost,
        Outcome::Indeterminate,
        Outcome::BadRequest,
        Outcome::Unauthorized,
        Outcome::Forbidden,
        Outcome::Busy,
        Outcome::NotReady,
        Outcome::NoSpace,
        Outcome::Degraded,
        Outcome::Internal,
        Outcome::NoRoute,
        Outcome::BadMethod,
        Outcome::Conflict,
        Outcome::CompareFailed,
        Outcome::Unsupported,
    ];
    pub const COUNT: usize = Outcome::ALL.len();

    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::NotFound => "not_found",
            Outcome::NotMost => "not_most",
            Outcome::Indeterminate => "indeterminate",
            Outcome::BadRequest => "bad_request",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::Busy => "busy",
            Outcome::NotReady => "not_ready",
            Outcome::NoSpace => "no_space",
            Outcome::Degraded => "degraded",
            Outcome::Internal => "internal",
            Outcome::NoRoute => "no_route",
            Outcome::BadMethod => "bad_method",
            Outcome::Conflict => "conflict",
            Outcome::CompareFailed => "compare_failed",
            Outcome::Unsupported => "unsupported",
        }
    }
}

/// When a request started (nothing with the `no-request-metrics` feature, which compiles the
/// per-request counting out, to measure what it costs).
#[derive(Clone, Copy)]
pub struct Started(#[cfg(not(feature = "no-request-metrics"))] std::time::Instant);

/// The storage figures of one core's shards, read on that core at the scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageSample {
    pub disk_bytes: u64,
    pub write_stalls: u64,
    pub fsync: HistogramSample<FSYNC_BUCKETS>,
}

impl StorageSample {
    pub fn add(&mut self, other: &StorageSample) {
        self.disk_bytes += other.disk_bytes;
        self.write_stalls += other.write_stalls;
        self.fsync.add(&other.fsync);
    }
}

/// One core's metrics: its own cells, written by its own requests only.
pub struct CoreMetrics {
    requests: [[Cell<u64>; Outcome::COUNT]; Route::COUNT],
    durations: [Histogram<REQUEST_BUCKETS>; Route::COUNT],
    /// Reads this core's shards' figures (set once the core's replica is open).
    storage: RefCell<Option<Box<dyn Fn() -> StorageSample>>>,
}

impl Default for CoreMetrics {
    fn default() -> Self {
        CoreMetrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| Cell::new(0))),
            durations: std::array::from_fn(|_| Histogram::new(&REQUEST_BUCKETS_NS)),
            storage: RefCell::new(None),
        }
    }
}

impl CoreMetrics {
    /// Where this core's storage figures come from.
    pub fn set_storage(&self, probe: Box<dyn Fn() -> StorageSample>) {
        *self.storage.borrow_mut() = Some(probe);
    }

    /// A request starts now.
    #[inline]
    pub fn start(&self) -> Started {
        Started(
            #[cfg(not(feature = "no-request-metrics"))]
            std::time::Instant::now(),
        )
    }

    /// A request started at `started` ended with `outcome`: two cells and a histogram of
    /// this core.
    #[inline]
    pub fn record(&self, route: Route, outcome: Outcome, started: Started) {
        #[cfg(not(feature = "no-request-metrics"))]
        {
            let cell = &self.requests[route as usize][outcome as usize];
            cell.set(cell.get() + 1);
            self.durations[route as usize].observe(started.0.elapsed());
        }
        #[cfg(feature = "no-request-metrics")]
        let _ = (route, outcome, started);
    }

    /// This core's figures now.
    pub fn sample(&self) -> CoreSample {
        let storage = self.storage.borrow().as_ref().map(|probe| probe());
        CoreSample {
            requests: std::array::from_fn(|r| std::array::from_fn(|o| self.requests[r][o].get())),
            durations: std::array::from_fn(|r| self.durations[r].sample()),
            storage: storage.unwrap_or_default(),
        }
    }
}

/// One core's figures (or, added up, the node's), as plain numbers that can cross cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreSample {
    /// Indexed `[route][outcome]` as [`Route::ALL`] and [`Outcome::ALL`].
    pub requests: [[u64; Outcome::COUNT]; Route::COUNT],
    pub durations: [HistogramSample<REQUEST_BUCKETS>; Route::COUNT],
    pub storage: StorageSample,
}

impl Default for CoreSample {
    fn default() -> Self {
        CoreSample {
            requests: [[0; Outcome::COUNT]; Route::COUNT],
            durations: [HistogramSample::default(); Route::COUNT],
            storage: StorageSample::default(),
        }
    }
}

impl CoreSample {
    pub fn add(&mut self, other: &CoreSample) {
        for (mine, theirs) in self.requests.iter_mut().zip(&other.requests) {
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
        for (mine, theirs) in self.durations.iter_mut().zip(&other.durations) {
            mine.add(theirs);
        }
        self.storage.add(&other.storage);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_index_their_arrays() {
        for (i, route) in Route::ALL.iter().enumerate() {
            assert_eq!(*route as usize, i);
        }
        for (i, outcome) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*outcome as usize, i);
        }
    }

    #[cfg(not(feature = "no-request-metrics"))]
    #[test]
    fn records_add_up_across_cores() {
        let (a, b) = (CoreMetrics::default(), CoreMetrics::default());
        a.record(Route::Set, Outcome::Ok, a.start());
        a.record(Route::Set, Outcome::Ok, a.start());
        b.record(Route::Set, Outcome::Ok, b.start());
        b.record(Route::Get, Outcome::NotFound, b.start());
        b.set_storage(Box::new(|| StorageSample {
            disk_bytes: 7,
            write_stalls: 1,
            ..StorageSample::default()
        }));
        let mut total = a.sample();
        total.add(&b.sample());
        assert_eq!(total.requests[Route::Set as usize][Outcome::Ok as usize], 3);
        assert_eq!(
            total.requests[Route::Get as usize][Outcome::NotFound as usize],
            1
        );
        assert_eq!(total.durations[Route::Set as usize].count, 3);
        assert_eq!(total.storage.disk_bytes, 7);
    }
}
