//! The audit log (`system.audit_log`): who changed the catalog, users,
//! storages and jobs, who acted as whom, and who logged in or failed to.
//!
//! Entries live in the `meta` column family, oldest first. The log keeps at
//! most `max_entries`; older entries are dropped in chunks (a tenth of the
//! bound at a time), so a busy server neither grows it without end nor
//! scans it on every write.

use crate::error::Result;
use kalamdb_commons::Clock;
use kalamdb_store::{meta_keys, HotStore};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tracing::warn;

/// One audited action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub audit_id: String,
    /// Microseconds since the epoch.
    pub timestamp: i64,
    /// Who did it (for `EXECUTE AS USER`, the caller, not the user acted as).
    pub actor_user_id: String,
    /// The statement kind (`CREATE TABLE`, `DROP USER`, ...), `LOGIN` or
    /// `LOGIN FAILED`.
    pub action: String,
    /// What it acted on: a table, user, namespace, storage or job.
    pub target: String,
    /// JSON: `{"success": bool}` and the error when it failed.
    pub details: Option<String>,
    pub ip_address: Option<String>,
    /// The user acted as, for `EXECUTE AS USER`.
    pub subject_user_id: Option<String>,
}

/// What a caller records; the log adds the id and the time.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent {
    pub actor: String,
    pub action: String,
    pub target: String,
    pub error: Option<String>,
    pub ip_address: Option<String>,
    pub subject: Option<String>,
}

pub struct AuditLog {
    store: Arc<HotStore>,
    clock: Arc<dyn Clock>,
    max_entries: usize,
    /// Entries stored (approximately: counted at start, then kept).
    count: AtomicU64,
    /// Orders entries of the same microsecond.
    next: AtomicU64,
    /// One pruning at a time.
    prune: Mutex<()>,
}

impl AuditLog {
    pub fn open(store: Arc<HotStore>, clock: Arc<dyn Clock>, max_entries: usize) -> Result<Self> {
        let count = store.meta_scan(meta_keys::AUDIT)?.len() as u64;
        Ok(Self {
            store,
            clock,
            max_entries: max_entries.max(10),
            count: AtomicU64::new(count),
            next: AtomicU64::new(0),
            prune: Mutex::new(()),
        })
    }

    /// Appends one entry. A failure to write is logged, never returned: the
    /// action itself already happened (or already failed) and its caller's
    /// answer must not change because the log could not be written.
    pub fn record(&self, event: AuditEvent) {
        let timestamp = self.clock.now_micros();
        let details = match &event.error {
            None => serde_json::json!({ "success": true }),
            Some(error) => serde_json::json!({ "success": false, "error": error }),
        };
        let entry = AuditEntry {
            audit_id: crate::ids::ulid(),
            timestamp,
            actor_user_id: event.actor,
            action: event.action,
            target: event.target,
            details: Some(details.to_string()),
            ip_address: event.ip_address,
            subject_user_id: event.subject,
        };
        let key = meta_keys::audit_entry(timestamp, self.next.fetch_add(1, Ordering::Relaxed));
        let result = serde_json::to_vec(&entry)
            .map_err(crate::error::CoreError::from)
            .and_then(|value| {
                let mut batch = self.store.batch();
                batch.put_meta(&key, &value);
                Ok(self.store.write(batch)?)
            });
        if let Err(e) = result {
            warn!(action = %entry.action, error = %e, "cannot write an audit log entry");
            return;
        }
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        if count > (self.max_entries + self.max_entries / 10) as u64 {
            if let Err(e) = self.prune() {
                warn!(error = %e, "cannot prune the audit log");
            }
        }
    }

    /// Drops the oldest entries down to `max_entries`.
    fn prune(&self) -> Result<()> {
        let Ok(_one) = self.prune.try_lock() else {
            return Ok(());
        };
        let entries = self.store.meta_scan(meta_keys::AUDIT)?;
        let excess = entries.len().saturating_sub(self.max_entries);
        if excess > 0 {
            let mut batch = self.store.batch();
            for (key, _) in &entries[..excess] {
                batch.delete_meta(key);
            }
            self.store.write(batch)?;
        }
        self.count
            .store((entries.len() - excess) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Every stored entry, oldest first.
    pub fn entries(&self) -> Result<Vec<AuditEntry>> {
        self.store
            .meta_scan(meta_keys::AUDIT)?
            .into_iter()
            .map(|(_, raw)| Ok(serde_json::from_slice(&raw)?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_commons::ManualClock;

    fn open(max: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(HotStore::open(dir.path(), Default::default()).unwrap());
        let log = AuditLog::open(store, Arc::new(ManualClock::new(1_000)), max).unwrap();
        (dir, log)
    }

    fn event(target: &str) -> AuditEvent {
        AuditEvent {
            actor: "root".into(),
            action: "CREATE TABLE".into(),
            target: target.into(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_keep_their_order_within_one_microsecond() {
        let (_dir, log) = open(100);
        for i in 0..5 {
            log.record(event(&format!("app.t{i}")));
        }
        let targets: Vec<_> = log
            .entries()
            .unwrap()
            .into_iter()
            .map(|e| e.target)
            .collect();
        assert_eq!(targets, ["app.t0", "app.t1", "app.t2", "app.t3", "app.t4"]);
    }

    #[test]
    fn the_log_is_bounded_and_keeps_the_newest() {
        let (_dir, log) = open(10);
        for i in 0..100 {
            log.record(event(&format!("t{i}")));
        }
        let entries = log.entries().unwrap();
        assert!(entries.len() <= 11, "{} entries kept", entries.len());
        assert_eq!(entries.last().unwrap().target, "t99");
    }

    #[test]
    fn a_failure_is_recorded_with_its_error() {
        let (_dir, log) = open(10);
        log.record(AuditEvent {
            error: Some("permission denied".into()),
            ..event("app.t")
        });
        let details = log.entries().unwrap()[0].details.clone().unwrap();
        let details: serde_json::Value = serde_json::from_str(&details).unwrap();
        assert_eq!(details["success"], false);
        assert_eq!(details["error"], "permission denied");
    }
}
