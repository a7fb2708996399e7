//! A loopback TCP proxy for one directed cluster link (node i → node j), so a test can partition
//! nodes without root, nftables or network namespaces: node i's member list names the proxy's
//! address for j, every peer connection i opens to j goes through it, and the test can pass it,
//! cut it (close what is open; refuse or blackhole what comes) and heal it.
//!
//! Thread-based on `std::net`: one accept thread per proxy, one setup thread per accepted
//! connection and one pump thread per direction. Must not import the `mostdb` library.
//!
//! Every blocking call is bounded or unblocked by the proxy itself: pumps block in `read` until
//! data, EOF, or a `shutdown` issued by [`LinkProxy::cut`] or drop; connecting to the target
//! has a timeout; the accept thread is woken on drop by a connection to itself.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the proxy waits for the target to accept a connection.
pub const PROXY_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// Bytes a pump moves per read.
pub const PROXY_CHUNK_BYTES: usize = 64 * 1024;
/// Connections held open without forwarding while blackholed (further ones are refused).
pub const PROXY_HELD_CONNECTIONS_MAX: usize = 256;
/// Reads of the first forwarded connection's source → target bytes kept for
/// [`LinkProxy::recorded`] (what an eavesdropper on the link would capture).
pub const PROXY_RECORD_CHUNKS_MAX: usize = 8;

/// What a cut link does with connections that arrive while it is cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CutMode {
    /// Accept and reset at once: the connecting node sees a refused/reset connection.
    Refuse,
    /// Accept and hold without forwarding a byte: the connecting node sees silence and must
    /// give up by its own deadlines, as behind a partition that drops packets.
    Blackhole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pass,
    Cut(CutMode),
}

/// Counters for tests and reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Connections accepted from the source node (whatever happened to them next).
    pub accepted: u64,
    /// Connections forwarded to the target.
    pub forwarded: u64,
    /// Connections reset at once because the link was cut in `Refuse` mode.
    pub refused: u64,
    /// Connections held silent because the link was cut in `Blackhole` mode.
    pub blackholed: u64,
    /// Bytes moved, both directions together.
    pub bytes: u64,
}

struct State {
    mode: Mode,
    /// Bumped by every cut: a connection set up across a cut must not survive it.
    generation: u64,
    next_id: u64,
    /// Both sockets of every forwarded connection, kept to shut them down on a cut.
    open: HashMap<u64, [TcpStream; 2]>,
    held: Vec<TcpStream>,
}

struct Shared {
    target: SocketAddr,
    state: Mutex<State>,
    stopping: AtomicBool,
    accepted: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
    blackholed: AtomicU64,
    bytes: AtomicU64,
    /// The first forwarded connection's source → target reads, one entry per read.
    recorded: Mutex<Vec<Vec<u8>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A pump that panicked cannot leave the map half-updated; carry on with it.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One directed link. Dropping it stops accepting and closes every connection.
pub struct LinkProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl LinkProxy {
    /// A proxy on a fresh loopback port that forwards to `target`, passing from the start.
    pub fn start(target: SocketAddr) -> std::io::Result<LinkProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            target,
            state: Mutex::new(State {
                mode: Mode::Pass,
                generation: 0,
                next_id: 0,
                open: HashMap::new(),
                held: Vec::new(),
            }),
            stopping: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            blackholed: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            recorded: Mutex::new(Vec::new()),
        });
        let for_thread = shared.clone();
        let acceptor = std::thread::Builder::new()
            .name(format!("proxy-{}", addr.port()))
            .spawn(move || accept_loop(listener, for_thread))?;
        Ok(LinkProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        })
    }

    /// The address the source node must use for the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.shared.target
    }

    /// Cuts the link: closes every open connection and treats new ones as `mode` says.
    pub fn cut(&self, mode: CutMode) {
        let (open, held) = {
            let mut st = self.shared.lock();
            st.mode = Mode::Cut(mode);
            st.generation += 1;
            let open: Vec<[TcpStream; 2]> = st.open.drain().map(|(_, s)| s).collect();
            (open, std::mem::take(&mut st.held))
        };
        close_all(open, held);
    }

    /// Lets connections through again; connections held by a blackhole are closed, so the
    /// source node notices and reconnects (through the proxy, now passing).
    pub fn heal(&self) {
        let held = {
            let mut st = self.shared.lock();
            st.mode = Mode::Pass;
            std::mem::take(&mut st.held)
        };
        close_all(Vec::new(), held);
    }

    pub fn is_cut(&self) -> bool {
        self.shared.lock().mode != Mode::Pass
    }

    /// Connections currently forwarded.
    pub fn open_connections(&self) -> usize {
        self.shared.lock().open.len()
    }

    /// What the source node sent on the first connection forwarded, read by read (at most
    /// [`PROXY_RECORD_CHUNKS_MAX`] reads): a recording an eavesdropper could replay.
    pub fn recorded(&self) -> Vec<Vec<u8>> {
        let recorded = self.shared.recorded.lock();
        recorded.unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn stats(&self) -> ProxyStats {
        let s = &self.shared;
        ProxyStats {
            accepted: s.accepted.load(Ordering::Relaxed),
            forwarded: s.forwarded.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            blackholed: s.blackholed.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the accept thread, which then sees `stopping` and returns.
        let _ =
            TcpStream::connect_timeout(&self.addr, Duration::from_millis(PROXY_CONNECT_TIMEOUT_MS));
        let (open, held) = {
            let mut st = self.shared.lock();
            let open: Vec<[TcpStream; 2]> = st.open.drain().map(|(_, s)| s).collect();
            (open, std::mem::take(&mut st.held))
        };
        close_all(open, held);
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

fn close_all(open: Vec<[TcpStream; 2]>, held: Vec<TcpStream>) {
    for [a, b] in open {
        let _ = a.shutdown(Shutdown::Both);
        let _ = b.shutdown(Shutdown::Both);
    }
    for s in held {
        reset(s);
    }
}

/// Closes with a reset (SO_LINGER 0): the peer sees the link die, not an orderly end.
fn reset(stream: TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt on a socket we own, with a correctly sized `linger` value.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(&stream),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(stream);
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    for incoming in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = incoming else { continue };
        shared.accepted.fetch_add(1, Ordering::Relaxed);
        let mut st = shared.lock();
        match st.mode {
            Mode::Cut(CutMode::Refuse) => {
                drop(st);
                shared.refused.fetch_add(1, Ordering::Relaxed);
                reset(client);
            }
            Mode::Cut(CutMode::Blackhole) if st.held.len() < PROXY_HELD_CONNECTIONS_MAX => {
                st.held.push(client);
                shared.blackholed.fetch_add(1, Ordering::Relaxed);
            }
            Mode::Cut(CutMode::Blackhole) => {
                drop(st);
                shared.refused.fetch_add(1, Ordering::Relaxed);
                reset(client);
            }
            Mode::Pass => {
                let generation = st.generation;
                drop(st);
                let shared = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name("proxy-conn".into())
                    .spawn(move || forward(client, shared, generation));
                if let Err(e) = spawned {
                    eprintln!("proxy: cannot spawn a connection thread: {e}");
                }
            }
        }
    }
}

/// Connects to the target and pumps both ways until either side ends or the link is cut.
fn forward(client: TcpStream, shared: Arc<Shared>, generation: u64) {
    let timeout = Duration::from_millis(PROXY_CONNECT_TIMEOUT_MS);
    let Ok(server) = TcpStream::connect_timeout(&shared.target, timeout) else {
        // The target is down: the source sees its connection reset, as with no proxy.
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let clones = (|| {
        Some((
            client.try_clone().ok()?,
            server.try_clone().ok()?,
            client.try_clone().ok()?,
            server.try_clone().ok()?,
        ))
    })();
    let Some((c_reg, s_reg, c_back, s_back)) = clones else {
        return;
    };
    let id = {
        let mut st = shared.lock();
        // Cut (and maybe healed) while we were connecting: this connection belongs to the
        // time before the cut and must not outlive it.
        if st.mode != Mode::Pass
            || st.generation != generation
            || shared.stopping.load(Ordering::SeqCst)
        {
            drop(st);
            let _ = client.shutdown(Shutdown::Both);
            let _ = server.shutdown(Shutdown::Both);
            return;
        }
        let id = st.next_id;
        st.next_id += 1;
        st.open.insert(id, [c_reg, s_reg]);
        id
    };
    shared.forwarded.fetch_add(1, Ordering::Relaxed);
    let back_shared = shared.clone();
    let back = std::thread::Builder::new()
        .name("proxy-pump".into())
        .spawn(move || pump(s_back, c_back, &back_shared, false));
    pump(client, server, &shared, id == 0);
    if let Ok(t) = back {
        let _ = t.join();
    }
    shared.lock().open.remove(&id);
}

/// Copies `from` → `to` until EOF or an error, then shuts both sockets down entirely (the peer
/// protocol has no use for half-closed connections), which also ends the other direction.
/// `record`: keep the first reads in `shared.recorded`.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: &Shared, record: bool) {
    let mut buf = vec![0u8; PROXY_CHUNK_BYTES];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if record {
            let mut recorded = shared.recorded.lock().unwrap_or_else(|p| p.into_inner());
            if recorded.len() < PROXY_RECORD_CHUNKS_MAX {
                recorded.push(buf[..n].to_vec());
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
        shared.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

// ------------------------------------------------------------------------------------------------
// Probes for the proxy's own tests

/// An echo server on a fresh port; counts the connections it accepted.
pub fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = l.local_addr().expect("addr");
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            count.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = [0u8; 1024];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .expect("timeout");
    s
}

/// Sends `msg` and expects it back.
pub fn echoes(s: &mut TcpStream, msg: &[u8]) -> bool {
    if s.write_all(msg).is_err() {
        return false;
    }
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got).is_ok() && got == msg
}

/// Whether the peer ended the connection (EOF or reset) within the read timeout.
pub fn ended(s: &mut TcpStream) -> bool {
    let mut b = [0u8; 16];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}
