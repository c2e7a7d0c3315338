//! What readers keep of files between reads: parsed metadata
//! ([`MetadataCache`]), parsed key filters ([`KeyFilterCache`]) and bytes
//! ([`BlockCache`]), under one budget.

use crate::block_cache::BlockCache;
use crate::metadata_cache::{KeyFilterCache, MetadataCache};
use object_store::path::Path;
use object_store::ObjectStore;
use std::sync::Arc;

/// The server's default budget for both.
pub const FILE_CACHE_BYTES: usize = 256 * 1024 * 1024;

#[derive(Debug)]
pub struct FileCache {
    pub metadata: MetadataCache,
    pub key_filters: KeyFilterCache,
    pub blocks: BlockCache,
}

impl Default for FileCache {
    fn default() -> Self {
        Self::new(FILE_CACHE_BYTES)
    }
}

impl FileCache {
    /// A cache of at most `bytes`: a quarter for parsed metadata, a
    /// sixteenth for key filters (about 10 bits a row), the rest for
    /// blocks. 0 keeps nothing.
    ///
    /// A file's parsed metadata is tens of KiB (with its page index)
    /// whatever its size, so many small files (a busy scope between
    /// compactions) need more of it than their bytes suggest, and a miss
    /// costs most: the footer is read and parsed again on a blocking
    /// thread before any other part of the file can be used. With an eighth
    /// (32 MiB of the default 256 MiB), the mixed load's 2,000-odd files
    /// after a minute did not fit, and its p99 was 61-68 ms; with a quarter
    /// it fits.
    pub fn new(bytes: usize) -> Self {
        let metadata = bytes / 4;
        let key_filters = bytes / 16;
        Self {
            metadata: MetadataCache::new(metadata),
            key_filters: KeyFilterCache::new(key_filters),
            blocks: BlockCache::new(bytes - metadata - key_filters),
        }
    }
}

/// One storage's files as the lookup path reads them: through the cache.
#[derive(Debug, Clone)]
pub struct CachedFiles {
    pub store: Arc<dyn ObjectStore>,
    pub cache: Arc<FileCache>,
    /// The storage's id: the cache is shared by every storage.
    pub storage: Arc<str>,
}

impl CachedFiles {
    /// The name a file of this storage has in the cache.
    pub(crate) fn cache_name(&self, path: &Path) -> Arc<str> {
        format!("{}/{}", self.storage, path).into()
    }
}
