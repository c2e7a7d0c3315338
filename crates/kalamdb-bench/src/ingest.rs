//! The ingest benchmark.

use crate::http::Client;
use crate::raw;
use crate::stats::{micros, percentile, rate};
use kalamdb_commons::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// base64("root:"): root without a password, from loopback.
const ROOT_AUTH: &str = "cm9vdDo=";
const BATCH_ROWS: usize = 1000;

struct Options {
    single: usize,
    rows: usize,
    sync: bool,
    /// The tables' flush policy. By default large enough that no flush runs
    /// during the measurement (the raw limit does not flush either);
    /// `--flush-policy rows:10000,interval:300` measures with background
    /// flushes.
    flush_policy: String,
    /// Batched ids in a random order instead of ascending.
    shuffle: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        single: 5_000,
        rows: 1_000_000,
        sync: false,
        flush_policy: "rows:100000000".to_string(),
        shuffle: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = || -> Result<usize, String> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{arg} needs a number"))
        };
        match arg.as_str() {
            "--single" => options.single = number()?,
            "--rows" => options.rows = number()?,
            "--sync" => options.sync = true,
            "--shuffle" => options.shuffle = true,
            "--flush-policy" => {
                options.flush_policy = it
                    .next()
                    .cloned()
                    .ok_or("--flush-policy needs a policy such as rows:10000")?
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

pub struct Server {
    child: Child,
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_server(sync: bool) -> Result<Server, String> {
    start_server_with(sync, &[])
}

/// Starts the release server with extra environment variables.
pub fn start_server_with(sync: bool, env: &[(&str, &str)]) -> Result<Server, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let binary = exe.with_file_name("kalamdb-server");
    if !binary.exists() {
        return Err(format!(
            "{} not found; build it with cargo build --release -p kalamdb-server",
            binary.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut child = Command::new(&binary)
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--http-addr")
        .arg("127.0.0.1:0")
        .env("RUST_LOG", "info")
        .env("KALAMDB_SYNC_WRITES", if sync { "true" } else { "false" })
        .env_remove("KALAMDB_ROOT_PASSWORD")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("local=").nth(1) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
                }
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "server did not report its address".to_string())?;
    Ok(Server {
        child,
        addr,
        _dir: dir,
    })
}

fn sql(client: &mut Client, sql: &str) -> Result<(), String> {
    post(client, &sql_body(sql))
}

/// The JSON request body for `sql`, built before the clock starts so the
/// client's own encoding is not counted as server time.
fn sql_body(sql: &str) -> String {
    serde_json::json!({ "sql": sql }).to_string()
}

fn post(client: &mut Client, body: &str) -> Result<(), String> {
    let (status, response) = client.post("/v1/api/sql", body)?;
    if status != 200 {
        return Err(format!("{body:.80}: HTTP {status}: {response:.300}"));
    }
    Ok(())
}

/// How many flush jobs of the batch table have completed.
fn completed_flushes(client: &mut Client) -> Result<u64, String> {
    let (status, response) = client.post(
        "/v1/api/sql",
        &sql_body(
            "SELECT COUNT(*) AS n FROM system.jobs \
             WHERE table_name = 'batch' AND status = 'completed'",
        ),
    )?;
    let parsed: serde_json::Value =
        serde_json::from_str(&response).map_err(|e| format!("HTTP {status}: {e}"))?;
    // BIGINT cells arrive as strings (JSON numbers lose precision).
    let cell = &parsed["results"][0]["rows"][0][0];
    cell.as_u64()
        .or_else(|| cell.as_str().and_then(|s| s.parse().ok()))
        .ok_or_else(|| format!("unexpected system.jobs answer: {response:.300}"))
}

/// A fixed-seed Fisher-Yates shuffle (xorshift), so runs are comparable.
fn shuffle(ids: &mut [i64]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..ids.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        ids.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

fn values_sql(id: i64) -> String {
    let row = raw::row(id);
    let (Value::Text(body), Value::I32(n), Value::Timestamp(at)) = (&row[1], &row[2], &row[3])
    else {
        unreachable!("row layout")
    };
    format!("({id}, '{body}', {n}, {at})")
}

pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let server = start_server(options.sync)?;
    let mut client = Client::connect(&server.addr, ROOT_AUTH)?;
    let policy = &options.flush_policy;
    sql(
        &mut client,
        &format!(
            "CREATE NAMESPACE bench; \
             CREATE USER TABLE bench.single (id BIGINT PRIMARY KEY, body TEXT, n INT, at TIMESTAMP) \
             WITH (FLUSH_POLICY='{policy}'); \
             CREATE USER TABLE bench.batch (id BIGINT PRIMARY KEY, body TEXT, n INT, at TIMESTAMP) \
             WITH (FLUSH_POLICY='{policy}')"
        ),
    )?;
    println!("tables' flush policy: {policy}");

    // Warm up connections, caches and the allocator.
    for id in 0..500 {
        sql(
            &mut client,
            &format!(
                "INSERT INTO bench.single (id, body, n, at) VALUES {}",
                values_sql(-1 - id)
            ),
        )?;
    }

    let mut latencies = Vec::with_capacity(options.single);
    for id in 0..options.single as i64 {
        let body = sql_body(&format!(
            "INSERT INTO bench.single (id, body, n, at) VALUES {}",
            values_sql(id)
        ));
        let started = Instant::now();
        post(&mut client, &body)?;
        latencies.push(started.elapsed());
    }
    latencies.sort();

    let mut ids: Vec<i64> = (0..options.rows as i64).collect();
    if options.shuffle {
        shuffle(&mut ids);
    }
    let bodies: Vec<String> = ids
        .chunks(BATCH_ROWS)
        .map(|chunk| {
            let values: Vec<String> = chunk.iter().map(|&id| values_sql(id)).collect();
            sql_body(&format!(
                "INSERT INTO bench.batch (id, body, n, at) VALUES {}",
                values.join(", ")
            ))
        })
        .collect();
    let started = Instant::now();
    for body in &bodies {
        post(&mut client, body)?;
    }
    let batched = started.elapsed();
    let flushes = completed_flushes(&mut client)?;
    drop(client);
    drop(server);

    let (raw_batched, _) = raw::write(&ids, BATCH_ROWS, options.sync)?;
    let single_ids: Vec<i64> = (0..options.single as i64).collect();
    let (_, mut raw_single) = raw::write(&single_ids, 1, options.sync)?;
    raw_single.sort();

    let http_rate = rate(options.rows, batched);
    let raw_rate = rate(options.rows, raw_batched);
    println!("KalamDB ingest benchmark (sync_writes = {})", options.sync);
    println!();
    println!(
        "single-row INSERT over HTTP (keep-alive), {} statements:",
        options.single
    );
    println!(
        "  kalamdb   p50 {:>8.1} us   p99 {:>8.1} us",
        micros(percentile(&latencies, 50.0)),
        micros(percentile(&latencies, 99.0))
    );
    println!(
        "  raw write p50 {:>8.1} us   p99 {:>8.1} us   (one-row RocksDB batch, same encoding)",
        micros(percentile(&raw_single, 50.0)),
        micros(percentile(&raw_single, 99.0))
    );
    println!();
    println!(
        "batched INSERT, {} rows in {}-row statements, ids {}:",
        options.rows,
        BATCH_ROWS,
        if options.shuffle {
            "in random order"
        } else {
            "ascending"
        }
    );
    println!(
        "  kalamdb   {:>10.0} rows/s   ({flushes} flush jobs completed by the end)",
        http_rate
    );
    println!(
        "  raw write {:>10.0} rows/s   ({}-row RocksDB batches, same encoding)",
        raw_rate, BATCH_ROWS
    );
    println!(
        "  ratio     {:>10.2}   (target: at least 0.50)",
        http_rate / raw_rate
    );
    Ok(())
}
