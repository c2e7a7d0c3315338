//! The engine: opens the hot tier, loads catalog and users, runs batches.

use crate::catalog::{Catalog, NamespaceDef, DEFAULT_NAMESPACE};
use crate::cold::flush::{FlushHooks, FlushStats};
use crate::cold::{remove_uncommitted, Storages};
use crate::context::CoreContext;
use crate::error::{CoreError, Result};
use crate::exec::{base_session_state, Session, StatementResult};
use crate::users::{Caller, Users};
use datafusion::execution::SessionState;
use kalamdb_commons::{Clock, NamespaceId};
use kalamdb_store::{HotStore, StoreOptions};
use std::path::PathBuf;
use std::sync::Arc;
use tracing::info;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// fsync every write (survives power loss, not only process crashes).
    pub sync_writes: bool,
    /// Sets root's password at start-up when given.
    pub root_password: Option<String>,
}

/// A failed batch: which statement failed (1-based) and why. Statements
/// before it are committed.
#[derive(Debug)]
pub struct StatementError {
    pub index: usize,
    pub of: usize,
    pub error: CoreError,
}

impl std::fmt::Display for StatementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.of > 1 {
            write!(f, "Statement {} failed: {}", self.index, self.error)
        } else {
            write!(f, "{}", self.error)
        }
    }
}

pub struct KalamDb {
    ctx: Arc<CoreContext>,
    base_state: SessionState,
}

impl std::fmt::Debug for KalamDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KalamDb").finish_non_exhaustive()
    }
}

impl KalamDb {
    pub fn open(config: &EngineConfig, clock: Arc<dyn Clock>) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            CoreError::Internal(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        let store = Arc::new(HotStore::open(
            &config.data_dir.join("rocksdb"),
            StoreOptions {
                sync_writes: config.sync_writes,
            },
        )?);
        let catalog = Arc::new(Catalog::load(store.clone())?);
        catalog.create_namespace(NamespaceDef {
            name: NamespaceId::new(DEFAULT_NAMESPACE).expect("valid"),
            created_at: clock.now_micros(),
        })?;
        let users = Arc::new(Users::load(store.clone(), clock.clone())?);
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
        )?);
        Ok(Self {
            ctx: Arc::new(CoreContext::new(store, catalog, users, storages, clock)),
            base_state: base_session_state(),
        })
    }

    pub fn users(&self) -> &Users {
        &self.ctx.users
    }

    pub fn context(&self) -> &Arc<CoreContext> {
        &self.ctx
    }

    /// Moves the hot rows of `namespace.table` into Parquet files, one per
    /// scope, and waits for it. `hooks` are for tests (fail points).
    pub async fn flush_table(
        &self,
        namespace: &str,
        table: &str,
        hooks: FlushHooks,
    ) -> Result<FlushStats> {
        let def = self
            .ctx
            .catalog
            .table(namespace, table)
            .ok_or_else(|| CoreError::TableNotFound(format!("{namespace}.{table}")))?;
        self.ctx.jobs.flush_now(self.ctx.clone(), def, hooks).await
    }

    /// Deletes files of flushes that never committed, then re-runs jobs
    /// that a crash left queued or running. Call once after `open`, inside
    /// the runtime.
    pub async fn recover(&self) -> Result<usize> {
        let orphans = remove_uncommitted(&self.ctx.store, &self.ctx.storages).await?;
        if orphans > 0 {
            info!(orphans, "removed files left by interrupted flushes");
        }
        self.ctx.jobs.resume(self.ctx.clone()).await
    }

    /// Waits until every background job has finished.
    pub async fn wait_for_jobs(&self) {
        self.ctx.jobs.wait_idle().await;
    }

    /// Closes the engine: waits for background jobs and running scans, then
    /// releases RocksDB.
    pub async fn close(self) {
        self.ctx.jobs.wait_idle().await;
        self.ctx.scans.wait_idle().await;
        drop(self);
    }

    /// Runs every statement of `sql` in order, stopping at the first failure.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        namespace: Option<&str>,
        caller: &Caller,
    ) -> std::result::Result<Vec<StatementResult>, StatementError> {
        let statements = kalamdb_sql::parse_batch(sql).map_err(|e| StatementError {
            index: 1,
            of: 1,
            error: e.into(),
        })?;
        let of = statements.len();
        let fail = |error| StatementError {
            index: 1,
            of: 1,
            error,
        };
        if of == 0 {
            return Err(fail(CoreError::EmptySql));
        }
        if of > 1 && !params.is_empty() {
            return Err(fail(CoreError::ParamsWithBatch));
        }
        let session = Session {
            ctx: &self.ctx,
            base_state: &self.base_state,
            caller: caller.clone(),
            default_namespace: namespace.unwrap_or(DEFAULT_NAMESPACE).to_string(),
            params,
        };
        let mut results = Vec::with_capacity(of);
        for (i, statement) in statements.into_iter().enumerate() {
            match session.run(statement).await {
                Ok(result) => results.push(result),
                Err(error) => {
                    return Err(StatementError {
                        index: i + 1,
                        of,
                        error,
                    })
                }
            }
        }
        Ok(results)
    }
}
