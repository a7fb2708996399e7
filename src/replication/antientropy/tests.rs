//! Tests of the node-wide part of anti-entropy: the pinned hashes, bucket sets, and digests and
//! key pages scanned from a real store (several shards, paging, tombstones).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::scan::{decode_cursor, encode_cursor, scan_chunk, DigestSum, KeyList};
use super::*;
use crate::config::SyncMode;
use crate::storage::record::encode_into;
use crate::storage::store::test_dir::TempDir;
use crate::storage::store::{key_hash, shard_of};
use crate::storage::{Store, StoreOptions};

fn v(hlc: u64, origin: u64) -> Version {
    Version { hlc, origin }
}

use crate::test_support::run;

fn open(dir: &TempDir, shards: u32) -> Arc<Store> {
    let store = Store::open(StoreOptions {
        root: dir.path().to_path_buf(),
        shards_if_new: shards,
        sync: SyncMode::Os,
        disk_reserve_bytes: 0,
    })
    .expect("open store");
    Arc::new(store)
}

/// Writes records straight into their shard's keyspace, as the replica would store them.
fn put(store: &Store, key: &[u8], version: Version, value: Option<&[u8]>) {
    let mut bytes = Vec::new();
    encode_into(version, value, &mut bytes);
    let shard = shard_of(key, store.shard_count());
    store
        .shard_db(shard)
        .keyspace()
        .insert(key, bytes)
        .expect("insert");
}

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

#[test]
fn hashes_are_pinned() {
    // These values are compared between nodes: they must never change.
    let h = key_hash(b"mostdb");
    assert_eq!(bucket_of(h), 295);
    assert_eq!(entry_hash(0, Version::ZERO), 0x365a_fc61_535b_3920);
    assert_eq!(
        entry_hash(h, v(1 << 16, 0x0102_0304_0506_0708)),
        0x6955_ef1b_3e99_c1d8
    );
}

#[test]
fn entry_hashes_tell_versions_apart() {
    let h = key_hash(b"k");
    let versions = [v(1, 1), v(1, 2), v(2, 1), Version::ZERO];
    for (i, a) in versions.iter().enumerate() {
        for b in &versions[i + 1..] {
            assert_ne!(entry_hash(h, *a), entry_hash(h, *b), "{a:?} {b:?}");
        }
    }
    assert_ne!(entry_hash(h, v(1, 1)), entry_hash(key_hash(b"j"), v(1, 1)));
}

#[test]
fn bucket_sets_hold_exactly_their_buckets() {
    let set = BucketSet::of(&[0, 63, 64, 1023, 5000]);
    for b in 0..BUCKETS {
        assert_eq!(set.contains(b), [0, 63, 64, 1023].contains(&b), "{b}");
    }
    assert!(!set.contains(5000));
}

#[test]
fn digests_do_not_depend_on_order_or_shard_count() {
    let records: Vec<(Vec<u8>, Version)> = (0..500)
        .map(|i| (key(i), v(100 + u64::from(i), 7)))
        .collect();
    let mut forward = DigestSum::new();
    for (k, ver) in &records {
        forward.add(k, *ver);
    }
    let mut backward = DigestSum::new();
    for (k, ver) in records.iter().rev() {
        backward.add(k, *ver);
    }
    assert_eq!(forward.buckets, backward.buckets);
    let total: u64 = forward.buckets.iter().map(|b| b.records).sum();
    assert_eq!(total, 500);
    // The same records on a 1-shard and a 3-shard store give the same digests.
    let (d1, d3) = (TempDir::new("ae-digest-1"), TempDir::new("ae-digest-3"));
    let (one, three) = (open(&d1, 1), open(&d3, 3));
    for (k, ver) in &records {
        put(&one, k, *ver, Some(b"x"));
        put(&three, k, *ver, Some(b"x"));
    }
    let scanned = |store: Arc<Store>| {
        run(async move {
            let ae = AntiEntropy::new(store, true);
            ae.digests(Instant::now()).await.expect("scan")
        })
    };
    assert_eq!(*scanned(one), forward.buckets);
    assert_eq!(*scanned(three), forward.buckets);
}

#[test]
fn a_newer_version_or_a_tombstone_changes_exactly_its_bucket() {
    let dir = TempDir::new("ae-digest-change");
    let store = open(&dir, 2);
    for i in 0..200 {
        put(&store, &key(i), v(10, 1), Some(b"v"));
    }
    let before = DigestSum::new();
    let before = {
        let mut sum = before;
        scan_chunk(&store, ScanCursor::START, usize::MAX, &mut sum).expect("scan");
        sum.buckets
    };
    // A delete is a tombstone with a newer version: still counted, digest changed.
    put(&store, &key(7), v(11, 1), None);
    let mut after = DigestSum::new();
    scan_chunk(&store, ScanCursor::START, usize::MAX, &mut after).expect("scan");
    let changed = plan::differing_buckets(&before, &after.buckets);
    let bucket = bucket_of(key_hash(&key(7)));
    assert_eq!(changed, vec![bucket]);
    assert_eq!(
        before[bucket as usize].records,
        after.buckets[bucket as usize].records
    );
}

#[test]
fn chunks_resume_where_they_stopped_across_shards() {
    let dir = TempDir::new("ae-chunks");
    let store = open(&dir, 3);
    for i in 0..1_000 {
        put(&store, &key(i), v(u64::from(i) + 1, 1), Some(b"v"));
    }
    let mut whole = DigestSum::new();
    let end = scan_chunk(&store, ScanCursor::START, usize::MAX, &mut whole).expect("scan");
    assert_eq!((end.read, end.next), (1_000, None));
    let mut pieces = DigestSum::new();
    let (mut cursor, mut chunks) = (ScanCursor::START, 0);
    loop {
        let end = scan_chunk(&store, cursor, 77, &mut pieces).expect("scan");
        chunks += 1;
        assert!(end.read <= 77);
        match end.next {
            Some(next) => cursor = decode_cursor(&encode_cursor(&next), 3).expect("cursor"),
            None => break,
        }
    }
    assert!(chunks >= 1_000 / 77);
    assert_eq!(pieces.buckets, whole.buckets);
}

#[test]
fn key_pages_list_exactly_the_asked_buckets_page_by_page() {
    let dir = TempDir::new("ae-pages");
    let store = open(&dir, 2);
    for i in 0..3_000 {
        let value = (i % 5 != 0).then_some(&b"value"[..]);
        put(&store, &key(i), v(u64::from(i) + 1, 3), value);
    }
    let buckets: Vec<u32> = (0..BUCKETS).step_by(7).collect();
    let set = BucketSet::of(&buckets);
    let want: std::collections::BTreeMap<Vec<u8>, Version> = (0..3_000)
        .map(|i| (key(i), v(u64::from(i) + 1, 3)))
        .filter(|(k, _)| set.contains(bucket_of(key_hash(k))))
        .collect();
    assert!(want.len() > 100, "{}", want.len());
    let ae = AntiEntropy::new(store.clone(), true);
    let (got, pages) = run(async {
        let mut got = std::collections::BTreeMap::new();
        let (mut cursor, mut pages) = (Vec::new(), 0);
        loop {
            let request = SyncRequest::BucketKeys {
                buckets: buckets.clone(),
                cursor,
            };
            let Some(ReplicaReply::KeyPage { entries, next }) = ae.serve(request).await else {
                panic!("no page");
            };
            pages += 1;
            for e in entries {
                assert!(got.insert(e.key, e.version).is_none(), "listed twice");
            }
            match next {
                Some(next) => cursor = next,
                None => break (got, pages),
            }
        }
    });
    assert_eq!(got, want);
    assert_eq!(pages, 1, "a small store fits one page");
    // Small pages: the same entries, over many pages, each ending after the entry that
    // reached the byte bound.
    let mut list = KeyList::new(set.clone(), 200, usize::MAX);
    let end = scan_chunk(&store, ScanCursor::START, usize::MAX, &mut list).expect("scan");
    assert!(end.stopped);
    let entry_bytes = key(0).len() + 20;
    assert_eq!(list.entries.len(), 200_usize.div_ceil(entry_bytes));
    let local = run(async { ae.local_entries(&buckets).await.expect("local") });
    assert_eq!(local.len(), want.len());
}

#[test]
fn bad_cursors_and_busy_scans_are_refused_not_answered_wrongly() {
    let dir = TempDir::new("ae-refuse");
    let store = open(&dir, 1);
    let ae = AntiEntropy::new(store, true);
    let bad = SyncRequest::BucketKeys {
        buckets: vec![1],
        cursor: vec![0, 0, 0, 9, 0],
    };
    assert_eq!(run(ae.serve(bad)), None);
    assert_eq!(ae.stats().snapshot().requests_refused, 1);
    ae.page_scans.store(
        ANTI_ENTROPY_PAGE_SCANS_MAX,
        std::sync::atomic::Ordering::SeqCst,
    );
    let busy = SyncRequest::BucketKeys {
        buckets: vec![1],
        cursor: vec![],
    };
    assert_eq!(run(ae.serve(busy)), None);
    assert_eq!(ae.stats().snapshot().requests_refused, 2);
    // The refused request gave its slot back.
    assert_eq!(
        ae.page_scans.load(std::sync::atomic::Ordering::SeqCst),
        ANTI_ENTROPY_PAGE_SCANS_MAX
    );
}

#[test]
fn digests_are_reused_only_while_nothing_was_written_or_when_recent_enough() {
    let dir = TempDir::new("ae-reuse");
    let store = open(&dir, 2);
    put(&store, b"a", v(1, 1), Some(b"x"));
    let ae = AntiEntropy::new(store.clone(), true);
    run(async {
        let first = ae.digests(Instant::now()).await.expect("scan");
        // Nothing written since: the same scan, however recent the state must be.
        let idle = ae.digests(Instant::now()).await.expect("scan");
        assert!(Arc::ptr_eq(&first, &idle));
        assert_eq!(ae.stats().snapshot().digest_scans, 1);
        // A write, then a question about a moment before the last scan: still the old scan.
        let before_write = Instant::now() - Duration::from_secs(60);
        put(&store, b"b", v(1, 1), Some(b"x"));
        let old = ae.digests(before_write).await.expect("scan");
        assert!(Arc::ptr_eq(&first, &old));
        // A question about now must see the write: a new scan.
        let fresh = ae.digests(Instant::now()).await.expect("scan");
        assert_eq!(ae.stats().snapshot().digest_scans, 2);
        let records: u64 = fresh.iter().map(|b| b.records).sum();
        assert_eq!(records, 2);
    });
}
