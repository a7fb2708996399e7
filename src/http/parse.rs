//! STUB — being written (http helper).
pub struct RequestHead;
pub enum BodyKind {}
pub enum Parsed {}
#[derive(Debug)]
pub enum ParseError {}
pub fn parse_request() {}
