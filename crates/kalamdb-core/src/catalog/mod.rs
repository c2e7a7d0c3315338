//! The persistent catalog: namespaces and table definitions.
//!
//! Definitions live in the hot tier's `meta` column family (so a catalog
//! change and the rows it affects commit in one batch) and are cached in
//! memory; the cache is only updated after the batch is durable.

mod model;
mod schemas;
mod store;

pub use model::{is_public, ColumnDef, CompactionOptions, DefaultSpec, NamespaceDef, TableDef};
pub use schemas::{widens, SchemaHistory, SchemaVersion, Slot, StoredValue};
pub use store::{Catalog, MAX_SCHEMA_VERSIONS};

/// The namespace that exists from the first start and is the default for
/// unqualified names.
pub const DEFAULT_NAMESPACE: &str = "default";
/// The storage every table uses unless told otherwise.
pub use kalamdb_filestore::LOCAL_STORAGE;
