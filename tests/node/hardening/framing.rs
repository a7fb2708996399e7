//! Request framing an attacker plays with: an empty `Transfer-Encoding` beside a
//! `Content-Length` must be refused like any other pair of framings (RFC 9112 §6.1), and
//! nothing sent after it on that connection may run.

use crate::support::*;

#[test]
fn an_empty_transfer_encoding_is_refused_and_nothing_after_it_runs() {
    let node = Node::start();
    let smuggled = post("/mostdb/set", kv("smuggled", "yes").as_bytes());
    let mut attack = b"POST /mostdb/get HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n\
                       Content-Length: 0\r\n\r\n"
        .to_vec();
    attack.extend_from_slice(&smuggled);
    let mut c = node.client();
    c.send(&attack);
    let r = c.read_response();
    assert_eq!(r.status, 400, "{}", show(&r.raw));
    c.assert_closed();
    // The bytes after the refused head never ran as a request.
    let r = node.client().post("/mostdb/get", &k("smuggled"));
    r.assert_json(200, NOT_FOUND);
}

#[test]
fn an_empty_transfer_encoding_alone_is_refused() {
    let node = Node::start();
    let mut c = node.client();
    c.send(b"POST /mostdb/get HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \r\n\r\n");
    assert_eq!(c.read_response().status, 400);
    c.assert_closed();
}
