//! DataFusion's view of a USER or SHARED table: a table provider scoped to
//! one caller's rows, whose scan reads that scope through `read`.

mod exec;
mod scan;
mod table;

pub use table::{scope_key_for, KalamTableProvider};

/// The one catalog name statements see.
pub const CATALOG_NAME: &str = "kalam";

use crate::users::Caller;
use std::sync::Arc;

/// Who is asking, and what they asked to see; fixed for one statement.
#[derive(Debug, Clone)]
pub struct RequestScope {
    pub caller: Caller,
    /// The statement names `_seq` or `_deleted`, so tables expose them.
    pub system_columns: bool,
    /// A query that names `_deleted`: scans return deleted rows too (their
    /// tombstones, with `_deleted` true), for it to filter on.
    pub tombstones: bool,
    /// The statement runs in this transaction: scans read its snapshot and
    /// its own writes.
    pub txn: Option<Arc<dyn TxReads>>,
}

/// What a transaction shows its statements' scans of one scope (its
/// snapshot and its own writes); the transaction itself lives with the
/// statements (`exec`).
#[async_trait::async_trait]
pub trait TxReads: Send + Sync + std::fmt::Debug {
    async fn overlay(
        &self,
        def: &crate::catalog::TableDef,
        scope: &kalamdb_store::ScopeKey,
    ) -> crate::read::TxOverlay;
}
