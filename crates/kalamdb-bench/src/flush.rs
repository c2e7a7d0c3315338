//! The flush benchmark (in-process engine, real RocksDB and Parquet files).

use crate::stats::{micros, percentile, rate};
use kalamdb_commons::{Role, SystemClock, UserId};
use kalamdb_core::arrow::array::{
    ArrayRef, BooleanArray, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
};
use kalamdb_core::arrow::record_batch::RecordBatch;
use kalamdb_core::FlushHooks;
use kalamdb_core::{Caller, EngineConfig, KalamDb};
use kalamdb_filestore::object_store::local::LocalFileSystem;
use kalamdb_filestore::object_store::path::Path as StorePath;
use kalamdb_filestore::{FileMeta, ParquetFileWriter};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TABLE_SQL: &str = "CREATE NAMESPACE b; CREATE USER TABLE b.t (id BIGINT PRIMARY KEY, body TEXT, n INT, at TIMESTAMP)";

/// The engine's configuration for a benchmark in `dir`: no root password,
/// fsync per write as asked.
pub(crate) fn config_in(dir: &std::path::Path, sync_writes: bool) -> EngineConfig {
    EngineConfig {
        data_dir: dir.to_path_buf(),
        sync_writes,
        root_password: None,
        ..EngineConfig::default()
    }
}

/// Opens an engine in the benchmark's process, on the system clock.
pub(crate) fn open_engine(config: &EngineConfig) -> Result<KalamDb, String> {
    KalamDb::open(
        config,
        Arc::new(SystemClock),
        kalamdb_auth::Authenticator::new(),
    )
    .map_err(|e| e.to_string())
}

pub(crate) fn caller(name: &str) -> Caller {
    Caller {
        user_id: UserId::new(name).expect("valid user"),
        role: if name == "root" {
            Role::System
        } else {
            Role::User
        },
    }
}

pub(crate) fn body(id: i64) -> String {
    format!("message body number {id} with some text")
}

/// Resident set size and its peak, in bytes (Linux).
pub(crate) fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak-RSS counter so the next peak belongs to what follows.
pub(crate) fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Case {
    users: usize,
    rows: usize,
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// The number after `flag`, if given.
pub(crate) fn number_after(args: &[String], flag: &str) -> Option<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

pub fn run(args: &[String]) -> Result<(), String> {
    let rows = number_after(args, "--rows").unwrap_or(1_000_000);
    // `--users N` runs only the case with N users.
    let only_users = number_after(args, "--users");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    println!("KalamDB flush benchmark ({rows} rows per case)");
    for case in [
        Case {
            users: 10_000.min(rows),
            rows,
        },
        Case { users: 1, rows },
    ] {
        if only_users.is_none_or(|users| users == case.users) {
            runtime.block_on(flush_case(&case))?;
        }
    }
    Ok(())
}

async fn load(db: &KalamDb, case: &Case) -> Result<(), String> {
    let per_user = case.rows / case.users;
    let mut id = 0i64;
    for u in 0..case.users {
        let user = format!("u{u:05}");
        let mut left = per_user;
        while left > 0 {
            let n = left.min(1000);
            let values: Vec<String> = (0..n)
                .map(|_| {
                    id += 1;
                    format!(
                        "({id}, '{}', {}, {})",
                        body(id),
                        id % 1000,
                        1_700_000_000_000_000i64 + id
                    )
                })
                .collect();
            db.execute(
                &format!("INSERT INTO b.t VALUES {}", values.join(", ")),
                &[],
                None,
                &caller(&user),
            )
            .await
            .map_err(|e| e.to_string())?;
            left -= n;
        }
    }
    Ok(())
}

/// The same rows as Arrow batches, split per user as the flush splits them.
fn batches(case: &Case) -> Vec<Vec<RecordBatch>> {
    let per_user = case.rows / case.users;
    let schema = table_schema();
    let mut out = Vec::with_capacity(case.users);
    let mut id = 0i64;
    for _ in 0..case.users {
        let mut user_batches = Vec::new();
        let mut left = per_user;
        while left > 0 {
            let n = left.min(4096);
            let ids: Vec<i64> = (0..n as i64).map(|i| id + 1 + i).collect();
            id += n as i64;
            let columns: Vec<ArrayRef> = vec![
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(StringArray::from_iter_values(ids.iter().map(|i| body(*i)))),
                Arc::new(Int32Array::from_iter_values(
                    ids.iter().map(|i| (i % 1000) as i32),
                )),
                Arc::new(TimestampMicrosecondArray::from_iter_values(
                    ids.iter().map(|i| 1_700_000_000_000_000 + i),
                )),
                Arc::new(Int64Array::from(ids.clone())),
                Arc::new(BooleanArray::from(vec![false; n])),
            ];
            user_batches.push(RecordBatch::try_new(schema.clone(), columns).expect("batch"));
            left -= n;
        }
        out.push(user_batches);
    }
    out
}

pub(crate) fn table_schema() -> kalamdb_core::arrow::datatypes::SchemaRef {
    use kalamdb_core::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("body", DataType::Utf8, true),
        Field::new("n", DataType::Int32, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("_seq", DataType::Int64, false),
        Field::new("_deleted", DataType::Boolean, false),
    ]))
}

/// The limit: writing the same batches, one file per user, with the same
/// writer settings, to local disk.
async fn raw_parquet(data: &[Vec<RecordBatch>]) -> Result<(Duration, u64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).map_err(|e| e.to_string())?);
    let started = Instant::now();
    let mut bytes = 0;
    for (u, user_batches) in data.iter().enumerate() {
        let path = StorePath::from(format!("b/t/u{u:05}/batch-1.parquet"));
        let meta = FileMeta {
            table_id: "b.t".into(),
            user_id: Some(format!("u{u:05}")),
            schema_version: 1,
            primary_key: Some("id".into()),
        };
        let mut writer = ParquetFileWriter::create(store.clone(), path, table_schema(), meta)
            .map_err(|e| e.to_string())?;
        for batch in user_batches {
            writer.write(batch).await.map_err(|e| e.to_string())?;
        }
        bytes += writer.finish().await.map_err(|e| e.to_string())?.bytes;
    }
    Ok((started.elapsed(), bytes))
}

pub(crate) async fn query_latency(db: &KalamDb, user: &str, sql: &str) -> Result<Duration, String> {
    let mut times = Vec::new();
    for _ in 0..9 {
        let started = Instant::now();
        db.execute(sql, &[], None, &caller(user))
            .await
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 50.0))
}

async fn flush_case(case: &Case) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = open_engine(&config_in(dir.path(), false))?;
    db.execute(TABLE_SQL, &[], None, &caller("root"))
        .await
        .map_err(|e| e.to_string())?;
    load(&db, case).await?;

    let probe_user = "u00000";
    let probe_id = 1 + (case.rows / case.users) as i64 / 2;
    let queries = [
        (
            "point lookup",
            format!("SELECT * FROM b.t WHERE id = {probe_id}"),
        ),
        ("COUNT(*)", "SELECT COUNT(*) FROM b.t".to_string()),
        (
            "GROUP BY",
            "SELECT n % 10, COUNT(*), MAX(at) FROM b.t GROUP BY n % 10".to_string(),
        ),
    ];
    let mut hot = Vec::new();
    for (_, sql) in &queries {
        hot.push(query_latency(&db, probe_user, sql).await?);
    }

    let (rss_before, _) = rss();
    reset_peak();
    let started = Instant::now();
    let stats = db
        .flush_table("b", "t", FlushHooks::default())
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let (_, peak) = rss();
    if !stats.failed.is_empty() || stats.rows_flushed != case.rows as u64 {
        return Err(format!(
            "flush moved {} of {} rows: {:?}",
            stats.rows_flushed, case.rows, stats.failed
        ));
    }

    let mut cold = Vec::new();
    for (_, sql) in &queries {
        cold.push(query_latency(&db, probe_user, sql).await?);
    }
    db.close().await;

    let data = batches(case);
    let (raw_elapsed, raw_bytes) = raw_parquet(&data).await?;

    println!();
    println!("{} rows over {} user(s):", case.rows, case.users);
    println!(
        "  flush      {:>10.0} rows/s  {:>7.1} MB/s  ({} files, {:.1} MiB, {:.2} s)",
        rate(case.rows, elapsed),
        mib(stats.bytes_written) / elapsed.as_secs_f64(),
        stats.parquet_files,
        mib(stats.bytes_written),
        elapsed.as_secs_f64()
    );
    println!(
        "  raw write  {:>10.0} rows/s  {:>7.1} MB/s  (same batches straight to Parquet, {:.2} s)",
        rate(case.rows, raw_elapsed),
        mib(raw_bytes) / raw_elapsed.as_secs_f64(),
        raw_elapsed.as_secs_f64()
    );
    println!(
        "  ratio      {:>10.2}   (target: at least 0.50)",
        raw_elapsed.as_secs_f64() / elapsed.as_secs_f64()
    );
    println!(
        "  peak RSS during flush: {:.1} MiB, {:+.1} MiB over the {:.1} MiB before it (target: < 256 MiB growth)",
        mib(peak),
        mib(peak) - mib(rss_before),
        mib(rss_before)
    );
    println!("  query latency for one user (p50 of 9), hot tier vs all in Parquet:");
    for (((name, _), h), c) in queries.iter().zip(&hot).zip(&cold) {
        println!(
            "    {name:<13} hot {:>10.1} us   cold {:>10.1} us",
            micros(*h),
            micros(*c)
        );
    }
    Ok(())
}
