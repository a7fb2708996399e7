//! The request head parser (`src/http/parse.rs`) on arbitrary bytes, then what the routes do
//! with a head: the query's `key` parameter. Never panics; a complete head lies within the
//! input and the head limit, and its declared body within the body limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mostdb::api::query;
use mostdb::http::{header_slots, parse_request, BodyKind, Parsed};
use mostdb::limits::{BODY_OVERHEAD_BYTES, HEADERS_MAX, HEAD_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT};

/// The server's default body limit.
const BODY_BYTES_MAX: usize = VALUE_BYTES_MAX_DEFAULT + BODY_OVERHEAD_BYTES;

fuzz_target!(|data: &[u8]| {
    let mut slots = header_slots();
    match parse_request(data, &mut slots, BODY_BYTES_MAX) {
        Ok(Parsed::Complete(head)) => {
            assert!(head.head_len <= data.len() && head.head_len <= HEAD_BYTES_MAX);
            assert!(head.headers.len() <= HEADERS_MAX);
            assert!(head.minor_version <= 1);
            if let BodyKind::Length(n) = head.body {
                assert!(n > 0 && n <= BODY_BYTES_MAX);
            }
            if let Some(key) = query::param(head.query.unwrap_or(""), "key") {
                assert!(key.len() <= head.head_len);
            }
        }
        Ok(Parsed::Incomplete) => assert!(data.len() < HEAD_BYTES_MAX),
        Err(err) => assert!((400..=599).contains(&err.status())),
    }
});
