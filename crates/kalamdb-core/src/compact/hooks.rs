//! Test hooks: stop a compaction at a protocol step, as a crash would, or
//! act at one.

use std::sync::Arc;

/// Steps a compaction can be stopped after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompactFailPoint {
    /// The new files are written, not committed.
    AfterFilesWritten,
    /// The commit is written; no old file is removed yet.
    AfterCommit,
    /// The first old file is removed, the others are not.
    BetweenDeletes,
}

/// Hooks into running compactions; production code passes the default.
#[derive(Clone, Default)]
pub struct CompactHooks {
    pub fail_at: Option<CompactFailPoint>,
    /// Runs after each batch written into a new file (e.g. to cancel or to
    /// write meanwhile).
    pub after_batch: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Runs right before a scope's commit.
    pub before_commit: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl std::fmt::Debug for CompactHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactHooks")
            .field("fail_at", &self.fail_at)
            .field("after_batch", &self.after_batch.is_some())
            .field("before_commit", &self.before_commit.is_some())
            .finish()
    }
}
