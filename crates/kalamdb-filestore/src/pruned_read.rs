//! Reading only the row groups of a file that may hold some keys, judged by
//! the row groups' min/max statistics of the key column. A point lookup in
//! a large file then decodes one row group instead of the whole file.

use crate::FileStoreError;
use arrow::array::RecordBatch;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::statistics::Statistics;
use std::sync::Arc;

/// A key as the file's statistics can compare it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProbe {
    /// Integer-like keys (SMALLINT, INT, BIGINT, TIMESTAMP, DATE).
    Int(i64),
    /// Text and bytes, compared bytewise.
    Bytes(Vec<u8>),
    /// Anything else: every row group may hold it.
    Unknown,
}

/// Whether a row group's statistics for column `index` allow `key`.
fn may_hold(group: &RowGroupMetaData, index: usize, key: &KeyProbe) -> bool {
    let Some(stats) = group.column(index).statistics() else {
        return true;
    };
    match (stats, key) {
        (Statistics::Int64(s), KeyProbe::Int(k)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => *min <= *k && *k <= *max,
            _ => true,
        },
        (Statistics::Int32(s), KeyProbe::Int(k)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => i64::from(*min) <= *k && *k <= i64::from(*max),
            _ => true,
        },
        // Truncated byte statistics are still bounds (min below, max above).
        (Statistics::ByteArray(s), KeyProbe::Bytes(k)) => match (s.min_opt(), s.max_opt()) {
            (Some(min), Some(max)) => min.data() <= k.as_slice() && k.as_slice() <= max.data(),
            _ => true,
        },
        _ => true,
    }
}

/// The batches of the row groups of `path` that may hold one of `keys` in
/// column `column`; every row group when the column or its statistics are
/// missing.
pub async fn read_row_groups_for_keys(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    column: &str,
    keys: &[KeyProbe],
) -> Result<Vec<RecordBatch>, FileStoreError> {
    let bytes = store.get(path).await?.bytes().await?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(crate::parquet_file::READ_BATCH_ROWS);
    let metadata = builder.metadata().clone();
    let index = metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == column);
    let builder = match index {
        Some(index) => {
            let groups: Vec<usize> = (0..metadata.num_row_groups())
                .filter(|&g| {
                    keys.iter()
                        .any(|k| may_hold(metadata.row_group(g), index, k))
                })
                .collect();
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            builder.with_row_groups(groups)
        }
        None => builder,
    };
    Ok(builder.build()?.collect::<Result<Vec<_>, _>>()?)
}
