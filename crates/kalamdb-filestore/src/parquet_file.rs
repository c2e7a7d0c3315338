//! One Parquet file of one scope: written from Arrow batches straight into an
//! object store (multipart, so memory stays at about one row group), with
//! KalamDB's facts in the key-value metadata.

use crate::FileStoreError;
use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Int64Type, SchemaRef};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::AsyncArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use std::collections::HashMap;
use std::sync::Arc;

pub const SEQ_COLUMN: &str = "_seq";
pub const META_TABLE: &str = "kalamdb.table_id";
pub const META_USER: &str = "kalamdb.user_id";
pub const META_SCHEMA_VERSION: &str = "kalamdb.schema_version";
pub const META_MIN_SEQ: &str = "kalamdb.min_seq";
pub const META_MAX_SEQ: &str = "kalamdb.max_seq";

/// Rows per row group: bounds writer memory and gives readers pruning units.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// Rows per data page at most. A point lookup decodes only the pages whose
/// key range (the page index) may hold its key, so small pages keep a cold
/// lookup to about a thousand rows decoded rather than a row group's.
pub const PAGE_ROWS: usize = 1024;

/// Bytes of a column chunk's dictionary at most; past it the writer falls
/// back to plain encoding for the rest of the chunk.
pub const DICTIONARY_PAGE_BYTES: usize = 16 * 1024;

/// False-positive rate of the key's Bloom filters: about 10 bits a key.
pub const KEY_FILTER_FPP: f64 = 0.01;

/// A file's name: `batch-<seq>-t<table uid>.parquet`. Callers pass a
/// `_seq` no other file of the scope can carry (a flush uses its snapshot
/// watermark, and `_seq` numbers are never reused), so a name is never
/// reused and a retried flush never overwrites a committed file. The
/// table's uid (never reused either) makes the name unique across tables
/// too, whatever directories a storage's templates give them: two tables
/// flushed at the same watermark into one directory still write different
/// files. (Files written before the uid was added are named
/// `batch-<seq>.parquet`; readers take names from the manifest.)
pub fn file_name(seq: u64, table_uid: u64) -> String {
    format!("batch-{seq}-t{table_uid}.parquet")
}

/// The name of part `part` of a compaction's output:
/// `compacted-<seq>-<part>-t<table uid>.parquet`, with a `_seq` allocated
/// for that compaction alone, so names are never reused either.
pub fn compacted_file_name(seq: u64, part: u32, table_uid: u64) -> String {
    format!("compacted-{seq}-{part}-t{table_uid}.parquet")
}

/// What a file is, written into its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    /// `namespace.table`
    pub table_id: String,
    /// The scope's user, for USER tables.
    pub user_id: Option<String>,
    pub schema_version: u32,
    /// The primary-key column: unique in a file, so written without a
    /// dictionary.
    pub primary_key: Option<String>,
}

/// A file that is completely written (not yet committed to any manifest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    pub path: Path,
    pub rows: u64,
    pub bytes: u64,
    pub min_seq: i64,
    pub max_seq: i64,
}

pub struct ParquetFileWriter {
    writer: AsyncArrowWriter<BufWriter>,
    store: Arc<dyn ObjectStore>,
    path: Path,
    meta: FileMeta,
    seq_index: usize,
    rows: u64,
    seq_range: Option<(i64, i64)>,
}

impl ParquetFileWriter {
    /// Starts the file at `path`. The object appears only when
    /// [`finish`](Self::finish) completes the upload; until then readers
    /// cannot see a partial file.
    pub fn create(
        store: Arc<dyn ObjectStore>,
        path: Path,
        schema: SchemaRef,
        meta: FileMeta,
    ) -> Result<Self, FileStoreError> {
        let seq_index = schema
            .index_of(SEQ_COLUMN)
            .map_err(|_| FileStoreError::MissingSeq(SEQ_COLUMN))?;
        let properties = WriterProperties::builder()
            // LZ4: the parquet crate builds a zstd codec (a compression and
            // a decompression context) for every column chunk it opens,
            // and under a mixed load of point reads that was a third of
            // the server's CPU; LZ4 decompression needs no context.
            // Files written before (zstd) still read.
            .set_compression(Compression::LZ4_RAW)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_data_page_row_count_limit(PAGE_ROWS)
            // A lookup decodes the dictionary page of every column chunk
            // it reads, however few rows it wants: keep dictionaries
            // small, and none where every value differs (the key, `_seq`),
            // where the 1 MiB default made a cold point lookup inflate
            // megabytes.
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .set_column_dictionary_enabled(ColumnPath::from(SEQ_COLUMN), false);
        let properties = match &meta.primary_key {
            // A Bloom filter of the key per row group: a key check in a
            // file whose key range spans the key (files of one scope
            // overlap when several clients write it) then decodes nothing
            // when the key is not there. Sized for a full row group and
            // folded down to the target rate when the group is smaller.
            Some(pk) => properties
                .set_column_dictionary_enabled(ColumnPath::from(pk.as_str()), false)
                .set_column_bloom_filter_enabled(ColumnPath::from(pk.as_str()), true)
                .set_column_bloom_filter_fpp(ColumnPath::from(pk.as_str()), KEY_FILTER_FPP),
            None => properties,
        }
        .build();
        let writer = AsyncArrowWriter::try_new(
            BufWriter::new(store.clone(), path.clone()),
            schema,
            Some(properties),
        )?;
        Ok(Self {
            writer,
            store,
            path,
            meta,
            seq_index,
            rows: 0,
            seq_range: None,
        })
    }

    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), FileStoreError> {
        let seqs = batch.column(self.seq_index);
        let seqs = seqs
            .as_primitive_opt::<Int64Type>()
            .ok_or(FileStoreError::MissingSeq(SEQ_COLUMN))?;
        if seqs.null_count() > 0 {
            return Err(FileStoreError::MissingSeq(SEQ_COLUMN));
        }
        if let (Some(min), Some(max)) = (arrow::compute::min(seqs), arrow::compute::max(seqs)) {
            self.seq_range = Some(match self.seq_range {
                Some((lo, hi)) => (lo.min(min), hi.max(max)),
                None => (min, max),
            });
        }
        self.rows += batch.num_rows() as u64;
        self.writer.write(batch).await?;
        Ok(())
    }

    /// Completes the upload and returns what was written. An empty file is
    /// an error: a flush with no rows writes no file.
    pub async fn finish(mut self) -> Result<WrittenFile, FileStoreError> {
        let Some((min_seq, max_seq)) = self.seq_range else {
            return Err(FileStoreError::InvalidPath("no rows were written".into()));
        };
        let meta = &self.meta;
        for (key, value) in [
            (META_TABLE, Some(meta.table_id.clone())),
            (META_USER, meta.user_id.clone()),
            (META_SCHEMA_VERSION, Some(meta.schema_version.to_string())),
            (META_MIN_SEQ, Some(min_seq.to_string())),
            (META_MAX_SEQ, Some(max_seq.to_string())),
        ] {
            if let Some(value) = value {
                self.writer
                    .append_key_value_metadata(KeyValue::new(key.to_string(), value));
            }
        }
        self.writer.close().await?;
        let bytes = self.store.head(&self.path).await?.size;
        Ok(WrittenFile {
            path: self.path,
            rows: self.rows,
            bytes,
            min_seq,
            max_seq,
        })
    }
}

/// Opens a file for reading batch by batch, in file order. The compressed
/// file is fetched whole; rows are decoded one batch at a time.
pub async fn file_reader(
    store: Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<ParquetRecordBatchReader, FileStoreError> {
    let bytes = store.get(path).await?.bytes().await?;
    Ok(ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(READ_BATCH_ROWS)
        .build()?)
}

/// Rows per batch when reading files back.
pub const READ_BATCH_ROWS: usize = 4096;

/// Reads a whole file into memory: its batches and its key-value metadata.
pub async fn read_file(
    store: Arc<dyn ObjectStore>,
    path: &Path,
) -> Result<(Vec<RecordBatch>, HashMap<String, String>), FileStoreError> {
    let bytes = store.get(path).await?.bytes().await?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let metadata: HashMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .map(|kvs| {
            kvs.iter()
                .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
                .collect()
        })
        .unwrap_or_default();
    let batches = builder.build()?.collect::<Result<Vec<_>, _>>()?;
    Ok((batches, metadata))
}

#[cfg(test)]
mod tests;
