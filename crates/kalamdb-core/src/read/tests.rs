//! The read path against real RocksDB and real Parquet files on local
//! disk: the merge's precedence rules, its Arrow pass-through, and point
//! lookups.

use super::{FileBatch, RowSink, ScopeView, Versions};
use crate::catalog::{ColumnDef, TableDef};
use crate::cold::ColdStore;
use crate::error::Result;
use crate::read::BatchBuilder;
use crate::schema::{file_schema, table_schema};
use kalamdb_commons::{KalamType, NamespaceId, TableName, TableType, Value};
use kalamdb_filestore::object_store::path::Path;
use kalamdb_filestore::{FileMeta, ManifestEntry, ParquetFileWriter, StorageDef};
use kalamdb_store::{meta_keys, HotStore, RowVersion, ScopeKey, StoreOptions};

/// A USER table `app.kv (id BIGINT PRIMARY KEY, v TEXT NOT NULL)`.
pub(crate) fn table() -> TableDef {
    let column = |id, name: &str, data_type, nullable| ColumnDef {
        id,
        name: name.into(),
        data_type,
        nullable,
        default: None,
        fill: None,
    };
    let mut def = TableDef {
        uid: 7,
        namespace: NamespaceId::new("app").unwrap(),
        name: TableName::new("kv").unwrap(),
        table_type: TableType::User,
        columns: vec![
            column(1, "id", KalamType::BigInt, false),
            // NOT NULL: a tombstone's NULL here must never reach a batch.
            column(2, "v", KalamType::Text, false),
        ],
        primary_key: "id".into(),
        flush_policy: None,
        storage_id: "local".into(),
        ttl_seconds: None,
        public: false,
        schema_version: 1,
        created_at: 0,
        updated_at: 0,
        compaction: Default::default(),
        next_column_id: 3,
        schemas: Default::default(),
    };
    def.schemas = std::sync::Arc::new(crate::catalog::SchemaHistory::of([
        crate::catalog::SchemaVersion {
            version: 1,
            columns: def.columns.clone(),
            created_at: 0,
            change: "CREATE TABLE".into(),
        },
    ]));
    def
}

/// One row version: (id, seq, value or None for a tombstone).
type Row = (i64, u64, Option<&'static str>);

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    store: HotStore,
    cold: ColdStore,
    def: TableDef,
    scope: ScopeKey,
    files: std::cell::Cell<usize>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = HotStore::open(&dir.path().join("rocksdb"), StoreOptions::default()).unwrap();
        let cold =
            ColdStore::open(&StorageDef::local(0), dir.path(), std::sync::Arc::default()).unwrap();
        Self {
            _dir: dir,
            runtime: tokio::runtime::Runtime::new().unwrap(),
            store,
            cold,
            def: table(),
            scope: ScopeKey::new(7, Some("alice")),
            files: std::cell::Cell::new(0),
        }
    }

    fn values(row: &Row) -> (bool, Vec<Value>) {
        let value = row.2.map_or(Value::Null, |v| Value::Text(v.into()));
        (row.2.is_none(), vec![Value::I64(row.0), value])
    }

    /// Writes `rows` (ascending ids) as a committed file of the scope.
    fn file(&self, rows: &[Row]) {
        self.files.set(self.files.get() + 1);
        let path = Path::from(format!("t/alice/batch-{}.parquet", self.files.get()));
        let schema = file_schema(&self.def);
        let mut builder = BatchBuilder::new(&self.def, &[0, 1, 2, 3]);
        for row in rows {
            let (deleted, values) = Self::values(row);
            builder.push(row.1, deleted, &values).unwrap();
        }
        let batch = builder.finish(&schema).unwrap();
        let meta = FileMeta {
            table_id: "app.kv".into(),
            user_id: Some("alice".into()),
            schema_version: 1,
            primary_key: None,
        };
        let mut writer =
            ParquetFileWriter::create(self.cold.store.clone(), path.clone(), schema, meta).unwrap();
        let written = self.runtime.block_on(async {
            writer.write(&batch).await.unwrap();
            writer.finish().await.unwrap()
        });
        let key = |id: i64| self.scope.pk_prefix(&Value::I64(id)).unwrap();
        let entry = ManifestEntry {
            path: path.to_string(),
            rows: written.rows,
            bytes: written.bytes,
            min_seq: written.min_seq,
            max_seq: written.max_seq,
            schema_version: 1,
            min_pk: key(rows[0].0),
            max_pk: key(rows[rows.len() - 1].0),
            committed_at: 0,
            flushed_through: rows.iter().map(|r| r.1).max().unwrap(),
            tombstones: Some(rows.iter().filter(|r| r.2.is_none()).count() as u64),
        };
        let mut batch = self.store.batch();
        batch.put_manifest_entry(
            &self.scope,
            &format!("batch-{}.parquet", self.files.get()),
            &serde_json::to_vec(&entry).unwrap(),
            self.store.next_seqs(1).unwrap(),
        );
        self.store.write(batch).unwrap();
    }

    fn hot(&self, rows: &[Row]) {
        let mut batch = self.store.batch();
        for row in rows {
            let (deleted, values) = Self::values(row);
            let version = RowVersion {
                deleted,
                schema_version: 1,
                values,
            };
            batch
                .put_version(&self.scope, &Value::I64(row.0), row.1, &version)
                .unwrap();
        }
        self.store.write(batch).unwrap();
    }

    fn scan(&self) -> Collected {
        let snapshot = self.store.snapshot();
        let view = ScopeView::open(&snapshot, &self.def, &self.scope).unwrap();
        let mut sink = Collected::new(&self.def);
        view.scan(&self.cold, self.runtime.handle(), &mut sink)
            .unwrap();
        sink
    }
}

/// What a scan delivered: (id, seq, value) in order, and how many rows came
/// as Arrow pass-through.
struct Collected {
    def: TableDef,
    rows: Vec<(i64, u64, Option<String>)>,
    passed_through: usize,
}

impl Collected {
    fn new(def: &TableDef) -> Self {
        Self {
            def: def.clone(),
            rows: Vec::new(),
            passed_through: 0,
        }
    }
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::Text(s) => Some(s.clone()),
        _ => None,
    }
}

impl RowSink for Collected {
    fn row(&mut self, seq: u64, values: &[Value]) -> Result<bool> {
        let Value::I64(id) = values[0] else {
            panic!("id is not BIGINT: {:?}", values[0])
        };
        self.rows.push((id, seq, text(&values[1])));
        Ok(true)
    }

    fn file_rows(&mut self, rows: &FileBatch, from: usize) -> Result<bool> {
        let schema = std::sync::Arc::new(table_schema(&self.def, true).project(&[0, 1, 2])?);
        let batch = rows.project(&self.def, &[0, 1, 2], &schema, from..rows.len(), false)?;
        let (ids, values, seqs) = (batch.column(0), batch.column(1), batch.column(2));
        for r in 0..batch.num_rows() {
            let id = crate::values::value_at(ids, r, KalamType::BigInt)?;
            let value = crate::values::value_at(values, r, KalamType::Text)?;
            let seq = crate::values::value_at(seqs, r, KalamType::BigInt)?;
            let (Value::I64(id), Value::I64(seq)) = (id, seq) else {
                panic!("bad types")
            };
            self.rows.push((id, seq as u64, text(&value)));
        }
        self.passed_through += batch.num_rows();
        Ok(true)
    }
}

/// `(_seq, deleted)` of each version a lookup found, in key order.
fn seqs(found: &Versions) -> Vec<(u64, bool)> {
    found.values().map(|v| (v.seq, v.deleted)).collect()
}

fn owned(rows: &[(i64, u64, Option<&str>)]) -> Vec<(i64, u64, Option<String>)> {
    rows.iter()
        .map(|(id, seq, v)| (*id, *seq, v.map(String::from)))
        .collect()
}

#[test]
fn the_newest_version_wins_across_files_and_hot_rows() {
    let f = Fixture::new();
    f.file(&[(1, 1, Some("a")), (2, 2, Some("b")), (3, 3, Some("c"))]);
    // A newer file deletes 2 and adds 4; the hot tier updates 3, adds 5,
    // and deletes 1, all newer than every file.
    f.file(&[(2, 4, None), (4, 5, Some("d"))]);
    f.hot(&[(3, 6, Some("C")), (5, 7, Some("e")), (1, 8, None)]);
    let got = f.scan();
    assert_eq!(
        got.rows,
        owned(&[(3, 6, Some("C")), (4, 5, Some("d")), (5, 7, Some("e"))])
    );
}

#[test]
fn hot_versions_a_flush_already_moved_are_not_read_twice() {
    let f = Fixture::new();
    // Hot versions up to seq 2 are in the file (flushed_through 2) but not
    // yet deleted; a stale copy must not override the file's.
    f.hot(&[(1, 1, Some("old")), (2, 2, Some("b"))]);
    f.file(&[(1, 1, Some("old")), (2, 2, Some("b"))]);
    f.hot(&[(2, 3, Some("B"))]);
    let got = f.scan();
    assert_eq!(got.rows, owned(&[(1, 1, Some("old")), (2, 3, Some("B"))]));
}

#[test]
fn a_file_nothing_overrides_passes_through_as_arrow_without_its_tombstones() {
    let f = Fixture::new();
    f.file(&[(1, 1, Some("a")), (2, 2, None), (3, 3, Some("c"))]);
    let got = f.scan();
    assert_eq!(got.rows, owned(&[(1, 1, Some("a")), (3, 3, Some("c"))]));
    assert_eq!(got.passed_through, 2, "every row came as Arrow");
}

#[test]
fn only_the_stretch_below_every_other_source_passes_through() {
    let f = Fixture::new();
    f.file(&[(1, 1, Some("a")), (2, 2, Some("b")), (8, 3, Some("h"))]);
    f.file(&[(5, 4, Some("e")), (9, 5, Some("i"))]);
    let got = f.scan();
    assert_eq!(
        got.rows,
        owned(&[
            (1, 1, Some("a")),
            (2, 2, Some("b")),
            (5, 4, Some("e")),
            (8, 3, Some("h")),
            (9, 5, Some("i")),
        ])
    );
    // The first file's batch reaches past 5, so it goes row by row until
    // the sources no longer overlap: the last file's final row passes.
    assert!(
        got.passed_through < 5,
        "{} passed through",
        got.passed_through
    );
}

#[test]
fn point_lookups_see_both_tiers_and_tombstones() {
    let f = Fixture::new();
    f.file(&[(1, 1, Some("a")), (2, 2, Some("b"))]);
    f.hot(&[(2, 3, None), (3, 4, Some("c"))]);
    let snapshot = f.store.snapshot();
    let view = ScopeView::open(&snapshot, &f.def, &f.scope).unwrap();
    let keys = [Value::I64(1), Value::I64(2), Value::I64(3), Value::I64(4)];
    let found = view.lookup(&f.cold, f.runtime.handle(), &keys).unwrap();
    assert_eq!(seqs(&found), vec![(1, false), (3, true), (4, false)]);
    // The INSERT check's view: key 2's tombstone is hot, key 1 only in a file.
    let k1 = f.scope.pk_prefix(&Value::I64(1)).unwrap();
    let k2 = f.scope.pk_prefix(&Value::I64(2)).unwrap();
    let hot = view.hot_versions(&[&k1, &k2]).unwrap();
    assert!(hot[0].is_none());
    assert!(hot[1].as_ref().is_some_and(|v| v.deleted));
}

#[test]
fn a_file_of_many_batches_merges_with_a_hot_row_in_its_middle() {
    let f = Fixture::new();
    let rows: Vec<Row> = (0..10_000).map(|i| (i, i as u64 + 1, Some("x"))).collect();
    f.file(&rows);
    f.hot(&[(5_000, 20_000, Some("new")), (20_000, 20_001, Some("end"))]);
    let got = f.scan();
    assert_eq!(got.rows.len(), 10_001);
    assert!(
        got.rows.windows(2).all(|w| w[0].0 < w[1].0),
        "not in key order"
    );
    assert_eq!(got.rows[5_000], (5_000, 20_000, Some("new".to_string())));
    assert_eq!(got.rows[10_000], (20_000, 20_001, Some("end".to_string())));
    // Only the batch the hot row falls into goes row by row.
    assert!(
        got.passed_through >= 10_000 - 8_192,
        "{} rows passed through",
        got.passed_through
    );
}

#[test]
fn a_key_found_in_a_newer_file_is_not_asked_of_older_ones() {
    let f = Fixture::new();
    // Key 1 updated between three flushes, deleted in the fourth file; key
    // 2 only in the first; key 3 nowhere (inside every file's range).
    f.file(&[(1, 1, Some("a")), (2, 2, Some("b")), (4, 3, Some("d"))]);
    f.file(&[(1, 4, Some("a2")), (4, 5, Some("d2"))]);
    f.file(&[(1, 6, Some("a3")), (4, 7, Some("d3"))]);
    let snapshot = f.store.snapshot();
    let view = ScopeView::open(&snapshot, &f.def, &f.scope).unwrap();
    let found = view
        .lookup(&f.cold, f.runtime.handle(), &[Value::I64(1)])
        .unwrap();
    assert_eq!(seqs(&found), vec![(6, false)]);
    assert_eq!(view.files_read(), (1, 3), "the newest file answered");
    // Key 2 is only in the oldest file: every file is asked.
    let view = ScopeView::open(&snapshot, &f.def, &f.scope).unwrap();
    let keys = [Value::I64(1), Value::I64(2), Value::I64(3)];
    let found = view.lookup(&f.cold, f.runtime.handle(), &keys).unwrap();
    assert_eq!(seqs(&found), vec![(6, false), (2, false)]);
    assert_eq!(view.files_read(), (3, 3));
    drop(view);
    drop(snapshot);
    f.file(&[(1, 8, None), (4, 9, Some("d4"))]);
    let snapshot = f.store.snapshot();
    let view = ScopeView::open(&snapshot, &f.def, &f.scope).unwrap();
    let found = view
        .lookup(&f.cold, f.runtime.handle(), &[Value::I64(1)])
        .unwrap();
    assert_eq!(
        seqs(&found),
        vec![(8, true)],
        "the newest version is its tombstone"
    );
    assert_eq!(view.files_read(), (1, 4));
}

/// A scope's listing is kept between reads under its manifest version:
/// a snapshot from before a commit still lists exactly its own files after
/// a newer listing was kept, and another store with the same scope and the
/// same version numbers never gets this store's listing.
#[test]
fn a_kept_listing_serves_only_snapshots_at_its_manifest_version() {
    use super::ScopeFiles;
    let files = |snapshot: &kalamdb_store::StoreSnapshot<'_>, scope: &ScopeKey| {
        ScopeFiles::read(snapshot, scope)
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.path.clone())
            .collect::<Vec<_>>()
    };
    let fx = Fixture::new();
    fx.file(&[(1, 1, Some("a"))]);
    let before = fx.store.snapshot();
    assert_eq!(files(&before, &fx.scope), ["t/alice/batch-1.parquet"]);
    fx.file(&[(2, 2, Some("b"))]);
    let after = fx.store.snapshot();
    let both = ["t/alice/batch-1.parquet", "t/alice/batch-2.parquet"];
    assert_eq!(files(&after, &fx.scope), both);
    assert_eq!(
        files(&after, &fx.scope),
        both,
        "served from the kept listing"
    );
    assert_eq!(
        files(&before, &fx.scope),
        ["t/alice/batch-1.parquet"],
        "the older snapshot's version is not the kept one"
    );

    // Same scope bytes, same version numbers (both stores hand out the
    // same `_seq`s), other files.
    let other = Fixture::new();
    other.files.set(10);
    other.file(&[(3, 3, Some("c"))]);
    other.file(&[(4, 4, Some("d"))]);
    assert_eq!(
        files(&other.store.snapshot(), &other.scope),
        ["t/alice/batch-11.parquet", "t/alice/batch-12.parquet"]
    );
    assert_eq!(files(&fx.store.snapshot(), &fx.scope), both);

    // A scope without a version (written before versions existed) is
    // listed every time.
    let mut batch = fx.store.batch();
    batch.delete_meta(&meta_keys::scope_manifest_version(&fx.scope));
    fx.store.write(batch).unwrap();
    let mut batch = fx.store.batch();
    batch.delete_meta(&meta_keys::manifest_entry(&fx.scope, "batch-2.parquet"));
    fx.store.write(batch).unwrap();
    assert_eq!(
        files(&fx.store.snapshot(), &fx.scope),
        ["t/alice/batch-1.parquet"]
    );
}

#[test]
fn a_count_needs_no_merge_only_when_each_key_is_in_one_file() {
    let count = |f: &Fixture| {
        let snapshot = f.store.snapshot();
        let view = ScopeView::open(&snapshot, &f.def, &f.scope).unwrap();
        view.count_without_merge().unwrap()
    };
    let f = Fixture::new();
    f.file(&[(1, 1, Some("a")), (2, 2, None), (3, 3, Some("c"))]);
    f.file(&[(5, 4, Some("e")), (6, 5, Some("f"))]);
    // Five rows, one of them a tombstone: what a scan sees too.
    assert_eq!(count(&f), Some(4));
    assert_eq!(f.scan().rows.len(), 4);
    // A hot version the files already hold changes nothing.
    f.hot(&[(3, 3, Some("c"))]);
    assert_eq!(count(&f), Some(4));
    // A newer one needs the merge.
    f.hot(&[(9, 6, Some("x"))]);
    assert_eq!(count(&f), None);
    // So do files over the same keys.
    let g = Fixture::new();
    g.file(&[(1, 1, Some("a")), (5, 2, Some("b"))]);
    g.file(&[(3, 3, Some("c"))]);
    assert_eq!(count(&g), None);
    // Hot rows alone are counted as before.
    let h = Fixture::new();
    h.hot(&[(1, 1, Some("a")), (2, 2, None)]);
    assert_eq!(count(&h), Some(1));
}

#[test]
fn files_that_hold_each_key_once_are_read_one_after_another() {
    let f = Fixture::new();
    // Written out of key order: the scan still goes by key.
    f.file(&[(5, 4, Some("e")), (6, 5, Some("f"))]);
    f.file(&[(1, 1, Some("a")), (3, 3, Some("c"))]);
    let settled = f.scan();
    let ids: Vec<i64> = settled.rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, [1, 3, 5, 6]);
    assert_eq!(settled.passed_through, 4, "no row merged one by one");
    assert_eq!(settled.rows[2], (5, 4, Some("e".to_string())));
    // A newer hot version: the merge decides, the same way.
    f.hot(&[(3, 7, Some("C"))]);
    let merged = f.scan();
    let ids: Vec<i64> = merged.rows.iter().map(|r| r.0).collect();
    assert_eq!(ids, [1, 3, 5, 6]);
    assert_eq!(merged.rows[1], (3, 7, Some("C".to_string())));
}
