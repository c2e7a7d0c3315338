//! Runs every `files/*.slt` script against an in-process engine.
//!
//! A batch of several statements answers with its last query's rows.
//!
//! Besides SQL, scripts may use two harness commands (as `statement ok`):
//! - `AS <user>`: run the following statements as that user (created by the
//!   script with CREATE USER, or `root`);
//! - `RESTART`: close the engine and reopen it from the same data directory;
//! - `FLUSH <namespace>.<table>`: move the table's hot rows to Parquet now
//!   and wait (the SQL `FLUSH TABLE` starts a background job instead);
//! - `COMPACT <namespace>.<table>`: compact the table's files now and wait
//!   (the SQL `COMPACT TABLE` starts a background job instead);
//! - `WAIT JOBS`: wait until every background job has finished.

mod change_history;
mod compaction;
mod direct_reads;
mod faults;
mod flush_crash;
mod fuzz_statements;
mod kill_job;
mod live_system;
mod model;
mod plan_cache;
mod scheduler;
mod schema_history;
mod schema_model;
mod schema_race;
mod transactions;
mod util;

use kalamdb_commons::{SystemClock, UserId};
use kalamdb_core::arrow::array::Array;
use kalamdb_core::arrow::util::display::{ArrayFormatter, FormatOptions};
use kalamdb_core::{Caller, EngineConfig, KalamDb, StatementError};
use sqllogictest::{DBOutput, DefaultColumnType};
use std::path::{Path, PathBuf};
use std::sync::Arc;

struct Harness {
    config: EngineConfig,
    db: Option<KalamDb>,
    caller: Caller,
}

#[derive(Debug)]
struct HarnessError(String);

impl std::fmt::Display for HarnessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HarnessError {}

impl From<StatementError> for HarnessError {
    fn from(e: StatementError) -> Self {
        HarnessError(format!("[{}] {e}", e.error.code()))
    }
}

impl Harness {
    fn open(dir: &Path) -> Self {
        let config = EngineConfig {
            data_dir: dir.to_path_buf(),
            sync_writes: false,
            root_password: None,
            ..EngineConfig::default()
        };
        let db = KalamDb::open(
            &config,
            Arc::new(SystemClock),
            kalamdb_auth::Authenticator::new(),
        )
        .expect("engine opens");
        Self {
            config,
            db: Some(db),
            caller: Caller {
                user_id: UserId::new("root").unwrap(),
                role: kalamdb_commons::Role::System,
            },
        }
    }

    fn db(&self) -> &KalamDb {
        self.db.as_ref().expect("engine is open")
    }
}

pub fn cell(array: &dyn Array, row: usize) -> String {
    if array.is_null(row) {
        return "NULL".into();
    }
    let text = ArrayFormatter::try_new(array, &FormatOptions::default())
        .map(|f| f.value(row).to_string())
        .unwrap_or_else(|e| format!("<{e}>"));
    if text.is_empty() {
        "(empty)".into()
    } else {
        text
    }
}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Harness {
    type Error = HarnessError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, HarnessError> {
        let command = sql.trim().trim_end_matches(';');
        if let Some(user) = command.strip_prefix("AS ") {
            let record = self
                .db()
                .users()
                .active(user.trim())
                .ok_or_else(|| HarnessError(format!("no user {user}")))?;
            self.caller = Caller {
                user_id: record.id.clone(),
                role: record.role,
            };
            return Ok(DBOutput::StatementComplete(0));
        }
        if command == "WAIT JOBS" {
            self.db().wait_for_jobs().await;
            return Ok(DBOutput::StatementComplete(0));
        }
        if let Some(name) = command.strip_prefix("FLUSH ").filter(|n| !n.contains(' ')) {
            let (ns, table) = name
                .trim()
                .split_once('.')
                .ok_or_else(|| HarnessError("FLUSH ns.table".into()))?;
            let stats = self
                .db()
                .flush_table(ns, table, Default::default())
                .await
                .map_err(|e| HarnessError(e.to_string()))?;
            if !stats.failed.is_empty() {
                return Err(HarnessError(format!("flush failed: {:?}", stats.failed)));
            }
            return Ok(DBOutput::StatementComplete(stats.rows_flushed));
        }
        if let Some(name) = command
            .strip_prefix("COMPACT ")
            .filter(|n| !n.contains(' '))
        {
            let (ns, table) = name
                .trim()
                .split_once('.')
                .ok_or_else(|| HarnessError("COMPACT ns.table".into()))?;
            let stats = self
                .db()
                .compact_table(ns, table, Default::default())
                .await
                .map_err(|e| HarnessError(e.to_string()))?;
            return Ok(DBOutput::StatementComplete(stats.files_in));
        }
        if command == "RESTART" {
            if let Some(db) = self.db.take() {
                db.close().await;
            }
            let db = KalamDb::open(
                &self.config,
                Arc::new(SystemClock),
                kalamdb_auth::Authenticator::new(),
            )
            .map_err(|e| HarnessError(e.to_string()))?;
            db.recover()
                .await
                .map_err(|e| HarnessError(e.to_string()))?;
            self.db = Some(db);
            return Ok(DBOutput::StatementComplete(0));
        }
        let mut results = self.db().execute(sql, &[], None, &self.caller).await?;
        // A batch answers with its last query's rows (a transaction reads
        // before its COMMIT), else its last statement's count.
        let last = match results.iter().rposition(|r| r.schema.is_some()) {
            Some(i) => results.swap_remove(i),
            None => results.pop().expect("one result per statement"),
        };
        let Some(schema) = last.schema else {
            return Ok(DBOutput::StatementComplete(last.row_count as u64));
        };
        let mut rows = Vec::new();
        for batch in &last.batches {
            for r in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|c| cell(c.as_ref(), r))
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slt/files");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("slt directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    // `SLT_FILTER=alter` runs only the files whose path contains it.
    if let Ok(filter) = std::env::var("SLT_FILTER") {
        files.retain(|p| p.to_string_lossy().contains(&filter));
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqllogictest_files() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = Vec::new();
    for file in files {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut runner = sqllogictest::Runner::new(move || {
            let path = path.clone();
            async move { Ok(Harness::open(&path)) }
        });
        runner.with_column_validator(|_, _| true);
        if let Err(e) = runner.run_file_async(&file).await {
            failures.push(format!("{}: {e}", file.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
