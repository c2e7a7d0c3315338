//! The read benchmark: per-statement latency and throughput of small
//! reads, ours over one keep-alive HTTP connection per client beside
//! PostgreSQL's (pgbench, prepared statements) on the same machine, with
//! the same data, in the same run.
//!
//! Statements: `SELECT 1`; a primary-key lookup with a random key in a
//! 10K-row and a 1M-row table; `LIMIT 10`; `COUNT(*)` of a 10K-row scope.
//! Each at 1 and 16 clients, on hot rows, then again after FLUSH (cold).

use crate::http::Client;
use crate::ingest::start_server;
use crate::stats::{micros, percentile};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// base64("root:"): root without a password, from loopback.
const ROOT_AUTH: &str = "cm9vdDo=";
const SMALL: i64 = 10_000;

struct Options {
    /// Rows of the large table.
    large: i64,
    /// Seconds per measurement.
    secs: u64,
    clients: Vec<usize>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        large: 1_000_000,
        secs: 3,
        clients: vec![1, 16],
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{arg}: not a number"))
        };
        match arg.as_str() {
            "--large" => options.large = number()? as i64,
            "--secs" => options.secs = number()?.max(1),
            "--clients" => {
                options.clients = value
                    .split(',')
                    .map(|c| {
                        c.parse()
                            .map_err(|_| format!("--clients: bad list {value}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

/// One statement, as each side runs it. `{id}` is a random key below
/// `keys`.
struct Case {
    name: &'static str,
    ours: String,
    pg: String,
    keys: i64,
}

fn cases(large: i64) -> Vec<Case> {
    let case = |name, ours: &str, pg: &str, keys| Case {
        name,
        ours: ours.to_string(),
        pg: pg.to_string(),
        keys,
    };
    vec![
        case("SELECT 1", "SELECT 1", "SELECT 1;", 0),
        case(
            "pk lookup, 10K rows",
            "SELECT * FROM bench.k10k WHERE id = $1",
            "SELECT * FROM k10k WHERE id = :id;",
            SMALL,
        ),
        case(
            "pk lookup, large table",
            "SELECT * FROM bench.klarge WHERE id = $1",
            "SELECT * FROM klarge WHERE id = :id;",
            large,
        ),
        case(
            "LIMIT 10",
            "SELECT * FROM bench.k10k LIMIT 10",
            "SELECT * FROM k10k LIMIT 10;",
            0,
        ),
        case(
            "COUNT(*), 10K rows",
            "SELECT COUNT(*) FROM bench.k10k",
            "SELECT COUNT(*) FROM k10k;",
            0,
        ),
    ]
}

/// What one measurement found.
struct Figures {
    ops_per_sec: f64,
    mean_us: f64,
    p99_us: Option<f64>,
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// `clients` threads, each on its own connection, for `secs`.
fn measure_ours(addr: &str, case: &Case, clients: usize, secs: u64) -> Result<Figures, String> {
    let stop = AtomicBool::new(false);
    let outcome: Result<Vec<Vec<Duration>>, String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|c| {
                let stop = &stop;
                s.spawn(move || -> Result<Vec<Duration>, String> {
                    let mut client = Client::connect(addr, ROOT_AUTH)?;
                    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1);
                    let mut samples = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let body = if case.keys > 0 {
                            let id = (xorshift(&mut seed) % case.keys as u64) as i64 + 1;
                            serde_json::json!({ "sql": case.ours, "params": [id] }).to_string()
                        } else {
                            serde_json::json!({ "sql": case.ours }).to_string()
                        };
                        let started = Instant::now();
                        let (status, response) = client.post("/v1/api/sql", &body)?;
                        samples.push(started.elapsed());
                        if status != 200 {
                            return Err(format!("{}: HTTP {status}: {response:.300}", case.ours));
                        }
                    }
                    Ok(samples)
                })
            })
            .collect();
        std::thread::sleep(Duration::from_secs(secs));
        stop.store(true, Ordering::Relaxed);
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "a client panicked".to_string())?)
            .collect()
    });
    let mut all: Vec<Duration> = outcome?.into_iter().flatten().collect();
    all.sort();
    let total: Duration = all.iter().sum();
    Ok(Figures {
        ops_per_sec: all.len() as f64 / secs as f64,
        mean_us: micros(total) / all.len().max(1) as f64,
        p99_us: Some(micros(percentile(&all, 99.0))),
    })
}

/// PostgreSQL in a scratch directory, stopped when dropped.
struct Postgres {
    dir: PathBuf,
    port: u16,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-peer.sh")
}

impl Postgres {
    fn start(scratch: &Path) -> Result<Self, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let dir = scratch.join("pg");
        let status = Command::new(script())
            .arg("start")
            .arg(&dir)
            .arg(port.to_string())
            .status()
            .map_err(|e| format!("cannot run pg-peer.sh: {e}"))?;
        if !status.success() {
            return Err("scripts/pg-peer.sh start failed".into());
        }
        Ok(Self { dir, port })
    }

    fn psql(&self, database: &str, sql: &str) -> Result<(), String> {
        let output = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-q",
            ])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "psql: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(())
    }

    /// pgbench with prepared statements; its own latency and tps figures.
    fn measure(
        &self,
        scratch: &Path,
        case: &Case,
        clients: usize,
        secs: u64,
    ) -> Result<Figures, String> {
        let file = scratch.join("case.sql");
        let mut text = String::new();
        if case.keys > 0 {
            text.push_str(&format!("\\set id random(1, {})\n", case.keys));
        }
        text.push_str(&case.pg);
        text.push('\n');
        std::fs::write(&file, text).map_err(|e| e.to_string())?;
        let output = Command::new("pgbench")
            .args(["-n", "-M", "prepared", "-h", "127.0.0.1", "-U", "postgres"])
            .args(["-p", &self.port.to_string()])
            .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
            .args(["-T", &secs.to_string(), "-f"])
            .arg(&file)
            .arg("bench")
            .output()
            .map_err(|e| format!("pgbench: {e}"))?;
        let out = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "pgbench: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let after = |label: &str| -> Result<f64, String> {
            out.lines()
                .find_map(|l| l.trim().strip_prefix(label))
                .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
                .ok_or_else(|| format!("pgbench printed no `{label}`: {out}"))
        };
        Ok(Figures {
            ops_per_sec: after("tps = ")?,
            mean_us: after("latency average = ")? * 1000.0,
            p99_us: None,
        })
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("stop").arg(&self.dir).status();
    }
}

fn sql(client: &mut Client, sql: &str) -> Result<String, String> {
    let body = serde_json::json!({ "sql": sql }).to_string();
    let (status, response) = client.post("/v1/api/sql", &body)?;
    if status != 200 {
        return Err(format!("{sql:.80}: HTTP {status}: {response:.300}"));
    }
    Ok(response)
}

/// Rows 1..=rows: `(id, 'value-<id>', id * 7)`, in requests of 5,000.
fn load_ours(client: &mut Client, table: &str, rows: i64) -> Result<(), String> {
    let mut id = 1;
    while id <= rows {
        let end = (id + 5_000).min(rows + 1);
        let values: Vec<String> = (id..end)
            .map(|i| format!("({i}, 'value-{i}', {})", i * 7))
            .collect();
        sql(
            client,
            &format!("INSERT INTO bench.{table} VALUES {}", values.join(",")),
        )?;
        id = end;
    }
    Ok(())
}

/// FLUSH TABLE, then waits for its job.
fn flush(client: &mut Client, table: &str) -> Result<(), String> {
    let response = sql(client, &format!("FLUSH TABLE bench.{table}"))?;
    let job = response
        .split("Job ID: ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| c == '"' || c.is_whitespace()).next())
        .ok_or_else(|| format!("no job id in {response:.200}"))?
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let status = sql(
            client,
            &format!("SELECT status FROM system.jobs WHERE job_id = '{job}'"),
        )?;
        if status.contains("\"completed\"") {
            return Ok(());
        }
        if status.contains("\"failed\"") || Instant::now() > deadline {
            return Err(format!("flush of {table}: {status:.300}"));
        }
        // No event to wait on over HTTP; the job takes seconds.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn print_row(case: &Case, tier: &str, clients: usize, ours: &Figures, pg: &Figures) {
    println!(
        "{:<24} {:<4} {:>3} | {:>9.0} {:>9.0} {:>9.0} | {:>9.0} {:>9.0} | {:>5.2}x",
        case.name,
        tier,
        clients,
        ours.mean_us,
        ours.p99_us.unwrap_or(0.0),
        ours.ops_per_sec,
        pg.mean_us,
        pg.ops_per_sec,
        ours.mean_us / pg.mean_us,
    );
}

pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let server = start_server(false)?;
    let mut client = Client::connect(&server.addr, ROOT_AUTH)?;
    sql(
        &mut client,
        "CREATE NAMESPACE bench; \
         CREATE USER TABLE bench.k10k (id BIGINT PRIMARY KEY, v TEXT NOT NULL, n BIGINT NOT NULL) \
         WITH (FLUSH_POLICY='rows:100000000'); \
         CREATE USER TABLE bench.klarge (id BIGINT PRIMARY KEY, v TEXT NOT NULL, n BIGINT NOT NULL) \
         WITH (FLUSH_POLICY='rows:100000000')",
    )?;
    eprintln!("loading {SMALL} and {} rows into KalamDB", options.large);
    load_ours(&mut client, "k10k", SMALL)?;
    load_ours(&mut client, "klarge", options.large)?;

    let pg = Postgres::start(scratch.path())?;
    pg.psql("postgres", "CREATE DATABASE bench")?;
    for (table, rows) in [("k10k", SMALL), ("klarge", options.large)] {
        pg.psql(
            "bench",
            &format!(
                "CREATE TABLE {table} (id BIGINT PRIMARY KEY, v TEXT NOT NULL, n BIGINT NOT NULL); \
                 INSERT INTO {table} SELECT i, 'value-' || i, i * 7 FROM generate_series(1, {rows}) i"
            ),
        )?;
        // On its own: VACUUM cannot run inside psql -c's transaction.
        pg.psql("bench", &format!("VACUUM ANALYZE {table}"))?;
    }

    println!(
        "KalamDB over HTTP/1.1 keep-alive (one connection per client) beside PostgreSQL \
         (pgbench -M prepared), {} s per row; latencies in µs",
        options.secs
    );
    println!(
        "{:<24} {:<4} {:>3} | {:>9} {:>9} {:>9} | {:>9} {:>9} | {:>6}",
        "statement", "tier", "cl", "mean", "p99", "ops/s", "pg mean", "pg ops/s", "ratio"
    );
    let all = cases(options.large);
    for tier in ["hot", "cold"] {
        if tier == "cold" {
            eprintln!("flushing both tables");
            // The first connection has been idle through the hot runs,
            // longer than the server keeps an idle connection open.
            client = Client::connect(&server.addr, ROOT_AUTH)?;
            flush(&mut client, "k10k")?;
            flush(&mut client, "klarge")?;
        }
        for case in &all {
            // Constant statements have no tier.
            if tier == "cold" && case.name == "SELECT 1" {
                continue;
            }
            for &clients in &options.clients {
                let ours = measure_ours(&server.addr, case, clients, options.secs)?;
                let theirs = pg.measure(scratch.path(), case, clients, options.secs)?;
                print_row(case, tier, clients, &ours, &theirs);
            }
        }
    }
    Ok(())
}
