//! The accepting side of a peer link: after the HTTP layer switched a connection to the peer
//! protocol, [`serve_peer`] first waits (at most `PEER_PROOF_TIMEOUT_MS`) for the dialler's
//! proof of the cluster secret and serves nothing (no frame, no heartbeat) unless it checks;
//! then it reads request frames, runs each through the [`PeerService`]
//! concurrently (at most `PEER_SERVE_IN_FLIGHT_MAX` at once; then it stops reading), writes
//! the answers as they come (out of order, matched by id; one write per event-loop turn) and
//! answers heartbeats. A malformed frame closes the link. Must not import `http` or `api`.

use std::cell::Cell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use monoio::io::{AsyncReadRent, Splitable};

use super::frame::{self, Frame, Heartbeat};
use super::handshake::{AwaitedProof, Refusal, PROOF_BYTES};
use super::wire::{write_loop, FrameReader, Outbox, ReadError};
use crate::limits::{PEER_PROOF_TIMEOUT_MS, PEER_SERVE_IDLE_MS, PEER_SERVE_IN_FLIGHT_MAX};
use crate::replication::protocol::{ReplicaReply, ReplicaRequest, SyncRequest};
use crate::runtime::Latch;
use crate::tls::Stream;

/// What a node does with its peers' requests.
pub trait PeerService: 'static {
    /// Performs one replica operation. `None`: it was not performed and never will be
    /// (storage busy, stopping); the caller learns that nothing was applied.
    fn dispatch(&self, request: ReplicaRequest) -> impl Future<Output = Option<ReplicaReply>>;

    /// Answers one anti-entropy question. `None`: not answered (busy, stopping); the asker
    /// tries again later. A service without anti-entropy answers nothing.
    fn dispatch_sync(&self, request: SyncRequest) -> impl Future<Output = Option<ReplicaReply>> {
        drop(request);
        async { None }
    }

    /// A peer's heartbeat carries its clock: observe its HLC (bounded), and answer with this
    /// node's HLC and wall clock (the answer's `sent_us` is filled in by the caller).
    fn heartbeat(&self, peer: Heartbeat) -> Heartbeat;
}

/// How a served link ended.
#[derive(Debug)]
pub enum ServeEnd {
    /// The dialler closed the connection.
    Closed,
    /// Nothing arrived for `PEER_SERVE_IDLE_MS`.
    Idle,
    /// The node is stopping: the requests in flight were answered first.
    Shutdown,
    /// The dialler did not prove the cluster secret (wrong, late or no proof): nothing was
    /// served.
    Unproven,
    /// A read or write failed, or the dialler sent something that is not a request frame.
    Failed(String),
}

/// One served connection's shared state: the answers' outbox, the dispatches in flight, and
/// the reader's waker for when it waits for room.
struct Serving {
    outbox: Outbox,
    in_flight: Cell<usize>,
    reader: Cell<Option<Waker>>,
    closed: Cell<bool>,
    last_seen: Cell<Instant>,
}

impl Serving {
    /// Waits until fewer than `max` dispatches are in flight.
    async fn below(&self, max: usize) {
        poll_fn(|cx| {
            if self.in_flight.get() < max {
                return Poll::Ready(());
            }
            self.reader.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }

    fn finished(&self, id: u64, reply: Option<ReplicaReply>) {
        if !self.closed.get() {
            self.outbox.push(|out| match &reply {
                Some(reply) => frame::encode_reply(out, id, reply),
                None => frame::encode_unavailable(out, id),
            });
        }
        self.in_flight.set(self.in_flight.get() - 1);
        if let Some(reader) = self.reader.take() {
            reader.wake();
        }
    }
}

/// Serves one upgraded peer connection, once the dialler proved the secret (`awaited`), until
/// the dialler leaves, it goes idle, a frame is malformed, or `shutdown` is set (then the
/// requests in flight are answered first). `leftover`: the bytes that arrived after the
/// upgrade request.
pub async fn serve_peer<S: PeerService>(
    mut stream: Stream,
    leftover: Vec<u8>,
    awaited: AwaitedProof,
    service: Rc<S>,
    value_bytes_max: usize,
    shutdown: &Latch,
) -> ServeEnd {
    let peer = stream.peer_addr().ok();
    let proven = monoio::select! {
        proven = proof(&mut stream, leftover, &awaited) => proven,
        _ = shutdown.wait() => return ServeEnd::Shutdown,
    };
    let leftover = match proven {
        Ok(rest) => rest,
        Err(refusal) => {
            refusal.log();
            return ServeEnd::Unproven;
        }
    };
    let _ = stream.set_nodelay(true);
    let serving = Rc::new(Serving {
        outbox: Outbox::new(),
        in_flight: Cell::new(0),
        reader: Cell::new(None),
        closed: Cell::new(false),
        last_seen: Cell::new(Instant::now()),
    });
    let (mut r, mut w) = stream.into_split();
    let mut reader = FrameReader::new(leftover, value_bytes_max);
    let mut writing = pin!(write_loop(&mut w, &serving.outbox));
    let end = monoio::select! {
        end = read_loop(&mut r, &mut reader, &serving, &service) => end,
        res = &mut writing => ServeEnd::Failed(match res {
            Ok(()) => "writer closed".to_string(),
            Err(err) => format!("write failed: {err}"),
        }),
        _ = idle(&serving) => ServeEnd::Idle,
        _ = shutdown.wait() => ServeEnd::Shutdown,
    };
    if matches!(end, ServeEnd::Shutdown) {
        serving.below(1).await;
        serving.outbox.close();
        if let Err(err) = writing.await {
            tracing::debug!(?peer, %err, "peer link: last answers not written");
        }
    }
    serving.closed.set(true);
    match &end {
        ServeEnd::Failed(why) => tracing::warn!(?peer, %why, "closing peer link"),
        other => tracing::debug!(?peer, end = ?other, "peer link closed"),
    }
    end
}

/// Reads the dialler's proof record (the first `PROOF_BYTES` after the upgrade, some maybe in
/// `leftover`) within `PEER_PROOF_TIMEOUT_MS` and checks it: the bytes after it, or the
/// refusal to log.
async fn proof(
    stream: &mut Stream,
    mut leftover: Vec<u8>,
    awaited: &AwaitedProof,
) -> Result<Vec<u8>, Refusal> {
    let read = async {
        while leftover.len() < PROOF_BYTES {
            // Never more than the record: frames after it are the reader's.
            let (res, got) = stream
                .read(Vec::with_capacity(PROOF_BYTES - leftover.len()))
                .await;
            match res {
                Ok(0) => return Err("closed the link without proving the cluster secret"),
                Ok(_) => leftover.extend_from_slice(&got),
                Err(_) => return Err("lost the link before proving the cluster secret"),
            }
        }
        Ok(())
    };
    let limit = Duration::from_millis(PEER_PROOF_TIMEOUT_MS);
    match monoio::time::timeout(limit, read).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return Err(awaited.unproven(why)),
        Err(_) => return Err(awaited.unproven("sent no proof of the cluster secret in time")),
    }
    awaited.check(&leftover[..PROOF_BYTES])?;
    Ok(leftover.split_off(PROOF_BYTES))
}

async fn read_loop<R: monoio::io::AsyncReadRent, S: PeerService>(
    r: &mut R,
    reader: &mut FrameReader,
    serving: &Rc<Serving>,
    service: &Rc<S>,
) -> ServeEnd {
    loop {
        loop {
            serving.below(PEER_SERVE_IN_FLIGHT_MAX).await;
            match reader.next() {
                Ok(Some(frame)) => {
                    if let Err(why) = on_frame(frame, serving, service) {
                        return ServeEnd::Failed(why);
                    }
                }
                Ok(None) => break,
                Err(err) => return ServeEnd::Failed(format!("bad frame: {err}")),
            }
        }
        match reader.fill(r).await {
            Ok(()) => serving.last_seen.set(Instant::now()),
            Err(ReadError::Closed) => return ServeEnd::Closed,
            Err(err) => return ServeEnd::Failed(err.to_string()),
        }
    }
}

fn on_frame<S: PeerService>(
    frame: Frame,
    serving: &Rc<Serving>,
    service: &Rc<S>,
) -> Result<(), String> {
    match frame {
        Frame::Request { id, request } => {
            serving.in_flight.set(serving.in_flight.get() + 1);
            let (serving, service) = (serving.clone(), service.clone());
            monoio::spawn(async move {
                let reply = service.dispatch(request).await;
                serving.finished(id, reply);
            });
            Ok(())
        }
        Frame::SyncRequest { id, request } => {
            serving.in_flight.set(serving.in_flight.get() + 1);
            let (serving, service) = (serving.clone(), service.clone());
            monoio::spawn(async move {
                let reply = service.dispatch_sync(request).await;
                serving.finished(id, reply);
            });
            Ok(())
        }
        Frame::Ping { id, beat } => {
            let pong = Heartbeat {
                sent_us: beat.sent_us,
                ..service.heartbeat(beat)
            };
            serving.outbox.push(|out| frame::encode_pong(out, id, pong));
            Ok(())
        }
        Frame::Reply { .. } | Frame::Unavailable { .. } | Frame::Pong { .. } => {
            Err("the dialler sent an answer frame".to_string())
        }
    }
}

/// Completes once nothing has arrived for `PEER_SERVE_IDLE_MS`.
async fn idle(serving: &Serving) {
    let limit = Duration::from_millis(PEER_SERVE_IDLE_MS);
    loop {
        let deadline = serving.last_seen.get() + limit;
        let now = Instant::now();
        if now >= deadline {
            return;
        }
        monoio::time::sleep(deadline - now).await;
    }
}
