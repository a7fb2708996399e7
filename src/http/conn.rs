//! The connection loop: read into one buffer, answer every complete request buffered (in
//! order, one handler call at a time), write all the answers with one write; enforce the head
//! and body limits and the idle, request and write timeouts; close without losing an answer.
//! Must not import `api`, `replication` or `storage`: handlers come in through [`Handler`].
//!
//! The stream and the buffered bytes stay together in [`Conn`] so that an `Upgrade` (peer links
//! on the same port) takes both back: a handler answers with [`Response::switching`], the
//! connection writes every answer so far plus the `101`, and returns [`Upgraded`].

use std::io;
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};
use monoio::time::{sleep_until, timeout, timeout_at, Instant};

use super::admission::ConnSlot;
use super::chunked::{ChunkStatus, ChunkedDecoder};
use super::parse::{header_slots, parse_request, BodyKind, ParseError, Parsed, RequestHead};
use super::response::{encode_head_and_body, encode_response, DateCache};
use super::{reason, Body, BodySource, Handler, Method, Piece, Request, Response, Upgrade};
use crate::limits::{
    BODY_OVERHEAD_BYTES, CHUNK_LINE_BYTES_MAX, CHUNK_TRAILER_BYTES_MAX, CONN_DRAIN_BYTES_MAX,
    CONN_DRAIN_TIMEOUT_MS, CONN_READ_BUFFER_BYTES, CONN_READ_BUFFER_KEEP_BYTES,
    CONN_WRITE_BUFFER_BYTES, CONN_WRITE_BUFFER_FLUSH_BYTES, CONN_WRITE_BUFFER_KEEP_BYTES,
    HEAD_BYTES_MAX, IDLE_TIMEOUT_MS, PIPELINE_REQUESTS_MAX, REQUEST_TIMEOUT_MS,
    VALUE_BYTES_MAX_DEFAULT, WRITE_TIMEOUT_MS,
};
use crate::runtime::Latch;
use crate::tls::Stream;

/// The size bound one connection enforces. Clones share it: a runtime change of
/// `MOSTDB_MAX_VALUE_BYTES` (`set_body_bytes_max`) reaches every core's connections at their
/// next request.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    /// Largest request body, declared or de-chunked; more gets 413.
    body_bytes_max: Arc<AtomicUsize>,
}

impl ConnLimits {
    pub fn new(body_bytes_max: usize) -> ConnLimits {
        ConnLimits {
            body_bytes_max: Arc::new(AtomicUsize::new(body_bytes_max)),
        }
    }

    pub fn body_bytes_max(&self) -> usize {
        self.body_bytes_max.load(Ordering::Relaxed)
    }

    pub fn set_body_bytes_max(&self, bytes: usize) {
        self.body_bytes_max.store(bytes, Ordering::Relaxed);
    }
}

impl Default for ConnLimits {
    /// `VALUE_BYTES_MAX_DEFAULT + BODY_OVERHEAD_BYTES`.
    fn default() -> Self {
        ConnLimits::new(VALUE_BYTES_MAX_DEFAULT + BODY_OVERHEAD_BYTES)
    }
}

/// The time bounds one connection enforces.
#[derive(Debug, Clone)]
pub struct ConnTimeouts {
    /// Close a connection with nothing buffered after this long. Default `IDLE_TIMEOUT_MS`.
    pub idle_ms: u64,
    /// A request must be complete this long after its first byte, else 408. Default
    /// `REQUEST_TIMEOUT_MS`.
    pub request_ms: u64,
    /// Each write of answers must finish within this long. Default `WRITE_TIMEOUT_MS`.
    pub write_ms: u64,
}

impl Default for ConnTimeouts {
    fn default() -> Self {
        ConnTimeouts {
            idle_ms: IDLE_TIMEOUT_MS,
            request_ms: REQUEST_TIMEOUT_MS,
            write_ms: WRITE_TIMEOUT_MS,
        }
    }
}

/// The original's answer to anything it cannot parse (kept for clients that match on it).
const PARSE_ERROR_BODY: &str = "Error when parsing request";
const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
/// Timeouts are clamped to a day, longer than any sane setting, so a deadline never overflows.
const TIMEOUT_MS_CLAMP: u64 = 86_400_000;

/// A connection switched to another protocol: the `101` is written; `leftover` holds the bytes
/// the client sent after the upgrading request (the new protocol's first bytes, if any).
#[derive(Debug)]
pub struct Upgraded {
    pub stream: Stream,
    pub leftover: Vec<u8>,
}

/// Serves HTTP/1.1 requests on `stream` (plain TCP, or TLS after its handshake) until the client leaves, a limit or timeout ends the
/// connection, or `shutdown` is set (then every complete request is still answered, and a
/// partly received one is waited for). The caller sets `TCP_NODELAY` on the stream (answers
/// already go out in one write per batch; Nagle would only delay them).
///
/// Returns `Some` when a handler switched the connection to another protocol
/// ([`Response::switching`]); `None` when the connection is over.
pub async fn serve_connection<H: Handler>(
    stream: impl Into<Stream>,
    handler: &H,
    limits: &ConnLimits,
    shutdown: &Latch,
    date: &DateCache,
) -> Option<Upgraded> {
    let timeouts = ConnTimeouts::default();
    serve_connection_with_timeouts(stream, handler, limits, &timeouts, shutdown, date).await
}

/// [`serve_connection`] for a connection registered in its core's [`super::IdlePool`]: it
/// marks itself idle while it waits for a request, and closes when the pool evicts it then.
pub async fn serve_pooled_connection<H: Handler>(
    stream: impl Into<Stream>,
    handler: &H,
    limits: &ConnLimits,
    shutdown: &Latch,
    date: &DateCache,
    slot: &ConnSlot,
) -> Option<Upgraded> {
    let timeouts = ConnTimeouts::default();
    let conn = Conn::new(stream.into(), limits, &timeouts).pooled(slot);
    serve(conn, handler, shutdown, date).await
}

/// [`serve_connection`] with other than the default timeouts.
pub async fn serve_connection_with_timeouts<H: Handler>(
    stream: impl Into<Stream>,
    handler: &H,
    limits: &ConnLimits,
    timeouts: &ConnTimeouts,
    shutdown: &Latch,
    date: &DateCache,
) -> Option<Upgraded> {
    serve(
        Conn::new(stream.into(), limits, timeouts),
        handler,
        shutdown,
        date,
    )
    .await
}

async fn serve<H: Handler>(
    mut conn: Conn<'_>,
    handler: &H,
    shutdown: &Latch,
    date: &DateCache,
) -> Option<Upgraded> {
    let end = conn.run(handler, shutdown, date).await;
    match &end {
        End::Failed(e) => tracing::debug!(error = %e, "connection failed"),
        End::Upgraded => {
            tracing::trace!("connection upgraded");
            return Some(Upgraded {
                stream: conn.stream,
                leftover: conn.buf,
            });
        }
        other => tracing::trace!(end = ?other, "connection ends"),
    }
    conn.close(end).await;
    None
}

/// Why a connection ends.
#[derive(Debug)]
enum End {
    /// The client closed its side; everything it sent was answered.
    PeerClosed,
    /// Nothing arrived for the idle timeout.
    Idle,
    /// The server is stopping and nothing was pending.
    Shutdown,
    /// The last answer said `Connection: close` (asked for, HTTP/1.0, an error, a timeout).
    Answered,
    /// A read or write failed or timed out.
    Failed(io::Error),
    /// The `101` is out; the stream and the unread bytes of `buf` go to the new protocol.
    Upgraded,
}

/// What the request at the front of the buffer needs before it is complete.
#[derive(Debug, Clone, Copy)]
enum Need {
    /// Nothing is buffered.
    Nothing,
    /// More of the head.
    Head,
    /// The whole request is this many bytes (head plus declared body).
    Body { total: usize },
    /// More of a chunked body.
    Chunked,
}

/// The outcome of answering what is buffered.
enum Batch {
    More(Need),
    Close,
    Upgrade,
}

/// The outcome for the request at one position of the buffer.
enum Step {
    Answered { end: usize, after: After },
    Wait(Need),
    Refused(ParseError),
}

/// What the connection does after an answer.
enum After {
    KeepOpen,
    Close,
    /// The answer was a `101`: nothing more is read as HTTP.
    Upgrade,
    /// The head is encoded; the body comes from the source (chunked or not), then the
    /// connection stays open or closes.
    Stream {
        source: Box<dyn BodySource>,
        chunked: bool,
        close: bool,
    },
}

enum Read {
    Data,
    Eof,
    Idle,
    TooSlow,
    Shutdown,
    Failed(io::Error),
}

struct Conn<'l> {
    stream: Stream,
    /// What every request on this connection tells its handler about the connection.
    origin: Origin,
    /// Received bytes; at every read, `buf` holds a prefix of one request (or nothing).
    buf: Vec<u8>,
    /// Encoded answers not yet written.
    out: Vec<u8>,
    limits: &'l ConnLimits,
    timeouts: &'l ConnTimeouts,
    /// The decoder of the partly received chunked body at the front of `buf`, if any.
    chunked: Option<ChunkedDecoder>,
    /// Whether `100 Continue` went out for the request at the front of `buf`.
    continue_sent: bool,
    /// When the first byte of the request at the front of `buf` arrived.
    request_started: Option<Instant>,
    /// The connection's place in its core's idle pool, if it has one.
    slot: Option<&'l ConnSlot>,
}

impl<'l> Conn<'l> {
    fn new(stream: Stream, limits: &'l ConnLimits, timeouts: &'l ConnTimeouts) -> Self {
        Conn {
            origin: Origin {
                client_certified: stream.peer_certified(),
            },
            stream,
            buf: Vec::with_capacity(CONN_READ_BUFFER_BYTES),
            out: Vec::with_capacity(CONN_WRITE_BUFFER_BYTES),
            limits,
            timeouts,
            chunked: None,
            continue_sent: false,
            request_started: None,
            slot: None,
        }
    }

    fn pooled(mut self, slot: &'l ConnSlot) -> Self {
        self.slot = Some(slot);
        self
    }

    async fn run<H: Handler>(&mut self, handler: &H, shutdown: &Latch, date: &DateCache) -> End {
        loop {
            let need = match self.answer_buffered(handler, shutdown, date).await {
                Ok(Batch::More(need)) => need,
                Ok(Batch::Close) => return self.flush_then(End::Answered).await,
                Ok(Batch::Upgrade) => return self.flush_then(End::Upgraded).await,
                Err(e) => return End::Failed(e),
            };
            if let Err(e) = self.flush().await {
                return End::Failed(e);
            }
            if shutdown.is_set() && self.buf.is_empty() {
                return End::Shutdown;
            }
            if !self.make_room(need) {
                // Unreachable within the limits (they bound what a request may buffer), but a
                // full buffer must never turn into a zero-length read that looks like EOF.
                let err = ParseError::BodyTooLarge {
                    declared: self.buf.len(),
                    limit: self.limits.body_bytes_max(),
                };
                self.encode_error(err, &date.get());
                return self.flush_then(End::Answered).await;
            }
            match self.read(shutdown).await {
                Read::Data => {}
                Read::Eof => return End::PeerClosed,
                Read::Idle => return End::Idle,
                Read::Shutdown => return End::Shutdown,
                Read::Failed(e) => return End::Failed(e),
                Read::TooSlow => {
                    let resp = Response::text(408, reason(408));
                    encode_response(&mut self.out, &resp, &date.get(), true, false);
                    return self.flush_then(End::Answered).await;
                }
            }
        }
    }

    /// Answers every complete request in the buffer, in order, and removes them from it.
    async fn answer_buffered<H: Handler>(
        &mut self,
        handler: &H,
        shutdown: &Latch,
        date: &DateCache,
    ) -> io::Result<Batch> {
        let date = date.get();
        let mut pos = 0;
        let mut unflushed = 0;
        let batch = loop {
            if pos == self.buf.len() {
                break Batch::More(Need::Nothing);
            }
            match self.answer_one(pos, handler, shutdown, &date).await {
                Step::Answered { end, after } => {
                    pos = end;
                    self.continue_sent = false;
                    match after {
                        After::KeepOpen => {}
                        After::Close => break Batch::Close,
                        After::Upgrade => break Batch::Upgrade,
                        After::Stream {
                            source,
                            chunked,
                            close,
                        } => {
                            let complete = self.send_stream(source, chunked, shutdown).await?;
                            if close || !complete {
                                break Batch::Close;
                            }
                        }
                    }
                    unflushed += 1;
                    if unflushed >= PIPELINE_REQUESTS_MAX
                        || self.out.len() >= CONN_WRITE_BUFFER_FLUSH_BYTES
                    {
                        self.flush().await?;
                        unflushed = 0;
                    }
                }
                Step::Wait(need) => break Batch::More(need),
                Step::Refused(err) => {
                    self.encode_error(err, &date);
                    break Batch::Close;
                }
            }
        };
        self.consume(pos);
        Ok(batch)
    }

    /// Frames the request at `buf[pos..]` and, when it is complete, answers it.
    async fn answer_one<H: Handler>(
        &mut self,
        pos: usize,
        handler: &H,
        shutdown: &Latch,
        date: &[u8],
    ) -> Step {
        let mut slots = header_slots();
        let head = match parse_request(&self.buf[pos..], &mut slots, self.limits.body_bytes_max()) {
            Ok(Parsed::Complete(head)) => head,
            Ok(Parsed::Incomplete) => return Step::Wait(Need::Head),
            Err(e) => return Step::Refused(e),
        };
        let head_len = head.head_len;
        let body_len = match head.body {
            BodyKind::None => 0,
            BodyKind::Length(n) if self.buf.len() - pos >= head_len + n => n,
            BodyKind::Length(n) => {
                let expect = head.expect_continue;
                self.want_body(expect);
                return Step::Wait(Need::Body {
                    total: head_len + n,
                });
            }
            BodyKind::Chunked => {
                let expect = head.expect_continue;
                return self
                    .answer_chunked(pos, head_len, expect, handler, shutdown, date)
                    .await;
            }
        };
        let end = pos + head_len + body_len;
        let last = end == self.buf.len();
        let body = &self.buf[pos + head_len..end];
        let at = At {
            date,
            shutdown,
            last,
            origin: self.origin,
        };
        let after = respond(handler, &head, body, &mut self.out, &at).await;
        Step::Answered { end, after }
    }

    /// Decodes more of the chunked body of the request at `pos` and answers it once complete.
    async fn answer_chunked<H: Handler>(
        &mut self,
        pos: usize,
        head_len: usize,
        expect_continue: bool,
        handler: &H,
        shutdown: &Latch,
        date: &[u8],
    ) -> Step {
        let max = self.limits.body_bytes_max();
        let decoder = self.chunked.get_or_insert_with(|| ChunkedDecoder::new(max));
        let (body_len, consumed) = match decoder.decode(&mut self.buf, pos + head_len) {
            Ok(ChunkStatus::Complete { body_len, consumed }) => (body_len, consumed),
            Ok(ChunkStatus::Incomplete) => {
                self.want_body(expect_continue);
                return Step::Wait(Need::Chunked);
            }
            Err(e) => return Step::Refused(e),
        };
        self.chunked = None;
        // The head is parsed again: decoding needed the buffer mutably, and decoding in place
        // never touches the head's bytes, so this cannot fail differently from the first time.
        let mut slots = header_slots();
        let head = match parse_request(&self.buf[pos..pos + head_len], &mut slots, max) {
            Ok(Parsed::Complete(head)) => head,
            Ok(Parsed::Incomplete) | Err(_) => {
                return Step::Refused(ParseError::Malformed {
                    what: "request head changed while its body was decoded",
                })
            }
        };
        let end = pos + head_len + consumed;
        let last = end == self.buf.len();
        let body = &self.buf[pos + head_len..pos + head_len + body_len];
        let at = At {
            date,
            shutdown,
            last,
            origin: self.origin,
        };
        let after = respond(handler, &head, body, &mut self.out, &at).await;
        Step::Answered { end, after }
    }

    /// The head is complete and its body allowed but not all here: a client that sent
    /// `Expect: 100-continue` waits for `100 Continue` (curl does, for bodies over 1 KiB).
    fn want_body(&mut self, expect_continue: bool) {
        if expect_continue && !self.continue_sent {
            self.out.extend_from_slice(CONTINUE);
            self.continue_sent = true;
        }
    }

    fn encode_error(&mut self, err: ParseError, date: &[u8]) {
        tracing::debug!(error = %err, "refusing request");
        let status = err.status();
        let body = if status == 400 {
            PARSE_ERROR_BODY
        } else {
            reason(status)
        };
        encode_response(
            &mut self.out,
            &Response::text(status, body),
            date,
            true,
            false,
        );
    }

    /// Removes the answered requests (`buf[..pos]`); what remains starts a new request.
    fn consume(&mut self, pos: usize) {
        if pos == 0 {
            return;
        }
        if pos == self.buf.len() {
            self.buf.clear();
            self.request_started = None;
        } else {
            self.buf.copy_within(pos.., 0);
            self.buf.truncate(self.buf.len() - pos);
            // Its first bytes came with the last read; now is a close, slightly late bound.
            self.request_started = Some(Instant::now());
        }
    }

    /// Makes room for the next read, growing only as far as the request at the front needs
    /// (doubling, so a client must send bytes to make the server allocate), and gives back a
    /// large buffer once the request that needed it is answered. False if no room can be made.
    fn make_room(&mut self, need: Need) -> bool {
        let base = CONN_READ_BUFFER_BYTES.max(HEAD_BYTES_MAX);
        let limit = match need {
            Need::Nothing | Need::Head => {
                if self.buf.capacity() > CONN_READ_BUFFER_KEEP_BYTES {
                    self.buf.shrink_to(base);
                }
                base
            }
            Need::Body { total } => total,
            Need::Chunked => {
                HEAD_BYTES_MAX
                    + self.limits.body_bytes_max()
                    + CHUNK_LINE_BYTES_MAX
                    + CHUNK_TRAILER_BYTES_MAX
            }
        };
        let (len, cap) = (self.buf.len(), self.buf.capacity());
        if len == cap || cap < base.min(limit) {
            let target = cap.saturating_mul(2).max(base).min(limit);
            if target > len {
                self.buf.reserve_exact(target - len);
            }
        }
        self.buf.len() < self.buf.capacity()
    }

    /// Reads more into the spare capacity of `buf`, bounded by the idle timeout (nothing
    /// buffered; the shutdown latch also ends the wait) or the request timeout (a request
    /// partly received; it is waited for even during shutdown).
    async fn read(&mut self, shutdown: &Latch) -> Read {
        enum Got {
            Read(io::Result<usize>, Vec<u8>),
            Deadline,
            Shutdown,
            Evicted,
        }
        let idle = self.buf.is_empty();
        let now = Instant::now();
        let deadline = if idle {
            after(now, self.timeouts.idle_ms)
        } else {
            after(
                self.request_started.unwrap_or(now),
                self.timeouts.request_ms,
            )
        };
        let buf = mem::take(&mut self.buf);
        let (len, cap) = (buf.len(), buf.capacity());
        // When a timer wins, the read is dropped (monoio cancels it) and its buffer with it:
        // the connection closes then, so the buffer is not needed.
        let slot = self.slot.filter(|_| idle);
        if let Some(slot) = slot {
            slot.set_idle(true);
        }
        let evicted = async {
            match slot {
                Some(slot) => slot.evicted().await,
                None => std::future::pending().await,
            }
        };
        let got = monoio::select! {
            biased;
            (res, slice) = self.stream.read(buf.slice_mut(len..cap)) => {
                Got::Read(res, slice.into_inner())
            }
            _ = sleep_until(deadline) => Got::Deadline,
            _ = shutdown.wait(), if idle => Got::Shutdown,
            _ = evicted => Got::Evicted,
        };
        if let Some(slot) = slot {
            slot.set_idle(false);
        }
        match got {
            Got::Read(res, buf) => {
                self.buf = buf;
                match res {
                    Ok(0) => Read::Eof,
                    Ok(_) => {
                        if idle {
                            self.request_started = Some(Instant::now());
                        }
                        Read::Data
                    }
                    Err(e) => Read::Failed(e),
                }
            }
            // An evicted connection ends as if its idle timeout had passed.
            Got::Deadline | Got::Evicted if idle => Read::Idle,
            Got::Deadline | Got::Evicted => Read::TooSlow,
            Got::Shutdown => Read::Shutdown,
        }
    }

    /// Writes the encoded answers, bounded by the write timeout.
    async fn flush(&mut self) -> io::Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = mem::take(&mut self.out);
        let limit = Duration::from_millis(self.timeouts.write_ms.min(TIMEOUT_MS_CLAMP));
        match timeout(limit, self.stream.write_all(out)).await {
            Ok((Ok(_), mut out)) => {
                out.clear();
                if out.capacity() > CONN_WRITE_BUFFER_KEEP_BYTES {
                    out = Vec::with_capacity(CONN_WRITE_BUFFER_BYTES);
                }
                self.out = out;
                Ok(())
            }
            Ok((Err(e), _)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
        }
    }

    /// Sends a streamed body, each piece as it comes (flushed before the next is asked for);
    /// whether it ended complete. A source that fails, or a shutdown, ends it short: a chunked
    /// body without its last chunk, which a client sees as cut.
    async fn send_stream(
        &mut self,
        mut source: Box<dyn BodySource>,
        chunked: bool,
        shutdown: &Latch,
    ) -> io::Result<bool> {
        self.flush().await?;
        let mut piece = Vec::new();
        loop {
            piece.clear();
            let step = source.next(&mut piece).await;
            if chunked && !piece.is_empty() {
                self.out
                    .extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                self.out.extend_from_slice(&piece);
                self.out.extend_from_slice(b"\r\n");
            } else if !chunked {
                self.out.extend_from_slice(&piece);
            }
            let complete = match step {
                Piece::More if !shutdown.is_set() => {
                    self.flush().await?;
                    continue;
                }
                Piece::More | Piece::Failed => false,
                Piece::Done => true,
            };
            if complete && chunked {
                self.out.extend_from_slice(b"0\r\n\r\n");
            }
            self.flush().await?;
            return Ok(complete);
        }
    }

    async fn flush_then(&mut self, end: End) -> End {
        match self.flush().await {
            Ok(()) => end,
            Err(e) => End::Failed(e),
        }
    }

    /// After `Connection: close` the answer is out; send FIN, then read (and drop) what the
    /// client still sends, for a bounded time and amount: closing a socket with unread input
    /// sends a reset, which can destroy the answer before the client reads it.
    async fn close(mut self, end: End) {
        if !matches!(end, End::Answered) {
            return;
        }
        if self.stream.shutdown().await.is_err() {
            return;
        }
        let deadline = after(Instant::now(), CONN_DRAIN_TIMEOUT_MS);
        let mut buf = mem::take(&mut self.buf);
        buf.clear();
        buf.shrink_to(CONN_READ_BUFFER_BYTES);
        buf.reserve(CONN_READ_BUFFER_BYTES);
        let mut drained = 0;
        while drained < CONN_DRAIN_BYTES_MAX {
            match timeout_at(deadline, self.stream.read(buf)).await {
                Ok((Ok(n), b)) if n > 0 => {
                    drained += n;
                    buf = b;
                    buf.clear();
                }
                _ => return,
            }
        }
    }
}

/// What a request learns from its connection (beyond its own bytes).
#[derive(Debug, Clone, Copy)]
struct Origin {
    /// See [`Request::client_certified`].
    client_certified: bool,
}

/// Where one answer is made: the date, the shutdown latch, whether the request is the last
/// one buffered, and the connection's [`Origin`].
struct At<'a> {
    date: &'a [u8],
    shutdown: &'a Latch,
    last: bool,
    origin: Origin,
}

/// Calls the handler for one complete request and appends its encoded answer to `out`.
/// Returns whether the connection closes after it: the request says so, or the server is
/// stopping and nothing else is buffered (`at.last`). Decided after the handler ran, since
/// shutdown may begin while it waits. An upgrade answer always switches: the new protocol
/// decides about shutdown itself.
async fn respond<H: Handler>(
    handler: &H,
    head: &RequestHead<'_, '_>,
    body: &[u8],
    out: &mut Vec<u8>,
    at: &At<'_>,
) -> After {
    let (date, shutdown, last) = (at.date, at.shutdown, at.last);
    let req = Request {
        method: head.method,
        path: head.path,
        query: head.query,
        headers: head.headers,
        body,
        client_certified: at.origin.client_certified,
    };
    let resp = handler.call(req).await;
    if let Some(upgrade) = &resp.upgrade {
        tracing::trace!(protocol = upgrade.protocol, "switching protocols");
        encode_switching(out, upgrade, date);
        return After::Upgrade;
    }
    let close = !head.keep_alive || (last && shutdown.is_set());
    tracing::trace!(status = resp.status, close, "answered");
    let head_only = head.method == Method::Head;
    if let Body::Stream(streamed) = &resp.body {
        // HTTP/1.0 has no chunked encoding: the body ends with the connection.
        let chunked = head.minor_version == 1;
        let close = close || !chunked;
        encode_head_and_body(out, &resp, date, close, head_only, chunked);
        if let (false, Some(source)) = (head_only, streamed.take()) {
            return After::Stream {
                source,
                chunked,
                close,
            };
        }
        return if close { After::Close } else { After::KeepOpen };
    }
    encode_response(out, &resp, date, close, head_only);
    if close {
        After::Close
    } else {
        After::KeepOpen
    }
}

/// Appends `HTTP/1.1 101 Switching Protocols` with `Server`, `Date`, `Connection: Upgrade`,
/// `Upgrade: {protocol}` and the upgrade's own header lines.
fn encode_switching(out: &mut Vec<u8>, upgrade: &Upgrade, date: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nServer: mostdb\r\nDate: ");
    out.extend_from_slice(date);
    out.extend_from_slice(b"\r\nConnection: Upgrade\r\nUpgrade: ");
    out.extend_from_slice(upgrade.protocol.as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&upgrade.headers);
    out.extend_from_slice(b"\r\n");
}

fn after(start: Instant, ms: u64) -> Instant {
    start + Duration::from_millis(ms.min(TIMEOUT_MS_CLAMP))
}

#[cfg(test)]
#[path = "conn_tests.rs"]
mod tests;
