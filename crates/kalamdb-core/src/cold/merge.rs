//! Reading a scope's committed rows, newest version per primary key.

use super::cursor::table_columns;
use super::ColdStore;
use crate::catalog::TableDef;
use crate::error::{CoreError, Result};
use crate::values::{cast_to_column, value_at, ColumnBuilder};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::array::{BooleanArray, RecordBatch, Scalar};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::boolean::or;
use datafusion::arrow::compute::kernels::cmp::eq;
use datafusion::arrow::datatypes::Int64Type;
use kalamdb_commons::Value;
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{read_file, read_row_groups_for_keys, KeyProbe, ManifestEntry, SEQ_COLUMN};
use kalamdb_store::ScopeKey;
use std::collections::BTreeMap;
use tokio::runtime::Handle;

/// One version of a row read from a file.
#[derive(Debug, Clone)]
pub struct ColdVersion {
    pub seq: u64,
    pub deleted: bool,
    pub values: Vec<Value>,
}

/// Encoded primary key (scope prefix included) → newest version in the files.
pub type ColdRows = BTreeMap<Vec<u8>, ColdVersion>;

/// The rows of `batch` whose primary key is one of `keys`.
fn select_keys(
    batch: &RecordBatch,
    pk_column: usize,
    pk_type: kalamdb_commons::KalamType,
    keys: &[Value],
) -> Result<RecordBatch> {
    let column = cast_to_column(batch.column(pk_column), pk_type)?;
    let mut mask: Option<BooleanArray> = None;
    for key in keys {
        let mut builder = ColumnBuilder::new(pk_type, 1);
        builder.append(key)?;
        let equal = eq(&column, &Scalar::new(builder.finish())).map_err(CoreError::from)?;
        mask = Some(match mask {
            Some(m) => or(&m, &equal).map_err(CoreError::from)?,
            None => equal,
        });
    }
    match mask {
        Some(mask) => filter_record_batch(batch, &mask).map_err(CoreError::from),
        None => Ok(batch.clone()),
    }
}

/// A key as row-group statistics compare it.
fn probe(key: &Value) -> KeyProbe {
    match key {
        Value::I16(v) => KeyProbe::Int(i64::from(*v)),
        Value::I32(v) | Value::Date(v) => KeyProbe::Int(i64::from(*v)),
        Value::I64(v) | Value::Timestamp(v) => KeyProbe::Int(*v),
        Value::Text(s) => KeyProbe::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => KeyProbe::Bytes(b.clone()),
        _ => KeyProbe::Unknown,
    }
}

/// Loads the newest version of each primary key from `entries`. With
/// `only` given, keeps just those keys and opens only files whose key range
/// may hold one of them.
pub fn load_scope(
    cold: &ColdStore,
    handle: &Handle,
    def: &TableDef,
    scope: &ScopeKey,
    entries: &[ManifestEntry],
    only: Option<&[Value]>,
) -> Result<ColdRows> {
    let pk = def.pk_index();
    let wanted = match only {
        Some(keys) => Some(
            keys.iter()
                .map(|k| Ok(scope.pk_prefix(k)?))
                .collect::<Result<Vec<Vec<u8>>>>()?,
        ),
        None => None,
    };
    let mut rows = ColdRows::new();
    for entry in entries {
        if let Some(keys) = &wanted {
            if !keys.iter().any(|k| entry.may_contain(k)) {
                continue;
            }
        }
        let path = Path::from(entry.path.as_str());
        let batches = match only {
            // Only the row groups whose key statistics may hold a key.
            Some(keys) => super::bridge::wait(
                handle,
                read_row_groups_for_keys(
                    cold.store.clone(),
                    &path,
                    (entry.bytes > 0).then_some(entry.bytes),
                    &def.primary_key,
                    &keys.iter().map(probe).collect::<Vec<_>>(),
                ),
            ),
            None => super::bridge::wait(handle, read_file(cold.store.clone(), &path))
                .map(|(batches, _)| batches),
        }
        .map_err(|e| super::unreadable_file(def, &entry.path, e))?;
        for batch in batches {
            let batch = match (only, batch.schema().index_of(&def.primary_key)) {
                (Some(keys), Ok(pk_column)) => {
                    select_keys(&batch, pk_column, def.columns[pk].data_type, keys)?
                }
                _ => batch,
            };
            let schema = batch.schema();
            let seq_col = schema
                .index_of(SEQ_COLUMN)
                .map_err(|_| CoreError::Internal(format!("{} has no _seq", entry.path)))?;
            let seqs = batch.column(seq_col).as_primitive::<Int64Type>().clone();
            let deleted = match schema.index_of(crate::schema::DELETED_COLUMN) {
                Ok(i) => Some(batch.column(i).as_boolean().clone()),
                Err(_) => None,
            };
            let columns = table_columns(def, &batch)?;
            for r in 0..batch.num_rows() {
                let pk_value = match &columns[pk] {
                    Some(array) => value_at(array, r, def.columns[pk].data_type)?,
                    None => {
                        return Err(CoreError::Internal(format!(
                            "{} has no primary key column",
                            entry.path
                        )))
                    }
                };
                let key = scope.pk_prefix(&pk_value)?;
                let seq = seqs.value(r) as u64;
                if rows.get(&key).is_some_and(|v| v.seq >= seq) {
                    continue;
                }
                let values = columns
                    .iter()
                    .zip(&def.columns)
                    .map(|(array, column)| match array {
                        Some(array) => value_at(array, r, column.data_type),
                        None => Ok(Value::Null),
                    })
                    .collect::<Result<Vec<_>>>()?;
                let is_deleted = deleted
                    .as_ref()
                    .is_some_and(|d| !d.is_null(r) && d.value(r));
                rows.insert(
                    key,
                    ColdVersion {
                        seq,
                        deleted: is_deleted,
                        values,
                    },
                );
            }
        }
    }
    Ok(rows)
}
