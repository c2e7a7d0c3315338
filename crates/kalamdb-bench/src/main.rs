//! `kalamdb-bench ingest`: single-row INSERT latency and batched INSERT
//! throughput over HTTP against the real server, each beside the raw
//! RocksDB write rate of the same rows measured in the same run.
//!
//! `kalamdb-bench flush`: hot tier → Parquet flush rate and memory, beside
//! the raw rate of writing the same Arrow batches to Parquet, and query
//! latency on cold versus hot rows.
//!
//! `kalamdb-bench load`: concurrent clients writing and reading while
//! flushes run; throughput, latency, errors, and a check that nothing
//! acknowledged was lost.
//!
//! `kalamdb-bench live`: live queries: notification latency, write rate
//! with subscribers beside none, fan-out, initial load, memory per idle
//! subscription.
//!
//! `kalamdb-bench read`: small reads (`SELECT 1`, primary-key lookups,
//! `LIMIT 10`, `COUNT(*)`) at 1 and 16 clients, hot and cold, beside
//! PostgreSQL (pgbench) with the same data in the same run.
//!
//! `kalamdb-bench compact`: a scope of many small files with updates and
//! deletes: scans and a lookup before and after compaction, beside one
//! file of the same rows and DuckDB over the compacted files; the
//! compaction rate beside the raw Parquet write rate; its memory.
//!
//! `kalamdb-bench schema`: ALTER TABLE ADD COLUMN on 1M rows in both
//! tiers beside the same ALTER on an empty table.
//!
//! `kalamdb-bench txn`: 10 INSERTs as one transaction beside the same 10
//! statements without BEGIN.
//!
//! Run with `./scripts/bench.sh` (builds release binaries first).
// Measuring real time is what a benchmark is for.
#![allow(clippy::disallowed_methods)]

mod compact;
mod flush;
mod http;
mod ingest;
mod live;
mod load;
mod raw;
mod read;
mod schema;
mod stats;
mod txn;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ingest") | None => ingest::run(&args[args.len().min(1)..]),
        Some("flush") => flush::run(&args[1..]),
        Some("load") => load::run(&args[1..]),
        Some("live") => live::run(&args[1..]),
        Some("read") => read::run(&args[1..]),
        Some("compact") => compact::run(&args[1..]),
        Some("schema") => schema::run(&args[1..]),
        Some("txn") => txn::run(&args[1..]),
        Some(other) => Err(format!(
            "unknown benchmark '{other}'; try: ingest, flush, load, live, read, compact, schema, txn"
        )),
    };
    if let Err(e) = result {
        eprintln!("kalamdb-bench: {e}");
        std::process::exit(1);
    }
}
