//! What a compaction did.

use serde::Serialize;

/// Figures of one compaction job (a job's `result` column).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CompactStats {
    /// Scopes whose files were merged.
    pub scopes: u64,
    pub files_in: u64,
    pub files_out: u64,
    pub rows_in: u64,
    pub rows_out: u64,
    /// Tombstones no file outside a merge could need, left out.
    pub tombstones_dropped: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration_ms: u64,
    /// Old files removed so far (the rest go once their readers are done).
    pub files_removed: u64,
    /// Stopped by a cancel request at a scope boundary; merged scopes stay
    /// merged.
    #[serde(skip)]
    pub cancelled: bool,
}
