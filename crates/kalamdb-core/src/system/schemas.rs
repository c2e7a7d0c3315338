//! `system.schemas`: one row per schema version of each table, as the
//! original KalamDB's CLI reads it to list and describe tables (it takes
//! the rows with `is_latest`). Older versions show their columns; their
//! options are the table's current ones (versions do not keep options).

use super::build;
use crate::catalog::{SchemaVersion, TableDef};
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::KalamType;
use serde_json::json;
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("table_id", KalamType::Text, false),
        field("schema_version", KalamType::Int, false),
        field("table_name", KalamType::Text, false),
        field("namespace_id", KalamType::Text, false),
        field("table_type", KalamType::Text, false),
        field("created_at", KalamType::Timestamp, true),
        field("columns", KalamType::Json, false),
        field("table_comment", KalamType::Text, true),
        field("updated_at", KalamType::Timestamp, true),
        field("options", KalamType::Json, false),
        field("access_level", KalamType::Text, true),
        field("is_latest", KalamType::Boolean, false),
        field("storage_id", KalamType::Text, false),
        field("use_user_storage", KalamType::Boolean, false),
    ]))
}

/// The columns of one version of `table` as JSON objects, in order.
fn columns_json(table: &TableDef, columns: &[crate::catalog::ColumnDef]) -> String {
    let columns: Vec<_> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "column_name": c.name,
                "ordinal_position": i + 1,
                "data_type": c.data_type.name(),
                "is_nullable": c.nullable,
                "is_primary_key": c.name == table.primary_key,
                "default_value": c.default.as_ref().map(|d| d.sql()),
            })
        })
        .collect();
    serde_json::Value::from(columns).to_string()
}

fn options_json(table: &TableDef) -> String {
    json!({
        "table_type": table.table_type.as_str(),
        "flush_policy": table.effective_flush_policy().to_string(),
        "storage_id": table.storage_id,
        "ttl_seconds": table.ttl_seconds,
        "access_level": table.access_level_name(),
    })
    .to_string()
}

pub fn rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let tables = services.catalog.tables();
    let rows: Vec<(&Arc<TableDef>, Arc<SchemaVersion>)> = tables
        .iter()
        .flat_map(|t| t.schemas.all().into_iter().map(move |v| (t, v)))
        .collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(rows.iter().map(|(t, _)| t.qualified_name())),
            build::int32(rows.iter().map(|(_, v)| v.version as i32)),
            build::text(rows.iter().map(|(t, _)| t.name.as_str())),
            build::text(rows.iter().map(|(t, _)| t.namespace.as_str())),
            build::text(rows.iter().map(|(t, _)| t.table_type.as_str())),
            build::timestamps(rows.iter().map(|(t, _)| Some(t.created_at))),
            build::text(rows.iter().map(|(t, v)| columns_json(t, &v.columns))),
            build::opt_text(rows.iter().map(|_| None)),
            build::timestamps(rows.iter().map(|(_, v)| Some(v.created_at))),
            build::text(rows.iter().map(|(t, _)| options_json(t))),
            build::opt_text(
                rows.iter()
                    .map(|(t, _)| t.access_level_name().map(String::from)),
            ),
            build::boolean(rows.iter().map(|(t, v)| v.version == t.schema_version)),
            build::text(rows.iter().map(|(t, _)| t.storage_id.as_str())),
            build::boolean(rows.iter().map(|_| false)),
        ],
    )?)
}
