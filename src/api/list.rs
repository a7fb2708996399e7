//! `GET {ctx}/list`: the keys of a range, a page at a time (DESIGN §11).
//!
//! Query (percent-encoded): `prefix=P`, or `start=A` and/or `end=B` (from A included to B
//! excluded); `limit` (1 to 1,000, default 100); `cursor` (the `cursor` of the previous page);
//! `keys_only=true`; `consistency=majority` (default) or `local`; `watch=true`. Answer:
//! `{"code":200,"success":true,"result":{"items":[{"key":K,"value":V},…],"more":M
//! [,"cursor":C][,"watch":W]}}`, with `"consistency":"local"` for a local listing. `W` (asked
//! for with `watch=true`, on the first page) is a prefix-watch cursor taken before the listing
//! began: a watch from it reports every change this node stores after that (`api::watch`).
//!
//! Majority: this node asks every member for a page of the range (tombstones included) and
//! merges the first Q that answer (`replication::listing`); an entry every page holds at the
//! same version is shown as it is; any other (or one whose expiry passed) is read with a
//! quorum get, which repairs it, and shown as that read found it. So each entry is what a
//! linearizable get could have returned during the call, and every write or delete that
//! completed before the call began is reflected (its Q intersect the pages' Q); changes made
//! during the call may or may not show. Not a snapshot: two keys may be seen at different
//! moments. Local: this node's own copy, unconfirmed.

use std::future::poll_fn;
use std::pin::Pin;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use futures_core::Stream;

use super::error::ApiError;
use super::json::write_go_string;
use super::{bad_param, op_error, query, Api};
use crate::http::Response;
use crate::limits::{KEY_BYTES_MAX, LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX};
use crate::replication::listing::{self, KeyRange, Merged, RangeEntry, RangePage};
use crate::replication::protocol::{ReplicaReply, SyncRequest};
use crate::replication::{Found, OpError, Version};
use crate::runtime::{join_all, Local};

/// Quorum reads one listing runs at once to settle the entries its pages disagree on.
const SETTLE_READS_IN_FLIGHT: usize = 32;

/// A parsed listing request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ListRequest {
    pub range: KeyRange,
    pub limit: usize,
    pub keys_only: bool,
    pub local: bool,
    /// `watch=true`: the answer carries a prefix-watch cursor issued before the listing began.
    pub watch: bool,
}

/// One item of a listing: a live value, its version and its expiry (an HLC), if any.
pub(super) struct Item {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub version: Version,
    pub expires: Option<u64>,
}

impl Api {
    /// `GET {ctx}/list`.
    pub(super) async fn list(&self, query: Option<&str>) -> Result<Response, ApiError> {
        let request = parse(query.unwrap_or(""))?;
        let watch = request.watch.then(|| self.replication.feed().cursor());
        let (items, resume_after) = if request.local {
            self.list_local(&request).await?
        } else {
            self.list_majority(&request).await?
        };
        let body = encode(&request, &items, resume_after, watch.as_deref());
        Ok(Response::json(200, body))
    }

    /// This node's own copy of the range: live values only, nothing confirmed.
    async fn list_local(
        &self,
        request: &ListRequest,
    ) -> Result<(Vec<Item>, Option<Vec<u8>>), ApiError> {
        let anti_entropy = &self.cluster.anti_entropy;
        let page = anti_entropy
            .range(&request.range, request.limit)
            .await
            .map_err(|_| ApiError::Busy)?;
        let now = self.replication.clock_now();
        let resume_after = (!page.complete)
            .then(|| page.entries.last().map(|e| e.key.clone()))
            .flatten();
        let items = page
            .entries
            .into_iter()
            .filter(|e| !e.tombstone && !e.meta.expired_at(now))
            .map(|e| Item {
                key: e.key,
                value: e.value.unwrap_or_default(),
                version: e.version,
                expires: e.meta.expires,
            })
            .collect();
        Ok((items, resume_after))
    }

    /// Q replicas' pages, merged; disagreements settled by quorum reads.
    pub(super) async fn list_majority(
        &self,
        request: &ListRequest,
    ) -> Result<(Vec<Item>, Option<Vec<u8>>), ApiError> {
        let pages = self.gather(&request.range, request.limit).await?;
        let merged = listing::merge(&pages, request.limit);
        let now = self.replication.clock_now();
        let mut items = Vec::with_capacity(merged.entries.len());
        let mut unsettled = Vec::new();
        for Merged { entry, agreed } in merged.entries {
            let expired = !entry.tombstone && entry.meta.expired_at(now);
            match entry {
                RangeEntry {
                    tombstone: true, ..
                } if agreed => {}
                RangeEntry {
                    key,
                    value,
                    version,
                    meta,
                    ..
                } if agreed && !expired => items.push(Some(Item {
                    key,
                    value: value.unwrap_or_default(),
                    version,
                    expires: meta.expires,
                })),
                RangeEntry { key, .. } => {
                    unsettled.push((items.len(), key));
                    items.push(None);
                }
            }
        }
        for chunk in unsettled.chunks(SETTLE_READS_IN_FLIGHT) {
            type Read = Result<Option<Found>, OpError>;
            let reads: Vec<Local<'_, Read>> = chunk
                .iter()
                .map(|(_, key)| Box::pin(self.replication.get(key.clone())) as Local<'_, Read>)
                .collect();
            for ((at, key), read) in chunk.iter().zip(join_all(reads).await) {
                items[*at] = read.map_err(op_error)?.map(|found| Item {
                    key: key.clone(),
                    value: found.value,
                    version: found.version,
                    expires: found.expires,
                });
            }
        }
        Ok((items.into_iter().flatten().collect(), merged.resume_after))
    }

    /// Pages of `range` from the first Q members that answer (this node among them if it
    /// votes), or NotMost once the deadline passes with fewer.
    async fn gather(&self, range: &KeyRange, limit: usize) -> Result<Vec<RangePage>, ApiError> {
        let quorum = self.cluster.quorum;
        let deadline = Instant::now() + self.operation_timeout();
        let (tx, mut rx) = futures_channel::mpsc::unbounded::<Option<RangePage>>();
        for member in &self.cluster.members {
            let tx = tx.clone();
            match &member.link {
                None if !self.replication.votes() => {}
                None => {
                    let (ae, range) = (self.cluster.anti_entropy.clone(), range.clone());
                    monoio::spawn(async move {
                        let _ = tx.unbounded_send(ae.range(&range, limit).await.ok());
                    });
                }
                Some(link) => {
                    let ask = SyncRequest::Range {
                        range: range.clone(),
                        limit: limit as u32,
                    };
                    let call = link.call_sync(&ask, deadline);
                    monoio::spawn(async move {
                        let page = match call.await {
                            Ok(ReplicaReply::RangePage(page)) => Some(page),
                            _ => None,
                        };
                        let _ = tx.unbounded_send(page);
                    });
                }
            }
        }
        drop(tx);
        let mut pages = Vec::with_capacity(quorum);
        while pages.len() < quorum {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = poll_fn(|cx| Pin::new(&mut rx).poll_next(cx));
            match monoio::time::timeout(left, next).await {
                Ok(Some(Some(page))) => pages.push(page),
                Ok(Some(None)) => {}
                // Every member answered, or the deadline passed.
                Ok(None) | Err(_) => {
                    return Err(ApiError::NotMost {
                        indeterminate: false,
                    })
                }
            }
        }
        Ok(pages)
    }

    /// The operation deadline in force (`MOSTDB_TIMEOUT_MS`).
    fn operation_timeout(&self) -> Duration {
        let ms = self
            .settings_now()
            .map_or(self.config.timeout_ms, |now| now.timeout_ms);
        Duration::from_millis(ms)
    }
}

/// The listing a query asks for.
pub(super) fn parse(query: &str) -> Result<ListRequest, ApiError> {
    let key = |name: &str| -> Result<Option<Vec<u8>>, ApiError> {
        match query::param(query, name) {
            Some(k) if k.len() > KEY_BYTES_MAX => Err(bad_param("a key is at most 8192 bytes")),
            other => Ok(other.map(String::into_bytes)),
        }
    };
    let mut range = match (key("prefix")?, key("start")?, key("end")?) {
        (Some(prefix), None, None) => KeyRange::prefix(&prefix),
        (None, start, end) => KeyRange {
            lower: start.unwrap_or_default(),
            lower_inclusive: true,
            upper: end,
        },
        _ => return Err(bad_param("give prefix, or start and end, not both")),
    };
    if let Some(cursor) = query::param(query, "cursor") {
        let after = URL_SAFE_NO_PAD
            .decode(cursor.as_bytes())
            .ok()
            .filter(|k| k.len() <= KEY_BYTES_MAX)
            .ok_or(bad_param("cursor is not one a listing gave"))?;
        if after >= range.lower {
            range = range.after(&after);
        }
    }
    let limit = match query::param(query, "limit") {
        None => LIST_LIMIT_DEFAULT,
        Some(n) => n
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=LIST_LIMIT_MAX).contains(n))
            .ok_or(bad_param("limit is 1 to 1000"))?,
    };
    let flag = |name: &str| match query::param(query, name).as_deref() {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(bad_param("keys_only and watch are true or false")),
    };
    let local = match query::param(query, "consistency").as_deref() {
        None | Some("majority") => false,
        Some("local") => true,
        Some(_) => return Err(bad_param("consistency is majority or local")),
    };
    Ok(ListRequest {
        range,
        limit,
        keys_only: flag("keys_only")?,
        local,
        watch: flag("watch")?,
    })
}

fn encode(
    request: &ListRequest,
    items: &[Item],
    resume_after: Option<Vec<u8>>,
    watch: Option<&str>,
) -> Vec<u8> {
    let bytes: usize = items.iter().map(|i| i.key.len() + i.value.len() + 24).sum();
    let mut out = Vec::with_capacity(96 + bytes);
    out.extend_from_slice(br#"{"code":200,"success":true,"result":{"items":["#);
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"key":"#);
        write_go_string(&mut out, &item.key);
        if !request.keys_only {
            out.extend_from_slice(br#","value":"#);
            write_go_string(&mut out, &item.value);
        }
        out.push(b'}');
    }
    out.extend_from_slice(br#"],"more":"#);
    match resume_after {
        Some(key) => {
            out.extend_from_slice(br#"true,"cursor":""#);
            out.extend_from_slice(URL_SAFE_NO_PAD.encode(key).as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"false"),
    }
    if request.local {
        out.extend_from_slice(br#","consistency":"local""#);
    }
    if let Some(cursor) = watch {
        out.extend_from_slice(br#","watch":""#);
        out.extend_from_slice(cursor.as_bytes());
        out.push(b'"');
    }
    out.extend_from_slice(b"}}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_name_a_range_a_limit_and_a_mode() {
        let r = parse("prefix=user%2F&limit=10&keys_only=true").expect("parses");
        assert_eq!(r.range, KeyRange::prefix(b"user/"));
        assert_eq!((r.limit, r.keys_only, r.local), (10, true, false));
        let r = parse("start=a&end=m&consistency=local").expect("parses");
        assert_eq!(r.range.upper.as_deref(), Some(&b"m"[..]));
        assert!(r.local && r.range.lower_inclusive);
        let cursor = URL_SAFE_NO_PAD.encode(b"user/7");
        let r = parse(&format!("prefix=user/&cursor={cursor}")).expect("parses");
        assert!(!r.range.contains(b"user/7") && r.range.contains(b"user/8"));
        assert_eq!(parse("").expect("parses").limit, LIST_LIMIT_DEFAULT);
        for bad in [
            "limit=0",
            "limit=1001",
            "limit=x",
            "prefix=a&start=b",
            "cursor=***",
            "keys_only=yes",
            "consistency=eventual",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_carry_a_cursor_only_when_there_is_more() {
        let request = parse("prefix=a").expect("parses");
        let items = [Item {
            key: b"a1".to_vec(),
            value: b"v".to_vec(),
            version: Version::ZERO,
            expires: None,
        }];
        let done = String::from_utf8(encode(&request, &items, None, None)).expect("utf-8");
        assert_eq!(
            done,
            r#"{"code":200,"success":true,"result":{"items":[{"key":"a1","value":"v"}],"more":false}}"#
        );
        let more =
            String::from_utf8(encode(&request, &items, Some(b"a1".to_vec()), Some("7.1"))).unwrap();
        assert!(
            more.ends_with(r#""more":true,"cursor":"YTE","watch":"7.1"}}"#),
            "{more}"
        );
    }
}
