//! Storage benchmarks: the shard's write and read paths against raw fjall calls on a
//! Database opened the same way, in the same run, so the results read as ratios.
//!
//! Groups:
//! * `write`: raw `insert`; raw `get` + `insert` (what a compare-and-write costs at least);
//!   `Shard::write_if_newer` (Os mode) on fresh keys.
//! * `read`: raw `get`; `Shard::read` (decode + copy), both on preloaded keys.
//! * `group_commit`: 64 concurrent `write_if_newer` per iteration, Os vs Always (fsync).
//!
//! Keys are 16 pseudo-random bytes, values 100 bytes (as in STACK.md §3.3).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mostdb::config::SyncMode;
use mostdb::storage::{Shard, Store, StoreOptions, Version};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

const VALUE_BYTES: usize = 100;
const PRELOADED_KEYS: u64 = 100_000;
const CONCURRENT_WRITES: u64 = 64;

fn runtime() -> monoio::FusionRuntime<
    monoio::time::TimeDriver<monoio::IoUringDriver>,
    monoio::time::TimeDriver<monoio::LegacyDriver>,
> {
    monoio::RuntimeBuilder::<monoio::FusionDriver>::new()
        .enable_timer()
        .attach_thread_pool(Box::new(monoio::blocking::DefaultThreadPool::new(1)))
        .build()
        .expect("runtime")
}

/// 16 bytes that look random, distinct for every `i` (a bijective mix of `i`, twice).
fn key(i: u64) -> [u8; 16] {
    let mix = |mut x: u64| {
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        x ^ (x >> 33)
    };
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&mix(i).to_be_bytes());
    k[8..].copy_from_slice(&mix(i ^ 0x5555).to_be_bytes());
    k
}

struct Fixture {
    dir: PathBuf,
    store: Option<Store>,
}

impl Fixture {
    fn new(name: &str, sync: SyncMode) -> Fixture {
        let dir = std::env::temp_dir().join(format!("mostdb-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(StoreOptions {
            root: dir.clone(),
            shards_if_new: 1,
            sync,
            disk_reserve_bytes: 0,
        })
        .expect("open store");
        Fixture {
            dir,
            store: Some(store),
        }
    }
    fn store(&self) -> &Store {
        self.store.as_ref().expect("open")
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        drop(self.store.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn bench_write(c: &mut Criterion) {
    let value = vec![b'v'; VALUE_BYTES];
    // What the shard stores: the record header (17 bytes) plus the value.
    let record = [b'r'; VALUE_BYTES + 17];
    let mut g = c.benchmark_group("write");
    g.throughput(Throughput::Elements(1));

    let raw = Fixture::new("raw-insert", SyncMode::Os);
    let ks = raw.store().shard_db(0).keyspace().clone();
    let mut i = 0u64;
    g.bench_function("fjall_insert", |b| {
        b.iter(|| {
            i += 1;
            ks.insert(key(i), &record[..]).expect("insert");
        })
    });
    let raw = Fixture::new("raw-get-insert", SyncMode::Os);
    let ks = raw.store().shard_db(0).keyspace().clone();
    g.bench_function("fjall_get_then_insert", |b| {
        b.iter(|| {
            i += 1;
            let k = key(i);
            assert!(ks.get(k).expect("get").is_none());
            ks.insert(k, &record[..]).expect("insert");
        })
    });

    let fx = Fixture::new("shard-write", SyncMode::Os);
    let shard = Shard::new(fx.store().shard_db(0), SyncMode::Os);
    let mut rt = runtime();
    g.bench_function("shard_write_if_newer", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    i += 1;
                    let v = Version { hlc: i, origin: 1 };
                    shard
                        .write_if_newer(&key(i), v, Some(&value))
                        .await
                        .expect("write");
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn bench_read(c: &mut Criterion) {
    let fx = Fixture::new("read", SyncMode::Os);
    let shard = Shard::new(fx.store().shard_db(0), SyncMode::Os);
    let ks = fx.store().shard_db(0).keyspace().clone();
    let mut rt = runtime();
    let value = vec![b'v'; VALUE_BYTES];
    rt.block_on(async {
        for i in 0..PRELOADED_KEYS {
            let v = Version {
                hlc: i + 1,
                origin: 1,
            };
            shard
                .write_if_newer(&key(i), v, Some(&value))
                .await
                .expect("preload");
        }
    });
    let mut g = c.benchmark_group("read");
    g.throughput(Throughput::Elements(1));
    let mut i = 0u64;
    g.bench_function("fjall_get", |b| {
        b.iter(|| {
            i = (i + 7919) % PRELOADED_KEYS;
            assert!(ks.get(key(i)).expect("get").is_some());
        })
    });
    g.bench_function("shard_read", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    i = (i + 7919) % PRELOADED_KEYS;
                    assert!(shard.read(&key(i)).await.expect("read").is_some());
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

/// One iteration = `CONCURRENT_WRITES` writes in flight at once on the owner core.
fn bench_group_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("group_commit");
    g.throughput(Throughput::Elements(CONCURRENT_WRITES));
    g.sample_size(20);
    let value = Rc::new(vec![b'v'; VALUE_BYTES]);
    for (name, sync) in [("os_64", SyncMode::Os), ("always_64", SyncMode::Always)] {
        let fx = Fixture::new(name, sync);
        let shard = Rc::new(Shard::new(fx.store().shard_db(0), sync));
        let mut rt = runtime();
        let mut next = 0u64;
        let mut run = |iters: u64| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let mut handles = Vec::with_capacity(CONCURRENT_WRITES as usize);
                    for _ in 0..CONCURRENT_WRITES {
                        next += 1;
                        let (shard, value, i) = (shard.clone(), value.clone(), next);
                        handles.push(monoio::spawn(async move {
                            let v = Version { hlc: i, origin: 1 };
                            shard
                                .write_if_newer(&key(i), v, Some(&value))
                                .await
                                .expect("write");
                        }));
                    }
                    for h in handles {
                        h.await;
                    }
                }
                start.elapsed()
            })
        };
        g.bench_function(name, |b| b.iter_custom(&mut run));
        let stats = shard.stats();
        eprintln!(
            "group_commit/{name}: {} writes, {} fsyncs ({:.1} writes per fsync)",
            stats.writes,
            stats.fsyncs,
            stats.writes as f64 / stats.fsyncs.max(1) as f64
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_write, bench_read, bench_group_commit
}
criterion_main!(benches);
