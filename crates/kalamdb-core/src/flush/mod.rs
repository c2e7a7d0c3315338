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
mod gate;
mod hooks;
mod lane;
mod stats;
mod table;

pub(crate) use table::write_manifest_copy;

pub use backoff::ScopeBackoff;
pub use cancel::CancelFlag;
pub use gate::ScopeGate;
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
    /// Scopes being flushed or compacted now: never both at once.
    pub(crate) gate: ScopeGate,
    /// Held while a table is being compacted, and by DROP (as the flush
    /// lock): compactions and flushes of one table run side by side.
    compact_locks: Mutex<HashMap<u64, Arc<tokio::sync::Mutex<()>>>>,
    /// Files compactions replaced, removed once no reader can need them.
    pub(crate) retired: crate::compact::Retired,
    /// Scopes whose file count calls for a compaction (found by flushes).
    pub(crate) due: crate::compact::Due,
    /// Hooks every job's compaction runs with (tests).
    compact_hooks: Mutex<crate::compact::CompactHooks>,
    /// Compaction thresholds of tables that set none, and the file size.
    compaction: crate::compact::CompactionPolicy,
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
        compaction: crate::compact::CompactionPolicy,
    ) -> Self {
        Self {
            hot,
            storages,
            backoff,
            clock,
            table_locks: Mutex::new(HashMap::new()),
            hooks: Mutex::new(FlushHooks::default()),
            gate: ScopeGate::default(),
            compact_locks: Mutex::new(HashMap::new()),
            retired: Default::default(),
            due: Default::default(),
            compact_hooks: Mutex::new(Default::default()),
            compaction,
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

    /// The lock that makes compactions of one table run one at a time
    /// (DROP takes it too).
    pub fn compact_lock(&self, table_uid: u64) -> Arc<tokio::sync::Mutex<()>> {
        self.compact_locks
            .lock()
            .entry(table_uid)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(())))
            .clone()
    }

    /// Sets the hooks that compaction jobs started from now on run with.
    #[cfg(feature = "test-support")]
    pub fn set_compact_hooks(&self, hooks: crate::compact::CompactHooks) {
        *self.compact_hooks.lock() = hooks;
    }

    /// The hooks compaction jobs run with (none outside tests).
    pub fn compact_job_hooks(&self) -> crate::compact::CompactHooks {
        self.compact_hooks.lock().clone()
    }

    /// The compaction policy of `def`: its own thresholds over the
    /// server's.
    pub(crate) fn compaction_policy(&self, def: &TableDef) -> crate::compact::CompactionPolicy {
        let mut policy = self.compaction;
        if let Some(files) = def.compaction.max_files {
            policy.max_files = files;
        }
        if let Some(small) = def.compaction.max_small_files {
            policy.max_small_files = small;
        }
        policy
    }

    /// The storages files are written to.
    pub(crate) fn storages(&self) -> &Arc<Storages> {
        &self.storages
    }

    pub(crate) fn hot(&self) -> &Arc<HotTier> {
        &self.hot
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A dropped table: forgets its failing scopes. Its flush lock stays:
    /// DROP holds it while it calls this, and a flush that queued behind
    /// it must find the same lock, not a fresh one (uids are never reused,
    /// so the entry is only a few bytes).
    pub fn forget_table(&self, table_uid: u64) {
        self.backoff.forget_table(table_uid);
        self.due.forget_table(table_uid);
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

    /// Compacts `def` now, waiting for it: `scopes` (all with files when
    /// `None`) as `mode` says. Compactions of one table never overlap;
    /// its flushes go on, each scope waiting only while that scope is
    /// being compacted.
    pub async fn compact_now(
        self: &Arc<Self>,
        def: Arc<TableDef>,
        scopes: Option<Vec<kalamdb_store::ScopeKey>>,
        mode: crate::compact::Mode,
        cancel: Option<Arc<CancelFlag>>,
        hooks: crate::compact::CompactHooks,
    ) -> Result<crate::compact::CompactStats> {
        let table_lock = self.compact_lock(def.uid);
        let _compacting = table_lock.lock().await;
        let flusher = self.clone();
        let span = tracing::Span::current();
        let handle = tokio::runtime::Handle::current();
        crate::background::run("kalamdb-compact", move || {
            let _entered = span.enter();
            let cold = flusher.storages.for_table(&def)?;
            crate::compact::compact_table(
                &flusher,
                &cold,
                &handle,
                &def,
                scopes,
                mode,
                cancel.as_deref(),
                &hooks,
            )
        })
        .await
    }
}

#[cfg(test)]
mod tests;
