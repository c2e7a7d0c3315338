//! Configuration: embedded defaults, then an optional TOML file, then
//! `KALAMDB_*` environment variables, then command-line flags; each
//! overrides the one before. `server.example.toml` documents every key.

use clap::Parser;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(name = "kalamdb-server", version, about = "KalamDB SQL server")]
pub struct Cli {
    /// Path to a server.toml (optional; embedded defaults without it).
    pub config: Option<PathBuf>,
    /// Data directory (overrides `storage.data_dir` and KALAMDB_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address host:port (overrides `server.host`/`server.port`).
    #[arg(long)]
    pub http_addr: Option<String>,
    /// Restore the database from a backup (a BACKUP DATABASE directory)
    /// before starting; the data it replaces is kept beside it in the data
    /// directory.
    #[arg(long)]
    pub restore_from: Option<PathBuf>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub server: ServerSection,
    pub storage: StorageSection,
    pub logging: LoggingSection,
    pub flush: FlushSection,
    pub compaction: CompactionSection,
    pub jobs: JobsSection,
    pub shutdown: ShutdownSection,
    pub auth: AuthSection,
    pub limits: LimitsSection,
    pub query: QuerySection,
    pub websocket: crate::ws::WebSocketSection,
    pub live: LiveSection,
    #[serde(skip)]
    pub root_password: Option<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSection {
    pub host: String,
    pub port: u16,
    /// Largest accepted request body; larger ones get 413.
    pub max_request_body_bytes: usize,
    /// Web origins (`https://app.example.com`) whose pages may call the
    /// API from a browser; `*` for any. Empty: none (no CORS headers).
    pub cors_allowed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    pub data_dir: PathBuf,
    /// fsync the WAL on every write. Off: acknowledged writes survive a
    /// process crash (`kill -9`) but not a power loss.
    pub sync_writes: bool,
    /// MiB of the hot tier's blocks (RocksDB block cache) kept in memory.
    pub hot_cache_mb: u64,
    /// MiB of cold files (parsed footers, file blocks) kept in memory.
    pub file_cache_mb: u64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingSection {
    /// A `tracing` filter such as `info` or `kalamdb_core=debug,info`.
    /// `RUST_LOG` wins when set.
    pub level: String,
}

/// The flush scheduler and the hot-tier budget.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FlushSection {
    /// How often flush policies are checked, in milliseconds.
    pub check_interval_ms: u64,
    /// Budget for rows buffered in the hot tier across all tables, in bytes
    /// (0: none). Above it the largest tables are flushed first.
    pub hot_budget_bytes: u64,
    /// The same budget counted in row versions (0: none).
    pub hot_budget_rows: u64,
    /// Writes are refused (503, retryable) above this multiple of a budget.
    pub hard_limit_factor: f64,
}

/// When the scheduler compacts a scope's files, and into what.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CompactionSection {
    /// A scope with more files than this is compacted (0: never by count).
    pub max_files: u32,
    /// A scope with more small files (under a quarter of the target) than
    /// this is compacted (0: never).
    pub max_small_files: u32,
    /// Size a compacted file aims at, in MiB.
    pub target_file_mb: u64,
}

impl Default for CompactionSection {
    fn default() -> Self {
        let defaults = kalamdb_core::CompactionPolicy::default();
        Self {
            max_files: defaults.max_files,
            max_small_files: defaults.max_small_files,
            target_file_mb: defaults.target_file_bytes >> 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSection {
    /// Flush jobs running at the same time.
    pub max_parallel: usize,
    /// Retries of a failed flush before its job fails.
    pub max_retries: u32,
    /// Wait before the first retry (doubled for each further one).
    pub retry_backoff_ms: u64,
    /// Finished jobs are removed from system.jobs after this many seconds.
    pub history_ttl_secs: u64,
    /// A scope whose flush failed for a reason retries cannot fix (data the
    /// file cannot hold) is left out of flushes this long, doubled after
    /// each further failure up to `failed_scope_backoff_max_secs`.
    pub failed_scope_backoff_secs: u64,
    pub failed_scope_backoff_max_secs: u64,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSection {
    /// Seconds running jobs may take after SIGINT/SIGTERM before they are
    /// stopped at a scope boundary.
    pub timeout_secs: u64,
    /// Flush every table's buffered rows before stopping.
    pub flush_on_shutdown: bool,
}

/// What one request or statement may use (see `server.example.toml`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub query_memory_mb: u64,
    pub total_query_memory_mb: u64,
    pub max_value_mb: u64,
    pub max_result_rows: u64,
    pub max_result_mb: u64,
    pub max_statements_per_request: u64,
    pub statement_timeout_ms: u64,
    pub request_timeout_secs: u64,
    pub header_timeout_secs: u64,
    pub max_connections: usize,
    pub max_concurrent_password_hashes: usize,
    /// Longest SQL text one request may carry, in bytes.
    pub max_sql_bytes: usize,
    /// Entries `system.audit_log` keeps (the oldest are dropped).
    pub audit_log_entries: usize,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let q = kalamdb_core::QueryLimits::default();
        Self {
            query_memory_mb: (q.memory_per_query >> 20) as u64,
            total_query_memory_mb: (q.memory_total >> 20) as u64,
            max_value_mb: (q.max_value_bytes >> 20) as u64,
            max_result_rows: q.max_result_rows as u64,
            max_result_mb: (q.max_result_bytes >> 20) as u64,
            max_statements_per_request: q.max_statements as u64,
            statement_timeout_ms: q.statement_timeout.as_millis() as u64,
            request_timeout_secs: 120,
            header_timeout_secs: 30,
            max_connections: 1024,
            max_concurrent_password_hashes: 4,
            max_sql_bytes: 10 << 20,
            audit_log_entries: 10_000,
        }
    }
}

/// How queries run (see `server.example.toml`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuerySection {
    /// Answer primary-key lookups, small LIMIT reads and COUNT(*) of one
    /// scope without planning.
    pub direct_reads: bool,
    /// Parsed statements kept by their text; 0: none.
    pub statement_cache_entries: usize,
    /// Planned queries kept by their text and caller; 0: none.
    pub plan_cache_entries: usize,
}

impl Default for QuerySection {
    fn default() -> Self {
        let q = kalamdb_core::QueryLimits::default();
        Self {
            direct_reads: q.direct_reads,
            statement_cache_entries: q.statement_cache_entries,
            plan_cache_entries: q.plan_cache_entries,
        }
    }
}

/// Live queries (see `server.example.toml`).
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LiveSection {
    pub max_subscriptions_per_user: usize,
    pub max_initial_mb: u64,
    pub default_batch_size: usize,
    pub max_batch_size: usize,
    pub history_retention_secs: u64,
    pub history_max_mb: u64,
    pub system_poll_ms: u64,
}

impl Default for LiveSection {
    fn default() -> Self {
        let d = kalamdb_core::LiveConfig::default();
        Self {
            max_subscriptions_per_user: d.max_subscriptions_per_user,
            max_initial_mb: (d.max_initial_bytes >> 20) as u64,
            default_batch_size: d.default_batch_size,
            max_batch_size: d.max_batch_size,
            history_retention_secs: d.history_retention.as_secs(),
            history_max_mb: d.history_max_bytes >> 20,
            system_poll_ms: d.system_poll.as_millis() as u64,
        }
    }
}

/// Token login and brute-force limits.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSection {
    /// HS256 secret (at least 16 characters). Unset: one is generated at
    /// first start and kept in `<data_dir>/jwt_secret`.
    pub jwt_secret: Option<String>,
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    /// Failed logins in a row that lock a user.
    pub max_failed_logins: u32,
    /// How long a locked user stays locked.
    pub lockout_secs: u64,
    /// Login attempts allowed per client address per minute.
    pub login_attempts_per_minute: u32,
    /// Whether `Authorization: Basic` is accepted (on the SQL endpoint
    /// and at the WebSocket upgrade); off, only Bearer tokens are.
    pub allow_basic: bool,
}

impl Default for AuthSection {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            access_token_ttl_secs: 3600,
            refresh_token_ttl_secs: 7 * 24 * 3600,
            max_failed_logins: 5,
            lockout_secs: 300,
            login_attempts_per_minute: 30,
            allow_basic: true,
        }
    }
}

impl Default for FlushSection {
    fn default() -> Self {
        let defaults = kalamdb_core::SchedulerConfig::default();
        Self {
            check_interval_ms: defaults.tick.as_millis() as u64,
            hot_budget_bytes: defaults.budget_bytes,
            hot_budget_rows: defaults.budget_rows,
            hard_limit_factor: defaults.hard_limit_factor,
        }
    }
}

impl Default for JobsSection {
    fn default() -> Self {
        let defaults = kalamdb_core::JobsConfig::default();
        let scheduler = kalamdb_core::SchedulerConfig::default();
        Self {
            max_parallel: defaults.max_parallel,
            max_retries: defaults.max_retries,
            retry_backoff_ms: defaults.retry_backoff.as_millis() as u64,
            history_ttl_secs: scheduler.job_history_ttl.as_secs(),
            failed_scope_backoff_secs: scheduler.failed_scope_backoff.as_secs(),
            failed_scope_backoff_max_secs: scheduler.failed_scope_backoff_max.as_secs(),
        }
    }
}

impl Default for ShutdownSection {
    fn default() -> Self {
        Self {
            timeout_secs: 30,
            flush_on_shutdown: false,
        }
    }
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8080,
            max_request_body_bytes: 10 * 1024 * 1024,
            cors_allowed_origins: Vec::new(),
        }
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            sync_writes: false,
            hot_cache_mb: (kalamdb_core::EngineConfig::default().hot_cache_bytes >> 20) as u64,
            file_cache_mb: (kalamdb_core::EngineConfig::default().file_cache_bytes >> 20) as u64,
        }
    }
}

impl Default for LoggingSection {
    fn default() -> Self {
        Self {
            level: "info".into(),
        }
    }
}

impl ServerConfig {
    /// Builds the configuration from file, environment and flags.
    pub fn load(cli: &Cli) -> Result<Self, String> {
        let mut config = match &cli.config {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        config.apply_env(|key| std::env::var(key).ok())?;
        if let Some(dir) = &cli.data_dir {
            config.storage.data_dir = dir.clone();
        }
        if let Some(addr) = &cli.http_addr {
            let parsed: SocketAddr = addr
                .parse()
                .map_err(|_| format!("--http-addr '{addr}' is not host:port"))?;
            config.server.host = parsed.ip().to_string();
            config.server.port = parsed.port();
        }
        Ok(config)
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("invalid {}: {e}", path.display()))
    }

    /// Applies `KALAMDB_*` variables read through `get`.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        if let Some(host) = get("KALAMDB_SERVER_HOST") {
            self.server.host = host;
        }
        if let Some(port) = get("KALAMDB_SERVER_PORT") {
            self.server.port = port
                .parse()
                .map_err(|_| format!("KALAMDB_SERVER_PORT '{port}' is not a port number"))?;
        }
        if let Some(dir) = get("KALAMDB_DATA_DIR") {
            self.storage.data_dir = PathBuf::from(dir);
        }
        if let Some(level) = get("KALAMDB_LOG_LEVEL") {
            self.logging.level = level;
        }
        if let Some(sync) = get("KALAMDB_SYNC_WRITES") {
            self.storage.sync_writes = matches!(sync.as_str(), "1" | "true" | "yes" | "on");
        }
        self.root_password = get("KALAMDB_ROOT_PASSWORD").filter(|p| !p.is_empty());
        let number = |key: &str| -> Result<Option<u64>, String> {
            get(key)
                .map(|v| {
                    v.parse::<u64>()
                        .map_err(|_| format!("{key} '{v}' is not a whole number"))
                })
                .transpose()
        };
        if let Some(v) = number("KALAMDB_FLUSH_CHECK_INTERVAL_MS")? {
            self.flush.check_interval_ms = v;
        }
        if let Some(v) = number("KALAMDB_HOT_BUDGET_BYTES")? {
            self.flush.hot_budget_bytes = v;
        }
        if let Some(v) = number("KALAMDB_HOT_BUDGET_ROWS")? {
            self.flush.hot_budget_rows = v;
        }
        if let Some(v) = number("KALAMDB_JOBS_MAX_PARALLEL")? {
            self.jobs.max_parallel = v as usize;
        }
        if let Some(v) = number("KALAMDB_JOBS_MAX_RETRIES")? {
            self.jobs.max_retries = v as u32;
        }
        if let Some(v) = number("KALAMDB_JOBS_RETRY_BACKOFF_MS")? {
            self.jobs.retry_backoff_ms = v;
        }
        if let Some(v) = number("KALAMDB_JOBS_HISTORY_TTL_SECS")? {
            self.jobs.history_ttl_secs = v;
        }
        if let Some(v) = number("KALAMDB_SHUTDOWN_TIMEOUT_SECS")? {
            self.shutdown.timeout_secs = v;
        }
        if let Some(v) = get("KALAMDB_FLUSH_ON_SHUTDOWN") {
            self.shutdown.flush_on_shutdown = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(secret) = get("KALAMDB_JWT_SECRET").filter(|s| !s.is_empty()) {
            self.auth.jwt_secret = Some(secret);
        }
        if let Some(v) = number("KALAMDB_ACCESS_TOKEN_TTL_SECS")? {
            self.auth.access_token_ttl_secs = v;
        }
        if let Some(v) = number("KALAMDB_MAX_FAILED_LOGINS")? {
            self.auth.max_failed_logins = v as u32;
        }
        if let Some(v) = number("KALAMDB_LOCKOUT_SECS")? {
            self.auth.lockout_secs = v;
        }
        if let Some(v) = number("KALAMDB_LOGIN_ATTEMPTS_PER_MINUTE")? {
            self.auth.login_attempts_per_minute = v as u32;
        }
        if let Some(v) = get("KALAMDB_DIRECT_READS") {
            self.query.direct_reads = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = number("KALAMDB_STATEMENT_CACHE_ENTRIES")? {
            self.query.statement_cache_entries = v as usize;
        }
        if let Some(v) = number("KALAMDB_HOT_CACHE_MB")? {
            self.storage.hot_cache_mb = v;
        }
        if let Some(v) = number("KALAMDB_FILE_CACHE_MB")? {
            self.storage.file_cache_mb = v;
        }
        if let Some(v) = number("KALAMDB_PLAN_CACHE_ENTRIES")? {
            self.query.plan_cache_entries = v as usize;
        }
        if let Some(v) = get("KALAMDB_AUTH_ALLOW_BASIC") {
            self.auth.allow_basic = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = number("KALAMDB_MAX_REQUEST_BODY_BYTES")? {
            self.server.max_request_body_bytes = v as usize;
        }
        if let Some(v) = get("KALAMDB_CORS_ALLOWED_ORIGINS") {
            self.server.cors_allowed_origins = v
                .split(',')
                .map(|o| o.trim().to_string())
                .filter(|o| !o.is_empty())
                .collect();
        }
        if let Some(v) = number("KALAMDB_MAX_SQL_BYTES")? {
            self.limits.max_sql_bytes = v as usize;
        }
        if let Some(v) = number("KALAMDB_AUDIT_LOG_ENTRIES")? {
            self.limits.audit_log_entries = v as usize;
        }
        if let Some(v) = number("KALAMDB_QUERY_MEMORY_MB")? {
            self.limits.query_memory_mb = v;
        }
        if let Some(v) = number("KALAMDB_TOTAL_QUERY_MEMORY_MB")? {
            self.limits.total_query_memory_mb = v;
        }
        if let Some(v) = number("KALAMDB_MAX_RESULT_ROWS")? {
            self.limits.max_result_rows = v;
        }
        if let Some(v) = number("KALAMDB_MAX_STATEMENTS_PER_REQUEST")? {
            self.limits.max_statements_per_request = v;
        }
        if let Some(v) = number("KALAMDB_STATEMENT_TIMEOUT_MS")? {
            self.limits.statement_timeout_ms = v;
        }
        if let Some(v) = number("KALAMDB_REQUEST_TIMEOUT_SECS")? {
            self.limits.request_timeout_secs = v;
        }
        if let Some(v) = number("KALAMDB_HEADER_TIMEOUT_SECS")? {
            self.limits.header_timeout_secs = v;
        }
        if let Some(bad) = self.server.cors_allowed_origins.iter().find(|o| {
            *o != "*" && !(o.starts_with("http://") || o.starts_with("https://"))
                || o.contains(char::is_whitespace)
                || o.ends_with('/')
        }) {
            return Err(format!(
                "server.cors_allowed_origins: '{bad}' is not an origin; write \
                 scheme://host[:port] (no path), or * for any"
            ));
        }
        if self.limits.max_concurrent_password_hashes == 0 {
            return Err("limits.max_concurrent_password_hashes must be at least 1".into());
        }
        if self.limits.query_memory_mb == 0 || self.limits.total_query_memory_mb == 0 {
            return Err(
                "limits.query_memory_mb and total_query_memory_mb must be at least 1".into(),
            );
        }
        if self.jobs.max_parallel == 0 {
            return Err("jobs.max_parallel must be at least 1".into());
        }
        if self.flush.check_interval_ms == 0 {
            return Err("flush.check_interval_ms must be at least 1".into());
        }
        Ok(())
    }

    /// The engine's settings.
    pub fn engine(&self) -> kalamdb_core::EngineConfig {
        use std::time::Duration;
        kalamdb_core::EngineConfig {
            data_dir: self.storage.data_dir.clone(),
            sync_writes: self.storage.sync_writes,
            hot_cache_bytes: (self.storage.hot_cache_mb << 20) as usize,
            file_cache_bytes: (self.storage.file_cache_mb << 20) as usize,
            root_password: self.root_password.clone(),
            jobs: kalamdb_core::JobsConfig {
                max_parallel: self.jobs.max_parallel,
                max_retries: self.jobs.max_retries,
                retry_backoff: Duration::from_millis(self.jobs.retry_backoff_ms),
            },
            scheduler: kalamdb_core::SchedulerConfig {
                tick: Duration::from_millis(self.flush.check_interval_ms),
                budget_rows: self.flush.hot_budget_rows,
                budget_bytes: self.flush.hot_budget_bytes,
                hard_limit_factor: self.flush.hard_limit_factor,
                job_history_ttl: Duration::from_secs(self.jobs.history_ttl_secs),
                failed_scope_backoff: Duration::from_secs(self.jobs.failed_scope_backoff_secs),
                failed_scope_backoff_max: Duration::from_secs(
                    self.jobs.failed_scope_backoff_max_secs,
                ),
            },
            limits: kalamdb_core::QueryLimits {
                memory_per_query: (self.limits.query_memory_mb << 20) as usize,
                memory_total: (self.limits.total_query_memory_mb << 20) as usize,
                max_value_bytes: (self.limits.max_value_mb.max(1) << 20) as usize,
                max_result_rows: self.limits.max_result_rows as usize,
                max_result_bytes: (self.limits.max_result_mb.max(1) << 20) as usize,
                max_statements: self.limits.max_statements_per_request.max(1) as usize,
                statement_timeout: Duration::from_millis(self.limits.statement_timeout_ms),
                direct_reads: self.query.direct_reads,
                statement_cache_entries: self.query.statement_cache_entries,
                plan_cache_entries: self.query.plan_cache_entries,
            },
            live: kalamdb_core::LiveConfig {
                max_subscriptions_per_user: self.live.max_subscriptions_per_user.max(1),
                max_initial_bytes: (self.live.max_initial_mb.max(1) << 20) as usize,
                default_batch_size: self.live.default_batch_size.max(1),
                max_batch_size: self.live.max_batch_size.max(1),
                history_retention: Duration::from_secs(self.live.history_retention_secs),
                history_max_bytes: self.live.history_max_mb.max(1) << 20,
                ws_url: format!("ws://{}/v1/ws", self.http_addr()),
                // At least every 10 ms: each poll reads the whole table.
                system_poll: Duration::from_millis(self.live.system_poll_ms.max(10)),
            },
            compaction: kalamdb_core::CompactionPolicy {
                max_files: self.compaction.max_files,
                max_small_files: self.compaction.max_small_files,
                target_file_bytes: self.compaction.target_file_mb.max(1) << 20,
            },
            settings: self.settings(),
            audit_log_entries: self.limits.audit_log_entries,
        }
    }

    /// The effective configuration as `section.key` = value, for
    /// `system.settings`; secrets are masked.
    pub fn settings(&self) -> Vec<(String, String)> {
        const SECRETS: [&str; 1] = ["auth.jwt_secret"];
        let mut out = Vec::new();
        let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(self) else {
            return out;
        };
        for (section, keys) in sections {
            let serde_json::Value::Object(keys) = keys else {
                continue;
            };
            for (key, value) in keys {
                let name = format!("{section}.{key}");
                let shown = match value {
                    serde_json::Value::Null => continue,
                    _ if SECRETS.contains(&name.as_str()) => "********".to_string(),
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                out.push((name, shown));
            }
        }
        out.sort();
        out
    }

    pub fn http_addr(&self) -> String {
        format!("{}:{}", self.server.host, self.server.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.toml");
        std::fs::write(
            &path,
            "[server]\nport = 9000\nhost = \"0.0.0.0\"\n[storage]\ndata_dir = \"/from/file\"\n",
        )
        .unwrap();
        let mut config = ServerConfig::from_file(&path).unwrap();
        assert_eq!(config.server.port, 9000);
        config
            .apply_env(|k| match k {
                "KALAMDB_SERVER_PORT" => Some("9100".into()),
                "KALAMDB_ROOT_PASSWORD" => Some("pw".into()),
                _ => None,
            })
            .unwrap();
        assert_eq!(config.server.port, 9100);
        assert_eq!(config.server.host, "0.0.0.0");
        assert_eq!(config.storage.data_dir, PathBuf::from("/from/file"));
        assert_eq!(config.root_password.as_deref(), Some("pw"));

        let cli = Cli {
            config: Some(path),
            data_dir: Some("/from/flag".into()),
            http_addr: Some("127.0.0.1:7000".into()),
            restore_from: None,
        };
        let config = ServerConfig::load(&cli).unwrap();
        assert_eq!(config.storage.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.http_addr(), "127.0.0.1:7000");
    }

    #[test]
    fn bad_files_and_values_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, "[server]\nprot = 1\n").unwrap();
        assert!(ServerConfig::from_file(&path).is_err());
        let mut config = ServerConfig::default();
        assert!(config
            .apply_env(|k| (k == "KALAMDB_SERVER_PORT").then(|| "http".into()))
            .is_err());
    }

    #[test]
    fn cors_origins_must_be_origins() {
        for (value, ok) in [
            ("https://app.example.com", true),
            ("*", true),
            ("http://localhost:5173, https://a.b", true),
            ("app.example.com", false),
            ("https://app.example.com/", false),
        ] {
            let mut config = ServerConfig::default();
            let result =
                config.apply_env(|k| (k == "KALAMDB_CORS_ALLOWED_ORIGINS").then(|| value.into()));
            assert_eq!(result.is_ok(), ok, "{value}: {result:?}");
        }
    }

    #[test]
    fn example_file_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../server.example.toml");
        ServerConfig::from_file(&path).unwrap();
    }
}
