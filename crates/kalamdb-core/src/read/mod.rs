//! The one read path: the view of one scope (one user of a USER table, or
//! a whole SHARED table) across both tiers.
//!
//! A [`ScopeView`] is read from one RocksDB snapshot: the scope's manifest
//! entries (its committed files, [`ScopeFiles`]), their `flushed_through`,
//! and the scope's hot versions. A flush commit (a manifest entry whose
//! `flushed_through` hides the hot versions its file replaced) is therefore
//! seen wholly or not at all. Hot versions at or below `flushed_through`
//! are skipped, whether or not their deletion has run; every hot version
//! left is newer than every committed one.
//!
//! Users of the view:
//! - SELECT scans ([`ScopeView::scan`]): a k-way merge by primary key of the
//!   hot versions and one cursor per file. Stretches of a file batch that no
//!   other source can override go out as Arrow columns.
//! - point lookups ([`ScopeView::lookup`]) and the INSERT key check
//!   ([`ScopeView::hot_versions`], then [`ScopeFiles::lookup`]).
//! - UPDATE and DELETE, through the scans of the query that finds their rows.
//! - the flush, which reads each scope's files and `flushed_through` from
//!   the view of the flush's snapshot.
//!
//! Blocking: RocksDB iteration and file reads block, so scans and file
//! lookups run on blocking threads and reach the async object store through
//! `cold::bridge`.

mod at_seq;
mod batch;
mod counts;
mod cursor;
mod decode;
mod lookup;
mod manifests;
mod merge;
mod project;

pub use at_seq::FlushedFiles;
pub use batch::{BatchBuilder, BATCH_ROWS};
pub use counts::ReadCounts;
pub use cursor::FileRead;
pub use decode::FileBatch;
pub(crate) use lookup::probe;
pub use lookup::Versions;
pub use project::{CountingSink, ProjectingSink};

use crate::catalog::TableDef;
use crate::cold::ColdStore;
use crate::error::{CoreError, Result};
use kalamdb_commons::Value;
use kalamdb_filestore::ManifestEntry;
use kalamdb_store::{meta_keys, LatestIter, ReadPin, RowVersion, ScopeKey, StoreSnapshot};
use std::sync::Arc;
use tokio::runtime::Handle;

/// The table's columns (indices) among a scan's `projection`, which may
/// also name `_seq` and `_deleted` (indices past the table's columns).
pub fn table_columns(def: &TableDef, projection: &[usize]) -> Vec<usize> {
    projection
        .iter()
        .copied()
        .filter(|&i| i < def.columns.len())
        .collect()
}

/// One version of a row, from either tier.
#[derive(Debug, Clone, PartialEq)]
pub struct Version {
    pub seq: u64,
    pub deleted: bool,
    pub values: Vec<Value>,
}

impl From<(u64, RowVersion)> for Version {
    fn from((seq, row): (u64, RowVersion)) -> Self {
        Self {
            seq,
            deleted: row.deleted,
            values: row.values,
        }
    }
}

/// Where a scan's visible rows go, in key order.
pub trait RowSink {
    /// One row; returns whether to go on.
    fn row(&mut self, seq: u64, values: &[Value]) -> Result<bool>;
    /// Rows `from..` of a file batch, every one of them visible except its
    /// tombstones; returns whether to go on.
    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool>;
    /// The newest version of a deleted row, for a view that asked for
    /// them ([`ScopeView::with_tombstones`]); returns whether to go on.
    fn tombstone(&mut self, _seq: u64, _values: &[Value]) -> Result<bool> {
        Ok(true)
    }
    /// A file's version of a key that a newer version (in another file or
    /// the hot tier) hides, so the scan drops it: what a compaction of
    /// those files removes for good.
    fn superseded(&mut self, _version: Version) -> Result<()> {
        Ok(())
    }
}

/// A scope's committed files as of one snapshot. Owned, so it can move to
/// a blocking thread without the snapshot.
#[derive(Debug, Clone, Default)]
pub struct ScopeFiles {
    /// Oldest first. Shared: a listing is kept between reads.
    entries: Arc<[Arc<ManifestEntry>]>,
    flushed_through: u64,
    /// No two files' key ranges meet: every key is in one file at most,
    /// once. Worked out once per listing (kept listings keep it), not per
    /// scan.
    apart: bool,
    /// Keeps the files from removal by a compaction while this list (of
    /// the snapshot it was read from) is held; `None` in kept listings.
    pin: Option<ReadPin>,
}

impl ScopeFiles {
    pub fn read(snapshot: &StoreSnapshot<'_>, scope: &ScopeKey) -> Result<Self> {
        let version = snapshot.meta_get(&meta_keys::scope_manifest_version(scope))?;
        if let Some(files) = version
            .as_deref()
            .and_then(|v| manifests::listed(snapshot.store_id(), scope, v))
        {
            return Ok(files.pinned(snapshot));
        }
        let mut entries = snapshot
            .meta_scan(&meta_keys::scope_manifest(scope))?
            .into_iter()
            .map(|(key, raw)| manifests::parse(key, raw))
            .collect::<Result<Vec<_>>>()?;
        entries.sort_by_key(|e| e.max_seq);
        let flushed_through = entries.iter().map(|e| e.flushed_through).max().unwrap_or(0);
        let files = Self {
            apart: keys_apart(&entries),
            entries: entries.into(),
            flushed_through,
            pin: None,
        };
        if let Some(version) = version {
            manifests::keep_listed(snapshot.store_id(), scope, version, &files);
        }
        Ok(files.pinned(snapshot))
    }

    fn pinned(mut self, snapshot: &StoreSnapshot<'_>) -> Self {
        self.pin = Some(snapshot.pin());
        self
    }

    /// The files of this list for which `keep` holds, oldest first, with
    /// the same pin. `flushed_through` stays the whole list's: it says
    /// which hot versions the scope's files replaced, whichever of them
    /// are read.
    pub fn only(&self, keep: impl Fn(&ManifestEntry) -> bool) -> Self {
        let entries: Vec<_> = self.entries.iter().filter(|e| keep(e)).cloned().collect();
        Self {
            apart: keys_apart(&entries),
            entries: entries.into(),
            flushed_through: self.flushed_through,
            pin: self.pin.clone(),
        }
    }

    pub fn entries(&self) -> &[Arc<ManifestEntry>] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every hot version at or below this `_seq` is in one of the files.
    pub fn flushed_through(&self) -> u64 {
        self.flushed_through
    }

    /// Whether every file's rows are all visible as they are (but for newer
    /// hot versions): their key ranges are apart and they hold no
    /// tombstones (known: counted when written).
    pub fn settled(&self) -> bool {
        !self.entries.is_empty()
            && self.entries.iter().all(|e| e.tombstones == Some(0))
            && self.keys_apart()
    }

    /// Whether no two files' key ranges meet: then every key is in one
    /// file at most, once.
    pub fn keys_apart(&self) -> bool {
        self.apart
    }

    /// The files in key order (for a scope whose keys are apart: the order
    /// of their rows).
    pub fn by_key(&self) -> Vec<&ManifestEntry> {
        let mut files: Vec<&ManifestEntry> = self.entries.iter().map(|e| &**e).collect();
        files.sort_by(|a, b| a.min_pk.cmp(&b.min_pk));
        files
    }
}

/// Whether no two of `entries`' key ranges meet.
pub(crate) fn keys_apart(entries: &[Arc<ManifestEntry>]) -> bool {
    let mut ranges: Vec<(&[u8], &[u8])> = entries
        .iter()
        .map(|e| (e.min_pk.as_slice(), e.max_pk.as_slice()))
        .collect();
    ranges.sort();
    ranges.windows(2).all(|w| w[0].1 < w[1].0)
}

/// One scope as of one snapshot.
pub struct ScopeView<'a> {
    snapshot: &'a StoreSnapshot<'a>,
    def: &'a TableDef,
    scope: &'a ScopeKey,
    files: ScopeFiles,
    /// Whether [`ScopeView::scan`] hands deleted rows to the sink too.
    tombstones: bool,
    /// Whether the view leaves the hot tier out (a compaction merges files
    /// only).
    files_only: bool,
    /// What scans read of each file.
    read: FileRead,
    /// Files read so far by lookups and scans of this view (for EXPLAIN
    /// ANALYZE).
    files_read: std::cell::Cell<usize>,
    /// A transaction's snapshot and own writes, for its statements.
    overlay: Option<TxOverlay>,
}

/// What a transaction's statements see of a scope besides a fresh
/// snapshot: only the versions up to its snapshot's `_seq` (`as_of`), and
/// its own uncommitted writes over them.
#[derive(Debug, Clone, Default)]
pub struct TxOverlay {
    pub as_of: u64,
    /// The scope's uncommitted writes by encoded key (scope and primary
    /// key), tombstones for deletes; they read with `_seq`
    /// [`PENDING_SEQ`].
    pub pending: Arc<std::collections::BTreeMap<Vec<u8>, RowVersion>>,
}

/// The `_seq` a transaction's statements see on its own uncommitted rows
/// (above every committed one; the real one is given at COMMIT).
pub const PENDING_SEQ: u64 = i64::MAX as u64;

impl<'a> ScopeView<'a> {
    pub fn open(
        snapshot: &'a StoreSnapshot<'a>,
        def: &'a TableDef,
        scope: &'a ScopeKey,
    ) -> Result<Self> {
        let files = ScopeFiles::read(snapshot, scope)?;
        Ok(Self::new(snapshot, def, scope, files, false))
    }

    /// A view of `files` alone (some of a scope's files, as of
    /// `snapshot`), without the hot tier: its scan merges only them.
    pub fn of_files(
        snapshot: &'a StoreSnapshot<'a>,
        def: &'a TableDef,
        scope: &'a ScopeKey,
        files: ScopeFiles,
    ) -> Self {
        Self::new(snapshot, def, scope, files, true)
    }

    fn new(
        snapshot: &'a StoreSnapshot<'a>,
        def: &'a TableDef,
        scope: &'a ScopeKey,
        files: ScopeFiles,
        files_only: bool,
    ) -> Self {
        Self {
            files,
            snapshot,
            def,
            scope,
            tombstones: false,
            files_only,
            read: FileRead::default(),
            files_read: std::cell::Cell::new(0),
            overlay: None,
        }
    }

    /// This view as a transaction's statement sees it: the hot tier as of
    /// its snapshot, its own writes over it. A flush that committed since
    /// the snapshot may have moved versions the snapshot needs out of the
    /// hot tier (their files hold newer ones): the transaction has to run
    /// again ([`CoreError::TransactionConflict`]).
    pub fn in_transaction(mut self, overlay: TxOverlay) -> Result<Self> {
        if self.files.flushed_through > overlay.as_of {
            return Err(CoreError::TransactionConflict(format!(
                "a flush of '{}' moved rows this transaction reads since it began; \
                 nothing was applied, run it again",
                self.def.qualified_name()
            )));
        }
        self.overlay = Some(overlay);
        Ok(self)
    }

    /// How many of the scope's files lookups and scans of this view have
    /// read, and how many the scope has.
    pub fn files_read(&self) -> (usize, usize) {
        (self.files_read.get(), self.files.entries.len())
    }

    /// A view whose scan also hands each deleted row's newest version
    /// (its tombstone) to [`RowSink::tombstone`].
    pub fn with_tombstones(mut self, yes: bool) -> Self {
        self.tombstones = yes;
        self
    }

    /// A view whose scans read only `read` of each file: the columns the
    /// sink uses, the key range the query wants.
    pub fn reading(mut self, read: FileRead) -> Self {
        self.read = read;
        self
    }

    /// Whether the scope has committed files (a scan reads them).
    pub fn has_files(&self) -> bool {
        !self.files.is_empty()
    }

    #[cfg(test)]
    pub fn files(&self) -> &ScopeFiles {
        &self.files
    }

    pub fn into_files(self) -> ScopeFiles {
        self.files
    }

    /// The newest hot version of each key under `prefix` (the scope, or one
    /// key of it), without those a committed flush already moved into the
    /// files.
    pub fn live_hot(&self, prefix: &[u8]) -> LiveHot<'a> {
        let as_of = self.overlay.as_ref().map_or(u64::MAX, |o| o.as_of);
        let pending = match &self.overlay {
            Some(o) if !self.files_only => o
                .pending
                .range(prefix.to_vec()..)
                .take_while(|(key, _)| key.starts_with(prefix))
                .map(|(key, row)| (key.clone(), row.clone()))
                .collect(),
            _ => std::collections::VecDeque::new(),
        };
        LiveHot {
            inner: (!self.files_only).then(|| self.snapshot.latest_iter_as_of(prefix, as_of)),
            flushed: self.files.flushed_through,
            def: self.def,
            next_hot: None,
            pending,
        }
    }

    /// Whether the hot tier holds a version of the scope newer than its
    /// files (a files-only view never does).
    pub(crate) fn has_live_hot(&self) -> Result<bool> {
        match self.live_hot(self.scope.as_bytes()).next() {
            Some(first) => first.map(|_| true),
            None => Ok(false),
        }
    }

    /// The scope's visible rows when it has no files: its newest hot
    /// versions that are not tombstones, counted without decoding them.
    /// `None` when the scope has files (their rows count too).
    pub fn count_hot_only(&self) -> Result<Option<u64>> {
        if self.has_files() || self.overlay.is_some() {
            return Ok(None);
        }
        let flushed = self.files.flushed_through;
        let mut rows = 0u64;
        self.snapshot
            .scan_versions(self.scope.as_bytes(), &mut |v| {
                if v.newest && v.seq > flushed && !RowVersion::is_deleted_encoded(v.value)? {
                    rows += 1;
                }
                Ok(true)
            })?;
        Ok(Some(rows))
    }

    /// The scope's visible rows when counting them needs no merge: only
    /// hot rows ([`Self::count_hot_only`]), or only files (no hot version
    /// newer than them) whose key ranges are apart and whose tombstones are
    /// counted: then every key is in one file once, and the count is the
    /// files' rows less their tombstones, from the manifest alone (a
    /// compacted scope is so). `None` otherwise.
    pub fn count_without_merge(&self) -> Result<Option<u64>> {
        if self.overlay.is_some() {
            return Ok(None);
        }
        if let Some(rows) = self.count_hot_only()? {
            return Ok(Some(rows));
        }
        if self.has_live_hot()? {
            return Ok(None);
        }
        let files = &self.files.entries;
        if files.iter().any(|e| e.tombstones.is_none()) || !self.files.keys_apart() {
            return Ok(None);
        }
        Ok(Some(
            files
                .iter()
                .map(|e| e.rows.saturating_sub(e.held_tombstones()))
                .sum(),
        ))
    }

    /// The newest hot version of each encoded key (tombstones included),
    /// `None` where the hot tier has none newer than the files.
    pub fn hot_versions(&self, prefixes: &[&[u8]]) -> Result<Vec<Option<Version>>> {
        let flushed = self.files.flushed_through;
        let as_of = self.overlay.as_ref().map_or(u64::MAX, |o| o.as_of);
        self.snapshot
            .latest_versions_as_of(self.scope, prefixes, as_of)?
            .into_iter()
            .zip(prefixes)
            .map(|(found, prefix)| {
                let own = self.overlay.as_ref().and_then(|o| o.pending.get(*prefix));
                match (own, found) {
                    (Some(row), _) => Ok(Some(Version::from((
                        PENDING_SEQ,
                        self.def.upgrade(row.clone())?,
                    )))),
                    (None, Some((seq, row))) if seq > flushed => {
                        Ok(Some(Version::from((seq, self.def.upgrade(row)?))))
                    }
                    _ => Ok(None),
                }
            })
            .collect()
    }

    /// The hot tier's half of [`ScopeView::lookup`]: the keys it decides
    /// (a hot version newer than the files), and the keys it leaves to the
    /// files. RocksDB reads only.
    fn lookup_hot(&self, keys: &[Value]) -> Result<(Versions, Vec<Value>)> {
        let encoded = keys
            .iter()
            .map(|k| Ok(self.scope.pk_prefix(k)?))
            .collect::<Result<Vec<Vec<u8>>>>()?;
        let prefixes: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let mut found = Versions::new();
        let mut undecided = Vec::new();
        for ((key, prefix), hot) in keys.iter().zip(&encoded).zip(self.hot_versions(&prefixes)?) {
            match hot {
                Some(version) => {
                    found.insert(prefix.clone(), version);
                }
                // Only a file whose key range holds the key can answer it.
                None if self.files.entries.iter().any(|e| e.may_contain(prefix)) => {
                    undecided.push(key.clone())
                }
                None => {}
            }
        }
        Ok((found, undecided))
    }

    /// [`ScopeView::lookup`] when the hot tier and the file cache answer it
    /// (nothing waits: fit for an async task); `None` when a file's bytes
    /// would have to be fetched.
    pub fn lookup_in_place(&self, cold: &ColdStore, keys: &[Value]) -> Result<Option<Versions>> {
        let (mut found, undecided) = self.lookup_hot(keys)?;
        if undecided.is_empty() {
            return Ok(Some(found));
        }
        let mut read = 0;
        let Some(cold_found) = self
            .files
            .lookup_cached(cold, self.def, self.scope, &undecided, &mut read)?
        else {
            return Ok(None);
        };
        found.extend(cold_found);
        self.files_read.set(self.files_read.get() + read);
        Ok(Some(found))
    }

    /// The newest version of each of `keys` in either tier, tombstones
    /// included. Files are read only for keys the hot tier does not decide
    /// (a hot version newer than the files is newer than any of theirs).
    /// Runs on a blocking thread.
    pub fn lookup(&self, cold: &ColdStore, handle: &Handle, keys: &[Value]) -> Result<Versions> {
        let (mut found, undecided) = self.lookup_hot(keys)?;
        if !undecided.is_empty() {
            let mut read = 0;
            found.extend(
                self.files
                    .lookup_counted(cold, handle, self.def, self.scope, &undecided, &mut read)?,
            );
            self.files_read.set(self.files_read.get() + read);
        }
        Ok(found)
    }
}

/// See [`ScopeView::live_hot`]: yields `(encoded key, _seq, version)`.
pub struct LiveHot<'a> {
    /// `None` for a files-only view.
    inner: Option<LatestIter<'a>>,
    flushed: u64,
    /// Versions come out in its columns.
    def: &'a TableDef,
    /// The next committed version, read ahead to merge with `pending`.
    next_hot: Option<(Vec<u8>, u64, RowVersion)>,
    /// A transaction's own writes under the prefix, in key order.
    pending: std::collections::VecDeque<(Vec<u8>, RowVersion)>,
}

impl LiveHot<'_> {
    /// The next committed version newer than the files, from the snapshot.
    fn next_committed(&mut self) -> Option<Result<(Vec<u8>, u64, RowVersion)>> {
        loop {
            match self.inner.as_mut()?.next()? {
                Ok((_, seq, _)) if seq <= self.flushed => continue,
                Ok(found) => return Some(Ok(found)),
                Err(e) => return Some(Err(CoreError::from(e))),
            }
        }
    }
}

impl Iterator for LiveHot<'_> {
    type Item = Result<(Vec<u8>, u64, RowVersion)>;

    /// Committed versions and a transaction's own writes merged by key;
    /// an own write hides the committed version of its key.
    fn next(&mut self) -> Option<Self::Item> {
        if self.next_hot.is_none() {
            match self.next_committed() {
                Some(Ok(found)) => self.next_hot = Some(found),
                Some(Err(e)) => return Some(Err(e)),
                None => {}
            }
        }
        let own_first = match (self.pending.front(), &self.next_hot) {
            (Some((own, _)), Some((hot, _, _))) => own <= hot,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let (key, seq, row) = if own_first {
            let (key, row) = self.pending.pop_front()?;
            if self
                .next_hot
                .as_ref()
                .is_some_and(|(hot, _, _)| *hot == key)
            {
                self.next_hot = None;
            }
            (key, PENDING_SEQ, row)
        } else {
            self.next_hot.take()?
        };
        Some(self.def.upgrade(row).map(|row| (key, seq, row)))
    }
}

#[cfg(test)]
pub(crate) mod tests;
