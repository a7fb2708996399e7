//! One core's listener: accepts client connections until shutdown, admits each under the
//! connection caps ([`Admission`], refusals logged at most once per
//! `CONNECTION_REFUSAL_LOG_INTERVAL_MS`), serves it (TLS handshake, HTTP, then whatever a `101`
//! switched it to) in its own task and tracing span, and on shutdown drains: it closes its
//! socket and waits, at most `SHUTDOWN_GRACE_MS`, for its connections to end. The last one to
//! end wakes the drain; nothing polls.
//!
//! What serves a connection is a [`Service`], plugged in by the composition root. Must not
//! import `api`, `replication` or `storage`.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use monoio::net::{TcpListener, TcpStream};
use tracing::Instrument;

use super::{
    serve_pooled_connection, Admission, Admitted, ConnLimits, DateCache, Handler, IdlePool,
    Refused, Registered, Upgraded,
};
use crate::limits::{CONNECTION_REFUSAL_LOG_INTERVAL_MS, SHUTDOWN_GRACE_MS};
use crate::runtime::Latch;
use crate::tls::{self, Tls};

/// Pause after an accept error (e.g. out of file descriptors) before accepting again.
const ACCEPT_ERROR_PAUSE_MS: u64 = 50;

/// What serves the connections a [`Listener`] accepts.
pub trait Service: 'static {
    /// The HTTP handler of one connection.
    type Conn: Handler + 'static;

    /// The handler of a connection accepted from `source`.
    fn connection(&self, source: SocketAddr) -> Self::Conn;

    /// Serves a connection that `conn` switched to another protocol (its `101` is out) until
    /// it ends; `shutdown` says the node stops.
    fn upgraded(
        &self,
        conn: Self::Conn,
        up: Upgraded,
        shutdown: &Latch,
    ) -> impl Future<Output = ()>;
}

/// What a listener needs besides its socket and its service.
pub struct ListenerConfig {
    /// The core it runs on, for the log.
    pub core: usize,
    /// The node-wide connection counts, shared by every core's listener.
    pub admission: Arc<Admission>,
    /// `None`: plain HTTP.
    pub tls: Option<Arc<Tls>>,
    pub limits: ConnLimits,
}

/// One core's listening socket and the connections it accepted.
pub struct Listener<S> {
    tcp: TcpListener,
    core: usize,
    admission: Arc<Admission>,
    conns: Rc<Conns<S>>,
}

/// What every connection of one listener shares (one `Rc` per connection task).
struct Conns<S> {
    service: S,
    limits: ConnLimits,
    date: DateCache,
    pool: Rc<IdlePool>,
    tls: Option<Arc<Tls>>,
    open: Rc<OpenCount>,
}

/// An admitted connection on its way to its task; each part gives its place back on drop.
struct Accepted {
    stream: TcpStream,
    source: SocketAddr,
    admitted: Admitted,
    registered: Registered,
    open: Open,
}

impl<S: Service> Listener<S> {
    pub fn new(tcp: TcpListener, service: S, config: ListenerConfig) -> Listener<S> {
        Listener {
            tcp,
            core: config.core,
            admission: config.admission,
            conns: Rc::new(Conns {
                service,
                limits: config.limits,
                date: DateCache::new(),
                pool: Rc::new(IdlePool::default()),
                tls: config.tls,
                open: Rc::new(OpenCount::default()),
            }),
        }
    }

    /// Serves until `shutdown` is set, then stops accepting (the socket closes: new
    /// connections go to the other cores' listeners, or are refused once all are closed) and
    /// waits for this core's connections to finish, at most `SHUTDOWN_GRACE_MS`.
    pub async fn run(self, shutdown: &Latch) {
        self.accept_until(shutdown).await;
        let Listener {
            tcp, core, conns, ..
        } = self;
        drop(tcp);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        if monoio::time::timeout(grace, conns.open.none_left())
            .await
            .is_err()
        {
            tracing::warn!(
                core,
                open = conns.open.count.get(),
                "grace period over; closing connections"
            );
        }
    }

    async fn accept_until(&self, shutdown: &Latch) {
        let refusals = RefusalLog::default();
        loop {
            let accepted = monoio::select! {
                _ = shutdown.wait() => return,
                accepted = self.tcp.accept() => accepted,
            };
            let (stream, source) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accept failed");
                    monoio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                    continue;
                }
            };
            let pool = &self.conns.pool;
            let admitted = match self.admission.admit(source.ip(), || pool.evict_oldest()) {
                Ok(admitted) => admitted,
                Err(refused) => {
                    refusals.log(refused, source, &self.admission);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let accepted = Accepted {
                stream,
                source,
                admitted,
                open: self.conns.open.open(),
                registered: pool.register(),
            };
            // At debug level: at the default level a span entered on every poll of every
            // connection would cost the request path, which logs nothing there.
            let span = tracing::debug_span!("conn", core = self.core, %source);
            let task = serve(self.conns.clone(), accepted, shutdown.clone());
            monoio::spawn(task.instrument(span));
        }
    }
}

/// One connection, in its own task: the TLS handshake (if on), HTTP, then whatever its `101`
/// switched it to.
async fn serve<S: Service>(conns: Rc<Conns<S>>, accepted: Accepted, shutdown: Latch) {
    let Accepted {
        stream,
        source,
        admitted,
        registered,
        open,
    } = accepted;
    let handler = conns.service.connection(source);
    // With TLS on, the handshake comes first (bounded); a failed one ends it here.
    let stream = match tls::accept(conns.tls.as_deref(), stream).await {
        Ok(stream) => stream,
        Err(err) => {
            tracing::debug!(%err, "TLS handshake failed; connection closed");
            return;
        }
    };
    let slot = registered.slot();
    let served = serve_pooled_connection(
        stream,
        &handler,
        &conns.limits,
        &shutdown,
        &conns.date,
        slot,
    );
    let upgraded = served.await;
    // An upgraded connection is no longer idle HTTP: the pool may not evict it.
    drop(registered);
    if let Some(up) = upgraded {
        conns.service.upgraded(handler, up, &shutdown).await;
    }
    drop(open);
    drop(admitted);
}

/// The connections of one listener that have not ended, and the one task waiting for none to
/// be left (the drain). Core-local.
#[derive(Default)]
pub struct OpenCount {
    count: Cell<usize>,
    drain: Cell<Option<Waker>>,
}

/// One open connection's place in its listener's count, given back on drop.
pub struct Open {
    of: Rc<OpenCount>,
}

impl OpenCount {
    /// Connections open now.
    pub fn count(&self) -> usize {
        self.count.get()
    }

    pub fn open(self: &Rc<Self>) -> Open {
        self.count.set(self.count.get() + 1);
        Open { of: self.clone() }
    }

    /// Completes once no connection is open; woken by the last one to end. One waiter at a
    /// time (a second one replaces the first's waker).
    pub fn none_left(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(|cx| {
            if self.count.get() == 0 {
                return Poll::Ready(());
            }
            self.drain.set(Some(cx.waker().clone()));
            Poll::Pending
        })
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let left = self.of.count.get() - 1;
        self.of.count.set(left);
        if left == 0 {
            if let Some(drain) = self.of.drain.take() {
                drain.wake();
            }
        }
    }
}

/// The warning for refused connections: at most one per kind and core per
/// `CONNECTION_REFUSAL_LOG_INTERVAL_MS` (a flood would otherwise flood the log too).
#[derive(Default)]
pub struct RefusalLog {
    last: [Cell<Option<Instant>>; 2],
}

impl RefusalLog {
    pub fn log(&self, refused: Refused, source: SocketAddr, admission: &Admission) {
        let last = &self.last[refused as usize];
        let interval = Duration::from_millis(CONNECTION_REFUSAL_LOG_INTERVAL_MS);
        if last.get().is_some_and(|at| at.elapsed() < interval) {
            return;
        }
        last.set(Some(Instant::now()));
        match refused {
            Refused::PerSource => tracing::warn!(
                %source,
                max = admission.per_source_max(),
                "connection refused: this address holds MOSTDB_MAX_CONNECTIONS_PER_SOURCE \
                 connections (logged once a minute)"
            ),
            Refused::Total => tracing::warn!(
                %source,
                max = admission.max_total(),
                "connection refused: MOSTDB_MAX_CONNECTIONS reached and no idle connection to \
                 close on this core (logged once a minute)"
            ),
        }
    }
}

#[cfg(test)]
#[path = "listener_tests.rs"]
mod tests;
