//! `system.settings` (the effective configuration, secrets masked) and
//! `system.stats` (runtime figures), both as name/value rows, the form the
//! original KalamDB's CLI (`\stats`) reads.

use super::build;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use kalamdb_commons::{KalamType, Role};
use std::sync::Arc;

pub fn settings_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("name", KalamType::Text, false),
        field("value", KalamType::Text, false),
    ]))
}

/// Readable by dba and above: the configuration names paths, endpoints
/// and limits an ordinary user has no business probing.
pub fn settings_rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    if scope.caller.role < Role::Dba {
        return Err(DataFusionError::Execution(
            "permission denied: system.settings is readable by dba and above".into(),
        ));
    }
    let settings = &services.settings;
    Ok(RecordBatch::try_new(
        settings_schema(),
        vec![
            build::text(settings.iter().map(|(n, _)| n.as_str())),
            build::text(settings.iter().map(|(_, v)| v.as_str())),
        ],
    )?)
}

pub fn stats_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("metric_name", KalamType::Text, false),
        field("metric_value", KalamType::Text, false),
    ]))
}

pub fn stats_rows(services: &Services, _scope: &RequestScope) -> Result<RecordBatch> {
    let tables = services.catalog.tables().len();
    let setting = |name: &str| {
        services
            .settings
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(String::new, |(_, v)| v.clone())
    };
    let counters = services.hot.counters();
    let uptime = (services.clock.now_micros() - services.started_at).max(0) / 1_000_000;
    let workers = std::thread::available_parallelism().map_or(1, usize::from);
    let metrics: Vec<(&str, String)> = vec![
        ("server_version", env!("CARGO_PKG_VERSION").to_string()),
        ("server_uptime_seconds", uptime.to_string()),
        ("server_workers_effective", workers.to_string()),
        ("max_connections", setting("limits.max_connections")),
        ("total_users", services.users.all().len().to_string()),
        (
            "total_namespaces",
            services.catalog.namespaces().len().to_string(),
        ),
        ("total_tables", tables.to_string()),
        // One catalog entry per table: the original's schema cache and
        // registry are both this one map here.
        ("schema_cache_size", tables.to_string()),
        ("schema_registry_size", tables.to_string()),
        ("hot_versions", counters.total_rows().to_string()),
        ("hot_bytes", counters.total_bytes().to_string()),
        (
            "change_log_bytes",
            services.hot.store().changes_size().to_string(),
        ),
        (
            "live_subscriptions",
            services.live.hub.feeds().len().to_string(),
        ),
    ];
    Ok(RecordBatch::try_new(
        stats_schema(),
        vec![
            build::text(metrics.iter().map(|(n, _)| *n)),
            build::text(metrics.iter().map(|(_, v)| v.as_str())),
        ],
    )?)
}
