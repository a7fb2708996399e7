//! The peer handshake, sans-IO: the HTTP/1.1 `Upgrade` request a dialler sends, the
//! responder's check of it (→ the `101`'s header lines and the proof it then awaits, or a
//! refusal with its status and reason), the dialler's check of the answer (→ the proof it
//! sends), and the responder's check of that proof. Pure functions; the link and the HTTP
//! handler do the I/O. Must not import `http`, `api` or `runtime`.
//!
//! A mutual challenge–response over the cluster secret (DESIGN §14), in which each side proves
//! the secret over a nonce the *other* side chose:
//!
//! 1. dialler → `GET /_mostdb/peer`, `Upgrade: mostdb-peer/2`, its claims (node id, cluster id,
//!    epoch, member count) and a fresh nonce `Nd`;
//! 2. responder → `101` with its claims, its own fresh nonce `Nr` and
//!    `HMAC(secret, "accept" ‖ its claims ‖ the dialler's ‖ Nd ‖ Nr)`;
//! 3. dialler checks that, then sends `HMAC(secret, "dial" ‖ its claims ‖ the responder's ‖
//!    Nr ‖ Nd)` as the first [`PROOF_BYTES`] after the upgrade; the responder serves nothing
//!    until that proof checks ([`AwaitedProof`]).
//!
//! A recorded dial is worthless (the next `Nr` differs), an answer cannot be replayed to a new
//! dial (`Nd` differs), and no MAC can be reflected (the role labels and the order of the
//! claims differ). The secret never crosses the wire. An empty secret works the same way, so
//! a node with a secret and one without refuse each other; without a secret the proof is
//! worth nothing and the address rule admits (see `admission`). Plain TCP does not protect
//! against an active attacker on the path (that takes TLS).

use std::fmt::Write as _;
use std::net::IpAddr;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::limits::{HEADERS_MAX, PEER_REFUSAL_LOG_INTERVAL_MS};
use crate::storage::cas_mark::CasMark;

/// The reserved path peers dial on the client port.
pub const PEER_PATH: &str = "/_mostdb/peer";
/// The `Upgrade` protocol token (its version changes with any incompatible handshake or frame
/// change).
pub const PEER_PROTOCOL: &str = "mostdb-peer/2";

const H_NODE: &str = "X-Mostdb-Node";
const H_CLUSTER: &str = "X-Mostdb-Cluster";
const H_EPOCH: &str = "X-Mostdb-Epoch";
const H_MEMBERS: &str = "X-Mostdb-Members";
const H_NONCE: &str = "X-Mostdb-Nonce";
const H_PROOF: &str = "X-Mostdb-Proof";
/// What a node serves beyond the frames every node of this protocol knows (a comma-separated
/// list, in the dial and in the answer; nodes before it send none, and ignore it): a dialler
/// asks only for what is listed, so that older nodes keep their links. Not covered by the
/// proof: stripping it only hides a feature (or, once a store holds CAS records, gets the
/// link refused).
const H_FEATURES: &str = "X-Mostdb-Features";
/// The responder answers `SyncRequest::View` (monitoring).
const FEATURE_VIEW: &str = "view";
/// The responder speaks CAS (DESIGN §10): PREPARE, promises, and values with CAS and expiry
/// flags. A coordinator runs a CAS only when every peer announced it.
const FEATURE_CAS: &str = "cas";
/// The node answers `SyncRequest::Range` (listing, DESIGN §11).
const FEATURE_LIST: &str = "list";

const NONCE_BYTES: usize = 16;
/// The size of every MAC, and of the dialler's proof record after the upgrade.
pub const PROOF_BYTES: usize = 32;

/// The role labels: what the responder proves, and what the dialler proves. They differ, so
/// that no MAC one side makes can be passed off as the other's.
const ROLE_ACCEPT: &str = "accept";
const ROLE_DIAL: &str = "dial";

type HmacSha256 = Hmac<Sha256>;

/// What a node says about itself in a handshake, and the secret it proves.
#[derive(Clone)]
pub struct Identity {
    pub node_id: u64,
    pub cluster_id: String,
    /// The configuration epoch (DESIGN §7).
    pub epoch: u64,
    /// How many nodes the cluster has, this one included.
    pub members: u32,
    secret: Vec<u8>,
    /// Set once this node's store holds records only a mostdb speaking CAS can read: a peer
    /// that does not speak CAS is then refused (DESIGN §10, mixed versions).
    cas_mark: Option<Arc<CasMark>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("node_id", &format_args!("{:016x}", self.node_id))
            .field("cluster_id", &self.cluster_id)
            .field("epoch", &self.epoch)
            .field("members", &self.members)
            .finish_non_exhaustive()
    }
}

impl Identity {
    pub fn new(node_id: u64, cluster_id: &str, epoch: u64, members: u32, secret: &[u8]) -> Self {
        Identity {
            node_id,
            cluster_id: cluster_id.to_string(),
            epoch,
            members,
            secret: secret.to_vec(),
            cas_mark: None,
        }
    }

    /// Refuses peers that do not speak CAS once `mark` is set.
    pub fn with_cas_mark(mut self, mark: Arc<CasMark>) -> Self {
        self.cas_mark = Some(mark);
        self
    }

    /// Why `peer` may not link with this node: it does not speak CAS, and this node's store
    /// holds records it could not read.
    fn refuses_without_cas(&self, peer: &PeerHello) -> Option<String> {
        let holds = self.cas_mark.as_ref().is_some_and(|m| m.is_set());
        (holds && !peer.cas).then(|| {
            format!(
                "node {:016x} runs a mostdb without compare-and-set, and node {:016x} holds \
                 records written by compare-and-set or with a time to live, which it cannot \
                 read: upgrade it",
                peer.node_id, self.node_id
            )
        })
    }

    /// The MAC, under this node's secret, of `role` over `first`'s then `second`'s claims and
    /// the two nonces in the order given. Every field is length-prefixed.
    fn mac(
        &self,
        role: &str,
        (first, second): (&Claims<'_>, &Claims<'_>),
        nonces: [&Nonce; 2],
    ) -> HmacSha256 {
        // HMAC takes a key of any length: this cannot fail.
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC accepts any key");
        let mut field = |bytes: &[u8]| {
            mac.update(&(bytes.len() as u64).to_le_bytes());
            mac.update(bytes);
        };
        field(PEER_PROTOCOL.as_bytes());
        field(role.as_bytes());
        for claims in [first, second] {
            field(claims.node.as_bytes());
            field(claims.cluster_id.as_bytes());
            field(&claims.epoch.to_le_bytes());
            field(&claims.members.to_le_bytes());
        }
        for nonce in nonces {
            field(&nonce.0);
        }
        mac
    }
}

/// What the other side of an accepted handshake said about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerHello {
    pub node_id: u64,
    pub cluster_id: String,
    pub epoch: u64,
    pub members: u32,
    /// It answers `SyncRequest::View` (see `H_FEATURES`).
    pub view: bool,
    /// It speaks CAS.
    pub cas: bool,
    /// It answers `SyncRequest::Range`.
    pub list: bool,
}

/// A fresh random challenge (each side sends one).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

impl Nonce {
    /// From the kernel's random source; if that is unreadable, from std's randomly keyed
    /// SipHash over the time and a counter (unpredictable to others all the same).
    pub fn random() -> Nonce {
        use std::io::Read;
        let mut bytes = [0; NONCE_BYTES];
        let from_kernel = std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .is_ok();
        if !from_kernel {
            use std::hash::{BuildHasher, Hasher};
            let state = std::collections::hash_map::RandomState::new();
            for (i, chunk) in bytes.chunks_mut(8).enumerate() {
                let mut h = state.build_hasher();
                h.write_usize(i);
                h.write_u128(std::time::UNIX_EPOCH.elapsed().map_or(0, |d| d.as_nanos()));
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        Nonce(bytes)
    }
}

/// How many kinds of refusal there are.
const REFUSAL_CODES: usize = 9;

/// A refusal's kind: the first word of its body, so the dialler can act on it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RefusalCode {
    /// The request is not a well-formed peer handshake (400).
    Malformed,
    /// Another protocol version (409).
    Protocol,
    /// The dialler did not prove this node's secret (its proof was wrong, late or missing;
    /// the link is closed), or the responder's answer did not prove the dialler's.
    Secret,
    /// No cluster secret, and the dialler's address is not one of the members' (403).
    Address,
    /// The dialler reached itself (409): it must stop dialling that address.
    SelfDial,
    /// Another cluster (409).
    Cluster,
    /// Another configuration epoch (409).
    Epoch,
    /// Another member count (409).
    Members,
    /// Anything else the dialler got (another status, an unknown code).
    Other,
}

impl RefusalCode {
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::Malformed => "malformed",
            RefusalCode::Protocol => "protocol",
            RefusalCode::Secret => "secret",
            RefusalCode::Address => "address",
            RefusalCode::SelfDial => "self",
            RefusalCode::Cluster => "cluster",
            RefusalCode::Epoch => "epoch",
            RefusalCode::Members => "members",
            RefusalCode::Other => "other",
        }
    }

    /// Whether a refusal of this kind may be logged loudly now (and records that it was).
    fn claim_warning(self, now_ms: u64) -> bool {
        static LAST_WARNED_MS: [AtomicU64; REFUSAL_CODES] =
            [const { AtomicU64::new(0) }; REFUSAL_CODES];
        let last = &LAST_WARNED_MS[self as usize];
        let previous = last.load(Ordering::Relaxed);
        let due = previous == 0 || now_ms.saturating_sub(previous) >= PEER_REFUSAL_LOG_INTERVAL_MS;
        due && last
            .compare_exchange(
                previous,
                now_ms.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
    }

    fn from_word(word: &str) -> RefusalCode {
        [
            RefusalCode::Malformed,
            RefusalCode::Protocol,
            RefusalCode::Secret,
            RefusalCode::Address,
            RefusalCode::SelfDial,
            RefusalCode::Cluster,
            RefusalCode::Epoch,
            RefusalCode::Members,
        ]
        .into_iter()
        .find(|code| code.as_str() == word)
        .unwrap_or(RefusalCode::Other)
    }
}

/// The responder's "no": an HTTP status and a text body `"{code}: {reason}"`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: RefusalCode,
    pub reason: String,
}

impl Refusal {
    fn new(status: u16, code: RefusalCode, reason: String) -> Refusal {
        Refusal {
            status,
            code,
            reason,
        }
    }

    /// No cluster secret, and `from` is not an address of the member list.
    pub fn address(from: IpAddr) -> Refusal {
        let reason = format!(
            "{from} is not an address of the member list (without MOSTDB_CLUSTER_SECRET only \
             members' addresses may open peer links)"
        );
        Refusal::new(403, RefusalCode::Address, reason)
    }

    /// The response body.
    pub fn body(&self) -> Vec<u8> {
        format!("{}: {}", self.code.as_str(), self.reason).into_bytes()
    }

    /// The one line the refusing side logs: at warn level, but at most once per
    /// `PEER_REFUSAL_LOG_INTERVAL_MS` for each kind of refusal (a misconfigured peer redials
    /// every few seconds from each of its cores); otherwise, and for a node that dialled
    /// itself (expected once per address and core), at debug level.
    pub fn log(&self) {
        if self.code != RefusalCode::SelfDial && self.code.claim_warning(unix_ms()) {
            tracing::warn!(
                status = self.status,
                code = self.code.as_str(),
                "refusing a peer connection: {}",
                self.reason
            );
        } else {
            tracing::debug!(
                status = self.status,
                code = self.code.as_str(),
                "refusing a peer connection: {}",
                self.reason
            );
        }
    }
}

/// Why a dialler's handshake did not give a link.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The address leads back to this node: never dial it again.
    #[error("the address leads to this node itself")]
    SelfDial,
    #[error("refused with {status} ({}): {reason}", code.as_str())]
    Refused {
        status: u16,
        code: RefusalCode,
        reason: String,
    },
    /// The answer's proof is wrong: the responder does not hold our secret.
    #[error("the peer's proof does not match our cluster secret")]
    BadProof,
    #[error("the peer disagrees: {what}")]
    Mismatch { what: String },
    #[error("malformed handshake answer: {what}")]
    Malformed { what: &'static str },
}

/// The dialler's `Upgrade` request to `host` (the peer's `host:port`): its claims and its
/// challenge `nonce`. It proves nothing yet: that comes after the responder's challenge.
pub fn dial_request(me: &Identity, host: &str, nonce: &Nonce) -> Vec<u8> {
    let node = format!("{:016x}", me.node_id);
    let mut req = String::with_capacity(512);
    let _ = write!(
        req,
        "GET {PEER_PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n\
         Upgrade: {PEER_PROTOCOL}\r\n{H_NODE}: {node}\r\n{H_CLUSTER}: {}\r\n\
         {H_EPOCH}: {}\r\n{H_MEMBERS}: {}\r\n{H_NONCE}: {}\r\n\
         {H_FEATURES}: {FEATURE_VIEW},{FEATURE_CAS},{FEATURE_LIST}\r\n\r\n",
        me.cluster_id,
        me.epoch,
        me.members,
        hex(&nonce.0)
    );
    req.into_bytes()
}

/// What one side claims about itself, as it appears on the wire (the node id in hex).
struct Claims<'a> {
    node: &'a str,
    cluster_id: &'a str,
    epoch: u64,
    members: u32,
}

impl<'a> Claims<'a> {
    fn of(me: &'a Identity, node_hex: &'a str) -> Claims<'a> {
        Claims {
            node: node_hex,
            cluster_id: &me.cluster_id,
            epoch: me.epoch,
            members: me.members,
        }
    }

    fn of_peer(fields: &'a Fields<'a>) -> Claims<'a> {
        Claims {
            node: fields.node,
            cluster_id: &fields.hello.cluster_id,
            epoch: fields.hello.epoch,
            members: fields.hello.members,
        }
    }
}

/// The peer's identity fields and challenge, as sent in either direction.
struct Fields<'h> {
    node: &'h str,
    hello: PeerHello,
    nonce: Nonce,
}

/// The responder's yes: the `101`'s header lines (each `Name: value\r\n`), who dialled, and
/// the proof the dialler still owes.
#[derive(Debug)]
pub struct Accepted {
    pub lines: Vec<u8>,
    pub peer: PeerHello,
    pub awaited: AwaitedProof,
}

/// What the responder waits for after its `101`: the dialler's MAC over the responder's
/// nonce. Nothing is served on the link until [`AwaitedProof::check`] passes.
#[derive(Clone)]
pub struct AwaitedProof {
    expected: HmacSha256,
    peer_node: u64,
}

impl std::fmt::Debug for AwaitedProof {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwaitedProof")
            .field("peer_node", &format_args!("{:016x}", self.peer_node))
            .finish_non_exhaustive()
    }
}

impl AwaitedProof {
    /// The dialler's record after the upgrade, compared in constant time.
    pub fn check(&self, record: &[u8]) -> Result<(), Refusal> {
        self.expected.clone().verify_slice(record).map_err(|_| {
            self.unproven("sent a wrong proof: it does not hold this cluster's secret")
        })
    }

    /// The refusal of a link whose proof did not come (`why`, in words for the log).
    pub fn unproven(&self, why: &str) -> Refusal {
        let reason = format!("node {:016x} {why}", self.peer_node);
        Refusal::new(403, RefusalCode::Secret, reason)
    }
}

/// The responder's check of a dialler's request (its headers, as parsed by the HTTP layer),
/// answered with this node's own fresh challenge `nonce`.
pub fn check_request(
    me: &Identity,
    headers: &[(&str, &[u8])],
    nonce: &Nonce,
) -> Result<Accepted, Refusal> {
    let malformed = |what: &str| {
        let reason = format!("not a peer handshake: {what}");
        Refusal::new(400, RefusalCode::Malformed, reason)
    };
    let upgrade = header(headers, "Upgrade").ok_or_else(|| malformed("no Upgrade header"))?;
    if !upgrade.eq_ignore_ascii_case(PEER_PROTOCOL) {
        let reason = format!("the dialler speaks {upgrade:?}, this node {PEER_PROTOCOL:?}");
        return Err(Refusal::new(409, RefusalCode::Protocol, reason));
    }
    let fields = read_fields(headers).map_err(malformed)?;
    if fields.hello.node_id == me.node_id {
        let reason = format!("node {:016x} dialled itself", me.node_id);
        return Err(Refusal::new(409, RefusalCode::SelfDial, reason));
    }
    if let Err((code, reason)) = compare(me, &fields.hello) {
        return Err(Refusal::new(409, code, reason));
    }
    if let Some(reason) = me.refuses_without_cas(&fields.hello) {
        return Err(Refusal::new(409, RefusalCode::Protocol, reason));
    }
    let node = format!("{:016x}", me.node_id);
    let (mine, theirs) = (Claims::of(me, &node), Claims::of_peer(&fields));
    let accept = me.mac(ROLE_ACCEPT, (&mine, &theirs), [&fields.nonce, nonce]);
    let expected = me.mac(ROLE_DIAL, (&theirs, &mine), [nonce, &fields.nonce]);
    let mut lines = String::with_capacity(256);
    let _ = write!(
        lines,
        "{H_NODE}: {node}\r\n{H_CLUSTER}: {}\r\n{H_EPOCH}: {}\r\n{H_MEMBERS}: {}\r\n\
         {H_NONCE}: {}\r\n{H_PROOF}: {}\r\n{H_FEATURES}: {FEATURE_VIEW},{FEATURE_CAS},\
         {FEATURE_LIST}\r\n",
        me.cluster_id,
        me.epoch,
        me.members,
        hex(&nonce.0),
        hex(&accept.finalize().into_bytes())
    );
    let awaited = AwaitedProof {
        expected,
        peer_node: fields.hello.node_id,
    };
    Ok(Accepted {
        lines: lines.into_bytes(),
        peer: fields.hello,
        awaited,
    })
}

/// Same cluster, epoch and member count, or which differs (in words for the log).
fn compare(me: &Identity, peer: &PeerHello) -> Result<(), (RefusalCode, String)> {
    let node = format!("node {:016x}", peer.node_id);
    if peer.cluster_id != me.cluster_id {
        let why = format!(
            "{node} is in cluster {:?}, this node in {:?}",
            peer.cluster_id, me.cluster_id
        );
        return Err((RefusalCode::Cluster, why));
    }
    if peer.epoch != me.epoch {
        let why = format!(
            "{node} runs configuration epoch {}, this node {}",
            peer.epoch, me.epoch
        );
        return Err((RefusalCode::Epoch, why));
    }
    if peer.members != me.members {
        let why = format!(
            "{node} counts {} members, this node {}",
            peer.members, me.members
        );
        return Err((RefusalCode::Members, why));
    }
    Ok(())
}

/// The dialler's side of an accepted handshake: who answered, and the proof to send as the
/// first bytes after the upgrade.
#[derive(Debug, PartialEq, Eq)]
pub struct Answered {
    pub peer: PeerHello,
    pub proof: [u8; PROOF_BYTES],
}

/// The dialler's check of the answer to [`dial_request`] (sent with `nonce`): `status`, header
/// lines and body (a refusal's reason) of the response.
pub fn check_response(
    me: &Identity,
    nonce: &Nonce,
    status: u16,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> Result<Answered, HandshakeError> {
    if status != 101 {
        return Err(refusal_of(status, body));
    }
    let upgrade = header(headers, "Upgrade");
    if !upgrade.is_some_and(|u| u.eq_ignore_ascii_case(PEER_PROTOCOL)) {
        return Err(HandshakeError::Malformed {
            what: "101 without our Upgrade protocol",
        });
    }
    let fields = read_fields(headers).map_err(|what| HandshakeError::Malformed { what })?;
    let sent = header(headers, H_PROOF)
        .and_then(unhex::<PROOF_BYTES>)
        .ok_or(HandshakeError::Malformed {
            what: "no valid proof",
        })?;
    let node = format!("{:016x}", me.node_id);
    let (mine, theirs) = (Claims::of(me, &node), Claims::of_peer(&fields));
    let accept = me.mac(ROLE_ACCEPT, (&theirs, &mine), [nonce, &fields.nonce]);
    // `verify_slice` compares in constant time.
    if accept.verify_slice(&sent).is_err() {
        return Err(HandshakeError::BadProof);
    }
    if fields.hello.node_id == me.node_id {
        return Err(HandshakeError::SelfDial);
    }
    compare(me, &fields.hello).map_err(|(_, what)| HandshakeError::Mismatch { what })?;
    if let Some(what) = me.refuses_without_cas(&fields.hello) {
        return Err(HandshakeError::Mismatch { what });
    }
    let proof = me.mac(ROLE_DIAL, (&mine, &theirs), [&fields.nonce, nonce]);
    Ok(Answered {
        peer: fields.hello,
        proof: proof.finalize().into_bytes().into(),
    })
}

/// A non-101 answer: a refusal in our format (`"{code}: {reason}"`), or whatever else the
/// address answered (an old node, another server).
fn refusal_of(status: u16, body: &[u8]) -> HandshakeError {
    let text = String::from_utf8_lossy(body);
    let (code, reason) = match text.split_once(": ") {
        Some((word, reason)) => (RefusalCode::from_word(word), reason.to_string()),
        None => (RefusalCode::Other, text.into_owned()),
    };
    if code == RefusalCode::SelfDial {
        return HandshakeError::SelfDial;
    }
    HandshakeError::Refused {
        status,
        code,
        reason,
    }
}

fn read_fields<'h>(headers: &[(&'h str, &'h [u8])]) -> Result<Fields<'h>, &'static str> {
    let node = header(headers, H_NODE).ok_or("no node id")?;
    let node_id = (node.len() == 16 && node.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| u64::from_str_radix(node, 16).ok())
        .flatten()
        .ok_or("node id is not 16 hex digits")?;
    let cluster_id = header(headers, H_CLUSTER).ok_or("no cluster id")?;
    let epoch = header(headers, H_EPOCH)
        .and_then(|e| e.parse().ok())
        .ok_or("no valid epoch")?;
    let members = header(headers, H_MEMBERS)
        .and_then(|m| m.parse().ok())
        .ok_or("no valid member count")?;
    let nonce = header(headers, H_NONCE)
        .and_then(unhex::<NONCE_BYTES>)
        .ok_or("no valid nonce")?;
    Ok(Fields {
        node,
        hello: PeerHello {
            node_id,
            cluster_id: cluster_id.to_string(),
            epoch,
            members,
            view: announces(headers, FEATURE_VIEW),
            cas: announces(headers, FEATURE_CAS),
            list: announces(headers, FEATURE_LIST),
        },
        nonce: Nonce(nonce),
    })
}

/// Whether the features header lists `feature`.
fn announces(headers: &[(&str, &[u8])], feature: &str) -> bool {
    header(headers, H_FEATURES).is_some_and(|f| f.split(',').any(|x| x.trim() == feature))
}

/// The first header with this name (case-insensitive), if its value is ASCII text.
fn header<'h>(headers: &[(&'h str, &'h [u8])], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .take(HEADERS_MAX)
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
}

fn unix_ms() -> u64 {
    std::time::UNIX_EPOCH
        .elapsed()
        .map_or(0, |d| d.as_millis() as u64)
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
#[path = "handshake_tests.rs"]
mod tests;
