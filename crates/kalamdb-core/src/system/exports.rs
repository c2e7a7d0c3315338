//! `system.exports`: the user data exports made (`EXPORT USER DATA`);
//! dba and above see all, a user its own.

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
        field("export_id", KalamType::Text, false),
        field("user_id", KalamType::Text, false),
        field("status", KalamType::Text, false),
        field("path", KalamType::Text, false),
        field("tables", KalamType::BigInt, false),
        field("rows", KalamType::BigInt, false),
        field("bytes", KalamType::BigInt, false),
        field("created_at", KalamType::Timestamp, false),
        field("finished_at", KalamType::Timestamp, false),
        field("requested_by", KalamType::Text, false),
        field("error", KalamType::Text, true),
    ]))
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let mut records = crate::exec::export::list(services)?;
    if scope.caller.role < Role::Dba {
        records.retain(|r| r.user_id == scope.caller.user_id.as_str());
    }
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(records.iter().map(|r| r.export_id.as_str())),
            build::text(records.iter().map(|r| r.user_id.as_str())),
            build::text(records.iter().map(|r| r.status.as_str())),
            build::text(records.iter().map(|r| r.path.as_str())),
            build::int64(records.iter().map(|r| r.tables as i64)),
            build::int64(records.iter().map(|r| r.rows as i64)),
            build::int64(records.iter().map(|r| r.bytes as i64)),
            build::timestamps(records.iter().map(|r| Some(r.created_at))),
            build::timestamps(records.iter().map(|r| Some(r.finished_at))),
            build::text(records.iter().map(|r| r.requested_by.as_str())),
            build::opt_text(records.iter().map(|r| r.error.clone())),
        ],
    )?)
}
