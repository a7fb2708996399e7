//! The replica's store rule (DESIGN §3), written once: what a replica does with an incoming
//! version given the one it holds. [`Shard::write_if_newer`](super::Shard::write_if_newer)
//! (production) and `replication::replica::decide` (the rules the protocol simulator runs)
//! both call [`compare`], so a change here reaches both, and a change anywhere else reaches
//! neither.
//!
//! A replica stores a version only if it is above the one it holds, so its version of a key
//! only grows (invariant I2); an equal version is a repeat of the same write (I1: versions
//! are issued once); an absent key holds [`Version::ZERO`].
//!
//! Must not import anything outside `storage`.

use super::Version;

/// What the store rule decides, and what [`Shard::write_if_newer`](super::Shard::write_if_newer)
/// did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The version was above the held one and is (to be) stored.
    Stored,
    /// The replica already holds exactly this version: a repeat of the same write.
    Same,
    /// The replica holds a newer version; nothing is written.
    Newer(Version),
}

/// The store rule: store `incoming` iff it is above `held`.
pub fn compare(held: Version, incoming: Version) -> WriteOutcome {
    if incoming > held {
        WriteOutcome::Stored
    } else if incoming == held {
        WriteOutcome::Same
    } else {
        WriteOutcome::Newer(held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(hlc: u64, origin: u64) -> Version {
        Version { hlc, origin }
    }

    #[test]
    fn stores_only_above_the_held_version_hlc_then_origin() {
        assert_eq!(compare(Version::ZERO, v(1, 0)), WriteOutcome::Stored);
        assert_eq!(compare(Version::ZERO, v(0, 1)), WriteOutcome::Stored);
        assert_eq!(compare(v(5, 2), v(5, 2)), WriteOutcome::Same);
        assert_eq!(compare(v(5, 2), v(5, 1)), WriteOutcome::Newer(v(5, 2)));
        assert_eq!(compare(v(5, 2), v(5, 3)), WriteOutcome::Stored);
        assert_eq!(compare(v(6, 0), v(5, 9)), WriteOutcome::Newer(v(6, 0)));
    }
}
