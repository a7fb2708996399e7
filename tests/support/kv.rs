//! The key-value client of the cluster tests: one keep-alive connection per node, reopened
//! after errors, and every answer (or its absence) sorted into what it tells about the
//! operation's fate, for the fault test's history and the workloads. Optionally it pads the
//! values of some keys on the wire ([`Padding`]) so that they are big, and the history still
//! names each by its short value.
//!
//! Must not import the `mostdb` library.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use super::history::{splitmix64, CasAnswer, Expect, KvOp, Outcome};
use super::{post, request, Client, ReadError};

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
    /// A listing's page: its items (key, value) in order, and the cursor of the next page if
    /// there is more.
    Page {
        items: Vec<(String, String)>,
        cursor: Option<String>,
    },
}

/// Values of the keys under `prefix` go over the wire padded, `percent` of them (chosen by the
/// value, so every request and answer agrees) to `bytes` bytes: `{value}~xxx…`. The client
/// strips the padding from what it reads; a value of such a key that comes back with other
/// padding is read as `corrupt:{value}`, a value nobody wrote.
#[derive(Clone, Debug)]
pub struct Padding {
    pub prefix: &'static str,
    pub percent: u64,
    pub bytes: usize,
}

impl Padding {
    /// Whether `value` of a key under the prefix goes out padded.
    fn is_big(&self, value: &str) -> bool {
        let h = value.bytes().fold(0xCBF2_9CE4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
        });
        splitmix64(h) % 100 < self.percent
    }

    /// `value` as it goes out for `key`.
    pub fn wire(&self, key: &str, value: &str) -> String {
        if !key.starts_with(self.prefix) || !self.is_big(value) {
            return value.to_string();
        }
        let pad = self.bytes.saturating_sub(value.len() + 1);
        let mut out = String::with_capacity(value.len() + 1 + pad);
        out.push_str(value);
        out.push('~');
        out.extend(std::iter::repeat_n('x', pad));
        out
    }

    /// The value `wire` made `value` from (see the type's doc).
    pub fn unwire(&self, key: &str, value: String) -> String {
        if !key.starts_with(self.prefix) {
            return value;
        }
        let (name, pad) = value.split_once('~').unwrap_or((value.as_str(), ""));
        let padded =
            value.len() == self.bytes.max(name.len() + 1) && pad.bytes().all(|b| b == b'x');
        match (self.is_big(name), value.contains('~')) {
            (false, false) => value,
            (true, true) if padded => name.to_string(),
            _ => format!("corrupt:{}", value.chars().take(64).collect::<String>()),
        }
    }
}

/// A client of every node, with one keep-alive connection per node, reopened after errors.
pub struct KvClient {
    addrs: Vec<SocketAddr>,
    conns: Vec<Option<Client>>,
    io_timeout: Duration,
    padding: Option<Padding>,
}

impl KvClient {
    /// `io_timeout`: how long one request waits for its answer before counting as lost.
    pub fn new(addrs: Vec<SocketAddr>, io_timeout: Duration) -> KvClient {
        let conns = addrs.iter().map(|_| None).collect();
        KvClient {
            addrs,
            conns,
            io_timeout,
            padding: None,
        }
    }

    /// The same client, padding values as `padding` says.
    pub fn padded(mut self, padding: Option<Padding>) -> KvClient {
        self.padding = padding;
        self
    }

    fn wire(&self, key: &str, value: &str) -> String {
        match &self.padding {
            Some(p) => p.wire(key, value),
            None => value.to_string(),
        }
    }

    fn unwire(&self, key: &str, value: String) -> String {
        match &self.padding {
            Some(p) => p.unwire(key, value),
            None => value,
        }
    }

    /// `reply` with the values it carries unpadded.
    fn unpad(&self, key: &str, reply: Reply) -> Reply {
        match reply {
            Reply::Value(Some(v)) => Reply::Value(Some(self.unwire(key, v))),
            Reply::CompareFailed(Some(v)) => Reply::CompareFailed(Some(self.unwire(key, v))),
            Reply::Page { items, cursor } => Reply::Page {
                items: items
                    .into_iter()
                    .map(|(k, v)| {
                        let v = self.unwire(&k, v);
                        (k, v)
                    })
                    .collect(),
                cursor,
            },
            other => other,
        }
    }

    pub fn set(&mut self, node: usize, key: &str, value: &str) -> Reply {
        let value = self.wire(key, value);
        let body = serde_json::json!({ "key": key, "value": value }).to_string();
        self.call(node, "/mostdb/set", &body)
    }

    pub fn del(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key }).to_string();
        self.call(node, "/mostdb/del", &body)
    }

    pub fn get(&mut self, node: usize, key: &str) -> Reply {
        let body = serde_json::json!({ "key": key }).to_string();
        let reply = self.call(node, "/mostdb/get", &body);
        self.unpad(key, reply)
    }

    /// `GET /mostdb/list?{query}` (`query` already percent-encoded): [`Reply::Page`], or any
    /// answer a read can have.
    pub fn list(&mut self, node: usize, query: &str) -> Reply {
        let req = request("GET", &format!("/mostdb/list?{query}"), &[], b"");
        let reply = self.send(node, &req, classify_list);
        self.unpad("", reply)
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
            Expect::Value(v) => serde_json::json!({ "value": self.wire(key, v) }),
        };
        let new = new.map(|v| self.wire(key, v));
        let reply = self.cas_json(node, key, expect, new.as_deref());
        self.unpad(key, reply)
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

    /// One POST; the answer is sorted by `classify` (each route's success says other things).
    fn call_as(
        &mut self,
        node: usize,
        path: &str,
        body: &str,
        classify: fn(u16, &[u8]) -> Reply,
    ) -> Reply {
        self.send(node, &post(path, body.as_bytes()), classify)
    }

    /// One request (`req`: its bytes), its answer sorted by `classify`.
    fn send(&mut self, node: usize, req: &[u8], classify: fn(u16, &[u8]) -> Reply) -> Reply {
        let mut client = match self.conns[node].take().filter(is_open) {
            Some(c) => c,
            None => match self.connect(node) {
                Ok(c) => c,
                Err(e) => return Reply::NotSent(e),
            },
        };
        if let Err(e) = client.stream.write_all(req) {
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

/// Sorts a listing's answer: [`Reply::Page`], or any answer a read can have.
pub fn classify_list(status: u16, body: &[u8]) -> Reply {
    let v = serde_json::from_slice::<serde_json::Value>(body).ok();
    let Some(v) = v.filter(|v| status == 200 && v["success"] == true) else {
        return classify(status, body);
    };
    let result = &v["result"];
    let item =
        |i: &serde_json::Value| Some((i["key"].as_str()?.into(), i["value"].as_str()?.into()));
    let items: Option<Vec<(String, String)>> = result["items"]
        .as_array()
        .and_then(|items| items.iter().map(item).collect());
    let cursor = result["cursor"].as_str().map(String::from);
    match (items, result["more"].as_bool()) {
        (Some(items), Some(more)) if more == cursor.is_some() => Reply::Page { items, cursor },
        _ => Reply::Unexpected(format!("not a page: {v}")),
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
