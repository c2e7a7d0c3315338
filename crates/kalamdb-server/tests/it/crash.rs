//! `kill -9` in the middle of a stream of acknowledged writes: after a
//! restart the server holds exactly the acknowledged state (plus, at most,
//! the one request that was in flight when it died).

use crate::common::{create_user, rows, seed, Rng, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::mpsc;

#[derive(Debug, Clone)]
enum Op {
    Insert(i64, i64),
    Update(i64, i64),
    Delete(i64),
}

impl Op {
    fn sql(&self) -> String {
        match self {
            Op::Insert(id, v) => format!("INSERT INTO crash.kv (id, v) VALUES ({id}, {v})"),
            Op::Update(id, v) => format!("UPDATE crash.kv SET v = {v} WHERE id = {id}"),
            Op::Delete(id) => format!("DELETE FROM crash.kv WHERE id = {id}"),
        }
    }

    fn apply(&self, state: &mut BTreeMap<i64, i64>) {
        match self {
            Op::Insert(id, v) | Op::Update(id, v) => {
                state.insert(*id, *v);
            }
            Op::Delete(id) => {
                state.remove(id);
            }
        }
    }
}

/// Writes random operations until a request fails (the server died);
/// returns the acknowledged state and the operation that was in flight.
fn writer(
    base_url: String,
    user: &'static str,
    mut state: BTreeMap<i64, i64>,
    mut rng: Rng,
    ready: mpsc::Sender<()>,
    signal_after: usize,
) -> (BTreeMap<i64, i64>, Option<Op>) {
    let client = reqwest::blocking::Client::new();
    let mut next_id = state.keys().max().copied().unwrap_or(0);
    for n in 0.. {
        if n == signal_after {
            let _ = ready.send(());
        }
        let op = match (rng.below(10), state.is_empty()) {
            (0..=5, _) | (_, true) => {
                next_id += 1;
                Op::Insert(next_id, rng.below(1000) as i64)
            }
            (6..=8, false) => {
                let id = *state
                    .keys()
                    .nth(rng.below(state.len() as u64) as usize)
                    .unwrap();
                Op::Update(id, rng.below(1000) as i64)
            }
            _ => {
                let id = *state
                    .keys()
                    .nth(rng.below(state.len() as u64) as usize)
                    .unwrap();
                Op::Delete(id)
            }
        };
        let response = client
            .post(format!("{base_url}/v1/api/sql"))
            .basic_auth(user, Some(format!("{user}-pw")))
            .json(&json!({ "sql": op.sql() }))
            .send();
        match response {
            Ok(r) if r.status().is_success() => op.apply(&mut state),
            Ok(r) => panic!("{user}: {op:?} failed with {}", r.status()),
            Err(_) => return (state, Some(op)),
        }
    }
    unreachable!()
}

fn table_state(server: &TestServer, user: &str) -> BTreeMap<i64, i64> {
    let body: Value = server.ok_as(user, &format!("{user}-pw"), "SELECT id, v FROM crash.kv");
    rows(&body)
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().parse().unwrap(),
                r[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn kill_9_during_writes_keeps_exactly_the_acknowledged_state() {
    let seed = seed();
    eprintln!("crash test seed: {seed} (replay with KALAMDB_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE crash; CREATE USER TABLE crash.kv (id BIGINT PRIMARY KEY, v BIGINT)",
    );
    create_user(&server, "alice", "alice-pw", "user");
    create_user(&server, "bob", "bob-pw", "user");

    let mut states = [BTreeMap::new(), BTreeMap::new()];
    for round in 0..3 {
        let (ready_tx, ready_rx) = mpsc::channel();
        let mut handles = Vec::new();
        for (i, user) in ["alice", "bob"].into_iter().enumerate() {
            let url = server.base_url.clone();
            let user_rng = Rng::new(rng.next());
            let tx = ready_tx.clone();
            let after = 50 + rng.below(150) as usize;
            let start = states[i].clone();
            handles.push(std::thread::spawn(move || {
                writer(url, user, start, user_rng, tx, after)
            }));
        }
        // Kill once both writers have had some operations acknowledged,
        // while they keep writing.
        ready_rx.recv().unwrap();
        ready_rx.recv().unwrap();
        server.kill9();
        let outcomes: Vec<_> = handles
            .into_iter()
            .map(|h| h.join().expect("writer thread"))
            .collect();

        server = TestServer::start(dir.path());
        for (i, (user, (acked, in_flight))) in
            ["alice", "bob"].into_iter().zip(outcomes).enumerate()
        {
            let actual = table_state(&server, user);
            let mut with_in_flight = acked.clone();
            if let Some(op) = &in_flight {
                op.apply(&mut with_in_flight);
            }
            assert!(
                actual == acked || actual == with_in_flight,
                "seed {seed} round {round} user {user}: state after restart differs\n acked: {acked:?}\n in flight: {in_flight:?}\n actual: {actual:?}"
            );
            states[i] = actual;
        }
    }
}
