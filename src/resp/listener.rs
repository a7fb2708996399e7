//! One core's RESP listener: accepts until shutdown, admits each connection under the node's
//! connection caps (shared with HTTP: a RESP connection counts as one), serves it (TLS first
//! when the node has it) in its own task, and on shutdown waits for its connections to end,
//! at most `SHUTDOWN_GRACE_MS`.

use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use monoio::net::TcpListener;
use tracing::Instrument;

use super::conn::{serve, Commands};
use crate::http::{Admission, OpenCount, RefusalLog};
use crate::limits::SHUTDOWN_GRACE_MS;
use crate::runtime::Latch;
use crate::tls::{self, Tls};

/// Pause after an accept error (e.g. out of file descriptors) before accepting again.
const ACCEPT_ERROR_PAUSE_MS: u64 = 50;

/// `CLIENT ID`s, node-wide.
static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);
/// RESP connections open now, node-wide (`INFO clients`).
static CONNECTED: AtomicUsize = AtomicUsize::new(0);

/// RESP connections open on this node now.
pub fn connected_clients() -> usize {
    CONNECTED.load(Ordering::Relaxed)
}

/// One connection in [`CONNECTED`], given back on drop.
struct Connected;

impl Connected {
    fn count() -> Connected {
        CONNECTED.fetch_add(1, Ordering::Relaxed);
        Connected
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        CONNECTED.fetch_sub(1, Ordering::Relaxed);
    }
}

pub struct RespListener<C> {
    tcp: TcpListener,
    core: usize,
    admission: Arc<Admission>,
    tls: Option<Arc<Tls>>,
    commands: Rc<C>,
    open: Rc<OpenCount>,
}

impl<C: Commands + 'static> RespListener<C> {
    pub fn new(
        tcp: TcpListener,
        core: usize,
        admission: Arc<Admission>,
        tls: Option<Arc<Tls>>,
        commands: Rc<C>,
    ) -> Self {
        RespListener {
            tcp,
            core,
            admission,
            tls,
            commands,
            open: Rc::new(OpenCount::default()),
        }
    }

    /// Serves until `shutdown` is set, then stops accepting and waits for this core's
    /// connections, at most `SHUTDOWN_GRACE_MS`.
    pub async fn run(self, shutdown: Latch) {
        let refusals = RefusalLog::default();
        loop {
            let accepted = monoio::select! {
                _ = shutdown.wait() => break,
                accepted = self.tcp.accept() => accepted,
            };
            let (stream, source) = match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "RESP accept failed");
                    monoio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                    continue;
                }
            };
            let admitted = match self.admission.admit(source.ip(), || false) {
                Ok(admitted) => admitted,
                Err(refused) => {
                    refusals.log(refused, source, &self.admission);
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let (commands, tls, open) = (self.commands.clone(), self.tls.clone(), self.open.open());
            let connected = Connected::count();
            let shutdown = shutdown.clone();
            let span = tracing::debug_span!("resp", core = self.core, %source);
            monoio::spawn(
                async move {
                    let stream = match tls::accept(tls.as_deref(), stream).await {
                        Ok(stream) => stream,
                        Err(err) => {
                            tracing::debug!(%err, "TLS handshake failed; connection closed");
                            return;
                        }
                    };
                    let id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
                    serve(stream, &*commands, id, &shutdown).await;
                    drop((open, admitted, connected));
                }
                .instrument(span),
            );
        }
        let RespListener {
            tcp, core, open, ..
        } = self;
        drop(tcp);
        let grace = Duration::from_millis(SHUTDOWN_GRACE_MS);
        if monoio::time::timeout(grace, open.none_left())
            .await
            .is_err()
        {
            tracing::warn!(
                core,
                open = open.count(),
                "grace period over; closing RESP connections"
            );
        }
    }
}
