//! `GET /admin/export` on the real binary: without a cursor or a limit it streams the whole
//! store (chunked, one listing page after another) and ends with a count; an HTTP/1.0 client
//! gets the same lines, ended by the connection's close; `limit` gives one page and a cursor.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

use crate::support::*;

/// Sends `request` and reads until the node closes: the head and the raw body.
fn exchange(node: &Node, request: &str) -> (String, Vec<u8>) {
    let mut stream = TcpStream::connect(node.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read to the close");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    (head, raw[end..].to_vec())
}

/// The body of a chunked transfer and its number of chunks; panics unless it is complete.
fn dechunk(mut raw: &[u8]) -> (Vec<u8>, usize) {
    let (mut body, mut chunks) = (Vec::new(), 0);
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).expect("ASCII"), 16)
            .expect("hex size");
        raw = &raw[line_end + 2..];
        if size == 0 {
            assert_eq!(raw, b"\r\n", "the last chunk ends the body");
            return (body, chunks);
        }
        body.extend_from_slice(&raw[..size]);
        assert_eq!(&raw[size..size + 2], b"\r\n");
        raw = &raw[size + 2..];
        chunks += 1;
    }
}

fn lines(body: &[u8]) -> Vec<Value> {
    body.split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).expect("a JSON line"))
        .collect()
}

#[test]
fn an_export_streams_every_key_and_ends_with_the_count() {
    const KEYS: usize = 2_500;
    let node = Node::start();
    let mut c = node.client();
    for n in 0..KEYS {
        c.post("/mostdb/set", &kv(&format!("k{n:05}"), &format!("v{n}")))
            .assert_json(200, OK);
    }
    c.post("/mostdb/del", &k("k00007")).assert_json(200, OK);

    let (head, raw) = exchange(
        &node,
        "GET /admin/export HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    );
    assert!(head.contains("Transfer-Encoding: chunked\r\n"), "{head}");
    assert!(
        head.contains("Content-Type: application/x-ndjson\r\n"),
        "{head}"
    );
    assert!(!head.contains("Content-Length"), "{head}");
    let (body, chunks) = dechunk(&raw);
    assert!(chunks >= 3, "one chunk per listing page of 1,000: {chunks}");
    let lines = lines(&body);
    assert_eq!(lines.len(), KEYS, "{} records and the last line", KEYS - 1);
    let keys: Vec<&str> = lines[..KEYS - 1]
        .iter()
        .map(|l| l["key"].as_str().expect("key"))
        .collect();
    let mut want: Vec<String> = (0..KEYS).map(|n| format!("k{n:05}")).collect();
    want.remove(7);
    assert_eq!(keys, want, "every live key once, in order");
    assert_eq!(lines[1]["value"], "v1");
    assert_eq!(lines[1]["version"].as_str().map(str::len), Some(32));
    assert_eq!(
        lines[KEYS - 1],
        serde_json::json!({"more": false, "records": KEYS - 1})
    );

    // HTTP/1.0: the same lines, the body ended by the close.
    let (head, body) = exchange(&node, "GET /admin/export HTTP/1.0\r\n\r\n");
    assert!(!head.contains("Transfer-Encoding"), "{head}");
    assert_eq!(self::lines(&body), lines);

    // A page: limit and cursor.
    let (head, raw) = exchange(
        &node,
        "GET /admin/export?limit=2 HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert!(head.contains("Content-Length"), "{head}");
    let page = self::lines(&raw);
    assert_eq!(page.len(), 3);
    assert_eq!(page[2]["more"], true, "{page:?}");
}
