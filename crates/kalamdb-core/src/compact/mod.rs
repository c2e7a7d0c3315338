//! Compaction: merging a scope's files into fewer, sorted by primary key,
//! holding only the newest version of each key (../shared/DESIGN.md,
//! "Compaction").
//!
//! 1. Pick a run of the scope's files (`select`): consecutive in the
//!    files' `max_seq` order, so that, as for flushed files, of two files
//!    holding a key the later one holds the newer version, before and
//!    after the merge (point lookups read files newest first and stop at
//!    the first that holds a key).
//! 2. Merge the run with the read path's k-way merge (`ScopeView::scan`
//!    over those files alone, tombstones included) into files of bounded
//!    size (`scope`). A tombstone is dropped when no file outside the run
//!    may hold its key; hot versions never need it (every live one is
//!    newer than every file, and the older ones stay hidden by the
//!    scope's `flushed_through`, which the new files carry on).
//! 3. Commit: one RocksDB batch removes the run's manifest entries and
//!    adds the new ones, and records the old files as to be removed.
//! 4. Remove the old files once no reader pinned before the commit is left
//!    (`retired`, `kalamdb_store::ReadPins`); a crash before that leaves
//!    their records, and start-up removes them.
//!
//! A flush and a compaction of one scope never run at once
//! (`flush::ScopeGate`); flushes of the table's other scopes, and writes
//! to every scope, go on meanwhile.

mod due;
mod hooks;
mod retired;
mod scope;
mod select;
mod stats;
mod table;

pub use due::Due;
pub use hooks::{CompactFailPoint, CompactHooks};
pub use retired::Retired;
pub use select::{CompactionPolicy, Mode};
pub use stats::CompactStats;
pub use table::compact_table;
