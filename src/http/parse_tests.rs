//! Unit tests of `parse.rs` (kept apart to keep that file readable).

use super::*;
use crate::http::ChunkStatus;
use crate::http::ChunkedDecoder;

const MAX: usize = 1000;

fn parse(buf: &[u8]) -> Result<Option<Owned>, ParseError> {
    let mut slots = header_slots();
    Ok(match parse_request(buf, &mut slots, MAX)? {
        Parsed::Incomplete => None,
        Parsed::Complete(h) => Some(Owned::from(&h)),
    })
}

fn head(buf: &[u8]) -> Owned {
    parse(buf).unwrap().expect("complete head")
}

fn status(buf: &[u8]) -> u16 {
    parse(buf).unwrap_err().status()
}

/// A parsed head with owned fields, so tests can compare it freely.
#[derive(Debug, PartialEq)]
struct Owned {
    method: Method,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    minor_version: u8,
    keep_alive: bool,
    body: BodyKind,
    expect_continue: bool,
    head_len: usize,
}

impl From<&RequestHead<'_, '_>> for Owned {
    fn from(h: &RequestHead<'_, '_>) -> Self {
        Owned {
            method: h.method,
            path: h.path.to_string(),
            query: h.query.map(str::to_string),
            headers: h
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_vec()))
                .collect(),
            minor_version: h.minor_version,
            keep_alive: h.keep_alive,
            body: h.body,
            expect_continue: h.expect_continue,
            head_len: h.head_len,
        }
    }
}

#[test]
fn typical_post() {
    let req = b"POST /mostdb/set?x=1 HTTP/1.1\r\nHost: 127.0.0.1:5379\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"key\":\"ping\",\"value\":\"pong\"}";
    let h = head(req);
    assert_eq!(h.method, Method::Post);
    assert_eq!(h.path, "/mostdb/set");
    assert_eq!(h.query.as_deref(), Some("x=1"));
    assert_eq!(h.minor_version, 1);
    assert!(h.keep_alive);
    assert_eq!(h.body, BodyKind::Length(29));
    assert!(!h.expect_continue);
    assert_eq!(h.head_len, req.len() - 29);
    assert_eq!(h.headers.len(), 5);
    assert_eq!(
        h.headers[0],
        ("Host".to_string(), b"127.0.0.1:5379".to_vec())
    );
    assert_eq!(h.headers[4], ("Content-Length".to_string(), b"29".to_vec()));
}

#[test]
fn path_and_query_split_at_first_question_mark() {
    let h = head(b"GET /p?a=1?b HTTP/1.1\r\n\r\n");
    assert_eq!((h.path.as_str(), h.query.as_deref()), ("/p", Some("a=1?b")));
    let h = head(b"GET /p? HTTP/1.1\r\n\r\n");
    assert_eq!((h.path.as_str(), h.query.as_deref()), ("/p", Some("")));
    let h = head(b"GET /p HTTP/1.1\r\n\r\n");
    assert_eq!((h.path.as_str(), h.query), ("/p", None));
}

#[test]
fn methods() {
    for (m, want) in [
        ("GET", Method::Get),
        ("HEAD", Method::Head),
        ("POST", Method::Post),
        ("PUT", Method::Put),
        ("DELETE", Method::Delete),
        ("OPTIONS", Method::Options),
        ("PATCH", Method::Other),
    ] {
        let h = head(format!("{m} / HTTP/1.1\r\n\r\n").as_bytes());
        assert_eq!(h.method, want, "{m}");
    }
}

#[test]
fn header_values_are_trimmed() {
    let h = head(b"GET / HTTP/1.1\r\nX-A:   spaced value \t \r\nX-B:\r\n\r\n");
    assert_eq!(h.headers[0].1, b"spaced value");
    assert_eq!(h.headers[1].1, b"");
}

#[test]
fn keep_alive_rules() {
    assert!(head(b"GET / HTTP/1.1\r\n\r\n").keep_alive);
    assert!(head(b"GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.1\r\nconnection: Keep-Alive, CLOSE\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.0\r\n\r\n").keep_alive);
    assert!(!head(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").keep_alive);
    assert_eq!(head(b"GET / HTTP/1.0\r\n\r\n").minor_version, 0);
}

#[test]
fn content_length_rules() {
    let cl = |v: &str| format!("POST / HTTP/1.1\r\nContent-Length: {v}\r\n\r\n").into_bytes();
    assert_eq!(head(&cl("12")).body, BodyKind::Length(12));
    assert_eq!(head(&cl("0")).body, BodyKind::None);
    assert_eq!(head(&cl("0001000")).body, BodyKind::Length(1000));
    assert_eq!(head(b"POST / HTTP/1.1\r\n\r\n").body, BodyKind::None);
    for bad in ["abc", "+5", "-1", "5, 5", "1 2", "0x10", "5a"] {
        assert_eq!(status(&cl(bad)), 400, "{bad}");
    }
    assert_eq!(status(b"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400);
    assert_eq!(
        parse(&cl("1001")).unwrap_err(),
        ParseError::BodyTooLarge {
            declared: 1001,
            limit: MAX
        }
    );
    assert_eq!(status(&cl("99999999999999999999999999999")), 413);
}

#[test]
fn duplicate_content_length() {
    let same = b"POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n";
    assert_eq!(head(same).body, BodyKind::Length(5));
    let differ = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n";
    assert_eq!(status(differ), 400);
}

#[test]
fn transfer_encoding_rules() {
    let te = |v: &str| format!("POST / HTTP/1.1\r\nTransfer-Encoding: {v}\r\n\r\n").into_bytes();
    assert_eq!(head(&te("chunked")).body, BodyKind::Chunked);
    assert_eq!(head(&te("Chunked")).body, BodyKind::Chunked);
    assert_eq!(status(&te("gzip")), 400);
    assert_eq!(status(&te("chunked, gzip")), 400);
    assert_eq!(status(&te("gzip, chunked")), 501);
    assert_eq!(status(&te("chunked, chunked")), 501);
    let twice = b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(status(twice), 501);
    let both = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\nhello";
    assert_eq!(status(both), 400);
    // A huge declared length does not hide the smuggling attempt behind a 413.
    let both_huge =
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 999999\r\n\r\n";
    assert_eq!(status(both_huge), 400);
    // An empty Transfer-Encoding is still a framing header: beside a Content-Length it is the
    // same smuggling attempt, and alone it names no coding at all.
    let empty_and_length =
        b"POST / HTTP/1.1\r\nTransfer-Encoding:\r\nContent-Length: 5\r\n\r\nhello";
    assert_eq!(status(empty_and_length), 400);
    assert_eq!(status(&te("")), 400);
    assert_eq!(status(&te(" , ")), 400);
}

#[test]
fn expect_continue_flag() {
    let e = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    assert!(head(e).expect_continue);
    let chunked = b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert!(head(chunked).expect_continue);
    let http10 = b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";
    assert!(!head(http10).expect_continue);
    let no_body = b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n";
    assert!(!head(no_body).expect_continue);
    let other = b"POST / HTTP/1.1\r\nExpect: something\r\nContent-Length: 5\r\n\r\n";
    assert!(!head(other).expect_continue);
}

#[test]
fn incomplete_at_every_prefix_of_a_head() {
    let req = b"POST /mostdb/get HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n";
    for end in 0..req.len() {
        assert_eq!(parse(&req[..end]).unwrap(), None, "prefix {end}");
    }
    assert_eq!(head(req).head_len, req.len());
}

#[test]
fn head_size_limit() {
    let line = "X-Filler: ".to_string() + &"a".repeat(1000) + "\r\n";
    let mut req = "GET / HTTP/1.1\r\n".to_string();
    while req.len() + line.len() + 2 <= HEAD_BYTES_MAX {
        req.push_str(&line);
    }
    // Pad so the head, blank line included, is exactly the limit.
    let pad = HEAD_BYTES_MAX - req.len() - 2 - "X-P: \r\n".len();
    req.push_str(&format!("X-P: {}\r\n\r\n", "b".repeat(pad)));
    assert_eq!(req.len(), HEAD_BYTES_MAX);
    assert_eq!(head(req.as_bytes()).head_len, HEAD_BYTES_MAX);
    // One byte more is refused even when complete.
    let over = req.replacen("X-P: ", "X-P: c", 1);
    assert_eq!(parse(over.as_bytes()).unwrap_err().status(), 431);
    // An unfinished head is refused once it reaches the limit, not before.
    let unfinished = &over.as_bytes()[..HEAD_BYTES_MAX - 1];
    assert_eq!(parse(unfinished).unwrap(), None);
    let unfinished = &over.as_bytes()[..HEAD_BYTES_MAX];
    assert_eq!(
        parse(unfinished).unwrap_err(),
        ParseError::HeadTooLarge {
            limit: HEAD_BYTES_MAX
        }
    );
}

#[test]
fn header_count_limit() {
    let with = |n: usize| {
        let mut r = "GET / HTTP/1.1\r\n".to_string();
        for i in 0..n {
            r.push_str(&format!("X-{i}: v\r\n"));
        }
        r.push_str("\r\n");
        r.into_bytes()
    };
    assert_eq!(head(&with(HEADERS_MAX)).headers.len(), HEADERS_MAX);
    assert_eq!(
        parse(&with(HEADERS_MAX + 1)).unwrap_err(),
        ParseError::TooManyHeaders { limit: HEADERS_MAX }
    );
}

#[test]
fn malformed_requests_are_400() {
    for bad in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/2.0\r\n\r\n",
        b"GET / FTP/1.1\r\n\r\n",
        b"GET  HTTP/1.1\r\n\r\n",
        b"GET /\xff\xfe HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n",
        b"GET / HTTP/1.1\r\n: empty-name\r\n\r\n",
        b"\x00\x01\x02\x03",
    ] {
        assert_eq!(status(bad), 400, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn statuses_of_errors() {
    assert_eq!(ParseError::Malformed { what: "x" }.status(), 400);
    assert_eq!(ParseError::HeadTooLarge { limit: 1 }.status(), 431);
    assert_eq!(ParseError::TooManyHeaders { limit: 1 }.status(), 431);
    assert_eq!(ParseError::TrailersTooLarge { limit: 1 }.status(), 431);
    let big = ParseError::BodyTooLarge {
        declared: 2,
        limit: 1,
    };
    assert_eq!(big.status(), 413);
    assert_eq!(ParseError::UnsupportedTransferCoding.status(), 501);
}

/// One framed request: method, path, body.
type Framed = (Method, String, Vec<u8>);

/// Frames and removes every complete request at the front of `buf`, the way the connection
/// loop does (head, then Content-Length or chunked body, then the head parsed again).
fn take_requests(
    buf: &mut Vec<u8>,
    chunked: &mut Option<ChunkedDecoder>,
) -> Result<Vec<Framed>, ParseError> {
    let mut done = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let mut slots = header_slots();
        let (head_len, kind) = match parse_request(&buf[pos..], &mut slots, MAX)? {
            Parsed::Incomplete => break,
            Parsed::Complete(h) => (h.head_len, h.body),
        };
        let (body, end) = match kind {
            BodyKind::None => (head_len..head_len, head_len),
            BodyKind::Length(n) if buf.len() - pos >= head_len + n => {
                (head_len..head_len + n, head_len + n)
            }
            BodyKind::Length(_) => break,
            BodyKind::Chunked => {
                let dec = chunked.get_or_insert_with(|| ChunkedDecoder::new(MAX));
                match dec.decode(buf, pos + head_len)? {
                    ChunkStatus::Incomplete => break,
                    ChunkStatus::Complete { body_len, consumed } => {
                        *chunked = None;
                        (head_len..head_len + body_len, head_len + consumed)
                    }
                }
            }
        };
        let mut slots = header_slots();
        let Parsed::Complete(h) = parse_request(&buf[pos..pos + head_len], &mut slots, MAX)? else {
            panic!("head no longer parses");
        };
        let body = buf[pos + body.start..pos + body.end].to_vec();
        done.push((h.method, h.path.to_string(), body));
        pos += end;
    }
    buf.drain(..pos);
    Ok(done)
}

fn check_every_split(input: &[u8], want: &[Framed]) {
    for split in 0..=input.len() {
        let mut buf = input[..split].to_vec();
        let mut chunked = None;
        let mut got = take_requests(&mut buf, &mut chunked).unwrap();
        buf.extend_from_slice(&input[split..]);
        got.extend(take_requests(&mut buf, &mut chunked).unwrap());
        assert_eq!(got, want, "split at {split}");
        assert!(buf.is_empty(), "split at {split}: {} bytes left", buf.len());
        assert!(chunked.is_none());
    }
}

#[test]
fn pipelined_pair_at_every_split() {
    let input =
        b"POST /a?q HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: x\r\n\r\n";
    let want = vec![
        (Method::Post, "/a".to_string(), b"hello".to_vec()),
        (Method::Get, "/b".to_string(), Vec::new()),
    ];
    check_every_split(input, &want);
}

#[test]
fn chunked_then_length_at_every_split() {
    let input = b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n5;x=y\r\npedia\r\n0\r\nT: 1\r\n\r\nPUT /d HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
    let want = vec![
        (Method::Post, "/c".to_string(), b"wikipedia".to_vec()),
        (Method::Put, "/d".to_string(), b"abc".to_vec()),
    ];
    check_every_split(input, &want);
}

#[test]
fn byte_by_byte_pipeline() {
    let input = b"GET /1 HTTP/1.1\r\n\r\nPOST /2 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nDELETE /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nz";
    let mut buf = Vec::new();
    let mut chunked = None;
    let mut got = Vec::new();
    for &b in input {
        buf.push(b);
        got.extend(take_requests(&mut buf, &mut chunked).unwrap());
    }
    assert_eq!(
        got,
        vec![
            (Method::Get, "/1".to_string(), Vec::new()),
            (Method::Post, "/2".to_string(), b"abc".to_vec()),
            (Method::Delete, "/3".to_string(), b"z".to_vec()),
        ]
    );
    assert!(buf.is_empty());
}
