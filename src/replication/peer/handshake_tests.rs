//! Tests of `handshake.rs`: both checks on requests and answers built by the other side,
//! parsed with httparse as the HTTP layer and the link do.

use super::*;

const SECRET: &[u8] = b"s3cret";

fn node(id: u64) -> Identity {
    Identity::new(id, "prod", 3, 3, SECRET)
}

/// The request's headers, owned, as the HTTP layer would hand them to a handler.
fn request_headers(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut slots);
    assert!(req.parse(bytes).expect("valid HTTP").is_complete());
    assert_eq!(req.method, Some("GET"));
    assert_eq!(req.path, Some(PEER_PATH));
    req.headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

fn borrowed(headers: &[(String, Vec<u8>)]) -> Vec<(&str, &[u8])> {
    headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_slice()))
        .collect()
}

/// The 101's headers as the dialler sees them: the HTTP layer's lines plus the handshake's.
fn answer_headers(lines: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut head = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n".to_vec();
    head.extend_from_slice(b"Upgrade: mostdb-peer/1\r\n");
    head.extend_from_slice(lines);
    head.extend_from_slice(b"\r\n");
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut slots);
    assert!(resp.parse(&head).expect("valid HTTP").is_complete());
    resp.headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// Runs a whole handshake from `dialler` to `responder`.
fn handshake(dialler: &Identity, responder: &Identity) -> Result<PeerHello, HandshakeError> {
    let nonce = Nonce::random();
    let request = dial_request(dialler, "10.0.0.2:5379", &nonce);
    let headers = request_headers(&request);
    match check_request(responder, &borrowed(&headers)) {
        Ok((lines, hello)) => {
            assert_eq!(hello.node_id, dialler.node_id);
            let answer = answer_headers(&lines);
            check_response(dialler, &nonce, 101, &borrowed(&answer), b"")
        }
        Err(refusal) => check_response(dialler, &nonce, refusal.status, &[], &refusal.body()),
    }
}

#[test]
fn matching_nodes_accept_each_other() {
    let hello = handshake(&node(1), &node(2)).expect("accepted");
    assert_eq!(
        hello,
        PeerHello {
            node_id: 2,
            cluster_id: "prod".into(),
            epoch: 3,
            members: 3
        }
    );
    // An empty secret on both sides works the same way.
    let open = |id| Identity::new(id, "c", 1, 2, b"");
    assert_eq!(handshake(&open(5), &open(6)).map(|h| h.node_id), Ok(6));
}

#[test]
fn the_secret_never_crosses_the_wire() {
    let nonce = Nonce::random();
    let request = dial_request(&node(1), "h:1", &nonce);
    let text = String::from_utf8(request).unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.starts_with("GET /_mostdb/peer HTTP/1.1\r\nHost: h:1\r\n"));
    assert!(text.contains("\r\nConnection: Upgrade\r\nUpgrade: mostdb-peer/1\r\n"));
    assert!(text.contains("\r\nX-Mostdb-Node: 0000000000000001\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
    assert_ne!(Nonce::random(), nonce, "nonces are fresh");
}

#[test]
fn wrong_secret_is_refused_with_403() {
    let stranger = Identity::new(1, "prod", 3, 3, b"other");
    let request = dial_request(&stranger, "h:1", &Nonce::random());
    let refusal = check_request(&node(2), &borrowed(&request_headers(&request))).unwrap_err();
    assert_eq!(refusal.status, 403);
    assert_eq!(refusal.code, RefusalCode::Secret);
    assert!(matches!(
        handshake(&stranger, &node(2)),
        Err(HandshakeError::Refused {
            status: 403,
            code: RefusalCode::Secret,
            ..
        })
    ));
    // A secret on one side only.
    let open = Identity::new(1, "prod", 3, 3, b"");
    assert!(matches!(
        handshake(&open, &node(2)),
        Err(HandshakeError::Refused { status: 403, .. })
    ));
}

#[test]
fn cluster_epoch_and_members_mismatches_are_409_with_a_reason() {
    let cases = [
        (
            Identity::new(1, "staging", 3, 3, SECRET),
            RefusalCode::Cluster,
            "cluster \"staging\"",
        ),
        (
            Identity::new(1, "prod", 4, 3, SECRET),
            RefusalCode::Epoch,
            "epoch 4, this node 3",
        ),
        (
            Identity::new(1, "prod", 3, 5, SECRET),
            RefusalCode::Members,
            "5 members, this node 3",
        ),
    ];
    for (dialler, code, words) in cases {
        let request = dial_request(&dialler, "h:1", &Nonce::random());
        let refusal = check_request(&node(2), &borrowed(&request_headers(&request))).unwrap_err();
        assert_eq!((refusal.status, refusal.code), (409, code));
        assert!(refusal.reason.contains(words), "{}", refusal.reason);
        match handshake(&dialler, &node(2)) {
            Err(HandshakeError::Refused {
                status: 409,
                code: got,
                reason,
            }) => {
                assert_eq!(got, code);
                assert!(reason.contains(words), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn dialling_oneself_is_told_apart() {
    let me = node(7);
    let request = dial_request(&me, "h:1", &Nonce::random());
    let refusal = check_request(&me, &borrowed(&request_headers(&request))).unwrap_err();
    assert_eq!((refusal.status, refusal.code), (409, RefusalCode::SelfDial));
    assert_eq!(handshake(&me, &me), Err(HandshakeError::SelfDial));
}

#[test]
fn an_answer_is_bound_to_its_nonce_and_to_the_secret() {
    let (dialler, responder) = (node(1), node(2));
    let nonce = Nonce::random();
    let request = dial_request(&dialler, "h:1", &nonce);
    let (lines, _) = check_request(&responder, &borrowed(&request_headers(&request))).unwrap();
    let answer = answer_headers(&lines);
    assert!(check_response(&dialler, &nonce, 101, &borrowed(&answer), b"").is_ok());
    // Replayed to another dial.
    let other = Nonce::random();
    assert_eq!(
        check_response(&dialler, &other, 101, &borrowed(&answer), b""),
        Err(HandshakeError::BadProof)
    );
    // Checked by a node with another secret.
    let other_secret = Identity::new(1, "prod", 3, 3, b"nope");
    assert_eq!(
        check_response(&other_secret, &nonce, 101, &borrowed(&answer), b""),
        Err(HandshakeError::BadProof)
    );
    // A tampered field.
    let mut tampered = answer.clone();
    for (name, value) in &mut tampered {
        if name == "X-Mostdb-Members" {
            *value = b"4".to_vec();
        }
    }
    assert_eq!(
        check_response(&dialler, &nonce, 101, &borrowed(&tampered), b""),
        Err(HandshakeError::BadProof)
    );
}

#[test]
fn malformed_requests_and_foreign_answers() {
    let me = node(2);
    let refusal = check_request(&me, &[("Upgrade", b"mostdb-peer/1")]).unwrap_err();
    assert_eq!(
        (refusal.status, refusal.code),
        (400, RefusalCode::Malformed)
    );
    let refusal = check_request(&me, &[]).unwrap_err();
    assert_eq!(refusal.status, 400);
    let request = dial_request(&node(1), "h:1", &Nonce::random());
    let mut headers = request_headers(&request);
    for (name, value) in &mut headers {
        if name == "Upgrade" {
            *value = b"mostdb-peer/2".to_vec();
        }
    }
    let refusal = check_request(&me, &borrowed(&headers)).unwrap_err();
    assert_eq!((refusal.status, refusal.code), (409, RefusalCode::Protocol));
    for (name, value) in &mut headers {
        if name == "X-Mostdb-Node" {
            *value = b"+00000000000001".to_vec();
        }
        if name == "Upgrade" {
            *value = b"mostdb-peer/1".to_vec();
        }
    }
    assert_eq!(
        check_request(&me, &borrowed(&headers)).unwrap_err().status,
        400
    );
    // An address that is not a mostdb peer (or an old one without the peer path).
    assert_eq!(
        check_response(&node(1), &Nonce::random(), 404, &[], b"Not Found"),
        Err(HandshakeError::Refused {
            status: 404,
            code: RefusalCode::Other,
            reason: "Not Found".into()
        })
    );
    assert!(matches!(
        check_response(&node(1), &Nonce::random(), 101, &[], b""),
        Err(HandshakeError::Malformed { .. })
    ));
}

#[test]
fn debug_never_shows_the_secret() {
    let text = format!("{:?}", node(0xab));
    assert!(text.contains("00000000000000ab"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn refusals_warn_at_most_once_per_interval_per_kind() {
    // No other test logs a Members refusal; the times are beyond any real clock reading.
    let t = 1 << 50;
    assert!(RefusalCode::Members.claim_warning(t));
    assert!(!RefusalCode::Members.claim_warning(t + 1));
    assert!(!RefusalCode::Members.claim_warning(t + PEER_REFUSAL_LOG_INTERVAL_MS - 1));
    assert!(RefusalCode::Members.claim_warning(t + PEER_REFUSAL_LOG_INTERVAL_MS));
}
