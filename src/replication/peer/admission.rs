//! Who may open a peer link at all (DESIGN §14, "Peers"). With a cluster secret, whoever
//! completes the challenge–response of [`handshake`](super::handshake) is admitted, wherever it
//! dials from. Without one the proof is worth nothing, so only connections from the addresses
//! the member list resolves to are admitted. [`PeerAuth::choose`] is the one place that picks
//! the rule. Must not import `http` or `api`.
//!
//! Member names (container names, DNS) are resolved off the event loop, on a short-lived
//! thread: again when an unknown address dials (at most once per
//! `PEER_ADDRESS_RESOLVE_INTERVAL_MS`, one resolution at a time), and whenever an outgoing
//! link dials the member (it resolves the name anyway), so a member that changed its
//! address is admitted from its new one.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::handshake::Refusal;
use crate::limits::{
    PEER_ADDRESS_RESOLVE_INTERVAL_MS, PEER_ADDRESS_RESOLVE_WAIT_MS, PEER_MEMBER_ADDRESSES_MAX,
};

/// How a node decides whether a peer may open a link.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PeerAuth {
    /// The mutual challenge–response over the cluster secret decides; the address does not
    /// (with mutual TLS on too, the certificate is checked as well).
    Secret,
    /// No secret, but mutual TLS: a certificate signed by `MOSTDB_TLS_CA` decides (checked
    /// where the upgrade is answered); the address does not.
    MutualTls,
    /// No secret (and no mutual TLS): only the member list's addresses are admitted, and the
    /// handshake's proof (over an empty secret) only checks the claims.
    Addresses,
}

impl PeerAuth {
    /// The one place the rule is chosen. `mutual_tls`: peer links run over mutual TLS, which
    /// proves the peer as the secret does.
    pub fn choose(secret_set: bool, mutual_tls: bool) -> PeerAuth {
        match (secret_set, mutual_tls) {
            (true, _) => PeerAuth::Secret,
            (false, true) => PeerAuth::MutualTls,
            (false, false) => PeerAuth::Addresses,
        }
    }

    /// Says once, at start, which rule admits peer links.
    pub fn log_at_start(self) {
        match self {
            PeerAuth::Secret => tracing::info!(
                peer_auth = "secret",
                "peer links are admitted by a challenge-response over MOSTDB_CLUSTER_SECRET"
            ),
            PeerAuth::MutualTls => tracing::info!(
                peer_auth = "mutual-tls",
                "peer links are admitted by a client certificate signed by MOSTDB_TLS_CA"
            ),
            PeerAuth::Addresses => tracing::warn!(
                peer_auth = "addresses",
                "no MOSTDB_CLUSTER_SECRET: peer links are admitted only from the addresses the \
                 member list resolves to, unauthenticated; anyone who can send from such an \
                 address can join as a peer. Set MOSTDB_CLUSTER_SECRET on every node"
            ),
        }
    }
}

/// The rule and, for [`PeerAuth::Addresses`], the members' addresses. Shared by every core.
#[derive(Debug)]
pub struct PeerAdmission {
    auth: PeerAuth,
    /// Every member's `host:port` as configured (this node's too).
    authorities: Vec<String>,
    /// Per member, the addresses it last resolved to (a literal address from the start).
    resolved: Mutex<Vec<Vec<IpAddr>>>,
    /// When the last resolution started (ms since the Unix epoch; 0: never).
    last_resolve_ms: AtomicU64,
    resolving: AtomicBool,
}

impl PeerAdmission {
    pub fn new(auth: PeerAuth, authorities: Vec<String>) -> PeerAdmission {
        let resolved = authorities
            .iter()
            .map(|a| {
                a.parse::<SocketAddr>()
                    .map(|s| vec![s.ip().to_canonical()])
                    .unwrap_or_default()
            })
            .collect();
        PeerAdmission {
            auth,
            authorities,
            resolved: Mutex::new(resolved),
            last_resolve_ms: AtomicU64::new(0),
            resolving: AtomicBool::new(false),
        }
    }

    pub fn auth(&self) -> PeerAuth {
        self.auth
    }

    /// Whether a connection from `from` may try the handshake. An unknown address makes the
    /// members' names be resolved again first (rate-limited; waited for at most
    /// `PEER_ADDRESS_RESOLVE_WAIT_MS`).
    pub async fn admit(self: &Arc<Self>, from: IpAddr) -> Result<(), Refusal> {
        if self.auth != PeerAuth::Addresses {
            return Ok(());
        }
        let from = from.to_canonical();
        if self.knows(from) {
            return Ok(());
        }
        if let Some(done) = self.resolve_again() {
            let wait = Duration::from_millis(PEER_ADDRESS_RESOLVE_WAIT_MS);
            let _ = monoio::time::timeout(wait, done).await;
            if self.knows(from) {
                return Ok(());
            }
        }
        Err(Refusal::address(from))
    }

    /// An outgoing link resolved member `authority` to `addrs` (as it does at every dial).
    pub fn learned(&self, authority: &str, addrs: &[SocketAddr]) {
        if let Some(i) = self.authorities.iter().position(|a| a == authority) {
            self.lock()[i] = canonical(addrs);
        }
    }

    fn knows(&self, ip: IpAddr) -> bool {
        self.lock().iter().flatten().any(|known| *known == ip)
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<IpAddr>>> {
        // Each update replaces one member's list whole: a panic cannot leave it half-written.
        self.resolved.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts resolving every member name again on its own thread, unless one is under way or
    /// the last began less than `PEER_ADDRESS_RESOLVE_INTERVAL_MS` ago; completes when done.
    fn resolve_again(self: &Arc<Self>) -> Option<futures_channel::oneshot::Receiver<()>> {
        let names: Vec<usize> = (0..self.authorities.len())
            .filter(|&i| self.authorities[i].parse::<SocketAddr>().is_err())
            .collect();
        if names.is_empty() || !self.claim_resolution(unix_ms()) {
            return None;
        }
        let (tx, rx) = futures_channel::oneshot::channel();
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("peer-admit-resolve".into())
            .spawn(move || {
                for i in names {
                    if let Ok(found) = me.authorities[i].to_socket_addrs() {
                        let found: Vec<SocketAddr> = found.collect();
                        me.lock()[i] = canonical(&found);
                    }
                }
                me.resolving.store(false, Ordering::Release);
                let _ = tx.send(());
            });
        if let Err(err) = spawned {
            self.resolving.store(false, Ordering::Release);
            tracing::warn!(%err, "cannot start resolving the member names");
            return None;
        }
        Some(rx)
    }

    /// Whether this caller may start a resolution now (and records that it did).
    fn claim_resolution(&self, now_ms: u64) -> bool {
        let last = self.last_resolve_ms.load(Ordering::Acquire);
        let due = last == 0 || now_ms.saturating_sub(last) >= PEER_ADDRESS_RESOLVE_INTERVAL_MS;
        if !due || self.resolving.swap(true, Ordering::AcqRel) {
            return false;
        }
        self.last_resolve_ms.store(now_ms.max(1), Ordering::Release);
        true
    }
}

/// The distinct addresses of `addrs` (IPv4-mapped IPv6 as IPv4), at most
/// `PEER_MEMBER_ADDRESSES_MAX`.
fn canonical(addrs: &[SocketAddr]) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in addrs.iter().map(|a| a.ip().to_canonical()) {
        if !ips.contains(&ip) && ips.len() < PEER_MEMBER_ADDRESSES_MAX {
            ips.push(ip);
        }
    }
    ips
}

/// Resolves `name` (`host:port`) through the system resolver on a short-lived thread (it may
/// block for seconds), so the event loop goes on meanwhile.
pub(super) async fn resolve_off_loop(name: &str) -> io::Result<Vec<SocketAddr>> {
    let (tx, rx) = futures_channel::oneshot::channel();
    let owned = name.to_string();
    std::thread::Builder::new()
        .name("peer-resolve".into())
        .spawn(move || {
            let _ = tx.send(owned.to_socket_addrs().map(Vec::from_iter));
        })?;
    rx.await
        .map_err(|_| io::Error::other("resolver thread died"))?
}

fn unix_ms() -> u64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> monoio::Runtime<monoio::time::TimeDriver<monoio::LegacyDriver>> {
        monoio::RuntimeBuilder::<monoio::LegacyDriver>::new()
            .enable_timer()
            .build()
            .expect("epoll runtime")
    }

    #[test]
    fn the_rule_is_chosen_by_the_secret_or_mutual_tls() {
        assert_eq!(PeerAuth::choose(true, false), PeerAuth::Secret);
        assert_eq!(PeerAuth::choose(true, true), PeerAuth::Secret);
        assert_eq!(PeerAuth::choose(false, true), PeerAuth::MutualTls);
        assert_eq!(PeerAuth::choose(false, false), PeerAuth::Addresses);
    }

    #[test]
    fn without_a_secret_only_members_addresses_are_admitted() {
        let members = vec!["10.0.0.1:5379".into(), "[::1]:5379".into()];
        let book = Arc::new(PeerAdmission::new(PeerAuth::Addresses, members));
        runtime().block_on(async {
            assert!(book.admit("10.0.0.1".parse().unwrap()).await.is_ok());
            assert!(book.admit("::1".parse().unwrap()).await.is_ok());
            // IPv4 seen through an IPv6 listener.
            assert!(book.admit("::ffff:10.0.0.1".parse().unwrap()).await.is_ok());
            let refusal = book.admit("10.0.0.9".parse().unwrap()).await.unwrap_err();
            assert_eq!((refusal.status, refusal.code.as_str()), (403, "address"));
        });
        let open = Arc::new(PeerAdmission::new(PeerAuth::Secret, Vec::new()));
        runtime().block_on(async {
            assert!(open.admit("10.0.0.9".parse().unwrap()).await.is_ok());
        });
    }

    #[test]
    fn names_are_resolved_again_when_an_unknown_address_dials_and_when_a_link_dials() {
        let members = vec!["localhost:5379".into(), "db-2.invalid:5379".into()];
        let book = Arc::new(PeerAdmission::new(PeerAuth::Addresses, members));
        runtime().block_on(async {
            assert!(
                book.admit("127.0.0.1".parse().unwrap()).await.is_ok(),
                "resolved"
            );
            // Within the interval no second resolution starts: refused at once.
            assert!(book.admit("10.1.1.1".parse().unwrap()).await.is_err());
        });
        // A link dialled db-2 and found it at a new address.
        book.learned("db-2.invalid:5379", &["10.1.1.1:5379".parse().unwrap()]);
        runtime().block_on(async {
            assert!(book.admit("10.1.1.1".parse().unwrap()).await.is_ok());
        });
        book.learned("db-2.invalid:5379", &["10.1.1.2:5379".parse().unwrap()]);
        assert!(
            !book.knows("10.1.1.1".parse().unwrap()),
            "the old address is forgotten"
        );
    }

    #[test]
    fn resolutions_are_rate_limited() {
        let book = PeerAdmission::new(PeerAuth::Addresses, vec!["a:1".into()]);
        let t = 1 << 40;
        assert!(book.claim_resolution(t));
        book.resolving.store(false, Ordering::Release);
        assert!(!book.claim_resolution(t + 1));
        assert!(book.claim_resolution(t + PEER_ADDRESS_RESOLVE_INTERVAL_MS));
        assert!(
            !book.claim_resolution(t + 3 * PEER_ADDRESS_RESOLVE_INTERVAL_MS),
            "one at a time"
        );
    }
}
