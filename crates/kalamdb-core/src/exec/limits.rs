//! What one statement may use: memory inside DataFusion's operators, the
//! size of values that functions build, the rows and bytes of a result, and
//! time. Over a bound the statement fails with `RESOURCE_EXHAUSTED` (or
//! `STATEMENT_TIMEOUT`); the server and the other statements carry on.

use crate::config::QueryLimits;
use crate::error::{CoreError, Result};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{resources_datafusion_err, DataFusionError};
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What every statement plans and runs with: the base DataFusion session
/// (functions and settings), the limits, and the server's query memory.
pub struct QueryEnv {
    pub state: datafusion::execution::SessionState,
    pub limits: QueryLimits,
    pub memory: Arc<GreedyMemoryPool>,
    /// Parsed statements by text.
    pub statements: super::prepared::StatementCache,
    /// Planned queries by text and caller.
    pub plans: super::plan_cache::PlanCache,
    /// Whether direct reads are on (from `limits.direct_reads`; tests
    /// switch it to compare both paths).
    pub direct_reads: std::sync::atomic::AtomicBool,
    /// Queries answered by a direct read (or a constant's kept result).
    pub direct_served: std::sync::atomic::AtomicU64,
}

impl QueryEnv {
    pub fn new(limits: QueryLimits) -> Result<Self> {
        let mut state = super::query::base_session_state();
        super::guarded_fns::guard_functions(&mut state, limits.max_value_bytes)?;
        super::checked_math::checked_sum(&mut state)?;
        Ok(Self {
            state,
            memory: Arc::new(GreedyMemoryPool::new(limits.memory_total)),
            statements: super::prepared::StatementCache::new(limits.statement_cache_entries),
            plans: super::plan_cache::PlanCache::new(limits.plan_cache_entries),
            direct_reads: std::sync::atomic::AtomicBool::new(limits.direct_reads),
            direct_served: std::sync::atomic::AtomicU64::new(0),
            limits,
        })
    }

    /// A runtime for one statement: its own share of the query memory, and
    /// no spilling to disk (an operator over its share fails instead).
    pub fn runtime(&self) -> Result<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
        use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
        Ok(datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(QueryPool::new(
                self.memory.clone(),
                self.limits.memory_per_query,
            )))
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?)
    }
}

/// One statement's share of the server's query memory: it may hold at most
/// its own limit, and all statements together at most the total.
#[derive(Debug)]
pub struct QueryPool {
    total: Arc<GreedyMemoryPool>,
    limit: usize,
    used: AtomicUsize,
}

impl QueryPool {
    pub fn new(total: Arc<GreedyMemoryPool>, limit: usize) -> Self {
        Self {
            total,
            limit,
            used: AtomicUsize::new(0),
        }
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query(used: {}, limit: {})",
            self.used.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "query"
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.total.grow(reservation, additional);
        self.used.fetch_add(additional, Ordering::Relaxed);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.total.shrink(reservation, shrink);
        self.used.fetch_sub(shrink, Ordering::Relaxed);
    }

    fn try_grow(
        &self,
        reservation: &MemoryReservation,
        additional: usize,
    ) -> datafusion::error::Result<()> {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + additional <= self.limit).then_some(used + additional)
            })
            .map_err(|used| {
                resources_datafusion_err!(
                    "the statement needs more than its memory limit of {} MiB \
                     ({} MiB held, {} more asked for by {})",
                    self.limit >> 20,
                    used >> 20,
                    additional.div_ceil(1 << 20),
                    reservation.consumer().name()
                )
            })?;
        if let Err(e) = self.total.try_grow(reservation, additional) {
            self.used.fetch_sub(additional, Ordering::Relaxed);
            return Err(match e {
                DataFusionError::ResourcesExhausted(_) => resources_datafusion_err!(
                    "the server's query memory ({} MiB) is in use by other statements; \
                     retry later",
                    match self.total.memory_limit() {
                        MemoryLimit::Finite(bytes) => bytes >> 20,
                        _ => 0,
                    }
                ),
                other => other,
            });
        }
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// How much of a result a statement has produced, against the result caps.
#[derive(Debug)]
struct ResultBudget {
    rows: usize,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl ResultBudget {
    fn new(limits: &QueryLimits) -> Self {
        Self {
            rows: 0,
            bytes: 0,
            max_rows: limits.max_result_rows,
            max_bytes: limits.max_result_bytes,
        }
    }

    fn take(&mut self, batch: &RecordBatch) -> Result<()> {
        self.rows += batch.num_rows();
        self.bytes += batch.get_array_memory_size();
        if self.rows > self.max_rows {
            return Err(CoreError::ResourceExhausted(format!(
                "the result has more than {} rows; add a LIMIT or a narrower WHERE",
                self.max_rows
            )));
        }
        if self.bytes > self.max_bytes {
            return Err(CoreError::ResourceExhausted(format!(
                "the result is larger than {} MiB; select fewer rows or columns",
                self.max_bytes >> 20
            )));
        }
        Ok(())
    }
}

/// Arrow memory a result may hold before the rest of it is streamed: small
/// results arrive whole (so their errors still get an error response),
/// large ones never sit in memory at once.
pub const STREAM_AFTER_BYTES: usize = 4 << 20;

/// A result collected so far, and the rest of it if it was too large to hold.
pub struct Collected {
    pub batches: Vec<RecordBatch>,
    pub rest: Option<ResultStream>,
}

/// Collects a result stream, failing as soon as it holds more rows or bytes
/// than the limits allow (so a huge result is never built in full). With
/// `stream_after`, stops holding batches once they take that much memory and
/// hands back the rest of the stream instead.
pub async fn collect_bounded(
    mut stream: SendableRecordBatchStream,
    limits: &QueryLimits,
    stream_after: Option<usize>,
) -> Result<Collected> {
    let mut batches = Vec::new();
    let mut budget = ResultBudget::new(limits);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        budget.take(&batch)?;
        batches.push(batch);
        if stream_after.is_some_and(|after| budget.bytes >= after) {
            let rest = ResultStream {
                stream,
                budget,
                deadline: None,
            };
            return Ok(Collected {
                batches,
                rest: Some(rest),
            });
        }
    }
    Ok(Collected {
        batches,
        rest: None,
    })
}

/// The rest of a large result, pulled one batch at a time under the same
/// result caps and the statement's timeout.
pub struct ResultStream {
    stream: SendableRecordBatchStream,
    budget: ResultBudget,
    deadline: Option<(tokio::time::Instant, Duration)>,
}

impl std::fmt::Debug for ResultStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResultStream")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl ResultStream {
    /// The statement started at `started` may run for `timeout` in all,
    /// however long its reader takes.
    pub(crate) fn set_timeout(&mut self, started: tokio::time::Instant, timeout: Duration) {
        self.deadline = Some((started + timeout, timeout));
    }

    /// The next batch; `None` at the end. After an error the result is
    /// incomplete and the stream must not be read further.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        let batch = match self.deadline {
            None => self.stream.next().await,
            Some((at, timeout)) => {
                // `timeout_at` looks at its deadline only when the batch is
                // not ready yet; a stream that always has its next batch
                // ready (the reader being the slow side) would never see it.
                let now = tokio::time::Instant::from_std(kalamdb_commons::clock::monotonic());
                if now >= at {
                    return Some(Err(CoreError::statement_timeout(timeout)));
                }
                match tokio::time::timeout_at(at, self.stream.next()).await {
                    Ok(batch) => batch,
                    Err(_) => return Some(Err(CoreError::statement_timeout(timeout))),
                }
            }
        }?;
        Some(
            batch
                .map_err(CoreError::from)
                .and_then(|batch| self.budget.take(&batch).map(|()| batch)),
        )
    }
}
