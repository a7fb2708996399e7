//! STUB — being written (storage helper).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub hlc: u64,
    pub origin: u64,
}
impl Version {
    pub const ZERO: Version = Version { hlc: 0, origin: 0 };
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub version: Version,
    pub value: Option<Vec<u8>>,
}
