//! `system.running_queries`: statements running under a client's query id
//! (the `kalam-query-id` header), which `KILL QUERY` can stop. Below dba, a
//! caller sees its own.

use super::build;
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
        field("query_id", KalamType::Text, false),
        field("user_id", KalamType::Text, false),
        field("sql", KalamType::Text, false),
        field("started_at", KalamType::Timestamp, false),
    ]))
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let mut running = services.running.list();
    if scope.caller.role < Role::Dba {
        running.retain(|r| r.user_id == scope.caller.user_id.as_str());
    }
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(running.iter().map(|r| &r.query_id)),
            build::text(running.iter().map(|r| &r.user_id)),
            build::text(running.iter().map(|r| &r.sql)),
            build::timestamps(running.iter().map(|r| Some(r.started_at))),
        ],
    )?)
}
