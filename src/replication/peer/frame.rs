//! Peer frames, sans-IO: encoding into a caller's buffer and decoding from the front of a
//! read buffer, for the replica operations of [`crate::replication::protocol`] and the
//! heartbeats. No I/O, no clock; decoding never panics, whatever the bytes. Must not import
//! `http`, `api` or `runtime`.
//!
//! A frame is `len: u32 LE` (the bytes that follow) ‖ `kind: u8` ‖ `id: u64 LE` ‖ payload:
//!
//! | kind            | payload                                                          |
//! |-----------------|------------------------------------------------------------------|
//! | 1 request       | op ‖ key ‖ (PUT, REPAIR, COPY:) version ‖ value                   |
//! | 2 reply         | op ‖ (Rejected:) version ‖ (Read, RepairRejected:) version ‖ value |
//! | 3 unavailable   | — (the replica did not perform request `id`, and never will)     |
//! | 4 ping, 5 pong  | `sent_us: u64 LE` ‖ `hlc: u64 LE` ‖ `wall_ms: u64 LE`             |
//! | 6 sync request  | sync op ‖ (BucketKeys:) `n: u32 LE` ‖ n × `bucket: u32 LE` ‖ cursor |
//!
//! `key` = `len: u32 LE` ‖ bytes; `version` = `hlc: u64 BE` ‖ `origin: u64 BE` (the order
//! and bytes of the on-disk record); `value` = `flags: u8` (bit 0: tombstone, the only bit)
//! ‖ (not a tombstone:) `len: u32 LE` ‖ bytes. Request ops: 1 PUT, 2 READ, 3 REPAIR, 4 COPY.
//! Reply ops: 1 Accepted, 2 Rejected, 3 Read, 4 RepairOk, 5 RepairRejected, 6 CopyAck,
//! 7 Digests (`n: u32 LE` ‖ n × (`digest: u64 LE` ‖ `records: u64 LE`)), 8 KeyPage (`n: u32 LE`
//! ‖ n × (key ‖ version) ‖ `more: u8` (0 or 1) ‖ (more:) cursor), 9 Status (`flags: u8`, bit 0
//! recovering, bit 1 created ‖ `records: u64 LE`), 10 RefusedFuture (no payload: the version
//! was beyond the replica's clock bound), 11 View (`flags: u8`, bit 0 recovering ‖
//! `uptime_s: u64 LE` ‖ `approximate_keys: u64 LE` ‖ `disk_bytes: u64 LE` ‖ version (bytes) ‖
//! `n: u32 LE` ‖ n × (url (bytes) ‖ `node_id: u64 LE` ‖ `state: u8`: 0 self, 1 up, 2 suspect,
//! 3 down)). A node answers View only if its handshake announced it (`X-Mostdb-Features`).
//! Sync ops (anti-entropy and monitoring): 1 Digests, 2 BucketKeys, 3 Status, 4 View. A cursor is `len: u32 LE` ‖ bytes;
//! buckets are ascending, distinct and below [`BUCKETS`].
//! There is no shard field: each node maps a key to its own shards (their count is per node).
//!
//! Frames are bounded by the larger of the value allowance and the anti-entropy answer
//! allowance ([`ANTI_ENTROPY_REPLY_BYTES_MAX`]), plus a key and the fixed fields.

use crate::cluster::health::{PeerReport, Reach};
use crate::limits::{ANTI_ENTROPY_REPLY_BYTES_MAX, KEY_BYTES_MAX, PEER_FRAME_OVERHEAD_BYTES};
use crate::replication::protocol::{
    BucketDigest, KeyVersion, NodeView, ReachEntry, ReplicaReply, ReplicaRequest, SyncRequest,
    BUCKETS,
};
use crate::storage::Version;

/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;
/// Bytes every frame has after its length: kind and id.
pub const HEADER_BYTES: usize = 1 + 8;

const KIND_REQUEST: u8 = 1;
const KIND_REPLY: u8 = 2;
const KIND_UNAVAILABLE: u8 = 3;
const KIND_PING: u8 = 4;
const KIND_PONG: u8 = 5;
const KIND_SYNC_REQUEST: u8 = 6;

const OP_PUT: u8 = 1;
const OP_READ: u8 = 2;
const OP_REPAIR: u8 = 3;
const OP_COPY: u8 = 4;

const REPLY_ACCEPTED: u8 = 1;
const REPLY_REJECTED: u8 = 2;
const REPLY_READ: u8 = 3;
const REPLY_REPAIR_OK: u8 = 4;
const REPLY_REPAIR_REJECTED: u8 = 5;
const REPLY_COPY_ACK: u8 = 6;
const REPLY_DIGESTS: u8 = 7;
const REPLY_KEY_PAGE: u8 = 8;
const REPLY_STATUS: u8 = 9;
const REPLY_REFUSED_FUTURE: u8 = 10;
const REPLY_VIEW: u8 = 11;

const SYNC_DIGESTS: u8 = 1;
const SYNC_BUCKET_KEYS: u8 = 2;
const SYNC_STATUS: u8 = 3;
const SYNC_VIEW: u8 = 4;

/// Longest build version a view answer carries.
pub const VIEW_VERSION_BYTES_MAX: usize = 64;
/// Longest member URL a view answer carries.
pub const VIEW_URL_BYTES_MAX: usize = 512;
/// Most members a view answer lists.
pub const VIEW_MEMBERS_MAX: usize = 256;
/// View flags.
const VIEW_RECOVERING: u8 = 0b01;
const _: () = assert!(
    1 + 24 + 4 + VIEW_VERSION_BYTES_MAX + 4 + VIEW_MEMBERS_MAX * (4 + VIEW_URL_BYTES_MAX + 9)
        <= ANTI_ENTROPY_REPLY_BYTES_MAX
);

/// Status reply flags.
const STATUS_RECOVERING: u8 = 0b01;
const STATUS_CREATED: u8 = 0b10;

/// Largest anti-entropy scan cursor: a shard number, a flag and a key (with room to spare).
pub const SYNC_CURSOR_BYTES_MAX: usize = 8 + KEY_BYTES_MAX;
/// Encoded bytes of one key-page entry beyond its key: the key's length and the version.
pub const KEY_PAGE_ENTRY_OVERHEAD_BYTES: usize = 4 + 16;
/// Encoded bytes of the digests of every bucket (op, count, entries).
const DIGESTS_REPLY_BYTES: usize = 1 + 4 + 16 * BUCKETS as usize;
const _: () = assert!(DIGESTS_REPLY_BYTES <= ANTI_ENTROPY_REPLY_BYTES_MAX);
const _: () =
    assert!(SYNC_CURSOR_BYTES_MAX + 4 + 4 * BUCKETS as usize <= ANTI_ENTROPY_REPLY_BYTES_MAX);

const FLAG_TOMBSTONE: u8 = 0b0000_0001;

/// A heartbeat: the sender's send time (a link-local microsecond count, echoed by the pong
/// for the round-trip time), its clock's last issued or observed HLC, and its wall clock
/// (physical ms since the epoch: the pong's gives the dialler the peer's clock offset).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Heartbeat {
    pub sent_us: u64,
    pub hlc: u64,
    pub wall_ms: u64,
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    Request {
        id: u64,
        request: ReplicaRequest,
    },
    Reply {
        id: u64,
        reply: ReplicaReply,
    },
    /// The replica did not perform request `id` and never will (e.g. its storage was busy).
    Unavailable {
        id: u64,
    },
    Ping {
        id: u64,
        beat: Heartbeat,
    },
    /// Answers the ping `id`: `beat.sent_us` is the ping's, `beat.hlc` the answerer's.
    Pong {
        id: u64,
        beat: Heartbeat,
    },
    /// An anti-entropy question; answered by a [`Frame::Reply`] (or [`Frame::Unavailable`]).
    SyncRequest {
        id: u64,
        request: SyncRequest,
    },
}

/// Why bytes are not a frame. Any of these ends the link: framing cannot resynchronise.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    #[error("frame of {len} bytes, at most {max} allowed")]
    TooLarge { len: usize, max: usize },
    #[error("frame of {len} bytes, shorter than its {min}-byte header")]
    TooShort { len: usize, min: usize },
    #[error("unknown frame kind {kind}")]
    UnknownKind { kind: u8 },
    #[error("unknown {what} op {op}")]
    UnknownOp { what: &'static str, op: u8 },
    #[error("unknown value flags {flags:#010b}")]
    UnknownFlags { flags: u8 },
    #[error("{what} of {len} bytes, at most {max} allowed")]
    FieldTooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },
    #[error("frame ends inside its {what}")]
    Truncated { what: &'static str },
    #[error("{extra} bytes after the end of a {what} frame")]
    Trailing { what: &'static str, extra: usize },
    #[error("{what}: {detail}")]
    Invalid {
        what: &'static str,
        detail: &'static str,
    },
}

/// The largest frame (after its length prefix) for values of at most `value_bytes_max` (and
/// anti-entropy answers of at most [`ANTI_ENTROPY_REPLY_BYTES_MAX`]).
pub fn frame_bytes_max(value_bytes_max: usize) -> usize {
    value_bytes_max
        .max(ANTI_ENTROPY_REPLY_BYTES_MAX)
        .saturating_add(KEY_BYTES_MAX)
        .saturating_add(PEER_FRAME_OVERHEAD_BYTES)
}

/// The total size (prefix included) of the frame at the front of `buf`, once its length
/// prefix is there; refuses a declared length that is out of bounds before its bytes arrive.
pub fn peek_len(buf: &[u8], value_bytes_max: usize) -> Result<Option<usize>, FrameError> {
    let Some(prefix) = buf.first_chunk::<LEN_BYTES>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*prefix) as usize;
    let max = frame_bytes_max(value_bytes_max);
    if len > max {
        return Err(FrameError::TooLarge { len, max });
    }
    if len < HEADER_BYTES {
        return Err(FrameError::TooShort {
            len,
            min: HEADER_BYTES,
        });
    }
    Ok(Some(LEN_BYTES + len))
}

/// Decodes the frame at the front of `buf`: `Ok(None)` until it is complete, then the frame
/// and the bytes it took. Keys and values are copied out (they outlive the read buffer).
pub fn decode(buf: &[u8], value_bytes_max: usize) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(total) = peek_len(buf, value_bytes_max)? else {
        return Ok(None);
    };
    let Some(bytes) = buf.get(LEN_BYTES..total) else {
        return Ok(None);
    };
    let mut r = Cursor { rest: bytes };
    let kind = r.u8("kind")?;
    let id = r.u64_le("id")?;
    let (frame, what) = match kind {
        KIND_REQUEST => {
            let request = decode_request(&mut r, value_bytes_max)?;
            (Frame::Request { id, request }, "request")
        }
        KIND_REPLY => {
            let reply = decode_reply(&mut r, value_bytes_max)?;
            (Frame::Reply { id, reply }, "reply")
        }
        KIND_UNAVAILABLE => (Frame::Unavailable { id }, "unavailable"),
        KIND_PING => (
            Frame::Ping {
                id,
                beat: r.beat()?,
            },
            "ping",
        ),
        KIND_PONG => (
            Frame::Pong {
                id,
                beat: r.beat()?,
            },
            "pong",
        ),
        KIND_SYNC_REQUEST => (
            Frame::SyncRequest {
                id,
                request: decode_sync_request(&mut r)?,
            },
            "sync request",
        ),
        kind => return Err(FrameError::UnknownKind { kind }),
    };
    if !r.rest.is_empty() {
        return Err(FrameError::Trailing {
            what,
            extra: r.rest.len(),
        });
    }
    Ok(Some((frame, total)))
}

impl Frame {
    /// Appends this frame to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Frame::Request { id, request } => encode_request(out, *id, request),
            Frame::Reply { id, reply } => encode_reply(out, *id, reply),
            Frame::Unavailable { id } => encode_unavailable(out, *id),
            Frame::Ping { id, beat } => encode_beat(out, KIND_PING, *id, *beat),
            Frame::Pong { id, beat } => encode_beat(out, KIND_PONG, *id, *beat),
            Frame::SyncRequest { id, request } => encode_sync_request(out, *id, request),
        }
    }
}

/// Appends a request frame to `out`.
pub fn encode_request(out: &mut Vec<u8>, id: u64, request: &ReplicaRequest) {
    let (op, key, record) = match request {
        ReplicaRequest::Put {
            key,
            version,
            value,
        } => (OP_PUT, key, Some((version, value))),
        ReplicaRequest::Read { key } => (OP_READ, key, None),
        ReplicaRequest::Repair {
            key,
            version,
            value,
        } => (OP_REPAIR, key, Some((version, value))),
        ReplicaRequest::Copy {
            key,
            version,
            value,
        } => (OP_COPY, key, Some((version, value))),
    };
    let value_len = record.and_then(|(_, v)| v.as_ref()).map_or(0, Vec::len);
    let start = begin(
        out,
        KIND_REQUEST,
        id,
        1 + 4 + key.len() + 8 + 8 + 1 + 4 + value_len,
    );
    out.push(op);
    put_bytes(out, key);
    if let Some((version, value)) = record {
        put_version(out, *version);
        put_value(out, value.as_deref());
    }
    finish(out, start);
}

/// Appends a reply frame to `out`.
pub fn encode_reply(out: &mut Vec<u8>, id: u64, reply: &ReplicaReply) {
    let start = begin(
        out,
        KIND_REPLY,
        id,
        1 + 8 + 8 + 1 + 4 + reply_value_len(reply),
    );
    match reply {
        ReplicaReply::Accepted => out.push(REPLY_ACCEPTED),
        ReplicaReply::Rejected { held } => {
            out.push(REPLY_REJECTED);
            put_version(out, *held);
        }
        ReplicaReply::Read { version, value } => {
            out.push(REPLY_READ);
            put_version(out, *version);
            put_value(out, value.as_deref());
        }
        ReplicaReply::RepairOk => out.push(REPLY_REPAIR_OK),
        ReplicaReply::RepairRejected { held, value } => {
            out.push(REPLY_REPAIR_REJECTED);
            put_version(out, *held);
            put_value(out, value.as_deref());
        }
        ReplicaReply::CopyAck => out.push(REPLY_COPY_ACK),
        ReplicaReply::RefusedFuture => out.push(REPLY_REFUSED_FUTURE),
        ReplicaReply::Digests { buckets } => {
            out.push(REPLY_DIGESTS);
            out.extend_from_slice(&len32(buckets.len()).to_le_bytes());
            for bucket in buckets {
                out.extend_from_slice(&bucket.digest.to_le_bytes());
                out.extend_from_slice(&bucket.records.to_le_bytes());
            }
        }
        ReplicaReply::KeyPage { entries, next } => put_key_page(out, entries, next.as_deref()),
        ReplicaReply::Status {
            recovering,
            created,
            records,
        } => {
            out.push(REPLY_STATUS);
            let mut flags = 0;
            if *recovering {
                flags |= STATUS_RECOVERING;
            }
            if *created {
                flags |= STATUS_CREATED;
            }
            out.push(flags);
            out.extend_from_slice(&records.to_le_bytes());
        }
        ReplicaReply::View(view) => put_view(out, view),
    }
    finish(out, start);
}

/// A view answer; fields beyond their bound are cut (they come from this node's own settings,
/// which `config` bounds far below).
fn put_view(out: &mut Vec<u8>, view: &NodeView) {
    let report = &view.report;
    out.push(REPLY_VIEW);
    out.push(if report.recovering {
        VIEW_RECOVERING
    } else {
        0
    });
    for n in [report.uptime_s, report.approximate_keys, report.disk_bytes] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    put_bytes(out, cut(report.version.as_bytes(), VIEW_VERSION_BYTES_MAX));
    let members = &view.reach[..view.reach.len().min(VIEW_MEMBERS_MAX)];
    out.extend_from_slice(&len32(members.len()).to_le_bytes());
    for entry in members {
        put_bytes(out, cut(entry.url.as_bytes(), VIEW_URL_BYTES_MAX));
        out.extend_from_slice(&entry.node_id.to_le_bytes());
        out.push(entry.reach.code());
    }
}

fn cut(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// The bytes of a reply beyond its fixed part (to reserve them at once).
fn reply_value_len(reply: &ReplicaReply) -> usize {
    match reply {
        ReplicaReply::Read { value, .. } | ReplicaReply::RepairRejected { value, .. } => {
            value.as_ref().map_or(0, Vec::len)
        }
        ReplicaReply::Digests { buckets } => 16 * buckets.len(),
        ReplicaReply::KeyPage { entries, next } => {
            let keys: usize = entries.iter().map(|e| e.key.len()).sum();
            keys + KEY_PAGE_ENTRY_OVERHEAD_BYTES * entries.len() + next.as_ref().map_or(0, Vec::len)
        }
        ReplicaReply::View(view) => {
            let urls: usize = view.reach.iter().map(|e| 13 + e.url.len()).sum();
            urls + view.report.version.len() + 4
        }
        _ => 0,
    }
}

fn put_key_page(out: &mut Vec<u8>, entries: &[KeyVersion], next: Option<&[u8]>) {
    out.push(REPLY_KEY_PAGE);
    out.extend_from_slice(&len32(entries.len()).to_le_bytes());
    for entry in entries {
        put_bytes(out, &entry.key);
        put_version(out, entry.version);
    }
    match next {
        Some(cursor) => {
            out.push(1);
            put_bytes(out, cursor);
        }
        None => out.push(0),
    }
}

/// Appends an anti-entropy request frame to `out`.
pub fn encode_sync_request(out: &mut Vec<u8>, id: u64, request: &SyncRequest) {
    match request {
        SyncRequest::Digests => {
            let start = begin(out, KIND_SYNC_REQUEST, id, 1);
            out.push(SYNC_DIGESTS);
            finish(out, start);
        }
        SyncRequest::BucketKeys { buckets, cursor } => {
            let hint = 1 + 4 + 4 * buckets.len() + 4 + cursor.len();
            let start = begin(out, KIND_SYNC_REQUEST, id, hint);
            out.push(SYNC_BUCKET_KEYS);
            out.extend_from_slice(&len32(buckets.len()).to_le_bytes());
            for bucket in buckets {
                out.extend_from_slice(&bucket.to_le_bytes());
            }
            put_bytes(out, cursor);
            finish(out, start);
        }
        SyncRequest::Status | SyncRequest::View => {
            let start = begin(out, KIND_SYNC_REQUEST, id, 1);
            out.push(if *request == SyncRequest::View {
                SYNC_VIEW
            } else {
                SYNC_STATUS
            });
            finish(out, start);
        }
    }
}

/// Appends an "unavailable" answer to request `id`.
pub fn encode_unavailable(out: &mut Vec<u8>, id: u64) {
    let start = begin(out, KIND_UNAVAILABLE, id, 0);
    finish(out, start);
}

/// Appends a ping.
pub fn encode_ping(out: &mut Vec<u8>, id: u64, beat: Heartbeat) {
    encode_beat(out, KIND_PING, id, beat);
}

/// Appends a pong.
pub fn encode_pong(out: &mut Vec<u8>, id: u64, beat: Heartbeat) {
    encode_beat(out, KIND_PONG, id, beat);
}

fn encode_beat(out: &mut Vec<u8>, kind: u8, id: u64, beat: Heartbeat) {
    let start = begin(out, kind, id, 24);
    out.extend_from_slice(&beat.sent_us.to_le_bytes());
    out.extend_from_slice(&beat.hlc.to_le_bytes());
    out.extend_from_slice(&beat.wall_ms.to_le_bytes());
    finish(out, start);
}

/// Reserves room, writes a placeholder length, the kind and the id; returns where the frame
/// starts.
fn begin(out: &mut Vec<u8>, kind: u8, id: u64, payload_hint: usize) -> usize {
    out.reserve(LEN_BYTES + HEADER_BYTES + payload_hint);
    let start = out.len();
    out.extend_from_slice(&[0; LEN_BYTES]);
    out.push(kind);
    out.extend_from_slice(&id.to_le_bytes());
    start
}

/// Patches the length of the frame that starts at `start`.
fn finish(out: &mut [u8], start: usize) {
    let len = out.len() - start - LEN_BYTES;
    out[start..start + LEN_BYTES].copy_from_slice(&len32(len).to_le_bytes());
}

/// Keys and values are bounded far below 4 GiB (`limits::KEY_BYTES_MAX`,
/// `limits::VALUE_BYTES_MAX_HIGHEST`, both checked before anything reaches a replica op).
fn len32(len: usize) -> u32 {
    u32::try_from(len).expect("peer frame fields are bounded below 4 GiB")
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&len32(bytes.len()).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn put_version(out: &mut Vec<u8>, version: Version) {
    out.extend_from_slice(&version.hlc.to_be_bytes());
    out.extend_from_slice(&version.origin.to_be_bytes());
}

fn put_value(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        Some(bytes) => {
            out.push(0);
            put_bytes(out, bytes);
        }
        None => out.push(FLAG_TOMBSTONE),
    }
}

fn decode_request(
    r: &mut Cursor<'_>,
    value_bytes_max: usize,
) -> Result<ReplicaRequest, FrameError> {
    let op = r.u8("request op")?;
    if !matches!(op, OP_PUT | OP_READ | OP_REPAIR | OP_COPY) {
        return Err(FrameError::UnknownOp {
            what: "request",
            op,
        });
    }
    let key = r.bytes("key", KEY_BYTES_MAX)?.to_vec();
    if op == OP_READ {
        return Ok(ReplicaRequest::Read { key });
    }
    let version = r.version()?;
    let value = r.value(value_bytes_max)?;
    Ok(match op {
        OP_PUT => ReplicaRequest::Put {
            key,
            version,
            value,
        },
        OP_REPAIR => ReplicaRequest::Repair {
            key,
            version,
            value,
        },
        _ => ReplicaRequest::Copy {
            key,
            version,
            value,
        },
    })
}

fn decode_reply(r: &mut Cursor<'_>, value_bytes_max: usize) -> Result<ReplicaReply, FrameError> {
    Ok(match r.u8("reply op")? {
        REPLY_ACCEPTED => ReplicaReply::Accepted,
        REPLY_REJECTED => ReplicaReply::Rejected { held: r.version()? },
        REPLY_READ => ReplicaReply::Read {
            version: r.version()?,
            value: r.value(value_bytes_max)?,
        },
        REPLY_REPAIR_OK => ReplicaReply::RepairOk,
        REPLY_REPAIR_REJECTED => ReplicaReply::RepairRejected {
            held: r.version()?,
            value: r.value(value_bytes_max)?,
        },
        REPLY_COPY_ACK => ReplicaReply::CopyAck,
        REPLY_REFUSED_FUTURE => ReplicaReply::RefusedFuture,
        REPLY_DIGESTS => decode_digests(r)?,
        REPLY_VIEW => decode_view(r)?,
        REPLY_KEY_PAGE => decode_key_page(r)?,
        REPLY_STATUS => {
            let flags = r.u8("status flags")?;
            if flags & !(STATUS_RECOVERING | STATUS_CREATED) != 0 {
                return Err(invalid("status flags", "unknown bit"));
            }
            ReplicaReply::Status {
                recovering: flags & STATUS_RECOVERING != 0,
                created: flags & STATUS_CREATED != 0,
                records: r.u64_le("records")?,
            }
        }
        op => return Err(FrameError::UnknownOp { what: "reply", op }),
    })
}

fn decode_sync_request(r: &mut Cursor<'_>) -> Result<SyncRequest, FrameError> {
    match r.u8("sync op")? {
        SYNC_DIGESTS => Ok(SyncRequest::Digests),
        SYNC_STATUS => Ok(SyncRequest::Status),
        SYNC_VIEW => Ok(SyncRequest::View),
        SYNC_BUCKET_KEYS => {
            let n = r.count("buckets", BUCKETS as usize)?;
            let mut buckets: Vec<u32> = Vec::with_capacity(n);
            for _ in 0..n {
                let bucket = u32::from_le_bytes(r.array("bucket")?);
                if bucket >= BUCKETS {
                    return Err(invalid("bucket", "out of range"));
                }
                if buckets.last().is_some_and(|&last| last >= bucket) {
                    return Err(invalid("buckets", "not ascending"));
                }
                buckets.push(bucket);
            }
            let cursor = r.bytes("cursor", SYNC_CURSOR_BYTES_MAX)?.to_vec();
            Ok(SyncRequest::BucketKeys { buckets, cursor })
        }
        op => Err(FrameError::UnknownOp { what: "sync", op }),
    }
}

fn decode_digests(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
    let n = r.count("digests", BUCKETS as usize)?;
    let mut buckets = Vec::with_capacity(n);
    for _ in 0..n {
        buckets.push(BucketDigest {
            digest: r.u64_le("digest")?,
            records: r.u64_le("digest")?,
        });
    }
    Ok(ReplicaReply::Digests { buckets })
}

fn decode_key_page(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
    // Each entry takes at least its overhead: a count beyond that cannot be honest, and must
    // not size an allocation.
    let n = r.count("entries", r.rest.len() / KEY_PAGE_ENTRY_OVERHEAD_BYTES)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.bytes("key", KEY_BYTES_MAX)?.to_vec();
        let version = r.version()?;
        entries.push(KeyVersion { key, version });
    }
    let next = match r.u8("page end")? {
        0 => None,
        1 => Some(r.bytes("cursor", SYNC_CURSOR_BYTES_MAX)?.to_vec()),
        _ => return Err(invalid("page end", "neither 0 nor 1")),
    };
    Ok(ReplicaReply::KeyPage { entries, next })
}

fn decode_view(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
    let flags = r.u8("view flags")?;
    if flags & !VIEW_RECOVERING != 0 {
        return Err(invalid("view flags", "unknown bit"));
    }
    let uptime_s = r.u64_le("uptime")?;
    let approximate_keys = r.u64_le("approximate keys")?;
    let disk_bytes = r.u64_le("disk bytes")?;
    let version = text(r.bytes("version", VIEW_VERSION_BYTES_MAX)?, "version")?;
    // Each member takes at least 13 bytes: a count beyond that cannot be honest.
    let n = r.count("members", VIEW_MEMBERS_MAX.min(r.rest.len() / 13))?;
    let mut reach = Vec::with_capacity(n);
    for _ in 0..n {
        let url = text(r.bytes("url", VIEW_URL_BYTES_MAX)?, "url")?;
        let node_id = r.u64_le("node id")?;
        let reach_code = r.u8("reach")?;
        let state = Reach::from_code(reach_code).ok_or(invalid("reach", "unknown state"))?;
        reach.push(ReachEntry {
            url,
            node_id,
            reach: state,
        });
    }
    let report = PeerReport {
        version,
        uptime_s,
        recovering: flags & VIEW_RECOVERING != 0,
        approximate_keys,
        disk_bytes,
    };
    Ok(ReplicaReply::View(NodeView { report, reach }))
}

fn text(bytes: &[u8], what: &'static str) -> Result<String, FrameError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| invalid(what, "not UTF-8"))
}

fn invalid(what: &'static str, detail: &'static str) -> FrameError {
    FrameError::Invalid { what, detail }
}

/// Reads fields off the front of a frame's bytes; every read is checked.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], FrameError> {
        if self.rest.len() < n {
            return Err(FrameError::Truncated { what });
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], FrameError> {
        let bytes = self.take(N, what)?;
        let mut out = [0; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, FrameError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u64_le(&mut self, what: &'static str) -> Result<u64, FrameError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    /// A `u32 LE` element count of at most `max`.
    fn count(&mut self, what: &'static str, max: usize) -> Result<usize, FrameError> {
        let len = u32::from_le_bytes(self.array(what)?) as usize;
        if len > max {
            return Err(FrameError::FieldTooLarge { what, len, max });
        }
        Ok(len)
    }

    fn bytes(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], FrameError> {
        let len = u32::from_le_bytes(self.array(what)?) as usize;
        if len > max {
            return Err(FrameError::FieldTooLarge { what, len, max });
        }
        self.take(len, what)
    }

    fn version(&mut self) -> Result<Version, FrameError> {
        Ok(Version {
            hlc: u64::from_be_bytes(self.array("version")?),
            origin: u64::from_be_bytes(self.array("version")?),
        })
    }

    fn value(&mut self, value_bytes_max: usize) -> Result<Option<Vec<u8>>, FrameError> {
        match self.u8("value flags")? {
            0 => Ok(Some(self.bytes("value", value_bytes_max)?.to_vec())),
            FLAG_TOMBSTONE => Ok(None),
            flags => Err(FrameError::UnknownFlags { flags }),
        }
    }

    fn beat(&mut self) -> Result<Heartbeat, FrameError> {
        Ok(Heartbeat {
            sent_us: self.u64_le("heartbeat")?,
            hlc: self.u64_le("heartbeat")?,
            wall_ms: self.u64_le("heartbeat")?,
        })
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
