//! `system.namespaces`

use super::build;
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
        field("namespace_id", KalamType::Text, false),
        field("name", KalamType::Text, false),
        field("table_count", KalamType::Int, false),
        field("created_at", KalamType::Timestamp, true),
    ]))
}

pub fn rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let namespaces = services.catalog.namespaces();
    let counts: Vec<i32> = namespaces
        .iter()
        .map(|n| services.catalog.tables_in(n.name.as_str()).len() as i32)
        .collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(namespaces.iter().map(|n| n.name.as_str())),
            build::text(namespaces.iter().map(|n| n.name.as_str())),
            build::int32(counts),
            build::timestamps(namespaces.iter().map(|n| Some(n.created_at))),
        ],
    )?)
}
