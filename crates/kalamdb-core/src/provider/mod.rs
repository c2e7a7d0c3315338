//! DataFusion's view of KalamDB: a catalog built per request for one caller,
//! so every table it hands out is already scoped to that caller's rows.

pub mod batch;
mod catalog;
mod hot_scan;
mod table;

pub use catalog::{KalamCatalog, CATALOG_NAME};
pub use table::scope_key_for;

use crate::users::Caller;

/// Who is asking, and what they asked to see; fixed for one statement.
#[derive(Debug, Clone)]
pub struct RequestScope {
    pub caller: Caller,
    /// The statement names `_seq` or `_deleted`, so tables expose them.
    pub system_columns: bool,
}
