//! Clients and the coordinator driver: each client issues get/set/del on a few keys, one at a
//! time, through a random live node; the node runs the crate's state machine (`WriteOp`,
//! `ReadOp`) exactly as the runtime would, with its own skewed HLC. Each outcome is checked
//! against what the simulator itself saw (I3, I4, I6) and recorded in the history.

use super::history::{CasResult, Expect, KvOp, Ret};
use super::world::{key_bytes, Check, Event, OpId, World};
use mostdb::replication::coordinator::{
    self, quorum, Action, CasDone, CasOp, Change, Input, Operation, Payload, ReadDone, ReadOp,
    ReplicaSet, WriteDone, WriteMode, WriteOp,
};
use mostdb::replication::protocol::{ReplicaReply, ReplicaRequest};
use mostdb::storage::record::EXPIRY_ORIGIN_BIT;
use mostdb::storage::{Meta, Version};
use std::collections::BTreeMap;

pub struct Client {
    pid: usize,
    remaining: u32,
}

/// An operation in flight: any kind, driven through the crate's `Operation` trait.
enum Machine {
    Write(WriteOp),
    Read(ReadOp),
    Cas(CasOp),
}

/// How an operation of any kind ended.
enum Outcome {
    Write(WriteDone),
    Read(ReadDone),
    Cas(CasDone),
}

impl Machine {
    fn feed(&mut self, input: Input) -> Action<Outcome> {
        match self {
            Machine::Write(m) => m.feed(input).map(Outcome::Write),
            Machine::Read(m) => m.feed(input).map(Outcome::Read),
            Machine::Cas(m) => m.feed(input).map(Outcome::Cas),
        }
    }

    fn observed(&self) -> Version {
        match self {
            Machine::Write(m) => m.observed(),
            Machine::Read(m) => m.observed(),
            Machine::Cas(m) => m.observed(),
        }
    }
}

pub struct Op {
    client: usize,
    node: usize,
    incarnation: u32,
    key: usize,
    rec: usize,
    machine: Machine,
    /// A PUT of this write was handed to the transport (it may be stored somewhere).
    put_sent: bool,
    /// The round of the last PUT, and the replicas that answered it (for I3).
    put_round: u32,
    votes: BTreeMap<usize, ReplicaReply>,
    /// Safe mode: the replicas that answered the version query.
    queried: std::collections::BTreeSet<usize>,
    /// CAS: the ballots whose accept (the new value) was sent (I12).
    accepts: Vec<Version>,
}

/// Everything on the client side of the world.
#[derive(Default)]
pub struct Clients {
    clients: Vec<Client>,
    ops: BTreeMap<OpId, Op>,
    next_op: OpId,
    next_pid: usize,
    next_value: u64,
    /// Writes with a time to live so far, per key (each adds an operation that stays open
    /// to the end of the history: a few per key keep the check fast).
    expiring: BTreeMap<usize, u32>,
}

/// Writes with a time to live one key gets at most in a seed.
const EXPIRING_WRITES_PER_KEY_MAX: u32 = 3;

impl Clients {
    pub fn new(world: &mut World) -> Clients {
        let mut c = Clients::default();
        for client in 0..world.cfg.clients {
            c.clients.push(Client {
                pid: client,
                remaining: world.cfg.ops_per_client,
            });
            let start = world.rng.range(0, 3);
            world.schedule(start, Event::ClientNext(client));
        }
        c.next_pid = world.cfg.clients;
        c
    }

    pub fn all_done(&self) -> bool {
        self.ops.is_empty() && self.clients.iter().all(|c| c.remaining == 0)
    }

    /// One event of the simulation.
    pub fn step(&mut self, w: &mut World, event: Event) -> Check {
        match event {
            Event::ClientNext(client) => self.start_op(w, client),
            Event::Request {
                to,
                from,
                op,
                round,
                request,
            } => w.on_request(to, from, op, round, request),
            Event::Reply {
                to,
                from,
                op,
                round,
                reply,
            } => self.on_reply(w, to, from, op, round, reply),
            Event::Deadline(op) => self.feed(w, op, Input::Deadline),
            Event::Version(op) => self.on_version(w, op),
            Event::Sync(node) => w.on_sync(node),
            Event::Crash(node) => {
                w.on_crash(node)?;
                self.abort_ops_on(w, node);
                Ok(())
            }
            Event::Restart(node) => {
                w.on_restart(node);
                Ok(())
            }
            Event::AntiEntropy(node) => {
                w.on_anti_entropy(node);
                Ok(())
            }
            Event::ClockJump(node) => {
                w.on_clock_jump(node);
                Ok(())
            }
            Event::Cut => {
                w.on_cut();
                Ok(())
            }
            Event::Amnesia => {
                if let Some(node) = w.on_amnesia() {
                    self.abort_ops_on(w, node);
                }
                Ok(())
            }
            Event::Recover { node, incarnation } => w.on_recover(node, incarnation),
            Event::FarJump { node, ahead } => {
                w.on_far_jump(node, ahead);
                Ok(())
            }
            Event::Forge => {
                w.on_forge();
                Ok(())
            }
        }
    }

    fn start_op(&mut self, w: &mut World, client: usize) -> Check {
        if self.clients[client].remaining == 0 {
            return Ok(());
        }
        let up: Vec<usize> = (0..w.cfg.nodes).filter(|&n| w.nodes[n].up).collect();
        if up.is_empty() {
            w.schedule(5, Event::ClientNext(client));
            return Ok(());
        }
        self.clients[client].remaining -= 1;
        let node = w.rng.pick(&up);
        let key = w.rng.below(w.cfg.keys as u64) as usize;
        if w.nodes[node].recovering {
            self.refuse(w, client, node, key);
            return Ok(());
        }
        let reachable = self.reachable(w, node);
        let id = self.next_op;
        self.next_op += 1;
        let pid = self.clients[client].pid;
        let n = w.cfg.nodes;
        let roll = w.rng.below(100);
        let (machine, action, rec) = if w.rng.chance(w.cfg.cas_permille) {
            let (expect, new) = self.draw_cas(w);
            let rec = w.history.call(
                pid,
                key,
                KvOp::Cas {
                    expect,
                    new,
                    result: CasResult::Open,
                },
            );
            let origin = w.nodes[node].origin;
            let ballot = w.nodes[node].issue(w.now, origin);
            issue(w, ballot, id)?;
            let ttl_ms = self.draw_ttl(w, key, new);
            let change = Change {
                value: new.map(|v| v.to_be_bytes().to_vec()),
                ttl_ms,
            };
            let compare = (crate_expect(expect), change);
            let (m, a) = CasOp::start(n, key_bytes(key), compare, ballot, reachable);
            (Machine::Cas(m), a.map(Outcome::Cas), rec)
        } else if roll < 40 {
            let rec = w.history.call(pid, key, KvOp::Get(None));
            let now = w.nodes[node].reading(w.now);
            let (m, a) = ReadOp::start_at(n, key_bytes(key), reachable, now);
            (Machine::Read(m), a.map(Outcome::Read), rec)
        } else {
            let (value, op, ttl_ms) = if roll < 85 {
                self.next_value += 1;
                let v = self.next_value;
                let ttl_ms = self.draw_ttl(w, key, Some(v));
                (Some(v.to_be_bytes().to_vec()), KvOp::Set(v), ttl_ms)
            } else {
                (None, KvOp::Del, None)
            };
            let rec = w.history.call(pid, key, op);
            let payload = Payload { value, ttl_ms };
            let phys = w.nodes[node].phys_ms(w.now);
            let contended = w.nodes[node].contended.contains(&key_bytes(key), phys);
            let (m, a) = if contended || w.rng.chance(w.cfg.safe_permille) {
                w.stats.safe_writes += 1;
                WriteOp::safe(n, key_bytes(key), payload, reachable)
            } else {
                let origin = w.nodes[node].origin;
                let version = w.nodes[node].issue(w.now, origin);
                issue(w, version, id)?;
                WriteOp::fast(n, key_bytes(key), payload, version, reachable)
            };
            (Machine::Write(m), a.map(Outcome::Write), rec)
        };
        w.history.recs[rec].note = format!("n{node}");
        let incarnation = w.nodes[node].incarnation;
        self.ops.insert(
            id,
            Op {
                client,
                node,
                incarnation,
                key,
                rec,
                machine,
                put_sent: false,
                put_round: 0,
                votes: BTreeMap::new(),
                queried: Default::default(),
                accepts: Vec::new(),
            },
        );
        w.schedule(w.cfg.deadline_ms, Event::Deadline(id));
        self.drive(w, id, action)
    }

    /// A recovering node's coordinator refuses the operation: NotMost, nothing applied.
    fn refuse(&mut self, w: &mut World, client: usize, node: usize, key: usize) {
        let pid = self.clients[client].pid;
        let read = w.rng.chance(400);
        let op = if read {
            w.stats.reads_failed += 1;
            KvOp::Get(None)
        } else {
            w.stats.not_most += 1;
            KvOp::Del
        };
        w.stats.refused += 1;
        let rec = w.history.call(pid, key, op);
        w.history.recs[rec].note = format!("n{node} refused: recovering");
        w.history.end(rec, Ret::Failed);
        self.next(w, client);
    }

    /// The replicas the coordinator on `node` believes reachable: itself, and the others that
    /// are up, minus a few it wrongly believes down, plus down ones it has not noticed yet.
    fn reachable(&self, w: &mut World, node: usize) -> ReplicaSet {
        let mut set = ReplicaSet::EMPTY;
        for r in 0..w.cfg.nodes {
            let believed_up = if w.nodes[r].up {
                !w.rng.chance(w.cfg.unreachable_permille)
            } else {
                w.rng.chance(300)
            };
            if r == node || believed_up {
                set.insert(r);
            }
        }
        set
    }

    fn on_reply(
        &mut self,
        w: &mut World,
        to: usize,
        from: usize,
        id: OpId,
        round: u32,
        reply: ReplicaReply,
    ) -> Check {
        let Some(op) = self.ops.get_mut(&id) else {
            return Ok(()); // the operation is over
        };
        if op.node != to || !w.nodes[to].up || w.nodes[to].incarnation != op.incarnation {
            return Ok(());
        }
        if op.put_sent && round == op.put_round {
            op.votes.entry(from).or_insert_with(|| reply.clone());
        }
        if matches!(reply, ReplicaReply::Read { .. }) && !op.put_sent {
            op.queried.insert(from);
        }
        let stray = w.rng.chance(w.cfg.stray_permille).then(|| {
            let liar = w.rng.below(w.cfg.nodes as u64) as usize;
            (liar, stray_reply(&op.machine))
        });
        self.feed(w, id, Input::Reply { from, round, reply })?;
        if let Some((liar, reply)) = stray {
            w.stats.strays += 1;
            // I7: foreign answers (COPY acks, answers of another kind) must never count.
            let input = Input::Reply {
                from: liar,
                round,
                reply,
            };
            self.feed(w, id, input)?;
        }
        Ok(())
    }

    fn on_version(&mut self, w: &mut World, id: OpId) -> Check {
        let Some(op) = self.ops.get(&id) else {
            return Ok(());
        };
        let node = op.node;
        let origin = w.nodes[node].origin;
        let version = w.nodes[node].issue(w.now, origin);
        issue(w, version, id)?;
        w.stats.versions_asked += 1;
        self.feed(w, id, Input::Version(version))
    }

    /// Feeds one input to an operation's machine and carries out what it asks.
    fn feed(&mut self, w: &mut World, id: OpId, input: Input) -> Check {
        let Some(op) = self.ops.get_mut(&id) else {
            return Ok(());
        };
        let action = op.machine.feed(input);
        self.drive(w, id, action)
    }

    /// Carries out a machine's actions until it waits: sends (reporting the ones never
    /// sent), fresh versions (asynchronously, as the real clock may), outcomes.
    fn drive(&mut self, w: &mut World, id: OpId, first: Action<Outcome>) -> Check {
        let mut todo = vec![first];
        while let Some(step) = todo.pop() {
            let Some(op) = self.ops.get_mut(&id) else {
                return Ok(());
            };
            let node = op.node;
            w.observe(node, op.machine.observed())?;
            match step {
                Action::Send { round, to, request } => {
                    if let ReplicaRequest::Put { version, .. } = &request {
                        op.put_sent = true;
                        op.put_round = round;
                        op.votes.clear();
                        if matches!(&op.machine, Machine::Cas(m) if m.accepting()) {
                            op.accepts.push(*version);
                        }
                    }
                    if matches!(request, ReplicaRequest::Repair { .. }) {
                        w.stats.repairs += to.len() as u64;
                    }
                    for r in to.iter() {
                        if !w.send_request(node, r, Some(id), round, request.clone()) {
                            let op = self.ops.get_mut(&id).expect("op is live");
                            todo.push(op.machine.feed(Input::NotSent { to: r, round }));
                        }
                    }
                }
                Action::NeedVersion { above } => {
                    w.observe(node, above)?;
                    let after = w.rng.range(0, 2);
                    w.schedule(after, Event::Version(id));
                }
                Action::Done(Outcome::Write(done)) => return self.write_done(w, id, done),
                Action::Done(Outcome::Read(done)) => return self.read_done(w, id, done),
                Action::Done(Outcome::Cas(done)) => return self.cas_done(w, id, done),
                Action::Wait => {}
            }
        }
        Ok(())
    }

    fn write_done(&mut self, w: &mut World, id: OpId, done: WriteDone) -> Check {
        let op = self.ops.remove(&id).expect("op is live");
        let Machine::Write(m) = &op.machine else {
            return Err("a read ended as a write".into());
        };
        if m.saw_rejection() {
            let phys = w.nodes[op.node].phys_ms(w.now);
            w.nodes[op.node].contended.note(&key_bytes(op.key), phys);
        }
        let note = format!(" {:?} {:?}", m.mode(), done);
        w.history.recs[op.rec].note.push_str(&note);
        match done {
            WriteDone::Ok { version } => {
                check_write_votes(w, &op, m, version)?;
                w.acknowledge(op.key, version);
                w.stats.ok += 1;
                let written = w.history.recs[op.rec].op.clone();
                w.history.ok(op.rec, written);
            }
            WriteDone::NotMost => {
                check_definite_failure(w, &op, id)?;
                w.stats.not_most += 1;
                w.history.end(op.rec, Ret::Failed);
            }
            WriteDone::Indeterminate { version } => {
                w.stats.indeterminate += 1;
                w.history.end(op.rec, Ret::Indeterminate);
                self.send_hints(w, &op, m, version);
                self.renew_pid(op.client);
            }
        }
        self.next(w, op.client);
        Ok(())
    }

    fn read_done(&mut self, w: &mut World, id: OpId, done: ReadDone) -> Check {
        let op = self.ops.remove(&id).expect("op is live");
        w.history.recs[op.rec].note.push_str(&format!(" {done:?}"));
        let (version, value) = match done {
            ReadDone::NotMost => {
                w.stats.reads_failed += 1;
                w.history.end(op.rec, Ret::Failed);
                self.next(w, op.client);
                return Ok(());
            }
            ReadDone::NotFound { version } => {
                if version.origin & EXPIRY_ORIGIN_BIT != 0 && version != Version::ZERO {
                    w.stats.reads_expired += 1;
                }
                (version, None)
            }
            ReadDone::Found { version, value, .. } => {
                let bytes: [u8; 8] = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("read a value no client wrote: {value:?}"))?;
                (version, Some(u64::from_be_bytes(bytes)))
            }
        };
        // I6: a read returns `m` only once Q replicas held exactly `m`.
        let holders = if version == Version::ZERO {
            w.cfg.nodes
        } else {
            w.ever_held.get(&(op.key, version)).map_or(0, |s| s.len())
        };
        if holders < quorum(w.cfg.nodes) {
            w.violated(format!(
                "I6: op {id} read {version:?} of k{}, held by only {holders} replicas ever",
                op.key
            ))?;
        }
        w.acknowledge(op.key, version);
        w.stats.reads_ok += 1;
        w.history.ok(op.rec, KvOp::Get(value));
        self.next(w, op.client);
        Ok(())
    }

    /// A CAS's expectation and new value: absent, present, or a value the client may have
    /// seen; a fresh unique value, or (now and then) a delete.
    /// A time to live for a write of `value` (sometimes), and its expiry in the history: a
    /// delete of exactly that value, which may take effect at any time after the write is
    /// called (an indeterminate CAS expecting the value, under a process of its own), or never
    /// if the value is replaced first.
    fn draw_ttl(&mut self, w: &mut World, key: usize, value: Option<u64>) -> Option<u64> {
        let v = value?;
        let expiring = self.expiring.entry(key).or_default();
        if *expiring >= EXPIRING_WRITES_PER_KEY_MAX || !w.rng.chance(w.cfg.ttl_permille) {
            return None;
        }
        *expiring += 1;
        let expiry = KvOp::Cas {
            expect: Expect::Value(v),
            new: None,
            result: CasResult::Open,
        };
        let rec = w.history.call(self.next_pid, key, expiry);
        self.next_pid += 1;
        w.history.end(rec, Ret::Indeterminate);
        w.history.recs[rec].note = format!("expiry of {v}");
        w.stats.expiring_writes += 1;
        Some(w.rng.range(1, 40))
    }

    fn draw_cas(&mut self, w: &mut World) -> (Expect, Option<u64>) {
        let expect = match w.rng.below(10) {
            0..=2 => Expect::Absent,
            3 | 4 => Expect::Present,
            _ if self.next_value == 0 => Expect::Absent,
            // Recent values are likelier to be current.
            _ => {
                let back = w.rng.below(self.next_value.min(4));
                Expect::Value(self.next_value - back)
            }
        };
        let new = if w.rng.chance(150) {
            None
        } else {
            self.next_value += 1;
            Some(self.next_value)
        };
        (expect, new)
    }

    fn cas_done(&mut self, w: &mut World, id: OpId, done: CasDone) -> Check {
        let op = self.ops.remove(&id).expect("op is live");
        w.history.recs[op.rec].note.push_str(&format!(" {done:?}"));
        let KvOp::Cas { expect, new, .. } = w.history.recs[op.rec].op else {
            return Err("a CAS recorded as another kind".into());
        };
        let answered = |result| KvOp::Cas {
            expect,
            new,
            result,
        };
        match done {
            CasDone::Ok { version } => {
                // I10: Q accepted the change at its ballot.
                let accepts = op
                    .votes
                    .values()
                    .filter(|r| **r == ReplicaReply::Accepted)
                    .count();
                if accepts < quorum(w.cfg.nodes) || op.accepts.last() != Some(&version) {
                    w.violated(format!("I10: CAS Ok at {version:?} with {accepts} accepts"))?;
                }
                w.acknowledge(op.key, version);
                w.stats.cas_applied += 1;
                w.history.ok(op.rec, answered(CasResult::Applied));
            }
            CasDone::CompareFailed { current } => {
                w.acknowledge(op.key, current.version);
                w.stats.cas_compare_failed += 1;
                let seen = decoded(&current.value)?;
                w.history.ok(op.rec, answered(CasResult::Failed(seen)));
            }
            CasDone::NotMost { .. } => {
                // I12: no PUT of the change may ever be stored.
                for ballot in &op.accepts {
                    if let Some(holders) = w.ever_held.get(&(op.key, *ballot)) {
                        let message = format!(
                            "I12: CAS op {id} failed definitely but {holders:?} stored {ballot:?}"
                        );
                        w.violated(message)?;
                    }
                    w.failed_versions.insert(*ballot);
                }
                w.stats.cas_failed += 1;
                w.history.end(op.rec, Ret::Failed);
            }
            CasDone::Indeterminate { version } => {
                w.stats.cas_indeterminate += 1;
                w.history.end(op.rec, Ret::Indeterminate);
                if let Machine::Cas(m) = &op.machine {
                    self.hint_cas(w, &op, m, version);
                }
                self.renew_pid(op.client);
            }
        }
        self.next(w, op.client);
        Ok(())
    }

    /// Hinted handoff of an indeterminate CAS, sometimes: its change, at its ballot.
    fn hint_cas(&mut self, w: &mut World, op: &Op, m: &CasOp, ballot: Version) {
        if !w.rng.chance(500) {
            return;
        }
        let (value, meta) = m.accepted_record();
        for r in m.missing().iter() {
            let request = ReplicaRequest::Copy {
                key: key_bytes(op.key),
                version: ballot,
                value: value.map(<[u8]>::to_vec),
                meta,
            };
            w.stats.hints += 1;
            w.send_request(op.node, r, None, 0, request);
        }
    }

    /// Hinted handoff, sometimes: re-send the indeterminate PUT under its *same* version.
    fn send_hints(&mut self, w: &mut World, op: &Op, m: &WriteOp, version: Version) {
        if !w.rng.chance(500) {
            return;
        }
        let value = match &w.history.recs[op.rec].op {
            KvOp::Set(v) => Some(v.to_be_bytes().to_vec()),
            _ => None,
        };
        for r in m.missing().iter() {
            let request = ReplicaRequest::Put {
                key: key_bytes(op.key),
                version,
                value: value.clone(),
                meta: Meta::BLIND,
            };
            w.stats.hints += 1;
            w.send_request(op.node, r, None, 0, request);
        }
    }

    /// A crashed node's coordinators vanish: their clients see the connection drop.
    fn abort_ops_on(&mut self, w: &mut World, node: usize) {
        let gone: Vec<OpId> = self
            .ops
            .iter()
            .filter(|(_, op)| op.node == node)
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            let op = self.ops.remove(&id).expect("listed");
            w.stats.aborted += 1;
            w.history.recs[op.rec].note.push_str(" coordinator crashed");
            // A CAS that only wrote the current value back changed nothing.
            let changed = match op.machine {
                Machine::Cas(_) => !op.accepts.is_empty(),
                _ => op.put_sent,
            };
            if changed {
                w.history.end(op.rec, Ret::Indeterminate);
                self.renew_pid(op.client);
            } else {
                w.history.end(op.rec, Ret::Failed);
            }
            self.next(w, op.client);
        }
    }

    fn renew_pid(&mut self, client: usize) {
        self.clients[client].pid = self.next_pid;
        self.next_pid += 1;
    }

    fn next(&mut self, w: &mut World, client: usize) {
        let think = w.rng.range(0, 3);
        w.schedule(think, Event::ClientNext(client));
    }
}

/// I1: a version is issued at most once, ever.
fn issue(w: &mut World, version: Version, op: OpId) -> Check {
    if let Some(other) = w.issued.insert(version, op) {
        return Err(format!(
            "I1: {version:?} issued twice (ops {other} and {op})"
        ));
    }
    Ok(())
}

/// I3, recounted from the answers the simulator delivered: Q accepts (fast), or Q "holds ≥ v"
/// after a version query answered by Q (safe).
fn check_write_votes(w: &mut World, op: &Op, m: &WriteOp, version: Version) -> Check {
    let q = quorum(w.cfg.nodes);
    let votes = op
        .votes
        .values()
        .filter(|reply| match (m.mode(), reply) {
            (_, ReplicaReply::Accepted) => true,
            // I13: a rejection is "holds ≥ v" only for a newer blind accepted version.
            (
                WriteMode::Safe,
                ReplicaReply::Rejected {
                    held,
                    accepted,
                    accepted_cas,
                },
            ) => *held > version && *accepted > version && !*accepted_cas,
            _ => false,
        })
        .count();
    let queried = m.mode() == WriteMode::Fast || op.queried.len() >= q;
    if votes < q || !queried || m.version() != version {
        return w.violated(format!(
            "I3: Ok for {version:?} with {votes} votes, {} query answers",
            op.queried.len()
        ));
    }
    Ok(())
}

/// I4: a definite failure only when no replica holds (or, checked at every later store, can
/// ever store) a version of this write.
fn check_definite_failure(w: &mut World, op: &Op, id: OpId) -> Check {
    let versions: Vec<Version> = w
        .issued
        .iter()
        .filter(|(_, o)| **o == id)
        .map(|(v, _)| *v)
        .collect();
    for version in versions {
        if let Some(holders) = w.ever_held.get(&(op.key, version)) {
            let message =
                format!("I4: op {id} failed definitely but {holders:?} stored {version:?}");
            w.violated(message)?;
        }
        w.failed_versions.insert(version);
    }
    Ok(())
}

/// An answer that must never count for this machine (I7).
fn stray_reply(machine: &Machine) -> ReplicaReply {
    match machine {
        Machine::Write(_) | Machine::Cas(_) => ReplicaReply::CopyAck,
        Machine::Read(_) => ReplicaReply::Accepted,
    }
}

/// The crate's expectation for the history's.
fn crate_expect(expect: Expect) -> coordinator::Expect {
    match expect {
        Expect::Absent => coordinator::Expect::Absent,
        Expect::Present => coordinator::Expect::Present,
        Expect::Value(v) => coordinator::Expect::Value(v.to_be_bytes().to_vec()),
    }
}

/// The value a CAS met, as the history shows it.
fn decoded(value: &Option<Vec<u8>>) -> Result<Option<u64>, String> {
    value
        .as_deref()
        .map(|b| {
            <[u8; 8]>::try_from(b)
                .map(u64::from_be_bytes)
                .map_err(|_| format!("a CAS met a value no client wrote: {b:?}"))
        })
        .transpose()
}
