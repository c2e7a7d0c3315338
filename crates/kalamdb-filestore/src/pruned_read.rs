//! Reading only the rows of a file that may hold some keys, judged by the
//! min/max statistics of the key column: of its row groups (in the footer),
//! then of its pages (in the page index). A point lookup in a large file
//! then fetches the footer, the page index and the pages of one row range
//! (ranged reads, which matter on S3) and decodes only those, instead of
//! the whole file.

use crate::FileStoreError;
use crate::{CachedFiles, FileCache};
use arrow::array::RecordBatch;
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{FutureExt, TryStreamExt};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, RowSelection, RowSelector,
};
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::arrow::ParquetRecordBatchStreamBuilder;
use parquet::basic::Type as PhysicalType;
use parquet::bloom_filter::Sbbf;
use parquet::file::metadata::RowGroupMetaData;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};
use parquet::file::page_index::column_index::ColumnIndexMetaData;
use parquet::file::statistics::Statistics;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
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
/// missing. `size` is the file's length when known (saves a request).
/// The file's parsed footer and page index, and the bytes read, come from
/// the cache of `files` when it has them and go into it otherwise.
pub async fn read_row_groups_for_keys(
    files: &CachedFiles,
    path: &Path,
    size: Option<u64>,
    column: &str,
    keys: &[KeyProbe],
) -> Result<Vec<RecordBatch>, FileStoreError> {
    let size = match size {
        Some(size) => size,
        None => files.store.head(path).await?.size,
    };
    read_keys(files, path, size, column, keys, None).await
}

/// [`read_row_groups_for_keys`] from the file cache alone: `None` when a
/// byte it needs is not there (nothing is fetched). It never waits, so an
/// async task may call it in place.
pub fn read_row_groups_for_keys_cached(
    files: &CachedFiles,
    path: &Path,
    size: u64,
    column: &str,
    keys: &[KeyProbe],
) -> Result<Option<Vec<RecordBatch>>, FileStoreError> {
    let missed = Arc::new(AtomicBool::new(false));
    let read = read_keys(files, path, size, column, keys, Some(missed.clone()));
    match read.now_or_never() {
        None => Ok(None),
        Some(Err(_)) if missed.load(Ordering::Relaxed) => Ok(None),
        Some(result) => result.map(Some),
    }
}

async fn read_keys(
    files: &CachedFiles,
    path: &Path,
    size: u64,
    column: &str,
    keys: &[KeyProbe],
    cached_only: Option<Arc<AtomicBool>>,
) -> Result<Vec<RecordBatch>, FileStoreError> {
    let name = files.cache_name(path);
    let mut reader = RangeReader {
        store: files.store.clone(),
        path: path.clone(),
        size,
        page_index: true,
        cache: Some((files.cache.clone(), name.clone())),
        cached_only,
    };
    let parsed = cached_metadata(files, &name, &mut reader).await?;
    let metadata = parsed.metadata().clone();
    let index = metadata
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.name() == column);
    let Some(index) = index else {
        let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, parsed)
            .with_batch_size(crate::parquet_file::READ_BATCH_ROWS);
        return Ok(builder.build()?.try_collect().await?);
    };
    let groups: Vec<usize> = (0..metadata.num_row_groups())
        .filter(|&g| {
            keys.iter()
                .any(|k| may_hold(metadata.row_group(g), index, k))
        })
        .collect();
    // Before building a reader: most files asked are ruled out here.
    let groups = filtered(files, &name, &mut reader, &metadata, index, groups, keys).await?;
    if groups.is_empty() {
        return Ok(Vec::new());
    }
    let selection = select_pages(&metadata, &groups, index, keys);
    if !selection.selects_any() {
        return Ok(Vec::new());
    }
    let builder = ParquetRecordBatchStreamBuilder::new_with_metadata(reader, parsed)
        .with_batch_size(crate::parquet_file::READ_BATCH_ROWS)
        .with_row_groups(groups)
        .with_row_selection(selection);
    Ok(builder.build()?.try_collect().await?)
}

/// The parsed footer and page index of the file `reader` reads (`name` in
/// the file cache), from the cache, or read and kept there. Lookups and
/// scans load it the same way, so either may use the other's.
pub(crate) async fn cached_metadata(
    files: &CachedFiles,
    name: &Arc<str>,
    reader: &mut RangeReader,
) -> Result<ArrowReaderMetadata, FileStoreError> {
    if let Some(parsed) = files.cache.metadata.get(name, reader.size) {
        return Ok(parsed);
    }
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let parsed = ArrowReaderMetadata::load_async(reader, options).await?;
    files.cache.metadata.insert(name, reader.size, &parsed);
    Ok(parsed)
}

/// Of row groups `groups`, those whose Bloom filter of column `index` may
/// hold one of `keys` (a group without one stays). Filters are parsed once
/// and kept in the file cache.
async fn filtered(
    files: &CachedFiles,
    name: &Arc<str>,
    reader: &mut RangeReader,
    metadata: &ParquetMetaData,
    index: usize,
    groups: Vec<usize>,
    keys: &[KeyProbe],
) -> Result<Vec<usize>, FileStoreError> {
    let physical = metadata
        .file_metadata()
        .schema_descr()
        .column(index)
        .physical_type();
    let mut kept = Vec::with_capacity(groups.len());
    for g in groups {
        let chunk = metadata.row_group(g).column(index);
        // The writer records the filter's length; without it, no filter
        // is asked.
        let Some(range) = filter_range(
            name,
            chunk.bloom_filter_offset(),
            chunk.bloom_filter_length(),
        )?
        else {
            kept.push(g);
            continue;
        };
        let filter = match files.cache.key_filters.get(name, reader.size, index, g) {
            Some(filter) => filter,
            None => {
                let bytes = reader.get_bytes(range).await?;
                let filter = Arc::new(Sbbf::from_bytes(&bytes)?);
                files
                    .cache
                    .key_filters
                    .insert(name, reader.size, index, g, &filter);
                filter
            }
        };
        if keys.iter().any(|k| filter_may_hold(&filter, physical, k)) {
            kept.push(g);
        }
    }
    Ok(kept)
}

/// Bytes of one key filter read at most. Ours hold about 10 bits a row,
/// at most 128 KiB for a full row group; a footer claiming more (a
/// damaged or foreign file) is not believed, and the row group is read
/// as if it had no filter.
pub(crate) const MAX_KEY_FILTER_BYTES: i32 = 4 * 1024 * 1024;

/// Where a row group's key filter lies, from its footer: `None` when it
/// has none (the writer records the length; without it, none is asked)
/// or claims more than [`MAX_KEY_FILTER_BYTES`].
fn filter_range(
    name: &str,
    offset: Option<i64>,
    length: Option<i32>,
) -> Result<Option<Range<u64>>, FileStoreError> {
    let (Some(offset), Some(length)) = (offset, length) else {
        return Ok(None);
    };
    if length > MAX_KEY_FILTER_BYTES {
        return Ok(None);
    }
    let (Ok(start), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else {
        return Err(FileStoreError::Parquet(
            parquet::errors::ParquetError::General(format!(
                "{name}: a Bloom filter's offset or length is negative"
            )),
        ));
    };
    Ok(Some(start..start.saturating_add(length)))
}

/// Whether a Bloom filter of a column of physical type `physical` may hold
/// `key`: the writer hashes each value's plain encoding (little-endian
/// integers of the physical width, the bytes of a byte array).
fn filter_may_hold(filter: &Sbbf, physical: PhysicalType, key: &KeyProbe) -> bool {
    match (physical, key) {
        (PhysicalType::INT64, KeyProbe::Int(k)) => filter.check(k),
        // A value out of the column's range cannot be in it.
        (PhysicalType::INT32, KeyProbe::Int(k)) => {
            i32::try_from(*k).is_ok_and(|k| filter.check(&k))
        }
        (PhysicalType::BYTE_ARRAY, KeyProbe::Bytes(k)) => filter.check(k.as_slice()),
        _ => true,
    }
}

/// The rows of row groups `groups` (in that order) whose page of column
/// `index` may hold one of `keys`, by the page index; a row group without a
/// page index is selected whole.
fn select_pages(
    metadata: &ParquetMetaData,
    groups: &[usize],
    index: usize,
    keys: &[KeyProbe],
) -> RowSelection {
    select_pages_where(metadata, groups, index, |column, page| {
        keys.iter().any(|k| page_may_hold(column, page, k))
    })
}

/// The rows of row groups `groups` (in that order) whose page of column
/// `index` passes `wanted` (its column index and the page's number); a row
/// group without a page index is selected whole.
pub(crate) fn select_pages_where(
    metadata: &ParquetMetaData,
    groups: &[usize],
    index: usize,
    wanted: impl Fn(&ColumnIndexMetaData, usize) -> bool,
) -> RowSelection {
    let mut selectors = Vec::new();
    for &g in groups {
        let rows = metadata.row_group(g).num_rows().max(0) as usize;
        let pages = metadata
            .column_index()
            .zip(metadata.offset_index())
            .and_then(|(columns, offsets)| {
                Some((columns.get(g)?.get(index)?, offsets.get(g)?.get(index)?))
            });
        let Some((column, offsets)) = pages else {
            selectors.push(RowSelector::select(rows));
            continue;
        };
        let locations = offsets.page_locations();
        let mut at = 0;
        for (p, location) in locations.iter().enumerate() {
            let start = (location.first_row_index.max(0) as usize).min(rows);
            let end = locations.get(p + 1).map_or(rows, |next| {
                (next.first_row_index.max(0) as usize).min(rows)
            });
            if end <= start || !wanted(column, p) {
                continue;
            }
            if start > at {
                selectors.push(RowSelector::skip(start - at));
            }
            selectors.push(RowSelector::select(end - start));
            at = end;
        }
        if at < rows {
            selectors.push(RowSelector::skip(rows - at));
        }
    }
    RowSelection::from(selectors)
}

/// Whether page `page` of a column index allows `key` (missing bounds
/// allow anything).
fn page_may_hold(column: &ColumnIndexMetaData, page: usize, key: &KeyProbe) -> bool {
    match (column, key) {
        (ColumnIndexMetaData::INT64(c), KeyProbe::Int(k)) => {
            match (c.min_value(page), c.max_value(page)) {
                (Some(min), Some(max)) => *min <= *k && *k <= *max,
                _ => true,
            }
        }
        (ColumnIndexMetaData::INT32(c), KeyProbe::Int(k)) => {
            match (c.min_value(page), c.max_value(page)) {
                (Some(min), Some(max)) => i64::from(*min) <= *k && *k <= i64::from(*max),
                _ => true,
            }
        }
        (ColumnIndexMetaData::BYTE_ARRAY(c), KeyProbe::Bytes(k)) => {
            match (c.min_value(page), c.max_value(page)) {
                (Some(min), Some(max)) => min <= k.as_slice() && k.as_slice() <= max,
                _ => true,
            }
        }
        _ => true,
    }
}

/// What a file's footer says of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub rows: u64,
    pub row_groups: usize,
    pub columns: usize,
}

/// Reads and parses only a file's footer (ranged requests: the file's
/// tail), as `STORAGE CHECK ... EXTENDED` does for every file.
pub async fn read_footer(
    store: Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
) -> Result<Footer, FileStoreError> {
    let mut reader = RangeReader {
        store,
        path: path.clone(),
        size,
        page_index: false,
        cache: None,
        cached_only: None,
    };
    let metadata = reader.get_metadata(None).await?;
    Ok(Footer {
        rows: metadata.file_metadata().num_rows().max(0) as u64,
        row_groups: metadata.num_row_groups(),
        columns: metadata.file_metadata().schema_descr().num_columns(),
    })
}

/// Reads a Parquet file through ranged requests: the footer first, then only
/// the column chunks of the row groups asked for.
pub(crate) struct RangeReader {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) path: Path,
    pub(crate) size: u64,
    /// Read the page index with the footer (lookups select pages by it).
    pub(crate) page_index: bool,
    /// Where bytes are kept between reads, and this file's name there.
    pub(crate) cache: Option<(Arc<FileCache>, Arc<str>)>,
    /// Set: fetch nothing, fail when the cache lacks a byte and raise this
    /// flag (the caller then reads the file where it may wait).
    pub(crate) cached_only: Option<Arc<AtomicBool>>,
}

impl RangeReader {
    async fn fetch(&self, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        if let (Some(missed), Some((cache, name))) = (&self.cached_only, &self.cache) {
            return match cache.blocks.get_cached(name, self.size, ranges) {
                Some(bytes) => Ok(bytes),
                None => {
                    missed.store(true, Ordering::Relaxed);
                    Err(object_store::Error::NotFound {
                        path: self.path.to_string(),
                        source: "not in the file cache".into(),
                    })
                }
            };
        }
        match &self.cache {
            Some((cache, name)) => {
                cache
                    .blocks
                    .get_ranges(self.store.as_ref(), name, &self.path, self.size, ranges)
                    .await
            }
            None => self.store.get_ranges(&self.path, ranges).await,
        }
    }
}

/// Bytes fetched with the footer in one request, so that the metadata of a
/// typical file needs no second round trip.
const FOOTER_PREFETCH: usize = 64 * 1024;

impl AsyncFileReader for RangeReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let mut bytes = self.fetch(std::slice::from_ref(&range)).await?;
            Ok(bytes.pop().unwrap_or_default())
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        async move { Ok(self.fetch(&ranges).await?) }.boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        _options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let policy = if self.page_index {
                PageIndexPolicy::Optional
            } else {
                PageIndexPolicy::Skip
            };
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_PREFETCH))
                .with_page_index_policy(policy)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_filter_is_read_only_within_its_bound() {
        assert_eq!(filter_range("f", Some(10), Some(32)).unwrap(), Some(10..42));
        assert_eq!(filter_range("f", None, Some(32)).unwrap(), None);
        assert_eq!(filter_range("f", Some(10), None).unwrap(), None);
        let most = MAX_KEY_FILTER_BYTES;
        assert!(filter_range("f", Some(0), Some(most)).unwrap().is_some());
        assert_eq!(filter_range("f", Some(0), Some(most + 1)).unwrap(), None);
        assert!(filter_range("f", Some(-1), Some(32)).is_err());
        assert!(filter_range("f", Some(0), Some(-1)).is_err());
    }
}
