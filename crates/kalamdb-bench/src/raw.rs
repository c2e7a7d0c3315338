//! The limit: the same rows written straight into RocksDB through the hot
//! tier's own key and row encoding, without SQL, HTTP or the primary-key
//! existence check an INSERT does.

use kalamdb_commons::Value;
use kalamdb_store::{HotStore, RowVersion, ScopeKey, StoreOptions};
use std::time::{Duration, Instant};

pub fn row(id: i64) -> Vec<Value> {
    vec![
        Value::I64(id),
        Value::Text(format!("message body number {id} with some text")),
        Value::I32((id % 1000) as i32),
        Value::Timestamp(1_700_000_000_000_000 + id),
    ]
}

/// Writes the rows with these ids, in this order, in batches of `batch`
/// rows; returns the elapsed time and, for batch size 1, every write's
/// latency.
pub fn write(ids: &[i64], batch: usize, sync: bool) -> Result<(Duration, Vec<Duration>), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = HotStore::open(
        dir.path(),
        StoreOptions {
            sync_writes: sync,
            ..StoreOptions::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let scope = ScopeKey::new(1, Some("root"));
    let mut latencies = Vec::new();
    let started = Instant::now();
    for chunk in ids.chunks(batch) {
        let t = Instant::now();
        let first = store
            .next_seqs(chunk.len() as u64)
            .map_err(|e| e.to_string())?;
        let mut wb = store.batch();
        for (i, &key) in chunk.iter().enumerate() {
            let version = RowVersion {
                deleted: false,
                schema_version: 1,
                values: row(key),
            };
            wb.put_version(&scope, &Value::I64(key), first + i as u64, &version)
                .map_err(|e| e.to_string())?;
        }
        store.write(wb).map_err(|e| e.to_string())?;
        if batch == 1 {
            latencies.push(t.elapsed());
        }
    }
    Ok((started.elapsed(), latencies))
}
