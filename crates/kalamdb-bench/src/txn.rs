//! `kalamdb-bench txn`: the latency of a batch of 10 single-row INSERTs
//! run as one transaction (`BEGIN; ...; COMMIT`) beside the same 10
//! statements without BEGIN (each its own commit), in the same run,
//! in-process; `--sync` fsyncs every commit.

use crate::flush::{body, caller, config_in, number_after, open_engine};
use crate::stats::{micros, percentile};
use std::time::{Duration, Instant};

const STATEMENTS: usize = 10;

pub fn run(args: &[String]) -> Result<(), String> {
    let batches = number_after(args, "--batches").unwrap_or(2000);
    // `--sync`: fsync every commit (the server's `storage.sync_writes`).
    let sync = args.iter().any(|a| a == "--sync");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(txn_case(batches, sync))
}

fn batch(first: i64, transaction: bool) -> String {
    let inserts: Vec<String> = (first..first + STATEMENTS as i64)
        .map(|id| format!("INSERT INTO x.t (id, body) VALUES ({id}, '{}')", body(id)))
        .collect();
    if transaction {
        format!("BEGIN; {}; COMMIT", inserts.join("; "))
    } else {
        inserts.join("; ")
    }
}

async fn txn_case(batches: usize, sync: bool) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let db = open_engine(&config_in(dir.path(), sync))?;
    let user = caller("root");
    db.execute(
        "CREATE NAMESPACE x; CREATE USER TABLE x.t (id BIGINT PRIMARY KEY, body TEXT)",
        &[],
        None,
        &user,
    )
    .await
    .map_err(|e| e.to_string())?;
    println!(
        "KalamDB transaction benchmark ({batches} batches of {STATEMENTS} single-row INSERTs each way, \
         sync_writes = {})",
        sync
    );
    let (mut plain, mut txn): (Vec<Duration>, Vec<Duration>) = (Vec::new(), Vec::new());
    let mut id = 0i64;
    // Alternating, so both see the same table size and machine load.
    for i in 0..batches * 2 {
        let transaction = i % 2 == 1;
        let sql = batch(id, transaction);
        id += STATEMENTS as i64;
        let started = Instant::now();
        db.execute(&sql, &[], None, &user)
            .await
            .map_err(|e| e.to_string())?;
        let took = started.elapsed();
        if transaction {
            txn.push(took);
        } else {
            plain.push(took);
        }
    }
    plain.sort();
    txn.sort();
    let line = |name: &str, times: &[Duration]| {
        println!(
            "  {name:<28} p50 {:>8.1} us   p99 {:>8.1} us",
            micros(percentile(times, 50.0)),
            micros(percentile(times, 99.0))
        );
    };
    line("10 INSERTs, no BEGIN", &plain);
    line("BEGIN; 10 INSERTs; COMMIT", &txn);
    println!(
        "  ratio (transaction / plain, p50) {:.2}",
        percentile(&txn, 50.0).as_secs_f64() / percentile(&plain, 50.0).as_secs_f64()
    );
    db.close().await;
    Ok(())
}
