//! Records and versions: the value a replica holds for a key, and its on-disk encoding.
//!
//! On disk a record is `version ‖ flags ‖ value`: `hlc` (u64 big-endian), `origin` (u64
//! big-endian), one flags byte (bit 0: tombstone; every other bit must be zero), then the
//! value bytes (none for a tombstone). Decoding never panics: anything malformed is
//! [`StorageError::Corrupt`]. Must not import anything outside `storage`.

use super::StorageError;

/// A version `(hlc, origin)`, ordered lexicographically: `hlc` first, then `origin`.
///
/// The derived `Ord` compares fields in declaration order, which is exactly that order; the
/// unit tests pin it. `origin` names the issuing node and core, so two versions issued
/// anywhere are never equal (DESIGN §2).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    pub hlc: u64,
    pub origin: u64,
}

impl Version {
    /// The version of an absent key: below every issued version.
    pub const ZERO: Version = Version { hlc: 0, origin: 0 };
}

/// A record as held by a replica: its version and its value, `None` for a tombstone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub version: Version,
    pub value: Option<Vec<u8>>,
}

/// A decoded record borrowing its value from the encoded bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub version: Version,
    pub value: Option<&'a [u8]>,
}

/// Bytes before the value: hlc, origin, flags.
pub const HEADER_BYTES: usize = 8 + 8 + 1;
/// Flags bit 0: the record is a tombstone (a delete).
const FLAG_TOMBSTONE: u8 = 0b0000_0001;
/// Every flag bit this version of the format knows; others must be zero.
const FLAGS_KNOWN: u8 = FLAG_TOMBSTONE;

/// Encodes `version ‖ flags ‖ value` into `out`, replacing what it held (its capacity is
/// reused, so a caller can keep one buffer for every write).
pub fn encode_into(version: Version, value: Option<&[u8]>, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(HEADER_BYTES + value.map_or(0, <[u8]>::len));
    out.extend_from_slice(&version.hlc.to_be_bytes());
    out.extend_from_slice(&version.origin.to_be_bytes());
    match value {
        Some(bytes) => {
            out.push(0);
            out.extend_from_slice(bytes);
        }
        None => out.push(FLAG_TOMBSTONE),
    }
}

impl<'a> RecordRef<'a> {
    /// Decodes an encoded record without copying its value.
    pub fn decode(bytes: &'a [u8]) -> Result<RecordRef<'a>, StorageError> {
        let short = || {
            corrupt(format!(
                "{} bytes, shorter than the {HEADER_BYTES}-byte header",
                bytes.len()
            ))
        };
        let (hlc, rest) = bytes.split_first_chunk::<8>().ok_or_else(short)?;
        let (origin, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
        let (&flags, value) = rest.split_first().ok_or_else(short)?;
        if flags & !FLAGS_KNOWN != 0 {
            return Err(corrupt(format!("unknown flag bits {flags:#010b}")));
        }
        let version = Version {
            hlc: u64::from_be_bytes(*hlc),
            origin: u64::from_be_bytes(*origin),
        };
        let value = if flags & FLAG_TOMBSTONE != 0 {
            if !value.is_empty() {
                return Err(corrupt(format!(
                    "tombstone with {} value bytes",
                    value.len()
                )));
            }
            None
        } else {
            Some(value)
        };
        Ok(RecordRef { version, value })
    }

    /// Copies the value out into an owned [`Record`].
    pub fn to_record(&self) -> Record {
        Record {
            version: self.version,
            value: self.value.map(<[u8]>::to_vec),
        }
    }
}

impl Record {
    /// Encodes this record into `out` (see [`encode_into`]).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        encode_into(self.version, self.value.as_deref(), out);
    }

    /// Decodes an encoded record, copying its value.
    pub fn decode(bytes: &[u8]) -> Result<Record, StorageError> {
        RecordRef::decode(bytes).map(|r| r.to_record())
    }

    /// Whether this record is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

fn corrupt(detail: String) -> StorageError {
    StorageError::Corrupt {
        what: "record",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(hlc: u64, origin: u64) -> Version {
        Version { hlc, origin }
    }

    #[test]
    fn version_order_is_hlc_then_origin() {
        assert!(v(1, 0) > v(0, u64::MAX));
        assert!(v(5, 2) > v(5, 1));
        assert!(v(5, 1) < v(6, 0));
        assert_eq!(v(5, 1).cmp(&v(5, 1)), std::cmp::Ordering::Equal);
        assert!(Version::ZERO < v(0, 1));
        assert!(Version::ZERO < v(1, 0));
        assert_eq!(Version::default(), Version::ZERO);
    }

    #[test]
    fn encoding_layout_is_pinned() {
        let mut out = vec![0xAA; 3];
        encode_into(
            v(0x0102030405060708, 0x1112131415161718),
            Some(b"hi"),
            &mut out,
        );
        assert_eq!(
            out,
            [
                1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0, b'h',
                b'i'
            ]
        );
        encode_into(v(1, 2), None, &mut out);
        assert_eq!(out, [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 1]);
    }

    #[test]
    fn round_trip_value_empty_value_and_tombstone() {
        let mut buf = Vec::new();
        for rec in [
            Record {
                version: v(7, 9),
                value: Some(b"value".to_vec()),
            },
            Record {
                version: v(7, 9),
                value: Some(Vec::new()),
            },
            Record {
                version: v(u64::MAX, u64::MAX),
                value: None,
            },
        ] {
            rec.encode_into(&mut buf);
            assert_eq!(Record::decode(&buf).expect("decodes"), rec);
        }
    }

    #[test]
    fn empty_value_is_not_a_tombstone() {
        let mut buf = Vec::new();
        encode_into(v(1, 1), Some(b""), &mut buf);
        let r = RecordRef::decode(&buf).expect("decodes");
        assert_eq!(r.value, Some(&b""[..]));
    }

    #[test]
    fn malformed_records_are_corrupt() {
        let mut buf = Vec::new();
        encode_into(v(1, 1), None, &mut buf);
        let mut unknown_flag = buf.clone();
        unknown_flag[16] = 0b10;
        let mut tombstone_with_value = buf.clone();
        tombstone_with_value.push(b'x');
        for bad in [
            &buf[..16],
            &[][..],
            &unknown_flag[..],
            &tombstone_with_value[..],
        ] {
            match RecordRef::decode(bad) {
                Err(StorageError::Corrupt { what: "record", .. }) => {}
                other => panic!("expected Corrupt for {bad:?}, got {other:?}"),
            }
        }
    }

    /// A small deterministic generator (xorshift64*) so the property tests need no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn bytes(&mut self, len_max: usize) -> Vec<u8> {
            let len = (self.next() % (len_max as u64 + 1)) as usize;
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn random_bytes_never_panic_and_valid_ones_reencode_identically() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut buf = Vec::new();
        let mut decoded = 0;
        for _ in 0..20_000 {
            let mut bytes = rng.bytes(40);
            if bytes.len() > 16 && rng.next() % 2 == 0 {
                // Make half of the long inputs have plausible flags, to exercise the Ok path.
                bytes[16] &= FLAGS_KNOWN;
            }
            if let Ok(r) = RecordRef::decode(&bytes) {
                decoded += 1;
                encode_into(r.version, r.value, &mut buf);
                assert_eq!(buf, bytes, "decode then encode must give the same bytes");
            }
        }
        assert!(
            decoded > 1_000,
            "the generator must reach valid records too ({decoded})"
        );
    }

    #[test]
    fn random_records_round_trip() {
        let mut rng = Rng(42);
        let mut buf = Vec::new();
        for _ in 0..5_000 {
            let version = v(rng.next(), rng.next());
            let value = (rng.next() % 4 != 0).then(|| rng.bytes(300));
            encode_into(version, value.as_deref(), &mut buf);
            let r = RecordRef::decode(&buf).expect("valid encoding decodes");
            assert_eq!(r.version, version);
            assert_eq!(r.value, value.as_deref());
        }
    }
}
