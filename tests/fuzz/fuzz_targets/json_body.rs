//! The JSON body decoder of the API (`src/api/json.rs`): never panics or overflows its stack,
//! refuses every body the depth scan finds too deep, and the bodies it accepts nest at most
//! `JSON_DEPTH_MAX` deep. Both decoders run (the request path uses sonic-rs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use mostdb::api::json::{decode, decode_with, nests_deeper_than, DecodeError, Decoder};
use mostdb::limits::JSON_DEPTH_MAX;

fuzz_target!(|data: &[u8]| {
    let got = decode(data);
    if nests_deeper_than(data, JSON_DEPTH_MAX) {
        assert_eq!(got, Err(DecodeError::TooDeep));
    } else {
        assert_ne!(got, Err(DecodeError::TooDeep));
    }
    let _ = decode_with(Decoder::SerdeJson, data);
});
