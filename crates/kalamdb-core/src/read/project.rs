//! A [`RowSink`] that builds the visible rows of a scan into Arrow batches
//! of a projection, handing each finished batch to its consumer (a query's
//! channel, or a direct read's result).

use super::{BatchBuilder, FileBatch, RowSink, BATCH_ROWS};
use crate::catalog::TableDef;
use crate::error::Result;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_commons::Value;

/// Where finished batches go; returns whether to go on.
pub type BatchOut<'a> = dyn FnMut(RecordBatch) -> bool + 'a;

pub struct ProjectingSink<'a> {
    def: &'a TableDef,
    /// Indices into the table's columns; `columns.len()` is `_seq`,
    /// `columns.len() + 1` is `_deleted`.
    projection: &'a [usize],
    schema: &'a SchemaRef,
    tombstones: bool,
    builder: BatchBuilder,
    remaining: usize,
    out: &'a mut BatchOut<'a>,
}

impl<'a> ProjectingSink<'a> {
    /// At most `limit` rows; `tombstones` as for
    /// [`super::ScopeView::with_tombstones`].
    pub fn new(
        def: &'a TableDef,
        projection: &'a [usize],
        schema: &'a SchemaRef,
        limit: Option<usize>,
        tombstones: bool,
        out: &'a mut BatchOut<'a>,
    ) -> Self {
        let remaining = limit.unwrap_or(usize::MAX);
        Self {
            builder: BatchBuilder::with_capacity(def, projection, remaining.min(BATCH_ROWS)),
            def,
            projection,
            schema,
            tombstones,
            remaining,
            out,
        }
    }

    /// Hands over what the builder holds; `false` once the consumer has
    /// gone away.
    pub fn flush(&mut self) -> Result<bool> {
        if self.builder.rows == 0 {
            return Ok(true);
        }
        let batch = self.builder.finish(self.schema)?;
        Ok((self.out)(batch))
    }

    fn push(&mut self, seq: u64, deleted: bool, values: &[Value]) -> Result<bool> {
        if self.remaining == 0 {
            return Ok(false);
        }
        self.builder.push(seq, deleted, values)?;
        self.remaining -= 1;
        if self.builder.rows >= BATCH_ROWS && !self.flush()? {
            return Ok(false);
        }
        Ok(self.remaining > 0)
    }
}

impl RowSink for ProjectingSink<'_> {
    fn row(&mut self, seq: u64, values: &[Value]) -> Result<bool> {
        self.push(seq, false, values)
    }

    fn tombstone(&mut self, seq: u64, values: &[Value]) -> Result<bool> {
        self.push(seq, true, values)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool> {
        // Rows built so far come first.
        if !self.flush()? {
            return Ok(false);
        }
        let mut batch = rows.project(
            self.def,
            self.projection,
            self.schema,
            from..rows.len(),
            self.tombstones,
        )?;
        if batch.num_rows() > self.remaining {
            batch = batch.slice(0, self.remaining);
        }
        self.remaining -= batch.num_rows();
        if batch.num_rows() > 0 && !(self.out)(batch) {
            return Ok(false);
        }
        Ok(self.remaining > 0)
    }
}

/// A [`RowSink`] that only counts visible rows (`COUNT(*)`).
#[derive(Default)]
pub struct CountingSink {
    pub rows: u64,
}

impl RowSink for CountingSink {
    fn row(&mut self, _seq: u64, _values: &[Value]) -> Result<bool> {
        self.rows += 1;
        Ok(true)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool> {
        let live = (from..rows.len()).filter(|&r| !rows.is_deleted(r)).count();
        self.rows += live as u64;
        Ok(true)
    }
}
