//! Which of a scope's files a compaction merges.

use kalamdb_filestore::ManifestEntry;
use std::ops::Range;
use std::sync::Arc;

/// When a scope's files are compacted, and into what.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// A scope with more files than this is compacted, when merging them
    /// would at least halve their number (0: never by count).
    pub max_files: u32,
    /// A scope with more small files than this is compacted (0: never).
    pub max_small_files: u32,
    /// Size a compacted file aims at; files under a quarter of it are
    /// small.
    pub target_file_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            max_files: 32,
            max_small_files: 8,
            target_file_bytes: 128 * 1024 * 1024,
        }
    }
}

impl CompactionPolicy {
    fn is_small(&self, entry: &ManifestEntry) -> bool {
        entry.bytes < self.target_file_bytes / 4
    }

    /// Whether a scope with these files (oldest first) is due for an
    /// automatic compaction.
    pub fn is_due(&self, entries: &[Arc<ManifestEntry>]) -> bool {
        let small = entries.iter().filter(|e| self.is_small(e)).count();
        let bytes: u64 = entries.iter().map(|e| e.bytes).sum();
        let rows: u64 = entries.iter().map(|e| e.rows).sum();
        let tombstones: u64 = entries.iter().map(|e| e.held_tombstones()).sum();
        let by_count = self.max_files > 0
            && entries.len() > self.max_files as usize
            && (bytes / self.target_file_bytes.max(1) + 1) * 2 <= entries.len() as u64;
        let by_small = self.max_small_files > 0 && small > self.max_small_files as usize;
        // Deleted rows held as tombstones cost every scan.
        let by_tombstones = tombstones >= TOMBSTONES_DUE_MIN && tombstones * 4 >= rows;
        by_count || by_small || by_tombstones
    }
}

/// A scope whose cold rows are at least a quarter tombstones, and at least
/// this many, is compacted whatever its file count.
const TOMBSTONES_DUE_MIN: u64 = 1024;

/// What a compaction is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// By hand: every file of the scope into as few as their size allows,
    /// every tombstone that can go dropped.
    Full,
    /// By the scheduler: only scopes [`CompactionPolicy::is_due`], and of
    /// those the newest small files where that is enough.
    Due,
}

/// Files merged at once at most. A longer run is merged in rounds.
pub const MAX_MERGE_FILES: usize = 256;

/// Memory a merge may plan for its open files: each holds about one row
/// group's fetched column chunks (at most its size, at most
/// [`ROW_GROUP_BYTES`]) and a decoded batch ([`BATCH_BYTES`]).
const MERGE_MEMORY: u64 = 160 * 1024 * 1024;
const ROW_GROUP_BYTES: u64 = 8 * 1024 * 1024;
const BATCH_BYTES: u64 = 512 * 1024;

/// What merging `entry` costs in memory while its file is open.
fn open_cost(entry: &ManifestEntry) -> u64 {
    entry.bytes.min(ROW_GROUP_BYTES) + BATCH_BYTES
}

/// The files to merge next: a range of `entries` (oldest first, as
/// `ScopeFiles` lists them), or `None` when the scope needs nothing.
pub fn select(
    entries: &[Arc<ManifestEntry>],
    policy: &CompactionPolicy,
    mode: Mode,
) -> Option<Range<usize>> {
    let n = entries.len();
    // From `start`, as many files as the fan-in and the memory allow (at
    // least two, so every round makes progress).
    let capped = |start: usize| {
        let mut end = start;
        let mut memory = 0;
        while end < n && end - start < MAX_MERGE_FILES {
            memory += open_cost(&entries[end]);
            if memory > MERGE_MEMORY && end - start >= 2 {
                break;
            }
            end += 1;
        }
        start..end
    };
    match mode {
        Mode::Full if is_settled(entries, policy) => None,
        Mode::Full => Some(capped(0)),
        Mode::Due if !policy.is_due(entries) => None,
        Mode::Due => {
            let small_suffix = entries
                .iter()
                .rev()
                .take_while(|e| policy.is_small(e))
                .count();
            let tombstones: u64 = entries.iter().map(|e| e.held_tombstones()).sum();
            // The newest small files, where they are what made it due;
            // else everything (which also drops tombstones).
            if small_suffix > policy.max_small_files as usize
                && tombstones < TOMBSTONES_DUE_MIN
                && small_suffix >= 2
            {
                Some(capped(n - small_suffix))
            } else if is_settled(entries, policy) {
                None
            } else {
                Some(capped(0))
            }
        }
    }
}

/// Whether merging would change nothing: no tombstones to drop (but the
/// one a compaction keeps when a scope's every row was deleted), no two
/// files over the same keys, at most one small file.
fn is_settled(entries: &[Arc<ManifestEntry>], policy: &CompactionPolicy) -> bool {
    match entries {
        [] => true,
        // Files not known to be free of tombstones are merged once.
        [only] => only.tombstones == Some(0) || only.rows <= 1,
        _ => {
            if entries.iter().any(|e| e.tombstones != Some(0)) {
                return false;
            }
            if entries.iter().filter(|e| policy.is_small(e)).count() > 1 {
                return false;
            }
            crate::read::keys_apart(entries)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: u64, keys: (u8, u8), tombstones: u64) -> Arc<ManifestEntry> {
        Arc::new(ManifestEntry {
            path: format!("f{bytes}-{}", keys.0),
            rows: 100,
            bytes,
            min_seq: 1,
            max_seq: 2,
            schema_version: 1,
            min_pk: vec![keys.0],
            max_pk: vec![keys.1],
            committed_at: 0,
            flushed_through: 2,
            tombstones: Some(tombstones),
        })
    }

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn by_hand_everything_is_merged_until_it_is_settled() {
        let policy = CompactionPolicy::default();
        let small = |k| file(MIB, (k, k + 1), 0);
        assert_eq!(select(&[], &policy, Mode::Full), None);
        assert_eq!(select(&[small(1)], &policy, Mode::Full), None);
        assert_eq!(
            select(&[small(1), small(5)], &policy, Mode::Full),
            Some(0..2)
        );
        // A file from before tombstones were counted is merged once.
        let mut unknown = (*file(MIB, (1, 9), 0)).clone();
        unknown.tombstones = None;
        assert_eq!(
            select(&[Arc::new(unknown)], &policy, Mode::Full),
            Some(0..1)
        );
        // One file with tombstones: they can go.
        assert_eq!(
            select(&[file(MIB, (1, 9), 3)], &policy, Mode::Full),
            Some(0..1)
        );
        // Large files over separate keys and one small one: done.
        let settled = [
            file(100 * MIB, (1, 3), 0),
            file(100 * MIB, (4, 6), 0),
            small(7),
        ];
        assert_eq!(select(&settled, &policy, Mode::Full), None);
        // Overlapping keys are not.
        let overlapping = [file(100 * MIB, (1, 5), 0), file(100 * MIB, (4, 6), 0)];
        assert_eq!(select(&overlapping, &policy, Mode::Full), Some(0..2));
        // Long runs go in rounds of the oldest files: as many as the
        // fan-in allows, fewer when their row groups would take too much
        // memory (but always two).
        let many: Vec<_> = (0..300)
            .map(|k| file(10 * 1024, (k as u8, k as u8), 0))
            .collect();
        assert_eq!(select(&many[..100], &policy, Mode::Full), Some(0..100));
        let megabytes: Vec<_> = (0..300).map(|_| small(1)).collect();
        assert_eq!(select(&megabytes, &policy, Mode::Full), Some(0..106));
        assert_eq!(select(&many, &policy, Mode::Full), Some(0..MAX_MERGE_FILES));
        let big: Vec<_> = (0..40).map(|k| file(100 * MIB, (k, k + 1), 0)).collect();
        let run = select(&big, &policy, Mode::Full).unwrap();
        assert_eq!(run.start, 0);
        assert!((2..40).contains(&run.end), "{run:?}");
        let huge = [file(10_000 * MIB, (0, 9), 1), file(10_000 * MIB, (0, 9), 1)];
        assert_eq!(select(&huge, &policy, Mode::Full), Some(0..2));
    }

    #[test]
    fn the_scheduler_merges_the_newest_small_files_once_there_are_too_many() {
        let policy = CompactionPolicy::default();
        let big = file(100 * MIB, (0, 200), 0);
        let mut files = vec![big.clone()];
        files.extend((0..8).map(|k| file(MIB, (k, k), 0)));
        assert_eq!(select(&files, &policy, Mode::Due), None, "8 small files");
        files.push(file(MIB, (9, 9), 0));
        assert_eq!(select(&files, &policy, Mode::Due), Some(1..10));
        // Many tombstones: everything, so they can go.
        let mut deleted = files.clone();
        deleted.push(file(MIB, (0, 200), 2000));
        assert_eq!(select(&deleted, &policy, Mode::Due), Some(0..11));
        // Many large files that merging would not reduce are left alone.
        let large: Vec<_> = (0..40).map(|k| file(120 * MIB, (k, k), 0)).collect();
        assert_eq!(select(&large, &policy, Mode::Due), None);
        let off = CompactionPolicy {
            max_files: 0,
            max_small_files: 0,
            ..policy
        };
        assert_eq!(select(&files, &off, Mode::Due), None);
    }
}
