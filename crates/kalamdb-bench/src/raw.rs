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

/// Writes `count` rows in batches of `batch` rows; returns the elapsed time
/// and, for batch size 1, every write's latency.
pub fn write(count: usize, batch: usize, sync: bool) -> Result<(Duration, Vec<Duration>), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = HotStore::open(dir.path(), StoreOptions { sync_writes: sync })
        .map_err(|e| e.to_string())?;
    let scope = ScopeKey::new(1, Some("root"));
    let mut latencies = Vec::new();
    let started = Instant::now();
    let mut id = 0;
    while id < count {
        let n = batch.min(count - id);
        let t = Instant::now();
        let first = store.next_seqs(n as u64).map_err(|e| e.to_string())?;
        let mut wb = store.batch();
        for i in 0..n {
            let key = (id + i) as i64;
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
        id += n;
    }
    Ok((started.elapsed(), latencies))
}
