//! The engine's services, each owning its state, created in one place.
//!
//! From the bottom up: the catalog (namespaces, tables) and the users; the
//! hot tier (RocksDB, what each table has buffered, scope write locks); the
//! storages of the cold tier; the flusher (flushes, one table at a time,
//! and the back-off of failing scopes); the jobs that run flushes in the
//! background; the scheduler that decides when; the live-query hub that
//! writers hand their committed changes to. Each takes only the
//! services below it; statements (`exec`), table providers (`provider`)
//! and system tables (`system`) see them all through [`Services`].

use crate::audit::AuditLog;
use crate::catalog::{Catalog, NamespaceDef, DEFAULT_NAMESPACE};
use crate::cold::Storages;
use crate::config::EngineConfig;
use crate::error::{CoreError, Result};
use crate::flush::{Flusher, ScopeBackoff};
use crate::hot::{HotBudget, HotTier};
use crate::ids::SnowflakeGen;
use crate::jobs::JobManager;
use crate::live::Live;
use crate::scheduler::Scheduler;
use crate::users::{Credentials, Users};
use kalamdb_commons::{Clock, NamespaceId};
use kalamdb_filestore::FileCache;
use kalamdb_store::{HotStore, StoreOptions};
use std::sync::Arc;
use tracing::info;

pub struct Services {
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) users: Arc<Users>,
    pub(crate) hot: Arc<HotTier>,
    pub(crate) storages: Arc<Storages>,
    pub(crate) flusher: Arc<Flusher>,
    pub(crate) jobs: Arc<JobManager>,
    pub(crate) scheduler: Scheduler,
    pub(crate) live: Arc<Live>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) ids: Arc<SnowflakeGen>,
    /// The server's effective configuration (`system.settings`).
    pub(crate) settings: Arc<Vec<(String, String)>>,
    pub(crate) audit: Arc<AuditLog>,
    /// When the engine opened (micros), for `system.stats`.
    pub(crate) started_at: i64,
    /// A restore whose cold files are still to be written back (by
    /// `KalamDb::recover`).
    pub(crate) restoring_from: parking_lot::Mutex<Option<std::path::PathBuf>>,
    /// Statements `KILL QUERY` can stop.
    pub(crate) running: crate::running::RunningQueries,
    /// Scans and key lookups per table (`SHOW STATS`).
    pub(crate) reads: crate::read::ReadCounts,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Services").finish_non_exhaustive()
    }
}

impl Services {
    /// Opens the data directory and creates every service.
    pub fn open(
        config: &EngineConfig,
        clock: Arc<dyn Clock>,
        credentials: Arc<dyn Credentials>,
    ) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| CoreError::DataDir {
            path: config.data_dir.display().to_string(),
            source,
        })?;
        let restoring_from =
            crate::backup::apply_staged_restore(&config.data_dir, clock.now_micros())?;
        let store = Arc::new(HotStore::open(
            &config.data_dir.join("rocksdb"),
            StoreOptions {
                sync_writes: config.sync_writes,
                block_cache_bytes: config.hot_cache_bytes,
            },
        )?);
        let catalog = Arc::new(Catalog::load(store.clone())?);
        catalog.create_namespace(NamespaceDef {
            name: NamespaceId::new(DEFAULT_NAMESPACE).expect("valid"),
            created_at: clock.now_micros(),
        })?;
        let users = Arc::new(Users::load(store.clone(), clock.clone(), credentials)?);
        users.bootstrap_root(config.root_password.as_deref())?;
        info!(
            data_dir = %config.data_dir.display(),
            namespaces = catalog.namespaces().len(),
            tables = catalog.tables().len(),
            last_seq = store.last_seq(),
            "engine opened"
        );
        let storages = Arc::new(Storages::load(
            store.clone(),
            config.data_dir.clone(),
            clock.now_micros(),
            Arc::new(FileCache::new(config.file_cache_bytes)),
        )?);
        let scheduler_config = &config.scheduler;
        let hot = Arc::new(HotTier::open(
            store.clone(),
            &catalog,
            HotBudget {
                rows: scheduler_config.budget_rows,
                bytes: scheduler_config.budget_bytes,
                hard_limit_factor: scheduler_config.hard_limit_factor,
            },
            clock.clone(),
        )?);
        info!(
            buffered_versions = hot.counters().total_rows(),
            buffered_bytes = hot.counters().total_bytes(),
            "hot tier counted"
        );
        let flusher = Arc::new(Flusher::new(
            hot.clone(),
            storages.clone(),
            ScopeBackoff::new(
                scheduler_config.failed_scope_backoff,
                scheduler_config.failed_scope_backoff_max,
            ),
            clock.clone(),
            config.compaction,
        ));
        let ids = Arc::new(SnowflakeGen::new(clock.clone(), 0));
        let audit = Arc::new(AuditLog::open(
            store.clone(),
            clock.clone(),
            config.audit_log_entries,
        )?);
        let jobs = Arc::new(JobManager::new(
            store,
            catalog.clone(),
            flusher.clone(),
            ids.clone(),
            clock.clone(),
            config.jobs.clone(),
        ));
        let scheduler = Scheduler::new(
            catalog.clone(),
            hot.clone(),
            flusher.clone(),
            jobs.clone(),
            clock.clone(),
            scheduler_config.clone(),
        );
        Ok(Self {
            catalog,
            users,
            hot,
            storages,
            flusher,
            jobs,
            scheduler,
            live: Arc::new(Live::new(config.live.clone())),
            audit,
            started_at: clock.now_micros(),
            restoring_from: parking_lot::Mutex::new(restoring_from),
            running: Default::default(),
            reads: Default::default(),
            clock,
            ids,
            settings: Arc::new(config.settings.clone()),
        })
    }
}

/// What tests reach inside the engine for (fault injection, flush hooks,
/// the manifest and counters they check).
#[cfg(feature = "test-support")]
impl Services {
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    pub fn storages(&self) -> &Storages {
        &self.storages
    }

    pub fn store(&self) -> &Arc<HotStore> {
        self.hot.store()
    }

    pub fn counters(&self) -> &crate::hot::HotCounters {
        self.hot.counters()
    }

    pub fn flusher(&self) -> &Flusher {
        &self.flusher
    }
}
