//! How a flush runs: the options production code sets (a job's cancel
//! request, whether waiting scopes are tried), and the hooks tests use to
//! stop it at a protocol step or act at one.

use super::CancelFlag;
use std::sync::Arc;

/// What the caller of a flush decides.
#[derive(Debug, Clone, Default)]
pub struct FlushOptions {
    /// Checked at every scope boundary and between batches: once set, the
    /// flush stops there.
    pub cancel: Option<Arc<CancelFlag>>,
    /// Also flush scopes that wait after a permanent failure (a FLUSH
    /// TABLE by hand tries them at once; policies do not).
    pub include_waiting: bool,
}

/// Test hooks: stop a flush at a protocol step, as a crash would.
// Each name is the step it stops after; without core's test-support
// feature the enum is private and clippy would have the prefix dropped.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// After a scope's file is written, before its commit.
    AfterFileWritten,
    /// After the first scope's commit, before the next scope starts.
    AfterFirstCommit,
    /// After the first scope's manifest entry is committed, before its
    /// flushed hot versions are deleted.
    AfterCommitBeforeDelete,
    /// After the first batch of a scope's hot-version deletes is written,
    /// before the next (a scope with more than one batch of versions).
    AfterFirstDeleteChunk,
}

/// Hooks into a running flush, for tests of crashes and concurrent writes;
/// production code passes the default (none).
#[derive(Clone, Default)]
pub struct FlushHooks {
    pub fail_at: Option<FailPoint>,
    /// Runs right after the snapshot is taken (e.g. to write concurrently).
    pub after_snapshot: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Runs after each scope's commit (e.g. to cancel mid-flush).
    pub after_commit: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Runs after each batch is written into a scope's file (e.g. to
    /// cancel in the middle of a large scope).
    pub after_batch: Option<Arc<dyn Fn() + Send + Sync>>,
    /// Test fail point: this user's rows are refused as data no file can
    /// hold, as a permanent failure.
    pub refuse_user: Option<String>,
}

impl std::fmt::Debug for FlushHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlushHooks")
            .field("fail_at", &self.fail_at)
            .field("after_snapshot", &self.after_snapshot.is_some())
            .field("after_commit", &self.after_commit.is_some())
            .field("after_batch", &self.after_batch.is_some())
            .field("refuse_user", &self.refuse_user)
            .finish()
    }
}
