//! An S3-compatible server (moto) for the tests, installed by
//! `scripts/test-peers.sh` and started on a free loopback port.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub struct Moto {
    child: Option<Child>,
    pub port: u16,
}

fn moto_binary() -> PathBuf {
    if let Ok(path) = std::env::var("KALAMDB_MOTO_SERVER") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(root.join("scripts/test-peers.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("scripts/test-peers.sh runs");
    assert!(
        output.status.success(),
        "scripts/test-peers.sh failed: the S3 tests need moto"
    );
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

impl Moto {
    /// Starts moto on `port` (0: any free port).
    pub fn start(port: u16) -> Self {
        let mut child = Command::new(moto_binary())
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("moto_server starts");
        let stderr = child.stderr.take().expect("stderr piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let port: u16 = rest.trim().parse().unwrap_or(0);
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(port);
                    }
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("moto_server reports its port");
        Self {
            child: Some(child),
            port,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates a bucket (moto does not check signatures).
    pub fn create_bucket(&self, bucket: &str) {
        let response = reqwest::blocking::Client::new()
            .put(format!("{}/{bucket}", self.endpoint()))
            .send()
            .expect("moto answers");
        assert!(response.status().is_success(), "{:?}", response.text());
    }

    /// Every object key in a bucket.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let body = reqwest::blocking::Client::new()
            .get(format!("{}/{bucket}?list-type=2", self.endpoint()))
            .send()
            .expect("moto answers")
            .text()
            .unwrap();
        body.split("<Key>")
            .skip(1)
            .filter_map(|part| part.split("</Key>").next())
            .map(String::from)
            .collect()
    }

    /// Stops the server at once; its in-memory objects are gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}
