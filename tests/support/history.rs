//! Recorded client histories and their check: one register per key, checked for
//! linearizability with todc-utils' Wing–Gong–Lowe checker under a time budget per key, plus
//! the checks that need no search (a definitely failed write is never observed).
//!
//! The register (DESIGN §10 for the CAS): set and del write; a get must find the state it
//! returned; a CAS that applied must find its expectation true and sets its new state; a CAS
//! whose compare failed must find exactly the state it reported, with the expectation false,
//! and changes nothing (an observation, like a read); an indeterminate CAS applies where its
//! expectation holds and is a no-op elsewhere.
//!
//! How a history is shaped for the checker (STACK.md §5.3): values are interned per key (the
//! checker clones and hashes its state at every step); definite failures and failed reads are
//! left out (nothing was applied, nothing was observed); process ids are renumbered densely
//! per key. Every written value is unique, so a value names its one write, and what the
//! history says of an indeterminate write (a set, or a CAS with a new value) decides its
//! shape ([`Fate`]):
//!
//! * **proven**: an acknowledged op needed its value as the state — a get returned it, a
//!   failed compare reported it, or an applied CAS expected it. The write applied before the
//!   earliest such op's return, so it is closed there (as applied);
//! * **referenced**: only an indeterminate CAS expected its value, or a CAS expecting
//!   "present" (applied or indeterminate) may have found it: it stays open to the end;
//! * **unseen**: anything else. It is pruned: it can always be placed last, and dropping it
//!   cannot change the verdict (see [`fate`] for the argument).
//!
//! Indeterminate deletes (del, or a CAS to delete) stay open to the end: their state, absence,
//! names no write.
//!
//! Must not import the `mostdb` library.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use todc_utils::{Action, History, Specification, WGLChecker};

/// How often (in `apply` calls) the search looks at the clock.
const BUDGET_CHECK_EVERY: u32 = 256;
/// Ops of one key printed by [`describe`] (the rest are counted).
pub const DESCRIBE_OPS_MAX: usize = 400;
/// [`check_all`]: failing keys re-checked without their final read, to tell a lost write
/// from the rest.
pub const FAILED_KEYS_CLASSIFIED_MAX: usize = 10;
/// [`check_all`]: failing keys listed one by one (the rest are counted).
pub const FAILED_KEYS_LISTED_MAX: usize = 50;
/// [`check_all`]: failing keys whose histories are printed.
pub const FAILED_KEYS_SHOWN_MAX: usize = 3;

/// One client request on one key. For a get, the value is the one read (`None`: NotFound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    Set(String),
    Del,
    Get(Option<String>),
    /// `POST /mostdb/cas`: to `new` (`None`: delete) if `expect` holds; `answer` is filled in
    /// from a definite answer (as a get's value is).
    Cas {
        expect: Expect,
        new: Option<String>,
        answer: CasAnswer,
    },
}

/// What a CAS expects of the key's state. (`{"version":…}` is left out of the checked
/// workload: the register holds values, not versions.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Absent,
    Present,
    Value(String),
}

/// What a CAS answered definitely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CasAnswer {
    /// No definite answer: not sent yet, failed, or indeterminate.
    Open,
    Applied,
    /// `CompareFailed` with the state a majority holds (`None`: absent).
    CompareFailed(Option<String>),
}

impl KvOp {
    /// The value this op writes, if any (each is unique in a workload).
    pub fn written(&self) -> Option<&str> {
        match self {
            KvOp::Set(v) | KvOp::Cas { new: Some(v), .. } => Some(v),
            _ => None,
        }
    }

    /// The value this op, acknowledged, found as the key's state: a get's value, the value a
    /// failed compare reported, the value an applied CAS expected.
    pub fn observed(&self) -> Option<&str> {
        match self {
            KvOp::Get(Some(v))
            | KvOp::Cas {
                answer: CasAnswer::CompareFailed(Some(v)),
                ..
            }
            | KvOp::Cas {
                expect: Expect::Value(v),
                answer: CasAnswer::Applied,
                ..
            } => Some(v),
            _ => None,
        }
    }

    pub fn is_write(&self) -> bool {
        !matches!(self, KvOp::Get(_))
    }
}

/// How a request ended, as the client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged (for a get: answered with a value or NotFound).
    Ok,
    /// Definitely not applied (NotMost without `indeterminate`, never sent, not ready, busy).
    Failed,
    /// May or may not take effect, now or later (`indeterminate`, timeout, connection lost).
    Indeterminate,
}

/// One request as recorded: `call_ns`/`ret_ns` on one monotonic clock shared by every client
/// (`ret_ns` of an indeterminate op is when the client gave up, which bounds nothing).
/// `pid` is unique per client and replaced after every indeterminate op of that client, so a
/// process never has two ops in flight.
#[derive(Clone, Debug)]
pub struct Rec {
    pub pid: u64,
    pub key: String,
    pub op: KvOp,
    pub outcome: Outcome,
    pub call_ns: u64,
    pub ret_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    NotLinearizable,
    /// The search ran out of its time budget: neither pass nor fail.
    Unknown,
}

/// The verdict on one key's history.
#[derive(Clone, Debug)]
pub struct KeyResult {
    pub key: String,
    pub verdict: Verdict,
    /// Ops handed to the checker (after pruning).
    pub checked_ops: usize,
    pub elapsed: Duration,
}

/// The register the checker linearizes against, on interned values (`None`: absent).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RegOp {
    Write(u32),
    Delete,
    Read(Option<u32>),
    /// A CAS that applied: valid only where `expect` holds.
    CasApplied {
        expect: RegExpect,
        new: Option<u32>,
    },
    /// A failed compare: valid only in state `found`, where `expect` must not hold.
    CasFailed {
        expect: RegExpect,
        found: Option<u32>,
    },
    /// An indeterminate CAS, open: applies where `expect` holds, a no-op elsewhere (placed
    /// last, it stands for "never applied").
    CasMaybe {
        expect: RegExpect,
        new: Option<u32>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RegExpect {
    Absent,
    Present,
    Value(u32),
}

impl RegExpect {
    fn holds(self, state: Option<u32>) -> bool {
        match self {
            RegExpect::Absent => state.is_none(),
            RegExpect::Present => state.is_some(),
            RegExpect::Value(v) => state == Some(v),
        }
    }
}

struct Register;

thread_local! {
    /// (deadline, `apply` calls since the last clock reading, whether the deadline passed).
    static BUDGET: Cell<(Option<Instant>, u32, bool)> = const { Cell::new((None, 0, false)) };
}

/// Whether the running check has passed its deadline; reads the clock every
/// [`BUDGET_CHECK_EVERY`] calls. Once it has, every op is refused, which makes the search
/// unwind and return at once (its "false" then means "unknown").
fn over_budget() -> bool {
    BUDGET.with(|b| {
        let (deadline, calls, expired) = b.get();
        if expired {
            return true;
        }
        if calls < BUDGET_CHECK_EVERY {
            b.set((deadline, calls + 1, false));
            return false;
        }
        let now_expired = deadline.is_some_and(|d| Instant::now() >= d);
        b.set((deadline, 0, now_expired));
        now_expired
    })
}

impl Specification for Register {
    type State = Option<u32>;
    type Operation = RegOp;

    fn init() -> Self::State {
        None
    }

    fn apply(op: &RegOp, state: &Option<u32>) -> (bool, Option<u32>) {
        if over_budget() {
            return (false, *state);
        }
        match *op {
            RegOp::Write(v) => (true, Some(v)),
            RegOp::Delete => (true, None),
            RegOp::Read(r) => (r == *state, *state),
            RegOp::CasApplied { expect, new } => (expect.holds(*state), new),
            RegOp::CasFailed { expect, found } => (found == *state && !expect.holds(found), *state),
            RegOp::CasMaybe { expect, new } if expect.holds(*state) => (true, new),
            RegOp::CasMaybe { .. } => (true, *state),
        }
    }
}

/// Checks every key's history (keys in order), each within `budget`.
pub fn check(recs: &[Rec], budget: Duration) -> Vec<KeyResult> {
    by_key(recs)
        .into_iter()
        .map(|(key, ops)| check_key(key, &ops, budget))
        .collect()
}

/// Like [`check`], with a budget for all keys together as well: once `total` is spent, the
/// keys left are not searched and come out as [`Verdict::Unknown`].
pub fn check_within(recs: &[Rec], per_key: Duration, total: Duration) -> Vec<KeyResult> {
    let start = Instant::now();
    by_key(recs)
        .into_iter()
        .map(|(key, ops)| {
            let left = total.saturating_sub(start.elapsed());
            if left.is_zero() {
                return KeyResult {
                    key: key.to_string(),
                    verdict: Verdict::Unknown,
                    checked_ops: 0,
                    elapsed: Duration::ZERO,
                };
            }
            check_key(key, &ops, per_key.min(left))
        })
        .collect()
}

/// The records grouped per key, each group in recording order.
pub fn by_key(recs: &[Rec]) -> BTreeMap<&str, Vec<&Rec>> {
    let mut keys: BTreeMap<&str, Vec<&Rec>> = BTreeMap::new();
    for r in recs {
        keys.entry(r.key.as_str()).or_default().push(r);
    }
    keys
}

/// Checks one key's history (every record must be for `key`) within `budget`.
pub fn check_key(key: &str, recs: &[&Rec], budget: Duration) -> KeyResult {
    check_shaped(key, recs, budget, true)
}

/// Like [`check_key`] with no indeterminate write pruned or closed: every one stays open to
/// the end. Slow on long histories; it is what the shaping must agree with.
pub fn check_key_unpruned(key: &str, recs: &[&Rec], budget: Duration) -> KeyResult {
    check_shaped(key, recs, budget, false)
}

fn check_shaped(key: &str, recs: &[&Rec], budget: Duration, prune: bool) -> KeyResult {
    let start = Instant::now();
    let actions = shape(recs, prune);
    let checked_ops = actions.len() / 2;
    let verdict = if actions.is_empty() {
        Verdict::Linearizable
    } else {
        BUDGET.with(|b| b.set((Some(start + budget), 0, false)));
        let ok = WGLChecker::<Register>::is_linearizable(History::from_actions(actions));
        let expired = BUDGET.with(|b| {
            let expired = b.get().2;
            b.set((None, 0, false));
            expired
        });
        // Refusing ops only prunes the search, so a linearization found is still one; a
        // "no" after the deadline may come from the refusals.
        match (ok, expired) {
            (true, _) => Verdict::Linearizable,
            (false, true) => Verdict::Unknown,
            (false, false) => Verdict::NotLinearizable,
        }
    };
    KeyResult {
        key: key.to_string(),
        verdict,
        checked_ops,
        elapsed: start.elapsed(),
    }
}

/// Per-key linearizability of the whole history (final reads included); a key that fails
/// only with its final read lost an acknowledged write or shows an impossible final state.
/// Prints a line of totals; returns a problem per failing key (the first few with their
/// histories), each key checked within `budget` and all within `total`.
pub fn check_all(
    all: &[Rec],
    without_finals: &[Rec],
    budget: Duration,
    total: Duration,
) -> Vec<String> {
    check_all_explained(all, without_finals, budget, total, &|_, _| None)
}

/// What [`check_all_explained`] asks of a failing key: a line that says what broke it, if the
/// caller can tell (e.g. which listing read, with [`first_breaking_read`]).
pub type Explain<'a> = &'a dyn Fn(&str, &[&Rec]) -> Option<String>;

/// [`check_all`], each of the first failing keys followed by what `explain` says of it.
pub fn check_all_explained(
    all: &[Rec],
    without_finals: &[Rec],
    budget: Duration,
    total: Duration,
    explain: Explain,
) -> Vec<String> {
    let mut problems = Vec::new();
    let start = Instant::now();
    let results = check_within(all, budget, total);
    let elapsed = start.elapsed();
    let by_key = by_key(all);
    let plain = self::by_key(without_finals);
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut shown, mut classified, mut listed) = (0, 0, 0);
    let slowest = results.iter().max_by_key(|r| r.elapsed);
    for r in &results {
        let name = match r.verdict {
            Verdict::Linearizable => "linearizable",
            Verdict::NotLinearizable => "NOT linearizable",
            Verdict::Unknown => "unknown (time budget spent)",
        };
        *counts.entry(name).or_default() += 1;
        if r.verdict == Verdict::Linearizable {
            continue;
        }
        listed += 1;
        if listed > FAILED_KEYS_LISTED_MAX {
            continue;
        }
        let mut what = format!("key {}: {name} ({} ops checked)", r.key, r.checked_ops);
        if r.verdict == Verdict::NotLinearizable && classified < FAILED_KEYS_CLASSIFIED_MAX {
            classified += 1;
            let ops = plain.get(r.key.as_str()).cloned().unwrap_or_default();
            if check_key(&r.key, &ops, budget).verdict == Verdict::Linearizable {
                what.push_str(": only the final read breaks it (acknowledged write lost?)");
            }
            let ops = by_key.get(r.key.as_str()).cloned().unwrap_or_default();
            if let Some(why) = explain(&r.key, &ops) {
                what.push_str(&format!("\n  {why}"));
            }
        }
        if shown < FAILED_KEYS_SHOWN_MAX {
            shown += 1;
            let ops = by_key.get(r.key.as_str()).cloned().unwrap_or_default();
            what.push_str(&format!("\n{}", describe(&ops)));
        }
        problems.push(what);
    }
    if listed > FAILED_KEYS_LISTED_MAX {
        problems.push(format!(
            "… and {} more keys not linearizable or unknown",
            listed - FAILED_KEYS_LISTED_MAX
        ));
    }
    let checked: usize = results.iter().map(|r| r.checked_ops).sum();
    println!(
        "checked {} keys ({} ops after pruning, {} recorded) in {:.2} s, slowest key {:?}: {:?}",
        results.len(),
        checked,
        all.len(),
        elapsed.as_secs_f64(),
        slowest.map(|r| (&r.key, r.checked_ops, r.elapsed)),
        counts
    );
    problems
}

/// Candidate states [`first_breaking_read`] tries in the breaking read's place, at most
/// (absence and the values written last before the read returned).
pub const ALLOWED_CANDIDATES_MAX: usize = 24;

/// For a key whose history `ops` is not linearizable while it is without the reads `suspect`
/// picks: the first of those reads, in order of return, that the rest before it cannot
/// explain (the history with every other op and the suspect reads that returned before it is
/// linearizable, and with it is not), and what a read in its place could have returned: the
/// states (`None`: absent) with which that history is linearizable, among absence and the
/// last [`ALLOWED_CANDIDATES_MAX`] values written before it returned. `None` when the
/// suspect reads are not what breaks it, or a check ran out of `budget`.
pub fn first_breaking_read<'a>(
    key: &str,
    ops: &[&'a Rec],
    suspect: &dyn Fn(&Rec) -> bool,
    budget: Duration,
) -> Option<(&'a Rec, Vec<Option<String>>)> {
    let (mut reads, rest): (Vec<&Rec>, Vec<&Rec>) = ops.iter().partition(|r| suspect(r));
    reads.sort_by_key(|r| (r.ret_ns, r.call_ns));
    let with = |n: usize, last: Option<&Rec>| {
        let mut h: Vec<&Rec> = rest.clone();
        h.extend(&reads[..n]);
        h.extend(last);
        check_key(key, &h, budget).verdict
    };
    if with(0, None) != Verdict::Linearizable || with(reads.len(), None) != Verdict::NotLinearizable
    {
        return None;
    }
    // Adding reads only adds constraints: the smallest failing prefix, by bisection.
    let (mut good, mut bad) = (0, reads.len());
    while bad - good > 1 {
        let mid = (good + bad) / 2;
        match with(mid, None) {
            Verdict::Linearizable => good = mid,
            Verdict::NotLinearizable => bad = mid,
            Verdict::Unknown => return None,
        }
    }
    let culprit = reads[bad - 1];
    let mut written: Vec<&Rec> = ops
        .iter()
        .copied()
        .filter(|r| r.op.written().is_some() && r.call_ns < culprit.ret_ns)
        .collect();
    written.sort_by_key(|r| std::cmp::Reverse(r.call_ns));
    let values = written
        .iter()
        .filter_map(|r| r.op.written().map(String::from));
    let candidates = std::iter::once(None).chain(values.map(Some));
    let allowed = candidates
        .take(ALLOWED_CANDIDATES_MAX)
        .filter(|state| {
            let read = Rec {
                op: KvOp::Get(state.clone()),
                ..culprit.clone()
            };
            with(bad - 1, Some(&read)) == Verdict::Linearizable
        })
        .collect();
    Some((culprit, allowed))
}

/// Values of definitely failed writes that an acknowledged op observed (a get returned it, a
/// failed compare reported it, an applied CAS expected it), as `(key, value, pid of the
/// observer, call time of the observer)`.
pub fn visible_failures(recs: &[Rec]) -> Vec<(String, String, u64, u64)> {
    let failed: HashSet<(&str, &str)> = recs
        .iter()
        .filter(|r| r.outcome == Outcome::Failed)
        .filter_map(|r| Some((r.key.as_str(), r.op.written()?)))
        .collect();
    recs.iter()
        .filter(|r| outcome(r) == Outcome::Ok)
        .filter_map(|r| {
            let v = r.op.observed()?;
            failed
                .contains(&(r.key.as_str(), v))
                .then(|| (r.key.clone(), v.to_string(), r.pid, r.call_ns))
        })
        .collect()
}

/// A record's outcome as the checker reads it: a CAS "acknowledged" without a definite answer
/// (which the client never records) counts as indeterminate, the reading that assumes less.
fn outcome(r: &Rec) -> Outcome {
    match (&r.op, r.outcome) {
        (
            KvOp::Cas {
                answer: CasAnswer::Open,
                ..
            },
            Outcome::Ok,
        ) => Outcome::Indeterminate,
        (_, o) => o,
    }
}

/// What the rest of a key's history says of one indeterminate write of a value (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    /// Observed by an acknowledged op that returned at this time: applied before then.
    Proven(u64),
    /// Maybe found by an op that proves nothing: open to the end.
    Referenced,
    /// Nothing can have found it: pruned.
    Unseen,
}

/// The facts of one key's history that decide each indeterminate write's [`Fate`].
#[derive(Default)]
struct Observers<'a> {
    /// Earliest return of an acknowledged op that observed each value.
    first_observed: HashMap<&'a str, u64>,
    /// Values that an indeterminate CAS expected.
    expected_maybe: HashSet<&'a str>,
    /// Latest time at which a CAS expecting "present" may have applied: an applied one's
    /// return, `u64::MAX` for an indeterminate one.
    present_until: Option<u64>,
}

impl<'a> Observers<'a> {
    fn of(recs: &[&'a Rec]) -> Observers<'a> {
        let mut o = Observers::default();
        for r in recs {
            let at = match outcome(r) {
                Outcome::Failed => continue,
                Outcome::Ok => r.ret_ns,
                Outcome::Indeterminate => u64::MAX,
            };
            if let Some(v) = r.op.observed().filter(|_| at != u64::MAX) {
                let t = o.first_observed.entry(v).or_insert(at);
                *t = (*t).min(at);
            }
            match &r.op {
                KvOp::Cas {
                    expect: Expect::Value(v),
                    ..
                } if at == u64::MAX => {
                    o.expected_maybe.insert(v);
                }
                KvOp::Cas {
                    expect: Expect::Present,
                    answer: CasAnswer::Applied | CasAnswer::Open,
                    ..
                } => o.present_until = o.present_until.max(Some(at)),
                _ => {}
            }
        }
        o
    }

    /// The fate of an indeterminate write of `value` called at `call_ns`. Why it is sound:
    ///
    /// *Proven*, closed at `t` as applied: an acknowledged op `o` that observed `value` is
    /// valid only in state `value`, which only this write makes (values are unique). So in
    /// every linearization the write applied, before `o`'s point, hence before `o` returned
    /// at `t`: ending its interval there, as applied, removes no linearization. If `o`
    /// returned before the write was called there is none; the write is closed just after
    /// its call and the checker reports the violation.
    ///
    /// *Unseen*, pruned: the history with the write is linearizable iff it is without it.
    /// (⇐) An indeterminate write can be placed last. (⇒) Take a linearization in which the
    /// write applied (if it did not, drop it). Dropping it changes the state only for the ops
    /// between it and the next op that changes the state, which now find the state before it
    /// instead of `value`. An op valid in state `value` is a get of it, a failed compare
    /// reporting it, a CAS expecting it or "present" that applied there, a blind write
    /// (valid in any state; it ends the stretch), or a CAS that is a no-op there. None of the
    /// first kinds exists: a get or a failed compare reporting `value` or an applied CAS
    /// expecting it would make the write proven, an indeterminate CAS expecting it would make
    /// it referenced, and so would a CAS expecting "present" that may apply after the write's
    /// call. A no-op CAS is indeterminate (an acknowledged CAS either applied or reported the
    /// state): an open one moves to the end, where it changes nothing, and a closed one was
    /// proven applied. What remains is a linearization without the write. Pruning several
    /// writes at once is pruning them one by one: dropping ops only removes observations.
    fn fate(&self, value: &str, call_ns: u64) -> Fate {
        if let Some(&t) = self.first_observed.get(value) {
            return Fate::Proven(t);
        }
        let present = self.present_until.is_some_and(|t| t >= call_ns);
        if present || self.expected_maybe.contains(value) {
            Fate::Referenced
        } else {
            Fate::Unseen
        }
    }
}

/// Each distinct value of one key as a small number.
#[derive(Default)]
struct Interner(HashMap<String, u32>);

impl Interner {
    fn id(&mut self, v: &str) -> u32 {
        let next = self.0.len() as u32;
        *self.0.entry(v.to_string()).or_insert(next)
    }
    fn state(&mut self, v: Option<&str>) -> Option<u32> {
        v.map(|v| self.id(v))
    }
    fn expect(&mut self, e: &Expect) -> RegExpect {
        match e {
            Expect::Absent => RegExpect::Absent,
            Expect::Present => RegExpect::Present,
            Expect::Value(v) => RegExpect::Value(self.id(v)),
        }
    }
}

/// One op prepared for the checker: dense process id, times, the op at call and at response.
struct Shaped {
    pid: usize,
    call: u64,
    /// `None`: open until after the last event.
    ret: Option<u64>,
    op: RegOp,
}

/// Turns one key's records into the checker's actions, in time order (see the module doc).
/// Without `prune`, every indeterminate write stays open to the end (the unshaped history,
/// to test the shaping against).
fn shape(recs: &[&Rec], prune: bool) -> Vec<(usize, Action<RegOp>)> {
    let observers = Observers::of(recs);
    let mut values = Interner::default();
    let mut pids: HashMap<u64, usize> = HashMap::new();
    let mut ops = Vec::new();
    for r in recs {
        let Some((op, ret)) = shape_one(r, &observers, &mut values, prune) else {
            continue;
        };
        let next = pids.len();
        let pid = *pids.entry(r.pid).or_insert(next);
        ops.push(Shaped {
            pid,
            call: r.call_ns,
            ret,
            op,
        });
    }
    to_actions(ops)
}

/// One record as the checker's op and its return (`None`: open), or `None` if left out.
fn shape_one(
    r: &Rec,
    observers: &Observers,
    values: &mut Interner,
    prune: bool,
) -> Option<(RegOp, Option<u64>)> {
    let fate = match outcome(r) {
        Outcome::Failed => return None,
        Outcome::Ok => return Some((acknowledged(&r.op, values), Some(r.ret_ns))),
        // A read has no effect: whatever happened to it, it observed nothing.
        Outcome::Indeterminate if !r.op.is_write() => return None,
        Outcome::Indeterminate if !prune => Fate::Referenced,
        Outcome::Indeterminate => match r.op.written() {
            Some(v) => observers.fate(v, r.call_ns),
            None => Fate::Referenced,
        },
    };
    let (maybe, applied) = match &r.op {
        KvOp::Set(v) => (RegOp::Write(values.id(v)), RegOp::Write(values.id(v))),
        KvOp::Del => (RegOp::Delete, RegOp::Delete),
        KvOp::Cas { expect, new, .. } => {
            let (expect, new) = (values.expect(expect), values.state(new.as_deref()));
            (
                RegOp::CasMaybe { expect, new },
                RegOp::CasApplied { expect, new },
            )
        }
        KvOp::Get(_) => unreachable!("reads are left out above"),
    };
    match fate {
        Fate::Unseen => None,
        Fate::Referenced => Some((maybe, None)),
        // Never at or before its own call: an observation that returned before the write was
        // called is a violation the checker must still see, not an inverted op.
        Fate::Proven(t) => Some((applied, Some(t.max(r.call_ns + 1)))),
    }
}

/// The checker's op for an acknowledged record.
fn acknowledged(op: &KvOp, values: &mut Interner) -> RegOp {
    match op {
        KvOp::Set(v) => RegOp::Write(values.id(v)),
        KvOp::Del => RegOp::Delete,
        KvOp::Get(v) => RegOp::Read(values.state(v.as_deref())),
        KvOp::Cas {
            expect,
            new,
            answer,
        } => {
            let expect = values.expect(expect);
            match answer {
                CasAnswer::CompareFailed(found) => RegOp::CasFailed {
                    expect,
                    found: values.state(found.as_deref()),
                },
                // `Open` never gets here ([`outcome`]).
                CasAnswer::Applied | CasAnswer::Open => RegOp::CasApplied {
                    expect,
                    new: values.state(new.as_deref()),
                },
            }
        }
    }
}

/// Calls and responses in time order. At equal times calls go first, so ops that touch are
/// taken as concurrent (the permissive reading: no false alarm from clock granularity).
fn to_actions(ops: Vec<Shaped>) -> Vec<(usize, Action<RegOp>)> {
    const CALL: u8 = 0;
    const RESPONSE: u8 = 1;
    let mut events: Vec<(u64, u8, usize, Action<RegOp>)> = Vec::with_capacity(ops.len() * 2);
    for s in ops {
        let at_call = match s.op {
            RegOp::Read(_) => RegOp::Read(None),
            other => other,
        };
        events.push((s.call, CALL, s.pid, Action::Call(at_call)));
        events.push((
            s.ret.unwrap_or(u64::MAX),
            RESPONSE,
            s.pid,
            Action::Response(s.op),
        ));
    }
    events.sort_by_key(|e| (e.0, e.1));
    events.into_iter().map(|(_, _, pid, a)| (pid, a)).collect()
}

/// One key's ops in call order, one line each, for a failure message.
pub fn describe(recs: &[&Rec]) -> String {
    let mut sorted: Vec<&&Rec> = recs.iter().collect();
    sorted.sort_by_key(|r| (r.call_ns, r.ret_ns));
    let mut out = String::new();
    for r in sorted.iter().take(DESCRIBE_OPS_MAX) {
        let _ = writeln!(
            out,
            "  pid {:>5}  {:>12.3} ms → {:>12.3} ms  {:?} {:?}",
            r.pid,
            r.call_ns as f64 / 1e6,
            r.ret_ns as f64 / 1e6,
            r.outcome,
            r.op
        );
    }
    if sorted.len() > DESCRIBE_OPS_MAX {
        let _ = writeln!(out, "  … and {} more", sorted.len() - DESCRIBE_OPS_MAX);
    }
    out
}

/// A seeded generator of the tests' random choices (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = splitmix64(self.0);
        self.0
    }
    /// A number below `n` (not exactly uniform; close enough for test workloads).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A step of the splitmix64 generator (the tests need no cryptographic randomness).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
