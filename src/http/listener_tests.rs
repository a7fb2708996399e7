//! Tests of `listener.rs`: a real listener on a loopback port (monoio, epoll driver, its own
//! thread), driven by blocking std clients.

use std::io::{Read, Write};
use std::net::TcpStream as StdStream;
use std::sync::mpsc;

use super::*;
use crate::http::{Request, Response, Upgrade};

const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `/slow` takes to answer: long enough that a stop lands while it is in flight.
const SLOW_MS: u64 = 300;
const UPGRADE_PROTOCOL: &str = "listener-test/1";

/// `/slow` answers after `SLOW_MS` (saying first that it began), `/stop` sets the shutdown
/// latch, `/upgrade` switches to a protocol that writes `upgraded` and ends.
struct Test {
    shutdown: Latch,
    began: mpsc::Sender<()>,
}

struct TestConn {
    shutdown: Latch,
    began: mpsc::Sender<()>,
}

impl Service for Test {
    type Conn = TestConn;

    fn connection(&self, _source: SocketAddr) -> TestConn {
        TestConn {
            shutdown: self.shutdown.clone(),
            began: self.began.clone(),
        }
    }

    async fn upgraded(&self, _conn: TestConn, up: Upgraded, _shutdown: &Latch) {
        let mut stream = up.stream;
        let (res, _) = monoio::io::AsyncWriteRentExt::write_all(&mut stream, b"upgraded").await;
        res.expect("write after the upgrade");
    }
}

impl Handler for TestConn {
    async fn call<'a>(&'a self, req: Request<'a>) -> Response {
        match req.path {
            "/slow" => {
                let _ = self.began.send(());
                monoio::time::sleep(Duration::from_millis(SLOW_MS)).await;
            }
            "/stop" => self.shutdown.set(),
            "/upgrade" => {
                return Response::switching(Upgrade {
                    protocol: UPGRADE_PROTOCOL,
                    headers: Vec::new(),
                })
            }
            _ => {}
        }
        Response::text(200, "ok")
    }
}

/// A listener on its own thread: its address, the `/slow` notices, and when `run` returned.
struct Running {
    addr: SocketAddr,
    began: mpsc::Receiver<()>,
    ended: mpsc::Receiver<Instant>,
}

fn start(max_total: usize, per_source_max: usize) -> Running {
    let (addr_tx, addr_rx) = mpsc::channel();
    let (began_tx, began) = mpsc::channel();
    let (ended_tx, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let tcp = TcpListener::bind("127.0.0.1:0").expect("bind");
            addr_tx.send(tcp.local_addr().expect("addr")).expect("send");
            let shutdown = Latch::new();
            let service = Test {
                shutdown: shutdown.clone(),
                began: began_tx,
            };
            let config = ListenerConfig {
                core: 0,
                admission: Arc::new(Admission::new(max_total, per_source_max)),
                tls: None,
                limits: ConnLimits::new(1024),
            };
            Listener::new(tcp, service, config).run(&shutdown).await;
            let _ = ended_tx.send(Instant::now());
        });
    });
    Running {
        addr: addr_rx.recv().expect("listener address"),
        began,
        ended,
    }
}

fn connect(addr: SocketAddr) -> StdStream {
    let stream = StdStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(CLIENT_TIMEOUT))
        .expect("timeout");
    stream
}

fn get(stream: &mut StdStream, path: &str) {
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send");
}

/// Reads until `until` is in what was read (or the connection ends); returns it all.
fn read_until(stream: &mut StdStream, until: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&got).contains(until) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The drain: a request in flight when the node stops is answered, and the listener returns
/// as soon as its last connection ends (woken by it, long before the grace period is over);
/// its socket is closed by then.
#[test]
fn a_stop_lets_requests_in_flight_finish_then_returns_promptly() {
    let node = start(100, 100);
    let mut slow = connect(node.addr);
    get(&mut slow, "/slow");
    node.began
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("/slow began");
    let mut stopper = connect(node.addr);
    let stopped_at = Instant::now();
    get(&mut stopper, "/stop");
    assert!(read_until(&mut stopper, "ok").starts_with("HTTP/1.1 200"));
    let answer = read_until(&mut slow, "ok");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight answer: {answer:?}"
    );
    // Answers during a stop say `Connection: close`; the client then closes (the server
    // waits a little for that, so that the answer is not reset).
    assert!(answer.contains("Connection: close"), "{answer:?}");
    drop((slow, stopper));
    let ended = node
        .ended
        .recv_timeout(CLIENT_TIMEOUT)
        .expect("run returned");
    let took = ended.duration_since(stopped_at);
    assert!(
        took < Duration::from_millis(SLOW_MS + 700),
        "drain took {took:?} (grace {SHUTDOWN_GRACE_MS} ms)"
    );
    assert!(StdStream::connect(node.addr).is_err(), "still listening");
}

/// A source over its cap is closed unanswered; its slot comes back when a connection ends.
#[test]
fn a_source_over_its_cap_is_refused_until_a_connection_ends() {
    let node = start(100, 1);
    let mut first = connect(node.addr);
    get(&mut first, "/");
    assert!(read_until(&mut first, "ok").starts_with("HTTP/1.1 200"));
    let mut refused = connect(node.addr);
    get(&mut refused, "/");
    assert_eq!(read_until(&mut refused, "ok"), "", "refused unanswered");
    drop(first);
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    loop {
        let mut again = connect(node.addr);
        get(&mut again, "/");
        if read_until(&mut again, "ok").starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A `101` hands the connection to the service's `upgraded`.
#[test]
fn an_upgraded_connection_goes_to_the_service() {
    let node = start(100, 100);
    let mut conn = connect(node.addr);
    get(&mut conn, "/upgrade");
    let got = read_until(&mut conn, "upgraded");
    assert!(got.starts_with("HTTP/1.1 101"), "{got:?}");
    assert!(got.ends_with("upgraded"), "{got:?}");
}

/// The count wakes its waiter when the last connection ends, with no timer to poll on.
#[test]
fn the_last_connection_to_end_wakes_the_drain() {
    let mut rt = monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
        .build()
        .expect("runtime without a timer");
    rt.block_on(async {
        let count = Rc::new(OpenCount::default());
        count.none_left().await;
        let (a, b) = (count.open(), count.open());
        let first = monoio::spawn(async move { drop(a) });
        let last = monoio::spawn(async move { drop(b) });
        count.none_left().await;
        assert_eq!(count.count.get(), 0);
        first.await;
        last.await;
    });
}
