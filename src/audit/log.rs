//! The node's audit log as the rest of the node holds it: the current [`Audit`], replaced
//! when its settings change at runtime (`PUT /admin/config`, SIGHUP). A check of one atomic
//! when the log is off; when on, each record clones the current log's `Arc` under a read
//! lock. A replaced log stops taking records and drains on its own thread.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use super::{Audit, AuditOptions, AuditRecord, AuditStats};

pub struct AuditLog {
    on: AtomicBool,
    current: RwLock<Arc<Audit>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("current", &*self.current())
            .finish()
    }
}

impl AuditLog {
    pub fn new(audit: Audit) -> AuditLog {
        AuditLog {
            on: AtomicBool::new(audit.is_on()),
            current: RwLock::new(Arc::new(audit)),
        }
    }

    /// An audit log that records nothing.
    pub fn off() -> AuditLog {
        AuditLog::new(Audit::off())
    }

    fn current(&self) -> Arc<Audit> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    pub async fn record(&self, record: AuditRecord<'_>) {
        if self.is_on() {
            self.current().record(record).await;
        }
    }

    /// The file is reopened (SIGHUP, after logrotate moved it).
    pub fn reopen(&self) {
        self.current().reopen();
    }

    pub fn stats(&self) -> AuditStats {
        self.current().stats()
    }

    /// From now on records go to a log set up by `options` (a new file, or none). The old log
    /// writes what it had queued, then ends. Fails, changing nothing, when the file cannot be
    /// opened.
    pub fn reconfigure(&self, options: AuditOptions) -> std::io::Result<()> {
        let audit = Audit::open(options)?;
        let on = audit.is_on();
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(audit);
        self.on.store(on, Ordering::Relaxed);
        Ok(())
    }

    /// Stops taking records and waits until every queued one is written (at shutdown, once
    /// nothing else holds the log).
    pub fn close(&self) {
        self.on.store(false, Ordering::Relaxed);
        let old = {
            let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
            std::mem::replace(&mut *current, Arc::new(Audit::off()))
        };
        if let Ok(audit) = Arc::try_unwrap(old) {
            audit.close();
        }
    }
}
