//! The RocksDB instance and its three column families: `meta` (catalog,
//! users, counters), `rows` (row versions) and `changes` (the change log of
//! [`crate::changes`]).

use crate::changes::CF_CHANGES;
use crate::keys::{prefix_end, push_seq, split_version_key, ScopeKey};
use crate::seq::SeqAllocator;
use crate::snapshot::StoreSnapshot;
use crate::{meta_keys, ReadPins, RowVersion, StoreError};
use kalamdb_commons::Value;
use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options,
    ReadOptions, WriteOptions, DB,
};
use std::path::Path;

pub(crate) const CF_META: &str = "meta";
const CF_ROWS: &str = "rows";
const SEQ_LIMIT_KEY: &[u8] = b"\x00seq_limit";

#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// fsync the WAL on every write. Without it a write survives a process
    /// crash (`kill -9`) but not a power loss.
    pub sync_writes: bool,
    /// Bytes of uncompressed SST blocks kept in memory, shared by every
    /// column family.
    pub block_cache_bytes: usize,
}

/// The default block cache: RocksDB's own default is 8 MiB per column
/// family, and a point lookup that misses it reads its block through the
/// operating system's page cache, which a host may reclaim (then each
/// miss is a disk read of milliseconds).
pub const BLOCK_CACHE_BYTES: usize = 256 * 1024 * 1024;

/// Data block size of the row and change-log families.
const ROW_BLOCK_BYTES: usize = 16 * 1024;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sync_writes: false,
            block_cache_bytes: BLOCK_CACHE_BYTES,
        }
    }
}

/// The hot tier. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct HotStore {
    db: DB,
    write_opts: WriteOptions,
    seq: SeqAllocator,
    /// See [`crate::changes`]: changes at or below it may be gone.
    pub(crate) changes_floor: std::sync::atomic::AtomicU64,
    id: u64,
    pins: ReadPins,
}

/// Numbers the stores opened in this process (see [`HotStore::id`]).
static OPENED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl std::fmt::Debug for HotStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HotStore")
            .field("path", &self.db.path())
            .finish()
    }
}

/// Key/value pairs read from the `meta` column family.
pub type MetaEntries = Vec<(Vec<u8>, Vec<u8>)>;

impl HotStore {
    pub fn open(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.increase_parallelism(2);
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(3);
        let cache = Cache::new_lru_cache(options.block_cache_bytes);
        let db = DB::open_cf_descriptors(&db_opts, path, Self::families(&cache))?;
        let persisted_limit = Self::persisted_limit(&db)?;
        let changes_floor =
            // Every `_seq` handed out before is below the persisted limit.
            Self::upgrade_changes(&db, Self::read_changes_floor(&db)?, persisted_limit.saturating_sub(1))?;
        Ok(Self::assemble(db, options, persisted_limit, changes_floor))
    }

    /// Opens a store (a backup's checkpoint) only to read it: nothing in
    /// `path` changes, and every write fails.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let db = DB::open_cf_descriptors_read_only(
            &Options::default(),
            path,
            Self::families(&cache),
            false,
        )?;
        let persisted_limit = Self::persisted_limit(&db)?;
        let changes_floor = Self::read_changes_floor(&db)?;
        Ok(Self::assemble(
            db,
            StoreOptions::default(),
            persisted_limit,
            changes_floor,
        ))
    }

    /// Writes a consistent copy of the whole store (every column family,
    /// as of one instant) into `dir`, which must not exist. Files are hard
    /// links where `dir` is on the same file system, so this is quick.
    pub fn checkpoint(&self, dir: &Path) -> Result<(), StoreError> {
        Ok(rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?)
    }

    fn families(cache: &Cache) -> Vec<ColumnFamilyDescriptor> {
        let mut tables = BlockBasedOptions::default();
        tables.set_block_cache(cache);
        let mut meta_opts = Options::default();
        meta_opts.set_block_based_table_factory(&tables);
        // Rows are read mostly in long runs (a scope's scan, a flush): a
        // block four times RocksDB's default costs a quarter of the block
        // lookups per row, and a point read decodes one 16 KiB block.
        let mut row_tables = BlockBasedOptions::default();
        row_tables.set_block_cache(cache);
        row_tables.set_block_size(ROW_BLOCK_BYTES);
        let mut rows_opts = Options::default();
        rows_opts.set_block_based_table_factory(&row_tables);
        rows_opts.set_compression_type(DBCompressionType::Lz4);
        vec![
            ColumnFamilyDescriptor::new(CF_META, meta_opts),
            ColumnFamilyDescriptor::new(CF_ROWS, rows_opts.clone()),
            ColumnFamilyDescriptor::new(CF_CHANGES, rows_opts),
        ]
    }

    fn persisted_limit(db: &DB) -> Result<u64, StoreError> {
        match db.get_cf(db.cf_handle(CF_META).expect("meta cf"), SEQ_LIMIT_KEY)? {
            Some(raw) => {
                Ok(u64::from_be_bytes(raw.as_slice().try_into().map_err(
                    |_| StoreError::Corrupt("sequence limit".into()),
                )?))
            }
            None => Ok(0),
        }
    }

    fn assemble(db: DB, options: StoreOptions, persisted_limit: u64, changes_floor: u64) -> Self {
        let mut write_opts = WriteOptions::default();
        write_opts.set_sync(options.sync_writes);
        Self {
            db,
            write_opts,
            seq: SeqAllocator::new(persisted_limit),
            changes_floor: changes_floor.into(),
            id: OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            pins: ReadPins::default(),
        }
    }

    /// Tells this open store from every other one opened in the process
    /// (another data directory, or the same one opened again): caches
    /// shared by the process key what they keep from a store by it.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub(crate) fn meta(&self) -> &ColumnFamily {
        self.db.cf_handle(CF_META).expect("meta cf exists")
    }

    fn rows(&self) -> &ColumnFamily {
        self.db.cf_handle(CF_ROWS).expect("rows cf exists")
    }

    /// Allocates `n` consecutive `_seq` numbers and returns the first.
    pub fn next_seqs(&self, n: u64) -> Result<u64, StoreError> {
        self.seq.allocate(n, |limit| {
            let mut opts = WriteOptions::default();
            opts.set_sync(true);
            self.db
                .put_cf_opt(self.meta(), SEQ_LIMIT_KEY, limit.to_be_bytes(), &opts)
                .map_err(StoreError::from)
        })
    }

    /// The highest `_seq` handed out so far.
    pub fn last_seq(&self) -> u64 {
        self.seq.last_allocated()
    }

    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.meta(), key)?)
    }

    /// Every meta entry whose key starts with `prefix`, in key order.
    pub fn meta_scan(&self, prefix: &[u8]) -> Result<MetaEntries, StoreError> {
        self.snapshot().meta_scan(prefix)
    }

    pub fn batch(&self) -> WriteBatch<'_> {
        WriteBatch {
            store: self,
            inner: rocksdb::WriteBatch::default(),
            scratch: Vec::new(),
            prefix_scratch: Vec::new(),
            changes: Default::default(),
        }
    }

    /// Applies the batch atomically; returns once it is in the WAL.
    pub fn write(&self, mut batch: WriteBatch<'_>) -> Result<(), StoreError> {
        batch.add_pending_changes();
        self.db.write_opt(batch.inner, &self.write_opts)?;
        Ok(())
    }

    /// The newest version of `pk` in `scope`, tombstones included.
    pub fn latest_version(
        &self,
        scope: &ScopeKey,
        pk: &Value,
    ) -> Result<Option<(u64, RowVersion)>, StoreError> {
        let prefix = scope.pk_prefix(pk)?;
        Ok(self.latest_versions(scope, &[&prefix])?.pop().flatten())
    }

    /// The newest version (tombstones included) of each primary key of
    /// `scope` whose encoded prefix ([`ScopeKey::pk_prefix`]) is given, in
    /// the order given.
    ///
    /// One iterator visits the keys in sorted order and seeks only when it
    /// is behind the next key: where it already stands is the first key at
    /// or after that one. So keys beyond everything stored (ascending ids,
    /// the bulk-load case) cost one seek for the whole list.
    pub fn latest_versions(
        &self,
        scope: &ScopeKey,
        prefixes: &[&[u8]],
    ) -> Result<Vec<Option<(u64, RowVersion)>>, StoreError> {
        latest_of(scope.as_bytes(), prefixes, u64::MAX, |range| {
            let mut opts = ReadOptions::default();
            if let Some(end) = prefix_end(range) {
                opts.set_iterate_upper_bound(end);
            }
            self.db.raw_iterator_cf_opt(self.rows(), opts)
        })
    }

    /// Compacts the row versions under `prefix` now, so that what was
    /// deleted there is gone from RocksDB's files too: until then a seek
    /// into the range steps over every deleted version (RocksDB 7.8 skips
    /// them one by one below the iterator's upper bound), which took point
    /// lookups in a scope just emptied by a flush of a million versions
    /// from microseconds to 5-35 ms. Versions a live snapshot can still see
    /// stay; blocks until done. Not exclusive: RocksDB's own compactions
    /// go on beside it (an exclusive one would hold them back, and L0 files
    /// piling up meanwhile stall writes).
    pub fn compact_rows(&self, prefix: &[u8]) {
        let mut opts = rocksdb::CompactOptions::default();
        opts.set_exclusive_manual_compaction(false);
        self.db
            .compact_range_cf_opt(self.rows(), Some(prefix), prefix_end(prefix), &opts);
    }

    /// A consistent read view of catalog and rows, with the highest `_seq`
    /// any version in it can carry.
    pub fn snapshot(&self) -> StoreSnapshot<'_> {
        // Pinned first: a commit that retires files and then advances the
        // pins' generation is seen by every snapshot pinned after it.
        let pin = self.pins.pin();
        let snapshot = self.db.snapshot();
        // Read after the snapshot: every version it holds had its `_seq`
        // allocated before, so none is above this watermark.
        let watermark = self.last_seq();
        StoreSnapshot {
            store: self,
            snapshot,
            watermark,
            pin,
        }
    }

    /// The pins of this store's readers (see [`ReadPins`]).
    pub fn pins(&self) -> &ReadPins {
        &self.pins
    }

    pub(crate) fn meta_cf(&self) -> &ColumnFamily {
        self.meta()
    }

    pub(crate) fn rows_cf(&self) -> &ColumnFamily {
        self.rows()
    }

    pub(crate) fn changes_cf(&self) -> &ColumnFamily {
        self.db.cf_handle(CF_CHANGES).expect("changes cf exists")
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }
}

/// An atomic group of writes across catalog and rows.
pub struct WriteBatch<'a> {
    pub(crate) store: &'a HotStore,
    pub(crate) inner: rocksdb::WriteBatch,
    /// Buffers reused across the rows of the batch.
    pub(crate) scratch: Vec<u8>,
    prefix_scratch: Vec<u8>,
    /// The change-log entry being built ([`crate::changes`]).
    pub(crate) changes: crate::changes::PendingChanges,
}

impl WriteBatch<'_> {
    pub fn put_meta(&mut self, key: &[u8], value: &[u8]) {
        self.inner.put_cf(self.store.meta(), key, value);
    }

    pub fn delete_meta(&mut self, key: &[u8]) {
        self.inner.delete_cf(self.store.meta(), key);
    }

    /// Removes every meta entry whose key starts with `prefix`.
    pub fn delete_meta_with_prefix(&mut self, prefix: &[u8]) {
        match prefix_end(prefix) {
            Some(end) => self.inner.delete_range_cf(self.store.meta(), prefix, &end),
            None => self
                .inner
                .delete_range_cf(self.store.meta(), prefix, &[0xFFu8; 64][..]),
        }
    }

    /// Adds one row version; returns its stored size (key + value bytes),
    /// the measure the hot-tier budget counts in.
    pub fn put_version(
        &mut self,
        scope: &ScopeKey,
        pk: &Value,
        seq: u64,
        row: &RowVersion,
    ) -> Result<u64, StoreError> {
        let mut prefix = std::mem::take(&mut self.prefix_scratch);
        prefix.clear();
        let encoded = scope.append_pk_prefix(&mut prefix, pk);
        let size = encoded.map(|()| self.put_version_at(&prefix, seq, row));
        self.prefix_scratch = prefix;
        size
    }

    /// Adds one version of the row whose primary-key prefix
    /// ([`ScopeKey::pk_prefix`]) the caller already encoded. The scratch
    /// buffer keeps its key (prefix and `_seq`, 8 bytes) and value after.
    pub fn put_version_at(&mut self, pk_prefix: &[u8], seq: u64, row: &RowVersion) -> u64 {
        // Key and value are built in one buffer reused across rows; RocksDB
        // copies both into the batch.
        let buf = &mut self.scratch;
        buf.clear();
        buf.extend_from_slice(pk_prefix);
        push_seq(buf, seq);
        let key_len = buf.len();
        row.encode_into(buf);
        self.inner
            .put_cf(self.store.rows(), &buf[..key_len], &buf[key_len..]);
        buf.len() as u64
    }

    /// Commits the manifest entry of one file of `scope` (its JSON), with
    /// the scope's new manifest version ([`meta_keys::scope_manifest_version`]):
    /// `version` must be a number the scope never had, such as a fresh
    /// `_seq`.
    pub fn put_manifest_entry(
        &mut self,
        scope: &ScopeKey,
        file_name: &str,
        entry: &[u8],
        version: u64,
    ) {
        self.put_meta(&meta_keys::manifest_entry(scope, file_name), entry);
        self.put_meta(
            &meta_keys::scope_manifest_version(scope),
            &version.to_be_bytes(),
        );
    }

    /// Replaces manifest entries of `scope` (a compaction's commit): the
    /// files named `removed` leave it and `added` (name, JSON) join it, in
    /// this batch, with the scope's new manifest `version` as for
    /// [`Self::put_manifest_entry`].
    pub fn replace_manifest_entries(
        &mut self,
        scope: &ScopeKey,
        removed: &[&str],
        added: &[(&str, Vec<u8>)],
        version: u64,
    ) {
        for name in removed {
            self.delete_meta(&meta_keys::manifest_entry(scope, name));
        }
        for (name, entry) in added {
            self.put_meta(&meta_keys::manifest_entry(scope, name), entry);
        }
        self.put_meta(
            &meta_keys::scope_manifest_version(scope),
            &version.to_be_bytes(),
        );
    }

    /// Removes every manifest entry of a table, and its scopes' manifest
    /// versions.
    pub fn delete_table_manifests(&mut self, table_uid: u64) {
        self.delete_meta_with_prefix(&meta_keys::table_manifests(table_uid));
        self.delete_meta_with_prefix(&meta_keys::table_manifest_versions(table_uid));
    }

    /// Removes every row version whose key starts with `prefix`.
    pub fn delete_rows_with_prefix(&mut self, prefix: &[u8]) {
        match prefix_end(prefix) {
            Some(end) => self.inner.delete_range_cf(self.store.rows(), prefix, &end),
            None => self
                .inner
                .delete_range_cf(self.store.rows(), prefix, &[0xFFu8; 64][..]),
        }
    }

    /// Removes one exact row version key (as read from a snapshot).
    pub fn delete_row_key(&mut self, key: &[u8]) {
        self.inner.delete_cf(self.store.rows(), key);
    }

    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.inner.len()
    }
}

/// Up to this many keys are each sought by an iterator bounded to that
/// key's versions. A seek lands on the first entry at or after the key, and
/// RocksDB steps over deleted entries to find it: after a flush deleted a
/// scope's hot versions, an iterator bounded only by the scope would step
/// over every deletion after the key (a million of them in a flushed
/// million-row scope), where one bounded to the key stops at its end.
const BOUNDED_SEEKS: usize = 16;

/// See [`HotStore::latest_versions`]; `open(range)` opens an iterator
/// bounded to the keys starting with `range`.
pub(crate) fn latest_of<'d>(
    scope: &[u8],
    prefixes: &[&[u8]],
    as_of: u64,
    open: impl Fn(&[u8]) -> rocksdb::DBRawIteratorWithThreadMode<'d, DB>,
) -> Result<Vec<Option<(u64, RowVersion)>>, StoreError> {
    // The first key at or after `prefix · !as_of` is the newest version of
    // the key with a `_seq` at or below `as_of` (`_seq` is stored inverted).
    let target = |prefix: &[u8]| {
        let mut key = prefix.to_vec();
        crate::keys::push_seq(&mut key, as_of);
        key
    };
    if prefixes.len() <= BOUNDED_SEEKS {
        return prefixes
            .iter()
            .map(|prefix| {
                let mut iter = open(prefix);
                iter.seek(target(prefix));
                let found = match (iter.key(), iter.value()) {
                    // (A prefix of all 0xff bytes has no bound.)
                    (Some(key), Some(value)) if key.starts_with(prefix) => {
                        let (_, seq) = split_version_key(key)?;
                        Some((seq, RowVersion::decode(value)?))
                    }
                    _ => None,
                };
                iter.status()?;
                Ok(found)
            })
            .collect();
    }
    // Many keys (a bulk INSERT's check): one iterator over the scope.
    let mut iter = open(scope);
    let mut order: Vec<usize> = (0..prefixes.len()).collect();
    order.sort_unstable_by(|&a, &b| prefixes[a].cmp(prefixes[b]));
    let mut out: Vec<Option<(u64, RowVersion)>> = (0..prefixes.len()).map(|_| None).collect();
    let mut sought = false;
    for i in order {
        let prefix = prefixes[i];
        let target = target(prefix);
        let behind = iter.key().is_some_and(|key| key < target.as_slice());
        if !sought || behind {
            iter.seek(&target);
            sought = true;
        }
        if let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            if key.starts_with(prefix) {
                let (_, seq) = split_version_key(key)?;
                out[i] = Some((seq, RowVersion::decode(value)?));
            }
        }
    }
    iter.status()?;
    Ok(out)
}
