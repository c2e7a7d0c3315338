//! Parsed manifest entries, kept between reads.
//!
//! Every read of a scope lists the scope's manifest entries from its own
//! snapshot (so its files and its hot rows are one state) and used to parse
//! each entry's JSON every time: with the tens of files a busy scope
//! collects between flushes and compactions, that parsing was a tenth of a
//! mixed load's CPU. A parsed entry is kept under its key together with
//! the exact bytes it was parsed from, and used only when the snapshot
//! holds those same bytes, so a read sees exactly what its snapshot holds
//! and the cache only saves the parsing. Since the key and the bytes decide
//! alone, nothing in it belongs to one engine, and one bounded cache serves
//! the process (several engines in one test process share it safely).

use super::ScopeFiles;
use crate::error::{CoreError, Result};
use kalamdb_filestore::{ClockCache, ManifestEntry};
use kalamdb_store::ScopeKey;
use std::sync::{Arc, LazyLock};

/// Bytes of parsed entries kept at most (an entry weighs about 1 KiB with
/// its key and bytes: some sixteen thousand files).
const BUDGET: usize = 16 * 1024 * 1024;

type Kept = (Arc<[u8]>, Arc<ManifestEntry>);

static PARSED: LazyLock<ClockCache<Vec<u8>, Kept>> = LazyLock::new(|| ClockCache::new(BUDGET));

/// The entry stored under `key` as `raw`.
pub(super) fn parse(key: Vec<u8>, raw: Vec<u8>) -> Result<Arc<ManifestEntry>> {
    if let Some((bytes, entry)) = PARSED.get(&key) {
        if *bytes == *raw {
            return Ok(entry);
        }
    }
    let entry = Arc::new(serde_json::from_slice::<ManifestEntry>(&raw).map_err(CoreError::from)?);
    let weight =
        key.len() + raw.len() * 2 + entry.path.len() + std::mem::size_of::<ManifestEntry>();
    PARSED.insert(key, (raw.into(), entry.clone()), weight);
    Ok(entry)
}

/// Bytes of listings kept at most: a listing weighs its entries' handles,
/// the entries themselves are shared with [`PARSED`].
const LISTED_BUDGET: usize = 8 * 1024 * 1024;

/// (store, scope) -> (manifest version, the scope's files at it).
type Listing = (Arc<[u8]>, ScopeFiles);

static LISTED: LazyLock<ClockCache<(u64, Vec<u8>), Listing>> =
    LazyLock::new(|| ClockCache::new(LISTED_BUDGET));

/// The files of `scope` of store `store` as listed at manifest version
/// `version`, if a read listed them before. Listing a scope's entries
/// (an iterator over the meta column family, the entries copied out and
/// compared with the parsed ones) cost a mixed load more than a tenth of
/// its CPU; the version is one point read of the reader's own snapshot,
/// and every commit that changes the entries changes it, so a listing kept
/// under it is exactly what the snapshot holds.
pub(super) fn listed(store: u64, scope: &ScopeKey, version: &[u8]) -> Option<ScopeFiles> {
    let (kept_version, files) = LISTED.get(&(store, scope.as_bytes().to_vec()))?;
    (*kept_version == *version).then_some(files)
}

/// Keeps a listing made at manifest version `version`.
pub(super) fn keep_listed(store: u64, scope: &ScopeKey, version: Vec<u8>, files: &ScopeFiles) {
    let key = scope.as_bytes().to_vec();
    let weight = 2 * key.len()
        + version.len()
        + std::mem::size_of_val(files.entries())
        + std::mem::size_of::<Listing>();
    LISTED.insert((store, key), (version.into(), files.clone()), weight);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(rows: u64) -> Vec<u8> {
        serde_json::to_vec(&ManifestEntry {
            path: "t/u/batch-1-t1.parquet".into(),
            rows,
            bytes: 10,
            min_seq: 1,
            max_seq: 2,
            schema_version: 1,
            min_pk: vec![1],
            max_pk: vec![2],
            committed_at: 0,
            flushed_through: 2,
            tombstones: Some(0),
        })
        .unwrap()
    }

    #[test]
    fn a_kept_entry_is_used_only_for_the_same_bytes() {
        // A key no other test uses: the cache is process-wide.
        let key = b"test/manifests/kept-entry".to_vec();
        let first = parse(key.clone(), entry(5)).unwrap();
        assert!(Arc::ptr_eq(&first, &parse(key.clone(), entry(5)).unwrap()));
        // Other bytes under the same key (another engine, a rewrite): the
        // snapshot's bytes win.
        assert_eq!(parse(key.clone(), entry(6)).unwrap().rows, 6);
        assert_eq!(parse(key, entry(5)).unwrap().rows, 5);
    }
}
