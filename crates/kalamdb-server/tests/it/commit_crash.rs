//! `kill -9` while transactions commit: after a restart each transaction
//! is there wholly (its rows in two tables, USER and SHARED) or not at
//! all; every acknowledged one is there, and at most the one in flight
//! beyond them.

use crate::common::{rows, seed, Rng, TestServer};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::mpsc;

const ROWS_PER_TXN: i64 = 5;

/// Sends transactions numbered from `first` until the server dies;
/// returns the last acknowledged number (`first - 1` if none).
fn writer(url: String, first: i64, ready: mpsc::Sender<()>, signal_after: i64) -> i64 {
    let http = reqwest::blocking::Client::new();
    let mut g = first;
    loop {
        if g == first + signal_after {
            let _ = ready.send(());
        }
        let values: Vec<String> = (0..ROWS_PER_TXN)
            .map(|i| format!("({}, {g})", g * ROWS_PER_TXN + i))
            .collect();
        let sql = format!(
            "BEGIN; INSERT INTO cc.kv (id, g) VALUES {}; \
             UPDATE cc.kv SET g = g WHERE g = {g}; \
             INSERT INTO cc.log (g, n) VALUES ({g}, {ROWS_PER_TXN}); COMMIT",
            values.join(", ")
        );
        let response = http
            .post(format!("{url}/v1/api/sql"))
            .basic_auth("root", Some(""))
            .json(&json!({ "sql": sql }))
            .send();
        match response {
            Ok(r) if r.status().is_success() => g += 1,
            Ok(r) => panic!("{sql}: {}", r.status()),
            Err(_) => return g - 1,
        }
    }
}

/// Group → rows of it in `cc.kv`, and the groups in `cc.log`.
fn state(server: &TestServer) -> (BTreeMap<i64, i64>, Vec<i64>) {
    let kv = server.root("SELECT g, COUNT(*) FROM cc.kv GROUP BY g ORDER BY g");
    let groups = rows(&kv)
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().parse().unwrap(),
                r[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let log = server.root("SELECT g FROM cc.log ORDER BY g");
    let logged = rows(&log)
        .iter()
        .map(|r| r[0].as_str().unwrap().parse().unwrap())
        .collect();
    (groups, logged)
}

#[test]
fn kill_9_during_commits_leaves_each_transaction_whole_or_absent() {
    let seed = seed();
    eprintln!("commit crash seed: {seed} (replay with KALAMDB_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE cc; \
         CREATE USER TABLE cc.kv (id BIGINT PRIMARY KEY, g BIGINT NOT NULL); \
         CREATE SHARED TABLE cc.log (g BIGINT PRIMARY KEY, n BIGINT NOT NULL)",
    );
    let mut next = 0i64;
    for round in 0..3 {
        let (ready_tx, ready_rx) = mpsc::channel();
        let url = server.base_url.clone();
        let signal_after = 3 + rng.below(20) as i64;
        let first = next;
        let handle = std::thread::spawn(move || writer(url, first, ready_tx, signal_after));
        ready_rx.recv().unwrap();
        server.kill9();
        let acked = handle.join().unwrap();

        server = TestServer::start(dir.path());
        let (groups, logged) = state(&server);
        let last = logged.last().copied().unwrap_or(-1);
        assert!(
            last == acked || last == acked + 1,
            "seed {seed} round {round}: last committed {last}, acknowledged {acked}"
        );
        let want_logged: Vec<i64> = (0..=last).collect();
        assert_eq!(logged, want_logged, "seed {seed} round {round}: no gaps");
        let want_groups: BTreeMap<i64, i64> = (0..=last).map(|g| (g, ROWS_PER_TXN)).collect();
        assert_eq!(
            groups, want_groups,
            "seed {seed} round {round}: whole transactions"
        );
        next = last + 1;
    }
}
