//! Signals and restarts a supervisor or an operator inflicts: SIGHUP must not stop the node,
//! and a node restarted at once after kill -9 (as systemd or Docker does) must come up on
//! the same port although the dead process's io_uring still holds it for a moment.

use std::time::Duration;

use crate::support::*;

/// How many kill -9 and immediate restarts on one port the restart test makes.
const KILL_RESTARTS: usize = 20;

#[test]
fn sighup_is_logged_and_the_node_keeps_serving() {
    let mut node = Node::start();
    node.client()
        .post("/mostdb/set", &kv("hup", "1"))
        .assert_json(200, OK);
    signal(node.pid(), libc::SIGHUP);
    // The node must still be there well after a signal would have killed it.
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        node.is_running(),
        "SIGHUP stopped the node\n{}",
        node.log_tail()
    );
    let r = node.client().post("/mostdb/get", &k("hup"));
    r.assert_json(200, &got("hup", "1"));
    assert!(
        node.log_tail().contains("SIGHUP"),
        "SIGHUP is not logged\n{}",
        node.log_tail()
    );
    node.stop();
}

#[test]
fn restarts_at_once_after_kill9_on_the_same_port() {
    // At an address of its own, which it keeps across restarts.
    let mut node = Node::start_fixed();
    let addr = node.addr();
    for round in 0..KILL_RESTARTS {
        let key = format!("round-{round}");
        node.client()
            .post("/mostdb/set", &kv(&key, "v"))
            .assert_json(200, OK);
        node.kill9();
        if let Err(e) = node.boot() {
            panic!("restart {round} on {addr} right after kill -9 failed: {e:?}");
        }
        assert_eq!(node.addr(), addr, "the same address");
    }
    let mut c = node.client();
    for round in 0..KILL_RESTARTS {
        let key = format!("round-{round}");
        c.post("/mostdb/get", &k(&key))
            .assert_json(200, &got(&key, "v"));
    }
}

#[test]
fn another_live_server_on_the_port_is_still_a_clear_error() {
    let first = Node::start();
    let port = first.port().to_string();
    let second = run_to_exit(&[], &[("MOSTDB_SERVER_PORT", &port)]);
    assert!(!second.status.success());
    assert!(second.stderr.contains("cannot listen"), "{}", second.stderr);
    // It gave up after the bounded retry, not at once and not never.
    assert!(
        second.elapsed < Duration::from_secs(8),
        "{:?}",
        second.elapsed
    );
}
