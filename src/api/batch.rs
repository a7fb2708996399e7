//! `POST {ctx}/batch`: several operations in one request (DESIGN §11), each answered as if it
//! had come alone, in the order given:
//!
//! * body `{"ops":[{"op":"set","key":K,"value":V[,"ttl_ms":N]}, {"op":"get","key":K
//!   [,"with_version":true]}, {"op":"del","key":K}, {"op":"cas","key":K,"expect":E,…}]}`, at
//!   most [`BATCH_OPS_MAX`] operations on distinct keys (a key twice is a bad request: the
//!   order between two operations on one key would be undefined);
//! * answer `{"code":200,"success":true,"result":{"results":[R1,R2,…]}}`, where each `Ri` is
//!   exactly the envelope the single route would have answered (`{"code":200,…}`,
//!   `{"code":500,"message":"NotMost",…}`, …).
//!
//! Not a transaction: the operations run at once, each with its own outcome; some may apply
//! while others fail, and another client may see some applied before others. A malformed batch
//! (not an object with an `ops` array, an unknown `op`, no string `key`, too many operations,
//! a key twice) is refused as a whole with the original's 参数有误 and nothing is tried.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::error::ApiError;
use super::{bad_param, json, Api, Connection, BAD_PARAM};
use crate::http::Response;
use crate::limits::{BATCH_OPS_MAX, JSON_DEPTH_MAX};
use crate::runtime::{join_all, Local};

/// What one operation of a batch is.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Set,
    Get,
    Del,
    Cas,
}

/// One operation: its kind, and its body as the single route takes it (the object without
/// its `op`).
#[derive(Debug, PartialEq)]
struct Op {
    kind: Kind,
    body: Vec<u8>,
}

impl Api {
    /// `POST {ctx}/batch`.
    pub(super) async fn batch(&self, body: &[u8], conn: &Connection) -> Result<Response, ApiError> {
        let ops = parse(body)?;
        let futures = ops.iter().map(|op| self.one(op, conn)).collect();
        let answers = join_all(futures).await;
        let total: usize = answers.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(64 + total + answers.len());
        out.extend_from_slice(br#"{"code":200,"success":true,"result":{"results":["#);
        for (i, answer) in answers.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(answer);
        }
        out.extend_from_slice(b"]}}");
        Ok(Response::json(200, out))
    }

    /// One operation's envelope, as its own route answers it.
    fn one<'a>(&'a self, op: &'a Op, conn: &'a Connection) -> Local<'a, Vec<u8>> {
        Box::pin(async move {
            let answer = match op.kind {
                Kind::Set => self.set(&op.body, conn).await,
                Kind::Get => self.get(&op.body, false).await,
                Kind::Del => self.del(&op.body, conn).await,
                Kind::Cas => self.cas(&op.body, conn).await,
            };
            match answer {
                Ok(response) => response.body.as_bytes().to_vec(),
                Err(err) => err.body(),
            }
        })
    }
}

/// The operations of a batch body, checked as a whole.
fn parse(body: &[u8]) -> Result<Vec<Op>, ApiError> {
    if json::nests_deeper_than(body, JSON_DEPTH_MAX) {
        return Err(bad_param(super::JSON_TOO_DEEP));
    }
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(body) else {
        return Err(BAD_PARAM);
    };
    let Some(Value::Array(ops)) = fields.remove("ops") else {
        return Err(bad_param("a batch is {\"ops\":[…]}"));
    };
    if ops.is_empty() || ops.len() > BATCH_OPS_MAX {
        return Err(bad_param("a batch has 1 to 128 operations"));
    }
    let mut keys = HashSet::with_capacity(ops.len());
    ops.into_iter()
        .map(|op| {
            let Value::Object(mut op) = op else {
                return Err(bad_param("each operation is an object"));
            };
            let kind = kind_of(&mut op)?;
            match op.get("key") {
                Some(Value::String(key)) if !keys.insert(key.clone()) => {
                    Err(bad_param("a key appears twice in the batch"))
                }
                Some(Value::String(_)) => Ok(Op {
                    kind,
                    body: serde_json::to_vec(&op).map_err(|_| BAD_PARAM)?,
                }),
                _ => Err(BAD_PARAM),
            }
        })
        .collect()
}

/// Takes the `op` field out of `op`.
fn kind_of(op: &mut Map<String, Value>) -> Result<Kind, ApiError> {
    match op.remove("op") {
        Some(Value::String(name)) => match name.as_str() {
            "set" => Ok(Kind::Set),
            "get" => Ok(Kind::Get),
            "del" => Ok(Kind::Del),
            "cas" => Ok(Kind::Cas),
            _ => Err(bad_param("op is one of set, get, del, cas")),
        },
        _ => Err(bad_param("op is one of set, get, del, cas")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(err: ApiError) -> String {
        String::from_utf8(err.body()).expect("utf-8")
    }

    #[test]
    fn each_operation_keeps_its_fields_without_op() {
        let ops = parse(
            br#"{"ops":[{"op":"set","key":"a","value":"1","ttl_ms":5},{"op":"get","key":"b"},
                {"op":"cas","key":"c","expect":{"absent":true},"value":"x"},{"op":"del","key":"d"}]}"#,
        )
        .expect("parses");
        let kinds: Vec<Kind> = ops.iter().map(|o| o.kind).collect();
        assert_eq!(kinds, [Kind::Set, Kind::Get, Kind::Cas, Kind::Del]);
        let first: Value = serde_json::from_slice(&ops[0].body).expect("json");
        assert_eq!(
            first,
            serde_json::json!({"key":"a","value":"1","ttl_ms":5}),
            "{first}"
        );
    }

    #[test]
    fn malformed_batches_are_refused_whole() {
        let too_many = format!(
            r#"{{"ops":[{}]}}"#,
            (0..=BATCH_OPS_MAX)
                .map(|i| format!(r#"{{"op":"get","key":"k{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let cases: [(&[u8], &str); 9] = [
            (b"[]", "参数有误"),
            (br#"{"ops":{}}"#, "{\\\"ops\\\""),
            (br#"{"ops":[]}"#, "1 to 128"),
            (too_many.as_bytes(), "1 to 128"),
            (br#"{"ops":[1]}"#, "an object"),
            (br#"{"ops":[{"op":"put","key":"a"}]}"#, "one of set"),
            (br#"{"ops":[{"key":"a"}]}"#, "one of set"),
            (br#"{"ops":[{"op":"get","key":7}]}"#, "参数有误"),
            (
                br#"{"ops":[{"op":"get","key":"a"},{"op":"del","key":"a"}]}"#,
                "twice",
            ),
        ];
        for (body, words) in cases {
            let err = parse(body).expect_err("refused");
            let text = detail(err);
            assert!(
                text.contains(words),
                "{}: {text}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
