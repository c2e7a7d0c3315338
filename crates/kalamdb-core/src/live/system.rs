//! Live queries over system tables (dba and above).
//!
//! System tables have no change log: they are computed from the catalog,
//! the users, the jobs and the hub when they are read. A watch reads its
//! table again every `system_poll` and sends what differs from the last
//! reading, as changes keyed by the table's identifying columns (a job's
//! id, a user's id, ...): a key that appeared is an insert, one that went
//! away a delete, one whose selected columns changed an update. Changes
//! that come and go between two readings are not seen, and there is no
//! `_seq` to resume from: a client that reconnects starts from a fresh
//! reading.

use super::error::{LiveCode, LiveError, LiveResult};
use super::plan::{Compiled, LiveChange};
use crate::provider::RequestScope;
use crate::services::Services;
use crate::system::Builtin;
use crate::users::Caller;
use datafusion::arrow::array::UInt32Array;
use datafusion::arrow::compute::{filter_record_batch, take_record_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use kalamdb_store::ChangeKind;
use std::collections::HashMap;
use std::sync::Arc;

/// One reading: the selected rows, and each one's key and output bytes.
#[derive(Debug)]
struct Reading {
    rows: RecordBatch,
    by_key: HashMap<Vec<u8>, (u32, Vec<u8>)>,
}

/// A live query over one system table.
#[derive(Debug)]
pub struct SystemWatch {
    table: &'static Builtin,
    exprs: Compiled,
    services: Arc<Services>,
    scope: Arc<RequestScope>,
    last: Option<Reading>,
}

impl SystemWatch {
    pub(crate) fn new(
        table: &'static Builtin,
        exprs: Compiled,
        services: Arc<Services>,
        caller: Caller,
    ) -> Self {
        Self {
            table,
            exprs,
            services,
            scope: Arc::new(RequestScope {
                caller,
                system_columns: false,
                tombstones: false,
                txn: None,
            }),
            last: None,
        }
    }

    /// What the subscriber receives.
    pub fn schema(&self) -> &SchemaRef {
        &self.exprs.schema
    }

    /// Reads the table now: its selected rows, projected, within `max_bytes`
    /// (as Arrow memory).
    fn read(&self, max_bytes: usize) -> LiveResult<Reading> {
        let full = self.table.rows(&self.services, &self.scope)?;
        let kept = filter_record_batch(&full, &self.exprs.matches(&full)?)?;
        let rows = self.exprs.project(&kept)?;
        let bytes = kept.get_array_memory_size() + rows.get_array_memory_size();
        if bytes > max_bytes {
            return Err(LiveError::new(
                LiveCode::SubscriptionFailed,
                format!(
                    "{:?} has grown over {max_bytes} bytes (live.max_initial_mb) for this live \
                     query; narrow its WHERE",
                    self.table,
                ),
            ));
        }
        let keys = row_bytes(&kept, self.table.key_columns())?;
        let values = row_bytes(&rows, rows.num_columns())?;
        let by_key = keys
            .into_iter()
            .zip(values)
            .enumerate()
            .map(|(i, (key, value))| (key, (i as u32, value)))
            .collect();
        Ok(Reading { rows, by_key })
    }

    /// The first reading, which later ones are compared with.
    pub fn start(&mut self, max_bytes: usize) -> LiveResult<RecordBatch> {
        let reading = self.read(max_bytes)?;
        let rows = reading.rows.clone();
        self.last = Some(reading);
        Ok(rows)
    }

    /// Reads the table again; returns how it differs from the last
    /// reading: deletes, then updates, then inserts (at most one message
    /// of each kind).
    pub fn poll(&mut self, max_bytes: usize) -> LiveResult<Vec<LiveChange>> {
        let now = self.read(max_bytes)?;
        let Some(before) = self.last.replace(now) else {
            return Ok(Vec::new());
        };
        let now = self.last.as_ref().expect("just set");
        let mut deleted = Vec::new();
        // (now, before) positions of each updated row.
        let mut updates: Vec<(u32, u32)> = Vec::new();
        let mut inserted = Vec::new();
        for (key, (at, value)) in &before.by_key {
            match now.by_key.get(key) {
                None => deleted.push(*at),
                Some((now_at, now_value)) if now_value != value => updates.push((*now_at, *at)),
                Some(_) => {}
            }
        }
        for (key, (at, _)) in &now.by_key {
            if !before.by_key.contains_key(key) {
                inserted.push(*at);
            }
        }
        // In the tables' own order, so a client sees them as a SELECT would.
        deleted.sort_unstable();
        inserted.sort_unstable();
        updates.sort_unstable();
        let (new_at, old_at): (Vec<u32>, Vec<u32>) = updates.into_iter().unzip();
        let take = |rows: &RecordBatch, at: Vec<u32>| -> LiveResult<Option<RecordBatch>> {
            if at.is_empty() {
                return Ok(None);
            }
            Ok(Some(take_record_batch(rows, &UInt32Array::from(at))?))
        };
        let changes = [
            (ChangeKind::Delete, None, take(&before.rows, deleted)?),
            (
                ChangeKind::Update,
                take(&now.rows, new_at)?,
                take(&before.rows, old_at)?,
            ),
            (ChangeKind::Insert, take(&now.rows, inserted)?, None),
        ];
        Ok(changes
            .into_iter()
            .filter(|(_, rows, old)| rows.is_some() || old.is_some())
            .map(|(kind, rows, old_values)| LiveChange {
                kind,
                rows,
                old_values,
                // A system table has no `_seq`.
                last_seq: 0,
            })
            .collect())
    }
}

/// Each row of the first `columns` columns of `batch`, as bytes that are
/// equal exactly when the values are.
fn row_bytes(batch: &RecordBatch, columns: usize) -> LiveResult<Vec<Vec<u8>>> {
    let columns = columns.min(batch.num_columns());
    let fields = batch.schema().fields()[..columns]
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields)?;
    let rows = converter.convert_columns(&batch.columns()[..columns])?;
    Ok(rows.iter().map(|row| row.as_ref().to_vec()).collect())
}
