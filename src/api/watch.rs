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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::cas::{parse_version, version_string};
use super::error::ApiError;
use super::json::write_go_string;
use super::{bad_param, op_error, parse_key, query, Api, BAD_PARAM};
use crate::api::json::Field;
use crate::http::Response;
use crate::limits::{WATCHERS_MAX, WATCH_RECHECK_MS, WATCH_WAIT_MS_DEFAULT, WATCH_WAIT_MS_MAX};
use crate::replication::{Found, OpError, Version};

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
        let key = parse_key(Field::Str(
            query::param(query, "key").ok_or(BAD_PARAM)?.into(),
        ))?;
        let since = match query::param(query, "version") {
            None => None,
            Some(v) => Some(
                parse_version(&v).ok_or(bad_param("version is not a version this API reported"))?,
            ),
        };
        let wait_ms = match query::param(query, "wait_ms") {
            None => WATCH_WAIT_MS_DEFAULT,
            Some(ms) => ms
                .parse::<u64>()
                .ok()
                .filter(|ms| (1..=WATCH_WAIT_MS_MAX).contains(ms))
                .ok_or(bad_param("wait_ms is 1 to 300000"))?,
        };
        let _slot = Slot::take().ok_or(ApiError::Busy)?;
        let deadline = Instant::now() + Duration::from_millis(wait_ms);
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
