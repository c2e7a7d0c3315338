//! What a flush did, and how one scope failed.

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushStats {
    pub rows_flushed: u64,
    /// Scopes (users of a USER table, or the one SHARED scope) that got a file.
    pub users_count: u64,
    pub parquet_files: u64,
    pub bytes_written: u64,
    pub duration_ms: u64,
    /// Scopes that failed. Their rows stay in the hot tier.
    pub failed: Vec<ScopeFailure>,
    /// Scopes left out because they wait after a permanent failure.
    pub waiting_scopes: u64,
    /// Stopped by a cancel request at a scope boundary; the scopes counted
    /// above stay committed, the rest stay hot.
    pub cancelled: bool,
}

impl FlushStats {
    /// Adds another attempt's figures (a retried job reports the sum).
    pub fn absorb(&mut self, other: &FlushStats) {
        self.rows_flushed += other.rows_flushed;
        self.users_count += other.users_count;
        self.parquet_files += other.parquet_files;
        self.bytes_written += other.bytes_written;
        self.duration_ms += other.duration_ms;
        self.failed = other.failed.clone();
        self.waiting_scopes = other.waiting_scopes;
        self.cancelled |= other.cancelled;
    }

    /// Whether every failure is one that retrying cannot fix.
    pub fn only_permanent_failures(&self) -> bool {
        !self.failed.is_empty() && self.failed.iter().all(|f| f.permanent)
    }
}

/// One scope whose flush failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeFailure {
    /// `None` for a SHARED table's scope.
    pub user: Option<String>,
    pub cause: String,
    /// The data cannot be written as it is (a retry would fail the same
    /// way), as opposed to a storage failure that may pass.
    pub permanent: bool,
}

impl ScopeFailure {
    pub(super) fn new(user: Option<String>, cause: impl Into<String>, permanent: bool) -> Self {
        Self {
            user,
            cause: cause.into(),
            permanent,
        }
    }
}
