//! The I/O both ends of a peer link share: the outbox that frames are encoded into and the
//! writer task that sends it (one write per batch: everything encoded since the last write),
//! and the reader that turns received bytes into frames. Core-local (`Rc`, `Cell`). Must not
//! import `http` or `api`.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::mem;
use std::task::{Poll, Waker};
use std::time::Duration;

use monoio::buf::IoBufMut;
use monoio::io::{AsyncReadRent, AsyncWriteRent, AsyncWriteRentExt};

use super::frame::{self, Frame, FrameError};
use crate::limits::{PEER_BUFFER_BYTES, PEER_BUFFER_KEEP_BYTES, PEER_WRITE_TIMEOUT_MS};

/// Frames encoded and not yet handed to a write. Batches are numbered: the one filling now
/// is [`Outbox::batch`]; the writer takes it whole, and from then on its frames may have
/// reached the peer.
pub(super) struct Outbox {
    buf: RefCell<Vec<u8>>,
    batch: Cell<u64>,
    writer: Cell<Option<Waker>>,
    closed: Cell<bool>,
}

impl Outbox {
    pub(super) fn new() -> Outbox {
        Outbox {
            buf: RefCell::new(Vec::with_capacity(PEER_BUFFER_BYTES)),
            batch: Cell::new(0),
            writer: Cell::new(None),
            closed: Cell::new(false),
        }
    }

    /// Encodes a frame into the filling batch and wakes the writer; returns the batch's
    /// number. The writer runs after the tasks already woken, so frames encoded in the same
    /// event-loop turn go out in one write.
    pub(super) fn push(&self, encode: impl FnOnce(&mut Vec<u8>)) -> u64 {
        encode(&mut self.buf.borrow_mut());
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
        self.batch.get()
    }

    /// The number of the batch filling now: frames of a lower number were handed to a write.
    pub(super) fn batch(&self) -> u64 {
        self.batch.get()
    }

    pub(super) fn queued_bytes(&self) -> usize {
        self.buf.borrow().len()
    }

    /// Drops what is queued (the connection is gone) and reopens for the next connection.
    pub(super) fn reset(&self) {
        let mut buf = self.buf.borrow_mut();
        buf.clear();
        if buf.capacity() > PEER_BUFFER_KEEP_BYTES {
            *buf = Vec::with_capacity(PEER_BUFFER_BYTES);
        }
        // Frames of the dropped batch were never written: the next batch gets a new number.
        self.batch.set(self.batch.get() + 1);
        self.closed.set(false);
    }

    /// Asks the writer to finish once everything queued is written.
    pub(super) fn close(&self) {
        self.closed.set(true);
        if let Some(writer) = self.writer.take() {
            writer.wake();
        }
    }

    /// Waits for a batch and swaps it with `spare` (empty); `None` once closed and drained.
    async fn take(&self, mut spare: Vec<u8>) -> Option<Vec<u8>> {
        poll_fn(|cx| {
            let mut buf = self.buf.borrow_mut();
            if !buf.is_empty() {
                mem::swap(&mut *buf, &mut spare);
                self.batch.set(self.batch.get() + 1);
                return Poll::Ready(Some(mem::take(&mut spare)));
            }
            if self.closed.get() {
                return Poll::Ready(None);
            }
            self.writer.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }
}

/// Writes the outbox's batches, one write each, until it is closed and drained (`Ok`) or a
/// write fails or stalls past `PEER_WRITE_TIMEOUT_MS`.
pub(super) async fn write_loop<W: AsyncWriteRent>(w: &mut W, outbox: &Outbox) -> io::Result<()> {
    let limit = Duration::from_millis(PEER_WRITE_TIMEOUT_MS);
    let mut spare = Vec::with_capacity(PEER_BUFFER_BYTES);
    while let Some(batch) = outbox.take(spare).await {
        let (res, mut done) = monoio::time::timeout(limit, w.write_all(batch))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "peer write timed out"))?;
        res?;
        done.clear();
        if done.capacity() > PEER_BUFFER_KEEP_BYTES {
            done = Vec::with_capacity(PEER_BUFFER_BYTES);
        }
        spare = done;
    }
    Ok(())
}

/// Why reading frames stopped.
#[derive(Debug, thiserror::Error)]
pub(super) enum ReadError {
    #[error("the peer closed the connection")]
    Closed,
    #[error("read failed: {0}")]
    Io(#[from] io::Error),
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
}

/// Received bytes and the frames in them. `pos` is where the next frame starts.
pub(super) struct FrameReader {
    buf: Vec<u8>,
    pos: usize,
    value_bytes_max: usize,
}

impl FrameReader {
    /// Starts with the bytes that arrived with the handshake.
    pub(super) fn new(leftover: Vec<u8>, value_bytes_max: usize) -> FrameReader {
        let mut buf = leftover;
        buf.reserve(PEER_BUFFER_BYTES.saturating_sub(buf.len()));
        FrameReader {
            buf,
            pos: 0,
            value_bytes_max,
        }
    }

    /// The next complete frame already received, if any.
    pub(super) fn next(&mut self) -> Result<Option<Frame>, FrameError> {
        match frame::decode(&self.buf[self.pos..], self.value_bytes_max)? {
            Some((frame, used)) => {
                self.pos += used;
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    /// Reads more: first moves a partial frame to the front, then makes room towards its
    /// declared length (refused before growing if over the frame limit), at most doubling per
    /// read: memory follows the bytes that arrived, not what a length prefix claims.
    pub(super) async fn fill<R: AsyncReadRent>(&mut self, r: &mut R) -> Result<(), ReadError> {
        self.compact();
        let need = frame::peek_len(&self.buf, self.value_bytes_max)?.unwrap_or(0);
        let step = self.buf.capacity().saturating_mul(2).max(PEER_BUFFER_BYTES);
        let want = need
            .min(step)
            .max(self.buf.len() + 1)
            .max(PEER_BUFFER_BYTES);
        if self.buf.capacity() < want {
            self.buf.reserve_exact(want - self.buf.len());
        }
        let buf = mem::take(&mut self.buf);
        let (len, cap) = (buf.len(), buf.capacity());
        let (res, slice) = r.read(buf.slice_mut(len..cap)).await;
        self.buf = slice.into_inner();
        match res? {
            0 => Err(ReadError::Closed),
            _ => Ok(()),
        }
    }

    fn compact(&mut self) {
        if self.pos == 0 {
            return;
        }
        if self.pos == self.buf.len() {
            self.buf.clear();
            if self.buf.capacity() > PEER_BUFFER_KEEP_BYTES {
                self.buf = Vec::with_capacity(PEER_BUFFER_BYTES);
            }
        } else {
            self.buf.copy_within(self.pos.., 0);
            self.buf.truncate(self.buf.len() - self.pos);
        }
        self.pos = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::PEER_VALUE_BYTES_MAX;
    use crate::test_support::run;

    /// A frame that declares 100 MiB and sends 1,000 bytes of it costs buffers in proportion
    /// to the 1,000 bytes, not to the claim.
    #[test]
    fn a_declared_length_is_not_allocated_before_its_bytes_arrive() {
        let declared: u32 = 100 * 1024 * 1024;
        let mut wire = declared.to_le_bytes().to_vec();
        wire.extend(std::iter::repeat_n(0u8, 1000));
        let mut reader = FrameReader::new(Vec::new(), PEER_VALUE_BYTES_MAX);
        let mut r: &[u8] = &wire;
        run(async { while reader.fill(&mut r).await.is_ok() {} });
        assert_eq!(reader.buf.len(), wire.len());
        assert!(
            reader.buf.capacity() <= 2 * PEER_BUFFER_BYTES,
            "{} bytes reserved for {} received",
            reader.buf.capacity(),
            wire.len()
        );
    }

    /// Over the frame limit, the prefix alone is refused.
    #[test]
    fn a_declared_length_over_the_limit_is_refused_at_once() {
        let mut reader = FrameReader::new(u32::MAX.to_le_bytes().to_vec(), PEER_VALUE_BYTES_MAX);
        let mut r: &[u8] = &[];
        let end = run(reader.fill(&mut r));
        assert!(
            matches!(end, Err(ReadError::Frame(FrameError::TooLarge { .. }))),
            "{end:?}"
        );
    }

    /// A whole large frame still arrives: the buffer grows until it holds it.
    #[test]
    fn a_large_frame_is_read_whole() {
        let len = 3 * 1024 * 1024 + 17;
        let mut wire = (len as u32).to_le_bytes().to_vec();
        wire.extend(std::iter::repeat_n(7u8, len));
        let mut reader = FrameReader::new(Vec::new(), PEER_VALUE_BYTES_MAX);
        let mut r: &[u8] = &wire;
        run(async { while reader.fill(&mut r).await.is_ok() {} });
        assert_eq!(reader.buf.len(), wire.len());
    }
}
