//! The audit log: its lines, hashed keys, the bounded queue and its gap record, rotation and
//! reopening.

use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::storage::store::test_dir::TempDir;

fn options(path: &Path, keys: KeyMode) -> AuditOptions {
    AuditOptions {
        path: Some(path.to_path_buf()),
        keys,
        strict: false,
        file_bytes_max: limits::AUDIT_FILE_BYTES_DEFAULT,
        node_id: 0xabc,
    }
}

use crate::test_support::run;

fn set(key: &[u8]) -> AuditRecord<'_> {
    AuditRecord {
        op: "set",
        key: Some(key),
        client: Some("10.1.2.3".parse().expect("ip")),
        outcome: "ok",
        version: Some((77, 5)),
        duration: Some(Duration::from_micros(1500)),
        detail: None,
    }
}

/// Every line of the file, parsed, once `count` are there (the writer is a thread).
fn lines(path: &Path, count: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let parsed: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect();
        if parsed.len() >= count || Instant::now() > deadline {
            return parsed;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_write_is_one_json_line_with_its_facts_and_nothing_else() {
    let dir = TempDir::new("audit-line");
    std::fs::create_dir_all(dir.path()).expect("dir");
    let path = dir.path().join("audit.log");
    let audit = Audit::open(options(&path, KeyMode::Clear)).expect("open");
    run(audit.record(set(b"user:\"1\"")));
    let got = lines(&path, 1);
    assert_eq!(got.len(), 1);
    let line = &got[0];
    assert_eq!(line["op"], "set");
    assert_eq!(line["key"], "user:\"1\"");
    assert_eq!(line["client"], "10.1.2.3");
    assert_eq!(line["outcome"], "ok");
    assert_eq!(line["node"], "0000000000000abc");
    assert_eq!(line["version"]["hlc"], 77);
    assert_eq!(line["duration_us"], 1500);
    assert!(line["time"].as_str().is_some_and(|t| t.ends_with('Z')));
    let fields: Vec<&String> = line.as_object().expect("object").keys().collect();
    assert_eq!(
        fields,
        [
            "client",
            "duration_us",
            "key",
            "node",
            "op",
            "outcome",
            "time",
            "version"
        ],
        "no other field (never a value)"
    );
    assert_eq!(audit.stats().written, 1);
}

#[test]
fn hashed_keys_are_stable_keyed_and_not_the_key() {
    let dir = TempDir::new("audit-hash");
    std::fs::create_dir_all(dir.path()).expect("dir");
    let path = dir.path().join("audit.log");
    let keys = KeyMode::hashed_with_secret(b"cluster secret");
    let audit = Audit::open(options(&path, keys)).expect("open");
    run(async {
        audit.record(set(b"secret-key")).await;
        audit.record(set(b"secret-key")).await;
        audit.record(set(b"other-key")).await;
    });
    let got = lines(&path, 3);
    let hash = |i: usize| got[i]["key_hash"].as_str().expect("hash").to_string();
    assert!(got.iter().all(|l| l.get("key").is_none()));
    assert_eq!(hash(0), hash(1), "the same key hashes alike");
    assert_ne!(hash(0), hash(2));
    assert_eq!(hash(0).len(), 32);
    let text = std::fs::read_to_string(&path).expect("read");
    assert!(!text.contains("secret-key"));
    let other = KeyMode::hashed_with_secret(b"another secret");
    let KeyMode::Hash(k) = other else {
        panic!("hashed")
    };
    assert_ne!(
        KeyMode::hash(&k, b"secret-key"),
        hash(0),
        "keyed by the secret"
    );
}

#[test]
fn a_full_queue_drops_counts_and_marks_the_gap() {
    let dir = TempDir::new("audit-full");
    std::fs::create_dir_all(dir.path()).expect("dir");
    let path = dir.path().join("audit.log");
    let (mut audit, start) = Audit::paused(&options(&path, KeyMode::Clear), path.clone());
    let over = 10;
    run(async {
        for _ in 0..limits::AUDIT_QUEUE_RECORDS_MAX + over {
            audit.record(set(b"k")).await;
        }
    });
    assert_eq!(audit.stats().dropped, over as u64);
    audit._writer = Some(start().expect("writer"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while audit.stats().written < limits::AUDIT_QUEUE_RECORDS_MAX as u64
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    run(audit.record(set(b"after")));
    let got = lines(&path, limits::AUDIT_QUEUE_RECORDS_MAX + 2);
    let gaps: Vec<&serde_json::Value> = got.iter().filter(|l| l["op"] == "gap").collect();
    assert_eq!(gaps.len(), 1, "one gap record");
    assert_eq!(gaps[0]["dropped"], over as u64);
    assert_eq!(got.last().map(|l| l["key"].clone()), Some("after".into()));
}

#[test]
fn the_file_is_rotated_by_size_and_reopened_when_asked() {
    let dir = TempDir::new("audit-rotate");
    std::fs::create_dir_all(dir.path()).expect("dir");
    let path = dir.path().join("audit.log");
    let mut opts = options(&path, KeyMode::Clear);
    opts.file_bytes_max = 2_000;
    let audit = Audit::open(opts).expect("open");
    // All at once: the writer takes them in large batches, which must be split across files.
    run(async {
        for _ in 0..100 {
            audit.record(set(b"a-key-of-some-length")).await;
        }
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while audit.stats().written < 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let rotated = |n: u32| dir.path().join(format!("audit.log.{n}"));
    assert!(rotated(1).exists() && rotated(limits::AUDIT_FILES_KEPT).exists());
    assert!(
        !rotated(limits::AUDIT_FILES_KEPT + 1).exists(),
        "the oldest are removed"
    );
    for n in 1..=limits::AUDIT_FILES_KEPT {
        let len = std::fs::metadata(rotated(n)).expect("rotated").len();
        assert!(len <= 2_000, "{n}: {len} bytes");
    }
    // logrotate moves the file away; SIGHUP asks for a reopen.
    std::fs::rename(&path, dir.path().join("moved.log")).expect("move");
    audit.reopen();
    std::thread::sleep(Duration::from_millis(limits::AUDIT_IDLE_WAKE_MS * 2));
    run(audit.record(set(b"after-reopen")));
    let got = lines(&path, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["key"], "after-reopen");
}

#[test]
fn times_are_rfc3339_utc() {
    assert_eq!(record::rfc3339(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(record::rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(
        record::rfc3339(1_796_067_972_116),
        "2026-11-30T19:46:12.116Z"
    );
}
