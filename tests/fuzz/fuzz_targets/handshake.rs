//! The peer handshake checks (`src/replication/peer/handshake.rs`) over headers as the HTTP
//! layer parses them: the responder's `check_request` on a request head, the dialler's
//! `check_response` on the same headers with a status and a body. Never panics. Seeds hold a
//! real dial request (valid proof) for this target's identities.
//!
//! Input: two bytes of status, then a request head, then the body of the answer.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mostdb::http::{header_slots, parse_request, Parsed};
use mostdb::replication::peer::handshake::{check_request, check_response, Identity, Nonce};

/// The secret of the seeds' dial request (made by `tests/fuzz/seeds/make_seeds.py`).
const SECRET: &[u8] = b"fuzz-secret";
/// The nonce of the seeds' dial request, so that a seed's answer can verify.
const NONCE: [u8; 16] = *b"0123456789abcdef";

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
    if let Ok((lines, hello)) = check_request(&responder, head.headers) {
        assert!(!lines.is_empty());
        assert_ne!(hello.node_id, responder.node_id);
    }
    if let Ok(hello) = check_response(&dialler, &Nonce(NONCE), status, head.headers, body) {
        assert_eq!(status, 101);
        assert_ne!(hello.node_id, dialler.node_id);
    }
});
