//! `kill -9` while ALTER TABLE statements and writes stream in: after a
//! restart the table has either the schema before the ALTER that was in
//! flight or the one after it (never a mix), its history lists exactly the
//! acknowledged versions (plus, at most, the in-flight one), and every row
//! reads every added column's default, whichever schema wrote it.

use crate::common::{create_user, rows, seed, Rng, TestServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};

/// The columns an acknowledged sequence of ALTERs leaves, each with the
/// default every row reads: `c<k>` added with DEFAULT k, every third
/// renamed to `r<k>`.
fn columns_after(changes: u64) -> Vec<(String, i64)> {
    let mut columns = Vec::new();
    for step in 0..changes {
        let k = step / 2 + 1;
        if step.is_multiple_of(2) {
            columns.push((format!("c{k}"), k as i64));
        } else if k.is_multiple_of(3) {
            columns.last_mut().unwrap().0 = format!("r{k}");
        }
    }
    columns
}

/// The statement of change number `step` (see [`columns_after`]); an odd
/// step that renames nothing sets a default instead.
fn change_sql(step: u64) -> String {
    let k = step / 2 + 1;
    if step.is_multiple_of(2) {
        format!("ALTER TABLE ac.kv ADD COLUMN c{k} BIGINT NOT NULL DEFAULT {k}")
    } else if k.is_multiple_of(3) {
        format!("ALTER TABLE ac.kv RENAME COLUMN c{k} TO r{k}")
    } else {
        format!("ALTER TABLE ac.kv ALTER COLUMN c{k} SET DEFAULT {k}")
    }
}

fn post(client: &reqwest::blocking::Client, url: &str, user: &str, sql: &str) -> Option<u16> {
    client
        .post(format!("{url}/v1/api/sql"))
        .basic_auth(user, Some(format!("{user}-pw")))
        .json(&json!({ "sql": sql }))
        .send()
        .ok()
        .map(|r| r.status().as_u16())
}

#[test]
fn kill_9_during_alters_leaves_the_old_or_the_new_schema() {
    let seed = seed();
    eprintln!("alter crash seed: {seed} (replay with KALAMDB_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE ac; CREATE USER TABLE ac.kv (id BIGINT PRIMARY KEY)");
    server.root("CREATE USER 'alter_admin' WITH PASSWORD 'alter_admin-pw' ROLE dba");
    create_user(&server, "amy", "amy-pw", "user");

    let mut acked_changes = 0u64;
    let mut next_id = 0i64;
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = mpsc::channel();
        let writer = {
            let (url, stop) = (server.base_url.clone(), stop.clone());
            let mut id = next_id;
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                while !stop.load(Ordering::Acquire) {
                    id += 1;
                    let sql = format!("INSERT INTO ac.kv (id) VALUES ({id})");
                    match post(&client, &url, "amy", &sql) {
                        Some(200) => {}
                        Some(status) => panic!("{sql}: {status}"),
                        None => return id,
                    }
                }
                id
            })
        };
        let alterer = {
            let url = server.base_url.clone();
            let first = acked_changes;
            let signal_after = 2 + rng.below(6);
            std::thread::spawn(move || {
                let client = reqwest::blocking::Client::new();
                let mut done = first;
                loop {
                    if done == first + signal_after {
                        let _ = ready_tx.send(());
                    }
                    match post(&client, &url, "alter_admin", &change_sql(done)) {
                        Some(200) => done += 1,
                        Some(status) => panic!("{}: {status}", change_sql(done)),
                        None => return done,
                    }
                }
            })
        };
        ready_rx.recv().unwrap();
        server.kill9();
        stop.store(true, Ordering::Release);
        let last_id = writer.join().unwrap();
        let acked = alterer.join().unwrap();

        server = TestServer::start(dir.path());
        let history: Value = server.root("DESCRIBE TABLE ac.kv HISTORY");
        let versions = rows(&history).len() as u64;
        // Version 1 is CREATE TABLE; each change one more.
        assert!(
            versions == acked + 1 || versions == acked + 2,
            "seed {seed} round {round}: {versions} versions after {acked} acknowledged changes"
        );
        acked_changes = versions - 1;
        let columns = columns_after(acked_changes);
        let described: Value = server.root("DESCRIBE TABLE ac.kv");
        let names: Vec<String> = rows(&described)
            .iter()
            .map(|r| r[0].as_str().unwrap().to_string())
            .collect();
        let want: Vec<String> = std::iter::once("id".to_string())
            .chain(columns.iter().map(|(n, _)| n.clone()))
            .collect();
        assert_eq!(names, want, "seed {seed} round {round}: columns");
        let select = std::iter::once("id")
            .chain(columns.iter().map(|(n, _)| n.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let body = server.ok_as("amy", "amy-pw", &format!("SELECT {select} FROM ac.kv"));
        for row in rows(&body) {
            for ((name, k), cell) in columns.iter().zip(&row[1..]) {
                assert_eq!(
                    cell.as_str().and_then(|v| v.parse::<i64>().ok()),
                    Some(*k),
                    "seed {seed} round {round}: row {row:?} column {name}"
                );
            }
        }
        next_id = last_id + 1;
    }
}
