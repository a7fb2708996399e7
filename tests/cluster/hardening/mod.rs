//! Hardening of a cluster: what a hostile peer or a skewed clock does to real nodes (DESIGN
//! §14). Each module holds the tests of one attack; each test fails on a cluster without the
//! defence it checks. Hostile clients and a full disk, which need one node, are in
//! `tests/node/hardening/`.

mod clock;
mod peer_auth;
mod tls;
