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
