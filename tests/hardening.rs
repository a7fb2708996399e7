//! Hardening: what a hostile client, a hostile peer or a full disk does to the real binary
//! (DESIGN §14). Each module (in `tests/hardening/`) holds the tests of one attack; each test
//! fails on a node without the defence it checks. (A test crate root looks for its modules
//! beside itself, hence the `#[path]`s.)

mod support;

#[path = "hardening/clock.rs"]
mod clock;
#[path = "hardening/connections.rs"]
mod connections;
#[path = "hardening/disk_full.rs"]
mod disk_full;
#[path = "hardening/framing.rs"]
mod framing;
#[path = "hardening/fuzz_requests.rs"]
mod fuzz_requests;
#[path = "hardening/lifecycle.rs"]
mod lifecycle;
#[path = "hardening/peer_auth.rs"]
mod peer_auth;
#[path = "hardening/tls.rs"]
mod tls;
