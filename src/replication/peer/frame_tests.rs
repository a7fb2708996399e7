//! Tests of `frame.rs`: the pinned layout, round trips of random frames, every prefix and
//! random bytes (never a panic), and the bounds.

use super::*;

const VALUE_MAX: usize = 1024;

fn v(hlc: u64, origin: u64) -> Version {
    Version { hlc, origin }
}

fn encoded(frame: &Frame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.encode_into(&mut out);
    out
}

#[test]
fn put_layout_is_pinned() {
    let frame = Frame::Request {
        id: 0x0102,
        request: ReplicaRequest::Put {
            key: b"ab".to_vec(),
            version: v(0x11, 0x22),
            value: Some(b"xyz".to_vec()),
            meta: Meta::BLIND,
        },
    };
    let mut want = vec![];
    want.extend_from_slice(&(1u32 + 8 + 1 + 4 + 2 + 16 + 1 + 4 + 3).to_le_bytes());
    want.push(1); // request
    want.extend_from_slice(&0x0102u64.to_le_bytes());
    want.push(1); // PUT
    want.extend_from_slice(&2u32.to_le_bytes());
    want.extend_from_slice(b"ab");
    want.extend_from_slice(&0x11u64.to_be_bytes());
    want.extend_from_slice(&0x22u64.to_be_bytes());
    want.push(0); // not a tombstone
    want.extend_from_slice(&3u32.to_le_bytes());
    want.extend_from_slice(b"xyz");
    assert_eq!(encoded(&frame), want);
}

/// The CAS frames (DESIGN §10): PREPARE, Promised with a CAS-written value and an expiry,
/// Preempted, and a rejection by a promise; a blind rejection keeps the first form.
#[test]
fn cas_frames_layout_is_pinned() {
    let prepare = encoded(&Frame::Request {
        id: 1,
        request: ReplicaRequest::Prepare {
            key: b"k".to_vec(),
            ballot: v(5, 6),
        },
    });
    let mut want = (1u32 + 8 + 1 + 4 + 1 + 16).to_le_bytes().to_vec();
    want.push(1);
    want.extend_from_slice(&1u64.to_le_bytes());
    want.push(5); // PREPARE
    want.extend_from_slice(&1u32.to_le_bytes());
    want.push(b'k');
    want.extend_from_slice(&5u64.to_be_bytes());
    want.extend_from_slice(&6u64.to_be_bytes());
    assert_eq!(prepare, want);

    let promised = encoded(&Frame::Reply {
        id: 2,
        reply: ReplicaReply::Promised {
            version: v(1, 2),
            value: Some(b"z".to_vec()),
            meta: Meta {
                cas: true,
                expires: Some(9),
            },
        },
    });
    assert_eq!(promised[13], 12, "Promised");
    assert_eq!(promised[30], 0b110, "an expiry follows; a CAS wrote it");
    assert_eq!(&promised[31..39], &9u64.to_le_bytes());
    assert_eq!(&promised[39..], &[1, 0, 0, 0, b'z']);

    let preempted = encoded(&Frame::Reply {
        id: 3,
        reply: ReplicaReply::Preempted { held: v(7, 7) },
    });
    assert_eq!((preempted.len(), preempted[13]), (4 + 9 + 1 + 16, 13));

    let by_promise = encoded(&Frame::Reply {
        id: 4,
        reply: ReplicaReply::Rejected {
            held: v(9, 0),
            accepted: v(3, 0),
            accepted_cas: false,
        },
    });
    assert_eq!((by_promise.len(), by_promise[13]), (4 + 9 + 1 + 33, 14));
    let blind = encoded(&Frame::Reply {
        id: 5,
        reply: ReplicaReply::Rejected {
            held: v(9, 0),
            accepted: v(9, 0),
            accepted_cas: false,
        },
    });
    assert_eq!(
        (blind.len(), blind[13]),
        (4 + 9 + 1 + 16, 2),
        "the first form"
    );
}

#[test]
fn small_frames_layout_is_pinned() {
    let tomb = Frame::Reply {
        id: 7,
        reply: ReplicaReply::Read {
            version: v(1, 2),
            value: None,
            meta: Meta::BLIND,
        },
    };
    let bytes = encoded(&tomb);
    assert_eq!(bytes.len(), 4 + 9 + 1 + 16 + 1);
    assert_eq!(&bytes[..5], &[27, 0, 0, 0, 2]);
    assert_eq!(bytes[13], 3, "Read reply op");
    assert_eq!(*bytes.last().unwrap(), 1, "tombstone flag, no value length");

    let pong = Frame::Pong {
        id: 9,
        beat: Heartbeat {
            sent_us: 5,
            hlc: 6,
            wall_ms: 7,
        },
    };
    let bytes = encoded(&pong);
    assert_eq!(bytes.len(), 4 + 9 + 24);
    assert_eq!(bytes[4], 5);
    assert_eq!(&bytes[13..21], &5u64.to_le_bytes());
    assert_eq!(&bytes[21..29], &6u64.to_le_bytes());
    assert_eq!(
        &bytes[29..37],
        &7u64.to_le_bytes(),
        "the sender's wall clock"
    );

    let refused = Frame::Reply {
        id: 1,
        reply: ReplicaReply::RefusedFuture,
    };
    let bytes = encoded(&refused);
    assert_eq!(bytes.len(), 4 + 9 + 1, "no payload");
    assert_eq!(bytes[13], 10, "RefusedFuture reply op");

    let mut out = Vec::new();
    encode_unavailable(&mut out, 3);
    assert_eq!(out, [9, 0, 0, 0, 3, 3, 0, 0, 0, 0, 0, 0, 0]);
}

/// xorshift64*: deterministic, so a failing case replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, len_max: usize) -> Vec<u8> {
        let len = self.below(len_max as u64 + 1) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
    fn version(&mut self) -> Version {
        v(self.next(), self.next())
    }
    fn value(&mut self) -> Option<Vec<u8>> {
        (self.below(4) != 0).then(|| self.bytes(VALUE_MAX))
    }
    fn meta(&mut self) -> Meta {
        if self.below(2) == 0 {
            return Meta::BLIND;
        }
        Meta {
            cas: self.below(2) == 0,
            expires: (self.below(2) == 0).then(|| self.next()),
        }
    }
    /// A repair's rejection in either of its two encodings.
    fn repair_rejected(&mut self) -> ReplicaReply {
        let held = self.version();
        let accepted = if self.below(2) == 0 {
            held
        } else {
            Version {
                hlc: held.hlc / 2,
                ..held
            }
        };
        ReplicaReply::RepairRejected {
            held,
            accepted,
            value: self.value(),
        }
    }

    /// A rejection in either of its two encodings.
    fn rejected(&mut self) -> ReplicaReply {
        let held = self.version();
        if self.below(2) == 0 {
            return ReplicaReply::Rejected {
                held,
                accepted: held,
                accepted_cas: false,
            };
        }
        let accepted = if self.below(2) == 0 {
            held
        } else {
            Version {
                hlc: held.hlc / 2,
                ..held
            }
        };
        ReplicaReply::Rejected {
            held,
            accepted,
            accepted_cas: accepted < held || self.below(2) == 0,
        }
    }
}

fn random_frame(rng: &mut Rng) -> Frame {
    let id = rng.next();
    let key = rng.bytes(64);
    let request = |rng: &mut Rng, op| match op {
        0 => ReplicaRequest::Put {
            key: key.clone(),
            version: rng.version(),
            value: rng.value(),
            meta: rng.meta(),
        },
        1 => ReplicaRequest::Read { key: key.clone() },
        2 => ReplicaRequest::Repair {
            key: key.clone(),
            version: rng.version(),
            value: rng.value(),
            meta: rng.meta(),
        },
        3 => ReplicaRequest::Copy {
            key: key.clone(),
            version: rng.version(),
            value: rng.value(),
            meta: rng.meta(),
        },
        _ => ReplicaRequest::Prepare {
            key: key.clone(),
            ballot: rng.version(),
        },
    };
    let beat = Heartbeat {
        sent_us: rng.next(),
        hlc: rng.next(),
        wall_ms: rng.next(),
    };
    match rng.below(23) {
        op @ 0..=3 => Frame::Request {
            id,
            request: request(rng, op),
        },
        18 => Frame::Request {
            id,
            request: request(rng, 4),
        },
        19 => Frame::Reply {
            id,
            reply: ReplicaReply::Promised {
                version: rng.version(),
                value: rng.value(),
                meta: rng.meta(),
            },
        },
        20 => Frame::Reply {
            id,
            reply: ReplicaReply::Preempted {
                held: rng.version(),
            },
        },
        4 => Frame::Reply {
            id,
            reply: ReplicaReply::Accepted,
        },
        5 => Frame::Reply {
            id,
            reply: rng.rejected(),
        },
        6 => Frame::Reply {
            id,
            reply: ReplicaReply::Read {
                version: rng.version(),
                value: rng.value(),
                meta: rng.meta(),
            },
        },
        7 => Frame::Reply {
            id,
            reply: ReplicaReply::RepairOk,
        },
        8 => Frame::Reply {
            id,
            reply: rng.repair_rejected(),
        },
        9 => Frame::Reply {
            id,
            reply: ReplicaReply::CopyAck,
        },
        10 => Frame::Unavailable { id },
        11 => Frame::SyncRequest {
            id,
            request: random_sync_request(rng),
        },
        12 => Frame::Reply {
            id,
            reply: ReplicaReply::Digests {
                buckets: (0..rng.below(40))
                    .map(|_| BucketDigest {
                        digest: rng.next(),
                        records: rng.next(),
                    })
                    .collect(),
            },
        },
        13 => Frame::Reply {
            id,
            reply: random_key_page(rng),
        },
        14 => Frame::Reply {
            id,
            reply: ReplicaReply::Status {
                recovering: rng.below(2) == 0,
                created: rng.below(2) == 0,
                records: rng.next(),
            },
        },
        15 => Frame::Reply {
            id,
            reply: ReplicaReply::RefusedFuture,
        },
        16 => Frame::Reply {
            id,
            reply: random_view(rng),
        },
        17 => Frame::Reply {
            id,
            reply: random_range_page(rng),
        },
        _ if rng.below(2) == 0 => Frame::Ping { id, beat },
        _ => Frame::Pong { id, beat },
    }
}

fn random_sync_request(rng: &mut Rng) -> SyncRequest {
    match rng.below(6) {
        0 => return SyncRequest::Digests,
        1 => return SyncRequest::Status,
        2 => return SyncRequest::View,
        3 => {
            return SyncRequest::Range {
                range: crate::storage::range::KeyRange {
                    lower: rng.bytes(20),
                    lower_inclusive: rng.below(2) == 0,
                    upper: (rng.below(2) == 0).then(|| rng.bytes(20)),
                },
                limit: rng.below(1_000) as u32 + 1,
            }
        }
        _ => {}
    }
    let mut buckets: Vec<u32> = (0..rng.below(20))
        .map(|_| rng.below(u64::from(BUCKETS)) as u32)
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    SyncRequest::BucketKeys {
        buckets,
        cursor: rng.bytes(40),
    }
}

fn random_view(rng: &mut Rng) -> ReplicaReply {
    use crate::cluster::health::{PeerReport, Reach};
    let text = |rng: &mut Rng, max| String::from_utf8_lossy(&rng.bytes(max)).into_owned();
    let reach = (0..rng.below(6))
        .map(|_| crate::replication::protocol::ReachEntry {
            url: text(rng, 30),
            node_id: rng.next(),
            reach: Reach::from_code(rng.below(4) as u8).unwrap(),
        })
        .collect();
    let report = PeerReport {
        version: text(rng, 20),
        uptime_s: rng.next(),
        recovering: rng.below(2) == 0,
        approximate_keys: rng.next(),
        disk_bytes: rng.next(),
    };
    ReplicaReply::View(crate::replication::protocol::NodeView { report, reach })
}

fn random_range_page(rng: &mut Rng) -> ReplicaReply {
    let entries = (0..rng.below(10))
        .map(|_| {
            let value = rng.value();
            crate::storage::range::RangeEntry {
                key: rng.bytes(30),
                version: rng.version(),
                tombstone: value.is_none(),
                value,
                meta: rng.meta(),
            }
        })
        .collect();
    ReplicaReply::RangePage(crate::storage::range::RangePage {
        entries,
        complete: rng.below(2) == 0,
    })
}

fn random_key_page(rng: &mut Rng) -> ReplicaReply {
    let entries = (0..rng.below(10))
        .map(|_| KeyVersion {
            key: rng.bytes(30),
            version: rng.version(),
        })
        .collect();
    let next = (rng.below(2) == 0).then(|| rng.bytes(40));
    ReplicaReply::KeyPage { entries, next }
}

#[test]
fn random_frames_round_trip_back_to_back() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut stream = Vec::new();
    let mut frames = Vec::new();
    for _ in 0..3_000 {
        let frame = random_frame(&mut rng);
        frame.encode_into(&mut stream);
        frames.push(frame);
    }
    let mut pos = 0;
    for want in &frames {
        let (got, used) = decode(&stream[pos..], VALUE_MAX)
            .expect("valid")
            .expect("complete");
        assert_eq!(&got, want);
        pos += used;
    }
    assert_eq!(pos, stream.len());
    assert_eq!(decode(&stream[pos..], VALUE_MAX), Ok(None));
}

#[test]
fn every_prefix_is_incomplete_never_an_error() {
    let mut rng = Rng(7);
    for _ in 0..300 {
        let bytes = encoded(&random_frame(&mut rng));
        for end in 0..bytes.len() {
            assert_eq!(decode(&bytes[..end], VALUE_MAX), Ok(None), "prefix {end}");
        }
        let (_, used) = decode(&bytes, VALUE_MAX).unwrap().unwrap();
        assert_eq!(used, bytes.len());
    }
}

#[test]
fn random_bytes_never_panic_and_what_decodes_reencodes_identically() {
    let mut rng = Rng(42);
    let (mut decoded, mut refused) = (0, 0);
    for round in 0..60_000 {
        let mut bytes = if round % 2 == 0 {
            rng.bytes(80)
        } else {
            // Mutate a valid frame: plausible enough to reach deep into the decoder.
            let mut b = encoded(&random_frame(&mut rng));
            for _ in 0..=rng.below(3) {
                let i = rng.below(b.len() as u64) as usize;
                b[i] = rng.next() as u8;
            }
            b
        };
        if round % 3 == 0 && bytes.len() >= 4 {
            // A sane length prefix, so the payload decoders run on random bytes.
            let len = (bytes.len() - 4) as u32;
            bytes[..4].copy_from_slice(&len.to_le_bytes());
        }
        match decode(&bytes, VALUE_MAX) {
            Ok(Some((frame, used))) => {
                decoded += 1;
                assert_eq!(encoded(&frame), bytes[..used], "canonical encoding");
            }
            Ok(None) => {}
            Err(_) => refused += 1,
        }
    }
    assert!(decoded > 5_000, "decoded {decoded}");
    assert!(refused > 5_000, "refused {refused}");
}

#[test]
fn bounds_are_enforced_before_the_bytes_arrive() {
    let max = frame_bytes_max(VALUE_MAX);
    let mut prefix = ((max + 1) as u32).to_le_bytes().to_vec();
    assert_eq!(
        decode(&prefix, VALUE_MAX),
        Err(FrameError::TooLarge { len: max + 1, max })
    );
    prefix = (max as u32).to_le_bytes().to_vec();
    assert_eq!(peek_len(&prefix, VALUE_MAX), Ok(Some(4 + max)));
    assert_eq!(
        decode(&[3, 0, 0, 0, 1, 0, 0], VALUE_MAX),
        Err(FrameError::TooShort { len: 3, min: 9 })
    );
    // A value one byte over the caller's bound, in a frame that is itself within bounds.
    let frame = Frame::Reply {
        id: 1,
        reply: ReplicaReply::Read {
            version: v(1, 1),
            value: Some(vec![0; 101]),
            meta: Meta::BLIND,
        },
    };
    assert!(matches!(
        decode(&encoded(&frame), 100),
        Err(FrameError::FieldTooLarge {
            what: "value",
            len: 101,
            max: 100
        })
    ));
    assert!(decode(&encoded(&frame), 101).unwrap().is_some());
    let big_key = Frame::Request {
        id: 1,
        request: ReplicaRequest::Read {
            key: vec![0; KEY_BYTES_MAX + 1],
        },
    };
    assert!(matches!(
        decode(&encoded(&big_key), VALUE_MAX),
        Err(FrameError::FieldTooLarge { what: "key", .. })
    ));
}

#[test]
fn malformed_frames_say_why() {
    let mut ping = encoded(&Frame::Ping {
        id: 1,
        beat: Heartbeat::default(),
    });
    ping[4] = 99;
    assert_eq!(
        decode(&ping, VALUE_MAX),
        Err(FrameError::UnknownKind { kind: 99 })
    );
    let mut unavailable = Vec::new();
    encode_unavailable(&mut unavailable, 1);
    unavailable[0] += 1;
    unavailable.push(0);
    assert_eq!(
        decode(&unavailable, VALUE_MAX),
        Err(FrameError::Trailing {
            what: "unavailable",
            extra: 1
        })
    );
    let mut put = encoded(&Frame::Request {
        id: 1,
        request: ReplicaRequest::Put {
            key: b"k".to_vec(),
            version: v(1, 1),
            value: None,
            meta: Meta::BLIND,
        },
    });
    *put.last_mut().unwrap() = 0b1000;
    assert_eq!(
        decode(&put, VALUE_MAX),
        Err(FrameError::UnknownFlags { flags: 0b1000 })
    );
    put[13] = 9;
    assert_eq!(
        decode(&put, VALUE_MAX),
        Err(FrameError::UnknownOp {
            what: "request",
            op: 9
        })
    );
}

#[test]
fn sync_layouts_are_pinned() {
    let keys = Frame::SyncRequest {
        id: 5,
        request: SyncRequest::BucketKeys {
            buckets: vec![1, 1023],
            cursor: b"c".to_vec(),
        },
    };
    let mut want = vec![];
    want.extend_from_slice(&(9u32 + 1 + 4 + 8 + 4 + 1).to_le_bytes());
    want.push(6); // sync request
    want.extend_from_slice(&5u64.to_le_bytes());
    want.push(2); // BucketKeys
    want.extend_from_slice(&2u32.to_le_bytes());
    want.extend_from_slice(&1u32.to_le_bytes());
    want.extend_from_slice(&1023u32.to_le_bytes());
    want.extend_from_slice(&1u32.to_le_bytes());
    want.push(b'c');
    assert_eq!(encoded(&keys), want);

    let page = Frame::Reply {
        id: 6,
        reply: ReplicaReply::KeyPage {
            entries: vec![KeyVersion {
                key: b"k".to_vec(),
                version: v(0x11, 0x22),
            }],
            next: None,
        },
    };
    let mut want = vec![];
    want.extend_from_slice(&(9u32 + 1 + 4 + 4 + 1 + 16 + 1).to_le_bytes());
    want.push(2); // reply
    want.extend_from_slice(&6u64.to_le_bytes());
    want.push(8); // KeyPage
    want.extend_from_slice(&1u32.to_le_bytes());
    want.extend_from_slice(&1u32.to_le_bytes());
    want.push(b'k');
    want.extend_from_slice(&0x11u64.to_be_bytes());
    want.extend_from_slice(&0x22u64.to_be_bytes());
    want.push(0); // last page
    assert_eq!(encoded(&page), want);

    let digests = Frame::Reply {
        id: 7,
        reply: ReplicaReply::Digests {
            buckets: vec![BucketDigest {
                digest: 3,
                records: 4,
            }],
        },
    };
    let bytes = encoded(&digests);
    assert_eq!(bytes.len(), 4 + 9 + 1 + 4 + 16);
    assert_eq!(bytes[13], 7, "Digests reply op");
    assert_eq!(&bytes[18..26], &3u64.to_le_bytes());
    assert_eq!(&bytes[26..34], &4u64.to_le_bytes());
}

#[test]
fn sync_answers_of_full_size_fit_the_smallest_value_allowance() {
    // Every bucket's digest, decoded by a node that takes only the smallest values.
    let lowest = crate::limits::VALUE_BYTES_MAX_LOWEST;
    let digests = Frame::Reply {
        id: 1,
        reply: ReplicaReply::Digests {
            buckets: vec![BucketDigest::default(); BUCKETS as usize],
        },
    };
    assert!(decode(&encoded(&digests), lowest).unwrap().is_some());
    // A key page at its byte allowance, plus one entry with the largest key and a cursor.
    let entry = |len| KeyVersion {
        key: vec![7; len],
        version: v(1, 2),
    };
    let small = (crate::limits::ANTI_ENTROPY_PAGE_BYTES_MAX) / (64 + 20);
    let mut entries: Vec<KeyVersion> = (0..small).map(|_| entry(64)).collect();
    entries.push(entry(KEY_BYTES_MAX));
    let page = Frame::Reply {
        id: 2,
        reply: ReplicaReply::KeyPage {
            entries,
            next: Some(vec![9; SYNC_CURSOR_BYTES_MAX]),
        },
    };
    let (got, _) = decode(&encoded(&page), lowest).unwrap().unwrap();
    assert_eq!(got, page);
}

#[test]
fn malformed_sync_frames_say_why() {
    let request = |buckets: Vec<u32>| {
        encoded(&Frame::SyncRequest {
            id: 1,
            request: SyncRequest::BucketKeys {
                buckets,
                cursor: vec![],
            },
        })
    };
    assert_eq!(
        decode(&request(vec![3, 3]), VALUE_MAX),
        Err(FrameError::Invalid {
            what: "buckets",
            detail: "not ascending"
        })
    );
    assert_eq!(
        decode(&request(vec![BUCKETS]), VALUE_MAX),
        Err(FrameError::Invalid {
            what: "bucket",
            detail: "out of range"
        })
    );
    let mut too_many = request(vec![]);
    too_many[14..18].copy_from_slice(&(BUCKETS + 1).to_le_bytes());
    assert!(matches!(
        decode(&too_many, VALUE_MAX),
        Err(FrameError::FieldTooLarge {
            what: "buckets",
            ..
        })
    ));
    let mut op = encoded(&Frame::SyncRequest {
        id: 1,
        request: SyncRequest::Digests,
    });
    op[13] = 9;
    assert_eq!(
        decode(&op, VALUE_MAX),
        Err(FrameError::UnknownOp {
            what: "sync",
            op: 9
        })
    );
    // A page that claims more entries than its bytes can hold is refused before allocating.
    let mut page = encoded(&Frame::Reply {
        id: 1,
        reply: ReplicaReply::KeyPage {
            entries: vec![],
            next: None,
        },
    });
    page[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode(&page, VALUE_MAX),
        Err(FrameError::FieldTooLarge {
            what: "entries",
            ..
        })
    ));
    *page.last_mut().unwrap() = 2;
    page[14..18].copy_from_slice(&0u32.to_le_bytes());
    assert_eq!(
        decode(&page, VALUE_MAX),
        Err(FrameError::Invalid {
            what: "page end",
            detail: "neither 0 nor 1"
        })
    );
}
