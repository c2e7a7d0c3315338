//! Catalog persistence and the in-memory cache.

use super::model::{NamespaceDef, TableDef};
use super::schemas::{SchemaHistory, SchemaVersion};
use crate::error::{CoreError, Result};
use kalamdb_store::{meta_keys, HotStore, ScopeKey};
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most schema versions (ALTER TABLEs, plus the first) a table may have.
pub const MAX_SCHEMA_VERSIONS: u32 = 10_000;

#[derive(Default)]
struct State {
    namespaces: BTreeMap<String, Arc<NamespaceDef>>,
    tables: BTreeMap<(String, String), Arc<TableDef>>,
    next_uid: u64,
}

pub struct Catalog {
    store: Arc<HotStore>,
    state: RwLock<State>,
    /// Serializes catalog changes so read-check-write sequences are atomic.
    ddl: Mutex<()>,
    /// Counts changes, so what was built from the catalog (a cached plan)
    /// can tell whether it may be stale.
    generation: AtomicU64,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    /// Loads every namespace and table definition from the hot tier.
    pub fn load(store: Arc<HotStore>) -> Result<Self> {
        let mut state = State {
            next_uid: 1,
            ..State::default()
        };
        for (_, raw) in store.meta_scan(meta_keys::NAMESPACES)? {
            let ns: NamespaceDef = serde_json::from_slice(&raw)?;
            state.namespaces.insert(ns.name.to_string(), Arc::new(ns));
        }
        let mut histories: HashMap<u64, Vec<SchemaVersion>> = HashMap::new();
        for (key, raw) in store.meta_scan(meta_keys::SCHEMAS)? {
            let uid = key
                .get(meta_keys::SCHEMAS.len()..meta_keys::SCHEMAS.len() + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .ok_or(CoreError::Corrupt("schema version key"))?;
            histories
                .entry(uid)
                .or_default()
                .push(serde_json::from_slice(&raw)?);
        }
        // Records from before schema versions: numbered and written once.
        let mut upgrade = store.batch();
        let mut upgraded = false;
        for (_, raw) in store.meta_scan(meta_keys::TABLES)? {
            let mut table: TableDef = serde_json::from_slice(&raw)?;
            let mut versions = histories.remove(&table.uid).unwrap_or_default();
            if table.columns.iter().any(|c| c.id == 0) {
                for (i, column) in table.columns.iter_mut().enumerate() {
                    column.id = i as u32 + 1;
                }
                table.next_column_id = table.columns.len() as u32 + 1;
                upgrade.put_meta(
                    &meta_keys::table(table.namespace.as_str(), table.name.as_str()),
                    &serde_json::to_vec(&table)?,
                );
                upgraded = true;
            }
            if !versions.iter().any(|v| v.version == table.schema_version) {
                let first = first_version(&table);
                upgrade.put_meta(
                    &meta_keys::schema_version(table.uid, first.version),
                    &serde_json::to_vec(&first)?,
                );
                versions.push(first);
                upgraded = true;
            }
            table.schemas = Arc::new(SchemaHistory::of(versions));
            state.tables.insert(
                (table.namespace.to_string(), table.name.to_string()),
                Arc::new(table),
            );
        }
        if upgraded {
            store.write(upgrade)?;
        }
        if let Some(raw) = store.meta_get(meta_keys::NEXT_TABLE_UID)? {
            let bytes: [u8; 8] = raw
                .as_slice()
                .try_into()
                .map_err(|_| CoreError::Corrupt("table uid counter"))?;
            state.next_uid = u64::from_be_bytes(bytes);
        }
        Ok(Self {
            store,
            state: RwLock::new(state),
            ddl: Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// Changes so far. Read it before reading definitions: anything built
    /// from them is current while this value is.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Marks a change, after the in-memory state has it.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn namespace(&self, name: &str) -> Option<Arc<NamespaceDef>> {
        self.state.read().namespaces.get(name).cloned()
    }

    pub fn namespaces(&self) -> Vec<Arc<NamespaceDef>> {
        self.state.read().namespaces.values().cloned().collect()
    }

    pub fn table(&self, ns: &str, table: &str) -> Option<Arc<TableDef>> {
        self.state
            .read()
            .tables
            .get(&(ns.to_string(), table.to_string()))
            .cloned()
    }

    pub fn tables(&self) -> Vec<Arc<TableDef>> {
        self.state.read().tables.values().cloned().collect()
    }

    pub fn tables_in(&self, ns: &str) -> Vec<Arc<TableDef>> {
        self.state
            .read()
            .tables
            .range((ns.to_string(), String::new())..)
            .take_while(|((n, _), _)| n == ns)
            .map(|(_, t)| t.clone())
            .collect()
    }

    /// Creates a namespace; returns false if it existed.
    pub fn create_namespace(&self, ns: NamespaceDef) -> Result<bool> {
        let _ddl = self.ddl.lock();
        if self.namespace(ns.name.as_str()).is_some() {
            return Ok(false);
        }
        let mut batch = self.store.batch();
        batch.put_meta(
            &meta_keys::namespace(ns.name.as_str()),
            &serde_json::to_vec(&ns)?,
        );
        self.store.write(batch)?;
        self.state
            .write()
            .namespaces
            .insert(ns.name.to_string(), Arc::new(ns));
        self.changed();
        Ok(true)
    }

    /// Drops a namespace and (the caller has checked CASCADE) its tables and
    /// their hot rows, in one batch; returns the dropped tables. `also_put`
    /// are `meta` keys written in the same batch (records of the files to
    /// remove, so a crash before they are gone leaves them to the next start).
    pub fn drop_namespace(&self, name: &str, also_put: &[Vec<u8>]) -> Result<Vec<Arc<TableDef>>> {
        let _ddl = self.ddl.lock();
        let tables = self.tables_in(name);
        let mut batch = self.store.batch();
        for key in also_put {
            batch.put_meta(key, b"");
        }
        for table in &tables {
            batch.delete_meta(&meta_keys::table(name, table.name.as_str()));
            batch.delete_rows_with_prefix(&ScopeKey::table_prefix(table.uid));
            batch.delete_changes_of_table(table.uid);
            batch.delete_table_manifests(table.uid);
            batch.delete_meta_with_prefix(&meta_keys::table_schemas(table.uid));
        }
        batch.delete_meta(&meta_keys::namespace(name));
        self.store.write(batch)?;
        let mut state = self.state.write();
        for table in &tables {
            state
                .tables
                .remove(&(name.to_string(), table.name.to_string()));
        }
        state.namespaces.remove(name);
        drop(state);
        self.changed();
        Ok(tables)
    }

    /// Creates a table, assigning its uid; returns false if it existed.
    pub fn create_table(&self, mut table: TableDef) -> Result<(bool, Arc<TableDef>)> {
        let _ddl = self.ddl.lock();
        if let Some(existing) = self.table(table.namespace.as_str(), table.name.as_str()) {
            return Ok((false, existing));
        }
        if self.namespace(table.namespace.as_str()).is_none() {
            return Err(CoreError::NamespaceNotFound(table.namespace.to_string()));
        }
        let uid = self.state.read().next_uid;
        table.uid = uid;
        let first = first_version(&table);
        let mut batch = self.store.batch();
        batch.put_meta(
            &meta_keys::table(table.namespace.as_str(), table.name.as_str()),
            &serde_json::to_vec(&table)?,
        );
        // Range deletes first: a batch applies in order.
        batch.delete_meta_with_prefix(&meta_keys::table_schemas(uid));
        batch.put_meta(
            &meta_keys::schema_version(uid, first.version),
            &serde_json::to_vec(&first)?,
        );
        batch.put_meta(meta_keys::NEXT_TABLE_UID, &(uid + 1).to_be_bytes());
        // A uid is never reused, but clear the range anyway in case a crash
        // left rows of a half-created table.
        batch.delete_rows_with_prefix(&ScopeKey::table_prefix(uid));
        batch.delete_changes_of_table(uid);
        self.store.write(batch)?;
        table.schemas = Arc::new(SchemaHistory::of([first]));
        let table = Arc::new(table);
        let mut state = self.state.write();
        state.next_uid = uid + 1;
        state.tables.insert(
            (table.namespace.to_string(), table.name.to_string()),
            table.clone(),
        );
        drop(state);
        self.changed();
        Ok((true, table))
    }

    /// Replaces `old` (still the table's current definition, else a
    /// concurrent change wins and this fails) by `new`, one schema version
    /// later, recording the version with `change` (its statement). `new`
    /// may have another name (`RENAME TO`). Returns the definition now in
    /// force.
    pub fn alter_table(
        &self,
        old: &TableDef,
        mut new: TableDef,
        change: String,
    ) -> Result<Arc<TableDef>> {
        let _ddl = self.ddl.lock();
        let current = self.table(old.namespace.as_str(), old.name.as_str());
        if current.as_ref().map(|t| (t.uid, t.schema_version))
            != Some((old.uid, old.schema_version))
        {
            return Err(CoreError::exec(format!(
                "table '{}' was changed or dropped meanwhile; run the statement again",
                old.qualified_name()
            )));
        }
        if old.schema_version >= MAX_SCHEMA_VERSIONS {
            // Every version stays readable (rows and files may name it), so
            // the history only grows: bounded here.
            return Err(CoreError::ResourceExhausted(format!(
                "table '{}' has {MAX_SCHEMA_VERSIONS} schema versions, the most a table may have",
                old.qualified_name()
            )));
        }
        let renamed = (&new.namespace, &new.name) != (&old.namespace, &old.name);
        if renamed
            && self
                .table(new.namespace.as_str(), new.name.as_str())
                .is_some()
        {
            return Err(CoreError::AlreadyExists(format!(
                "table '{}' already exists",
                new.qualified_name()
            )));
        }
        new.uid = old.uid;
        new.schema_version = old.schema_version + 1;
        new.schemas = old.schemas.clone();
        let version = SchemaVersion {
            version: new.schema_version,
            columns: new.columns.clone(),
            created_at: new.updated_at,
            change,
        };
        let mut batch = self.store.batch();
        if renamed {
            batch.delete_meta(&meta_keys::table(old.namespace.as_str(), old.name.as_str()));
        }
        batch.put_meta(
            &meta_keys::table(new.namespace.as_str(), new.name.as_str()),
            &serde_json::to_vec(&new)?,
        );
        batch.put_meta(
            &meta_keys::schema_version(new.uid, version.version),
            &serde_json::to_vec(&version)?,
        );
        self.store.write(batch)?;
        // Before the definition is handed out: no row of the version can
        // be written before the history holds it.
        new.schemas.add(version);
        let new = Arc::new(new);
        let mut state = self.state.write();
        if renamed {
            state
                .tables
                .remove(&(old.namespace.to_string(), old.name.to_string()));
        }
        state.tables.insert(
            (new.namespace.to_string(), new.name.to_string()),
            new.clone(),
        );
        drop(state);
        self.changed();
        Ok(new)
    }

    /// Drops a table with its hot rows in one batch; `also_put` as for
    /// [`Self::drop_namespace`].
    pub fn drop_table(
        &self,
        ns: &str,
        name: &str,
        also_put: &[Vec<u8>],
    ) -> Result<Option<Arc<TableDef>>> {
        let _ddl = self.ddl.lock();
        let Some(table) = self.table(ns, name) else {
            return Ok(None);
        };
        let mut batch = self.store.batch();
        for key in also_put {
            batch.put_meta(key, b"");
        }
        batch.delete_meta(&meta_keys::table(ns, name));
        batch.delete_rows_with_prefix(&ScopeKey::table_prefix(table.uid));
        batch.delete_changes_of_table(table.uid);
        batch.delete_table_manifests(table.uid);
        batch.delete_meta_with_prefix(&meta_keys::table_schemas(table.uid));
        self.store.write(batch)?;
        self.state
            .write()
            .tables
            .remove(&(ns.to_string(), name.to_string()));
        self.changed();
        Ok(Some(table))
    }
}

/// The version a table is created with.
fn first_version(table: &TableDef) -> SchemaVersion {
    SchemaVersion {
        version: table.schema_version,
        columns: table.columns.clone(),
        created_at: table.created_at,
        change: "CREATE TABLE".into(),
    }
}
