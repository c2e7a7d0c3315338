//! The DataFusion side of a table scan: one scope's visible rows
//! ([`crate::read::ScopeView`]) as a stream of bounded Arrow batches, read
//! on a blocking thread and handed over through a bounded channel, so the
//! scan waits while the query is busy. Filters run above this scan, after
//! version resolution, so a stale version never matches.

use crate::catalog::TableDef;
use crate::error::CoreError;
use crate::read::{table_columns, FileRead, ProjectingSink, ScopeView, TxOverlay, Versions};
use crate::services::Services;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::metrics::Count;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use kalamdb_commons::Value;
use kalamdb_filestore::KeyRange;
use kalamdb_store::{ScopeKey, StoreSnapshot};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

/// What a scan did, for EXPLAIN ANALYZE.
pub struct ScanMetrics {
    pub keys_sought: Count,
    pub rows_read: Count,
    pub files_read: Count,
    pub files_pruned: Count,
}

#[derive(Debug, Clone)]
pub struct ScopeScan {
    services: Arc<Services>,
    def: Arc<TableDef>,
    scope: ScopeKey,
    schema: SchemaRef,
    /// Indices into the table's columns; `columns.len()` is `_seq`,
    /// `columns.len() + 1` is `_deleted`.
    projection: Vec<usize>,
    limit: Option<usize>,
    /// Only these primary keys (from `pk = literal` or `pk IN (...)`).
    points: Option<Vec<Value>>,
    /// Deleted rows too, with `_deleted` true.
    tombstones: bool,
    /// The key range the query's filters allow (files' parts outside it
    /// are skipped), and the ranges they allow other columns.
    range: Option<KeyRange>,
    values: Vec<KeyRange>,
    /// A transaction's snapshot and writes, over a fresh snapshot.
    overlay: Option<TxOverlay>,
}

impl ScopeScan {
    pub fn new(
        services: Arc<Services>,
        def: Arc<TableDef>,
        scope: ScopeKey,
        schema: SchemaRef,
        projection: Vec<usize>,
        limit: Option<usize>,
        points: Option<Vec<Value>>,
    ) -> Self {
        Self {
            services,
            def,
            scope,
            schema,
            projection,
            limit,
            points,
            tombstones: false,
            range: None,
            values: Vec::new(),
            overlay: None,
        }
    }

    /// A scan as a transaction's statement sees the scope.
    pub fn with_overlay(mut self, overlay: TxOverlay) -> Self {
        self.overlay = Some(overlay);
        self
    }

    /// A scan whose files are read only where keys may lie in `range`
    /// (and, where that is safe, where other columns may lie in `values`).
    pub fn with_ranges(mut self, range: Option<KeyRange>, values: Vec<KeyRange>) -> Self {
        self.range = range;
        self.values = values;
        self
    }

    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    pub fn table_name(&self) -> String {
        self.def.qualified_name()
    }

    pub fn keys(&self) -> Option<&[Value]> {
        self.points.as_deref()
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub fn tombstones(&self) -> bool {
        self.tombstones
    }

    /// At most `limit` rows (the smaller, when it already had a limit).
    pub fn with_limit(mut self, limit: Option<usize>) -> Self {
        self.limit = match (self.limit, limit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => b.or(a),
        };
        self
    }

    /// A scan that also returns deleted rows, with `_deleted` true.
    pub fn with_tombstones(mut self, yes: bool) -> Self {
        self.tombstones = yes;
        self
    }

    fn run(self, handle: Handle, mut tx: mpsc::Sender<Result<RecordBatch>>, metrics: ScanMetrics) {
        // A panic must end the query with an error, never look like the
        // end of the rows.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.scan_into(&handle, &mut tx, &metrics)
        }));
        let error = match outcome {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(panic) => {
                let detail = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                tracing::error!(table = %self.def.qualified_name(), panic = %detail, "scan panicked");
                CoreError::Internal(format!(
                    "scan of {} failed: {detail}",
                    self.def.qualified_name()
                ))
            }
        };
        let _ = tx.blocking_send(Err(error.into()));
    }

    fn scan_into(
        &self,
        handle: &Handle,
        tx: &mut mpsc::Sender<Result<RecordBatch>>,
        metrics: &ScanMetrics,
    ) -> Result<(), CoreError> {
        let snapshot = self.services.hot.store().snapshot();
        let view = self.view(&snapshot)?;
        let cold = self.services.storages.for_table(&self.def)?;
        // A point lookup reads its keys, from the files that may hold them.
        let found = match &self.points {
            Some(keys) => Some(view.lookup(&cold, handle, keys)?),
            None => None,
        };
        // A bounded channel: the scan waits while the query is busy.
        let mut send = |batch: RecordBatch| tx.blocking_send(Ok(batch)).is_ok();
        self.answer(&view, found, metrics, &mut send, |sink| {
            view.scan(&cold, handle, sink)
        })
    }

    fn view<'s>(&'s self, snapshot: &'s StoreSnapshot<'s>) -> Result<ScopeView<'s>, CoreError> {
        let view = ScopeView::open(snapshot, &self.def, &self.scope)?;
        let view = match &self.overlay {
            Some(overlay) => view.in_transaction(overlay.clone())?,
            None => view,
        };
        Ok(view.with_tombstones(self.tombstones).reading(FileRead {
            columns: Some(table_columns(&self.def, &self.projection)),
            range: self.range.clone(),
            values: self.values.clone(),
            seq: self.projection.contains(&self.def.columns.len()),
        }))
    }

    /// Sends the rows through `send`, counted in `metrics`: the versions a
    /// lookup `found`, or (no lookup) what `scan` puts into the sink.
    fn answer(
        &self,
        view: &ScopeView<'_>,
        found: Option<Versions>,
        metrics: &ScanMetrics,
        send: &mut dyn FnMut(RecordBatch) -> bool,
        scan: impl FnOnce(&mut ProjectingSink<'_>) -> Result<(), CoreError>,
    ) -> Result<(), CoreError> {
        let mut counted = |batch: RecordBatch| {
            metrics.rows_read.add(batch.num_rows());
            send(batch)
        };
        let mut sink = ProjectingSink::new(
            &self.def,
            &self.projection,
            &self.schema,
            self.limit,
            self.tombstones,
            &mut counted,
        );
        match found {
            Some(found) => {
                metrics
                    .keys_sought
                    .add(self.points.as_ref().map_or(0, Vec::len));
                view.emit_found(&mut sink, found)?;
            }
            None => scan(&mut sink)?,
        }
        sink.flush()?;
        let (read, of) = view.files_read();
        metrics.files_read.add(read);
        metrics.files_pruned.add(of.saturating_sub(read));
        Ok(())
    }
}

impl ScopeScan {
    /// A point lookup answered by the hot tier and the file cache alone
    /// (nothing waits, so on the caller's task): UPDATE and DELETE by key
    /// find their rows so under the scope's lock without a thread hop.
    /// `None` when a file would have to be read, or for a scan.
    fn lookup_in_place(
        &self,
        metrics: &ScanMetrics,
    ) -> Result<Option<Vec<RecordBatch>>, CoreError> {
        let Some(keys) = &self.points else {
            return Ok(None);
        };
        let snapshot = self.services.hot.store().snapshot();
        let view = self.view(&snapshot)?;
        let cold = self.services.storages.for_table(&self.def)?;
        let Some(found) = view.lookup_in_place(&cold, keys)? else {
            return Ok(None);
        };
        let mut batches = Vec::new();
        let mut keep = |batch: RecordBatch| {
            batches.push(batch);
            true
        };
        self.answer(&view, Some(found), metrics, &mut keep, |_| Ok(()))?;
        Ok(Some(batches))
    }

    /// Runs the scan on a blocking thread; its batches arrive through a
    /// bounded channel. A point lookup the caches answer runs in place.
    pub fn stream(&self, metrics: ScanMetrics) -> SendableRecordBatchStream {
        self.services
            .reads
            .record(self.def.uid, self.points.is_some());
        // An error here is met again (and reported) on the blocking path.
        if let Ok(Some(batches)) = self.lookup_in_place(&metrics) {
            let batches = futures::stream::iter(batches.into_iter().map(Ok));
            return Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches));
        }
        let (tx, rx) = mpsc::channel(2);
        let scan = self.clone();
        let handle = Handle::current();
        let guard = self.services.hot.scans().enter();
        // The task ends when the scan is done or the query drops the
        // stream; the guard lets the engine wait for it when closing.
        tokio::task::spawn_blocking(move || {
            scan.run(handle, tx, metrics);
            drop(guard);
        });
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}
