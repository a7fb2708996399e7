//! Backup and restore (DESIGN §11), admin routes (the bearer token `MOSTDB_ADMIN_TOKEN`, else
//! loopback only, as `/admin/config`):
//!
//! * `GET /admin/export`: a majority listing of every key, streamed as JSON lines
//!   (`application/x-ndjson`, chunked): `{"key":K,"value":V,"version":"…"[,"expires":E]}` per
//!   live key (`E`: the expiry, an HLC), listed a page of 1,000 at a time and each page sent
//!   before the next is listed (a slow reader slows the listing), ending with
//!   `{"more":false,"records":N}`. A page that fails (no majority) ends the stream with its
//!   error envelope as the last line and the chunked body cut short: a client sees the export
//!   incomplete. With `cursor=C` and/or `limit=N`, one page only, ending with
//!   `{"more":true,"cursor":"…"}` or `{"more":false}` (`mostdb backup FILE` pages this way, so
//!   it can go on after a failed page). Each record is what a get of its key could have
//!   returned while its page was listed; every write completed before the export began is in
//!   it; it is not a snapshot.
//! * `POST /admin/import`: the record lines of an export (other lines, such as the pages'
//!   last lines, are skipped), each set with a CAS that holds only while the key's version
//!   (a delete's too) is below the record's: a key written or deleted since is `kept` as it
//!   is, so an import never undoes a newer write and may be repeated. The value gets a fresh
//!   version (a recovered node refuses versions older than its recovery); an expiry keeps its
//!   time left, an expired record is skipped (`kept`). All lines are checked
//!   before any is stored (a bad one: HTTP 400 `BadRequest` naming the line, nothing stored).
//!   Answer `{"code":200,"success":true,"result":{"imported":N,"kept":K}}`, or NotMost with
//!   `"result":{"imported":N,"kept":K,"failed":M}` (repeat it).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;

use super::admin::{admin_access, envelope_error};
use super::cas::{parse_version, version_string};
use super::error::ApiError;
use super::json::write_go_string;
use super::list::{parse as parse_list, Item, ListRequest};
use super::{json, query, Api, Connection};
use crate::http::{Body, BodySource, Method, Piece, Request, Response};
use crate::limits::{JSON_DEPTH_MAX, KEY_BYTES_MAX, LIST_LIMIT_MAX};
use crate::replication::{OpError, Version};
use crate::runtime::{join_all, Local};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

pub const EXPORT_PATH: &str = "/admin/export";
pub const IMPORT_PATH: &str = "/admin/import";
pub const CONTENT_TYPE_NDJSON: &str = "application/x-ndjson";
/// Records an import stores at once.
const IMPORTS_IN_FLIGHT: usize = 32;

/// One record of an import.
struct Record {
    key: Vec<u8>,
    value: Vec<u8>,
    version: Version,
    expires: Option<u64>,
}

impl Api {
    /// `GET /admin/export`.
    pub(super) async fn export(&self, req: &Request<'_>, conn: &Connection) -> Response {
        if let Some(refused) = self.admin_refusal(req, conn) {
            return refused;
        }
        if !matches!(req.method, Method::Get | Method::Head) {
            return super::method_not_allowed(super::ALLOW_GET);
        }
        let query = req.query.unwrap_or("");
        let paged =
            query::param(query, "cursor").is_some() || query::param(query, "limit").is_some();
        let mut request = match parse_list(query) {
            Ok(request) => request,
            Err(err) => return err.to_response(),
        };
        if !paged {
            request.limit = LIST_LIMIT_MAX;
            let export = Export {
                api: conn.api.clone(),
                request,
                records: 0,
            };
            return Response::streamed(CONTENT_TYPE_NDJSON, export);
        }
        match self.list_majority(&request).await {
            Ok((items, resume_after)) => Response {
                status: 200,
                content_type: Some(CONTENT_TYPE_NDJSON),
                allow: None,
                headers: "",
                body: Body::Owned(encode_export(&items, resume_after)),
                upgrade: None,
            },
            Err(err) => err.to_response(),
        }
    }

    /// `POST /admin/import`.
    pub(super) async fn import(&self, req: &Request<'_>, conn: &Connection) -> Response {
        if let Some(refused) = self.admin_refusal(req, conn) {
            return refused;
        }
        if req.method != Method::Post {
            return super::method_not_allowed(super::ALLOW_POST);
        }
        let records = match parse_import(req.body, self.max_value_bytes()) {
            Ok(records) => records,
            Err(detail) => return envelope_error(400, "BadRequest", &detail),
        };
        let (mut imported, mut kept, mut failed) = (0u64, 0u64, 0u64);
        for chunk in records.chunks(IMPORTS_IN_FLIGHT) {
            let stores: Vec<Local<'_, Result<bool, OpError>>> = chunk
                .iter()
                .map(|r| {
                    let (key, value) = (r.key.clone(), r.value.clone());
                    let store = self.replication.import(key, r.version, value, r.expires);
                    Box::pin(store) as Local<'_, _>
                })
                .collect();
            for stored in join_all(stores).await {
                match stored {
                    Ok(true) => imported += 1,
                    Ok(false) => kept += 1,
                    Err(OpError::Unsupported(detail)) => {
                        return ApiError::Unsupported { detail }.to_response()
                    }
                    Err(_) => failed += 1,
                }
            }
        }
        let body = match failed {
            0 => format!(
                r#"{{"code":200,"success":true,"result":{{"imported":{imported},"kept":{kept}}}}}"#
            ),
            _ => format!(
                r#"{{"code":500,"message":"NotMost","success":false,"result":{{"imported":{imported},"kept":{kept},"failed":{failed}}}}}"#
            ),
        };
        Response::json(200, body.into_bytes())
    }

    /// The admin routes' access check (a refusal to send, or `None`).
    fn admin_refusal(&self, req: &Request<'_>, conn: &Connection) -> Option<Response> {
        let Some(live) = self.live() else {
            return Some(envelope_error(
                503,
                "NotReady",
                "no runtime settings on this node",
            ));
        };
        admin_access(&live, req, conn.from).err()
    }
}

/// A whole export, streamed: one majority listing page after another, each page's records
/// sent before the next is listed.
struct Export {
    api: Rc<Api>,
    request: ListRequest,
    records: u64,
}

impl BodySource for Export {
    fn next<'a>(&'a mut self, out: &'a mut Vec<u8>) -> Pin<Box<dyn Future<Output = Piece> + 'a>> {
        Box::pin(async move {
            match self.api.list_majority(&self.request).await {
                Ok((items, resume_after)) => {
                    encode_records(out, &items);
                    self.records += items.len() as u64;
                    match resume_after {
                        Some(key) => {
                            self.request.range = self.request.range.after(&key);
                            Piece::More
                        }
                        None => {
                            let records = self.records;
                            out.extend_from_slice(
                                format!("{{\"more\":false,\"records\":{records}}}\n").as_bytes(),
                            );
                            Piece::Done
                        }
                    }
                }
                Err(err) => {
                    // The envelope of the failure as the last line, then the body is cut.
                    out.extend_from_slice(err.to_response().body.as_bytes());
                    out.push(b'\n');
                    Piece::Failed
                }
            }
        })
    }
}

fn encode_export(items: &[Item], resume_after: Option<Vec<u8>>) -> Vec<u8> {
    let bytes: usize = items.iter().map(|i| i.key.len() + i.value.len() + 96).sum();
    let mut out = Vec::with_capacity(64 + bytes);
    encode_records(&mut out, items);
    match resume_after {
        Some(key) => {
            out.extend_from_slice(br#"{"more":true,"cursor":""#);
            out.extend_from_slice(URL_SAFE_NO_PAD.encode(key).as_bytes());
            out.extend_from_slice(b"\"}\n");
        }
        None => out.extend_from_slice(b"{\"more\":false}\n"),
    }
    out
}

/// One line per record: `{"key":K,"value":V,"version":"…"[,"expires":E]}`.
fn encode_records(out: &mut Vec<u8>, items: &[Item]) {
    for item in items {
        out.extend_from_slice(br#"{"key":"#);
        write_go_string(out, &item.key);
        out.extend_from_slice(br#","value":"#);
        write_go_string(out, &item.value);
        out.extend_from_slice(br#","version":""#);
        out.extend_from_slice(version_string(item.version).as_bytes());
        out.push(b'"');
        if let Some(expires) = item.expires {
            out.extend_from_slice(format!(r#","expires":{expires}"#).as_bytes());
        }
        out.extend_from_slice(b"}\n");
    }
}

/// The records of an import body, every line checked first.
fn parse_import(body: &[u8], max_value_bytes: usize) -> Result<Vec<Record>, String> {
    let mut records = Vec::new();
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let bad = |what: &str| format!("line {}: {what}", n + 1);
        if json::nests_deeper_than(line, JSON_DEPTH_MAX) {
            return Err(bad("nested too deep"));
        }
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(line) else {
            return Err(bad("not a JSON object"));
        };
        if !fields.contains_key("key") {
            // A page's last line, or anything else without a key: not a record.
            continue;
        }
        let (Some(Value::String(key)), Some(Value::String(value))) =
            (fields.get("key"), fields.get("value"))
        else {
            return Err(bad("a record has a string key and a string value"));
        };
        if key.is_empty() || key.len() > KEY_BYTES_MAX || value.len() > max_value_bytes {
            return Err(bad("the key or the value is out of bounds"));
        }
        let version = fields
            .get("version")
            .and_then(Value::as_str)
            .and_then(parse_version)
            .filter(|v| *v != Version::ZERO)
            .ok_or(bad("version is not one an export wrote"))?;
        let expires = match fields.get("expires") {
            None => None,
            Some(e) => Some(e.as_u64().ok_or(bad("expires is a whole number"))?),
        };
        records.push(Record {
            key: key.as_bytes().to_vec(),
            value: value.as_bytes().to_vec(),
            version,
            expires,
        });
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_export_page_reads_back_as_records() {
        let items = [
            Item {
                key: b"a".to_vec(),
                value: b"\"1\"".to_vec(),
                version: Version { hlc: 7, origin: 4 },
                expires: None,
            },
            Item {
                key: b"b".to_vec(),
                value: b"2".to_vec(),
                version: Version { hlc: 9, origin: 4 },
                expires: Some(99),
            },
        ];
        let page = encode_export(&items, Some(b"b".to_vec()));
        let text = String::from_utf8(page.clone()).expect("utf-8");
        assert_eq!(text.lines().count(), 3, "{text}");
        assert!(
            text.ends_with("{\"more\":true,\"cursor\":\"Yg\"}\n"),
            "{text}"
        );
        let records = parse_import(&page, 1024).expect("parses");
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].value, b"\"1\"");
        assert_eq!(records[1].version, Version { hlc: 9, origin: 4 });
        assert_eq!(records[1].expires, Some(99));
    }

    #[test]
    fn a_bad_line_refuses_the_whole_import() {
        for body in [
            "{\"key\":\"a\",\"value\":\"1\"}\n",
            "{\"key\":\"a\",\"value\":1,\"version\":\"00000000000000070000000000000004\"}\n",
            "[1]\n",
            "{\"key\":\"a\",\"value\":\"1\",\"version\":\"00000000000000000000000000000000\"}\n",
        ] {
            assert!(parse_import(body.as_bytes(), 1024).is_err(), "{body}");
        }
    }
}
