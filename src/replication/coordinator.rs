//! The quorum coordinator of DESIGN §3 as sans-IO state machines: one [`WriteOp`] or
//! [`ReadOp`] per client operation, fed by a driver (the runtime in production, the seeded
//! simulator in tests) with replica answers, "never sent" notices and the deadline, and
//! answering with [`Action`]s: requests to send, a fresh version to take from the clock, or
//! the outcome.
//!
//! The replicas are numbered `0..n` (the local one among them: it gets the same requests,
//! under the same rules, no shortcut); a majority is `n / 2 + 1`. Every request carries the
//! *round* it belongs to and answers are matched by it, so a late answer to an earlier
//! attempt can never be counted as an answer to the current one. Nothing here does I/O or
//! reads a clock: versions come from the driver's HLC (which must observe
//! [`WriteOp::observed`] / [`ReadOp::observed`] after every step, and `above` before taking a
//! version for [`Action::NeedVersion`]; a bounded clock may not get above a far-future
//! `above`, and the write then fails definitely). A replica's `RefusedFuture` (the version is
//! beyond its clock bound) means "not stored there, ever, from this request".
//!
//! Must not import `http`, `api`, `runtime` or `storage` beyond [`Version`] and `Meta`.

mod cas;
mod contended;
mod read;
mod write;

pub use crate::cluster::quorum;
pub use crate::config::WriteMode;
pub use cas::{compare_holds, CasDone, CasOp, Change, Current, Expect};
pub use contended::ContendedKeys;
pub use read::{ReadDone, ReadOp};
pub use write::{Payload, WriteDone, WriteOp};

use super::protocol::{ReplicaReply, ReplicaRequest};
use crate::limits;
use crate::storage::Version;

/// What the driver must do after feeding a state machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<T> {
    /// Send `request` to every replica in `to`, tagged with `round`; feed each answer back
    /// with the same round, or report it never sent ([`WriteOp::on_not_sent`]) when the
    /// transport knows it was never written to a socket.
    Send {
        round: u32,
        to: ReplicaSet,
        request: ReplicaRequest,
    },
    /// Observe `above` in the clock, then call [`WriteOp::on_version`] with a fresh version
    /// (necessarily above it).
    NeedVersion { above: Version },
    /// The operation is over; every later input answers [`Action::Wait`].
    Done(T),
    /// Nothing to do until the next answer, notice or deadline.
    Wait,
}

impl<T> Action<T> {
    /// The same action, with an outcome of another type.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Action<U> {
        match self {
            Action::Send { round, to, request } => Action::Send { round, to, request },
            Action::NeedVersion { above } => Action::NeedVersion { above },
            Action::Done(done) => Action::Done(f(done)),
            Action::Wait => Action::Wait,
        }
    }
}

/// What happens to an operation, as its driver reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Replica `from` answered a request of round `round`.
    Reply {
        from: usize,
        round: u32,
        reply: ReplicaReply,
    },
    /// The request of round `round` to replica `to` was never written to a socket.
    NotSent { to: usize, round: u32 },
    /// The fresh version asked for by [`Action::NeedVersion`].
    Version(Version),
    /// The operation's deadline passed.
    Deadline,
}

/// A client operation as a sans-IO state machine. The driver (`super::driver`) and the
/// simulator run every kind through one loop: start it, carry out each [`Action`], feed back
/// each [`Input`], until [`Action::Done`].
pub trait Operation {
    /// How the operation ended.
    type Done;
    /// One input; answers what to do next.
    fn feed(&mut self, input: Input) -> Action<Self::Done>;
    /// The largest version seen in any answer so far: the coordinator's clock observes it.
    fn observed(&self) -> Version;
    fn is_done(&self) -> bool;
    /// Attempts preempted by other proposers so far: the driver backs off before giving the
    /// next fresh version (writes and reads never wait).
    fn retries(&self) -> u32 {
        0
    }
}

/// A set of replica indices (`0..REPLICAS_MAX`).
#[derive(Copy, Clone, Default, PartialEq, Eq, Hash)]
pub struct ReplicaSet(u64);

impl ReplicaSet {
    pub const EMPTY: ReplicaSet = ReplicaSet(0);

    /// Replicas `0..n`.
    pub fn all(n: usize) -> ReplicaSet {
        assert!(
            n <= limits::REPLICAS_MAX,
            "{n} replicas: at most {}",
            limits::REPLICAS_MAX
        );
        if n == 64 {
            ReplicaSet(u64::MAX)
        } else {
            ReplicaSet((1u64 << n) - 1)
        }
    }

    /// The set of the given replicas (indices at or above `REPLICAS_MAX` are left out).
    pub fn of(replicas: impl IntoIterator<Item = usize>) -> ReplicaSet {
        let mut set = ReplicaSet::EMPTY;
        for r in replicas {
            set.insert(r);
        }
        set
    }

    pub fn insert(&mut self, replica: usize) {
        if replica < limits::REPLICAS_MAX {
            self.0 |= 1 << replica;
        }
    }

    pub fn remove(&mut self, replica: usize) {
        if replica < limits::REPLICAS_MAX {
            self.0 &= !(1 << replica);
        }
    }

    pub fn contains(&self, replica: usize) -> bool {
        replica < limits::REPLICAS_MAX && self.0 & (1 << replica) != 0
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// The replicas in both sets.
    pub fn intersect(self, other: ReplicaSet) -> ReplicaSet {
        ReplicaSet(self.0 & other.0)
    }

    /// The members, in increasing order.
    pub fn iter(&self) -> impl Iterator<Item = usize> {
        let bits = self.0;
        (0..limits::REPLICAS_MAX).filter(move |r| bits & (1 << r) != 0)
    }
}

impl std::fmt::Debug for ReplicaSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// Checks the cluster size a state machine is started with: a configuration error, never
/// input from the network.
fn check_replicas(n: usize) {
    assert!(
        (1..=limits::REPLICAS_MAX).contains(&n),
        "a cluster has 1..={} nodes, not {n}",
        limits::REPLICAS_MAX
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_a_strict_majority() {
        assert_eq!(quorum(1), 1);
        assert_eq!(quorum(2), 2);
        assert_eq!(quorum(3), 2);
        assert_eq!(quorum(4), 3);
        assert_eq!(quorum(5), 3);
        for n in 1..=limits::REPLICAS_MAX {
            assert!(2 * quorum(n) > n, "two majorities of {n} share a replica");
        }
    }

    #[test]
    fn replica_set_basics() {
        let mut set = ReplicaSet::of([0, 3, 63, 64, 200]);
        assert_eq!(set.len(), 3);
        assert!(set.contains(3) && set.contains(63) && !set.contains(64));
        set.remove(3);
        assert_eq!(set.iter().collect::<Vec<_>>(), vec![0, 63]);
        assert_eq!(ReplicaSet::all(3).iter().collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(ReplicaSet::all(64).len(), 64);
        assert!(ReplicaSet::all(0).is_empty());
        assert_eq!(
            ReplicaSet::all(5).intersect(ReplicaSet::of([1, 7])),
            ReplicaSet::of([1])
        );
        assert_eq!(format!("{:?}", ReplicaSet::of([1, 2])), "{1, 2}");
    }
}

#[cfg(test)]
mod cas_tests;
#[cfg(test)]
mod machine_tests;
#[cfg(test)]
mod refusal_tests;
