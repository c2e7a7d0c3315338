//! What each table has buffered in the hot tier: versions and their bytes
//! since the last flush, and when it last flushed. Writes add, flushes
//! subtract exactly what they deleted; at start-up the counts are rebuilt
//! from the hot tier and the flush times from `meta`.

use crate::catalog::Catalog;
use crate::error::{CoreError, Result};
use kalamdb_store::{meta_keys, HotStore, ScopeKey};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct TableCounter {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    /// Microseconds: the end of the last completed flush (or, before any,
    /// the table's creation or the server's start).
    pub last_flush_at: AtomicI64,
}

#[derive(Debug, Default)]
pub struct HotCounters {
    tables: RwLock<HashMap<u64, Arc<TableCounter>>>,
    total_rows: AtomicU64,
    total_bytes: AtomicU64,
}

/// One table's figures at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffered {
    pub rows: u64,
    pub bytes: u64,
    pub last_flush_at: i64,
}

impl HotCounters {
    /// Counts every table's hot versions (one pass over the hot tier, keys
    /// and values not decoded) and reads the last flush times.
    pub fn rebuild(store: &HotStore, catalog: &Catalog, now: i64) -> Result<Self> {
        let counters = Self::default();
        let snapshot = store.snapshot();
        for def in catalog.tables() {
            let counter = counters.table(def.uid, now);
            let (mut rows, mut bytes) = (0u64, 0u64);
            snapshot.scan_versions(&ScopeKey::table_prefix(def.uid), &mut |v| {
                rows += 1;
                bytes += (v.key.len() + v.value.len()) as u64;
                Ok(true)
            })?;
            counters.add(def.uid, rows, bytes, now);
            let last = match store.meta_get(&meta_keys::last_flush(def.uid))? {
                Some(raw) => i64::from_be_bytes(
                    raw.as_slice()
                        .try_into()
                        .map_err(|_| CoreError::Corrupt("last-flush time"))?,
                ),
                // Never flushed: the interval counts from the table's creation.
                None => def.created_at.min(now),
            };
            counter.last_flush_at.store(last, Ordering::SeqCst);
        }
        Ok(counters)
    }

    fn table(&self, uid: u64, created_at: i64) -> Arc<TableCounter> {
        if let Some(counter) = self.tables.read().get(&uid) {
            return counter.clone();
        }
        self.tables
            .write()
            .entry(uid)
            .or_insert_with(|| {
                Arc::new(TableCounter {
                    last_flush_at: AtomicI64::new(created_at),
                    ..TableCounter::default()
                })
            })
            .clone()
    }

    /// Records a write of `rows` versions taking `bytes` at `now`; returns
    /// the table's buffered rows after it.
    pub fn add(&self, uid: u64, rows: u64, bytes: u64, now: i64) -> u64 {
        let counter = self.table(uid, now);
        self.total_rows.fetch_add(rows, Ordering::SeqCst);
        self.total_bytes.fetch_add(bytes, Ordering::SeqCst);
        counter.bytes.fetch_add(bytes, Ordering::SeqCst);
        counter.rows.fetch_add(rows, Ordering::SeqCst) + rows
    }

    /// Records versions a flush deleted.
    pub fn remove(&self, uid: u64, rows: u64, bytes: u64) {
        let Some(counter) = self.tables.read().get(&uid).cloned() else {
            return;
        };
        let rows = saturating_take(&counter.rows, rows);
        let bytes = saturating_take(&counter.bytes, bytes);
        saturating_take(&self.total_rows, rows);
        saturating_take(&self.total_bytes, bytes);
    }

    /// Records a completed flush: the interval starts again.
    pub fn flushed(&self, store: &HotStore, uid: u64, now: i64) -> Result<()> {
        self.table(uid, now)
            .last_flush_at
            .store(now, Ordering::SeqCst);
        let mut batch = store.batch();
        batch.put_meta(&meta_keys::last_flush(uid), &now.to_be_bytes());
        Ok(store.write(batch)?)
    }

    /// A new table: its interval starts now.
    pub fn created(&self, uid: u64, now: i64) {
        self.table(uid, now)
            .last_flush_at
            .store(now, Ordering::SeqCst);
    }

    /// A dropped table: its rows are gone.
    pub fn dropped(&self, store: &HotStore, uid: u64) -> Result<()> {
        if let Some(counter) = self.tables.write().remove(&uid) {
            saturating_take(&self.total_rows, counter.rows.load(Ordering::SeqCst));
            saturating_take(&self.total_bytes, counter.bytes.load(Ordering::SeqCst));
        }
        let mut batch = store.batch();
        batch.delete_meta(&meta_keys::last_flush(uid));
        Ok(store.write(batch)?)
    }

    pub fn get(&self, uid: u64) -> Option<Buffered> {
        self.tables.read().get(&uid).map(|c| Buffered {
            rows: c.rows.load(Ordering::SeqCst),
            bytes: c.bytes.load(Ordering::SeqCst),
            last_flush_at: c.last_flush_at.load(Ordering::SeqCst),
        })
    }

    #[cfg(feature = "test-support")]
    pub fn all(&self) -> Vec<(u64, Buffered)> {
        self.tables
            .read()
            .keys()
            .filter_map(|uid| self.get(*uid).map(|b| (*uid, b)))
            .collect()
    }

    pub fn total_rows(&self) -> u64 {
        self.total_rows.load(Ordering::SeqCst)
    }

    pub fn total_bytes(&self) -> u64 {
        self.total_bytes.load(Ordering::SeqCst)
    }
}

/// Subtracts up to `n`; returns what was subtracted.
fn saturating_take(counter: &AtomicU64, n: u64) -> u64 {
    let mut current = counter.load(Ordering::SeqCst);
    loop {
        let take = n.min(current);
        match counter.compare_exchange(current, current - take, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => return take,
            Err(actual) => current = actual,
        }
    }
}
