//! Shared state every statement works with.

use crate::catalog::Catalog;
use crate::catalog::TableDef;
use crate::cold::{ColdStore, Storages};
use crate::ids::SnowflakeGen;
use crate::jobs::{JobManager, JobsConfig};
use crate::scheduler::{HotCounters, Scheduler, SchedulerConfig, ScopeBackoff};
use crate::users::Users;
use kalamdb_commons::Clock;
use kalamdb_store::{HotStore, ScopeKey};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use tokio::sync::{Mutex, MutexGuard};

/// Number of lock stripes for scope writes.
const WRITE_STRIPES: usize = 64;

/// Counts blocking tasks (scans) that still use the engine, so closing it
/// can wait for them instead of leaving RocksDB open behind its back.
#[derive(Debug, Default)]
pub struct TaskCounter {
    running: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl TaskCounter {
    pub fn enter(self: &Arc<Self>) -> OwnedTaskGuard {
        self.running
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        OwnedTaskGuard(self.clone())
    }

    /// Waits until no task is running.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.running.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by a running task; dropping it marks the task done.
pub struct OwnedTaskGuard(Arc<TaskCounter>);

impl Drop for OwnedTaskGuard {
    fn drop(&mut self) {
        let before = self
            .0
            .running
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        if before == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

pub struct CoreContext {
    pub store: Arc<HotStore>,
    pub catalog: Arc<Catalog>,
    pub users: Arc<Users>,
    pub storages: Arc<Storages>,
    pub jobs: Arc<JobManager>,
    /// Buffered versions per table, for flush policies and the budget.
    pub counters: Arc<HotCounters>,
    pub scheduler: Scheduler,
    /// Scopes left out of flushes after a permanent failure.
    pub backoff: ScopeBackoff,
    pub scheduler_config: SchedulerConfig,
    pub clock: Arc<dyn Clock>,
    pub snowflake: SnowflakeGen,
    /// Scans running on blocking threads.
    pub scans: Arc<TaskCounter>,
    write_locks: Vec<Mutex<()>>,
}

impl std::fmt::Debug for CoreContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoreContext").finish_non_exhaustive()
    }
}

impl CoreContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<HotStore>,
        catalog: Arc<Catalog>,
        users: Arc<Users>,
        storages: Arc<Storages>,
        counters: Arc<HotCounters>,
        jobs_config: JobsConfig,
        scheduler_config: SchedulerConfig,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            jobs: Arc::new(JobManager::new(store.clone(), clock.clone(), jobs_config)),
            counters,
            scheduler: Scheduler::default(),
            backoff: ScopeBackoff::new(
                scheduler_config.failed_scope_backoff,
                scheduler_config.failed_scope_backoff_max,
            ),
            scheduler_config,
            store,
            catalog,
            users,
            storages,
            snowflake: SnowflakeGen::new(clock.clone(), 0),
            scans: Arc::new(TaskCounter::default()),
            clock,
            write_locks: (0..WRITE_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// The opened storage a table's files live in.
    pub fn cold_for(&self, def: &TableDef) -> crate::error::Result<Arc<ColdStore>> {
        self.storages.open(&def.storage_id)
    }

    /// Serializes writers of one scope, so that "check the primary key, then
    /// write" and "read rows, then write new versions" are atomic, and `_seq`
    /// order is commit order within a scope. Readers never take it.
    pub async fn lock_scope(&self, scope: &ScopeKey) -> MutexGuard<'_, ()> {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        scope.hash(&mut hasher);
        let stripe = hasher.finish() as usize % WRITE_STRIPES;
        self.write_locks[stripe].lock().await
    }
}
