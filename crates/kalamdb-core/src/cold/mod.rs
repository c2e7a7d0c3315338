//! The cold tier as the engine uses it: where a scope's files live, its
//! manifest (kept in the hot tier's `meta` column family), reading a scope's
//! committed rows, and the flush that moves hot rows there.
//!
//! Naming: a table's `FlushPolicy` says when; a flush (`flush::flush_table`)
//! moves every scope of one table; each scope ends in one commit — one
//! RocksDB batch that adds the manifest entry and deletes exactly the hot
//! versions the flush read.

pub mod flush;
pub mod merge;

use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use kalamdb_commons::TableType;
use kalamdb_filestore::object_store::local::LocalFileSystem;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::object_store::ObjectStore;
use kalamdb_filestore::{ManifestEntry, PathTemplate, TemplateKind};
use kalamdb_store::{ScopeKey, StoreSnapshot};
use std::sync::Arc;

const MANIFEST_PREFIX: &[u8] = b"mf/";

/// The `local` storage: files under `<data>/storage`.
#[derive(Debug, Clone)]
pub struct ColdStore {
    pub store: Arc<dyn ObjectStore>,
}

impl ColdStore {
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CoreError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| CoreError::Internal(format!("cold storage: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
        })
    }

    /// The directory of one scope's files.
    pub fn scope_dir(&self, def: &TableDef, user: Option<&str>) -> Result<Path> {
        let (text, kind) = match def.table_type {
            TableType::Shared => (PathTemplate::DEFAULT_SHARED, TemplateKind::Shared),
            _ => (PathTemplate::DEFAULT_USER, TemplateKind::User),
        };
        let template =
            PathTemplate::parse(text, kind).map_err(|e| CoreError::Internal(e.to_string()))?;
        template
            .render(def.namespace.as_str(), def.name.as_str(), user, 0)
            .map_err(|e| CoreError::Internal(e.to_string()))
    }
}

/// Where a scope's manifest entries live in `meta`.
pub fn manifest_prefix(scope: &ScopeKey) -> Vec<u8> {
    [MANIFEST_PREFIX, scope.as_bytes(), b"/"].concat()
}

/// Every manifest entry of a table (all scopes).
pub fn table_manifest_prefix(table_uid: u64) -> Vec<u8> {
    [MANIFEST_PREFIX, &ScopeKey::table_prefix(table_uid)].concat()
}

pub fn manifest_key(scope: &ScopeKey, file_name: &str) -> Vec<u8> {
    [manifest_prefix(scope).as_slice(), file_name.as_bytes()].concat()
}

/// The committed files of a scope as of `snapshot`, oldest first.
pub fn manifest_entries(
    snapshot: &StoreSnapshot<'_>,
    scope: &ScopeKey,
) -> Result<Vec<ManifestEntry>> {
    let mut entries = snapshot
        .meta_scan(&manifest_prefix(scope))?
        .into_iter()
        .map(|(_, raw)| serde_json::from_slice::<ManifestEntry>(&raw).map_err(CoreError::from))
        .collect::<Result<Vec<_>>>()?;
    entries.sort_by_key(|e| e.max_seq);
    Ok(entries)
}
