//! `system.manifest`: the cold files of each scope, one row per scope that
//! has any. The hot tier's `meta` column family is the manifest's source
//! of truth (the `manifest.json` beside the files is a copy written with
//! each flush), so every row is `in_sync` and there is no cache to report:
//! `in_memory` is false and `last_accessed` NULL. Service and above see
//! every scope; a user sees SHARED tables' and its own.

use super::build;
use crate::provider::RequestScope;
use crate::schema::field;
use crate::services::Services;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use kalamdb_commons::{KalamType, Role, TableType};
use kalamdb_filestore::ManifestEntry;
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("cache_key", KalamType::Text, false),
        field("namespace_id", KalamType::Text, false),
        field("table_name", KalamType::Text, false),
        field("scope", KalamType::Text, false),
        field("etag", KalamType::Text, true),
        field("last_refreshed", KalamType::Timestamp, false),
        field("last_accessed", KalamType::Timestamp, true),
        field("in_memory", KalamType::Boolean, false),
        field("sync_state", KalamType::Text, false),
        field("manifest_json", KalamType::Json, false),
        field("file_count", KalamType::BigInt, false),
        field("row_count", KalamType::BigInt, false),
        field("total_bytes", KalamType::BigInt, false),
    ]))
}

struct ScopeFiles {
    namespace: String,
    table: String,
    scope: String,
    files: Vec<ManifestEntry>,
}

pub fn rows(services: &Services, scope: &RequestScope) -> Result<RecordBatch> {
    let sees_all = scope.caller.role >= Role::Service;
    let mut scopes = Vec::new();
    for table in services.catalog.tables() {
        let user_scoped = table.table_type == TableType::User;
        let mut by_scope: BTreeMap<String, Vec<ManifestEntry>> = BTreeMap::new();
        for (name, entry) in crate::cold::table_manifest_by_scope(services.hot.store(), &table)? {
            if user_scoped && !sees_all && name != scope.caller.user_id.as_str() {
                continue;
            }
            by_scope.entry(name).or_default().push(entry);
        }
        scopes.extend(by_scope.into_iter().map(|(name, files)| ScopeFiles {
            namespace: table.namespace.to_string(),
            table: table.name.to_string(),
            scope: name,
            files,
        }));
    }
    let manifest_json = |s: &ScopeFiles| {
        serde_json::json!({
            "namespace": s.namespace,
            "table": s.table,
            "scope": s.scope,
            "files": s.files,
        })
        .to_string()
    };
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            build::text(
                scopes
                    .iter()
                    .map(|s| format!("{}:{}:{}", s.namespace, s.table, s.scope)),
            ),
            build::text(scopes.iter().map(|s| s.namespace.as_str())),
            build::text(scopes.iter().map(|s| s.table.as_str())),
            build::text(scopes.iter().map(|s| s.scope.as_str())),
            build::opt_text(scopes.iter().map(|_| None)),
            build::timestamps(
                scopes
                    .iter()
                    .map(|s| s.files.iter().map(|f| f.committed_at).max()),
            ),
            build::timestamps(scopes.iter().map(|_| None)),
            build::boolean(scopes.iter().map(|_| false)),
            build::text(scopes.iter().map(|_| "in_sync")),
            build::text(scopes.iter().map(manifest_json)),
            build::int64(scopes.iter().map(|s| s.files.len() as i64)),
            build::int64(
                scopes
                    .iter()
                    .map(|s| s.files.iter().map(|f| f.rows as i64).sum()),
            ),
            build::int64(
                scopes
                    .iter()
                    .map(|s| s.files.iter().map(|f| f.bytes as i64).sum()),
            ),
        ],
    )?)
}
