//! The replica operations of DESIGN §3 and their answers: the one vocabulary shared by the
//! peer codec, the replica ([`super::replica`]) and the coordinator ([`super::coordinator`]).
//!
//! Keys and values are owned (`Vec<u8>`): requests and replies cross cores and sockets.
//! Must not import `http`, `api` or `runtime`.

use crate::storage::Version;

/// An operation a coordinator asks of one replica, on one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaRequest {
    /// Store `(version, value)` iff `version` is above the held one (`None` = tombstone).
    Put {
        key: Vec<u8>,
        version: Version,
        value: Option<Vec<u8>>,
    },
    /// Answer with the held version and value.
    Read { key: Vec<u8> },
    /// A read's repair: store iff newer; `RepairOk` only if the replica then holds exactly
    /// `version`.
    Repair {
        key: Vec<u8>,
        version: Version,
        value: Option<Vec<u8>>,
    },
    /// Anti-entropy or hinted handoff: store iff newer. Its ack never counts toward a quorum.
    Copy {
        key: Vec<u8>,
        version: Version,
        value: Option<Vec<u8>>,
    },
}

/// A replica's answer to one [`ReplicaRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplicaReply {
    /// PUT: the replica now holds the PUT's version (stored now, or an equal repeat).
    Accepted,
    /// PUT: the replica holds `held`, above the PUT's version; nothing was stored.
    Rejected { held: Version },
    /// READ: the held version and value. [`Version::ZERO`] = absent; `value: None` with a
    /// non-zero version = a tombstone.
    Read {
        version: Version,
        value: Option<Vec<u8>>,
    },
    /// REPAIR: the replica holds exactly the repaired version.
    RepairOk,
    /// REPAIR: the replica holds `held`, above the repaired version, and its value.
    RepairRejected {
        held: Version,
        value: Option<Vec<u8>>,
    },
    /// COPY: done (stored or not).
    CopyAck,
}

impl ReplicaRequest {
    pub fn key(&self) -> &[u8] {
        match self {
            ReplicaRequest::Put { key, .. }
            | ReplicaRequest::Read { key }
            | ReplicaRequest::Repair { key, .. }
            | ReplicaRequest::Copy { key, .. } => key,
        }
    }

    /// The version a write-like request carries (`None` for READ).
    pub fn version(&self) -> Option<Version> {
        match self {
            ReplicaRequest::Put { version, .. }
            | ReplicaRequest::Repair { version, .. }
            | ReplicaRequest::Copy { version, .. } => Some(*version),
            ReplicaRequest::Read { .. } => None,
        }
    }
}

impl ReplicaReply {
    /// The version this answer reveals (the coordinator's clock must observe it).
    pub fn version_seen(&self) -> Option<Version> {
        match self {
            ReplicaReply::Rejected { held } | ReplicaReply::RepairRejected { held, .. } => {
                Some(*held)
            }
            ReplicaReply::Read { version, .. } => Some(*version),
            ReplicaReply::Accepted | ReplicaReply::RepairOk | ReplicaReply::CopyAck => None,
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
        };
        assert_eq!(put.key(), b"k");
        assert_eq!(put.version(), Some(v(3)));
        let read = ReplicaRequest::Read { key: b"r".to_vec() };
        assert_eq!(read.key(), b"r");
        assert_eq!(read.version(), None);
        assert_eq!(
            ReplicaReply::Rejected { held: v(9) }.version_seen(),
            Some(v(9))
        );
        let answer = ReplicaReply::Read {
            version: v(4),
            value: Some(b"x".to_vec()),
        };
        assert_eq!(answer.version_seen(), Some(v(4)));
        assert_eq!(ReplicaReply::Accepted.version_seen(), None);
        assert_eq!(ReplicaReply::CopyAck.version_seen(), None);
    }
}
