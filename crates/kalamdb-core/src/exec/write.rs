//! Turning rows into new versions in the hot tier.

use super::Session;
use crate::catalog::TableDef;
use crate::cold::ColdStore;
use crate::error::{CoreError, Result};
use crate::provider::scope_key_for;
use crate::read::{ScopeFiles, ScopeView, Versions};
use kalamdb_commons::Value;
use kalamdb_store::{ChangeKind, RowChange, RowVersion, ScopeKey};
use std::sync::Arc;

/// How a value reads in an error message.
pub fn display_value(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Bool(b) => b.to_string(),
        Value::I16(v) => v.to_string(),
        Value::I32(v) => v.to_string(),
        Value::I64(v) | Value::Timestamp(v) => v.to_string(),
        Value::Time(v) => format!("'{}'", kalamdb_commons::time_of_day(*v)),
        Value::F32(v) => v.to_string(),
        Value::F64(v) => v.to_string(),
        Value::Decimal(v) => v.to_string(),
        Value::Text(s) => format!("'{}'", kalamdb_commons::clip(s, 64)),
        Value::Bytes(b) => format!("<{} bytes>", b.len()),
        Value::Date(d) => d.to_string(),
    }
}

/// Taken under the scope's lock and held until the write commits: holds
/// off an ALTER TABLE meanwhile, so its checks of the existing rows and its
/// commit see every write or none of it.
/// A table dropped meanwhile (DROP TABLE holds the gate exclusively) is an
/// error: its rows must not land after it is gone.
pub(super) async fn schema_gate(def: &TableDef) -> Result<tokio::sync::RwLockReadGuard<'_, ()>> {
    let guard = def.schemas.gate.read().await;
    if def.schemas.is_dropped() {
        return Err(CoreError::TableNotFound(def.qualified_name()));
    }
    Ok(guard)
}

/// [`schema_gate`] for a statement that reads the rows it changes (UPDATE,
/// DELETE): its query was planned with the columns of `def`, so any
/// ALTER since makes it run again ([`CoreError::SchemaChanged`]).
pub(super) async fn current_schema(def: &TableDef) -> Result<tokio::sync::RwLockReadGuard<'_, ()>> {
    let guard = schema_gate(def).await?;
    if def.schemas.latest_version() != def.schema_version {
        return Err(CoreError::SchemaChanged(def.qualified_name()));
    }
    Ok(guard)
}

/// A planning error of a statement whose table an ALTER changed
/// meanwhile (a column it named is gone): it runs again instead.
pub(super) fn overtaken(def: &TableDef, error: CoreError) -> CoreError {
    if def.schemas.latest_version() != def.schema_version {
        CoreError::SchemaChanged(def.qualified_name())
    } else {
        error
    }
}

/// [`check_fits`] for stored versions, each of its own schema version (a
/// transaction's, written by statements that may have planned under
/// different versions).
pub(super) fn check_fits_versions<'r>(
    def: &TableDef,
    rows: impl IntoIterator<Item = &'r RowVersion>,
) -> Result<()> {
    let latest = def.schemas.latest_version();
    let Some(target) = def.schemas.get(latest) else {
        return Err(CoreError::SchemaChanged(def.qualified_name()));
    };
    for row in rows {
        let values = if row.schema_version == latest {
            row.values.clone()
        } else {
            def.schemas
                .map(row.schema_version, latest)?
                .apply(row.values.clone())
        };
        let breaks = values
            .iter()
            .zip(&target.columns)
            .any(|(value, column)| value.is_null() && !column.nullable);
        if breaks {
            return Err(CoreError::TransactionConflict(format!(
                "could not commit: '{}' was altered (a column became NOT NULL) after this \
                 transaction wrote a NULL there; nothing was applied",
                def.qualified_name()
            )));
        }
    }
    Ok(())
}

/// Under the schema gate: whether rows built under `def` may still commit.
/// An ALTER TABLE may have committed since they were planned; they are
/// still written under `def`'s version (readers map them by column id, so
/// they read as if written just before the change) unless the newest
/// version makes one of them break a NOT NULL it added (`SET NOT NULL`, a
/// NOT NULL column added without a fill): then nothing is written and the
/// statement runs again under the new schema ([`CoreError::SchemaChanged`]).
pub(super) fn check_fits<'r>(
    def: &TableDef,
    rows: impl IntoIterator<Item = &'r [Value]>,
) -> Result<()> {
    let latest = def.schemas.latest_version();
    if latest == def.schema_version {
        return Ok(());
    }
    let map = def.schemas.map(def.schema_version, latest)?;
    let Some(target) = def.schemas.get(latest) else {
        return Err(CoreError::SchemaChanged(def.qualified_name()));
    };
    for row in rows {
        let mapped = map.apply(row.to_vec());
        let breaks = mapped
            .iter()
            .zip(&target.columns)
            .any(|(value, column)| value.is_null() && !column.nullable);
        if breaks {
            return Err(CoreError::SchemaChanged(def.qualified_name()));
        }
    }
    Ok(())
}

impl Session<'_> {
    /// The scope this caller writes in `def`.
    pub(super) fn write_scope(&self, def: &TableDef) -> Result<ScopeKey> {
        scope_key_for(def, &self.caller)
    }
}

/// Inserts rows whose primary keys must not exist yet, atomically: either
/// every row is written or none is.
pub async fn write_new_rows(
    s: &Session<'_>,
    def: &Arc<TableDef>,
    rows: Vec<Vec<Value>>,
) -> Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let scope = s.write_scope(def)?;
    if let Some(txn) = &s.txn {
        return txn.insert(s.services, def, &scope, rows).await;
    }
    let pk = def.pk_index();
    let store = s.services.hot.store();
    s.services.hot.check_budget()?;
    let _guard = s.services.hot.lock_scope(&scope).await;
    let _schema = schema_gate(def).await?;
    check_fits(def, rows.iter().map(Vec::as_slice))?;
    let duplicate = |key: &Value| {
        CoreError::AlreadyExists(format!(
            "duplicate primary key: {} = {} already exists in '{}'",
            def.primary_key,
            display_value(key),
            def.qualified_name()
        ))
    };
    let keys = EncodedKeys::of(&scope, rows.iter().map(|row| &row[pk]))?;
    let prefixes = keys.list();
    if let Some(i) = first_repeated(&prefixes) {
        return Err(duplicate(&rows[i][pk]));
    }
    // One snapshot for both tiers: a flush that commits meanwhile is seen
    // wholly or not at all. The scope lock keeps other writers out.
    let (files, not_hot) = {
        let snapshot = store.snapshot();
        let view = ScopeView::open(&snapshot, def, &scope)?;
        let mut not_hot = Vec::new();
        for (i, latest) in view.hot_versions(&prefixes)?.into_iter().enumerate() {
            match latest {
                Some(version) if !version.deleted => return Err(duplicate(&rows[i][pk])),
                // A tombstone newer than every file: the key is free.
                Some(_) => {}
                None => not_hot.push(i),
            }
        }
        (view.into_files(), not_hot)
    };
    if let Some(i) = live_in_cold(s, def, &scope, files, &rows, &prefixes, &not_hot).await? {
        return Err(duplicate(&rows[i][pk]));
    }
    let count = rows.len() as u64;
    let first_seq = store.next_seqs(count)?;
    let mut batch = store.batch();
    let mut bytes = 0;
    let mut changes = Vec::with_capacity(rows.len());
    for (i, (values, prefix)) in rows.into_iter().zip(prefixes).enumerate() {
        let change = RowChange {
            seq: first_seq + i as u64,
            kind: ChangeKind::Insert,
            new: Some(RowVersion {
                deleted: false,
                schema_version: def.schema_version,
                values,
            }),
            old: None,
            old_seq: 0,
        };
        bytes += batch.put_inserted(
            &scope,
            prefix,
            change.seq,
            change.new.as_ref().expect("set"),
        );
        changes.push(change);
    }
    store.write(batch)?;
    s.services.hot.wrote(def, count, bytes);
    // Still under the scope lock: subscribers get the scope's changes in
    // commit order.
    s.services.live.publish(def, &scope, changes);
    Ok(())
}

/// The encoded primary-key prefixes of a statement's rows, in one buffer.
struct EncodedKeys {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl EncodedKeys {
    fn of<'v>(scope: &ScopeKey, pks: impl ExactSizeIterator<Item = &'v Value>) -> Result<Self> {
        let mut keys = Self {
            bytes: Vec::with_capacity(pks.len() * (scope.as_bytes().len() + 9)),
            ends: Vec::with_capacity(pks.len()),
        };
        for pk in pks {
            scope.append_pk_prefix(&mut keys.bytes, pk)?;
            keys.ends.push(keys.bytes.len());
        }
        Ok(keys)
    }

    fn list(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let key = &self.bytes[start..end];
                start = end;
                key
            })
            .collect()
    }
}

/// The index of the first row (in row order) whose key an earlier row of the
/// same statement already has.
fn first_repeated(prefixes: &[&[u8]]) -> Option<usize> {
    let mut order: Vec<usize> = (0..prefixes.len()).collect();
    order.sort_unstable_by(|&a, &b| prefixes[a].cmp(prefixes[b]).then(a.cmp(&b)));
    order
        .windows(2)
        .filter(|pair| prefixes[pair[0]] == prefixes[pair[1]])
        .map(|pair| pair[1])
        .min()
}

/// The first of the rows at `candidates` whose newest committed (Parquet)
/// version is a live row. Only files whose key range may hold one of their
/// keys are opened.
async fn live_in_cold(
    s: &Session<'_>,
    def: &TableDef,
    scope: &ScopeKey,
    files: ScopeFiles,
    rows: &[Vec<Value>],
    prefixes: &[&[u8]],
    candidates: &[usize],
) -> Result<Option<usize>> {
    if candidates.is_empty() || files.is_empty() {
        return Ok(None);
    }
    let mut keys: Vec<&[u8]> = candidates.iter().map(|&i| prefixes[i]).collect();
    keys.sort_unstable();
    if !files.may_hold_any(&keys) {
        return Ok(None);
    }
    let pk = def.pk_index();
    let wanted: Vec<Value> = candidates.iter().map(|&i| rows[i][pk].clone()).collect();
    let cold = s.services.storages.for_table(def)?;
    // In place when the file cache answers (the usual case once the
    // scope's files were read: their key filters say "not here"),
    // otherwise on a blocking thread, as reading may wait.
    let found = match files.lookup_cached(&cold, def, scope, &wanted, &mut 0)? {
        Some(found) => found,
        None => lookup_blocking(cold, def, scope, files, wanted).await?,
    };
    Ok(candidates
        .iter()
        .copied()
        .find(|&i| found.get(prefixes[i]).is_some_and(|v| !v.deleted)))
}

pub(super) async fn lookup_blocking(
    cold: Arc<ColdStore>,
    def: &TableDef,
    scope: &ScopeKey,
    files: ScopeFiles,
    wanted: Vec<Value>,
) -> Result<Versions> {
    let (def_owned, scope_owned) = (def.clone(), scope.clone());
    tokio::task::spawn_blocking(move || {
        let handle = tokio::runtime::Handle::current();
        files.lookup(&cold, &handle, &def_owned, &scope_owned, &wanted)
    })
    .await
    .map_err(|source| CoreError::Task {
        what: "cold lookup",
        source,
    })?
}

/// A row's new version (values for an update, a tombstone for a delete)
/// and the version it replaces, with that version's `_seq`.
pub struct Replacement {
    pub new: RowVersion,
    pub old: RowVersion,
    pub old_seq: u64,
}

/// Writes new versions (updates or tombstones) of rows the caller already
/// read under the scope lock and the schema gate, and logs each as a
/// change.
pub fn write_versions(
    s: &Session<'_>,
    def: &TableDef,
    scope: &ScopeKey,
    replacements: Vec<Replacement>,
) -> Result<()> {
    if replacements.is_empty() {
        return Ok(());
    }
    check_fits(
        def,
        replacements
            .iter()
            .filter(|r| !r.new.deleted)
            .map(|r| r.new.values.as_slice()),
    )?;
    s.services.hot.check_budget()?;
    let pk = def.pk_index();
    let store = s.services.hot.store();
    let count = replacements.len() as u64;
    let first_seq = store.next_seqs(count)?;
    let mut batch = store.batch();
    let mut bytes = 0;
    let mut changes = Vec::with_capacity(replacements.len());
    for (i, Replacement { new, old, old_seq }) in replacements.into_iter().enumerate() {
        let seq = first_seq + i as u64;
        bytes += batch.put_version(scope, &new.values[pk], seq, &new)?;
        let change = if new.deleted {
            RowChange {
                seq,
                kind: ChangeKind::Delete,
                new: None,
                old: Some(old),
                old_seq,
            }
        } else {
            RowChange {
                seq,
                kind: ChangeKind::Update,
                new: Some(new),
                old: Some(old),
                old_seq,
            }
        };
        batch.put_change(scope, &change);
        changes.push(change);
    }
    store.write(batch)?;
    s.services.hot.wrote(def, count, bytes);
    s.services.live.publish(def, scope, changes);
    Ok(())
}
