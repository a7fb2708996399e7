//! Benches `http`'s per-request CPU work against baselines measured in the same run:
//!
//! * `parse.*`: our `parse_request` (httparse plus limits, header copy, framing decisions,
//!   path/query split) on a curl-like `POST /mostdb/set` with a 29-byte JSON body, against
//!   `httparse::Request::parse` alone (the floor: raw httparse with a 64-header array), and
//!   httparse with uninitialised headers (what `parse_request` calls inside).
//! * `encode.*`: `encode_response` of the `{"code":200,"success":true}` answer into a reused
//!   buffer, against copying the same, already encoded bytes (the floor: the answer has to be
//!   copied into the output buffer at least once).
//! * `date.*`: `DateCache::get` against reading the clock alone (`SystemTime::now`).
//!
//! At the end a table prints each variant's time as a ratio to its group's baseline (the
//! first variant); the ratios come from criterion's estimates of this run only.
//!
//! Run: `cargo bench --bench http` (about a minute). Filters work as usual
//! (`cargo bench --bench http -- parse`). Must not import `api`, `replication` or `storage`.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use mostdb::http::{
    encode_response, header_slots, parse_request, BodyKind, DateCache, Parsed, Response,
};
use mostdb::limits::HEADERS_MAX;

/// The variants differ by tens of percent, which 2 s per variant resolves.
const MEASUREMENT_TIME_MS: u64 = 2_000;
const WARM_UP_TIME_MS: u64 = 500;
/// The body limit of a default server (16 MiB value + 1 MiB overhead).
const BODY_BYTES_MAX: usize = 17 * 1024 * 1024;

/// What curl 8 sends for `curl -d '{"key":"ping","value":"pong"}' -H 'Content-Type: ...'`.
const POST_SET: &[u8] = b"POST /mostdb/set HTTP/1.1\r\nHost: 127.0.0.1:5379\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"key\":\"ping\",\"value\":\"pong\"}";
const SET_OK: &[u8] = br#"{"code":200,"success":true}"#;
const DATE: &[u8] = b"Tue, 24 Nov 2026 19:38:16 GMT";

/// Our parse plus the body slice, as the connection does it; returns the body length.
fn ours(buf: &[u8]) -> usize {
    let mut slots = header_slots();
    match parse_request(buf, &mut slots, BODY_BYTES_MAX) {
        Ok(Parsed::Complete(head)) => match head.body {
            BodyKind::Length(n) if buf.len() >= head.head_len + n => {
                buf[head.head_len..head.head_len + n].len() + head.headers.len()
            }
            _ => 0,
        },
        _ => 0,
    }
}

fn httparse_init(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n + req.headers.len(),
        _ => 0,
    }
}

fn httparse_uninit(buf: &[u8]) -> usize {
    let mut headers = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; HEADERS_MAX];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n + req.headers.len(),
        _ => 0,
    }
}

fn bench_parse(c: &mut Criterion) {
    assert_eq!(ours(POST_SET), 29 + 5, "the bench request must parse");
    let mut group = c.benchmark_group("parse.post_set");
    group.throughput(Throughput::Bytes(POST_SET.len() as u64));
    group.bench_function(BenchmarkId::from_parameter("httparse"), |b| {
        b.iter(|| httparse_init(black_box(POST_SET)))
    });
    group.bench_function(BenchmarkId::from_parameter("httparse_uninit"), |b| {
        b.iter(|| httparse_uninit(black_box(POST_SET)))
    });
    group.bench_function(BenchmarkId::from_parameter("parse_request"), |b| {
        b.iter(|| ours(black_box(POST_SET)))
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let resp = Response::json_static(200, SET_OK);
    let mut encoded = Vec::new();
    encode_response(&mut encoded, &resp, DATE, false, false);
    let mut out = Vec::with_capacity(4096);
    let mut group = c.benchmark_group("encode.set_ok");
    group.throughput(Throughput::Bytes(encoded.len() as u64));
    group.bench_function(BenchmarkId::from_parameter("copy_encoded"), |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&encoded));
            out.len()
        })
    });
    group.bench_function(BenchmarkId::from_parameter("encode_response"), |b| {
        b.iter(|| {
            out.clear();
            encode_response(&mut out, black_box(&resp), black_box(DATE), false, false);
            out.len()
        })
    });
    group.finish();
}

fn bench_date(c: &mut Criterion) {
    let cache = DateCache::new();
    let mut group = c.benchmark_group("date.now");
    group.bench_function(BenchmarkId::from_parameter("system_time_now"), |b| {
        b.iter(SystemTime::now)
    });
    group.bench_function(BenchmarkId::from_parameter("date_cache_get"), |b| {
        b.iter(|| black_box(&cache).get())
    });
    group.finish();
}

/// Where criterion writes its estimates (its own rule, made explicit so we can read them).
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// The time criterion printed for one variant (slope, else mean), in ns, if it ran in this
/// process (an older file from a filtered-out variant must not be mixed in).
fn estimate_ns(dir: &Path, group: &str, variant: &str, since: SystemTime) -> Option<f64> {
    let file = dir
        .join(group)
        .join(variant)
        .join("new")
        .join("estimates.json");
    let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok()?;
    if modified < since {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).ok()?).ok()?;
    let pick = |name: &str| json.get(name)?.get("point_estimate")?.as_f64();
    pick("slope").or_else(|| pick("mean"))
}

fn print_ratios(dir: &Path, since: SystemTime) {
    let groups: [(&str, &[&str]); 3] = [
        (
            "parse.post_set",
            &["httparse", "httparse_uninit", "parse_request"],
        ),
        ("encode.set_ok", &["copy_encoded", "encode_response"]),
        ("date.now", &["system_time_now", "date_cache_get"]),
    ];
    println!("\nratio = time / time of the group's first variant (same run)");
    println!(
        "{:<16} {:>16} {:>10} {:>8}",
        "group", "variant", "ns/op", "ratio"
    );
    for (group, variants) in groups {
        let Some(base) = estimate_ns(dir, group, variants[0], since) else {
            continue;
        };
        for variant in variants {
            if let Some(ns) = estimate_ns(dir, group, variant, since) {
                println!("{group:<16} {variant:>16} {ns:>10.1} {:>7.2}x", ns / base);
            }
        }
    }
}

fn main() {
    let since = SystemTime::now();
    let dir = criterion_dir();
    let mut c = Criterion::default()
        .output_directory(&dir)
        .measurement_time(Duration::from_millis(MEASUREMENT_TIME_MS))
        .warm_up_time(Duration::from_millis(WARM_UP_TIME_MS))
        .configure_from_args();
    bench_parse(&mut c);
    bench_encode(&mut c);
    bench_date(&mut c);
    c.final_summary();
    print_ratios(&dir, since);
}
