//! Hardening of one node: what a hostile client or a full disk does to the real binary
//! (DESIGN §14). Each module holds the tests of one attack; each test fails on a node without
//! the defence it checks. Hostile peers and clocks, which need a cluster, are in
//! `tests/cluster/hardening/`.

mod connections;
mod disk_full;
mod framing;
mod fuzz_requests;
mod lifecycle;
mod tls;
