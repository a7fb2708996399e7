//! Fixed-bucket histograms: one per core, plain cells written by that core alone, copied into
//! a [`HistogramSample`] (plain numbers, `Send`) when scraped and added up across cores.
//!
//! Values are kept in nanoseconds (exact integer sums); the encoder turns them into seconds.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds (inclusive, nanoseconds) of the request-duration buckets: 100 µs to 5 s.
pub const REQUEST_BUCKETS_NS: [u64; REQUEST_BUCKETS] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
];
pub const REQUEST_BUCKETS: usize = 15;

/// Upper bounds (nanoseconds) of the fsync buckets: 0.5 ms doubling to 8.192 s, as etcd's
/// `etcd_disk_wal_fsync_duration_seconds`, so the same alerts read both.
pub const FSYNC_BUCKETS_NS: [u64; FSYNC_BUCKETS] = {
    let mut bounds = [0u64; FSYNC_BUCKETS];
    let mut i = 0;
    while i < FSYNC_BUCKETS {
        bounds[i] = 500_000 << i;
        i += 1;
    }
    bounds
};
pub const FSYNC_BUCKETS: usize = 15;

const _: () = assert!(FSYNC_BUCKETS_NS[FSYNC_BUCKETS - 1] == 8_192_000_000);

/// One core's histogram. `buckets[i]` counts the observations in `(bounds[i-1], bounds[i]]`;
/// those above the last bound are `count` less the buckets' sum (the `+Inf` bucket).
pub struct Histogram<const N: usize> {
    bounds_ns: &'static [u64; N],
    buckets: [Cell<u64>; N],
    count: Cell<u64>,
    sum_ns: Cell<u64>,
}

impl<const N: usize> Histogram<N> {
    pub fn new(bounds_ns: &'static [u64; N]) -> Histogram<N> {
        debug_assert!(bounds_ns.windows(2).all(|w| w[0] < w[1]));
        Histogram {
            bounds_ns,
            buckets: std::array::from_fn(|_| Cell::new(0)),
            count: Cell::new(0),
            sum_ns: Cell::new(0),
        }
    }

    pub fn observe(&self, elapsed: Duration) {
        let ns = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        if let Some(i) = self.bounds_ns.iter().position(|&bound| ns <= bound) {
            self.buckets[i].set(self.buckets[i].get() + 1);
        }
        self.count.set(self.count.get() + 1);
        self.sum_ns.set(self.sum_ns.get().saturating_add(ns));
    }

    pub fn sample(&self) -> HistogramSample<N> {
        HistogramSample {
            buckets: std::array::from_fn(|i| self.buckets[i].get()),
            count: self.count.get(),
            sum_ns: self.sum_ns.get(),
        }
    }
}

/// The fsync histogram of one shard ([`FSYNC_BUCKETS_NS`]), kept by `storage`.
pub struct FsyncHistogram(Histogram<FSYNC_BUCKETS>);

impl Default for FsyncHistogram {
    fn default() -> Self {
        FsyncHistogram(Histogram::new(&FSYNC_BUCKETS_NS))
    }
}

impl FsyncHistogram {
    pub fn observe(&self, elapsed: Duration) {
        self.0.observe(elapsed);
    }

    pub fn sample(&self) -> HistogramSample<FSYNC_BUCKETS> {
        self.0.sample()
    }
}

/// A histogram's numbers at one moment (per bucket, not cumulative).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistogramSample<const N: usize> {
    pub buckets: [u64; N],
    pub count: u64,
    pub sum_ns: u64,
}

impl<const N: usize> Default for HistogramSample<N> {
    fn default() -> Self {
        HistogramSample {
            buckets: [0; N],
            count: 0,
            sum_ns: 0,
        }
    }
}

impl<const N: usize> HistogramSample<N> {
    pub fn add(&mut self, other: &HistogramSample<N>) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
    }

    /// `(upper bound in seconds, count in that bucket)` per finite bucket, as the encoder takes
    /// them; the `+Inf` bucket is `count`.
    pub fn buckets_seconds(&self, bounds_ns: &[u64; N]) -> Vec<(f64, u64)> {
        bounds_ns
            .iter()
            .zip(self.buckets)
            .map(|(&bound, n)| (bound as f64 / 1e9, n))
            .collect()
    }

    pub fn sum_seconds(&self) -> f64 {
        self.sum_ns as f64 / 1e9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_their_bucket_and_sum_across_cores() {
        let h = Histogram::new(&REQUEST_BUCKETS_NS);
        h.observe(Duration::from_micros(100)); // on the first bound: le is inclusive
        h.observe(Duration::from_micros(101));
        h.observe(Duration::from_secs(60)); // above every bound: only in +Inf
        let s = h.sample();
        assert_eq!(s.buckets[0], 1);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets.iter().sum::<u64>(), 2);
        assert_eq!(s.count, 3);
        assert_eq!(s.sum_ns, 100_000 + 101_000 + 60_000_000_000);
        let mut total = HistogramSample::default();
        total.add(&s);
        total.add(&s);
        assert_eq!(total.count, 6);
        assert_eq!(total.buckets[0], 2);
        assert_eq!(
            total.buckets_seconds(&REQUEST_BUCKETS_NS)[0],
            (0.0001, 2),
            "bounds in seconds"
        );
    }

    #[test]
    fn fsync_bounds_double() {
        assert_eq!(FSYNC_BUCKETS_NS[0], 500_000);
        assert!(FSYNC_BUCKETS_NS.windows(2).all(|w| w[1] == 2 * w[0]));
    }
}
