//! How each table has been read since the server started: scans of whole
//! scopes and primary-key lookups, as PostgreSQL counts `seq_scan` and
//! `idx_scan`. `SHOW STATS FOR TABLE` shows them, so an application can see
//! whether its queries seek.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
struct TableReads {
    scope_scans: AtomicU64,
    key_lookups: AtomicU64,
}

/// Reads by table uid; a dropped table's entry is removed with it.
#[derive(Debug, Default)]
pub struct ReadCounts {
    tables: RwLock<HashMap<u64, Arc<TableReads>>>,
}

impl ReadCounts {
    /// Counts one read of table `uid`: a key lookup (`keyed`) or a scan.
    pub fn record(&self, uid: u64, keyed: bool) {
        let found = self.tables.read().get(&uid).cloned();
        let reads = match found {
            Some(reads) => reads,
            None => self.tables.write().entry(uid).or_default().clone(),
        };
        let counter = if keyed {
            &reads.key_lookups
        } else {
            &reads.scope_scans
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// (scope scans, key lookups) of table `uid`.
    pub fn of(&self, uid: u64) -> (u64, u64) {
        self.tables.read().get(&uid).map_or((0, 0), |r| {
            (
                r.scope_scans.load(Ordering::Relaxed),
                r.key_lookups.load(Ordering::Relaxed),
            )
        })
    }

    pub fn forget(&self, uid: u64) {
        self.tables.write().remove(&uid);
    }
}
