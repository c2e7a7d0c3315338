//! Running flush and compaction jobs in the background: at most one queued
//! or running job of each kind per table (a second request gets the
//! existing job's id), a bounded number running at once, every state
//! change persisted first.

use super::{JobRecord, JobStatus, NODE_ID};
use crate::catalog::{Catalog, TableDef};
use crate::compact::{CompactStats, Mode};
use crate::error::{CoreError, Result};
use crate::flush::{CancelFlag, FlushHooks, FlushOptions, FlushStats, Flusher, ScopeFailure};
use crate::ids::SnowflakeGen;
use kalamdb_commons::Clock;
use kalamdb_store::meta_keys;
use kalamdb_store::{HotStore, ScopeKey};
use parking_lot::Mutex;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tracing::{error, info, warn, Instrument};

/// How jobs run.
#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// Jobs (flushes and compactions) that may run at the same time.
    pub max_parallel: usize,
    /// Times a failed flush is tried again before the job fails.
    pub max_retries: u32,
    /// Wait before the first retry; doubled for each further one, at most
    /// a minute.
    pub retry_backoff: Duration,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            max_parallel: 2,
            max_retries: 3,
            retry_backoff: Duration::from_secs(1),
        }
    }
}

pub struct JobManager {
    store: Arc<HotStore>,
    catalog: Arc<Catalog>,
    flusher: Arc<Flusher>,
    ids: Arc<SnowflakeGen>,
    clock: Arc<dyn Clock>,
    /// (kind, table uid) → its queued or running job.
    active: Mutex<HashMap<(JobKind, u64), ActiveJob>>,
    permits: Arc<Semaphore>,
    config: JobsConfig,
    /// The earliest `finished_at` among kept finished jobs (`i64::MAX`:
    /// none), so pruning only reads the job records when one is due;
    /// `None` until first computed.
    oldest_finished: Mutex<Option<i64>>,
    /// Every spawned job task; the manager owns them and can wait for them.
    tasks: tokio::sync::Mutex<JoinSet<()>>,
}

/// What a job does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum JobKind {
    Flush,
    Compact,
}

impl JobKind {
    fn of(job_type: &str) -> Option<Self> {
        match job_type {
            "flush" => Some(Self::Flush),
            "compact" => Some(Self::Compact),
            _ => None,
        }
    }

    fn job_type(&self) -> &'static str {
        match self {
            Self::Flush => "flush",
            Self::Compact => "compact",
        }
    }

    fn id_prefix(&self) -> &'static str {
        match self {
            Self::Flush => "FL",
            Self::Compact => "CO",
        }
    }
}

/// What a job is asked to do beyond its table.
#[derive(Debug, Clone)]
struct Work {
    kind: JobKind,
    /// Compactions: every scope that needs it (by hand), or only those
    /// the policy says are due.
    mode: Mode,
    /// Compactions: these scopes only (the due ones a flush found).
    scopes: Option<Vec<ScopeKey>>,
}

struct ActiveJob {
    job_id: String,
    cancel: Arc<CancelFlag>,
    running: bool,
}

/// What `KILL JOB` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillOutcome {
    /// The job was queued and will never run.
    Dequeued,
    /// The job is running and stops at its next scope boundary.
    Stopping,
}

impl std::fmt::Debug for JobManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobManager").finish_non_exhaustive()
    }
}

impl JobManager {
    /// Jobs are recorded in `store`'s `meta` column family; flushes run
    /// through `flusher`, for tables looked up in `catalog`.
    pub fn new(
        store: Arc<HotStore>,
        catalog: Arc<Catalog>,
        flusher: Arc<Flusher>,
        ids: Arc<SnowflakeGen>,
        clock: Arc<dyn Clock>,
        config: JobsConfig,
    ) -> Self {
        Self {
            store,
            catalog,
            flusher,
            ids,
            clock,
            active: Mutex::new(HashMap::new()),
            permits: Arc::new(Semaphore::new(config.max_parallel.max(1))),
            config,
            oldest_finished: Mutex::new(None),
            tasks: tokio::sync::Mutex::new(JoinSet::new()),
        }
    }

    pub fn list(&self) -> Result<Vec<JobRecord>> {
        self.store
            .meta_scan(meta_keys::JOBS)?
            .into_iter()
            .map(|(_, raw)| serde_json::from_slice(&raw).map_err(CoreError::from))
            .collect()
    }

    pub fn get(&self, job_id: &str) -> Result<Option<JobRecord>> {
        match self.store.meta_get(&meta_keys::job(job_id))? {
            Some(raw) => Ok(Some(serde_json::from_slice(&raw)?)),
            None => Ok(None),
        }
    }

    fn save(&self, record: &JobRecord) -> Result<()> {
        let mut batch = self.store.batch();
        batch.put_meta(
            &meta_keys::job(&record.job_id),
            &serde_json::to_vec(record)?,
        );
        self.store.write(batch)?;
        if let (true, Some(finished)) = (record.status.is_finished(), record.finished_at) {
            if let Some(oldest) = self.oldest_finished.lock().as_mut() {
                *oldest = (*oldest).min(finished);
            }
        }
        Ok(())
    }

    /// Records a job that runs outside the manager (a backup runs within
    /// its statement) so `system.jobs` shows it like any other.
    pub fn record(&self, record: &JobRecord) -> Result<()> {
        self.save(record)
    }

    /// A new job id with `prefix` (`BK` for backups).
    pub fn new_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:x}", self.ids.next_id())
    }

    /// Queues a flush of `def`; returns its job id and whether it is new
    /// (false: a flush of this table was already queued or running).
    pub async fn submit_flush(
        self: &Arc<Self>,
        def: Arc<TableDef>,
        trigger: &str,
    ) -> Result<(String, bool)> {
        let work = Work {
            kind: JobKind::Flush,
            mode: Mode::Full,
            scopes: None,
        };
        self.submit(def, trigger, work).await
    }

    /// Queues a compaction of `def`: of every scope that needs one
    /// (`Mode::Full`, by hand), or of the due ones among `scopes` (`None`:
    /// all). Returns the job id and whether it is new (false: a
    /// compaction of this table was already queued or running).
    pub async fn submit_compact(
        self: &Arc<Self>,
        def: Arc<TableDef>,
        trigger: &str,
        mode: Mode,
        scopes: Option<Vec<ScopeKey>>,
    ) -> Result<(String, bool)> {
        let work = Work {
            kind: JobKind::Compact,
            mode,
            scopes,
        };
        self.submit(def, trigger, work).await
    }

    /// Whether a compaction of the table is queued or running.
    pub fn compacting(&self, table_uid: u64) -> bool {
        self.active
            .lock()
            .contains_key(&(JobKind::Compact, table_uid))
    }

    async fn submit(
        self: &Arc<Self>,
        def: Arc<TableDef>,
        trigger: &str,
        work: Work,
    ) -> Result<(String, bool)> {
        let record = {
            let mut active = self.active.lock();
            if let Some(existing) = active.get(&(work.kind.clone(), def.uid)) {
                return Ok((existing.job_id.clone(), false));
            }
            let mut parameters = json!({ "table_id": def.qualified_name(), "table_uid": def.uid });
            if work.kind == JobKind::Compact {
                parameters["mode"] = json!(mode_name(work.mode));
                if let Some(scopes) = &work.scopes {
                    parameters["scopes"] = json!(scopes.len());
                }
            }
            let record = JobRecord {
                job_id: self.new_id(work.kind.id_prefix()),
                job_type: work.kind.job_type().into(),
                status: JobStatus::Queued,
                namespace_id: def.namespace.to_string(),
                table_name: def.name.to_string(),
                trigger: trigger.to_string(),
                parameters: parameters.to_string(),
                message: None,
                result: None,
                error: None,
                created_at: self.clock.now_micros(),
                started_at: None,
                finished_at: None,
                node_id: NODE_ID.into(),
            };
            self.save(&record)?;
            active.insert((work.kind.clone(), def.uid), ActiveJob::new(&record.job_id));
            record
        };
        let job_id = record.job_id.clone();
        self.spawn(def, record, work).await;
        Ok((job_id, true))
    }

    async fn spawn(self: &Arc<Self>, def: Arc<TableDef>, record: JobRecord, work: Work) {
        let manager = self.clone();
        let mut tasks = self.tasks.lock().await;
        // Reap finished tasks so the set does not grow without bound.
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move { manager.run(def, record, work).await });
    }

    async fn run(self: Arc<Self>, def: Arc<TableDef>, mut record: JobRecord, work: Work) {
        let key = (work.kind.clone(), def.uid);
        let cancel = self.cancel_flag(&key);
        let permit = tokio::select! {
            permit = self.permits.clone().acquire_owned() => permit,
            () = cancel.cancelled() => {
                self.end_cancelled(&def, &mut record, &key);
                return;
            }
        };
        let _permit = permit;
        if cancel.is_set() {
            self.end_cancelled(&def, &mut record, &key);
            return;
        }
        if let Some(active) = self.active.lock().get_mut(&key) {
            active.running = true;
        }
        record.status = JobStatus::Running;
        record.started_at = Some(self.clock.now_micros());
        if let Err(e) = self.save(&record) {
            error!(job_id = %record.job_id, error = %e, "cannot record job start");
        }
        info!(job_id = %record.job_id, job_type = %record.job_type, table = %def.qualified_name(), trigger = %record.trigger, "job started");
        let still_exists = self
            .catalog
            .table(def.namespace.as_str(), def.name.as_str())
            .is_some_and(|t| t.uid == def.uid);
        let options = FlushOptions {
            cancel: Some(cancel.clone()),
            include_waiting: record.trigger == "manual",
        };
        match (still_exists, work.kind) {
            (true, JobKind::Flush) => {
                let span = tracing::info_span!("flush_job", job_id = %record.job_id);
                let outcome = self
                    .flush_with_retries(&def, &mut record, options)
                    .instrument(span)
                    .await;
                self.finish(&def, &mut record, outcome);
            }
            (true, JobKind::Compact) => {
                let span = tracing::info_span!("compact_job", job_id = %record.job_id);
                let hooks = self.flusher.compact_job_hooks();
                let outcome = self
                    .flusher
                    .compact_now(def.clone(), work.scopes, work.mode, Some(cancel), hooks)
                    .instrument(span)
                    .await;
                self.finish_compaction(&def, &mut record, outcome);
            }
            (false, kind) => {
                record.status = JobStatus::Skipped;
                record.finished_at = Some(self.clock.now_micros());
                record.message = Some(format!(
                    "Skipped: {} was dropped before its {} ran",
                    def.qualified_name(),
                    kind.job_type()
                ));
                info!(job_id = %record.job_id, table = %def.qualified_name(), "job skipped: table dropped");
            }
        }
        if let Err(e) = self.save(&record) {
            error!(job_id = %record.job_id, error = %e, "cannot record job end");
        }
        self.active.lock().remove(&key);
    }

    fn finish_compaction(
        &self,
        def: &TableDef,
        record: &mut JobRecord,
        outcome: Result<CompactStats>,
    ) {
        record.finished_at = Some(self.clock.now_micros());
        match outcome {
            Ok(stats) => {
                record.result = serde_json::to_string(&stats).ok();
                if stats.cancelled {
                    record.status = JobStatus::Cancelled;
                    record.message = Some(format!(
                        "Cancelled while compacting {}: {} scope(s) were compacted before it \
                         stopped",
                        def.qualified_name(),
                        stats.scopes
                    ));
                } else {
                    record.status = JobStatus::Completed;
                    record.message = Some(format!(
                        "Compacted {} ({} files into {}, {} tombstones dropped)",
                        def.qualified_name(),
                        stats.files_in,
                        stats.files_out,
                        stats.tombstones_dropped
                    ));
                }
                info!(job_id = %record.job_id, table = %def.qualified_name(), status = record.status.as_str(), result = ?record.result, "compaction job finished");
            }
            Err(e) => {
                record.status = JobStatus::Failed;
                record.message = Some(format!(
                    "Compaction of {} failed; its files are as they were",
                    def.qualified_name()
                ));
                record.error = Some(e.to_string());
                error!(job_id = %record.job_id, table = %def.qualified_name(), error = %e, "compaction job failed");
            }
        }
    }

    /// Runs the flush, and again after a failure (a flush is idempotent:
    /// it moves whatever is hot now), waiting longer each time. The figures
    /// of every attempt add up; the failures are those of the last one.
    async fn flush_with_retries(
        &self,
        def: &Arc<TableDef>,
        record: &mut JobRecord,
        options: FlushOptions,
    ) -> Result<FlushStats> {
        let cancel = options.cancel.clone().unwrap_or_default();
        let hooks: FlushHooks = self.flusher.job_hooks();
        let mut total = FlushStats::default();
        let mut backoff = self.config.retry_backoff;
        for attempt in 0..=self.config.max_retries {
            let outcome = self
                .flusher
                .flush_now(def.clone(), options.clone(), hooks.clone())
                .await;
            let cause = match &outcome {
                Ok(stats) if stats.failed.is_empty() || stats.cancelled => None,
                Ok(stats) => Some(format!(
                    "{} user(s) failed: {}",
                    stats.failed.len(),
                    stats.failed[0].cause
                )),
                Err(e) => Some(e.to_string()),
            };
            if let Ok(stats) = &outcome {
                total.absorb(stats);
            }
            let Some(cause) = cause else {
                return Ok(total);
            };
            // Data no file can hold fails the same way every time.
            let hopeless = matches!(&outcome, Ok(stats) if stats.only_permanent_failures());
            if hopeless || attempt == self.config.max_retries || cancel.is_set() {
                return match outcome {
                    Ok(_) => Ok(total),
                    Err(e) if total.parquet_files == 0 => Err(e),
                    Err(e) => {
                        total.failed.push(ScopeFailure {
                            user: None,
                            cause: e.to_string(),
                            permanent: false,
                        });
                        Ok(total)
                    }
                };
            }
            warn!(job_id = %record.job_id, table = %def.qualified_name(), attempt = attempt + 1, retry_in_ms = backoff.as_millis() as u64, error = %cause, "flush attempt failed; retrying");
            // The cause may name users and paths: it goes to `error`,
            // which only dba and above see in full.
            record.message = Some(format!(
                "Attempt {} of {} failed; retrying in {} ms",
                attempt + 1,
                self.config.max_retries + 1,
                backoff.as_millis()
            ));
            record.error = Some(format!("table {}: {cause}", def.qualified_name()));
            if let Err(e) = self.save(record) {
                error!(job_id = %record.job_id, error = %e, "cannot record a retry");
            }
            #[expect(
                clippy::disallowed_methods,
                reason = "the retry back-off is a delay by design; a kill ends it early"
            )]
            let wait = tokio::time::sleep(backoff);
            tokio::select! {
                () = wait => {}
                () = cancel.cancelled() => {
                    total.cancelled = true;
                    return Ok(total);
                }
            }
            backoff = (backoff * 2).min(Duration::from_secs(60));
        }
        Ok(total)
    }

    /// Removes finished jobs that ended before `before` (microseconds).
    /// Reads the job records only when the oldest kept one is due.
    pub fn prune_finished_before(&self, before: i64) -> Result<usize> {
        {
            let mut oldest = self.oldest_finished.lock();
            if oldest.is_some_and(|oldest| oldest >= before) {
                return Ok(0);
            }
            // Jobs that finish while the records are read lower this.
            *oldest = Some(i64::MAX);
        }
        let mut batch = self.store.batch();
        let mut pruned = 0;
        let mut oldest_kept = i64::MAX;
        let records = self
            .list()
            .inspect_err(|_| *self.oldest_finished.lock() = None)?;
        for record in records {
            match (record.status.is_finished(), record.finished_at) {
                (true, Some(finished)) if finished < before => {
                    batch.delete_meta(&meta_keys::job(&record.job_id));
                    pruned += 1;
                }
                (true, Some(finished)) => oldest_kept = oldest_kept.min(finished),
                _ => {}
            }
        }
        if pruned > 0 {
            self.store.write(batch)?;
        }
        let mut oldest = self.oldest_finished.lock();
        *oldest = Some(oldest.map_or(oldest_kept, |o| o.min(oldest_kept)));
        Ok(pruned)
    }

    /// Asks every queued and running job to stop (shutdown past its
    /// timeout): queued ones never run, running ones stop at a scope
    /// boundary.
    pub fn cancel_all(&self) -> usize {
        let active = self.active.lock();
        for job in active.values() {
            job.cancel.cancel();
        }
        active.len()
    }

    /// Waits until every spawned job has finished, or `timeout` passes;
    /// true if they all finished.
    pub async fn wait_idle_for(&self, timeout: Duration) -> bool {
        tokio::time::timeout(timeout, self.wait_idle())
            .await
            .is_ok()
    }

    fn cancel_flag(&self, key: &(JobKind, u64)) -> Arc<CancelFlag> {
        self.active
            .lock()
            .get(key)
            .map(|a| a.cancel.clone())
            .unwrap_or_default()
    }

    /// Ends a job that was cancelled before it ran.
    fn end_cancelled(&self, def: &TableDef, record: &mut JobRecord, key: &(JobKind, u64)) {
        record.status = JobStatus::Cancelled;
        record.finished_at = Some(self.clock.now_micros());
        record.message = Some(match key.0 {
            JobKind::Flush => cancel_message(def, None),
            JobKind::Compact => format!(
                "Cancelled before it ran; {} was not compacted",
                def.qualified_name()
            ),
        });
        if let Err(e) = self.save(record) {
            error!(job_id = %record.job_id, error = %e, "cannot record job cancellation");
        }
        self.active.lock().remove(key);
        info!(job_id = %record.job_id, table = %def.qualified_name(), "queued job cancelled");
    }

    /// Cancels a queued or running job (`KILL JOB`).
    pub fn kill(&self, job_id: &str) -> Result<KillOutcome> {
        {
            let active = self.active.lock();
            if let Some(job) = active.values().find(|a| a.job_id == job_id) {
                job.cancel.cancel();
                if !job.running {
                    return Ok(KillOutcome::Dequeued);
                }
                // Recorded at once, so the request is visible until the job
                // reaches its next safe point and ends `cancelled`.
                if let Some(mut record) = self.get(job_id)? {
                    if !record.status.is_finished() {
                        record.status = JobStatus::Cancelling;
                        record.message = Some("Cancelling: stops at its next safe point".into());
                        self.save(&record)?;
                    }
                }
                return Ok(KillOutcome::Stopping);
            }
        }
        match self.get(job_id)? {
            None => Err(CoreError::exec(format!("job '{job_id}' not found"))),
            Some(record) if record.status.is_finished() => Err(CoreError::exec(format!(
                "job '{job_id}' has already finished ({})",
                record.status.as_str()
            ))),
            Some(_) => Err(CoreError::Unavailable(format!(
                "job '{job_id}' is being recovered after a restart; try again shortly"
            ))),
        }
    }

    fn finish(&self, def: &TableDef, record: &mut JobRecord, outcome: Result<FlushStats>) {
        record.finished_at = Some(self.clock.now_micros());
        match outcome {
            Ok(stats) if stats.cancelled => {
                record.status = JobStatus::Cancelled;
                record.result = Some(stats_json(&stats));
                record.message = Some(cancel_message(def, Some(&stats)));
            }
            Ok(stats) => {
                record.result = Some(stats_json(&stats));
                if stats.failed.is_empty() {
                    record.status = JobStatus::Completed;
                    // A retry that succeeded leaves no error behind.
                    record.error = None;
                    record.message = Some(format!(
                        "Flushed {} ({} rows, {} files)",
                        def.qualified_name(),
                        stats.rows_flushed,
                        stats.parquet_files
                    ));
                } else {
                    let users: Vec<String> = stats
                        .failed
                        .iter()
                        .map(|f| {
                            format!(
                                "{}: {}{}",
                                f.user.as_deref().unwrap_or("(shared)"),
                                f.cause,
                                if f.permanent {
                                    " (not retried: the data cannot be written as it is)"
                                } else {
                                    ""
                                }
                            )
                        })
                        .collect();
                    record.status = JobStatus::Failed;
                    record.message = Some(format!(
                        "Flush of {} failed for {} scope(s); their rows stay in the hot tier",
                        def.qualified_name(),
                        stats.failed.len()
                    ));
                    record.error = Some(format!(
                        "table {}: failed users: {}",
                        def.qualified_name(),
                        users.join("; ")
                    ));
                }
            }
            Err(e) => {
                record.status = JobStatus::Failed;
                record.message = Some(format!("Flush of {} failed", def.qualified_name()));
                record.error = Some(e.to_string());
            }
        }
        if record.status == JobStatus::Failed {
            error!(job_id = %record.job_id, table = %def.qualified_name(), message = ?record.message, error = ?record.error, "flush job failed");
        } else {
            info!(job_id = %record.job_id, table = %def.qualified_name(), status = record.status.as_str(), result = ?record.result, message = ?record.message, "flush job finished");
        }
    }

    /// Runs again every job a crash left `queued` or `running` (a flush is
    /// idempotent: it moves whatever is hot now).
    pub async fn resume(self: &Arc<Self>) -> Result<usize> {
        let mut resumed = 0;
        for mut record in self.list()? {
            if record.status.is_finished() {
                continue;
            }
            if record.status == JobStatus::Cancelling {
                // Asked to stop before the crash: it stays stopped.
                record.status = JobStatus::Cancelled;
                record.message = Some("Cancelled; the server stopped before it finished".into());
                record.finished_at = Some(self.clock.now_micros());
                self.save(&record)?;
                continue;
            }
            let Some(kind) = JobKind::of(&record.job_type) else {
                // Backups run within their statement: nothing re-runs them.
                record.status = JobStatus::Failed;
                record.error = Some("the server stopped before it finished".into());
                record.finished_at = Some(self.clock.now_micros());
                self.save(&record)?;
                continue;
            };
            let Some(def) = self.catalog.table(&record.namespace_id, &record.table_name) else {
                record.status = JobStatus::Failed;
                record.error = Some("the table no longer exists".into());
                record.finished_at = Some(self.clock.now_micros());
                self.save(&record)?;
                continue;
            };
            {
                let mut active = self.active.lock();
                if active.contains_key(&(kind.clone(), def.uid)) {
                    continue;
                }
                active.insert((kind.clone(), def.uid), ActiveJob::new(&record.job_id));
            }
            info!(job_id = %record.job_id, table = %def.qualified_name(), "re-running job interrupted by a restart");
            record.status = JobStatus::Queued;
            // A compaction re-runs over every scope of the table (the due
            // scopes it was given are not recorded): it merges only what
            // still needs it.
            let mode = match serde_json::from_str::<serde_json::Value>(&record.parameters)
                .ok()
                .and_then(|p| p["mode"].as_str().map(String::from))
                .as_deref()
            {
                Some("due") => Mode::Due,
                _ => Mode::Full,
            };
            let work = Work {
                kind,
                mode,
                scopes: None,
            };
            self.spawn(def, record, work).await;
            resumed += 1;
        }
        Ok(resumed)
    }

    /// Waits until every spawned job has finished.
    pub async fn wait_idle(&self) {
        let mut tasks = self.tasks.lock().await;
        while tasks.join_next().await.is_some() {}
    }
}

impl ActiveJob {
    fn new(job_id: &str) -> Self {
        Self {
            job_id: job_id.to_string(),
            cancel: Arc::default(),
            running: false,
        }
    }
}

fn cancel_message(def: &TableDef, stats: Option<&FlushStats>) -> String {
    match stats {
        None => format!(
            "Cancelled before it ran; {} was not flushed",
            def.qualified_name()
        ),
        Some(stats) => format!(
            "Cancelled while flushing {}: {} rows in {} files were committed before it \
             stopped; the rest stay in the hot tier",
            def.qualified_name(),
            stats.rows_flushed,
            stats.parquet_files
        ),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Full => "full",
        Mode::Due => "due",
    }
}

/// A job's `result` column.
fn stats_json(stats: &FlushStats) -> String {
    json!({
        "rows_flushed": stats.rows_flushed,
        "users_count": stats.users_count,
        "parquet_files": stats.parquet_files,
        "bytes_written": stats.bytes_written,
        "duration_ms": stats.duration_ms,
    })
    .to_string()
}
