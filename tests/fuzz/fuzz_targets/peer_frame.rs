//! The peer frame decoder (`src/replication/peer/frame.rs`): never panics, whatever the bytes;
//! a decoded frame took exactly the bytes its length prefix announced, and encodes back to
//! exactly those bytes (one encoding per frame: nothing a peer sends is read two ways).
//!
//! Input: one byte that picks the value limit, then the bytes as read from a link.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mostdb::limits::VALUE_BYTES_MAX_DEFAULT;
use mostdb::replication::peer::frame;

/// A small limit (reachable by small inputs) and the default one.
const VALUE_LIMITS: [usize; 2] = [16, VALUE_BYTES_MAX_DEFAULT];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, bytes)) = data.split_first() else {
        return;
    };
    let value_bytes_max = VALUE_LIMITS[usize::from(pick & 1)];
    match frame::decode(bytes, value_bytes_max) {
        Ok(Some((decoded, used))) => {
            assert_eq!(frame::peek_len(bytes, value_bytes_max), Ok(Some(used)));
            let mut again = Vec::new();
            decoded.encode_into(&mut again);
            assert_eq!(again, &bytes[..used], "{decoded:?}");
        }
        Ok(None) => {
            if let Ok(Some(total)) = frame::peek_len(bytes, value_bytes_max) {
                assert!(bytes.len() < total);
            }
        }
        Err(_) => {}
    }
});
