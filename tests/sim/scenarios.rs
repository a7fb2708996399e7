//! Scripted schedules, one per anomaly named in DESIGN §3/§4, through the crate's real
//! state machines and replica rules: each gives a linearizable history under the rules and a
//! history the checker rejects with the matching planted bug. They complement the random
//! simulation, where these exact interleavings are rare (its invariant checks catch the
//! bugs directly).

use super::history::{check, CasResult, Expect, KvOp, Recorder, Ret};
use mostdb::replication::coordinator::{
    self, Action, CasDone, CasOp, Change, Input, Operation, Payload, ReadDone, ReadOp, ReplicaSet,
    WriteDone, WriteOp,
};
use mostdb::replication::protocol::{ReplicaReply, ReplicaRequest};
use mostdb::replication::replica::{decide, stored_record, ClockBound};
use mostdb::storage::{Record, Version};

const N: usize = 3;
const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

fn v(hlc: u64, origin: u64) -> Version {
    Version { hlc, origin }
}

fn key() -> Vec<u8> {
    b"k0".to_vec()
}

fn value(x: u64) -> Option<Vec<u8>> {
    Some(x.to_be_bytes().to_vec())
}

/// Three replicas with a volatile and a durable state. An answer goes out only once the
/// replica's writes are durable, except a write's answer under `planted-early-ack`.
#[derive(Default)]
struct Replicas {
    volatile: [Option<Record>; N],
    durable: [Option<Record>; N],
    /// Answers waiting for the replica's next sync.
    held: [Vec<ReplicaReply>; N],
    /// Each replica's promise floor (set by a recovery).
    floor: [Version; N],
}

impl Replicas {
    /// Serves a request; the answer if it may go out now.
    fn serve(&mut self, r: usize, request: &ReplicaRequest) -> Option<ReplicaReply> {
        let unbounded = ClockBound {
            physical_ms: 0,
            max_skew_ms: u64::MAX,
            promise_floor: self.floor[r],
        };
        let decision = decide(self.volatile[r].as_ref(), request, unbounded);
        if decision.store {
            self.volatile[r] = stored_record(self.volatile[r].as_ref(), request);
        }
        let early = cfg!(feature = "planted-early-ack")
            && matches!(
                request,
                ReplicaRequest::Put { .. } | ReplicaRequest::Repair { .. }
            );
        if self.volatile[r] == self.durable[r] || early {
            return Some(decision.reply);
        }
        self.held[r].push(decision.reply);
        None
    }

    /// Serves a request and syncs at once if needed, so the answer goes out now.
    fn serve_now(&mut self, r: usize, request: &ReplicaRequest) -> ReplicaReply {
        match self.serve(r, request) {
            Some(reply) => reply,
            None => self.sync(r).pop().expect("held answer"),
        }
    }

    fn sync(&mut self, r: usize) -> Vec<ReplicaReply> {
        self.durable[r] = self.volatile[r].clone();
        std::mem::take(&mut self.held[r])
    }

    fn crash(&mut self, r: usize) {
        self.volatile[r] = self.durable[r].clone();
        self.held[r].clear();
    }
}

fn send(action: Action<WriteDone>) -> (u32, ReplicaRequest) {
    match action {
        Action::Send { round, request, .. } => (round, request),
        other => panic!("expected a send, got {other:?}"),
    }
}

/// Runs a read to its end; only the replicas in `answering` ever answer.
fn read(reps: &mut Replicas, answering: &[usize]) -> ReadDone {
    let (mut op, action) = ReadOp::start(N, key(), ReplicaSet::all(N));
    finish_read(&mut op, action, reps, answering)
}

/// Carries a read on from `action` until it ends (a send's later targets are dropped once
/// an answer brings a new send: they count as lost).
fn finish_read(
    op: &mut ReadOp,
    mut action: Action<ReadDone>,
    reps: &mut Replicas,
    answering: &[usize],
) -> ReadDone {
    for _ in 0..16 {
        match action {
            Action::Send { round, to, request } => {
                action = Action::Wait;
                for r in to.iter().filter(|r| answering.contains(r)) {
                    let reply = reps.serve_now(r, &request);
                    if let next @ (Action::Send { .. } | Action::Done(_)) =
                        op.on_reply(r, round, reply)
                    {
                        action = next;
                        break;
                    }
                }
            }
            Action::Done(done) => return done,
            Action::Wait | Action::NeedVersion { .. } => action = op.on_deadline(),
        }
    }
    panic!("the read did not end");
}

fn record_read(h: &mut Recorder, pid: usize, reps: &mut Replicas, answering: &[usize]) {
    let rec = h.call(pid, 0, KvOp::Get(None));
    let done = read(reps, answering);
    record_read_done(h, rec, done);
}

fn record_read_done(h: &mut Recorder, rec: usize, done: ReadDone) {
    match done {
        ReadDone::Found { value, .. } => {
            let bytes: [u8; 8] = value.try_into().expect("8-byte values");
            h.ok(rec, KvOp::Get(Some(u64::from_be_bytes(bytes))));
        }
        ReadDone::NotFound { .. } => h.ok(rec, KvOp::Get(None)),
        ReadDone::NotMost => h.end(rec, Ret::Failed),
    }
}

fn record_write(h: &mut Recorder, rec: usize, op: KvOp, done: &WriteDone) {
    match done {
        WriteDone::Ok { .. } => h.ok(rec, op),
        WriteDone::NotMost => h.end(rec, Ret::Failed),
        WriteDone::Indeterminate { .. } => h.end(rec, Ret::Indeterminate),
    }
}

/// Lenient repair: a read that began before write W completed fixes `m` on an older write X
/// that began *after* W completed (its node's clock lags), and a repair that meets W answers
/// Ok. The read returns X; a later read returns W.
pub fn lenient_repair() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    let r1 = h.call(0, 0, KvOp::Get(None));
    let (mut read1, action) = ReadOp::start(N, key(), ReplicaSet::all(N));
    let Action::Send {
        round,
        request: read_req,
        ..
    } = action
    else {
        return Err("the read sent nothing".into());
    };
    let early = reps.serve_now(B, &read_req);
    read1.on_reply(B, round, early);
    // W (value 1) reaches B and C and completes.
    let w = h.call(1, 0, KvOp::Set(1));
    let (mut write, action) = WriteOp::fast(
        N,
        key(),
        Payload::plain(value(1)),
        v(20, 2),
        ReplicaSet::all(N),
    );
    let (wr, put) = send(action);
    for r in [B, C] {
        let reply = reps.serve_now(r, &put);
        if let Action::Done(done) = write.on_reply(r, wr, reply) {
            record_write(&mut h, w, KvOp::Set(1), &done);
        }
    }
    // X (value 2) starts now, from a node whose clock lags: A accepts, B and C reject.
    let x = h.call(2, 0, KvOp::Set(2));
    let (mut write, action) = WriteOp::fast(
        N,
        key(),
        Payload::plain(value(2)),
        v(10, 1),
        ReplicaSet::all(N),
    );
    let (xr, put) = send(action);
    let mut outcome = Action::Wait;
    for r in [A, B, C] {
        let reply = reps.serve_now(r, &put);
        outcome = write.on_reply(r, xr, reply);
    }
    let Action::Done(done) = outcome else {
        return Err(format!("X did not end: {outcome:?}"));
    };
    record_write(&mut h, x, KvOp::Set(2), &done);
    // R1's READ reaches A only now: m = X, and B is asked to repair to X.
    let late = reps.serve_now(A, &read_req);
    let action = read1.on_reply(A, round, late);
    let done = finish_read(&mut read1, action, &mut reps, &[A, B, C]);
    record_read_done(&mut h, r1, done);
    record_read(&mut h, 3, &mut reps, &[A, B, C]);
    check(&h.recs, 1)
}

/// Re-versioning: X's PUT is still on its way to A and B when C's rejection (C holds an
/// unfinished Y) arrives. Reads see X, then Y, then — if X was retried under a version
/// above Y's — X again.
pub fn reversion() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    // Y (value 1) reaches C only: indeterminate.
    let y = h.call(0, 0, KvOp::Set(1));
    let (mut write, action) = WriteOp::fast(
        N,
        key(),
        Payload::plain(value(1)),
        v(20, 3),
        ReplicaSet::all(N),
    );
    let (yr, put) = send(action);
    let reply = reps.serve_now(C, &put);
    write.on_reply(C, yr, reply);
    let Action::Done(done) = write.on_deadline() else {
        return Err("Y did not end at its deadline".into());
    };
    record_write(&mut h, y, KvOp::Set(1), &done);
    // X (value 2) from a lagging clock: A and B store it, C's rejection is heard first.
    let x = h.call(1, 0, KvOp::Set(2));
    let (mut write, action) = WriteOp::fast(
        N,
        key(),
        Payload::plain(value(2)),
        v(10, 1),
        ReplicaSet::all(N),
    );
    let (xr, put) = send(action);
    let in_flight = [(A, reps.serve_now(A, &put)), (B, reps.serve_now(B, &put))];
    let reply = reps.serve_now(C, &put);
    let mut action = write.on_reply(C, xr, reply);
    record_read(&mut h, 2, &mut reps, &[A, B]);
    record_read(&mut h, 2, &mut reps, &[B, C]);
    if let Action::NeedVersion { .. } = action {
        // The retry, under a version above Y's, reaches everyone.
        let (r2, put2) = send(write.on_version(v(21, 1)));
        for r in [A, B, C] {
            let reply = reps.serve_now(r, &put2);
            if let next @ Action::Done(_) = write.on_reply(r, r2, reply) {
                action = next;
            }
        }
    }
    for (r, reply) in in_flight {
        if let next @ Action::Done(_) = write.on_reply(r, xr, reply) {
            action = next;
        }
    }
    let done = match action {
        Action::Done(done) => done,
        _ => match write.on_deadline() {
            Action::Done(done) => done,
            other => return Err(format!("X did not end: {other:?}")),
        },
    };
    record_write(&mut h, x, KvOp::Set(2), &done);
    record_read(&mut h, 2, &mut reps, &[A, B, C]);
    check(&h.recs, 1)
}

/// Early acknowledgement: A and B take X; A answers before its write is durable and then
/// crashes, C never got the PUT. A later read from A and C finds nothing.
pub fn early_ack() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    let x = h.call(0, 0, KvOp::Set(1));
    let (mut write, action) = WriteOp::fast(
        N,
        key(),
        Payload::plain(value(1)),
        v(10, 1),
        ReplicaSet::all(N),
    );
    let (xr, put) = send(action);
    let mut outcome = Action::Wait;
    for r in [A, B] {
        if let Some(reply) = reps.serve(r, &put) {
            outcome = write.on_reply(r, xr, reply);
        }
    }
    for reply in reps.sync(B) {
        outcome = write.on_reply(B, xr, reply);
    }
    reps.crash(A);
    if !matches!(outcome, Action::Done(_)) {
        outcome = write.on_deadline();
    }
    let Action::Done(done) = outcome else {
        return Err(format!("X did not end: {outcome:?}"));
    };
    record_write(&mut h, x, KvOp::Set(1), &done);
    record_read(&mut h, 1, &mut reps, &[A, C]);
    check(&h.recs, 1)
}

/// A create-if-absent CAS (value `new`) as the scripted schedules start it, with `ballot`.
fn create(h: &mut Recorder, pid: usize, new: u64, ballot: Version) -> (usize, CasOp, u32) {
    let rec = h.call(
        pid,
        0,
        KvOp::Cas {
            expect: Expect::Absent,
            new: Some(new),
            result: CasResult::Open,
        },
    );
    let change = Change {
        value: value(new),
        ttl_ms: None,
    };
    let compare = (coordinator::Expect::Absent, change);
    let (op, action) = CasOp::start(N, key(), compare, ballot, ReplicaSet::all(N));
    let Action::Send { round, .. } = action else {
        panic!("the CAS sent no PREPARE: {action:?}");
    };
    (rec, op, round)
}

/// Serves the CAS's current round (`request`) at `replicas`, in order; the last action.
fn cas_round(
    reps: &mut Replicas,
    op: &mut CasOp,
    (round, request): (u32, &ReplicaRequest),
    replicas: &[usize],
) -> Action<CasDone> {
    let mut last = Action::Wait;
    for &r in replicas {
        let reply = reps.serve_now(r, request);
        let action = op.feed(Input::Reply {
            from: r,
            round,
            reply,
        });
        if !matches!(action, Action::Wait) {
            last = action;
        }
    }
    last
}

fn record_cas(h: &mut Recorder, rec: usize, new: u64, done: &CasDone) {
    let answered = |result| KvOp::Cas {
        expect: Expect::Absent,
        new: Some(new),
        result,
    };
    match done {
        CasDone::Ok { .. } => h.ok(rec, answered(CasResult::Applied)),
        CasDone::CompareFailed { current } => {
            let seen = current
                .value
                .clone()
                .map(|b| u64::from_be_bytes(b.try_into().expect("8-byte values")));
            h.ok(rec, answered(CasResult::Failed(seen)))
        }
        CasDone::NotMost { .. } => h.end(rec, Ret::Failed),
        CasDone::Indeterminate { .. } => h.end(rec, Ret::Indeterminate),
    }
}

/// The schedule that breaks "read the version from a majority, compare, write above it":
/// two create-if-absent race, each reads "absent" from a majority before either writes. With
/// versioned CASPaxos the later PREPARE fences the earlier proposer's accept, which retries,
/// finds the winner's value and fails its compare: exactly one create applies.
pub fn racing_creates() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    let (rec_a, mut a, round_a) = create(&mut h, 0, 1, v(10, 1));
    let (rec_b, mut b, round_b) = create(&mut h, 1, 2, v(11, 2));
    let prepare = |ballot| ReplicaRequest::Prepare { key: key(), ballot };
    // Both read "absent" from every replica before either accepts.
    let accept_a = cas_round(&mut reps, &mut a, (round_a, &prepare(v(10, 1))), &[A, B, C]);
    let accept_b = cas_round(&mut reps, &mut b, (round_b, &prepare(v(11, 2))), &[A, B, C]);
    let Action::Send { round, request, .. } = accept_a else {
        return Err(format!("A did not accept after its promises: {accept_a:?}"));
    };
    // A's accept meets B's promise everywhere: stored nowhere, A asks for a fresh ballot.
    let retry = cas_round(&mut reps, &mut a, (round, &request), &[A, B, C]);
    let Action::Send { round, request, .. } = accept_b else {
        return Err(format!("B did not accept after its promises: {accept_b:?}"));
    };
    let Action::Done(done_b) = cas_round(&mut reps, &mut b, (round, &request), &[A, B, C]) else {
        return Err("B's accept did not end it".into());
    };
    record_cas(&mut h, rec_b, 2, &done_b);
    let Action::NeedVersion { above } = retry else {
        return Err(format!("A did not retry: {retry:?}"));
    };
    let again = v(above.hlc + 1, 1);
    let Action::Send { round, request, .. } = a.feed(Input::Version(again)) else {
        return Err("A's retry sent no PREPARE".into());
    };
    let done_a = match cas_round(&mut reps, &mut a, (round, &request), &[A, B, C]) {
        Action::Done(done) => done,
        other => return Err(format!("A's second attempt did not end: {other:?}")),
    };
    record_cas(&mut h, rec_a, 1, &done_a);
    let applied = [&done_a, &done_b]
        .iter()
        .filter(|d| matches!(d, CasDone::Ok { .. }))
        .count();
    if applied != 1 {
        return Err(format!("{applied} creates applied: {done_a:?}, {done_b:?}"));
    }
    record_read(&mut h, 2, &mut reps, &[A, B, C]);
    check(&h.recs, 1)
}

/// The schedule that breaks a replica-side "store only if you hold version X": the loser's
/// accept reaches one replica only (indeterminate), the winner then applies through the
/// others, and a read that meets the loser's copy must not repair it back in. Here versions
/// order them: the winner's ballot is above the loser's, so every read returns the winner's.
pub fn loser_not_repaired_back() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    let (rec_a, mut a, round_a) = create(&mut h, 0, 1, v(10, 1));
    let prepare = |ballot| ReplicaRequest::Prepare { key: key(), ballot };
    let Action::Send { round, request, .. } =
        cas_round(&mut reps, &mut a, (round_a, &prepare(v(10, 1))), &[A, B, C])
    else {
        return Err("A did not accept".into());
    };
    // A's accept reaches C only; A's deadline passes: indeterminate.
    cas_round(&mut reps, &mut a, (round, &request), &[C]);
    let Action::Done(done_a) = a.feed(Input::Deadline) else {
        return Err("A did not end at its deadline".into());
    };
    record_cas(&mut h, rec_a, 1, &done_a);
    // B prepares through A and B (C is slow), finds "absent", and applies.
    let (rec_b, mut b, round_b) = create(&mut h, 1, 2, v(11, 2));
    let Action::Send { round, request, .. } =
        cas_round(&mut reps, &mut b, (round_b, &prepare(v(11, 2))), &[A, B])
    else {
        return Err("B did not accept".into());
    };
    let Action::Done(done_b) = cas_round(&mut reps, &mut b, (round, &request), &[A, B]) else {
        return Err("B's accept did not end it".into());
    };
    record_cas(&mut h, rec_b, 2, &done_b);
    // Reads through every pair, C's copy of A's value included.
    for pair in [[B, C], [A, C], [A, B]] {
        record_read(&mut h, 2, &mut reps, &pair);
    }
    check(&h.recs, 1)
}

/// Recovery without the promise floor (DESIGN §10): CAS X (create, ballot 20) is promised by A
/// and B, and its accept is still on its way when A loses its state and recovers (there is
/// nothing to copy: a promise is not data). A blind write W from a slow clock (version 10) then
/// reaches A and C. Without the floor A takes W, so W completes; X's accept then lands on A
/// and B, over W, although X compared against the state before W. With the floor (the largest
/// HLC of A's copy sources, B's having observed 20) A refuses W, which cannot complete.
pub fn recovery_fence() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    let (rec_x, mut x, round) = create(&mut h, 0, 1, v(20, 1));
    let prepare = ReplicaRequest::Prepare {
        key: key(),
        ballot: v(20, 1),
    };
    let Action::Send {
        round: accept_round,
        request: accept,
        ..
    } = cas_round(&mut reps, &mut x, (round, &prepare), &[A, B])
    else {
        return Err("X did not accept after A's and B's promises".into());
    };
    // A loses everything and recovers from B and C: it copies no record (B holds only a
    // promise) and takes the largest HLC of its sources as its floor; B's clock observed X's
    // ballot.
    reps.volatile[A] = None;
    reps.durable[A] = None;
    reps.floor[A] = Version {
        hlc: 20,
        origin: u64::MAX,
    };
    // W, from a node whose clock lags far behind.
    let w = h.call(1, 0, KvOp::Set(2));
    let (mut write, action) = WriteOp::fast(
        N,
        key(),
        Payload::plain(value(2)),
        v(10, 3),
        ReplicaSet::all(N),
    );
    let (wr, put) = send(action);
    let mut done_w = None;
    for r in [A, C, B] {
        let reply = reps.serve_now(r, &put);
        if let Action::Done(done) = write.on_reply(r, wr, reply) {
            done_w.get_or_insert(done);
        }
    }
    let done_w = match done_w {
        Some(done) => done,
        None => match write.on_deadline() {
            Action::Done(done) => done,
            other => return Err(format!("W did not end: {other:?}")),
        },
    };
    record_write(&mut h, w, KvOp::Set(2), &done_w);
    // X's accept lands now, on A and B first (A refuses it too under the floor: the floor
    // fences every version of its HLC, X's ballot included, which only costs liveness).
    let done_x = match cas_round(&mut reps, &mut x, (accept_round, &accept), &[A, B, C]) {
        Action::Done(done) => done,
        _ => match x.feed(Input::Deadline) {
            Action::Done(done) => done,
            other => return Err(format!("X did not end: {other:?}")),
        },
    };
    record_cas(&mut h, rec_x, 1, &done_x);
    record_read(&mut h, 2, &mut reps, &[A, B, C]);
    check(&h.recs, 1)
}

/// Read-side expiry (DESIGN §10): X (value 1, 1 ms to live) completes; a reader whose clock
/// passed X's expiry reads "not found"; then a reader whose clock lags behind it reads. Unless
/// the first read wrote the expiry's tombstone into a majority, the second still finds X.
pub fn expiry_materialized() -> Result<(), String> {
    let mut reps = Replicas::default();
    let mut h = Recorder::default();
    let x = h.call(0, 0, KvOp::Set(1));
    let payload = Payload {
        value: value(1),
        ttl_ms: Some(1),
    };
    let (mut write, action) = WriteOp::fast(N, key(), payload, v(10, 1), ReplicaSet::all(N));
    let (xr, put) = send(action);
    let mut done_x = None;
    for r in [A, B, C] {
        let reply = reps.serve_now(r, &put);
        if let Action::Done(done) = write.on_reply(r, xr, reply) {
            done_x.get_or_insert(done);
        }
    }
    record_write(&mut h, x, KvOp::Set(1), &done_x.ok_or("X did not end")?);
    // The expiry, for the checker: a delete that may take effect at any time from now on.
    let expiry = h.call(9, 0, KvOp::Del);
    h.end(expiry, Ret::Indeterminate);
    let expires = 10 + (1 << 16);
    for (pid, now, answering) in [(1, expires + 1, [A, B]), (2, 20, [B, C])] {
        let rec = h.call(pid, 0, KvOp::Get(None));
        let (mut op, action) = ReadOp::start_at(N, key(), ReplicaSet::all(N), now);
        let done = finish_read(&mut op, action, &mut reps, &answering);
        record_read_done(&mut h, rec, done);
    }
    check(&h.recs, 1)
}
