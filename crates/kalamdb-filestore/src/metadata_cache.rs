//! Parsed file metadata (footer and page index), kept between reads.
//!
//! A point lookup in a cold file needs the footer (row-group statistics)
//! and the page index (page statistics and locations) before it can fetch
//! a single page, and parsing them costs more than decoding the page.
//! Files are never changed once written and their names are never reused
//! (`file_name`), so a parsed footer stays true for as long as the file
//! exists: entries are keyed by path and length and never invalidated,
//! only evicted to stay within a memory budget.

use crate::clock_cache::ClockCache;
use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use parquet::bloom_filter::Sbbf;
use std::sync::Arc;

/// Which file: its storage-qualified path and its length (a second guard
/// against a path reused by something outside the server).
type FileKey = (Arc<str>, u64);

/// Parsed metadata of files, at most `budget` bytes of it.
#[derive(Debug)]
pub struct MetadataCache {
    parsed: ClockCache<FileKey, ArrowReaderMetadata>,
}

impl MetadataCache {
    /// A cache of at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> Self {
        Self {
            parsed: ClockCache::new(budget),
        }
    }

    pub(crate) fn get(&self, file: &Arc<str>, size: u64) -> Option<ArrowReaderMetadata> {
        self.parsed.get(&(file.clone(), size))
    }

    pub(crate) fn insert(&self, file: &Arc<str>, size: u64, metadata: &ArrowReaderMetadata) {
        let bytes = metadata.metadata().memory_size();
        self.parsed
            .insert((file.clone(), size), metadata.clone(), bytes);
    }

    /// Reads that found their file's metadata here, and those that parsed it.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.parsed.hits_and_misses()
    }

    /// Bytes of parsed metadata held now.
    pub fn bytes(&self) -> usize {
        self.parsed.bytes()
    }
}

/// Which key filter: the file (as in [`MetadataCache`]), the column's
/// index, the row group.
type FilterKey = (Arc<str>, u64, usize, usize);

/// Parsed Bloom filters of key columns, per row group, at most `budget`
/// bytes of them. A key check (every INSERT, and every lookup of a key
/// the hot tier does not hold) asks each file whose key range spans the
/// key; the filter answers "not here" for almost all of them without
/// decoding a page. Never stale, for the reason the footers are not.
#[derive(Debug)]
pub struct KeyFilterCache {
    parsed: ClockCache<FilterKey, Arc<Sbbf>>,
}

impl KeyFilterCache {
    /// A cache of at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> Self {
        Self {
            parsed: ClockCache::new(budget),
        }
    }

    pub(crate) fn get(
        &self,
        file: &Arc<str>,
        size: u64,
        column: usize,
        group: usize,
    ) -> Option<Arc<Sbbf>> {
        self.parsed.get(&(file.clone(), size, column, group))
    }

    pub(crate) fn insert(
        &self,
        file: &Arc<str>,
        size: u64,
        column: usize,
        group: usize,
        filter: &Arc<Sbbf>,
    ) {
        // A block is 32 bytes.
        let bytes = filter.num_blocks() * 32 + std::mem::size_of::<Sbbf>();
        self.parsed
            .insert((file.clone(), size, column, group), filter.clone(), bytes);
    }

    /// Checks that found their filter here, and those that read it.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        self.parsed.hits_and_misses()
    }

    /// Bytes of parsed filters held now.
    pub fn bytes(&self) -> usize {
        self.parsed.bytes()
    }
}
