//! Amnesia and the recovery that answers it: a node that loses its whole state (a wiped
//! disk) and must copy from its peers, and take its promise floor from them, before it votes
//! again. A child of `world`, so it sees the world's private state.

use super::*;

impl World {
    /// Amnesia: a random up node loses everything, disk included (I2's "a replica's version
    /// never decreases" excepts this, the modelled fault), and restarts recovering. At most
    /// one node owes a recovery at a time, so N − Q + 1 healthy peers always come back.
    /// The node whose coordinators are gone, if one was wiped.
    pub fn on_amnesia(&mut self) -> Option<usize> {
        let next = self.rng.range(1, 2 * self.cfg.amnesia_every_ms);
        self.schedule(next, Event::Amnesia);
        let node = self.rng.below(self.cfg.nodes as u64) as usize;
        if !self.nodes[node].up || self.nodes.iter().any(|n| n.owes_recovery) {
            return None;
        }
        self.stats.wipes += 1;
        self.wipes += 1;
        let origin = 2 * (self.wipes * self.cfg.nodes as u64 + node as u64 + 1);
        let n = &mut self.nodes[node];
        n.up = false;
        n.incarnation += 1;
        n.volatile.clear();
        n.durable.clear();
        n.dirty = false;
        n.held.clear();
        n.revealed.clear();
        n.hlc_last = 0;
        n.origin = origin;
        n.floor = Version::ZERO;
        n.owes_recovery = true;
        // The planted bug: the node does not notice what it lost and votes at once.
        n.recovering = !cfg!(feature = "planted-amnesia-vote");
        let down = self.rng.range(1, self.cfg.down_ms_max);
        self.schedule(down, Event::Restart(node));
        Some(node)
    }

    /// The recovery proper: copy every durable record of N − Q + 1 peers that are up and not
    /// recovering (each COPY stored iff newer), make it durable, then vote again. Too few such
    /// peers: try again a little later.
    pub fn on_recover(&mut self, node: usize, incarnation: u32) -> Check {
        let n = &self.nodes[node];
        if !n.up || n.incarnation != incarnation || !n.recovering {
            return Ok(());
        }
        let mut peers: Vec<usize> = (0..self.cfg.nodes)
            .filter(|&p| p != node && self.nodes[p].up && !self.nodes[p].recovering)
            .collect();
        let needed = self.cfg.nodes - quorum(self.cfg.nodes) + 1;
        if peers.len() < needed {
            let retry = self.rng.range(1, RECOVERY_RETRY_MS_MAX);
            self.schedule(retry, Event::Recover { node, incarnation });
            return Ok(());
        }
        while peers.len() > needed {
            let drop = self.rng.below(peers.len() as u64) as usize;
            peers.remove(drop);
        }
        let mut refused = false;
        let mut floor = 0;
        for peer in peers {
            floor = floor.max(self.nodes[peer].hlc_last);
            let records: Vec<(usize, Record)> = self.nodes[peer]
                .durable
                .iter()
                .map(|(k, r)| (*k, r.clone()))
                .collect();
            for (key, record) in records {
                let request = ReplicaRequest::Copy {
                    key: key_bytes(key),
                    version: record.version,
                    value: record.value,
                    meta: record.meta,
                };
                self.observe(node, record.version)?;
                let bound = self.nodes[node].bound(self.now);
                let decision = decide(self.nodes[node].volatile.get(&key), &request, bound);
                refused |= decision.reply == ReplicaReply::RefusedFuture;
                if decision.store {
                    self.store(node, key, &request)?;
                }
            }
        }
        if refused {
            // A copy beyond this node's bound (its clock is behind the record's issuer): it
            // does not hold everything yet, so it must not vote. The real recovery's pass
            // counts the refused copy as failed and tries again, like this.
            self.stats.refused_future += 1;
            let retry = self.rng.range(1, RECOVERY_RETRY_MS_MAX);
            self.schedule(retry, Event::Recover { node, incarnation });
            return Ok(());
        }
        let n = &mut self.nodes[node];
        n.durable = n.volatile.clone();
        n.dirty = false;
        // Durable before it votes, like the real node's promise-floor file.
        n.floor = n.floor.max(Version {
            hlc: floor,
            origin: u64::MAX,
        });
        n.recovering = false;
        n.owes_recovery = false;
        self.stats.recoveries += 1;
        Ok(())
    }
}
