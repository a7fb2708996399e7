//! Records and versions: the value a replica holds for a key, and its on-disk encoding.
//!
//! On disk a record is `version ‖ flags ‖ [promise] ‖ [expires] ‖ value` (DESIGN §10):
//! `hlc` (u64 big-endian), `origin` (u64 big-endian), one flags byte, then what the flags
//! announce, then the value bytes (none for a tombstone). Flags: bit 0 tombstone; bit 1 a
//! promise follows (16 bytes, a version, above the record's own); bit 2 an expiry follows
//! (`expires_hlc`, u64 big-endian); bit 3 the value was written by a CAS (not "blind"); every
//! other bit must be zero. A record written before CAS existed has flags 0 or 1, and reads as
//! a blind record with no promise and no expiry. Decoding never panics: anything malformed is
//! [`StorageError::Corrupt`]; every valid encoding is the only one of its record. Must not
//! import anything outside `storage`.

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

/// The origin bit no issued version carries (`replication::clock::origin` clears it): set, it
/// marks the version of an expiry's tombstone (DESIGN §10).
pub const EXPIRY_ORIGIN_BIT: u64 = 1;

impl Version {
    /// The version of an absent key: below every issued version.
    pub const ZERO: Version = Version { hlc: 0, origin: 0 };

    /// The version of the tombstone that a record at this version becomes once it expires:
    /// the same on every node, and the record's immediate successor, so that the expiry
    /// deletes only this record's value. Any later write is above it, even one issued
    /// before the expiry time (a tombstone at the expiry time itself would overwrite such a
    /// write: the simulator found a CAS lost that way). Issued origins are even, so the
    /// successor is no issued version.
    pub fn expiry(self) -> Version {
        Version {
            hlc: self.hlc,
            origin: self.origin + EXPIRY_ORIGIN_BIT,
        }
    }
}

/// What a record carries besides its version and value, replicated with it (DESIGN §10).
/// The default is a record as a plain set or del writes it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Meta {
    /// Written by a CAS (its accept phase), not by a plain set or del: not "blind".
    pub cas: bool,
    /// The key expires at this HLC: from then on it holds a tombstone (TTL).
    pub expires: Option<u64>,
}

impl Meta {
    /// A plain set's or del's record: blind, no expiry.
    pub const BLIND: Meta = Meta {
        cas: false,
        expires: None,
    };

    /// Whether the record has expired by the HLC `now` (its expiry is behind it).
    pub fn expired_at(&self, now: u64) -> bool {
        self.expires.is_some_and(|at| at < now)
    }
}

/// A record as held by a replica: its version and value (`None` for a tombstone), what comes
/// with them, and the replica's promise for the key (CAS ballots, DESIGN §10).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub version: Version,
    pub value: Option<Vec<u8>>,
    pub meta: Meta,
    /// The highest ballot this replica promised for the key, when above `version` (else
    /// [`Version::ZERO`]: the promise is the version itself). Not replicated: a promise
    /// is this replica's vote, not data.
    pub promise: Version,
}

/// A decoded record borrowing its value from the encoded bytes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct RecordRef<'a> {
    pub version: Version,
    pub value: Option<&'a [u8]>,
    pub meta: Meta,
    /// As [`Record::promise`].
    pub promise: Version,
}

/// Bytes before the value of a record with no promise and no expiry: hlc, origin, flags.
pub const HEADER_BYTES: usize = 8 + 8 + 1;
/// Flags bit 0: the record is a tombstone (a delete).
const FLAG_TOMBSTONE: u8 = 0b0000_0001;
/// Flags bit 1: a promise (16 bytes) follows the flags.
const FLAG_PROMISE: u8 = 0b0000_0010;
/// Flags bit 2: an expiry (8 bytes) follows the flags (and the promise).
const FLAG_EXPIRES: u8 = 0b0000_0100;
/// Flags bit 3: written by a CAS.
const FLAG_CAS: u8 = 0b0000_1000;
/// Every flag bit this version of the format knows; others must be zero.
const FLAGS_KNOWN: u8 = FLAG_TOMBSTONE | FLAG_PROMISE | FLAG_EXPIRES | FLAG_CAS;

/// Encodes a plain record `version ‖ flags ‖ value` into `out`, replacing what it held (its
/// capacity is reused, so a caller can keep one buffer for every write).
pub fn encode_into(version: Version, value: Option<&[u8]>, out: &mut Vec<u8>) {
    RecordRef {
        version,
        value,
        meta: Meta::BLIND,
        promise: Version::ZERO,
    }
    .encode_into(out);
}

impl<'a> RecordRef<'a> {
    /// Encodes the record into `out`, replacing what it held. A promise at or below the
    /// version is not written (it is the version itself).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        out.reserve(HEADER_BYTES + 16 + 8 + self.value.map_or(0, <[u8]>::len));
        out.extend_from_slice(&self.version.hlc.to_be_bytes());
        out.extend_from_slice(&self.version.origin.to_be_bytes());
        let promise = (self.promise > self.version).then_some(self.promise);
        let mut flags = 0;
        if self.value.is_none() {
            flags |= FLAG_TOMBSTONE;
        }
        if promise.is_some() {
            flags |= FLAG_PROMISE;
        }
        if self.meta.expires.is_some() {
            flags |= FLAG_EXPIRES;
        }
        if self.meta.cas {
            flags |= FLAG_CAS;
        }
        out.push(flags);
        if let Some(p) = promise {
            out.extend_from_slice(&p.hlc.to_be_bytes());
            out.extend_from_slice(&p.origin.to_be_bytes());
        }
        if let Some(expires) = self.meta.expires {
            out.extend_from_slice(&expires.to_be_bytes());
        }
        if let Some(bytes) = self.value {
            out.extend_from_slice(bytes);
        }
    }

    /// Decodes an encoded record without copying its value.
    pub fn decode(bytes: &'a [u8]) -> Result<RecordRef<'a>, StorageError> {
        let short = || corrupt(format!("{} bytes, shorter than its header", bytes.len()));
        let (hlc, rest) = bytes.split_first_chunk::<8>().ok_or_else(short)?;
        let (origin, rest) = rest.split_first_chunk::<8>().ok_or_else(short)?;
        let (&flags, mut rest) = rest.split_first().ok_or_else(short)?;
        if flags & !FLAGS_KNOWN != 0 {
            return Err(corrupt(format!("unknown flag bits {flags:#010b}")));
        }
        let version = Version {
            hlc: u64::from_be_bytes(*hlc),
            origin: u64::from_be_bytes(*origin),
        };
        let mut promise = Version::ZERO;
        if flags & FLAG_PROMISE != 0 {
            let (hlc, after) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            let (origin, after) = after.split_first_chunk::<8>().ok_or_else(short)?;
            promise = Version {
                hlc: u64::from_be_bytes(*hlc),
                origin: u64::from_be_bytes(*origin),
            };
            if promise <= version {
                return Err(corrupt(format!(
                    "promise {promise:?} not above the version {version:?}"
                )));
            }
            rest = after;
        }
        let mut expires = None;
        if flags & FLAG_EXPIRES != 0 {
            let (at, after) = rest.split_first_chunk::<8>().ok_or_else(short)?;
            expires = Some(u64::from_be_bytes(*at));
            rest = after;
        }
        let value = if flags & FLAG_TOMBSTONE != 0 {
            if !rest.is_empty() {
                return Err(corrupt(format!(
                    "tombstone with {} value bytes",
                    rest.len()
                )));
            }
            None
        } else {
            Some(rest)
        };
        Ok(RecordRef {
            version,
            value,
            meta: Meta {
                cas: flags & FLAG_CAS != 0,
                expires,
            },
            promise,
        })
    }

    /// Copies the value out into an owned [`Record`].
    pub fn to_record(&self) -> Record {
        Record {
            version: self.version,
            value: self.value.map(<[u8]>::to_vec),
            meta: self.meta,
            promise: self.promise,
        }
    }

    /// The promise in force: the stored one, or the version itself.
    pub fn promise(&self) -> Version {
        self.promise.max(self.version)
    }
}

impl Record {
    /// A plain record (blind, no expiry, no promise above its version).
    pub fn plain(version: Version, value: Option<Vec<u8>>) -> Record {
        Record {
            version,
            value,
            ..Record::default()
        }
    }

    /// This record with `meta`.
    pub fn with_meta(self, meta: Meta) -> Record {
        Record { meta, ..self }
    }

    /// Encodes this record into `out` (see [`RecordRef::encode_into`]).
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.as_ref().encode_into(out);
    }

    /// Borrows this record as a [`RecordRef`].
    pub fn as_ref(&self) -> RecordRef<'_> {
        RecordRef {
            version: self.version,
            value: self.value.as_deref(),
            meta: self.meta,
            promise: self.promise,
        }
    }

    /// Decodes an encoded record, copying its value.
    pub fn decode(bytes: &[u8]) -> Result<Record, StorageError> {
        RecordRef::decode(bytes).map(|r| r.to_record())
    }

    /// Whether this record is a delete.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }

    /// The promise in force: the stored one, or the version itself.
    pub fn promise(&self) -> Version {
        self.promise.max(self.version)
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
            Record::plain(v(7, 9), Some(b"value".to_vec())),
            Record::plain(v(7, 9), Some(Vec::new())),
            Record::plain(v(u64::MAX, u64::MAX), None),
            Record {
                version: v(7, 9),
                value: Some(b"cas".to_vec()),
                meta: Meta {
                    cas: true,
                    expires: Some(99),
                },
                promise: v(8, 1),
            },
            Record {
                version: Version::ZERO,
                value: None,
                meta: Meta::BLIND,
                promise: v(3, 3),
            },
        ] {
            rec.encode_into(&mut buf);
            assert_eq!(Record::decode(&buf).expect("decodes"), rec);
        }
    }

    /// Records written before CAS and TTL existed (flags 0 or 1) read as blind records with no
    /// promise and no expiry, and encode back to the same bytes.
    #[test]
    fn records_of_the_first_format_read_as_blind() {
        let old = [0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, b'x'];
        let r = RecordRef::decode(&old).expect("decodes");
        assert_eq!(r.meta, Meta::BLIND);
        assert_eq!(r.promise(), v(5, 1));
        let mut again = Vec::new();
        r.encode_into(&mut again);
        assert_eq!(again, old);
    }

    #[test]
    fn new_fields_are_laid_out_after_the_flags() {
        let mut out = Vec::new();
        Record {
            version: v(1, 2),
            value: Some(b"z".to_vec()),
            meta: Meta {
                cas: true,
                expires: Some(0x0A0B),
            },
            promise: v(3, 4),
        }
        .encode_into(&mut out);
        let mut expected = vec![0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 2, 0b1110];
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 4]);
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0x0A, 0x0B, b'z']);
        assert_eq!(out, expected);
        // A promise not above the version is the version itself: not written.
        let mut plain = Vec::new();
        Record {
            promise: v(1, 2),
            ..Record::plain(v(1, 2), None)
        }
        .encode_into(&mut plain);
        assert_eq!(plain.len(), HEADER_BYTES);
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
        unknown_flag[16] = 0b1_0000;
        // A promise announced but cut short, and one not above the version.
        let mut short_promise = buf.clone();
        short_promise[16] |= FLAG_PROMISE;
        short_promise.extend_from_slice(&[0; 8]);
        let mut low_promise = buf.clone();
        low_promise[16] |= FLAG_PROMISE;
        low_promise.extend_from_slice(&v(1, 1).hlc.to_be_bytes());
        low_promise.extend_from_slice(&v(1, 1).origin.to_be_bytes());
        let mut short_expiry = buf.clone();
        short_expiry[16] |= FLAG_EXPIRES;
        short_expiry.extend_from_slice(&[0; 7]);
        let mut tombstone_with_value = buf.clone();
        tombstone_with_value.push(b'x');
        for bad in [
            &buf[..16],
            &[][..],
            &unknown_flag[..],
            &tombstone_with_value[..],
            &short_promise[..],
            &low_promise[..],
            &short_expiry[..],
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
                r.encode_into(&mut buf);
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
            let record = Record {
                version,
                value,
                meta: Meta {
                    cas: rng.next() % 2 == 0,
                    expires: (rng.next() % 2 == 0).then(|| rng.next()),
                },
                promise: if rng.next() % 2 == 0 {
                    v(rng.next(), rng.next())
                } else {
                    Version::ZERO
                },
            };
            record.encode_into(&mut buf);
            let r = Record::decode(&buf).expect("valid encoding decodes");
            assert_eq!(r.version, record.version);
            assert_eq!(r.value, record.value);
            assert_eq!(r.meta, record.meta);
            assert_eq!(r.promise(), record.promise());
        }
    }
}
