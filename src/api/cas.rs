//! `POST {ctx}/cas`: compare-and-set from any node (DESIGN §10), answered with HTTP 200 and
//! the original's envelope, as every data route:
//!
//! * body `{"key":K,"expect":E,"value":V}` or `{"key":K,"expect":E,"delete":true}`, where `E`
//!   is one of `{"absent":true}`, `{"present":true}`, `{"value":"…"}`, `{"version":"…"}` (a
//!   version a read or a CAS reported);
//! * applied: `{"code":200,"success":true,"result":{"key":K,"version":"…"}}`;
//! * compare failed: `{"code":409,"message":"CompareFailed","success":false,"result":{"key":K,
//!   "value":V,"version":"…"}}`, the state a majority holds (no `value` when absent);
//! * `NotMost` (definite: nothing applied, ever), or `NotMost` with `"indeterminate":true` and
//!   the attempted `"version"` (the change may take effect, only at that version).
//!
//! Versions are opaque to clients: 32 lowercase hex digits (the HLC, then the origin).
//! The body is a new route's, so its fields are matched exactly (lowercase); anything else in
//! it is ignored, as on the original's routes.

use serde_json::Value;

use super::error::ApiError;
use super::json::{self, write_go_string, Millis};
use super::{audit, bad_param, Api, Connection, BAD_PARAM};
use crate::http::Response;
use crate::limits::{JSON_DEPTH_MAX, KEY_BYTES_MAX};
use crate::replication::coordinator::{CasDone, Change, Current, Expect};
use crate::replication::{OpError, Version};

/// Hex digits of a version string.
const VERSION_HEX_DIGITS: usize = 32;

/// A parsed CAS request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CasRequest {
    pub key: Vec<u8>,
    pub expect: Expect,
    pub change: Change,
}

impl Api {
    /// `POST {ctx}/cas`.
    pub(super) async fn cas(&self, body: &[u8], conn: &Connection) -> Result<Response, ApiError> {
        let request = parse(body, self.max_value_bytes())?;
        let key = request.key.clone();
        let audit = self.audit_start(&key);
        let done = self
            .replication
            .cas(request.key, request.expect, request.change)
            .await;
        let (answer, ended) = answer(&key, done);
        self.audit_ended("cas", audit, conn, ended).await;
        answer
    }
}

/// The client's answer, and the audit log's outcome and version.
fn answer(
    key: &[u8],
    done: Result<CasDone, OpError>,
) -> (Result<Response, ApiError>, (&'static str, Option<Version>)) {
    match done {
        Ok(CasDone::Ok { version }) => (
            Ok(Response::json(200, encode_ok(key, version))),
            ("ok", Some(version)),
        ),
        Ok(CasDone::CompareFailed { current }) => (
            Err(ApiError::CompareFailed {
                result: encode_current(key, &current),
            }),
            ("compare_failed", None),
        ),
        Ok(CasDone::NotMost { .. }) => (
            Err(ApiError::NotMost {
                indeterminate: false,
            }),
            ("not_most", None),
        ),
        Ok(CasDone::Indeterminate { version }) => (
            Err(ApiError::IndeterminateAt {
                version: version_string(version),
            }),
            ("indeterminate", Some(version)),
        ),
        Err(OpError::Unsupported(detail)) => {
            (Err(ApiError::Unsupported { detail }), ("unsupported", None))
        }
        Err(err) => {
            let outcome = audit::error_outcome(&err);
            (Err(super::op_error(err)), (outcome, None))
        }
    }
}

/// Parses a CAS body; values longer than `max_value_bytes` are refused.
pub fn parse(body: &[u8], max_value_bytes: usize) -> Result<CasRequest, ApiError> {
    if json::nests_deeper_than(body, JSON_DEPTH_MAX) {
        return Err(bad_param(super::JSON_TOO_DEEP));
    }
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(BAD_PARAM);
    };
    let key = match fields.get("key") {
        Some(Value::String(k)) if !k.is_empty() && k.len() <= KEY_BYTES_MAX => {
            k.as_bytes().to_vec()
        }
        Some(Value::String(k)) if !k.is_empty() => {
            return Err(bad_param("key is longer than 8192 bytes"))
        }
        _ => return Err(BAD_PARAM),
    };
    let expect = parse_expect(fields.get("expect"))?;
    let value = match (fields.get("value"), fields.get("delete")) {
        (Some(Value::String(v)), None) if v.len() <= max_value_bytes => Some(v.as_bytes().to_vec()),
        (Some(Value::String(_)), None) => {
            return Err(bad_param("value is larger than MOSTDB_MAX_VALUE_BYTES"))
        }
        (None, Some(Value::Bool(true))) => None,
        _ => {
            return Err(bad_param(
                "give either \"value\" (a string) or \"delete\":true",
            ))
        }
    };
    let ttl_ms = match fields.get("ttl_ms") {
        None => None,
        Some(Value::Number(n)) => super::parse_ttl(n.as_u64().map_or(Millis::Invalid, Millis::Ms))?,
        Some(_) => super::parse_ttl(Millis::Invalid)?,
    };
    if ttl_ms.is_some() && value.is_none() {
        return Err(bad_param("ttl_ms goes with a value, not with a delete"));
    }
    Ok(CasRequest {
        key,
        expect,
        change: Change { value, ttl_ms },
    })
}

fn parse_expect(expect: Option<&Value>) -> Result<Expect, ApiError> {
    const HOW: &str = "expect is one of {\"absent\":true}, {\"present\":true}, {\"value\":V}, \
                       {\"version\":V} with V a string";
    let Some(Value::Object(expect)) = expect else {
        return Err(bad_param(HOW));
    };
    if expect.len() != 1 {
        return Err(bad_param(HOW));
    }
    match expect.iter().next() {
        Some((name, Value::Bool(true))) if name == "absent" => Ok(Expect::Absent),
        Some((name, Value::Bool(true))) if name == "present" => Ok(Expect::Present),
        Some((name, Value::String(v))) if name == "value" => {
            Ok(Expect::Value(v.as_bytes().to_vec()))
        }
        Some((name, Value::String(v))) if name == "version" => {
            parse_version(v).map(Expect::Version).ok_or(bad_param(
                "expect.version is not a version this API reported",
            ))
        }
        _ => Err(bad_param(HOW)),
    }
}

/// A version as clients see it: 32 lowercase hex digits, the HLC then the origin.
pub fn version_string(version: Version) -> String {
    format!("{:016x}{:016x}", version.hlc, version.origin)
}

/// The inverse of [`version_string`]; `None` for anything it would not have written.
pub fn parse_version(text: &str) -> Option<Version> {
    if text.len() != VERSION_HEX_DIGITS
        || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return None;
    }
    let (hlc, origin) = text.split_at(VERSION_HEX_DIGITS / 2);
    Some(Version {
        hlc: u64::from_str_radix(hlc, 16).ok()?,
        origin: u64::from_str_radix(origin, 16).ok()?,
    })
}

/// `{"code":200,"success":true,"result":{"key":K,"version":V}}`.
fn encode_ok(key: &[u8], version: Version) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + key.len());
    out.extend_from_slice(br#"{"code":200,"success":true,"result":{"key":"#);
    write_go_string(&mut out, key);
    out.extend_from_slice(br#","version":""#);
    out.extend_from_slice(version_string(version).as_bytes());
    out.extend_from_slice(b"\"}}");
    out
}

/// `{"key":K[,"value":V],"version":…}`: the state a failed compare found.
fn encode_current(key: &[u8], current: &Current) -> Vec<u8> {
    let value_len = current.value.as_ref().map_or(0, Vec::len);
    let mut out = Vec::with_capacity(64 + key.len() + value_len);
    out.extend_from_slice(br#"{"key":"#);
    write_go_string(&mut out, key);
    if let Some(value) = &current.value {
        out.extend_from_slice(br#","value":"#);
        write_go_string(&mut out, value);
    }
    out.extend_from_slice(br#","version":""#);
    out.extend_from_slice(version_string(current.version).as_bytes());
    out.extend_from_slice(b"\"}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 1024;

    fn ok(body: &str) -> CasRequest {
        parse(body.as_bytes(), MAX).unwrap_or_else(|e| panic!("{body}: {e:?}"))
    }

    fn refused(body: &str) -> ApiError {
        match parse(body.as_bytes(), MAX) {
            Err(e) => e,
            Ok(r) => panic!("{body} was taken: {r:?}"),
        }
    }

    #[test]
    fn every_expectation_and_both_changes_parse() {
        let v = Version {
            hlc: 0x18c,
            origin: 0xab,
        };
        let text = version_string(v);
        assert_eq!(text, "000000000000018c00000000000000ab");
        assert_eq!(parse_version(&text), Some(v));
        for (expect, want) in [
            (r#"{"absent":true}"#, Expect::Absent),
            (r#"{"present":true}"#, Expect::Present),
            (r#"{"value":"a"}"#, Expect::Value(b"a".to_vec())),
            (&format!(r#"{{"version":"{text}"}}"#), Expect::Version(v)),
        ] {
            let body = format!(r#"{{"key":"k","expect":{expect},"value":"n","other":[1]}}"#);
            let req = ok(&body);
            assert_eq!((req.key, req.expect), (b"k".to_vec(), want));
            assert_eq!(req.change.value, Some(b"n".to_vec()));
        }
        let del = ok(r#"{"key":"k","expect":{"present":true},"delete":true}"#);
        assert_eq!(del.change.value, None);
    }

    #[test]
    fn malformed_bodies_are_refused_with_a_reason() {
        for body in [
            r#"[]"#,
            r#"{"expect":{"absent":true},"value":"v"}"#,
            r#"{"key":"","expect":{"absent":true},"value":"v"}"#,
            r#"{"key":1,"expect":{"absent":true},"value":"v"}"#,
        ] {
            assert_eq!(refused(body), BAD_PARAM, "{body}");
        }
        for body in [
            r#"{"key":"k","value":"v"}"#,
            r#"{"key":"k","expect":{},"value":"v"}"#,
            r#"{"key":"k","expect":{"absent":true,"present":true},"value":"v"}"#,
            r#"{"key":"k","expect":{"absent":false},"value":"v"}"#,
            r#"{"key":"k","expect":{"version":"12"},"value":"v"}"#,
            r#"{"key":"k","expect":{"version":"000000000000018C00000000000000AB"},"value":"v"}"#,
            r#"{"key":"k","expect":{"absent":true}}"#,
            r#"{"key":"k","expect":{"absent":true},"value":"v","delete":true}"#,
            r#"{"key":"k","expect":{"absent":true},"value":5}"#,
            r#"{"key":"k","expect":{"absent":true},"delete":false}"#,
            r#"{"key":"k","expect":{"absent":true},"value":"v","ttl_ms":0}"#,
            r#"{"key":"k","expect":{"absent":true},"value":"v","ttl_ms":"5"}"#,
            r#"{"key":"k","expect":{"present":true},"delete":true,"ttl_ms":5}"#,
        ] {
            assert!(
                matches!(refused(body), ApiError::BadParam { detail: Some(_) }),
                "{body}"
            );
        }
        let long = format!(
            r#"{{"key":"k","expect":{{"absent":true}},"value":"{}"}}"#,
            "x".repeat(MAX + 1)
        );
        assert!(matches!(
            refused(&long),
            ApiError::BadParam { detail: Some(_) }
        ));
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(
            refused(&deep),
            ApiError::BadParam { detail: Some(_) }
        ));
    }

    #[test]
    fn answers_keep_the_envelope() {
        let v = Version { hlc: 1, origin: 2 };
        assert_eq!(
            String::from_utf8(encode_ok(b"k", v)).unwrap(),
            r#"{"code":200,"success":true,"result":{"key":"k","version":"00000000000000010000000000000002"}}"#
        );
        let failed = ApiError::CompareFailed {
            result: encode_current(
                b"k",
                &Current {
                    version: v,
                    value: Some(b"<x>".to_vec()),
                },
            ),
        };
        assert_eq!(
            String::from_utf8(failed.body()).unwrap(),
            r#"{"code":409,"message":"CompareFailed","success":false,"result":{"key":"k","value":"\u003cx\u003e","version":"00000000000000010000000000000002"}}"#
        );
        let absent = encode_current(
            b"k",
            &Current {
                version: Version::ZERO,
                value: None,
            },
        );
        assert_eq!(
            String::from_utf8(absent).unwrap(),
            r#"{"key":"k","version":"00000000000000000000000000000000"}"#
        );
        assert_eq!(
            String::from_utf8(
                ApiError::IndeterminateAt {
                    version: "ab".into()
                }
                .body()
            )
            .unwrap(),
            r#"{"code":500,"message":"NotMost","success":false,"indeterminate":true,"version":"ab"}"#
        );
    }
}
