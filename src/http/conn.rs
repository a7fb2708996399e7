//! STUB — being written (http helper).
pub struct ConnLimits;
pub fn serve_connection() {}
