//! The key-value client of the cluster tests: one keep-alive connection per node, reopened
//! after errors, and every answer (or its absence) sorted into what it tells about the
//! operation's fate, for the fault test's history and the workloads.
//!
//! Must not import the `mostdb` library.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::history::{CasAnswer, Expect, KvOp, Outcome};
use super::{post, Client, ReadError};

/// How long the client waits to connect to a node.
pub const CLIENT_CONNECT_TIMEOUT_MS: u64 = 500;

/// What one answer (or its absence) tells about an operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// `{"code":200,"success":true}`.
    Ok,
    /// A get's result (`None`: NotFound).
    Value(Option<String>),
    /// A get's result with its version (`"with_version":true`).
    Versioned { value: String, version: String },
    /// A CAS's `CompareFailed`, with the state a majority holds (`None`: absent).
    CompareFailed(Option<String>),
    /// `NotMost`; `indeterminate`: the write may or may not take effect.
    NotMost { indeterminate: bool },
    /// 503 (not ready, busy): nothing applied.
    Unavailable(String),
    /// No connection: the request never left the client.
    NotSent(String),
    /// Sent (maybe only in part) and no complete answer: timeout, reset, end of stream.
    Lost(String),
    /// Any other answer.
    Unexpected(String),
}

/// A client of every node, with one keep-alive connection per node, reopened after errors.
pub struct KvClient {
    addrs: Vec<SocketAddr>,
    conns: Vec<Option<Client>>,
    io_timeout: Duration,
}

impl KvClient {
    /// `io_timeout`: how long one request waits for its answer before counting as lost.
    pub fn new(addrs: Vec<SocketAddr>, io_timeout: Duration) -> KvClient {
        let conns = addrs.iter().map(|_| None).collect();
        KvClient {
            addrs,
            conns,
            io_timeout,
        }
    }

    pub fn set(&mut self, node: usize, key: &str, value: &str) -> Reply {
        let body = serde_json::json!({ "key": key, "value": value }).to_string();
        self.call(node, "/mostdb/set", &body)
    }

    pub fn del(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key }).to_string();
        self.call(node, "/mostdb/del", &body)
    }

    pub fn get(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key }).to_string();
        self.call(node, "/mostdb/get", &body)
    }

    /// A get that asks for the version too: [`Reply::Versioned`] when found.
    pub fn get_versioned(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key, "with_version": true }).to_string();
        self.call_as(node, "/mostdb/get", &body, classify_versioned)
    }

    /// `POST /mostdb/cas` to `new` (`None`: delete) if `expect` holds.
    pub fn cas(&mut self, node: usize, key: &str, expect: &Expect, new: Option<&str>) -> Reply {
        let expect = match expect {
            Expect::Absent => serde_json::json!({ "absent": true }),
            Expect::Present => serde_json::json!({ "present": true }),
            Expect::Value(v) => serde_json::json!({ "value": v }),
        };
        self.cas_json(node, key, expect, new)
    }

    /// A CAS that expects the key present at `version` (as a versioned get reported it).
    pub fn cas_at_version(&mut self, node: usize, key: &str, version: &str, new: &str) -> Reply {
        let expect = serde_json::json!({ "version": version });
        self.cas_json(node, key, expect, Some(new))
    }

    fn cas_json(
        &mut self,
        node: usize,
        key: &str,
        expect: serde_json::Value,
        new: Option<&str>,
    ) -> Reply {
        let body = match new {
            Some(v) => serde_json::json!({ "key": key, "expect": expect, "value": v }),
            None => serde_json::json!({ "key": key, "expect": expect, "delete": true }),
        };
        self.call_as(node, "/mostdb/cas", &body.to_string(), classify_cas)
    }

    fn call(&mut self, node: usize, path: &str, body: &str) -> Reply {
        self.call_as(node, path, body, classify)
    }

    /// One request; the answer is sorted by `classify` (each route's success says other things).
    fn call_as(
        &mut self,
        node: usize,
        path: &str,
        body: &str,
        classify: fn(u16, &[u8]) -> Reply,
    ) -> Reply {
        let mut client = match self.conns[node].take().filter(is_open) {
            Some(c) => c,
            None => match self.connect(node) {
                Ok(c) => c,
                Err(e) => return Reply::NotSent(e),
            },
        };
        if let Err(e) = client.stream.write_all(&post(path, body.as_bytes())) {
            return Reply::Lost(format!("write: {e}"));
        }
        let resp = match client.try_read_response() {
            Ok(r) => r,
            Err(ReadError::Timeout) => return Reply::Lost("timeout".into()),
            Err(e) => return Reply::Lost(format!("{e:?}")),
        };
        let reply = classify(resp.status, &resp.body);
        let keep = resp
            .header("Connection")
            .is_none_or(|v| !v.eq_ignore_ascii_case("close"));
        if keep && !matches!(reply, Reply::Unexpected(_)) {
            self.conns[node] = Some(client);
        }
        reply
    }

    fn connect(&self, node: usize) -> Result<Client, String> {
        let timeout = Duration::from_millis(CLIENT_CONNECT_TIMEOUT_MS);
        let stream =
            TcpStream::connect_timeout(&self.addrs[node], timeout).map_err(|e| e.to_string())?;
        Ok(Client::from_stream(stream, self.io_timeout))
    }
}

/// Whether a kept-alive connection is still open: a node that was killed or restarted closed
/// it, and writing a request into it would turn a clean "not sent" into a lost answer.
fn is_open(c: &Client) -> bool {
    if c.stream.set_nonblocking(true).is_err() {
        return false;
    }
    let mut probe = [0u8; 1];
    let open = match c.stream.peek(&mut probe) {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        // Bytes nobody asked for, or the end of the stream: either way not reusable.
        Ok(_) => false,
    };
    open && c.stream.set_nonblocking(false).is_ok()
}

/// Sorts an answer by what it means for the operation.
pub fn classify(status: u16, body: &[u8]) -> Reply {
    let text = || String::from_utf8_lossy(body).into_owned();
    if status == 503 {
        return Reply::Unavailable(text());
    }
    if status != 200 {
        return Reply::Unexpected(format!("status {status}: {}", text()));
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Reply::Unexpected(format!("not JSON: {}", text()));
    };
    let success = v.get("success").and_then(|s| s.as_bool());
    let message = v.get("message").and_then(|m| m.as_str());
    match (success, message) {
        (Some(true), _) => match v.get("result") {
            None => Reply::Ok,
            Some(result) => match result.get("value") {
                None => Reply::Value(Some(String::new())),
                Some(serde_json::Value::String(s)) => Reply::Value(Some(s.clone())),
                Some(_) => Reply::Unexpected(format!("value not a string: {}", text())),
            },
        },
        (Some(false), Some("NotFound")) => Reply::Value(None),
        (Some(false), Some("NotMost")) => Reply::NotMost {
            indeterminate: v.get("indeterminate").and_then(|i| i.as_bool()) == Some(true),
        },
        _ => Reply::Unexpected(text()),
    }
}

/// Sorts a CAS's answer: applied (`Reply::Ok`), `CompareFailed` with the state it found, or
/// any answer a write can have.
pub fn classify_cas(status: u16, body: &[u8]) -> Reply {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return classify(status, body);
    };
    let compare_failed = v.get("message").and_then(|m| m.as_str()) == Some("CompareFailed");
    match v.get("success").and_then(|s| s.as_bool()) {
        _ if status != 200 => classify(status, body),
        Some(true) => Reply::Ok,
        Some(false) if compare_failed => match v["result"].get("value") {
            None => Reply::CompareFailed(None),
            Some(serde_json::Value::String(s)) => Reply::CompareFailed(Some(s.clone())),
            Some(_) => Reply::Unexpected(format!("value not a string: {v}")),
        },
        _ => classify(status, body),
    }
}

/// Sorts a get's answer with its version: [`Reply::Versioned`] (a value left out of the
/// answer is empty), or any answer a get can have.
pub fn classify_versioned(status: u16, body: &[u8]) -> Reply {
    let result = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .filter(|v| status == 200 && v.get("success").and_then(|s| s.as_bool()) == Some(true))
        .and_then(|v| v.get("result").cloned());
    let Some(result) = result else {
        return classify(status, body);
    };
    let value = result.get("value").map_or(Some(""), |v| v.as_str());
    match (value, result.get("version").and_then(|v| v.as_str())) {
        (Some(value), Some(version)) => Reply::Versioned {
            value: value.to_string(),
            version: version.to_string(),
        },
        _ => Reply::Unexpected(format!("not a versioned get: {result}")),
    }
}

/// What one request came to, for the run's statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyClass {
    Ok,
    NotFound,
    CompareFailed,
    NotMost,
    NotMostIndeterminate,
    Unavailable,
    NotSent,
    Lost,
    Unexpected,
}

/// How many [`ReplyClass`] values there are (for counters indexed by class).
pub const REPLY_CLASSES: usize = 9;

/// What a reply to `op` means for the history: its outcome, the op as recorded (a get with the
/// value it read), its class, and a note when the answer made no sense for the op.
pub fn interpret(op: KvOp, reply: Reply) -> (Outcome, KvOp, ReplyClass, Option<String>) {
    let is_get = matches!(op, KvOp::Get(_));
    match (op, reply) {
        (KvOp::Cas { expect, new, .. }, Reply::Ok) => {
            let op = KvOp::Cas {
                expect,
                new,
                answer: CasAnswer::Applied,
            };
            (Outcome::Ok, op, ReplyClass::Ok, None)
        }
        (KvOp::Cas { expect, new, .. }, Reply::CompareFailed(found)) => {
            let op = KvOp::Cas {
                expect,
                new,
                answer: CasAnswer::CompareFailed(found),
            };
            (Outcome::Ok, op, ReplyClass::CompareFailed, None)
        }
        (op, reply) => interpret_plain(op, reply, is_get),
    }
}

/// [`interpret`] for the answers that mean the same for every route.
fn interpret_plain(
    op: KvOp,
    reply: Reply,
    is_get: bool,
) -> (Outcome, KvOp, ReplyClass, Option<String>) {
    match reply {
        Reply::Value(v) if is_get => {
            let class = if v.is_none() {
                ReplyClass::NotFound
            } else {
                ReplyClass::Ok
            };
            (Outcome::Ok, KvOp::Get(v), class, None)
        }
        Reply::Ok if !is_get => (Outcome::Ok, op, ReplyClass::Ok, None),
        Reply::NotMost {
            indeterminate: false,
        } => (Outcome::Failed, op, ReplyClass::NotMost, None),
        // A read has no effect: whatever happened to it, it observed nothing.
        Reply::NotMost {
            indeterminate: true,
        } if is_get => (Outcome::Failed, op, ReplyClass::NotMostIndeterminate, None),
        Reply::NotMost {
            indeterminate: true,
        } => (
            Outcome::Indeterminate,
            op,
            ReplyClass::NotMostIndeterminate,
            None,
        ),
        Reply::Unavailable(_) => (Outcome::Failed, op, ReplyClass::Unavailable, None),
        Reply::NotSent(_) => (Outcome::Failed, op, ReplyClass::NotSent, None),
        Reply::Lost(_) if is_get => (Outcome::Failed, op, ReplyClass::Lost, None),
        Reply::Lost(_) => (Outcome::Indeterminate, op, ReplyClass::Lost, None),
        other => {
            let note = Some(format!("{op:?}: {other:?}"));
            // An answer we cannot read may still stand for a write that took effect.
            let outcome = if is_get {
                Outcome::Failed
            } else {
                Outcome::Indeterminate
            };
            (outcome, op, ReplyClass::Unexpected, note)
        }
    }
}
