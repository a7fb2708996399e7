//! The hybrid logical clock of DESIGN §2, one per core: issues versions that are unique
//! forever and never go backwards, across restarts and clock steps too.
//!
//! `hlc` = physical milliseconds since the epoch in the high 48 bits, a counter in the low
//! 16; `now()` = max(last + 1, physical). Before it issues a value above its persisted
//! *ceiling* it makes a new ceiling (~2 s ahead) durable in `<root>/clock/core-<n>`; on open
//! it starts above every ceiling file in that directory, so a restart with fewer cores or
//! with the clock set back never reissues a value. Ceilings are refreshed in the background
//! when the clock gets within ~1 s of them, so issuing normally never waits for the disk.
//!
//! `!Send`: each core opens its own inside its monoio runtime (which needs a blocking pool
//! attached). Must not import `http` or `api`.

use crate::limits;
use crate::storage::store::{sync_dir, write_atomically};
use crate::storage::Version;
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// Bits of the counter below the milliseconds.
pub const COUNTER_BITS: u32 = 16;
/// Largest physical time used, in ms (about the year 6400): keeps `ms << 16` and the
/// ceiling arithmetic far from overflowing even under a wildly wrong clock.
const PHYSICAL_MS_MAX: u64 = (1 << 47) - 1;
/// Largest hlc [`Hlc::observe`] takes in; anything above is garbage, not a clock.
pub const OBSERVE_HLC_MAX: u64 = PHYSICAL_MS_MAX << COUNTER_BITS;
const CLOCK_DIR: &str = "clock";
const CEILING_PREFIX: &str = "core-";

/// Milliseconds since the Unix epoch; replaceable in tests.
pub type PhysicalClock = Box<dyn Fn() -> u64>;

/// A version's origin: the node id with the core in the low 8 bits (node ids are random,
/// so losing their top 8 bits costs nothing).
pub fn origin(node_id: u64, core: usize) -> u64 {
    debug_assert!(core < limits::THREADS_MAX);
    (node_id << 8) | (core as u64 & 0xff)
}

/// The system clock, in ms since the epoch (0 before it).
pub fn system_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn ms_to_hlc(ms: u64) -> u64 {
    ms.min(PHYSICAL_MS_MAX) << COUNTER_BITS
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
    ignored_observations: Cell<u64>,
}

impl Hlc {
    /// Opens core `core`'s clock under `root` with the system clock. Blocking (reads the
    /// ceilings, writes this core's): call it on the core before it serves.
    pub fn open(root: &Path, core: usize, origin: u64) -> io::Result<Hlc> {
        Hlc::open_with_clock(root, core, origin, Box::new(system_ms))
    }

    /// [`Hlc::open`] with an injected physical clock.
    pub fn open_with_clock(
        root: &Path,
        core: usize,
        origin: u64,
        physical: PhysicalClock,
    ) -> io::Result<Hlc> {
        let dir = root.join(CLOCK_DIR);
        std::fs::create_dir_all(&dir)?;
        sync_dir(root)?;
        let highest = highest_ceiling(&dir)?;
        let start = ms_to_hlc(physical()).max(highest);
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
                ignored_observations: Cell::new(0),
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

    /// Takes in an hlc seen elsewhere (a peer's version), so later values are above it.
    /// `last` never decreases. A value beyond any plausible clock ([`OBSERVE_HLC_MAX`]) is
    /// ignored and counted ([`Hlc::ignored_observations`]).
    pub fn observe(&self, hlc: u64) {
        if hlc > OBSERVE_HLC_MAX {
            let ignored = &self.inner.ignored_observations;
            ignored.set(ignored.get() + 1);
        } else if hlc > self.inner.last.get() {
            self.inner.last.set(hlc);
        }
    }

    /// How many observed values were ignored as implausible.
    pub fn ignored_observations(&self) -> u64 {
        self.inner.ignored_observations.get()
    }

    /// The last value issued or observed.
    pub fn last(&self) -> u64 {
        self.inner.last.get()
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

    fn run<F: Future>(f: F) -> F::Output {
        let mut rt = monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
            .enable_timer()
            .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(1)))
            .build()
            .expect("runtime");
        rt.block_on(f)
    }

    /// A clock the test moves by hand.
    fn manual(ms: u64) -> (Rc<Cell<u64>>, PhysicalClock) {
        let now = Rc::new(Cell::new(ms));
        let read = now.clone();
        (now, Box::new(move || read.get()))
    }

    fn open(dir: &TempDir, core: usize, clock: PhysicalClock) -> Hlc {
        Hlc::open_with_clock(dir.path(), core, origin(0xABCD, core), clock).expect("open")
    }

    #[test]
    fn origin_puts_the_core_in_the_low_byte() {
        assert_eq!(origin(0x1234, 5), 0x12_3405);
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
    fn observe_takes_in_a_far_future_value_and_ignores_garbage() {
        let dir = TempDir::new("clock-observe");
        let (now, clock) = manual(T0);
        let hlc = open(&dir, 0, clock);
        let ten_years = ms_to_hlc(T0 + 10 * 365 * 86_400_000) | 7;
        run(async {
            hlc.observe(ten_years);
            hlc.observe(5); // an older value changes nothing
            assert_eq!(hlc.last(), ten_years);
            let v = hlc.now().await;
            assert_eq!(v.hlc, ten_years + 1);
            let on_disk: u64 = std::fs::read_to_string(dir.path().join("clock/core-0"))
                .expect("ceiling file")
                .trim()
                .parse()
                .expect("number");
            assert!(
                on_disk >= v.hlc,
                "the ceiling was made durable before issuing"
            );
            hlc.observe(u64::MAX);
            assert_eq!(hlc.ignored_observations(), 1);
            now.set(T0 + 1);
            assert_eq!(hlc.now().await.hlc, ten_years + 2);
        });
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
        let err = Hlc::open_with_clock(dir.path(), 0, 1 << 8, clock)
            .err()
            .expect("refused");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
