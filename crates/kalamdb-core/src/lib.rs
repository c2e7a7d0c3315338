//! KalamDB's engine: catalog, users, SQL execution over both tiers.
//!
//! Owns what a statement means when it runs: the catalog, DataFusion table
//! providers that scope every USER table to its caller, DML, system tables,
//! flush and compaction jobs and the scheduler that starts them. It never
//! sees HTTP or sockets.
//!
//! # The life of an INSERT
//! 1. The server authenticates the caller (`kalamdb-auth`) and calls [`KalamDb::execute`]
//!    with the request's SQL, parameters and default namespace.
//! 2. `kalamdb_sql::parse_batch` splits the batch on top-level `;` and parses
//!    each statement into a `KalamStatement`; INSERT stays a `sqlparser` AST.
//! 3. `exec::insert` resolves the table in the `catalog::Catalog`, checks
//!    the caller may write it, and evaluates the VALUES (literals, `$n`
//!    parameters and KalamDB defaults directly; anything else via DataFusion),
//!    coercing each value to its column type (`values`).
//! 4. `exec::write` takes the scope's write lock (one user of a USER table,
//!    or a whole SHARED table), rejects primary keys whose newest version is
//!    not a tombstone (hot tier and manifest from one `read::ScopeView`,
//!    then only the files that may hold a key), allocates `_seq` numbers and puts one version per row
//!    and one change-log entry per scope (`kalamdb_store::changes`; an
//!    inserted row is logged by its key, its values are its version, in
//!    the hot tier or, once flushed, in the scope's file) into
//!    one RocksDB `WriteBatch`; `HotStore::write` returns once it is in the WAL.
//!    Still under the scope lock, the changes go to the live-query hub
//!    (`live`), which offers them to the scope's subscribers without
//!    waiting; only then does the client get `Inserted N row(s)`.
//!
//! # The life of a SELECT
//! 0. The text is looked up in the statement cache (`exec::prepared`) and
//!    parsed only on a miss. A key lookup, a `LIMIT` read or a `COUNT(*)`
//!    of one table (`exec::direct`) is answered from a `read::ScopeView`
//!    right away, with no planning: on the request's task when the hot
//!    tier and the file cache (`kalamdb_filestore::FileCache`) hold all it
//!    needs, else on a blocking thread; anything else goes on below.
//! 1. A plan kept for this text, caller and namespace (`exec::plan_cache`)
//!    is used if the catalog has not changed since; its `$n` values are
//!    bound and it goes to step 3 (or, for values not of the placeholders'
//!    types, is optimized for them). Otherwise `exec::query` clones the base
//!    DataFusion session and adds a catalog, a `provider::KalamCatalog` made
//!    for this caller, so every table it can resolve is already scoped to
//!    what the caller may see.
//! 2. DataFusion plans and optimizes the statement; each USER or SHARED
//!    table becomes a `KalamTableProvider` scan of exactly one scope's key
//!    range. The plan is kept when it reads only user tables.
//!    The physical plan runs with a memory pool that is the statement's
//!    share of the query memory (`exec::limits`). A plan that is only a
//!    projection and a filter over one scan seeking keys (the query behind
//!    UPDATE/DELETE by key) skips the physical planner (`exec::key_plan`):
//!    the optimizer's expressions run on the scan's rows.
//! 3. The scan (`provider::scan`) runs in a blocking task (a key lookup
//!    the hot tier and the file cache answer runs in place). It opens a
//!    `read::ScopeView` on one RocksDB snapshot: the scope's manifest
//!    entries (its committed Parquet files; a listing kept from an earlier
//!    read when the snapshot's manifest version is the same), their
//!    `flushed_through`, and the hot versions. With no files it streams the newest hot version of
//!    each key. Otherwise `ScopeView::scan` opens a `read` file cursor on
//!    each file (each sorted by key) and merges them with the hot versions
//!    newer than `flushed_through` in a k-way merge by key: the highest
//!    `_seq` wins, a tombstone hides its key, and stretches of a file that
//!    nothing else overrides go out as Arrow columns. Each cursor reads
//!    its file by ranged requests, a row group at a time, only the columns
//!    the query needs, skipping row groups and pages outside the key range
//!    its filters allow. A `pk = literal`
//!    (or `IN`) filter reads only those keys: its hot version, or, when the hot tier
//!    has none newer than the files, only the files (and row groups and
//!    pages) whose key bounds and key Bloom filter may hold it, newest
//!    file first (`ScopeView::lookup`, through the file cache). Batches have a
//!    bounded size; DataFusion filters, joins and aggregates above the scan,
//!    so filters run after version resolution and a stale version never
//!    matches.
//! 4. The batches are read within the result limits. For the last statement
//!    of an HTTP request, a large result is not collected: the server gets
//!    the rest of the stream (`KalamDb::execute_streaming`) and encodes it as
//!    JSON a batch at a time while it sends it.

// The engine's parts are private; what the server, the benchmarks and the
// tests use is re-exported below.
mod audit;
mod background;
pub mod backup;
mod catalog;
mod cold;
mod compact;
mod config;
mod engine;
mod error;
mod exec;
mod flush;
mod hot;
mod ids;
mod jobs;
mod live;
mod offload;
mod provider;
mod read;
mod running;
mod scheduler;
mod schema;
mod services;
mod system;
mod users;
mod values;

pub use audit::{AuditEntry, AuditEvent};
pub use catalog::MAX_SCHEMA_VERSIONS;
#[cfg(feature = "test-support")]
pub use cold::table_manifest_entries;
pub use compact::CompactionPolicy;
#[cfg(feature = "test-support")]
pub use compact::{CompactFailPoint, CompactHooks, CompactStats};
pub use config::{EngineConfig, QueryLimits};
pub use engine::{
    literal_inserts, ClientSession, KalamDb, LiteralInserts, ShutdownOptions, StatementError,
};
pub use error::{CoreError, Result};
pub use exec::limits::ResultStream;
pub use exec::transaction::MAX_ROWS as MAX_TRANSACTION_ROWS;
pub use exec::StatementResult;
pub use flush::FlushStats;
#[cfg(feature = "test-support")]
pub use flush::{FailPoint, FlushHooks};
pub use jobs::JobsConfig;
pub use live::{
    ChangeKind, ChangeSet, Delivery, Encoded, EndReason, Feed, FeedInfo, InitialPage, LiveChange,
    LiveCode, LiveConfig, LiveError, LiveResult, Outbox, Published, StartMode, SubscribeRequest,
    Subscription,
};
pub use running::{
    valid_query_id, RunningGuard, RunningQueries, MAX_QUERY_ID_LEN, RUNNING_SQL_CHARS,
};
pub use scheduler::SchedulerConfig;
pub use schema::KALAM_TYPE_KEY;
#[cfg(feature = "test-support")]
pub use services::Services;
pub use system::server_logs;
pub use users::{Caller, Credentials, UserRecord, Users, ROOT_USER};

/// Arrow, as the engine uses it (the server encodes results with it).
pub use datafusion::arrow;
