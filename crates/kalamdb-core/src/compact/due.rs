//! Scopes that flushes found due for a compaction, for the scheduler.
//!
//! A flush knows how many files each scope it commits has, so it notes
//! the ones its table's policy says are due; the scheduler turns them into
//! jobs. No table's manifest is listed to find them, however many tables
//! and users there are. Kept in memory: after a restart the next flush of
//! a scope notes it again.

use kalamdb_store::ScopeKey;
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Default)]
pub struct Due {
    /// Table uid -> scopes (their key bytes).
    tables: Mutex<BTreeMap<u64, BTreeSet<Vec<u8>>>>,
}

impl Due {
    pub fn note(&self, table_uid: u64, scope: &ScopeKey) {
        self.tables
            .lock()
            .entry(table_uid)
            .or_default()
            .insert(scope.as_bytes().to_vec());
    }

    /// Tables with due scopes.
    pub fn tables(&self) -> Vec<u64> {
        self.tables.lock().keys().copied().collect()
    }

    /// Takes a table's due scopes (a job compacts them).
    pub fn take(&self, table_uid: u64) -> Vec<ScopeKey> {
        self.tables
            .lock()
            .remove(&table_uid)
            .unwrap_or_default()
            .into_iter()
            .map(|bytes| ScopeKey::from_key_prefix(&bytes))
            .collect()
    }

    pub fn forget_table(&self, table_uid: u64) {
        self.tables.lock().remove(&table_uid);
    }
}
