use crate::keys::ScopeKey;
use crate::{HotStore, RowVersion, StoreOptions};
use kalamdb_commons::Value;
use std::path::Path;

fn open(dir: &Path) -> HotStore {
    HotStore::open(dir, StoreOptions::default()).unwrap()
}

fn row(seq_marker: i64, deleted: bool) -> RowVersion {
    RowVersion {
        deleted,
        schema_version: 1,
        values: vec![Value::I64(seq_marker)],
    }
}

#[test]
fn newest_version_wins_and_scopes_are_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let alice = ScopeKey::new(1, Some("alice"));
    let bob = ScopeKey::new(1, Some("bob"));
    let mut batch = store.batch();
    for (scope, pk, marker) in [(&alice, 1, 10), (&alice, 2, 20), (&bob, 1, 99)] {
        let seq = store.next_seqs(1).unwrap();
        batch
            .put_version(scope, &Value::I64(pk), seq, &row(marker, false))
            .unwrap();
    }
    store.write(batch).unwrap();
    let mut batch = store.batch();
    let seq = store.next_seqs(1).unwrap();
    batch
        .put_version(&alice, &Value::I64(1), seq, &row(11, false))
        .unwrap();
    store.write(batch).unwrap();

    let (latest_seq, latest) = store
        .latest_version(&alice, &Value::I64(1))
        .unwrap()
        .unwrap();
    assert_eq!(latest_seq, seq);
    assert_eq!(latest.values, vec![Value::I64(11)]);
    assert!(store
        .latest_version(&alice, &Value::I64(3))
        .unwrap()
        .is_none());

    let seen: Vec<_> = store
        .snapshot()
        .latest_iter(alice.as_bytes())
        .map(|r| r.unwrap().2.values[0].clone())
        .collect();
    assert_eq!(seen, vec![Value::I64(11), Value::I64(20)]);
}

#[test]
fn state_and_sequence_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let scope = ScopeKey::new(3, None);
    let last;
    {
        let store = open(dir.path());
        let mut batch = store.batch();
        last = store.next_seqs(5).unwrap() + 4;
        batch
            .put_version(&scope, &Value::Text("k".into()), last, &row(1, true))
            .unwrap();
        batch.put_meta(b"cat/x", b"{}");
        store.write(batch).unwrap();
    }
    let store = open(dir.path());
    assert!(store.next_seqs(1).unwrap() > last);
    let (_, tomb) = store
        .latest_version(&scope, &Value::Text("k".into()))
        .unwrap()
        .unwrap();
    assert!(tomb.deleted);
    assert_eq!(store.meta_scan(b"cat/").unwrap().len(), 1);
}

#[test]
fn prefix_delete_removes_one_table_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut batch = store.batch();
    for table in [1u64, 2] {
        let scope = ScopeKey::new(table, Some("u"));
        batch
            .put_version(
                &scope,
                &Value::I64(1),
                store.next_seqs(1).unwrap(),
                &row(1, false),
            )
            .unwrap();
    }
    store.write(batch).unwrap();
    let mut batch = store.batch();
    batch.delete_rows_with_prefix(&ScopeKey::table_prefix(1));
    store.write(batch).unwrap();
    let count = |table| {
        store
            .snapshot()
            .latest_iter(&ScopeKey::table_prefix(table))
            .count()
    };
    assert_eq!((count(1), count(2)), (0, 1));
}

#[test]
fn snapshot_sees_a_fixed_view_and_exact_deletes_spare_newer_versions() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let scope = ScopeKey::new(9, Some("u"));
    let put = |pk: i64, marker: i64| {
        let mut batch = store.batch();
        let seq = store.next_seqs(1).unwrap();
        batch
            .put_version(&scope, &Value::I64(pk), seq, &row(marker, false))
            .unwrap();
        store.write(batch).unwrap();
        seq
    };
    put(1, 10);
    put(1, 11);
    put(2, 20);
    let snapshot = store.snapshot();
    let after = put(1, 12);
    assert!(after > snapshot.watermark);

    let mut seen = Vec::new();
    snapshot
        .scan_versions(scope.as_bytes(), &mut |v| {
            assert!(v.seq <= snapshot.watermark);
            seen.push((v.key.to_vec(), v.newest));
            Ok(true)
        })
        .unwrap();
    assert_eq!(
        seen.iter().map(|(_, newest)| *newest).collect::<Vec<_>>(),
        vec![true, false, true]
    );
    assert_eq!(snapshot.meta_scan(b"x").unwrap().len(), 0);

    let mut batch = store.batch();
    for (key, _) in &seen {
        batch.delete_row_key(key);
    }
    drop(snapshot);
    store.write(batch).unwrap();
    let (seq, latest) = store
        .latest_version(&scope, &Value::I64(1))
        .unwrap()
        .unwrap();
    assert_eq!((seq, latest.values[0].clone()), (after, Value::I64(12)));
    assert!(store
        .latest_version(&scope, &Value::I64(2))
        .unwrap()
        .is_none());
}

/// The batched lookup an INSERT uses answers, for keys in any order, what
/// a lookup per key would: keys around, between and beyond stored ones,
/// tombstones, repeated keys, and a neighbouring user's keys that sort in
/// between must not be taken for this user's.
#[test]
fn batched_latest_versions_match_one_lookup_per_key() {
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    let strategy = (
        proptest::collection::vec((0i64..60, any::<bool>(), 0usize..3), 0..40),
        proptest::collection::vec(0i64..70, 0..50),
    );
    proptest!(ProptestConfig::with_cases(64), |((writes, queries) in strategy)| {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let alice = ScopeKey::new(1, Some("alice"));
        let neighbours = [ScopeKey::new(1, Some("alicf")), ScopeKey::new(1, Some("al"))];
        let mut model = BTreeMap::new();
        for (pk, deleted, neighbour) in writes {
            let seq = store.next_seqs(1).unwrap();
            let mut batch = store.batch();
            batch.put_version(&alice, &Value::I64(pk), seq, &row(seq as i64, deleted)).unwrap();
            // Some keys also exist for other users, written later.
            if neighbour < 2 {
                let other = store.next_seqs(1).unwrap();
                batch
                    .put_version(&neighbours[neighbour], &Value::I64(pk + 1), other, &row(-1, false))
                    .unwrap();
            }
            store.write(batch).unwrap();
            model.insert(pk, (seq, deleted));
        }
        let prefixes: Vec<Vec<u8>> =
            queries.iter().map(|&pk| alice.pk_prefix(&Value::I64(pk)).unwrap()).collect();
        let prefixes: Vec<&[u8]> = prefixes.iter().map(Vec::as_slice).collect();
        let found = store.latest_versions(&alice, &prefixes).unwrap();
        prop_assert_eq!(found.len(), queries.len());
        for (pk, found) in queries.iter().zip(found) {
            let found = found.map(|(seq, v)| (seq, v.deleted, v.values[0].clone()));
            let expected = model.get(pk).map(|&(seq, d)| (seq, d, Value::I64(seq as i64)));
            prop_assert_eq!(found, expected, "key {}", pk);
        }
    });
}

#[test]
fn a_tables_manifests_go_with_their_versions_and_no_other_tables() {
    use crate::meta_keys;
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let mut batch = store.batch();
    for uid in [1, 2] {
        for user in ["alice", "bob"] {
            let scope = ScopeKey::new(uid, Some(user));
            batch.put_manifest_entry(&scope, "f.parquet", b"{}", uid * 10);
        }
    }
    store.write(batch).unwrap();
    let listed = |prefix: &[u8]| store.meta_scan(prefix).unwrap().len();
    assert_eq!(listed(meta_keys::MANIFESTS), 4);
    assert_eq!(listed(meta_keys::MANIFEST_VERSIONS), 4);
    let mut batch = store.batch();
    batch.delete_table_manifests(1);
    store.write(batch).unwrap();
    assert_eq!(listed(&meta_keys::table_manifests(1)), 0);
    assert_eq!(listed(&meta_keys::table_manifest_versions(1)), 0);
    assert_eq!(listed(&meta_keys::table_manifests(2)), 2);
    assert_eq!(listed(&meta_keys::table_manifest_versions(2)), 2);
    let version = store
        .meta_get(&meta_keys::scope_manifest_version(&ScopeKey::new(
            2,
            Some("bob"),
        )))
        .unwrap();
    assert_eq!(version, Some(20u64.to_be_bytes().to_vec()));
}

mod change_log {
    use super::*;
    use crate::{ChangeKind, Inliner, RowChange, StoreError};

    fn change(seq: u64, kind: ChangeKind, marker: i64) -> RowChange {
        RowChange {
            seq,
            kind,
            new: (kind != ChangeKind::Delete).then(|| row(marker, false)),
            old: (kind != ChangeKind::Insert).then(|| row(marker - 1, false)),
            old_seq: if kind == ChangeKind::Insert {
                0
            } else {
                seq - 1
            },
        }
    }

    fn log(store: &HotStore, scope: &ScopeKey, changes: &[RowChange]) {
        let mut batch = store.batch();
        for c in changes {
            batch.put_change(scope, c);
        }
        store.write(batch).unwrap();
    }

    #[test]
    fn a_scope_reads_its_own_changes_in_seq_order_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let alice = ScopeKey::new(1, Some("alice"));
        let alicia = ScopeKey::new(1, Some("alicia"));
        let shared = ScopeKey::new(2, None);
        log(
            &store,
            &alice,
            &[
                change(3, ChangeKind::Insert, 3),
                change(7, ChangeKind::Update, 7),
            ],
        );
        log(&store, &alicia, &[change(4, ChangeKind::Insert, 4)]);
        log(&store, &shared, &[change(5, ChangeKind::Delete, 5)]);
        log(&store, &alice, &[change(9, ChangeKind::Delete, 9)]);

        let all = store.changes(&alice, 0, u64::MAX, 100).unwrap();
        assert_eq!(
            all,
            vec![
                change(3, ChangeKind::Insert, 3),
                change(7, ChangeKind::Update, 7),
                change(9, ChangeKind::Delete, 9)
            ]
        );
        let seqs = |after, through, limit| -> Vec<u64> {
            store
                .changes(&alice, after, through, limit)
                .unwrap()
                .iter()
                .map(|c| c.seq)
                .collect()
        };
        assert_eq!(
            seqs(3, 9, 100),
            vec![7, 9],
            "after is exclusive, through inclusive"
        );
        assert_eq!(seqs(3, 8, 100), vec![7]);
        assert_eq!(seqs(0, 9, 1), vec![3], "limit");
        assert_eq!(seqs(9, 9, 100), Vec::<u64>::new());
        assert_eq!(store.changes(&shared, 0, 10, 10).unwrap().len(), 1);
    }

    #[test]
    fn trimming_raises_a_persistent_floor_and_drops_only_what_is_below_it() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = open(dir.path());
            let alice = ScopeKey::new(1, Some("alice"));
            let bob = ScopeKey::new(1, Some("bob"));
            let shared = ScopeKey::new(2, None);
            for seq in 1..=10 {
                let scope = [&alice, &bob, &shared][seq as usize % 3];
                log(
                    &store,
                    scope,
                    &[change(seq, ChangeKind::Insert, seq as i64)],
                );
            }
            assert_eq!(store.changes_floor(), 0);
            assert_eq!(store.trim_changes(6).unwrap(), 3, "one range per scope");
            assert_eq!(store.changes_floor(), 6);
            assert_eq!(store.trim_changes(4).unwrap(), 0, "the floor never falls");
            assert_eq!(store.changes_floor(), 6);
            let left: Vec<u64> = [&alice, &bob, &shared]
                .iter()
                .flat_map(|s| store.changes(s, 0, u64::MAX, 100).unwrap())
                .map(|c| c.seq)
                .collect();
            let mut left = left;
            left.sort();
            assert_eq!(left, vec![7, 8, 9, 10]);
        }
        let store = open(dir.path());
        assert_eq!(store.changes_floor(), 6, "the floor survives a restart");
    }

    #[test]
    fn a_write_is_one_entry_and_trimming_keeps_an_entry_with_changes_above_the_floor() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let alice = ScopeKey::new(1, Some("alice"));
        let bob = ScopeKey::new(1, Some("bob"));
        // One batch: alice 1-3, bob 4, alice 5: three entries.
        let mut batch = store.batch();
        for seq in 1..=3 {
            batch.put_change(&alice, &change(seq, ChangeKind::Insert, seq as i64));
        }
        batch.put_change(&bob, &change(4, ChangeKind::Insert, 4));
        batch.put_change(&alice, &change(5, ChangeKind::Update, 5));
        store.write(batch).unwrap();
        let entries = store
            .db()
            .iterator_cf(store.changes_cf(), rocksdb::IteratorMode::Start)
            .count();
        assert_eq!(entries, 3);
        let seqs = |scope, after| -> Vec<u64> {
            store
                .changes(scope, after, u64::MAX, 100)
                .unwrap()
                .iter()
                .map(|c| c.seq)
                .collect()
        };
        assert_eq!(seqs(&alice, 0), vec![1, 2, 3, 5]);
        assert_eq!(seqs(&alice, 2), vec![3, 5], "from inside an entry");
        assert_eq!(seqs(&bob, 0), vec![4]);

        store.trim_changes(2).unwrap();
        assert_eq!(
            seqs(&alice, 2),
            vec![3, 5],
            "an entry reaching above the floor stays"
        );
        store.trim_changes(4).unwrap();
        assert_eq!(seqs(&alice, 4), vec![5]);
        assert_eq!(seqs(&bob, 0), Vec::<u64>::new());
    }

    #[test]
    fn changes_come_grouped_by_the_write_that_committed_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let alice = ScopeKey::new(1, Some("alice"));
        let first: Vec<RowChange> = (1..=3)
            .map(|s| change(s, ChangeKind::Insert, s as i64))
            .collect();
        log(&store, &alice, &first);
        log(
            &store,
            &alice,
            &[
                change(5, ChangeKind::Update, 5),
                change(6, ChangeKind::Delete, 6),
            ],
        );
        log(&store, &alice, &[change(8, ChangeKind::Insert, 8)]);
        let groups = |after, through, limit| -> Vec<Vec<u64>> {
            store
                .changes_by_write(
                    &store.snapshot(),
                    &alice,
                    after,
                    through,
                    limit,
                    &mut crate::HotOnly,
                )
                .unwrap()
                .iter()
                .map(|w| w.iter().map(|c| c.seq).collect())
                .collect()
        };
        assert_eq!(
            groups(0, u64::MAX, 100),
            vec![vec![1, 2, 3], vec![5, 6], vec![8]]
        );
        assert_eq!(groups(2, u64::MAX, 100), vec![vec![3], vec![5, 6], vec![8]]);
        assert_eq!(groups(0, 5, 100), vec![vec![1, 2, 3], vec![5]]);
        assert_eq!(groups(0, 4, 100), vec![vec![1, 2, 3]]);
        assert_eq!(groups(0, u64::MAX, 2), vec![vec![1, 2, 3]], "whole writes");
        assert_eq!(groups(0, u64::MAX, 4), vec![vec![1, 2, 3], vec![5, 6]]);
        assert_eq!(
            store.changes(&alice, 0, u64::MAX, 2).unwrap().len(),
            2,
            "changes keeps to its limit"
        );
    }

    #[test]
    fn a_large_write_is_split_into_entries_of_about_a_mebibyte() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let scope = ScopeKey::new(1, Some("alice"));
        let big = |seq: u64| RowChange {
            seq,
            kind: ChangeKind::Insert,
            new: Some(RowVersion {
                deleted: false,
                schema_version: 1,
                values: vec![Value::Text("x".repeat(600_000))],
            }),
            old: None,
            old_seq: 0,
        };
        log(&store, &scope, &[big(1), big(2), big(3)]);
        let entries = store
            .db()
            .iterator_cf(store.changes_cf(), rocksdb::IteratorMode::Start)
            .count();
        assert_eq!(entries, 2, "1 and 2 fill one entry, 3 starts the next");
        assert_eq!(
            store.changes(&scope, 0, u64::MAX, 10).unwrap(),
            vec![big(1), big(2), big(3)]
        );
        assert_eq!(store.changes(&scope, 1, u64::MAX, 10).unwrap().len(), 2);
    }

    #[test]
    fn a_log_in_the_per_row_layout_is_dropped_and_the_floor_raised_over_it() {
        let dir = tempfile::tempdir().unwrap();
        let scope = ScopeKey::new(1, Some("alice"));
        {
            let store = open(dir.path());
            let first = store.next_seqs(3).unwrap();
            // What the first layout wrote: one entry per row, kind first.
            let mut key = scope.as_bytes().to_vec();
            key.extend_from_slice(&first.to_be_bytes());
            store
                .db()
                .put_cf(store.changes_cf(), &key, [1u8, 0, 0])
                .unwrap();
            store
                .db()
                .delete_cf(store.meta(), b"\x00changes_format")
                .unwrap();
        }
        let store = open(dir.path());
        let floor = store.changes_floor();
        assert!(
            floor >= 3,
            "every earlier _seq is at or below the floor ({floor})"
        );
        assert!(store.changes(&scope, 0, u64::MAX, 10).unwrap().is_empty());
        let seq = store.next_seqs(1).unwrap();
        assert!(seq > floor, "new changes are above it");
        log(&store, &scope, &[change(seq, ChangeKind::Insert, 1)]);
        drop(store);
        let store = open(dir.path());
        assert_eq!(store.changes_floor(), floor, "upgraded once");
        assert_eq!(store.changes(&scope, floor, u64::MAX, 10).unwrap().len(), 1);
    }

    #[test]
    fn dropping_a_table_removes_its_log_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let a = ScopeKey::new(1, Some("alice"));
        let b = ScopeKey::new(2, Some("alice"));
        log(&store, &a, &[change(1, ChangeKind::Insert, 1)]);
        log(&store, &b, &[change(2, ChangeKind::Insert, 2)]);
        let mut batch = store.batch();
        batch.delete_changes_of_table(1);
        store.write(batch).unwrap();
        assert!(store.changes(&a, 0, u64::MAX, 10).unwrap().is_empty());
        assert_eq!(store.changes(&b, 0, u64::MAX, 10).unwrap().len(), 1);
    }

    /// Inserts `pks` of `scope` as one write, as the engine does: each
    /// version, and a log entry that refers to them.
    fn insert(store: &HotStore, scope: &ScopeKey, pks: &[i64], text: &str) -> Vec<u64> {
        let first = store.next_seqs(pks.len() as u64).unwrap();
        let mut batch = store.batch();
        let mut seqs = Vec::new();
        for (i, pk) in pks.iter().enumerate() {
            let seq = first + i as u64;
            let version = RowVersion {
                deleted: false,
                schema_version: 1,
                values: vec![Value::I64(*pk), Value::Text(format!("{text}{pk}"))],
            };
            batch.put_inserted(
                scope,
                &scope.pk_prefix(&Value::I64(*pk)).unwrap(),
                seq,
                &version,
            );
            seqs.push(seq);
        }
        store.write(batch).unwrap();
        seqs
    }

    fn version(pk: i64, text: &str) -> RowVersion {
        RowVersion {
            deleted: false,
            schema_version: 1,
            values: vec![Value::I64(pk), Value::Text(text.into())],
        }
    }

    /// Stands in for a scope's files: the versions by `_seq`; asks for
    /// anything else fail.
    struct Files(std::collections::HashMap<u64, RowVersion>);

    impl crate::FlushedVersions for Files {
        fn versions(&mut self, refs: &[(&[u8], u64)]) -> Result<Vec<RowVersion>, StoreError> {
            refs.iter()
                .map(|(_, seq)| {
                    self.0
                        .get(seq)
                        .cloned()
                        .ok_or_else(|| StoreError::Flushed(format!("no _seq {seq}")))
                })
                .collect()
        }
    }

    fn texts(changes: &[RowChange]) -> Vec<String> {
        changes
            .iter()
            .map(|c| match &c.new.as_ref().expect("an insert").values[1] {
                Value::Text(t) => t.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn an_insert_refers_to_its_version_until_a_flush_inlines_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let alice = ScopeKey::new(1, Some("alice"));
        let bob = ScopeKey::new(1, Some("bob"));
        let long = "v".repeat(500);
        let first = insert(&store, &alice, &[1, 2, 3], &long);
        let second = insert(&store, &alice, &[4], "w");
        insert(&store, &bob, &[1], "b");
        let log_bytes = store
            .db()
            .iterator_cf(store.changes_cf(), rocksdb::IteratorMode::Start)
            .map(|item| item.unwrap().1.len())
            .sum::<usize>();
        assert!(
            log_bytes < 200,
            "the log holds keys, not the rows' {} bytes ({log_bytes})",
            3 * long.len()
        );
        let read = store.changes(&alice, 0, u64::MAX, 100).unwrap();
        assert_eq!(
            texts(&read),
            vec![
                format!("{long}1"),
                format!("{long}2"),
                format!("{long}3"),
                "w4".into()
            ]
        );

        // A flush that deletes two of the first write's versions without
        // writing them anywhere (updates superseded them) gives their
        // references the values first; the third stays a reference.
        let mut inliner = Inliner::new(&alice);
        for (pk, seq) in [1, 2].iter().zip(&first) {
            inliner.push(*seq, &version(*pk, &format!("{long}{pk}")).encode());
        }
        assert_eq!(inliner.apply(&store).unwrap(), 1);
        for (pk, seq) in [1, 2].iter().zip(&first) {
            inliner.push(*seq, &version(*pk, &format!("{long}{pk}")).encode());
        }
        assert_eq!(
            inliner.apply(&store).unwrap(),
            0,
            "an inlined entry is left alone"
        );
        let mut batch = store.batch();
        for (pk, seq) in [1, 2].iter().zip(&first) {
            batch.delete_row_key(&alice.version_key(&Value::I64(*pk), *seq).unwrap());
        }
        store.write(batch).unwrap();
        assert_eq!(store.changes(&alice, 0, u64::MAX, 100).unwrap(), read);
        assert_eq!(store.changes(&bob, 0, u64::MAX, 100).unwrap().len(), 1);

        // A version a flush moved to a file: the reader's files give it.
        let mut batch = store.batch();
        batch.delete_row_key(&alice.version_key(&Value::I64(3), first[2]).unwrap());
        store.write(batch).unwrap();
        let mut files = Files(
            [(first[2], version(3, &format!("{long}3")))]
                .into_iter()
                .collect(),
        );
        assert_eq!(
            store
                .changes_by_write(&store.snapshot(), &alice, 0, u64::MAX, 100, &mut files)
                .unwrap()
                .concat(),
            read
        );

        // A reference whose version is gone is an error, never a silent gap.
        let mut batch = store.batch();
        batch.delete_row_key(&alice.version_key(&Value::I64(4), second[0]).unwrap());
        store.write(batch).unwrap();
        let err = store.changes(&alice, 0, u64::MAX, 100).unwrap_err();
        assert!(err.to_string().contains("missing row version"), "{err}");
    }

    #[test]
    fn references_in_any_key_order_read_the_same_before_and_after_inlining() {
        // Writes whose keys come in scattered order, with newer versions of
        // some keys between them (they lie between a reference and the
        // next in key order): the reader steps and seeks over them.
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let scope = ScopeKey::new(1, Some("alice"));
        let other = ScopeKey::new(1, Some("alicf"));
        let mut state = 7u64;
        let mut next = |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        let mut used = std::collections::HashSet::new();
        let mut written: Vec<(i64, u64)> = Vec::new();
        for round in 0..40 {
            // Half the writes take a run of consecutive keys, half keys
            // scattered among the others' (gaps of many versions).
            let start = 10_000 * (round + 1);
            let mut pks: Vec<i64> = (0..1 + next(30) as i64)
                .map(|i| match round % 2 {
                    0 => start + i,
                    _ => loop {
                        let pk = next(400_000) as i64;
                        if pk % 10_000 >= 100 && used.insert(pk) {
                            break pk;
                        }
                    },
                })
                .collect();
            match next(3) {
                0 => pks.reverse(),
                1 => pks.sort_by_key(|p| (p * 7919) % 31),
                _ => {}
            }
            let seqs = insert(&store, &scope, &pks, "r");
            insert(&store, &other, &pks, "o");
            written.extend(pks.iter().copied().zip(seqs));
            // A newer version of an earlier key, not in the log (as an
            // update's version is not referenced).
            let (old_pk, _) = written[next(written.len() as u64) as usize];
            let seq = store.next_seqs(1).unwrap();
            let mut batch = store.batch();
            let version = RowVersion {
                deleted: false,
                schema_version: 1,
                values: vec![Value::I64(old_pk), Value::Text("newer".into())],
            };
            batch
                .put_version(&scope, &Value::I64(old_pk), seq, &version)
                .unwrap();
            store.write(batch).unwrap();
        }
        let before = store.changes(&scope, 0, u64::MAX, usize::MAX).unwrap();
        assert_eq!(before.len(), written.len());
        for (change, (pk, seq)) in before.iter().zip(&written) {
            assert_eq!(change.seq, *seq);
            assert_eq!(
                change.new.as_ref().unwrap().values,
                vec![Value::I64(*pk), Value::Text(format!("r{pk}"))]
            );
        }
        // A resume from the middle of a write reads the same tail.
        let (_, mid) = written[written.len() / 2];
        assert_eq!(
            store.changes(&scope, mid, u64::MAX, usize::MAX).unwrap(),
            before[written.len() / 2 + 1..]
        );

        // Every other version is superseded (inlined), the rest moved to
        // files; then none is hot and the log reads the same.
        let mut inliner = Inliner::new(&scope);
        let mut files = Files(Default::default());
        for (i, (pk, seq)) in written.iter().enumerate() {
            let v = version(*pk, &format!("r{pk}"));
            match i % 2 {
                0 => inliner.push(*seq, &v.encode()),
                _ => {
                    files.0.insert(*seq, v);
                }
            }
        }
        assert!(inliner.apply(&store).unwrap() >= 20);
        let mut batch = store.batch();
        for (pk, seq) in &written {
            batch.delete_row_key(&scope.version_key(&Value::I64(*pk), *seq).unwrap());
        }
        store.write(batch).unwrap();
        let read = |after: u64| {
            store
                .changes_by_write(
                    &store.snapshot(),
                    &scope,
                    after,
                    u64::MAX,
                    usize::MAX,
                    &mut Files(files.0.clone()),
                )
                .unwrap()
                .concat()
        };
        assert_eq!(read(0), before);
        assert_eq!(read(mid), before[written.len() / 2 + 1..]);
        assert!(
            store.changes(&scope, 0, u64::MAX, usize::MAX).is_err(),
            "without the files the moved versions are missing"
        );
    }

    #[test]
    fn the_log_tells_whether_a_scope_was_written_since_a_seq() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let alice = ScopeKey::new(1, Some("alice"));
        let alicia = ScopeKey::new(1, Some("alicia"));
        let first = insert(&store, &alice, &[1, 2], "a");
        assert_eq!(store.written_since(&alice, first[1]).unwrap(), Some(false));
        assert_eq!(store.written_since(&alice, first[0]).unwrap(), Some(true));
        assert_eq!(store.written_since(&alicia, 0).unwrap(), Some(false));
        // Another scope's writes, even one whose name extends this one's,
        // are not this scope's.
        insert(&store, &alicia, &[1], "b");
        assert_eq!(store.written_since(&alice, first[1]).unwrap(), Some(false));
        let later = insert(&store, &alice, &[3], "c");
        assert_eq!(store.written_since(&alice, first[1]).unwrap(), Some(true));
        // Once the floor passes a seq, the log cannot tell any more.
        store.trim_changes(later[0]).unwrap();
        assert_eq!(store.written_since(&alice, first[1]).unwrap(), None);
        assert_eq!(store.written_since(&alice, later[0]).unwrap(), Some(false));
    }

    #[test]
    fn an_inliner_past_its_bound_applies_in_parts_with_the_same_result() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let scope = ScopeKey::new(1, Some("alice"));
        let big = "y".repeat(300_000);
        let pks: Vec<i64> = (0..21).collect();
        let mut seqs = Vec::new();
        for write in pks.chunks(7) {
            seqs.extend(insert(&store, &scope, write, &big));
        }
        let before = store.changes(&scope, 0, u64::MAX, 100).unwrap();
        let mut inliner = Inliner::new(&scope);
        let mut applied_early = 0;
        for (pk, seq) in pks.iter().zip(&seqs) {
            inliner.push(*seq, &version(*pk, &format!("{big}{pk}")).encode());
            if inliner.is_full() {
                applied_early += inliner.apply(&store).unwrap();
            }
        }
        assert!(applied_early > 0, "6 MB of versions passed the 4 MiB bound");
        inliner.apply(&store).unwrap();
        let mut batch = store.batch();
        for (pk, seq) in pks.iter().zip(&seqs) {
            batch.delete_row_key(&scope.version_key(&Value::I64(*pk), *seq).unwrap());
        }
        store.write(batch).unwrap();
        assert_eq!(store.changes(&scope, 0, u64::MAX, 100).unwrap(), before);
    }

    #[test]
    fn an_entry_of_references_is_bounded_by_the_rows_they_stand_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        let scope = ScopeKey::new(1, Some("alice"));
        let big = "x".repeat(300_000);
        let pks: Vec<i64> = (0..7).collect();
        let seqs = insert(&store, &scope, &pks, &big);
        let entries = store
            .db()
            .iterator_cf(store.changes_cf(), rocksdb::IteratorMode::Start)
            .count();
        assert_eq!(entries, 2, "closed at about a mebibyte of rows");
        let mut inliner = Inliner::new(&scope);
        for (pk, seq) in pks.iter().zip(&seqs) {
            inliner.push(*seq, &version(*pk, &format!("{big}{pk}")).encode());
        }
        assert_eq!(inliner.apply(&store).unwrap(), 2);
        let largest = store
            .db()
            .iterator_cf(store.changes_cf(), rocksdb::IteratorMode::Start)
            .map(|item| item.unwrap().1.len())
            .max()
            .unwrap();
        assert!(
            largest < 2 << 20,
            "inlined entries stay near the bound ({largest})"
        );
        assert_eq!(store.changes(&scope, 0, u64::MAX, 100).unwrap().len(), 7);
    }
}
