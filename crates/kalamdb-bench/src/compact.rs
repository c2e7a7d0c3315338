//! The compaction benchmark (in-process engine, real RocksDB and Parquet
//! files): one user's rows flushed `--flushes` times with updates and
//! deletes between the flushes, so the scope holds that many small files;
//! scans and a point lookup before and after `compact_table`, beside the
//! same rows written once into one file, and DuckDB running the same scans
//! over the compacted files; the compaction's rate beside the raw rate of
//! writing its output rows as one Parquet file; peak RSS growth during it.

use crate::flush::{
    caller, config_in, mib, number_after, open_engine, query_latency, reset_peak, rss, table_schema,
};
use crate::stats::{micros, rate};
use kalamdb_core::arrow::array::{ArrayRef, BooleanArray, RecordBatch};
use kalamdb_core::{CompactHooks, CompactionPolicy, EngineConfig, FlushHooks, KalamDb};
use kalamdb_filestore::object_store::local::LocalFileSystem;
use kalamdb_filestore::object_store::path::Path as StorePath;
use kalamdb_filestore::{FileMeta, ParquetFileWriter};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER: &str = "u1";

pub fn run(args: &[String]) -> Result<(), String> {
    let rows = number_after(args, "--rows").unwrap_or(200_000);
    let flushes = number_after(args, "--flushes").unwrap_or(200).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    println!("KalamDB compaction benchmark ({rows} rows of one user, {flushes} flushes)");
    runtime.block_on(case(rows, flushes))
}

async fn sql(db: &KalamDb, user: &str, text: &str) -> Result<Vec<RecordBatch>, String> {
    let mut results = db
        .execute(text, &[], None, &caller(user))
        .await
        .map_err(|e| format!("{text}: {e}"))?;
    Ok(results.pop().map(|r| r.batches).unwrap_or_default())
}

/// Inserts ids `first..first + n` in statements of 1,000 rows.
async fn insert(db: &KalamDb, table: &str, first: i64, n: i64) -> Result<(), String> {
    let mut id = first;
    while id < first + n {
        let end = (id + 1000).min(first + n);
        let values: Vec<String> = (id..end)
            .map(|i| {
                format!(
                    "({i}, '{}', {}, {})",
                    crate::flush::body(i),
                    i % 1000,
                    1_700_000_000_000_000i64 + i
                )
            })
            .collect();
        sql(
            db,
            USER,
            &format!("INSERT INTO {table} VALUES {}", values.join(", ")),
        )
        .await?;
        id = end;
    }
    Ok(())
}

/// Ids spread over `1..=upto`, different for each `round`.
fn spread(round: i64, count: i64, upto: i64, salt: i64) -> Vec<i64> {
    (0..count)
        .map(|j| 1 + (round * 7919 + j * 104_729 + salt) % upto)
        .collect()
}

fn list(ids: &[i64]) -> String {
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every Parquet file under `dir` whose name starts with `prefix`.
fn parquet_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = entry.path();
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if p.is_dir() {
                dirs.push(p);
            } else if name.starts_with(prefix) && name.ends_with(".parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

async fn case(rows: usize, flushes: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = EngineConfig {
        // Only the benchmark compacts.
        compaction: CompactionPolicy {
            max_files: 0,
            max_small_files: 0,
            ..CompactionPolicy::default()
        },
        ..config_in(dir.path(), false)
    };
    let db = open_engine(&config)?;
    sql(
        &db,
        "root",
        "CREATE NAMESPACE b; \
         CREATE USER TABLE b.t (id BIGINT PRIMARY KEY, body TEXT, n INT, at TIMESTAMP); \
         CREATE USER TABLE b.once (id BIGINT PRIMARY KEY, body TEXT, n INT, at TIMESTAMP)",
    )
    .await?;
    let per_flush = (rows / flushes).max(1) as i64;
    let loading = Instant::now();
    let mut written = 0i64;
    for round in 0..flushes as i64 {
        insert(&db, "b.t", written + 1, per_flush).await?;
        written += per_flush;
        // Between flushes: 5% of a flush's rows updated and 2% deleted,
        // anywhere among the rows so far.
        let updated = spread(round, (per_flush / 20).max(1), written, 0);
        sql(
            &db,
            USER,
            &format!(
                "UPDATE b.t SET n = n + 1, body = 'updated' WHERE id IN ({})",
                list(&updated)
            ),
        )
        .await?;
        let deleted = spread(round, (per_flush / 50).max(1), written, 31);
        sql(
            &db,
            USER,
            &format!("DELETE FROM b.t WHERE id IN ({})", list(&deleted)),
        )
        .await?;
        db.flush_table("b", "t", FlushHooks::default())
            .await
            .map_err(|e| e.to_string())?;
    }
    let loaded = loading.elapsed();
    // The same visible rows, written once into one file.
    let mut from = 1;
    while from <= written {
        sql(
            &db,
            USER,
            &format!(
                "INSERT INTO b.once SELECT id, body, n, at FROM b.t WHERE id >= {from} AND id < {}",
                from + 50_000
            ),
        )
        .await?;
        from += 50_000;
    }
    db.flush_table("b", "once", FlushHooks::default())
        .await
        .map_err(|e| e.to_string())?;

    let live = sql(&db, USER, "SELECT COUNT(*) FROM b.t").await?;
    let live = kalamdb_core::arrow::array::AsArray::as_primitive::<
        kalamdb_core::arrow::datatypes::Int64Type,
    >(live[0].column(0).as_ref())
    .value(0);
    let probe = spread(7, 1, written, 5)[0];
    let queries = [
        ("COUNT(*)", "SELECT COUNT(*) FROM {t}".to_string()),
        (
            "GROUP BY",
            "SELECT n % 10, COUNT(*), MAX(at) FROM {t} GROUP BY n % 10".to_string(),
        ),
        (
            "point lookup",
            format!("SELECT * FROM {{t}} WHERE id = {probe}"),
        ),
    ];
    let measure = |table: &'static str| {
        let db = &db;
        let queries = &queries;
        async move {
            let mut out = Vec::new();
            for (_, text) in queries {
                out.push(query_latency(db, USER, &text.replace("{t}", table)).await?);
            }
            Ok::<_, String>(out)
        }
    };
    let before = measure("b.t").await?;
    let once = measure("b.once").await?;

    let (rss_before, _) = rss();
    reset_peak();
    let started = Instant::now();
    let stats = db
        .compact_table("b", "t", CompactHooks::default())
        .await
        .map_err(|e| e.to_string())?;
    let elapsed = started.elapsed();
    let (_, peak) = rss();
    let after = measure("b.t").await?;

    // The limit: the compaction's output rows, written as one file.
    let output = sql(
        &db,
        USER,
        "SELECT id, body, n, at, _seq FROM b.t ORDER BY id",
    )
    .await?;
    let output: Vec<RecordBatch> = output
        .into_iter()
        .map(|b| {
            let mut columns: Vec<ArrayRef> = b.columns().to_vec();
            columns.push(Arc::new(BooleanArray::from(vec![false; b.num_rows()])));
            RecordBatch::try_new(table_schema(), columns).expect("batch")
        })
        .collect();
    let (raw_elapsed, raw_bytes) = raw_write(&output).await?;
    let compacted = parquet_files(&dir.path().join("storage/b/t"), "compacted-");
    let duck = duckdb(&compacted);
    db.close().await;

    println!();
    println!(
        "{written} rows inserted in {flushes} flushes ({:.1} s to load), {live} live at the end",
        loaded.as_secs_f64()
    );
    println!(
        "  compaction {:>10.0} rows/s  {:>7.1} MB/s in  ({} files -> {}, {} rows -> {}, {} tombstones dropped, {:.1} MiB -> {:.1} MiB, {:.2} s)",
        rate(stats.rows_in as usize, elapsed),
        mib(stats.bytes_in) / elapsed.as_secs_f64(),
        stats.files_in,
        stats.files_out,
        stats.rows_in,
        stats.rows_out,
        stats.tombstones_dropped,
        mib(stats.bytes_in),
        mib(stats.bytes_out),
        elapsed.as_secs_f64()
    );
    println!(
        "  raw write  {:>10.0} rows/s  {:>7.1} MB/s  (its {} output rows as one Parquet file, {:.2} s)",
        rate(stats.rows_out as usize, raw_elapsed),
        mib(raw_bytes) / raw_elapsed.as_secs_f64(),
        stats.rows_out,
        raw_elapsed.as_secs_f64()
    );
    println!(
        "  ratio      {:>10.2}   (output rows per second, compaction / raw)",
        rate(stats.rows_out as usize, elapsed) / rate(stats.rows_out as usize, raw_elapsed)
    );
    println!(
        "  peak RSS during compaction: {:.1} MiB, {:+.1} MiB over the {:.1} MiB before it (target: < 256 MiB growth)",
        mib(peak),
        mib(peak) - mib(rss_before),
        mib(rss_before)
    );
    println!(
        "  query p50 of 9 (us): {:<13} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "", "before", "after", "one file", "DuckDB", "after/DuckDB"
    );
    for (i, (name, _)) in queries.iter().enumerate() {
        let duck_us = duck.as_ref().ok().and_then(|d| d.get(i).copied().flatten());
        println!(
            "                       {name:<13} {:>10.1} {:>10.1} {:>10.1} {:>10} {:>8}",
            micros(before[i]),
            micros(after[i]),
            micros(once[i]),
            duck_us.map_or("-".to_string(), |d| format!("{d:.1}")),
            duck_us.map_or("-".to_string(), |d| format!("{:.2}", micros(after[i]) / d)),
        );
    }
    if let Err(e) = duck {
        println!("  DuckDB not run: {e}");
    }
    Ok(())
}

/// Writes `batches` as one file with the compaction's writer settings.
async fn raw_write(batches: &[RecordBatch]) -> Result<(Duration, u64), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).map_err(|e| e.to_string())?);
    let meta = FileMeta {
        table_id: "b.t".into(),
        user_id: Some(USER.into()),
        schema_version: 1,
        primary_key: Some("id".into()),
    };
    let started = Instant::now();
    let mut writer = ParquetFileWriter::create(
        store,
        StorePath::from("b/t/u1/raw.parquet"),
        table_schema(),
        meta,
    )
    .map_err(|e| e.to_string())?;
    for batch in batches.iter().filter(|b| b.num_rows() > 0) {
        writer.write(batch).await.map_err(|e| e.to_string())?;
    }
    let bytes = writer.finish().await.map_err(|e| e.to_string())?.bytes;
    Ok((started.elapsed(), bytes))
}

/// DuckDB's p50 of 9 (us) for the COUNT(*) and the GROUP BY over `files`
/// (the point lookup is not asked of it).
fn duckdb(files: &[PathBuf]) -> Result<Vec<Option<f64>>, String> {
    if files.is_empty() {
        return Err("no compacted files".into());
    }
    let python = match std::env::var("KALAMDB_DUCKDB_PYTHON") {
        Ok(p) => p,
        Err(_) => {
            let out = std::process::Command::new("./scripts/duckdb-peer.sh")
                .output()
                .map_err(|e| format!("scripts/duckdb-peer.sh: {e}"))?;
            if !out.status.success() {
                return Err(String::from_utf8_lossy(&out.stderr).into_owned());
            }
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        }
    };
    const SCRIPT: &str = r#"
import duckdb, json, sys, time
files = "[" + ",".join("'%s'" % f for f in sys.argv[1:]) + "]"
con = duckdb.connect()
out = []
for sql in ["SELECT COUNT(*) FROM read_parquet(%s)" % files,
            "SELECT n %% 10, COUNT(*), MAX(\"at\") FROM read_parquet(%s) GROUP BY n %% 10" % files]:
    times = []
    for _ in range(9):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        times.append(time.perf_counter() - t)
    times.sort()
    out.append(times[4] * 1e6)
print(json.dumps(out))
"#;
    let out = std::process::Command::new(&python)
        .arg("-c")
        .arg(SCRIPT)
        .args(files)
        .output()
        .map_err(|e| format!("{python}: {e}"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let times: Vec<f64> = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(times.into_iter().map(Some).chain([None]).collect())
}
