//! Benches `api::json` on the real request and answer bodies of this API: decoding with
//! serde_json vs sonic-rs (through our own `decode_with`/`decode_str`), and encoding a get
//! answer with our Go-compatible `encode_get_ok` vs `serde_json::to_vec` / `sonic_rs::to_vec`
//! of an equivalent serde struct. Only `encode_get_ok` gives the original's Go escaping
//! (`<` → `\u003c`, U+2028 → `\u2028`); the other two are a speed reference.
//!
//! Each group is one body, its variants side by side. At the end a table prints each variant's
//! time as a ratio to the group's baseline measured in the same run (`serde_json` for decoding,
//! `go_encode` for encoding): a ratio above 1 means slower than the baseline. The ratios are
//! read back from criterion's own estimates (the `time:` figure it printed) of this run only.
//!
//! Run: `cargo bench --bench api` (about 2 minutes). Filters work as usual
//! (`cargo bench --bench api -- decode`). Must not import `replication` or `storage`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use criterion::{BenchmarkId, Criterion, Throughput};
use mostdb::api::json::{self, Decoder, Field, KvBody};

/// Short runs: the variants differ by tens of percent, which 2 s per variant resolves.
const MEASUREMENT_TIME_MS: u64 = 2_000;
const WARM_UP_TIME_MS: u64 = 500;

/// One request body of the API, named for the table.
struct Case {
    name: &'static str,
    body: String,
}

fn cases() -> Vec<Case> {
    let key16 = "user:0000001234k";
    let value64 = "v".repeat(64);
    let value1k = "x".repeat(1024);
    let mk = |k: &str, v: &str| format!(r#"{{"key":"{k}","value":"{v}"}}"#);
    vec![
        Case { name: "ping_29b", body: mk("ping", "pong") },
        Case { name: "k16_v64_101b", body: mk(key16, &value64) },
        Case { name: "k16_v1k_1061b", body: mk(key16, &value1k) },
        Case {
            name: "escapes_unicode",
            body: r#"{"key":"\u952e\ud83d\udd11","value":"a\u003cb\u003e\u0026c \"q\" \\ \n\t 值✓ é \u2028 /"}"#
                .to_owned(),
        },
    ]
}

/// The get answer as a serde struct, for the serde_json / sonic-rs reference encoders.
#[derive(serde::Serialize)]
struct GetAnswer<'a> {
    code: u16,
    success: bool,
    result: KeyValue<'a>,
}

#[derive(serde::Serialize)]
struct KeyValue<'a> {
    key: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    value: &'a str,
}

fn text<'a>(field: &'a Field<'_>) -> &'a str {
    match field {
        Field::Str(s) => s,
        _ => "",
    }
}

fn bench_decode(c: &mut Criterion, case: &Case) {
    let decoders = [
        ("serde_json", Decoder::SerdeJson),
        ("sonic_rs", Decoder::SonicRs),
    ];
    // The request path: UTF-8 check, parse, owned strings (what `json::decode` does).
    let mut group = c.benchmark_group(format!("decode_with.{}", case.name));
    group.throughput(Throughput::Bytes(case.body.len() as u64));
    for (name, decoder) in decoders {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| json::decode_with(decoder, black_box(case.body.as_bytes())))
        });
    }
    group.finish();
    // The parse alone, borrowing strings that need no unescaping.
    let mut group = c.benchmark_group(format!("decode_str.{}", case.name));
    group.throughput(Throughput::Bytes(case.body.len() as u64));
    for (name, decoder) in decoders {
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| json::decode_str(decoder, black_box(&case.body)))
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion, case: &Case) {
    let decoded: KvBody<'_> = match json::decode_str(Decoder::SerdeJson, &case.body) {
        Some(kv) => kv,
        None => panic!("bench body {} does not decode", case.name),
    };
    let (key, value) = (text(&decoded.key), text(&decoded.value));
    let answer = GetAnswer {
        code: 200,
        success: true,
        result: KeyValue { key, value },
    };
    let mut group = c.benchmark_group(format!("encode_get.{}", case.name));
    group.bench_function(BenchmarkId::from_parameter("go_encode"), |b| {
        b.iter(|| json::encode_get_ok(black_box(key.as_bytes()), black_box(value.as_bytes())))
    });
    group.bench_function(BenchmarkId::from_parameter("serde_json"), |b| {
        b.iter(|| serde_json::to_vec(black_box(&answer)))
    });
    group.bench_function(BenchmarkId::from_parameter("sonic_rs"), |b| {
        b.iter(|| sonic_rs::to_vec(black_box(&answer)))
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
    let families: [(&str, &[&str]); 3] = [
        ("decode_with", &["serde_json", "sonic_rs"]),
        ("decode_str", &["serde_json", "sonic_rs"]),
        ("encode_get", &["go_encode", "serde_json", "sonic_rs"]),
    ];
    println!("\nratio = time / time of the first variant (same run); < 1 is faster than it");
    println!(
        "{:<30} {:>12} {:>12} {:>12}",
        "group", "variant", "ns", "ratio"
    );
    for (family, variants) in families {
        for case in cases() {
            let group = format!("{family}.{}", case.name);
            let Some(base) = estimate_ns(dir, &group, variants[0], since) else {
                continue;
            };
            for variant in variants.iter() {
                if let Some(ns) = estimate_ns(dir, &group, variant, since) {
                    println!("{group:<30} {variant:>12} {ns:>12.1} {:>11.2}x", ns / base);
                }
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
    for case in cases() {
        bench_decode(&mut c, &case);
    }
    for case in cases() {
        bench_encode(&mut c, &case);
    }
    c.final_summary();
    print_ratios(&dir, since);
}
