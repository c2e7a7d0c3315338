//! Starting and stopping the real server binary, and talking to it.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct TestServer {
    child: Option<Child>,
    pub base_url: String,
    log: Arc<Mutex<Vec<String>>>,
    client: reqwest::blocking::Client,
}

/// How long a server may take to start before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl TestServer {
    /// Starts the server on a free port with the given data directory.
    pub fn start(data_dir: &Path) -> Self {
        Self::start_with(data_dir, &[], None)
    }

    pub fn start_with(data_dir: &Path, env: &[(&str, &str)], config: Option<&Path>) -> Self {
        Self::start_on(data_dir, env, config, "127.0.0.1:0")
    }

    /// As `start_with`, listening on `addr` (e.g. `0.0.0.0:0`).
    pub fn start_on(
        data_dir: &Path,
        env: &[(&str, &str)],
        config: Option<&Path>,
        addr: &str,
    ) -> Self {
        Self::start_args(data_dir, env, config, addr, &[])
    }

    /// As `start_on`, with more command-line arguments.
    pub fn start_args(
        data_dir: &Path,
        env: &[(&str, &str)],
        config: Option<&Path>,
        addr: &str,
        args: &[&std::ffi::OsStr],
    ) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kalamdb-server"));
        command.args(args);
        if let Some(config) = config {
            command.arg(config);
        }
        command
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--http-addr")
            .arg(addr)
            .env_remove("KALAMDB_ROOT_PASSWORD")
            .env_remove("KALAMDB_SERVER_PORT")
            .env_remove("KALAMDB_SERVER_HOST")
            .env_remove("KALAMDB_DATA_DIR")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("server binary starts");
        let stdout = child.stdout.take().expect("stdout piped");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel();
        let log_writer = log.clone();
        // Drains the server's output for the whole run, so it never blocks
        // on a full pipe, and reports the listen address once it appears.
        std::thread::spawn(move || {
            let mut port_tx = Some(port_tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.split("local=").nth(1) {
                    let addr = addr.split_whitespace().next().unwrap_or("").to_string();
                    if let Some(tx) = port_tx.take() {
                        let _ = tx.send(addr);
                    }
                }
                log_writer.lock().unwrap().push(line);
            }
        });
        let addr = match port_rx.recv_timeout(START_TIMEOUT) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                let output = child.wait_with_output().ok();
                panic!(
                    "server did not start; stdout: {:?}; stderr: {:?}",
                    log.lock().unwrap(),
                    output.map(|o| String::from_utf8_lossy(&o.stderr).to_string())
                );
            }
        };
        Self {
            child: Some(child),
            base_url: format!("http://{addr}"),
            log,
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
        }
    }

    /// `kill -9`: no chance to flush or close anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().ok()?.code()
    }

    /// (current, peak) resident memory of the server process, in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let pid = self.child.as_ref().expect("server running").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the server has logged a line containing `needle`: its
    /// output is read by another thread, so a line the server wrote just
    /// before a client saw the effect may not be here yet.
    pub fn wait_for_log(&self, needle: &str) {
        poll(
            &format!("a log line with {needle:?}"),
            Duration::from_secs(10),
            || self.log().iter().any(|l| l.contains(needle)).then_some(()),
        );
    }

    pub fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// POSTs SQL as `user:password`; returns (status, body).
    pub fn sql_as(&self, user: &str, password: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}/v1/api/sql", self.base_url))
            .basic_auth(user, Some(password))
            .json(&body)
            .send()
            .expect("request sent");
        let status = response.status().as_u16();
        let body: Value = response.json().expect("JSON response");
        (status, body)
    }

    /// Runs SQL as root (no password, loopback) and expects success.
    pub fn root(&self, sql: &str) -> Value {
        let (status, body) = self.sql_as("root", "", json!({ "sql": sql }));
        assert_eq!(status, 200, "{sql}: {body}");
        body
    }

    /// Runs SQL as a user and expects success.
    pub fn ok_as(&self, user: &str, password: &str, sql: &str) -> Value {
        let (status, body) = self.sql_as(user, password, json!({ "sql": sql }));
        assert_eq!(status, 200, "{user}: {sql}: {body}");
        body
    }

    /// Asks `/health` on a new connection: a pooled one may just have been
    /// closed by the server after refusing an oversized request.
    pub fn healthy(&self) -> bool {
        reqwest::blocking::Client::new()
            .get(format!("{}/health", self.base_url))
            .send()
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The rows of the first result.
pub fn rows(body: &Value) -> Vec<Vec<Value>> {
    body["results"][0]["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default()
}

/// Creates a user as root.
pub fn create_user(server: &TestServer, name: &str, password: &str, role: &str) {
    server.root(&format!(
        "CREATE USER '{name}' WITH PASSWORD '{password}' ROLE {role}"
    ));
}

/// A small deterministic random generator (xorshift), so failures replay
/// from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Asks `ready` until it gives a value, failing the test after `limit`.
/// The server has no push channel for job states and file arrivals, so
/// asking again over HTTP is how its clients wait too; this is the one
/// place the end-to-end tests pause.
pub fn poll<T>(what: &str, limit: Duration, mut ready: impl FnMut() -> Option<T>) -> T {
    let started = stopwatch();
    loop {
        if let Some(value) = ready() {
            return value;
        }
        assert!(started.elapsed() < limit, "{what}: not within {limit:?}");
        #[expect(clippy::disallowed_methods, reason = "the pause between two polls")]
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Now, for measuring how long a request took.
pub fn stopwatch() -> std::time::Instant {
    #[expect(
        clippy::disallowed_methods,
        reason = "tests measure the real binary's real time"
    )]
    std::time::Instant::now()
}

/// A seed from the environment (`KALAMDB_TEST_SEED`) or the time.
pub fn seed() -> u64 {
    std::env::var("KALAMDB_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            #[expect(clippy::disallowed_methods, reason = "a fresh seed per run")]
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

/// `FLUSH TABLE` as root, then waits for its job to complete.
pub fn flush(server: &TestServer, table: &str) {
    let body = server.root(&format!("FLUSH TABLE {table}"));
    let message = body["results"][0]["message"].as_str().unwrap();
    let job = message.split("Job ID: ").nth(1).unwrap().trim().to_string();
    poll("the flush", Duration::from_secs(30), || {
        let body = server.root(&format!(
            "SELECT status FROM system.jobs WHERE job_id = '{job}'"
        ));
        (rows(&body).first()?[0] == "completed").then_some(())
    });
}
