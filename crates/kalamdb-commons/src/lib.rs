//! Vocabulary shared by every KalamDB crate.
//!
//! Owns the identifiers (namespaces, tables, users, jobs, sequence numbers),
//! the column type system, cell values, table types, flush policies, roles,
//! the public error codes and the injectable clock. It depends on nothing of
//! KalamDB's own and must never learn about RocksDB, Parquet, SQL or HTTP.

pub mod clock;
pub mod datatype;
pub mod error;
pub mod excerpt;
pub mod flush_policy;
pub mod ids;
pub mod role;
pub mod table_type;
pub mod value;

pub use clock::{Clock, ManualClock, SystemClock};
pub use datatype::KalamType;
pub use error::ErrorCode;
pub use excerpt::{clip, excerpt};
pub use flush_policy::FlushPolicy;
pub use ids::{validate_identifier, NamespaceId, TableName, UserId};
pub use role::Role;
pub use table_type::TableType;
pub use value::{time_of_day, timestamp_utc, Value};
