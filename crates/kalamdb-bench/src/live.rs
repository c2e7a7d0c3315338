//! `kalamdb-bench live`: live queries against the real server, loopback.
//!
//! 1. Notification latency: `--users` users each subscribe to their own rows
//!    of a USER table over a WebSocket; single-row INSERTs by 64 of them
//!    (spread over all), round-robin over one keep-alive HTTP connection
//!    each, one at a time; the time from a write's HTTP answer to its
//!    notification's arrival, p50/p99.
//! 2. Write rate into the watched table (each write notifies its writer's
//!    subscription) beside the rate into a table nobody watches, in
//!    alternating rounds of the same run (the target: at least 80%).
//! 3. Fan-out: `--fanout` of the users subscribe to one SHARED table; root
//!    inserts rows one at a time; notifications received per second.
//! 4. Initial load: one user's `--initial-rows` rows, subscribed from a
//!    snapshot (pages of 10,000), beside `SELECT *` of the same rows over
//!    HTTP.
//! 5. Memory per idle subscription: the server's RSS before the latency
//!    run's connections were opened, once they were, and once each had its
//!    subscription, per subscription.

use crate::http::Client;
use crate::ingest::start_server_with;
use crate::stats::{micros, percentile, rate};
use base64::Engine;
use serde_json::{json, Value};
use std::io::Read;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

const ROOT_AUTH: &str = "cm9vdDo=";
const PASSWORD: &str = "live-bench-pw";

struct Options {
    users: usize,
    writes: usize,
    fanout: usize,
    fanout_writes: usize,
    initial_rows: usize,
    seconds: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        users: 1000,
        writes: 3000,
        fanout: 1000,
        fanout_writes: 200,
        initial_rows: 100_000,
        seconds: 5,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let value: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("{arg} needs a number"))?;
        match arg.as_str() {
            "--users" => o.users = value.max(1),
            "--writes" => o.writes = value.max(1),
            "--fanout" => o.fanout = value,
            "--fanout-writes" => o.fanout_writes = value.max(1),
            "--initial-rows" => o.initial_rows = value,
            "--seconds" => o.seconds = value.max(1) as u64,
            other => return Err(format!("unknown option {other}")),
        }
    }
    o.fanout = o.fanout.min(o.users);
    Ok(o)
}

fn basic(user: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{PASSWORD}"))
}

fn sql(client: &mut Client, sql: &str) -> Result<String, String> {
    let (status, body) = client.post("/v1/api/sql", &json!({ "sql": sql }).to_string())?;
    if status != 200 {
        return Err(format!("{sql:.80}: HTTP {status}: {body:.300}"));
    }
    Ok(body)
}

type Socket = tungstenite::WebSocket<MaybeTlsStream<TcpStream>>;

/// Opens a WebSocket authenticated as `user` (Basic at the upgrade).
fn open(addr: &str, user: &str) -> Result<Socket, String> {
    use tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/v1/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        "Authorization",
        format!("Basic {}", basic(user)).parse().expect("header"),
    );
    let (mut ws, _) = tungstenite::connect(request).map_err(|e| format!("{user}: {e}"))?;
    let hello = read(&mut ws)?;
    if hello["type"] != "auth_success" {
        return Err(format!("{user}: {hello}"));
    }
    Ok(ws)
}

fn read(ws: &mut Socket) -> Result<Value, String> {
    loop {
        match ws.read().map_err(|e| e.to_string())? {
            Message::Text(t) => return serde_json::from_str(t.as_str()).map_err(|e| e.to_string()),
            Message::Binary(b) => {
                let mut text = String::new();
                flate2::read::GzDecoder::new(&b[..])
                    .read_to_string(&mut text)
                    .map_err(|e| e.to_string())?;
                return serde_json::from_str(&text).map_err(|e| e.to_string());
            }
            _ => continue,
        }
    }
}

fn send(ws: &mut Socket, v: &Value) -> Result<(), String> {
    ws.send(Message::text(v.to_string()))
        .map_err(|e| e.to_string())
}

/// Subscribes and reads through the initial pages; returns the rows.
fn subscribe(ws: &mut Socket, id: &str, sql: &str, batch: usize) -> Result<usize, String> {
    send(
        ws,
        &json!({"type": "subscribe", "subscription": {"id": id, "sql": sql, "options": {"batch_size": batch}}}),
    )?;
    let ack = read(ws)?;
    if ack["type"] != "subscription_ack" {
        return Err(format!("subscribe: {ack}"));
    }
    let mut rows = 0;
    loop {
        let page = read(ws)?;
        if page["type"] != "initial_data_batch" {
            return Err(format!("initial data: {page}"));
        }
        rows += page["rows"].as_array().map_or(0, Vec::len);
        if page["batch_control"]["has_more"] != true {
            return Ok(rows);
        }
        send(ws, &json!({"type": "next_batch", "subscription_id": id}))?;
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// Clock ticks of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU time (user and system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold
    // spaces: utime and stime are the 12th and 13th.
    stat.rsplit_once(')')
        .map(|(_, rest)| {
            rest.split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|f| f.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

/// Runs `work` on `items` in chunks of `chunk`, on four threads.
fn in_parallel(
    items: &[String],
    chunk: usize,
    work: impl Fn(&[String]) -> Result<(), String> + Sync,
) -> Result<(), String> {
    let chunks: Vec<&[String]> = items.chunks(chunk).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| -> Result<(), String> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(chunk) = chunks.get(i) else {
                            return Ok(());
                        };
                        work(chunk)?;
                    }
                })
            })
            .collect();
        workers.into_iter().try_for_each(|w| {
            w.join()
                .map_err(|_| "a setup thread panicked".to_string())?
        })
    })
}

/// Where a subscriber's thread reports what it receives: each changed
/// row with its arrival time while latency is measured, then only a count
/// (a channel send per row would wake one more thread per notification,
/// which the write rate measured meanwhile would pay for on two cores).
struct Arrivals {
    timed: Mutex<Option<mpsc::Sender<(i64, Instant)>>>,
    rows: AtomicUsize,
}

/// A subscriber's thread: every `change` it receives, reported to `to`.
fn listen(mut ws: Socket, to: Arc<Arrivals>) {
    let timed = to.timed.lock().expect("not poisoned").clone();
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let mut timed = timed;
            while let Ok(m) = read(&mut ws) {
                if m["type"] != "change" {
                    continue;
                }
                let at = Instant::now();
                let rows = m["rows"].as_array().map_or(&[][..], Vec::as_slice);
                to.rows.fetch_add(rows.len(), Ordering::Relaxed);
                let Some(sender) = &timed else { continue };
                for row in rows {
                    let id = row["id"]
                        .as_str()
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(-1);
                    if sender.send((id, at)).is_err() {
                        timed = None;
                        break;
                    }
                }
            }
        })
        .expect("thread starts");
}

/// A subscriber's thread that reads until it has `rows` changed rows (or
/// 20 s pass without one); returns how many it got.
fn count_rows(mut ws: Socket, rows: usize) -> std::thread::JoinHandle<usize> {
    if let MaybeTlsStream::Plain(tcp) = ws.get_mut() {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
    }
    std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || {
            let mut got = 0;
            while got < rows {
                match read(&mut ws) {
                    Ok(m) if m["type"] == "change" => {
                        got += m["rows"].as_array().map_or(0, Vec::len);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            got
        })
        .expect("thread starts")
}

/// Single-row INSERTs for `span`, spread over the first 64 `users` (one
/// keep-alive connection each, round-robin); returns how many and how long.
fn write_for(
    addr: &str,
    users: &[String],
    table: &str,
    span: Duration,
    first_id: i64,
) -> Result<(usize, Duration), String> {
    let mut clients: Vec<Client> = users
        .iter()
        .take(64)
        .map(|u| Client::connect(addr, &basic(u)))
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut n = 0usize;
    while started.elapsed() < span {
        let at = n % clients.len();
        let client = &mut clients[at];
        sql(
            client,
            &format!(
                "INSERT INTO {table} (id, v) VALUES ({}, 'w')",
                first_id + n as i64
            ),
        )?;
        n += 1;
    }
    Ok((n, started.elapsed()))
}

pub fn run(args: &[String]) -> Result<(), String> {
    let o = parse(args)?;
    let server = start_server_with(false, &[])?;
    let addr = server.addr.clone();
    let mut root = Client::connect(&addr, ROOT_AUTH)?;
    sql(&mut root, "CREATE NAMESPACE bench")?;
    sql(
        &mut root,
        "CREATE USER TABLE bench.mine (id BIGINT PRIMARY KEY, v TEXT) FLUSH ROWS 1000000",
    )?;
    sql(
        &mut root,
        "CREATE USER TABLE bench.quiet (id BIGINT PRIMARY KEY, v TEXT) FLUSH ROWS 1000000",
    )?;
    sql(
        &mut root,
        "CREATE SHARED TABLE bench.board (id BIGINT PRIMARY KEY, v TEXT) FLUSH ROWS 1000000",
    )?;
    let setup = Instant::now();
    let users: Vec<String> = (0..o.users).map(|i| format!("u{i}")).collect();
    // Each new user costs one Argon2 hash; a few requests at once keep
    // both cores busy.
    in_parallel(&users, 50, |chunk| {
        let mut root = Client::connect(&addr, ROOT_AUTH)?;
        let batch: Vec<String> = chunk
            .iter()
            .map(|u| format!("CREATE USER '{u}' WITH PASSWORD '{PASSWORD}' ROLE user"))
            .collect();
        sql(&mut root, &batch.join(";")).map(drop)
    })?;
    // And each user's first password check one more; done here, so the
    // memory measured below is the subscriptions' alone (Argon2 takes
    // 19 MiB a check, which the allocator keeps).
    in_parallel(&users, 1, |user| {
        let mut client = Client::connect(&addr, &basic(&user[0]))?;
        sql(&mut client, "SELECT 1").map(drop)
    })?;
    println!(
        "setup: {} users created and authenticated once in {:.1} s",
        o.users,
        setup.elapsed().as_secs_f64()
    );

    // A first round of writes before the memory is measured: the setup's
    // password hashes (19 MiB each) are given back to the system only as
    // the allocator's threads work again.
    write_for(
        &addr,
        &users,
        "bench.quiet",
        Duration::from_secs(1),
        3 << 40,
    )?;
    let pid = server.pid();
    let rss_before = rss_kib(pid);
    let (tx, rx) = mpsc::channel();
    let arrivals = Arc::new(Arrivals {
        timed: Mutex::new(Some(tx)),
        rows: AtomicUsize::new(0),
    });
    let opened = Instant::now();
    let mut sockets = users
        .iter()
        .map(|user| open(&addr, user))
        .collect::<Result<Vec<_>, _>>()?;
    let rss_connected = rss_kib(pid);
    for ws in &mut sockets {
        subscribe(ws, "mine", "SELECT id, v FROM bench.mine", 1000)?;
    }
    let rss_after = rss_kib(pid);
    for ws in sockets {
        listen(ws, arrivals.clone());
    }
    // Only the listeners hold senders now: once the latency is measured,
    // dropping the receiver makes each of them a counter.
    arrivals.timed.lock().expect("not poisoned").take();
    let per = |from: u64, to: u64| to.saturating_sub(from) as f64 / o.users as f64;
    println!(
        "subscriptions: {} opened in {:.1} s; server RSS {} → {} MiB: {:.1} KiB per idle subscription \
         (target < 20): {:.1} KiB its connection, {:.1} KiB the subscription",
        o.users,
        opened.elapsed().as_secs_f64(),
        rss_before >> 10,
        rss_after >> 10,
        per(rss_before, rss_after),
        per(rss_before, rss_connected),
        per(rss_connected, rss_after),
    );

    // Latency: each write by its owner, answered, then awaited.
    // One HTTP connection per writing user (at most 64 users write, so the
    // server's HTTP connection limit is far away).
    let writers = 64.min(o.users);
    let mut clients: Vec<Client> = (0..writers)
        .map(|w| Client::connect(&addr, &basic(&users[w * (o.users / writers)])))
        .collect::<Result<_, _>>()?;
    let mut latencies = Vec::with_capacity(o.writes);
    for i in 0..o.writes {
        let client = &mut clients[i % writers];
        sql(
            client,
            &format!("INSERT INTO bench.mine (id, v) VALUES ({i}, 'x')"),
        )?;
        let acked = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (id, at) = rx
                .recv_timeout(left)
                .map_err(|_| format!("write {i}: no notification within 10 s"))?;
            if id == i as i64 {
                latencies.push(at.saturating_duration_since(acked));
                break;
            }
        }
    }
    latencies.sort();
    println!(
        "latency, write answered → notification, {} users, {} writes: p50 {:.0} µs, p99 {:.0} µs (target p99 < 10 ms)",
        o.users,
        o.writes,
        micros(percentile(&latencies, 0.5)),
        micros(percentile(&latencies, 0.99))
    );

    // Write rates with and without subscribers; from here on the
    // listeners only count.
    drop(rx);
    let rows_before = arrivals.rows.load(Ordering::Relaxed);
    // The same writes into a table nobody watches, and into the watched
    // one, in alternating rounds: the hot tier grows (and RocksDB compacts)
    // as the run goes on, and the shared machine's speed drifts, which
    // would favour whichever ran first; short rounds spread both evenly.
    const ROUNDS: u32 = 8;
    let round = Duration::from_secs(o.seconds).max(Duration::from_secs(1)) * 2 / ROUNDS;
    let (mut quiet, mut live) = ((0, Duration::ZERO, 0), (0, Duration::ZERO, 0));
    for r in 0..ROUNDS {
        let (table, first_id, total) = if r % 2 == 0 {
            ("bench.quiet", i64::from(r) << 32, &mut quiet)
        } else {
            ("bench.mine", (1 << 40) + (i64::from(r) << 32), &mut live)
        };
        let cpu = cpu_ticks(pid);
        let (n, took) = write_for(&addr, &users, table, round, first_id)?;
        total.0 += n;
        total.2 += cpu_ticks(pid).saturating_sub(cpu);
        total.1 += took;
    }
    let (quiet_rate, live_rate) = (rate(quiet.0, quiet.1), rate(live.0, live.1));
    // Every write into the watched table notifies its writer; a feed
    // ended early (by a full queue) would make those writes look cheap.
    let waited = Instant::now();
    let notified = || arrivals.rows.load(Ordering::Relaxed) - rows_before;
    while notified() < live.0 && waited.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let cpu_per_write = |(n, _, ticks): (usize, Duration, u64)| {
        ticks as f64 / TICKS_PER_SEC * 1e6 / n.max(1) as f64
    };
    println!(
        "writes/s: {:.0} into a table with no subscriber, {:.0} into one with {} subscribed users \
         (alternating rounds): ratio {:.2} (target ≥ 0.80); {} of {} notifications arrived; \
         server CPU per write {:.0} µs without, {:.0} µs with subscribers",
        quiet_rate,
        live_rate,
        o.users,
        live_rate / quiet_rate,
        notified(),
        live.0,
        cpu_per_write(quiet),
        cpu_per_write(live),
    );

    // Fan-out: one SHARED table, many subscribers. Each subscriber's
    // thread counts its own rows and ends once it has them all, so the
    // client adds no shared queue to the figure.
    let mut sockets = Vec::with_capacity(o.fanout);
    for user in users.iter().take(o.fanout) {
        let mut ws = open(&addr, user)?;
        subscribe(&mut ws, "board", "SELECT id, v FROM bench.board", 1000)?;
        sockets.push(ws);
    }
    let expected = o.fanout * o.fanout_writes;
    let cpu_before = cpu_ticks(pid);
    let started = Instant::now();
    let counters: Vec<_> = sockets
        .into_iter()
        .map(|ws| count_rows(ws, o.fanout_writes))
        .collect();
    let writer = std::thread::spawn({
        let addr = addr.clone();
        let writes = o.fanout_writes;
        move || -> Result<(), String> {
            let mut root = Client::connect(&addr, ROOT_AUTH)?;
            for i in 0..writes {
                sql(
                    &mut root,
                    &format!("INSERT INTO bench.board (id, v) VALUES ({i}, 'news')"),
                )?;
            }
            Ok(())
        }
    });
    let received: usize = counters.into_iter().map(|c| c.join().unwrap_or(0)).sum();
    let elapsed = started.elapsed();
    // The server's own CPU per notification: the machine's two cores are
    // shared with the benchmark's subscriber threads, so this, unlike the
    // rate, does not depend on how busy the client is.
    let server_cpu = cpu_ticks(pid).saturating_sub(cpu_before) as f64 / TICKS_PER_SEC;
    writer.join().map_err(|_| "fan-out writer panicked")??;
    println!(
        "fan-out: {} writes to {} subscribers: {received} of {expected} notifications in {:.2} s: \
         {:.0} notifications/s (target ≥ 100,000); server CPU {:.2} s: {:.1} µs per notification",
        o.fanout_writes,
        o.fanout,
        elapsed.as_secs_f64(),
        rate(received, elapsed),
        server_cpu,
        server_cpu * 1e6 / received.max(1) as f64,
    );

    // Initial load beside the same rows over HTTP.
    if o.initial_rows > 0 {
        let owner = &users[0];
        let mut client = Client::connect(&addr, &basic(owner))?;
        for start in (0..o.initial_rows).step_by(10_000) {
            let values: Vec<String> = (start..(start + 10_000).min(o.initial_rows))
                .map(|i| format!("({}, 'initial row {i}')", (2 << 40) + i as i64))
                .collect();
            sql(
                &mut client,
                &format!(
                    "INSERT INTO bench.quiet (id, v) VALUES {}",
                    values.join(",")
                ),
            )?;
        }
        let started = Instant::now();
        sql(&mut client, "SELECT id, v FROM bench.quiet")?;
        let http = started.elapsed();
        let mut ws = open(&addr, owner)?;
        let started = Instant::now();
        let rows = subscribe(&mut ws, "load", "SELECT id, v FROM bench.quiet", 10_000)?;
        let live = started.elapsed();
        println!(
            "initial load: {rows} rows in {:.0} ms ({:.0} rows/s); SELECT of the same rows over HTTP {:.0} ms",
            live.as_secs_f64() * 1e3,
            rate(rows, live),
            http.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
