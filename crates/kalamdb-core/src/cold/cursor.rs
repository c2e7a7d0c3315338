//! Reading one committed file row by row in key order, so a scan can merge
//! a scope's files with its hot rows holding one batch per file in memory.
//! (A flush writes each file in key order.)

use super::merge::ColdVersion;
use super::ColdStore;
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::values::{cast_to_column, value_at};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;
use kalamdb_commons::Value;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{file_reader, ManifestEntry, SEQ_COLUMN};
use kalamdb_store::ScopeKey;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use tokio::runtime::Handle;

/// The table's columns in a file batch, by name and cast to their current
/// types; `None` for a column added after the file was written.
pub fn table_columns(def: &TableDef, batch: &RecordBatch) -> Result<Vec<Option<ArrayRef>>> {
    let schema = batch.schema();
    def.columns
        .iter()
        .map(|column| match schema.index_of(&column.name) {
            Ok(i) => cast_to_column(batch.column(i), column.data_type).map(Some),
            Err(_) => Ok(None),
        })
        .collect()
}

/// The current batch of a file, decoded for row access.
struct Loaded {
    columns: Vec<Option<ArrayRef>>,
    seqs: Int64Array,
    deleted: Option<BooleanArray>,
    keys: Vec<Vec<u8>>,
    row: usize,
}

pub struct FileCursor<'a> {
    def: &'a TableDef,
    scope: &'a ScopeKey,
    path: String,
    reader: ParquetRecordBatchReader,
    current: Option<Loaded>,
}

impl<'a> FileCursor<'a> {
    pub fn open(
        cold: &ColdStore,
        handle: &Handle,
        def: &'a TableDef,
        scope: &'a ScopeKey,
        entry: &ManifestEntry,
    ) -> Result<Self> {
        let reader = super::bridge::wait(
            handle,
            file_reader(cold.store.clone(), &Path::from(entry.path.as_str())),
        )
        .map_err(|e| super::unreadable_file(def, &entry.path, e))?;
        let mut cursor = Self {
            def,
            scope,
            path: entry.path.clone(),
            reader,
            current: None,
        };
        cursor.load_next()?;
        Ok(cursor)
    }

    fn load_next(&mut self) -> Result<()> {
        self.current = None;
        let Some(batch) = self.reader.next() else {
            return Ok(());
        };
        let batch = batch.map_err(|e| super::unreadable_file(self.def, &self.path, e))?;
        let schema = batch.schema();
        let seq_col = schema
            .index_of(SEQ_COLUMN)
            .map_err(|_| CoreError::Internal(format!("{} has no _seq", self.path)))?;
        let columns = table_columns(self.def, &batch)?;
        let pk = self.def.pk_index();
        let pk_array = columns[pk].as_ref().ok_or_else(|| {
            CoreError::Internal(format!("{} has no primary key column", self.path))
        })?;
        let mut keys = Vec::with_capacity(batch.num_rows());
        for r in 0..batch.num_rows() {
            let value = value_at(pk_array, r, self.def.columns[pk].data_type)?;
            keys.push(self.scope.pk_prefix(&value)?);
        }
        self.current = Some(Loaded {
            seqs: batch.column(seq_col).as_primitive::<Int64Type>().clone(),
            deleted: schema
                .index_of(crate::schema::DELETED_COLUMN)
                .ok()
                .map(|i| batch.column(i).as_boolean().clone()),
            columns,
            keys,
            row: 0,
        });
        if self.current.as_ref().is_some_and(|l| l.keys.is_empty()) {
            return self.load_next();
        }
        Ok(())
    }

    /// The encoded key of the current row, or None at the end.
    pub fn peek_key(&self) -> Option<&[u8]> {
        self.current.as_ref().map(|l| l.keys[l.row].as_slice())
    }

    /// The current row; moves to the next.
    pub fn take(&mut self) -> Result<ColdVersion> {
        let loaded = self
            .current
            .as_mut()
            .ok_or_else(|| CoreError::Internal("read past the end of a file".into()))?;
        let r = loaded.row;
        let values = loaded
            .columns
            .iter()
            .zip(&self.def.columns)
            .map(|(array, column)| match array {
                Some(array) => value_at(array, r, column.data_type),
                None => Ok(Value::Null),
            })
            .collect::<Result<Vec<_>>>()?;
        let version = ColdVersion {
            seq: loaded.seqs.value(r) as u64,
            deleted: loaded
                .deleted
                .as_ref()
                .is_some_and(|d| !d.is_null(r) && d.value(r)),
            values,
        };
        loaded.row += 1;
        if loaded.row == loaded.keys.len() {
            self.load_next()?;
        }
        Ok(version)
    }
}
