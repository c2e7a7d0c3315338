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
    /// A cache of at most `bytes`: an eighth for parsed metadata (a
    /// file's is tens of KiB), an eighth for key filters (about 10 bits a
    /// row), the rest for blocks. 0 keeps nothing.
    pub fn new(bytes: usize) -> Self {
        Self {
            metadata: MetadataCache::new(bytes / 8),
            key_filters: KeyFilterCache::new(bytes / 8),
            blocks: BlockCache::new(bytes - bytes / 8 * 2),
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
