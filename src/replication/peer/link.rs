//! The dialling side of a peer link: one [`PeerLink`] per (core, peer), core-local. A task
//! keeps it connected (dial, handshake, reconnect with bounded exponential backoff, never
//! again once the address turned out to be this node), runs its writer, reader and
//! heartbeat, and fails the calls in flight when the connection dies. Calls are pipelined:
//! each is encoded at once into the link's outbox (one write per event-loop turn) and
//! matched to its answer by request id. Must not import `http` or `api`.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use monoio::io::Splitable;
use tracing::Instrument;

use super::admission::PeerAdmission;
use super::calls::{CallError, Calls, Outcome};
use super::dial::{dial, DialError};
use super::frame::{self, Frame, Heartbeat};
use super::handshake::{HandshakeError, Identity, PeerHello, RefusalCode};
use super::wire::{write_loop, FrameReader, Outbox, ReadError};
use crate::cluster::health::LinkSlot;
use crate::limits::{CLOCK_OFFSET_NEW_SAMPLE_EIGHTHS, CLOCK_OFFSET_STEP_MS};
use crate::limits::{
    PEER_BACKOFF_FIRST_MS, PEER_BACKOFF_MAX_MS, PEER_DOWN_AFTER_MS, PEER_HANDSHAKE_TIMEOUT_MS,
    PEER_PING_INTERVAL_MS, PEER_QUEUE_BYTES_MAX,
};
use crate::replication::clock::{self, Hlc};
use crate::replication::protocol::{ReplicaRequest, SyncRequest};
use crate::runtime::Latch;
use crate::tls::{Stream, TlsDialer};

/// The clock a link reports in its heartbeats and feeds with the peer's.
pub trait PeerClock {
    /// The last HLC value issued or observed.
    fn last(&self) -> u64;
    /// Takes in a peer's HLC (bounded: see [`Hlc::observe`]).
    fn observe(&self, hlc: u64);
    /// The wall clock, ms since the epoch: heartbeats carry it, and the peer's gives its offset.
    fn wall_ms(&self) -> u64 {
        clock::system_ms()
    }
}

impl PeerClock for Hlc {
    fn last(&self) -> u64 {
        Hlc::last(self)
    }

    fn observe(&self, hlc: u64) {
        Hlc::observe(self, hlc)
    }

    fn wall_ms(&self) -> u64 {
        Hlc::physical_ms(self)
    }
}

/// The peer's wall clock minus ours, in ms, from one heartbeat answer: the peer read its clock
/// (`peer_wall_ms`) about half a round trip before the answer arrived (`local_wall_ms`).
/// Smoothed with the previous estimate, if any ([`CLOCK_OFFSET_NEW_SAMPLE_EIGHTHS`]), unless
/// the sample is more than [`CLOCK_OFFSET_STEP_MS`] away from it: the clock was stepped, and
/// the estimate follows at once.
pub fn wall_offset_ms(
    previous: Option<i64>,
    peer_wall_ms: u64,
    local_wall_ms: u64,
    rtt: Duration,
) -> i64 {
    let midpoint_ms = local_wall_ms as i64 - (rtt.as_micros() / 2_000) as i64;
    let sample = (peer_wall_ms as i64).saturating_sub(midpoint_ms);
    match previous {
        Some(prev) if (sample - prev).unsigned_abs() <= CLOCK_OFFSET_STEP_MS => {
            prev + (sample - prev) * CLOCK_OFFSET_NEW_SAMPLE_EIGHTHS / 8
        }
        _ => sample,
    }
}

/// Where and how a link dials.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// The peer as configured, `host:port` (also the `Host` header); a name is resolved at
    /// every dial.
    pub addr: String,
    /// This node's own address, when `MOSTDB_HOST` is a specific one: outgoing sockets bind
    /// to it. `None`: the kernel picks.
    pub bind_ip: Option<IpAddr>,
    pub identity: Rc<Identity>,
    /// The largest value a frame may carry (`MOSTDB_MAX_VALUE_BYTES`).
    pub value_bytes_max: usize,
    /// Told what the peer's name resolved to at each dial, so that peers dialling from
    /// there are admitted (see `admission`); `None` in tests that do not care.
    pub admission: Option<Arc<PeerAdmission>>,
    /// `Some`: dial over TLS (the node's port speaks TLS, and so do its peers').
    pub tls: Option<TlsDialer>,
}

/// Where a link is in its life.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LinkState {
    /// Dialling (first time, or again after a failure).
    Connecting,
    /// Handshake done: calls are written.
    Up,
    /// Waiting to dial again after a failure or refusal.
    Down,
    /// The address leads to this node itself: never dialled again.
    SelfLink,
    /// [`PeerLink::stop`] was called.
    Stopped,
}

/// A link as the cluster view and the coordinator see it; cheap to take.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct LinkStatus {
    pub state: LinkState,
    /// Who answered the last successful handshake.
    pub peer_node: Option<u64>,
    /// When a frame last arrived.
    pub last_seen: Option<Instant>,
    /// The last heartbeat's round trip.
    pub rtt: Option<Duration>,
    /// The peer's HLC as of its last heartbeat answer (0: none yet). Not a wall clock: it
    /// runs ahead of physical time by whatever the peer observed (within the skew bound).
    pub peer_hlc: u64,
    /// When that answer arrived.
    pub peer_hlc_at: Option<Instant>,
    /// The peer's wall clock minus this node's, in ms, smoothed over heartbeats (`None`:
    /// no answer yet).
    pub wall_offset_ms: Option<i64>,
    pub in_flight: usize,
    /// Why the last handshake was refused, if it was.
    pub last_refusal: Option<RefusalCode>,
    /// How many times the link came up.
    pub connects: u64,
}

/// One core's link to one peer. Cloning gives another handle to the same link.
#[derive(Clone)]
pub struct PeerLink {
    inner: Rc<Inner>,
}

struct Inner {
    config: LinkConfig,
    clock: Rc<dyn PeerClock>,
    outbox: Outbox,
    calls: RefCell<Calls>,
    status: Cell<LinkStatus>,
    stop: Latch,
    /// Heartbeat send times count microseconds from here.
    born: Instant,
    pings: Cell<u64>,
    /// Where the node-wide view learns what this link sees (`None`: not watched, in tests).
    slot: Option<Arc<LinkSlot>>,
    /// The peer of the current connection answers `SyncRequest::View`.
    peer_views: Cell<bool>,
    /// The peer of the current connection answers `SyncRequest::Range`.
    peer_lists: Cell<bool>,
    /// Whether the peer announced CAS at its last handshake (`None`: never connected).
    peer_cas: Cell<Option<bool>>,
}

/// How the node watches a link: the peer's name in its logs, and where it publishes what it
/// sees for the node-wide view (`cluster::health`).
pub struct Watched {
    /// The member's URL as configured: every log line of the link names the peer by it.
    pub url: String,
    pub slot: Arc<LinkSlot>,
}

impl PeerLink {
    /// Creates the link and starts its task on the current monoio runtime (which must have
    /// timers enabled); it dials at once.
    pub fn start(config: LinkConfig, clock: Rc<dyn PeerClock>) -> PeerLink {
        PeerLink::start_watched(config, clock, None)
    }

    /// [`PeerLink::start`], publishing what the link sees into the node-wide view.
    pub fn start_watched(
        config: LinkConfig,
        clock: Rc<dyn PeerClock>,
        watched: Option<Watched>,
    ) -> PeerLink {
        let span = match &watched {
            Some(w) => tracing::info_span!("peer_link", peer = %w.url),
            None => tracing::info_span!("peer_link", peer = %config.addr),
        };
        let inner = Rc::new(Inner {
            config,
            clock,
            outbox: Outbox::new(),
            calls: RefCell::new(Calls::default()),
            status: Cell::new(LinkStatus {
                state: LinkState::Connecting,
                peer_node: None,
                last_seen: None,
                rtt: None,
                peer_hlc: 0,
                peer_hlc_at: None,
                wall_offset_ms: None,
                in_flight: 0,
                last_refusal: None,
                connects: 0,
            }),
            stop: Latch::new(),
            born: Instant::now(),
            pings: Cell::new(0),
            slot: watched.map(|w| w.slot),
            peer_views: Cell::new(false),
            peer_lists: Cell::new(false),
            peer_cas: Cell::new(None),
        });
        monoio::spawn(inner.clone().run().instrument(span));
        PeerLink { inner }
    }

    /// Whether calls are written now ("reachable" for the coordinator).
    pub fn is_up(&self) -> bool {
        self.inner.status.get().state == LinkState::Up
    }

    /// Whether the peer speaks CAS, as far as this link knows: it announced CAS at its last
    /// handshake, or never connected yet.
    pub fn speaks_cas(&self) -> bool {
        self.inner.peer_cas.get() != Some(false)
    }

    pub fn status(&self) -> LinkStatus {
        let mut status = self.inner.status.get();
        status.in_flight = self.inner.calls.borrow().in_flight();
        status
    }

    pub fn config(&self) -> &LinkConfig {
        &self.inner.config
    }

    /// Sends `request` now (encoded into the outbox, written with this turn's batch) and
    /// returns its answer's future. Fails at once with `NotSent` when the link is down or
    /// its queue or in-flight bound is full. Dropping the future forgets the call.
    pub fn send(&self, request: &ReplicaRequest) -> Call {
        self.send_encoded(|out, id| frame::encode_request(out, id, request))
    }

    /// [`PeerLink::send`] for an anti-entropy question; its answer is a [`ReplicaReply`]
    /// (`Digests` or `KeyPage`) like any other.
    ///
    /// [`ReplicaReply`]: crate::replication::protocol::ReplicaReply
    ///
    /// A view question goes only to a peer that announced it answers them (an older node
    /// would close the link on it): otherwise `NotSent`.
    pub fn send_sync(&self, request: &SyncRequest) -> Call {
        let unknown = match request {
            SyncRequest::View => !self.inner.peer_views.get(),
            SyncRequest::Range { .. } => !self.inner.peer_lists.get(),
            _ => false,
        };
        if unknown {
            return Call::failed(CallError::NotSent);
        }
        self.send_encoded(|out, id| frame::encode_sync_request(out, id, request))
    }

    /// Opens a call and encodes its request frame (given the call's id) into the outbox.
    fn send_encoded(&self, encode: impl FnOnce(&mut Vec<u8>, u64)) -> Call {
        let inner = &self.inner;
        let room = inner.outbox.queued_bytes() < PEER_QUEUE_BYTES_MAX;
        if inner.status.get().state != LinkState::Up || !room {
            return Call::failed(CallError::NotSent);
        }
        let batch = inner.outbox.batch();
        let Some(id) = inner.calls.borrow_mut().open(batch) else {
            return Call::failed(CallError::NotSent);
        };
        inner.outbox.push(|out| encode(out, id));
        Call {
            link: Some(inner.clone()),
            id,
            early: CallError::NotSent,
        }
    }

    /// [`PeerLink::send`] with a deadline: `Timeout` when no answer came by then. Like
    /// `send`, the request is encoded at once; the future borrows nothing.
    pub fn call(
        &self,
        request: &ReplicaRequest,
        deadline: Instant,
    ) -> impl Future<Output = Outcome> + 'static {
        with_deadline(self.send(request), deadline)
    }

    /// [`PeerLink::send_sync`] with a deadline, as [`PeerLink::call`].
    pub fn call_sync(
        &self,
        request: &SyncRequest,
        deadline: Instant,
    ) -> impl Future<Output = Outcome> + 'static {
        with_deadline(self.send_sync(request), deadline)
    }

    /// Bytes encoded and not yet handed to a write.
    #[cfg(test)]
    pub(super) fn inner_queued(&self) -> usize {
        self.inner.outbox.queued_bytes()
    }

    /// Stops the link for good: closes the connection, fails the calls in flight, dials no
    /// more.
    pub fn stop(&self) {
        self.inner.stop.set();
    }
}

/// `call`'s outcome, or `Timeout` when none came by `deadline`.
fn with_deadline(call: Call, deadline: Instant) -> impl Future<Output = Outcome> + 'static {
    let deadline = monoio::time::Instant::from_std(deadline);
    async move {
        match monoio::time::timeout_at(deadline, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::Timeout),
        }
    }
}

/// The answer to one [`PeerLink::send`].
#[must_use = "a call does nothing useful unless its answer is awaited"]
pub struct Call {
    link: Option<Rc<Inner>>,
    id: u64,
    /// The outcome of a call that was never opened.
    early: CallError,
}

impl Call {
    fn failed(error: CallError) -> Call {
        Call {
            link: None,
            id: 0,
            early: error,
        }
    }
}

impl Future for Call {
    type Output = Outcome;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Outcome> {
        let Some(link) = &self.link else {
            return Poll::Ready(Err(self.early));
        };
        let polled = link.calls.borrow_mut().poll(self.id, cx);
        if polled.is_ready() {
            self.link = None;
            self.early = CallError::Lost;
        }
        polled
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if let Some(link) = self.link.take() {
            link.calls.borrow_mut().cancel(self.id);
        }
    }
}

impl crate::replication::transport::Link for PeerLink {
    fn is_up(&self) -> bool {
        PeerLink::is_up(self)
    }

    fn speaks_cas(&self) -> bool {
        PeerLink::speaks_cas(self)
    }

    fn call(
        &self,
        request: ReplicaRequest,
        deadline: Instant,
    ) -> crate::replication::transport::CallFuture {
        use crate::replication::transport::Undelivered;
        let call = PeerLink::call(self, &request, deadline);
        Box::pin(async move {
            match call.await {
                Ok(reply) => Ok(reply),
                // Unavailable: the replica applied nothing, as if it never got the request.
                Err(CallError::NotSent | CallError::Unavailable) => Err(Undelivered::NotSent),
                Err(CallError::Lost | CallError::Timeout) => Err(Undelivered::Unknown),
            }
        })
    }
}

/// Pauses between dials: doubling from `PEER_BACKOFF_FIRST_MS` to `PEER_BACKOFF_MAX_MS`,
/// each drawn between half and all of that (so the cores of a node do not dial in step).
struct Backoff {
    next_ms: u64,
    seed: u64,
}

impl Backoff {
    fn new(seed: u64) -> Backoff {
        Backoff {
            next_ms: PEER_BACKOFF_FIRST_MS,
            seed: seed | 1,
        }
    }

    fn reset(&mut self) {
        self.next_ms = PEER_BACKOFF_FIRST_MS;
    }

    /// The pause after a failure; `longest` jumps to the bound (a refusal will not go away
    /// soon).
    fn pause(&mut self, longest: bool) -> Duration {
        if longest {
            self.next_ms = PEER_BACKOFF_MAX_MS;
        }
        let ms = self.next_ms;
        self.next_ms = (ms * 2).min(PEER_BACKOFF_MAX_MS);
        // xorshift64
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        Duration::from_millis(ms / 2 + self.seed % (ms / 2 + 1))
    }
}

impl Inner {
    fn set_state(&self, state: LinkState) {
        let mut status = self.status.get();
        status.state = state;
        self.status.set(status);
    }

    fn update(&self, change: impl FnOnce(&mut LinkStatus)) {
        let mut status = self.status.get();
        change(&mut status);
        self.status.set(status);
    }

    /// The link's task: dial, serve, and again, until stopped or found to be this node.
    async fn run(self: Rc<Self>) {
        let seed = Rc::as_ptr(&self) as u64 ^ self.born.elapsed().as_nanos() as u64;
        let mut backoff = Backoff::new(seed);
        let limit = Duration::from_millis(PEER_HANDSHAKE_TIMEOUT_MS);
        loop {
            self.set_state(LinkState::Connecting);
            let config = &self.config;
            let admission = config.admission.as_deref();
            let tls = config.tls.as_ref();
            let dialling = dial(
                &config.addr,
                config.bind_ip,
                &config.identity,
                admission,
                tls,
            );
            let dialled = monoio::select! {
                dialled = monoio::time::timeout(limit, dialling) => {
                    dialled.unwrap_or(Err(DialError::Timeout))
                }
                _ = self.stop.wait() => break,
            };
            let longest = match dialled {
                Ok((stream, hello, leftover)) => {
                    backoff.reset();
                    self.serve(stream, hello, leftover).await;
                    false
                }
                Err(DialError::Handshake(HandshakeError::SelfDial)) => {
                    // The member list named this node under an address it did not recognise
                    // as its own, so it was counted as another member: the majority is then
                    // computed over one member too many.
                    tracing::warn!(
                        "this peer address leads to this node itself, so the member count is one \
                         too high; set MOSTDB_SERVER_URL to this node's URL as it appears in \
                         MOSTDB_CLUSTER_URLS"
                    );
                    self.set_state(LinkState::SelfLink);
                    return;
                }
                Err(err) => self.dial_failed(err),
            };
            if self.stop.is_set() {
                break;
            }
            self.set_state(LinkState::Down);
            monoio::select! {
                _ = monoio::time::sleep(backoff.pause(longest)) => {}
                _ = self.stop.wait() => break,
            }
        }
        self.set_state(LinkState::Stopped);
        self.fail_calls();
    }

    /// Logs a failed dial (a refusal loudly the first time in a row, an unreachable peer
    /// quietly: it is expected while a node is down); returns whether it was a refusal.
    fn dial_failed(&self, err: DialError) -> bool {
        let refusal = match &err {
            DialError::Handshake(HandshakeError::Refused { code, .. }) => Some(*code),
            // The answer did not prove our secret: the peer holds another one.
            DialError::Handshake(HandshakeError::BadProof) => Some(RefusalCode::Secret),
            DialError::Handshake(_) => Some(RefusalCode::Other),
            // A certificate either side rejects will not go away soon (a connection that
            // ends during the TLS handshake is only a peer going down). Under TLS 1.3 the
            // peer's verdict on this node's certificate arrives after the handshake, as an
            // alert read with the answer; only TLS reports InvalidData.
            DialError::Tls(e) | DialError::Io(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Some(RefusalCode::Other)
            }
            _ => None,
        };
        match refusal {
            Some(code) if self.status.get().last_refusal != Some(code) => {
                tracing::warn!(%err, "peer refused the link");
            }
            _ => tracing::debug!(%err, "dialling peer failed"),
        }
        self.update(|s| s.last_refusal = refusal);
        refusal.is_some()
    }

    /// One connection's life: up, then reading, writing and heartbeats until one of them
    /// ends it or the link is stopped; then every call in flight fails.
    async fn serve(&self, stream: Stream, hello: PeerHello, leftover: Vec<u8>) {
        let now = Instant::now();
        self.update(|s| {
            s.state = LinkState::Up;
            s.peer_node = Some(hello.node_id);
            s.last_seen = Some(now);
            s.last_refusal = None;
            s.connects += 1;
            // Maybe another process, with another clock: measure its offset afresh.
            s.wall_offset_ms = None;
        });
        self.peer_views.set(hello.view);
        self.peer_lists.set(hello.list);
        if self.peer_cas.replace(Some(hello.cas)) != Some(hello.cas) && !hello.cas {
            tracing::warn!(
                peer = %self.config.addr,
                "the peer runs a mostdb without CAS: compare-and-set is refused until every \
                 member is upgraded"
            );
        }
        if let Some(slot) = &self.slot {
            slot.link_up(hello.node_id);
        }
        // Per core: the node-wide view logs the peer's state once per node.
        tracing::debug!(peer_node = %format_args!("{:016x}", hello.node_id), "peer link up");
        let (mut r, mut w) = stream.into_split();
        let mut reader = FrameReader::new(leftover, self.config.value_bytes_max);
        let why = monoio::select! {
            err = self.read_loop(&mut r, &mut reader) => err.to_string(),
            res = write_loop(&mut w, &self.outbox) => match res {
                Ok(()) => "writer closed".to_string(),
                Err(err) => format!("write failed: {err}"),
            },
            _ = self.heartbeat() => format!("nothing received for {PEER_DOWN_AFTER_MS} ms"),
            _ = self.stop.wait() => "stopping".to_string(),
        };
        self.set_state(LinkState::Down);
        if let Some(slot) = &self.slot {
            slot.link_down();
        }
        self.fail_calls();
        tracing::debug!(reason = %why, "peer link down");
    }

    fn fail_calls(&self) {
        let wakers = self.calls.borrow_mut().fail_all(self.outbox.batch());
        self.outbox.reset();
        for waker in wakers {
            waker.wake();
        }
    }

    async fn read_loop<R: monoio::io::AsyncReadRent>(
        &self,
        r: &mut R,
        reader: &mut FrameReader,
    ) -> ReadError {
        loop {
            loop {
                match reader.next() {
                    Ok(Some(frame)) => {
                        if let Err(err) = self.on_frame(frame) {
                            return err;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => return err.into(),
                }
            }
            if let Err(err) = reader.fill(r).await {
                return err;
            }
            self.update(|s| s.last_seen = Some(Instant::now()));
            if let Some(slot) = &self.slot {
                slot.frame();
            }
        }
    }

    fn on_frame(&self, frame: Frame) -> Result<(), ReadError> {
        let (id, outcome) = match frame {
            Frame::Reply { id, reply } => (id, Ok(reply)),
            Frame::Unavailable { id } => (id, Err(CallError::Unavailable)),
            Frame::Pong { beat, .. } => {
                let rtt = Duration::from_micros(self.micros().saturating_sub(beat.sent_us));
                self.clock.observe(beat.hlc);
                let local_wall_ms = self.clock.wall_ms();
                let mut status = self.status.get();
                let offset =
                    wall_offset_ms(status.wall_offset_ms, beat.wall_ms, local_wall_ms, rtt);
                status.rtt = Some(rtt);
                status.peer_hlc = beat.hlc;
                status.peer_hlc_at = Some(Instant::now());
                status.wall_offset_ms = Some(offset);
                self.status.set(status);
                if let Some(slot) = &self.slot {
                    slot.heartbeat(rtt, offset);
                }
                return Ok(());
            }
            Frame::Ping { id, beat } => {
                self.clock.observe(beat.hlc);
                let pong = Heartbeat {
                    sent_us: beat.sent_us,
                    hlc: self.clock.last(),
                    wall_ms: self.clock.wall_ms(),
                };
                self.outbox.push(|out| frame::encode_pong(out, id, pong));
                return Ok(());
            }
            Frame::Request { .. } | Frame::SyncRequest { .. } => {
                let err = std::io::Error::other("the accepting side sent a request");
                return Err(ReadError::Io(err));
            }
        };
        let waker = self.calls.borrow_mut().complete(id, outcome);
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }

    /// Sends a ping every `PEER_PING_INTERVAL_MS`; returns once nothing has arrived for
    /// `PEER_DOWN_AFTER_MS`.
    async fn heartbeat(&self) {
        let interval = Duration::from_millis(PEER_PING_INTERVAL_MS);
        let silence = Duration::from_millis(PEER_DOWN_AFTER_MS);
        loop {
            monoio::time::sleep(interval).await;
            let last = self.status.get().last_seen.unwrap_or(self.born);
            if last.elapsed() > silence {
                return;
            }
            let id = self.pings.get() + 1;
            self.pings.set(id);
            let beat = Heartbeat {
                sent_us: self.micros(),
                hlc: self.clock.last(),
                wall_ms: self.clock.wall_ms(),
            };
            self.outbox.push(|out| frame::encode_ping(out, id, beat));
        }
    }

    fn micros(&self) -> u64 {
        self.born.elapsed().as_micros() as u64
    }
}
