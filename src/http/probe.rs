//! A small blocking HTTP/1.1 client, for `mostdb probe` (one `GET /healthz` or `/readyz`, for
//! container health checks and scripts on images without a shell or curl) and the command-line
//! client (`mostdb kv …`). One request per connection, bounded in time and bytes; over TLS
//! when the node speaks it (its certificate checked against `MOSTDB_TLS_CA`).
//!
//! Must not import `api`, `replication`, `storage` or `server`.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::tls::TlsDialer;

/// Connect, write and read timeout of a probe.
pub const PROBE_TIMEOUT_MS: u64 = 2_000;
/// The most of an answer a probe reads.
pub const PROBE_ANSWER_BYTES_MAX: u64 = 16 * 1024;

/// One request, and to whom.
pub struct ProbeRequest<'a> {
    /// `http://host:port[/]`.
    pub url: &'a str,
    pub method: &'a str,
    /// The path and query, e.g. `/healthz`.
    pub path: &'a str,
    /// Extra header lines, each `Name: value` (the API key when it is on).
    pub headers: Vec<String>,
    /// Sent with a `Content-Length` when not empty.
    pub body: &'a [u8],
    /// Over TLS with this dialer (`None`: plain HTTP).
    pub tls: Option<TlsDialer>,
    /// Connect, write and read timeout.
    pub timeout: Duration,
    /// The most of an answer read (the rest is cut).
    pub answer_bytes_max: u64,
}

impl<'a> ProbeRequest<'a> {
    /// A health probe: `GET path`, with the probe's bounds.
    pub fn get(url: &'a str, path: &'a str, headers: Vec<String>, tls: Option<TlsDialer>) -> Self {
        ProbeRequest {
            url,
            method: "GET",
            path,
            headers,
            body: b"",
            tls,
            timeout: Duration::from_millis(PROBE_TIMEOUT_MS),
            answer_bytes_max: PROBE_ANSWER_BYTES_MAX,
        }
    }
}

/// The answer's status and its body (as text), or why there is none.
pub fn probe(request: &ProbeRequest<'_>) -> std::io::Result<(u16, String)> {
    let authority = request
        .url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("the URL must be http://host:port"))?
        .trim_end_matches('/');
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("the host has no address"))?;
    let tcp = TcpStream::connect_timeout(&addr, request.timeout)?;
    tcp.set_read_timeout(Some(request.timeout))?;
    tcp.set_write_timeout(Some(request.timeout))?;
    match &request.tls {
        None => exchange(tcp, authority, request),
        Some(tls) => exchange(tls.blocking(tcp, authority)?, authority, request),
    }
}

fn exchange(
    mut stream: impl Read + Write,
    authority: &str,
    request: &ProbeRequest<'_>,
) -> std::io::Result<(u16, String)> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n",
        request.method, request.path
    );
    for line in &request.headers {
        head.push_str(line);
        head.push_str("\r\n");
    }
    if !request.body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            request.body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(request.body)?;
    stream.flush()?;
    let mut answer = Vec::new();
    match stream
        .take(request.answer_bytes_max)
        .read_to_end(&mut answer)
    {
        Ok(_) => {}
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(err) => return Err(err),
    }
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))?;
    Ok((status, body.trim().to_string()))
}
