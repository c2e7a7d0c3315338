//! The flush of one table: every scope's hot versions into one Parquet file
//! per scope, each scope committed on its own (see ../shared/DESIGN.md,
//! "Flush protocol").
//!
//! 1. Take one RocksDB snapshot; its watermark W names the files.
//! 2. Walk the table's versions in key order. Per scope, keep the newest
//!    version of each primary key (tombstones too, when the scope already
//!    has committed files that may hold the key) and stream them, a bounded
//!    batch at a time, into the scope's file.
//! 3. When the file is complete, commit in one small RocksDB batch: the
//!    manifest entry, whose `flushed_through` (the newest `_seq` read for
//!    the scope) hides every hot version the file replaced. Writes to one
//!    scope are serialized and take their `_seq` in commit order, so the
//!    versions at or below it are exactly the ones this snapshot held.
//!    Before it, the change log's references to the versions read that
//!    are not the newest of their key (so not in the file) get their
//!    values; the newest are found in the file once the hot ones are gone.
//! 4. Then delete those hot versions in bounded batches. A crash in between
//!    only leaves hidden versions, which the next flush removes.
//! 5. A scope that fails keeps its hot rows; the others still commit.

use super::chunked_delete::ChunkedDelete;
use super::gate::ScopeTurn;
use super::lane::{Chunk, Lane, Runs, CHUNK_ROWS};
use super::{CancelFlag, FailPoint, FlushHooks, FlushOptions, FlushStats, Flusher, ScopeFailure};
use crate::catalog::TableDef;
use crate::cold::{bridge, discard_uncommitted, mark_pending, pending_key, ColdStore};
use crate::error::{CoreError, Result};
use crate::read::{ScopeFiles, ScopeView, BATCH_ROWS};
use crate::schema::file_schema;
use datafusion::arrow::datatypes::SchemaRef;
use kalamdb_commons::TableType;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::object_store::{ObjectStoreExt, PutPayload};
use kalamdb_filestore::{
    file_name, FileMeta, ManifestDocument, ManifestEntry, ParquetFileWriter, MANIFEST_FILE,
};
use kalamdb_store::keys::scope_of;
use kalamdb_store::{Inliner, RowVersion, ScopeKey, StoreSnapshot, VersionRef};
use tokio::runtime::Handle;
use tracing::{debug, info, warn};

/// Flushes every scope of `def`. Runs on a blocking thread; `handle` drives
/// the object store's async I/O.
pub fn flush_table(
    env: &Flusher,
    cold: &std::sync::Arc<ColdStore>,
    handle: &Handle,
    def: &TableDef,
    options: &FlushOptions,
    hooks: &FlushHooks,
) -> Result<FlushStats> {
    let started = kalamdb_commons::clock::monotonic();
    let fail_at = hooks.fail_at;
    let snapshot = env.hot.store().snapshot();
    if let Some(hook) = &hooks.after_snapshot {
        hook();
    }
    // Read after the snapshot: at least as new as each version in it, so
    // the files drop no column of any (see `catalog`'s `schemas.rs`).
    let latest = def.at_latest();
    let def = &latest;
    let user_scoped = def.table_type != TableType::Shared;
    info!(table = %def.qualified_name(), watermark = snapshot.watermark, "flush started");
    let mut stats = FlushStats::default();
    let mut current: Option<ScopeFlush> = None;
    let mut stop: Option<CoreError> = None;
    let mut scanned: u64 = 0;
    let mut failing_in_a_row = 0;
    let mut to_compact = Vec::new();
    debug!(table = %def.qualified_name(), watermark = snapshot.watermark, "snapshot taken");
    snapshot.scan_versions(&ScopeKey::table_prefix(def.uid), &mut |v| {
        scanned += 1;
        if scanned.is_multiple_of(PROGRESS_EVERY) {
            debug!(table = %def.qualified_name(), versions = scanned, files = stats.parquet_files, rows = stats.rows_flushed, "flush progress");
        }
        // Scope components are terminated, so no scope is a prefix of
        // another: a key under the current scope's bytes is in it, and only
        // a new scope's first key is parsed (it costs an allocation).
        let in_current = current
            .as_ref()
            .is_some_and(|c| v.pk_prefix.starts_with(c.scope.as_bytes()));
        if !in_current {
            let (len, user) = scope_of(v.pk_prefix, user_scoped)?;
            let scope_bytes = &v.pk_prefix[..len];
            if let Some(done) = current.take() {
                let first_commit = stats.parquet_files == 0 && stats.failed.is_empty();
                let failed_before = stats.failed.len();
                if let Err(e) =
                    done.commit(env, cold, &snapshot, handle, fail_at, &mut stats, &mut to_compact)
                {
                    stop = Some(e);
                    return Ok(false);
                }
                // Only storage failures say the storage is down.
                failing_in_a_row = match stats.failed.get(failed_before) {
                    Some(f) if !f.permanent => failing_in_a_row + 1,
                    Some(_) => failing_in_a_row,
                    None => 0,
                };
                if failing_in_a_row >= FAILURES_BEFORE_GIVING_UP {
                    // The storage is down: the remaining users would only
                    // wait for their own timeouts. They stay hot; a retry
                    // of the job picks them up.
                    let cause = stats.failed.last().map(|f| f.cause.clone()).unwrap_or_default();
                    warn!(table = %def.qualified_name(), committed_users = stats.users_count, %cause, "storage failing; the flush stops early");
                    stats.failed.push(ScopeFailure::new(
                        Some("(the remaining users)".to_string()),
                        format!(
                            "not tried: {FAILURES_BEFORE_GIVING_UP} users in a row failed, \
                             so the flush stopped early"
                        ),
                        false,
                    ));
                    return Ok(false);
                }
                if first_commit && fail_at == Some(FailPoint::AfterFirstCommit) {
                    stop = Some(CoreError::FailPoint("after first commit"));
                    return Ok(false);
                }
                if let Some(hook) = &hooks.after_commit {
                    hook();
                }
            }
            if options.cancel.as_ref().is_some_and(|c| c.is_set()) {
                stats.cancelled = true;
                return Ok(false);
            }
            let scope = ScopeKey::from_key_prefix(scope_bytes);
            match ScopeFlush::start(env, cold, def, scope, user, &snapshot, options, hooks) {
                Ok(flush) => current = Some(flush),
                Err(e) => {
                    stop = Some(e);
                    return Ok(false);
                }
            }
        }
        if let Some(flush) = current.as_mut() {
            flush.add(env, &v, handle);
            if flush.cancelled {
                stats.cancelled = true;
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if let Some(e) = stop {
        return Err(e);
    }
    if let Some(done) = current.take() {
        if stats.cancelled {
            // Stopped inside the scope: its file is never committed.
            done.abandon(env, handle);
        } else {
            done.commit(
                env,
                cold,
                &snapshot,
                handle,
                fail_at,
                &mut stats,
                &mut to_compact,
            )?;
            if let Some(hook) = &hooks.after_commit {
                hook();
            }
        }
    }
    // Released first: RocksDB keeps what a live snapshot can see.
    drop(snapshot);
    for scope in &to_compact {
        env.hot
            .tidier()
            .request(env.hot.store(), handle, scope.as_bytes());
    }
    stats.duration_ms = started.elapsed().as_millis() as u64;
    if !stats.cancelled {
        // The interval starts again from the end of this flush.
        env.hot.flushed(def.uid)?;
    }
    if stats.rows_flushed == 0 && stats.failed.is_empty() {
        warn!(table = %def.qualified_name(), "flush found no rows to move");
    }
    info!(
        table = %def.qualified_name(),
        rows = stats.rows_flushed,
        users = stats.users_count,
        files = stats.parquet_files,
        bytes = stats.bytes_written,
        failed_scopes = stats.failed.len(),
        cancelled = stats.cancelled,
        duration_ms = stats.duration_ms,
        "flush finished"
    );
    Ok(stats)
}

/// One scope's part of a flush.
struct ScopeFlush<'a> {
    /// No compaction of the scope runs meanwhile.
    _turn: ScopeTurn<'a>,
    def: &'a TableDef,
    scope: ScopeKey,
    user: Option<String>,
    /// The scope already has files, so tombstones must be written.
    has_cold: bool,
    /// The scope's files as of the snapshot.
    files: ScopeFiles,
    /// Hot versions at or below this are already in the scope's files.
    already_flushed: u64,
    /// The versions read that were superseded (not written to the file,
    /// yet deleted after the commit), for the change log's references
    /// to them; only those above `inline_after` can have any.
    inliner: Inliner,
    inline_after: u64,
    schema: SchemaRef,
    /// Newest versions read and not yet handed to the file.
    chunk: Chunk,
    writer: Option<Lane>,
    path: Path,
    meta: FileMeta,
    cold: std::sync::Arc<ColdStore>,
    /// The keys read from the snapshot for this scope, to delete after the
    /// commit; `None` once there were too many to keep (they are read
    /// again from the snapshot instead).
    keys: Option<Runs>,
    /// The newest `_seq` read for this scope.
    max_seq_read: u64,
    /// Versions read for this scope and their stored bytes: what the
    /// deletes after the commit remove from the hot tier.
    versions_read: u64,
    bytes_read: u64,
    rows: u64,
    /// Rows written that are tombstones.
    tombstones: u64,
    pk_range: Option<(Vec<u8>, Vec<u8>)>,
    error: Option<ScopeFailure>,
    /// Left out: the scope waits after a permanent failure.
    waiting: bool,
    /// Test fail point: refuse this scope's rows as bad data.
    refuse: bool,
    /// The job's cancel request, checked between batches and before the
    /// commit, so a kill does not wait for the end of a large scope.
    cancel: Option<std::sync::Arc<CancelFlag>>,
    /// Stopped by `cancel`; nothing of the scope is committed.
    cancelled: bool,
    after_batch: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
}

impl<'a> ScopeFlush<'a> {
    #[allow(clippy::too_many_arguments)]
    fn start(
        env: &'a Flusher,
        cold: &std::sync::Arc<ColdStore>,
        def: &'a TableDef,
        scope: ScopeKey,
        user: Option<String>,
        snapshot: &StoreSnapshot<'_>,
        options: &FlushOptions,
        hooks: &FlushHooks,
    ) -> Result<Self> {
        let waiting = !options.include_waiting
            && env
                .backoff
                .waiting(def.uid, user.as_deref(), env.clock.now_micros());
        let refuse = hooks.refuse_user.is_some() && hooks.refuse_user == user;
        // Waits out a compaction of the scope. What it committed meanwhile
        // does not matter here: it keeps the files' `flushed_through`, and
        // leaves files (so tombstones are still written) where it had any.
        let turn = env.gate.enter(&scope);
        let files = ScopeView::open(snapshot, def, &scope)?.into_files();
        let has_cold = !files.is_empty();
        let already_flushed = files.flushed_through();
        let dir = cold.scope_dir(def, user.as_deref())?;
        let path = dir.join(file_name(snapshot.watermark, def.uid).as_str());
        Ok(Self {
            _turn: turn,
            def,
            meta: FileMeta {
                table_id: def.qualified_name(),
                user_id: user.clone(),
                schema_version: def.schema_version,
                primary_key: Some(def.primary_key.clone()),
            },
            inliner: Inliner::new(&scope),
            inline_after: already_flushed.max(env.hot.store().changes_floor()),
            scope,
            user,
            has_cold,
            already_flushed,
            files,
            schema: file_schema(def),
            chunk: Chunk::default(),
            writer: None,
            path,
            cold: cold.clone(),
            keys: Some(Runs::default()),
            max_seq_read: 0,
            versions_read: 0,
            bytes_read: 0,
            rows: 0,
            tombstones: 0,
            pk_range: None,
            error: None,
            waiting,
            refuse,
            cancel: options.cancel.clone(),
            cancelled: false,
            after_batch: hooks.after_batch.clone(),
        })
    }

    fn add(&mut self, env: &Flusher, v: &VersionRef<'_>, handle: &Handle) {
        self.max_seq_read = self.max_seq_read.max(v.seq);
        self.versions_read += 1;
        self.bytes_read += (v.key.len() + v.value.len()) as u64;
        if self.waiting {
            return;
        }
        if self.versions_read.is_multiple_of(BATCH_ROWS as u64) && self.cancel_requested() {
            self.cancelled = true;
            return;
        }
        if let Some(keys) = &mut self.keys {
            if keys.len() < MAX_KEPT_KEYS {
                keys.push(v.key);
            } else {
                self.keys = None;
            }
        }
        if self.error.is_some() || v.seq <= self.already_flushed {
            return;
        }
        if !v.newest {
            if v.seq > self.inline_after {
                self.inliner.push(v.seq, v.value);
                if self.inliner.is_full() {
                    if let Err(e) = self.inliner.apply(env.hot.store()) {
                        self.error = Some(ScopeFailure::new(None, e.to_string(), false));
                    }
                }
            }
            return;
        }
        if let Err(e) = self.add_newest(env, v, handle) {
            self.error = Some(e);
        }
    }

    /// Adds the newest version of a key; the error says whether the data
    /// or the storage failed.
    fn add_newest(
        &mut self,
        env: &Flusher,
        v: &VersionRef<'_>,
        handle: &Handle,
    ) -> std::result::Result<(), ScopeFailure> {
        let bad_data = |e: &dyn std::fmt::Display| ScopeFailure::new(None, e.to_string(), true);
        if self.refuse {
            return Err(bad_data(&"fail point: this user's rows are refused"));
        }
        let deleted = RowVersion::is_deleted_encoded(v.value).map_err(|e| bad_data(&e))?;
        if deleted && !self.has_cold {
            // Nothing older outside the hot tier can hold this key.
            return Ok(());
        }
        self.chunk.push(v.seq, v.value);
        self.rows += 1;
        self.tombstones += u64::from(deleted);
        match &mut self.pk_range {
            None => self.pk_range = Some((v.pk_prefix.to_vec(), v.pk_prefix.to_vec())),
            // Keys arrive in order: the first is the smallest, the latest
            // the largest (its buffer reused: this runs once a row).
            Some((_, max)) => {
                max.clear();
                max.extend_from_slice(v.pk_prefix);
            }
        }
        if self.chunk.len() >= CHUNK_ROWS {
            self.write_batch(env, handle)?;
        }
        Ok(())
    }

    fn write_batch(
        &mut self,
        env: &Flusher,
        handle: &Handle,
    ) -> std::result::Result<(), ScopeFailure> {
        let storage = |e: &dyn std::fmt::Display| ScopeFailure::new(None, e.to_string(), false);
        if self.writer.is_none() {
            mark_pending(env.hot.store(), &self.cold.id, &self.path).map_err(|e| storage(&e))?;
            let file = ParquetFileWriter::create(
                self.cold.store.clone(),
                self.path.clone(),
                self.schema.clone(),
                self.meta.clone(),
            )
            .map_err(|e| storage(&e))?;
            self.writer = Some(Lane::new(self.def, self.schema.clone(), file, handle));
        }
        let writer = self.writer.as_mut().expect("created above");
        writer.write(self.chunk.take())?;
        if let Some(hook) = &self.after_batch {
            hook();
        }
        Ok(())
    }

    /// Deletes the hot versions this flush read for the scope, a bounded
    /// batch at a time. After a commit they are hidden already; without one
    /// (only tombstones with nothing older in files) every version of a key
    /// goes in the same batch, so no older version can reappear.
    fn delete_read_versions(
        &mut self,
        env: &Flusher,
        snapshot: &StoreSnapshot<'_>,
        fail_at: Option<FailPoint>,
    ) -> Result<u64> {
        let chunk_fail_point = fail_at == Some(FailPoint::AfterFirstDeleteChunk);
        if self.versions_read >= RANGE_DELETE_MIN_VERSIONS && !chunk_fail_point {
            let store = env.hot.store();
            // With the scope's writers kept out, a scope nobody wrote since
            // the snapshot holds exactly the versions this flush read: one
            // range delete removes them, instead of a delete per version
            // (and a second pass over them when they were too many to keep
            // their keys). Writes after it are not covered by it.
            let _guard = env.hot.lock_scope_blocking(&self.scope);
            if store.written_since(&self.scope, self.max_seq_read)? == Some(false) {
                let mut batch = store.batch();
                batch.delete_rows_with_prefix(self.scope.as_bytes());
                store.write(batch)?;
                return Ok(self.versions_read);
            }
        }
        let mut deleter = ChunkedDelete::new(env.hot.store(), DELETE_CHUNK);
        deleter.stop_after_first_chunk = chunk_fail_point;
        match self.keys.take() {
            Some(keys) => {
                for key in keys.iter() {
                    if !deleter.delete(key)? {
                        break;
                    }
                }
            }
            None => {
                snapshot.scan_versions(self.scope.as_bytes(), &mut |v| deleter.delete(v.key))?;
            }
        }
        if deleter.stopped() {
            return Err(CoreError::FailPoint(
                "after the first batch of hot-version deletes",
            ));
        }
        Ok(deleter.finish()?)
    }

    /// Records a failed scope: its rows stay hot, a file begun for it is
    /// removed, and a permanent failure makes it wait before its next try.
    fn fail(
        self,
        env: &Flusher,
        handle: &Handle,
        mut failure: ScopeFailure,
        held: (u64, u64),
        started_file: bool,
        stats: &mut FlushStats,
    ) {
        warn!(table = %self.def.qualified_name(), user = ?self.user, error = %failure.cause, permanent = failure.permanent, "scope flush failed; rows stay hot");
        if failure.permanent {
            let retry_at = env.backoff.failed(
                self.def.uid,
                self.user.as_deref(),
                &failure.cause,
                held,
                env.clock.now_micros(),
            );
            debug!(table = %self.def.qualified_name(), user = ?self.user, retry_at, "scope waits before its next flush");
        }
        if started_file {
            self.discard(env, handle);
        }
        failure.user = self.user;
        stats.failed.push(failure);
    }

    fn cancel_requested(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_set())
    }

    /// Gives the scope up (the job was cancelled): its rows stay hot and a
    /// file begun for it is removed.
    fn abandon(mut self, env: &Flusher, handle: &Handle) {
        if self.writer.take().is_some() {
            self.discard(env, handle);
        }
        debug!(table = %self.def.qualified_name(), user = ?self.user, "scope abandoned: the flush was cancelled");
    }

    /// Best-effort removal of a file that will not be committed; what is
    /// left is removed at the next start (its pending record stays).
    fn discard(&self, env: &Flusher, handle: &Handle) {
        discard_uncommitted(env.hot.store(), &self.cold, handle, &self.path);
    }

    #[allow(clippy::too_many_arguments)]
    fn commit(
        mut self,
        env: &Flusher,
        cold: &ColdStore,
        snapshot: &StoreSnapshot<'_>,
        handle: &Handle,
        fail_at: Option<FailPoint>,
        stats: &mut FlushStats,
        to_compact: &mut Vec<ScopeKey>,
    ) -> Result<()> {
        let held = (self.versions_read, self.bytes_read);
        if self.waiting {
            env.backoff
                .still_holds(self.def.uid, self.user.as_deref(), held);
            stats.waiting_scopes += 1;
            return Ok(());
        }
        if let Some(failure) = self.error.take() {
            // A file begun for the scope is not committed.
            let started_file = self.writer.take().is_some();
            self.fail(env, handle, failure, held, started_file, stats);
            return Ok(());
        }
        // The change log's inserts refer to hot versions; the newest go
        // into the file (where readers find them once the hot ones are
        // gone), the superseded ones get their values in the log first,
        // before the commit, so no crash leaves a reference to nothing.
        self.inliner.apply(env.hot.store())?;
        let mut entry = None;
        if self.rows > 0 {
            let written = (|| {
                if self.chunk.len() > 0 {
                    self.write_batch(env, handle)?;
                }
                let writer = self.writer.take().expect("a scope with rows has a writer");
                writer.finish()
            })();
            let written = match written {
                Ok(w) => w,
                Err(failure) => {
                    self.fail(env, handle, failure, held, true, stats);
                    return Ok(());
                }
            };
            debug!(table = %self.def.qualified_name(), user = ?self.user, rows = written.rows, bytes = written.bytes, path = %written.path, "file written");
            if self.cancel_requested() {
                // The last safe point before the commit.
                self.discard(env, handle);
                stats.cancelled = true;
                return Ok(());
            }
            if fail_at == Some(FailPoint::AfterFileWritten) {
                return Err(CoreError::FailPoint("after file written"));
            }
            let (min_pk, max_pk) = self.pk_range.take().expect("rows have keys");
            entry = Some(ManifestEntry {
                path: written.path.to_string(),
                rows: written.rows,
                bytes: written.bytes,
                min_seq: written.min_seq,
                max_seq: written.max_seq,
                schema_version: self.def.schema_version,
                min_pk,
                max_pk,
                committed_at: env.clock.now_micros(),
                flushed_through: self.max_seq_read,
                tombstones: Some(self.tombstones),
            });
        }
        if let Some(entry) = &entry {
            let store = env.hot.store();
            let mut batch = store.batch();
            let name = entry.file_name();
            // A `_seq` is never handed out twice, so the scope's manifest
            // version never repeats, even across restarts.
            batch.put_manifest_entry(
                &self.scope,
                name,
                &serde_json::to_vec(entry)?,
                store.next_seqs(1)?,
            );
            batch.delete_meta(&pending_key(&self.cold.id, &self.path));
            env.hot.store().write(batch)?;
            debug!(table = %self.def.qualified_name(), user = ?self.user, rows = entry.rows, flushed_through = entry.flushed_through, "scope committed");
            if fail_at == Some(FailPoint::AfterCommitBeforeDelete) {
                return Err(CoreError::FailPoint(
                    "after commit, before deleting hot versions",
                ));
            }
        }
        let deleted = self.delete_read_versions(env, snapshot, fail_at)?;
        if deleted >= COMPACT_AFTER_DELETING {
            to_compact.push(self.scope.clone());
        }
        env.hot
            .removed(self.def.uid, self.versions_read, self.bytes_read);
        env.backoff.succeeded(self.def.uid, self.user.as_deref());
        debug!(table = %self.def.qualified_name(), user = ?self.user, deleted_hot = deleted, "flushed hot versions deleted");
        if let Some(entry) = entry {
            stats.rows_flushed += entry.rows;
            stats.bytes_written += entry.bytes;
            stats.parquet_files += 1;
            stats.users_count += 1;
            // The scheduler compacts scopes whose files its policy says
            // are too many.
            let mut entries = self.files.entries().to_vec();
            entries.push(std::sync::Arc::new(entry));
            if env.compaction_policy(self.def).is_due(&entries) {
                env.due.note(self.def.uid, &self.scope);
            }
            write_manifest_copy(
                env,
                cold,
                handle,
                self.def,
                &self.scope,
                self.user.as_deref(),
            );
        }
        Ok(())
    }
}

/// Consecutive users whose files cannot be written before a flush gives up
/// on the rest (the storage is most likely down).
const FAILURES_BEFORE_GIVING_UP: usize = 3;

/// A progress line is logged (DEBUG) every this many hot versions read.
const PROGRESS_EVERY: u64 = 100_000;

/// Keys kept in memory per scope for the deletes after its commit (about
/// 40 bytes each); a larger scope is read again from the snapshot.
const MAX_KEPT_KEYS: usize = 65_536;
/// A scope of at least this many hot versions that nobody wrote since the
/// flush's snapshot loses them in one range delete. Smaller scopes delete
/// versions one by one: a range tombstone costs reads more than a point
/// one, so they are kept few.
const RANGE_DELETE_MIN_VERSIONS: u64 = 4_096;
/// A scope that lost at least this many hot versions in a flush has its
/// key range compacted once the flush's snapshot is released, after the
/// flush ([`crate::hot::Tidier`]): seeks there would step over each deleted
/// version until RocksDB got to it.
const COMPACT_AFTER_DELETING: u64 = 4_096;
/// Hot versions deleted per RocksDB batch.
const DELETE_CHUNK: usize = 16_384;

/// Writes `manifest.json` beside the scope's files. The hot tier holds the
/// authoritative manifest, so a failure here is logged, not fatal.
pub(crate) fn write_manifest_copy(
    env: &Flusher,
    cold: &ColdStore,
    handle: &Handle,
    def: &TableDef,
    scope: &ScopeKey,
    user: Option<&str>,
) {
    let result = (|| -> Result<()> {
        let files = ScopeFiles::read(&env.hot.store().snapshot(), scope)?
            .entries()
            .iter()
            .map(|e| ManifestEntry::clone(e))
            .collect();
        let document = ManifestDocument {
            table: def.qualified_name(),
            user_id: user.map(String::from),
            files,
        };
        let path = cold.scope_dir(def, user)?.join(MANIFEST_FILE);
        let body = serde_json::to_vec_pretty(&document)?;
        bridge::wait(handle, cold.store.put(&path, PutPayload::from(body)))?;
        Ok(())
    })();
    if let Err(e) = result {
        warn!(table = %def.qualified_name(), ?user, error = %e, "could not write manifest.json");
    }
}
