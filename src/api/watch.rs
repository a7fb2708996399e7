//! `GET {ctx}/watch?key=K[&version=V][&wait_ms=W]`: a long poll on one key (DESIGN §11).
//!
//! The node reads the key with a quorum read; when the version a majority holds is newer than
//! `V` (or, without `V`, than the version the first read found), it answers at once:
//! `{"code":200,"success":true,"result":{"key":K,"changed":true,"value":…,"version":…}}`, or
//! for a delete (or an expiry) `{"code":500,"message":"NotFound","success":false,"result":
//! {"key":K,"version":…}}`. Otherwise it waits for the key's next store on this node (its own
//! replica: a write, a repair, a copy), or [`WATCH_RECHECK_MS`] at most (a change a majority
//! made without this node), and reads again, until `W` (default 30 s, at most 5 min) passes:
//! then `{"code":200,"success":true,"result":{"key":K,"changed":false,"version":V}}`.
//!
//! Only a quorum read reports a change, so nothing is reported that a get could not return
//! (a write still in flight, held by a minority, is not); versions in between may be skipped.
//! At most [`WATCHERS_MAX`] watches wait at once per node (beyond: Busy). A watch whose reads
//! find no majority until its deadline answers NotMost.
//!
//! `GET {ctx}/watch?prefix=P[&cursor=C][&wait_ms=W]`: the keys under `P` this node's replica
//! stored after the cursor (`storage::feed`), each read with a quorum read and reported as
//! that read found it: `{"code":200,"success":true,"result":{"changes":[{"key":K,"value":V,
//! "version":X} | {"key":K,"deleted":true,"version":X},…],"cursor":C2,"resync":false}}`, at
//! most [`PREFIX_WATCH_CHANGES_MAX`] keys an answer; `C2` is where the next call goes on. No
//! cursor: from now. With nothing to report it waits for the next change until `W`, then
//! answers with no changes. A change this node stored that the quorum read does not show yet
//! (a write in flight) holds the cursor before it: it is read again, never skipped; the
//! changes after it may then be reported twice (compare versions). A cursor the node cannot
//! vouch for (another node's or process run's, or older than what its feed kept, or from
//! before a pause of the feed) gets `"changes":[],"resync":true` with a fresh cursor: list the
//! prefix again (a listing with `watch=true` gives the cursor to go on from), then watch from
//! it. Changes reach a prefix watch through this node's replica: one a majority made while
//! this node was cut off shows when anti-entropy or a read repair brings it here.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::cas::{parse_version, version_string};
use super::error::ApiError;
use super::json::write_go_string;
use super::{bad_param, op_error, parse_key, query, Api, BAD_PARAM};
use crate::api::json::Field;
use crate::http::Response;
use crate::limits::PREFIX_WATCH_CHANGES_MAX;
use crate::limits::{WATCHERS_MAX, WATCH_RECHECK_MS, WATCH_WAIT_MS_DEFAULT, WATCH_WAIT_MS_MAX};
use crate::replication::{FeedChange as Change, Found, OpError, Since, Version};
use crate::runtime::{join_all, Local};

/// Watches waiting on this node (every core's).
static WATCHING: AtomicUsize = AtomicUsize::new(0);

/// A watch's place among [`WATCHERS_MAX`], given back when it ends.
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        let before = WATCHING.fetch_add(1, Ordering::AcqRel);
        if before >= WATCHERS_MAX {
            WATCHING.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        WATCHING.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Api {
    /// `GET {ctx}/watch`.
    pub(super) async fn watch(&self, query: Option<&str>) -> Result<Response, ApiError> {
        let query = query.unwrap_or("");
        let wait_ms = match query::param(query, "wait_ms") {
            None => WATCH_WAIT_MS_DEFAULT,
            Some(ms) => ms
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=WATCH_WAIT_MS_MAX).contains(ms))
                .ok_or(bad_param("wait_ms is 1 to 300000"))?,
        };
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
        match (query::param(query, "key"), query::param(query, "prefix")) {
            (Some(key), None) => self.watch_key(query, key, deadline).await,
            (None, Some(prefix)) => self.watch_prefix(query, prefix, deadline).await,
            (Some(_), Some(_)) => Err(bad_param("give key or prefix, not both")),
            (None, None) => Err(BAD_PARAM),
        }
    }

    /// A watch of one key.
    async fn watch_key(
        &self,
        query: &str,
        key: String,
        deadline: Instant,
    ) -> Result<Response, ApiError> {
        let key = parse_key(Field::Str(key.into()))?;
        let since = match query::param(query, "version") {
            None => None,
            Some(v) => Some(
                parse_version(&v).ok_or(bad_param("version is not a version this API reported"))?,
            ),
        };
        let _slot = Slot::take().ok_or(ApiError::Busy)?;
        let mut since = since;
        loop {
            let failed = match self.replication.get_versioned(key.clone()).await {
                Ok((version, found)) => match since {
                    Some(known) if version > known => {
                        return Ok(changed(&key, version, found.as_ref()))
                    }
                    Some(_) => false,
                    None => {
                        since = Some(version);
                        false
                    }
                },
                // No majority now: try again until the deadline.
                Err(OpError::NotMost { .. }) => true,
                Err(err) => return Err(op_error(err)),
            };
            let left = deadline.saturating_duration_since(Instant::now());
            match since {
                _ if !left.is_zero() => {}
                Some(version) if !failed => {
                    return Ok(Response::json(200, unchanged(&key, version)))
                }
                _ => {
                    return Err(ApiError::NotMost {
                        indeterminate: false,
                    })
                }
            }
            let recheck = Duration::from_millis(WATCH_RECHECK_MS);
            self.replication
                .wait_change(key.clone(), left.min(recheck))
                .await;
        }
    }
}

impl Api {
    /// A watch of the keys under a prefix, through this node's change feed.
    async fn watch_prefix(
        &self,
        query: &str,
        prefix: String,
        deadline: Instant,
    ) -> Result<Response, ApiError> {
        if prefix.len() > crate::limits::KEY_BYTES_MAX {
            return Err(bad_param("a key is at most 8192 bytes"));
        }
        let feed = self.replication.feed();
        let _slot = Slot::take().ok_or(ApiError::Busy)?;
        let _attached = feed.attach();
        let mut cursor = match query::param(query, "cursor") {
            Some(cursor) => cursor,
            None => feed.cursor(),
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (changes, next, wake) =
                match feed.since(&cursor, prefix.as_bytes(), PREFIX_WATCH_CHANGES_MAX) {
                    Since::Resync { now } => {
                        return Ok(Response::json(
                            200,
                            changes_body(&[], &feed.format(now), true),
                        ))
                    }
                    Since::Changes {
                        changes,
                        next,
                        wake,
                    } => (changes, next, wake),
                };
            if changes.is_empty() {
                cursor = feed.format(next);
                match wake {
                    Some(wake) if !left.is_zero() => {
                        let _ = monoio::time::timeout(left, wake).await;
                        continue;
                    }
                    _ => return Ok(Response::json(200, changes_body(&[], &cursor, false))),
                }
            }
            let (events, held) = self.confirm(changes).await;
            cursor = feed.format(held.unwrap_or(next));
            if !events.is_empty() || left.is_zero() {
                return Ok(Response::json(200, changes_body(&events, &cursor, false)));
            }
            // Nothing a majority shows yet: read again after a while.
            let recheck = Duration::from_millis(WATCH_RECHECK_MS);
            monoio::time::sleep(left.min(recheck)).await;
        }
    }

    /// Reads each changed key with a quorum read. The changes a read confirms (it shows the
    /// version stored here, or a newer one) are reported as it found them; the sequence of the
    /// first change not confirmed, if any, is where the cursor must stay.
    async fn confirm(&self, changes: Vec<Change>) -> (Vec<Event>, Option<u64>) {
        // Each key once, with the newest version stored here and its first sequence.
        let mut keys: Vec<(Vec<u8>, Version, u64)> = Vec::new();
        for change in changes {
            match keys.iter_mut().find(|(k, _, _)| *k == change.key) {
                Some(entry) => entry.1 = entry.1.max(change.version),
                None => keys.push((change.key, change.version, change.seq)),
            }
        }
        type Read = Result<(Version, Option<Found>), OpError>;
        let reads: Vec<Local<'_, Read>> = keys
            .iter()
            .map(|(key, _, _)| Box::pin(self.confirming_read(key.clone())) as Local<'_, _>)
            .collect();
        let mut events = Vec::new();
        let mut held: Option<u64> = None;
        for ((key, stored, seq), read) in keys.into_iter().zip(join_all(reads).await) {
            match read {
                Ok((version, found)) if version >= stored => events.push(Event {
                    key,
                    version,
                    value: found.map(|f| f.value),
                }),
                _ => held = Some(held.map_or(seq, |h| h.min(seq))),
            }
        }
        (events, held)
    }
}

impl Api {
    /// The read that confirms a change: a quorum read.
    #[cfg(not(feature = "planted-watch-unconfirmed"))]
    async fn confirming_read(&self, key: Vec<u8>) -> Result<(Version, Option<Found>), OpError> {
        self.replication.get_versioned(key).await
    }

    /// The planted bug: this node's own copy stands for what a majority holds.
    #[cfg(feature = "planted-watch-unconfirmed")]
    async fn confirming_read(&self, key: Vec<u8>) -> Result<(Version, Option<Found>), OpError> {
        let found = self.replication.local_get(key).await?;
        Ok((found.as_ref().map_or(Version::ZERO, |f| f.version), found))
    }
}

/// A change a prefix watch reports: what a quorum read found.
struct Event {
    key: Vec<u8>,
    version: Version,
    /// `None`: deleted (or expired).
    value: Option<Vec<u8>>,
}

fn changes_body(events: &[Event], cursor: &str, resync: bool) -> Vec<u8> {
    let bytes: usize = events
        .iter()
        .map(|e| e.key.len() + e.value.as_ref().map_or(0, Vec::len) + 80)
        .sum();
    let mut out = Vec::with_capacity(128 + bytes);
    out.extend_from_slice(br#"{"code":200,"success":true,"result":{"changes":["#);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"key":"#);
        write_go_string(&mut out, &event.key);
        match &event.value {
            Some(value) => {
                out.extend_from_slice(br#","value":"#);
                write_go_string(&mut out, value);
            }
            None => out.extend_from_slice(br#","deleted":true"#),
        }
        out.extend_from_slice(br#","version":""#);
        out.extend_from_slice(version_string(event.version).as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(br#"],"cursor":""#);
    out.extend_from_slice(cursor.as_bytes());
    out.extend_from_slice(if resync {
        br#"","resync":true}}"#
    } else {
        br#"","resync":false}}"#
    });
    out
}

/// A change a majority holds: the new value, or NotFound with the tombstone's version.
fn changed(key: &[u8], version: Version, found: Option<&Found>) -> Response {
    let mut out = Vec::with_capacity(128 + key.len());
    match found {
        Some(found) => {
            out.extend_from_slice(br#"{"code":200,"success":true,"result":{"key":"#);
            write_go_string(&mut out, key);
            out.extend_from_slice(br#","changed":true,"value":"#);
            write_go_string(&mut out, &found.value);
        }
        None => {
            out.extend_from_slice(
                br#"{"code":500,"message":"NotFound","success":false,"result":{"key":"#,
            );
            write_go_string(&mut out, key);
        }
    }
    out.extend_from_slice(br#","version":""#);
    out.extend_from_slice(version_string(version).as_bytes());
    out.extend_from_slice(b"\"}}");
    Response::json(200, out)
}

fn unchanged(key: &[u8], version: Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + key.len());
    out.extend_from_slice(br#"{"code":200,"success":true,"result":{"key":"#);
    write_go_string(&mut out, key);
    out.extend_from_slice(br#","changed":false,"version":""#);
    out.extend_from_slice(version_string(version).as_bytes());
    out.extend_from_slice(b"\"}}");
    out
}
