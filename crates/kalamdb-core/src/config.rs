//! How the engine is set up.

use crate::jobs::JobsConfig;
use crate::live::LiveConfig;
use crate::scheduler::SchedulerConfig;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// fsync every write (survives power loss, not only process crashes).
    pub sync_writes: bool,
    /// Sets root's password at start-up when given.
    pub root_password: Option<String>,
    pub jobs: JobsConfig,
    pub scheduler: SchedulerConfig,
    /// Compaction thresholds and file size for tables that set none.
    pub compaction: crate::compact::CompactionPolicy,
    pub limits: QueryLimits,
    pub live: LiveConfig,
    /// The server's effective configuration (`section.key`, value; secrets
    /// masked), shown by `system.settings`.
    pub settings: Vec<(String, String)>,
    /// Most entries `system.audit_log` keeps (the oldest go first).
    pub audit_log_entries: usize,
    /// Bytes of the hot tier's blocks (RocksDB's block cache) kept in
    /// memory.
    pub hot_cache_bytes: usize,
    /// Bytes of cold files (parsed footers and blocks) readers keep in
    /// memory, shared by every storage.
    pub file_cache_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            sync_writes: false,
            root_password: None,
            jobs: JobsConfig::default(),
            scheduler: SchedulerConfig::default(),
            compaction: Default::default(),
            limits: QueryLimits::default(),
            live: LiveConfig::default(),
            settings: Vec::new(),
            audit_log_entries: 10_000,
            hot_cache_bytes: kalamdb_store::BLOCK_CACHE_BYTES,
            file_cache_bytes: kalamdb_filestore::FILE_CACHE_BYTES,
        }
    }
}

/// Bounds for statements (config `[limits]`).
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// Memory DataFusion's operators (sorts, joins, aggregates) may hold
    /// for one statement.
    pub memory_per_query: usize,
    /// The same for all statements together.
    pub memory_total: usize,
    /// Largest value a function may build (`repeat`, `lpad`, `range`,
    /// `array_repeat`, ...), summed over the rows of one batch.
    pub max_value_bytes: usize,
    /// Rows and bytes (Arrow memory) a result may hold.
    pub max_result_rows: usize,
    pub max_result_bytes: usize,
    /// Statements in one request.
    pub max_statements: usize,
    /// Time one statement may take; zero: no limit.
    pub statement_timeout: Duration,
    /// Answer primary-key lookups, small `LIMIT` reads and `COUNT(*)` of
    /// one scope straight from the scope's view, without planning
    /// (`exec::direct`); off: every query is planned by DataFusion.
    pub direct_reads: bool,
    /// Parsed statements kept by their text, so a repeated statement is
    /// not parsed again; 0: none.
    pub statement_cache_entries: usize,
    /// Planned queries kept by their text and caller (`exec::plan_cache`),
    /// so a repeated query is not planned again; 0: none.
    pub plan_cache_entries: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        Self {
            memory_per_query: 256 << 20,
            memory_total: 1 << 30,
            max_value_bytes: 64 << 20,
            max_result_rows: 1_000_000,
            max_result_bytes: 256 << 20,
            max_statements: 10_000,
            statement_timeout: Duration::from_secs(60),
            direct_reads: true,
            statement_cache_entries: 1024,
            plan_cache_entries: 4096,
        }
    }
}
