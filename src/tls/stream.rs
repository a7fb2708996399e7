//! A TLS stream over monoio's `TcpStream`: rustls does the protocol and the cryptography,
//! this file only moves bytes between the socket and the rustls connection.
//!
//! The stream is split from the start: a reading half and a writing half, each owning its
//! half of the socket and its own buffer, share the rustls connection in an `Rc<RefCell<_>>`.
//! No borrow of it is held across an `.await`, so the halves can run concurrently (the peer
//! link's reader and writer loops) without aliasing. Dropping a read or write in flight (a
//! timeout) loses at most its buffer, never panics: the connection is broken then, and the
//! caller closes it.
//!
//! `monoio-rustls` 0.4 was read and not used: a read future dropped on a timeout leaves its
//! buffer taken and the next read on that stream panics ("buffer mut expected") — the HTTP
//! connection does exactly that after a 408 — and its split shares one `&mut` stream between
//! both halves through an `UnsafeCell`, whose read path may also write.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::mem;
use std::net::SocketAddr;
use std::rc::Rc;

use monoio::buf::{IoBuf, IoBufMut, IoVecBuf, IoVecBufMut};
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt, Splitable};
use monoio::net::tcp::{TcpOwnedReadHalf, TcpOwnedWriteHalf};
use monoio::net::TcpStream;
use monoio::BufResult;
use rustls::Connection;

use crate::limits::{TLS_RECORD_BUFFER_BYTES, TLS_WRITE_BATCH_BYTES};

/// What a plain HTTP client gets on a TLS port: a readable refusal rather than a bare reset.
const PLAIN_HTTP_ANSWER: &[u8] = b"HTTP/1.1 400 Bad Request\r\nServer: mostdb\r\n\
Content-Type: text/plain; charset=utf-8\r\nContent-Length: 46\r\nConnection: close\r\n\r\n\
This port speaks TLS: use https:// to reach it";

type Shared = Rc<RefCell<Connection>>;

/// A TLS connection, client or server side, after its handshake.
pub struct TlsStream {
    reader: TlsReadHalf,
    writer: TlsWriteHalf,
}

/// The reading half of a [`TlsStream`].
pub struct TlsReadHalf {
    conn: Shared,
    io: TcpOwnedReadHalf,
    /// Ciphertext received and not yet handed to rustls: `cipher[fed..]`.
    cipher: Vec<u8>,
    fed: usize,
    /// The socket reached its end.
    eof: bool,
}

/// The writing half of a [`TlsStream`].
pub struct TlsWriteHalf {
    conn: Shared,
    io: TcpOwnedWriteHalf,
    /// Ciphertext being written; kept between writes to save allocations.
    out: Vec<u8>,
}

fn tls_error(err: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, err)
}

impl TlsStream {
    fn new(tcp: TcpStream, conn: Connection) -> TlsStream {
        let conn = Rc::new(RefCell::new(conn));
        let (r, w) = tcp.into_split();
        TlsStream {
            reader: TlsReadHalf {
                conn: conn.clone(),
                io: r,
                cipher: Vec::with_capacity(TLS_RECORD_BUFFER_BYTES),
                fed: 0,
                eof: false,
            },
            writer: TlsWriteHalf {
                conn,
                io: w,
                out: Vec::with_capacity(TLS_RECORD_BUFFER_BYTES),
            },
        }
    }

    /// The server side of a handshake on an accepted connection. A client that speaks plain
    /// HTTP gets a `400` in plain text (it could not read a TLS alert) and an error here.
    pub(super) async fn accept(tcp: TcpStream, conn: Connection) -> io::Result<TlsStream> {
        let mut stream = TlsStream::new(tcp, conn);
        stream.reader.receive().await?;
        if looks_like_http(&stream.reader.cipher) {
            let (res, _) = stream.writer.io.write_all(PLAIN_HTTP_ANSWER).await;
            res?;
            let _ = stream.writer.io.shutdown().await;
            let what = "a plain HTTP request on the TLS port";
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
        stream.handshake().await?;
        Ok(stream)
    }

    /// The client side of a handshake on a connected socket.
    pub(super) async fn connect(tcp: TcpStream, conn: Connection) -> io::Result<TlsStream> {
        let mut stream = TlsStream::new(tcp, conn);
        stream.handshake().await?;
        Ok(stream)
    }

    /// Runs the handshake to its end. On a failure, the alert rustls prepared is sent (so
    /// the other side learns why) before the error is returned.
    async fn handshake(&mut self) -> io::Result<()> {
        loop {
            self.writer.send_pending().await?;
            if !self.reader.conn.borrow().is_handshaking() {
                return Ok(());
            }
            if let Err(err) = self.reader.pump().await {
                let _ = self.writer.send_pending().await;
                return Err(err);
            }
            if self.reader.eof && self.reader.conn.borrow().is_handshaking() {
                let what = "the connection ended during the TLS handshake";
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, what));
            }
        }
    }

    /// Whether the other side presented a certificate during the handshake. On the server
    /// side it was verified against the CA (an unverifiable one fails the handshake), so this
    /// means "a client certificate verified against `MOSTDB_TLS_CA`".
    pub fn peer_certified(&self) -> bool {
        self.reader.conn.borrow().peer_certificates().is_some()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.reader.io.peer_addr()
    }

    pub fn into_split(self) -> (TlsReadHalf, TlsWriteHalf) {
        (self.reader, self.writer)
    }
}

/// A TLS connection starts with a handshake record (0x16); an HTTP request with a method
/// name in capitals.
fn looks_like_http(first: &[u8]) -> bool {
    first.first().is_some_and(u8::is_ascii_uppercase)
}

impl TlsReadHalf {
    /// Hands rustls more ciphertext: one record's worth of what is buffered, or else what one
    /// read of the socket gives (at its end, rustls is told). Processes it.
    async fn pump(&mut self) -> io::Result<()> {
        if self.fed == self.cipher.len() && !self.eof {
            self.receive().await?;
        }
        let mut conn = self.conn.borrow_mut();
        let mut rest = &self.cipher[self.fed..];
        let offered = rest.len();
        // With nothing left and the socket at its end, this tells rustls about the end.
        let n = conn.read_tls(&mut rest)?;
        if n == 0 && offered > 0 {
            // rustls took nothing of what it was offered: never spin on it.
            return Err(io::Error::other("TLS: received data not accepted"));
        }
        self.fed += n;
        conn.process_new_packets().map_err(tls_error)?;
        Ok(())
    }

    /// One read of the socket into the (empty) ciphertext buffer.
    async fn receive(&mut self) -> io::Result<()> {
        let mut cipher = mem::take(&mut self.cipher);
        cipher.clear();
        cipher.reserve(TLS_RECORD_BUFFER_BYTES);
        self.fed = 0;
        let (res, cipher) = self.io.read(cipher).await;
        self.cipher = cipher;
        if res? == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Copies decrypted bytes into `buf` if any are ready: `Some(n)`, `Some(0)` at the end of
    /// the stream (or when `buf` has no room), `None` when more ciphertext is needed.
    fn take_plaintext<T: IoBufMut>(&mut self, buf: &mut T) -> io::Result<Option<usize>> {
        let room = buf.bytes_total();
        let mut conn = self.conn.borrow_mut();
        let state = conn.process_new_packets().map_err(tls_error)?;
        let ready = state.plaintext_bytes_to_read().min(room);
        if ready == 0 {
            // The end: close_notify, or the socket's end without one (the HTTP and peer
            // framing above notice a truncated message themselves).
            let ended = state.peer_has_closed() || (self.eof && self.fed == self.cipher.len());
            return Ok((ended || room == 0).then_some(0));
        }
        // SAFETY: `write_ptr` is valid for `bytes_total` bytes (the `IoBufMut` contract) and
        // `ready <= bytes_total`; the bytes are zeroed before a `&mut [u8]` is made of them.
        let slice = unsafe {
            std::ptr::write_bytes(buf.write_ptr(), 0, ready);
            std::slice::from_raw_parts_mut(buf.write_ptr(), ready)
        };
        let n = conn.reader().read(slice)?;
        // SAFETY: rustls wrote `n <= ready` bytes at the start of the buffer.
        unsafe { buf.set_init(n) };
        Ok(Some(n))
    }
}

impl AsyncReadRent for TlsReadHalf {
    async fn read<T: IoBufMut>(&mut self, mut buf: T) -> BufResult<usize, T> {
        loop {
            match self.take_plaintext(&mut buf) {
                Ok(Some(n)) => return (Ok(n), buf),
                Ok(None) => {}
                Err(err) => return (Err(err), buf),
            }
            if let Err(err) = self.pump().await {
                return (Err(err), buf);
            }
        }
    }

    async fn readv<T: IoVecBufMut>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(vectored_unsupported()), buf)
    }
}

fn vectored_unsupported() -> io::Error {
    // Nothing in mostdb uses vectored I/O on a connection; plain TCP supports it.
    io::Error::new(io::ErrorKind::Unsupported, "no vectored I/O over TLS")
}

impl TlsWriteHalf {
    /// Writes every record rustls has ready (handshake messages, alerts, encrypted data).
    async fn send_pending(&mut self) -> io::Result<()> {
        loop {
            let mut out = mem::take(&mut self.out);
            out.clear();
            {
                let mut conn = self.conn.borrow_mut();
                while conn.wants_write() && out.len() < TLS_WRITE_BATCH_BYTES {
                    conn.write_tls(&mut out)?;
                }
            }
            if out.is_empty() {
                self.out = out;
                return Ok(());
            }
            let (res, out) = self.io.write_all(out).await;
            self.out = out;
            res?;
        }
    }
}

impl AsyncWriteRent for TlsWriteHalf {
    async fn write<T: IoBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        if let Err(err) = self.send_pending().await {
            return (Err(err), buf);
        }
        // SAFETY: `read_ptr` is valid for `bytes_init` initialised bytes (the `IoBuf`
        // contract), and `buf` is not touched while the slice lives.
        let data = unsafe { std::slice::from_raw_parts(buf.read_ptr(), buf.bytes_init()) };
        // With nothing pending, rustls takes up to its buffer limit (64 KiB), so at least one
        // byte of a non-empty `data`.
        let n = match self.conn.borrow_mut().writer().write(data) {
            Ok(n) => n,
            Err(err) => return (Err(err), buf),
        };
        match self.send_pending().await {
            Ok(()) => (Ok(n), buf),
            Err(err) => (Err(err), buf),
        }
    }

    async fn writev<T: IoVecBuf>(&mut self, buf: T) -> BufResult<usize, T> {
        (Err(vectored_unsupported()), buf)
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.send_pending().await?;
        self.io.flush().await
    }

    /// Sends close_notify, then ends the socket's sending side.
    async fn shutdown(&mut self) -> io::Result<()> {
        self.conn.borrow_mut().send_close_notify();
        self.send_pending().await?;
        self.io.shutdown().await
    }
}

impl AsyncReadRent for TlsStream {
    fn read<T: IoBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.reader.read(buf)
    }

    fn readv<T: IoVecBufMut>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.reader.readv(buf)
    }
}

impl AsyncWriteRent for TlsStream {
    fn write<T: IoBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.writer.write(buf)
    }

    fn writev<T: IoVecBuf>(
        &mut self,
        buf: T,
    ) -> impl std::future::Future<Output = BufResult<usize, T>> {
        self.writer.writev(buf)
    }

    fn flush(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.writer.flush()
    }

    fn shutdown(&mut self) -> impl std::future::Future<Output = io::Result<()>> {
        self.writer.shutdown()
    }
}

#[cfg(test)]
mod tests {
    use super::{looks_like_http, PLAIN_HTTP_ANSWER};

    #[test]
    fn the_plain_http_answer_declares_its_body_length() {
        let text = std::str::from_utf8(PLAIN_HTTP_ANSWER).expect("ASCII");
        let (head, body) = text.split_once("\r\n\r\n").expect("a head");
        let declared = format!("Content-Length: {}\r\n", body.len());
        assert!(head.contains(declared.trim_end()), "{head}");
    }

    #[test]
    fn plain_http_is_told_from_a_client_hello() {
        assert!(looks_like_http(b"GET / HTTP/1.1\r\n"));
        assert!(looks_like_http(b"POST /mostdb/set HTTP/1.1\r\n"));
        assert!(!looks_like_http(&[0x16, 0x03, 0x01]));
        assert!(!looks_like_http(b""));
    }
}
