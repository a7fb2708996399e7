//! One audit record and its JSON line. Keys in clear are JSON strings (escaped by serde_json;
//! keys come from JSON strings, so they are UTF-8); hashed keys are the first 16 bytes of
//! HMAC-SHA256 under a key derived from the cluster secret, in hex: the same key hashes alike
//! on every node and across restarts, and cannot be reversed by trying keys without the secret.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How keys appear in the audit log (`MOSTDB_AUDIT_KEYS`).
#[derive(Clone, PartialEq, Eq)]
pub enum KeyMode {
    /// The key as the client sent it.
    Clear,
    /// A keyed hash of it, under this key.
    Hash([u8; 32]),
}

impl std::fmt::Debug for KeyMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyMode::Clear => f.write_str("Clear"),
            KeyMode::Hash(_) => f.write_str("Hash(<redacted>)"),
        }
    }
}

impl KeyMode {
    /// Hashed keys under a key derived from the cluster secret (its own label, so the audit
    /// hash reveals nothing about the peer handshake's use of the secret).
    pub fn hashed_with_secret(secret: &[u8]) -> KeyMode {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes a key of any length");
        mac.update(b"mostdb audit key hash v1");
        KeyMode::Hash(mac.finalize().into_bytes().into())
    }

    pub(super) fn hash(key: &[u8; 32], data: &[u8]) -> String {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
        mac.update(data);
        let digest = mac.finalize().into_bytes();
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What happened, as the audit log says it. Borrowed: encoded at once on the caller's core.
#[derive(Clone, Debug, Default)]
pub struct AuditRecord<'a> {
    /// The route's name (`set`, `del`, …) or the event's (`config`, `recovery`, …).
    pub op: &'static str,
    pub key: Option<&'a [u8]>,
    pub client: Option<IpAddr>,
    /// `ok`, `not_most`, `indeterminate`, `unauthorized`, `bad_request`, …
    pub outcome: &'a str,
    /// `(hlc, origin)` of the version written.
    pub version: Option<(u64, u64)>,
    pub duration: Option<Duration>,
    /// Names, never values (e.g. the settings an admin changed).
    pub detail: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct Line<'a> {
    time: String,
    node: String,
    op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<String>,
    outcome: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<Version>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct Version {
    hlc: u64,
    origin: u64,
}

impl AuditRecord<'_> {
    /// The record as one JSON line (with its `\n`).
    pub fn encode(&self, node_id: u64, keys: &KeyMode) -> Vec<u8> {
        let (key, key_hash) = match (self.key, keys) {
            (None, _) => (None, None),
            (Some(k), KeyMode::Clear) => (Some(String::from_utf8_lossy(k)), None),
            (Some(k), KeyMode::Hash(secret)) => (None, Some(KeyMode::hash(secret, k))),
        };
        let line = Line {
            time: rfc3339_now(),
            node: format!("{node_id:016x}"),
            op: self.op,
            key,
            key_hash,
            client: self.client.map(|ip| ip.to_string()),
            outcome: self.outcome,
            version: self.version.map(|(hlc, origin)| Version { hlc, origin }),
            duration_us: self.duration.map(|d| d.as_micros() as u64),
            detail: self.detail,
        };
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        out
    }
}

/// A gap marker: `dropped` records were lost before this line (the queue was full).
pub(super) fn gap(node_id: u64, dropped: u64) -> Vec<u8> {
    let mut out = format!(
        r#"{{"time":"{}","node":"{node_id:016x}","op":"gap","outcome":"dropped","dropped":{dropped}}}"#,
        rfc3339_now()
    )
    .into_bytes();
    out.push(b'\n');
    out
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
fn rfc3339_now() -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    rfc3339(ms)
}

/// `unix_ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian, from the civil-from-days
/// algorithm of H. Hinnant).
pub(super) fn rfc3339(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        unix_ms % 1000
    )
}
