//! The fault test's own pieces, tested: the linearizability checker on synthetic histories (a
//! deliberately non-linearizable one must fail), the classification of answers, and the link
//! proxy that makes partitions.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::support::history::{
    check, check_key, make_stale_read, synthetic, visible_failures, KvOp, Outcome, Rec, Verdict,
};
use crate::support::kv::{classify, Reply};
use crate::support::proxy::{connect, echo_server, echoes, ended, CutMode, LinkProxy};

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
// The harness: answers and proxies

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
