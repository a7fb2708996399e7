//! The clock bound's nemeses and invariants (DESIGN §14): a node's clock leaping far beyond
//! the bound for a while, a hostile peer forging far-future versions, and the bounded HLC
//! rule with its check (B2: no clock observes beyond its physical clock plus the bound; B1,
//! no replica stores beyond it, is checked where the world stores).

use super::world::{key_bytes, Check, Event, World, MAX_SKEW_MS};
use mostdb::replication::clock::{self, Observation, COUNTER_BITS};
use mostdb::replication::protocol::ReplicaRequest;
use mostdb::storage::{Meta, Version};

/// How far the far jump nemesis moves a clock: ten times the bound.
const FAR_JUMP_MS: u64 = 10 * MAX_SKEW_MS;
/// How far ahead of its target's clock a forged version is: far more than any jump can ever
/// bring a clock to, so it stays beyond the bound until delivered.
const FORGED_AHEAD_MS: u64 = 1_000 * MAX_SKEW_MS;
/// The origin of a hostile peer's forged versions (no node issues under it).
const FORGED_ORIGIN: u64 = 0xBAD;

impl World {
    /// A node's clock takes in `version` under the bounded HLC rule of `replication::clock`;
    /// B2: it never holds a value beyond its physical clock plus the bound as a result.
    pub fn observe(&mut self, node: usize, version: Version) -> Check {
        let n = &mut self.nodes[node];
        let phys = n.phys_ms(self.now);
        match clock::observe_bounded(n.hlc_last, version.hlc, phys, MAX_SKEW_MS) {
            Observation::Taken(last) => {
                n.hlc_last = last;
                if clock::hlc_ms(last) > phys + MAX_SKEW_MS {
                    return self.violated(format!(
                        "B2: n{node}'s clock observed {last:#x}, beyond its clock ({phys} ms) + the bound"
                    ));
                }
            }
            Observation::Ignored => self.stats.ignored_observations += 1,
            Observation::Older => {}
        }
        Ok(())
    }

    /// The far jump nemesis: a node's clock leaps ten bounds ahead for a while, then back.
    pub fn on_far_jump(&mut self, node: usize, ahead: bool) {
        if ahead {
            let node = self.rng.below(self.cfg.nodes as u64) as usize;
            self.nodes[node].skew_ms += FAR_JUMP_MS as i64;
            self.stats.far_jumps += 1;
            let back = self.rng.range(10, 100);
            self.schedule(back, Event::FarJump { node, ahead: false });
            let next = self.rng.range(1, 2 * self.cfg.far_jump_every_ms);
            self.schedule(
                next,
                Event::FarJump {
                    node: 0,
                    ahead: true,
                },
            );
        } else {
            self.nodes[node].skew_ms -= FAR_JUMP_MS as i64;
        }
    }

    /// A hostile peer (it passed the handshake) sends a random node a PUT, REPAIR or COPY of
    /// a random key under a version far in the future: `u64::MAX`, or [`FORGED_AHEAD_MS`] ahead
    /// of the target's clock. Nobody waits for an answer.
    pub fn on_forge(&mut self) {
        let next = self.rng.range(1, 2 * self.cfg.forge_every_ms);
        self.schedule(next, Event::Forge);
        let to = self.rng.below(self.cfg.nodes as u64) as usize;
        let key = key_bytes(self.rng.below(self.cfg.keys as u64) as usize);
        let hlc = if self.rng.chance(500) {
            u64::MAX
        } else {
            (self.nodes[to].phys_ms(self.now) + FORGED_AHEAD_MS) << COUNTER_BITS
        };
        let version = Version {
            hlc,
            origin: FORGED_ORIGIN,
        };
        let value = Some(b"forged".to_vec());
        let request = match self.rng.below(3) {
            0 => ReplicaRequest::Put {
                key,
                version,
                value,
                meta: Meta::BLIND,
            },
            1 => ReplicaRequest::Repair {
                key,
                version,
                value,
                meta: Meta::BLIND,
            },
            _ => ReplicaRequest::Copy {
                key,
                version,
                value,
                meta: Meta::BLIND,
            },
        };
        self.stats.forged += 1;
        let delay = self.rng.range(0, 2);
        let event = Event::Request {
            to,
            from: to,
            op: None,
            round: 0,
            request,
        };
        self.schedule(delay, event);
    }
}
