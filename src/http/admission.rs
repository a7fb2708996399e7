//! Who may open a client connection, so that no client can lock the others out (DESIGN §14):
//! at most `per_source_max` connections from one IP address and `max_total` in all. At the
//! node-wide cap the accepting core closes its longest-idle connection (one waiting for its
//! next request) to admit the new one: a client holding thousands of idle connections loses
//! them to clients that send requests. Counts are touched on accept and close only, never per
//! request.
//!
//! Must not import `api`, `replication` or `storage`.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::runtime::Latch;

/// Locks the per-source counts are spread over (by address hash), so cores accepting at once
/// rarely meet on one.
const SOURCE_LOCKS: usize = 16;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its source address already holds `per_source_max` connections.
    PerSource,
    /// The node holds `max_total` and this core had no idle connection to close.
    Total,
}

/// The node-wide connection counts. One per node, shared by every core.
#[derive(Debug)]
pub struct Admission {
    max_total: usize,
    per_source_max: usize,
    total: AtomicUsize,
    /// Of `total`, the connections switched to a peer link (counted on switch and close).
    upgraded: AtomicUsize,
    sources: Vec<Mutex<HashMap<IpAddr, usize>>>,
}

/// An admitted connection's place in the counts, given back on drop.
#[derive(Debug)]
pub struct Admitted {
    admission: Arc<Admission>,
    source: IpAddr,
}

impl Admission {
    pub fn new(max_total: usize, per_source_max: usize) -> Admission {
        Admission {
            max_total: max_total.max(1),
            per_source_max: per_source_max.max(1),
            total: AtomicUsize::new(0),
            upgraded: AtomicUsize::new(0),
            sources: (0..SOURCE_LOCKS).map(|_| Mutex::default()).collect(),
        }
    }

    /// The node-wide cap (`MOSTDB_MAX_CONNECTIONS`).
    pub fn max_total(&self) -> usize {
        self.max_total
    }

    /// The cap per source address (`MOSTDB_MAX_CONNECTIONS_PER_SOURCE`).
    pub fn per_source_max(&self) -> usize {
        self.per_source_max
    }

    /// Client connections open now.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Of the connections open, those switched to a peer link.
    pub fn upgraded(&self) -> usize {
        self.upgraded.load(Ordering::Relaxed)
    }

    /// A connection was switched to a peer link, until the guard is dropped.
    pub fn count_upgraded(self: &Arc<Self>) -> UpgradedGuard {
        self.upgraded.fetch_add(1, Ordering::Relaxed);
        UpgradedGuard {
            admission: self.clone(),
        }
    }

    /// Admits a connection from `source`, or says why not. At the node-wide cap `make_room`
    /// is asked to close an idle connection; the new one is admitted if it did (the count
    /// exceeds the cap until the closed one is gone, by at most one per core at a time).
    pub fn admit(
        self: &Arc<Self>,
        source: IpAddr,
        make_room: impl FnOnce() -> bool,
    ) -> Result<Admitted, Refused> {
        {
            let mut sources = self.lock(source);
            let held = sources.entry(source).or_insert(0);
            if *held >= self.per_source_max {
                return Err(Refused::PerSource);
            }
            *held += 1;
        }
        let admitted = Admitted {
            admission: self.clone(),
            source,
        };
        if self.total.fetch_add(1, Ordering::Relaxed) >= self.max_total && !make_room() {
            // Dropping `admitted` gives both counts back.
            return Err(Refused::Total);
        }
        Ok(admitted)
    }

    fn lock(&self, source: IpAddr) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(source);
        let lock = &self.sources[hash as usize % SOURCE_LOCKS];
        // A panic while holding this lock cannot leave the map inconsistent (one entry is
        // changed at a time), so a poisoned lock is used as it is.
        lock.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One connection counted as switched to a peer link; uncounted on drop.
pub struct UpgradedGuard {
    admission: Arc<Admission>,
}

impl Drop for UpgradedGuard {
    fn drop(&mut self) {
        self.admission.upgraded.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.admission.total.fetch_sub(1, Ordering::Relaxed);
        let mut sources = self.admission.lock(self.source);
        if let Some(held) = sources.get_mut(&self.source) {
            *held -= 1;
            if *held == 0 {
                sources.remove(&self.source);
            }
        }
    }
}

/// One connection as the idle pool sees it: since when it waits for a request (if it does),
/// and the latch that asks it to close.
#[derive(Default)]
pub struct ConnSlot {
    idle_since: Cell<Option<Instant>>,
    evict: Latch,
}

impl ConnSlot {
    /// The connection waits for its next request from now on.
    pub fn set_idle(&self, idle: bool) {
        self.idle_since.set(idle.then(Instant::now));
    }

    /// Completes once the pool asks this connection to close.
    pub fn evicted(&self) -> crate::runtime::latch::Wait {
        self.evict.wait()
    }
}

/// One core's live client connections, to find the longest-idle one. Core-local.
#[derive(Default)]
pub struct IdlePool {
    slots: RefCell<Vec<Option<Rc<ConnSlot>>>>,
    free: RefCell<Vec<usize>>,
}

/// A connection's registration in its core's pool, removed on drop.
pub struct Registered {
    pool: Rc<IdlePool>,
    index: usize,
    slot: Rc<ConnSlot>,
}

impl Registered {
    pub fn slot(&self) -> &ConnSlot {
        &self.slot
    }
}

impl IdlePool {
    pub fn register(self: &Rc<Self>) -> Registered {
        let slot = Rc::new(ConnSlot::default());
        let mut slots = self.slots.borrow_mut();
        let index = match self.free.borrow_mut().pop() {
            Some(index) => {
                slots[index] = Some(slot.clone());
                index
            }
            None => {
                slots.push(Some(slot.clone()));
                slots.len() - 1
            }
        };
        Registered {
            pool: self.clone(),
            index,
            slot,
        }
    }

    /// Asks the connection that has waited longest for a request to close. False when no
    /// connection of this core is idle.
    pub fn evict_oldest(&self) -> bool {
        let slots = self.slots.borrow();
        let oldest = slots
            .iter()
            .flatten()
            .filter_map(|slot| slot.idle_since.get().map(|since| (since, slot)))
            .min_by_key(|(since, _)| *since);
        match oldest {
            Some((_, slot)) => {
                slot.idle_since.set(None);
                slot.evict.set();
                true
            }
            None => false,
        }
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.pool.slots.borrow_mut()[self.index] = None;
        self.pool.free.borrow_mut().push(self.index);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, last])
    }

    #[test]
    fn one_source_cannot_take_more_than_its_share() {
        let admission = Arc::new(Admission::new(100, 2));
        let a = admission.admit(ip(2), || false).expect("first");
        let b = admission.admit(ip(2), || false).expect("second");
        assert_eq!(
            admission.admit(ip(2), || false).err(),
            Some(Refused::PerSource)
        );
        let other = admission.admit(ip(3), || false).expect("another source");
        drop(a);
        let again = admission.admit(ip(2), || false).expect("a slot given back");
        assert_eq!(admission.open(), 3);
        drop((b, other, again));
        assert_eq!(admission.open(), 0);
        assert!(admission
            .sources
            .iter()
            .all(|m| m.lock().unwrap().is_empty()));
    }

    #[test]
    fn upgraded_connections_are_counted_while_they_last() {
        let admission = Arc::new(Admission::new(10, 10));
        let conn = admission.admit(ip(2), || false).expect("admitted");
        let peer = admission.count_upgraded();
        assert_eq!((admission.open(), admission.upgraded()), (1, 1));
        drop(peer);
        drop(conn);
        assert_eq!((admission.open(), admission.upgraded()), (0, 0));
    }

    #[test]
    fn at_the_cap_a_connection_is_admitted_only_if_room_was_made() {
        let admission = Arc::new(Admission::new(2, 10));
        let _a = admission.admit(ip(2), || false).expect("a");
        let _b = admission.admit(ip(3), || false).expect("b");
        assert_eq!(admission.admit(ip(4), || false).err(), Some(Refused::Total));
        assert_eq!(admission.open(), 2, "a refusal gives its count back");
        let c = admission.admit(ip(4), || true).expect("room was made");
        assert_eq!(admission.open(), 3);
        drop(c);
    }

    #[test]
    fn the_longest_idle_connection_is_evicted_first() {
        let pool = Rc::new(IdlePool::default());
        let busy = pool.register();
        let old = pool.register();
        let young = pool.register();
        assert!(!pool.evict_oldest(), "nobody idle");
        old.slot().set_idle(true);
        std::thread::sleep(std::time::Duration::from_millis(2));
        young.slot().set_idle(true);
        assert!(pool.evict_oldest());
        assert!(old.slot().evict.is_set() && !young.slot().evict.is_set());
        assert!(pool.evict_oldest());
        assert!(young.slot().evict.is_set() && !busy.slot().evict.is_set());
        assert!(!pool.evict_oldest());
        drop(old);
        let reused = pool.register();
        assert_eq!(reused.index, 1, "slots are reused");
    }
}
