//! Consistent read views: one RocksDB snapshot over catalog and rows, so a
//! reader sees a flush's commit (a manifest entry whose `flushed_through`
//! hides the hot versions it replaced) either wholly or not at all, and the
//! later deletion of those versions makes no difference to it.

use crate::keys::{prefix_end, split_version_key};
use crate::store::{latest_of, MetaEntries};
use crate::{HotStore, RowVersion, ScopeKey, StoreError};
use rocksdb::{Direction, IteratorMode, ReadOptions, SnapshotWithThreadMode, DB};

pub struct StoreSnapshot<'a> {
    pub(crate) store: &'a HotStore,
    pub(crate) snapshot: SnapshotWithThreadMode<'a, DB>,
    /// No version in this view has a `_seq` above this.
    pub watermark: u64,
    /// Keeps files this view's manifests name from being removed
    /// ([`crate::ReadPins`]).
    pub(crate) pin: crate::ReadPin,
}

/// One stored version, as a full scan of a snapshot sees it.
pub struct VersionRef<'k> {
    /// The whole key, for deleting exactly this version later.
    pub key: &'k [u8],
    /// The key without `_seq`: scope and primary key.
    pub pk_prefix: &'k [u8],
    pub seq: u64,
    /// Whether this is the newest version of its primary key in the view.
    pub newest: bool,
    pub value: &'k [u8],
}

impl StoreSnapshot<'_> {
    fn read_options(&self, prefix: &[u8]) -> ReadOptions {
        let mut opts = ReadOptions::default();
        opts.set_snapshot(&self.snapshot);
        if let Some(end) = prefix_end(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        opts
    }

    /// The meta entry under `key` in this view.
    pub fn meta_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.snapshot.get_cf(self.store.meta_cf(), key)?)
    }

    /// This view's read pin, for what outlives the view (a file list).
    pub fn pin(&self) -> crate::ReadPin {
        self.pin.clone()
    }

    /// The store this view reads ([`HotStore::id`]).
    pub fn store_id(&self) -> u64 {
        self.store.id()
    }

    /// Every meta entry whose key starts with `prefix`, in key order.
    pub fn meta_scan(&self, prefix: &[u8]) -> Result<MetaEntries, StoreError> {
        let db = self.store.db();
        let iter = db.iterator_cf_opt(
            self.store.meta_cf(),
            self.read_options(prefix),
            IteratorMode::From(prefix, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            let (k, v) = item?;
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    /// The newest version of every primary key under `prefix`, pulled one
    /// at a time (for merging with other sorted sources).
    pub fn latest_iter(&self, prefix: &[u8]) -> LatestIter<'_> {
        self.latest_iter_as_of(prefix, u64::MAX)
    }

    /// [`Self::latest_iter`] of the versions with a `_seq` at or below
    /// `as_of` (a transaction's snapshot): of each key, its newest such.
    pub fn latest_iter_as_of(&self, prefix: &[u8], as_of: u64) -> LatestIter<'_> {
        let db = self.store.db();
        let mut iter = db.raw_iterator_cf_opt(self.store.rows_cf(), self.read_options(prefix));
        iter.seek(prefix);
        LatestIter {
            iter,
            last_pk: Vec::new(),
            as_of,
        }
    }

    /// [`HotStore::latest_versions`] as of this view: the newest version
    /// (tombstones included) of each of `scope`'s encoded primary keys.
    pub fn latest_versions(
        &self,
        scope: &ScopeKey,
        prefixes: &[&[u8]],
    ) -> Result<Vec<Option<(u64, RowVersion)>>, StoreError> {
        self.latest_versions_as_of(scope, prefixes, u64::MAX)
    }

    /// [`Self::latest_versions`] among the versions with a `_seq` at or
    /// below `as_of`.
    pub fn latest_versions_as_of(
        &self,
        scope: &ScopeKey,
        prefixes: &[&[u8]],
        as_of: u64,
    ) -> Result<Vec<Option<(u64, RowVersion)>>, StoreError> {
        let db = self.store.db();
        latest_of(scope.as_bytes(), prefixes, as_of, |range| {
            db.raw_iterator_cf_opt(self.store.rows_cf(), self.read_options(range))
        })
    }

    /// Visits every version under `prefix` in key order (newest first within
    /// a primary key); return `false` to stop.
    pub fn scan_versions(
        &self,
        prefix: &[u8],
        visit: &mut dyn FnMut(VersionRef<'_>) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let db = self.store.db();
        let mut iter = db.raw_iterator_cf_opt(self.store.rows_cf(), self.read_options(prefix));
        iter.seek(prefix);
        let mut last_pk: Vec<u8> = Vec::new();
        while let (Some(key), Some(value)) = (iter.key(), iter.value()) {
            let (pk_prefix, seq) = split_version_key(key)?;
            let newest = pk_prefix != last_pk.as_slice();
            if newest {
                last_pk.clear();
                last_pk.extend_from_slice(pk_prefix);
            }
            let more = visit(VersionRef {
                key,
                pk_prefix,
                seq,
                newest,
                value,
            })?;
            if !more {
                return Ok(());
            }
            iter.next();
        }
        iter.status()?;
        Ok(())
    }
}

/// See [`StoreSnapshot::latest_iter`]: yields `(pk prefix, _seq, version)`.
pub struct LatestIter<'a> {
    iter: rocksdb::DBRawIteratorWithThreadMode<'a, DB>,
    last_pk: Vec<u8>,
    /// Versions above it are passed over.
    as_of: u64,
}

impl Iterator for LatestIter<'_> {
    type Item = Result<(Vec<u8>, u64, RowVersion), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (key, value) = match (self.iter.key(), self.iter.value()) {
                (Some(k), Some(v)) => (k, v),
                _ => return self.iter.status().err().map(|e| Err(e.into())),
            };
            let item = split_version_key(key).and_then(|(pk, seq)| {
                if seq > self.as_of || pk == self.last_pk.as_slice() {
                    return Ok(None);
                }
                self.last_pk.clear();
                self.last_pk.extend_from_slice(pk);
                Ok(Some((pk.to_vec(), seq, RowVersion::decode(value)?)))
            });
            self.iter.next();
            match item {
                Ok(Some(found)) => return Some(Ok(found)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
