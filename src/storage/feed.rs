//! The node's change feed: the keys its replica stored, in order, for prefix watches
//! (DESIGN §11).
//!
//! It records only while someone may ask: while a prefix watch waits, and for
//! [`limits::CHANGE_FEED_LINGER_MS`] after one was issued a cursor or left (a client between
//! two polls, or listing before its first). Otherwise a stored write costs one atomic load.
//! While it records, every stored write (a PUT, REPAIR or COPY that stored a version, an
//! expiry's tombstone) appends `(sequence, key, version)` under one mutex shared by the
//! cores; the ring keeps the newest [`limits::CHANGE_FEED_ENTRIES_MAX`] entries and
//! [`limits::CHANGE_FEED_BYTES_MAX`] key bytes at most.
//!
//! A cursor is `run.sequence`: a client has seen every change before `sequence`. The feed
//! vouches for a cursor only when nothing after it was lost: same process run, not older than
//! the oldest entry kept, and recording without a break since. Otherwise the answer is
//! "resync" (list again from a fresh cursor). The sequence and `run` are this process's
//! alone: a cursor from another node or an earlier run never passes.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use std::collections::hash_map::RandomState;
use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_channel::oneshot;

use super::Version;
use crate::limits;

/// One stored change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: u64,
    pub key: Vec<u8>,
    /// The version this node's replica stored.
    pub version: Version,
}

/// What the feed holds after a cursor.
#[derive(Debug)]
pub enum Since {
    /// The changes after the cursor under the prefix (at most the number asked for), and the
    /// cursor past the last entry looked at. Empty: nothing yet; `wake` ends at the next
    /// change recorded (whatever its key).
    Changes {
        changes: Vec<Change>,
        next: u64,
        wake: Option<oneshot::Receiver<()>>,
    },
    /// The feed cannot vouch for the cursor: list again, then watch from `now`.
    Resync { now: u64 },
}

pub struct ChangeFeed {
    /// Recording, read without the lock by every stored write.
    on: AtomicBool,
    /// Tells this process's cursors from any other's.
    run: u64,
    ring: Mutex<Ring>,
}

struct Ring {
    entries: VecDeque<Change>,
    key_bytes: usize,
    /// The sequence the next change gets.
    next: u64,
    /// Every change from this sequence on is in `entries` (or after them): the oldest
    /// cursor vouched for.
    low: u64,
    /// Prefix watches attached now.
    watching: usize,
    /// Recording goes on until this instant with nobody attached.
    linger_until: Instant,
    /// Who waits for the next change.
    waiting: Vec<oneshot::Sender<()>>,
}

impl Default for ChangeFeed {
    fn default() -> Self {
        ChangeFeed::new()
    }
}

impl ChangeFeed {
    pub fn new() -> ChangeFeed {
        ChangeFeed {
            on: AtomicBool::new(false),
            run: RandomState::new().hash_one(std::process::id()) >> 16,
            ring: Mutex::new(Ring {
                entries: VecDeque::new(),
                key_bytes: 0,
                next: 1,
                low: 1,
                watching: 0,
                linger_until: Instant::now(),
                waiting: Vec::new(),
            }),
        }
    }

    /// Records a stored change, if the feed records.
    pub fn record(&self, key: &[u8], version: Version) {
        // SeqCst pairs with the store in `start`: a change stored before recording began is
        // older than any cursor issued, one stored after it is recorded.
        if !self.on.load(Ordering::SeqCst) {
            return;
        }
        let mut ring = self.lock();
        if ring.watching == 0 && Instant::now() >= ring.linger_until {
            self.on.store(false, Ordering::SeqCst);
            ring.entries = VecDeque::new();
            ring.key_bytes = 0;
            ring.waiting = Vec::new();
            return;
        }
        let seq = ring.next;
        ring.next += 1;
        ring.key_bytes += key.len();
        ring.entries.push_back(Change {
            seq,
            key: key.to_vec(),
            version,
        });
        while ring.entries.len() > limits::CHANGE_FEED_ENTRIES_MAX
            || ring.key_bytes > limits::CHANGE_FEED_BYTES_MAX
        {
            let Some(old) = ring.entries.pop_front() else {
                break;
            };
            ring.key_bytes -= old.key.len();
            ring.low = old.seq + 1;
        }
        for waiter in ring.waiting.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// A cursor from which changes are recorded from now on (recording starts if it was off,
    /// and lingers for a client that lists before it watches).
    pub fn cursor(&self) -> String {
        let mut ring = self.lock();
        self.start(&mut ring);
        ring.linger_until = Instant::now() + Duration::from_millis(limits::CHANGE_FEED_LINGER_MS);
        self.format(ring.next)
    }

    /// A prefix watch begins: recording stays on until it ends (and lingers after).
    pub fn attach(&self) -> Attached<'_> {
        let mut ring = self.lock();
        self.start(&mut ring);
        ring.watching += 1;
        Attached { feed: self }
    }

    /// The recorded changes of keys under `prefix` after `cursor`, `max` at most; see
    /// [`Since`]. A cursor this feed did not issue, or cannot vouch for, gets `Resync`.
    pub fn since(&self, cursor: &str, prefix: &[u8], max: usize) -> Since {
        let mut ring = self.lock();
        self.start(&mut ring);
        let seq = match self.parse(cursor) {
            Some(seq) if (ring.low..=ring.next).contains(&seq) => seq,
            _ => return Since::Resync { now: ring.next },
        };
        let skip = seq.saturating_sub(ring.entries.front().map_or(ring.next, |c| c.seq));
        let mut changes = Vec::new();
        let mut next = ring.next;
        for change in ring.entries.iter().skip(skip as usize) {
            if changes.len() == max {
                next = change.seq;
                break;
            }
            if change.key.starts_with(prefix) {
                changes.push(change.clone());
            }
        }
        let wake = changes.is_empty().then(|| {
            let (tx, rx) = oneshot::channel();
            ring.waiting.retain(|w| !w.is_canceled());
            ring.waiting.push(tx);
            rx
        });
        Since::Changes {
            changes,
            next,
            wake,
        }
    }

    /// The text of the cursor at `seq`.
    pub fn format(&self, seq: u64) -> String {
        format!("{:x}.{seq}", self.run)
    }

    fn parse(&self, cursor: &str) -> Option<u64> {
        let (run, seq) = cursor.split_once('.')?;
        (u64::from_str_radix(run, 16).ok()? == self.run).then_some(())?;
        seq.parse().ok()
    }

    /// Turns recording on; if it was off, nothing before now can be vouched for.
    fn start(&self, ring: &mut Ring) {
        if !self.on.load(Ordering::SeqCst) {
            // A cursor issued before the break may equal `next`: skip one so it cannot pass.
            ring.next += 1;
            ring.low = ring.next;
            self.on.store(true, Ordering::SeqCst);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock leaves the ring consistent (each step is complete).
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A prefix watch's hold on the feed; recording lingers after the last one goes.
pub struct Attached<'a> {
    feed: &'a ChangeFeed,
}

impl Drop for Attached<'_> {
    fn drop(&mut self) {
        let mut ring = self.feed.lock();
        ring.watching -= 1;
        ring.linger_until = Instant::now() + Duration::from_millis(limits::CHANGE_FEED_LINGER_MS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(hlc: u64) -> Version {
        Version { hlc, origin: 2 }
    }

    fn keys(since: Since) -> (Vec<Vec<u8>>, u64) {
        match since {
            Since::Changes { changes, next, .. } => {
                (changes.into_iter().map(|c| c.key).collect(), next)
            }
            Since::Resync { .. } => panic!("resync"),
        }
    }

    #[test]
    fn records_nothing_until_asked() {
        let feed = ChangeFeed::new();
        feed.record(b"a/1", v(1));
        let cursor = feed.cursor();
        feed.record(b"a/2", v(2));
        feed.record(b"b/1", v(3));
        let (got, next) = keys(feed.since(&cursor, b"a/", 10));
        assert_eq!(got, vec![b"a/2".to_vec()]);
        // Past both entries: the next call waits.
        let Since::Changes { changes, wake, .. } = feed.since(&feed.format(next), b"a/", 10) else {
            panic!("resync")
        };
        assert!(changes.is_empty() && wake.is_some());
    }

    #[test]
    fn a_full_answer_stops_at_the_first_entry_left_out() {
        let feed = ChangeFeed::new();
        let cursor = feed.cursor();
        for n in 0..5u64 {
            feed.record(format!("k{n}").as_bytes(), v(n));
        }
        let (got, next) = keys(feed.since(&cursor, b"k", 2));
        assert_eq!(got, vec![b"k0".to_vec(), b"k1".to_vec()]);
        let (rest, _) = keys(feed.since(&feed.format(next), b"k", 10));
        assert_eq!(rest, vec![b"k2".to_vec(), b"k3".to_vec(), b"k4".to_vec()]);
    }

    #[test]
    fn a_cursor_it_cannot_vouch_for_gets_resync() {
        let feed = ChangeFeed::new();
        let cursor = feed.cursor();
        for n in 0..(limits::CHANGE_FEED_ENTRIES_MAX as u64 + 1) {
            feed.record(b"k", v(n));
        }
        assert!(matches!(feed.since(&cursor, b"", 10), Since::Resync { .. }));
        // Another run's cursor, a future one, and nonsense.
        let other = ChangeFeed::new();
        assert!(matches!(
            feed.since(&other.cursor(), b"", 10),
            Since::Resync { .. }
        ));
        assert!(matches!(
            feed.since(&feed.format(u64::MAX), b"", 10),
            Since::Resync { .. }
        ));
        assert!(matches!(feed.since("zz.1", b"", 10), Since::Resync { .. }));
    }

    #[test]
    fn recording_stops_after_the_linger_and_old_cursors_resync() {
        let feed = ChangeFeed::new();
        let cursor = feed.cursor();
        {
            let mut ring = feed.lock();
            ring.linger_until = Instant::now();
        }
        feed.record(b"k", v(1)); // Nobody attached, linger over: recording stops here.
        assert!(!feed.on.load(Ordering::SeqCst));
        feed.record(b"k", v(2));
        // The feed restarts for this call, but cannot vouch for what it missed.
        assert!(matches!(feed.since(&cursor, b"", 10), Since::Resync { .. }));
    }

    #[test]
    fn an_attached_watch_keeps_it_recording_and_is_woken() {
        let feed = ChangeFeed::new();
        let attached = feed.attach();
        let cursor = feed.cursor();
        feed.lock().linger_until = Instant::now();
        let Since::Changes { wake, .. } = feed.since(&cursor, b"", 10) else {
            panic!("resync")
        };
        let mut wake = wake.expect("waits");
        feed.record(b"k", v(1));
        assert!(matches!(wake.try_recv(), Ok(Some(()))));
        drop(attached);
        let (got, _) = keys(feed.since(&cursor, b"", 10));
        assert_eq!(got, vec![b"k".to_vec()]);
    }
}
