//! What the API tells the audit log (`crate::audit`): every write that got past its checks
//! (set, del: the key, the client, the outcome, the version, the duration), every admin action
//! (the names of the settings it changed, never their values) and every request refused for a
//! wrong or missing API key. Never a value or a credential. Nothing is done,
//! not even a copy of the key, when the audit log is off.

use std::net::IpAddr;
use std::time::Instant;

use super::{Api, Connection, Route};
use crate::audit::AuditRecord;
use crate::http::Request;
use crate::replication::{OpError, Version};

/// A write under way, as the audit log will need it.
pub(super) struct Pending {
    key: Vec<u8>,
    started: Instant,
}

impl Api {
    /// Starts auditing a write of `key` (`None` when the audit log is off).
    pub(super) fn audit_start(&self, key: &[u8]) -> Option<Pending> {
        self.config.audit.is_on().then(|| Pending {
            key: key.to_vec(),
            started: Instant::now(),
        })
    }

    /// Records how the write ended.
    pub(super) async fn audit_write(
        &self,
        op: &'static str,
        pending: Option<Pending>,
        conn: &Connection,
        done: &Result<Version, OpError>,
    ) {
        if pending.is_none() {
            return;
        }
        let (outcome, version) = match done {
            Ok(version) => ("ok", Some(*version)),
            Err(err) => (error_outcome(err), None),
        };
        self.audit_ended(op, pending, conn, (outcome, version))
            .await;
    }

    /// Records how a write ended: its outcome's name and the version it wrote (or attempted,
    /// for an indeterminate CAS).
    pub(super) async fn audit_ended(
        &self,
        op: &'static str,
        pending: Option<Pending>,
        conn: &Connection,
        (outcome, version): (&'static str, Option<Version>),
    ) {
        let Some(pending) = pending else {
            return;
        };
        let record = AuditRecord {
            op,
            key: Some(&pending.key),
            client: Some(conn.from),
            outcome,
            version: version.map(|v| (v.hlc, v.origin)),
            duration: Some(pending.started.elapsed()),
            detail: None,
        };
        self.config.audit.record(record).await;
    }

    /// Records an admin action: `names` (never values) and how it ended (its HTTP status).
    pub(super) async fn audit_admin(
        &self,
        op: &'static str,
        from: IpAddr,
        status: u16,
        names: &str,
    ) {
        let outcome = match status {
            200 => "ok",
            409 => "restart_required",
            400..=499 => "refused",
            _ => "error",
        };
        let record = AuditRecord {
            op,
            client: Some(from),
            outcome,
            detail: Some(names),
            ..AuditRecord::default()
        };
        self.config.audit.record(record).await;
    }

    /// Records a request refused for its API key.
    pub(super) async fn audit_refused(&self, req: &Request<'_>, conn: &Connection) {
        if !self.config.audit.is_on() {
            return;
        }
        // The route's name as the metrics label it (`other`: no such path).
        let op = Route::label(self.route(req.path).map(|(r, _)| r)).label();
        let record = AuditRecord {
            op,
            client: Some(conn.from),
            outcome: "unauthorized",
            ..AuditRecord::default()
        };
        self.config.audit.record(record).await;
    }
}

/// A failed write's outcome as the audit log names it.
pub(super) fn error_outcome(err: &OpError) -> &'static str {
    match err {
        OpError::NotMost {
            indeterminate: false,
        } => "not_most",
        OpError::NotMost {
            indeterminate: true,
        } => "indeterminate",
        OpError::Busy => "busy",
        OpError::NoSpace => "no_space",
        OpError::Unsupported(_) => "unsupported",
        OpError::Storage(_) => "error",
    }
}
