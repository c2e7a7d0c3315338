//! Giving the change log's references their values before the versions
//! they name leave storage for good (see [`crate::changes`]).
//!
//! A flush writes the newest version of each key to its file, where a
//! reader still finds it; the versions it deletes without writing (an
//! update or delete superseded them), and the versions a compaction drops,
//! are gone from both tiers after their commit. Whoever removes them hands
//! them to an [`Inliner`] first: it rewrites the log entries that refer to
//! them with the values in place. Such versions are few next to a flush's
//! rows (only overwritten keys have them), so this costs little where the
//! old way (every reference of every flushed insert copied into the log)
//! cost a flush half its time.

use crate::changes::{change_key, Entry, PendingChanges, ENTRY_BYTES};
use crate::keys::prefix_end;
use crate::{HotStore, ScopeKey, StoreError};
use rocksdb::ReadOptions;

/// Versions held before they are written into the log: a flush or a
/// compaction applies them when this many bytes are waiting, so a scope
/// with many overwritten keys never holds them all.
const HELD_BYTES: usize = 4 << 20;

/// Versions of one scope about to be removed, whose references in the
/// change log must get their values first.
#[derive(Debug)]
pub struct Inliner {
    scope: ScopeKey,
    /// `_seq` and the version as stored.
    versions: Vec<(u64, Vec<u8>)>,
    bytes: usize,
}

impl Inliner {
    pub fn new(scope: &ScopeKey) -> Self {
        Self {
            scope: scope.clone(),
            versions: Vec::new(),
            bytes: 0,
        }
    }

    /// Notes a version to be removed. Versions at or below the change
    /// log's floor need not be given: no entry kept can refer to them.
    pub fn push(&mut self, seq: u64, version: &[u8]) {
        self.bytes += version.len() + 8;
        self.versions.push((seq, version.to_vec()));
    }

    /// Whether enough is held to apply it now.
    pub fn is_full(&self) -> bool {
        self.bytes >= HELD_BYTES
    }

    /// Rewrites the entries that refer to the versions held, then forgets
    /// them. An entry is read from the current log (a scope's flush and
    /// compaction never run at once, and writers only add newer entries);
    /// one already rewritten, or gone below the floor, is left alone.
    /// Returns how many entries it rewrote.
    pub fn apply(&mut self, store: &HotStore) -> Result<usize, StoreError> {
        if self.versions.is_empty() {
            return Ok(0);
        }
        let mut versions = std::mem::take(&mut self.versions);
        self.bytes = 0;
        versions.sort_unstable_by_key(|(seq, _)| *seq);
        versions.dedup_by_key(|(seq, _)| *seq);
        let mut opts = ReadOptions::default();
        if let Some(end) = prefix_end(self.scope.as_bytes()) {
            opts.set_iterate_upper_bound(end);
        }
        let mut iter = store.db().raw_iterator_cf_opt(store.changes_cf(), opts);
        let mut batch = rocksdb::WriteBatch::default();
        let mut rewritten = 0;
        let mut next = 0;
        while next < versions.len() {
            // Keys end with an entry's last `_seq`: the first at or above a
            // change's `_seq` is the entry that holds it.
            iter.seek(change_key(&self.scope, versions[next].0));
            let Some(key) = iter.key() else {
                iter.status()?;
                break;
            };
            let last = u64::from_be_bytes(key[key.len() - 8..].try_into().expect("8 bytes"));
            let end = next + versions[next..].partition_point(|(seq, _)| *seq <= last);
            let value = iter.value().expect("a key has a value");
            if let Some(entry) = rewrite(value, &versions[next..end])? {
                batch.put_cf(store.changes_cf(), key, entry);
                rewritten += 1;
                if batch.size_in_bytes() >= 4 * ENTRY_BYTES {
                    store.db().write(std::mem::take(&mut batch))?;
                }
            }
            next = end;
        }
        if !batch.is_empty() {
            store.db().write(batch)?;
        }
        Ok(rewritten)
    }
}

/// `value` (an entry) with the references to `versions` (sorted by
/// `_seq`) replaced by those versions; `None` when it refers to none.
fn rewrite(value: &[u8], versions: &[(u64, Vec<u8>)]) -> Result<Option<Vec<u8>>, StoreError> {
    let (raws, _) = Entry::new(value)?.changes(0, u64::MAX)?;
    let mut out = PendingChanges::default();
    out.value.extend_from_slice(&[0; 4]);
    let mut replaced = false;
    // Versions are copied as stored, never decoded.
    for (seq, raw) in &raws {
        let inlined = raw
            .is_ref
            .then(|| versions.binary_search_by_key(seq, |(s, _)| *s).ok())
            .flatten()
            .map(|i| versions[i].1.as_slice());
        replaced |= inlined.is_some();
        out.push_raw(*seq, raw, inlined);
    }
    if !replaced {
        return Ok(None);
    }
    out.value[..4].copy_from_slice(&out.count.to_le_bytes());
    Ok(Some(out.value))
}
