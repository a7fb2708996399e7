//! The fault test's own pieces, tested: the linearizability checker on synthetic histories (a
//! deliberately non-linearizable one must fail), its register model of CAS and its pruning of
//! indeterminate writes (the verdict with pruning must be the verdict without), listings read
//! as gets (a key a listing skipped must fail the check), the classification of answers, the
//! padding of big values, and the link proxy that makes partitions.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::history::{
    check, check_key, check_key_unpruned, describe, visible_failures, CasAnswer, Expect, KvOp,
    Outcome, Rec, Rng, Verdict,
};
use crate::support::kv::{classify, classify_list, Padding, Reply};
use crate::support::lister::{pass_reads, PageSeen, Pass};
use crate::support::proxy::{connect, echo_server, echoes, ended, CutMode, LinkProxy};
use crate::support::recorded::{check_counter, check_race, CounterOut};
use crate::support::synthetic::{
    corrupt_one_observation, make_stale_read, synthetic, synthetic_mix, Mix, WITH_CAS,
};

// ------------------------------------------------------------------------------------------------
// The checker on synthetic histories

fn rec(pid: u64, op: KvOp, outcome: Outcome, call: u64, ret: u64) -> Rec {
    Rec {
        pid,
        key: "k".into(),
        op,
        outcome,
        call_ns: call,
        ret_ns: ret,
    }
}

fn set(v: &str) -> KvOp {
    KvOp::Set(v.into())
}

fn read(v: Option<&str>) -> KvOp {
    KvOp::Get(v.map(String::from))
}

fn verdict(recs: &[Rec]) -> Verdict {
    let results = check(recs, Duration::from_secs(10));
    assert_eq!(results.len(), 1, "one key");
    results[0].verdict
}

use Outcome::{Failed, Indeterminate, Ok as Acked};

#[test]
fn checker_accepts_a_register_and_rejects_a_stale_read() {
    let good = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, read(Some("a")), Acked, 20, 30),
        rec(0, KvOp::Del, Acked, 40, 50),
        rec(1, read(None), Acked, 60, 70),
    ];
    assert_eq!(verdict(&good), Verdict::Linearizable);
    // The write of b completed before the read began: reading a is stale.
    let stale = [
        rec(0, set("a"), Acked, 0, 10),
        rec(0, set("b"), Acked, 20, 30),
        rec(1, read(Some("a")), Acked, 40, 50),
    ];
    assert_eq!(verdict(&stale), Verdict::NotLinearizable);
    // Concurrent with the write of b, either value may be read.
    let concurrent = [
        rec(0, set("a"), Acked, 0, 10),
        rec(0, set("b"), Acked, 20, 60),
        rec(1, read(Some("a")), Acked, 30, 40),
        rec(2, read(Some("b")), Acked, 35, 45),
    ];
    assert_eq!(verdict(&concurrent), Verdict::Linearizable);
}

#[test]
fn checker_rejects_a_value_that_comes_back() {
    // DESIGN §3: a reader sees X, then Y, then X again from a single write of X.
    let flip = [
        rec(0, set("x"), Acked, 0, 100),
        rec(1, set("y"), Acked, 0, 100),
        rec(2, read(Some("x")), Acked, 10, 20),
        rec(2, read(Some("y")), Acked, 30, 40),
        rec(2, read(Some("x")), Acked, 50, 60),
    ];
    assert_eq!(verdict(&flip), Verdict::NotLinearizable);
}

#[test]
fn checker_shapes_indeterminate_and_failed_ops() {
    // An indeterminate write that a later read saw: fine.
    let seen = [
        rec(0, set("a"), Indeterminate, 0, 10),
        rec(1, read(Some("a")), Acked, 50, 60),
    ];
    assert_eq!(verdict(&seen), Verdict::Linearizable);
    // An indeterminate write nobody read is pruned.
    let unseen = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, set("b"), Indeterminate, 20, 30),
        rec(2, read(Some("a")), Acked, 50, 60),
    ];
    let r = &check(&unseen, Duration::from_secs(10))[0];
    assert_eq!((r.verdict, r.checked_ops), (Verdict::Linearizable, 2));
    // Read before the write was even called: no shaping may hide that.
    let early = [
        rec(1, read(Some("a")), Acked, 0, 10),
        rec(0, set("a"), Indeterminate, 20, 30),
    ];
    assert_eq!(verdict(&early), Verdict::NotLinearizable);
    // Once a later write is read, the indeterminate one cannot reappear.
    let reappears = [
        rec(0, set("a"), Indeterminate, 0, 10),
        rec(1, read(Some("a")), Acked, 20, 30),
        rec(1, set("b"), Acked, 40, 50),
        rec(1, read(Some("a")), Acked, 60, 70),
    ];
    assert_eq!(verdict(&reappears), Verdict::NotLinearizable);
    // An indeterminate delete may explain a NotFound at any later time.
    let del = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, KvOp::Del, Indeterminate, 20, 30),
        rec(2, read(Some("a")), Acked, 40, 50),
        rec(2, read(None), Acked, 60, 70),
    ];
    assert_eq!(verdict(&del), Verdict::Linearizable);
    // A definitely failed write is left out, so reading it fails the check, and it is reported.
    let failed = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, set("b"), Failed, 20, 30),
        rec(2, read(Some("b")), Acked, 40, 50),
    ];
    assert_eq!(verdict(&failed), Verdict::NotLinearizable);
    let seen_failures = visible_failures(&failed);
    assert_eq!(seen_failures.len(), 1);
    assert_eq!(
        (seen_failures[0].0.as_str(), seen_failures[0].1.as_str()),
        ("k", "b")
    );
}

#[test]
fn checker_passes_random_linearizable_histories_and_catches_a_stale_read() {
    for seed in 1..=5u64 {
        let mut recs = synthetic(seed, 20, 8, 4_000);
        for r in check(&recs, Duration::from_secs(20)) {
            assert_eq!(
                r.verdict,
                Verdict::Linearizable,
                "seed {seed} key {}",
                r.key
            );
        }
        let key = make_stale_read(&mut recs, false).expect("a read to corrupt");
        let bad: Vec<Rec> = recs.iter().filter(|r| r.key == key).cloned().collect();
        assert_eq!(
            verdict_of(&bad),
            Verdict::NotLinearizable,
            "seed {seed} key {key}"
        );
    }
}

fn verdict_of(recs: &[Rec]) -> Verdict {
    let refs: Vec<&Rec> = recs.iter().collect();
    check_key(&recs[0].key, &refs, Duration::from_secs(20)).verdict
}

#[test]
fn checker_reports_unknown_when_the_budget_runs_out() {
    // One hot key, many clients, a stale read: a search that cannot finish in 100 ms.
    let mut recs = synthetic(7, 1, 16, 3_000);
    make_stale_read(&mut recs, true).expect("a read to corrupt");
    let refs: Vec<&Rec> = recs.iter().collect();
    let start = Instant::now();
    let r = check_key("k0", &refs, Duration::from_millis(100));
    assert_eq!(r.verdict, Verdict::Unknown, "{:?}", r);
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "budget ignored: {:?}",
        start.elapsed()
    );
}

// ------------------------------------------------------------------------------------------------
// Compare-and-set in the register model, and the pruning of indeterminate writes

fn cas(expect: Expect, new: Option<&str>, answer: CasAnswer) -> KvOp {
    KvOp::Cas {
        expect,
        new: new.map(String::from),
        answer,
    }
}

fn value(v: &str) -> Expect {
    Expect::Value(v.into())
}

fn found(v: Option<&str>) -> CasAnswer {
    CasAnswer::CompareFailed(v.map(String::from))
}

use CasAnswer::{Applied, Open};
use Expect::{Absent, Present};

#[test]
fn checker_models_cas_as_a_register_of_values() {
    let good = [
        rec(0, cas(Absent, Some("a"), Applied), Acked, 0, 10),
        rec(1, cas(Absent, Some("x"), found(Some("a"))), Acked, 20, 30),
        rec(0, cas(value("a"), Some("b"), Applied), Acked, 40, 50),
        rec(
            1,
            cas(value("a"), Some("y"), found(Some("b"))),
            Acked,
            60,
            70,
        ),
        rec(2, cas(Present, None, Applied), Acked, 80, 90),
        rec(1, cas(Present, Some("z"), found(None)), Acked, 100, 110),
        rec(0, read(None), Acked, 120, 130),
    ];
    assert_eq!(verdict(&good), Verdict::Linearizable);
    // Two concurrent creates: either may win, the other finds the winner.
    let race = [
        rec(0, cas(Absent, Some("a"), Applied), Acked, 0, 50),
        rec(1, cas(Absent, Some("b"), found(Some("a"))), Acked, 10, 40),
    ];
    assert_eq!(verdict(&race), Verdict::Linearizable);
}

#[test]
fn checker_rejects_the_classic_cas_violations() {
    // Two creates-if-absent on one key both applied (concurrent, no delete between).
    let both_created = [
        rec(0, cas(Absent, Some("a"), Applied), Acked, 0, 50),
        rec(1, cas(Absent, Some("b"), Applied), Acked, 10, 40),
    ];
    assert_eq!(verdict(&both_created), Verdict::NotLinearizable);
    // A CAS applied against a value that an acknowledged write had replaced before it began.
    let stale_compare = [
        rec(0, set("a"), Acked, 0, 10),
        rec(0, set("b"), Acked, 20, 30),
        rec(1, cas(value("a"), Some("c"), Applied), Acked, 40, 50),
    ];
    assert_eq!(verdict(&stale_compare), Verdict::NotLinearizable);
    // A failed compare reporting a value that was never current: never written, written only
    // by a definitely failed set, or overwritten before the CAS began.
    for bad in ["never", "failed", "old"] {
        let h = [
            rec(0, set("old"), Acked, 0, 10),
            rec(2, set("failed"), Failed, 12, 18),
            rec(0, set("new"), Acked, 20, 30),
            rec(1, cas(Absent, Some("c"), found(Some(bad))), Acked, 40, 50),
        ];
        assert_eq!(verdict(&h), Verdict::NotLinearizable, "reported {bad}");
    }
    // A failed compare whose expectation holds in the state it reported, and one that
    // reports absence while the key holds a value.
    let holds = [
        rec(0, set("a"), Acked, 0, 10),
        rec(
            1,
            cas(value("a"), Some("c"), found(Some("a"))),
            Acked,
            20,
            30,
        ),
    ];
    assert_eq!(verdict(&holds), Verdict::NotLinearizable);
    let not_absent = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, cas(value("x"), Some("c"), found(None)), Acked, 20, 30),
    ];
    assert_eq!(verdict(&not_absent), Verdict::NotLinearizable);
    // "present" applied on a key nobody wrote.
    let present = [rec(0, cas(Present, Some("a"), Applied), Acked, 0, 10)];
    assert_eq!(verdict(&present), Verdict::NotLinearizable);
}

/// The verdict and the ops left after shaping.
fn shaped(recs: &[Rec]) -> (Verdict, usize) {
    let r = &check(recs, Duration::from_secs(10))[0];
    (r.verdict, r.checked_ops)
}

#[test]
fn indeterminate_cas_is_pruned_closed_or_left_open_by_what_observed_it() {
    // Unseen: pruned (only the set and the read are checked).
    let unseen = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, cas(value("a"), Some("b"), Open), Indeterminate, 20, 30),
        rec(2, read(Some("a")), Acked, 40, 50),
    ];
    assert_eq!(shaped(&unseen), (Verdict::Linearizable, 2));
    // Observed by a failed compare: it applied, so b cannot come back after c replaced it.
    let mut seen = vec![
        rec(0, set("a"), Acked, 0, 10),
        rec(1, cas(value("a"), Some("b"), Open), Indeterminate, 20, 30),
        rec(2, cas(Absent, Some("x"), found(Some("b"))), Acked, 40, 50),
    ];
    assert_eq!(shaped(&seen), (Verdict::Linearizable, 3));
    seen.push(rec(2, set("c"), Acked, 60, 70));
    seen.push(rec(3, read(Some("b")), Acked, 80, 90));
    assert_eq!(verdict(&seen), Verdict::NotLinearizable);
    // Two indeterminate creates, both seen: the second cannot apply after the first.
    let both = [
        rec(0, cas(Absent, Some("a"), Open), Indeterminate, 0, 10),
        rec(1, cas(Absent, Some("b"), Open), Indeterminate, 0, 10),
        rec(2, read(Some("a")), Acked, 20, 30),
        rec(2, read(Some("b")), Acked, 40, 50),
    ];
    assert_eq!(verdict(&both), Verdict::NotLinearizable);
    // An indeterminate set that only an indeterminate CAS expected stays open (3 ops), and
    // that CAS, seen applied, needs it applied first.
    let referenced = [
        rec(0, set("a"), Indeterminate, 0, 10),
        rec(1, cas(value("a"), Some("b"), Open), Indeterminate, 20, 30),
        rec(2, read(Some("b")), Acked, 40, 50),
    ];
    assert_eq!(shaped(&referenced), (Verdict::Linearizable, 3));
    // An indeterminate CAS to delete stays open, and explains a later NotFound.
    let delete = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, cas(value("a"), None, Open), Indeterminate, 20, 30),
        rec(2, read(Some("a")), Acked, 40, 50),
        rec(2, read(None), Acked, 60, 70),
    ];
    assert_eq!(shaped(&delete), (Verdict::Linearizable, 4));
}

#[test]
fn a_cas_expecting_present_keeps_the_writes_it_may_have_found() {
    // The only write is indeterminate and nobody read its value; "present" applied, so it
    // did apply: pruning it would be a false alarm.
    let found_it = [
        rec(0, set("a"), Indeterminate, 0, 10),
        rec(1, cas(Present, None, Applied), Acked, 20, 30),
    ];
    assert_eq!(shaped(&found_it), (Verdict::Linearizable, 2));
    // A write called after the CAS returned cannot have been found: pruned.
    let later = [
        rec(0, set("a"), Acked, 0, 10),
        rec(1, cas(Present, Some("b"), Applied), Acked, 20, 30),
        rec(2, set("c"), Indeterminate, 40, 50),
        rec(3, read(Some("b")), Acked, 60, 70),
    ];
    assert_eq!(shaped(&later), (Verdict::Linearizable, 3));
    // An indeterminate "present" may apply at any time: every write stays.
    let open = [
        rec(0, cas(Present, Some("b"), Open), Indeterminate, 0, 10),
        rec(1, set("a"), Indeterminate, 20, 30),
        rec(2, read(Some("b")), Acked, 40, 50),
    ];
    assert_eq!(shaped(&open), (Verdict::Linearizable, 3));
}

#[test]
fn a_failed_write_seen_by_a_compare_or_a_cas_is_reported() {
    let h = [
        rec(0, set("a"), Failed, 0, 10),
        rec(1, cas(Absent, Some("b"), Open), Failed, 0, 10),
        rec(2, cas(Absent, Some("x"), found(Some("a"))), Acked, 20, 30),
        rec(2, cas(value("b"), Some("y"), Applied), Acked, 40, 50),
    ];
    let seen: Vec<(String, String)> = visible_failures(&h)
        .into_iter()
        .map(|(_, v, pid, _)| (v, pid.to_string()))
        .collect();
    assert_eq!(
        seen,
        [("a".to_string(), "2".into()), ("b".to_string(), "2".into())]
    );
}

#[test]
fn checker_passes_random_histories_with_cas_and_catches_an_impossible_compare() {
    for seed in 1..=5u64 {
        let mut recs = synthetic_mix(seed, 20, 8, 4_000, &WITH_CAS);
        for r in check(&recs, Duration::from_secs(20)) {
            assert_eq!(
                r.verdict,
                Verdict::Linearizable,
                "seed {seed} key {}",
                r.key
            );
        }
        let count = |f: &dyn Fn(&KvOp) -> bool| recs.iter().filter(|r| f(&r.op)).count();
        let applied = count(&|op| {
            matches!(
                op,
                KvOp::Cas {
                    answer: Applied,
                    ..
                }
            )
        });
        let failed = count(&|op| {
            matches!(
                op,
                KvOp::Cas {
                    answer: CasAnswer::CompareFailed(_),
                    ..
                }
            )
        });
        assert!(
            applied > 100 && failed > 100,
            "{applied} applied, {failed} failed"
        );
        // The first failed compare now reports a value nobody wrote (an early violation: a
        // late one makes the search explore everything before it).
        let i = recs
            .iter()
            .position(|r| {
                matches!(
                    r.op,
                    KvOp::Cas {
                        answer: CasAnswer::CompareFailed(_),
                        ..
                    }
                )
            })
            .expect("a failed compare");
        if let KvOp::Cas { answer, .. } = &mut recs[i].op {
            *answer = found(Some("never-written"));
        }
        let key = recs[i].key.clone();
        let bad: Vec<Rec> = recs.iter().filter(|r| r.key == key).cloned().collect();
        assert_eq!(
            verdict_of(&bad),
            Verdict::NotLinearizable,
            "seed {seed} key {key}"
        );
    }
}

/// Small random histories, half of them corrupted (one observation replaced by another
/// value): shaped or not, the checker must agree.
#[test]
fn pruning_never_changes_the_verdict() {
    const MANY_OPEN: Mix = Mix {
        get: 30,
        set: 15,
        del: 5,
        cas: 25,
        cas_indeterminate: 15,
    };
    let mut verdicts = [0usize; 2];
    for seed in 0..3_000u64 {
        let mut recs = synthetic_mix(seed, 1, 4, 14, &MANY_OPEN);
        let mut rng = Rng(seed ^ 0x5EED);
        if rng.below(2) == 0 {
            corrupt_one_observation(&mut recs, &mut rng);
        }
        let refs: Vec<&Rec> = recs.iter().collect();
        let budget = Duration::from_secs(10);
        let shaped = check_key("k0", &refs, budget);
        let unpruned = check_key_unpruned("k0", &refs, budget);
        assert_eq!(
            shaped.verdict,
            unpruned.verdict,
            "seed {seed}: shaped {} ops, unpruned {}\n{}",
            shaped.checked_ops,
            unpruned.checked_ops,
            describe(&refs)
        );
        verdicts[usize::from(shaped.verdict == Verdict::Linearizable)] += 1;
    }
    assert!(
        verdicts[0] > 50 && verdicts[1] > 50,
        "not linearizable / linearizable: {verdicts:?}"
    );
}

// ------------------------------------------------------------------------------------------------
// The race's and the counter's own checks

fn race_rec(pid: u64, key: &str, op: KvOp, outcome: Outcome) -> Rec {
    Rec {
        key: key.into(),
        ..rec(pid, op, outcome, 0, 10)
    }
}

#[test]
fn race_and_counter_checks_pass_a_clean_run_and_fail_broken_ones() {
    let create = |v: &str, answer| cas(Absent, Some(v), answer);
    let attempts = [
        race_rec(0, "race-0", create("a", Applied), Acked),
        race_rec(1, "race-0", create("b", found(Some("a"))), Acked),
        race_rec(2, "race-0", create("c", Open), Indeterminate),
        race_rec(3, "race-1", create("d", Open), Indeterminate),
        race_rec(4, "race-1", create("e", Open), Failed),
    ];
    let reads = |a: Option<&str>, b: Option<&str>| {
        vec![
            race_rec(5, "race-0", read(a), Acked),
            race_rec(6, "race-1", read(b), Acked),
        ]
    };
    let (summary, problems) = check_race(&attempts, &reads(Some("a"), Some("d")));
    assert_eq!((summary.keys, summary.won, summary.undecided), (2, 1, 1));
    assert!(problems.is_empty(), "{problems:?}");
    assert!(check_race(&attempts, &reads(Some("a"), None)).1.is_empty());
    // A loser read after healing, a definitely failed try read, absence after a win.
    for (a, b) in [(Some("c"), None), (Some("a"), Some("e")), (None, None)] {
        assert_eq!(
            check_race(&attempts, &reads(a, b)).1.len(),
            1,
            "{a:?} {b:?}"
        );
    }
    // Two creates applied; a failed compare that found what did not stay.
    let mut two = attempts.to_vec();
    two.push(race_rec(7, "race-0", create("f", Applied), Acked));
    assert_eq!(check_race(&two, &reads(Some("a"), Some("d"))).1.len(), 1);
    let mut moved = attempts.to_vec();
    moved.push(race_rec(7, "race-1", create("g", found(Some("d"))), Acked));
    assert!(check_race(&moved, &reads(Some("a"), Some("d")))
        .1
        .is_empty());
    assert_eq!(check_race(&moved, &reads(Some("a"), None)).1.len(), 1);
    let counts = CounterOut {
        applied: 10,
        indeterminate: 3,
        ..CounterOut::default()
    };
    assert!((10..=13).all(|v| check_counter(v, &counts).is_ok()));
    assert!(check_counter(9, &counts).is_err() && check_counter(14, &counts).is_err());
}

// ------------------------------------------------------------------------------------------------
// Listings as reads

fn page(call_ns: u64, ret_ns: u64, items: &[(&str, &str)]) -> PageSeen {
    let items = items.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    PageSeen {
        call_ns,
        ret_ns,
        node: 0,
        items: items.collect(),
    }
}

/// What a pass over `k0..k9` with `pages` reads of the keys `j`, `k1`…`k5`, `z`.
fn pass_of(pages: Vec<PageSeen>, whole: bool) -> (Vec<Rec>, Vec<String>) {
    let (start, end, pid) = ("k0".to_string(), "k9".to_string(), 99);
    let keys = ["j", "k1", "k2", "k3", "k4", "k5", "z"].map(String::from);
    let pass = Pass {
        pid,
        start,
        end,
        limit: 2,
        pages,
        whole,
    };
    pass_reads(&pass, &BTreeSet::from(keys))
}

#[test]
fn pages_read_their_items_and_the_keys_between_as_absent() {
    let pages = || vec![page(10, 20, &[("k1", "a")]), page(30, 40, &[("k3", "b")])];
    let shown = |pages, whole| {
        let (recs, problems) = pass_of(pages, whole);
        assert!(problems.is_empty(), "{problems:?}");
        let read = |r: &Rec| match &r.op {
            KvOp::Get(v) => (r.key.clone(), v.clone(), r.call_ns, r.ret_ns),
            other => panic!("{other:?}"),
        };
        recs.iter().map(read).collect::<Vec<_>>()
    };
    let r = |k: &str, v: Option<&str>, call, ret| (k.to_string(), v.map(String::from), call, ret);
    // k2 lies in page 0 or 1 (the cursor between them is opaque), k4 and k5 in page 1 or 2.
    let mut whole = pages();
    whole.push(page(50, 60, &[]));
    let want = [
        r("k1", Some("a"), 10, 20),
        r("k2", None, 10, 40),
        r("k3", Some("b"), 30, 40),
        r("k4", None, 30, 60),
        r("k5", None, 30, 60),
    ];
    assert_eq!(shown(whole, true), want);
    // A pass cut short claims nothing after its last item.
    assert_eq!(shown(pages(), false), want[..3]);
    // Nothing listed at all: every key of the range was absent during the pass.
    assert_eq!(
        shown(vec![page(10, 20, &[]), page(30, 40, &[])], true).len(),
        5
    );
    // Items out of order or outside the range make no sense.
    let odd = page(10, 20, &[("k3", "a"), ("k2", "b"), ("z", "c")]);
    assert_eq!(pass_of(vec![odd], true).1.len(), 2);
}

#[test]
fn a_key_a_listing_skipped_after_its_write_completed_fails_the_check() {
    let k2 = |items: &[(&str, &str)], write: (u64, u64)| {
        let (mut recs, _) = pass_of(vec![page(20, 30, items)], true);
        recs.retain(|r| r.key == "k2");
        assert_eq!(recs.len(), 1);
        let set = rec(1, set("v"), Acked, write.0, write.1);
        recs.push(Rec {
            key: "k2".into(),
            ..set
        });
        verdict(&recs)
    };
    let skipped = [("k1", "a"), ("k3", "b")];
    assert_eq!(k2(&skipped, (0, 10)), Verdict::NotLinearizable);
    // Written during the page, the key may or may not show.
    assert_eq!(k2(&skipped, (15, 25)), Verdict::Linearizable);
    // Listed with a value, the page is a read of it (w was never written).
    assert_eq!(k2(&[("k2", "w")], (0, 10)), Verdict::NotLinearizable);
    assert_eq!(k2(&[("k2", "v")], (0, 10)), Verdict::Linearizable);
}

// ------------------------------------------------------------------------------------------------
// The harness: answers, padding and proxies

#[test]
fn answers_are_classified_by_what_they_tell() {
    let c = |b: &str| classify(200, b.as_bytes());
    assert_eq!(c(r#"{"code":200,"success":true}"#), Reply::Ok);
    assert_eq!(
        c(r#"{"code":200,"success":true,"result":{"key":"k","value":"v"}}"#),
        Reply::Value(Some("v".into()))
    );
    assert_eq!(
        c(r#"{"code":200,"success":true,"result":{"key":"k"}}"#),
        Reply::Value(Some(String::new()))
    );
    assert_eq!(
        c(r#"{"code":500,"message":"NotFound","success":false}"#),
        Reply::Value(None)
    );
    assert_eq!(
        c(r#"{"code":500,"message":"NotMost","success":false}"#),
        Reply::NotMost {
            indeterminate: false
        }
    );
    assert_eq!(
        c(r#"{"code":500,"message":"NotMost","success":false,"indeterminate":true}"#),
        Reply::NotMost {
            indeterminate: true
        }
    );
    assert!(matches!(classify(503, b"{}"), Reply::Unavailable(_)));
    assert!(matches!(classify(500, b"{}"), Reply::Unexpected(_)));
    assert!(matches!(
        c(r#"{"code":500,"message":"参数有误","success":false}"#),
        Reply::Unexpected(_)
    ));
}

#[test]
fn listing_answers_are_pages_or_what_a_read_can_answer() {
    let l = |b: &str| classify_list(200, b.as_bytes());
    let items = r#""items":[{"key":"a","value":"1"},{"key":"b","value":""}]"#;
    assert_eq!(
        l(&format!(
            r#"{{"code":200,"success":true,"result":{{{items},"more":true,"cursor":"Yg"}}}}"#
        )),
        Reply::Page {
            items: vec![("a".into(), "1".into()), ("b".into(), String::new())],
            cursor: Some("Yg".into())
        }
    );
    assert_eq!(
        l(r#"{"code":200,"success":true,"result":{"items":[],"more":false}}"#),
        Reply::Page {
            items: Vec::new(),
            cursor: None
        }
    );
    for odd in [
        r#"{"code":200,"success":true,"result":{"items":[],"more":true}}"#,
        r#"{"code":200,"success":true,"result":{"items":[{"key":"a"}],"more":false}}"#,
        r#"{"code":200,"success":true}"#,
    ] {
        assert!(matches!(l(odd), Reply::Unexpected(_)), "{odd}");
    }
    // Anything else is read as a get's answer is.
    assert!(matches!(classify_list(503, b"{}"), Reply::Unavailable(_)));
}

#[test]
fn padded_values_go_out_big_and_come_back_as_they_were_written() {
    let p = Padding {
        prefix: "l",
        percent: 40,
        bytes: 1_000,
    };
    let values: Vec<String> = (0..200).map(|i| format!("3-{i}")).collect();
    let big = values
        .iter()
        .filter(|v| p.wire("l7", v).len() == 1_000)
        .count();
    assert!((40..120).contains(&big), "{big} of 200 big");
    for v in &values {
        assert_eq!(p.unwire("l7", p.wire("l7", v)), *v);
        assert_eq!(p.wire("h7", v), *v, "other keys are not padded");
    }
    let v = values
        .iter()
        .find(|v| p.wire("l7", v).len() == 1_000)
        .unwrap();
    let mut cut = p.wire("l7", v);
    cut.pop();
    assert!(p.unwire("l7", cut).starts_with("corrupt:"), "cut short");
    assert!(
        p.unwire("l7", v.clone()).starts_with("corrupt:"),
        "padding lost"
    );
}

#[test]
fn proxy_forwards_and_refusing_cut_closes_everything() {
    let (target, _) = echo_server();
    let p = LinkProxy::start(target).expect("proxy");
    let mut a = connect(p.addr());
    assert!(echoes(&mut a, b"hello"), "bytes pass both ways");
    p.cut(CutMode::Refuse);
    assert!(ended(&mut a), "an open connection is closed by the cut");
    // A new connection is refused while cut: the proxy accepts it and resets it at once, so
    // the client sees either the reset at connect (if it arrives first) or an ended stream.
    if let Ok(mut b) = TcpStream::connect_timeout(&p.addr(), Duration::from_secs(2)) {
        b.set_read_timeout(Some(Duration::from_secs(2)))
            .expect("timeout");
        assert!(ended(&mut b), "a new connection is refused while cut");
        assert!(!echoes(&mut b, b"x"));
    }
    p.heal();
    let mut c = connect(p.addr());
    assert!(echoes(&mut c, b"again"), "healed");
    let st = p.stats();
    assert!(
        st.refused >= 1 && st.forwarded >= 2 && st.bytes > 0,
        "{st:?}"
    );
}

#[test]
fn proxy_blackhole_holds_connections_silently_until_healed() {
    let (target, accepted) = echo_server();
    let p = LinkProxy::start(target).expect("proxy");
    let mut a = connect(p.addr());
    assert!(echoes(&mut a, b"one"));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    p.cut(CutMode::Blackhole);
    assert!(ended(&mut a), "an open connection is closed by the cut");
    let mut held = connect(p.addr());
    held.set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    held.write_all(b"anyone?").expect("write into the hole");
    let mut buf = [0u8; 8];
    let silent = matches!(held.read(&mut buf), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut));
    assert!(silent, "a blackholed connection stays open and silent");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "nothing reached the target"
    );
    p.heal();
    held.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    assert!(ended(&mut held), "healing closes held connections");
    let mut c = connect(p.addr());
    assert!(echoes(&mut c, b"two"));
    assert_eq!(p.stats().blackholed, 1);
}

#[test]
fn proxy_to_a_dead_target_closes_the_connection() {
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let p = LinkProxy::start(dead).expect("proxy");
    let mut a = connect(p.addr());
    assert!(ended(&mut a));
    assert_eq!(p.open_connections(), 0);
}
