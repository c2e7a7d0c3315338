//! `system.tables` and `information_schema.tables`.

use super::{build, builtin_tables};
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::KalamType;
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("table_id", KalamType::Text, false),
        field("namespace_id", KalamType::Text, false),
        field("table_name", KalamType::Text, false),
        field("table_type", KalamType::Text, false),
        field("primary_key", KalamType::Text, false),
        field("storage_id", KalamType::Text, false),
        field("flush_policy", KalamType::Text, false),
        field("access_level", KalamType::Text, true),
        field("ttl_seconds", KalamType::BigInt, true),
        field("schema_version", KalamType::Int, false),
        field("created_at", KalamType::Timestamp, true),
        field("updated_at", KalamType::Timestamp, true),
    ]))
}

pub fn rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let tables = services.catalog.tables();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(tables.iter().map(|t| t.qualified_name())),
            build::text(tables.iter().map(|t| t.namespace.as_str())),
            build::text(tables.iter().map(|t| t.name.as_str())),
            build::text(tables.iter().map(|t| t.table_type.as_str())),
            build::text(tables.iter().map(|t| t.primary_key.as_str())),
            build::text(tables.iter().map(|t| t.storage_id.as_str())),
            build::text(
                tables
                    .iter()
                    .map(|t| t.effective_flush_policy().to_string()),
            ),
            build::opt_text(
                tables
                    .iter()
                    .map(|t| t.access_level_name().map(String::from)),
            ),
            build::opt_int64(tables.iter().map(|t| t.ttl_seconds.map(|s| s as i64))),
            build::int32(tables.iter().map(|t| t.schema_version as i32)),
            build::timestamps(tables.iter().map(|t| Some(t.created_at))),
            build::timestamps(tables.iter().map(|t| Some(t.updated_at))),
        ],
    )?)
}

pub fn info_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("table_catalog", KalamType::Text, false),
        field("table_schema", KalamType::Text, false),
        field("table_name", KalamType::Text, false),
        field("table_type", KalamType::Text, false),
        field("kalam_table_type", KalamType::Text, false),
    ]))
}

pub fn info_rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let mut schemas = Vec::new();
    let mut names = Vec::new();
    let mut types = Vec::new();
    let mut kalam_types = Vec::new();
    for table in services.catalog.tables() {
        schemas.push(table.namespace.to_string());
        names.push(table.name.to_string());
        types.push("BASE TABLE");
        kalam_types.push(table.table_type.as_str());
    }
    for (schema, name, _) in builtin_tables() {
        schemas.push(schema.to_string());
        names.push(name.to_string());
        types.push("SYSTEM TABLE");
        kalam_types.push("SYSTEM");
    }
    Ok(RecordBatch::try_new(
        info_schema(),
        vec![
            build::text(std::iter::repeat_n(
                crate::provider::CATALOG_NAME,
                names.len(),
            )),
            build::text(schemas),
            build::text(names),
            build::text(types),
            build::text(kalam_types),
        ],
    )?)
}
