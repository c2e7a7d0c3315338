//! The one decoder of committed Parquet rows: a file batch, with the
//! table's columns cast to their current types, readable row by row (as a
//! [`Version`]) or, for rows no other version can override, as Arrow
//! columns without per-row conversion.

use super::Version;
use crate::catalog::{Slot, TableDef};
use crate::error::{CoreError, Result};
use crate::schema::DELETED_COLUMN;
use crate::values::{cast_to_column, value_at, ColumnBuilder};
use datafusion::arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch,
};
use datafusion::arrow::compute::{filter, not};
use datafusion::arrow::datatypes::{Int64Type, SchemaRef};
use kalamdb_commons::Value;
use kalamdb_filestore::SEQ_COLUMN;
use kalamdb_store::ScopeKey;
use std::sync::Arc;

/// A committed file that cannot be read: a server fault, named with its
/// table and file so the rest keeps working and the cause is found.
pub fn unreadable_file(def: &TableDef, path: &str, e: impl std::fmt::Display) -> CoreError {
    CoreError::UnreadableFile {
        table: def.qualified_name(),
        path: path.to_string(),
        cause: e.to_string(),
    }
}

/// One batch of a file, decoded.
pub struct FileBatch {
    rows: usize,
    /// The table's columns by name, cast to their current types; `None`
    /// for a column the file does not have (added after it was written).
    columns: Vec<Option<ArrayRef>>,
    /// `None` only for a batch read without `_seq` ([`Self::decode_columns`]).
    seqs: Option<Int64Array>,
    deleted: Option<BooleanArray>,
}

impl FileBatch {
    /// A batch of a file written under schema version `version`.
    pub fn decode(def: &TableDef, version: u32, batch: &RecordBatch, path: &str) -> Result<Self> {
        let decoded = Self::decode_columns(def, version, batch)?;
        if decoded.seqs.is_none() {
            return Err(unreadable_file(def, path, "it has no _seq column"));
        }
        if decoded.columns[def.pk_index()].is_none() {
            return Err(unreadable_file(def, path, "it has no primary key column"));
        }
        Ok(decoded)
    }

    /// A batch of whichever columns were read (a scan that needs neither
    /// keys nor `_seq` reads neither): only for [`Self::project`] and
    /// [`Self::is_deleted`]. Columns are found by the names the file's
    /// schema version gave them; a column added after it reads as its
    /// fill (NULL by default).
    pub fn decode_columns(def: &TableDef, version: u32, batch: &RecordBatch) -> Result<Self> {
        let schema = batch.schema();
        let map = def.map_from(version)?;
        let by_name = |name: &str, t| match schema.index_of(name) {
            Ok(i) => cast_to_column(batch.column(i), t).map(Some),
            Err(_) => Ok(None),
        };
        let columns = def
            .columns
            .iter()
            .enumerate()
            .map(|(j, column)| match map.as_deref().map(|m| &m.slots[j]) {
                None => by_name(&column.name, column.data_type),
                Some(Slot::Cell { name, .. }) => by_name(name, column.data_type),
                Some(Slot::Fill(Value::Null)) => Ok(None),
                Some(Slot::Fill(value)) => {
                    constant(value, column.data_type, batch.num_rows()).map(Some)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            rows: batch.num_rows(),
            columns,
            seqs: schema
                .index_of(SEQ_COLUMN)
                .ok()
                .map(|i| batch.column(i).as_primitive::<Int64Type>().clone()),
            deleted: schema
                .index_of(DELETED_COLUMN)
                .ok()
                .map(|i| batch.column(i).as_boolean().clone()),
        })
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    /// The encoded key (scope prefix included) of row `r`.
    pub fn key(&self, def: &TableDef, scope: &ScopeKey, r: usize) -> Result<Vec<u8>> {
        let pk = def.pk_index();
        let array = self.columns[pk].as_ref().expect("checked in decode");
        Ok(scope.pk_prefix(&value_at(array, r, def.columns[pk].data_type)?)?)
    }

    /// Row `r`'s `_seq`, when the batch was read with it.
    pub fn seq(&self, r: usize) -> Option<u64> {
        self.seqs.as_ref().map(|s| s.value(r) as u64)
    }

    /// Whether row `r` holds NULL in the table's column `column` (a column
    /// the file lacks and that has no fill is NULL).
    pub fn is_null(&self, column: usize, r: usize) -> bool {
        self.columns[column]
            .as_ref()
            .is_none_or(|array| array.is_null(r))
    }

    pub fn is_deleted(&self, r: usize) -> bool {
        self.deleted
            .as_ref()
            .is_some_and(|d| !d.is_null(r) && d.value(r))
    }

    /// Row `r` as a version.
    pub fn version(&self, def: &TableDef, r: usize) -> Result<Version> {
        let values = self
            .columns
            .iter()
            .zip(&def.columns)
            .map(|(array, column)| match array {
                Some(array) => value_at(array, r, column.data_type),
                None => Ok(Value::Null),
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Version {
            seq: self.seqs.as_ref().map_or(0, |s| s.value(r) as u64),
            deleted: self.is_deleted(r),
            values,
        })
    }

    /// Rows `range` as a batch of `schema`, whose columns are `projection`
    /// (indices into the table's columns; `columns.len()` is `_seq`,
    /// `columns.len() + 1` is `_deleted`), tombstones left out unless
    /// `tombstones` (then `schema` has nullable columns and `_deleted` says
    /// which they are). Arrow slices and one filter; no row is converted.
    pub fn project(
        &self,
        def: &TableDef,
        projection: &[usize],
        schema: &SchemaRef,
        range: std::ops::Range<usize>,
        tombstones: bool,
    ) -> Result<RecordBatch> {
        let (from, len) = (range.start, range.len());
        let n = def.columns.len();
        let deleted = self.deleted.as_ref().map(|d| d.slice(from, len));
        let arrays: Vec<ArrayRef> = projection
            .iter()
            .zip(schema.fields())
            .map(|(&i, field)| {
                if i < n {
                    match &self.columns[i] {
                        Some(array) => array.slice(from, len),
                        // A column the file lacks reads as NULL.
                        None => new_null_array(field.data_type(), len),
                    }
                } else if i == n {
                    match &self.seqs {
                        Some(seqs) => Arc::new(seqs.slice(from, len)) as ArrayRef,
                        None => new_null_array(field.data_type(), len),
                    }
                } else {
                    match (&deleted, tombstones) {
                        // A NULL `_deleted` is a live row, as `is_deleted` reads it.
                        (Some(d), true) => Arc::new(BooleanArray::from_iter(
                            d.iter().map(|v| Some(v.unwrap_or(false))),
                        )) as ArrayRef,
                        _ => Arc::new(BooleanArray::from(vec![false; len])) as ArrayRef,
                    }
                }
            })
            .collect();
        // Tombstones go before the batch is built: their cells are NULL,
        // also in NOT NULL columns, which a batch of `schema` refuses.
        let (arrays, rows) = match deleted {
            Some(deleted) if deleted.true_count() > 0 && !tombstones => {
                // A NULL `_deleted` is a live row, as `is_deleted` reads it.
                let live = not(&deleted)?;
                let keep = BooleanArray::from_iter(live.iter().map(|v| Some(v.unwrap_or(true))));
                let rows = keep.true_count();
                let arrays = arrays
                    .iter()
                    .map(|array| filter(array, &keep))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                (arrays, rows)
            }
            _ => (arrays, len),
        };
        Ok(super::batch::batch_of(schema, arrays, rows)?)
    }
}

/// `rows` copies of `value` as a column of type `t`.
fn constant(value: &Value, t: kalamdb_commons::KalamType, rows: usize) -> Result<ArrayRef> {
    let mut builder = ColumnBuilder::new(t, rows);
    for _ in 0..rows {
        builder.append(value)?;
    }
    Ok(builder.finish())
}
