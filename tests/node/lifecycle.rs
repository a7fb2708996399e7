//! The process's life: settings and command line, startup errors (bad setting, port in use,
//! store taken or unusable), graceful stop on SIGTERM/SIGINT, and durability of acknowledged
//! writes across a graceful stop and across kill -9.

use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::*;

const SET: &str = "/mostdb/set";
const GET: &str = "/mostdb/get";
const DEL: &str = "/mostdb/del";

/// A startup error must end the process this fast (no retries, no waiting for clients).
const STARTUP_ERROR_MS_MAX: u128 = 5_000;
/// "Within a few seconds" of SIGTERM (the server's grace for in-flight requests is 5 s;
/// an idle server must not need it).
const GRACEFUL_EXIT_MS_MAX: u128 = 5_000;

fn describe(e: &Exited) -> String {
    format!(
        "status {:?} (signal {:?}) after {:?}\nstdout: {:?}\nstderr: {:?}",
        e.status.code(),
        e.status.signal(),
        e.elapsed,
        e.stdout,
        e.stderr
    )
}

#[test]
fn bad_settings_exit_2_naming_the_setting() {
    for (name, value) in [
        ("MOSTDB_SERVER_PORT", "abc"),
        ("MOSTDB_SERVER_PORT", "70000"),
        ("MOSTDB_SYNC", "sometimes"),
        ("MOSTDB_LOG_LEVEL", "LOUD"),
        ("MOSTDB_MAX_VALUE_BYTES", "lots"),
    ] {
        let e = run_to_exit(&[], &[(name, value)]);
        assert_eq!(e.status.code(), Some(2), "{name}={value}: {}", describe(&e));
        let lines: Vec<&str> = e.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(
            lines.len(),
            1,
            "{name}={value}: want one stderr line: {}",
            describe(&e)
        );
        assert!(
            lines[0].contains(name),
            "{name}={value}: line does not name it: {}",
            describe(&e)
        );
        assert!(
            e.elapsed.as_millis() < STARTUP_ERROR_MS_MAX,
            "{}",
            describe(&e)
        );
    }
}

#[test]
fn version_and_help() {
    let expected = format!(
        "mostdb {} (commit {}, built {})\n",
        env!("CARGO_PKG_VERSION"),
        mostdb::config::COMMIT,
        mostdb::config::BUILD_DATE
    );
    // Built from a checkout: the commit is known, 12 hex digits.
    let commit = mostdb::config::COMMIT;
    assert!(
        commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit()),
        "{commit}"
    );
    // `--version` is the documented flag; the others are the original's spellings (ORIGINAL §1).
    for flag in ["--version", "-v", "-version", "version"] {
        let e = run_to_exit(&[flag], &[]);
        assert_eq!(e.status.code(), Some(0), "{flag}: {}", describe(&e));
        assert_eq!(e.stdout, expected, "{flag}: {}", describe(&e));
    }
    let e = run_to_exit(&["--help"], &[]);
    assert_eq!(e.status.code(), Some(0), "--help: {}", describe(&e));
    assert!(
        e.stdout.contains("MOSTDB_STORE_ROOT"),
        "--help: {}",
        describe(&e)
    );
}

#[test]
fn port_in_use_fails_fast_with_a_clear_message() {
    let holder = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = holder.local_addr().expect("addr").port().to_string();
    let e = run_to_exit(&[], &[("MOSTDB_SERVER_PORT", &port)]);
    assert!(
        !e.status.success(),
        "started on a taken port: {}",
        describe(&e)
    );
    assert!(
        e.elapsed.as_millis() < STARTUP_ERROR_MS_MAX,
        "{}",
        describe(&e)
    );
    let all = format!("{}{}", e.stdout, e.stderr).to_ascii_lowercase();
    assert!(
        all.contains(&port),
        "message does not name the port: {}",
        describe(&e)
    );
    assert!(
        all.contains("in use"),
        "message does not say the port is in use: {}",
        describe(&e)
    );
    drop(holder);
}

#[test]
fn second_process_on_the_same_store_is_refused() {
    let node = Node::start();
    node.client()
        .post(SET, &kv("mine", "first"))
        .assert_json(200, OK);

    let root = node.store_root().to_str().expect("UTF-8 path").to_string();
    let e = run_to_exit(&[], &[("MOSTDB_STORE_ROOT", &root)]);
    assert!(
        !e.status.success(),
        "second process started: {}",
        describe(&e)
    );
    assert!(
        e.elapsed.as_millis() < STARTUP_ERROR_MS_MAX,
        "{}",
        describe(&e)
    );
    let all = format!("{}{}", e.stdout, e.stderr).to_ascii_lowercase();
    assert!(
        all.contains("store"),
        "message does not mention the store: {}",
        describe(&e)
    );

    // The first node is unaffected.
    let mut c = node.client();
    c.post(GET, &k("mine"))
        .assert_json(200, &got("mine", "first"));
    c.post(SET, &kv("mine", "second")).assert_json(200, OK);
    c.post(GET, &k("mine"))
        .assert_json(200, &got("mine", "second"));
}

/// Not in the original (it panicked on the first request, ORIGINAL §5.5): an unusable store
/// root stops the process at startup with a message naming it.
#[test]
fn unusable_store_root_fails_at_startup() {
    let dir = TempDir::new("badroot");
    let file = dir.path().join("afile");
    std::fs::write(&file, b"not a directory").expect("write file");
    let root = file.join("sub");
    let e = run_to_exit(
        &[],
        &[("MOSTDB_STORE_ROOT", root.to_str().expect("UTF-8 path"))],
    );
    assert!(
        !e.status.success(),
        "started on an unusable store: {}",
        describe(&e)
    );
    assert!(
        e.elapsed.as_millis() < STARTUP_ERROR_MS_MAX,
        "{}",
        describe(&e)
    );
    let all = format!("{}{}", e.stdout, e.stderr);
    assert!(
        all.contains("afile"),
        "message does not name the path: {}",
        describe(&e)
    );
}

/// SIGTERM (with an idle keep-alive connection open) → exit 0 within a few seconds; the data,
/// deletes included, is there after a restart; SIGINT likewise.
#[test]
fn sigterm_and_sigint_stop_cleanly_and_keep_the_data() {
    let mut node = Node::start();
    let mut c = node.client();
    c.post(SET, &kv("kept", "yes")).assert_json(200, OK);
    c.post(SET, &kv("gone", "soon")).assert_json(200, OK);
    c.post(DEL, &k("gone")).assert_json(200, OK);
    c.post(SET, &kv("over", "1")).assert_json(200, OK);
    c.post(SET, &kv("over", "2")).assert_json(200, OK);
    let idle = node.client();

    let started = Instant::now();
    node.stop();
    let took = started.elapsed();
    assert!(
        took.as_millis() < GRACEFUL_EXIT_MS_MAX,
        "SIGTERM exit took {took:?}"
    );
    drop(idle);
    drop(c);

    node.restart();
    let mut c = node.client();
    c.post(GET, &k("kept"))
        .assert_json(200, &got("kept", "yes"));
    c.post(GET, &k("gone")).assert_json(200, NOT_FOUND);
    c.post(GET, &k("over")).assert_json(200, &got("over", "2"));
    c.post(SET, &kv("second", "run")).assert_json(200, OK);

    let status = node.terminate_within(libc::SIGINT, Duration::from_millis(TERM_TIMEOUT_MS));
    match status {
        Some(s) => assert_eq!(s.code(), Some(0), "exit after SIGINT: {s}"),
        None => panic!("mostdb ignored SIGINT for {TERM_TIMEOUT_MS} ms"),
    }
    node.restart();
    let mut c = node.client();
    c.post(GET, &k("kept"))
        .assert_json(200, &got("kept", "yes"));
    c.post(GET, &k("second"))
        .assert_json(200, &got("second", "run"));
}

/// A client stuck half-way through a request cannot hold the process up past the grace period.
#[test]
fn sigterm_with_a_half_sent_request_still_exits() {
    /// The server's grace for in-flight requests (limits::SHUTDOWN_GRACE_MS) plus a margin.
    const EXIT_MS_MAX: u64 = 5_000 + 3_000;
    let mut node = Node::start();
    let mut stuck = node.client();
    stuck.send(format!("POST {SET} HTTP/1.1\r\nContent-Length: 100\r\n\r\n{{\"key\"").as_bytes());
    let mut half_head = node.client();
    half_head.send(b"POST /mostdb/set HTTP/1.1\r\nHost: t\r\n");
    node.client()
        .post(SET, &kv("before", "term"))
        .assert_json(200, OK);

    let started = Instant::now();
    let status = node.terminate_within(libc::SIGTERM, Duration::from_millis(EXIT_MS_MAX));
    match status {
        Some(s) => assert_eq!(s.code(), Some(0), "exit after SIGTERM: {s}"),
        None => panic!("still running {EXIT_MS_MAX} ms after SIGTERM with a half-sent request"),
    }
    assert!(started.elapsed() < Duration::from_millis(EXIT_MS_MAX));
    node.restart();
    node.client()
        .post(GET, &k("before"))
        .assert_json(200, &got("before", "term"));
}

/// The original's level names, any case, are accepted; nothing is logged per request at the
/// default level (the original wrote a line per request, ORIGINAL §5.14).
#[test]
fn log_levels_and_a_quiet_default() {
    for level in ["trace", "DEBUG", "Info", "warn", "ERROR", "fatal"] {
        let node = Node::start_with(&[("MOSTDB_LOG_LEVEL", level)]);
        node.client()
            .call(&request("GET", "/healthz", &[], b""))
            .assert_json(200, ALIVE);
    }

    const REQUESTS: usize = 500;
    let node = Node::start();
    let lines_before = std::fs::read_to_string(node.log_path())
        .expect("log")
        .lines()
        .count();
    let mut c = node.client();
    let mut batch = Vec::new();
    for i in 0..REQUESTS / 5 {
        batch.extend(post(SET, kv(&format!("q{i}"), "v").as_bytes()));
        batch.extend(post(GET, k(&format!("q{i}")).as_bytes()));
        batch.extend(post(GET, k(&format!("missing{i}")).as_bytes()));
        batch.extend(post(DEL, k(&format!("q{i}")).as_bytes()));
        batch.extend(post(GET, b"not json"));
    }
    c.send(&batch);
    for _ in 0..REQUESTS {
        assert_eq!(c.read_response().status, 200);
    }
    let text = std::fs::read_to_string(node.log_path()).expect("log");
    let added = text.lines().count() - lines_before;
    assert!(
        added < 10,
        "{added} log lines for {REQUESTS} requests at the default level:\n{text}"
    );
}

/// Writes `count` keys `{prefix}{i}` over `conns` connections, pipelined in batches, and checks
/// every acknowledgement; every 10th key is then deleted (also acknowledged).
fn write_acknowledged(addr: SocketAddr, prefix: &str, count: usize, conns: usize) {
    const BATCH: usize = 100;
    let workers: Vec<_> = (0..conns)
        .map(|w| {
            let prefix = prefix.to_string();
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                let mine: Vec<usize> = (0..count).filter(|i| i % conns == w).collect();
                for chunk in mine.chunks(BATCH) {
                    let mut batch = Vec::new();
                    for &i in chunk {
                        batch.extend(post(
                            SET,
                            kv(&format!("{prefix}{i}"), &value_of(i)).as_bytes(),
                        ));
                    }
                    c.send(&batch);
                    for _ in chunk {
                        c.read_response().assert_json(200, OK);
                    }
                }
                let deleted: Vec<usize> = mine.iter().copied().filter(|i| i % 10 == 0).collect();
                for chunk in deleted.chunks(BATCH) {
                    let mut batch = Vec::new();
                    for &i in chunk {
                        batch.extend(post(DEL, k(&format!("{prefix}{i}")).as_bytes()));
                    }
                    c.send(&batch);
                    for _ in chunk {
                        c.read_response().assert_json(200, OK);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("writer thread");
    }
}

fn value_of(i: usize) -> String {
    format!("value-{i}-{}", "v".repeat(i % 37))
}

/// Reads every key written by [`write_acknowledged`] and checks each answer.
fn verify_written(addr: SocketAddr, prefix: &str, count: usize) {
    let expected: Vec<(String, Option<String>)> = (0..count)
        .map(|i| (format!("{prefix}{i}"), (i % 10 != 0).then(|| value_of(i))))
        .collect();
    verify_keys(addr, &expected);
}

/// Reads each key (pipelined) and checks it holds the value given, or is absent for `None`.
fn verify_keys(addr: SocketAddr, expected: &[(String, Option<String>)]) {
    const BATCH: usize = 200;
    let mut c = Client::connect(addr);
    let mut wrong = Vec::new();
    for chunk in expected.chunks(BATCH) {
        let mut batch = Vec::new();
        for (key, _) in chunk {
            batch.extend(post(GET, k(key).as_bytes()));
        }
        c.send(&batch);
        for (key, value) in chunk {
            let r = c.read_response();
            let body = match value {
                Some(v) => got(key, v),
                None => NOT_FOUND.to_string(),
            };
            if r.masked() != expect_json(200, body.as_bytes()) {
                wrong.push(format!("{key}: {}", show(&r.body)));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} keys wrong after restart, e.g. {:?}",
        wrong.len(),
        expected.len(),
        &wrong[..wrong.len().min(5)]
    );
}

/// 10,000 acknowledged writes (and 1,000 acknowledged deletes) survive kill -9.
#[test]
fn acknowledged_writes_survive_kill9() {
    const KEYS: usize = 10_000;
    let mut node = Node::start();
    write_acknowledged(node.addr(), "k9-", KEYS, 4);
    node.kill9();
    node.restart();
    verify_written(node.addr(), "k9-", KEYS);
    // And once more: recovery itself must leave a store that recovers.
    node.kill9();
    node.restart();
    verify_written(node.addr(), "k9-", KEYS);
}

/// `MOSTDB_SYNC=always` acknowledges writes and they survive kill -9.
#[test]
fn sync_always_survives_kill9() {
    const KEYS: usize = 1_000;
    let mut node = Node::start_with(&[("MOSTDB_SYNC", "always")]);
    write_acknowledged(node.addr(), "sa-", KEYS, 2);
    node.kill9();
    node.restart();
    verify_written(node.addr(), "sa-", KEYS);
}

/// Keeps writing pipelined batches on one connection until the server goes away (or `max`
/// keys); returns the indexes whose acknowledgement was read in full.
fn write_until_killed(
    addr: SocketAddr,
    prefix: String,
    max: usize,
    acks: Arc<AtomicUsize>,
) -> Vec<usize> {
    const BATCH: usize = 50;
    let mut c = Client::connect(addr);
    let mut acked = Vec::new();
    let all: Vec<usize> = (0..max).collect();
    for chunk in all.chunks(BATCH) {
        let mut batch = Vec::new();
        for &i in chunk {
            batch.extend(post(
                SET,
                kv(&format!("{prefix}{i}"), &value_of(i)).as_bytes(),
            ));
        }
        if c.stream.write_all(&batch).is_err() {
            return acked;
        }
        for &i in chunk {
            match c.try_read_response() {
                Ok(r) => {
                    r.assert_json(200, OK);
                    acked.push(i);
                    acks.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => return acked,
            }
        }
    }
    acked
}

/// kill -9 while writes stream in, several times over: every write whose acknowledgement was
/// received is there after each restart (those of earlier rounds too).
#[test]
fn kill9_mid_stream_loses_no_acknowledged_write() {
    const ROUNDS: usize = 3;
    const WRITERS: usize = 2;
    const ACKS_BEFORE_KILL: usize = 1_500;
    const KEYS_PER_WRITER_MAX: usize = 200_000;
    const ACK_WAIT_MS: u64 = 30_000;
    let mut node = Node::start();
    let mut must_hold: Vec<(String, Option<String>)> = Vec::new();
    for round in 0..ROUNDS {
        let acks = Arc::new(AtomicUsize::new(0));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (addr, acks) = (node.addr(), Arc::clone(&acks));
                let prefix = format!("ms{round}-{w}-");
                std::thread::spawn(move || {
                    let acked = write_until_killed(addr, prefix.clone(), KEYS_PER_WRITER_MAX, acks);
                    (prefix, acked)
                })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_millis(ACK_WAIT_MS);
        while acks.load(Ordering::Relaxed) < ACKS_BEFORE_KILL {
            assert!(
                Instant::now() < deadline,
                "round {round}: too few acknowledgements"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        node.kill9();
        for w in writers {
            let (prefix, acked) = w.join().expect("writer thread");
            assert!(
                acked.len() < KEYS_PER_WRITER_MAX,
                "writer finished before the kill"
            );
            must_hold.extend(
                acked
                    .into_iter()
                    .map(|i| (format!("{prefix}{i}"), Some(value_of(i)))),
            );
        }
        node.restart();
        verify_keys(node.addr(), &must_hold);
    }
}

/// `mostdb probe`: exit 0 when the node is alive (or ready), 1 otherwise, with the API key of
/// the same settings; no shell or curl needed in an image.
#[test]
fn probe_answers_for_the_node_with_its_exit_status() {
    let key = [
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_VALUE", "probe-key"),
    ];
    let node = Node::start_with(&key);
    let url = node.url();
    let alive = run_to_exit(&["probe", "--url", &url], &key);
    assert_eq!(alive.status.code(), Some(0), "{}", describe(&alive));
    assert!(alive.stdout.contains("alive"), "{}", describe(&alive));
    let ready = run_to_exit(&["probe", &format!("--url={url}"), "--ready"], &key);
    assert_eq!(ready.status.code(), Some(0), "{}", describe(&ready));
    assert!(ready.stdout.contains("ready"), "{}", describe(&ready));
    // Without the key the node refuses: the probe says so and fails.
    let refused = run_to_exit(&["probe", "--url", &url], &[]);
    assert_eq!(refused.status.code(), Some(1), "{}", describe(&refused));
    assert!(refused.stderr.contains("401"), "{}", describe(&refused));
    // Nobody listening: fails fast.
    let closed = TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead = format!("http://{}", closed.local_addr().expect("addr"));
    drop(closed);
    let nobody = run_to_exit(&["probe", "--url", &dead], &[]);
    assert_eq!(nobody.status.code(), Some(1), "{}", describe(&nobody));
    // Only its own flags.
    let bad = run_to_exit(&["probe", "--port", "1"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{}", describe(&bad));
}
