//! `BEGIN ... COMMIT` within one request's batch, with snapshot isolation.
//!
//! Snapshot: the `_seq` allocated last at BEGIN (`as_of`). Every version
//! at or below it belongs to the snapshot, none above; a write allocates
//! its `_seq` and commits under its scope's lock, so waiting for that lock
//! once, before the transaction first reads a scope, makes every version of
//! the scope at or below `as_of` committed (`Transaction::overlay`). Reads
//! take a fresh RocksDB snapshot each and pass over hot versions above
//! `as_of` (`read::TxOverlay`); a flush that moved versions the snapshot
//! needs since then makes the transaction fail rather than read wrong.
//!
//! Writes are kept in memory (bounded) per scope and key, with the `_seq`
//! of the committed version each replaced as the snapshot saw it. COMMIT
//! locks every scope written, takes each table's schema gate, and fails
//! with `TRANSACTION_CONFLICT` if any written key's newest committed
//! version is no longer the one seen (first committer wins); else it
//! allocates the `_seq`s and writes every version and change-log entry of
//! every table and scope in one RocksDB batch.

use super::write::{check_fits_versions, display_value, lookup_blocking, schema_gate, Replacement};
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::read::{ScopeFiles, ScopeView, TxOverlay, Version, Versions};
use crate::services::Services;
use kalamdb_commons::Value;
use kalamdb_store::{ChangeKind, RowChange, RowVersion, ScopeKey};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Most rows one transaction may write (each kept in memory until COMMIT).
pub const MAX_ROWS: usize = 100_000;
/// Most bytes of row values one transaction may hold.
pub const MAX_BYTES: usize = 64 * 1024 * 1024;

pub struct Transaction {
    services: Arc<Services>,
    as_of: u64,
    state: Mutex<State>,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("as_of", &self.as_of)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Scopes whose writes in flight at BEGIN were waited for.
    synced: HashSet<Vec<u8>>,
    /// By table uid.
    tables: BTreeMap<u64, TableWrites>,
    rows: usize,
    bytes: usize,
}

struct TableWrites {
    /// The newest definition a statement wrote with.
    def: Arc<TableDef>,
    /// By scope, then by encoded key.
    scopes: BTreeMap<Vec<u8>, BTreeMap<Vec<u8>, Pending>>,
}

struct Pending {
    row: RowVersion,
    /// The committed version the snapshot had of the key (tombstones
    /// included), with its `_seq`; `None`: none.
    seen: Option<(u64, RowVersion)>,
}

impl Transaction {
    pub fn begin(services: &Arc<Services>) -> Self {
        Self {
            services: services.clone(),
            as_of: services.hot.store().last_seq(),
            state: Mutex::new(State::default()),
        }
    }

    /// What the transaction's statements see of `scope` over a fresh
    /// snapshot (the first time, after [`Self::sync`]).
    pub async fn overlay(&self, def: &TableDef, scope: &ScopeKey) -> TxOverlay {
        self.sync(scope).await;
        let state = self.state.lock();
        let pending = state
            .tables
            .get(&def.uid)
            .and_then(|t| t.scopes.get(scope.as_bytes()))
            .map(|keys| {
                keys.iter()
                    .map(|(key, p)| (key.clone(), p.row.clone()))
                    .collect()
            })
            .unwrap_or_default();
        TxOverlay {
            as_of: self.as_of,
            pending: Arc::new(pending),
        }
    }

    /// Before the transaction first reads `scope`: waits until no write of
    /// it is in flight (one that got its `_seq` before BEGIN has committed
    /// then).
    async fn sync(&self, scope: &ScopeKey) {
        let synced = self.state.lock().synced.contains(scope.as_bytes());
        if !synced {
            drop(self.services.hot.lock_scope(scope).await);
            self.state.lock().synced.insert(scope.as_bytes().to_vec());
        }
    }

    /// Whether the transaction's own write of `key` is a live row (`None`:
    /// it has not written the key).
    fn own_live(&self, uid: u64, scope: &ScopeKey, key: &[u8]) -> Option<bool> {
        let state = self.state.lock();
        let own = state
            .tables
            .get(&uid)?
            .scopes
            .get(scope.as_bytes())?
            .get(key)?;
        Some(!own.row.deleted)
    }

    /// The snapshot alone, without the transaction's writes.
    fn committed_overlay(&self) -> TxOverlay {
        TxOverlay {
            as_of: self.as_of,
            pending: Arc::default(),
        }
    }

    /// Keeps `row` as the transaction's write of `key`; `seen` is what the
    /// snapshot held there (kept from the key's first write).
    fn record(
        &self,
        def: &Arc<TableDef>,
        scope: &ScopeKey,
        key: Vec<u8>,
        row: RowVersion,
        seen: Option<(u64, RowVersion)>,
    ) -> Result<()> {
        let mut state = self.state.lock();
        let size = key.len() + row.encode().len();
        if state.rows >= MAX_ROWS || state.bytes + size > MAX_BYTES {
            return Err(CoreError::ResourceExhausted(format!(
                "a transaction may write at most {MAX_ROWS} rows and {} MiB; commit in parts",
                MAX_BYTES >> 20
            )));
        }
        state.rows += 1;
        state.bytes += size;
        let table = state.tables.entry(def.uid).or_insert_with(|| TableWrites {
            def: def.clone(),
            scopes: BTreeMap::new(),
        });
        if table.def.schema_version < def.schema_version {
            table.def = def.clone();
        }
        let keys = table.scopes.entry(scope.as_bytes().to_vec()).or_default();
        match keys.get_mut(&key) {
            Some(pending) => pending.row = row,
            None => {
                keys.insert(key, Pending { row, seen });
            }
        }
        Ok(())
    }

    /// INSERT inside the transaction: fails on a key the transaction sees
    /// live (its snapshot's or its own), else keeps the rows.
    pub async fn insert(
        &self,
        services: &Services,
        def: &Arc<TableDef>,
        scope: &ScopeKey,
        rows: Vec<Vec<Value>>,
    ) -> Result<()> {
        let pk = def.pk_index();
        let keys: Vec<Vec<u8>> = rows
            .iter()
            .map(|row| Ok(scope.pk_prefix(&row[pk])?))
            .collect::<Result<_>>()?;
        self.sync(scope).await;
        let seen = self.committed(services, def, scope, &rows, &keys).await?;
        let mut inserted = HashSet::new();
        for (i, key) in keys.iter().enumerate() {
            let live = match self.own_live(def.uid, scope, key) {
                Some(live) => live,
                None => seen[i].as_ref().is_some_and(|(_, v)| !v.deleted),
            };
            if live || !inserted.insert(key.clone()) {
                return Err(CoreError::AlreadyExists(format!(
                    "duplicate primary key: {} = {} already exists in '{}'",
                    def.primary_key,
                    display_value(&rows[i][pk]),
                    def.qualified_name()
                )));
            }
        }
        for ((values, key), seen) in rows.into_iter().zip(keys).zip(seen) {
            let row = RowVersion {
                deleted: false,
                schema_version: def.schema_version,
                values,
            };
            self.record(def, scope, key, row, seen)?;
        }
        Ok(())
    }

    /// The committed version of each key in the transaction's snapshot
    /// (tombstones included), both tiers.
    async fn committed(
        &self,
        services: &Services,
        def: &TableDef,
        scope: &ScopeKey,
        rows: &[Vec<Value>],
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<(u64, RowVersion)>>> {
        let prefixes: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
        let (hot, files) = {
            let snapshot = services.hot.store().snapshot();
            let view =
                ScopeView::open(&snapshot, def, scope)?.in_transaction(self.committed_overlay())?;
            (view.hot_versions(&prefixes)?, view.into_files())
        };
        let pk = def.pk_index();
        let undecided: Vec<Value> = hot
            .iter()
            .zip(rows)
            .filter(|(found, _)| found.is_none())
            .map(|(_, row)| row[pk].clone())
            .collect();
        let cold = files_lookup(services, def, scope, files, undecided).await?;
        Ok(hot
            .into_iter()
            .zip(keys)
            .map(|(found, key)| found.or_else(|| cold.get(key).cloned()).map(as_row(def)))
            .collect())
    }

    /// UPDATE or DELETE inside the transaction: keeps the new versions of
    /// rows its statement read through the transaction's view.
    pub fn replace(
        &self,
        def: &Arc<TableDef>,
        scope: &ScopeKey,
        replacements: Vec<Replacement>,
    ) -> Result<()> {
        let pk = def.pk_index();
        for r in replacements {
            let key = scope.pk_prefix(&r.old.values[pk])?;
            // The old version is the committed one unless the key was
            // written before in this transaction (then `seen` is kept).
            let seen = Some((r.old_seq, r.old));
            self.record(def, scope, key, r.new, seen)?;
        }
        Ok(())
    }

    /// Applies every write in one batch, or none (a conflict, a failure).
    /// Returns the rows changed.
    pub async fn commit(&self) -> Result<usize> {
        let services = &*self.services;
        let state = std::mem::take(&mut *self.state.lock());
        if state.tables.is_empty() {
            return Ok(0);
        }
        let scopes: Vec<ScopeKey> = state
            .tables
            .values()
            .flat_map(|t| t.scopes.keys())
            .map(|bytes| ScopeKey::from_key_prefix(bytes))
            .collect();
        let _locks = services.hot.lock_scopes(&scopes).await;
        let mut gates = Vec::with_capacity(state.tables.len());
        for table in state.tables.values() {
            gates.push(schema_gate(&table.def).await?);
            let rows = table
                .scopes
                .values()
                .flat_map(|keys| keys.values())
                .filter(|p| !p.row.deleted);
            check_fits_versions(&table.def, rows.map(|p| &p.row))?;
        }
        for table in state.tables.values() {
            for (scope, keys) in &table.scopes {
                check_conflicts(
                    services,
                    &table.def,
                    &ScopeKey::from_key_prefix(scope),
                    keys,
                )
                .await?;
            }
        }
        write(services, &state)
    }
}

/// Fails if a key's newest committed version is no longer the one the
/// transaction saw.
async fn check_conflicts(
    services: &Services,
    def: &TableDef,
    scope: &ScopeKey,
    keys: &BTreeMap<Vec<u8>, Pending>,
) -> Result<()> {
    let prefixes: Vec<&[u8]> = keys.keys().map(Vec::as_slice).collect();
    let (hot, files) = {
        let snapshot = services.hot.store().snapshot();
        let view = ScopeView::open(&snapshot, def, scope)?;
        (view.hot_versions(&prefixes)?, view.into_files())
    };
    let pk = def.pk_index();
    let undecided: Vec<Value> = hot
        .iter()
        .zip(keys.values())
        .filter(|(found, _)| found.is_none())
        .map(|(_, p)| p.row.values.get(pk).cloned().unwrap_or(Value::Null))
        .collect();
    let cold = files_lookup(services, def, scope, files, undecided).await?;
    for ((key, pending), hot) in keys.iter().zip(hot) {
        let now = hot.or_else(|| cold.get(key).cloned()).map(|v| v.seq);
        let seen = pending.seen.as_ref().map(|(seq, _)| *seq);
        if now != seen {
            let value = pending.row.values.get(pk).map_or("?".into(), display_value);
            return Err(CoreError::TransactionConflict(format!(
                "could not commit: the row {} = {value} of '{}' was changed by another \
                 transaction that committed first; nothing was applied, run the transaction again",
                def.primary_key,
                def.qualified_name()
            )));
        }
    }
    Ok(())
}

/// The newest version of each of `keys` in `files` (both as of one
/// snapshot), on a blocking thread when the file cache cannot answer.
async fn files_lookup(
    services: &Services,
    def: &TableDef,
    scope: &ScopeKey,
    files: ScopeFiles,
    keys: Vec<Value>,
) -> Result<Versions> {
    if keys.is_empty() || files.is_empty() {
        return Ok(Versions::new());
    }
    let cold = services.storages.for_table(def)?;
    if let Some(found) = files.lookup_cached(&cold, def, scope, &keys, &mut 0)? {
        return Ok(found);
    }
    lookup_blocking(cold, def, scope, files, keys).await
}

fn as_row(def: &TableDef) -> impl Fn(Version) -> (u64, RowVersion) + '_ {
    move |v| {
        (
            v.seq,
            RowVersion {
                deleted: v.deleted,
                schema_version: def.schema_version,
                values: v.values,
            },
        )
    }
}

/// Writes every version and change of the transaction in one batch and
/// tells the subscribers. The caller holds every scope's lock.
fn write(services: &Services, state: &State) -> Result<usize> {
    let store = services.hot.store();
    services.hot.check_budget()?;
    // An insert of a key then its delete, both in the transaction: nothing.
    let changed = |p: &Pending| !p.row.deleted || p.seen.as_ref().is_some_and(|(_, v)| !v.deleted);
    let count = state
        .tables
        .values()
        .flat_map(|t| t.scopes.values())
        .flat_map(|keys| keys.values())
        .filter(|p| changed(p))
        .count();
    if count == 0 {
        return Ok(0);
    }
    let mut seq = store.next_seqs(count as u64)?;
    let mut batch = store.batch();
    let mut published = Vec::new();
    let mut written = Vec::new();
    for table in state.tables.values() {
        let (mut versions, mut bytes) = (0u64, 0u64);
        for (scope_bytes, keys) in &table.scopes {
            let scope = ScopeKey::from_key_prefix(scope_bytes);
            let mut changes = Vec::with_capacity(keys.len());
            for (key, pending) in keys.iter().filter(|(_, p)| changed(p)) {
                let old = pending.seen.as_ref().filter(|(_, v)| !v.deleted);
                let change = match (old, pending.row.deleted) {
                    (None, _) => {
                        bytes += batch.put_inserted(&scope, key, seq, &pending.row);
                        RowChange {
                            seq,
                            kind: ChangeKind::Insert,
                            new: Some(pending.row.clone()),
                            old: None,
                            old_seq: 0,
                        }
                    }
                    (Some((old_seq, old)), deleted) => {
                        bytes += batch.put_version_at(key, seq, &pending.row);
                        let change = RowChange {
                            seq,
                            kind: if deleted {
                                ChangeKind::Delete
                            } else {
                                ChangeKind::Update
                            },
                            new: (!deleted).then(|| pending.row.clone()),
                            old: Some(old.clone()),
                            old_seq: *old_seq,
                        };
                        batch.put_change(&scope, &change);
                        change
                    }
                };
                changes.push(change);
                versions += 1;
                seq += 1;
            }
            published.push((table.def.clone(), scope, changes));
        }
        written.push((table.def.clone(), versions, bytes));
    }
    store.write(batch)?;
    for (def, versions, bytes) in written {
        services.hot.wrote(&def, versions, bytes);
    }
    // Still under every scope's lock: subscribers get each scope's changes
    // in commit order.
    for (def, scope, changes) in published {
        services.live.publish(&def, &scope, changes);
    }
    Ok(count)
}

#[async_trait::async_trait]
impl crate::provider::TxReads for Transaction {
    async fn overlay(&self, def: &TableDef, scope: &ScopeKey) -> TxOverlay {
        Transaction::overlay(self, def, scope).await
    }
}
