//! The engine: opens the hot tier, loads catalog and users, runs batches.

use crate::catalog::DEFAULT_NAMESPACE;
use crate::cold::remove_uncommitted;
use crate::config::EngineConfig;
use crate::error::{CoreError, Result};
use crate::exec::limits::QueryEnv;
use crate::exec::prepared::Prepared;
use crate::exec::{Session, StatementResult};
use crate::flush::CancelFlag;
#[cfg(feature = "test-support")]
use crate::flush::{FlushHooks, FlushOptions, FlushStats};
use crate::services::Services;
use crate::users::{Caller, Credentials, Users};
use kalamdb_commons::Clock;
use kalamdb_sql::KalamStatement;
use std::sync::Arc;
use std::time::Duration;
use tracing::{info, warn};

/// How to stop: see [`KalamDb::shutdown`].
#[derive(Debug, Clone)]
pub struct ShutdownOptions {
    /// Flush every table's buffered rows first (trigger `shutdown`).
    pub flush_all: bool,
    /// How long running jobs may take before they are stopped at a scope
    /// boundary.
    pub timeout: Duration,
}

/// A batch made only of INSERTs of literal values (and `$n` parameters),
/// read by a one-pass scanner that builds no syntax tree.
pub struct LiteralInserts(Vec<Arc<Prepared>>);

/// `sql` as a batch of literal INSERTs, if that is all it holds: such a
/// batch is cheap and shallow to run, so a caller may run it where it is
/// (see [`KalamDb::execute_literal_inserts`]).
pub fn literal_inserts(sql: &str) -> Option<LiteralInserts> {
    let inserts = kalamdb_sql::scan_literal_inserts(sql)?;
    Some(LiteralInserts(
        inserts
            .into_iter()
            .map(|insert| Arc::new(Prepared::new(KalamStatement::FastInsert(Box::new(insert)))))
            .collect(),
    ))
}

/// A failed batch: which statement failed (1-based) and why. The
/// statements before it ran and are committed; `completed` holds their
/// results.
#[derive(Debug)]
pub struct StatementError {
    pub index: usize,
    pub of: usize,
    pub error: CoreError,
    pub completed: Vec<StatementResult>,
}

impl StatementError {
    /// A batch refused before any of its statements ran.
    fn before_any(error: CoreError) -> Self {
        Self {
            index: 1,
            of: 1,
            error,
            completed: Vec::new(),
        }
    }
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
    services: Arc<Services>,
    query: QueryEnv,
    /// The scheduler loop, once started; stopped by `shutdown`/`close`.
    scheduler: parking_lot::Mutex<Option<SchedulerTask>>,
}

struct SchedulerTask {
    stop: Arc<CancelFlag>,
    handle: tokio::task::JoinHandle<()>,
}

impl Drop for KalamDb {
    /// An engine dropped without `shutdown`/`close` still stops its
    /// scheduler loop, which would otherwise keep the engine's state (and
    /// RocksDB) alive.
    fn drop(&mut self) {
        if let Some(task) = self.scheduler.lock().take() {
            task.stop.cancel();
        }
    }
}

impl std::fmt::Debug for KalamDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KalamDb").finish_non_exhaustive()
    }
}

impl KalamDb {
    /// Opens the engine in `config.data_dir`. `credentials` turns new
    /// passwords into stored hashes and hears of revoked accounts.
    pub fn open(
        config: &EngineConfig,
        clock: Arc<dyn Clock>,
        credentials: Arc<dyn Credentials>,
    ) -> Result<Self> {
        let services = Arc::new(Services::open(config, clock, credentials)?);
        let mut query = QueryEnv::new(config.limits.clone())?;
        crate::exec::kalam_fns::register(&mut query.state, services.ids.clone())?;
        datafusion_functions_json::register_all(&mut query.state)?;
        Ok(Self {
            services,
            query,
            scheduler: parking_lot::Mutex::new(None),
        })
    }

    pub fn users(&self) -> &Users {
        &self.services.users
    }

    /// The hot tier's store, for records kept beside the engine's (the
    /// server's login sessions, under `kalamdb_store::meta_keys::SESSIONS`).
    pub fn store(&self) -> &Arc<kalamdb_store::HotStore> {
        self.services.hot.store()
    }

    /// The clock the engine runs on.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.services.clock
    }

    /// The bounds and timers of live queries.
    pub fn live_config(&self) -> &crate::live::LiveConfig {
        &self.services.live.config
    }

    /// Writes one entry to the audit log (`system.audit_log`); the server
    /// records logins this way.
    pub fn audit(&self, event: crate::audit::AuditEvent) {
        self.services.audit.record(event);
    }

    /// Statements running under a client's query id, for `KILL QUERY`.
    pub fn running(&self) -> &crate::running::RunningQueries {
        &self.services.running
    }

    /// The engine's services, for tests that set flush hooks or inject faults.
    #[cfg(feature = "test-support")]
    pub fn services(&self) -> &Arc<Services> {
        &self.services
    }

    /// Switches direct reads on or off (`QueryLimits::direct_reads`), so
    /// tests can compare them with the planned path on the same data.
    #[cfg(feature = "test-support")]
    pub fn set_direct_reads(&self, on: bool) {
        self.query
            .direct_reads
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// How many queries direct reads have answered so far.
    pub fn direct_reads_served(&self) -> u64 {
        self.query
            .direct_served
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How many query runs used a kept plan so far.
    pub fn plans_reused(&self) -> u64 {
        self.query.plans.reused()
    }

    /// Moves the hot rows of `namespace.table` into Parquet files, one per
    /// scope, and waits for it. `hooks` are for tests (fail points).
    #[cfg(feature = "test-support")]
    pub async fn flush_table(
        &self,
        namespace: &str,
        table: &str,
        hooks: FlushHooks,
    ) -> Result<FlushStats> {
        let def = self.table_def(namespace, table)?;
        self.services
            .flusher
            .flush_now(def, FlushOptions::default(), hooks)
            .await
    }

    /// Compacts every scope of `namespace.table` that needs it, as
    /// `STORAGE COMPACT TABLE` does, and waits for it. `hooks` are for
    /// tests (fail points).
    #[cfg(feature = "test-support")]
    pub async fn compact_table(
        &self,
        namespace: &str,
        table: &str,
        hooks: crate::compact::CompactHooks,
    ) -> Result<crate::compact::CompactStats> {
        let def = self.table_def(namespace, table)?;
        self.services
            .flusher
            .compact_now(def, None, crate::compact::Mode::Full, None, hooks)
            .await
    }

    #[cfg(feature = "test-support")]
    fn table_def(&self, namespace: &str, table: &str) -> Result<Arc<crate::catalog::TableDef>> {
        self.services
            .catalog
            .table(namespace, table)
            .ok_or_else(|| CoreError::TableNotFound(format!("{namespace}.{table}")))
    }

    /// Finishes a restore that this start applied to the hot tier: writes
    /// the backup's cold files into their storages. Returns how many it
    /// wrote (`None`: no restore). Call once after `open`, before
    /// `recover`; if it fails the next start tries again.
    pub async fn finish_restore(&self) -> Result<Option<u64>> {
        let restoring = self.services.restoring_from.lock().clone();
        let Some(from) = restoring else {
            return Ok(None);
        };
        let data_dir = self.services.storages.data_dir().to_path_buf();
        let written =
            crate::backup::restore_cold_files(&data_dir, &from, &self.services.storages).await?;
        *self.services.restoring_from.lock() = None;
        Ok(Some(written))
    }

    /// Deletes files of flushes that never committed, then re-runs jobs
    /// that a crash left queued or running. Call once after `open`, inside
    /// the runtime.
    pub async fn recover(&self) -> Result<usize> {
        let orphans =
            remove_uncommitted(self.services.hot.store(), &self.services.storages).await?;
        if orphans > 0 {
            info!(orphans, "removed files left by interrupted flushes");
        }
        self.services.jobs.resume().await
    }

    /// Waits until every background job has finished.
    pub async fn wait_for_jobs(&self) {
        self.services.jobs.wait_idle().await;
    }

    /// Starts the scheduler loop: every `tick` (or at once when a write
    /// crosses a limit) it starts the flushes that policies and the budget
    /// call for. Call once, inside the runtime.
    pub fn start_scheduler(&self) {
        let stop = Arc::new(CancelFlag::default());
        let services = self.services.clone();
        let loop_stop = stop.clone();
        let handle = tokio::spawn(async move {
            let scheduler = &services.scheduler;
            if let Err(e) = scheduler.startup_tick().await {
                warn!(error = %e, "start-up flush check failed");
            }
            loop {
                tokio::select! {
                    () = scheduler.wait() => {}
                    () = loop_stop.cancelled() => break,
                }
                if let Err(e) = scheduler.tick().await {
                    warn!(error = %e, "scheduler tick failed");
                }
                trim_change_log(&services).await;
            }
        });
        *self.scheduler.lock() = Some(SchedulerTask { stop, handle });
        info!(
            tick_ms = self.services.scheduler.config().tick.as_millis() as u64,
            "scheduler started"
        );
    }

    /// Checks policies and the budget once now (tests drive time with an
    /// injected clock and call this instead of waiting for the loop).
    pub async fn scheduler_tick(&self) -> Result<crate::scheduler::Started> {
        self.services.scheduler.tick().await
    }

    /// The start-up check: what is due is flushed with trigger `startup`.
    pub async fn scheduler_startup_tick(&self) -> Result<crate::scheduler::Started> {
        self.services.scheduler.startup_tick().await
    }

    async fn stop_scheduler(&self) {
        let task = self.scheduler.lock().take();
        if let Some(task) = task {
            task.stop.cancel();
            let _ = task.handle.await;
            info!("scheduler stopped");
        }
    }

    /// Stops background work in order: the scheduler; then (optionally) a
    /// flush of every table with buffered rows; running jobs get `timeout`
    /// to finish and are then stopped at a scope boundary; then scans and
    /// range compactions after flushes drain. Dropping the engine afterwards closes RocksDB.
    pub async fn shutdown(&self, options: ShutdownOptions) {
        self.stop_scheduler().await;
        if options.flush_all {
            let mut started = 0;
            for def in self.services.catalog.tables() {
                let buffered = self
                    .services
                    .hot
                    .counters()
                    .get(def.uid)
                    .map_or(0, |b| b.rows);
                if buffered == 0 || def.table_type == kalamdb_commons::TableType::Stream {
                    continue;
                }
                match self
                    .services
                    .jobs
                    .submit_flush(def.clone(), "shutdown")
                    .await
                {
                    Ok(_) => started += 1,
                    Err(e) => {
                        warn!(table = %def.qualified_name(), error = %e, "cannot start the shutdown flush")
                    }
                }
            }
            info!(tables = started, "flushing buffered rows before stopping");
        }
        if !self.services.jobs.wait_idle_for(options.timeout).await {
            let stopping = self.services.jobs.cancel_all();
            warn!(jobs = stopping, timeout_ms = options.timeout.as_millis() as u64, "jobs still running at the shutdown timeout; stopping them at the next scope boundary");
            self.services.jobs.wait_idle().await;
        }
        self.services.hot.scans().wait_idle().await;
        self.services.hot.tidier().wait_idle().await;
    }

    /// Closes the engine: stops the scheduler, waits for background jobs and
    /// running scans, then releases RocksDB.
    pub async fn close(self) {
        self.stop_scheduler().await;
        self.services.jobs.wait_idle().await;
        self.services.hot.scans().wait_idle().await;
        self.services.hot.tidier().wait_idle().await;
        drop(self);
    }

    /// Runs every statement of `sql` in order, stopping at the first failure.
    ///
    /// Planning and evaluation recurse over expressions, up to the parser's
    /// bound (`kalamdb_sql::MAX_EXPRESSION_DEPTH`); run this on threads with
    /// a large stack (the server's query runtime has 32 MiB), as 2 MiB is
    /// not enough for the deepest statements in debug builds.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        namespace: Option<&str>,
        caller: &Caller,
    ) -> std::result::Result<Vec<StatementResult>, StatementError> {
        let statements = self.prepare_batch(sql)?;
        self.execute_statements(statements, params, namespace, caller, false, None)
            .await
    }

    /// A batch's statements, parsed once per text (the statement cache).
    fn prepare_batch(&self, sql: &str) -> std::result::Result<Vec<Arc<Prepared>>, StatementError> {
        self.query
            .statements
            .prepare(sql, |sql| Ok(kalamdb_sql::parse_batch(sql)?))
            .map_err(StatementError::before_any)
    }

    /// [`KalamDb::execute`], except that a large result of the last
    /// statement is not collected: its [`StatementResult::rest`] holds the
    /// rest of the rows, to be read (under the same caps and the statement
    /// timeout) while they are sent. For a caller that tried
    /// [`literal_inserts`] first: the text goes straight to the tokenizer
    /// (which reads literal INSERTs too, only less quickly), so a large
    /// batch is not scanned twice.
    pub async fn execute_streaming(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        namespace: Option<&str>,
        caller: &Caller,
    ) -> std::result::Result<Vec<StatementResult>, StatementError> {
        let statements = self
            .query
            .statements
            .prepare(sql, |sql| Ok(kalamdb_sql::parse_batch_tokenized(sql)?))
            .map_err(StatementError::before_any)?;
        self.execute_statements(statements, params, namespace, caller, true, None)
            .await
    }

    /// A session for `caller` in `namespace` (default: the default one).
    fn session<'a>(
        &'a self,
        caller: &Caller,
        namespace: Option<&str>,
        params: &'a [serde_json::Value],
    ) -> Session<'a> {
        Session {
            services: &self.services,
            query: &self.query,
            caller: caller.clone(),
            default_namespace: namespace.unwrap_or(DEFAULT_NAMESPACE).to_string(),
            params,
            txn: None,
        }
    }

    /// Answers `sql` right here if it is a statement seen before (cached
    /// by its text) that a direct read answers with a bounded amount of
    /// work: a primary-key lookup, a short LIMIT read, a constant query.
    /// `None`: run it with [`KalamDb::execute_streaming`]. Such a read
    /// recurses nowhere, so it needs no large stack, and it skips the hand-
    /// off to the query runtime.
    pub async fn execute_direct(
        &self,
        sql: &str,
        params: &[serde_json::Value],
        namespace: Option<&str>,
        caller: &Caller,
    ) -> Option<std::result::Result<Vec<StatementResult>, StatementError>> {
        let prepared = self.query.statements.cached(sql)?;
        if !prepared.is_direct() {
            return None;
        }
        let session = self.session(caller, namespace, params);
        match session.run_direct(&prepared, true).await {
            Ok(Some(result)) => Some(Ok(vec![result])),
            Ok(None) => None,
            Err(error) => Some(Err(StatementError::before_any(error))),
        }
    }

    /// Runs a batch that [`literal_inserts`] read, as
    /// [`KalamDb::execute`] would run its text. Such a batch holds no
    /// expressions, so it needs no large stack.
    pub async fn execute_literal_inserts(
        &self,
        batch: LiteralInserts,
        params: &[serde_json::Value],
        namespace: Option<&str>,
        caller: &Caller,
    ) -> std::result::Result<Vec<StatementResult>, StatementError> {
        self.execute_statements(batch.0, params, namespace, caller, false, None)
            .await
    }

    /// Runs `sql` in a client's session (a PostgreSQL-protocol connection):
    /// a transaction it leaves open, and the namespace `USE` picked, carry
    /// over to the session's next request. A statement that fails inside
    /// the transaction rolls it back.
    pub async fn execute_in(
        &self,
        session: &mut ClientSession,
        sql: &str,
        params: &[serde_json::Value],
        caller: &Caller,
    ) -> std::result::Result<Vec<StatementResult>, StatementError> {
        let statements = self.prepare_batch(sql)?;
        let namespace = session.namespace.clone();
        self.execute_statements(
            statements,
            params,
            namespace.as_deref(),
            caller,
            false,
            Some(session),
        )
        .await
    }

    /// Runs a batch; `carry`: a client session whose transaction and
    /// namespace outlive it (else a transaction left open is rolled back).
    async fn execute_statements(
        &self,
        statements: Vec<Arc<Prepared>>,
        params: &[serde_json::Value],
        namespace: Option<&str>,
        caller: &Caller,
        stream_last: bool,
        mut carry: Option<&mut ClientSession>,
    ) -> std::result::Result<Vec<StatementResult>, StatementError> {
        let fail = StatementError::before_any;
        let of = statements.len();
        if of == 0 {
            return Err(fail(CoreError::EmptySql));
        }
        let limits = &self.query.limits;
        if of > limits.max_statements {
            return Err(fail(CoreError::ResourceExhausted(format!(
                "{of} statements in one request; at most {} are allowed",
                limits.max_statements
            ))));
        }
        if of > 1 && !params.is_empty() {
            return Err(fail(CoreError::ParamsWithBatch));
        }
        let mut session = self.session(caller, namespace, params);
        if let Some(carried) = carry.as_deref_mut() {
            session.txn = carried.txn.take();
        }
        let mut results = Vec::with_capacity(of);
        // Results of the open transaction's statements start here.
        let mut txn_from = 0;
        for (i, statement) in statements.into_iter().enumerate() {
            let timeout = limits.statement_timeout;
            let stream = stream_last && i + 1 == of;
            let started = tokio::time::Instant::from_std(kalamdb_commons::clock::monotonic());
            let control = match &statement.statement {
                KalamStatement::Begin => Some(session.begin()),
                KalamStatement::Commit => Some(session.commit().await),
                KalamStatement::Rollback => Some(session.rollback()),
                _ => None,
            };
            if matches!(statement.statement, KalamStatement::Begin) {
                txn_from = results.len();
            }
            let outcome = if let Some(outcome) = control {
                outcome
            } else if let KalamStatement::UseNamespace { name } = &statement.statement {
                // `USE` changes the batch's session, so it is applied here.
                session.use_namespace(name)
            } else if timeout.is_zero() || !statement.statement.may_time_out() {
                session.run_prepared(statement, stream).await
            } else {
                match tokio::time::timeout(timeout, session.run_prepared(statement, stream)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Err(CoreError::statement_timeout(timeout)),
                }
            };
            match outcome {
                Ok(mut result) => {
                    if let Some(rest) = result.rest.as_mut().filter(|_| !timeout.is_zero()) {
                        rest.set_timeout(started, timeout);
                    }
                    results.push(result)
                }
                Err(error) => {
                    if let Some(carried) = carry.as_deref_mut() {
                        carried.namespace = Some(session.default_namespace.clone());
                    }
                    // A failing statement ends an open transaction: rolled
                    // back, its statements' results with it.
                    let error = match session.txn.take() {
                        Some(_) => {
                            results.truncate(txn_from);
                            rolled_back(error)
                        }
                        None => error,
                    };
                    return Err(StatementError {
                        index: i + 1,
                        of,
                        error,
                        completed: results,
                    });
                }
            }
        }
        if let Some(carried) = carry {
            carried.namespace = Some(session.default_namespace.clone());
            carried.txn = session.txn.take();
            return Ok(results);
        }
        if session.txn.take().is_some() {
            results.truncate(txn_from);
            return Err(StatementError {
                index: of,
                of,
                error: CoreError::exec(
                    "the batch ended inside a transaction (BEGIN without COMMIT); it was rolled back",
                ),
                completed: results,
            });
        }
        Ok(results)
    }
}

/// Raises the change log's floor as changes age out (a blocking RocksDB
/// pass, once per scheduler tick).
async fn trim_change_log(services: &Arc<Services>) {
    let services = services.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let now = services.clock.now_micros();
        services
            .live
            .history
            .trim(services.hot.store(), now, &services.live.config)
    })
    .await;
    match outcome {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "change log trim failed"),
        Err(e) => warn!(error = %e, "change log trim panicked"),
    }
}

/// Live queries.
impl KalamDb {
    /// Plans `request.sql` as `caller`, registers its feed in `outbox` and
    /// takes its starting point (snapshot, newest rows, or resume).
    pub async fn subscribe(
        &self,
        caller: &Caller,
        request: crate::live::SubscribeRequest,
        outbox: Arc<crate::live::Outbox>,
    ) -> crate::live::LiveResult<crate::live::Subscription> {
        use crate::live::FeedInfo;
        let session = self.session(caller, None, &[]);
        let (reader, target) = session.plan_live_as(&request.sql).await?;
        let info = FeedInfo {
            live_id: format!("{}-{}", request.connection_id, request.subscription_id),
            subscription_id: request.subscription_id.clone(),
            user_id: caller.user_id.to_string(),
            reader_id: reader.user_id.to_string(),
            connection_id: request.connection_id.clone(),
            sql: request.sql.clone(),
            options: request.options_json(),
            created_at: self.services.clock.now_micros(),
        };
        match target {
            crate::exec::LiveTarget::Table(plan) => {
                let plan = Arc::new(plan);
                let scope = crate::provider::scope_key_for(&plan.def, &reader)?;
                crate::live::open::open(self.services.clone(), plan, scope, info, outbox, &request)
                    .await
            }
            crate::exec::LiveTarget::System(watch) => {
                crate::live::open::open_watch(&self.services, watch, info, outbox, &request)
            }
        }
    }

    /// Ends a subscription (unsubscribe, or its connection closed).
    pub fn unsubscribe(&self, feed: &Arc<crate::live::Feed>) {
        self.services.live.hub.unregister(feed);
    }
}

/// What a client's session keeps between its requests: its namespace
/// (`USE`) and its open transaction (`BEGIN` in one request, `COMMIT` in a
/// later one), for protocols with sessions ([`KalamDb::execute_in`]).
#[derive(Debug, Default)]
pub struct ClientSession {
    pub namespace: Option<String>,
    txn: Option<Arc<crate::exec::transaction::Transaction>>,
}

impl ClientSession {
    /// Whether a transaction is open (`BEGIN` without its `COMMIT` yet).
    pub fn in_transaction(&self) -> bool {
        self.txn.is_some()
    }
}

/// A statement's error inside a transaction, which its batch rolled back.
fn rolled_back(error: CoreError) -> CoreError {
    match error {
        // Already says nothing was applied.
        CoreError::TransactionConflict(_) => error,
        CoreError::Execution(m) => {
            CoreError::Execution(format!("{m}; the transaction was rolled back"))
        }
        CoreError::AlreadyExists(m) => {
            CoreError::AlreadyExists(format!("{m}; the transaction was rolled back"))
        }
        other => other,
    }
}
