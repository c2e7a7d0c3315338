//! Accumulating row versions into Arrow batches.

use crate::catalog::TableDef;
use crate::error::CoreError;
use crate::values::ColumnBuilder;
use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Int64Builder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::Result;
use kalamdb_commons::Value;
use std::sync::Arc;

/// Rows per batch that scans and flushes produce; memory per scan or flush
/// step is bounded by this.
pub const BATCH_ROWS: usize = 4096;

/// Builds batches of a projection of a table's columns plus, optionally,
/// `_seq` and `_deleted` (projection indices `columns.len()` and
/// `columns.len() + 1`).
pub struct BatchBuilder {
    columns: Vec<Output>,
    pub rows: usize,
}

enum Output {
    Column(usize, ColumnBuilder),
    Seq(Int64Builder),
    Deleted(BooleanBuilder),
}

impl BatchBuilder {
    pub fn new(def: &TableDef, projection: &[usize]) -> Self {
        Self::with_capacity(def, projection, BATCH_ROWS)
    }

    /// A builder whose columns first make room for `rows` rows (a point
    /// lookup needs a few, a scan [`BATCH_ROWS`]).
    pub fn with_capacity(def: &TableDef, projection: &[usize], rows: usize) -> Self {
        let n = def.columns.len();
        let columns = projection
            .iter()
            .map(|&i| {
                if i < n {
                    Output::Column(i, ColumnBuilder::new(def.columns[i].data_type, rows))
                } else if i == n {
                    Output::Seq(Int64Builder::with_capacity(rows))
                } else {
                    Output::Deleted(BooleanBuilder::with_capacity(rows))
                }
            })
            .collect();
        Self { columns, rows: 0 }
    }

    pub fn push(&mut self, seq: u64, deleted: bool, values: &[Value]) -> Result<(), CoreError> {
        for out in &mut self.columns {
            match out {
                // Rows written under an older schema may have fewer cells.
                Output::Column(i, b) => b.append(values.get(*i).unwrap_or(&Value::Null))?,
                Output::Seq(b) => b.append_value(seq as i64),
                Output::Deleted(b) => b.append_value(deleted),
            }
        }
        self.rows += 1;
        Ok(())
    }

    pub fn finish(&mut self, schema: &SchemaRef) -> Result<RecordBatch> {
        let rows = std::mem::take(&mut self.rows);
        let arrays: Vec<ArrayRef> = self
            .columns
            .iter_mut()
            .map(|out| match out {
                Output::Column(_, b) => b.finish(),
                Output::Seq(b) => Arc::new(b.finish()) as ArrayRef,
                Output::Deleted(b) => Arc::new(b.finish()) as ArrayRef,
            })
            .collect();
        Ok(batch_of(schema, arrays, rows)?)
    }
}

/// A batch of `rows` rows (explicit, so a batch of no columns keeps its
/// row count).
pub(super) fn batch_of(
    schema: &SchemaRef,
    arrays: Vec<ArrayRef>,
    rows: usize,
) -> std::result::Result<RecordBatch, datafusion::arrow::error::ArrowError> {
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    RecordBatch::try_new_with_options(schema.clone(), arrays, &options)
}
