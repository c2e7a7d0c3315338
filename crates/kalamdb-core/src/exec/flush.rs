//! `FLUSH TABLE` and `FLUSH ALL TABLES` start flush jobs, `COMPACT TABLE`
//! and `COMPACT ALL` compaction jobs; they return at once. `KILL JOB`
//! cancels one.

use super::{Session, StatementResult};
use crate::compact::Mode;
use crate::error::{CoreError, Result};
use crate::jobs::KillOutcome;
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_commons::{Role, TableType};
use kalamdb_sql::TableRef;
use std::sync::Arc;

fn require_service(s: &Session<'_>, what: &str) -> Result<()> {
    if s.caller.role >= Role::Service {
        Ok(())
    } else {
        Err(CoreError::PermissionDenied(format!(
            "{what} requires the service role or above"
        )))
    }
}

pub async fn flush_table(s: &Session<'_>, table: &TableRef) -> Result<StatementResult> {
    require_service(s, "FLUSH")?;
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
    require_service(s, "FLUSH")?;
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for def in tables_with_files(s, namespace)? {
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
    jobs_result(s, names, ids, message)
}

/// The tables FLUSH ALL and COMPACT ALL start jobs for: every table (of
/// `namespace`) but STREAM tables, which have no cold tier.
fn tables_with_files(
    s: &Session<'_>,
    namespace: Option<&str>,
) -> Result<Vec<Arc<crate::catalog::TableDef>>> {
    let tables = match namespace {
        Some(ns) => {
            if s.services.catalog.namespace(ns).is_none() {
                return Err(CoreError::NamespaceNotFound(ns.to_string()));
            }
            s.services.catalog.tables_in(ns)
        }
        None => s.services.catalog.tables(),
    };
    Ok(tables
        .into_iter()
        .filter(|t| t.table_type != TableType::Stream)
        .collect())
}

pub async fn compact_table(s: &Session<'_>, table: &TableRef) -> Result<StatementResult> {
    require_service(s, "COMPACT")?;
    let def = s.resolve_table(table)?;
    if def.table_type == TableType::Stream {
        return Err(CoreError::exec(format!(
            "{} is a STREAM table: it has no files to compact",
            def.qualified_name()
        )));
    }
    let (job_id, new) = s
        .services
        .jobs
        .submit_compact(def.clone(), "manual", Mode::Full, None)
        .await?;
    let verb = if new { "started" } else { "already running" };
    Ok(StatementResult::message(
        &s.caller,
        format!(
            "Compaction {verb} for table '{}'. Job ID: {job_id}",
            def.qualified_name()
        ),
    ))
}

pub async fn compact_all(s: &Session<'_>, namespace: Option<&str>) -> Result<StatementResult> {
    require_service(s, "COMPACT")?;
    let mut names = Vec::new();
    let mut ids = Vec::new();
    for def in tables_with_files(s, namespace)? {
        let (job_id, _) = s
            .services
            .jobs
            .submit_compact(def.clone(), "manual", Mode::Full, None)
            .await?;
        names.push(def.qualified_name());
        ids.push(job_id);
    }
    let message = if ids.is_empty() {
        "No tables to compact".to_string()
    } else {
        let place = namespace.map_or(String::new(), |ns| format!(" in namespace '{ns}'"));
        format!(
            "Compaction started for {} table(s){place}. Job IDs: [{}]",
            ids.len(),
            ids.join(", ")
        )
    };
    jobs_result(s, names, ids, message)
}

/// One row per started job (table, job id), with `message`.
fn jobs_result(
    s: &Session<'_>,
    names: Vec<String>,
    ids: Vec<String>,
    message: String,
) -> Result<StatementResult> {
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
    require_service(s, "KILL JOB")?;
    let message = match s.services.jobs.kill(job_id)? {
        KillOutcome::Dequeued => format!("Job {job_id} cancelled before it ran"),
        KillOutcome::Stopping if job_id.starts_with("CO-") => format!(
            "Job {job_id} is stopping at its next user boundary; users already compacted \
             stay compacted"
        ),
        KillOutcome::Stopping => format!(
            "Job {job_id} is stopping at its next user boundary; committed users stay flushed"
        ),
    };
    Ok(StatementResult::message(&s.caller, message))
}
