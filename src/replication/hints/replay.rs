//! Replays one core's hints: one task per peer that, while the peer's link is up, sends the
//! peer's queue oldest first as `COPY`s with their original versions, a batch of at most
//! `HINT_REPLAY_IN_FLIGHT_MAX` in flight at a time and at most `HINT_REPLAY_PER_SECOND_MAX`
//! a second, and removes each hint the peer acknowledged. It stops sending when the link goes
//! down and goes on where it was when it comes back (the queue is the only state).
//!
//! Must not import `http` or `api`.

use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Hints, Queued};
use crate::limits::{
    HINT_REPLAY_ATTEMPTS_MAX, HINT_REPLAY_IN_FLIGHT_MAX, HINT_REPLAY_PER_SECOND_MAX,
    HINT_REPLAY_POLL_MS, HINT_REPLAY_RETRY_MS,
};
use crate::replication::protocol::{ReplicaReply, ReplicaRequest};
use crate::replication::transport::{Link, Undelivered};
use crate::runtime::Latch;

/// A stretch of replaying at least this long (in hints) is logged at info level.
const DRAIN_INFO_HINTS_MIN: u64 = 100;

/// Replays `hints` to every peer in `links` (indexed like the members, `None` for this node)
/// until `stop` is set. Each `COPY` has `timeout` to be answered. Logs name a peer by its
/// index; [`run_named`] names them by address.
pub async fn run(
    hints: Rc<Hints>,
    links: Vec<Option<Rc<dyn Link>>>,
    timeout: Duration,
    stop: Latch,
) {
    let names = (0..links.len()).map(|i| format!("member {i}")).collect();
    run_named(hints, links, names, timeout, stop).await;
}

/// [`run`], every log line naming the peer by `names[member]` (its URL).
pub async fn run_named(
    hints: Rc<Hints>,
    links: Vec<Option<Rc<dyn Link>>>,
    names: Vec<String>,
    timeout: Duration,
    stop: Latch,
) {
    let tasks: Vec<_> = links
        .into_iter()
        .zip(names)
        .enumerate()
        .filter_map(|(peer, (link, name))| link.map(|link| (peer, link, name)))
        .map(|(peer, link, name)| {
            let span = tracing::info_span!("hint_replay", peer = %name);
            let replay = PeerReplay {
                hints: hints.clone(),
                peer,
                link,
                timeout,
                stop: stop.clone(),
            };
            monoio::spawn(tracing::Instrument::instrument(replay.run(), span))
        })
        .collect();
    for task in tasks {
        task.await;
    }
}

struct PeerReplay {
    hints: Rc<Hints>,
    peer: usize,
    link: Rc<dyn Link>,
    timeout: Duration,
    stop: Latch,
}

/// How one batch went.
#[derive(Default)]
struct BatchResult {
    /// `(seq, bytes)` of the hints the peer acknowledged.
    acked: Vec<(u64, u64)>,
    /// Some COPY was not acknowledged.
    short: bool,
    /// The oldest hint of the batch got no answer although it was sent.
    front_unanswered: bool,
}

/// A stretch of replaying, from the first hint sent to an empty queue (for the log).
struct Drain {
    started: Instant,
    replayed: u64,
}

impl PeerReplay {
    async fn run(self) {
        let mut pace = Pace::new();
        let mut front = FrontAttempts::default();
        let mut drain: Option<Drain> = None;
        while !self.stop.is_set() {
            if !self.link.is_up() || self.hints.pending(self.peer) == 0 {
                self.pause(HINT_REPLAY_POLL_MS).await;
                continue;
            }
            let batch = self.hints.peek(self.peer, HINT_REPLAY_IN_FLIGHT_MAX);
            let Some(oldest) = batch.first().map(|q| (q.seq, q.bytes)) else {
                self.pause(HINT_REPLAY_RETRY_MS).await;
                continue;
            };
            let started = Instant::now();
            let result = self.send(&batch).await;
            let given_up = front.note(oldest, result.front_unanswered);
            self.hints.finish(self.peer, &result.acked, &given_up);
            let stretch = drain.get_or_insert(Drain {
                started,
                replayed: 0,
            });
            stretch.replayed += result.acked.len() as u64;
            if self.hints.pending(self.peer) == 0 {
                self.log_drained(drain.take());
            }
            if result.short {
                self.pause(HINT_REPLAY_RETRY_MS).await;
            } else {
                pace.after(started, result.acked.len(), &self.stop).await;
            }
        }
    }

    /// Sends every hint of `batch` at once (pipelined on the link), then collects the answers.
    async fn send(&self, batch: &[Queued]) -> BatchResult {
        let deadline = Instant::now() + self.timeout;
        let calls: Vec<_> = batch
            .iter()
            .map(|q| {
                let copy = ReplicaRequest::Copy {
                    key: q.hint.key.clone(),
                    version: q.hint.version,
                    value: q.hint.value.clone(),
                    meta: q.hint.meta,
                };
                self.link.call(copy, deadline)
            })
            .collect();
        let mut result = BatchResult::default();
        for (i, (call, q)) in calls.into_iter().zip(batch).enumerate() {
            match call.await {
                // Stored, or the peer holds a newer version or a higher CAS promise: either
                // way nothing is left for the hint to do.
                Ok(ReplicaReply::CopyAck | ReplicaReply::Rejected { .. }) => {
                    result.acked.push((q.seq, q.bytes))
                }
                // Beyond the peer's clock bound (this node's clock is far ahead of its): it
                // stays refused until that clock catches up, so the hint would block the queue.
                // Dropped; anti-entropy copies the record once the peer takes it.
                Ok(ReplicaReply::RefusedFuture) => {
                    tracing::debug!("hint refused: beyond the peer's clock bound");
                    result.acked.push((q.seq, q.bytes));
                }
                Ok(other) => {
                    tracing::debug!(reply = ?other, "unexpected answer to a hint");
                    result.short = true;
                    result.front_unanswered |= i == 0;
                }
                Err(Undelivered::NotSent) => result.short = true,
                Err(Undelivered::Unknown) => {
                    result.short = true;
                    result.front_unanswered |= i == 0;
                }
            }
        }
        result
    }

    /// One line per stretch of replaying; at info level only for a sizeable one (a peer that
    /// misses an answer now and then would otherwise fill the log).
    fn log_drained(&self, drain: Option<Drain>) {
        let Some(drain) = drain.filter(|d| d.replayed > 0) else {
            return;
        };
        let took = drain.started.elapsed();
        let per_s = (drain.replayed as f64 / took.as_secs_f64().max(1e-3)) as u64;
        // The peer: by address, in the task's span.
        let (hints, ms) = (drain.replayed, took.as_millis() as u64);
        if hints >= DRAIN_INFO_HINTS_MIN {
            tracing::info!(hints, ms, per_s, "hints replayed; queue empty");
        } else {
            tracing::debug!(hints, ms, per_s, "hints replayed; queue empty");
        }
    }

    async fn pause(&self, ms: u64) {
        monoio::select! {
            _ = monoio::time::sleep(Duration::from_millis(ms)) => {}
            _ = self.stop.wait() => {}
        }
    }
}

/// Counts the unanswered attempts at the oldest hint of a queue, to give it up after
/// `HINT_REPLAY_ATTEMPTS_MAX` so that one hint the peer never answers cannot hold up the rest.
#[derive(Default)]
pub(super) struct FrontAttempts {
    seq: Option<u64>,
    failures: u32,
}

impl FrontAttempts {
    /// Notes one attempt at `oldest` (`(seq, bytes)`); returns it if it is to be given up.
    pub(super) fn note(&mut self, oldest: (u64, u64), unanswered: bool) -> Vec<(u64, u64)> {
        if self.seq != Some(oldest.0) {
            self.seq = Some(oldest.0);
            self.failures = 0;
        }
        if !unanswered {
            return Vec::new();
        }
        self.failures += 1;
        if self.failures < HINT_REPLAY_ATTEMPTS_MAX {
            return Vec::new();
        }
        self.seq = None;
        vec![oldest]
    }
}

/// Keeps replaying at or below `HINT_REPLAY_PER_SECOND_MAX`: each batch books its share of a
/// second from when it started (or from the end of the previous booking, if later).
struct Pace {
    next: Instant,
}

impl Pace {
    fn new() -> Pace {
        Pace {
            next: Instant::now(),
        }
    }

    async fn after(&mut self, started: Instant, sent: usize, stop: &Latch) {
        let share = Duration::from_secs(1) * sent as u32 / HINT_REPLAY_PER_SECOND_MAX as u32;
        self.next = self.next.max(started) + share;
        let wait = self.next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            monoio::select! {
                _ = monoio::time::sleep(wait) => {}
                _ = stop.wait() => {}
            }
        }
    }
}
