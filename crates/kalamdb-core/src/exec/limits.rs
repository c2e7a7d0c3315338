//! What one statement may use: memory inside DataFusion's operators, the
//! size of values that functions build, the rows and bytes of a result, and
//! time. Over a bound the statement fails with `RESOURCE_EXHAUSTED` (or
//! `STATEMENT_TIMEOUT`); the server and the other statements carry on.

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

/// Bounds for statements (config `[limits]`).
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Memory DataFusion's operators (sorts, joins, aggregates) may hold
    /// for one statement.
    pub memory_per_query: usize,
    /// The same for all statements together.
    pub memory_total: usize,
    /// Largest value a function may build (`repeat`, `lpad`, `range`,
    /// `array_repeat`, ...), summed over the rows of one batch.
    pub max_value_bytes: usize,
    /// Rows and bytes (Arrow memory) a result may hold.
    pub max_result_rows: usize,
    pub max_result_bytes: usize,
    /// Statements in one request.
    pub max_statements: usize,
    /// Time one statement may take; zero: no limit.
    pub statement_timeout: Duration,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            memory_per_query: 256 << 20,
            memory_total: 1 << 30,
            max_value_bytes: 64 << 20,
            max_result_rows: 1_000_000,
            max_result_bytes: 256 << 20,
            max_statements: 10_000,
            statement_timeout: Duration::from_secs(60),
        }
    }
}

/// What every statement plans and runs with: the base DataFusion session
/// (functions and settings), the limits, and the server's query memory.
pub struct QueryEnv {
    pub state: datafusion::execution::SessionState,
    pub limits: QueryLimits,
    pub memory: Arc<GreedyMemoryPool>,
}

impl QueryEnv {
    pub fn new(limits: QueryLimits) -> Result<Self> {
        let mut state = super::query::base_session_state();
        super::guarded_fns::guard_functions(&mut state, limits.max_value_bytes)?;
        super::checked_math::checked_sum(&mut state)?;
        Ok(Self {
            state,
            memory: Arc::new(GreedyMemoryPool::new(limits.memory_total)),
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

/// Collects a result stream, failing as soon as it holds more rows or bytes
/// than the limits allow (so a huge result is never built in full).
pub async fn collect_bounded(
    mut stream: SendableRecordBatchStream,
    limits: &QueryLimits,
) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    let (mut rows, mut bytes) = (0usize, 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if rows > limits.max_result_rows {
            return Err(CoreError::ResourceExhausted(format!(
                "the result has more than {} rows; add a LIMIT or a narrower WHERE",
                limits.max_result_rows
            )));
        }
        if bytes > limits.max_result_bytes {
            return Err(CoreError::ResourceExhausted(format!(
                "the result is larger than {} MiB; select fewer rows or columns",
                limits.max_result_bytes >> 20
            )));
        }
        batches.push(batch);
    }
    Ok(batches)
}
