//! The Redis port on a three-node cluster of the real binary (DESIGN §13): commands through
//! any node, on with one node killed; and the honesty of its errors: INCRs from a client that
//! retries what Redis clients retry by themselves (`TRYAGAIN`, `LOADING`), while the other
//! two nodes are paused again and again (writes end indeterminate), never count more than the
//! client was told, nor less than it was acknowledged. With indeterminate outcomes worded as
//! `TRYAGAIN` (the planted bug `planted-resp-retryable-indeterminate`) the replays count
//! twice.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::cluster::{Cluster, ClusterSpec, RESP_PORT_AUTO};

/// A line-reading RESP client, enough for simple and integer replies and bulk strings.
struct Resp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Resp {
    fn connect(addr: SocketAddr) -> Resp {
        let stream = TcpStream::connect(addr).expect("connect to the Redis port");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        Resp {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// One command; its reply as text: `+OK`, `:5`, `-ERR …`, the bulk's bytes, or `(nil)`.
    fn call(&mut self, args: &[&str]) -> String {
        let mut frame = format!("*{}\r\n", args.len());
        for arg in args {
            frame.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
        }
        self.writer.write_all(frame.as_bytes()).expect("send");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply");
        let line = line.trim_end().to_string();
        match line.strip_prefix('$') {
            Some("-1") => "(nil)".to_string(),
            Some(_) => {
                let mut bulk = String::new();
                self.reader.read_line(&mut bulk).expect("the bulk");
                bulk.trim_end().to_string()
            }
            None => line,
        }
    }
}

/// The operation deadline: the pauses outlast it, so writes caught in them end.
const OP_TIMEOUT_MS: u64 = 200;

fn resp_cluster() -> Cluster {
    Cluster::start(&ClusterSpec {
        op_timeout_ms: OP_TIMEOUT_MS,
        env: vec![("MOSTDB_RESP_PORT".into(), RESP_PORT_AUTO.into())],
        ..ClusterSpec::default()
    })
}

#[test]
fn any_node_serves_redis_clients_and_one_node_down_changes_nothing() {
    let mut cluster = resp_cluster();
    cluster.wait_links_up();
    let mut a = Resp::connect(cluster.resp_addr(0));
    let mut b = Resp::connect(cluster.resp_addr(1));
    assert_eq!(a.call(&["SET", "k", "v1"]), "+OK");
    assert_eq!(b.call(&["GET", "k"]), "v1");
    assert_eq!(a.call(&["INCR", "n"]), ":1");
    cluster.kill9(2);
    assert_eq!(b.call(&["INCR", "n"]), ":2");
    assert_eq!(b.call(&["MSET", "x", "1", "y", "2"]), "+OK");
    assert_eq!(a.call(&["GET", "y"]), "2");
    assert_eq!(a.call(&["SET", "lock", "me", "NX", "PX", "60000"]), "+OK");
    assert_eq!(b.call(&["SET", "lock", "you", "NX"]), "(nil)");
    assert_eq!(a.call(&["DEL", "x", "y", "none"]), ":2");
    // Two down: no majority; a read says NOTMOST, nothing is claimed.
    cluster.kill9(1);
    assert!(
        a.call(&["GET", "k"]).starts_with("-NOTMOST"),
        "a read without a majority"
    );
    cluster.stop_all();
}

/// What a client that retries like the Redis libraries was told about its INCRs.
#[derive(Debug, Default)]
struct Told {
    acknowledged: u64,
    indeterminate: u64,
    failed: u64,
    replays: u64,
}

#[test]
fn incrs_under_pauses_never_count_more_than_the_client_was_told() {
    let mut cluster = resp_cluster();
    cluster.wait_links_up();
    let addr = cluster.resp_addr(0);
    let stop = Arc::new(AtomicBool::new(false));
    let counting = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut client = Resp::connect(addr);
            let mut told = Told::default();
            while !stop.load(Ordering::Relaxed) {
                let mut reply = client.call(&["INCR", "counter"]);
                // What client libraries replay by themselves: "the command was not run".
                let mut tries = 0;
                while (reply.starts_with("-TRYAGAIN") || reply.starts_with("-LOADING"))
                    && tries < 20
                {
                    thread::sleep(Duration::from_millis(100));
                    told.replays += 1;
                    tries += 1;
                    reply = client.call(&["INCR", "counter"]);
                }
                match reply.chars().next() {
                    Some(':') => told.acknowledged += 1,
                    _ if reply.starts_with("-INDETERMINATE") => told.indeterminate += 1,
                    _ => told.failed += 1,
                }
            }
            told
        })
    };
    // The nemesis: the two other nodes paused together, again and again, each time longer than
    // the deadline: an INCR caught between its accept and the replies ends indeterminate.
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < Duration::from_secs(12) {
        thread::sleep(Duration::from_millis(50 + rounds * 37 % 100));
        cluster.pause(1);
        cluster.pause(2);
        thread::sleep(Duration::from_millis(
            OP_TIMEOUT_MS + 50 + rounds * 53 % 100,
        ));
        cluster.resume(1);
        cluster.resume(2);
        rounds += 1;
    }
    thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    let told = counting.join().expect("the client");
    // The final count, read through a majority (it repairs what a lone node holds).
    let mut reader = Resp::connect(cluster.resp_addr(1));
    let mut last = reader.call(&["GET", "counter"]);
    for _ in 0..20 {
        if !last.starts_with('-') {
            break;
        }
        thread::sleep(Duration::from_millis(200));
        last = reader.call(&["GET", "counter"]);
    }
    let counted: u64 = last
        .parse()
        .unwrap_or_else(|_| panic!("the counter: {last}"));
    eprintln!("INCRs {told:?}, counted {counted}, {rounds} pauses");
    assert!(told.acknowledged > 50, "too few INCRs ran: {told:?}");
    assert!(
        counted >= told.acknowledged,
        "acknowledged INCRs lost: counted {counted}, {told:?}"
    );
    assert!(
        counted <= told.acknowledged + told.indeterminate,
        "counted {counted} > acknowledged + indeterminate: {told:?} (a replayed INCR counted twice)"
    );
    cluster.stop_all();
}
