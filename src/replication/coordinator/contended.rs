//! Keys whose writes saw rejections recently: their next writes take the safe path
//! (DESIGN §3), which contention never makes indeterminate. A bounded map with expiry,
//! owned by the driver (one per core); time is injected.

use crate::limits;
use std::collections::{HashMap, VecDeque};

/// A bounded set of recently contended keys, each remembered for a hold time after its last
/// rejection. Past the bound the oldest entry is forgotten (its writes go fast again, which
/// is safe: the fast path is correct under contention, only less often definite).
#[derive(Debug)]
pub struct ContendedKeys {
    /// Key → the time (ms) it stops being contended.
    until: HashMap<Vec<u8>, u64>,
    /// `(key, until)` in the order noted; `until` only grows along it (time is monotonic), so
    /// the front expires first. A key noted again has a stale older entry here, skipped.
    order: VecDeque<(Vec<u8>, u64)>,
    keys_max: usize,
    hold_ms: u64,
    /// The latest time seen: a clock stepping back does not reorder `order`.
    now_ms: u64,
}

impl Default for ContendedKeys {
    fn default() -> Self {
        ContendedKeys::new(limits::CONTENDED_KEYS_MAX, limits::CONTENDED_HOLD_MS)
    }
}

impl ContendedKeys {
    pub fn new(keys_max: usize, hold_ms: u64) -> ContendedKeys {
        assert!(keys_max > 0, "a contended-key map holds at least one key");
        ContendedKeys {
            until: HashMap::new(),
            order: VecDeque::new(),
            keys_max,
            hold_ms,
            now_ms: 0,
        }
    }

    /// A write of `key` saw a rejection at `now_ms`.
    pub fn note(&mut self, key: &[u8], now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        let until = self.now_ms.saturating_add(self.hold_ms);
        if self.until.get(key) != Some(&until) {
            self.until.insert(key.to_vec(), until);
            self.order.push_back((key.to_vec(), until));
        }
        self.expire();
        while self.order.len() > self.keys_max {
            self.pop_front();
        }
    }

    /// Whether writes of `key` should take the safe path at `now_ms`.
    pub fn contains(&self, key: &[u8], now_ms: u64) -> bool {
        self.until
            .get(key)
            .is_some_and(|&until| until > now_ms.max(self.now_ms))
    }

    /// Keys currently remembered (expired ones may linger until the next `note`).
    pub fn len(&self) -> usize {
        self.until.len()
    }

    pub fn is_empty(&self) -> bool {
        self.until.is_empty()
    }

    fn expire(&mut self) {
        while self
            .order
            .front()
            .is_some_and(|(_, until)| *until <= self.now_ms)
        {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some((key, until)) = self.order.pop_front() {
            if self.until.get(&key) == Some(&until) {
                self.until.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_contended_for_the_hold_time_after_its_last_rejection() {
        let mut keys = ContendedKeys::new(8, 100);
        assert!(!keys.contains(b"a", 0));
        keys.note(b"a", 10);
        assert!(keys.contains(b"a", 10));
        assert!(keys.contains(b"a", 109));
        assert!(!keys.contains(b"a", 110));
        keys.note(b"a", 50); // renewed: 150
        assert!(keys.contains(b"a", 149));
        keys.note(b"b", 120); // the stale (a, 110) entry expires, (a, 150) stays
        assert!(keys.contains(b"a", 120));
        keys.note(b"c", 200); // (a, 150) expires; b holds until 220
        assert!(!keys.contains(b"a", 200));
        assert!(keys.contains(b"b", 200));
        assert_eq!(keys.len(), 2, "b and c");
    }

    #[test]
    fn bounded_forgets_the_oldest() {
        let mut keys = ContendedKeys::new(3, 1_000);
        for (i, key) in [b"k1", b"k2", b"k3", b"k4"].iter().enumerate() {
            keys.note(*key, i as u64);
        }
        assert_eq!(keys.len(), 3);
        assert!(!keys.contains(b"k1", 4), "the oldest was forgotten");
        assert!(keys.contains(b"k4", 4) && keys.contains(b"k2", 4));
        for t in 0..10_000 {
            keys.note(format!("x{}", t % 50).as_bytes(), 10 + t);
            assert!(keys.order.len() <= 3 && keys.len() <= 3);
        }
    }

    #[test]
    fn a_clock_stepping_back_does_not_extend_or_break_anything() {
        let mut keys = ContendedKeys::new(4, 100);
        keys.note(b"a", 1_000);
        keys.note(b"b", 10); // treated as 1_000
        assert!(keys.contains(b"b", 1_099));
        assert!(!keys.contains(b"b", 1_100));
        assert!(keys.contains(b"a", 5), "time seen only moves forward");
        assert!(!keys.contains(b"a", 1_100));
    }
}
