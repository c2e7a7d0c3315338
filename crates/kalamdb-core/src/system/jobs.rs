//! `system.jobs`

use super::build;
use crate::jobs::JobRecord;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::{KalamType, Role};
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("job_id", KalamType::Text, false),
        field("job_type", KalamType::Text, false),
        field("status", KalamType::Text, false),
        field("namespace_id", KalamType::Text, true),
        field("table_name", KalamType::Text, true),
        field("trigger", KalamType::Text, false),
        field("parameters", KalamType::Json, true),
        field("message", KalamType::Text, true),
        field("result", KalamType::Json, true),
        field("error", KalamType::Text, true),
        field("created_at", KalamType::Timestamp, false),
        field("started_at", KalamType::Timestamp, true),
        field("finished_at", KalamType::Timestamp, true),
        field("node_id", KalamType::Text, false),
    ]))
}

/// What a caller below dba sees of a job's error: errors name users and
/// server paths, which are for dba and above.
const REDACTED: &str = "failed; the details are shown to dba and above";

/// Every job, oldest first, errors redacted below dba.
pub(super) fn visible_jobs(services: &Services, scope: &RequestScope) -> Result<Vec<JobRecord>> {
    let mut jobs = services.jobs.list()?;
    jobs.sort_by_key(|j| j.created_at);
    if scope.caller.role < Role::Dba {
        for job in &mut jobs {
            if job.error.is_some() {
                job.error = Some(REDACTED.to_string());
            }
        }
    }
    Ok(jobs)
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let jobs = visible_jobs(services, scope)?;
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(jobs.iter().map(|j| j.job_id.as_str())),
            build::text(jobs.iter().map(|j| j.job_type.as_str())),
            build::text(jobs.iter().map(|j| j.status.as_str())),
            build::opt_text(jobs.iter().map(|j| Some(j.namespace_id.clone()))),
            build::opt_text(jobs.iter().map(|j| Some(j.table_name.clone()))),
            build::text(jobs.iter().map(|j| j.trigger.as_str())),
            build::opt_text(jobs.iter().map(|j| Some(j.parameters.clone()))),
            build::opt_text(jobs.iter().map(|j| j.message.clone())),
            build::opt_text(jobs.iter().map(|j| j.result.clone())),
            build::opt_text(jobs.iter().map(|j| j.error.clone())),
            build::timestamps(jobs.iter().map(|j| Some(j.created_at))),
            build::timestamps(jobs.iter().map(|j| j.started_at)),
            build::timestamps(jobs.iter().map(|j| j.finished_at)),
            build::text(jobs.iter().map(|_| crate::jobs::NODE_ID)),
        ],
    )?)
}
