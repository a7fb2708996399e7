//! Measures anti-entropy on the real binary, with the cluster harness of the tests
//! (`tests/support`): three nodes on loopback, hints off (`MOSTDB_HINTS=off`), so that only
//! anti-entropy brings a node up to date.
//!
//! * `time_to_converge`: node 2 is killed, `CONVERGENCE_MISSED` writes (default 20,000) go
//!   through the others, node 2 restarts; how long until its own replica holds them all.
//! * `throughput`: client throughput with anti-entropy off and on, phases alternating in one
//!   run (two clusters loaded alike; each measured while the other idles);
//!   `CONVERGENCE_BENCH_SECS` (default 5) is the length of each phase.
//!
//! Run: `cargo bench --bench convergence` (both, about a minute), or with a filter
//! (`cargo bench --bench convergence -- throughput`). Under `cargo test` (no `--bench`
//! argument) it only says how to run it. Must not import the `mostdb` library.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::cluster::{Cluster, ClusterSpec};
use support::history::splitmix64;
use support::kv::{KvClient, Reply};
use support::workload::{apply_to, wait_converged, write_all, Expected, Op, CLIENT_IO_TIMEOUT_MS};

/// `MOSTDB_TIMEOUT_MS` of every node.
const NODE_TIMEOUT_MS: u64 = 2_000;
/// Writes the restarted node misses, unless `CONVERGENCE_MISSED` says.
const MISSED_DEFAULT: usize = 20_000;
/// How long the measurement waits for convergence at most.
const MEASURE_CONVERGE_MS: u64 = 600_000;
/// Client threads of the throughput phases.
const BENCH_CLIENTS: usize = 6;
/// Seconds per throughput phase unless `CONVERGENCE_BENCH_SECS` says.
const BENCH_SECS_DEFAULT: u64 = 5;
/// Throughput phases per arm (off then on, on then off, …).
const BENCH_ROUNDS: usize = 4;
/// Keys in the throughput store (loaded before the phases).
const BENCH_KEYS: usize = 20_000;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.iter().any(|a| a == "--bench") {
        println!("benches/convergence.rs: run it with `cargo bench --bench convergence`");
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let benches: [(&str, fn()); 2] = [
        ("time_to_converge", time_to_converge),
        ("throughput", throughput_with_and_without_anti_entropy),
    ];
    for (name, bench) in benches {
        if filter.is_none_or(|f| name.contains(f.as_str())) {
            println!("----- {name}");
            bench();
        }
    }
}

fn key(i: usize) -> String {
    format!("conv-{i:06}")
}

fn spec(anti_entropy: bool) -> ClusterSpec {
    let mut spec = ClusterSpec {
        op_timeout_ms: NODE_TIMEOUT_MS,
        env: vec![("MOSTDB_HINTS".to_string(), "off".to_string())],
        ..ClusterSpec::default()
    };
    if !anti_entropy {
        spec.env
            .push(("MOSTDB_ANTI_ENTROPY".to_string(), "off".to_string()));
    }
    spec
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How long a restarted node takes to catch up on `CONVERGENCE_MISSED` writes.
fn time_to_converge() {
    let missed = env_number("CONVERGENCE_MISSED", MISSED_DEFAULT);
    let mut cluster = Cluster::start(&spec(true));
    cluster.kill9(2);
    let ops: Vec<Op> = (0..missed)
        .map(|i| Op::Set(key(i), format!("value-{i}-{}", splitmix64(i as u64))))
        .collect();
    let started = Instant::now();
    write_all(&cluster.addrs(), &[0, 1], &ops);
    let write_ms = started.elapsed().as_millis();
    let mut expected = Expected::new();
    apply_to(&mut expected, &ops);
    cluster.restart(2).expect("node 2 restarts");
    let within = Duration::from_millis(MEASURE_CONVERGE_MS);
    let took = wait_converged(&cluster, &[2], &expected, within).expect("converges");
    println!(
        "MEASURE missed={missed} writes_took_ms={write_ms} converged_after_ms={} ({:.0} keys/s)",
        took.as_millis(),
        missed as f64 / took.as_secs_f64()
    );
    let log = std::fs::read_to_string(cluster.node(2).log_path()).unwrap_or_default();
    let shown = |l: &&str| l.contains("anti-entropy pass") || l.contains("ready addr");
    for line in log.lines().filter(shown) {
        println!("node 2: {line}");
    }
}

/// One throughput phase: `BENCH_CLIENTS` threads of sets and gets (half each) on random
/// keys, spread over the nodes, for `secs`; returns successful operations per second.
fn throughput(cluster: &Cluster, secs: u64, seed: u64) -> f64 {
    let addrs = cluster.addrs();
    let until = Instant::now() + Duration::from_secs(secs);
    let done: usize = std::thread::scope(|s| {
        let threads: Vec<_> = (0..BENCH_CLIENTS)
            .map(|t| {
                let addrs = addrs.clone();
                s.spawn(move || {
                    let timeout = Duration::from_millis(CLIENT_IO_TIMEOUT_MS);
                    let mut client = KvClient::new(addrs, timeout);
                    let mut rng = seed ^ (t as u64) << 32;
                    let mut ok = 0;
                    while Instant::now() < until {
                        rng = splitmix64(rng);
                        let k = key((rng % BENCH_KEYS as u64) as usize);
                        let node = t % 3;
                        let reply = if rng & (1 << 40) == 0 {
                            client.set(node, &k, &format!("v{rng}"))
                        } else {
                            client.get(node, &k)
                        };
                        ok += usize::from(matches!(reply, Reply::Ok | Reply::Value(_)));
                    }
                    ok
                })
            })
            .collect();
        threads.into_iter().map(|h| h.join().expect("client")).sum()
    });
    done as f64 / secs as f64
}

/// Client throughput with anti-entropy off and on, phases alternating in one run.
fn throughput_with_and_without_anti_entropy() {
    let secs = env_number("CONVERGENCE_BENCH_SECS", BENCH_SECS_DEFAULT as usize) as u64;
    let clusters = [Cluster::start(&spec(false)), Cluster::start(&spec(true))];
    let load: Vec<Op> = (0..BENCH_KEYS)
        .map(|i| Op::Set(key(i), format!("v{i}")))
        .collect();
    for cluster in &clusters {
        write_all(&cluster.addrs(), &[0, 1, 2], &load);
    }
    let mut ratios = Vec::new();
    for round in 0..BENCH_ROUNDS {
        // Alternate which arm goes first, so that a drifting machine favours neither.
        let (off, on) = if round % 2 == 0 {
            let off = throughput(&clusters[0], secs, round as u64);
            (off, throughput(&clusters[1], secs, round as u64))
        } else {
            let on = throughput(&clusters[1], secs, round as u64);
            (throughput(&clusters[0], secs, round as u64), on)
        };
        println!(
            "round {round}: off {off:.0} ops/s, on {on:.0} ops/s, on/off {:.3}",
            on / off
        );
        ratios.push(on / off);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "MEASURE throughput with anti-entropy / without: median {:.3} (rounds {ratios:?})",
        ratios[ratios.len() / 2]
    );
}
