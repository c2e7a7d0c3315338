//! Streaming the newest visible version of each row of one scope out of the
//! hot tier, in bounded Arrow batches.

use crate::catalog::TableDef;
use crate::error::CoreError;
use crate::values::ColumnBuilder;
use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Builder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::channel::mpsc;
use futures::SinkExt;
use kalamdb_commons::Value;
use kalamdb_store::{HotStore, ScopeKey};
use std::sync::Arc;

/// Rows per batch a scan produces; memory per scan is bounded by this.
pub const SCAN_BATCH_ROWS: usize = 4096;

#[derive(Debug, Clone)]
pub struct HotScan {
    store: Arc<HotStore>,
    def: Arc<TableDef>,
    scope: ScopeKey,
    schema: SchemaRef,
    /// Indices into the table's columns; `columns.len()` is `_seq`,
    /// `columns.len() + 1` is `_deleted`.
    projection: Vec<usize>,
    limit: Option<usize>,
}

impl HotScan {
    pub fn new(
        store: Arc<HotStore>,
        def: Arc<TableDef>,
        scope: ScopeKey,
        schema: SchemaRef,
        projection: Vec<usize>,
        limit: Option<usize>,
    ) -> Self {
        Self {
            store,
            def,
            scope,
            schema,
            projection,
            limit,
        }
    }

    fn run(self, mut tx: mpsc::Sender<Result<RecordBatch>>) {
        let result = self.scan_into(&mut tx);
        if let Err(e) = result {
            let _ = futures::executor::block_on(tx.send(Err(e)));
        }
    }

    fn scan_into(&self, tx: &mut mpsc::Sender<Result<RecordBatch>>) -> Result<()> {
        let mut batch = BatchBuilder::new(&self.def, &self.projection);
        let mut remaining = self.limit.unwrap_or(usize::MAX);
        let mut failure: Option<DataFusionError> = None;
        let mut receiver_gone = false;
        self.store
            .scan_latest(self.scope.as_bytes(), &mut |_, seq, row| {
                if row.deleted || remaining == 0 {
                    return Ok(remaining > 0);
                }
                if let Err(e) = batch.push(seq, &row.values) {
                    failure = Some(e.into());
                    return Ok(false);
                }
                remaining -= 1;
                if batch.rows == SCAN_BATCH_ROWS {
                    match batch.finish(&self.schema) {
                        Ok(b) => {
                            if futures::executor::block_on(tx.send(Ok(b))).is_err() {
                                receiver_gone = true;
                                return Ok(false);
                            }
                        }
                        Err(e) => {
                            failure = Some(e);
                            return Ok(false);
                        }
                    }
                }
                Ok(remaining > 0)
            })
            .map_err(|e| DataFusionError::from(CoreError::from(e)))?;
        if let Some(e) = failure {
            return Err(e);
        }
        if !receiver_gone && batch.rows > 0 {
            let b = batch.finish(&self.schema)?;
            let _ = futures::executor::block_on(tx.send(Ok(b)));
        }
        Ok(())
    }
}

impl PartitionStream for HotScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel(2);
        let scan = self.clone();
        // RocksDB iteration blocks; keep it off the async workers. The task
        // ends when the scan is done or the query drops the stream.
        tokio::task::spawn_blocking(move || scan.run(tx));
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), rx))
    }
}

/// Accumulates projected rows into Arrow builders.
struct BatchBuilder {
    columns: Vec<Output>,
    rows: usize,
}

enum Output {
    Column(usize, ColumnBuilder),
    Seq(Int64Builder),
    Deleted,
}

impl BatchBuilder {
    fn new(def: &TableDef, projection: &[usize]) -> Self {
        let n = def.columns.len();
        let columns = projection
            .iter()
            .map(|&i| {
                if i < n {
                    Output::Column(
                        i,
                        ColumnBuilder::new(def.columns[i].data_type, SCAN_BATCH_ROWS),
                    )
                } else if i == n {
                    Output::Seq(Int64Builder::with_capacity(SCAN_BATCH_ROWS))
                } else {
                    Output::Deleted
                }
            })
            .collect();
        Self { columns, rows: 0 }
    }

    fn push(&mut self, seq: u64, values: &[Value]) -> Result<(), CoreError> {
        for out in &mut self.columns {
            match out {
                // Rows written under an older schema may have fewer cells.
                Output::Column(i, b) => b.append(values.get(*i).unwrap_or(&Value::Null))?,
                Output::Seq(b) => b.append_value(seq as i64),
                Output::Deleted => {}
            }
        }
        self.rows += 1;
        Ok(())
    }

    fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|out| match out {
                Output::Column(_, b) => b.finish(),
                Output::Seq(b) => Arc::new(b.finish()) as ArrayRef,
                Output::Deleted => Arc::new(BooleanArray::from(vec![false; rows])) as ArrayRef,
            })
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            schema.clone(),
            arrays,
            &options,
        )?)
    }
}
