//! `kalamdb-bench schema`: ALTER TABLE ADD COLUMN on a table of 1M rows in
//! both tiers (half flushed to Parquet, half hot) beside the same ALTER on
//! an empty table in the same run: a schema change rewrites nothing, so
//! the two should match whatever the table holds.

use crate::flush::{body, caller, config_in, number_after, open_engine};
use crate::stats::{micros, percentile};
use kalamdb_core::{FlushHooks, KalamDb};
use std::time::{Duration, Instant};

const USERS: usize = 10;
/// ALTERs timed per table (each adds one column); the median is reported.
const ALTERS: usize = 7;

pub fn run(args: &[String]) -> Result<(), String> {
    let rows = number_after(args, "--rows").unwrap_or(1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(alter_case(rows))
}

async fn sql(db: &KalamDb, user: &str, sql: &str) -> Result<(), String> {
    db.execute(sql, &[], None, &caller(user))
        .await
        .map(|_| ())
        .map_err(|e| format!("{sql}: {e}"))
}

/// `rows` rows spread over the users, ids from `first`.
async fn load(db: &KalamDb, first: i64, rows: usize) -> Result<(), String> {
    let per_user = rows / USERS;
    let mut id = first;
    for u in 0..USERS {
        let user = format!("u{u:02}");
        let mut left = per_user;
        while left > 0 {
            let n = left.min(1000);
            let values: Vec<String> = (0..n)
                .map(|_| {
                    id += 1;
                    format!("({id}, '{}', {})", body(id), id % 1000)
                })
                .collect();
            sql(
                db,
                &user,
                &format!(
                    "INSERT INTO s.big (id, body, n) VALUES {}",
                    values.join(", ")
                ),
            )
            .await?;
            left -= n;
        }
    }
    Ok(())
}

/// Median time of [`ALTERS`] `ADD COLUMN`s on `table`.
async fn alter_median(db: &KalamDb, table: &str) -> Result<Duration, String> {
    let mut times = Vec::with_capacity(ALTERS);
    for i in 0..ALTERS {
        let started = Instant::now();
        sql(
            db,
            "root",
            &format!("ALTER TABLE {table} ADD COLUMN extra{i} INT NOT NULL DEFAULT {i}"),
        )
        .await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(percentile(&times, 50.0))
}

async fn alter_case(rows: usize) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = open_engine(&config_in(dir.path(), false))?;
    sql(
        &db,
        "root",
        "CREATE NAMESPACE s; \
         CREATE USER TABLE s.big (id BIGINT PRIMARY KEY, body TEXT, n INT); \
         CREATE USER TABLE s.empty (id BIGINT PRIMARY KEY, body TEXT, n INT)",
    )
    .await?;
    println!("KalamDB schema benchmark ({rows} rows, half in Parquet, half hot)");
    load(&db, 0, rows / 2).await?;
    db.flush_table("s", "big", FlushHooks::default())
        .await
        .map_err(|e| e.to_string())?;
    load(&db, rows as i64, rows - rows / 2).await?;

    let big = alter_median(&db, "s.big").await?;
    let empty = alter_median(&db, "s.empty").await?;
    println!(
        "  ALTER TABLE ADD COLUMN ... NOT NULL DEFAULT (median of {ALTERS})\n    \
         {rows} rows   {:>10.1} us\n    empty table  {:>10.1} us\n    ratio        {:>10.2}   \
         (target: about 1: nothing is rewritten)",
        micros(big),
        micros(empty),
        big.as_secs_f64() / empty.as_secs_f64()
    );

    // Every row reads the new columns' defaults, from either tier.
    let started = Instant::now();
    let results = db
        .execute(
            "SELECT COUNT(*) FROM s.big WHERE extra3 = 3",
            &[],
            None,
            &caller("u00"),
        )
        .await
        .map_err(|e| e.to_string())?;
    let count = kalamdb_core::arrow::compute::cast(
        results[0].batches[0].column(0),
        &kalamdb_core::arrow::datatypes::DataType::Int64,
    )
    .map_err(|e| e.to_string())?;
    let count = count
        .as_any()
        .downcast_ref::<kalamdb_core::arrow::array::Int64Array>()
        .map(|a| a.value(0))
        .unwrap_or(-1);
    if count != (rows / USERS) as i64 {
        return Err(format!(
            "one user's rows reading the new column: {count}, expected {}",
            rows / USERS
        ));
    }
    println!(
        "  one user's {} rows read with the added column in {:.1} ms",
        rows / USERS,
        micros(started.elapsed()) / 1000.0
    );
    db.close().await;
    Ok(())
}
