//! HTTP/1.1 protocol edge cases against the real binary: keep-alive, pipelining,
//! `Expect: 100-continue`, chunked bodies, HTTP/1.0 and `Connection: close`, size limits
//! (413, 431), malformed requests (400), large values, many connections, slow clients.

use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use crate::support::*;

const SET: &str = "/mostdb/set";
const GET: &str = "/mostdb/get";
const DEL: &str = "/mostdb/del";

const MIB: usize = 1024 * 1024;

/// A printable, JSON-safe value of `len` bytes whose content depends on `seed` and position,
/// so a dropped, repeated or shifted block cannot go unnoticed.
fn patterned_value(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~ ";
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ALPHABET[((x >> 33) % ALPHABET.len() as u64) as usize]
        })
        .collect();
    String::from_utf8(bytes).expect("ASCII")
}

/// Asserts a response that ends the connection: status, `Server` first, `Connection: close`
/// last, and then the server closes.
#[track_caller]
fn assert_closing_status(c: &mut Client, status: u16) {
    let r = c.read_response();
    assert_eq!(r.status, status, "{}", show(&r.raw));
    assert_eq!(
        r.status_line,
        format!("HTTP/1.1 {status} {}", reason(status))
    );
    assert_eq!(
        r.headers.first().map(|h| h.0.as_str()),
        Some("Server"),
        "{}",
        show(&r.raw)
    );
    let last = r.headers.last().map(|(n, v)| format!("{n}: {v}"));
    assert_eq!(
        last.as_deref(),
        Some("Connection: close"),
        "{}",
        show(&r.raw)
    );
    c.assert_closed();
}

#[test]
fn keep_alive_and_pipelining() {
    let node = Node::start();
    let mut c = node.client();

    // Sequential requests on one connection; no Connection header on HTTP/1.1 keep-alive.
    for i in 0..10 {
        let r = c.post(SET, &kv(&format!("seq{i}"), &format!("v{i}")));
        r.assert_json(200, OK);
        assert!(r.header("Connection").is_none());
    }

    // 100 requests in one write: 100 answers, in order.
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(post(
            SET,
            kv(&format!("p{i}"), &format!("val{i}")).as_bytes(),
        ));
        batch.extend(post(GET, k(&format!("p{i}")).as_bytes()));
    }
    c.send(&batch);
    for i in 0..50 {
        c.read_response().assert_json(200, OK);
        c.read_response()
            .assert_json(200, &got(&format!("p{i}"), &format!("val{i}")));
    }

    // More than one batch's worth (the server answers at most a bounded number per read).
    let mut batch = Vec::new();
    for i in 0..600 {
        batch.extend(post(GET, k(&format!("p{}", i % 50)).as_bytes()));
    }
    c.send(&batch);
    for i in 0..600 {
        c.read_response().assert_json(
            200,
            &got(&format!("p{}", i % 50), &format!("val{}", i % 50)),
        );
    }

    // A request dribbled in one byte per write is assembled correctly.
    for b in post(SET, kv("drip", "slow").as_bytes()) {
        c.send(&[b]);
    }
    c.read_response().assert_json(200, OK);
    c.post(GET, &k("drip"))
        .assert_json(200, &got("drip", "slow"));

    // A HEAD answer carries no body: the next response on the connection is intact.
    c.send(&request("HEAD", SET, &[], b""));
    let r = c.read_head_only();
    assert_eq!(r.status, 405, "{}", show(&r.raw));
    c.post(GET, &k("drip"))
        .assert_json(200, &got("drip", "slow"));
}

#[test]
fn expect_100_continue_and_chunked_bodies() {
    let node = Node::start();
    let mut c = node.client();

    // Expect: 100-continue: the interim answer comes before any body byte is sent.
    let body = kv("exp", "ected");
    let head = format!(
        "POST {SET} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.send(head.as_bytes());
    c.set_read_timeout(Duration::from_millis(5_000));
    let interim = c.read_exact_bytes(b"HTTP/1.1 100 Continue\r\n\r\n".len());
    assert_eq!(show(&interim), show(b"HTTP/1.1 100 Continue\r\n\r\n"));
    c.send(body.as_bytes());
    c.read_response().assert_json(200, OK);
    c.post(GET, &k("exp"))
        .assert_json(200, &got("exp", "ected"));

    // Chunked request bodies, sent in pieces, with upper-case hex and a chunk extension;
    // the connection stays in step afterwards.
    let body = kv("chunky", &"c".repeat(300));
    let (a, b) = body.split_at(7);
    let (b, d) = b.split_at(290);
    let mut req = format!("POST {SET} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    req.push_str(&format!("{:x}\r\n{a}\r\n", a.len()));
    req.push_str(&format!("{:X};ext=1\r\n{b}\r\n", b.len()));
    req.push_str(&format!("{:x}\r\n{d}\r\n0\r\n\r\n", d.len()));
    let (first, second) = req.as_bytes().split_at(req.len() / 2);
    c.send(first);
    std::thread::sleep(Duration::from_millis(50)); // let the first half arrive on its own
    c.send(second);
    c.read_response().assert_json(200, OK);
    c.post(GET, &k("chunky"))
        .assert_json(200, &got("chunky", &"c".repeat(300)));

    // Trailer fields after the last chunk are read and ignored.
    let body = kv("trailed", "t");
    let req = format!(
        "POST {SET} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n",
        body.len()
    );
    c.send(req.as_bytes());
    c.read_response().assert_json(200, OK);
    c.post(GET, &k("trailed"))
        .assert_json(200, &got("trailed", "t"));

    // A chunked get, pipelined with a plain one.
    let get_body = k("chunky");
    let mut req = format!(
        "POST {GET} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{get_body}\r\n0\r\n\r\n",
        get_body.len()
    )
    .into_bytes();
    req.extend(post(GET, k("exp").as_bytes()));
    c.send(&req);
    c.read_response()
        .assert_json(200, &got("chunky", &"c".repeat(300)));
    c.read_response().assert_json(200, &got("exp", "ected"));
}

#[test]
fn http10_and_connection_close() {
    let node = Node::start();

    // HTTP/1.0: a normal answer with Connection: close last, then the server closes.
    let mut c = node.client();
    let body = kv("old", "client");
    let req = format!(
        "POST {SET} HTTP/1.0\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let r = c.call(req.as_bytes());
    let mut expected = expect_json(200, OK.as_bytes());
    let split = find(&expected, b"\r\n\r\n").expect("head end") + 2;
    expected.splice(split..split, b"Connection: close\r\n".iter().copied());
    r.assert_bytes(&expected);
    c.assert_closed();

    // HTTP/1.1 with Connection: close: answered, then closed; a request pipelined behind it
    // is not processed.
    let mut c = node.client();
    let mut batch = request(
        "POST",
        SET,
        &["Connection: close"],
        kv("cc", "1").as_bytes(),
    );
    batch.extend(post(SET, kv("after-close", "x").as_bytes()));
    c.send(&batch);
    let r = c.read_response();
    let mut expected = expect_json(200, OK.as_bytes());
    let split = find(&expected, b"\r\n\r\n").expect("head end") + 2;
    expected.splice(split..split, b"Connection: close\r\n".iter().copied());
    r.assert_bytes(&expected);
    c.assert_closed();

    let mut c = node.client();
    c.post(GET, &k("old"))
        .assert_json(200, &got("old", "client"));
    c.post(GET, &k("cc")).assert_json(200, &got("cc", "1"));
    c.post(GET, &k("after-close")).assert_json(200, NOT_FOUND);

    // A GET with the key in the query, over HTTP/1.0.
    let r = c.call(b"GET /mostdb/get?key=old HTTP/1.0\r\n\r\n");
    assert_eq!(r.body_str(), got("old", "client"));
    assert_eq!(r.headers.last().map(|h| h.0.as_str()), Some("Connection"));
    c.assert_closed();
}

#[test]
fn ten_mib_value_round_trip() {
    let node = Node::start();
    let mut c = node.client();
    let value = patterned_value(10 * MIB, 10);
    let body = kv("big", &value);
    c.call(&post(SET, body.as_bytes())).assert_json(200, OK);
    let r = c.post(GET, &k("big"));
    assert_eq!(r.status, 200);
    let expected = got("big", &value);
    assert_eq!(
        r.body.len(),
        expected.len(),
        "Content-Length of the 10 MiB get"
    );
    assert!(
        r.body == expected.as_bytes(),
        "10 MiB value not returned byte-identical"
    );
    r.assert_json(200, &expected);
    // And the connection is still good for small requests.
    c.post(SET, &kv("small", "after")).assert_json(200, OK);
    c.post(GET, &k("small"))
        .assert_json(200, &got("small", "after"));
}

/// Body limit = MOSTDB_MAX_VALUE_BYTES + 1 MiB overhead = 2 MiB here.
#[test]
fn body_limit_413() {
    let node = Node::start_with(&[("MOSTDB_MAX_VALUE_BYTES", "1MiB")]);

    // A value of exactly the limit is fine.
    let mut c = node.client();
    let value = patterned_value(MIB, 1);
    c.post(SET, &kv("max", &value)).assert_json(200, OK);
    c.post(GET, &k("max")).assert_json(200, &got("max", &value));

    // Declared too large and never sent: 413 at once, then close.
    let mut c = node.client();
    c.send(
        format!("POST {SET} HTTP/1.1\r\nHost: t\r\nContent-Length: 600000000\r\n\r\n").as_bytes(),
    );
    assert_closing_status(&mut c, 413);

    // Expect: 100-continue on a body that is too large: refused at once, never invited.
    let mut c = node.client();
    let head = format!(
        "POST {SET} HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        3 * MIB
    );
    c.send(head.as_bytes());
    assert_closing_status(&mut c, 413);

    // Declared just over the limit and sent: 413 and close, nothing stored.
    let mut c = node.client();
    let big = kv("over", &patterned_value(2 * MIB + 1, 2));
    let req = post(SET, big.as_bytes());
    let mut writer_stream = c.stream.try_clone().expect("clone stream");
    let writer = std::thread::spawn(move || {
        // The server may stop reading once it has answered: a failed write is expected.
        let _ = writer_stream.write_all(&req);
    });
    assert_closing_status(&mut c, 413);
    let _ = writer.join();

    // Chunked body growing past the limit: 413 and close.
    let mut c = node.client();
    c.send(
        format!("POST {SET} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n").as_bytes(),
    );
    let chunk = format!("{:x}\r\n{}\r\n", 256 * 1024, "x".repeat(256 * 1024));
    let mut writer_stream = c.stream.try_clone().expect("clone stream");
    let writer = std::thread::spawn(move || {
        for _ in 0..12 {
            if writer_stream.write_all(chunk.as_bytes()).is_err() {
                return;
            }
        }
    });
    assert_closing_status(&mut c, 413);
    let _ = writer.join();

    // None of it was stored, and the node still serves.
    let mut c = node.client();
    c.post(GET, &k("over")).assert_json(200, NOT_FOUND);
    c.post(GET, &k("max")).assert_json(200, &got("max", &value));
}

/// The request head is limited to 16 KiB and 64 header lines.
#[test]
fn head_limits_431() {
    let node = Node::start();

    // Head over 16 KiB: 431 and close.
    let mut c = node.client();
    let big_header = format!("X-Filler: {}", "h".repeat(17 * 1024));
    c.send(&request(
        "POST",
        SET,
        &[&big_header],
        kv("hdr", "v").as_bytes(),
    ));
    assert_closing_status(&mut c, 431);

    // Too many header lines: 431 and close.
    let mut c = node.client();
    let many: Vec<String> = (0..100).map(|i| format!("X-H{i}: v")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    c.send(&request("POST", SET, &many, kv("hdr", "v").as_bytes()));
    assert_closing_status(&mut c, 431);

    // Nothing was stored; a head near the limits (15 KiB, 60 header lines) is fine.
    let mut c = node.client();
    c.post(GET, &k("hdr")).assert_json(200, NOT_FOUND);
    let near = format!("X-Filler: {}", "h".repeat(15 * 1024));
    c.call(&request("POST", SET, &[&near], kv("near", "1").as_bytes()))
        .assert_json(200, OK);
    let sixty: Vec<String> = (0..60).map(|i| format!("X-H{i}: v")).collect();
    let sixty: Vec<&str> = sixty.iter().map(String::as_str).collect();
    c.call(&request("POST", GET, &sixty, k("near").as_bytes()))
        .assert_json(200, &got("near", "1"));
}

#[test]
fn malformed_requests_get_400_and_close() {
    let node = Node::start();
    let parse_error = expect_text(400, "Error when parsing request", None, true);
    let cases: [&[u8]; 5] = [
        b"GARBAGE\r\n\r\n",
        b"GARBAGE\r\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
        b"POST /mostdb/set HTTP/1.1\r\nHost: t\r\nNo colon here\r\n\r\n",
        b"POST /mostdb/set HTTP/1.1\r\nHost: t\r\nContent-Length: abc\r\n\r\n",
    ];
    for case in cases {
        let mut c = node.client();
        c.send(case);
        let r = c.read_response();
        if r.masked() != parse_error {
            panic!("{}: expected 400, got {}", show(case), show(&r.raw));
        }
        c.assert_closed();
    }
    // Two different Content-Lengths: the framing is ambiguous (RFC 9112 §6.3): 400 and close.
    let mut c = node.client();
    c.send(b"POST /mostdb/set HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}");
    assert_closing_status(&mut c, 400);

    // Framing that cannot be trusted (RFC 9112 §6.1, §6.3): both Content-Length and
    // Transfer-Encoding, or a transfer coding other than a final chunked: answered, then closed.
    let body = kv("smuggled", "v");
    let smuggle = [
        format!(
            "POST {SET} HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
            body.len()
        ),
        format!(
            "POST {SET} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
        format!("POST {SET} HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n", body.len()),
    ];
    for req in smuggle {
        let mut c = node.client();
        c.send(req.as_bytes());
        let r = c.read_response();
        let last = r.headers.last().map(|(n, v)| format!("{n}: {v}"));
        assert_eq!(
            last.as_deref(),
            Some("Connection: close"),
            "{req:?}: {}",
            show(&r.raw)
        );
        c.assert_closed();
    }

    // Garbage after a good request on the same connection: the good one is answered first.
    let mut c = node.client();
    let mut batch = post(SET, kv("good", "first").as_bytes());
    batch.extend_from_slice(b"GARBAGE\r\n\r\n");
    c.send(&batch);
    c.read_response().assert_json(200, OK);
    let r = c.read_response();
    r.assert_bytes(&parse_error);
    c.assert_closed();
    node.client()
        .post(GET, &k("good"))
        .assert_json(200, &got("good", "first"));
}

/// 500 connections open at once, each doing a set, a get, a delete and a get.
#[test]
fn five_hundred_concurrent_connections() {
    const THREADS: usize = 50;
    const CONNS_PER_THREAD: usize = 10;
    let node = Node::start();
    let addr = node.addr();
    let barrier = Arc::new(Barrier::new(THREADS));
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut conns: Vec<Client> = (0..CONNS_PER_THREAD)
                    .map(|_| Client::connect(addr))
                    .collect();
                // Every connection of every thread is open before any request is sent.
                barrier.wait();
                let key = |i: usize| format!("c{t}-{i}");
                for (i, c) in conns.iter_mut().enumerate() {
                    c.send(&post(SET, kv(&key(i), &format!("v{t}.{i}")).as_bytes()));
                }
                for c in conns.iter_mut() {
                    c.read_response().assert_json(200, OK);
                }
                for (i, c) in conns.iter_mut().enumerate() {
                    c.post(GET, &k(&key(i)))
                        .assert_json(200, &got(&key(i), &format!("v{t}.{i}")));
                    c.post(DEL, &k(&key(i))).assert_json(200, OK);
                    c.post(GET, &k(&key(i))).assert_json(200, NOT_FOUND);
                }
            })
        })
        .collect();
    let mut failures = 0;
    for w in workers {
        if w.join().is_err() {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "{failures} of {THREADS} client threads failed");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    node.client()
        .call(&request("GET", "/healthz", &[], b""))
        .assert_json(200, ALIVE);
}

/// Clients that send a request slowly (or stop half-way) do not hold up anyone else.
#[test]
fn slow_clients_do_not_block_others() {
    const SLOW_HEADS: usize = 20;
    const SLOW_BODIES: usize = 20;
    const FAST_OP_MS_MAX: u128 = 2_000;
    let node = Node::start();

    let mut slow = Vec::new();
    for i in 0..SLOW_HEADS {
        let mut c = node.client();
        c.send(format!("POST {SET} HTTP/1.1\r\nHost: t\r\nX-Slow: {i}").as_bytes());
        slow.push(c);
    }
    let body = kv("slowbody", "done");
    for _ in 0..SLOW_BODIES {
        let mut c = node.client();
        c.send(
            format!(
                "POST {SET} HTTP/1.1\r\nContent-Length: {}\r\n\r\n{}",
                body.len(),
                &body[..5]
            )
            .as_bytes(),
        );
        slow.push(c);
    }

    let mut fast = node.client();
    for i in 0..20 {
        let t = Instant::now();
        fast.post(SET, &kv(&format!("f{i}"), "x"))
            .assert_json(200, OK);
        fast.post(GET, &k(&format!("f{i}")))
            .assert_json(200, &got(&format!("f{i}"), "x"));
        assert!(
            t.elapsed().as_millis() < FAST_OP_MS_MAX,
            "op {i} took {:?}",
            t.elapsed()
        );
    }
    for _ in 0..10 {
        let t = Instant::now();
        node.client()
            .post(GET, &k("f0"))
            .assert_json(200, &got("f0", "x"));
        assert!(
            t.elapsed().as_millis() < FAST_OP_MS_MAX,
            "new connection took {:?}",
            t.elapsed()
        );
    }

    // The slow requests are still waited for, and complete when their bytes arrive.
    let mut head = slow.swap_remove(0);
    head.assert_silent_for(Duration::from_millis(200));
    let rest = format!(
        "\r\nContent-Length: {}\r\n\r\n{}",
        kv("slowhead", "ok").len(),
        kv("slowhead", "ok")
    );
    head.send(rest.as_bytes());
    head.read_response().assert_json(200, OK);
    let mut part = slow.pop().expect("a slow body");
    part.send(&body.as_bytes()[5..]);
    part.read_response().assert_json(200, OK);
    fast.post(GET, &k("slowhead"))
        .assert_json(200, &got("slowhead", "ok"));
    fast.post(GET, &k("slowbody"))
        .assert_json(200, &got("slowbody", "done"));
}
