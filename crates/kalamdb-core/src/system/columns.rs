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

/// `system.columns`: the columns of every user table, as the original
/// KalamDB's clients read them (one row per column of each schema version;
/// a table has one version until it can change).
pub fn kalam_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("namespace_id", KalamType::Text, false),
        field("table_name", KalamType::Text, false),
        field("version", KalamType::BigInt, false),
        field("column_id", KalamType::BigInt, false),
        field("column_name", KalamType::Text, false),
        field("comment", KalamType::Text, true),
        field("data_type", KalamType::Text, false),
        field("default_value", KalamType::Text, true),
        field("ordinal", KalamType::BigInt, false),
        field("nullable", KalamType::Boolean, false),
        field("primary_key", KalamType::Boolean, false),
        field("primary_key_pos", KalamType::BigInt, true),
    ]))
}

pub fn kalam_rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let tables = services.catalog.tables();
    let columns: Vec<_> = tables
        .iter()
        .flat_map(|t| t.columns.iter().enumerate().map(move |(i, c)| (t, i, c)))
        .collect();
    let is_pk = |(t, _, c): &(
        &Arc<crate::catalog::TableDef>,
        usize,
        &crate::catalog::ColumnDef,
    )| { c.name == t.primary_key };
    Ok(RecordBatch::try_new(
        kalam_schema(),
        vec![
            build::text(columns.iter().map(|(t, _, _)| t.namespace.as_str())),
            build::text(columns.iter().map(|(t, _, _)| t.name.as_str())),
            build::int64(columns.iter().map(|(t, _, _)| i64::from(t.schema_version))),
            build::int64(columns.iter().map(|(_, i, _)| *i as i64 + 1)),
            build::text(columns.iter().map(|(_, _, c)| c.name.as_str())),
            build::opt_text(columns.iter().map(|_| None)),
            build::text(columns.iter().map(|(_, _, c)| c.data_type.name())),
            build::opt_text(
                columns
                    .iter()
                    .map(|(_, _, c)| c.default.as_ref().map(|d| d.sql())),
            ),
            build::int64(columns.iter().map(|(_, i, _)| *i as i64 + 1)),
            build::boolean(columns.iter().map(|(_, _, c)| c.nullable)),
            build::boolean(columns.iter().map(is_pk)),
            build::opt_int64(columns.iter().map(|c| is_pk(c).then_some(1))),
        ],
    )?)
}
