//! The decisions of an anti-entropy pass, pure and without I/O: which buckets differ, how they
//! are grouped into rounds of bounded size, and which keys each side must copy to the other.
//! Must not import `http`, `api`, `runtime` or `storage` beyond its types.

use std::collections::HashMap;

use crate::replication::clock::COUNTER_BITS;
use crate::replication::protocol::{BucketDigest, KeyVersion};
use crate::storage::Version;

/// The buckets whose digest or record count differ, ascending.
pub fn differing_buckets(ours: &[BucketDigest], theirs: &[BucketDigest]) -> Vec<u32> {
    debug_assert_eq!(ours.len(), theirs.len());
    ours.iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i as u32)
        .collect()
}

/// Groups `buckets` (taken from `start` on, wrapping, so that a pass cut short by its bounds
/// does not starve the buckets at the end) into rounds of at most `entries_max` records on
/// the larger side; a bucket larger than that is a round of its own. Each round ascending.
pub fn rounds(
    buckets: &[u32],
    start: usize,
    ours: &[BucketDigest],
    theirs: &[BucketDigest],
    entries_max: u64,
) -> Vec<Vec<u32>> {
    let mut order = buckets.to_vec();
    if !order.is_empty() {
        let len = order.len();
        order.rotate_left(start % len);
    }
    let mut rounds = Vec::new();
    let (mut round, mut size) = (Vec::new(), 0u64);
    for bucket in order {
        let i = bucket as usize;
        let records = ours[i].records.max(theirs[i].records);
        if !round.is_empty() && size.saturating_add(records) > entries_max {
            rounds.push(std::mem::take(&mut round));
            size = 0;
        }
        round.push(bucket);
        size = size.saturating_add(records);
    }
    if !round.is_empty() {
        rounds.push(round);
    }
    for round in &mut rounds {
        round.sort_unstable();
    }
    rounds
}

/// What one round must copy. Only into this node: the peer takes what it lacks in its own
/// passes (see the module `pass`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Keys where the peer holds the newer version, with ours (zero: absent here).
    pub pull: Vec<(Vec<u8>, Version)>,
    /// Keys where this node holds the newer version (the peer is behind).
    pub peer_behind: usize,
    /// Differences whose newer version is younger than the settle time: most are writes still
    /// in flight, so they are not copied now.
    pub young: usize,
    /// The young differences where the peer is newer, with our version: looked at again once
    /// they settled (a write this node missed is young for a while too).
    pub young_pull: Vec<(Vec<u8>, Version)>,
}

/// The physical milliseconds of a version's hybrid logical clock.
pub fn physical_ms(version: Version) -> u64 {
    version.hlc >> COUNTER_BITS
}

/// Compares both sides' entries of the same buckets. A key whose newer version was issued at
/// or after `settled_before_ms` (physical milliseconds) is counted as young and left for later.
pub fn compare(ours: Vec<KeyVersion>, theirs: Vec<KeyVersion>, settled_before_ms: u64) -> Plan {
    let mut theirs: HashMap<Vec<u8>, Version> =
        theirs.into_iter().map(|e| (e.key, e.version)).collect();
    let mut plan = Plan::default();
    for entry in ours {
        let their = theirs.remove(&entry.key).unwrap_or(Version::ZERO);
        plan.add(entry.key, entry.version, their, settled_before_ms);
    }
    for (key, their) in theirs {
        plan.add(key, Version::ZERO, their, settled_before_ms);
    }
    plan
}

impl Plan {
    fn add(&mut self, key: Vec<u8>, ours: Version, theirs: Version, settled_before_ms: u64) {
        if ours == theirs {
            return;
        }
        if physical_ms(ours.max(theirs)) >= settled_before_ms {
            self.young += 1;
            if theirs > ours {
                self.young_pull.push((key, ours));
            }
        } else if ours > theirs {
            self.peer_behind += 1;
        } else {
            self.pull.push((key, ours));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(digest: u64, records: u64) -> BucketDigest {
        BucketDigest { digest, records }
    }

    /// A version issued at physical millisecond `ms`.
    fn at(ms: u64, origin: u64) -> Version {
        Version {
            hlc: ms << COUNTER_BITS,
            origin,
        }
    }

    fn kv(key: &str, version: Version) -> KeyVersion {
        KeyVersion {
            key: key.as_bytes().to_vec(),
            version,
        }
    }

    #[test]
    fn buckets_differ_by_digest_or_count() {
        let ours = [digest(1, 1), digest(2, 2), digest(3, 3), digest(0, 0)];
        let theirs = [digest(1, 1), digest(9, 2), digest(3, 4), digest(0, 0)];
        assert_eq!(differing_buckets(&ours, &theirs), vec![1, 2]);
        assert!(differing_buckets(&ours, &ours).is_empty());
    }

    #[test]
    fn rounds_are_bounded_by_the_larger_side_and_cover_every_bucket_once() {
        let ours: Vec<_> = (0..8).map(|i| digest(i, 10)).collect();
        let mut theirs = ours.clone();
        theirs[5] = digest(0, 100); // bigger than a round on its own
        let buckets = [0, 1, 2, 5, 6, 7];
        let rounds = rounds(&buckets, 0, &ours, &theirs, 25);
        assert_eq!(rounds, vec![vec![0, 1], vec![2], vec![5], vec![6, 7]]);
        // Starting elsewhere wraps around, still every bucket once, each round ascending.
        let wrapped = super::rounds(&buckets, 4, &ours, &theirs, 25);
        assert_eq!(wrapped, vec![vec![6, 7], vec![0, 1], vec![2], vec![5]]);
        assert!(super::rounds(&[], 3, &ours, &theirs, 25).is_empty());
    }

    #[test]
    fn each_side_gets_what_it_lacks_and_equal_keys_stay() {
        let settled = 1_000;
        let ours = vec![
            kv("same", at(10, 1)),
            kv("ours-newer", at(20, 1)),
            kv("theirs-newer", at(20, 1)),
            kv("only-ours", at(30, 1)),
        ];
        let theirs = vec![
            kv("same", at(10, 1)),
            kv("ours-newer", at(20, 0)), // same time, lower origin: older
            kv("theirs-newer", at(21, 0)),
            kv("only-theirs", at(40, 2)),
        ];
        let mut plan = compare(ours, theirs, settled);
        plan.pull.sort();
        // only-ours and ours-newer: the peer is behind and takes them in its own pass.
        assert_eq!(plan.peer_behind, 2);
        assert_eq!(
            plan.pull,
            vec![
                (b"only-theirs".to_vec(), Version::ZERO),
                (b"theirs-newer".to_vec(), at(20, 1)),
            ]
        );
        assert_eq!(plan.young, 0);
    }

    #[test]
    fn young_differences_wait_until_they_settled() {
        let ours = vec![kv("a", at(500, 1)), kv("b", at(999, 1)), kv("c", at(10, 1))];
        let theirs = vec![kv("a", at(1_000, 2)), kv("c", at(1_500, 2))];
        let plan = compare(ours, theirs, 1_000);
        // a and c: the newer version is at or past the settle line; b is older than it.
        assert_eq!(plan.young, 2);
        assert_eq!(plan.peer_behind, 1);
        assert!(plan.pull.is_empty());
        // Both are newer on the peer: looked at again once settled.
        assert_eq!(
            plan.young_pull,
            vec![(b"a".to_vec(), at(500, 1)), (b"c".to_vec(), at(10, 1))]
        );
        // Young and newer here: the peer's business, not remembered.
        let plan = compare(vec![kv("d", at(2_000, 1))], vec![], 1_000);
        assert_eq!((plan.young, plan.young_pull.len()), (1, 0));
    }
}
