//! One round of one scope's compaction: merge a run of its files into new
//! files of bounded size, commit them in place of the run, queue the old
//! files for removal.

use super::select::{select, CompactionPolicy, Mode};
use super::{CompactFailPoint, CompactHooks, CompactStats};
use crate::catalog::TableDef;
use crate::cold::{discard_uncommitted, mark_pending, pending_key, ColdStore, FileSink};
use crate::error::{CoreError, Result};
use crate::flush::{write_manifest_copy, CancelFlag, Flusher};
use crate::read::{BatchBuilder, FileBatch, RowSink, ScopeFiles, ScopeView, Version, BATCH_ROWS};
use crate::schema::file_schema;
use datafusion::arrow::array::{AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::SchemaRef;
use kalamdb_commons::Value;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{compacted_file_name, FileMeta, ManifestEntry, ParquetFileWriter};
use kalamdb_store::{Inliner, RowVersion, ScopeKey};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::runtime::Handle;
use tracing::{debug, info};

/// What a round did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Round {
    /// The scope needed nothing (more).
    Nothing,
    Merged,
    /// Stopped by a cancel request; nothing of the round was committed.
    Cancelled,
}

/// Everything a scope's compaction works with.
#[derive(Clone, Copy)]
pub struct ScopeJob<'a> {
    pub env: &'a Flusher,
    pub cold: &'a Arc<ColdStore>,
    pub handle: &'a Handle,
    pub def: &'a TableDef,
    pub scope: &'a ScopeKey,
    pub user: Option<&'a str>,
    pub policy: &'a CompactionPolicy,
    pub hooks: &'a CompactHooks,
    pub cancel: Option<&'a CancelFlag>,
}

/// Output files are never smaller than this many rows (but the last).
const MIN_FILE_ROWS: u64 = 64 * 1024;

impl ScopeJob<'_> {
    /// Merges the next run of the scope's files, if it needs one.
    pub fn round(&self, mode: Mode, stats: &mut CompactStats) -> Result<Round> {
        // No flush of the scope commits meanwhile.
        let _turn = self.env.gate.enter(self.scope);
        let store = self.env.hot().store();
        let snapshot = store.snapshot();
        // Read after the snapshot: at least as new as each of its files,
        // so the merged file drops no column of any (see `catalog`'s
        // `schemas.rs`).
        if self.def.schemas.latest_version() != self.def.schema_version {
            let latest = self.def.at_latest();
            let job = ScopeJob {
                def: &latest,
                ..*self
            };
            return job.round_in(snapshot, mode, stats);
        }
        self.round_in(snapshot, mode, stats)
    }

    fn round_in(
        &self,
        snapshot: kalamdb_store::StoreSnapshot<'_>,
        mode: Mode,
        stats: &mut CompactStats,
    ) -> Result<Round> {
        let store = self.env.hot().store();
        let files = ScopeFiles::read(&snapshot, self.scope)?;
        let Some(range) = select(files.entries(), self.policy, mode) else {
            return Ok(Round::Nothing);
        };
        let run: Vec<Arc<ManifestEntry>> = files.entries()[range].to_vec();
        let in_run: HashSet<&str> = run.iter().map(|e| e.path.as_str()).collect();
        let outside: Vec<Arc<ManifestEntry>> = files
            .entries()
            .iter()
            .filter(|e| !in_run.contains(e.path.as_str()))
            .cloned()
            .collect();
        let rows_in: u64 = run.iter().map(|e| e.rows).sum();
        let bytes_in: u64 = run.iter().map(|e| e.bytes).sum();
        let bytes_per_row = (bytes_in / rows_in.max(1)).max(1);
        let mut output = Output {
            job: self,
            schema: file_schema(self.def),
            builder: BatchBuilder::new(self.def, &self.projection()),
            pending_keys: None,
            pending_tombstones: 0,
            file: None,
            done: Vec::new(),
            rows_per_file: (self.policy.target_file_bytes / bytes_per_row).max(MIN_FILE_ROWS),
            name_seq: store.next_seqs(1)?,
            outside: &outside,
            dropped: 0,
            last_dropped: None,
            cancelled: false,
            inliner: Inliner::new(self.scope),
            inline_after: store.changes_floor(),
        };
        debug!(table = %self.def.qualified_name(), user = ?self.user, files = run.len(), rows = rows_in, "compaction round started");
        let view = ScopeView::of_files(
            &snapshot,
            self.def,
            self.scope,
            files.only(|e| in_run.contains(e.path.as_str())),
        )
        .with_tombstones(true);
        let merged = view
            .scan(self.cold, self.handle, &mut output)
            .and_then(|()| output.finish());
        let new_files = match merged {
            Ok(new_files) if !output.cancelled => new_files,
            Ok(_) => {
                output.discard_all();
                return Ok(Round::Cancelled);
            }
            Err(e) => {
                output.discard_all();
                return Err(e);
            }
        };
        if self.cancelled() {
            // The last safe point before the commit.
            output.discard_all();
            return Ok(Round::Cancelled);
        }
        // The versions the merge dropped leave with the commit: the change
        // log's references to them get their values first.
        if let Err(e) = output.inliner.apply(store) {
            output.discard_all();
            return Err(e.into());
        }
        if self.hooks.fail_at == Some(CompactFailPoint::AfterFilesWritten) {
            return Err(CoreError::FailPoint(
                "after the compacted files are written",
            ));
        }
        if let Some(hook) = &self.hooks.before_commit {
            hook();
        }
        // The new files carry the run's flush mark and its place in the
        // scope's order (`max_seq`: of two files holding a key, the later
        // holds the newer version; a dropped tombstone must not move the
        // new files before a file the run came after).
        let flushed_through = run.iter().map(|e| e.flushed_through).max().unwrap_or(0);
        let max_seq = run.iter().map(|e| e.max_seq).max().unwrap_or(0);
        let now = self.env.clock().now_micros();
        let entries: Vec<ManifestEntry> = new_files
            .iter()
            .map(|f| ManifestEntry {
                path: f.path.to_string(),
                rows: f.rows,
                bytes: f.bytes,
                min_seq: f.min_seq,
                max_seq,
                schema_version: self.def.schema_version,
                min_pk: f.min_pk.clone(),
                max_pk: f.max_pk.clone(),
                committed_at: now,
                flushed_through,
                tombstones: Some(f.tombstones),
            })
            .collect();
        let added = entries
            .iter()
            .map(|e| Ok((e.file_name(), serde_json::to_vec(e)?)))
            .collect::<Result<Vec<_>>>()?;
        let removed: Vec<&str> = run.iter().map(|e| e.file_name()).collect();
        let mut batch = store.batch();
        // A fresh `_seq` as the scope's manifest version: kept listings of
        // the old files are never used again.
        batch.replace_manifest_entries(self.scope, &removed, &added, store.next_seqs(1)?);
        for file in &new_files {
            batch.delete_meta(&pending_key(&self.cold.id, &file.path));
        }
        let old_paths: Vec<Path> = run.iter().map(|e| Path::from(e.path.as_str())).collect();
        for path in &old_paths {
            batch.put_meta(&pending_key(&self.cold.id, path), b"");
        }
        store.write(batch)?;
        // Readers pinned from now on see only the new files.
        let generation = store.pins().advance();
        drop(view);
        drop(files);
        drop(snapshot);
        self.env.retired.push(generation, &self.cold.id, old_paths);
        let rows_out: u64 = entries.iter().map(|e| e.rows).sum();
        let bytes_out: u64 = entries.iter().map(|e| e.bytes).sum();
        info!(
            table = %self.def.qualified_name(),
            user = ?self.user,
            files_in = run.len(),
            files_out = entries.len(),
            rows_in,
            rows_out,
            tombstones_dropped = output.dropped,
            "scope compacted"
        );
        stats.files_in += run.len() as u64;
        stats.files_out += entries.len() as u64;
        stats.rows_in += rows_in;
        stats.rows_out += rows_out;
        stats.bytes_in += bytes_in;
        stats.bytes_out += bytes_out;
        stats.tombstones_dropped += output.dropped;
        if self.hooks.fail_at == Some(CompactFailPoint::AfterCommit) {
            return Err(CoreError::FailPoint("after the compaction's commit"));
        }
        write_manifest_copy(
            self.env,
            self.cold,
            self.handle,
            self.def,
            self.scope,
            self.user,
        );
        Ok(Round::Merged)
    }

    /// Every column, `_seq` and `_deleted`: files hold them all.
    fn projection(&self) -> Vec<usize> {
        (0..self.def.columns.len() + 2).collect()
    }

    fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.is_set())
    }
}

/// A new file, complete and not yet committed.
struct NewFile {
    path: Path,
    rows: u64,
    bytes: u64,
    min_seq: i64,
    tombstones: u64,
    min_pk: Vec<u8>,
    max_pk: Vec<u8>,
}

/// The file being written.
struct OpenFile {
    writer: FileSink,
    path: Path,
    rows: u64,
    tombstones: u64,
    min_pk: Vec<u8>,
    max_pk: Vec<u8>,
}

/// The merge's sink: rows in key order into files of bounded size.
struct Output<'a> {
    job: &'a ScopeJob<'a>,
    schema: SchemaRef,
    builder: BatchBuilder,
    /// First and last key of the rows in `builder`.
    pending_keys: Option<(Vec<u8>, Vec<u8>)>,
    pending_tombstones: u64,
    file: Option<OpenFile>,
    done: Vec<NewFile>,
    rows_per_file: u64,
    /// Names this round's files.
    name_seq: u64,
    /// The scope's files outside the run: a tombstone stays while one of
    /// them may hold its key.
    outside: &'a [Arc<ManifestEntry>],
    dropped: u64,
    /// The last tombstone dropped, kept after all when nothing else is
    /// left: a scope's files carry its `flushed_through`, which hides the
    /// hot versions flushes already moved, so a run never ends in nothing.
    last_dropped: Option<(u64, Vec<Value>)>,
    cancelled: bool,
    /// Versions the merge drops that the change log may refer to (those
    /// above `inline_after`, its floor).
    inliner: Inliner,
    inline_after: u64,
}

impl Output<'_> {
    fn needed(&self, key: &[u8]) -> bool {
        self.outside.iter().any(|e| e.may_contain(key))
    }

    fn key_of(&self, values: &[Value]) -> Result<Vec<u8>> {
        Ok(self.job.scope.pk_prefix(&values[self.job.def.pk_index()])?)
    }

    fn push(&mut self, seq: u64, deleted: bool, values: &[Value], key: Vec<u8>) -> Result<bool> {
        self.builder.push(seq, deleted, values)?;
        self.pending_tombstones += u64::from(deleted);
        self.pending_keys = Some(match self.pending_keys.take() {
            None => (key.clone(), key),
            Some((first, _)) => (first, key),
        });
        if self.builder.rows >= BATCH_ROWS {
            self.write_pending()?;
        }
        Ok(!self.cancelled)
    }

    fn write_pending(&mut self) -> Result<()> {
        let Some((first, last)) = self.pending_keys.take() else {
            return Ok(());
        };
        let batch = self.builder.finish(&self.schema)?;
        let tombstones = std::mem::take(&mut self.pending_tombstones);
        self.write(&batch, tombstones, first, last)
    }

    /// Writes rows (in key order, after every row written before) into the
    /// current file, or a new one when it is full.
    fn write(
        &mut self,
        batch: &RecordBatch,
        tombstones: u64,
        first: Vec<u8>,
        last: Vec<u8>,
    ) -> Result<()> {
        if self
            .file
            .as_ref()
            .is_some_and(|f| f.rows >= self.rows_per_file)
        {
            self.close_file()?;
        }
        let job = self.job;
        if self.file.is_none() {
            let part = self.done.len() as u32;
            let dir = job.cold.scope_dir(job.def, job.user)?;
            let path = dir.join(compacted_file_name(self.name_seq, part, job.def.uid).as_str());
            mark_pending(job.env.hot().store(), &job.cold.id, &path)?;
            let file = ParquetFileWriter::create(
                job.cold.store.clone(),
                path.clone(),
                self.schema.clone(),
                FileMeta {
                    table_id: job.def.qualified_name(),
                    user_id: job.user.map(String::from),
                    schema_version: job.def.schema_version,
                    primary_key: Some(job.def.primary_key.clone()),
                },
            )?;
            let writer = FileSink::new(file, job.handle);
            self.file = Some(OpenFile {
                writer,
                path,
                rows: 0,
                tombstones: 0,
                min_pk: first.clone(),
                max_pk: first,
            });
        }
        let file = self.file.as_mut().expect("opened above");
        file.writer.write(batch.clone())?;
        file.rows += batch.num_rows() as u64;
        file.tombstones += tombstones;
        file.max_pk = last;
        if let Some(hook) = &job.hooks.after_batch {
            hook();
        }
        if job.cancelled() {
            self.cancelled = true;
        }
        Ok(())
    }

    fn close_file(&mut self) -> Result<()> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let written = file.writer.finish()?;
        self.done.push(NewFile {
            path: written.path,
            rows: written.rows,
            bytes: written.bytes,
            min_seq: written.min_seq,
            tombstones: file.tombstones,
            min_pk: file.min_pk,
            max_pk: file.max_pk,
        });
        Ok(())
    }

    /// Writes what is left and closes the last file.
    fn finish(&mut self) -> Result<Vec<NewFile>> {
        if self.cancelled {
            return Ok(Vec::new());
        }
        if self.done.is_empty() && self.file.is_none() && self.builder.rows == 0 {
            if let Some((seq, values)) = self.last_dropped.take() {
                let key = self.key_of(&values)?;
                self.dropped -= 1;
                self.push(seq, true, &values, key)?;
            }
        }
        self.write_pending()?;
        self.close_file()?;
        Ok(std::mem::take(&mut self.done))
    }

    /// Removes this round's files (it will not commit); what cannot be
    /// removed now keeps its record and goes at the next start.
    fn discard_all(&mut self) {
        let job = self.job;
        let mut paths: Vec<Path> = self.done.drain(..).map(|f| f.path).collect();
        if let Some(file) = self.file.take() {
            // Never completed: the object store holds nothing under it, or
            // an aborted upload's parts.
            drop(file.writer);
            paths.push(file.path);
        }
        for path in paths {
            discard_uncommitted(job.env.hot().store(), job.cold, job.handle, &path);
        }
    }
}

impl RowSink for Output<'_> {
    fn superseded(&mut self, version: Version) -> Result<()> {
        if version.seq <= self.inline_after {
            return Ok(());
        }
        let row = RowVersion {
            deleted: version.deleted,
            schema_version: self.job.def.schema_version,
            values: version.values,
        };
        self.inliner.push(version.seq, &row.encode());
        if self.inliner.is_full() {
            self.inliner.apply(self.job.env.hot().store())?;
        }
        Ok(())
    }

    fn row(&mut self, seq: u64, values: &[Value]) -> Result<bool> {
        let key = self.key_of(values)?;
        self.push(seq, false, values, key)
    }

    fn tombstone(&mut self, seq: u64, values: &[Value]) -> Result<bool> {
        let key = self.key_of(values)?;
        if self.needed(&key) {
            return self.push(seq, true, values, key);
        }
        self.dropped += 1;
        self.last_dropped = Some((seq, values.to_vec()));
        Ok(!self.cancelled)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool> {
        let (def, scope) = (self.job.def, self.job.scope);
        let end = rows.len();
        let mut keep: Option<Vec<bool>> = None;
        for r in from..end {
            if rows.is_deleted(r) && !self.needed(&rows.key(def, scope, r)?) {
                keep.get_or_insert_with(|| vec![true; end - from])[r - from] = false;
                self.dropped += 1;
                let version = rows.version(def, r)?;
                self.last_dropped = Some((version.seq, version.values));
            }
        }
        let kept: Vec<usize> = match &keep {
            Some(keep) => (from..end).filter(|r| keep[r - from]).collect(),
            None => Vec::new(),
        };
        let (first, last) = match &keep {
            None => (from, end - 1),
            Some(_) => match (kept.first(), kept.last()) {
                (Some(&first), Some(&last)) => (first, last),
                _ => return Ok(!self.cancelled),
            },
        };
        // Rows before these (built one by one) go first.
        self.write_pending()?;
        let projection = self.job.projection();
        let mut batch = rows.project(def, &projection, &self.schema, from..end, true)?;
        if let Some(keep) = keep {
            batch = filter_record_batch(&batch, &BooleanArray::from(keep))?;
        }
        let deleted = batch.num_columns() - 1;
        let tombstones = batch.column(deleted).as_boolean().true_count() as u64;
        let (first, last) = (rows.key(def, scope, first)?, rows.key(def, scope, last)?);
        self.write(&batch, tombstones, first, last)?;
        Ok(!self.cancelled)
    }
}
