//! Jobs: persisted records of background work (flushes, later compaction),
//! and the manager that runs them.
//!
//! A job is created `queued`, moves to `running` when a worker picks it up,
//! and ends `completed`, `failed`, `cancelled` or `skipped`. Every change is
//! written to the hot tier's `meta` column family before it is reported, so
//! `system.jobs` survives restarts and a job left `queued`/`running` by a
//! crash is found and run again at start-up.

mod manager;

pub use manager::{JobManager, JobsConfig, KillOutcome};

use serde::{Deserialize, Serialize};

/// Server name written into `node_id` (one node for now).
pub const NODE_ID: &str = "kalamdb-1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    /// `KILL JOB` was asked while it ran; it stops at its next safe point.
    Cancelling,
    Completed,
    Failed,
    Cancelled,
    Skipped,
}

impl JobStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            JobStatus::Queued => "queued",
            JobStatus::Running => "running",
            JobStatus::Cancelling => "cancelling",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Cancelled => "cancelled",
            JobStatus::Skipped => "skipped",
        }
    }

    pub fn is_finished(&self) -> bool {
        !matches!(
            self,
            JobStatus::Queued | JobStatus::Running | JobStatus::Cancelling
        )
    }
}

/// One row of `system.jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub job_id: String,
    pub job_type: String,
    pub status: JobStatus,
    pub namespace_id: String,
    pub table_name: String,
    /// `manual`, `row_limit`, `interval`, `memory`, `startup`, `shutdown`.
    pub trigger: String,
    /// JSON.
    pub parameters: String,
    pub message: Option<String>,
    /// JSON metrics once finished.
    pub result: Option<String>,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub node_id: String,
}
