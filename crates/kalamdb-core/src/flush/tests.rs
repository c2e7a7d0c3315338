//! The flush of one table against real RocksDB and real Parquet files:
//! one file per scope, the newest version of each key, tombstones only
//! where an older file may hold their key, hot versions gone after the
//! commit, and the rows read back the same.

use super::{FlushHooks, FlushOptions, Flusher, ScopeBackoff};
use crate::catalog::{Catalog, TableDef};
use crate::cold::Storages;
use crate::hot::{HotBudget, HotTier};
use crate::read::{FileBatch, RowSink, ScopeView};
use kalamdb_commons::{SystemClock, Value};
use kalamdb_store::{HotStore, RowVersion, ScopeKey, StoreOptions};
use std::sync::Arc;
use std::time::Duration;

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    store: Arc<HotStore>,
    storages: Arc<Storages>,
    flusher: Arc<Flusher>,
    def: Arc<TableDef>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Arc::new(HotStore::open(&dir.path().join("rocksdb"), StoreOptions::default()).unwrap());
        let clock = Arc::new(SystemClock);
        let catalog = Catalog::load(store.clone()).unwrap();
        let budget = HotBudget {
            rows: 0,
            bytes: 0,
            hard_limit_factor: 2.0,
        };
        let hot = Arc::new(HotTier::open(store.clone(), &catalog, budget, clock.clone()).unwrap());
        let storages = Arc::new(
            Storages::load(store.clone(), dir.path().to_path_buf(), 0, Arc::default()).unwrap(),
        );
        let backoff = ScopeBackoff::new(Duration::from_secs(60), Duration::from_secs(3600));
        let flusher = Arc::new(Flusher::new(
            hot,
            storages.clone(),
            backoff,
            clock,
            Default::default(),
        ));
        Self {
            _dir: dir,
            runtime: tokio::runtime::Runtime::new().unwrap(),
            store,
            storages,
            flusher,
            def: Arc::new(crate::read::tests::table()),
        }
    }

    fn scope(user: &str) -> ScopeKey {
        ScopeKey::new(7, Some(user))
    }

    /// Writes versions (id, value; None: a tombstone) for `user`.
    fn write(&self, user: &str, rows: &[(i64, Option<&str>)]) {
        let first = self.store.next_seqs(rows.len() as u64).unwrap();
        let mut batch = self.store.batch();
        for (i, (id, value)) in rows.iter().enumerate() {
            let version = RowVersion {
                deleted: value.is_none(),
                schema_version: 1,
                values: vec![
                    Value::I64(*id),
                    value.map_or(Value::Null, |v| Value::Text(v.into())),
                ],
            };
            batch
                .put_version(
                    &Self::scope(user),
                    &Value::I64(*id),
                    first + i as u64,
                    &version,
                )
                .unwrap();
        }
        self.store.write(batch).unwrap();
    }

    fn flush(&self) -> super::FlushStats {
        let (flusher, def) = (self.flusher.clone(), self.def.clone());
        self.runtime
            .block_on(flusher.flush_now(def, FlushOptions::default(), FlushHooks::default()))
            .unwrap()
    }

    /// (files, hot versions left, visible rows) of `user`'s scope.
    fn state(&self, user: &str) -> (Vec<u64>, usize, Vec<(i64, String)>) {
        let scope = Self::scope(user);
        let snapshot = self.store.snapshot();
        let view = ScopeView::open(&snapshot, &self.def, &scope).unwrap();
        let files = view.files().entries().iter().map(|e| e.rows).collect();
        let mut hot = 0;
        snapshot
            .scan_versions(scope.as_bytes(), &mut |_| {
                hot += 1;
                Ok(true)
            })
            .unwrap();
        let cold = self.storages.for_table(&self.def).unwrap();
        let mut rows = Rows(Vec::new());
        view.scan(&cold, self.runtime.handle(), &mut rows).unwrap();
        (files, hot, rows.0)
    }
}

struct Rows(Vec<(i64, String)>);

impl RowSink for Rows {
    fn row(&mut self, _seq: u64, values: &[Value]) -> crate::error::Result<bool> {
        match (&values[0], &values[1]) {
            (Value::I64(id), Value::Text(v)) => self.0.push((*id, v.clone())),
            other => panic!("unexpected row {other:?}"),
        }
        Ok(true)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> crate::error::Result<bool> {
        for r in from..rows.len() {
            let version = rows.version(&crate::read::tests::table(), r)?;
            if !version.deleted {
                self.row(version.seq, &version.values)?;
            }
        }
        Ok(true)
    }
}

fn rows(list: &[(i64, &str)]) -> Vec<(i64, String)> {
    list.iter().map(|(id, v)| (*id, v.to_string())).collect()
}

#[test]
fn each_scope_gets_one_file_of_its_newest_versions_and_its_hot_rows_go() {
    let f = Fixture::new();
    f.write("alice", &[(1, Some("a")), (2, Some("b")), (3, Some("c"))]);
    f.write("alice", &[(2, Some("B")), (3, None)]);
    f.write("bob", &[(1, Some("x"))]);
    let stats = f.flush();
    assert_eq!((stats.parquet_files, stats.users_count), (2, 2));
    // Alice's deleted 3 had nothing older in files: no tombstone written.
    assert_eq!(stats.rows_flushed, 3);
    assert_eq!(f.state("alice"), (vec![2], 0, rows(&[(1, "a"), (2, "B")])));
    assert_eq!(f.state("bob"), (vec![1], 0, rows(&[(1, "x")])));
}

#[test]
fn a_delete_of_a_flushed_row_is_flushed_as_a_tombstone() {
    let f = Fixture::new();
    f.write("alice", &[(1, Some("a")), (2, Some("b"))]);
    f.flush();
    f.write("alice", &[(1, None), (3, Some("c"))]);
    let stats = f.flush();
    // The tombstone must be in the second file, or 1 would come back.
    assert_eq!(stats.rows_flushed, 2);
    assert_eq!(
        f.state("alice"),
        (vec![2, 2], 0, rows(&[(2, "b"), (3, "c")]))
    );
}

#[test]
fn a_flush_with_nothing_hot_writes_nothing() {
    let f = Fixture::new();
    f.write("alice", &[(1, Some("a"))]);
    f.flush();
    let again = f.flush();
    assert_eq!((again.parquet_files, again.rows_flushed), (0, 0));
    assert_eq!(f.state("alice"), (vec![1], 0, rows(&[(1, "a")])));
}
