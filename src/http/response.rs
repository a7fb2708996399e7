//! STUB — being written (http helper).
pub struct DateCache;
pub fn encode_response() {}
