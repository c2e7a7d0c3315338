//! The cold tier: where flushed rows live as Parquet files.
//!
//! Owns storage path templates, writing Arrow batches as Parquet files into
//! an `object_store` (local disk or S3-compatible), and reading them back.
//! Promises: a template is validated before any path is made from it, so a
//! rendered path never escapes its storage; a file is written under a name
//! nobody else uses and carries its table, user, schema version and `_seq`
//! range in its key-value metadata. It knows nothing of SQL or RocksDB.

mod block_cache;
pub mod clock_cache;
mod error;
pub mod faulty;
mod file_cache;
mod manifest;
mod metadata_cache;
mod parquet_file;
mod pruned_read;
mod scan_read;
mod storage;
mod template;

pub use block_cache::{BlockCache, BLOCK_BYTES};
pub use clock_cache::ClockCache;
pub use error::FileStoreError;
pub use file_cache::{CachedFiles, FileCache, FILE_CACHE_BYTES};
pub use manifest::{ManifestDocument, ManifestEntry, MANIFEST_FILE};
pub use metadata_cache::{KeyFilterCache, MetadataCache};
pub use parquet_file::{
    compacted_file_name, file_name, file_reader, read_file, FileMeta, ParquetFileWriter,
    WrittenFile, META_MAX_SEQ, META_MIN_SEQ, META_SCHEMA_VERSION, META_TABLE, META_USER,
    SEQ_COLUMN,
};
pub use pruned_read::{
    read_footer, read_row_groups_for_keys, read_row_groups_for_keys_cached, Footer, KeyProbe,
};
pub use scan_read::{FileScan, KeyRange};
pub use storage::{Credentials, StorageDef, StorageType, LOCAL_STORAGE};
pub use template::{shard_of, PathTemplate, TemplateKind};

/// The Arrow and object_store versions the cold tier is built with.
pub use object_store;
