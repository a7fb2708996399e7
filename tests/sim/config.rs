//! The fault and load mix of one seed, drawn from the seed itself.

use super::rng::Rng;

/// The fault and load mix of one seed (drawn from the seed itself).
#[derive(Clone, Debug)]
pub struct Config {
    pub nodes: usize,
    pub clients: usize,
    pub keys: usize,
    pub ops_per_client: u32,
    pub deadline_ms: u64,
    pub delay_ms_max: u64,
    pub loss_permille: u32,
    pub dup_permille: u32,
    /// Delivered after the operation's deadline.
    pub late_permille: u32,
    /// The transport knows the request never left (link down).
    pub not_sent_permille: u32,
    /// A live node the coordinator believes down, at the start of an operation.
    pub unreachable_permille: u32,
    pub skew_ms_max: u64,
    /// Mean time between crashes of a node (0: no crashes).
    pub crash_every_ms: u64,
    pub down_ms_max: u64,
    pub sync_every_ms_max: u64,
    pub safe_permille: u32,
    /// Foreign answers injected into a coordinator (COPY acks and the like).
    pub stray_permille: u32,
    pub clock_jumps: bool,
    /// Directed links are cut now and then (0: never), for a while: a partition.
    pub cut_every_ms: u64,
    /// Mean time between amnesia faults (a node loses its whole state; 0: never).
    pub amnesia_every_ms: u64,
    /// Mean time between far clock jumps (a node's clock leaps ten bounds ahead for a
    /// while, far beyond the skew bound; 0: never).
    pub far_jump_every_ms: u64,
    /// Mean time between forged far-future versions a hostile peer injects (0: never).
    pub forge_every_ms: u64,
    /// Client operations that are compare-and-sets (DESIGN §10), in thousandths.
    pub cas_permille: u32,
    /// Writes of a value (sets and CAS) that carry a time to live, in thousandths.
    pub ttl_permille: u32,
}

impl Config {
    pub fn random(rng: &mut Rng) -> Config {
        let nodes = if rng.chance(500) { 3 } else { 5 };
        Config {
            nodes,
            clients: rng.range(2, 5) as usize,
            keys: rng.range(1, 3) as usize,
            ops_per_client: rng.range(8, 24) as u32,
            deadline_ms: 20,
            delay_ms_max: rng.range(2, 8),
            loss_permille: rng.range(0, 80) as u32,
            dup_permille: rng.range(0, 100) as u32,
            late_permille: rng.range(0, 60) as u32,
            not_sent_permille: rng.range(0, 60) as u32,
            unreachable_permille: rng.range(0, 80) as u32,
            skew_ms_max: rng.pick(&[0, 5, 20, 60, 150]),
            crash_every_ms: rng.pick(&[0, 20, 60, 200]),
            down_ms_max: rng.range(5, 40),
            sync_every_ms_max: rng.pick(&[1, 3, 8, 20]),
            safe_permille: rng.pick(&[0, 100, 300]),
            stray_permille: rng.range(0, 50) as u32,
            clock_jumps: rng.chance(300),
            cut_every_ms: rng.pick(&[0, 0, 10, 40]),
            amnesia_every_ms: rng.pick(&[0, 60, 150, 400]),
            far_jump_every_ms: rng.pick(&[0, 0, 50, 200]),
            forge_every_ms: rng.pick(&[0, 0, 20, 100]),
            cas_permille: rng.pick(&[0, 250, 400, 700]),
            ttl_permille: rng.pick(&[0, 0, 200, 500]),
        }
    }
}
