//! The cold tier as the engine uses it: where a scope's files live, its
//! manifest (kept in the hot tier's `meta` column family), reading a scope's
//! committed rows, and the flush that moves hot rows there.
//!
//! Naming: a table's `FlushPolicy` says when; a flush (`flush::flush_table`)
//! moves every scope of one table; each scope ends in one commit — one
//! RocksDB batch that adds the manifest entry and deletes exactly the hot
//! versions the flush read.

pub mod cursor;
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
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use tracing::{info, warn};

const MANIFEST_PREFIX: &[u8] = b"mf/";

/// The `local` storage: files under `<data>/storage`.
#[derive(Debug, Clone)]
pub struct ColdStore {
    pub store: Arc<dyn ObjectStore>,
    root: PathBuf,
}

impl ColdStore {
    pub fn local(dir: &std::path::Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CoreError::Internal(format!("cannot create {}: {e}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(dir)
            .map_err(|e| CoreError::Internal(format!("cold storage: {e}")))?;
        Ok(Self {
            store: Arc::new(store),
            root: dir.to_path_buf(),
        })
    }

    /// Deletes Parquet files that no manifest names: files a flush wrote but
    /// never committed (it crashed or failed first). Readers never see them;
    /// this reclaims their space. Returns how many were removed.
    pub fn remove_orphans(&self, committed: &HashSet<String>) -> Result<usize> {
        let mut removed = 0;
        let mut dirs = vec![self.root.clone()];
        while let Some(dir) = dirs.pop() {
            let entries = std::fs::read_dir(&dir)
                .map_err(|e| CoreError::Internal(format!("cannot list {}: {e}", dir.display())))?;
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(&self.root)
                    .ok()
                    .and_then(|p| p.to_str())
                    .map(|p| p.replace(std::path::MAIN_SEPARATOR, "/"));
                let Some(relative) = relative else { continue };
                if relative.ends_with(".parquet") && !committed.contains(&relative) {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            removed += 1;
                            info!(file = %relative, "removed orphan file (written, never committed)");
                        }
                        Err(e) => warn!(file = %relative, error = %e, "cannot remove orphan file"),
                    }
                }
            }
        }
        Ok(removed)
    }

    /// Removes a dropped table's files (its manifest entries are already
    /// gone). Failures are logged: leftover files are unreachable orphans.
    pub fn remove_table_files(&self, def: &TableDef) {
        let dir = self
            .root
            .join(def.namespace.as_str())
            .join(def.name.as_str());
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(table = %def.qualified_name(), error = %e, "cannot remove the table's files");
            }
        }
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

/// Every committed file path of every table.
pub fn committed_paths(store: &kalamdb_store::HotStore) -> Result<HashSet<String>> {
    store
        .meta_scan(MANIFEST_PREFIX)?
        .into_iter()
        .map(|(_, raw)| {
            serde_json::from_slice::<ManifestEntry>(&raw)
                .map(|e| e.path)
                .map_err(CoreError::from)
        })
        .collect()
}
