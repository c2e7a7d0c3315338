//! `system.storages`. Credentials are shown to dba and above only; others
//! see `***` where a storage has them.

use super::build;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::{KalamType, Role};
use std::sync::Arc;

pub const MASK: &str = "***";

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("storage_id", KalamType::Text, false),
        field("storage_name", KalamType::Text, false),
        field("description", KalamType::Text, true),
        field("storage_type", KalamType::Text, false),
        field("base_directory", KalamType::Text, false),
        field("bucket", KalamType::Text, true),
        field("region", KalamType::Text, true),
        field("endpoint", KalamType::Text, true),
        field("credentials", KalamType::Text, true),
        field("shared_tables_template", KalamType::Text, false),
        field("user_tables_template", KalamType::Text, false),
        field("created_at", KalamType::Timestamp, true),
        field("updated_at", KalamType::Timestamp, true),
    ]))
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let storages = services.storages.all();
    let admin = scope.caller.role >= Role::Dba;
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(storages.iter().map(|s| s.id.as_str())),
            build::text(storages.iter().map(|s| s.name.as_str())),
            build::opt_text(storages.iter().map(|s| s.description.clone())),
            build::text(storages.iter().map(|s| s.storage_type.as_str())),
            build::text(storages.iter().map(|s| s.base_directory.as_str())),
            build::opt_text(storages.iter().map(|s| s.bucket.clone())),
            build::opt_text(storages.iter().map(|s| s.region.clone())),
            build::opt_text(storages.iter().map(|s| s.endpoint.clone())),
            build::opt_text(storages.iter().map(|s| {
                s.credentials
                    .as_ref()
                    .map(|c| if admin { c.clone() } else { MASK.to_string() })
            })),
            build::text(storages.iter().map(|s| s.shared_tables_template.as_str())),
            build::text(storages.iter().map(|s| s.user_tables_template.as_str())),
            build::timestamps(storages.iter().map(|s| Some(s.created_at))),
            build::timestamps(storages.iter().map(|s| Some(s.updated_at))),
        ],
    )?)
}
