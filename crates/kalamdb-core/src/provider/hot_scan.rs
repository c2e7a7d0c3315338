//! Scanning one scope: the newest visible version of each row across the
//! hot tier and the scope's committed Parquet files, in bounded Arrow
//! batches.
//!
//! Manifest and hot rows are read from one RocksDB snapshot, so a flush
//! commit (a manifest entry whose `flushed_through` hides the hot versions
//! the file replaced) is seen wholly or not at all. Hot versions at or below
//! `flushed_through` are skipped, whether or not their deletion has run. A
//! key's visible version is the one with the highest `_seq`; every hot
//! version left is newer than every committed one, so hot versions simply
//! replace cold ones. Tombstones hide their key. Filters run above this scan,
//! after version resolution.

use super::batch::{BatchBuilder, BATCH_ROWS};
use crate::catalog::TableDef;
use crate::cold::cursor::FileCursor;
use crate::cold::flush::flushed_through;
use crate::cold::manifest_entries;
use crate::cold::merge::{load_scope, ColdVersion};
use crate::context::CoreContext;
use crate::error::CoreError;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use kalamdb_commons::Value;
use kalamdb_store::ScopeKey;
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct HotScan {
    ctx: Arc<CoreContext>,
    def: Arc<TableDef>,
    scope: ScopeKey,
    schema: SchemaRef,
    /// Indices into the table's columns; `columns.len()` is `_seq`,
    /// `columns.len() + 1` is `_deleted`.
    projection: Vec<usize>,
    limit: Option<usize>,
    /// Only this primary key (from a `pk = literal` filter).
    point: Option<Value>,
}

/// Where finished batches go; `false` once the reader has gone away.
struct Sink<'a> {
    tx: &'a mut mpsc::Sender<Result<RecordBatch>>,
    schema: &'a SchemaRef,
    remaining: usize,
}

impl Sink<'_> {
    fn send(&mut self, builder: &mut BatchBuilder) -> Result<bool> {
        let batch = builder.finish(self.schema)?;
        // A bounded channel: the scan waits while the query is busy.
        Ok(self.tx.blocking_send(Ok(batch)).is_ok())
    }

    /// Adds a visible row; returns whether to go on.
    fn push(
        &mut self,
        builder: &mut BatchBuilder,
        seq: u64,
        values: &[kalamdb_commons::Value],
    ) -> Result<bool> {
        if self.remaining == 0 {
            return Ok(false);
        }
        builder.push(seq, false, values)?;
        self.remaining -= 1;
        if builder.rows >= BATCH_ROWS && !self.send(builder)? {
            return Ok(false);
        }
        Ok(self.remaining > 0)
    }
}

impl HotScan {
    pub fn new(
        ctx: Arc<CoreContext>,
        def: Arc<TableDef>,
        scope: ScopeKey,
        schema: SchemaRef,
        projection: Vec<usize>,
        limit: Option<usize>,
        point: Option<Value>,
    ) -> Self {
        Self {
            ctx,
            def,
            scope,
            schema,
            projection,
            limit,
            point,
        }
    }

    fn run(self, handle: Handle, mut tx: mpsc::Sender<Result<RecordBatch>>) {
        // A panic must end the query with an error, never look like the
        // end of the rows.
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.scan_into(&handle, &mut tx)
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
                .into()
            }
        };
        let _ = tx.blocking_send(Err(error));
    }

    fn scan_into(&self, handle: &Handle, tx: &mut mpsc::Sender<Result<RecordBatch>>) -> Result<()> {
        let snapshot = self.ctx.store.snapshot();
        let entries = manifest_entries(&snapshot, &self.scope)?;
        // A point lookup reads one key's range and only the files that may
        // hold the key.
        let (prefix, only) = match &self.point {
            Some(pk) => (
                self.scope.pk_prefix(pk).map_err(CoreError::from)?,
                Some(std::slice::from_ref(pk)),
            ),
            None => (self.scope.as_bytes().to_vec(), None),
        };
        let mut builder = BatchBuilder::new(&self.def, &self.projection);
        let mut sink = Sink {
            tx,
            schema: &self.schema,
            remaining: self.limit.unwrap_or(usize::MAX),
        };
        if entries.is_empty() {
            // Only hot rows: stream them straight from the snapshot.
            for item in snapshot.latest_iter(&prefix) {
                let (_, seq, row) = item.map_err(CoreError::from)?;
                if !row.deleted && !sink.push(&mut builder, seq, &row.values)? {
                    break;
                }
            }
        } else if let Some(only) = only {
            // A point lookup: at most one key, from the files that may hold
            // it; a hot version of the key is newer than any file's.
            let mut rows = load_scope(
                &*self.ctx.cold_for(&self.def)?,
                handle,
                &self.def,
                &self.scope,
                &entries,
                Some(only),
            )?;
            for item in live_hot(&snapshot, &prefix, &entries) {
                let (pk, seq, row) = item.map_err(CoreError::from)?;
                rows.insert(
                    pk,
                    ColdVersion {
                        seq,
                        deleted: row.deleted,
                        values: row.values,
                    },
                );
            }
            for version in rows.into_values().filter(|v| !v.deleted) {
                if !sink.push(&mut builder, version.seq, &version.values)? {
                    break;
                }
            }
        } else {
            self.merge_scope(
                handle,
                &snapshot,
                &entries,
                &prefix,
                &mut builder,
                &mut sink,
            )?;
        }
        if builder.rows > 0 {
            sink.send(&mut builder)?;
        }
        Ok(())
    }
}

impl HotScan {
    /// Merges the scope's files (each sorted by key) with its hot rows, one
    /// key at a time: the version with the highest `_seq` wins (a hot one
    /// whenever there is one), tombstones hide their key. Memory stays at one
    /// batch per file.
    fn merge_scope(
        &self,
        handle: &Handle,
        snapshot: &kalamdb_store::StoreSnapshot<'_>,
        entries: &[kalamdb_filestore::ManifestEntry],
        prefix: &[u8],
        builder: &mut BatchBuilder,
        sink: &mut Sink<'_>,
    ) -> Result<()> {
        let cold = self.ctx.cold_for(&self.def)?;
        let mut files = entries
            .iter()
            .map(|e| FileCursor::open(&cold, handle, &self.def, &self.scope, e))
            .collect::<std::result::Result<Vec<_>, CoreError>>()?;
        let mut hot = live_hot(snapshot, prefix, entries).peekable();
        loop {
            let mut min: Option<Vec<u8>> = None;
            for file in &files {
                if let Some(key) = file.peek_key() {
                    if min.as_deref().is_none_or(|m| key < m) {
                        min = Some(key.to_vec());
                    }
                }
            }
            match hot.peek() {
                Some(Ok((key, _, _))) if min.as_deref().is_none_or(|m| key.as_slice() < m) => {
                    min = Some(key.clone());
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => {
                    let e = hot.next().and_then(|r| r.err()).expect("peeked an error");
                    return Err(CoreError::from(e).into());
                }
                None => {}
            }
            let Some(min) = min else { break };
            let mut best: Option<ColdVersion> = None;
            for file in &mut files {
                if file.peek_key() == Some(min.as_slice()) {
                    let version = file.take()?;
                    if best.as_ref().is_none_or(|b| version.seq > b.seq) {
                        best = Some(version);
                    }
                }
            }
            if matches!(hot.peek(), Some(Ok((key, _, _))) if *key == min) {
                let (_, seq, row) = hot.next().expect("peeked").map_err(CoreError::from)?;
                best = Some(ColdVersion {
                    seq,
                    deleted: row.deleted,
                    values: row.values,
                });
            }
            if let Some(version) = best.filter(|v| !v.deleted) {
                if !sink.push(builder, version.seq, &version.values)? {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The newest hot version of each key under `prefix`, without those that
/// a committed flush already moved into `entries`' files (they await
/// deletion and are superseded by the files).
fn live_hot<'s>(
    snapshot: &'s kalamdb_store::StoreSnapshot<'_>,
    prefix: &[u8],
    entries: &[kalamdb_filestore::ManifestEntry],
) -> impl Iterator<Item = <kalamdb_store::LatestIter<'s> as Iterator>::Item> + 's {
    let flushed = flushed_through(entries);
    snapshot
        .latest_iter(prefix)
        .filter(move |item| !matches!(item, Ok((_, seq, _)) if *seq <= flushed))
}

impl PartitionStream for HotScan {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let (tx, rx) = mpsc::channel(2);
        let scan = self.clone();
        let handle = Handle::current();
        let guard = self.ctx.scans.enter();
        // RocksDB iteration and file reads block; keep them off the async
        // workers. The task ends when the scan is done or the query drops
        // the stream; the guard lets the engine wait for it when closing.
        tokio::task::spawn_blocking(move || {
            scan.run(handle, tx);
            drop(guard);
        });
        let batches = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (batch, rx))
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}
