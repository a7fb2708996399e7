//! Benches `api::json` on the real request and answer bodies of this API: decoding with
//! serde_json vs sonic-rs (through our own `decode_with`/`decode_str`), and encoding a get
//! answer with our Go-compatible `encode_get_ok` vs `serde_json::to_vec` / `sonic_rs::to_vec`
//! of an equivalent serde struct. Only `encode_get_ok` gives the original's Go escaping
//! (`<` → `\u003c`, U+2028 → `\u2028`); the other two are a speed reference.
//!
//! Each group is one body, its variants side by side. At the end a table gives each variant's
//! time as a ratio to the group's baseline measured in the same run (`serde_json` for decoding,
//! `go_encode` for encoding); above 1 is slower than the baseline. Two ratios: criterion's own
//! estimates (the `time:` it printed, variants one after the other) and a paired measurement
//! (median of back-to-back pairs), which stays right when other processes load the machine.
//!
//! Run: `cargo bench --bench api` (about 2 minutes). Filters work as usual
//! (`cargo bench --bench api -- decode`). Must not import `replication` or `storage`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

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

type Variant<'a> = (&'static str, Box<dyn Fn() + 'a>);

/// One criterion group: one body, its variants side by side, the first being the baseline.
struct Group<'a> {
    name: String,
    body_bytes: Option<u64>,
    variants: Vec<Variant<'a>>,
}

fn decode_groups(case: &Case) -> [Group<'_>; 2] {
    let body = case.body.as_str();
    let with = |decoder| -> Box<dyn Fn() + '_> {
        Box::new(move || {
            let _ = black_box(json::decode_with(decoder, black_box(body.as_bytes())));
        })
    };
    let parse = |decoder| -> Box<dyn Fn() + '_> {
        Box::new(move || {
            let _ = black_box(json::decode_str(decoder, black_box(body)));
        })
    };
    let bytes = Some(body.len() as u64);
    [
        // The request path: UTF-8 check, parse, owned strings (what `json::decode` does).
        Group {
            name: format!("decode_with.{}", case.name),
            body_bytes: bytes,
            variants: vec![
                ("serde_json", with(Decoder::SerdeJson)),
                ("sonic_rs", with(Decoder::SonicRs)),
            ],
        },
        // The parse alone, borrowing strings that need no unescaping.
        Group {
            name: format!("decode_str.{}", case.name),
            body_bytes: bytes,
            variants: vec![
                ("serde_json", parse(Decoder::SerdeJson)),
                ("sonic_rs", parse(Decoder::SonicRs)),
            ],
        },
    ]
}

fn encode_group(case: &Case) -> Group<'_> {
    let decoded: KvBody<'_> = match json::decode_str(Decoder::SerdeJson, &case.body) {
        Ok(kv) => kv,
        Err(err) => panic!("bench body {} does not decode: {err}", case.name),
    };
    let (key, value) = (
        text(&decoded.key).to_owned(),
        text(&decoded.value).to_owned(),
    );
    let (k2, v2, k3, v3) = (key.clone(), value.clone(), key.clone(), value.clone());
    fn answer<'b>(key: &'b str, value: &'b str) -> GetAnswer<'b> {
        GetAnswer {
            code: 200,
            success: true,
            result: KeyValue { key, value },
        }
    }
    Group {
        name: format!("encode_get.{}", case.name),
        body_bytes: None,
        variants: vec![
            (
                "go_encode",
                Box::new(move || {
                    black_box(json::encode_get_ok(
                        black_box(key.as_bytes()),
                        black_box(value.as_bytes()),
                    ));
                }),
            ),
            (
                "serde_json",
                Box::new(move || {
                    black_box(serde_json::to_vec(black_box(&answer(&k2, &v2))).ok());
                }),
            ),
            (
                "sonic_rs",
                Box::new(move || {
                    black_box(sonic_rs::to_vec(black_box(&answer(&k3, &v3))).ok());
                }),
            ),
        ],
    }
}

fn run_group(c: &mut Criterion, group: &Group<'_>) {
    let mut g = c.benchmark_group(&group.name);
    if let Some(bytes) = group.body_bytes {
        g.throughput(Throughput::Bytes(bytes));
    }
    for (name, f) in &group.variants {
        g.bench_function(BenchmarkId::from_parameter(name), |b| b.iter(f));
    }
    g.finish();
}

/// Rounds of the paired comparison, and calls per variant per round.
const PAIRED_ROUNDS: usize = 201;
const PAIRED_BATCH_CALLS: u32 = 500;

fn time_batch(f: &dyn Fn()) -> f64 {
    let start = Instant::now();
    for _ in 0..PAIRED_BATCH_CALLS {
        f();
    }
    start.elapsed().as_secs_f64()
}

/// The median over rounds of time(variant) / time(baseline), the two timed back to back in
/// each round (in alternating order): unlike criterion's one-after-the-other runs, load from
/// other processes that comes and goes hits both sides of each pair alike.
fn paired_ratio(baseline: &dyn Fn(), variant: &dyn Fn()) -> f64 {
    let mut ratios: Vec<f64> = (0..PAIRED_ROUNDS)
        .map(|round| {
            if round % 2 == 0 {
                let base = time_batch(baseline);
                time_batch(variant) / base
            } else {
                let other = time_batch(variant);
                other / time_batch(baseline)
            }
        })
        .collect();
    ratios.sort_by(f64::total_cmp);
    ratios[ratios.len() / 2]
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

fn print_ratios(groups: &[Group<'_>], dir: &Path, since: SystemTime) {
    println!("\nratio = time / time of the group's first variant; < 1 is faster than it.");
    println!(
        "criterion: its own estimates, variants run one after the other (groups run here only);"
    );
    println!("paired: median of {PAIRED_ROUNDS} back-to-back pairs of {PAIRED_BATCH_CALLS} calls, robust to load from other processes.");
    println!(
        "{:<30} {:>11} {:>10} {:>10} {:>8}",
        "group", "variant", "crit ns", "crit ratio", "paired"
    );
    for group in groups {
        let (_, baseline) = &group.variants[0];
        let base_ns = estimate_ns(dir, &group.name, group.variants[0].0, since);
        for (i, (name, f)) in group.variants.iter().enumerate() {
            let ns = estimate_ns(dir, &group.name, name, since);
            let crit_ns = ns.map_or("-".to_owned(), |ns| format!("{ns:.1}"));
            let crit_ratio = match (ns, base_ns) {
                (Some(ns), Some(base)) => format!("{:.2}x", ns / base),
                _ => "-".to_owned(),
            };
            let paired = if i == 0 {
                1.0
            } else {
                paired_ratio(&**baseline, &**f)
            };
            println!(
                "{:<30} {name:>11} {crit_ns:>10} {crit_ratio:>10} {paired:>7.2}x",
                group.name
            );
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
    let cases = cases();
    let mut groups: Vec<Group<'_>> = cases.iter().flat_map(decode_groups).collect();
    groups.extend(cases.iter().map(encode_group));
    // decode_with for every body, then decode_str, then encode: each family reads as a block.
    groups.sort_by_key(|g| {
        ["decode_with", "decode_str", "encode_get"]
            .iter()
            .position(|f| g.name.starts_with(f))
    });
    for group in &groups {
        run_group(&mut c, group);
    }
    c.final_summary();
    print_ratios(&groups, &dir, since);
}
