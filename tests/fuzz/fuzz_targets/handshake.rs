//! The peer handshake checks (`src/replication/peer/handshake.rs`, `mostdb-peer/2`) over
//! headers as the HTTP layer parses them: the responder's `check_request` on a request head
//! (and, when it accepts, the dialler's proof record checked against what it awaits), and the
//! dialler's `check_response` on the same headers with a status and a body. Never panics.
//!
//! Input: two bytes of status, then a request head, then the body of the answer (also used
//! as the proof record).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mostdb::http::{header_slots, parse_request, Parsed};
use mostdb::replication::peer::handshake::{check_request, check_response, Identity, Nonce};

/// The secret of the seeds' handshake (made by `tests/fuzz/seeds/make_seeds.py`).
const SECRET: &[u8] = b"fuzz-secret";
/// The dialler's nonce of the seeds' handshake, so that a seed's answer can verify.
const NONCE: [u8; 16] = *b"0123456789abcdef";
/// The responder's challenge (fixed, so that a run replays exactly).
const CHALLENGE: [u8; 16] = *b"fedcba9876543210";

fuzz_target!(|data: &[u8]| {
    let Some((status, rest)) = data.split_first_chunk::<2>() else {
        return;
    };
    let status = u16::from_le_bytes(*status) % 1000;
    let responder = Identity::new(0x2222_2222_2222_2222, "fuzz", 7, 3, SECRET);
    let dialler = Identity::new(0x1111_1111_1111_1111, "fuzz", 7, 3, SECRET);
    let mut slots = header_slots();
    let Ok(Parsed::Complete(head)) = parse_request(rest, &mut slots, rest.len()) else {
        return;
    };
    let body = &rest[head.head_len..];
    if let Ok(accepted) = check_request(&responder, head.headers, &Nonce(CHALLENGE)) {
        assert!(!accepted.lines.is_empty());
        assert_ne!(accepted.peer.node_id, responder.node_id);
        // A proof record the fuzzer made up must not check (it would have forged an HMAC).
        assert!(accepted.awaited.check(body).is_err() || body.len() == 32);
    }
    if let Ok(answered) = check_response(&dialler, &Nonce(NONCE), status, head.headers, body) {
        assert_eq!(status, 101);
        assert_ne!(answered.peer.node_id, dialler.node_id);
    }
});
