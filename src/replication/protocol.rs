//! The replica operations of DESIGN §3 and their answers: the one vocabulary shared by the
//! peer codec, the replica ([`super::replica`]) and the coordinator ([`super::coordinator`]).
//!
//! Keys and values are owned (`Vec<u8>`): requests and replies cross cores and sockets.
//! Anti-entropy's questions about a whole store ([`SyncRequest`]) are kept apart from the
//! replica operations: they name no key, so no owner core, and no replica rule applies to
//! them; their answers travel as [`ReplicaReply`]s so that a link matches them like any other.
//! Must not import `http`, `api` or `runtime`.

use crate::cluster::health::{PeerReport, Reach};
use crate::storage::range::{KeyRange, RangePage};
use crate::storage::{Meta, Version};

/// Anti-entropy buckets: a record `(key, version)` falls into bucket `key_hash(key) % BUCKETS`
/// on every node, whatever its shard count. Nodes compare per-bucket digests, so this must be
/// the same on every node of a cluster (changing it is a protocol change).
pub const BUCKETS: u32 = 1024;

/// An operation a coordinator asks of one replica, on one key. PUT, REPAIR and COPY obey
/// the one store rule (`storage::rule::compare`: above the held version, at or above the
/// promise) and carry the record's [`Meta`] (written by a CAS or blind, expiry) with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaRequest {
    /// Store `(version, value)` under the store rule (`value: None` = tombstone). A CAS's
    /// accept is a PUT at its ballot with `meta.cas` set.
    Put {
        key: Vec<u8>,
        version: Version,
        value: Option<Vec<u8>>,
        meta: Meta,
    },
    /// Answer with the held version and value.
    Read { key: Vec<u8> },
    /// A read's repair: store under the store rule; `RepairOk` only if the replica then holds
    /// exactly `version`.
    Repair {
        key: Vec<u8>,
        version: Version,
        value: Option<Vec<u8>>,
        meta: Meta,
    },
    /// Anti-entropy or hinted handoff: store under the store rule. Its ack never counts
    /// toward a quorum.
    Copy {
        key: Vec<u8>,
        version: Version,
        value: Option<Vec<u8>>,
        meta: Meta,
    },
    /// A CAS's first phase (DESIGN §10): promise `ballot` (durably) if it is above the
    /// promise held, and answer with the accepted record.
    Prepare { key: Vec<u8>, ballot: Version },
}

/// A replica's answer to one [`ReplicaRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaReply {
    /// PUT: the replica now holds the PUT's version (stored now, or an equal repeat).
    Accepted,
    /// PUT: nothing was stored: the replica holds `held` (the larger of its accepted version
    /// and its promise), above the PUT's version or above it in promise. `accepted` is the
    /// accepted version, `accepted_cas` whether a CAS wrote it (safe mode counts the
    /// rejection as "holds ≥ v" only for a newer blind one, I13).
    Rejected {
        held: Version,
        accepted: Version,
        accepted_cas: bool,
    },
    /// READ: the held version, value and meta (a repair carries them on). [`Version::ZERO`]
    /// = absent; `value: None` with a non-zero version = a tombstone.
    Read {
        version: Version,
        value: Option<Vec<u8>>,
        meta: Meta,
    },
    /// REPAIR: the replica holds exactly the repaired version.
    RepairOk,
    /// REPAIR: nothing was stored: the replica holds `held` (the larger of its accepted
    /// version and its promise), above the repaired version; `accepted` is its accepted
    /// version and `value` that version's value. A promise alone (`accepted` not above the
    /// repaired version) means no newer data: the read need not start over.
    RepairRejected {
        held: Version,
        accepted: Version,
        value: Option<Vec<u8>>,
    },
    /// COPY: done (stored or not).
    CopyAck,
    /// PUT, REPAIR or COPY: the version is more than `MOSTDB_MAX_CLOCK_SKEW_MS` ahead of the
    /// replica's physical clock (DESIGN §14); nothing was stored, and nothing observed. The
    /// request is consumed: this replica will not store the version from it, ever (the
    /// transport delivers a request at most once). A coordinator counts the replica as "not
    /// stored"; it reveals no version.
    RefusedFuture,
    /// PREPARE: the ballot is promised (durably); the accepted version ([`Version::ZERO`]:
    /// absent), its value and meta.
    Promised {
        version: Version,
        value: Option<Vec<u8>>,
        meta: Meta,
    },
    /// PREPARE: the replica promised or holds `held`, at or above the ballot; nothing changed.
    Preempted { held: Version },
    /// [`SyncRequest::Digests`]: one entry per bucket, in bucket order.
    Digests { buckets: Vec<BucketDigest> },
    /// [`SyncRequest::BucketKeys`]: one page of entries, in the answering node's scan order,
    /// and where the next page starts (`None`: this was the last).
    KeyPage {
        entries: Vec<KeyVersion>,
        next: Option<Vec<u8>>,
    },
    /// [`SyncRequest::Status`]: `recovering`: the node does not vote yet (it is copying from
    /// its peers); `created`: its store was created by its current run; `records`: how many
    /// records (tombstones included) it holds.
    Status {
        recovering: bool,
        created: bool,
        records: u64,
    },
    /// [`SyncRequest::View`]: what the node says of itself, and how it sees each member.
    View(NodeView),
    /// [`SyncRequest::Range`]: the records of the range in key order, tombstones included,
    /// with their values, and whether the range ends after them.
    RangePage(RangePage),
}

/// A node's answer to [`SyncRequest::View`] (DESIGN §12): its own report and its row of the
/// reachability matrix (nodes number their members differently, and may reach them through
/// other addresses).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct NodeView {
    pub report: PeerReport,
    pub reach: Vec<ReachEntry>,
}

/// How a node sees one member: by the URL it has for it, and the member's node id as its
/// handshake proved it (0: never reached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReachEntry {
    pub url: String,
    pub node_id: u64,
    pub reach: Reach,
}

/// An anti-entropy question about a node's whole store (DESIGN §6), answered from a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncRequest {
    /// The digest and record count of every bucket.
    Digests,
    /// The `(key, version)` of every record (tombstones included) in `buckets` (ascending,
    /// distinct, each below [`BUCKETS`]), one page starting at `cursor`: empty for the first
    /// page, else the `next` of the previous page (opaque to the asker).
    BucketKeys { buckets: Vec<u32>, cursor: Vec<u8> },
    /// The node's recovery state (DESIGN §4, §7): whether it votes, and whether it holds data.
    Status,
    /// The node's own report and its view of every member (monitoring, DESIGN §12).
    View,
    /// One page of the records of a key range, at most `limit` (listing, DESIGN §11).
    Range { range: KeyRange, limit: u32 },
}

/// What a node holds in one bucket: the wrapping sum of a 64-bit hash of every `(key,
/// version)` in it, and how many records that is.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct BucketDigest {
    pub digest: u64,
    pub records: u64,
}

/// One record as anti-entropy compares it: the key and the version held (the value stays
/// home until a copy needs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyVersion {
    pub key: Vec<u8>,
    pub version: Version,
}

impl ReplicaRequest {
    pub fn key(&self) -> &[u8] {
        match self {
            ReplicaRequest::Put { key, .. }
            | ReplicaRequest::Read { key }
            | ReplicaRequest::Repair { key, .. }
            | ReplicaRequest::Copy { key, .. }
            | ReplicaRequest::Prepare { key, .. } => key,
        }
    }

    /// The version a write-like request carries, or a PREPARE's ballot (`None` for READ).
    pub fn version(&self) -> Option<Version> {
        match self {
            ReplicaRequest::Put { version, .. }
            | ReplicaRequest::Repair { version, .. }
            | ReplicaRequest::Copy { version, .. } => Some(*version),
            ReplicaRequest::Prepare { ballot, .. } => Some(*ballot),
            ReplicaRequest::Read { .. } => None,
        }
    }
}

impl ReplicaReply {
    /// The version this answer reveals (the coordinator's clock must observe it).
    pub fn version_seen(&self) -> Option<Version> {
        match self {
            ReplicaReply::Rejected { held, .. }
            | ReplicaReply::RepairRejected { held, .. }
            | ReplicaReply::Preempted { held } => Some(*held),
            ReplicaReply::Read { version, .. } | ReplicaReply::Promised { version, .. } => {
                Some(*version)
            }
            ReplicaReply::Accepted
            | ReplicaReply::RepairOk
            | ReplicaReply::CopyAck
            | ReplicaReply::RefusedFuture
            | ReplicaReply::Digests { .. }
            | ReplicaReply::KeyPage { .. }
            | ReplicaReply::Status { .. }
            | ReplicaReply::View(_)
            | ReplicaReply::RangePage(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(hlc: u64) -> Version {
        Version { hlc, origin: 1 }
    }

    #[test]
    fn accessors_name_key_and_versions() {
        let put = ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(3),
            value: None,
            meta: Meta::BLIND,
        };
        assert_eq!(put.key(), b"k");
        assert_eq!(put.version(), Some(v(3)));
        let read = ReplicaRequest::Read { key: b"r".to_vec() };
        assert_eq!(read.key(), b"r");
        assert_eq!(read.version(), None);
        assert_eq!(
            ReplicaReply::Rejected {
                held: v(9),
                accepted: v(8),
                accepted_cas: false
            }
            .version_seen(),
            Some(v(9))
        );
        let answer = ReplicaReply::Read {
            version: v(4),
            value: Some(b"x".to_vec()),
            meta: Meta::BLIND,
        };
        assert_eq!(answer.version_seen(), Some(v(4)));
        assert_eq!(ReplicaReply::Accepted.version_seen(), None);
        assert_eq!(ReplicaReply::CopyAck.version_seen(), None);
        assert_eq!(ReplicaReply::RefusedFuture.version_seen(), None);
        // Anti-entropy answers carry versions only as data: the copies they lead to are what
        // the clock observes.
        let page = ReplicaReply::KeyPage {
            entries: vec![KeyVersion {
                key: b"k".to_vec(),
                version: v(7),
            }],
            next: None,
        };
        assert_eq!(page.version_seen(), None);
        assert_eq!(
            ReplicaReply::Digests { buckets: vec![] }.version_seen(),
            None
        );
    }
}
