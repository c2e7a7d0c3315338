//! `system.audit_log`: readable by dba and above, as it names every user
//! and where they logged in from.

use super::build;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use kalamdb_commons::{KalamType, Role};
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("audit_id", KalamType::Text, false),
        field("timestamp", KalamType::Timestamp, false),
        field("actor_user_id", KalamType::Text, false),
        field("action", KalamType::Text, false),
        field("target", KalamType::Text, false),
        field("details", KalamType::Json, true),
        field("ip_address", KalamType::Text, true),
        field("subject_user_id", KalamType::Text, true),
    ]))
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    if scope.caller.role < Role::Dba {
        return Err(DataFusionError::Execution(
            "permission denied: system.audit_log is readable by dba and above".into(),
        ));
    }
    let entries = services
        .audit
        .entries()
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(entries.iter().map(|e| e.audit_id.as_str())),
            build::timestamps(entries.iter().map(|e| Some(e.timestamp))),
            build::text(entries.iter().map(|e| e.actor_user_id.as_str())),
            build::text(entries.iter().map(|e| e.action.as_str())),
            build::text(entries.iter().map(|e| e.target.as_str())),
            build::opt_text(entries.iter().map(|e| e.details.clone())),
            build::opt_text(entries.iter().map(|e| e.ip_address.clone())),
            build::opt_text(entries.iter().map(|e| e.subject_user_id.clone())),
        ],
    )?)
}
