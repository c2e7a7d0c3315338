//! `SHOW STATS FOR TABLE ns.t`: what a table holds in each tier.

use super::{Session, StatementResult};
use crate::cold::table_manifest_entries;
use crate::error::{CoreError, Result};
use crate::jobs::JobStatus;
use crate::schema::field;
use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_commons::{KalamType, Role};
use kalamdb_sql::TableRef;
use std::sync::Arc;

pub fn show_stats(s: &Session<'_>, table: &TableRef) -> Result<StatementResult> {
    if s.caller.role < Role::Service {
        return Err(CoreError::PermissionDenied(
            "SHOW STATS requires the service role or above".into(),
        ));
    }
    let def = s.resolve_table(table)?;
    let buffered = s
        .services
        .hot
        .counters()
        .get(def.uid)
        .unwrap_or(crate::hot::Buffered {
            rows: 0,
            bytes: 0,
            last_flush_at: 0,
        });
    let entries = table_manifest_entries(s.services.hot.store(), def.uid)?;
    let cold_rows: u64 = entries.iter().map(|e| e.rows).sum();
    let cold_bytes: u64 = entries.iter().map(|e| e.bytes).sum();
    let cold_tombstones: u64 = entries.iter().map(|e| e.held_tombstones()).sum();
    let jobs = s.services.jobs.list()?;
    let last = |job_type: &str| {
        jobs.iter()
            .filter(|j| {
                j.namespace_id == def.namespace.as_str()
                    && j.table_name == def.name.as_str()
                    && j.job_type == job_type
                    && j.status == JobStatus::Completed
            })
            .max_by_key(|j| j.finished_at)
            .cloned()
    };
    let last_flush = last("flush");
    let last_compaction = last("compact");
    let schema = Arc::new(Schema::new(vec![
        field("table_id", KalamType::Text, false),
        field("table_type", KalamType::Text, false),
        field("storage_id", KalamType::Text, false),
        field("flush_policy", KalamType::Text, false),
        field("hot_rows", KalamType::BigInt, false),
        field("hot_bytes", KalamType::BigInt, false),
        field("cold_rows", KalamType::BigInt, false),
        field("parquet_files", KalamType::BigInt, false),
        field("cold_bytes", KalamType::BigInt, false),
        field("last_flush_at", KalamType::Timestamp, true),
        field("last_flush_job", KalamType::Text, true),
        field("failing_scopes", KalamType::Text, true),
        field("scope_scans", KalamType::BigInt, false),
        field("key_lookups", KalamType::BigInt, false),
        field("cold_tombstones", KalamType::BigInt, false),
        field("last_compaction_at", KalamType::Timestamp, true),
        field("last_compaction_job", KalamType::Text, true),
    ]));
    let (scope_scans, key_lookups) = s.services.reads.of(def.uid);
    let text = |v: String| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let int = |v: u64| Arc::new(Int64Array::from(vec![v as i64])) as ArrayRef;
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            text(def.qualified_name()),
            text(def.table_type.as_str().to_string()),
            text(def.storage_id.clone()),
            text(def.effective_flush_policy().to_string()),
            int(buffered.rows),
            int(buffered.bytes),
            int(cold_rows),
            int(entries.len() as u64),
            int(cold_bytes),
            Arc::new(TimestampMicrosecondArray::from(vec![last_flush
                .as_ref()
                .and_then(|j| j.finished_at)])),
            Arc::new(StringArray::from(vec![last_flush.map(|j| j.job_id)])),
            Arc::new(StringArray::from(vec![failing_scopes(s, def.uid)])),
            int(scope_scans),
            int(key_lookups),
            int(cold_tombstones),
            Arc::new(TimestampMicrosecondArray::from(vec![last_compaction
                .as_ref()
                .and_then(|j| j.finished_at)])),
            Arc::new(StringArray::from(vec![last_compaction.map(|j| j.job_id)])),
        ],
    )?;
    Ok(StatementResult {
        schema: Some(schema),
        row_count: 1,
        batches: vec![batch],
        rest: None,
        message: None,
        as_user: s.caller.user_id.to_string(),
    })
}

/// The scopes whose flush keeps failing for a reason retries cannot fix,
/// with why and when they are tried again; `None` when there are none.
fn failing_scopes(s: &Session<'_>, table_uid: u64) -> Option<String> {
    let scopes = s.services.flusher.backoff().of_table(table_uid);
    if scopes.is_empty() {
        return None;
    }
    let now = s.services.clock.now_micros();
    let described: Vec<String> = scopes
        .iter()
        .map(|f| {
            format!(
                "{}: {} failure(s), next try in {} s: {}",
                f.user.as_deref().unwrap_or("(shared)"),
                f.failures,
                (f.retry_at - now).max(0) / 1_000_000,
                f.cause
            )
        })
        .collect();
    Some(described.join("; "))
}
