//! `system.live`: active subscriptions. Below dba, a caller sees its own.

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
        field("live_id", KalamType::Text, false),
        field("subscription_id", KalamType::Text, false),
        field("user_id", KalamType::Text, false),
        field("connection_id", KalamType::Text, false),
        field("sql", KalamType::Text, false),
        field("options", KalamType::Json, false),
        field("created_at", KalamType::Timestamp, false),
        field("changes_delivered", KalamType::BigInt, false),
        field("last_seq", KalamType::BigInt, false),
    ]))
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let mut feeds = services.live.hub.feeds();
    if scope.caller.role < Role::Dba {
        feeds.retain(|f| f.info.user_id == scope.caller.user_id.as_str());
    }
    feeds.retain(|f| f.end_reason().is_none());
    feeds.sort_by(|a, b| {
        a.info
            .created_at
            .cmp(&b.info.created_at)
            .then(a.info.live_id.cmp(&b.info.live_id))
    });
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(feeds.iter().map(|f| &f.info.live_id)),
            build::text(feeds.iter().map(|f| &f.info.subscription_id)),
            build::text(feeds.iter().map(|f| &f.info.user_id)),
            build::text(feeds.iter().map(|f| &f.info.connection_id)),
            build::text(feeds.iter().map(|f| &f.info.sql)),
            build::text(feeds.iter().map(|f| &f.info.options)),
            build::timestamps(feeds.iter().map(|f| Some(f.info.created_at))),
            build::opt_int64(feeds.iter().map(|f| Some(f.delivered() as i64))),
            build::opt_int64(feeds.iter().map(|f| Some(f.last_seq() as i64))),
        ],
    )?)
}
