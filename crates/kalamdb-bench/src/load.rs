//! `kalamdb-bench load`: N concurrent clients, each a user of its own,
//! write batches and read (point lookups and counts) for a fixed time while
//! flushes run (table policy plus a manual FLUSH every second). Reports
//! throughput, p50/p99 latency per kind, errors and back-pressure, then
//! checks that every acknowledged row is there.

use crate::http::Client;
use crate::ingest::start_server_with;
use crate::stats::{micros, percentile};
use base64::Engine;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// base64("root:"): root without a password, from loopback.
const ROOT_AUTH: &str = "cm9vdDo=";
const PASSWORD: &str = "load-pw-1";

struct Options {
    clients: usize,
    seconds: u64,
    batch: usize,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        clients: 8,
        seconds: 20,
        batch: 10,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{arg} needs a number"))?;
        match arg.as_str() {
            "--clients" => options.clients = value.max(1),
            "--seconds" => options.seconds = value.max(1) as u64,
            "--batch" => options.batch = value.max(1),
            other => return Err(format!("unknown option {other}")),
        }
    }
    Ok(options)
}

#[derive(Default)]
struct ClientReport {
    writes: Vec<Duration>,
    reads: Vec<Duration>,
    rows_acknowledged: u64,
    back_pressure: u64,
    errors: Vec<String>,
}

fn sql(client: &mut Client, sql: &str) -> Result<(u16, String), String> {
    client.post(
        "/v1/api/sql",
        &serde_json::json!({ "sql": sql }).to_string(),
    )
}

fn run_client(addr: &str, user: &str, batch: usize, stop: &AtomicBool) -> ClientReport {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    let mut report = ClientReport::default();
    let mut client = match Client::connect(addr, &auth) {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let mut next_id: u64 = 0;
    let mut round: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let (is_write, text) = if !round.is_multiple_of(4) {
            let values: Vec<String> = (0..batch as u64)
                .map(|i| {
                    format!(
                        "({}, 'event {} of {user}', {})",
                        next_id + i,
                        next_id + i,
                        i
                    )
                })
                .collect();
            (
                true,
                format!("INSERT INTO load.events VALUES {}", values.join(",")),
            )
        } else if round.is_multiple_of(8) || next_id == 0 {
            (false, "SELECT COUNT(*) FROM load.events".to_string())
        } else {
            (
                false,
                format!(
                    "SELECT body FROM load.events WHERE id = {}",
                    round % next_id
                ),
            )
        };
        let started = Instant::now();
        match sql(&mut client, &text) {
            Ok((200, _)) => {
                let took = started.elapsed();
                if is_write {
                    report.writes.push(took);
                    report.rows_acknowledged += batch as u64;
                    next_id += batch as u64;
                } else {
                    report.reads.push(took);
                }
            }
            // Documented back-pressure: the hot tier is over its budget.
            Ok((503, body)) if body.contains("UNAVAILABLE") => {
                report.back_pressure += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((status, body)) => report.errors.push(format!("HTTP {status}: {body:.200}")),
            Err(e) => {
                report.errors.push(e);
                match Client::connect(addr, &auth) {
                    Ok(c) => client = c,
                    Err(e) => {
                        report.errors.push(e);
                        return report;
                    }
                }
            }
        }
    }
    report
}

fn count(addr: &str, user: &str) -> Result<u64, String> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    let mut client = Client::connect(addr, &auth)?;
    let (status, body) = sql(&mut client, "SELECT COUNT(*) FROM load.events")?;
    if status != 200 {
        return Err(format!("count for {user}: HTTP {status}: {body}"));
    }
    let json: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
    let cell = &json["results"][0]["rows"][0][0];
    cell.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| cell.as_u64())
        .ok_or_else(|| format!("unexpected count {cell}"))
}

pub fn run(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let server = start_server_with(false, &[("KALAMDB_FLUSH_CHECK_INTERVAL_MS", "200")])?;
    let mut root = Client::connect(&server.addr, ROOT_AUTH)?;
    let mut setup = vec![
        "CREATE NAMESPACE load".to_string(),
        "CREATE USER TABLE load.events (id BIGINT PRIMARY KEY, body TEXT, n INT) \
         WITH (FLUSH_POLICY='rows:2000,interval:2')"
            .to_string(),
    ];
    setup.extend(
        (0..options.clients)
            .map(|i| format!("CREATE USER 'c{i}' WITH PASSWORD '{PASSWORD}' ROLE user")),
    );
    for statement in &setup {
        let (status, body) = sql(&mut root, statement)?;
        if status != 200 {
            return Err(format!("{statement}: HTTP {status}: {body}"));
        }
    }
    println!(
        "KalamDB load test: {} clients, {} s, {}-row INSERTs and reads (1 in 4), flushes running",
        options.clients, options.seconds, options.batch
    );
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.clients)
        .map(|i| {
            let (addr, stop, batch) = (server.addr.clone(), stop.clone(), options.batch);
            std::thread::spawn(move || run_client(&addr, &format!("c{i}"), batch, &stop))
        })
        .collect();
    let flusher = {
        let (addr, stop) = (server.addr.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            let mut client = Client::connect(&addr, ROOT_AUTH)?;
            let mut flushes = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                if sql(&mut client, "FLUSH ALL TABLES IN load")?.0 == 200 {
                    flushes += 1;
                }
            }
            Ok(flushes)
        })
    };
    std::thread::sleep(Duration::from_secs(options.seconds));
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let reports: Vec<ClientReport> = workers
        .into_iter()
        .map(|w| w.join().map_err(|_| "a client thread panicked".to_string()))
        .collect::<Result<_, _>>()?;
    let manual_flushes = flusher.join().map_err(|_| "the flusher panicked")??;

    let mut writes: Vec<Duration> = reports.iter().flat_map(|r| r.writes.clone()).collect();
    let mut reads: Vec<Duration> = reports.iter().flat_map(|r| r.reads.clone()).collect();
    writes.sort();
    reads.sort();
    let rows: u64 = reports.iter().map(|r| r.rows_acknowledged).sum();
    let errors: Vec<&String> = reports.iter().flat_map(|r| r.errors.iter()).collect();
    let back_pressure: u64 = reports.iter().map(|r| r.back_pressure).sum();
    let secs = elapsed.as_secs_f64();
    println!(
        "  writes  {:>8.0} req/s  {:>9.0} rows/s   p50 {:>8.1} us   p99 {:>8.1} us",
        writes.len() as f64 / secs,
        rows as f64 / secs,
        micros(percentile(&writes, 50.0)),
        micros(percentile(&writes, 99.0))
    );
    println!(
        "  reads   {:>8.0} req/s                      p50 {:>8.1} us   p99 {:>8.1} us",
        reads.len() as f64 / secs,
        micros(percentile(&reads, 50.0)),
        micros(percentile(&reads, 99.0))
    );
    println!(
        "  errors {}   back-pressure (503, retried) {}   manual FLUSH ALL {}",
        errors.len(),
        back_pressure,
        manual_flushes
    );
    for e in errors.iter().take(5) {
        println!("    error: {e}");
    }
    // Nothing lost: each user has exactly the rows acknowledged to them.
    let mut lost = 0i64;
    for (i, report) in reports.iter().enumerate() {
        let stored = count(&server.addr, &format!("c{i}"))?;
        lost += report.rows_acknowledged as i64 - stored as i64;
    }
    let (_, jobs) = sql(
        &mut root,
        "SELECT status, COUNT(*) FROM system.jobs GROUP BY status ORDER BY status",
    )?;
    let jobs: serde_json::Value = serde_json::from_str(&jobs).map_err(|e| e.to_string())?;
    println!("  flush jobs by status: {}", jobs["results"][0]["rows"]);
    println!(
        "  acknowledged rows {rows}, stored rows differ by {lost} ({})",
        if lost == 0 {
            "nothing lost"
        } else {
            "MISMATCH"
        }
    );
    if lost != 0 || !errors.is_empty() {
        return Err("the load test found errors or lost rows".into());
    }
    Ok(())
}
