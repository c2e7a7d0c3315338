//! The storage registry: the rows of `system.storages`, persisted in the
//! hot tier's `meta` column family, and the opened object stores, built
//! once per storage and rebuilt after an ALTER.

use super::ColdStore;
use crate::error::{CoreError, Result};
#[cfg(feature = "test-support")]
use kalamdb_filestore::faulty::{Faults, FaultyStore};
#[cfg(feature = "test-support")]
use kalamdb_filestore::CachedFiles;
use kalamdb_filestore::{FileCache, StorageDef, LOCAL_STORAGE};
use kalamdb_store::{meta_keys, HotStore};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

pub struct Storages {
    store: Arc<HotStore>,
    data_dir: PathBuf,
    defs: RwLock<BTreeMap<String, Arc<StorageDef>>>,
    opened: Mutex<HashMap<String, Arc<ColdStore>>>,
    /// What readers keep of every storage's files.
    file_cache: Arc<FileCache>,
    /// Serializes changes so "check, then write" is atomic.
    ddl: Mutex<()>,
    /// Removers of committed files (dropped tables) hold it shared; a
    /// backup holds it exclusively, so no file its checkpoint names goes
    /// away before it is copied.
    removals: tokio::sync::RwLock<()>,
}

impl std::fmt::Debug for Storages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storages").finish_non_exhaustive()
    }
}

impl Storages {
    /// Loads every storage, creating `local` at first start.
    pub fn load(
        store: Arc<HotStore>,
        data_dir: PathBuf,
        now: i64,
        file_cache: Arc<FileCache>,
    ) -> Result<Self> {
        let mut defs = BTreeMap::new();
        for (_, raw) in store.meta_scan(meta_keys::STORAGES)? {
            let def: StorageDef = serde_json::from_slice(&raw)?;
            defs.insert(def.id.clone(), Arc::new(def));
        }
        let storages = Self {
            store,
            data_dir,
            defs: RwLock::new(defs),
            opened: Mutex::new(HashMap::new()),
            file_cache,
            ddl: Mutex::new(()),
            removals: tokio::sync::RwLock::new(()),
        };
        if storages.get(LOCAL_STORAGE).is_none() {
            storages.put(StorageDef::local(now))?;
        }
        Ok(storages)
    }

    pub fn get(&self, id: &str) -> Option<Arc<StorageDef>> {
        self.defs.read().get(id).cloned()
    }

    pub fn all(&self) -> Vec<Arc<StorageDef>> {
        self.defs.read().values().cloned().collect()
    }

    fn put(&self, def: StorageDef) -> Result<()> {
        let mut batch = self.store.batch();
        batch.put_meta(&meta_keys::storage(&def.id), &serde_json::to_vec(&def)?);
        self.store.write(batch)?;
        self.opened.lock().remove(&def.id);
        self.defs.write().insert(def.id.clone(), Arc::new(def));
        Ok(())
    }

    /// Adds a storage after validating it; false if the id is taken.
    pub fn create(&self, def: StorageDef) -> Result<bool> {
        let _ddl = self.ddl.lock();
        if self.get(&def.id).is_some() {
            return Ok(false);
        }
        def.validate()?;
        self.put(def)?;
        Ok(true)
    }

    /// Replaces a storage's definition with `change(old)`, validated.
    pub fn alter(
        &self,
        id: &str,
        change: impl FnOnce(&StorageDef) -> Result<StorageDef>,
    ) -> Result<()> {
        let _ddl = self.ddl.lock();
        let old = self
            .get(id)
            .ok_or_else(|| CoreError::exec(format!("storage '{id}' not found")))?;
        let new = change(&old)?;
        new.validate()?;
        self.put(new)
    }

    /// Runs `f` (e.g. creating a table on storage `id`) while no storage
    /// can be dropped, after checking that `id` exists.
    pub fn while_exists<T>(&self, id: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let _ddl = self.ddl.lock();
        if self.get(id).is_none() {
            return Err(CoreError::exec(format!("storage '{id}' not found")));
        }
        f()
    }

    /// Removes a storage; `in_use` is asked under the registry's lock.
    pub fn drop_storage(&self, id: &str, in_use: impl FnOnce() -> Option<String>) -> Result<bool> {
        let _ddl = self.ddl.lock();
        if self.get(id).is_none() {
            return Ok(false);
        }
        if id == LOCAL_STORAGE {
            return Err(CoreError::PermissionDenied(
                "the 'local' storage cannot be dropped".into(),
            ));
        }
        if let Some(tables) = in_use() {
            return Err(CoreError::exec(format!(
                "storage '{id}' is used by tables {tables}; drop or move them first"
            )));
        }
        let mut batch = self.store.batch();
        batch.delete_meta(&meta_keys::storage(id));
        self.store.write(batch)?;
        self.opened.lock().remove(id);
        self.defs.write().remove(id);
        Ok(true)
    }

    /// Wraps storage `id` in a fault-injecting store (tests of what flushes
    /// and reads do when storage fails); returns the switches.
    #[cfg(feature = "test-support")]
    pub fn inject_faults(&self, id: &str) -> Result<Arc<Faults>> {
        let cold = self.open(id)?;
        let faults = Arc::new(Faults::default());
        let store: Arc<dyn kalamdb_filestore::object_store::ObjectStore> =
            Arc::new(FaultyStore::new(cold.store.clone(), faults.clone()));
        let faulty = ColdStore {
            store: store.clone(),
            // Nothing kept: every read reaches the faults.
            files: CachedFiles {
                store,
                cache: Arc::new(FileCache::new(0)),
                storage: cold.files.storage.clone(),
            },
            ..(*cold).clone()
        };
        self.opened.lock().insert(id.to_string(), Arc::new(faulty));
        Ok(faults)
    }

    /// The server's data directory (local storages and exports live under it).
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Held while committed files are deleted; waits for a running backup.
    pub async fn removing_files(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.removals.read().await
    }

    /// [`Self::removing_files`] without waiting: `None` while a backup runs.
    pub fn try_removing_files(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        self.removals.try_read().ok()
    }

    /// Held by a backup: no committed file is deleted meanwhile.
    pub async fn pause_removals(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.removals.write().await
    }

    /// The opened storage a table's files live in.
    pub fn for_table(&self, def: &crate::catalog::TableDef) -> Result<Arc<ColdStore>> {
        self.open(&def.storage_id)
    }

    /// The opened storage `id`.
    pub fn open(&self, id: &str) -> Result<Arc<ColdStore>> {
        if let Some(cold) = self.opened.lock().get(id) {
            return Ok(cold.clone());
        }
        let def = self
            .get(id)
            .ok_or_else(|| CoreError::Internal(format!("storage '{id}' does not exist")))?;
        let cold = Arc::new(ColdStore::open(
            &def,
            &self.data_dir,
            self.file_cache.clone(),
        )?);
        self.opened.lock().insert(id.to_string(), cold.clone());
        Ok(cold)
    }
}
