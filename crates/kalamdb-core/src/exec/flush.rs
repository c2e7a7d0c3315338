//! `FLUSH TABLE` and `FLUSH ALL TABLES` start flush jobs and return at once;
//! `KILL JOB` cancels one.

use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use crate::jobs::KillOutcome;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_commons::{Role, TableType};
use kalamdb_sql::TableRef;
use std::sync::Arc;

fn require_service(s: &Session<'_>) -> Result<()> {
    if s.caller.role >= Role::Service {
        Ok(())
    } else {
        Err(CoreError::PermissionDenied(
            "FLUSH requires the service role or above".into(),
        ))
    }
}

pub async fn flush_table(s: &Session<'_>, table: &TableRef) -> Result<StatementResult> {
    require_service(s)?;
    let def = s.resolve_table(table)?;
    let (job_id, new) = s.services.jobs.submit_flush(def.clone(), "manual").await?;
    let verb = if new { "started" } else { "already running" };
    Ok(StatementResult::message(
        &s.caller,
        format!(
            "Flush {verb} for table '{}'. Job ID: {job_id}",
            def.qualified_name()
        ),
    ))
}

pub async fn flush_all(s: &Session<'_>, namespace: Option<&str>) -> Result<StatementResult> {
    require_service(s)?;
    let tables = match namespace {
        Some(ns) => {
            if s.services.catalog.namespace(ns).is_none() {
                return Err(CoreError::NamespaceNotFound(ns.to_string()));
            }
            s.services.catalog.tables_in(ns)
        }
        None => s.services.catalog.tables(),
    };
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for def in tables
        .into_iter()
        .filter(|t| t.table_type != TableType::Stream)
    {
        let (job_id, _) = s.services.jobs.submit_flush(def.clone(), "manual").await?;
        names.push(def.qualified_name());
        ids.push(job_id);
    }
    // The original clients read the ids from this text, in this form.
    let message = if ids.is_empty() {
        "No tables to flush".to_string()
    } else {
        let place = namespace.map_or(String::new(), |ns| format!(" in namespace '{ns}'"));
        format!(
            "Flush started for {} table(s){place}. Job IDs: [{}]",
            ids.len(),
            ids.join(", ")
        )
    };
    let schema = Arc::new(Schema::new(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("job_id", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(names)),
            Arc::new(StringArray::from(ids)),
        ],
    )?;
    Ok(StatementResult {
        schema: Some(schema),
        row_count: batch.num_rows(),
        batches: vec![batch],
        rest: None,
        message: Some(message),
        as_user: s.caller.user_id.to_string(),
    })
}

pub async fn kill_job(s: &Session<'_>, job_id: &str) -> Result<StatementResult> {
    require_service(s)?;
    let message = match s.services.jobs.kill(job_id)? {
        KillOutcome::Dequeued => format!("Job {job_id} cancelled before it ran"),
        KillOutcome::Stopping => format!(
            "Job {job_id} is stopping at its next user boundary; committed users stay flushed"
        ),
    };
    Ok(StatementResult::message(&s.caller, message))
}
