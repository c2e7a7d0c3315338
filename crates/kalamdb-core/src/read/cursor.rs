//! Reading one committed file in key order, a batch at a time (a flush
//! writes each file sorted by key, one version per key), so a scan holds
//! one batch per file in memory, fetched by ranged reads of only the
//! columns the scan needs (`kalamdb_filestore::FileScan`). Keys are
//! encoded only where the merge compares them: the current row's, and the
//! last row's of the batch.

use super::decode::{unreadable_file, FileBatch};
use super::Version;
use crate::catalog::{Slot, TableDef};
use crate::cold::{bridge, ColdStore};
use crate::error::Result;
use crate::schema::DELETED_COLUMN;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{FileScan, KeyRange, ManifestEntry, SEQ_COLUMN};
use kalamdb_store::ScopeKey;
use tokio::runtime::Handle;

/// What a scan reads of each file.
#[derive(Debug, Clone)]
pub struct FileRead {
    /// The table's columns the scan needs (indices); `None`: all. The
    /// key, `_seq` and `_deleted` are always read.
    pub columns: Option<Vec<usize>>,
    /// Keys outside it are not needed: row groups without one are skipped.
    pub range: Option<KeyRange>,
    /// Ranges of other columns the query needs. Only where every key is in
    /// one file once may a row group be skipped by them: elsewhere a row
    /// outside them may be the newest version that hides an older one
    /// inside them (the scan decides, `ScopeView::scan`).
    pub values: Vec<KeyRange>,
    /// Whether the scan's rows need `_seq` (a merge reads it anyway).
    pub seq: bool,
}

impl Default for FileRead {
    fn default() -> Self {
        Self {
            columns: None,
            range: None,
            values: Vec::new(),
            seq: true,
        }
    }
}

impl FileRead {
    /// Opens `entry`'s file for a scan of `names` (the table's names of
    /// its columns, or `_seq`/`_deleted`; all when `None`) over this
    /// read's ranges. A file of another schema version is asked for the
    /// names that version gave the same columns, and columns it lacks are
    /// neither read nor used to skip row groups.
    pub(super) fn open(
        &self,
        cold: &ColdStore,
        handle: &Handle,
        def: &TableDef,
        entry: &ManifestEntry,
        names: Option<&[&str]>,
    ) -> Result<FileScan> {
        let map = def.map_from(entry.schema_version)?;
        let in_file = |name: &str| -> Option<String> {
            match (&map, def.column_index(name)) {
                (Some(map), Some(j)) => match &map.slots[j] {
                    Slot::Cell { name, .. } => Some(name.clone()),
                    Slot::Fill(_) => None,
                },
                _ => Some(name.to_string()),
            }
        };
        let translated: Option<Vec<String>> =
            names.map(|names| names.iter().filter_map(|n| in_file(n)).collect());
        let translated: Option<Vec<&str>> = translated
            .as_ref()
            .map(|names| names.iter().map(String::as_str).collect());
        let values: Vec<KeyRange> = if map.is_some() {
            self.values
                .iter()
                .filter_map(|range| {
                    Some(KeyRange {
                        column: in_file(&range.column)?,
                        ..range.clone()
                    })
                })
                .collect()
        } else {
            self.values.clone()
        };
        bridge::wait(
            handle,
            FileScan::open(
                &cold.files,
                &Path::from(entry.path.as_str()),
                Some(entry.bytes),
                translated.as_deref(),
                self.range.as_ref(),
                &values,
            ),
        )
        .map_err(|e| unreadable_file(def, &entry.path, e))
    }

    /// The names of the columns to read of each file: the asked ones and
    /// what the merge needs (key, `_seq`, `_deleted`); `None`: all.
    fn merge_columns<'d>(&self, def: &'d TableDef) -> Option<Vec<&'d str>> {
        self.names(def, &[def.primary_key.as_str(), SEQ_COLUMN, DELETED_COLUMN])
    }

    /// The names of the columns a scan that needs no merge reads: only the
    /// asked ones (and `_seq` when its rows need it).
    pub(super) fn plain_columns<'d>(&self, def: &'d TableDef) -> Option<Vec<&'d str>> {
        let seq: &[&str] = if self.seq { &[SEQ_COLUMN] } else { &[] };
        self.names(def, seq)
    }

    /// The asked columns' names and `also`; `None` (every column) when
    /// none were asked.
    fn names<'d>(&self, def: &'d TableDef, also: &[&'d str]) -> Option<Vec<&'d str>> {
        self.columns.as_ref().map(|columns| {
            columns
                .iter()
                .filter_map(|&i| def.columns.get(i).map(|c| c.name.as_str()))
                .chain(also.iter().copied())
                .collect()
        })
    }
}

pub struct FileCursor<'a> {
    def: &'a TableDef,
    scope: &'a ScopeKey,
    path: String,
    /// The file's schema version.
    version: u32,
    handle: Handle,
    scan: FileScan,
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
        read: &FileRead,
    ) -> Result<Self> {
        let names = read.merge_columns(def);
        let scan = read.open(cold, handle, def, entry, names.as_deref())?;
        let mut cursor = Self {
            def,
            scope,
            path: entry.path.clone(),
            version: entry.schema_version,
            handle: handle.clone(),
            scan,
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
        while let Some(batch) = bridge::wait(&self.handle, self.scan.next_batch()) {
            let batch = batch.map_err(|e| unreadable_file(self.def, &self.path, e))?;
            if batch.num_rows() > 0 {
                self.batch = Some(FileBatch::decode(
                    self.def,
                    self.version,
                    &batch,
                    &self.path,
                )?);
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
