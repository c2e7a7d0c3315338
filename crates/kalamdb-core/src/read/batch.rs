//! Accumulating row versions into Arrow batches.

use crate::catalog::{SchemaHistory, TableDef};
use crate::error::CoreError;
use crate::values::ColumnBuilder;
use datafusion::arrow::array::{ArrayRef, BooleanBuilder, Int64Builder};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::error::Result;
use kalamdb_commons::Value;
use kalamdb_store::RowVersion;
use std::sync::Arc;

/// Rows per batch that scans and flushes produce; memory per scan or flush
/// step is bounded by this.
pub const BATCH_ROWS: usize = 4096;

/// Builds batches of a projection of a table's columns plus, optionally,
/// `_seq` and `_deleted` (projection indices `columns.len()` and
/// `columns.len() + 1`).
pub struct BatchBuilder {
    columns: Vec<Output>,
    /// Per table column, its place among `columns` (for versions read in
    /// place); `None` when it is not projected, or when the projection
    /// names a column twice (then versions are decoded first).
    by_column: Option<Vec<Option<usize>>>,
    pub rows: usize,
    /// The table's schema version the columns are of, and its history (to
    /// map stored versions of other schema versions).
    schema_version: u32,
    schemas: Arc<SchemaHistory>,
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
        let mut by_column = vec![None; n];
        for (at, &i) in projection.iter().enumerate() {
            if i < n {
                if by_column[i].is_some() {
                    return Self {
                        columns,
                        by_column: None,
                        rows: 0,
                        schema_version: def.schema_version,
                        schemas: def.schemas.clone(),
                    };
                }
                by_column[i] = Some(at);
            }
        }
        Self {
            columns,
            by_column: Some(by_column),
            rows: 0,
            schema_version: def.schema_version,
            schemas: def.schemas.clone(),
        }
    }

    /// A stored version's values in this builder's schema version.
    fn def_upgrade(&self, mut row: RowVersion) -> Result<RowVersion, CoreError> {
        if row.schema_version != self.schema_version {
            let map = self.schemas.map(row.schema_version, self.schema_version)?;
            row.values = map.apply(std::mem::take(&mut row.values));
            row.schema_version = self.schema_version;
        }
        Ok(row)
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

    /// Adds a decoded stored version of any schema version (as a live
    /// row, whatever its tombstone flag says).
    pub fn push_version(&mut self, seq: u64, row: &RowVersion) -> Result<(), CoreError> {
        if row.schema_version == self.schema_version {
            return self.push(seq, false, &row.values);
        }
        let row = self.def_upgrade(row.clone())?;
        self.push(seq, false, &row.values)
    }

    /// Adds a stored version (`RowVersion`'s encoding) without decoding it
    /// into values first: each cell goes straight into its column. Returns
    /// whether it is a tombstone. After an error the builder holds part of
    /// the row: its batch is to be given up.
    pub fn push_encoded(&mut self, seq: u64, version: &[u8]) -> Result<bool, CoreError> {
        let mut row = RowVersion::cells(version)?;
        let by_column = match &self.by_column {
            Some(by_column) if row.schema_version == self.schema_version => by_column,
            // Another schema version's cells are in another order: mapped
            // through values (rare: rows written before an ALTER TABLE).
            _ => {
                let row = self.def_upgrade(RowVersion::decode(version)?)?;
                self.push(seq, row.deleted, &row.values)?;
                return Ok(row.deleted);
            }
        };
        let mut cells = 0;
        while let Some(cell) = row.next_cell()? {
            if let Some(&Some(at)) = by_column.get(cells) {
                if let Output::Column(_, b) = &mut self.columns[at] {
                    b.append_cell(cell)?;
                }
            }
            cells += 1;
        }
        for out in &mut self.columns {
            match out {
                // Rows written under an older schema may have fewer cells.
                Output::Column(i, b) if *i >= cells => b.append(&Value::Null)?,
                Output::Column(..) => {}
                Output::Seq(b) => b.append_value(seq as i64),
                Output::Deleted(b) => b.append_value(row.deleted),
            }
        }
        self.rows += 1;
        Ok(row.deleted)
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
