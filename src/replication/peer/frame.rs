//! Peer frames, sans-IO: encoding into a caller's buffer and decoding from the front of a
//! read buffer, for the replica operations of [`crate::replication::protocol`] and the
//! heartbeats. No I/O, no clock; decoding never panics, whatever the bytes. Must not import
//! `http`, `api` or `runtime`.
//!
//! A frame is `len: u32 LE` (the bytes that follow) ‖ `kind: u8` ‖ `id: u64 LE` ‖ payload:
//!
//! | kind            | payload                                                          |
//! |-----------------|------------------------------------------------------------------|
//! | 1 request       | op ‖ key ‖ (PUT, REPAIR, COPY:) version ‖ value; (PREPARE:) version |
//! | 2 reply         | op ‖ (Rejected, Preempted:) version ‖ (RejectedHeld:) version ‖     |
//! |                 | version ‖ `cas: u8` ‖ (Read, RepairRejected, Promised:) version ‖ value |
//! | 3 unavailable   | — (the replica did not perform request `id`, and never will)     |
//! | 4 ping, 5 pong  | `sent_us: u64 LE` ‖ `hlc: u64 LE` ‖ `wall_ms: u64 LE`             |
//! | 6 sync request  | sync op ‖ (BucketKeys:) `n: u32 LE` ‖ n × `bucket: u32 LE` ‖ cursor |
//!
//! `key` = `len: u32 LE` ‖ bytes; `version` = `hlc: u64 BE` ‖ `origin: u64 BE` (the order
//! and bytes of the on-disk record); `value` = `flags: u8` (bit 0: tombstone; bit 1: an expiry
//! follows; bit 2: written by a CAS) ‖ (expiry:) `expires_hlc: u64 LE` ‖ (not a tombstone:)
//! `len: u32 LE` ‖ bytes. Request ops: 1 PUT, 2 READ, 3 REPAIR, 4 COPY, 5 PREPARE (its version
//! is the ballot). Reply ops: 1 Accepted, 2 Rejected (held, which is also the accepted
//! version, blind), 3 Read, 4 RepairOk, 5 RepairRejected, 6 CopyAck,
//! 7 Digests (`n: u32 LE` ‖ n × (`digest: u64 LE` ‖ `records: u64 LE`)), 8 KeyPage (`n: u32 LE`
//! ‖ n × (key ‖ version) ‖ `more: u8` (0 or 1) ‖ (more:) cursor), 9 Status (`flags: u8`, bit 0
//! recovering, bit 1 created ‖ `records: u64 LE`), 10 RefusedFuture (no payload: the version
//! was beyond the replica's clock bound), 11 View (`flags: u8`, bit 0 recovering ‖
//! `uptime_s: u64 LE` ‖ `approximate_keys: u64 LE` ‖ `disk_bytes: u64 LE` ‖ version (bytes) ‖
//! `n: u32 LE` ‖ n × (url (bytes) ‖ `node_id: u64 LE` ‖ `state: u8`: 0 self, 1 up, 2 suspect,
//! 3 down)), 12 Promised, 13 Preempted, 14 RejectedHeld (held ‖ accepted ‖ whether a CAS wrote
//! it: a rejection by a promise or a CAS's version), 15 RepairRejectedHeld (held ‖ accepted ‖
//! value: a repair refused by a promise). A node answers View only if its handshake
//! announced it (`X-Mostdb-Features`).
//!
//! A blind value without expiry, a plain rejection and the first four request ops are encoded
//! exactly as the first peer protocol encoded them, which knew nothing else: PREPARE, the new
//! replies and the new value flags are sent only in a cluster whose every member announced
//! CAS (DESIGN §10).
//! Sync ops (anti-entropy, monitoring, listing): 1 Digests, 2 BucketKeys, 3 Status, 4 View,
//! 5 Range (`flags: u8` bit 0 lower inclusive, bit 1 has upper ‖ lower bytes ‖ [upper bytes] ‖
//! `limit: u32 LE`; answered 16 RangePage: `count: u32 LE` ‖ count × (key bytes ‖ version ‖
//! value as in a Read) ‖ `complete: u8`), sent only to a peer that announced `list`. A cursor
//! is `len: u32 LE` ‖ bytes;
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
use crate::storage::range::{KeyRange, RangeEntry, RangePage};
use crate::storage::{Meta, Version};

mod sync;

use sync::{
    decode_digests, decode_key_page, decode_range_page, decode_status, decode_sync_request,
    decode_view,
};
pub use sync::{
    encode_sync_request, KEY_PAGE_ENTRY_OVERHEAD_BYTES, SYNC_CURSOR_BYTES_MAX, VIEW_MEMBERS_MAX,
    VIEW_URL_BYTES_MAX, VIEW_VERSION_BYTES_MAX,
};

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
const OP_PREPARE: u8 = 5;

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
const REPLY_PROMISED: u8 = 12;
const REPLY_PREEMPTED: u8 = 13;
const REPLY_REJECTED_HELD: u8 = 14;
const REPLY_REPAIR_REJECTED_HELD: u8 = 15;
const REPLY_RANGE_PAGE: u8 = 16;

/// Value flags: bit 0 a tombstone (no bytes follow), bit 1 an expiry follows, bit 2 a CAS
/// wrote it. The first protocol knew bit 0 only, and refuses the others.
const FLAG_TOMBSTONE: u8 = 0b0000_0001;
const FLAG_EXPIRES: u8 = 0b0000_0010;
const FLAG_CAS: u8 = 0b0000_0100;
/// A value's bytes before its own: flags, expiry, length.
const VALUE_HEAD_BYTES_MAX: usize = 1 + 8 + 4;

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
            meta,
        } => (OP_PUT, key, Some((version, Some((value, meta))))),
        ReplicaRequest::Read { key } => (OP_READ, key, None),
        ReplicaRequest::Repair {
            key,
            version,
            value,
            meta,
        } => (OP_REPAIR, key, Some((version, Some((value, meta))))),
        ReplicaRequest::Copy {
            key,
            version,
            value,
            meta,
        } => (OP_COPY, key, Some((version, Some((value, meta))))),
        ReplicaRequest::Prepare { key, ballot } => (OP_PREPARE, key, Some((ballot, None))),
    };
    let value_len = record
        .and_then(|(_, v)| v)
        .and_then(|(v, _)| v.as_ref())
        .map_or(0, Vec::len);
    let start = begin(
        out,
        KIND_REQUEST,
        id,
        1 + 4 + key.len() + 8 + 8 + VALUE_HEAD_BYTES_MAX + value_len,
    );
    out.push(op);
    put_bytes(out, key);
    if let Some((version, value)) = record {
        put_version(out, *version);
        if let Some((value, meta)) = value {
            put_value(out, value.as_deref(), *meta);
        }
    }
    finish(out, start);
}

/// Appends a reply frame to `out`.
pub fn encode_reply(out: &mut Vec<u8>, id: u64, reply: &ReplicaReply) {
    let start = begin(
        out,
        KIND_REPLY,
        id,
        1 + 8 + 8 + 8 + 8 + VALUE_HEAD_BYTES_MAX + reply_value_len(reply),
    );
    match reply {
        ReplicaReply::Accepted => out.push(REPLY_ACCEPTED),
        ReplicaReply::Rejected { .. } | ReplicaReply::RepairRejected { .. } => {
            put_rejection(out, reply)
        }
        ReplicaReply::Read {
            version,
            value,
            meta,
        } => {
            out.push(REPLY_READ);
            put_version(out, *version);
            put_value(out, value.as_deref(), *meta);
        }
        ReplicaReply::RepairOk => out.push(REPLY_REPAIR_OK),
        ReplicaReply::Promised {
            version,
            value,
            meta,
        } => {
            out.push(REPLY_PROMISED);
            put_version(out, *version);
            put_value(out, value.as_deref(), *meta);
        }
        ReplicaReply::Preempted { held } => {
            out.push(REPLY_PREEMPTED);
            put_version(out, *held);
        }
        ReplicaReply::CopyAck => out.push(REPLY_COPY_ACK),
        ReplicaReply::RefusedFuture => out.push(REPLY_REFUSED_FUTURE),
        ReplicaReply::Digests { .. }
        | ReplicaReply::KeyPage { .. }
        | ReplicaReply::Status { .. }
        | ReplicaReply::View(_)
        | ReplicaReply::RangePage(_) => sync::put_reply(out, reply),
    }
    finish(out, start);
}

fn cut(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// A PUT's or a REPAIR's rejection: the first protocol's form whenever the rejection names
/// the accepted version, blind (no promise, no CAS version), else the form that names both.
fn put_rejection(out: &mut Vec<u8>, reply: &ReplicaReply) {
    match reply {
        ReplicaReply::Rejected {
            held,
            accepted,
            accepted_cas: false,
        } if accepted == held => {
            out.push(REPLY_REJECTED);
            put_version(out, *held);
        }
        ReplicaReply::Rejected {
            held,
            accepted,
            accepted_cas,
        } => {
            out.push(REPLY_REJECTED_HELD);
            put_version(out, *held);
            put_version(out, *accepted);
            out.push(u8::from(*accepted_cas));
        }
        ReplicaReply::RepairRejected {
            held,
            accepted,
            value,
        } => {
            if accepted == held {
                out.push(REPLY_REPAIR_REJECTED);
                put_version(out, *held);
            } else {
                out.push(REPLY_REPAIR_REJECTED_HELD);
                put_version(out, *held);
                put_version(out, *accepted);
            }
            put_value(out, value.as_deref(), Meta::BLIND);
        }
        other => unreachable!("not a rejection: {other:?}"),
    }
}

/// The bytes of a reply beyond its fixed part (to reserve them at once).
fn reply_value_len(reply: &ReplicaReply) -> usize {
    match reply {
        ReplicaReply::Read { value, .. }
        | ReplicaReply::RepairRejected { value, .. }
        | ReplicaReply::Promised { value, .. } => value.as_ref().map_or(0, Vec::len),
        ReplicaReply::Digests { buckets } => 16 * buckets.len(),
        ReplicaReply::KeyPage { entries, next } => {
            let keys: usize = entries.iter().map(|e| e.key.len()).sum();
            keys + KEY_PAGE_ENTRY_OVERHEAD_BYTES * entries.len() + next.as_ref().map_or(0, Vec::len)
        }
        ReplicaReply::View(view) => {
            let urls: usize = view.reach.iter().map(|e| 13 + e.url.len()).sum();
            urls + view.report.version.len() + 4
        }
        ReplicaReply::RangePage(page) => page.entries.iter().map(RangeEntry::size).sum(),
        _ => 0,
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

/// `flags` ‖ (expires:) `expires_hlc: u64 LE` ‖ (not a tombstone:) bytes. A blind record
/// without expiry is encoded as the first protocol encoded every value.
fn put_value(out: &mut Vec<u8>, value: Option<&[u8]>, meta: Meta) {
    let mut flags = 0;
    if value.is_none() {
        flags |= FLAG_TOMBSTONE;
    }
    if meta.expires.is_some() {
        flags |= FLAG_EXPIRES;
    }
    if meta.cas {
        flags |= FLAG_CAS;
    }
    out.push(flags);
    if let Some(expires) = meta.expires {
        out.extend_from_slice(&expires.to_le_bytes());
    }
    if let Some(bytes) = value {
        put_bytes(out, bytes);
    }
}

fn decode_request(
    r: &mut Cursor<'_>,
    value_bytes_max: usize,
) -> Result<ReplicaRequest, FrameError> {
    let op = r.u8("request op")?;
    if !matches!(op, OP_PUT | OP_READ | OP_REPAIR | OP_COPY | OP_PREPARE) {
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
    if op == OP_PREPARE {
        return Ok(ReplicaRequest::Prepare {
            key,
            ballot: version,
        });
    }
    let (value, meta) = r.value(value_bytes_max)?;
    Ok(match op {
        OP_PUT => ReplicaRequest::Put {
            key,
            version,
            value,
            meta,
        },
        OP_REPAIR => ReplicaRequest::Repair {
            key,
            version,
            value,
            meta,
        },
        _ => ReplicaRequest::Copy {
            key,
            version,
            value,
            meta,
        },
    })
}

fn decode_reply(r: &mut Cursor<'_>, value_bytes_max: usize) -> Result<ReplicaReply, FrameError> {
    Ok(match r.u8("reply op")? {
        REPLY_ACCEPTED => ReplicaReply::Accepted,
        REPLY_REJECTED => {
            let held = r.version()?;
            ReplicaReply::Rejected {
                held,
                accepted: held,
                accepted_cas: false,
            }
        }
        REPLY_REJECTED_HELD => decode_rejected_held(r)?,
        REPLY_READ => {
            let version = r.version()?;
            let (value, meta) = r.value(value_bytes_max)?;
            ReplicaReply::Read {
                version,
                value,
                meta,
            }
        }
        REPLY_PROMISED => {
            let version = r.version()?;
            let (value, meta) = r.value(value_bytes_max)?;
            ReplicaReply::Promised {
                version,
                value,
                meta,
            }
        }
        REPLY_PREEMPTED => ReplicaReply::Preempted { held: r.version()? },
        REPLY_REPAIR_OK => ReplicaReply::RepairOk,
        op @ (REPLY_REPAIR_REJECTED | REPLY_REPAIR_REJECTED_HELD) => {
            let held = r.version()?;
            let accepted = match op {
                REPLY_REPAIR_REJECTED => held,
                _ => r.version()?,
            };
            if accepted > held || (op == REPLY_REPAIR_REJECTED_HELD && accepted == held) {
                return Err(invalid(
                    "repair rejection",
                    "accepted above held, or the plain form",
                ));
            }
            match r.value(value_bytes_max)? {
                (value, Meta::BLIND) => ReplicaReply::RepairRejected {
                    held,
                    accepted,
                    value,
                },
                _ => return Err(invalid("repair rejection", "carries meta")),
            }
        }
        REPLY_COPY_ACK => ReplicaReply::CopyAck,
        REPLY_REFUSED_FUTURE => ReplicaReply::RefusedFuture,
        REPLY_DIGESTS => decode_digests(r)?,
        REPLY_VIEW => decode_view(r)?,
        REPLY_KEY_PAGE => decode_key_page(r)?,
        REPLY_STATUS => decode_status(r)?,
        REPLY_RANGE_PAGE => decode_range_page(r, value_bytes_max)?,
        op => return Err(FrameError::UnknownOp { what: "reply", op }),
    })
}

/// A rejection that names a promise or a CAS's version (the first protocol's form is used
/// whenever it says it all, so this one never carries that).
fn decode_rejected_held(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
    let held = r.version()?;
    let accepted = r.version()?;
    let accepted_cas = match r.u8("rejection flags")? {
        0 => false,
        1 => true,
        _ => return Err(invalid("rejection flags", "not 0 or 1")),
    };
    if accepted > held || (accepted == held && !accepted_cas) {
        return Err(invalid(
            "rejection",
            "accepted above held, or the plain form",
        ));
    }
    Ok(ReplicaReply::Rejected {
        held,
        accepted,
        accepted_cas,
    })
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

    fn value(&mut self, value_bytes_max: usize) -> Result<(Option<Vec<u8>>, Meta), FrameError> {
        let flags = self.u8("value flags")?;
        if flags & !(FLAG_TOMBSTONE | FLAG_EXPIRES | FLAG_CAS) != 0 {
            return Err(FrameError::UnknownFlags { flags });
        }
        let expires = match flags & FLAG_EXPIRES {
            0 => None,
            _ => Some(self.u64_le("expiry")?),
        };
        let meta = Meta {
            cas: flags & FLAG_CAS != 0,
            expires,
        };
        let value = match flags & FLAG_TOMBSTONE {
            0 => Some(self.bytes("value", value_bytes_max)?.to_vec()),
            _ => None,
        };
        Ok((value, meta))
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
