//! The scheduler: turns flush policies and the hot-tier budget into flush
//! jobs, scopes with too many files into compaction jobs, and prunes old
//! job history.
//!
//! A table is flushed when its buffered versions reach its row limit, or
//! when its interval has passed since its last flush while it has buffered
//! versions, whichever comes first. Above the global budget the largest
//! tables are flushed first (trigger `memory`); far above it writes are
//! refused with a retryable error until flushes catch up. Every decision is
//! made by [`Scheduler::tick`] from the injected clock, so tests drive it
//! without sleeping; the server runs it in a loop.

use crate::catalog::{Catalog, TableDef};
use crate::compact::Mode;
use crate::error::Result;
use crate::flush::Flusher;
use crate::hot::{Buffered, HotTier};
use crate::jobs::JobManager;
use kalamdb_commons::{Clock, TableType};
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info, warn};

#[derive(Debug, Clone)]
pub struct SchedulerConfig {
    /// How often policies are checked (writes that cross a limit wake the
    /// scheduler at once).
    pub tick: Duration,
    /// Hot-tier budget in buffered versions; 0: none.
    pub budget_rows: u64,
    /// Hot-tier budget in bytes (keys + values); 0: none.
    pub budget_bytes: u64,
    /// Writes are refused while the hot tier holds more than this many
    /// times the budget.
    pub hard_limit_factor: f64,
    /// Finished jobs older than this are removed from `system.jobs`.
    pub job_history_ttl: Duration,
    /// A scope whose flush failed for a reason retries cannot fix is left
    /// out of flushes this long, doubled after each further failure up to
    /// `failed_scope_backoff_max`.
    pub failed_scope_backoff: Duration,
    pub failed_scope_backoff_max: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(1),
            budget_rows: 0,
            budget_bytes: 1024 * 1024 * 1024,
            hard_limit_factor: 2.0,
            job_history_ttl: Duration::from_secs(7 * 24 * 3600),
            failed_scope_backoff: Duration::from_secs(60),
            failed_scope_backoff_max: Duration::from_secs(3600),
        }
    }
}

/// What one tick started: (table, trigger, job id).
pub type Started = Vec<(String, &'static str, String)>;

/// Decides which tables to flush, from their policies, the hot tier's
/// counters and its budget, and starts their jobs.
pub struct Scheduler {
    catalog: Arc<Catalog>,
    hot: Arc<HotTier>,
    flusher: Arc<Flusher>,
    jobs: Arc<JobManager>,
    clock: Arc<dyn Clock>,
    config: SchedulerConfig,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    pub fn new(
        catalog: Arc<Catalog>,
        hot: Arc<HotTier>,
        flusher: Arc<Flusher>,
        jobs: Arc<JobManager>,
        clock: Arc<dyn Clock>,
        config: SchedulerConfig,
    ) -> Self {
        Self {
            catalog,
            hot,
            flusher,
            jobs,
            clock,
            config,
        }
    }

    pub fn config(&self) -> &SchedulerConfig {
        &self.config
    }

    /// Waits for the next tick, or less when a write signals pressure.
    pub async fn wait(&self) {
        self.hot.wait_for_pressure(self.config.tick).await;
    }

    /// Checks every table's policy and the budget once, starting the flush
    /// jobs that are due, and prunes old job history.
    pub async fn tick(&self) -> Result<Started> {
        self.tick_with(None).await
    }

    /// The first tick after start-up: flushes that are already due (rows
    /// buffered before a stop or crash) are recorded with trigger `startup`.
    pub async fn startup_tick(&self) -> Result<Started> {
        self.tick_with(Some("startup")).await
    }

    async fn tick_with(&self, due_trigger: Option<&'static str>) -> Result<Started> {
        let now = self.clock.now_micros();
        let mut started = Vec::new();
        let mut sizes = Vec::new();
        // What the flushes started by policy will free.
        let mut freed = (0u64, 0u64);
        for def in self.catalog.tables() {
            if def.table_type == TableType::Stream {
                continue;
            }
            let Some(mut buffered) = self.hot.counters().get(def.uid) else {
                continue;
            };
            // Versions of scopes that wait after a permanent failure would
            // make the table due at every tick; they are not counted.
            let (held_rows, held_bytes) = self.flusher.backoff().held_by_waiting(def.uid, now);
            buffered.rows = buffered.rows.saturating_sub(held_rows);
            buffered.bytes = buffered.bytes.saturating_sub(held_bytes);
            if buffered.rows == 0 {
                continue;
            }
            let policy = def.effective_flush_policy();
            let trigger = if policy.row_limit.is_some_and(|l| buffered.rows >= l) {
                Some("row_limit")
            } else if policy.interval_secs.is_some_and(|secs| {
                now.saturating_sub(buffered.last_flush_at) >= secs as i64 * 1_000_000
            }) {
                Some("interval")
            } else {
                None
            };
            match trigger.map(|t| due_trigger.unwrap_or(t)) {
                Some(trigger) => {
                    self.start_flush(&def, trigger, &mut started).await?;
                    freed.0 += buffered.rows;
                    freed.1 += buffered.bytes;
                }
                None => sizes.push((buffered, def)),
            }
        }
        self.flush_for_budget(sizes, freed, &mut started).await?;
        self.compact_due(&mut started).await?;
        if self.flusher.retired.waiting() > 0 {
            let removed = self
                .flusher
                .retired
                .sweep(self.hot.store(), self.flusher.storages(), false)
                .await?;
            if removed > 0 {
                debug!(removed, "removed files compactions replaced");
            }
        }
        let ttl = self.config.job_history_ttl.as_micros() as i64;
        let pruned = self.jobs.prune_finished_before(now.saturating_sub(ttl))?;
        if pruned > 0 {
            debug!(pruned, "removed old job history");
        }
        Ok(started)
    }

    /// Starts a compaction of each table whose flushes found scopes with
    /// more files than its policy allows (trigger `files`). A table being
    /// compacted keeps its due scopes for a later tick.
    async fn compact_due(&self, started: &mut Started) -> Result<()> {
        for uid in self.flusher.due.tables() {
            if self.jobs.compacting(uid) {
                continue;
            }
            let scopes = self.flusher.due.take(uid);
            let Some(def) = self.catalog.tables().into_iter().find(|t| t.uid == uid) else {
                continue;
            };
            let (job_id, new) = self
                .jobs
                .submit_compact(def.clone(), "files", Mode::Due, Some(scopes))
                .await?;
            if new {
                info!(table = %def.qualified_name(), %job_id, "scheduled compaction");
                started.push((def.qualified_name(), "files", job_id));
            }
        }
        Ok(())
    }

    async fn start_flush(
        &self,
        def: &Arc<TableDef>,
        trigger: &'static str,
        started: &mut Started,
    ) -> Result<()> {
        let (job_id, new) = self.jobs.submit_flush(def.clone(), trigger).await?;
        if new {
            info!(table = %def.qualified_name(), trigger, %job_id, "scheduled flush");
            started.push((def.qualified_name(), trigger, job_id));
        }
        Ok(())
    }

    /// Above the budget: flush the largest tables (by bytes) until what
    /// stays buffered is within it.
    async fn flush_for_budget(
        &self,
        mut sizes: Vec<(Buffered, Arc<TableDef>)>,
        freed: (u64, u64),
        started: &mut Started,
    ) -> Result<()> {
        let budget = self.hot.budget();
        let mut rows = self.hot.counters().total_rows().saturating_sub(freed.0);
        let mut bytes = self.hot.counters().total_bytes().saturating_sub(freed.1);
        if !budget.exceeded(rows, bytes, 1.0) {
            return Ok(());
        }
        warn!(
            rows,
            bytes, "hot tier above its budget; flushing the largest tables"
        );
        sizes.sort_by(|a, b| b.0.bytes.cmp(&a.0.bytes).then(b.0.rows.cmp(&a.0.rows)));
        for (buffered, def) in sizes {
            if !budget.exceeded(rows, bytes, 1.0) {
                break;
            }
            self.start_flush(&def, "memory", started).await?;
            rows = rows.saturating_sub(buffered.rows);
            bytes = bytes.saturating_sub(buffered.bytes);
        }
        Ok(())
    }
}
