//! What an ALTER TABLE must know of the rows a table already holds, in
//! every scope and both tiers: whether any visible row has NULL in a
//! column (`SET NOT NULL`), or whether there is any row at all (`ADD
//! COLUMN ... NOT NULL` without a default).

use crate::catalog::TableDef;
use crate::error::Result;
use crate::read::{FileBatch, RowSink, ScopeView};
use crate::services::Services;
use kalamdb_commons::{TableType, Value};
use kalamdb_store::{keys::scope_of, meta_keys, ScopeKey, StoreSnapshot};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::runtime::Handle;

/// Whether some visible row of `def` has NULL in column `column` (any
/// row at all when `None`). Reads one snapshot, on a blocking thread.
pub async fn any_row(
    services: &Arc<Services>,
    def: &Arc<TableDef>,
    column: Option<usize>,
) -> Result<bool> {
    let services = services.clone();
    let def = def.clone();
    let handle = Handle::current();
    crate::background::run("kalamdb-alter", move || {
        let cold = services.storages.for_table(&def)?;
        let store = services.hot.store();
        let snapshot = store.snapshot();
        for scope in scopes(&snapshot, &def)? {
            let view = ScopeView::open(&snapshot, &def, &scope)?;
            let mut sink = Finder {
                column,
                found: false,
            };
            view.scan(&cold, &handle, &mut sink)?;
            if sink.found {
                return Ok(true);
            }
        }
        Ok(false)
    })
    .await
}

/// Every scope of `def` with hot versions or committed files in `snapshot`.
fn scopes(snapshot: &StoreSnapshot<'_>, def: &TableDef) -> Result<Vec<ScopeKey>> {
    let user_scoped = def.table_type != TableType::Shared;
    let mut scopes: BTreeSet<Vec<u8>> = BTreeSet::new();
    let mut current: Vec<u8> = Vec::new();
    snapshot.scan_versions(&ScopeKey::table_prefix(def.uid), &mut |v| {
        // Scope components are terminated: a key under the current scope's
        // bytes is in it.
        if current.is_empty() || !v.key.starts_with(&current) {
            let (len, _) = scope_of(v.key, user_scoped)?;
            current = v.key[..len].to_vec();
            scopes.insert(current.clone());
        }
        Ok(true)
    })?;
    for (key, _) in snapshot.meta_scan(&meta_keys::table_manifests(def.uid))? {
        scopes.insert(meta_keys::manifest_scope(&key, user_scoped)?.to_vec());
    }
    Ok(scopes
        .into_iter()
        .map(|bytes| ScopeKey::from_key_prefix(&bytes))
        .collect())
}

/// Stops at the first row it looks for.
struct Finder {
    column: Option<usize>,
    found: bool,
}

impl RowSink for Finder {
    fn row(&mut self, _seq: u64, values: &[Value]) -> Result<bool> {
        self.found = self
            .column
            .is_none_or(|c| values.get(c).is_none_or(Value::is_null));
        Ok(!self.found)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool> {
        self.found = (from..rows.len())
            .any(|r| !rows.is_deleted(r) && self.column.is_none_or(|c| rows.is_null(c, r)));
        Ok(!self.found)
    }
}
