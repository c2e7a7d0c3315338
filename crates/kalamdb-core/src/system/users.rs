//! `system.users`: accounts without their password hashes. Below dba a
//! caller sees only their own account.

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
        field("user_id", KalamType::Text, false),
        field("username", KalamType::Text, false),
        field("role", KalamType::Text, false),
        field("email", KalamType::Text, true),
        field("created_at", KalamType::Timestamp, true),
        field("updated_at", KalamType::Timestamp, true),
        field("deleted_at", KalamType::Timestamp, true),
    ]))
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let users: Vec<_> = services
        .users
        .all()
        .into_iter()
        .filter(|u| scope.caller.role >= Role::Dba || u.id == scope.caller.user_id)
        .collect();
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(users.iter().map(|u| u.id.as_str())),
            build::text(users.iter().map(|u| u.id.as_str())),
            build::text(users.iter().map(|u| u.role.as_str())),
            build::opt_text(users.iter().map(|u| u.email.clone())),
            build::timestamps(users.iter().map(|u| Some(u.created_at))),
            build::timestamps(users.iter().map(|u| Some(u.updated_at))),
            build::timestamps(users.iter().map(|u| u.deleted_at)),
        ],
    )?)
}
