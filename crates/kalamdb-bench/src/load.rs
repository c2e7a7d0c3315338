//! `kalamdb-bench load`: N concurrent clients, each a user of its own,
//! write batches and read (point lookups and counts) for a fixed time while
//! flushes run (table policy plus a manual FLUSH every second, or every
//! `--manual-flush-secs`; 0 for none). Reports
//! throughput, p50/p99 latency per kind, errors and back-pressure, then
//! checks that every acknowledged row is there.
//!
//! With `--mixed`, clients share `--users` users and run single-row
//! INSERTs, primary-key SELECTs, UPDATEs and DELETEs of their own rows
//! (4:3:2:1); at the end each user's row count must equal what its
//! clients inserted minus what they deleted.
//!
//! With `--window S`, latencies are also reported per S seconds of the
//! run, and the last window's p99 beside the first's: over a long run
//! with short flush policies, files pile up unless compaction keeps up.

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
    /// Users the clients share (`--mixed`; otherwise one per client).
    users: usize,
    mixed: bool,
    flush_policy: String,
    /// Seconds between the manual `FLUSH ALL`s; 0: none (the policy alone).
    manual_flush_secs: u64,
    /// Seconds per reported window of the run; 0: no windows.
    window_secs: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        clients: 8,
        seconds: 20,
        batch: 10,
        users: 0,
        mixed: false,
        flush_policy: "rows:2000,interval:2".into(),
        manual_flush_secs: 1,
        window_secs: 0,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--mixed" {
            options.mixed = true;
            continue;
        }
        let raw = it.next().ok_or_else(|| format!("{arg} needs a value"))?;
        if arg == "--flush-policy" {
            options.flush_policy = raw.clone();
            continue;
        }
        let value: usize = raw.parse().map_err(|_| format!("{arg} needs a number"))?;
        match arg.as_str() {
            "--clients" => options.clients = value.max(1),
            "--seconds" => options.seconds = value.max(1) as u64,
            "--batch" => options.batch = value.max(1),
            "--users" => options.users = value.max(1),
            "--manual-flush-secs" => options.manual_flush_secs = value as u64,
            "--window" => options.window_secs = value as u64,
            other => return Err(format!("unknown option {other}")),
        }
    }
    if !options.mixed || options.users == 0 {
        options.users = options.clients;
    }
    Ok(options)
}

#[derive(Default)]
struct ClientReport {
    writes: Vec<Duration>,
    reads: Vec<Duration>,
    /// Rows inserted minus rows deleted, as acknowledged.
    rows_acknowledged: u64,
    back_pressure: u64,
    errors: Vec<String>,
    /// (second of the run it ended in, latency) of every request.
    timeline: Vec<(u32, Duration)>,
}

fn sql(client: &mut Client, sql: &str) -> Result<(u16, String), String> {
    client.post(
        "/v1/api/sql",
        &serde_json::json!({ "sql": sql }).to_string(),
    )
}

/// A keep-alive connection as one of the load users.
fn connect_as(addr: &str, user: &str) -> Result<Client, String> {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"));
    Client::connect(addr, &auth)
}

fn run_client(
    addr: &str,
    user: &str,
    batch: usize,
    stop: &AtomicBool,
    run_started: Instant,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut client = match connect_as(addr, user) {
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
                report
                    .timeline
                    .push((run_started.elapsed().as_secs() as u32, took));
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
                match connect_as(addr, user) {
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

/// A `--mixed` client: single-row INSERT, SELECT, UPDATE, DELETE of its
/// own rows (ids `client * 10^9 + n`, so clients of one user never collide).
fn run_mixed_client(
    addr: &str,
    user: &str,
    client_no: u64,
    stop: &AtomicBool,
    run_started: Instant,
) -> ClientReport {
    let mut report = ClientReport::default();
    let mut client = match connect_as(addr, user) {
        Ok(c) => c,
        Err(e) => {
            report.errors.push(e);
            return report;
        }
    };
    let base = client_no * 1_000_000_000;
    let mut live: Vec<u64> = Vec::new();
    let mut next: u64 = 0;
    let mut seed = 0x9E37_79B9_7F4A_7C15 ^ (client_no + 1);
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    while !stop.load(Ordering::Relaxed) {
        let pick = random() % 10;
        let (kind, body) = if pick < 4 || live.is_empty() {
            let id = base + next;
            let sql = "INSERT INTO load.events VALUES ($1, $2, $3)";
            (
                0,
                serde_json::json!({"sql": sql, "params": [id, format!("event {id}"), 1]}),
            )
        } else {
            let at = (random() % live.len() as u64) as usize;
            let id = live[at];
            let (kind, sql) = match pick {
                4..=6 => (1, "SELECT body, n FROM load.events WHERE id = $1"),
                7 | 8 => (2, "UPDATE load.events SET n = n + 1 WHERE id = $1"),
                _ => (3, "DELETE FROM load.events WHERE id = $1"),
            };
            (kind, serde_json::json!({"sql": sql, "params": [id]}))
        };
        let started = Instant::now();
        match client.post("/v1/api/sql", &body.to_string()) {
            Ok((200, _)) => {
                let took = started.elapsed();
                report
                    .timeline
                    .push((run_started.elapsed().as_secs() as u32, took));
                match kind {
                    0 => {
                        live.push(base + next);
                        next += 1;
                        report.writes.push(took);
                    }
                    1 => report.reads.push(took),
                    2 => report.writes.push(took),
                    _ => {
                        let id = body["params"][0].as_u64().unwrap_or_default();
                        live.retain(|x| *x != id);
                        report.writes.push(took);
                    }
                }
            }
            Ok((503, text)) if text.contains("UNAVAILABLE") => {
                report.back_pressure += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok((status, text)) => report.errors.push(format!("HTTP {status}: {text:.200}")),
            Err(e) => {
                report.errors.push(e);
                return report;
            }
        }
    }
    report.rows_acknowledged = live.len() as u64;
    report
}

fn count(addr: &str, user: &str) -> Result<u64, String> {
    let mut client = connect_as(addr, user)?;
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
        format!(
            "CREATE USER TABLE load.events (id BIGINT PRIMARY KEY, body TEXT, n INT) \
             WITH (FLUSH_POLICY='{}')",
            options.flush_policy
        ),
    ];
    setup.extend(
        (0..options.users)
            .map(|i| format!("CREATE USER 'c{i}' WITH PASSWORD '{PASSWORD}' ROLE user")),
    );
    for statement in &setup {
        let (status, body) = sql(&mut root, statement)?;
        if status != 200 {
            return Err(format!("{statement}: HTTP {status}: {body}"));
        }
    }
    if options.mixed {
        println!(
            "KalamDB load test: {} clients over {} users, {} s, single-row INSERT/SELECT/UPDATE/\
             DELETE 4:3:2:1, flush policy {}, flushes running",
            options.clients, options.users, options.seconds, options.flush_policy
        );
    } else {
        println!(
            "KalamDB load test: {} clients, {} s, {}-row INSERTs and reads (1 in 4), flushes running",
            options.clients, options.seconds, options.batch
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..options.clients)
        .map(|i| {
            let (addr, stop, batch) = (server.addr.clone(), stop.clone(), options.batch);
            let (mixed, user) = (options.mixed, format!("c{}", i % options.users));
            std::thread::spawn(move || {
                if mixed {
                    run_mixed_client(&addr, &user, i as u64, &stop, started)
                } else {
                    run_client(&addr, &user, batch, &stop, started)
                }
            })
        })
        .collect();
    let flusher = {
        let (addr, stop, every) = (server.addr.clone(), stop.clone(), options.manual_flush_secs);
        std::thread::spawn(move || -> Result<u64, String> {
            let mut client = Client::connect(&addr, ROOT_AUTH)?;
            let mut flushes = 0;
            while every > 0 && !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(every));
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
    // Rows written (batch mode) or live at the end (mixed).
    let rows: u64 = reports.iter().map(|r| r.rows_acknowledged).sum();
    let errors: Vec<&String> = reports.iter().flat_map(|r| r.errors.iter()).collect();
    let back_pressure: u64 = reports.iter().map(|r| r.back_pressure).sum();
    let secs = elapsed.as_secs_f64();
    let mut all: Vec<Duration> = writes.iter().chain(&reads).copied().collect();
    all.sort();
    println!(
        "  all     {:>8.0} ops/s                      p50 {:>8.1} us   p99 {:>8.1} us",
        all.len() as f64 / secs,
        micros(percentile(&all, 50.0)),
        micros(percentile(&all, 99.0))
    );
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
    if options.window_secs > 0 {
        windows(&reports, options.window_secs);
    }
    // Nothing lost: each user has exactly the rows acknowledged to them.
    let mut lost = 0i64;
    for user in 0..options.users {
        let acknowledged: u64 = reports
            .iter()
            .enumerate()
            .filter(|(i, _)| i % options.users == user)
            .map(|(_, r)| r.rows_acknowledged)
            .sum();
        let stored = count(&server.addr, &format!("c{user}"))?;
        lost += acknowledged as i64 - stored as i64;
    }
    // The set-up connection has been idle through the run, longer than
    // the server keeps an idle connection open.
    root = Client::connect(&server.addr, ROOT_AUTH)?;
    let (_, jobs) = sql(
        &mut root,
        "SELECT job_type, status, COUNT(*) FROM system.jobs GROUP BY job_type, status \
         ORDER BY job_type, status",
    )?;
    let jobs: serde_json::Value = serde_json::from_str(&jobs).map_err(|e| e.to_string())?;
    println!("  jobs by type and status: {}", jobs["results"][0]["rows"]);
    let (_, files) = sql(
        &mut root,
        "SELECT COUNT(*), SUM(file_count), SUM(total_bytes) FROM system.manifest \
         WHERE table_name = 'events'",
    )?;
    let files: serde_json::Value = serde_json::from_str(&files).map_err(|e| e.to_string())?;
    println!(
        "  at the end: users with files, their committed files, bytes: {}",
        files["results"][0]["rows"]
    );
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

/// Latency per window of the run, and the last full window's p99 beside
/// the first's.
fn windows(reports: &[ClientReport], window_secs: u64) {
    let mut by_window: std::collections::BTreeMap<u32, Vec<Duration>> = Default::default();
    for (second, took) in reports.iter().flat_map(|r| r.timeline.iter()) {
        by_window
            .entry(*second / window_secs as u32)
            .or_default()
            .push(*took);
    }
    println!("  per {window_secs} s window: ops/s, p50 us, p99 us");
    let mut p99s = Vec::new();
    for (window, mut times) in by_window {
        times.sort();
        let p99 = micros(percentile(&times, 99.0));
        println!(
            "    {:>5} s  {:>8.0}  {:>8.1}  {:>8.1}",
            u64::from(window) * window_secs,
            times.len() as f64 / window_secs as f64,
            micros(percentile(&times, 50.0)),
            p99
        );
        p99s.push(p99);
    }
    // The last window may be cut short by the end of the run.
    if p99s.len() >= 3 {
        let (first, last) = (p99s[0], p99s[p99s.len() - 2]);
        println!(
            "  last full window's p99 / first window's: {:.2} (target: at most 2)",
            last / first
        );
    }
}
