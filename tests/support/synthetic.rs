//! Synthetic histories for the checker's own tests (`cluster/fault_harness.rs`): random
//! histories of registers, linearizable by construction, with CAS or without, and ways to
//! break them (a stale read, a changed observation).
//!
//! Must not import the `mostdb` library.

use std::collections::BTreeMap;

use super::history::{CasAnswer, Expect, KvOp, Outcome, Rec, Rng};

/// Shares of a synthetic history's ops, in percent; indeterminate sets take the rest.
pub struct Mix {
    pub get: u64,
    pub set: u64,
    pub del: u64,
    /// CAS acknowledged (applied or compare failed).
    pub cas: u64,
    pub cas_indeterminate: u64,
}

/// Gets, sets and deletes only (as the fault test before CAS).
pub const PLAIN: Mix = Mix {
    get: 50,
    set: 35,
    del: 10,
    cas: 0,
    cas_indeterminate: 0,
};

/// CAS at about the fault test's share.
pub const WITH_CAS: Mix = Mix {
    get: 40,
    set: 20,
    del: 7,
    cas: 25,
    cas_indeterminate: 4,
};

impl Mix {
    /// The op for a draw `p` below 100, writing `value` if it writes; `last` is the value last
    /// written to its key (what a CAS most often expects).
    fn op(&self, p: u64, rng: &mut Rng, value: String, last: Option<&String>) -> (KvOp, Outcome) {
        let bounds = [
            self.get,
            self.set,
            self.del,
            self.cas,
            self.cas_indeterminate,
        ];
        let kind = bounds
            .iter()
            .scan(0, |sum, b| {
                *sum += b;
                Some(*sum)
            })
            .position(|bound| p < bound);
        let cas = |rng: &mut Rng| {
            let expect = match rng.below(10) {
                0..=2 => Expect::Absent,
                3 => Expect::Present,
                4 => Expect::Value("never-written".into()),
                _ => last.map_or(Expect::Absent, |v| Expect::Value(v.clone())),
            };
            KvOp::Cas {
                expect,
                new: (rng.below(5) != 0).then_some(value.clone()),
                answer: CasAnswer::Open,
            }
        };
        match kind {
            Some(0) => (KvOp::Get(None), Outcome::Ok),
            Some(1) => (KvOp::Set(value), Outcome::Ok),
            Some(2) => (KvOp::Del, Outcome::Ok),
            Some(3) => (cas(rng), Outcome::Ok),
            Some(4) => (cas(rng), Outcome::Indeterminate),
            _ => (KvOp::Set(value), Outcome::Indeterminate),
        }
    }
}

/// A random history of registers (`keys` of them) with `clients` clients, linearizable by
/// construction: each op takes effect at a random point inside its interval. Some writes are
/// indeterminate (half of them never take effect); failed reads are left out as the workload
/// does.
pub fn synthetic(seed: u64, keys: usize, clients: usize, ops: usize) -> Vec<Rec> {
    synthetic_mix(seed, keys, clients, ops, &PLAIN)
}

pub fn synthetic_mix(seed: u64, keys: usize, clients: usize, ops: usize, mix: &Mix) -> Vec<Rec> {
    let mut rng = Rng(seed);
    // Per client: busy until; pid.
    let mut free_at = vec![0u64; clients];
    let mut pids: Vec<u64> = (0..clients as u64).collect();
    let mut next_pid = clients as u64;
    // Ops planned as (effect time, index): effects are applied in time order afterwards.
    let mut planned: Vec<(u64, usize)> = Vec::new();
    let mut recs = Vec::new();
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    for i in 0..ops {
        let c = rng.below(clients as u64) as usize;
        let call = free_at[c] + 1 + rng.below(50);
        let ret = call + 1 + rng.below(200);
        let effect = call + rng.below(ret - call);
        free_at[c] = ret;
        let key = format!("k{}", rng.below(keys as u64));
        let p = rng.below(100);
        let (op, outcome) = mix.op(p, &mut rng, format!("{c}-{i}"), last.get(&key));
        if let Some(v) = op.written() {
            last.insert(key.clone(), v.to_string());
        }
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
            if rng.below(2) == 0 {
                recs.push(r);
                continue;
            }
        }
        planned.push((effect, recs.len()));
        recs.push(r);
    }
    planned.sort();
    apply_effects(&mut recs, &planned);
    recs
}

/// Runs the planned effects in order, filling in what each get read and each acknowledged
/// CAS answered.
fn apply_effects(recs: &mut [Rec], planned: &[(u64, usize)]) {
    let mut state: BTreeMap<String, Option<String>> = BTreeMap::new();
    for &(_, i) in planned {
        let acked = recs[i].outcome == Outcome::Ok;
        let cur = state.entry(recs[i].key.clone()).or_default();
        match &mut recs[i].op {
            KvOp::Set(v) => *cur = Some(v.clone()),
            KvOp::Del => *cur = None,
            KvOp::Get(r) => *r = cur.clone(),
            KvOp::Cas {
                expect,
                new,
                answer,
            } => {
                let holds = match expect {
                    Expect::Absent => cur.is_none(),
                    Expect::Present => cur.is_some(),
                    Expect::Value(v) => cur.as_ref() == Some(v),
                };
                if acked {
                    *answer = if holds {
                        CasAnswer::Applied
                    } else {
                        CasAnswer::CompareFailed(cur.clone())
                    };
                }
                if holds {
                    cur.clone_from(new);
                }
            }
        }
    }
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

/// Replaces what one acknowledged get or failed compare saw by another value of the history
/// (or absence).
pub fn corrupt_one_observation(recs: &mut [Rec], rng: &mut Rng) {
    let mut values: Vec<Option<String>> = recs
        .iter()
        .filter_map(|r| r.op.written().map(String::from))
        .map(Some)
        .collect();
    values.push(None);
    let seen: Vec<usize> = (0..recs.len())
        .filter(|&i| recs[i].outcome == Outcome::Ok)
        .filter(|&i| {
            matches!(
                recs[i].op,
                KvOp::Get(_)
                    | KvOp::Cas {
                        answer: CasAnswer::CompareFailed(_),
                        ..
                    }
            )
        })
        .collect();
    if seen.is_empty() {
        return;
    }
    let i = seen[rng.below(seen.len() as u64) as usize];
    let other = values[rng.below(values.len() as u64) as usize].clone();
    match &mut recs[i].op {
        KvOp::Get(v) => *v = other,
        KvOp::Cas { answer, .. } => *answer = CasAnswer::CompareFailed(other),
        _ => {}
    }
}
