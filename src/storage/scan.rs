//! Chunked scans of a store: pages of `(key, version)`, read from a [`ScanCursor`] on, for
//! anti-entropy's digests and key listings. Blocking (plain fjall reads): callers run them off
//! the event loop.
//!
//! A page stays within one shard and reads at most the records it is asked for. Each page
//! opens a fresh iterator after the cursor's key, so no snapshot is held between pages
//! (records changed meanwhile are seen or not). Whoever needs to know whether a shard changed
//! between two pages compares their [`ScanPage::generation`]s.
//!
//! Must not import `http`, `api`, `replication` or `runtime`.

use std::ops::{Bound, Deref};

use super::record::RecordRef;
use super::{StorageError, Store, Version};

/// Where a scan goes on: in shard `shard`, after key `after` (`None`: from the shard's start).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScanCursor {
    pub shard: u32,
    pub after: Option<Vec<u8>>,
}

impl ScanCursor {
    /// The start of the store.
    pub const START: ScanCursor = ScanCursor {
        shard: 0,
        after: None,
    };
}

/// A key read by a scan (shares the engine's buffer: no copy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanKey(fjall::Slice);

impl Deref for ScanKey {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// One page of a scan: each record picked, with what the scan took from it (by default its
/// version).
#[derive(Debug)]
pub struct ScanPage<T = Version> {
    /// The shard the page was read from.
    pub shard: u32,
    /// The shard's generation just before the page was read: a number that changes with
    /// every write to the shard. Two pages of one shard with the same generation show one
    /// state of it: nothing was written between them.
    pub generation: u64,
    /// The key of each record picked, in key order, and what was taken from it.
    pub entries: Vec<(ScanKey, T)>,
    /// Records read: the entries and the records that did not decode.
    pub read: usize,
    /// Records that did not decode, left out of `entries` (the shard's own reads report them).
    pub corrupt: usize,
    /// Where the next page starts; `None`: the store's end.
    pub next: Option<ScanCursor>,
}

impl Store {
    /// Reads up to `records_max` records (at least one) of the shard of `from`, after its key:
    /// the `(key, version)` of each, tombstones included. Blocking. A page that reaches
    /// `records_max` goes on after its last key; one that reaches its shard's end goes on at
    /// the next shard's start.
    pub fn scan_page(
        &self,
        from: &ScanCursor,
        records_max: usize,
    ) -> Result<ScanPage, StorageError> {
        // A promise on an absent key is a vote, not data: nothing to compare or copy.
        self.scan_page_picking(from, records_max, |record| {
            (record.version != Version::ZERO).then_some(record.version)
        })
    }

    /// Like [`Store::scan_page`], for the records that hold a value with an expiry (DESIGN
    /// §10): the expiry (an HLC) of each.
    pub fn scan_expiring(
        &self,
        from: &ScanCursor,
        records_max: usize,
    ) -> Result<ScanPage<u64>, StorageError> {
        self.scan_page_picking(from, records_max, |record| {
            record.value.and(record.meta.expires)
        })
    }

    /// A page of the records `pick` takes something from (the others are read and skipped).
    fn scan_page_picking<T>(
        &self,
        from: &ScanCursor,
        records_max: usize,
        mut pick: impl FnMut(&RecordRef<'_>) -> Option<T>,
    ) -> Result<ScanPage<T>, StorageError> {
        let shard = from.shard;
        let mut page = ScanPage {
            shard,
            generation: 0,
            entries: Vec::new(),
            read: 0,
            corrupt: 0,
            next: None,
        };
        if shard >= self.shard_count() {
            return Ok(page);
        }
        let db = self.shard_db(shard);
        page.generation = db.generation();
        let keyspace = db.keyspace();
        let iter = match &from.after {
            Some(after) => {
                keyspace.range::<&[u8], _>((Bound::Excluded(after.as_slice()), Bound::Unbounded))
            }
            None => keyspace.iter(),
        };
        for guard in iter {
            let (key, value) = guard.into_inner()?;
            page.read += 1;
            match RecordRef::decode(&value) {
                Ok(record) => {
                    if let Some(taken) = pick(&record) {
                        page.entries.push((ScanKey(key.clone()), taken));
                    }
                }
                Err(_) => page.corrupt += 1,
            }
            if page.read >= records_max {
                page.next = Some(ScanCursor {
                    shard,
                    after: Some(key.to_vec()),
                });
                return Ok(page);
            }
        }
        page.next = (shard + 1 < self.shard_count()).then_some(ScanCursor {
            shard: shard + 1,
            after: None,
        });
        Ok(page)
    }

    /// A number that changes whenever anything is written to the store: the sum of the
    /// shards' generations (see [`ScanPage::generation`]).
    pub fn generation(&self) -> u64 {
        (0..self.shard_count())
            .map(|s| self.shard_db(s).generation())
            .fold(0, u64::wrapping_add)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::record::encode_into;
    use crate::storage::store::test_dir::TempDir;

    fn open(dir: &TempDir, shards: u32) -> Store {
        crate::storage::store::test_dir::open_store(dir, shards)
    }

    fn put(store: &Store, key: &[u8], raw: &[u8]) {
        let shard = store.shard_for_key(key);
        store
            .shard_db(shard)
            .keyspace()
            .insert(key, raw)
            .expect("insert");
    }

    fn record(hlc: u64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_into(Version { hlc, origin: 1 }, Some(b"v"), &mut out);
        out
    }

    /// Every page of a scan from the start, `per_page` records at most each.
    fn pages(store: &Store, per_page: usize) -> Vec<ScanPage> {
        let (mut out, mut cursor) = (Vec::new(), ScanCursor::START);
        loop {
            let page = store.scan_page(&cursor, per_page).expect("page");
            assert!(page.read <= per_page);
            let next = page.next.clone();
            out.push(page);
            match next {
                Some(next) => cursor = next,
                None => return out,
            }
        }
    }

    #[test]
    fn pages_cover_every_record_once_in_shard_and_key_order() {
        let dir = TempDir::new("scan-pages");
        let store = open(&dir, 3);
        for i in 0..500u64 {
            put(&store, format!("key-{i:04}").as_bytes(), &record(i + 1));
        }
        let mut seen = Vec::new();
        let mut last: Option<(u32, Vec<u8>)> = None;
        for page in pages(&store, 37) {
            for (key, version) in &page.entries {
                let here = (page.shard, key.to_vec());
                assert!(last.as_ref().is_none_or(|l| *l < here), "out of order");
                seen.push((key.to_vec(), version.hlc));
                last = Some(here);
            }
        }
        seen.sort();
        let want: Vec<(Vec<u8>, u64)> = (0..500u64)
            .map(|i| (format!("key-{i:04}").into_bytes(), i + 1))
            .collect();
        assert_eq!(seen, want);
        let whole = store
            .scan_page(&ScanCursor::START, usize::MAX)
            .expect("page");
        assert_eq!(
            whole.next.map(|c| c.shard),
            Some(1),
            "a page ends with its shard"
        );
    }

    #[test]
    fn expiring_scans_pick_only_values_with_an_expiry() {
        let dir = TempDir::new("scan-expired");
        let store = open(&dir, 2);
        let with = |hlc: u64, value: Option<&[u8]>, expires: Option<u64>| {
            let mut out = Vec::new();
            RecordRef {
                version: Version { hlc, origin: 1 },
                value,
                meta: crate::storage::Meta {
                    cas: false,
                    expires,
                },
                promise: Version::ZERO,
            }
            .encode_into(&mut out);
            out
        };
        put(&store, b"no-ttl", &with(1, Some(b"v"), None));
        put(&store, b"soon", &with(2, Some(b"v"), Some(50)));
        put(&store, b"later", &with(4, Some(b"v"), Some(200)));
        // A tombstone carries no value: nothing left to reclaim.
        put(&store, b"gone", &with(5, None, Some(50)));
        let mut picked = Vec::new();
        let mut cursor = ScanCursor::START;
        loop {
            let page = store.scan_expiring(&cursor, 2).expect("page");
            picked.extend(page.entries.iter().map(|(k, at)| (k.to_vec(), *at)));
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        picked.sort();
        assert_eq!(
            picked,
            vec![(b"later".to_vec(), 200), (b"soon".to_vec(), 50)]
        );
    }

    #[test]
    fn corrupt_records_are_counted_and_skipped_and_the_cursor_passes_them() {
        let dir = TempDir::new("scan-corrupt");
        let store = open(&dir, 1);
        put(&store, b"a", &record(1));
        put(&store, b"b", b"garbage");
        put(&store, b"c", &record(3));
        let first = store.scan_page(&ScanCursor::START, 2).expect("page");
        assert_eq!((first.read, first.corrupt, first.entries.len()), (2, 1, 1));
        let next = first.next.expect("more");
        assert_eq!(next.after.as_deref(), Some(&b"b"[..]));
        let second = store.scan_page(&next, 2).expect("page");
        assert_eq!(&*second.entries[0].0, b"c");
        assert_eq!(second.next, None, "the last shard's end is the store's end");
        let beyond = ScanCursor {
            shard: 1,
            after: None,
        };
        let empty = store.scan_page(&beyond, 2).expect("page");
        assert_eq!((empty.read, empty.next), (0, None));
    }

    #[test]
    fn generations_change_with_every_write_only() {
        let dir = TempDir::new("scan-generation");
        let store = open(&dir, 2);
        let from = ScanCursor {
            shard: store.shard_for_key(b"k"),
            after: None,
        };
        let (store_before, before) = (store.generation(), store.scan_page(&from, 10));
        let before = before.expect("page").generation;
        assert_eq!(store.generation(), store_before, "reading is no write");
        put(&store, b"k", &record(1));
        assert_ne!(store.generation(), store_before);
        let after = store.scan_page(&from, 10).expect("page").generation;
        assert_ne!(after, before);
        assert_eq!(store.scan_page(&from, 10).expect("page").generation, after);
    }
}
