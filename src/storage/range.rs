//! Key-ordered scans of a range of keys across every shard (listing, DESIGN §11). Shards hold
//! keys by hash, each in key order: a range scan merges one iterator per shard. Blocking
//! (plain fjall reads): callers run it off the event loop.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use std::ops::Bound;

use super::record::RecordRef;
use super::{Meta, StorageError, Store, Version};

/// The keys of a listing: from `lower` (inclusive or not) to `upper` (exclusive; `None`: to
/// the end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub lower: Vec<u8>,
    pub lower_inclusive: bool,
    pub upper: Option<Vec<u8>>,
}

impl KeyRange {
    /// Every key that starts with `prefix`.
    pub fn prefix(prefix: &[u8]) -> KeyRange {
        KeyRange {
            lower: prefix.to_vec(),
            lower_inclusive: true,
            upper: prefix_end(prefix),
        }
    }

    /// The same range, from just after `key` on.
    pub fn after(&self, key: &[u8]) -> KeyRange {
        KeyRange {
            lower: key.to_vec(),
            lower_inclusive: false,
            upper: self.upper.clone(),
        }
    }

    /// Whether `key` is in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        let above = if self.lower_inclusive {
            key >= self.lower.as_slice()
        } else {
            key > self.lower.as_slice()
        };
        above && self.upper.as_deref().is_none_or(|upper| key < upper)
    }

    fn bounds(&self) -> (Bound<&[u8]>, Bound<&[u8]>) {
        let lower = if self.lower_inclusive {
            Bound::Included(self.lower.as_slice())
        } else {
            Bound::Excluded(self.lower.as_slice())
        };
        let upper = match &self.upper {
            Some(upper) => Bound::Excluded(upper.as_slice()),
            None => Bound::Unbounded,
        };
        (lower, upper)
    }
}

/// The first key after every key that starts with `prefix` (`None`: there is none, the
/// prefix is empty or all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// One record of a range scan: tombstones included (a listing must see deletes to merge).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeEntry {
    pub key: Vec<u8>,
    pub version: Version,
    /// `None`: a tombstone, or the value was not asked for.
    pub value: Option<Vec<u8>>,
    pub meta: Meta,
    pub tombstone: bool,
}

impl RangeEntry {
    /// Bytes this entry takes in a page (key, value, and room for the rest).
    pub fn size(&self) -> usize {
        self.key.len() + self.value.as_ref().map_or(0, Vec::len) + RANGE_ENTRY_OVERHEAD_BYTES
    }
}

/// What an entry costs beyond its key and value, in a page's byte budget and on the wire.
pub const RANGE_ENTRY_OVERHEAD_BYTES: usize = 48;

/// A page of a range scan, in key order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RangePage {
    pub entries: Vec<RangeEntry>,
    /// The scan reached the range's end: no key of the range beyond the last entry.
    pub complete: bool,
}

impl Store {
    /// The records of `range` in key order, at most `limit` (at least one if any) and about
    /// `bytes_max` bytes (a first entry is taken whatever its size), values only if `values`.
    /// Promise-only records (a CAS's vote on an absent key) are left out; records that do not
    /// decode are skipped (the shard's own reads report them). Blocking.
    pub fn scan_range(
        &self,
        range: &KeyRange,
        limit: usize,
        bytes_max: usize,
        values: bool,
    ) -> Result<RangePage, StorageError> {
        let shards: Vec<_> = (0..self.shard_count()).map(|s| self.shard_db(s)).collect();
        let mut heads = Vec::with_capacity(shards.len());
        let mut iters = Vec::with_capacity(shards.len());
        for db in &shards {
            let mut iter = db.keyspace().range::<&[u8], _>(range.bounds());
            heads.push(next_record(&mut iter)?);
            iters.push(iter);
        }
        let mut page = RangePage::default();
        let mut bytes = 0;
        loop {
            // The smallest key among the shards' heads.
            let Some(i) = (0..heads.len())
                .filter(|&i| heads[i].is_some())
                .min_by(|&a, &b| key_of(&heads[a]).cmp(key_of(&heads[b])))
            else {
                page.complete = true;
                return Ok(page);
            };
            if page.entries.len() >= limit {
                return Ok(page);
            }
            let Some((key, raw)) = heads[i].take() else {
                continue;
            };
            if let Ok(record) = RecordRef::decode(&raw) {
                if record.version != Version::ZERO {
                    let entry = RangeEntry {
                        key: key.to_vec(),
                        version: record.version,
                        value: record.value.filter(|_| values).map(<[u8]>::to_vec),
                        meta: record.meta,
                        tombstone: record.value.is_none(),
                    };
                    if !page.entries.is_empty() && bytes + entry.size() > bytes_max {
                        heads[i] = Some((key, raw));
                        return Ok(page);
                    }
                    bytes += entry.size();
                    page.entries.push(entry);
                }
            }
            heads[i] = next_record(&mut iters[i])?;
        }
    }
}

type Raw = (fjall::Slice, fjall::Slice);

fn key_of(head: &Option<Raw>) -> &[u8] {
    head.as_ref().map_or(&[][..], |(k, _)| k)
}

fn next_record(iter: &mut impl Iterator<Item = fjall::Guard>) -> Result<Option<Raw>, StorageError> {
    iter.next()
        .map(|g| g.into_inner())
        .transpose()
        .map_err(Into::into)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::store::test_dir::TempDir;

    fn open(dir: &TempDir, shards: u32) -> Store {
        crate::storage::store::test_dir::open_store(dir, shards)
    }

    fn put(store: &Store, key: &[u8], hlc: u64, value: Option<&[u8]>) {
        let mut raw = Vec::new();
        crate::storage::record::encode_into(Version { hlc, origin: 2 }, value, &mut raw);
        let shard = store.shard_for_key(key);
        store
            .shard_db(shard)
            .keyspace()
            .insert(key, raw)
            .expect("insert");
    }

    fn keys(page: &RangePage) -> Vec<String> {
        page.entries
            .iter()
            .map(|e| String::from_utf8_lossy(&e.key).into_owned())
            .collect()
    }

    #[test]
    fn prefix_ends_skip_trailing_ff() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
        let r = KeyRange::prefix(b"ab");
        assert!(r.contains(b"ab") && r.contains(b"abz") && !r.contains(b"ac"));
        assert!(!r.after(b"ab").contains(b"ab"));
    }

    #[test]
    fn a_range_is_read_in_key_order_across_shards_with_tombstones() {
        let dir = TempDir::new("range-scan");
        let store = open(&dir, 4);
        for i in 0..50u64 {
            let value = (i % 5 != 0).then_some(&b"v"[..]);
            put(&store, format!("p/{i:02}").as_bytes(), i + 1, value);
        }
        put(&store, b"q/other", 99, Some(b"x"));
        let range = KeyRange::prefix(b"p/");
        let first = store
            .scan_range(&range, 20, usize::MAX, true)
            .expect("scan");
        let want: Vec<String> = (0..20).map(|i| format!("p/{i:02}")).collect();
        assert_eq!(keys(&first), want);
        assert!(!first.complete);
        assert!(first.entries[0].tombstone && first.entries[0].value.is_none());
        assert_eq!(first.entries[1].value.as_deref(), Some(&b"v"[..]));
        let rest = store
            .scan_range(&range.after(b"p/19"), 100, usize::MAX, false)
            .expect("scan");
        assert_eq!(rest.entries.len(), 30);
        assert!(rest.complete, "the range ends before q/");
        assert!(rest.entries.iter().all(|e| e.value.is_none()));
    }

    #[test]
    fn the_byte_budget_cuts_a_page_but_never_to_nothing() {
        let dir = TempDir::new("range-bytes");
        let store = open(&dir, 2);
        let big = vec![b'x'; 1_000];
        for i in 0..10 {
            put(&store, format!("k{i}").as_bytes(), i + 1, Some(&big));
        }
        let all = KeyRange::prefix(b"");
        let page = store.scan_range(&all, 100, 3_000, true).expect("scan");
        assert_eq!(page.entries.len(), 2);
        assert!(!page.complete);
        let one = store.scan_range(&all, 100, 10, true).expect("scan");
        assert_eq!(one.entries.len(), 1, "a first entry whatever its size");
    }
}
