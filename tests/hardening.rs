//! Hardening: what a hostile client, a hostile peer or a full disk does to the real binary
//! (DESIGN §14). Each module holds the tests of one attack; each test fails on a node without
//! the defence it checks.

mod support;

// The attacks live in `tests/hardening/`; a test crate root looks for modules beside itself.
#[path = "hardening/fuzz_requests.rs"]
mod fuzz_requests;
