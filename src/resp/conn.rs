//! One RESP connection: read into one buffer, answer every complete command buffered, in
//! order, then write all the replies at once (pipelining: `redis-benchmark -P 16` sends 16
//! commands per write and gets 16 replies in one); a malformed frame gets
//! `-ERR Protocol error: …` and the connection closes, as with Redis. The read buffer grows
//! only as far as the command at its front needs (bounded by the largest value); an idle
//! connection closes after [`RESP_IDLE_TIMEOUT_MS`], a command that takes longer than
//! [`REQUEST_TIMEOUT_MS`] to arrive too, and a write that cannot go out in
//! [`WRITE_TIMEOUT_MS`]. On shutdown an idle connection closes at once; a busy one after its
//! replies.

use std::io;
use std::mem;
use std::ops::Range;
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRentExt};
use monoio::time::{sleep_until, timeout, Instant};

use super::parse::{frame, Framed};
use super::reply::{Protocol, Reply};
use super::{Session, Step};
use crate::limits::{
    CONN_READ_BUFFER_BYTES, CONN_READ_BUFFER_KEEP_BYTES, CONN_WRITE_BUFFER_FLUSH_BYTES,
    CONN_WRITE_BUFFER_KEEP_BYTES, PIPELINE_REQUESTS_MAX, REQUEST_TIMEOUT_MS, RESP_IDLE_TIMEOUT_MS,
    RESP_OVERHEAD_BYTES, WRITE_TIMEOUT_MS,
};
use crate::runtime::Latch;
use crate::tls::Stream;

/// What runs the commands of a connection (the API's Redis commands).
pub trait Commands {
    /// The largest bulk string a command may carry (a value, plus room for a key).
    fn bulk_bytes_max(&self) -> usize;

    /// Runs one command (`args[0]` is its name) and appends its reply.
    fn run<'a>(
        &'a self,
        session: &'a mut Session,
        args: &'a [&'a [u8]],
        reply: &'a mut Reply<'_>,
    ) -> impl std::future::Future<Output = Step> + 'a;
}

/// Serves one connection until it ends.
pub async fn serve<C: Commands>(mut stream: Stream, commands: &C, id: u64, shutdown: &Latch) {
    let mut session = Session::new(id);
    let mut buf: Vec<u8> = Vec::with_capacity(CONN_READ_BUFFER_BYTES);
    let mut out: Vec<u8> = Vec::with_capacity(CONN_READ_BUFFER_BYTES);
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut started: Option<Instant> = None;
    loop {
        let (used, step) =
            answer_buffered(&buf, commands, &mut session, &mut out, &mut ranges).await;
        if used > 0 {
            buf.drain(..used);
            started = None;
        }
        if flush(&mut stream, &mut out).await.is_err() || step == Step::Close {
            return;
        }
        if used > 0 && !buf.is_empty() {
            // More may be complete (a batch stops at the pipeline bound).
            continue;
        }
        if buf.capacity() > CONN_READ_BUFFER_KEEP_BYTES && buf.len() < CONN_READ_BUFFER_BYTES {
            buf.shrink_to(CONN_READ_BUFFER_BYTES);
        }
        if shutdown.is_set() && buf.is_empty() {
            return;
        }
        let limit = commands.bulk_bytes_max() + RESP_OVERHEAD_BYTES;
        if !buf.is_empty() {
            started.get_or_insert_with(Instant::now);
        }
        match read(&mut stream, &mut buf, limit, started, shutdown).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
    }
}

/// Answers every complete command at the front of `buf`; the bytes they took, and whether the
/// connection goes on.
async fn answer_buffered<C: Commands>(
    buf: &[u8],
    commands: &C,
    session: &mut Session,
    out: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> (usize, Step) {
    let mut pos = 0;
    let mut answered = 0;
    while pos < buf.len()
        && answered < PIPELINE_REQUESTS_MAX
        && out.len() < CONN_WRITE_BUFFER_FLUSH_BYTES
    {
        let rest = &buf[pos..];
        let framed = match frame(rest, commands.bulk_bytes_max(), ranges) {
            Ok(Some(framed)) => framed,
            Ok(None) => break,
            Err(err) => {
                let mut reply = Reply {
                    out,
                    protocol: session.protocol,
                };
                reply.error(&format!("ERR Protocol error: {}", err.0));
                return (buf.len(), Step::Close);
            }
        };
        let (owned, used) = match framed {
            Framed::Ranges { used } => (None, used),
            Framed::Owned { args, used } => (Some(args), used),
        };
        let args: Vec<&[u8]> = match &owned {
            Some(args) => args.iter().map(Vec::as_slice).collect(),
            None => ranges.iter().map(|r| &rest[r.clone()]).collect(),
        };
        pos += used;
        if args.is_empty() {
            continue;
        }
        let protocol = session.protocol;
        let mut reply = Reply { out, protocol };
        let step = commands.run(session, &args, &mut reply).await;
        answered += 1;
        if step == Step::Close {
            return (pos, Step::Close);
        }
    }
    (pos, Step::Continue)
}

/// Reads more into `buf`: `Ok(false)` when the connection should end (closed by the client,
/// idle too long, a command too slow to arrive, shutdown while idle).
async fn read(
    stream: &mut Stream,
    buf: &mut Vec<u8>,
    limit: usize,
    started: Option<Instant>,
    shutdown: &Latch,
) -> io::Result<bool> {
    let idle = buf.is_empty();
    let (len, cap) = (buf.len(), buf.capacity());
    if len == cap {
        if len >= limit {
            return Ok(false);
        }
        buf.reserve_exact(cap.max(CONN_READ_BUFFER_BYTES).min(limit - len));
    }
    let deadline = match started {
        Some(at) if !idle => at + Duration::from_millis(REQUEST_TIMEOUT_MS),
        _ => Instant::now() + Duration::from_millis(RESP_IDLE_TIMEOUT_MS),
    };
    let owned = mem::take(buf);
    let cap = owned.capacity();
    let got = monoio::select! {
        biased;
        (res, slice) = stream.read(owned.slice_mut(len..cap)) => Some((res, slice.into_inner())),
        _ = sleep_until(deadline) => None,
        _ = shutdown.wait(), if idle => None,
    };
    match got {
        Some((res, back)) => {
            *buf = back;
            Ok(res? > 0)
        }
        None => Ok(false),
    }
}

/// Writes the replies, bounded by the write timeout.
async fn flush(stream: &mut Stream, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let bytes = mem::take(out);
    let limit = Duration::from_millis(WRITE_TIMEOUT_MS);
    match timeout(limit, stream.write_all(bytes)).await {
        Ok((Ok(_), mut back)) => {
            back.clear();
            if back.capacity() > CONN_WRITE_BUFFER_KEEP_BYTES {
                back = Vec::with_capacity(CONN_READ_BUFFER_BYTES);
            }
            *out = back;
            Ok(())
        }
        Ok((Err(e), _)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
    }
}

impl Session {
    /// A new connection's state: RESP2, not authenticated, no name.
    pub fn new(id: u64) -> Session {
        Session {
            id,
            protocol: Protocol::Resp2,
            authenticated: false,
            name: None,
        }
    }
}
