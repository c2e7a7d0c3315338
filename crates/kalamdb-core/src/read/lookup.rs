//! Reading given primary keys from a scope's files: only files whose key
//! range may hold one, only their row groups whose statistics may, only the
//! matching rows.

use super::decode::{unreadable_file, FileBatch};
use super::{ScopeFiles, Version};
use crate::catalog::TableDef;
use crate::cold::{bridge, ColdStore};
use crate::error::{CoreError, Result};
use crate::values::{cast_to_column, ColumnBuilder};
use datafusion::arrow::array::{BooleanArray, RecordBatch, Scalar};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::or;
use datafusion::arrow::compute::kernels::cmp::eq;
use kalamdb_commons::Value;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{
    read_row_groups_for_keys, read_row_groups_for_keys_cached, KeyProbe, ManifestEntry,
};
use kalamdb_store::ScopeKey;
use std::collections::BTreeMap;
use tokio::runtime::Handle;

/// Encoded primary key (scope prefix included) → newest version.
pub type Versions = BTreeMap<Vec<u8>, Version>;

/// A key as row-group statistics compare it.
pub(crate) fn probe(key: &Value) -> KeyProbe {
    match key {
        Value::I16(v) => KeyProbe::Int(i64::from(*v)),
        Value::I32(v) | Value::Date(v) => KeyProbe::Int(i64::from(*v)),
        Value::I64(v) | Value::Timestamp(v) | Value::Time(v) => KeyProbe::Int(*v),
        Value::Text(s) => KeyProbe::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => KeyProbe::Bytes(b.clone()),
        _ => KeyProbe::Unknown,
    }
}

/// The rows of `batch` whose primary key is one of `keys`.
fn select_keys(batch: &RecordBatch, def: &TableDef, keys: &[Value]) -> Result<RecordBatch> {
    let Ok(pk_column) = batch.schema().index_of(&def.primary_key) else {
        return Ok(batch.clone());
    };
    let pk_type = def.columns[def.pk_index()].data_type;
    let column = cast_to_column(batch.column(pk_column), pk_type)?;
    let mut mask: Option<BooleanArray> = None;
    for key in keys {
        let mut builder = ColumnBuilder::new(pk_type, 1);
        builder.append(key)?;
        let equal = eq(&column, &Scalar::new(builder.finish()))?;
        mask = Some(match mask {
            Some(m) => or(&m, &equal)?,
            None => equal,
        });
    }
    match mask {
        Some(mask) => Ok(filter_record_batch(batch, &mask)?),
        None => Ok(batch.clone()),
    }
}

/// The batches of `entry`'s row groups and pages that may hold one of
/// `probes` (keys); on a blocking thread.
pub(super) fn read_for_keys(
    cold: &ColdStore,
    handle: &Handle,
    def: &TableDef,
    entry: &ManifestEntry,
    probes: &[KeyProbe],
) -> Result<Vec<RecordBatch>> {
    bridge::wait(
        handle,
        read_row_groups_for_keys(
            &cold.files,
            &Path::from(entry.path.as_str()),
            (entry.bytes > 0).then_some(entry.bytes),
            &def.primary_key,
            probes,
        ),
    )
    .map_err(|e| unreadable_file(def, &entry.path, e))
}

impl ScopeFiles {
    /// The newest committed version of each of `keys` that a file holds.
    /// Runs on a blocking thread.
    pub fn lookup(
        &self,
        cold: &ColdStore,
        handle: &Handle,
        def: &TableDef,
        scope: &ScopeKey,
        keys: &[Value],
    ) -> Result<Versions> {
        self.lookup_counted(cold, handle, def, scope, keys, &mut 0)
    }

    /// [`ScopeFiles::lookup`], adding the number of files it read to
    /// `files_read` (the others were pruned by their key range).
    pub fn lookup_counted(
        &self,
        cold: &ColdStore,
        handle: &Handle,
        def: &TableDef,
        scope: &ScopeKey,
        keys: &[Value],
        files_read: &mut usize,
    ) -> Result<Versions> {
        let found = self.lookup_with(def, scope, keys, files_read, |entry, probes| {
            Ok(Some(read_for_keys(cold, handle, def, entry, probes)?))
        })?;
        found.ok_or_else(|| CoreError::Internal("a file lookup gave up".into()))
    }

    /// [`ScopeFiles::lookup_counted`] from the file cache alone, without
    /// waiting (so in place, on an async task); `None` when a file's bytes
    /// are not all cached.
    pub fn lookup_cached(
        &self,
        cold: &ColdStore,
        def: &TableDef,
        scope: &ScopeKey,
        keys: &[Value],
        files_read: &mut usize,
    ) -> Result<Option<Versions>> {
        self.lookup_with(def, scope, keys, files_read, |entry, probes| {
            if entry.bytes == 0 {
                // Its length is unknown: finding it is a request.
                return Ok(None);
            }
            read_row_groups_for_keys_cached(
                &cold.files,
                &Path::from(entry.path.as_str()),
                entry.bytes,
                &def.primary_key,
                probes,
            )
            .map_err(|e| unreadable_file(def, &entry.path, e))
        })
    }

    /// The newest version of each of `keys` in the files whose key range
    /// may hold one, each file's candidate rows from `read` (`None`: give
    /// up, the whole lookup is `None`). Files are asked newest first and a
    /// key found is not asked of older files: each flush writes only
    /// versions newer than every file before it (its `_seq` range starts
    /// above theirs), so a key updated between many flushes costs one
    /// page decoded, not one per file.
    fn lookup_with(
        &self,
        def: &TableDef,
        scope: &ScopeKey,
        keys: &[Value],
        files_read: &mut usize,
        mut read: impl FnMut(&ManifestEntry, &[KeyProbe]) -> Result<Option<Vec<RecordBatch>>>,
    ) -> Result<Option<Versions>> {
        let encoded = keys
            .iter()
            .map(|k| Ok(scope.pk_prefix(k)?))
            .collect::<Result<Vec<Vec<u8>>>>()?;
        let mut found = Versions::new();
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        // Entries are in `max_seq` order.
        for entry in self.entries.iter().rev() {
            let asked: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|&i| entry.may_contain(&encoded[i]))
                .collect();
            if asked.is_empty() {
                continue;
            }
            let probes: Vec<KeyProbe> = asked.iter().map(|&i| probe(&keys[i])).collect();
            let Some(batches) = read(entry, &probes)? else {
                return Ok(None);
            };
            *files_read += 1;
            let asked_keys: Vec<Value> = asked.iter().map(|&i| keys[i].clone()).collect();
            for batch in batches {
                let batch = select_keys(&batch, def, &asked_keys)?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let rows = FileBatch::decode(def, entry.schema_version, &batch, &entry.path)?;
                for r in 0..rows.len() {
                    let key = rows.key(def, scope, r)?;
                    let version = rows.version(def, r)?;
                    if found.get(&key).is_none_or(|v| v.seq < version.seq) {
                        found.insert(key, version);
                    }
                }
            }
            pending.retain(|&i| !found.contains_key(&encoded[i]));
            if pending.is_empty() {
                break;
            }
        }
        Ok(Some(found))
    }

    /// Whether any file's key range may hold one of `sorted` (encoded,
    /// ascending) keys; cheap, opens nothing.
    pub fn may_hold_any(&self, sorted: &[&[u8]]) -> bool {
        // Per file, the smallest key at or above its lower bound is the
        // only one that needs comparing with its upper bound.
        self.entries.iter().any(|e| {
            let first = sorted.partition_point(|k| *k < e.min_pk.as_slice());
            sorted.get(first).is_some_and(|k| e.may_contain(k))
        })
    }
}
