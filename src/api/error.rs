//! `ApiError`: the one error type that reaches clients. It knows its HTTP status, a stable
//! machine-readable code, and the original API's JSON envelope
//! (`{"code":500,"message":"NotMost","success":false}`).

use crate::http::Response;

use super::json::write_go_string;

/// Everything a client can be told went wrong with a data request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The original's "参数有误": the body is not a JSON object, or the key is missing,
    /// empty or not a string. `detail` is set only for what the original accepted (a
    /// non-string value) or did not limit (sizes), so the original's cases stay byte-exact.
    BadParam {
        detail: Option<&'static str>,
    },
    NotFound,
    /// Fewer than a majority agreed. `indeterminate`: the write may or may not take effect.
    NotMost {
        indeterminate: bool,
    },
    Unauthorized,
    Forbidden {
        detail: &'static str,
    },
    /// The store is behind on flushing; nothing was applied. Retry later.
    Busy,
    /// The node is starting, recovering or stopping.
    NotReady,
    /// Free disk space is below `MOSTDB_DISK_RESERVE_BYTES`: the write was refused, nothing
    /// applied. Reads are still served. Retry once space is freed.
    NoSpace,
    /// The node serves, but not everything: `/readyz` says what is missing (`message`, e.g.
    /// `NoSpace`) and why (`detail`).
    Degraded {
        message: &'static str,
        detail: &'static str,
    },
    /// A storage fault on this node; nothing was applied.
    Internal,
    /// A CAS whose compare failed: `result` is the JSON object of the state it found
    /// (`{"key":…,"value":…,"version":…}`, no value when absent). Nothing was applied.
    CompareFailed {
        result: Vec<u8>,
    },
    /// A CAS whose outcome is unknown: it may still take effect, only at `version` (the
    /// opaque version string a later read would report).
    IndeterminateAt {
        version: String,
    },
    /// The cluster cannot do this (a member runs an older mostdb); nothing was tried.
    Unsupported {
        detail: &'static str,
    },
}

impl ApiError {
    /// The HTTP status: the original answers 200 for every data-op outcome, and so do we;
    /// what the original never had gets its proper status.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::BadParam { .. }
            | ApiError::NotFound
            | ApiError::NotMost { .. }
            | ApiError::CompareFailed { .. }
            | ApiError::IndeterminateAt { .. } => 200,
            ApiError::Unsupported { .. } => 501,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden { .. } => 403,
            ApiError::Busy | ApiError::NotReady | ApiError::Degraded { .. } => 503,
            ApiError::NoSpace => 507,
            ApiError::Internal => 500,
        }
    }

    /// The envelope's `code` field.
    fn envelope_code(&self) -> u16 {
        match (self, self.status()) {
            (ApiError::CompareFailed { .. }, _) => 409,
            (_, 200) => 500,
            (_, other) => other,
        }
    }

    /// The envelope's `message`: stable, machine-readable (the original's words where it had them).
    pub fn message(&self) -> &'static str {
        match self {
            ApiError::BadParam { .. } => "参数有误",
            ApiError::NotFound => "NotFound",
            ApiError::NotMost { .. } | ApiError::IndeterminateAt { .. } => "NotMost",
            ApiError::CompareFailed { .. } => "CompareFailed",
            ApiError::Unsupported { .. } => "NotSupported",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden { .. } => "Forbidden",
            ApiError::Busy => "Busy",
            ApiError::NotReady => "NotReady",
            ApiError::NoSpace => "NoSpace",
            ApiError::Degraded { message, .. } => message,
            ApiError::Internal => "InternalError",
        }
    }

    fn detail(&self) -> Option<&'static str> {
        match self {
            ApiError::BadParam { detail } => *detail,
            ApiError::Forbidden { detail }
            | ApiError::Degraded { detail, .. }
            | ApiError::Unsupported { detail } => Some(detail),
            _ => None,
        }
    }

    /// `{"code":C,"message":M,"success":false[,"indeterminate":true[,"version":V]][,"detail":D]
    /// [,"result":R]}`.
    pub fn body(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96);
        out.extend_from_slice(b"{\"code\":");
        out.extend_from_slice(self.envelope_code().to_string().as_bytes());
        out.extend_from_slice(b",\"message\":");
        write_go_string(&mut out, self.message().as_bytes());
        out.extend_from_slice(b",\"success\":false");
        match self {
            ApiError::NotMost {
                indeterminate: true,
            } => out.extend_from_slice(b",\"indeterminate\":true"),
            ApiError::IndeterminateAt { version } => {
                out.extend_from_slice(b",\"indeterminate\":true,\"version\":");
                write_go_string(&mut out, version.as_bytes());
            }
            _ => {}
        }
        if let Some(detail) = self.detail() {
            out.extend_from_slice(b",\"detail\":");
            write_go_string(&mut out, detail.as_bytes());
        }
        if let ApiError::CompareFailed { result } = self {
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(result);
        }
        out.push(b'}');
        out
    }

    pub fn to_response(&self) -> Response {
        Response::json(self.status(), self.body())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(e: ApiError) -> String {
        String::from_utf8(e.body()).unwrap()
    }

    #[test]
    fn envelopes_match_the_original() {
        assert_eq!(
            body(ApiError::NotFound),
            r#"{"code":500,"message":"NotFound","success":false}"#
        );
        assert_eq!(
            body(ApiError::NotMost {
                indeterminate: false
            }),
            r#"{"code":500,"message":"NotMost","success":false}"#
        );
        let bad = ApiError::BadParam { detail: None };
        assert_eq!(
            body(bad.clone()),
            r#"{"code":500,"message":"参数有误","success":false}"#
        );
        assert_eq!(bad.body().len(), 53);
        assert_eq!(bad.status(), 200);
    }

    #[test]
    fn new_outcomes_extend_the_envelope() {
        assert_eq!(
            body(ApiError::NotMost {
                indeterminate: true
            }),
            r#"{"code":500,"message":"NotMost","success":false,"indeterminate":true}"#
        );
        assert_eq!(
            body(ApiError::BadParam {
                detail: Some("value must be a string")
            }),
            r#"{"code":500,"message":"参数有误","success":false,"detail":"value must be a string"}"#
        );
        assert_eq!(ApiError::Unauthorized.status(), 401);
        assert_eq!(
            body(ApiError::Unauthorized),
            r#"{"code":401,"message":"Unauthorized","success":false}"#
        );
        assert_eq!(ApiError::Busy.status(), 503);
        assert_eq!(ApiError::NoSpace.status(), 507);
        assert_eq!(
            body(ApiError::NoSpace),
            r#"{"code":507,"message":"NoSpace","success":false}"#
        );
    }
}
