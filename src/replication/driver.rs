//! Runs the coordinator's state machines on the core that owns the key, every kind of
//! operation through one loop ([`Rounds::run`] over the `coordinator::Operation` trait): sends
//! their requests (to the local replica directly, to peers over their [`Link`]s), feeds back
//! the answers, "never sent" notices and the deadline, and keeps the clock observing every
//! version seen. All the protocol's decisions are in `coordinator`; this is only plumbing.
//!
//! After a write ends Ok or Indeterminate, the peers not known to hold its version are handed
//! to the core's hints ([`super::hints`]), off the client's path: a task waits (until the
//! write's deadline) for the answers still on their way, and hints only the peers that did not
//! accept. A definite failure is never hinted: nothing of it may ever be stored (I4).
//!
//! Must not import `peer`, `http` or `api`: links come in as [`Link`] trait objects.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_channel::mpsc;
use futures_core::Stream;

use super::clock::Hlc;
use super::coordinator::{
    Action, CasDone, CasOp, Change, ContendedKeys, Expect, Input, Operation, Payload, ReadDone,
    ReadOp, ReplicaSet, WriteDone, WriteOp,
};
use super::hints::{Hint, Hints};
use super::protocol::{ReplicaReply, ReplicaRequest};
use super::replica;
use super::transport::{Link, Undelivered};
use crate::config::{View, WriteMode};
use crate::limits;
use crate::storage::{Meta, Shard, StorageError, Version};

/// The coordinator side of one core: the replicas as this core reaches them.
pub struct Driver {
    /// Indexed by replica; `None` is this node (the local replica).
    links: Vec<Option<Rc<dyn Link>>>,
    self_index: usize,
    timeout: Duration,
    write_mode: WriteMode,
    contended: RefCell<ContendedKeys>,
    started: Instant,
    /// Where the writes peers missed go; `None`: hints are off.
    hints: Option<Rc<Hints>>,
    /// The runtime settings: when set, the timeout and the write mode are read from them at
    /// each operation (`PUT /admin/config`) instead of the values given to `new`.
    settings: Option<Rc<View>>,
}

type Answer = (usize, u32, Result<ReplicaReply, Undelivered>);

impl Driver {
    pub fn new(
        links: Vec<Option<Rc<dyn Link>>>,
        timeout: Duration,
        write_mode: WriteMode,
    ) -> Driver {
        let self_index = links.iter().position(Option::is_none).unwrap_or_default();
        debug_assert_eq!(links.iter().filter(|l| l.is_none()).count(), 1);
        Driver {
            links,
            self_index,
            timeout,
            write_mode,
            contended: RefCell::new(ContendedKeys::default()),
            started: Instant::now(),
            hints: None,
            settings: None,
        }
    }

    /// Reads the timeout and the write mode from `settings` at each operation.
    pub fn with_settings(mut self, settings: Rc<View>) -> Driver {
        self.settings = Some(settings);
        self
    }

    /// The operation timeout and the node's write mode now.
    pub(crate) fn timeout_and_mode(&self) -> (Duration, WriteMode) {
        match &self.settings {
            Some(view) => {
                let now = view.get();
                (Duration::from_millis(now.timeout_ms), now.write_mode)
            }
            None => (self.timeout, self.write_mode),
        }
    }

    /// Hands the writes peers miss to `hints` (hinted handoff, DESIGN §6).
    pub fn with_hints(mut self, hints: Rc<Hints>) -> Driver {
        self.hints = Some(hints);
        self
    }

    /// The replicas reached over a link (every one but this node).
    fn peers(&self) -> ReplicaSet {
        ReplicaSet::of(
            self.links
                .iter()
                .enumerate()
                .filter_map(|(i, link)| link.is_some().then_some(i)),
        )
    }

    fn n(&self) -> usize {
        self.links.len()
    }

    /// This node and every peer whose link is up.
    fn reachable(&self) -> ReplicaSet {
        ReplicaSet::of(
            self.links
                .iter()
                .enumerate()
                .filter_map(|(i, link)| match link {
                    None => Some(i),
                    Some(link) => link.is_up().then_some(i),
                }),
        )
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// set (`Some`) or del (`None`) of `key`, coordinated across the replicas.
    pub async fn write(
        &self,
        shard: &Shard,
        hlc: &Hlc,
        key: Vec<u8>,
        payload: impl Into<Payload>,
    ) -> WriteDone {
        let payload = payload.into();
        let (timeout, write_mode) = self.timeout_and_mode();
        let deadline = Instant::now() + timeout;
        let safe = write_mode == WriteMode::Safe
            || self.contended.borrow_mut().contains(&key, self.now_ms());
        let (mut op, first) = if safe {
            WriteOp::safe(self.n(), key, payload, self.reachable())
        } else {
            let version = hlc.now().await;
            WriteOp::fast(self.n(), key, payload, version, self.reachable())
        };
        let mut rounds = Rounds::new(self, shard, hlc, deadline);
        let done = rounds.run(&mut op, first).await;
        if op.saw_rejection() {
            self.contended.borrow_mut().note(op.key(), self.now_ms());
        }
        if let WriteDone::Ok { .. } | WriteDone::Indeterminate { .. } = done {
            let missing = op.missing();
            self.hand_off(missing, rounds.into_late(), || Handed {
                key: op.key().to_vec(),
                version: op.version(),
                value: op.value().map(<[u8]>::to_vec),
                meta: op.meta(),
            });
        }
        done
    }

    /// Whether every peer speaks CAS (as far as this core's links know).
    pub fn speaks_cas(&self) -> bool {
        self.links.iter().flatten().all(|link| link.speaks_cas())
    }

    /// A compare-and-set of `key` (DESIGN §10): `change` applies iff `expect` holds.
    pub async fn cas(
        &self,
        shard: &Shard,
        hlc: &Hlc,
        key: Vec<u8>,
        (expect, change): (Expect, Change),
    ) -> CasDone {
        let deadline = Instant::now() + self.timeout_and_mode().0;
        let ballot = hlc.now().await;
        let (mut op, first) =
            CasOp::start(self.n(), key, (expect, change), ballot, self.reachable());
        let mut rounds = Rounds::new(self, shard, hlc, deadline);
        let done = rounds.run(&mut op, first).await;
        if let CasDone::Ok { version } | CasDone::Indeterminate { version } = done {
            self.hand_off(op.missing(), rounds.into_late(), || {
                let (value, meta) = op.accepted_record();
                Handed {
                    key: op.key().to_vec(),
                    version,
                    value: value.map(<[u8]>::to_vec),
                    meta,
                }
            });
        }
        done
    }

    /// Hints the peers of `missing` that may lack the record `record` makes, once the answers
    /// still on their way have come (or the deadline passed); in a task of its own, so the
    /// client's answer never waits. Nothing is copied when no peer is missing.
    fn hand_off(&self, missing: ReplicaSet, late: LateAnswers, record: impl FnOnce() -> Handed) {
        let Some(hints) = &self.hints else {
            return;
        };
        let missing = missing.intersect(self.peers());
        if missing.is_empty() {
            return;
        }
        let record = record();
        let hints = hints.clone();
        monoio::spawn(async move {
            let missing = late.settle(missing).await;
            for peer in missing.iter() {
                hints.add(Hint {
                    peer,
                    key: record.key.clone(),
                    version: record.version,
                    value: record.value.clone(),
                    meta: record.meta,
                });
            }
        });
    }

    /// get of `key`: what a majority holds exactly. A read that a CAS's promise kept from
    /// ending (a proposer that never accepted leaves its promise behind, and repairs below it
    /// are refused) ends as a consensus read (DESIGN §10): a CAS whose compare always fails,
    /// which writes the state back at a fresh ballot if the majority disagrees.
    pub async fn read(&self, shard: &Shard, hlc: &Hlc, key: Vec<u8>) -> ReadDone {
        let deadline = Instant::now() + self.timeout_and_mode().0;
        let now = hlc.reading();
        let (mut op, first) = ReadOp::start_at(self.n(), key, self.reachable(), now);
        let done = Rounds::new(self, shard, hlc, deadline)
            .run(&mut op, first)
            .await;
        if done != ReadDone::NotMost || !op.met_promise() || !self.speaks_cas() {
            return done;
        }
        // Boxed: the common path's future stays as small as a read needs (futures are moved
        // whole when a request hops to its key's core).
        let key = op.key().to_vec();
        Box::pin(self.consensus_read(shard, hlc, (key, Expect::Never), deadline)).await
    }

    /// A consensus read of `key` (see [`Driver::consensus_read`]) on its own: what settles a
    /// promise left behind by a proposer that never accepted.
    pub async fn settle(&self, shard: &Shard, hlc: &Hlc, key: Vec<u8>) -> ReadDone {
        let deadline = Instant::now() + self.timeout_and_mode().0;
        Box::pin(self.consensus_read(shard, hlc, (key, Expect::Settle), deadline)).await
    }

    /// A CAS whose compare always fails (DESIGN §10): the state a majority holds at a fresh
    /// ballot, written back there if the promises disagree (`Expect::Never`) or always
    /// (`Expect::Settle`).
    async fn consensus_read(
        &self,
        shard: &Shard,
        hlc: &Hlc,
        (key, expect): (Vec<u8>, Expect),
        deadline: Instant,
    ) -> ReadDone {
        let ballot = hlc.now().await;
        let never = Change {
            value: None,
            ttl_ms: None,
        };
        let reachable = self.reachable();
        let (mut cas, first) = CasOp::start(self.n(), key, (expect, never), ballot, reachable);
        match Rounds::new(self, shard, hlc, deadline)
            .run(&mut cas, first)
            .await
        {
            CasDone::CompareFailed { current } => match current.value {
                Some(value) => ReadDone::Found {
                    version: current.version,
                    value,
                    expires: None,
                },
                None => ReadDone::NotFound {
                    version: current.version,
                },
            },
            _ => ReadDone::NotMost,
        }
    }
}

/// What an operation that ended Ok or Indeterminate hands to the peers that may lack it.
struct Handed {
    key: Vec<u8>,
    version: Version,
    value: Option<Vec<u8>>,
    meta: Meta,
}

/// How long to wait before the attempt after `attempts` (a CAS preempted by other
/// proposers): random up to a bound that doubles per attempt, so that duelling proposers
/// drift apart. `seed` differs per attempt and per proposer (the last ballot).
fn backoff(attempts: u32, seed: Version) -> Duration {
    if attempts == 0 {
        return Duration::ZERO;
    }
    let bound = limits::CAS_BACKOFF_BASE_MS << (attempts - 1).min(limits::CAS_ATTEMPTS_MAX);
    // xorshift64* of the seed: cheap, and enough to decorrelate proposers.
    let mut x = seed.hlc ^ seed.origin.rotate_left(17) ^ 0x9E37_79B9_7F4A_7C15;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    Duration::from_millis(x.wrapping_mul(0x2545_F491_4F6C_DD1D) % (bound + 1))
}

/// The requests of one operation in flight: peers' answers arrive over a channel, the local
/// replica's is applied in place (after the peers' requests are on their way).
struct Rounds<'a> {
    driver: &'a Driver,
    shard: &'a Shard,
    /// The local replica's clock: it refuses versions beyond its bound like any replica.
    hlc: &'a Hlc,
    deadline: Instant,
    local: Option<(u32, ReplicaRequest)>,
    answers: Option<(
        mpsc::UnboundedSender<Answer>,
        mpsc::UnboundedReceiver<Answer>,
    )>,
    /// The last round sent, and the peers of it whose answer has not been taken yet.
    last_round: u32,
    outstanding: ReplicaSet,
}

/// The answers of a finished write's last round still on their way (for hinted handoff).
struct LateAnswers {
    round: u32,
    outstanding: ReplicaSet,
    deadline: Instant,
    answers: Option<mpsc::UnboundedReceiver<Answer>>,
}

impl LateAnswers {
    /// `missing` less the peers that accept (or hold newer) in the answers still to come,
    /// collected until none of `missing` is outstanding or the deadline passes.
    async fn settle(mut self, mut missing: ReplicaSet) -> ReplicaSet {
        let Some(rx) = self.answers.as_mut() else {
            return missing;
        };
        let sleep = monoio::time::sleep_until(monoio::time::Instant::from_std(self.deadline));
        let mut sleep = std::pin::pin!(sleep);
        while !self.outstanding.intersect(missing).is_empty() {
            let next = std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx));
            let answer = monoio::select! {
                answer = next => answer,
                _ = &mut sleep => None,
            };
            let Some((from, round, reply)) = answer else {
                break;
            };
            if round != self.round {
                continue;
            }
            self.outstanding.remove(from);
            // Accepted: holds this version. Rejected: holds a newer one; a copy would be moot.
            if let Ok(ReplicaReply::Accepted | ReplicaReply::Rejected { .. }) = reply {
                missing.remove(from);
            }
        }
        missing
    }
}

impl<'a> Rounds<'a> {
    fn new(driver: &'a Driver, shard: &'a Shard, hlc: &'a Hlc, deadline: Instant) -> Rounds<'a> {
        Rounds {
            driver,
            shard,
            hlc,
            deadline,
            local: None,
            answers: None,
            last_round: 0,
            outstanding: ReplicaSet::EMPTY,
        }
    }

    /// The one loop every operation runs: carries out its actions (sends, fresh versions) and
    /// feeds back answers, "never sent" notices and the deadline until it is done. The clock
    /// observes every version the operation saw.
    async fn run<O: Operation>(&mut self, op: &mut O, first: Action<O::Done>) -> O::Done {
        let mut action = first;
        loop {
            let input = match action {
                Action::Done(done) => return done,
                Action::NeedVersion { above } => {
                    let pause = backoff(op.retries(), above);
                    if !pause.is_zero() {
                        let until = (Instant::now() + pause).min(self.deadline);
                        monoio::time::sleep_until(monoio::time::Instant::from_std(until)).await;
                    }
                    self.hlc.observe(above.hlc);
                    Input::Version(self.hlc.now().await)
                }
                Action::Send { round, to, request } => {
                    self.send(round, to, request);
                    action = Action::Wait;
                    continue;
                }
                Action::Wait => match self.next().await {
                    Some((from, round, Ok(reply))) => Input::Reply { from, round, reply },
                    Some((to, round, Err(Undelivered::NotSent))) => Input::NotSent { to, round },
                    // It may have arrived: nothing to learn, the deadline will tell.
                    Some((_, _, Err(Undelivered::Unknown))) => {
                        action = Action::Wait;
                        continue;
                    }
                    None => Input::Deadline,
                },
            };
            action = op.feed(input);
            self.hlc.observe(op.observed().hlc);
        }
    }

    /// What is still to come of the last round; the sender is dropped, so the receiver ends
    /// once every call in flight has answered.
    fn into_late(self) -> LateAnswers {
        LateAnswers {
            round: self.last_round,
            outstanding: self.outstanding,
            deadline: self.deadline,
            answers: self.answers.map(|(_, rx)| rx),
        }
    }

    fn send(&mut self, round: u32, to: ReplicaSet, request: ReplicaRequest) {
        if round != self.last_round {
            self.last_round = round;
            self.outstanding = ReplicaSet::EMPTY;
        }
        for replica in to.iter() {
            match &self.driver.links[replica] {
                None => self.local = Some((round, request.clone())),
                Some(link) => {
                    self.outstanding.insert(replica);
                    let (tx, _) = self.answers.get_or_insert_with(mpsc::unbounded);
                    let tx = tx.clone();
                    let call = link.call(request.clone(), self.deadline);
                    monoio::spawn(async move {
                        let _ = tx.unbounded_send((replica, round, call.await));
                    });
                }
            }
        }
    }

    /// The next answer, or `None` once the deadline has passed.
    async fn next(&mut self) -> Option<Answer> {
        if let Some((round, request)) = self.local.take() {
            let answer = match replica::apply(self.shard, &request, self.hlc).await {
                Ok(reply) => Ok(reply),
                // Busy or out of space: nothing was stored, as if the request never arrived.
                Err(StorageError::Busy { .. } | StorageError::NoSpace) => Err(Undelivered::NotSent),
                // Anything else may have happened after the write: it may be stored.
                Err(err) => {
                    tracing::error!(%err, "local replica failed");
                    Err(Undelivered::Unknown)
                }
            };
            return Some((self.driver.self_index, round, answer));
        }
        let (_, rx) = self.answers.as_mut()?;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let next = std::future::poll_fn(|cx| Pin::new(&mut *rx).poll_next(cx));
        let answer = monoio::select! {
            answer = next => answer,
            _ = monoio::time::sleep(remaining) => None,
        };
        if let Some((replica, round, _)) = &answer {
            if *round == self.last_round {
                self.outstanding.remove(*replica);
            }
        }
        answer
    }
}

#[cfg(test)]
mod tests;
