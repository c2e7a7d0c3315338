use super::*;
use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("body", DataType::Utf8, true),
        Field::new(SEQ_COLUMN, DataType::Int64, false),
    ]))
}

fn batch(ids: std::ops::Range<i64>) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(ids.clone())),
            Arc::new(StringArray::from_iter_values(
                ids.clone().map(|i| format!("row {i}")),
            )),
            Arc::new(Int64Array::from_iter_values(ids.map(|i| 1000 + i))),
        ],
    )
    .unwrap()
}

/// The same checks against every store implementation.
async fn round_trip(store: Arc<dyn ObjectStore>) {
    let dir = Path::from("app/messages/alice");
    let meta = FileMeta {
        table_id: "app.messages".into(),
        user_id: Some("alice".into()),
        schema_version: 3,
        primary_key: None,
    };
    let path = dir.clone().join(file_name(1249, 7).as_str());
    let mut writer = ParquetFileWriter::create(store.clone(), path, schema(), meta).unwrap();
    writer.write(&batch(0..100)).await.unwrap();
    writer.write(&batch(100..250)).await.unwrap();
    // Nothing is visible before the upload completes.
    let listed: Vec<_> = store.list(Some(&dir)).try_collect().await.unwrap();
    assert!(listed.is_empty());
    let written = writer.finish().await.unwrap();
    assert_eq!(written.rows, 250);
    assert_eq!((written.min_seq, written.max_seq), (1000, 1249));
    assert_eq!(
        written.path.as_ref(),
        "app/messages/alice/batch-1249-t7.parquet"
    );
    assert!(written.bytes > 0);

    let (batches, metadata) = read_file(store.clone(), &written.path).await.unwrap();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 250);
    assert_eq!(metadata[META_TABLE], "app.messages");
    assert_eq!(metadata[META_USER], "alice");
    assert_eq!(metadata[META_SCHEMA_VERSION], "3");
    assert_eq!(metadata[META_MIN_SEQ], "1000");
    assert_eq!(metadata[META_MAX_SEQ], "1249");
    let listed: Vec<_> = store.list(Some(&dir)).try_collect().await.unwrap();
    assert_eq!(listed.len(), 1);

    // A writer that saw no rows writes no file.
    let meta = FileMeta {
        table_id: "app.messages".into(),
        user_id: Some("alice".into()),
        schema_version: 3,
        primary_key: None,
    };
    let empty = dir.clone().join(file_name(2000, 7).as_str());
    let writer = ParquetFileWriter::create(store.clone(), empty, schema(), meta).unwrap();
    assert!(writer.finish().await.is_err());
}

#[tokio::test]
async fn round_trip_in_memory() {
    round_trip(Arc::new(InMemory::new())).await;
}

#[tokio::test]
async fn round_trip_on_local_disk() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(Arc::new(
        LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
    ))
    .await;
}

#[tokio::test]
async fn batches_without_seq_are_refused() {
    let no_seq = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
    let meta = FileMeta {
        table_id: "a.b".into(),
        user_id: None,
        schema_version: 1,
        primary_key: None,
    };
    assert!(
        ParquetFileWriter::create(Arc::new(InMemory::new()), Path::from("a/b"), no_seq, meta)
            .is_err()
    );
}

/// `store` as lookups read it, through `cache`.
fn through(store: &Arc<dyn ObjectStore>, cache: &Arc<crate::FileCache>) -> crate::CachedFiles {
    crate::CachedFiles {
        store: store.clone(),
        cache: cache.clone(),
        storage: "local".into(),
    }
}

/// `store` behind a wrapper that counts the bytes read through it.
fn counting(store: &Arc<dyn ObjectStore>) -> (Arc<dyn ObjectStore>, Arc<crate::faulty::Faults>) {
    let faults = Arc::new(crate::faulty::Faults::default());
    let counted = Arc::new(crate::faulty::FaultyStore::new(
        store.clone(),
        faults.clone(),
    ));
    (counted, faults)
}

#[tokio::test]
async fn point_reads_decode_only_the_pages_that_may_hold_the_key() {
    use crate::block_cache::BlockCache;
    use crate::metadata_cache::{KeyFilterCache, MetadataCache};
    use crate::{
        read_row_groups_for_keys, read_row_groups_for_keys_cached, FileCache, KeyProbe,
        FILE_CACHE_BYTES,
    };
    // Nothing kept: every read parses the file's metadata.
    let cache = Arc::new(FileCache::new(0));
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let path = Path::from("t/batch-1.parquet");
    let meta = FileMeta {
        table_id: "a.t".into(),
        user_id: None,
        schema_version: 1,
        primary_key: Some("id".into()),
    };
    let mut writer =
        ParquetFileWriter::create(store.clone(), path.clone(), schema(), meta).unwrap();
    // Three row groups: 0..65536, 65536..131072, 131072..150000.
    for start in (0..150_000).step_by(10_000) {
        writer
            .write(&batch(start..(start + 10_000).min(150_000)))
            .await
            .unwrap();
    }
    let size = writer.finish().await.unwrap().bytes;
    let rows = |batches: Vec<RecordBatch>| batches.iter().map(|b| b.num_rows()).sum::<usize>();
    let ids = |batches: &[RecordBatch]| -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                b.column(0)
                    .as_primitive::<arrow::datatypes::Int64Type>()
                    .values()
                    .to_vec()
            })
            .collect()
    };
    // One page of the row group holding the key. A page has PAGE_ROWS rows
    // or a little more: the writer closes it after the chunk of a batch
    // that reaches the limit.
    let page = 2 * crate::parquet_file::PAGE_ROWS;
    let one = read_row_groups_for_keys(
        &through(&store, &cache),
        &path,
        None,
        "id",
        &[KeyProbe::Int(100_000)],
    )
    .await
    .unwrap();
    assert!(ids(&one).contains(&100_000));
    assert!(rows(one) <= page);
    let two = read_row_groups_for_keys(
        &through(&store, &cache),
        &path,
        Some(size),
        "id",
        &[KeyProbe::Int(5), KeyProbe::Int(149_999)],
    )
    .await
    .unwrap();
    assert!(ids(&two).contains(&5) && ids(&two).contains(&149_999));
    assert!(rows(two) <= 2 * page);
    let none = read_row_groups_for_keys(
        &through(&store, &cache),
        &path,
        None,
        "id",
        &[KeyProbe::Int(-1)],
    )
    .await
    .unwrap();
    assert_eq!(rows(none), 0);
    let text = read_row_groups_for_keys(
        &through(&store, &cache),
        &path,
        Some(size),
        "body",
        &[KeyProbe::Bytes(b"zzz".to_vec())],
    )
    .await
    .unwrap();
    assert_eq!(rows(text), 0, "above every row group's max");
    // Through ranged reads: the footer, the page index and one page of
    // each column, not the whole file.
    let (counted, faults) = counting(&store);
    let point = read_row_groups_for_keys(
        &through(&counted, &cache),
        &path,
        Some(size),
        "id",
        &[KeyProbe::Int(140_000)],
    )
    .await
    .unwrap();
    assert!(ids(&point).contains(&140_000));
    assert!(rows(point) <= page);
    let fetched = faults.bytes_read.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        fetched > 0 && fetched < size / 5,
        "fetched {fetched} of {size} bytes"
    );
    // A lookup inflates the dictionary page of each chunk it reads: none
    // for the unique key and `_seq`, a small one elsewhere.
    let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
    let footer = parquet::file::metadata::ParquetMetaDataReader::new()
        .parse_and_finish(&bytes)
        .unwrap();
    for group in footer.row_groups() {
        for column in group.columns() {
            let name = column.column_path().string();
            let unique = name == "id" || name == SEQ_COLUMN;
            assert_eq!(
                column.dictionary_page_offset().is_some(),
                !unique,
                "{name}: dictionary only where values repeat"
            );
        }
    }
    // With the metadata and bytes kept, a second lookup in the file
    // fetches nothing.
    let kept = Arc::new(FileCache::new(FILE_CACHE_BYTES));
    let mut fetched = Vec::new();
    for _ in 0..2 {
        let (counted, faults) = counting(&store);
        let point = read_row_groups_for_keys(
            &through(&counted, &kept),
            &path,
            Some(size),
            "id",
            &[KeyProbe::Int(140_000)],
        )
        .await
        .unwrap();
        assert!(ids(&point).contains(&140_000));
        fetched.push(faults.bytes_read.load(std::sync::atomic::Ordering::SeqCst));
    }
    assert_eq!(kept.metadata.hits_and_misses(), (1, 1));
    assert!(fetched[0] > 0 && fetched[1] == 0, "fetched {fetched:?}");
    // From the cache alone, without waiting: the same rows when it holds
    // them, `None` (and nothing fetched) when it does not.
    let cached = read_row_groups_for_keys_cached(
        &through(&store, &kept),
        &path,
        size,
        "id",
        &[KeyProbe::Int(140_000)],
    )
    .unwrap()
    .expect("every byte is cached");
    assert!(ids(&cached).contains(&140_000));
    assert!(rows(cached) <= page);
    let (counted, faults) = counting(&store);
    for (cache, key) in [(&kept, 5), (&Arc::new(FileCache::default()), 140_000)] {
        let missing = read_row_groups_for_keys_cached(
            &through(&counted, cache),
            &path,
            size,
            "id",
            &[KeyProbe::Int(key)],
        )
        .unwrap();
        assert!(missing.is_none(), "page of {key} is not cached");
    }
    assert_eq!(
        faults.bytes_read.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // Bounded: a budget of one file's metadata holds one file.
    let one_file = Arc::new(FileCache {
        metadata: MetadataCache::new(kept.metadata.bytes()),
        key_filters: KeyFilterCache::new(0),
        blocks: BlockCache::new(0),
    });
    let copy = Path::from("t/batch-2.parquet");
    store
        .put(
            &copy,
            store
                .get(&path)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap()
                .into(),
        )
        .await
        .unwrap();
    for file in [&path, &copy, &copy, &path] {
        read_row_groups_for_keys(
            &through(&store, &one_file),
            file,
            Some(size),
            "id",
            &[KeyProbe::Int(7)],
        )
        .await
        .unwrap();
        assert!(one_file.metadata.bytes() <= kept.metadata.bytes());
    }
    assert_eq!(
        one_file.metadata.hits_and_misses(),
        (1, 3),
        "the second file evicted the first"
    );
    let unknown = read_row_groups_for_keys(
        &through(&store, &cache),
        &path,
        Some(size),
        "id",
        &[KeyProbe::Unknown],
    )
    .await
    .unwrap();
    assert_eq!(rows(unknown), 150_000);
}

/// The key-value metadata every file carries, with the literal keys readers
/// and outside tools (DuckDB, pyarrow) see. Frozen: a change must be
/// deliberate, and older files must still read.
#[tokio::test]
async fn the_file_metadata_is_frozen() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let path = Path::from("t").join(file_name(20, 3).as_str());
    assert_eq!(path.as_ref(), "t/batch-20-t3.parquet");
    let meta = FileMeta {
        table_id: "app.notes".into(),
        user_id: None,
        schema_version: 1,
        primary_key: None,
    };
    let mut writer =
        ParquetFileWriter::create(store.clone(), path.clone(), schema(), meta).unwrap();
    writer.write(&batch(5..8)).await.unwrap();
    writer.finish().await.unwrap();
    let (_, metadata) = read_file(store, &path).await.unwrap();
    let mut ours: Vec<(&str, &str)> = metadata
        .iter()
        .filter(|(k, _)| k.starts_with("kalamdb."))
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    ours.sort();
    assert_eq!(
        ours,
        vec![
            ("kalamdb.max_seq", "1007"),
            ("kalamdb.min_seq", "1005"),
            ("kalamdb.schema_version", "1"),
            ("kalamdb.table_id", "app.notes"),
        ],
        "a SHARED table's file has no user id"
    );
}

/// A file of even keys `0, 2, .. 2(rows-1)` of `key_type` (as `key`
/// renders them), with its key's Bloom filters.
async fn even_keys(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    key_type: DataType,
    rows: i64,
) -> u64 {
    use arrow::array::{ArrayRef, Int16Array, Int32Array};
    let schema = Arc::new(Schema::new(vec![
        Field::new("k", key_type.clone(), false),
        Field::new(SEQ_COLUMN, DataType::Int64, false),
    ]));
    let evens = (0..rows).map(|i| 2 * i);
    let keys: ArrayRef = match key_type {
        DataType::Int16 => Arc::new(Int16Array::from_iter_values(evens.map(|k| k as i16))),
        DataType::Int32 => Arc::new(Int32Array::from_iter_values(evens.map(|k| k as i32))),
        DataType::Int64 => Arc::new(Int64Array::from_iter_values(evens)),
        _ => Arc::new(StringArray::from_iter_values(evens.map(text_key))),
    };
    let seqs = Arc::new(Int64Array::from_iter_values(0..rows));
    let meta = FileMeta {
        table_id: "a.t".into(),
        user_id: None,
        schema_version: 1,
        primary_key: Some("k".into()),
    };
    let mut writer =
        ParquetFileWriter::create(store.clone(), path.clone(), schema.clone(), meta).unwrap();
    writer
        .write(&RecordBatch::try_new(schema, vec![keys, seqs]).unwrap())
        .await
        .unwrap();
    writer.finish().await.unwrap().bytes
}

fn text_key(k: i64) -> String {
    format!("user-{k:06}")
}

#[tokio::test]
async fn a_key_inside_a_files_range_but_not_in_it_decodes_nothing() {
    use crate::{read_row_groups_for_keys, FileCache, KeyProbe, FILE_CACHE_BYTES};
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let cache = Arc::new(FileCache::new(FILE_CACHE_BYTES));
    let files = through(&store, &cache);
    let rows = 3_000;
    for (n, key_type) in [
        DataType::Int16,
        DataType::Int32,
        DataType::Int64,
        DataType::Utf8,
    ]
    .into_iter()
    .enumerate()
    {
        let path = Path::from(format!("t/batch-{n}.parquet"));
        let size = even_keys(&store, &path, key_type.clone(), rows).await;
        let probe = |k: i64| match key_type {
            DataType::Utf8 => KeyProbe::Bytes(text_key(k).into_bytes()),
            _ => KeyProbe::Int(k),
        };
        let mut false_positives = 0;
        for k in (1..2 * rows).step_by(2).take(500) {
            let absent = read_row_groups_for_keys(&files, &path, Some(size), "k", &[probe(k)])
                .await
                .unwrap();
            if absent.iter().any(|b| b.num_rows() > 0) {
                false_positives += 1;
            }
            let present = read_row_groups_for_keys(&files, &path, Some(size), "k", &[probe(k - 1)])
                .await
                .unwrap();
            assert!(
                present.iter().any(|b| b.num_rows() > 0),
                "{key_type}: key {} is in the file",
                k - 1
            );
        }
        // 1% expected; the hash is fixed, so this is deterministic.
        assert!(
            false_positives <= 20,
            "{key_type}: {false_positives} of 500 absent keys decoded a page"
        );
        // Out of an INT32 column's range: never there.
        if key_type == DataType::Int32 {
            let wide =
                read_row_groups_for_keys(&files, &path, Some(size), "k", &[KeyProbe::Int(1 << 40)])
                    .await
                    .unwrap();
            assert!(wide.is_empty());
        }
    }
    let (hits, misses) = cache.key_filters.hits_and_misses();
    assert_eq!(misses, 4, "each file's one filter parsed once");
    assert!(hits > 3_000, "{hits}");
}

/// A file of ids 0..10_000 written in batches of 1,000 (pages of about a
/// thousand rows), read by `FileScan` over `range`: the rows it yields.
async fn scanned(
    columns: Option<&[&str]>,
    range: Option<crate::KeyRange>,
) -> (Vec<RecordBatch>, crate::FileScan) {
    scanned_also(columns, range, Vec::new()).await
}

async fn scanned_also(
    columns: Option<&[&str]>,
    range: Option<crate::KeyRange>,
    also: Vec<crate::KeyRange>,
) -> (Vec<RecordBatch>, crate::FileScan) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let path = Path::from("t/u/batch-1-t1.parquet");
    let meta = FileMeta {
        table_id: "app.t".into(),
        user_id: Some("u".into()),
        schema_version: 1,
        primary_key: Some("id".into()),
    };
    let mut writer =
        ParquetFileWriter::create(store.clone(), path.clone(), schema(), meta).unwrap();
    for first in (0..10_000).step_by(1000) {
        writer.write(&batch(first..first + 1000)).await.unwrap();
    }
    let written = writer.finish().await.unwrap();
    let files = crate::CachedFiles {
        store,
        cache: Arc::new(crate::FileCache::new(1 << 20)),
        storage: "local".into(),
    };
    let mut scan = crate::FileScan::open(
        &files,
        &path,
        Some(written.bytes),
        columns,
        range.as_ref(),
        &also,
    )
    .await
    .unwrap();
    let mut batches = Vec::new();
    while let Some(batch) = scan.next_batch().await {
        batches.push(batch.unwrap());
    }
    (batches, scan)
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name("id").unwrap();
            column
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn a_scan_reads_the_asked_columns_of_the_pages_a_key_range_may_hit() {
    let range = |low: Option<i64>, high: Option<i64>| crate::KeyRange {
        column: "id".into(),
        low: low.map(crate::KeyProbe::Int),
        high: high.map(crate::KeyProbe::Int),
    };
    // Everything, every column.
    let (batches, scan) = scanned(None, None).await;
    assert_eq!(ids(&batches), (0..10_000).collect::<Vec<_>>());
    assert_eq!(batches[0].num_columns(), 3);
    assert_eq!((scan.row_groups, scan.skipped_groups), (1, 0));
    // Only the asked columns.
    let (batches, _) = scanned(Some(&["id", SEQ_COLUMN]), None).await;
    assert_eq!(batches[0].num_columns(), 2);
    assert!(batches[0].column_by_name("body").is_none());
    // A narrow range: only the page(s) that may hold it, in order.
    let (batches, _) = scanned(None, Some(range(Some(2100), Some(2199)))).await;
    let read = ids(&batches);
    assert!(read.len() <= 2048, "{} rows decoded", read.len());
    assert!(read.windows(2).all(|w| w[0] < w[1]));
    assert!((2100..2200).all(|id| read.contains(&id)));
    // Open at one end.
    let (batches, _) = scanned(None, Some(range(Some(9_990), None))).await;
    let read = ids(&batches);
    assert!(read.len() <= 2048 && read.contains(&9_999) && read.contains(&9_990));
    // Outside the file: the row group is skipped.
    let (batches, scan) = scanned(None, Some(range(Some(20_000), None))).await;
    assert!(ids(&batches).is_empty());
    assert_eq!(scan.skipped_groups, 1);
    let (batches, _) = scanned(None, Some(range(None, Some(-1)))).await;
    assert!(ids(&batches).is_empty());
    // Another column's range prunes row groups (not pages): `_seq` is
    // 1000 + id here.
    let seq = |low: Option<i64>, high: Option<i64>| crate::KeyRange {
        column: SEQ_COLUMN.into(),
        low: low.map(crate::KeyProbe::Int),
        high: high.map(crate::KeyProbe::Int),
    };
    let (batches, scan) = scanned_also(None, None, vec![seq(Some(20_000), None)]).await;
    assert!(ids(&batches).is_empty());
    assert_eq!(scan.skipped_groups, 1);
    let (batches, _) = scanned_also(None, None, vec![seq(None, Some(1500))]).await;
    assert_eq!(ids(&batches).len(), 10_000);
    let (batches, _) = scanned_also(
        None,
        Some(range(Some(2100), Some(2199))),
        vec![seq(Some(0), None)],
    )
    .await;
    assert!(ids(&batches).len() <= 2048);
}
