//! The hot tier: one RocksDB instance holding catalog, users and row versions.
//!
//! Owns the key layout, the row encoding, `_seq` allocation, snapshots and
//! atomic write batches. Promises: keys of one table (and of one user of a
//! USER table) form one contiguous, order-preserving range; the newest version
//! of a primary key sorts first; a write returns only once its batch is in
//! RocksDB's WAL (fsynced too when `sync_writes` is on). It knows nothing of
//! SQL, Arrow or Parquet.

pub mod changes;
mod error;
pub mod inline;
pub mod keys;
pub mod meta_keys;
mod pins;
#[cfg(test)]
mod proptests;
pub mod row;
mod seq;
mod snapshot;
mod store;
#[cfg(test)]
mod store_tests;

pub use changes::{ChangeKind, FlushedVersions, HotOnly, RowChange};
pub use error::StoreError;
pub use inline::Inliner;
pub use keys::ScopeKey;
pub use pins::{ReadPin, ReadPins};
pub use row::{Cell, EncodedRow, RowVersion};
pub use snapshot::{LatestIter, StoreSnapshot, VersionRef};
pub use store::{HotStore, MetaEntries, StoreOptions, WriteBatch, BLOCK_CACHE_BYTES};
