//! Parsed file metadata (footer and page index), kept between reads.
//!
//! A point lookup in a cold file needs the footer (row-group statistics)
//! and the page index (page statistics and locations) before it can fetch
//! a single page, and parsing them costs more than decoding the page.
//! Files are never changed once written and their names are never reused
//! (`file_name`), so a parsed footer stays true for as long as the file
//! exists: entries are keyed by path and length and never invalidated,
//! only evicted (oldest first) to stay within a memory budget.

use parquet::arrow::arrow_reader::ArrowReaderMetadata;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which file: its storage-qualified path and its length (a second guard
/// against a path reused by something outside the server).
type FileKey = (Arc<str>, u64);

#[derive(Debug, Default)]
struct Entries {
    parsed: HashMap<FileKey, (ArrowReaderMetadata, usize)>,
    /// Insertion order, for eviction.
    order: VecDeque<FileKey>,
    bytes: usize,
}

/// Parsed metadata of one store's files, at most `budget` bytes of it.
#[derive(Debug)]
pub struct MetadataCache {
    entries: Mutex<Entries>,
    budget: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl MetadataCache {
    /// A cache of at most `budget` bytes; 0 keeps nothing.
    pub fn new(budget: usize) -> Self {
        Self {
            entries: Mutex::new(Entries::default()),
            budget,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    pub(crate) fn get(&self, file: &Arc<str>, size: u64) -> Option<ArrowReaderMetadata> {
        let found = self
            .lock()
            .parsed
            .get(&(file.clone(), size))
            .map(|(m, _)| m.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    pub(crate) fn insert(&self, file: &Arc<str>, size: u64, metadata: &ArrowReaderMetadata) {
        let bytes = metadata.metadata().memory_size();
        // One file's metadata larger than the whole budget is not kept.
        if bytes > self.budget {
            return;
        }
        let key = (file.clone(), size);
        let mut entries = self.lock();
        if entries.parsed.contains_key(&key) {
            return;
        }
        while entries.bytes + bytes > self.budget {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some((_, freed)) = entries.parsed.remove(&oldest) {
                entries.bytes -= freed;
            }
        }
        entries.bytes += bytes;
        entries.order.push_back(key.clone());
        entries.parsed.insert(key, (metadata.clone(), bytes));
    }

    /// Reads that found their file's metadata here, and those that parsed it.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Bytes of parsed metadata held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // The entries stay consistent whatever panicked while holding them:
        // every change is complete before the next statement.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
