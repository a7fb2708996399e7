//! mostdb-ceiling: the throughput ceiling of mostdb's own runtime and HTTP layer. It answers
//! every request with `{"code":200,"success":true}` and touches no storage, so
//! `scripts/bench.sh` can report the real server's throughput as a ratio to it.
//!
//! Same shape as the server: one monoio runtime per thread (`MOSTDB_THREADS`, default one per
//! core), each with its own `SO_REUSEPORT` listener on 127.0.0.1:`MOSTDB_SERVER_PORT` (or
//! `--port N`; default 5380). Stops on SIGTERM/SIGINT (the default signal action).
//! Uses only `runtime`, `http` and `limits`: no `api`, `replication` or `storage`.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use monoio::net::{ListenerOpts, TcpListener};
use mostdb::http::{serve_connection, ConnLimits, DateCache, Handler, Request, Response};
use mostdb::limits::{CORE_STACK_BYTES, THREADS_MAX};
use mostdb::runtime::{CoreRuntime, Latch};

const PORT_DEFAULT: u16 = 5380;
/// The server's listen backlog, so that connection bursts behave alike.
const LISTEN_BACKLOG: i32 = 4096;
/// Pause after a failed accept.
const ACCEPT_ERROR_PAUSE_MS: u64 = 10;
const ANSWER: &[u8] = br#"{"code":200,"success":true}"#;

/// Answers everything with the fixed success body.
struct Fixed;

impl Handler for Fixed {
    fn call<'a>(&'a self, _req: Request<'a>) -> impl Future<Output = Response> + 'a {
        std::future::ready(Response::json_static(200, ANSWER))
    }
}

fn setting<T: std::str::FromStr>(flag: &str, env: &str, default: T) -> Result<T, String> {
    let args: Vec<String> = std::env::args().collect();
    let from_flag = args
        .iter()
        .position(|a| a == flag)
        .map(|i| args.get(i + 1).cloned());
    let text = match from_flag {
        Some(value) => value.ok_or_else(|| format!("{flag} needs a value"))?,
        None => match std::env::var(env) {
            Ok(value) => value,
            Err(_) => return Ok(default),
        },
    };
    text.trim()
        .parse()
        .map_err(|_| format!("{flag} / {env}: cannot use {text:?}"))
}

fn serve_core(core: usize, addr: SocketAddr) {
    let mut runtime = match CoreRuntime::build() {
        Ok(rt) => rt,
        Err(err) => fail(format!("core {core}: cannot build its event loop: {err}")),
    };
    eprintln!("core {core}: {} on {addr}", runtime.driver());
    runtime.block_on(async move {
        let opts = ListenerOpts::new().reuse_port(true).backlog(LISTEN_BACKLOG);
        let listener = TcpListener::bind_with_config(addr, &opts)
            .unwrap_or_else(|err| fail(format!("core {core}: cannot listen on {addr}: {err}")));
        let handler = Rc::new(Fixed);
        let limits = Rc::new(ConnLimits::default());
        let date = Rc::new(DateCache::new());
        // Never set: the process ends by signal.
        let latch = Latch::new();
        loop {
            let Ok((stream, _peer)) = listener.accept().await else {
                // Out of descriptors, most likely: let connections close instead of spinning.
                monoio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (handler, limits, latch, date) =
                (handler.clone(), limits.clone(), latch.clone(), date.clone());
            monoio::spawn(async move {
                serve_connection(stream, &*handler, &limits, &latch, &date).await
            });
        }
    })
}

fn fail(message: String) -> ! {
    eprintln!("mostdb-ceiling: {message}");
    std::process::exit(1)
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let port = setting("--port", "MOSTDB_SERVER_PORT", PORT_DEFAULT).unwrap_or_else(|e| fail(e));
    let threads = setting("--threads", "MOSTDB_THREADS", cores).unwrap_or_else(|e| fail(e));
    if threads == 0 || threads > THREADS_MAX {
        fail(format!("threads must be 1..={THREADS_MAX}, not {threads}"));
    }
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let workers: Vec<_> = (0..threads)
        .map(|core| {
            // The same stack as mostdb's cores: these threads parse the same request heads.
            std::thread::Builder::new()
                .name(format!("core-{core}"))
                .stack_size(CORE_STACK_BYTES)
                .spawn(move || serve_core(core, addr))
                .unwrap_or_else(|e| fail(format!("cannot start thread for core {core}: {e}")))
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
}
