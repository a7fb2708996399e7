//! Tests of `conn.rs`: `serve_connection` on a real loopback socket (monoio, epoll driver),
//! driven by a blocking std client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::*;
use crate::http::{Body, BodySource, Piece};

const BODY_MAX: usize = 64 * 1024;
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Echoes the request: `{method:?} {path} {query or -} ` then the body. `/shutdown` sets the
/// shutdown latch; `/slow` answers after 30 ms (so answers must wait for earlier ones);
/// `/upgrade` switches to [`UPGRADE_PROTOCOL`], served by [`echo_raw`].
struct Echo {
    shutdown: Latch,
}

impl Handler for Echo {
    async fn call<'a>(&'a self, req: Request<'a>) -> Response {
        {
            if req.path == "/shutdown" {
                self.shutdown.set();
            }
            if req.path == "/slow" {
                monoio::time::sleep(Duration::from_millis(30)).await;
            }
            if let Some(fails) = match req.path {
                "/stream" => Some(false),
                "/stream-fails" => Some(true),
                _ => None,
            } {
                return Response::streamed(
                    crate::http::CONTENT_TYPE_TEXT,
                    Pieces { sent: 0, fails },
                );
            }
            if req.path == "/upgrade" {
                return Response::switching(crate::http::Upgrade {
                    protocol: UPGRADE_PROTOCOL,
                    headers: b"X-Test: yes\r\n".to_vec(),
                });
            }
            let mut body = format!(
                "{:?} {} {} ",
                req.method,
                req.path,
                req.query.unwrap_or("-")
            )
            .into_bytes();
            body.extend_from_slice(req.body);
            Response {
                status: 200,
                content_type: Some(crate::http::CONTENT_TYPE_TEXT),
                allow: None,
                headers: "",
                body: Body::Owned(body),
                upgrade: None,
            }
        }
    }
}

/// A streamed body of three pieces, `piece 0\n` to `piece 2\n` (the last one empty when it
/// fails: two pieces, then failure).
struct Pieces {
    sent: u32,
    fails: bool,
}

impl BodySource for Pieces {
    fn next<'a>(
        &'a mut self,
        out: &'a mut Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Piece> + 'a>> {
        Box::pin(async move {
            monoio::time::sleep(Duration::from_millis(5)).await;
            if self.fails && self.sent == 2 {
                return Piece::Failed;
            }
            out.extend_from_slice(format!("piece {}\n", self.sent).as_bytes());
            self.sent += 1;
            match self.sent {
                3 => Piece::Done,
                _ => Piece::More,
            }
        })
    }
}

const UPGRADE_PROTOCOL: &str = "echo-test/1";

/// The protocol after `/upgrade`: echoes every byte, starting with those the HTTP loop had
/// buffered after the upgrading request.
async fn echo_raw(up: Upgraded) {
    let Upgraded {
        mut stream,
        leftover,
    } = up;
    let mut buf = leftover;
    loop {
        if !buf.is_empty() {
            let (res, back) = stream.write_all(buf).await;
            if res.is_err() {
                return;
            }
            buf = back;
        }
        buf.clear();
        buf.reserve(4096);
        let (res, back) = stream.read(buf).await;
        match res {
            Ok(n) if n > 0 => buf = back,
            _ => return,
        }
    }
}

fn timeouts(idle_ms: u64, request_ms: u64) -> ConnTimeouts {
    ConnTimeouts {
        idle_ms,
        request_ms,
        write_ms: 2_000,
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Driver {
    Epoll,
    IoUring,
}

/// Starts a server on its own thread and runtime; returns its address, or `None` when the
/// driver is unavailable here (io_uring blocked). The thread lives until the process ends.
fn start_on(driver: Driver, timeouts: ConnTimeouts) -> Option<SocketAddr> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let served = serve_forever(tx.clone(), timeouts);
        let built = match driver {
            Driver::Epoll => monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
                .enable_timer()
                .build()
                .map(|mut rt| rt.block_on(served)),
            Driver::IoUring => monoio::RuntimeBuilder::<monoio::IoUringDriver>::new()
                .enable_timer()
                .build()
                .map(|mut rt| rt.block_on(served)),
        };
        if let Err(e) = built {
            eprintln!("runtime unavailable: {e}");
            let _ = tx.send(None);
        }
    });
    rx.recv().expect("server address")
}

fn start(timeouts: ConnTimeouts) -> SocketAddr {
    start_on(Driver::Epoll, timeouts).expect("the epoll driver always works")
}

async fn serve_forever(tx: std::sync::mpsc::Sender<Option<SocketAddr>>, timeouts: ConnTimeouts) {
    let listener = monoio::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    tx.send(Some(listener.local_addr().expect("addr")))
        .expect("send");
    let shutdown = Latch::new();
    let handler = Rc::new(Echo {
        shutdown: shutdown.clone(),
    });
    let limits = Rc::new(ConnLimits::new(BODY_MAX));
    let timeouts = Rc::new(timeouts);
    let date = Rc::new(DateCache::new());
    while let Ok((stream, _)) = listener.accept().await {
        let (h, l, t, s, d) = (
            handler.clone(),
            limits.clone(),
            timeouts.clone(),
            shutdown.clone(),
            date.clone(),
        );
        monoio::spawn(async move {
            if let Some(up) = serve_connection_with_timeouts(stream, &*h, &l, &t, &s, &d).await {
                echo_raw(up).await;
            }
        });
    }
}

fn default_server() -> SocketAddr {
    start(timeouts(5_000, 1_000))
}

struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

#[derive(Debug)]
struct Resp {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn status(&self) -> u16 {
        self.status_line[9..12].parse().expect("status code")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(CLIENT_TIMEOUT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("send");
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read line");
        assert!(line.ends_with("\r\n"), "line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    fn head(&mut self) -> Resp {
        let status_line = self.line();
        assert!(status_line.starts_with("HTTP/1.1 "), "{status_line:?}");
        let mut headers = Vec::new();
        loop {
            let line = self.line();
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(": ").expect("header line");
            headers.push((n.to_string(), v.to_string()));
        }
        Resp {
            status_line,
            headers,
            body: Vec::new(),
        }
    }

    fn response(&mut self) -> Resp {
        let mut resp = self.head();
        let len: usize = resp
            .header("Content-Length")
            .expect("Content-Length")
            .parse()
            .unwrap();
        resp.body = vec![0; len];
        self.reader.read_exact(&mut resp.body).expect("body");
        resp
    }

    /// The server closed the connection cleanly (FIN, not reset) with nothing more to read.
    fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "unexpected bytes {:?}", rest),
            Err(e) => panic!("expected a clean close, got {e}"),
        }
    }
}

fn post(path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[test]
fn keep_alive_and_exact_format() {
    let mut c = Client::connect(default_server());
    c.send(&post("/mostdb/set?x=1", r#"{"key":"a"}"#));
    let r = c.response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    let names: Vec<&str> = r.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Server", "Date", "Content-Type", "Content-Length"]);
    assert_eq!(r.header("Server"), Some("mostdb"));
    let date = r.header("Date").unwrap();
    assert_eq!(date.len(), 29);
    assert!(date.ends_with(" GMT"), "{date}");
    assert_eq!(r.body_text(), r#"Post /mostdb/set x=1 {"key":"a"}"#);
    // Same connection, second request.
    c.send(b"GET /two HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().body_text(), "Get /two - ");
}

/// Reads back exactly `want.len()` bytes and compares.
fn expect_raw(c: &mut Client, want: &[u8]) {
    let mut got = vec![0; want.len()];
    c.reader.read_exact(&mut got).expect("raw bytes");
    assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
}

/// Pipelined before the upgrade: answered as HTTP, in order, before the 101. After it, every
/// byte (also those that arrived with the upgrading request, even a request line) belongs to
/// the new protocol.
fn check_upgrade(addr: SocketAddr) {
    let mut c = Client::connect(addr);
    let mut batch = post("/before", "b");
    batch.extend_from_slice(b"GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n");
    batch.extend_from_slice(b"Upgrade: echo-test/1\r\n\r\n");
    let raw = b"GET /after HTTP/1.1\r\n\r\n\x00\x01binary";
    batch.extend_from_slice(raw);
    c.send(&batch);
    assert_eq!(c.response().body_text(), "Post /before - b");
    let head = c.head();
    assert_eq!(head.status_line, "HTTP/1.1 101 Switching Protocols");
    let names: Vec<&str> = head.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["Server", "Date", "Connection", "Upgrade", "X-Test"]);
    assert_eq!(head.header("Connection"), Some("Upgrade"));
    assert_eq!(head.header("Upgrade"), Some(UPGRADE_PROTOCOL));
    assert_eq!(head.header("X-Test"), Some("yes"));
    assert_eq!(head.header("Content-Length"), None);
    expect_raw(&mut c, raw);
    c.send(b"more bytes, not HTTP\r\n\r\n");
    expect_raw(&mut c, b"more bytes, not HTTP\r\n\r\n");
}

#[test]
fn upgrade_hands_over_the_stream_and_the_buffered_bytes() {
    check_upgrade(default_server());
    // An upgrade alone, nothing after it: the new protocol starts with no leftover.
    let mut c = Client::connect(default_server());
    c.send(b"GET /upgrade HTTP/1.1\r\n\r\n");
    assert_eq!(c.head().status(), 101);
    c.send(b"ping");
    expect_raw(&mut c, b"ping");
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let mut c = Client::connect(default_server());
    let mut batch = Vec::new();
    for i in 0..20 {
        match i % 3 {
            0 => batch.extend(post(&format!("/p{i}"), &format!("body{i}"))),
            1 => batch.extend(format!("GET /slow?i={i} HTTP/1.1\r\n\r\n").as_bytes()),
            _ => batch.extend(format!("DELETE /d{i} HTTP/1.1\r\n\r\n").as_bytes()),
        }
    }
    c.send(&batch);
    for i in 0..20 {
        let want = match i % 3 {
            0 => format!("Post /p{i} - body{i}"),
            1 => format!("Get /slow i={i} "),
            _ => format!("Delete /d{i} - "),
        };
        assert_eq!(c.response().body_text(), want);
    }
}

#[test]
fn partial_request_after_complete_ones() {
    let mut c = Client::connect(default_server());
    let second = post("/second", "0123456789");
    let mut batch = post("/first", "x");
    batch.extend_from_slice(&second[..20]);
    c.send(&batch);
    assert_eq!(c.response().body_text(), "Post /first - x");
    std::thread::sleep(Duration::from_millis(20));
    c.send(&second[20..]);
    assert_eq!(c.response().body_text(), "Post /second - 0123456789");
}

#[test]
fn expect_continue_gets_100_before_the_body() {
    let mut c = Client::connect(default_server());
    c.send(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let mut interim = [0u8; 25];
    c.reader.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"hello");
    let r = c.response();
    assert_eq!(r.status(), 200);
    assert_eq!(r.body_text(), "Post /e - hello");
    // With the body already there, no 100 is sent.
    c.send(b"POST /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
    assert_eq!(c.response().body_text(), "Post /f - hi");
}

#[test]
fn expect_continue_with_too_large_body_gets_413_only() {
    let mut c = Client::connect(default_server());
    let head = format!(
        "POST /big HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        BODY_MAX + 1
    );
    c.send(head.as_bytes());
    let r = c.response();
    assert_eq!(r.status(), 413);
    assert_eq!(r.header("Connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn chunked_body_in_pieces() {
    let mut c = Client::connect(default_server());
    let pieces: [&[u8]; 6] = [
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"4\r\nwi",
        b"ki\r\n5;ext=1\r\npedia\r",
        b"\n0\r\n",
        b"Trailer: x\r\n",
        b"\r\n",
    ];
    for p in pieces {
        c.send(p);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(c.response().body_text(), "Post /c - wikipedia");
    c.send(b"GET /after HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().body_text(), "Get /after - ");
}

#[test]
fn chunked_body_over_the_limit_gets_413() {
    let mut c = Client::connect(default_server());
    let mut req = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let chunk = vec![b'z'; 16 * 1024];
    for _ in 0..((BODY_MAX / chunk.len()) + 1) {
        req.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        req.extend_from_slice(&chunk);
        req.extend_from_slice(b"\r\n");
    }
    c.send(&req);
    let r = c.response();
    assert_eq!(r.status(), 413);
    assert_eq!(r.header("Connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn http10_is_answered_then_closed() {
    let mut c = Client::connect(default_server());
    c.send(b"GET /old HTTP/1.0\r\n\r\n");
    let r = c.response();
    assert_eq!(r.status_line, "HTTP/1.1 200 OK");
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_text(), "Get /old - ");
    c.expect_eof();
}

#[test]
fn a_streamed_body_is_chunked_and_the_connection_goes_on() {
    let mut c = Client::connect(default_server());
    let mut batch = b"GET /stream HTTP/1.1\r\n\r\n".to_vec();
    batch.extend_from_slice(b"GET /after HTTP/1.1\r\n\r\n");
    c.send(&batch);
    let head = c.head();
    let names: Vec<&str> = head.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["Server", "Date", "Content-Type", "Transfer-Encoding"]
    );
    assert_eq!(head.header("Transfer-Encoding"), Some("chunked"));
    expect_raw(
        &mut c,
        b"8\r\npiece 0\n\r\n8\r\npiece 1\n\r\n8\r\npiece 2\n\r\n0\r\n\r\n",
    );
    assert_eq!(c.response().body_text(), "Get /after - ");
    // HEAD: the head only, and the connection goes on.
    c.send(b"HEAD /stream HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
    assert_eq!(c.head().header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(c.response().body_text(), "Get /next - ");
}

#[test]
fn a_failed_stream_is_cut_short_and_an_http10_one_ends_with_the_connection() {
    let mut c = Client::connect(default_server());
    c.send(b"GET /stream-fails HTTP/1.1\r\n\r\nGET /never HTTP/1.1\r\n\r\n");
    c.head();
    expect_raw(&mut c, b"8\r\npiece 0\n\r\n8\r\npiece 1\n\r\n");
    c.expect_eof();

    let mut c = Client::connect(default_server());
    c.send(b"GET /stream HTTP/1.0\r\n\r\n");
    let head = c.head();
    assert_eq!(head.header("Transfer-Encoding"), None);
    assert_eq!(head.header("Content-Length"), None);
    assert_eq!(head.header("Connection"), Some("close"));
    expect_raw(&mut c, b"piece 0\npiece 1\npiece 2\n");
    c.expect_eof();
}

#[test]
fn connection_close_ends_after_the_answer_and_ignores_the_rest() {
    let mut c = Client::connect(default_server());
    let mut batch = b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec();
    batch.extend_from_slice(b"GET /ignored HTTP/1.1\r\n\r\n");
    c.send(&batch);
    let r = c.response();
    assert_eq!(r.body_text(), "Get /last - ");
    assert_eq!(r.header("Connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn too_large_body_gets_413_and_a_clean_close() {
    let mut c = Client::connect(default_server());
    let head = format!(
        "POST /big HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        BODY_MAX + 1
    );
    c.send(head.as_bytes());
    // The client sends part of the body anyway: unread input must not turn into a reset.
    c.send(&vec![b'a'; 32 * 1024]);
    let r = c.response();
    assert_eq!(r.status(), 413);
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_text(), "Payload Too Large");
    c.expect_eof();
}

#[test]
fn too_large_head_gets_431() {
    let mut c = Client::connect(default_server());
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..400 {
        req.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "v".repeat(40)).as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    let r = c.response();
    assert_eq!(r.status(), 431);
    assert_eq!(r.header("Connection"), Some("close"));
    c.expect_eof();
}

#[test]
fn too_many_headers_gets_431() {
    let mut c = Client::connect(default_server());
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..=crate::limits::HEADERS_MAX {
        req.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    c.send(&req);
    assert_eq!(c.response().status(), 431);
    c.expect_eof();
}

#[test]
fn garbage_gets_400_after_earlier_answers() {
    let mut c = Client::connect(default_server());
    let mut batch = b"GET /ok HTTP/1.1\r\n\r\n".to_vec();
    batch.extend_from_slice(b"GARBAGE\r\n\r\n");
    c.send(&batch);
    assert_eq!(c.response().body_text(), "Get /ok - ");
    let r = c.response();
    assert_eq!(r.status_line, "HTTP/1.1 400 Bad Request");
    assert_eq!(r.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("Connection"), Some("close"));
    assert_eq!(r.body_text(), "Error when parsing request");
    c.expect_eof();
}

#[test]
fn head_request_has_length_but_no_body() {
    let mut c = Client::connect(default_server());
    c.send(b"HEAD /h HTTP/1.1\r\n\r\nGET /h HTTP/1.1\r\n\r\n");
    let head = c.head();
    assert_eq!(head.status(), 200);
    assert_eq!(head.header("Content-Length"), Some("10")); // "Head /h - "
                                                           // The next bytes are the next answer: no body was sent for HEAD.
    assert_eq!(c.response().body_text(), "Get /h - ");
}

#[test]
fn half_closed_client_still_gets_its_answer() {
    let mut c = Client::connect(default_server());
    c.send(b"GET /bye HTTP/1.1\r\n\r\n");
    c.writer.shutdown(Shutdown::Write).unwrap();
    assert_eq!(c.response().body_text(), "Get /bye - ");
    c.expect_eof();
}

#[test]
fn large_body_then_small_request() {
    let mut c = Client::connect(default_server());
    let big = "b".repeat(BODY_MAX - 10);
    c.send(&post("/big", &big));
    let r = c.response();
    assert_eq!(r.body.len(), "Post /big - ".len() + big.len());
    assert!(r.body.ends_with(big.as_bytes()));
    c.send(b"GET /small HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().body_text(), "Get /small - ");
}

#[test]
fn slow_request_gets_408() {
    let addr = start(timeouts(5_000, 200));
    let mut c = Client::connect(addr);
    let started = Instant::now();
    c.send(b"POST /slow HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc");
    let r = c.response();
    assert_eq!(r.status(), 408);
    assert_eq!(r.header("Connection"), Some("close"));
    assert!(started.elapsed() >= Duration::from_millis(190));
    c.expect_eof();
}

#[test]
fn idle_connection_is_closed_silently() {
    let addr = start(timeouts(200, 5_000));
    let mut c = Client::connect(addr);
    c.send(b"GET /x HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().status(), 200);
    let idle_from = Instant::now();
    c.expect_eof();
    let waited = idle_from.elapsed();
    assert!(waited >= Duration::from_millis(150), "{waited:?}");
    assert!(waited < Duration::from_millis(3_000), "{waited:?}");
}

#[test]
fn shutdown_closes_idle_connections_and_answers_with_close() {
    let addr = start(timeouts(30_000, 5_000));
    let mut idle = Client::connect(addr);
    idle.send(b"GET /warm HTTP/1.1\r\n\r\n");
    assert_eq!(idle.response().status(), 200);
    let mut c = Client::connect(addr);
    c.send(b"GET /shutdown HTTP/1.1\r\n\r\n");
    let r = c.response();
    assert_eq!(r.header("Connection"), Some("close"));
    c.expect_eof();
    let started = Instant::now();
    idle.expect_eof();
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn shutdown_waits_for_a_partly_received_request() {
    let addr = start(timeouts(30_000, 5_000));
    let mut c = Client::connect(addr);
    let mut batch = b"GET /shutdown HTTP/1.1\r\n\r\n".to_vec();
    batch.extend_from_slice(b"POST /late HTTP/1.1\r\nContent-Length: 4\r\n\r\nab");
    c.send(&batch);
    let first = c.response();
    assert_eq!(first.header("Connection"), None, "more is pending");
    std::thread::sleep(Duration::from_millis(50));
    c.send(b"cd");
    let r = c.response();
    assert_eq!(r.body_text(), "Post /late - abcd");
    assert_eq!(r.header("Connection"), Some("close"));
    c.expect_eof();
}

/// The same loop on io_uring, where a read dropped by a timer is cancelled in the kernel and
/// writes complete asynchronously: pipelining, 100-continue, 408, 413 and shutdown.
#[test]
fn io_uring_driver() {
    let Some(addr) = start_on(Driver::IoUring, timeouts(30_000, 200)) else {
        return; // io_uring blocked here (seccomp, io_uring_disabled): covered by epoll above
    };
    let mut c = Client::connect(addr);
    let mut batch = Vec::new();
    for i in 0..50 {
        batch.extend(post(&format!("/u{i}"), "x"));
    }
    c.send(&batch);
    for i in 0..50 {
        assert_eq!(c.response().body_text(), format!("Post /u{i} - x"));
    }
    c.send(b"POST /e HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n");
    assert_eq!(c.line(), "HTTP/1.1 100 Continue");
    assert_eq!(c.line(), "");
    c.send(b"ok");
    assert_eq!(c.response().body_text(), "Post /e - ok");
    c.send(b"GET /partial HTTP/1.1\r\n");
    assert_eq!(c.response().status(), 408);
    c.expect_eof();

    let mut big = Client::connect(addr);
    let head = format!(
        "POST /big HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        BODY_MAX + 1
    );
    big.send(head.as_bytes());
    assert_eq!(big.response().status(), 413);
    big.expect_eof();

    check_upgrade(addr);

    let mut idle = Client::connect(addr);
    idle.send(b"GET /warm HTTP/1.1\r\n\r\n");
    assert_eq!(idle.response().status(), 200);
    let mut c = Client::connect(addr);
    c.send(b"GET /shutdown HTTP/1.1\r\n\r\n");
    assert_eq!(c.response().header("Connection"), Some("close"));
    c.expect_eof();
    idle.expect_eof();
}
