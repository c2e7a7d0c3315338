//! Deleting many hot versions without one huge RocksDB batch, and without a
//! batch boundary inside one primary key: after a crash between two
//! batches, each key has either all of its read versions or none, so no
//! older version of a key can show while a newer one is gone.

use kalamdb_store::keys::split_version_key;
use kalamdb_store::{HotStore, StoreError, WriteBatch};

/// Deletes version keys, given in key order, in batches of about `chunk`
/// keys that end only between primary keys.
pub(super) struct ChunkedDelete<'a> {
    store: &'a HotStore,
    chunk: usize,
    batch: WriteBatch<'a>,
    pending: usize,
    last_pk: Vec<u8>,
    deleted: u64,
    /// Test fail point: stop once the first batch is written, as a crash.
    pub(super) stop_after_first_chunk: bool,
    stopped: bool,
}

impl<'a> ChunkedDelete<'a> {
    pub(super) fn new(store: &'a HotStore, chunk: usize) -> Self {
        Self {
            store,
            chunk: chunk.max(1),
            batch: store.batch(),
            pending: 0,
            last_pk: Vec::new(),
            deleted: 0,
            stop_after_first_chunk: false,
            stopped: false,
        }
    }

    /// Queues the delete of one version key; false once the deleter has
    /// stopped at its fail point.
    pub(super) fn delete(&mut self, key: &[u8]) -> Result<bool, StoreError> {
        let (pk, _) = split_version_key(key)?;
        if pk != self.last_pk.as_slice() {
            if self.pending >= self.chunk {
                self.write()?;
                if self.stopped {
                    return Ok(false);
                }
            }
            self.last_pk.clear();
            self.last_pk.extend_from_slice(pk);
        }
        self.batch.delete_row_key(key);
        self.pending += 1;
        self.deleted += 1;
        Ok(true)
    }

    /// Whether the fail point stopped it.
    pub(super) fn stopped(&self) -> bool {
        self.stopped
    }

    fn write(&mut self) -> Result<(), StoreError> {
        let batch = std::mem::replace(&mut self.batch, self.store.batch());
        self.store.write(batch)?;
        self.pending = 0;
        self.stopped = self.stop_after_first_chunk;
        Ok(())
    }

    /// Writes what is queued; returns how many keys were deleted in all.
    pub(super) fn finish(mut self) -> Result<u64, StoreError> {
        if self.pending > 0 {
            self.write()?;
        }
        Ok(self.deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kalamdb_commons::Value;
    use kalamdb_store::{RowVersion, ScopeKey, StoreOptions};

    /// A store with `versions[i]` versions of primary key `i` in one scope;
    /// returns the store and every version key in key order.
    fn store_with(versions: &[u64]) -> (tempfile::TempDir, HotStore, ScopeKey) {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(dir.path(), StoreOptions::default()).unwrap();
        let scope = ScopeKey::new(1, Some("u"));
        let mut batch = store.batch();
        let mut seq = 0;
        for (pk, &n) in versions.iter().enumerate() {
            for _ in 0..n {
                seq += 1;
                let row = RowVersion {
                    deleted: false,
                    schema_version: 1,
                    values: vec![Value::I64(pk as i64)],
                };
                batch
                    .put_version(&scope, &Value::I64(pk as i64), seq, &row)
                    .unwrap();
            }
        }
        store.write(batch).unwrap();
        (dir, store, scope)
    }

    fn keys(store: &HotStore, scope: &ScopeKey) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        store
            .snapshot()
            .scan_versions(scope.as_bytes(), &mut |v| {
                out.push(v.key.to_vec());
                Ok(true)
            })
            .unwrap();
        out
    }

    fn versions_per_key(store: &HotStore, scope: &ScopeKey) -> Vec<usize> {
        let mut counts: Vec<(Vec<u8>, usize)> = Vec::new();
        for key in keys(store, scope) {
            let (pk, _) = split_version_key(&key).unwrap();
            match counts.last_mut() {
                Some((last, n)) if last.as_slice() == pk => *n += 1,
                _ => counts.push((pk.to_vec(), 1)),
            }
        }
        counts.into_iter().map(|(_, n)| n).collect()
    }

    #[test]
    fn deletes_every_key_it_is_given() {
        let (_dir, store, scope) = store_with(&[3, 1, 4, 1, 5]);
        let all = keys(&store, &scope);
        let mut deleter = ChunkedDelete::new(&store, 2);
        for key in &all {
            assert!(deleter.delete(key).unwrap());
        }
        assert_eq!(deleter.finish().unwrap(), 14);
        assert!(keys(&store, &scope).is_empty());
    }

    #[test]
    fn a_batch_never_ends_inside_a_primary_key() {
        // Chunks of 2 with keys of 3 and 4 versions: a batch that ended at
        // the chunk size would split them.
        let (_dir, store, scope) = store_with(&[3, 4, 2, 1]);
        let all = keys(&store, &scope);
        let mut deleter = ChunkedDelete::new(&store, 2);
        deleter.stop_after_first_chunk = true;
        let mut queued = 0;
        for key in &all {
            if !deleter.delete(key).unwrap() {
                break;
            }
            queued += 1;
        }
        assert!(deleter.stopped());
        // The first batch held key 0's three versions: whole keys only.
        assert_eq!(queued, 3);
        assert_eq!(versions_per_key(&store, &scope), vec![4, 2, 1]);
    }

    #[test]
    fn one_key_with_more_versions_than_a_chunk_goes_in_one_batch() {
        let (_dir, store, scope) = store_with(&[7, 1]);
        let all = keys(&store, &scope);
        let mut deleter = ChunkedDelete::new(&store, 3);
        deleter.stop_after_first_chunk = true;
        let stopped_at = all.iter().position(|k| !deleter.delete(k).unwrap());
        assert_eq!(stopped_at, Some(7));
        assert_eq!(versions_per_key(&store, &scope), vec![1]);
    }

    #[test]
    fn a_key_that_is_not_a_version_key_is_an_error() {
        let (_dir, store, _) = store_with(&[1]);
        let mut deleter = ChunkedDelete::new(&store, 2);
        assert!(deleter.delete(b"short").is_err());
    }
}
