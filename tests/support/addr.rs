//! Where test nodes listen, chosen so that no harness guesses a free port.
//!
//! A single node listens on port 0 of 127.0.0.1 and reports the port it got (see `node.rs`).
//! A cluster's members must name one another before any of them starts, so each gets a fixed
//! address of its own: the loopback address of this test process (all of 127/8 is loopback on
//! Linux), `127.0.0.0 + (pid << 2 | 1)`, with a port counted up from [`PORT_LOW`]. A pid is
//! below 2^22 (the kernel's limit), so that address is unique among running processes, and
//! odd, so never 127.0.0.1 or an even address a test uses as an outsider. The ports lie below
//! the kernel's ephemeral range, where no outgoing connection is ever given one, and nothing
//! else binds this process's address: an address handed out is free, and stays the node's own
//! across restarts. (Only a listener on the wildcard address in that port range, which no
//! test starts, could collide.)
//!
//! Must not import the `mostdb` library.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

/// The first port handed out on the process's loopback address.
pub const PORT_LOW: u16 = 20_000;
/// Where the kernel's ephemeral range starts when `/proc` does not say (Linux's default).
const EPHEMERAL_LOW_DEFAULT: u16 = 32_768;
/// Bits of the loopback address left below the pid (the low bit set: never an even address).
const PID_SHIFT: u32 = 2;

static NEXT_PORT: AtomicU16 = AtomicU16::new(PORT_LOW);

/// This test process's own loopback address.
pub fn process_ip() -> Ipv4Addr {
    let host_bits = (std::process::id() << PID_SHIFT) | 1;
    assert!(
        host_bits < 1 << 24,
        "pid {} beyond 2^22",
        std::process::id()
    );
    Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) | host_bits)
}

/// A fixed address no other node of this or any other process listens on.
pub fn fixed() -> SocketAddr {
    let port = NEXT_PORT.fetch_add(1, Ordering::Relaxed);
    assert!(
        port < ephemeral_low(),
        "{} fixed addresses used up: the ephemeral range starts at {}",
        port - PORT_LOW,
        ephemeral_low()
    );
    SocketAddr::from((process_ip(), port))
}

/// The first port of the kernel's ephemeral range (where connect() takes its source ports).
fn ephemeral_low() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(EPHEMERAL_LOW_DEFAULT)
}
