//! Dialling a peer: resolve its address (off the event loop when it is a name), connect from
//! this node's own address when it has a specific one (so a network rule can cut exactly one
//! link), run the TLS handshake when the node speaks TLS, send the upgrade request, check the
//! answer and send the proof it challenges for. Must not import `http` or `api`.

use std::io;
use std::net::{IpAddr, SocketAddr};

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::net::TcpStream;
use socket2::{Domain, Protocol, Socket, Type};

use super::admission::{resolve_off_loop, PeerAdmission};
use super::handshake::{self, Answered, HandshakeError, Identity, Nonce, PeerHello};
use crate::limits::{HEADERS_MAX, PEER_HANDSHAKE_BYTES_MAX};
use crate::tls::{Stream, TlsDialer};

/// Why a dial gave no link.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("cannot resolve {addr}: {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("cannot connect: {0}")]
    Connect(io::Error),
    #[error("TLS: {0}")]
    Tls(io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    #[error("handshake I/O: {0}")]
    Io(io::Error),
    #[error("no handshake answer in time")]
    Timeout,
}

/// Connects to `addr` (`host:port`), over TLS with `tls`, completes the handshake and sends
/// the proof the answer challenged for: the stream, who answered, and any bytes that came
/// after the `101`. `admission` learns what a name resolved to (the member's address may have
/// changed).
pub(super) async fn dial(
    addr: &str,
    bind_ip: Option<IpAddr>,
    me: &Identity,
    admission: Option<&PeerAdmission>,
    tls: Option<&TlsDialer>,
) -> Result<(Stream, PeerHello, Vec<u8>), DialError> {
    let peer = resolve(addr, bind_ip, admission).await?;
    let tcp = connect(peer, bind_ip).await.map_err(DialError::Connect)?;
    let mut stream = match tls {
        Some(tls) => tls.connect(tcp, addr).await.map_err(DialError::Tls)?,
        None => Stream::Plain(tcp),
    };
    let nonce = Nonce::random();
    let request = handshake::dial_request(me, addr, &nonce);
    let (res, _) = stream.write_all(request).await;
    res.map_err(DialError::Io)?;
    let (answered, leftover) = read_answer(&mut stream, me, &nonce).await?;
    let (res, _) = stream.write_all(answered.proof.to_vec()).await;
    res.map_err(DialError::Io)?;
    Ok((stream, answered.peer, leftover))
}

/// A literal address at once; a name through the system resolver off the event loop.
/// Prefers the family of `bind_ip` when there is one.
async fn resolve(
    addr: &str,
    bind_ip: Option<IpAddr>,
    admission: Option<&PeerAdmission>,
) -> Result<SocketAddr, DialError> {
    if let Ok(literal) = addr.parse::<SocketAddr>() {
        return Ok(literal);
    }
    let failed = |source| DialError::Resolve {
        addr: addr.to_string(),
        source,
    };
    let found = resolve_off_loop(addr).await.map_err(failed)?;
    if let Some(admission) = admission {
        admission.learned(addr, &found);
    }
    let same_family = |a: &&SocketAddr| bind_ip.is_none_or(|ip| ip.is_ipv4() == a.is_ipv4());
    found
        .iter()
        .find(same_family)
        .or(found.first())
        .copied()
        .ok_or_else(|| failed(io::Error::other("no address")))
}

/// Connects without blocking the loop: a non-blocking socket (bound first to `bind_ip`,
/// port chosen by the kernel) handed to monoio, then waiting until it is writable.
async fn connect(peer: SocketAddr, bind_ip: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(peer), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if let Some(ip) = bind_ip {
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match socket.connect(&peer.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    let std_stream: std::net::TcpStream = socket.into();
    // A second descriptor of the same socket, to read SO_ERROR and flags after the hand-off.
    let probe = std_stream.try_clone()?;
    let stream = TcpStream::from_std(std_stream)?;
    stream.writable(false).await?;
    if let Some(err) = probe.take_error()? {
        return Err(err);
    }
    if !monoio::utils::is_legacy() {
        // io_uring does its own waiting; monoio's own sockets are blocking there.
        probe.set_nonblocking(false)?;
    }
    Ok(stream)
}

/// Reads the answer to the upgrade request (bounded by `PEER_HANDSHAKE_BYTES_MAX`) and
/// checks it.
async fn read_answer(
    stream: &mut Stream,
    me: &Identity,
    nonce: &Nonce,
) -> Result<(Answered, Vec<u8>), DialError> {
    let mut buf = Vec::with_capacity(PEER_HANDSHAKE_BYTES_MAX);
    loop {
        if let Some(done) = parse_answer(&buf, me, nonce, false)? {
            return Ok(done);
        }
        if buf.len() == buf.capacity() {
            return Err(HandshakeError::Malformed {
                what: "answer too large",
            }
            .into());
        }
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = stream.read(buf.slice_mut(len..cap)).await;
        buf = slice.into_inner();
        if res.map_err(DialError::Io)? == 0 {
            return match parse_answer(&buf, me, nonce, true)? {
                Some(done) => Ok(done),
                None => Err(DialError::Io(io::ErrorKind::UnexpectedEof.into())),
            };
        }
    }
}

/// The checked answer once it is complete (a refusal's body too; at `eof`, whatever body
/// arrived), `None` while more is needed.
fn parse_answer(
    buf: &[u8],
    me: &Identity,
    nonce: &Nonce,
    eof: bool,
) -> Result<Option<(Answered, Vec<u8>)>, DialError> {
    let mut slots = [httparse::EMPTY_HEADER; HEADERS_MAX];
    let mut resp = httparse::Response::new(&mut slots);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => {
            let what = "not an HTTP answer";
            return Err(HandshakeError::Malformed { what }.into());
        }
    };
    let status = resp.code.unwrap_or(0);
    let headers: Vec<(&str, &[u8])> = resp.headers.iter().map(|h| (h.name, h.value)).collect();
    if status == 101 {
        let answered = handshake::check_response(me, nonce, status, &headers, b"")?;
        return Ok(Some((answered, buf[head_len..].to_vec())));
    }
    let declared = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let body = &buf[head_len..];
    if body.len() < declared && !eof {
        return Ok(None);
    }
    let body = &body[..declared.min(body.len())];
    Err(handshake::check_response(me, nonce, status, &headers, body)
        .err()
        .unwrap_or(HandshakeError::Malformed {
            what: "refusal accepted",
        })
        .into())
}
