//! The raw HTTP/1.1 client of the integration tests, on `std::net::TcpStream`: writes requests
//! as given bytes, reads responses one at a time (status line, headers in order, body by
//! Content-Length), and compares whole responses as bytes with the `Date` value masked.
//! Also the exact bodies of the API. Must not import the `mostdb` library.

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use super::IO_TIMEOUT_MS;

/// Largest response head the client accepts.
pub const RESPONSE_HEAD_BYTES_MAX: usize = 64 * 1024;
/// Placeholder that replaces the value of `Date:` in [`Resp::masked`].
pub const DATE_MASK: &str = "<date>";

// ------------------------------------------------------------------------------------------------
// Raw HTTP client

/// One parsed response. `raw` is exactly the bytes received for it (head and body).
#[derive(Clone)]
pub struct Resp {
    pub raw: Vec<u8>,
    pub status_line: String,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Asserts the `Date` header is within `slack_s` seconds of this machine's clock.
    #[track_caller]
    pub fn assert_date_current(&self, slack_s: u64) {
        let date = self.header("Date").expect("Date header");
        let at = parse_rfc1123(date).unwrap_or_else(|| panic!("Date not RFC 1123: {date:?}"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        assert!(
            at.abs_diff(now) <= slack_s,
            "Date {date:?} is {} s off",
            at.abs_diff(now)
        );
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// `raw` with the value of the `Date` header checked (RFC 1123, GMT) and replaced by
    /// [`DATE_MASK`], so that whole responses can be compared as bytes.
    pub fn masked(&self) -> Vec<u8> {
        let head_end = find(&self.raw, b"\r\n\r\n").expect("complete head") + 4;
        let head = std::str::from_utf8(&self.raw[..head_end]).expect("ASCII head");
        let mut out = String::new();
        for line in head.split_inclusive("\r\n") {
            match line.strip_prefix("Date: ") {
                Some(v) => {
                    let v = v.trim_end_matches("\r\n");
                    assert!(is_rfc1123(v), "Date header not RFC 1123: {v:?}");
                    let _ = write!(out, "Date: {DATE_MASK}\r\n");
                }
                None => out.push_str(line),
            }
        }
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.raw[head_end..]);
        bytes
    }

    /// Asserts the whole response equals `expected` (with the Date value as [`DATE_MASK`]).
    #[track_caller]
    pub fn assert_bytes(&self, expected: &[u8]) {
        let got = self.masked();
        if got != expected {
            panic!(
                "response differs\n  expected: {}\n  got:      {}",
                show(expected),
                show(&got)
            );
        }
    }

    /// Asserts a JSON response with `status` and exactly `body`.
    #[track_caller]
    pub fn assert_json(&self, status: u16, body: &str) {
        self.assert_bytes(&expect_json(status, body.as_bytes()));
    }

    /// Asserts HTTP 200 with the 参数有误 envelope plus a non-empty English `detail`.
    #[track_caller]
    pub fn assert_bad_param_with_detail(&self) {
        self.assert_envelope_with_detail(
            200,
            "{\"code\":500,\"message\":\"参数有误\",\"success\":false,\"detail\":\"",
        );
    }

    /// Asserts `status`, JSON headers and a body `<prefix><detail>"}` where the detail is a
    /// non-empty ASCII (English) JSON string and the last field.
    #[track_caller]
    pub fn assert_envelope_with_detail(&self, status: u16, prefix: &str) {
        let body = self.body_str();
        assert!(
            body.starts_with(prefix) && body.ends_with("\"}"),
            "expected {prefix}<detail>\"}} got {}",
            show(&self.raw)
        );
        let parsed: serde_json::Value = match serde_json::from_str(&body) {
            Ok(v) => v,
            Err(e) => panic!("body is not JSON ({e}): {}", show(&self.raw)),
        };
        let detail = parsed
            .get("detail")
            .and_then(|d| d.as_str())
            .unwrap_or_default();
        assert!(
            !detail.trim().is_empty() && detail.is_ascii(),
            "detail must be non-empty English text: {}",
            show(&self.raw)
        );
        assert_eq!(
            parsed.as_object().map(|o| o.len()),
            Some(4),
            "extra fields: {body}"
        );
        self.assert_json(status, &body);
    }
}

/// The exact bytes of a JSON response (Date masked): headers in the server's order.
pub fn expect_json(status: u16, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nServer: mostdb\r\nDate: {DATE_MASK}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        reason(status),
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The exact bytes of a text/plain response; `close` adds `Connection: close` last.
pub fn expect_text(status: u16, body: &str, allow: Option<&str>, close: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nServer: mostdb\r\nDate: {DATE_MASK}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n",
        reason(status),
        body.len()
    );
    if let Some(a) = allow {
        let _ = write!(out, "Allow: {a}\r\n");
    }
    if close {
        out.push_str("Connection: close\r\n");
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

pub fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        507 => "Insufficient Storage",
        _ => "?",
    }
}

/// Printable form of response bytes for failure messages (long bodies shortened).
pub fn show(bytes: &[u8]) -> String {
    const SHOW_BYTES_MAX: usize = 600;
    let cut = &bytes[..bytes.len().min(SHOW_BYTES_MAX)];
    let mut s = format!("{:?}", String::from_utf8_lossy(cut));
    if bytes.len() > SHOW_BYTES_MAX {
        let _ = write!(s, " ... ({} bytes in all)", bytes.len());
    }
    s
}

/// `Sun, 06 Nov 1994 08:49:37 GMT`, with a weekday that matches the date.
pub fn is_rfc1123(v: &str) -> bool {
    parse_rfc1123(v).is_some()
}

/// Seconds since the Unix epoch of an RFC 1123 date (`Sun, 06 Nov 1994 08:49:37 GMT`).
pub fn parse_rfc1123(v: &str) -> Option<u64> {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    if !v.is_ascii() || v.len() != 29 || &v[3..5] != ", " || &v[25..] != " GMT" {
        return None;
    }
    let b = v.as_bytes();
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let text = &v[r];
        text.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| text.parse().ok())?
    };
    let (day, year) = (num(5..7)?, num(12..16)?);
    let (hour, min, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    let month = MONTHS.iter().position(|m| *m == &v[8..11])? as i64 + 1;
    if !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    if DAYS[days.rem_euclid(7) as usize] != &v[0..3] {
        return None;
    }
    u64::try_from(days * 86_400 + hour * 3_600 + min * 60 + sec).ok()
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A request to `path` with `body` (Content-Length framing, keep-alive).
pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    request("POST", path, &[], body)
}

/// A request with extra header lines (`"Name: value"`); Content-Length added when body is non-empty
/// or the method is POST.
pub fn request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for h in headers {
        let _ = write!(out, "{h}\r\n");
    }
    if !body.is_empty() || method == "POST" {
        let _ = write!(out, "Content-Length: {}\r\n", body.len());
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// How a read of a response ended early.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed (EOF or reset) after `got` bytes of this response.
    Closed {
        got: usize,
    },
    /// No progress within the socket timeout.
    Timeout,
    Malformed(String),
    Io(std::io::Error),
}

/// A raw HTTP/1.1 client: writes bytes as given, reads responses one by one.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect to node");
        Client::from_stream(stream, Duration::from_millis(IO_TIMEOUT_MS))
    }

    pub fn from_stream(stream: TcpStream, timeout: Duration) -> Client {
        stream
            .set_read_timeout(Some(timeout))
            .expect("read timeout");
        stream
            .set_write_timeout(Some(timeout))
            .expect("write timeout");
        let _ = stream.set_nodelay(true);
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn set_read_timeout(&mut self, t: Duration) {
        self.stream.set_read_timeout(Some(t)).expect("read timeout");
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write request");
    }

    /// Sends one request and reads its response.
    #[track_caller]
    pub fn call(&mut self, bytes: &[u8]) -> Resp {
        self.send(bytes);
        self.read_response()
    }

    #[track_caller]
    pub fn post(&mut self, path: &str, body: &str) -> Resp {
        self.call(&post(path, body.as_bytes()))
    }

    #[track_caller]
    pub fn read_response(&mut self) -> Resp {
        match self.try_read_response() {
            Ok(r) => r,
            Err(e) => panic!("reading a response: {e:?} (buffered: {})", show(&self.buf)),
        }
    }

    /// Reads one response whose body is framed by Content-Length (none for 1xx).
    pub fn try_read_response(&mut self) -> Result<Resp, ReadError> {
        self.read_response_inner(true)
    }

    /// Reads a response head only (for HEAD requests: Content-Length describes no body).
    #[track_caller]
    pub fn read_head_only(&mut self) -> Resp {
        match self.read_response_inner(false) {
            Ok(r) => r,
            Err(e) => panic!(
                "reading a response head: {e:?} (buffered: {})",
                show(&self.buf)
            ),
        }
    }

    fn read_response_inner(&mut self, with_body: bool) -> Result<Resp, ReadError> {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > RESPONSE_HEAD_BYTES_MAX {
                return Err(ReadError::Malformed("response head too large".into()));
            }
            self.fill()?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| ReadError::Malformed("non-UTF-8 head".into()))?
            .to_string();
        let mut lines = head.trim_end_matches("\r\n").split("\r\n");
        let status_line = lines.next().unwrap_or_default().to_string();
        let status = parse_status(&status_line)?;
        let mut headers = Vec::new();
        for line in lines {
            let (n, v) = line
                .split_once(": ")
                .ok_or_else(|| ReadError::Malformed(format!("header line {line:?}")))?;
            headers.push((n.to_string(), v.to_string()));
        }
        let len = body_len(status, &headers, with_body)?;
        while self.buf.len() < head_end + len {
            self.fill()?;
        }
        let raw: Vec<u8> = self.buf.drain(..head_end + len).collect();
        let body = raw[head_end..].to_vec();
        Ok(Resp {
            raw,
            status_line,
            status,
            headers,
            body,
        })
    }

    fn fill(&mut self) -> Result<(), ReadError> {
        const CHUNK_BYTES: usize = 256 * 1024;
        let mut chunk = vec![0u8; CHUNK_BYTES];
        match self.stream.read(&mut chunk) {
            Ok(0) => Err(ReadError::Closed {
                got: self.buf.len(),
            }),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(ReadError::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Err(ReadError::Closed {
                got: self.buf.len(),
            }),
            Err(e) => Err(ReadError::Io(e)),
        }
    }

    /// Asserts that the server closes the connection (EOF or reset) within `timeout`
    /// without sending anything more.
    #[track_caller]
    pub fn assert_closed_within(&mut self, timeout: Duration) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {}",
            show(&self.buf)
        );
        self.set_read_timeout(timeout);
        match self.fill() {
            Err(ReadError::Closed { got: 0 }) => {}
            Err(ReadError::Timeout) => panic!("connection still open after {timeout:?}"),
            Err(e) => panic!("expected close, got {e:?}"),
            Ok(()) => panic!("expected close, got more bytes: {}", show(&self.buf)),
        }
    }

    #[track_caller]
    pub fn assert_closed(&mut self) {
        self.assert_closed_within(Duration::from_millis(5_000));
    }

    /// Asserts that nothing arrives within `window` and the connection stays open.
    #[track_caller]
    pub fn assert_silent_for(&mut self, window: Duration) {
        self.set_read_timeout(window);
        match self.fill() {
            Err(ReadError::Timeout) => {}
            other => panic!(
                "expected silence, got {other:?} buffered {}",
                show(&self.buf)
            ),
        }
        self.set_read_timeout(Duration::from_millis(IO_TIMEOUT_MS));
    }

    /// Reads exactly `n` bytes (for interim responses such as `100 Continue`).
    #[track_caller]
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            if let Err(e) = self.fill() {
                panic!("reading {n} bytes: {e:?} (buffered: {})", show(&self.buf));
            }
        }
        self.buf.drain(..n).collect()
    }

    pub fn shutdown_write(&mut self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

fn parse_status(line: &str) -> Result<u16, ReadError> {
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(ReadError::Malformed(format!("status line {line:?}")));
    }
    code.parse()
        .map_err(|_| ReadError::Malformed(format!("status line {line:?}")))
}

fn body_len(
    status: u16,
    headers: &[(String, String)],
    with_body: bool,
) -> Result<usize, ReadError> {
    if (100..200).contains(&status) || !with_body {
        return Ok(0);
    }
    let cl = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"));
    match cl {
        Some((_, v)) => v
            .parse()
            .map_err(|_| ReadError::Malformed(format!("Content-Length {v:?}"))),
        None => Err(ReadError::Malformed(
            "response without Content-Length".into(),
        )),
    }
}

// ------------------------------------------------------------------------------------------------
// The API's bodies

pub const OK: &str = r#"{"code":200,"success":true}"#;
pub const NOT_FOUND: &str = r#"{"code":500,"message":"NotFound","success":false}"#;
pub const BAD_PARAM: &str = r#"{"code":500,"message":"参数有误","success":false}"#;
pub const UNAUTHORIZED: &str = r#"{"code":401,"message":"Unauthorized","success":false}"#;
pub const ALIVE: &str = r#"{"code":200,"success":true,"result":{"status":"alive"}}"#;
pub const READY: &str = r#"{"code":200,"success":true,"result":{"status":"ready"}}"#;

/// `{"key":K,"value":V}` with K and V JSON-encoded as the tests need them (no escaping here:
/// callers pass JSON string contents that are already valid).
pub fn kv(key: &str, value: &str) -> String {
    format!(r#"{{"key":"{key}","value":"{value}"}}"#)
}

pub fn k(key: &str) -> String {
    format!(r#"{{"key":"{key}"}}"#)
}

/// The success body of a get, with key and value as the server must encode them.
pub fn got(key_json: &str, value_json: &str) -> String {
    format!(
        r#"{{"code":200,"success":true,"result":{{"key":"{key_json}","value":"{value_json}"}}}}"#
    )
}

#[test]
fn rfc1123_dates_parse() {
    assert_eq!(
        parse_rfc1123("Sun, 06 Nov 1994 08:49:37 GMT"),
        Some(784_111_777)
    );
    assert_eq!(parse_rfc1123("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
    assert_eq!(
        parse_rfc1123("Tue, 24 Nov 2026 21:45:17 GMT"),
        Some(1_795_556_717)
    );
    assert_eq!(
        parse_rfc1123("Mon, 06 Nov 1994 08:49:37 GMT"),
        None,
        "wrong weekday"
    );
    assert_eq!(parse_rfc1123("Sun, 06 Nov 1994 08:49:37 UTC"), None);
    assert_eq!(parse_rfc1123("Sun, 6 Nov 1994 08:49:37 GMT"), None);
}
