//! Reading a file for a scan: batch by batch through ranged requests, only
//! the columns asked for, only the row groups (and pages) whose statistics
//! may hold a key of the scan's range, only the row groups whose
//! statistics may meet the other columns' ranges the caller says are
//! safe to prune by. Memory per open file is one row group's
//! asked column chunks, not the file; columns a query does not name are
//! neither fetched nor decoded. The parsed footer comes from the file
//! cache (and goes into it); data pages do not, so a scan does not push
//! out what point lookups keep there.

use crate::pruned_read::{cached_metadata, select_pages_where, RangeReader};
use crate::{CachedFiles, FileStoreError, KeyProbe};
use arrow::array::RecordBatch;
use futures::StreamExt;
use object_store::path::Path;
use object_store::ObjectStoreExt;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::file::metadata::ParquetMetaData;
use parquet::file::page_index::column_index::ColumnIndexMetaData;

/// A range of one column's values a scan needs (the key's, or another
/// column's): row groups whose statistics of the column lie wholly outside
/// it are skipped. Bounds are inclusive; `None` is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRange {
    pub column: String,
    pub low: Option<KeyProbe>,
    pub high: Option<KeyProbe>,
}

/// One file being scanned.
pub struct FileScan {
    stream: ParquetRecordBatchStream<RangeReader>,
    /// Row groups skipped by the key range, of all the file has.
    pub skipped_groups: usize,
    pub row_groups: usize,
}

impl FileScan {
    /// Opens `path` (`size` bytes when known) for a scan of `columns` (by
    /// name; every column when `None`; names the file lacks are left out),
    /// over the key range `range` when given (row groups and pages), and
    /// only row groups that may meet every one of `also` (other columns).
    pub async fn open(
        files: &CachedFiles,
        path: &Path,
        size: Option<u64>,
        columns: Option<&[&str]>,
        range: Option<&KeyRange>,
        also: &[KeyRange],
    ) -> Result<Self, FileStoreError> {
        let size = match size {
            Some(size) if size > 0 => size,
            _ => files.store.head(path).await?.size,
        };
        let name = files.cache_name(path);
        let mut reader = RangeReader {
            store: files.store.clone(),
            path: path.clone(),
            size,
            page_index: true,
            cache: None,
            cached_only: None,
        };
        let parsed = cached_metadata(files, &name, &mut reader).await?;
        let metadata = parsed.metadata().clone();
        let schema = metadata.file_metadata().schema_descr();
        let leaf = |wanted: &str| schema.columns().iter().position(|c| c.name() == wanted);
        let projection = match columns {
            Some(names) => ProjectionMask::leaves(schema, names.iter().filter_map(|n| leaf(n))),
            None => ProjectionMask::all(),
        };
        let row_groups = metadata.num_row_groups();
        let keyed = range.and_then(|r| Some((r, leaf(&r.column)?)));
        let others: Vec<(&KeyRange, usize)> = also
            .iter()
            .filter_map(|r| Some((r, leaf(&r.column)?)))
            .collect();
        let groups: Vec<usize> = (0..row_groups)
            .filter(|&g| {
                keyed
                    .iter()
                    .chain(&others)
                    .all(|(range, index)| overlaps(&metadata, g, *index, range))
            })
            .collect();
        let skipped_groups = row_groups - groups.len();
        let selection = keyed.map(|(range, index)| select_pages(&metadata, &groups, index, range));
        let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, parsed)
            .with_batch_size(crate::parquet_file::READ_BATCH_ROWS)
            .with_projection(projection)
            .with_row_groups(groups);
        if let Some(selection) = selection {
            builder = builder.with_row_selection(selection);
        }
        let stream = builder.build()?;
        Ok(Self {
            stream,
            skipped_groups,
            row_groups,
        })
    }

    /// The next batch, `None` at the end.
    pub async fn next_batch(&mut self) -> Option<Result<RecordBatch, FileStoreError>> {
        self.stream
            .next()
            .await
            .map(|batch| batch.map_err(FileStoreError::from))
    }
}

/// The rows of row groups `groups` whose page of the key column `index`
/// may hold a key in `range`, by the page index. Pages are a thousand
/// rows; a narrow range in a large file then decodes a few of them.
fn select_pages(
    metadata: &ParquetMetaData,
    groups: &[usize],
    index: usize,
    range: &KeyRange,
) -> RowSelection {
    select_pages_where(metadata, groups, index, |column, page| {
        page_overlaps(column, page, range)
    })
}

/// Whether page `page`'s bounds meet `range` (missing bounds: they may).
fn page_overlaps(column: &ColumnIndexMetaData, page: usize, range: &KeyRange) -> bool {
    let int = |min: Option<i64>, max: Option<i64>| {
        let (Some(min), Some(max)) = (min, max) else {
            return true;
        };
        let low_ok = match &range.low {
            Some(KeyProbe::Int(low)) => max >= *low,
            _ => true,
        };
        let high_ok = match &range.high {
            Some(KeyProbe::Int(high)) => min <= *high,
            _ => true,
        };
        low_ok && high_ok
    };
    match column {
        ColumnIndexMetaData::INT64(c) => {
            int(c.min_value(page).copied(), c.max_value(page).copied())
        }
        ColumnIndexMetaData::INT32(c) => int(
            c.min_value(page).map(|v| i64::from(*v)),
            c.max_value(page).map(|v| i64::from(*v)),
        ),
        ColumnIndexMetaData::BYTE_ARRAY(c) => {
            let (Some(min), Some(max)) = (c.min_value(page), c.max_value(page)) else {
                return true;
            };
            let low_ok = match &range.low {
                Some(KeyProbe::Bytes(low)) => max >= low.as_slice(),
                _ => true,
            };
            let high_ok = match &range.high {
                Some(KeyProbe::Bytes(high)) => min <= high.as_slice(),
                _ => true,
            };
            low_ok && high_ok
        }
        _ => true,
    }
}

/// Whether row group `g`'s statistics of column `index` may hold a key in
/// `range`: its minimum is not above the high bound and its maximum not
/// below the low one (a row group without statistics may).
fn overlaps(
    metadata: &parquet::file::metadata::ParquetMetaData,
    g: usize,
    index: usize,
    range: &KeyRange,
) -> bool {
    let group = metadata.row_group(g);
    // "Holds a key <= high" and "holds a key >= low", each asked of the
    // statistics as a bound: the group's min <= high, max >= low.
    let below_high = range
        .high
        .as_ref()
        .is_none_or(|high| may_hold_at_most(group, index, high));
    let above_low = range
        .low
        .as_ref()
        .is_none_or(|low| may_hold_at_least(group, index, low));
    below_high && above_low
}

fn may_hold_at_most(
    group: &parquet::file::metadata::RowGroupMetaData,
    index: usize,
    high: &KeyProbe,
) -> bool {
    use parquet::file::statistics::Statistics;
    let Some(stats) = group.column(index).statistics() else {
        return true;
    };
    match (stats, high) {
        (Statistics::Int64(s), KeyProbe::Int(k)) => s.min_opt().is_none_or(|min| *min <= *k),
        (Statistics::Int32(s), KeyProbe::Int(k)) => {
            s.min_opt().is_none_or(|min| i64::from(*min) <= *k)
        }
        (Statistics::ByteArray(s), KeyProbe::Bytes(k)) => {
            s.min_opt().is_none_or(|min| min.data() <= k.as_slice())
        }
        _ => true,
    }
}

fn may_hold_at_least(
    group: &parquet::file::metadata::RowGroupMetaData,
    index: usize,
    low: &KeyProbe,
) -> bool {
    use parquet::file::statistics::Statistics;
    let Some(stats) = group.column(index).statistics() else {
        return true;
    };
    match (stats, low) {
        (Statistics::Int64(s), KeyProbe::Int(k)) => s.max_opt().is_none_or(|max| *max >= *k),
        (Statistics::Int32(s), KeyProbe::Int(k)) => {
            s.max_opt().is_none_or(|max| i64::from(*max) >= *k)
        }
        // A truncated maximum of byte statistics is still an upper bound.
        (Statistics::ByteArray(s), KeyProbe::Bytes(k)) => {
            s.max_opt().is_none_or(|max| max.data() >= k.as_slice())
        }
        _ => true,
    }
}
