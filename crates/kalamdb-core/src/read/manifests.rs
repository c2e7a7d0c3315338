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

use crate::error::{CoreError, Result};
use kalamdb_filestore::{ClockCache, ManifestEntry};
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
