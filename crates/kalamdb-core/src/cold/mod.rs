//! The cold tier as the engine uses it: the storages (opened object stores
//! and their path templates), where a scope's files live in them, the
//! records of files written but not yet committed, and the removal of
//! files nobody can read any more. Reading a scope's files is `read`'s;
//! writing them is `flush`'s. The manifests themselves live in the hot
//! tier's `meta` column family (`kalamdb_store::meta_keys`).

pub mod bridge;
mod file_sink;
mod storages;

use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use kalamdb_commons::TableType;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::object_store::{ObjectStore, ObjectStoreExt};
use kalamdb_filestore::{
    shard_of, CachedFiles, FileCache, ManifestEntry, PathTemplate, StorageDef, MANIFEST_FILE,
};
use kalamdb_store::{meta_keys, HotStore};
use std::collections::BTreeSet;
use std::sync::Arc;
use tracing::{info, warn};

pub use file_sink::FileSink;
pub use storages::Storages;

/// One opened storage: its object store and path templates.
#[derive(Debug, Clone)]
pub struct ColdStore {
    pub id: String,
    pub store: Arc<dyn ObjectStore>,
    /// The store as point lookups read it: through the file cache.
    pub files: CachedFiles,
    user_template: PathTemplate,
    shared_template: PathTemplate,
}

impl ColdStore {
    pub fn open(
        def: &StorageDef,
        data_dir: &std::path::Path,
        cache: Arc<FileCache>,
    ) -> Result<Self> {
        let (user_template, shared_template) = def.templates()?;
        let store = def.open(data_dir)?;
        Ok(Self {
            id: def.id.clone(),
            files: CachedFiles {
                store: store.clone(),
                cache,
                storage: def.id.as_str().into(),
            },
            store,
            user_template,
            shared_template,
        })
    }

    /// The directory of one scope's files.
    pub fn scope_dir(&self, def: &TableDef, user: Option<&str>) -> Result<Path> {
        let template = match def.table_type {
            TableType::Shared => &self.shared_template,
            _ => &self.user_template,
        };
        Ok(template.render(
            def.namespace.as_str(),
            def.name.as_str(),
            user,
            shard_of(user),
        )?)
    }
}

/// The `meta` record of a file that may exist uncommitted
/// ([`meta_keys::pending_file`]).
pub fn pending_key(storage: &str, path: &Path) -> Vec<u8> {
    meta_keys::pending_file(storage, path.as_ref())
}

/// Records that a file is about to be written (see [`pending_key`]).
pub fn mark_pending(store: &HotStore, storage: &str, path: &Path) -> Result<()> {
    let mut batch = store.batch();
    batch.put_meta(&pending_key(storage, path), b"");
    Ok(store.write(batch)?)
}

/// Best-effort removal of a file that will not be committed (a flush or a
/// compaction gave it up), with its pending record; on a blocking thread.
/// What cannot be removed now keeps its record and goes at the next start.
pub fn discard_uncommitted(
    store: &HotStore,
    cold: &ColdStore,
    handle: &tokio::runtime::Handle,
    path: &Path,
) {
    match bridge::wait(handle, cold.store.delete(path)) {
        Ok(()) | Err(kalamdb_filestore::object_store::Error::NotFound { .. }) => {
            let mut batch = store.batch();
            batch.delete_meta(&pending_key(&cold.id, path));
            if let Err(e) = store.write(batch) {
                warn!(error = %e, "cannot clear a pending-file record");
            }
        }
        Err(e) => tracing::debug!(%path, error = %e, "cannot remove an unfinished file yet"),
    }
}

/// Deletes the files that flushes started but never committed (they failed
/// or the process died first). Readers never see them; this reclaims their
/// space. A file that cannot be deleted now keeps its record for next time.
pub async fn remove_uncommitted(store: &HotStore, storages: &Storages) -> Result<usize> {
    let _removing = storages.removing_files().await;
    let mut removed = 0;
    for (key, _) in store.meta_scan(meta_keys::PENDING_FILES)? {
        let Some((storage, path)) = meta_keys::split_pending_file(&key) else {
            continue;
        };
        let (storage, path) = (storage.to_string(), Path::from(path));
        let deleted = match storages.open(&storage) {
            Ok(cold) => match cold.store.delete(&path).await {
                Ok(()) | Err(kalamdb_filestore::object_store::Error::NotFound { .. }) => true,
                Err(e) => {
                    warn!(%storage, file = %path, error = %e, "cannot remove an uncommitted file");
                    false
                }
            },
            // The storage is gone, and its files with it as far as we care.
            Err(_) => true,
        };
        if deleted {
            let mut batch = store.batch();
            batch.delete_meta(&key);
            store.write(batch)?;
            removed += 1;
            info!(%storage, file = %path, "removed a file written by an unfinished flush");
        }
    }
    Ok(removed)
}

/// Removes a dropped table's files, given its manifest entries (already
/// deleted from the hot tier), and the `manifest.json` beside them.
/// Failures are logged: leftover files are unreachable.
pub async fn remove_table_files(
    store: &HotStore,
    cold: &ColdStore,
    table: &str,
    entries: &[ManifestEntry],
) {
    for path in table_file_paths(entries) {
        match cold.store.delete(&path).await {
            Ok(()) | Err(kalamdb_filestore::object_store::Error::NotFound { .. }) => {
                let mut batch = store.batch();
                batch.delete_meta(&pending_key(&cold.id, &path));
                if let Err(e) = store.write(batch) {
                    warn!(%table, file = %path, error = %e, "cannot clear a removal record");
                }
            }
            Err(e) => {
                warn!(%table, file = %path, error = %e, "cannot remove a dropped table's file yet; it is removed at the next start")
            }
        }
    }
}

/// Every file of a table's manifest entries, and the `manifest.json` copy
/// in each of their directories.
pub fn table_file_paths(entries: &[ManifestEntry]) -> Vec<Path> {
    let mut dirs = BTreeSet::new();
    let mut paths: Vec<Path> = entries
        .iter()
        .map(|entry| {
            if let Some((dir, _)) = entry.path.rsplit_once('/') {
                dirs.insert(dir.to_string());
            }
            Path::from(entry.path.as_str())
        })
        .collect();
    paths.extend(
        dirs.iter()
            .map(|dir| Path::from(dir.as_str()).join(MANIFEST_FILE)),
    );
    paths
}

/// Every committed file of one table with its scope's name: the user id
/// for USER tables, `shared` otherwise (`system.manifest`, `STORAGE CHECK`).
pub fn table_manifest_by_scope(
    store: &HotStore,
    def: &TableDef,
) -> Result<Vec<(String, ManifestEntry)>> {
    let user_scoped = def.table_type == TableType::User;
    store
        .meta_scan(&meta_keys::table_manifests(def.uid))?
        .into_iter()
        .map(|(key, raw)| {
            let scope = &key[meta_keys::MANIFESTS.len()..];
            let (_, user) = kalamdb_store::keys::scope_of(scope, user_scoped)?;
            let entry = serde_json::from_slice::<ManifestEntry>(&raw)?;
            Ok((user.unwrap_or_else(|| "shared".to_string()), entry))
        })
        .collect()
}

/// Every committed file of one table (all scopes).
pub fn table_manifest_entries(store: &HotStore, table_uid: u64) -> Result<Vec<ManifestEntry>> {
    store
        .meta_scan(&meta_keys::table_manifests(table_uid))?
        .into_iter()
        .map(|(_, raw)| serde_json::from_slice::<ManifestEntry>(&raw).map_err(CoreError::from))
        .collect()
}
