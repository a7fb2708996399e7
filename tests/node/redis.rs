//! The Redis port on the real binary (DESIGN §13): every command driven by the real
//! `redis-cli` (Debian's `redis-tools`) and by a Redis client library (the `redis` crate),
//! pipelining, `AUTH` with the API key, RESP3 after `HELLO 3`, hostile frames (each gets a
//! protocol error and a closed connection; the node serves on), and an `MGET` whose reply would
//! be too big.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

/// A node with its Redis port on, and that port's address.
fn start(env: &[(&str, &str)]) -> (Node, SocketAddr) {
    let resp = addr::fixed();
    let port = resp.port().to_string();
    let mut all = env.to_vec();
    all.push(("MOSTDB_RESP_PORT", &port));
    let dir = TempDir::new("node");
    let store = dir.path().join("store");
    let mut node = Node::new_stopped(dir, store, &all).listening(Listen::At(addr::fixed()));
    node.boot().expect("mostdb starts");
    (node, resp)
}

/// `redis-cli ARGS` against `addr`: its output (raw: not a terminal), lines trimmed.
fn cli(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(args)
        .output()
        .expect("redis-cli runs (Debian's redis-tools; .ci/run installs it)");
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[test]
fn redis_cli_drives_every_command() {
    let (node, addr) = start(&[]);
    let c = |args: &str| cli(addr, &args.split(' ').collect::<Vec<_>>());
    for (command, want) in [
        ("PING", "PONG"),
        ("ECHO hi", "hi"),
        ("SET a 1", "OK"),
        ("GET a", "1"),
        ("GET missing", ""),
        ("INCR a", "2"),
        ("INCRBY a 10", "12"),
        ("DECR a", "11"),
        ("DECRBY a 5", "6"),
        ("SET s text", "OK"),
        ("INCR s", "ERR value is not an integer or out of range"),
        ("SET a 9 NX", ""),
        ("SET n 1 NX", "OK"),
        ("SET n 2 XX GET", "1"),
        ("SET absent 2 XX", ""),
        ("GETSET n 3", "2"),
        ("GETDEL n", "3"),
        ("GET n", ""),
        ("SETNX n 1", "1"),
        ("SETNX n 1", "0"),
        ("MSET k1 v1 k2 v2 k3 v3", "OK"),
        ("MGET k1 missing k3", "v1\n\nv3"),
        ("EXISTS k1 k2 missing k1", "3"),
        ("DEL k1 missing", "1"),
        ("UNLINK k2 k3", "2"),
        ("SET t v EX 100", "OK"),
        ("TTL t", "100"),
        ("PERSIST t", "1"),
        ("TTL t", "-1"),
        ("TTL missing", "-2"),
        ("PEXPIRE t 50000", "1"),
        ("EXPIRE t 100 NX", "0"),
        ("EXPIRE t 100 GT", "1"),
        ("SET t v2 KEEPTTL", "OK"),
        ("TTL t", "100"),
        ("SETEX e 100 v", "OK"),
        ("SET x 1 PX 1", "OK"),
        ("SET y 1 EXAT 1", "OK"),
        ("SET z 1 EX 0", "ERR invalid expire time in 'set' command"),
        ("SET z 1 NX XX", "ERR syntax error"),
        ("EXPIRE e -1", "1"),
        ("GET e", ""),
        ("SELECT 0", "OK"),
        ("SELECT 1", "ERR DB index is out of range"),
        ("CONFIG GET save", "save"),
        ("CONFIG GET appendonly", "appendonly\nyes"),
        (
            "CONFIG SET save x",
            "ERR mostdb changes settings with PUT /admin/config (admin token), not CONFIG",
        ),
        ("CLIENT SETNAME me", "OK"),
        ("CLIENT GETNAME", ""),
        (
            "HSET h f v",
            "ERR unknown command 'HSET', with args beginning with: 'h' 'f' 'v'",
        ),
        ("GET", "ERR wrong number of arguments for 'get' command"),
    ] {
        assert_eq!(c(command), want, "{command}");
    }
    // The expired keys are gone (their expiry was 1 ms, or in the past), at once: no core's
    // clock starts ahead of physical time (above another core's fresh ceiling), where a 1 ms
    // expiry would wait until physical time caught up.
    let deadline = std::time::Instant::now() + Duration::from_millis(500);
    while c("EXISTS x y") != "0" {
        assert!(
            std::time::Instant::now() < deadline,
            "x and y never expired"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Listing: KEYS and SCAN (redis-cli --scan follows the integer cursors).
    for i in 0..30 {
        c(&format!("SET user:{i:02} v"));
    }
    let keys = c("KEYS user:1*");
    assert_eq!(keys.lines().count(), 10, "{keys}");
    let scanned = cli(addr, &["--scan", "--pattern", "user:*"]);
    let mut scanned: Vec<&str> = scanned.lines().collect();
    scanned.sort_unstable();
    let want: Vec<String> = (0..30).map(|i| format!("user:{i:02}")).collect();
    assert_eq!(scanned, want);
    let info = c("INFO server");
    assert!(info.contains("redis_version:7.2.0"), "{info}");
    assert!(c("DBSIZE").parse::<u64>().expect("a number") >= 30);
    assert!(c("COMMAND COUNT").parse::<u64>().expect("a number") > 30);
    let id: u64 = c("CLIENT ID").parse().expect("an id");
    assert!(id > 0);
    assert!(
        c("INFO clients").contains("connected_clients:1"),
        "redis-cli's own connection"
    );
    // /metrics counts the commands by outcome.
    let metrics = node
        .client()
        .call(&request("GET", "/metrics", &[], b""))
        .body_str()
        .to_string();
    let count = |outcome: &str| -> u64 {
        let series = format!("mostdb_requests_total{{route=\"redis\",outcome=\"{outcome}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series.as_str()))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in /metrics"))
    };
    assert!(count("ok") > 50, "{}", count("ok"));
    assert!(count("bad_request") >= 5);
}

#[test]
fn a_redis_client_library_round_trips_on_the_quorum() {
    let (_node, addr) = start(&[]);
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let mut con = client.get_connection().expect("connect");
    let _: () = redis::cmd("SET")
        .arg("lib")
        .arg("v1")
        .query(&mut con)
        .expect("set");
    let got: Option<String> = redis::cmd("GET").arg("lib").query(&mut con).expect("get");
    assert_eq!(got.as_deref(), Some("v1"));
    let n: i64 = redis::cmd("INCRBY")
        .arg("count")
        .arg(5)
        .query(&mut con)
        .expect("incrby");
    assert_eq!(n, 5);
    // A pipeline: one write of commands, the replies in order.
    let (a, b, c): (i64, Option<String>, i64) = redis::pipe()
        .cmd("INCR")
        .arg("count")
        .cmd("GET")
        .arg("missing")
        .cmd("EXISTS")
        .arg("lib")
        .arg("count")
        .query(&mut con)
        .expect("pipeline");
    assert_eq!((a, b, c), (6, None, 2));
    let values: Vec<Option<String>> = redis::cmd("MGET")
        .arg("lib")
        .arg("nope")
        .query(&mut con)
        .expect("mget");
    assert_eq!(values, vec![Some("v1".to_string()), None]);
    for i in 0..25 {
        let _: () = redis::cmd("SET")
            .arg(format!("it:{i}"))
            .arg(i)
            .query(&mut con)
            .expect("set");
    }
    let mut keys: Vec<String> = redis::cmd("SCAN")
        .cursor_arg(0)
        .arg("MATCH")
        .arg("it:*")
        .arg("COUNT")
        .arg(4)
        .clone()
        .iter(&mut con)
        .expect("scan")
        .collect();
    keys.sort_unstable();
    assert_eq!(keys.len(), 25, "{keys:?}");
    let failed = redis::cmd("INCR").arg("lib").query::<i64>(&mut con);
    assert!(failed.is_err(), "{failed:?}");
}

#[test]
fn the_api_key_is_the_password_and_resp3_speaks_its_types() {
    let env = [
        ("MOSTDB_API_KEY_ENABLE", "true"),
        ("MOSTDB_API_KEY_VALUE", "resp-secret"),
    ];
    let (_node, addr) = start(&env);
    let mut raw = Raw::connect(addr);
    assert_eq!(
        raw.ask(b"GET a\r\n"),
        "-NOAUTH Authentication required.\r\n"
    );
    assert!(raw.ask(b"AUTH nope\r\n").starts_with("-WRONGPASS"));
    assert_eq!(raw.ask(b"AUTH default resp-secret\r\n"), "+OK\r\n");
    assert_eq!(raw.ask(b"GET a\r\n"), "$-1\r\n");
    // HELLO 3 with AUTH on a new connection: a map; nulls are RESP3 nulls from then on.
    let mut raw = Raw::connect(addr);
    let hello = raw.ask(b"HELLO 3 AUTH default resp-secret\r\n");
    assert!(hello.starts_with("%8\r\n"), "{hello}");
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello}");
    assert_eq!(raw.ask(b"GET a\r\n"), "_\r\n");
    assert!(raw.ask(b"HELLO 4\r\n").starts_with("-NOPROTO"));
    // redis-cli with -a.
    let out = Command::new("redis-cli")
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args(["-a", "resp-secret", "--no-auth-warning", "SET", "k", "v"])
        .output()
        .expect("redis-cli");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    let (_node, addr) = start(&[]);
    let mut raw = Raw::connect(addr);
    let mut batch = Vec::new();
    let mut want = String::new();
    for i in 0..64 {
        batch.extend_from_slice(
            format!(
                "*3\r\n$3\r\nSET\r\n$2\r\np{}\r\n$1\r\n{}\r\n",
                i % 10,
                i % 10
            )
            .as_bytes(),
        );
        batch.extend_from_slice(format!("*2\r\n$3\r\nGET\r\n$2\r\np{}\r\n", i % 10).as_bytes());
        batch.extend_from_slice(b"PING\r\n");
        want.push_str(&format!("+OK\r\n$1\r\n{}\r\n+PONG\r\n", i % 10));
    }
    raw.stream.write_all(&batch).expect("send");
    assert_eq!(raw.read_exactly(want.len()), want);
    // QUIT: +OK, then the node closes the connection.
    assert_eq!(raw.ask(b"QUIT\r\n"), "+OK\r\n");
    raw.expect_closed();
}

#[test]
fn hostile_frames_get_a_protocol_error_and_the_node_serves_on() {
    let (_node, addr) = start(&[("MOSTDB_MAX_VALUE_BYTES", "1KiB")]);
    let too_many = format!("*{}\r\n", 1_025);
    let long_inline = vec![b'a'; 70 * 1024];
    for bad in [
        &b"*x\r\n"[..],
        b"*1\r\n:1\r\n",
        b"*2\r\n$3\r\nGET\r\n$99999\r\n",
        too_many.as_bytes(),
        &long_inline,
        b"*1\r\n$4\r\nPINGxx",
    ] {
        let mut raw = Raw::connect(addr);
        raw.stream.write_all(bad).expect("send");
        let answer = raw.read_some();
        assert!(
            answer.starts_with("-ERR Protocol error"),
            "{:?}: {answer}",
            String::from_utf8_lossy(&bad[..bad.len().min(40)])
        );
        raw.expect_closed();
    }
    // A value over MOSTDB_MAX_VALUE_BYTES inside the frame bound (a key's 8 KiB): refused,
    // nothing stored, the connection goes on.
    let mut raw = Raw::connect(addr);
    let big = "v".repeat(1_025);
    let set = format!("*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1025\r\n{big}\r\n");
    assert_eq!(
        raw.ask(set.as_bytes()),
        "-ERR the value is longer than MOSTDB_MAX_VALUE_BYTES\r\n"
    );
    assert_eq!(raw.ask(b"GET b\r\n"), "$-1\r\n");
    assert_eq!(raw.ask(b"PING\r\n"), "+PONG\r\n");
}

/// A raw RESP connection.
struct Raw {
    stream: TcpStream,
}

impl Raw {
    fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect to the Redis port");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Raw { stream }
    }

    /// Sends `command`, reads what comes back within a moment (one reply).
    fn ask(&mut self, command: &[u8]) -> String {
        self.stream.write_all(command).expect("send");
        self.read_some()
    }

    fn read_some(&mut self) -> String {
        let mut buf = vec![0u8; 64 * 1024];
        let n = self.stream.read(&mut buf).expect("a reply");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn read_exactly(&mut self, len: usize) -> String {
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).expect("every reply");
        String::from_utf8_lossy(&buf).into_owned()
    }

    fn expect_closed(&mut self) {
        let mut buf = [0u8; 16];
        match self.stream.read(&mut buf) {
            Ok(0) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the connection should be closed: {other:?}"),
        }
    }
}

#[test]
fn an_mget_whose_reply_would_be_too_big_is_refused() {
    let (_node, addr) = start(&[]);
    let client = redis::Client::open(format!("redis://{addr}/")).expect("client");
    let mut con = client.get_connection().expect("connect");
    let value = vec![b'v'; 14 * 1024 * 1024];
    for k in ["b1", "b2", "b3", "b4", "b5"] {
        let _: () = redis::cmd("SET")
            .arg(k)
            .arg(&value)
            .query(&mut con)
            .expect("set");
    }
    // 5 x 14 MiB is over the 64 MiB a reply may hold: refused, the connection goes on.
    let refused = redis::cmd("MGET")
        .arg(&["b1", "b2", "b3", "b4", "b5"])
        .query::<Vec<Vec<u8>>>(&mut con)
        .expect_err("over the bound");
    assert!(refused.to_string().contains("over 64 MiB"), "{refused}");
    let two: Vec<Vec<u8>> = redis::cmd("MGET")
        .arg(&["b1", "b2"])
        .query(&mut con)
        .expect("two");
    assert_eq!(two.iter().map(Vec::len).sum::<usize>(), 2 * value.len());
}
