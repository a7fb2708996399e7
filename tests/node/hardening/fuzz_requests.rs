//! A bounded, seeded fuzz of the real binary's request path (DESIGN §14, "bounds against a
//! client"): hostile requests (JSON nested 20,000 deep on every data route, huge and odd
//! numbers, invalid UTF-8, unterminated strings, mutated valid bodies, header and framing
//! garbage, chunked oddities) sent for at most [`FUZZ_REQUESTS_MAX`] requests or
//! [`FUZZ_TIME_MS_MAX`]. Afterwards the node is the same process and answers a set and a get
//! correctly, and every answer it sent was well-formed HTTP.
//!
//! Each request goes on its own connection, which the test half-closes after writing: the node
//! answers what is complete and closes, so no request can leave the test waiting for a body
//! that never comes. The seed is printed; `MOSTDB_FUZZ_SEED=<seed>` replays a run.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::support::{find, got, k, kv, request, show, Node, NOT_FOUND, OK};

/// Environment variable that replays a run with the seed it printed.
const SEED_ENV: &str = "MOSTDB_FUZZ_SEED";
/// Most hostile requests one run sends.
const FUZZ_REQUESTS_MAX: usize = 3_000;
/// A run stops sending after this long.
const FUZZ_TIME_MS_MAX: u64 = 15_000;
/// The key of the deep bodies that have one: never stored, since they are refused.
const DEEP_KEY: &str = "deep-k";
/// Nesting of the deep JSON bodies (the reported crash needed ~18,500).
const DEEP_LEVELS: usize = 20_000;
/// One connection must be answered and closed within this long.
const CONN_TIMEOUT_MS: u64 = 10_000;
/// Bytes read back from one connection at most (answers are small; more is a failure).
const RECEIVED_BYTES_MAX: usize = 4 * 1024 * 1024;
/// The node is checked to be alive after this many requests (and after each deep one).
const ALIVE_CHECK_EVERY: usize = 64;
/// After a failed exchange, how long the node gets to show that it is dying.
const EXIT_GRACE_MS: u64 = 1_000;
/// How often it is looked at meanwhile.
const EXIT_POLL_MS: u64 = 20;
/// The prefix of the 参数有误 envelope with a `detail`, which deep bodies must get.
const BAD_PARAM_WITH_DETAIL: &str =
    "{\"code\":500,\"message\":\"参数有误\",\"success\":false,\"detail\":\"";

/// The routes that decode a JSON body, with the method that makes them do so.
const BODY_ROUTES: [(&str, &str); 5] = [
    ("POST", "/mostdb/set"),
    ("POST", "/mostdb/get"),
    ("POST", "/mostdb/del"),
    ("POST", "/mostdb/api/get"),
    ("GET", "/mostdb/get1"),
];

/// Every route a client may send data to, for the garbage generators.
const ALL_PATHS: [&str; 10] = [
    "/mostdb/set",
    "/mostdb/get",
    "/mostdb/del",
    "/mostdb/get1",
    "/mostdb/api/get",
    "/mostdb/api/set",
    "/healthz",
    "/readyz",
    "/cluster",
    "/_mostdb/peer",
];

/// SplitMix64: small, seedable, and the same sequence on every platform.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The seed of this run: from [`SEED_ENV`] when set, else from the clock.
fn seed() -> u64 {
    match std::env::var(SEED_ENV) {
        Ok(text) => text
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_ENV}={text:?} is not a u64")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    }
}

/// One hostile request, with what its answer must be beyond well-formed HTTP.
struct Hostile {
    what: String,
    bytes: Vec<u8>,
    expect: Expect,
}

enum Expect {
    /// Any well-formed answers (or none: a refusal may just close).
    WellFormed,
    /// Exactly one answer: the 参数有误 envelope with a detail (a body nested too deep).
    BadParamWithDetail,
}

/// JSON nested `levels` deep in one of the shapes seen in the report (and a few more).
fn deep_json(rng: &mut Rng, levels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 * levels + 64);
    let shape = rng.below(5);
    match shape {
        0 => out.extend_from_slice(format!(r#"{{"key":"{DEEP_KEY}","x":"#).as_bytes()),
        1 => out.extend_from_slice(format!(r#"{{"key":"{DEEP_KEY}","value":"#).as_bytes()),
        2 => {}
        3 => out.extend_from_slice(br#"{"value":"v","key":"#),
        _ => out.push(b'['),
    }
    let (open, close): (&[u8], &[u8]) = match shape {
        2 => (br#"{"a":"#, b"}"),
        3 => (b"[{\"k\":", b"}]"),
        _ => (b"[", b"]"),
    };
    for _ in 0..levels {
        out.extend_from_slice(open);
    }
    out.extend_from_slice(b"1");
    // Half of them unterminated: a parser must refuse before it reaches the end.
    if rng.below(2) == 0 {
        for _ in 0..levels {
            out.extend_from_slice(close);
        }
        if shape != 2 {
            out.push(if shape == 4 { b']' } else { b'}' });
        }
    }
    out
}

/// `method path` with `body`, framed by Content-Length (two times in three) or in chunks.
fn framed(rng: &mut Rng, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let chunked = rng.below(3) == 0;
    framed_as(rng, chunked, method, path, body)
}

/// `method path` with `body`, in chunks of random sizes when `chunked`.
fn framed_as(rng: &mut Rng, chunked: bool, method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    if !chunked {
        return request(method, path, &[], body);
    }
    let mut out =
        format!("{method} {path} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes();
    let mut rest = body;
    while !rest.is_empty() {
        let n = (1 + rng.below(8192)).min(rest.len());
        out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A deep body on one of the routes that decode JSON.
fn gen_deep(rng: &mut Rng, route: usize, chunked: bool) -> Hostile {
    let (method, path) = BODY_ROUTES[route % BODY_ROUTES.len()];
    let body = deep_json(rng, DEEP_LEVELS);
    let framing = if chunked { "chunked" } else { "Content-Length" };
    Hostile {
        what: format!("{method} {path} with JSON nested {DEEP_LEVELS} deep ({framing})"),
        bytes: framed_as(rng, chunked, method, path, &body),
        expect: Expect::BadParamWithDetail,
    }
}

/// Deep nesting where a JSON body is not decoded: the query of `GET /mostdb/get?key=`
/// (raw and percent-encoded, beyond and within the head limit) and a GET with a deep body.
fn gen_deep_elsewhere(rng: &mut Rng) -> Hostile {
    let levels = *rng.pick(&[DEEP_LEVELS, 5_000, 1_000]);
    let bracket = *rng.pick(&["[", "%5B", "%7B%22a%22%3A", "{"]);
    let query = bracket.repeat(levels);
    let bytes = match rng.below(2) {
        0 => format!("GET /mostdb/get?key={query} HTTP/1.1\r\nHost: t\r\n\r\n").into_bytes(),
        _ => {
            let body = deep_json(rng, DEEP_LEVELS);
            framed(rng, "GET", "/mostdb/get", &body)
        }
    };
    Hostile {
        what: format!("GET /mostdb/get with {levels} levels in the query or the body"),
        bytes,
        expect: Expect::WellFormed,
    }
}

/// Numbers a parser may choke on, as a value, a key or an ignored field.
fn gen_numbers(rng: &mut Rng) -> Hostile {
    let digits = "9".repeat(1 + rng.below(20_000));
    let numbers = [
        "1e999999999",
        "-1e-999999999",
        "123456789012345678901234567890",
        "1.7976931348623157e309",
        "-0",
        "-0.0e-0",
        "01",
        "1e",
        ".5",
        "0x10",
        "NaN",
        "Infinity",
        "-",
        "1.",
        digits.as_str(),
    ];
    let n = rng.pick(&numbers);
    let body = match rng.below(3) {
        0 => format!(r#"{{"key":"num","value":{n}}}"#),
        1 => format!(r#"{{"key":{n},"value":"v"}}"#),
        _ => format!(r#"{{"key":"num","value":"v","n":[{n},{n}]}}"#),
    };
    let (method, path) = *rng.pick(&BODY_ROUTES);
    Hostile {
        what: format!("{method} {path} with number {}", &n[..n.len().min(24)]),
        bytes: framed(rng, method, path, body.as_bytes()),
        expect: Expect::WellFormed,
    }
}

/// Invalid UTF-8, lone surrogates, bad escapes and control bytes inside strings, some of them
/// unterminated.
fn gen_bad_text(rng: &mut Rng) -> Hostile {
    let junk: &[&[u8]] = &[
        b"\xff\xfe",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x80",
        b"\\ud800",
        b"\\udc00\\ud800",
        b"\\u12",
        b"\\x41",
        b"\x00\x01\x1f",
        b"\\",
    ];
    let mut body = br#"{"key":"t"#.to_vec();
    for _ in 0..1 + rng.below(4) {
        let piece: &&[u8] = rng.pick(junk);
        body.extend_from_slice(piece);
        let noise = rng.below(4);
        body.extend(rng.bytes(noise));
    }
    // One in four ends inside the string: unterminated.
    if rng.below(4) > 0 {
        body.extend_from_slice(br#"","value":"v"}"#);
    }
    let (method, path) = *rng.pick(&BODY_ROUTES);
    Hostile {
        what: format!("{method} {path} with bad text {}", show(&body)),
        bytes: framed(rng, method, path, &body),
        expect: Expect::WellFormed,
    }
}

/// A valid body cut short, or with bytes flipped, inserted or deleted.
fn gen_mutated(rng: &mut Rng) -> Hostile {
    let valid = *rng.pick(&[
        r#"{"key":"fz","value":"pong"}"#,
        r#"{"KEY":"fz","VaLuE":"v","extra":{"a":[1,2,{"b":null}]}}"#,
        r#"{"key":"\u952e\ud83d\udd11","value":"a\"b\\c"}"#,
        r#"{"key":"fz"}"#,
    ]);
    let mut body = valid.as_bytes().to_vec();
    for _ in 0..1 + rng.below(6) {
        let at = rng.below(body.len() + 1);
        match rng.below(4) {
            0 => body.truncate(at),
            1 if at < body.len() => body[at] ^= 1 << rng.below(8),
            2 => body.insert(at, *rng.pick(b"{}[]\",:\\ \x00\xff")),
            _ if at < body.len() => {
                body.remove(at);
            }
            _ => {}
        }
    }
    let (method, path) = *rng.pick(&BODY_ROUTES);
    Hostile {
        what: format!("{method} {path} with mutated body {}", show(&body)),
        bytes: framed(rng, method, path, &body),
        expect: Expect::WellFormed,
    }
}

/// Garbage in the request line, the headers or the framing.
fn gen_head_garbage(rng: &mut Rng) -> Hostile {
    let path = *rng.pick(&ALL_PATHS);
    let body = kv("g", "v");
    let mut req = match rng.below(8) {
        0 => {
            let len = 1 + rng.below(512);
            rng.bytes(len)
        }
        1 => format!(
            "POST {path} HTTP/1.1\r\nContent-Length: {}\r\nContent-Length: 3\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
        2 => format!(
            "POST {path} HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n{body}"
        )
        .into_bytes(),
        3 => format!(
            "POST {path} HTTP/1.1\nContent-Length: {}\n\n{body}",
            body.len()
        )
        .into_bytes(),
        4 => format!("POST {path} HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n")
            .into_bytes(),
        5 => format!("POST {path} HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(20_000)).into_bytes(),
        6 => {
            let mut r = format!("GET {path} HTTP/1.1\r\n");
            for i in 0..100 + rng.below(100) {
                let _ = write!(r, "H{i}: v\r\n");
            }
            r.push_str("\r\n");
            r.into_bytes()
        }
        _ => format!(
            "POST {path} HTTP/1.1\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    };
    // Sometimes break one more byte of an otherwise structured request.
    if rng.below(3) == 0 && !req.is_empty() {
        let at = rng.below(req.len());
        req[at] = rng.next() as u8;
    }
    Hostile {
        what: format!("head garbage {}", show(&req[..req.len().min(120)])),
        bytes: req,
        expect: Expect::WellFormed,
    }
}

/// Chunk sizes, extensions, line endings and trailers that are wrong or extreme.
fn gen_chunked(rng: &mut Rng) -> Hostile {
    let body = kv("ch", "v");
    let chunks = [
        format!("{:x}\r\n{body}\r\n0\r\n\r\n", body.len()),
        "ffffffffffffffffffffffff\r\nab\r\n0\r\n\r\n".to_string(),
        "-1\r\nab\r\n0\r\n\r\n".to_string(),
        format!(" {:x} \r\n{body}\r\n0\r\n\r\n", body.len()),
        format!(
            "{:x};{}\r\n{body}\r\n0\r\n\r\n",
            body.len(),
            "e".repeat(5_000)
        ),
        format!("{:x}\n{body}\n0\n\n", body.len()),
        format!("{:x}\r\n{body}XX0\r\n\r\n", body.len()),
        format!(
            "{:x}\r\n{body}\r\n0\r\nT: {}\r\n\r\n",
            body.len(),
            "t".repeat(20_000)
        ),
        format!("{:x}\r\n{body}\r\n0\r\nno colon\r\n\r\n", body.len()),
        body.bytes()
            .map(|b| format!("1\r\n{}\r\n", b as char))
            .collect::<String>()
            + "0\r\n\r\n",
        "0\r\n".to_string(),
        "g\r\n\r\n".to_string(),
    ];
    let chunk = rng.pick(&chunks);
    let (method, path) = *rng.pick(&BODY_ROUTES);
    let coding = *rng.pick(&[
        "chunked",
        "CHUNKED",
        "gzip, chunked",
        "chunked, gzip",
        "chunked\x0b",
    ]);
    let req = format!("{method} {path} HTTP/1.1\r\nTransfer-Encoding: {coding}\r\n\r\n{chunk}");
    Hostile {
        what: format!(
            "chunked oddity {}",
            show(&req.as_bytes()[..req.len().min(120)])
        ),
        bytes: req.into_bytes(),
        expect: Expect::WellFormed,
    }
}

/// The `i`th request of a run: first a deep body on every route in both framings, then a
/// seeded mix of every kind.
fn generate(rng: &mut Rng, i: usize) -> Hostile {
    if i < 2 * BODY_ROUTES.len() {
        return gen_deep(rng, i, i >= BODY_ROUTES.len());
    }
    match rng.below(8) {
        0 => {
            let (route, chunked) = (rng.below(BODY_ROUTES.len()), rng.below(2) == 0);
            gen_deep(rng, route, chunked)
        }
        1 => gen_deep_elsewhere(rng),
        2 => gen_numbers(rng),
        3 => gen_bad_text(rng),
        4 => gen_mutated(rng),
        5 => gen_head_garbage(rng),
        _ => gen_chunked(rng),
    }
}

/// Sends `bytes` on a fresh connection, half-closes it, and reads until the node closes.
/// The node may answer and close before it read everything (a refused head), so a failed
/// write is not an error, and neither is a reset after the answers.
fn exchange(port: u16, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let timeout = Duration::from_millis(CONN_TIMEOUT_MS);
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("cannot connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(timeout));
    let _ = stream.set_write_timeout(Some(timeout));
    let _ = stream.write_all(bytes);
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while Instant::now() < deadline {
        match stream.read(&mut chunk) {
            Ok(0) => return Ok(got),
            Ok(n) if got.len() + n > RECEIVED_BYTES_MAX => {
                return Err(format!("more than {RECEIVED_BYTES_MAX} bytes of answers"))
            }
            Ok(n) => got.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok(got),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(format!("read failed: {e}")),
        }
    }
    Err(format!(
        "not closed within {CONN_TIMEOUT_MS} ms; got {}",
        show(&got)
    ))
}

/// One answer, as far as the test needs it.
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// Splits what one connection received into answers; each must be well-formed HTTP/1.1 (status
/// line, `Name: value` headers, one Content-Length and exactly that many body bytes), and the
/// bytes must end with the last one.
fn parse_answers(mut rest: &[u8]) -> Result<Vec<Answer>, String> {
    let mut answers = Vec::new();
    while !rest.is_empty() {
        let head_end = find(rest, b"\r\n\r\n").ok_or("an answer head without its end")? + 4;
        let head = std::str::from_utf8(&rest[..head_end - 4]).map_err(|_| "non-UTF-8 head")?;
        let mut lines = head.split("\r\n");
        let status = parse_status_line(lines.next().unwrap_or_default())?;
        let mut length = None;
        for line in lines {
            let (name, value) = line
                .split_once(": ")
                .ok_or_else(|| format!("header line {line:?}"))?;
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(format!("header name {name:?}"));
            }
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .parse()
                    .map_err(|_| format!("Content-Length {value:?}"))?;
                if length.replace(n).is_some() {
                    return Err("two Content-Length headers".into());
                }
            }
        }
        let length = match (length, status) {
            (_, 100..=199) => 0,
            (Some(n), _) => n,
            (None, _) => return Err(format!("a {status} without Content-Length")),
        };
        let body = rest
            .get(head_end..head_end + length)
            .ok_or_else(|| format!("a {status} cut short: {}", show(rest)))?;
        answers.push(Answer {
            status,
            body: body.to_vec(),
        });
        rest = &rest[head_end + length..];
    }
    Ok(answers)
}

/// `HTTP/1.1 NNN Reason`, with a status from 100 to 599.
fn parse_status_line(line: &str) -> Result<u16, String> {
    let bad = || format!("status line {line:?}");
    let rest = line.strip_prefix("HTTP/1.1 ").ok_or_else(bad)?;
    let (code, reason) = rest.split_once(' ').ok_or_else(bad)?;
    let status: u16 = code.parse().map_err(|_| bad())?;
    if code.len() != 3 || !(100..=599).contains(&status) || reason.is_empty() {
        return Err(bad());
    }
    Ok(status)
}

/// Checks what one hostile request got back; the statuses of the answers.
fn check(hostile: &Hostile, received: Result<Vec<u8>, String>) -> Result<Vec<u16>, String> {
    let answers = parse_answers(&received?)?;
    match hostile.expect {
        Expect::WellFormed => Ok(answers.iter().map(|a| a.status).collect()),
        Expect::BadParamWithDetail => match answers.as_slice() {
            [one]
                if one.status == 200 && one.body.starts_with(BAD_PARAM_WITH_DETAIL.as_bytes()) =>
            {
                Ok(vec![200])
            }
            [one] => Err(format!(
                "expected 参数有误 with a detail, got {} {}",
                one.status,
                show(&one.body)
            )),
            _ => Err(format!("expected one answer, got {}", answers.len())),
        },
    }
}

/// Panics, with the exit status and the node's log (printed by `Node` on drop), when the node
/// is not the process it was.
fn assert_alive(node: &mut Node, pid: u32, after: &str) {
    if let Some(status) = node.try_exited() {
        panic!("the node (pid {pid}) died ({status}) after {after}");
    }
    assert_eq!(node.pid(), pid, "the node is another process after {after}");
}

/// After a failed exchange: whether the node is dying (an abort takes a moment), so that the
/// failure names the cause rather than the symptom.
fn assert_alive_after_failure(node: &mut Node, pid: u32, after: &str) {
    let deadline = Instant::now() + Duration::from_millis(EXIT_GRACE_MS);
    while Instant::now() < deadline {
        assert_alive(node, pid, after);
        std::thread::sleep(Duration::from_millis(EXIT_POLL_MS));
    }
}

/// A normal set and get still work, byte for byte, and no deep body stored its key.
fn assert_serves(node: &Node) {
    let mut c = node.client();
    c.post("/mostdb/get", &k(DEEP_KEY))
        .assert_json(200, NOT_FOUND);
    c.post("/mostdb/set", &kv("fuzz-alive", "still here"))
        .assert_json(200, OK);
    c.post("/mostdb/get", &k("fuzz-alive"))
        .assert_json(200, &got("fuzz-alive", "still here"));
}

#[test]
fn hostile_requests_leave_the_node_up_and_answering() {
    let seed = seed();
    eprintln!("fuzz_requests: seed {seed} (replay with {SEED_ENV}={seed})");
    let mut node = Node::start();
    let pid = node.pid();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut sent = 0;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while sent < FUZZ_REQUESTS_MAX && started.elapsed() < Duration::from_millis(FUZZ_TIME_MS_MAX) {
        let hostile = generate(&mut rng, sent);
        sent += 1;
        let after = format!("request #{sent} of seed {seed}: {}", hostile.what);
        let result = check(&hostile, exchange(node.port(), &hostile.bytes));
        if matches!(hostile.expect, Expect::BadParamWithDetail) || sent % ALIVE_CHECK_EVERY == 0 {
            assert_alive(&mut node, pid, &after);
        }
        match result {
            Ok(got) => got
                .into_iter()
                .for_each(|s| *statuses.entry(s).or_default() += 1),
            Err(why) => {
                assert_alive_after_failure(&mut node, pid, &after);
                panic!("{after}: {why}");
            }
        }
    }
    assert_alive(&mut node, pid, "the last request");
    assert_serves(&node);
    eprintln!(
        "fuzz_requests: {sent} requests in {} ms, node alive; answers by status: {statuses:?}",
        started.elapsed().as_millis()
    );
}
