//! `information_schema.columns`

use super::{build, builtin_tables};
use crate::provider::RequestScope;
use crate::schema::{field, KALAM_TYPE_KEY};
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::KalamType;
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("table_catalog", KalamType::Text, false),
        field("table_schema", KalamType::Text, false),
        field("table_name", KalamType::Text, false),
        field("column_name", KalamType::Text, false),
        field("ordinal_position", KalamType::Int, false),
        field("column_default", KalamType::Text, true),
        field("is_nullable", KalamType::Text, false),
        field("data_type", KalamType::Text, false),
        field("is_primary_key", KalamType::Boolean, false),
    ]))
}

#[derive(Default)]
struct Rows {
    schema: Vec<String>,
    table: Vec<String>,
    column: Vec<String>,
    position: Vec<i32>,
    default: Vec<Option<String>>,
    nullable: Vec<&'static str>,
    data_type: Vec<String>,
    primary: Vec<bool>,
}

pub fn rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let mut r = Rows::default();
    for table in services.catalog.tables() {
        for (i, column) in table.columns.iter().enumerate() {
            r.schema.push(table.namespace.to_string());
            r.table.push(table.name.to_string());
            r.column.push(column.name.clone());
            r.position.push(i as i32 + 1);
            r.default.push(column.default.as_ref().map(|d| d.sql()));
            r.nullable.push(if column.nullable { "YES" } else { "NO" });
            r.data_type.push(column.data_type.name());
            r.primary.push(column.name == table.primary_key);
        }
    }
    for (schema, name, arrow_schema) in builtin_tables() {
        for (i, f) in arrow_schema.fields().iter().enumerate() {
            r.schema.push(schema.to_string());
            r.table.push(name.to_string());
            r.column.push(f.name().clone());
            r.position.push(i as i32 + 1);
            r.default.push(None);
            r.nullable.push(if f.is_nullable() { "YES" } else { "NO" });
            r.data_type.push(
                f.metadata()
                    .get(KALAM_TYPE_KEY)
                    .cloned()
                    .unwrap_or_else(|| f.data_type().to_string()),
            );
            r.primary.push(false);
        }
    }
    let n = r.column.len();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(std::iter::repeat_n(crate::provider::CATALOG_NAME, n)),
            build::text(r.schema),
            build::text(r.table),
            build::text(r.column),
            build::int32(r.position),
            build::opt_text(r.default),
            build::text(r.nullable),
            build::text(r.data_type),
            build::boolean(r.primary),
        ],
    )?)
}
