//! Moving hot rows into Parquet files: the flush of one table (`table`),
//! the back-off of scopes that keep failing, and the [`Flusher`] service
//! that runs flushes one table at a time.
//!
//! Naming: a table's `FlushPolicy` says when (the scheduler decides); a
//! flush moves every scope of one table; each scope ends in one commit, one
//! small RocksDB batch that adds the manifest entry whose `flushed_through`
//! hides exactly the hot versions the flush read. Those versions are
//! deleted afterwards, in bounded batches (`chunked_delete`). See
//! ../shared/DESIGN.md's flush protocol and docs/ARCHITECTURE.md.

mod backoff;
mod cancel;
mod chunked_delete;
mod hooks;
mod stats;
mod table;

pub use backoff::ScopeBackoff;
pub use cancel::CancelFlag;
pub use hooks::{FailPoint, FlushHooks, FlushOptions};
pub use stats::{FlushStats, ScopeFailure};

use crate::catalog::TableDef;
use crate::cold::Storages;
use crate::error::Result;
use crate::hot::HotTier;
use kalamdb_commons::Clock;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Runs flushes: owns the scopes' back-off and the per-table flush locks.
pub struct Flusher {
    hot: Arc<HotTier>,
    storages: Arc<Storages>,
    backoff: ScopeBackoff,
    clock: Arc<dyn Clock>,
    /// Held while a table is being flushed, by jobs and direct flushes
    /// alike, and by DROP while it removes the table.
    table_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Hooks every job's flush runs with (tests: pause or fail jobs).
    hooks: Mutex<FlushHooks>,
}

impl std::fmt::Debug for Flusher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flusher").finish_non_exhaustive()
    }
}

impl Flusher {
    pub fn new(
        hot: Arc<HotTier>,
        storages: Arc<Storages>,
        backoff: ScopeBackoff,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            hot,
            storages,
            backoff,
            clock,
            table_locks: Mutex::new(HashMap::new()),
            hooks: Mutex::new(FlushHooks::default()),
        }
    }

    /// Scopes left out of flushes after a permanent failure.
    pub fn backoff(&self) -> &ScopeBackoff {
        &self.backoff
    }

    /// The lock that makes flushes of one table run one at a time.
    pub fn table_lock(&self, table_uid: u64) -> Arc<tokio::sync::Mutex<()>> {
        self.table_locks
            .lock()
            .entry(table_uid)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// A dropped table: forgets its failing scopes. Its flush lock stays:
    /// DROP holds it while it calls this, and a flush that queued behind
    /// it must find the same lock, not a fresh one (uids are never reused,
    /// so the entry is only a few bytes).
    pub fn forget_table(&self, table_uid: u64) {
        self.backoff.forget_table(table_uid);
    }

    /// Sets the hooks that jobs started from now on run their flush with.
    /// For tests: pausing a job at a scope boundary, failing it at a step.
    #[cfg(feature = "test-support")]
    pub fn set_hooks(&self, hooks: FlushHooks) {
        *self.hooks.lock() = hooks;
    }

    /// The hooks jobs run their flush with (none outside tests).
    pub fn job_hooks(&self) -> FlushHooks {
        self.hooks.lock().clone()
    }

    /// Flushes `def` now, waiting for it. Flushes of one table never overlap
    /// (two flushes must not read the same hot versions), whether they come
    /// from jobs or from direct calls.
    pub async fn flush_now(
        self: &Arc<Self>,
        def: Arc<TableDef>,
        options: FlushOptions,
        hooks: FlushHooks,
    ) -> Result<FlushStats> {
        let table_lock = self.table_lock(def.uid);
        let _flushing = table_lock.lock().await;
        let flusher = self.clone();
        // The caller's span (a job's `job_id`) follows onto the thread.
        let span = tracing::Span::current();
        let handle = tokio::runtime::Handle::current();
        crate::background::run("kalamdb-flush", move || {
            let _entered = span.enter();
            let cold = flusher.storages.for_table(&def)?;
            table::flush_table(&flusher, &cold, &handle, &def, &options, &hooks)
        })
        .await
    }
}

#[cfg(test)]
mod tests;
