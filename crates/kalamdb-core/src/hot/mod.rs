//! The hot tier as the engine uses it: the RocksDB store, what each table
//! has buffered there (counters), the hot-tier budget, the write lock of
//! each scope, and the scans that read it on blocking threads.
//!
//! The hot tier does not decide when to flush. It counts, refuses writes
//! far above its budget, and signals pressure (a table at its row limit,
//! the budget reached), which the scheduler waits on.

mod counters;
mod tasks;
mod tidy;

pub use counters::{Buffered, HotCounters};
pub use tasks::TaskCounter;
pub use tidy::Tidier;

use crate::catalog::{Catalog, TableDef};
use crate::error::{CoreError, Result};
use kalamdb_commons::Clock;
use kalamdb_store::{HotStore, ScopeKey};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard, Notify};

/// Number of lock stripes for scope writes.
const WRITE_STRIPES: usize = 64;

/// How much the hot tier may hold before flushes are forced, and how far
/// above that writes are refused.
#[derive(Debug, Clone, Copy)]
pub struct HotBudget {
    /// Buffered versions; 0: none.
    pub rows: u64,
    /// Bytes (keys + values); 0: none.
    pub bytes: u64,
    /// Writes are refused while the hot tier holds more than this many
    /// times the budget.
    pub hard_limit_factor: f64,
}

impl HotBudget {
    /// Whether `rows`/`bytes` exceed `factor` times the budget.
    pub fn exceeded(&self, rows: u64, bytes: u64, factor: f64) -> bool {
        over(rows, self.rows, factor) || over(bytes, self.bytes, factor)
    }
}

fn over(value: u64, budget: u64, factor: f64) -> bool {
    budget > 0 && value as f64 > budget as f64 * factor
}

pub struct HotTier {
    store: Arc<HotStore>,
    counters: HotCounters,
    budget: HotBudget,
    clock: Arc<dyn Clock>,
    write_locks: Vec<Mutex<()>>,
    /// Notified when a write takes a table to its row limit or the hot
    /// tier to its budget.
    pressure: Notify,
    scans: Arc<TaskCounter>,
    /// Range compactions after flushes.
    tidier: Arc<Tidier>,
}

impl std::fmt::Debug for HotTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotTier")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl HotTier {
    /// Takes over the opened store and counts what each table of `catalog`
    /// has buffered in it.
    pub fn open(
        store: Arc<HotStore>,
        catalog: &Catalog,
        budget: HotBudget,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let counters = HotCounters::rebuild(&store, catalog, clock.now_micros())?;
        Ok(Self {
            store,
            counters,
            budget,
            clock,
            write_locks: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
            pressure: Notify::new(),
            scans: Arc::new(TaskCounter::default()),
            tidier: Arc::default(),
        })
    }

    pub fn store(&self) -> &Arc<HotStore> {
        &self.store
    }

    pub fn counters(&self) -> &HotCounters {
        &self.counters
    }

    pub fn budget(&self) -> &HotBudget {
        &self.budget
    }

    /// Compactions of key ranges flushes emptied.
    pub fn tidier(&self) -> &Arc<Tidier> {
        &self.tidier
    }

    /// Scans running on blocking threads.
    pub fn scans(&self) -> &Arc<TaskCounter> {
        &self.scans
    }

    /// Serializes writers of one scope, so that "check the primary key, then
    /// write" and "read rows, then write new versions" are atomic, and `_seq`
    /// order is commit order within a scope. Readers never take it.
    pub async fn lock_scope(&self, scope: &ScopeKey) -> MutexGuard<'_, ()> {
        self.write_lock(scope).lock().await
    }

    /// [`HotTier::lock_scope`] for blocking threads (a flush).
    pub fn lock_scope_blocking(&self, scope: &ScopeKey) -> MutexGuard<'_, ()> {
        self.write_lock(scope).blocking_lock()
    }

    /// [`HotTier::lock_scope`] of several scopes at once (a transaction's
    /// commit). Scopes share lock stripes, so each stripe is taken once,
    /// in stripe order: two commits never wait for each other in a cycle.
    pub async fn lock_scopes(&self, scopes: &[ScopeKey]) -> Vec<MutexGuard<'_, ()>> {
        let mut stripes: Vec<usize> = scopes.iter().map(|s| self.stripe(s)).collect();
        stripes.sort_unstable();
        stripes.dedup();
        let mut guards = Vec::with_capacity(stripes.len());
        for stripe in stripes {
            guards.push(self.write_locks[stripe].lock().await);
        }
        guards
    }

    fn write_lock(&self, scope: &ScopeKey) -> &Mutex<()> {
        &self.write_locks[self.stripe(scope)]
    }

    fn stripe(&self, scope: &ScopeKey) -> usize {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        scope.hash(&mut hasher);
        hasher.finish() as usize % WRITE_STRIPES
    }

    /// Refuses a write while the hot tier is far above its budget.
    pub fn check_budget(&self) -> Result<()> {
        let (rows, bytes) = (self.counters.total_rows(), self.counters.total_bytes());
        let factor = self.budget.hard_limit_factor.max(1.0);
        if self.budget.exceeded(rows, bytes, factor) {
            self.pressure.notify_one();
            return Err(CoreError::Unavailable(format!(
                "the hot tier is full ({rows} versions, {bytes} bytes buffered; budget \
                 {} versions / {} bytes) while flushes catch up; retry shortly",
                self.budget.rows, self.budget.bytes
            )));
        }
        Ok(())
    }

    /// Records a committed write; signals pressure when a limit is hit.
    pub fn wrote(&self, def: &TableDef, versions: u64, bytes: u64) {
        let rows = self
            .counters
            .add(def.uid, versions, bytes, self.clock.now_micros());
        let policy = def.effective_flush_policy();
        if policy.row_limit.is_some_and(|limit| rows >= limit)
            || self
                .budget
                .exceeded(self.counters.total_rows(), self.counters.total_bytes(), 1.0)
        {
            self.pressure.notify_one();
        }
    }

    /// Waits for the next pressure signal or `tick`, whichever first.
    pub async fn wait_for_pressure(&self, tick: std::time::Duration) {
        let _ = tokio::time::timeout(tick, self.pressure.notified()).await;
    }

    /// Records a completed flush of a table: its interval starts again.
    pub fn flushed(&self, table_uid: u64) -> Result<()> {
        self.counters
            .flushed(&self.store, table_uid, self.clock.now_micros())
    }

    /// Records versions a flush deleted.
    pub fn removed(&self, table_uid: u64, versions: u64, bytes: u64) {
        self.counters.remove(table_uid, versions, bytes);
    }

    /// A new table: its interval starts now.
    pub fn created(&self, table_uid: u64) {
        self.counters.created(table_uid, self.clock.now_micros());
    }

    /// A dropped table: its rows and its last-flush record are gone.
    pub fn dropped(&self, table_uid: u64) -> Result<()> {
        self.counters.dropped(&self.store, table_uid)
    }
}
