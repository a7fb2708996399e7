//! The hybrid logical clock of DESIGN §2, one per core: issues versions that are unique
//! forever and never go backwards, across restarts and clock steps too.
//!
//! `hlc` = physical milliseconds since the epoch in the high 48 bits, a counter in the low
//! 16; `now()` = max(last + 1, physical). Before it issues a value above its persisted
//! *ceiling* it makes a new ceiling (~2 s ahead) durable in `<root>/clock/core-<n>`; at start
//! every core starts above the highest ceiling file the node's earlier runs left in that
//! directory ([`previous_ceiling`], read before any core opens), so a restart with fewer cores
//! or with the clock set back never reissues a value. Ceilings are refreshed in the background
//! when the clock gets within ~1 s of them, so issuing normally never waits for the disk.
//!
//! **Bounded** (DESIGN §14): no clock takes in a value whose physical part is more than
//! `MOSTDB_MAX_CLOCK_SKEW_MS` ahead of its own physical clock ([`observe_bounded`]), and a
//! replica refuses to store such a version ([`beyond_bound`]); both are counted in the node's
//! [`SkewBound`]. So a peer with a wild clock, or a hostile one sending `u64::MAX`, can neither
//! poison a key nor drag the cluster's clocks into the future. Observations stop a full
//! millisecond of counter below the storage limit, so a version this clock issues is within
//! this node's own bound (unless its persisted ceiling is: the physical clock was set back by
//! more than the bound since it ran, which the open logs).
//!
//! `!Send`: each core opens its own inside its monoio runtime (which needs a blocking pool
//! attached). Must not import `http` or `api`.

use crate::limits;
use crate::storage::layout::{CLOCK_CEILING_PREFIX as CEILING_PREFIX, CLOCK_DIR};
use crate::storage::record::EXPIRY_ORIGIN_BIT;
use crate::storage::store::{sync_dir, write_atomically};
use crate::storage::Version;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

/// Bits of the counter below the milliseconds.
pub const COUNTER_BITS: u32 = 16;
/// Largest physical time used, in ms (about the year 6400): keeps `ms << 16` and the
/// ceiling arithmetic far from overflowing even under a wildly wrong clock.
const PHYSICAL_MS_MAX: u64 = (1 << 47) - 1;
/// Largest hlc [`Hlc::observe`] takes in; anything above is garbage, not a clock.
pub const OBSERVE_HLC_MAX: u64 = PHYSICAL_MS_MAX << COUNTER_BITS;

/// Milliseconds since the Unix epoch; replaceable in tests.
pub type PhysicalClock = Box<dyn Fn() -> u64>;

/// A version's origin: the node id with the core in bits 1 to 8 (node ids are random, so
/// losing their top 9 bits costs nothing), the top bit clear, and bit 0 clear: an odd origin
/// marks an expiry's tombstone (`Version::expiry`).
pub fn origin(node_id: u64, core: usize) -> u64 {
    debug_assert!(core < limits::THREADS_MAX);
    let origin = (node_id << 9) | ((core as u64 & 0xff) << 1);
    origin & !(EXPIRY_ORIGIN_BIT | 1 << 63)
}

/// The expiry HLC of a record written at `version_hlc` to live `ttl_ms`.
pub fn expires_after(version_hlc: u64, ttl_ms: u64) -> u64 {
    version_hlc.saturating_add(ttl_ms.saturating_mul(1 << COUNTER_BITS))
}

/// How many ms a record expiring at `expires` has left at the HLC `now` (0 once expired).
pub fn ms_left(expires: u64, now: u64) -> u64 {
    hlc_ms(expires.saturating_sub(now))
}

/// The system clock, in ms since the epoch (0 before it).
pub fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The counter bits of an hlc.
const COUNTER_MASK: u64 = (1 << COUNTER_BITS) - 1;

fn ms_to_hlc(ms: u64) -> u64 {
    ms.min(PHYSICAL_MS_MAX) << COUNTER_BITS
}

/// The physical part of an hlc, in ms since the epoch.
pub fn hlc_ms(hlc: u64) -> u64 {
    hlc >> COUNTER_BITS
}

/// The largest hlc a replica stores when its physical clock reads `physical_ms`: the whole
/// millisecond `physical_ms + max_skew_ms`, every counter value included.
pub fn store_limit(physical_ms: u64, max_skew_ms: u64) -> u64 {
    ms_to_hlc(physical_ms.saturating_add(max_skew_ms)) | COUNTER_MASK
}

/// The largest hlc a clock observes at `physical_ms`: the start of the last millisecond the
/// replica would store, so that the values issued after it (`last + 1`, …) stay storable.
fn observe_limit(physical_ms: u64, max_skew_ms: u64) -> u64 {
    ms_to_hlc(physical_ms.saturating_add(max_skew_ms))
}

/// Whether a replica whose physical clock reads `physical_ms` must refuse `hlc`: it is more
/// than `max_skew_ms` ahead (DESIGN §14). The planted bug never refuses.
#[cfg(not(feature = "planted-unbounded-clock"))]
pub fn beyond_bound(hlc: u64, physical_ms: u64, max_skew_ms: u64) -> bool {
    hlc > store_limit(physical_ms, max_skew_ms)
}

#[cfg(feature = "planted-unbounded-clock")]
pub fn beyond_bound(_hlc: u64, _physical_ms: u64, _max_skew_ms: u64) -> bool {
    false
}

/// What a clock whose last value is `last` does with `seen` at `physical_ms`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// Not above `last`: nothing changes.
    Older,
    /// The new last value.
    Taken(u64),
    /// Beyond the bound: ignored (and counted by the caller).
    Ignored,
}

/// The HLC's observe rule, bounded: a value beyond `physical_ms + max_skew_ms` is never taken
/// in. Shared by [`Hlc::observe`] and the protocol simulator. The planted bug takes in
/// anything short of garbage, as the clock did before the bound existed.
pub fn observe_bounded(last: u64, seen: u64, physical_ms: u64, max_skew_ms: u64) -> Observation {
    let limit = if cfg!(feature = "planted-unbounded-clock") {
        OBSERVE_HLC_MAX
    } else {
        observe_limit(physical_ms, max_skew_ms).min(OBSERVE_HLC_MAX)
    };
    if seen > limit {
        Observation::Ignored
    } else if seen > last {
        Observation::Taken(seen)
    } else {
        Observation::Older
    }
}

/// Whether a refusal at `physical_ms` is logged, the last one logged being at `last_ms` (0:
/// none yet): at most once per [`limits::CLOCK_REFUSAL_LOG_INTERVAL_MS`], and again at once if
/// the clock was set back meanwhile.
fn refusal_log_due(last_ms: u64, physical_ms: u64) -> bool {
    last_ms == 0
        || physical_ms < last_ms
        || physical_ms - last_ms >= limits::CLOCK_REFUSAL_LOG_INTERVAL_MS
}

/// The node's clock bound (`MOSTDB_MAX_CLOCK_SKEW_MS`) and what it caught, shared by every
/// core's clock and replica; read by `GET /cluster`.
#[derive(Debug)]
pub struct SkewBound {
    max_skew_ms: u64,
    /// Versions a replica of this node refused as too far ahead (PUT, REPAIR, COPY).
    refused: AtomicU64,
    /// Values a clock of this node did not observe (answers, heartbeats, requests).
    ignored: AtomicU64,
    /// Physical ms of the last refusal logged (0: none yet).
    last_log_ms: AtomicU64,
}

impl SkewBound {
    pub fn new(max_skew_ms: u64) -> Arc<SkewBound> {
        Arc::new(SkewBound {
            max_skew_ms,
            refused: AtomicU64::new(0),
            ignored: AtomicU64::new(0),
            last_log_ms: AtomicU64::new(0),
        })
    }

    pub fn max_skew_ms(&self) -> u64 {
        self.max_skew_ms
    }

    /// Versions refused as too far ahead, by every replica of this node.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Values no clock of this node observed, being beyond the bound.
    pub fn ignored(&self) -> u64 {
        self.ignored.load(Ordering::Relaxed)
    }

    /// Counts a refused version; logs it unless one was logged in the last
    /// [`limits::CLOCK_REFUSAL_LOG_INTERVAL_MS`] (a hostile or broken peer must not flood the
    /// log).
    fn note_refused(&self, hlc: u64, physical_ms: u64) {
        let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last_log_ms.load(Ordering::Relaxed);
        if refusal_log_due(last, physical_ms)
            && self
                .last_log_ms
                .compare_exchange(
                    last,
                    physical_ms.max(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            let ahead_ms = hlc_ms(hlc).saturating_sub(physical_ms);
            tracing::warn!(
                hlc,
                ahead_ms,
                max_skew_ms = self.max_skew_ms,
                refused_total = refused,
                "refused a version too far ahead of this node's clock (a peer's clock is wrong, \
                 or a peer is hostile); logged at most once a minute"
            );
        }
    }
}

pub struct Hlc {
    inner: Rc<Inner>,
}

struct Inner {
    origin: u64,
    /// `<root>/clock/core-<n>`.
    path: PathBuf,
    physical: PhysicalClock,
    /// The last value issued (or observed).
    last: Cell<u64>,
    /// No value above this may be issued: it is the durable ceiling.
    ceiling: Cell<u64>,
    /// A ceiling write is in flight.
    writing: Cell<bool>,
    /// Tasks waiting for a ceiling write to finish.
    waiters: RefCell<Vec<Waker>>,
    ceiling_writes: Cell<u64>,
    bound: Arc<SkewBound>,
}

impl Hlc {
    /// Opens core `core`'s clock under `root` with the system clock, bounded by `bound`.
    /// Blocking (reads the ceilings, writes this core's): call it on the core before it serves.
    pub fn open(root: &Path, core: usize, origin: u64, bound: Arc<SkewBound>) -> io::Result<Hlc> {
        Hlc::open_with_clock(root, core, origin, Box::new(system_ms), bound)
    }

    /// [`Hlc::open`] above `previous`, the highest ceiling the node's earlier runs left
    /// ([`previous_ceiling`], read once before any core opens), not above the ceilings this
    /// run's other cores just wrote: those are ~2 s ahead of physical time, and a clock that
    /// started there would stand still (for expiries, too) until physical time caught up.
    /// Versions stay unique without them: each core issues under its own origin.
    pub fn open_above(
        root: &Path,
        (core, origin): (usize, u64),
        bound: Arc<SkewBound>,
        previous: u64,
    ) -> io::Result<Hlc> {
        Hlc::open_inner(
            root,
            (core, origin),
            Box::new(system_ms),
            bound,
            Some(previous),
        )
    }

    /// [`Hlc::open`] with an injected physical clock.
    pub fn open_with_clock(
        root: &Path,
        core: usize,
        origin: u64,
        physical: PhysicalClock,
        bound: Arc<SkewBound>,
    ) -> io::Result<Hlc> {
        Hlc::open_inner(root, (core, origin), physical, bound, None)
    }

    /// Opens above `previous`, or above every ceiling in the directory when `None`.
    fn open_inner(
        root: &Path,
        (core, origin): (usize, u64),
        physical: PhysicalClock,
        bound: Arc<SkewBound>,
        previous: Option<u64>,
    ) -> io::Result<Hlc> {
        let dir = root.join(CLOCK_DIR);
        std::fs::create_dir_all(&dir)?;
        sync_dir(root)?;
        let highest = match previous {
            Some(previous) => previous,
            None => highest_ceiling(&dir)?,
        };
        let physical_ms = physical();
        let start = ms_to_hlc(physical_ms).max(highest);
        if beyond_bound(start, physical_ms, bound.max_skew_ms()) {
            // I1 forbids issuing below a ceiling, and every replica refuses above its bound:
            // writes coordinated here fail until the physical clock catches up.
            tracing::warn!(
                core,
                ahead_ms = hlc_ms(start).saturating_sub(physical_ms),
                max_skew_ms = bound.max_skew_ms(),
                "the clock's persisted ceiling is beyond the skew bound: the physical clock was \
                 set back since it ran; versions issued here will be refused until it catches up"
            );
        }
        let ceiling = start + ms_to_hlc(limits::CLOCK_CEILING_AHEAD_MS);
        let path = dir.join(format!("{CEILING_PREFIX}{core}"));
        write_ceiling(&path, ceiling)?;
        tracing::debug!(core, start, ceiling, "clock open");
        Ok(Hlc {
            inner: Rc::new(Inner {
                origin,
                path,
                physical,
                last: Cell::new(start),
                ceiling: Cell::new(ceiling),
                writing: Cell::new(false),
                waiters: RefCell::new(Vec::new()),
                ceiling_writes: Cell::new(1),
                bound,
            }),
        })
    }

    /// A fresh version: above every version this clock issued or observed, ever.
    pub async fn now(&self) -> Version {
        let inner = &self.inner;
        loop {
            let hlc = inner.last.get().saturating_add(1).max(inner.physical_hlc());
            if hlc <= inner.ceiling.get() {
                inner.last.set(hlc);
                if hlc.saturating_add(ms_to_hlc(limits::CLOCK_CEILING_REFRESH_MS))
                    > inner.ceiling.get()
                {
                    start_ceiling_write(inner, hlc);
                }
                return Version {
                    hlc,
                    origin: inner.origin,
                };
            }
            // Above the durable ceiling: a new one must reach the disk first.
            start_ceiling_write(inner, hlc);
            WaitWrite { inner }.await;
        }
    }

    /// Takes in an hlc seen elsewhere (a peer's version, answer or heartbeat), so later values
    /// are above it. `last` never decreases. A value beyond the skew bound is ignored and
    /// counted ([`SkewBound::ignored`]): no peer can drag this clock into the future.
    pub fn observe(&self, hlc: u64) {
        let inner = &self.inner;
        let physical_ms = (inner.physical)();
        match observe_bounded(inner.last.get(), hlc, physical_ms, inner.bound.max_skew_ms) {
            Observation::Taken(last) => inner.last.set(last),
            Observation::Older => {}
            Observation::Ignored => {
                inner.bound.ignored.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether this node's replica must refuse `hlc` now (beyond the skew bound); counts and
    /// (rate-limited) logs the refusal when it must.
    pub fn refuses(&self, hlc: u64) -> bool {
        let physical_ms = (self.inner.physical)();
        let refuse = beyond_bound(hlc, physical_ms, self.inner.bound.max_skew_ms);
        if refuse {
            self.inner.bound.note_refused(hlc, physical_ms);
        }
        refuse
    }

    /// How many observed values this node's clocks ignored as beyond the bound.
    pub fn ignored_observations(&self) -> u64 {
        self.inner.bound.ignored()
    }

    /// The node's bound and its counters.
    pub fn bound(&self) -> &Arc<SkewBound> {
        &self.inner.bound
    }

    /// The physical clock, in ms since the epoch (the wall clock heartbeats carry).
    pub fn physical_ms(&self) -> u64 {
        (self.inner.physical)()
    }

    /// The last value issued or observed.
    pub fn last(&self) -> u64 {
        self.inner.last.get()
    }

    /// Where the clock stands now, without issuing anything: the later of the last value and
    /// physical time (what an expiry is compared with).
    pub fn reading(&self) -> u64 {
        self.last().max(self.physical_ms() << COUNTER_BITS)
    }

    /// The durable ceiling: no value above it has been issued.
    pub fn ceiling(&self) -> u64 {
        self.inner.ceiling.get()
    }

    /// Ceiling files written (the one at open included).
    pub fn ceiling_writes(&self) -> u64 {
        self.inner.ceiling_writes.get()
    }
}

impl Inner {
    fn physical_hlc(&self) -> u64 {
        ms_to_hlc((self.physical)())
    }
}

/// Starts writing a ceiling ~2 s above `at` (and above physical time) unless a write is in
/// flight; the waiters re-check when it ends, and start another if it was not enough.
fn start_ceiling_write(inner: &Rc<Inner>, at: u64) {
    if inner.writing.replace(true) {
        return;
    }
    let target = at.max(inner.physical_hlc()) + ms_to_hlc(limits::CLOCK_CEILING_AHEAD_MS);
    let inner = inner.clone();
    monoio::spawn(async move {
        let path = inner.path.clone();
        let result = monoio::spawn_blocking(move || write_ceiling(&path, target)).await;
        let failure = match result {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(format!("{e:?}")),
        };
        if let Some(error) = failure {
            // Issuing above a ceiling that is not durable could reissue a version after a
            // restart (DESIGN §2, invariant I1); there is no safe way on.
            tracing::error!(path = %inner.path.display(), %error, "clock ceiling write failed; stopping");
            eprintln!(
                "mostdb: clock ceiling {}: {error}; aborting",
                inner.path.display()
            );
            std::process::abort();
        }
        inner.ceiling.set(inner.ceiling.get().max(target));
        inner.ceiling_writes.set(inner.ceiling_writes.get() + 1);
        inner.writing.set(false);
        for w in std::mem::take(&mut *inner.waiters.borrow_mut()) {
            w.wake();
        }
    });
}

/// Resolves when no ceiling write is in flight.
struct WaitWrite<'a> {
    inner: &'a Inner,
}

impl Future for WaitWrite<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if !self.inner.writing.get() {
            return Poll::Ready(());
        }
        self.inner.waiters.borrow_mut().push(cx.waker().clone());
        Poll::Pending
    }
}

fn write_ceiling(path: &Path, ceiling: u64) -> io::Result<()> {
    write_atomically(path, format!("{ceiling}\n").as_bytes())
}

/// The highest ceiling of any core, from any earlier run (0 if none).
/// The highest clock ceiling the node's earlier runs left under `root` (0 for a new node):
/// read once at start, before any core opens its clock ([`Hlc::open_above`]).
pub fn previous_ceiling(root: &Path) -> io::Result<u64> {
    let dir = root.join(CLOCK_DIR);
    match dir.is_dir() {
        true => highest_ceiling(&dir),
        false => Ok(0),
    }
}

fn highest_ceiling(dir: &Path) -> io::Result<u64> {
    let mut highest = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // A `.tmp` never renamed was never relied on: nothing was issued above it.
        if !name.starts_with(CEILING_PREFIX) || name.ends_with(".tmp") {
            continue;
        }
        let text = std::fs::read_to_string(entry.path())?;
        let ceiling = text.trim().parse::<u64>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("clock ceiling {}: {e}", entry.path().display()),
            )
        })?;
        highest = highest.max(ceiling);
    }
    Ok(highest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::test_dir::TempDir;
    use std::time::Duration;

    /// 2025-01-01T00:00:00Z, in ms.
    const T0: u64 = 1_735_689_600_000;

    use crate::test_support::run;

    /// A clock the test moves by hand.
    fn manual(ms: u64) -> (Rc<Cell<u64>>, PhysicalClock) {
        let now = Rc::new(Cell::new(ms));
        let read = now.clone();
        (now, Box::new(move || read.get()))
    }

    /// The default bound, in tests.
    const SKEW_MS: u64 = limits::MAX_CLOCK_SKEW_MS_DEFAULT;

    fn open(dir: &TempDir, core: usize, clock: PhysicalClock) -> Hlc {
        let bound = SkewBound::new(SKEW_MS);
        Hlc::open_with_clock(dir.path(), core, origin(0xABCD, core), clock, bound).expect("open")
    }

    #[test]
    fn cores_of_one_run_start_at_physical_time_and_a_restart_above_every_ceiling() {
        let dir = TempDir::new("hlc-run");
        let bound = SkewBound::new(SKEW_MS);
        let previous = previous_ceiling(dir.path()).expect("none yet");
        assert_eq!(previous, 0);
        let open_above = |core: usize, previous: u64| {
            Hlc::open_above(
                dir.path(),
                (core, origin(0xABCD, core)),
                bound.clone(),
                previous,
            )
            .expect("open")
        };
        let a = open_above(0, previous);
        let b = open_above(1, previous);
        // Not above core 0's fresh ceiling (~2 s ahead): core 1 stands at physical time.
        assert!(
            b.reading() < a.ceiling(),
            "{} >= {}",
            b.reading(),
            a.ceiling()
        );
        // The old way (every ceiling in the directory) starts above it.
        let c = open(&dir, 2, Box::new(system_ms));
        assert!(c.reading() >= a.ceiling());
        let highest = [a.ceiling(), b.ceiling(), c.ceiling()].into_iter().max();
        drop((a, b, c));
        // The next run: above everything this one may have issued.
        let previous = previous_ceiling(dir.path()).expect("read");
        assert_eq!(Some(previous), highest);
        assert!(open_above(0, previous).reading() >= previous);
    }

    #[test]
    fn origin_puts_the_core_above_the_expiry_bit() {
        assert_eq!(origin(0x1234, 5), 0x12_3405 << 1);
        assert_eq!(origin(u64::MAX, 255) & 1, 0, "no issued origin is odd");
        assert_eq!(origin(u64::MAX, 255) >> 63, 0);
        assert_ne!(origin(1, 0), origin(1, 1));
    }

    #[test]
    fn monotonic_under_a_clock_that_goes_backwards() {
        let dir = TempDir::new("clock-back");
        let (now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        run(async {
            let mut prev = hlc.now().await;
            for step in 0..3_000u64 {
                // Forward 1 ms most of the time, back 500 ms every 100th step.
                now.set(if step % 100 == 99 {
                    now.get() - 500
                } else {
                    now.get() + 1
                });
                let v = hlc.now().await;
                assert!(v > prev, "{v:?} after {prev:?}");
                assert!(v.hlc >= now.get() << COUNTER_BITS);
                assert!(v.hlc <= hlc.ceiling(), "issued above the durable ceiling");
                assert_eq!(v.origin, origin(0xABCD, 0));
                prev = v;
            }
        });
    }

    #[test]
    fn restart_with_the_clock_set_back_issues_above_everything() {
        let dir = TempDir::new("clock-restart");
        let mut issued_max = 0;
        {
            // Two cores: core 0 passes several ceilings; core 1's clock runs a minute ahead.
            let (now, clock) = manual(T0);
            let (now1, clock1) = manual(T0);
            let core0 = open(&dir, 0, clock);
            let core1 = open(&dir, 1, clock1);
            run(async {
                for _ in 0..50 {
                    now.set(now.get() + 100);
                    issued_max = issued_max.max(core0.now().await.hlc);
                }
                now1.set(T0 + 60_000);
                let v1 = core1.now().await.hlc;
                assert!(v1 > issued_max);
                issued_max = v1;
            });
            assert!(
                core0.ceiling_writes() > 2,
                "ceilings were renewed as time passed"
            );
        }
        // Restart with core 0 only, the clock an hour back: only core 1's ceiling file
        // knows how far the clock went.
        let (_now, clock) = manual(T0 - 3_600_000);
        let core0 = open(&dir, 0, clock);
        run(async {
            let v = core0.now().await;
            assert!(v.hlc > issued_max, "{} <= {issued_max}", v.hlc);
        });
    }

    #[test]
    fn observe_takes_in_a_value_within_the_bound_and_issues_above_it() {
        let dir = TempDir::new("clock-observe");
        let (now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        let near = ms_to_hlc(T0 + SKEW_MS - 1) | 7;
        run(async {
            hlc.observe(near);
            hlc.observe(5); // an older value changes nothing
            assert_eq!(hlc.last(), near);
            let v = hlc.now().await;
            assert_eq!(v.hlc, near + 1);
            let on_disk: u64 = std::fs::read_to_string(dir.path().join("clock/core-0"))
                .expect("ceiling file")
                .trim()
                .parse()
                .expect("number");
            assert!(
                on_disk >= v.hlc,
                "the ceiling was made durable before issuing"
            );
            now.set(T0 + 1);
            assert_eq!(hlc.now().await.hlc, near + 2);
            assert_eq!(hlc.ignored_observations(), 0);
        });
    }

    #[cfg(not(feature = "planted-unbounded-clock"))]
    #[test]
    fn observe_ignores_anything_beyond_the_bound() {
        let dir = TempDir::new("clock-bound");
        let (now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        let before = hlc.last();
        let two_hours = ms_to_hlc(T0 + 2 * 3_600_000);
        let just_beyond = ms_to_hlc(T0 + SKEW_MS) + 1;
        for seen in [u64::MAX, OBSERVE_HLC_MAX, two_hours, just_beyond] {
            hlc.observe(seen);
            assert_eq!(hlc.last(), before, "{seen:#x} was taken in");
        }
        assert_eq!(hlc.ignored_observations(), 4);
        // The same value is fine once the physical clock has caught up with it.
        now.set(T0 + 1);
        hlc.observe(just_beyond);
        assert_eq!(hlc.last(), just_beyond);
        run(async {
            let v = hlc.now().await;
            assert!(
                !hlc.refuses(v.hlc),
                "its own version is within its own bound"
            );
        });
        assert_eq!(hlc.bound().refused(), 0);
    }

    #[cfg(not(feature = "planted-unbounded-clock"))]
    #[test]
    fn a_replica_refuses_beyond_the_whole_last_millisecond_and_counts_it() {
        let dir = TempDir::new("clock-refuse");
        let (_now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        let last_ms = ms_to_hlc(T0 + SKEW_MS);
        assert!(!hlc.refuses(last_ms | COUNTER_MASK));
        assert!(!hlc.refuses(ms_to_hlc(T0) | 3));
        assert!(hlc.refuses(last_ms + (1 << COUNTER_BITS)));
        assert!(hlc.refuses(u64::MAX));
        assert_eq!(hlc.bound().refused(), 2);
        assert_eq!(store_limit(T0, SKEW_MS), last_ms | COUNTER_MASK);
        assert!(
            beyond_bound(u64::MAX, u64::MAX, u64::MAX),
            "saturates, never wraps"
        );
    }

    #[test]
    fn refusals_are_logged_at_most_once_a_minute() {
        let minute = limits::CLOCK_REFUSAL_LOG_INTERVAL_MS;
        assert!(refusal_log_due(0, T0), "the first one");
        assert!(!refusal_log_due(T0, T0));
        assert!(!refusal_log_due(T0, T0 + minute - 1));
        assert!(refusal_log_due(T0, T0 + minute));
        assert!(refusal_log_due(T0, T0 - 1), "the clock was set back");
        let bound = SkewBound::new(SKEW_MS);
        for i in 0..1_000 {
            bound.note_refused(u64::MAX, T0 + i);
        }
        assert_eq!(bound.refused(), 1_000, "every refusal is counted");
        assert_eq!(
            bound.last_log_ms.load(Ordering::Relaxed),
            T0,
            "one was logged"
        );
    }

    #[test]
    fn counter_overflow_rolls_into_the_next_millisecond() {
        let dir = TempDir::new("clock-counter");
        let (now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        run(async {
            let first = hlc.now().await.hlc;
            assert_eq!(first, (T0 << COUNTER_BITS) | 1);
            let mut last = first;
            for _ in 2..=0xFFFF {
                last = hlc.now().await.hlc;
            }
            assert_eq!(last, (T0 << COUNTER_BITS) | 0xFFFF);
            assert_eq!(hlc.now().await.hlc, (T0 + 1) << COUNTER_BITS);
            now.set(T0 + 1);
            assert_eq!(hlc.now().await.hlc, ((T0 + 1) << COUNTER_BITS) | 1);
            now.set(T0 + 50);
            assert_eq!(hlc.now().await.hlc, (T0 + 50) << COUNTER_BITS);
        });
    }

    #[test]
    fn ceiling_is_renewed_before_it_is_reached() {
        let dir = TempDir::new("clock-refresh");
        let (now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        run(async {
            let first_ceiling = hlc.ceiling();
            assert_eq!(
                first_ceiling,
                ms_to_hlc(T0 + limits::CLOCK_CEILING_AHEAD_MS)
            );
            now.set(T0 + 500);
            hlc.now().await;
            assert_eq!(hlc.ceiling_writes(), 1, "far from the ceiling: no write");
            now.set(T0 + 1_500);
            let v = hlc.now().await;
            assert!(
                v.hlc <= first_ceiling,
                "issued under the old ceiling, without waiting"
            );
            for _ in 0..200 {
                if hlc.ceiling_writes() == 2 {
                    break;
                }
                monoio::time::sleep(Duration::from_millis(5)).await;
            }
            assert_eq!(
                hlc.ceiling(),
                ms_to_hlc(T0 + 1_500 + limits::CLOCK_CEILING_AHEAD_MS)
            );
        });
    }

    #[test]
    fn a_corrupt_ceiling_file_refuses_to_open() {
        let dir = TempDir::new("clock-corrupt");
        std::fs::create_dir_all(dir.path().join("clock")).expect("mkdir");
        std::fs::write(dir.path().join("clock/core-3"), "not a number").expect("write");
        let (_now, clock) = manual(T0);
        let err = Hlc::open_with_clock(dir.path(), 0, 1 << 8, clock, SkewBound::new(SKEW_MS))
            .err()
            .expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
