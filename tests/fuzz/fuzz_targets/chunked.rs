//! The chunked body decoder (`src/http/chunked.rs`): the same bytes decoded at once and in
//! pieces (as reads deliver them) give the same outcome, the bytes before the body are never
//! touched, and a decoded body stays within its limit. Never panics.
//!
//! Input: one byte that picks the split into reads and the prefix (the request head's place),
//! then the bytes after the head as the client sent them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mostdb::http::{ChunkStatus, ChunkedDecoder, ParseError};

/// Small, so that the body limit is reachable with small inputs.
const BODY_BYTES_MAX: usize = 4096;
/// Largest piece a read delivers here.
const PIECE_BYTES_MAX: usize = 64;

/// What the decoder made of all the bytes: still waiting, done (the body and what follows it,
/// the next request's bytes), or refused.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Incomplete,
    Complete { body: Vec<u8>, rest: Vec<u8> },
    Refused(ParseError),
}

fn outcome(
    result: Result<ChunkStatus, ParseError>,
    buf: &[u8],
    start: usize,
    unread: &[u8],
) -> Outcome {
    match result {
        Ok(ChunkStatus::Incomplete) => Outcome::Incomplete,
        Ok(ChunkStatus::Complete { body_len, consumed }) => {
            assert!(body_len <= consumed && body_len <= BODY_BYTES_MAX);
            let mut rest = buf[start + consumed..].to_vec();
            rest.extend_from_slice(unread);
            Outcome::Complete {
                body: buf[start..start + body_len].to_vec(),
                rest,
            }
        }
        Err(err) => Outcome::Refused(err),
    }
}

/// Feeds `bytes` after `prefix` in pieces whose sizes come from `seed`.
fn in_pieces(prefix: &[u8], bytes: &[u8], mut seed: u8) -> Outcome {
    let mut buf = prefix.to_vec();
    let mut decoder = ChunkedDecoder::new(BODY_BYTES_MAX);
    let mut fed = 0;
    loop {
        seed = seed.wrapping_mul(29).wrapping_add(71);
        let n = (1 + seed as usize % PIECE_BYTES_MAX).min(bytes.len() - fed);
        buf.extend_from_slice(&bytes[fed..fed + n]);
        fed += n;
        let result = decoder.decode(&mut buf, prefix.len());
        assert_eq!(&buf[..prefix.len()], prefix, "the head was touched");
        let got = outcome(result, &buf, prefix.len(), &bytes[fed..]);
        if got != Outcome::Incomplete || fed == bytes.len() {
            return got;
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, bytes)) = data.split_first() else {
        return;
    };
    let prefix = vec![b'H'; usize::from(seed % 16)];
    let mut buf = prefix.clone();
    buf.extend_from_slice(bytes);
    let result = ChunkedDecoder::new(BODY_BYTES_MAX).decode(&mut buf, prefix.len());
    assert_eq!(&buf[..prefix.len()], &prefix[..], "the head was touched");
    let whole = outcome(result, &buf, prefix.len(), &[]);
    assert_eq!(whole, in_pieces(&prefix, bytes, seed));
});
