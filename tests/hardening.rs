//! Hardening: what a hostile client, a hostile peer or a full disk does to the real binary
//! (DESIGN §14). Each module holds the tests of one attack; each test fails on a node without
//! the defence it checks.

mod support;
#[path = "hardening/tls.rs"]
mod tls;
