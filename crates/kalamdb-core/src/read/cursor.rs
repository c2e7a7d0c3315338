//! Reading one committed file in key order, a batch at a time (a flush
//! writes each file sorted by key, one version per key), so a scan holds
//! one batch per file in memory. Keys are encoded only where the merge
//! compares them: the current row's, and the last row's of the batch.

use super::decode::{unreadable_file, FileBatch};
use super::Version;
use crate::catalog::TableDef;
use crate::cold::{bridge, ColdStore};
use crate::error::Result;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{file_reader, ManifestEntry};
use kalamdb_store::ScopeKey;
use parquet::arrow::arrow_reader::ParquetRecordBatchReader;
use tokio::runtime::Handle;

pub struct FileCursor<'a> {
    def: &'a TableDef,
    scope: &'a ScopeKey,
    path: String,
    reader: ParquetRecordBatchReader,
    /// The current batch and the next row of it; `None` at the end.
    batch: Option<FileBatch>,
    row: usize,
    /// Encoded key of `row`, once asked for.
    key: Option<Vec<u8>>,
    /// Encoded key of the batch's last row, once asked for.
    last_key: Option<Vec<u8>>,
}

impl<'a> FileCursor<'a> {
    pub fn open(
        cold: &ColdStore,
        handle: &Handle,
        def: &'a TableDef,
        scope: &'a ScopeKey,
        entry: &ManifestEntry,
    ) -> Result<Self> {
        let reader = bridge::wait(
            handle,
            file_reader(cold.store.clone(), &Path::from(entry.path.as_str())),
        )
        .map_err(|e| unreadable_file(def, &entry.path, e))?;
        let mut cursor = Self {
            def,
            scope,
            path: entry.path.clone(),
            reader,
            batch: None,
            row: 0,
            key: None,
            last_key: None,
        };
        cursor.load_next()?;
        Ok(cursor)
    }

    fn load_next(&mut self) -> Result<()> {
        self.batch = None;
        self.row = 0;
        self.key = None;
        self.last_key = None;
        for batch in self.reader.by_ref() {
            let batch = batch.map_err(|e| unreadable_file(self.def, &self.path, e))?;
            if batch.num_rows() > 0 {
                self.batch = Some(FileBatch::decode(self.def, &batch, &self.path)?);
                break;
            }
        }
        Ok(())
    }

    /// The encoded key of the current row, or `None` at the end.
    pub fn peek_key(&mut self) -> Result<Option<&[u8]>> {
        let Some(batch) = &self.batch else {
            return Ok(None);
        };
        if self.key.is_none() {
            self.key = Some(batch.key(self.def, self.scope, self.row)?);
        }
        Ok(self.key.as_deref())
    }

    /// The encoded key of the current batch's last row.
    pub fn last_key_of_batch(&mut self) -> Result<Option<&[u8]>> {
        let Some(batch) = &self.batch else {
            return Ok(None);
        };
        if self.last_key.is_none() {
            self.last_key = Some(batch.key(self.def, self.scope, batch.len() - 1)?);
        }
        Ok(self.last_key.as_deref())
    }

    /// The current row; moves to the next.
    pub fn take(&mut self) -> Result<Version> {
        let batch = self
            .batch
            .as_ref()
            .ok_or_else(|| unreadable_file(self.def, &self.path, "read past its end"))?;
        let version = batch.version(self.def, self.row)?;
        self.advance(1)?;
        Ok(version)
    }

    /// The rest of the current batch (from the current row) and where it
    /// starts; the cursor moves to the next batch once `finish_batch` is
    /// called.
    pub fn rest_of_batch(&self) -> Option<(&FileBatch, usize)> {
        self.batch.as_ref().map(|b| (b, self.row))
    }

    pub fn finish_batch(&mut self) -> Result<()> {
        self.load_next()
    }

    fn advance(&mut self, rows: usize) -> Result<()> {
        self.row += rows;
        self.key = None;
        if self.batch.as_ref().is_some_and(|b| self.row >= b.len()) {
            self.load_next()?;
        }
        Ok(())
    }
}
