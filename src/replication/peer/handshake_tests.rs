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
    head.extend_from_slice(b"Upgrade: mostdb-peer/2\r\n");
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

/// What a whole handshake from `dialler` to `responder` came to on each side.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// Both sides accepted: the link serves.
    Linked(PeerHello),
    /// The responder refused the request.
    Refused(HandshakeError),
    /// The dialler refused the responder's answer (and closes the link).
    DiallerRefused(HandshakeError),
    /// The dialler accepted, but its proof did not check: the responder serves nothing.
    Unproven(RefusalCode),
}

/// Runs a whole handshake from `dialler` to `responder`, proof record included.
fn handshake(dialler: &Identity, responder: &Identity) -> Outcome {
    let nonce = Nonce::random();
    let request = dial_request(dialler, "10.0.0.2:5379", &nonce);
    let headers = request_headers(&request);
    let accepted = match check_request(responder, &borrowed(&headers), &Nonce::random()) {
        Ok(accepted) => accepted,
        Err(refusal) => {
            let answer = check_response(dialler, &nonce, refusal.status, &[], &refusal.body());
            return Outcome::Refused(answer.expect_err("a refusal"));
        }
    };
    assert_eq!(accepted.peer.node_id, dialler.node_id);
    let answer = answer_headers(&accepted.lines);
    match check_response(dialler, &nonce, 101, &borrowed(&answer), b"") {
        Ok(answered) => match accepted.awaited.check(&answered.proof) {
            Ok(()) => Outcome::Linked(answered.peer),
            Err(refusal) => Outcome::Unproven(refusal.code),
        },
        Err(err) => Outcome::DiallerRefused(err),
    }
}

/// A dialler's request, checked by `responder` with `nonce`: what the attacker sees.
fn accept(responder: &Identity, request: &[u8], nonce: &Nonce) -> Accepted {
    check_request(responder, &borrowed(&request_headers(request)), nonce).expect("accepted")
}

#[test]
fn matching_nodes_accept_each_other() {
    let hello = PeerHello {
        node_id: 2,
        cluster_id: "prod".into(),
        epoch: 3,
        members: 3,
        view: true,
        cas: true,
        list: true,
    };
    assert_eq!(handshake(&node(1), &node(2)), Outcome::Linked(hello));
    // An empty secret on both sides works the same way.
    let open = |id| Identity::new(id, "c", 1, 2, b"");
    assert!(matches!(handshake(&open(5), &open(6)), Outcome::Linked(h) if h.node_id == 6));
}

#[test]
fn the_secret_never_crosses_the_wire() {
    let nonce = Nonce::random();
    let request = dial_request(&node(1), "h:1", &nonce);
    let text = String::from_utf8(request.clone()).unwrap();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.starts_with("GET /_mostdb/peer HTTP/1.1\r\nHost: h:1\r\n"));
    assert!(text.contains("\r\nConnection: Upgrade\r\nUpgrade: mostdb-peer/2\r\n"));
    assert!(text.contains("\r\nX-Mostdb-Node: 0000000000000001\r\n"));
    assert!(text.ends_with("\r\n\r\n"));
    let accepted = accept(&node(2), &request, &Nonce::random());
    assert!(!String::from_utf8_lossy(&accepted.lines).contains("s3cret"));
    assert_ne!(Nonce::random(), nonce, "nonces are fresh");
}

#[test]
fn a_recorded_dial_and_its_proof_are_worthless_later() {
    let (dialler, responder) = (node(1), node(2));
    // The legitimate exchange, recorded by an eavesdropper.
    let nonce = Nonce::random();
    let request = dial_request(&dialler, "h:1", &nonce);
    let accepted = accept(&responder, &request, &Nonce::random());
    let answer = answer_headers(&accepted.lines);
    let answered = check_response(&dialler, &nonce, 101, &borrowed(&answer), b"").unwrap();
    assert_eq!(accepted.awaited.check(&answered.proof), Ok(()));
    // Replayed to the same node (or any other, or after a restart): a new challenge, so the
    // recorded proof does not answer it.
    for target in [node(2), node(3)] {
        let replayed = accept(&target, &request, &Nonce::random());
        let refusal = replayed.awaited.check(&answered.proof).unwrap_err();
        assert_eq!((refusal.status, refusal.code), (403, RefusalCode::Secret));
    }
    // Nor does the responder's own answer, reflected back as a proof.
    let replayed = accept(&responder, &request, &Nonce::random());
    let reflected = header(&borrowed(&answer), "X-Mostdb-Proof")
        .and_then(unhex::<PROOF_BYTES>)
        .unwrap();
    assert!(replayed.awaited.check(&reflected).is_err());
    // A truncated or empty record.
    assert!(replayed.awaited.check(&answered.proof[..16]).is_err());
    assert!(replayed.awaited.check(b"").is_err());
}

#[test]
fn no_mac_can_be_reflected() {
    // An attacker who gets node 2 to answer a dial claiming to be node 1 cannot use that
    // answer's MAC as node 1's proof to node 2, even when it picks both nonces equal.
    let (one, two) = (node(1), node(2));
    let shared = Nonce::random();
    let request = dial_request(&one, "h:1", &shared);
    let accepted = accept(&two, &request, &shared);
    let accept_mac = header(
        &borrowed(&answer_headers(&accepted.lines)),
        "X-Mostdb-Proof",
    )
    .and_then(unhex::<PROOF_BYTES>)
    .unwrap();
    assert!(accepted.awaited.check(&accept_mac).is_err());
    // Nor can a dialler use a responder's MAC to pass for the responder: the answer to a dial
    // from 2 to 1 does not verify as an answer from 1 to 2.
    let nonce = Nonce::random();
    let back = accept(&one, &dial_request(&two, "h:1", &nonce), &shared);
    let answer = answer_headers(&back.lines);
    assert!(check_response(&one, &shared, 101, &borrowed(&answer), b"").is_err());
}

#[test]
fn wrong_secret_is_refused_by_both_sides() {
    let stranger = Identity::new(1, "prod", 3, 3, b"other");
    // The stranger finds the answer does not prove its secret, and closes.
    assert_eq!(
        handshake(&stranger, &node(2)),
        Outcome::DiallerRefused(HandshakeError::BadProof)
    );
    // A stranger that sends its proof anyway is refused by the responder.
    let nonce = Nonce::random();
    let request = dial_request(&stranger, "h:1", &nonce);
    let accepted = accept(&node(2), &request, &Nonce::random());
    let mut answer = answer_headers(&accepted.lines);
    // Forge the answer's MAC as the stranger would compute it, to get its proof out.
    let node2 = format!("{:016x}", 2);
    let (mine, theirs) = (
        Claims::of(&stranger, "0000000000000001"),
        Claims {
            node: &node2,
            cluster_id: "prod",
            epoch: 3,
            members: 3,
        },
    );
    let responder_nonce = header(&borrowed(&answer), "X-Mostdb-Nonce")
        .and_then(unhex::<16>)
        .map(Nonce)
        .unwrap();
    let forged = stranger.mac(ROLE_ACCEPT, (&theirs, &mine), [&nonce, &responder_nonce]);
    for (name, value) in &mut answer {
        if name == "X-Mostdb-Proof" {
            *value = hex(&forged.clone().finalize().into_bytes()).into_bytes();
        }
    }
    let answered = check_response(&stranger, &nonce, 101, &borrowed(&answer), b"").unwrap();
    let refusal = accepted.awaited.check(&answered.proof).unwrap_err();
    assert_eq!((refusal.status, refusal.code), (403, RefusalCode::Secret));
    // A secret on one side only.
    let open = Identity::new(1, "prod", 3, 3, b"");
    assert_eq!(
        handshake(&open, &node(2)),
        Outcome::DiallerRefused(HandshakeError::BadProof)
    );
}

#[test]
fn a_proof_is_bound_to_both_node_ids_and_the_claims() {
    let (dialler, responder) = (node(1), node(2));
    let nonce = Nonce::random();
    let request = dial_request(&dialler, "h:1", &nonce);
    let accepted = accept(&responder, &request, &Nonce::random());
    let answer = answer_headers(&accepted.lines);
    let answered = check_response(&dialler, &nonce, 101, &borrowed(&answer), b"").unwrap();
    // The same secret and nonces, another dialler id (node 7 using node 1's exchange).
    let imposter = node(7);
    let check = check_response(&imposter, &nonce, 101, &borrowed(&answer), b"");
    assert_eq!(check, Err(HandshakeError::BadProof));
    // A proof made by node 7 over the right nonce does not pass for node 1's.
    let node2 = format!("{:016x}", 2);
    let theirs = Claims {
        node: &node2,
        cluster_id: "prod",
        epoch: 3,
        members: 3,
    };
    let responder_nonce = header(&borrowed(&answer), "X-Mostdb-Nonce")
        .and_then(unhex::<16>)
        .map(Nonce)
        .unwrap();
    let node7 = format!("{:016x}", 7);
    let by_seven = imposter.mac(
        ROLE_DIAL,
        (&Claims::of(&imposter, &node7), &theirs),
        [&responder_nonce, &nonce],
    );
    let forged = by_seven.finalize().into_bytes();
    assert!(accepted.awaited.check(&forged).is_err());
    assert_eq!(accepted.awaited.check(&answered.proof), Ok(()));
    // The answer is bound to the responder's id and claims: a tampered field fails.
    for (field, value) in [
        ("X-Mostdb-Node", "0000000000000009"),
        ("X-Mostdb-Members", "4"),
    ] {
        let mut tampered = answer.clone();
        for (name, v) in &mut tampered {
            if name == field {
                *v = value.as_bytes().to_vec();
            }
        }
        let check = check_response(&dialler, &nonce, 101, &borrowed(&tampered), b"");
        assert_eq!(check, Err(HandshakeError::BadProof), "{field}");
    }
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
        let headers = request_headers(&request);
        let refusal = check_request(&node(2), &borrowed(&headers), &Nonce::random()).unwrap_err();
        assert_eq!((refusal.status, refusal.code), (409, code));
        assert!(refusal.reason.contains(words), "{}", refusal.reason);
        match handshake(&dialler, &node(2)) {
            Outcome::Refused(HandshakeError::Refused {
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
    let headers = request_headers(&request);
    let refusal = check_request(&me, &borrowed(&headers), &Nonce::random()).unwrap_err();
    assert_eq!((refusal.status, refusal.code), (409, RefusalCode::SelfDial));
    assert_eq!(
        handshake(&me, &me),
        Outcome::Refused(HandshakeError::SelfDial)
    );
}

#[test]
fn an_answer_is_bound_to_its_nonce_and_to_the_secret() {
    let (dialler, responder) = (node(1), node(2));
    let nonce = Nonce::random();
    let request = dial_request(&dialler, "h:1", &nonce);
    let accepted = accept(&responder, &request, &Nonce::random());
    let answer = answer_headers(&accepted.lines);
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
}

#[test]
fn malformed_requests_and_foreign_answers() {
    let me = node(2);
    let fresh = Nonce::random();
    let refusal = check_request(&me, &[("Upgrade", b"mostdb-peer/2")], &fresh).unwrap_err();
    assert_eq!(
        (refusal.status, refusal.code),
        (400, RefusalCode::Malformed)
    );
    let refusal = check_request(&me, &[], &fresh).unwrap_err();
    assert_eq!(refusal.status, 400);
    let request = dial_request(&node(1), "h:1", &Nonce::random());
    let mut headers = request_headers(&request);
    for (name, value) in &mut headers {
        if name == "Upgrade" {
            *value = b"mostdb-peer/1".to_vec();
        }
    }
    let refusal = check_request(&me, &borrowed(&headers), &fresh).unwrap_err();
    assert_eq!((refusal.status, refusal.code), (409, RefusalCode::Protocol));
    for (name, value) in &mut headers {
        if name == "X-Mostdb-Node" {
            *value = b"+00000000000001".to_vec();
        }
        if name == "Upgrade" {
            *value = b"mostdb-peer/2".to_vec();
        }
    }
    let refusal = check_request(&me, &borrowed(&headers), &fresh).unwrap_err();
    assert_eq!(refusal.status, 400);
    let mut headers = request_headers(&request);
    headers.retain(|(name, _)| name != "X-Mostdb-Nonce");
    let refusal = check_request(&me, &borrowed(&headers), &fresh).unwrap_err();
    assert_eq!(
        (refusal.status, refusal.code),
        (400, RefusalCode::Malformed)
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
    // An address refusal reaches the dialler with its code.
    let refusal = Refusal::address("10.0.0.9".parse().unwrap());
    assert!(matches!(
        check_response(&node(1), &Nonce::random(), 403, &[], &refusal.body()),
        Err(HandshakeError::Refused {
            status: 403,
            code: RefusalCode::Address,
            ..
        })
    ));
}

#[test]
fn debug_never_shows_the_secret() {
    let text = format!("{:?}", node(0xab));
    assert!(text.contains("00000000000000ab"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    let request = dial_request(&node(1), "h:1", &Nonce::random());
    let accepted = accept(&node(2), &request, &Nonce::random());
    let text = format!("{:?}", accepted.awaited);
    assert!(
        text.contains("0000000000000001") && !text.contains("s3cret"),
        "{text}"
    );
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

/// `headers` without the features header: what a mostdb before CAS sends.
fn without_features(headers: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    let older = headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("X-Mostdb-Features"))
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(older.len() + 1, headers.len(), "one features header");
    older
}

#[test]
fn a_peer_without_cas_is_refused_once_the_store_holds_cas_records() {
    let dir = crate::storage::store::test_dir::TempDir::new("handshake-cas-mark");
    std::fs::create_dir_all(dir.path()).expect("dir");
    let mark = Arc::new(CasMark::load(dir.path()));
    let marked = |id| node(id).with_cas_mark(mark.clone());
    let older_dial = |responder: &Identity| {
        let request = dial_request(&node(1), "h:1", &Nonce::random());
        let older = without_features(&request_headers(&request));
        check_request(responder, &borrowed(&older), &Nonce::random())
    };
    // Before any such record: an older dialler links (and CAS stays off for it).
    let accepted = older_dial(&marked(2)).expect("accepted");
    assert!(!accepted.peer.cas);
    mark.set().expect("set the mark");
    // Responder side: 409, with the reason.
    let refusal = older_dial(&marked(2)).unwrap_err();
    assert_eq!((refusal.status, refusal.code), (409, RefusalCode::Protocol));
    assert!(
        refusal.reason.contains("without compare-and-set") && refusal.reason.contains("upgrade"),
        "{}",
        refusal.reason
    );
    // Dialler side: an answer without the feature is refused before any proof is sent.
    let nonce = Nonce::random();
    let request = dial_request(&marked(1), "h:1", &nonce);
    let accepted = accept(&node(2), &request, &Nonce::random());
    let older = without_features(&answer_headers(&accepted.lines));
    match check_response(&marked(1), &nonce, 101, &borrowed(&older), b"") {
        Err(HandshakeError::Mismatch { what }) => {
            assert!(what.contains("without compare-and-set"), "{what}")
        }
        other => panic!("{other:?}"),
    }
    // Two nodes that both speak CAS link whatever their marks.
    assert!(matches!(
        handshake(&marked(1), &marked(2)),
        Outcome::Linked(h) if h.cas
    ));
}
