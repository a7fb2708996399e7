//! The clients' history of operations and its linearizability check, one register per key,
//! with the `todc-utils` Wing–Gong–Lowe checker (shaped as STACK §5.3 says, so it stays fast).
//!
//! Every write has a unique value. An operation that failed definitely (a read's NotMost, a
//! write's NotMost: nothing applied) is left out. An indeterminate write whose value no read
//! returned is left out too (it can always be placed last) unless the key saw CAS operations
//! (a CAS expecting "present" or "absent" observes it without naming its value: it then stays
//! open to the end); one that was read gets its response at the return of the last read that
//! saw it; an indeterminate delete stays open to the end. A client continues under a fresh
//! process id after an indeterminate operation.
//!
//! A CAS (DESIGN §10) applied must find its expectation true, and sets the new state; a
//! failed compare must find exactly the state it reported, with the expectation false; an
//! indeterminate CAS applies where its expectation holds and is a no-op elsewhere (placed at
//! the end, it explains "never applied"). Its value counts as read when a later compare saw
//! it.

use std::cell::Cell;
use std::time::{Duration, Instant};

use todc_utils::{Action, History, Specification, WGLChecker};

/// Time one key's check may take. A linearizable history is found in milliseconds; a history
/// that is not makes the search exhaust every order, which for a few dozen open operations
/// can take hours: past the budget the key fails (as "not shown linearizable").
const CHECK_BUDGET_PER_KEY: Duration = Duration::from_secs(20);
/// How often (in `apply` calls) the search looks at the clock.
const BUDGET_CHECK_EVERY: u32 = 4096;

thread_local! {
    /// (deadline, `apply` calls since the clock was read, whether the deadline passed).
    static BUDGET: Cell<(Option<Instant>, u32, bool)> = const { Cell::new((None, 0, false)) };
}

/// Whether the running check is past its deadline (then every op is refused, which unwinds
/// the search at once).
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

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KvOp {
    Set(u64),
    Del,
    /// The value read (`None`: not found). Calls carry `Get(None)`.
    Get(Option<u64>),
    /// A compare-and-set to `new` (`None`: delete); calls carry `CasResult::Open`.
    Cas {
        expect: Expect,
        new: Option<u64>,
        result: CasResult,
    },
}

/// What a CAS expects of the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    Absent,
    Present,
    Value(u64),
}

impl Expect {
    pub fn holds(self, state: Option<u64>) -> bool {
        match self {
            Expect::Absent => state.is_none(),
            Expect::Present => state.is_some(),
            Expect::Value(v) => state == Some(v),
        }
    }
}

/// How a CAS ended, as the history shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CasResult {
    /// Not known (still running, or indeterminate).
    Open,
    Applied,
    /// The compare failed against this state.
    Failed(Option<u64>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ret {
    /// Still running.
    Open,
    /// Returned at this global sequence number.
    Ok(u64),
    /// The outcome is unknown (indeterminate write, or its coordinator crashed after sending).
    Indeterminate,
    /// Definitely had no effect.
    Failed,
}

#[derive(Clone, Debug)]
pub struct Rec {
    pub pid: usize,
    pub key: usize,
    pub op: KvOp,
    pub call: u64,
    pub ret: Ret,
    /// Coordinator, mode, version: printed with a failing history.
    pub note: String,
}

/// Records calls and returns in one global order (a sequence number per event).
#[derive(Default)]
pub struct Recorder {
    pub recs: Vec<Rec>,
    seq: u64,
}

impl Recorder {
    pub fn call(&mut self, pid: usize, key: usize, op: KvOp) -> usize {
        self.seq += 1;
        self.recs.push(Rec {
            pid,
            key,
            op,
            call: self.seq,
            ret: Ret::Open,
            note: String::new(),
        });
        self.recs.len() - 1
    }

    /// The operation returned; a read's `op` carries the value read.
    pub fn ok(&mut self, rec: usize, op: KvOp) {
        self.seq += 1;
        let r = &mut self.recs[rec];
        r.op = op;
        r.ret = Ret::Ok(self.seq);
    }

    pub fn end(&mut self, rec: usize, ret: Ret) {
        debug_assert!(matches!(ret, Ret::Indeterminate | Ret::Failed));
        self.recs[rec].ret = ret;
    }
}

/// One register per key: the state is the value held (`None`: absent or deleted).
struct Register;

impl Specification for Register {
    type State = Option<u64>;
    type Operation = KvOp;

    fn init() -> Self::State {
        None
    }

    fn apply(op: &KvOp, state: &Self::State) -> (bool, Self::State) {
        if over_budget() {
            return (false, *state);
        }
        match op {
            KvOp::Set(v) => (true, Some(*v)),
            KvOp::Del => (true, None),
            KvOp::Get(read) => (read == state, *state),
            KvOp::Cas {
                expect,
                new,
                result,
            } => match result {
                CasResult::Applied => (expect.holds(*state), *new),
                CasResult::Failed(seen) => (seen == state && !expect.holds(*state), *state),
                CasResult::Open if expect.holds(*state) => (true, *new),
                CasResult::Open => (true, *state),
            },
        }
    }
}

/// The ops of one key as `(call, return)` sequence numbers, pruned as the module doc says.
fn shaped(recs: &[Rec], key: usize) -> Vec<(usize, u64, u64)> {
    let mut last_read: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut cas_seen = false;
    for r in recs.iter().filter(|r| r.key == key) {
        cas_seen |= matches!(r.op, KvOp::Cas { .. });
        let Ret::Ok(t) = r.ret else { continue };
        let seen = match &r.op {
            KvOp::Get(Some(v)) => Some(*v),
            KvOp::Cas {
                result: CasResult::Failed(Some(v)),
                ..
            } => Some(*v),
            KvOp::Cas {
                expect: Expect::Value(v),
                result: CasResult::Applied,
                ..
            } => Some(*v),
            _ => None,
        };
        if let Some(v) = seen {
            let e = last_read.entry(v).or_insert(t);
            *e = (*e).max(t);
        }
    }
    let mut ops = Vec::new();
    let mut end = u64::MAX / 2;
    for (i, r) in recs.iter().enumerate().filter(|(_, r)| r.key == key) {
        let written = match &r.op {
            KvOp::Set(v) | KvOp::Cas { new: Some(v), .. } => Some(*v),
            _ => None,
        };
        let ret = match (written, &r.ret) {
            (_, Ret::Failed) => continue,
            (_, Ret::Ok(t)) => *t,
            (Some(v), Ret::Indeterminate | Ret::Open) => match last_read.get(&v) {
                Some(&t) if t > r.call => t,
                // Read before it was even called, or observed without its value by a CAS:
                // keep it open, the checker will object or place it.
                Some(_) => {
                    end += 1;
                    end
                }
                None if cas_seen => {
                    end += 1;
                    end
                }
                None => continue,
            },
            (_, Ret::Indeterminate | Ret::Open) => {
                end += 1;
                end
            }
        };
        ops.push((i, r.call, ret));
    }
    ops
}

/// Checks every key's history; on failure, the key and its (pruned) history, printable.
pub fn check(recs: &[Rec], keys: usize) -> Result<(), String> {
    for key in 0..keys {
        let ops = shaped(recs, key);
        if ops.is_empty() {
            continue;
        }
        let mut events: Vec<(u64, usize, Action<KvOp>)> = Vec::with_capacity(ops.len() * 2);
        for &(i, call, ret) in &ops {
            let r = &recs[i];
            let call_op = match r.op {
                KvOp::Get(_) => KvOp::Get(None),
                KvOp::Cas { expect, new, .. } => KvOp::Cas {
                    expect,
                    new,
                    result: CasResult::Open,
                },
                ref other => other.clone(),
            };
            events.push((call, r.pid, Action::Call(call_op)));
            events.push((ret, r.pid, Action::Response(r.op.clone())));
        }
        events.sort_by_key(|e| e.0);
        let history = History::from_actions(events.into_iter().map(|(_, p, a)| (p, a)).collect());
        BUDGET.with(|b| b.set((Some(Instant::now() + CHECK_BUDGET_PER_KEY), 0, false)));
        let linearizable = WGLChecker::<Register>::is_linearizable(history);
        let (_, _, expired) = BUDGET.with(|b| b.replace((None, 0, false)));
        if expired {
            return Err(format!(
                "key k{key}: not shown linearizable within {CHECK_BUDGET_PER_KEY:?}\n{}",
                dump(recs, &ops)
            ));
        }
        if !linearizable {
            return Err(format!(
                "key k{key}: not linearizable\n{}",
                dump(recs, &ops)
            ));
        }
    }
    Ok(())
}

fn dump(recs: &[Rec], ops: &[(usize, u64, u64)]) -> String {
    let mut out = String::from("   call    ret  pid  op                note\n");
    for &(i, call, ret) in ops {
        let r = &recs[i];
        let ret = if ret >= u64::MAX / 2 {
            "end".to_string()
        } else {
            ret.to_string()
        };
        let op = format!("{:?}", r.op);
        out.push_str(&format!(
            "{call:>7} {ret:>6} {:>4}  {op:<18} {:?} {}\n",
            r.pid, r.ret, r.note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn history(ops: &[(usize, KvOp, u64, Ret)]) -> Vec<Rec> {
        ops.iter()
            .map(|(pid, op, call, ret)| Rec {
                pid: *pid,
                key: 0,
                op: op.clone(),
                call: *call,
                ret: ret.clone(),
                note: String::new(),
            })
            .collect()
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_caught() {
        let recs = history(&[
            (0, KvOp::Set(1), 1, Ret::Ok(2)),
            (0, KvOp::Set(2), 3, Ret::Ok(4)),
            (1, KvOp::Get(Some(1)), 5, Ret::Ok(6)),
        ]);
        assert!(check(&recs, 1).is_err());
    }

    #[test]
    fn a_read_seeing_x_then_y_then_x_again_is_caught() {
        let recs = history(&[
            (0, KvOp::Set(1), 1, Ret::Indeterminate),
            (1, KvOp::Set(2), 2, Ret::Ok(3)),
            (2, KvOp::Get(Some(1)), 4, Ret::Ok(5)),
            (2, KvOp::Get(Some(2)), 6, Ret::Ok(7)),
            (2, KvOp::Get(Some(1)), 8, Ret::Ok(9)),
        ]);
        assert!(check(&recs, 1).is_err());
    }

    #[test]
    fn concurrent_and_indeterminate_ops_may_be_reordered() {
        let recs = history(&[
            (0, KvOp::Set(1), 1, Ret::Ok(6)),
            (1, KvOp::Set(2), 2, Ret::Ok(5)),
            (2, KvOp::Get(Some(2)), 3, Ret::Ok(4)),
            (3, KvOp::Del, 7, Ret::Indeterminate),
            (4, KvOp::Set(3), 8, Ret::Indeterminate),
            (5, KvOp::Set(4), 9, Ret::Failed),
            (6, KvOp::Get(Some(1)), 10, Ret::Ok(11)),
            (6, KvOp::Get(None), 12, Ret::Ok(13)),
        ]);
        assert_eq!(check(&recs, 1), Ok(()));
    }

    #[test]
    fn a_value_of_a_failed_write_must_never_be_read() {
        let recs = history(&[
            (0, KvOp::Set(1), 1, Ret::Failed),
            (1, KvOp::Get(Some(1)), 2, Ret::Ok(3)),
        ]);
        assert!(check(&recs, 1).is_err());
    }

    fn cas(expect: Expect, new: Option<u64>, result: CasResult) -> KvOp {
        KvOp::Cas {
            expect,
            new,
            result,
        }
    }

    #[test]
    fn two_creates_that_both_applied_are_caught() {
        let recs = history(&[
            (
                0,
                cas(Expect::Absent, Some(1), CasResult::Applied),
                1,
                Ret::Ok(4),
            ),
            (
                1,
                cas(Expect::Absent, Some(2), CasResult::Applied),
                2,
                Ret::Ok(3),
            ),
        ]);
        assert!(check(&recs, 1).is_err());
    }

    #[test]
    fn a_failed_compare_must_report_the_state_it_met() {
        let ok = history(&[
            (0, KvOp::Set(1), 1, Ret::Ok(2)),
            (
                1,
                cas(Expect::Absent, Some(2), CasResult::Failed(Some(1))),
                3,
                Ret::Ok(4),
            ),
            (
                1,
                cas(Expect::Value(1), None, CasResult::Applied),
                5,
                Ret::Ok(6),
            ),
            (2, KvOp::Get(None), 7, Ret::Ok(8)),
        ]);
        assert_eq!(check(&ok, 1), Ok(()));
        let stale = history(&[
            (0, KvOp::Set(1), 1, Ret::Ok(2)),
            (
                1,
                cas(Expect::Absent, Some(2), CasResult::Failed(None)),
                3,
                Ret::Ok(4),
            ),
        ]);
        assert!(check(&stale, 1).is_err());
    }

    #[test]
    fn an_indeterminate_cas_applies_only_where_its_expectation_holds() {
        // Its value was read: it applied, after the set it expected.
        let applied = history(&[
            (0, KvOp::Set(1), 1, Ret::Ok(2)),
            (
                1,
                cas(Expect::Value(1), Some(2), CasResult::Open),
                3,
                Ret::Indeterminate,
            ),
            (2, KvOp::Get(Some(2)), 4, Ret::Ok(5)),
        ]);
        assert_eq!(check(&applied, 1), Ok(()));
        // Read although its expectation never held.
        let impossible = history(&[
            (0, KvOp::Set(1), 1, Ret::Ok(2)),
            (
                1,
                cas(Expect::Absent, Some(2), CasResult::Open),
                3,
                Ret::Indeterminate,
            ),
            (2, KvOp::Get(Some(2)), 4, Ret::Ok(5)),
        ]);
        assert!(check(&impossible, 1).is_err());
        // An unread indeterminate set that a CAS observed as "present".
        let present = history(&[
            (0, KvOp::Set(1), 1, Ret::Indeterminate),
            (
                1,
                cas(Expect::Present, Some(2), CasResult::Applied),
                2,
                Ret::Ok(3),
            ),
        ]);
        assert_eq!(check(&present, 1), Ok(()));
    }
}
