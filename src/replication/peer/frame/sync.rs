//! The frames of anti-entropy and monitoring (DESIGN §6, §12): sync requests, and the
//! digests, key pages, status and view answers (layouts in the parent's table). Same rules as
//! the parent: no I/O, decoding never panics.

use super::*;
use crate::limits::LIST_LIMIT_MAX;

pub(super) const SYNC_DIGESTS: u8 = 1;
pub(super) const SYNC_BUCKET_KEYS: u8 = 2;
pub(super) const SYNC_STATUS: u8 = 3;
pub(super) const SYNC_VIEW: u8 = 4;
pub(super) const SYNC_RANGE: u8 = 5;

/// Range flags.
const RANGE_LOWER_INCLUSIVE: u8 = 0b01;
const RANGE_HAS_UPPER: u8 = 0b10;
/// Bytes of a range page's entry at the least: a key's and a value's lengths, a version, the
/// value's flags.
const RANGE_ENTRY_BYTES_MIN: usize = 4 + 16 + 1;

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

/// Appends the payload of an anti-entropy or monitoring answer (op included).
pub(super) fn put_reply(out: &mut Vec<u8>, reply: &ReplicaReply) {
    match reply {
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
        ReplicaReply::RangePage(page) => {
            out.push(REPLY_RANGE_PAGE);
            out.extend_from_slice(&len32(page.entries.len()).to_le_bytes());
            for entry in &page.entries {
                put_bytes(out, &entry.key);
                put_version(out, entry.version);
                let value = if entry.tombstone {
                    None
                } else {
                    Some(entry.value.as_deref().unwrap_or_default())
                };
                put_value(out, value, entry.meta);
            }
            out.push(u8::from(page.complete));
        }
        other => unreachable!("not a sync answer: {other:?}"),
    }
}

pub(super) fn decode_status(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
    let flags = r.u8("status flags")?;
    if flags & !(STATUS_RECOVERING | STATUS_CREATED) != 0 {
        return Err(invalid("status flags", "unknown bit"));
    }
    Ok(ReplicaReply::Status {
        recovering: flags & STATUS_RECOVERING != 0,
        created: flags & STATUS_CREATED != 0,
        records: r.u64_le("records")?,
    })
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
        SyncRequest::Range { range, limit } => {
            let hint = 1 + 1 + 8 + range.lower.len() + range.upper.as_ref().map_or(0, Vec::len);
            let start = begin(out, KIND_SYNC_REQUEST, id, hint);
            out.push(SYNC_RANGE);
            let mut flags = 0;
            if range.lower_inclusive {
                flags |= RANGE_LOWER_INCLUSIVE;
            }
            if range.upper.is_some() {
                flags |= RANGE_HAS_UPPER;
            }
            out.push(flags);
            put_bytes(out, &range.lower);
            if let Some(upper) = &range.upper {
                put_bytes(out, upper);
            }
            out.extend_from_slice(&limit.to_le_bytes());
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

pub(super) fn decode_sync_request(r: &mut Cursor<'_>) -> Result<SyncRequest, FrameError> {
    match r.u8("sync op")? {
        SYNC_DIGESTS => Ok(SyncRequest::Digests),
        SYNC_STATUS => Ok(SyncRequest::Status),
        SYNC_VIEW => Ok(SyncRequest::View),
        SYNC_RANGE => {
            let flags = r.u8("range flags")?;
            if flags & !(RANGE_LOWER_INCLUSIVE | RANGE_HAS_UPPER) != 0 {
                return Err(invalid("range flags", "unknown bit"));
            }
            let lower = r.bytes("lower key", KEY_BYTES_MAX)?.to_vec();
            let upper = match flags & RANGE_HAS_UPPER {
                0 => None,
                _ => Some(r.bytes("upper key", KEY_BYTES_MAX)?.to_vec()),
            };
            let limit = u32::from_le_bytes(r.array("limit")?);
            if limit == 0 || limit as usize > LIST_LIMIT_MAX {
                return Err(invalid("range limit", "out of range"));
            }
            let range = KeyRange {
                lower,
                lower_inclusive: flags & RANGE_LOWER_INCLUSIVE != 0,
                upper,
            };
            Ok(SyncRequest::Range { range, limit })
        }
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

pub(super) fn decode_digests(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
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

pub(super) fn decode_key_page(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
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

pub(super) fn decode_view(r: &mut Cursor<'_>) -> Result<ReplicaReply, FrameError> {
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

pub(super) fn decode_range_page(
    r: &mut Cursor<'_>,
    value_bytes_max: usize,
) -> Result<ReplicaReply, FrameError> {
    let most = LIST_LIMIT_MAX.min(r.rest.len() / RANGE_ENTRY_BYTES_MIN);
    let n = r.count("range entries", most)?;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let key = r.bytes("key", KEY_BYTES_MAX)?.to_vec();
        let version = r.version()?;
        let (value, meta) = r.value(value_bytes_max)?;
        entries.push(RangeEntry {
            key,
            version,
            tombstone: value.is_none(),
            value,
            meta,
        });
    }
    let complete = match r.u8("range end")? {
        0 => false,
        1 => true,
        _ => return Err(invalid("range end", "neither 0 nor 1")),
    };
    Ok(ReplicaReply::RangePage(RangePage { entries, complete }))
}
