//! `PUT /admin/config?scope=cluster`: the same change, sent to every peer's URL as a
//! `PUT /admin/config` with the same credentials (the `Authorization` header and the API key
//! header as the client sent them), over TLS with this node's certificate when the port speaks
//! TLS. Blocking sockets with bounded timeouts on a thread of its own, off the event loop; a
//! bounded number at once.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::ADMIN_BODY_BYTES_MAX;
use crate::http::Request;
use crate::tls::TlsDialer;

/// Connect, write and read timeout of one call to a peer.
pub const ADMIN_PEER_TIMEOUT_MS: u64 = 3_000;
/// Cluster-wide changes in progress at once on one node; more are refused.
const ADMIN_FANOUTS_MAX: usize = 4;
/// The largest answer read from a peer.
const ADMIN_PEER_ANSWER_BYTES_MAX: usize = 64 * 1024;

static FANOUTS: AtomicUsize = AtomicUsize::new(0);

/// One peer's answer (or why there is none, as a JSON envelope with status 502).
pub struct NodeResult {
    pub url: String,
    pub status: u16,
    pub body: Vec<u8>,
}

/// The request to forward, owned (it goes to another thread).
struct Forward {
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Sends `req`'s change to every URL in `peer_urls`, one after another on a helper thread.
pub async fn put_everywhere(
    peer_urls: &[String],
    req: &Request<'_>,
    tls: Option<TlsDialer>,
) -> Vec<NodeResult> {
    if peer_urls.is_empty() {
        return Vec::new();
    }
    if FANOUTS.fetch_add(1, Ordering::AcqRel) >= ADMIN_FANOUTS_MAX {
        FANOUTS.fetch_sub(1, Ordering::AcqRel);
        return failed_all(peer_urls, "too many cluster-wide changes at once; retry");
    }
    let forward = Forward {
        headers: req
            .headers
            .iter()
            .filter(|(name, _)| !is_framing(name))
            .map(|(name, value)| (name.to_string(), value.to_vec()))
            .collect(),
        body: req.body.to_vec(),
    };
    let urls = peer_urls.to_vec();
    let (send, receive) = futures_channel::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("mostdb-admin".into())
        .spawn(move || {
            let results: Vec<NodeResult> = urls
                .iter()
                .map(|url| put_one(url, &forward, tls.as_ref()))
                .collect();
            FANOUTS.fetch_sub(1, Ordering::AcqRel);
            let _ = send.send(results);
        });
    if spawned.is_err() {
        FANOUTS.fetch_sub(1, Ordering::AcqRel);
        return failed_all(peer_urls, "could not start a thread to call the peers");
    }
    match receive.await {
        Ok(results) => results,
        Err(_) => failed_all(peer_urls, "the call to the peers ended without an answer"),
    }
}

/// Headers the forwarded request sets itself.
fn is_framing(name: &str) -> bool {
    [
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "expect",
        "upgrade",
    ]
    .iter()
    .any(|framing| framing.eq_ignore_ascii_case(name))
}

fn failed_all(urls: &[String], why: &str) -> Vec<NodeResult> {
    urls.iter().map(|url| failed(url, why)).collect()
}

fn failed(url: &str, why: &str) -> NodeResult {
    let mut body =
        b"{\"code\":502,\"message\":\"Unreachable\",\"success\":false,\"detail\":".to_vec();
    crate::api::json::write_go_string(&mut body, why.as_bytes());
    body.push(b'}');
    NodeResult {
        url: url.to_string(),
        status: 502,
        body,
    }
}

fn put_one(url: &str, forward: &Forward, tls: Option<&TlsDialer>) -> NodeResult {
    match call(url, forward, tls) {
        Ok((status, body)) if serde_json::from_slice::<serde_json::Value>(&body).is_ok() => {
            NodeResult {
                url: url.to_string(),
                status,
                body,
            }
        }
        Ok((status, _)) => failed(url, &format!("answered {status} without a JSON body")),
        Err(err) => failed(url, &err.to_string()),
    }
}

/// One `PUT /admin/config` to the node at `url` (`http://host:port[/]`; over TLS when `tls`):
/// its status and body.
fn call(url: &str, forward: &Forward, tls: Option<&TlsDialer>) -> std::io::Result<(u16, Vec<u8>)> {
    let authority = url
        .strip_prefix("http://")
        .ok_or_else(|| std::io::Error::other("not an http:// URL"))?
        .trim_end_matches('/');
    let timeout = Duration::from_millis(ADMIN_PEER_TIMEOUT_MS);
    let addr = authority
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other("no address"))?;
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    match tls {
        None => exchange(stream, authority, forward),
        Some(tls) => exchange(tls.blocking(stream, authority)?, authority, forward),
    }
}

/// Writes the request on `stream` and reads the whole answer (bounded).
fn exchange(
    mut stream: impl Read + Write,
    authority: &str,
    forward: &Forward,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut head = format!(
        "PUT {} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\nContent-Length: {}\r\n",
        super::ADMIN_CONFIG_PATH,
        forward.body.len()
    )
    .into_bytes();
    for (name, value) in &forward.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    stream.write_all(&head)?;
    stream.write_all(&forward.body)?;
    stream.flush()?;
    let mut answer = Vec::new();
    let limit = (ADMIN_PEER_ANSWER_BYTES_MAX + 1024) as u64;
    match stream.take(limit).read_to_end(&mut answer) {
        Ok(_) => {}
        // A TLS peer that closes without close_notify after a complete answer: keep the answer.
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof && !answer.is_empty() => {}
        Err(err) => return Err(err),
    }
    parse_answer(&answer).ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

/// The status and body of a `Connection: close` answer read whole.
fn parse_answer(answer: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..split]).ok()?;
    let status = head.split(' ').nth(1)?.parse::<u16>().ok()?;
    let body = &answer[split + 4..];
    (body.len() <= ADMIN_BODY_BYTES_MAX).then(|| (status, body.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed_and_bounded() {
        let ok = b"HTTP/1.1 409 Conflict\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_answer(ok), Some((409, b"{}".to_vec())));
        assert_eq!(parse_answer(b"garbage"), None);
        let mut big = b"HTTP/1.1 200 OK\r\n\r\n".to_vec();
        big.extend(std::iter::repeat_n(b'x', ADMIN_BODY_BYTES_MAX + 1));
        assert_eq!(parse_answer(&big), None);
    }
}
