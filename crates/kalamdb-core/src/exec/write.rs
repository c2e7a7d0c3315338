//! Turning rows into new versions in the hot tier.

use super::Session;
use crate::catalog::TableDef;
use crate::cold::flush::flushed_through;
use crate::cold::manifest_entries;
use crate::cold::merge::load_scope;
use crate::error::{CoreError, Result};
use crate::provider::scope_key_for;
use kalamdb_commons::Value;
use kalamdb_filestore::{to_hex, ManifestEntry};
use kalamdb_store::{RowVersion, ScopeKey};
use std::collections::HashSet;

/// How a value reads in an error message.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::I16(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::I64(v) | Value::Timestamp(v) => v.to_string(),
        Value::F32(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        Value::Decimal(v) => v.to_string(),
        Value::Text(s) => format!("'{}'", s.chars().take(64).collect::<String>()),
        Value::Bytes(b) => format!("<{} bytes>", b.len()),
        Value::Date(d) => d.to_string(),
    }
}

impl Session<'_> {
    /// The scope this caller writes in `def`.
    pub(super) fn write_scope(&self, def: &TableDef) -> Result<ScopeKey> {
        scope_key_for(def, &self.caller)
    }
}

/// Inserts rows whose primary keys must not exist yet, atomically: either
/// every row is written or none is.
pub async fn write_new_rows(s: &Session<'_>, def: &TableDef, rows: Vec<Vec<Value>>) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let scope = s.write_scope(def)?;
    let pk = def.pk_index();
    let store = &s.ctx.store;
    s.ctx.check_hot_budget()?;
    let _guard = s.ctx.lock_scope(&scope).await;
    let mut seen = HashSet::with_capacity(rows.len());
    let duplicate = |key: &Value| {
        CoreError::AlreadyExists(format!(
            "duplicate primary key: {} = {} already exists in '{}'",
            def.primary_key,
            display_value(key),
            def.qualified_name()
        ))
    };
    for row in &rows {
        if !seen.insert(scope.pk_prefix(&row[pk])?) {
            return Err(duplicate(&row[pk]));
        }
    }
    let keys: Vec<&Value> = rows.iter().map(|row| &row[pk]).collect();
    // Hot first, then the manifest: a flush that commits in between has its
    // file listed, so a key moved by it is found in the file.
    let latest = store.latest_versions(&scope, &keys)?;
    let entries = manifest_entries(&store.snapshot(), &scope)?;
    // Hot versions a committed flush moved to files are superseded by them.
    let flushed = flushed_through(&entries);
    let mut not_hot = Vec::new();
    for (key, latest) in keys.iter().zip(latest) {
        match latest {
            Some((seq, _)) if seq <= flushed => not_hot.push(*key),
            Some((_, version)) if !version.deleted => return Err(duplicate(key)),
            Some(_) => {}
            None => not_hot.push(*key),
        }
    }
    if let Some(key) = live_in_cold(s, def, &scope, entries, &not_hot).await? {
        return Err(duplicate(key));
    }
    let count = rows.len() as u64;
    let first_seq = store.next_seqs(count)?;
    let mut batch = store.batch();
    let mut bytes = 0;
    for (i, values) in rows.into_iter().enumerate() {
        let version = RowVersion {
            deleted: false,
            schema_version: def.schema_version,
            values,
        };
        bytes += batch.put_version(&scope, &version.values[pk], first_seq + i as u64, &version)?;
    }
    store.write(batch)?;
    s.ctx.wrote(def, count, bytes);
    Ok(())
}

/// The first of `keys` whose newest committed (Parquet) version is a live
/// row. Only files whose key range may hold a key are opened.
async fn live_in_cold<'k>(
    s: &Session<'_>,
    def: &TableDef,
    scope: &ScopeKey,
    entries: Vec<ManifestEntry>,
    keys: &[&'k Value],
) -> Result<Option<&'k Value>> {
    if keys.is_empty() || entries.is_empty() {
        return Ok(None);
    }
    let mut hex = Vec::with_capacity(keys.len());
    for key in keys {
        hex.push(to_hex(&scope.pk_prefix(key)?));
    }
    if !entries.iter().any(|e| hex.iter().any(|k| e.may_contain(k))) {
        return Ok(None);
    }
    let wanted: Vec<Value> = keys.iter().map(|k| (*k).clone()).collect();
    let (ctx, def_owned, scope_owned) = (s.ctx.clone(), def.clone(), scope.clone());
    let cold = tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        load_scope(
            &*ctx.cold_for(&def_owned)?,
            &handle,
            &def_owned,
            &scope_owned,
            &entries,
            Some(&wanted),
        )
    })
    .await
    .map_err(|e| CoreError::Internal(format!("cold lookup failed: {e}")))??;
    for key in keys {
        let encoded = scope.pk_prefix(key)?;
        if cold.get(&encoded).is_some_and(|v| !v.deleted) {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Writes new versions (updates or tombstones) of rows the caller already
/// read under the scope lock.
pub fn write_versions(
    s: &Session<'_>,
    def: &TableDef,
    scope: &ScopeKey,
    versions: Vec<RowVersion>,
) -> Result<()> {
    if versions.is_empty() {
        return Ok(());
    }
    s.ctx.check_hot_budget()?;
    let pk = def.pk_index();
    let store = &s.ctx.store;
    let count = versions.len() as u64;
    let first_seq = store.next_seqs(count)?;
    let mut batch = store.batch();
    let mut bytes = 0;
    for (i, version) in versions.iter().enumerate() {
        bytes += batch.put_version(scope, &version.values[pk], first_seq + i as u64, version)?;
    }
    store.write(batch)?;
    s.ctx.wrote(def, count, bytes);
    Ok(())
}
