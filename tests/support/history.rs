//! Recorded client histories and their check: one register per key, checked for
//! linearizability with todc-utils' Wing–Gong–Lowe checker under a time budget per key, plus
//! the checks that need no search (a definitely failed write is never read).
//!
//! How a history is shaped for the checker (STACK.md §5.3): values are interned per key (the
//! checker clones and hashes its state at every step); definite failures and failed reads are
//! left out (nothing was applied, nothing was observed); an indeterminate write whose value no
//! read returned is pruned (it can always be placed last, so dropping it cannot change the
//! verdict); an indeterminate write that was read is closed at the earliest return of a read
//! that saw it (it must take effect before that read does); any other indeterminate op stays
//! open until after the last event. Process ids are renumbered densely per key.
//!
//! Must not import the `mostdb` library.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use todc_utils::{Action, History, Specification, WGLChecker};

/// How often (in `apply` calls) the search looks at the clock.
const BUDGET_CHECK_EVERY: u32 = 256;
/// Ops of one key printed by [`describe`] (the rest are counted).
pub const DESCRIBE_OPS_MAX: usize = 400;

/// One client request on one key. For a get, the value is the one read (`None`: NotFound).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    Set(String),
    Del,
    Get(Option<String>),
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

/// The register the checker linearizes against, on interned values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum RegOp {
    Write(u32),
    Delete,
    Read(Option<u32>),
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
        match op {
            RegOp::Write(v) => (true, Some(*v)),
            RegOp::Delete => (true, None),
            RegOp::Read(r) => (r == state, *state),
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
    let start = Instant::now();
    let actions = shape(recs);
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

/// Values of definitely failed writes that some successful get returned, as
/// `(key, value, pid of the reader, call time of the read)`.
pub fn visible_failures(recs: &[Rec]) -> Vec<(String, String, u64, u64)> {
    let failed: HashMap<(&str, &str), ()> = recs
        .iter()
        .filter_map(|r| match (&r.op, r.outcome) {
            (KvOp::Set(v), Outcome::Failed) => Some(((r.key.as_str(), v.as_str()), ())),
            _ => None,
        })
        .collect();
    recs.iter()
        .filter_map(|r| match (&r.op, r.outcome) {
            (KvOp::Get(Some(v)), Outcome::Ok)
                if failed.contains_key(&(r.key.as_str(), v.as_str())) =>
            {
                Some((r.key.clone(), v.clone(), r.pid, r.call_ns))
            }
            _ => None,
        })
        .collect()
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
fn shape(recs: &[&Rec]) -> Vec<(usize, Action<RegOp>)> {
    let mut ids: HashMap<String, u32> = HashMap::new();
    let mut intern = |v: &str| -> u32 {
        let next = ids.len() as u32;
        *ids.entry(v.to_string()).or_insert(next)
    };
    // Earliest return of a successful read of each value.
    let mut first_read: HashMap<&str, u64> = HashMap::new();
    for r in recs {
        if let (KvOp::Get(Some(v)), Outcome::Ok) = (&r.op, r.outcome) {
            let t = first_read.entry(v.as_str()).or_insert(r.ret_ns);
            *t = (*t).min(r.ret_ns);
        }
    }
    let mut pids: HashMap<u64, usize> = HashMap::new();
    let mut ops = Vec::new();
    for r in recs {
        let (op, ret) = match (&r.op, r.outcome) {
            (_, Outcome::Failed) | (KvOp::Get(_), Outcome::Indeterminate) => continue,
            (KvOp::Set(v), Outcome::Ok) => (RegOp::Write(intern(v)), Some(r.ret_ns)),
            (KvOp::Set(v), Outcome::Indeterminate) => match first_read.get(v.as_str()) {
                None => continue,
                // Never at or before its own call: a read that returned before the write was
                // called is a violation the checker must still see, not an inverted op.
                Some(t) => (RegOp::Write(intern(v)), Some((*t).max(r.call_ns + 1))),
            },
            (KvOp::Del, Outcome::Ok) => (RegOp::Delete, Some(r.ret_ns)),
            (KvOp::Del, Outcome::Indeterminate) => (RegOp::Delete, None),
            (KvOp::Get(v), Outcome::Ok) => {
                (RegOp::Read(v.as_deref().map(&mut intern)), Some(r.ret_ns))
            }
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

// ------------------------------------------------------------------------------------------------
// Synthetic histories, to show the checker passes what it must and fails what it must

/// A random history of one register with `clients` clients, linearizable by construction:
/// each op takes effect at a random point inside its interval. Some writes are
/// indeterminate (applied or not); failed reads are left out as the workload does.
pub fn synthetic(seed: u64, keys: usize, clients: usize, ops: usize) -> Vec<Rec> {
    let mut rng = seed;
    let mut below = |n: u64| {
        rng = splitmix64(rng);
        rng % n
    };
    // Per client: busy until; pid.
    let mut free_at = vec![0u64; clients];
    let mut pids: Vec<u64> = (0..clients as u64).collect();
    let mut next_pid = clients as u64;
    // Ops planned as (effect time, index): effects are applied in time order afterwards.
    let mut planned: Vec<(u64, usize)> = Vec::new();
    let mut recs = Vec::new();
    for i in 0..ops {
        let c = below(clients as u64) as usize;
        let call = free_at[c] + 1 + below(50);
        let ret = call + 1 + below(200);
        let effect = call + below(ret - call);
        free_at[c] = ret;
        let key = format!("k{}", below(keys as u64));
        let (op, outcome) = match below(100) {
            0..=49 => (KvOp::Get(None), Outcome::Ok),
            50..=84 => (KvOp::Set(format!("{c}-{i}")), Outcome::Ok),
            85..=94 => (KvOp::Del, Outcome::Ok),
            _ => (KvOp::Set(format!("{c}-{i}")), Outcome::Indeterminate),
        };
        let r = Rec {
            pid: pids[c],
            key,
            op,
            outcome,
            call_ns: call,
            ret_ns: ret,
        };
        if outcome == Outcome::Indeterminate {
            pids[c] = next_pid;
            next_pid += 1;
            // Half of the indeterminate writes never take effect.
            if below(2) == 0 {
                recs.push(r);
                continue;
            }
        }
        planned.push((effect, recs.len()));
        recs.push(r);
    }
    planned.sort();
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (_, i) in planned {
        let key = recs[i].key.clone();
        let cur = state.entry(key).or_default();
        match &mut recs[i].op {
            KvOp::Set(v) => *cur = Some(v.clone()),
            KvOp::Del => *cur = None,
            KvOp::Get(r) => *r = cur.clone(),
        }
    }
    recs
}

/// Makes one read stale: it returns the value of an acknowledged write that an acknowledged
/// later write (of another value) overwrote before the read began. Picks the first such read,
/// or the last one when `last` (a late violation makes the search explore everything before
/// it). Returns its key.
pub fn make_stale_read(recs: &mut [Rec], last: bool) -> Option<String> {
    let acked_sets: Vec<&Rec> = recs
        .iter()
        .filter(|r| r.outcome == Outcome::Ok && matches!(r.op, KvOp::Set(_)))
        .collect();
    let mut pick = None;
    let order: Vec<usize> = if last {
        (0..recs.len()).rev().collect()
    } else {
        (0..recs.len()).collect()
    };
    'search: for ri in order {
        let r = &recs[ri];
        if r.outcome != Outcome::Ok || !matches!(r.op, KvOp::Get(Some(_))) {
            continue;
        }
        for w1 in acked_sets.iter().filter(|w| w.key == r.key) {
            let overwritten = acked_sets.iter().any(|w2| {
                w2.key == r.key && w2.call_ns > w1.ret_ns && w2.ret_ns < r.call_ns && w2.op != w1.op
            });
            if overwritten && w1.op != KvOp::Set(read_value(r)) {
                pick = Some((ri, w1.op.clone()));
                break 'search;
            }
        }
    }
    let (ri, KvOp::Set(v)) = pick? else {
        return None;
    };
    recs[ri].op = KvOp::Get(Some(v));
    Some(recs[ri].key.clone())
}

fn read_value(r: &Rec) -> String {
    match &r.op {
        KvOp::Get(Some(v)) => v.clone(),
        _ => String::new(),
    }
}

/// A step of the splitmix64 generator (the tests need no cryptographic randomness).
pub fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
