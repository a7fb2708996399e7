//! The admin routes (DESIGN §12, §14): `GET /admin/config` lists every setting with its value
//! now (secrets redacted) and whether it can change at runtime; `PUT /admin/config` applies a
//! JSON object of `MOSTDB_*` names to values at once on every core, all or nothing, through
//! `config::Live` (the parsers of start-up); `?scope=cluster` applies it here, then on every
//! peer ([`fanout`]). Access: the bearer token `MOSTDB_ADMIN_TOKEN` when set (constant-time
//! compare), else clients on loopback only; the API key, when enabled, is checked before.
//!
//! Must not import `storage` or `server`.

mod fanout;

use std::net::IpAddr;

use crate::config::{Change, ChangeError, Live, CHANGE_NAMES_MAX};
use crate::http::{Method, Request, Response};

use super::json::write_go_string;
use super::{constant_time_eq, method_not_allowed, query, Api};

/// The largest body of `PUT /admin/config` (a few dozen settings).
pub const ADMIN_BODY_BYTES_MAX: usize = 64 * 1024;
/// The longest value of one setting in a change.
const ADMIN_VALUE_BYTES_MAX: usize = 4096;
pub const ALLOW_ADMIN: &str = "GET, PUT, OPTIONS";
/// The path of the settings route (outside the context path, like `/cluster`).
pub const ADMIN_CONFIG_PATH: &str = "/admin/config";

impl Api {
    /// `GET|PUT /admin/config`, once the API key (if enabled) has been checked.
    pub(super) async fn admin_config(&self, req: &Request<'_>, from: IpAddr) -> Response {
        let Some(live) = self.live() else {
            return envelope_error(503, "NotReady", "no runtime settings on this node");
        };
        if let Err(refused) = admin_access(&live, req, from) {
            return refused;
        }
        match req.method {
            Method::Get | Method::Head => Response::json(200, encode_states(&live)),
            Method::Put => self.put_config(&live, req, from).await,
            _ => method_not_allowed(ALLOW_ADMIN),
        }
    }

    async fn put_config(&self, live: &Live, req: &Request<'_>, from: IpAddr) -> Response {
        let changes = match parse_changes(req.body) {
            Ok(changes) => changes,
            Err(detail) => return envelope_error(400, "BadRequest", &detail),
        };
        let local = apply(live, &changes);
        let names: Vec<&str> = changes.iter().map(|c| c.name.as_str()).collect();
        self.audit_admin("admin_config", from, local.status, &names.join(","))
            .await;
        let cluster = query::param(req.query.unwrap_or(""), "scope").as_deref() == Some("cluster");
        if !cluster || local.status != 200 {
            return Response::json(local.status, local.body);
        }
        let nodes =
            fanout::put_everywhere(&self.config.peer_urls, req, self.config.peer_tls.clone()).await;
        let all_ok = nodes.iter().all(|node| node.status == 200);
        let mut out = Vec::with_capacity(256);
        let (code, head): (u16, &[u8]) = match all_ok {
            true => (200, b"{\"code\":200,\"success\":true,\"result\":{\"nodes\":["),
            false => (
                502,
                b"{\"code\":502,\"message\":\"PartlyApplied\",\"success\":false,\"result\":{\"nodes\":[",
            ),
        };
        out.extend_from_slice(head);
        out.extend_from_slice(b"{\"url\":\"self\",\"status\":200,\"body\":");
        out.extend_from_slice(&local.body);
        out.push(b'}');
        for node in &nodes {
            out.extend_from_slice(b",{\"url\":");
            write_go_string(&mut out, node.url.as_bytes());
            out.extend_from_slice(format!(",\"status\":{},\"body\":", node.status).as_bytes());
            out.extend_from_slice(&node.body);
            out.push(b'}');
        }
        out.extend_from_slice(b"]}}");
        Response::json(code, out)
    }
}

/// Who may use the admin routes: the bearer token when one is set, else loopback only.
pub(super) fn admin_access(live: &Live, req: &Request<'_>, from: IpAddr) -> Result<(), Response> {
    let token = live.current().admin_token.clone();
    if token.is_empty() {
        return match from.is_loopback() {
            true => Ok(()),
            false => Err(envelope_error(
                403,
                "Forbidden",
                "admin routes answer only clients on loopback while MOSTDB_ADMIN_TOKEN is not set",
            )),
        };
    }
    let Some(given) = req.header("authorization") else {
        return Err(envelope_error(
            401,
            "Unauthorized",
            "admin routes need Authorization: Bearer <MOSTDB_ADMIN_TOKEN>",
        ));
    };
    let bearer = given.strip_prefix(b"Bearer ").unwrap_or(b"");
    match constant_time_eq(bearer, token.as_bytes()) {
        true => Ok(()),
        false => Err(envelope_error(403, "Forbidden", "wrong admin token")),
    }
}

/// The settings of a body: a flat JSON object of names to strings (numbers and booleans are
/// taken as their text); the problem otherwise.
fn parse_changes(body: &[u8]) -> Result<Vec<Change>, String> {
    if body.len() > ADMIN_BODY_BYTES_MAX {
        return Err(format!("body larger than {ADMIN_BODY_BYTES_MAX} bytes"));
    }
    // serde_json bounds its own nesting (128 levels): a deep body is an error, not a crash.
    let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
        .map_err(|_| "expected a JSON object of MOSTDB_* names to values".to_string())?;
    if object.is_empty() || object.len() > CHANGE_NAMES_MAX {
        return Err(format!("name 1 to {CHANGE_NAMES_MAX} settings"));
    }
    object
        .into_iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                _ => return Err(format!("{name}: expected a string")),
            };
            if value.len() > ADMIN_VALUE_BYTES_MAX {
                return Err(format!(
                    "{name}: value longer than {ADMIN_VALUE_BYTES_MAX} bytes"
                ));
            }
            Ok(Change { name, value })
        })
        .collect()
}

/// One node's answer to a change: its status and JSON body.
pub struct Outcome {
    pub status: u16,
    pub body: Vec<u8>,
}

fn apply(live: &Live, changes: &[Change]) -> Outcome {
    let (status, body) = match live.apply(changes) {
        Ok(names) => {
            tracing::warn!(changed = ?names, "settings changed at runtime");
            let mut out = b"{\"code\":200,\"success\":true,\"result\":{\"changed\":".to_vec();
            write_names(&mut out, names.iter().copied());
            out.extend_from_slice(format!(",\"generation\":{}}}}}", live.generation()).as_bytes());
            (200, out)
        }
        Err(ChangeError::RestartRequired { names, detail }) => {
            let names = names.iter().map(String::as_str);
            let response = envelope_body(409, "RestartRequired", &detail, Some(names));
            (409, response)
        }
        Err(ChangeError::Failed(detail)) => {
            tracing::error!(%detail, "a settings change could not be prepared");
            (500, envelope_body(500, "InternalError", &detail, NO_NAMES))
        }
        Err(err @ ChangeError::Unknown(_)) | Err(err @ ChangeError::Invalid(_)) => (
            400,
            envelope_body(400, "InvalidSetting", &err.to_string(), NO_NAMES),
        ),
    };
    Outcome { status, body }
}

/// `{"code":200,"success":true,"result":{"NAME":{"value":"…","reloadable":true},…}}`.
fn encode_states(live: &Live) -> Vec<u8> {
    let mut out = b"{\"code\":200,\"success\":true,\"result\":{".to_vec();
    for (i, state) in live.states().iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_go_string(&mut out, state.name.as_bytes());
        out.extend_from_slice(b":{\"value\":");
        write_go_string(&mut out, state.value.as_bytes());
        out.extend_from_slice(format!(",\"reloadable\":{}}}", state.reloadable).as_bytes());
    }
    out.extend_from_slice(b"}}");
    out
}

fn write_names<'a>(out: &mut Vec<u8>, names: impl Iterator<Item = &'a str>) {
    out.push(b'[');
    for (i, name) in names.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_go_string(out, name.as_bytes());
    }
    out.push(b']');
}

const NO_NAMES: Option<std::iter::Empty<&str>> = None;

/// `{"code":C,"message":M,"success":false,"detail":D[,"settings":[…]]}`.
fn envelope_body<'a>(
    code: u16,
    message: &str,
    detail: &str,
    settings: Option<impl Iterator<Item = &'a str>>,
) -> Vec<u8> {
    let mut out = format!("{{\"code\":{code},\"message\":").into_bytes();
    write_go_string(&mut out, message.as_bytes());
    out.extend_from_slice(b",\"success\":false,\"detail\":");
    write_go_string(&mut out, detail.as_bytes());
    if let Some(names) = settings {
        out.extend_from_slice(b",\"settings\":");
        write_names(&mut out, names);
    }
    out.push(b'}');
    out
}

/// An error in the admin routes' envelope: `{"code":C,"message":M,"success":false,"detail":D}`
/// with HTTP status C.
pub(super) fn envelope_error(code: u16, message: &str, detail: &str) -> Response {
    Response::json(code, envelope_body(code, message, detail, NO_NAMES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_bounded_and_must_be_flat_objects_of_scalars() {
        assert!(parse_changes(br#"{"MOSTDB_LOG_LEVEL":"debug","MOSTDB_TIMEOUT_MS":2000}"#).is_ok());
        for bad in [
            &b"[1]"[..],
            b"{}",
            b"not json",
            br#"{"MOSTDB_LOG_LEVEL":{"x":1}}"#,
            br#"{"MOSTDB_LOG_LEVEL":null}"#,
        ] {
            assert!(
                parse_changes(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{{\"a\":{}}}", "[".repeat(100_000));
        assert!(parse_changes(deep.as_bytes()).is_err());
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(ADMIN_BODY_BYTES_MAX));
        assert!(parse_changes(big.as_bytes()).is_err());
        let many: Vec<String> = (0..=CHANGE_NAMES_MAX)
            .map(|i| format!("\"K{i}\":\"1\""))
            .collect();
        assert!(parse_changes(format!("{{{}}}", many.join(",")).as_bytes()).is_err());
    }
}
