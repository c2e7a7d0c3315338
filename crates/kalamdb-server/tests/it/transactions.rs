//! Transactions over HTTP from several clients at once: transfers between
//! accounts, each `BEGIN; UPDATE ... - x; UPDATE ... + x; COMMIT` in one
//! request, while flushes run. Each commits wholly or fails with
//! `TRANSACTION_CONFLICT` (409) and changes nothing; no update is lost
//! (each UPDATE reads its transaction's snapshot, so two that overlapped
//! both committing would lose one): the final balances equal the start
//! plus every committed transfer, as a serial order would leave them.

use crate::common::{rows, seed, Rng, TestServer};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const ACCOUNTS: u64 = 6;
const CLIENTS: usize = 4;
const TRANSFERS: usize = 40;
const START: i64 = 1000;

#[derive(Debug, Default)]
struct Outcome {
    /// (from, to, amount) of each committed transfer.
    committed: Vec<(u64, u64, i64)>,
    conflicts: usize,
}

fn client(base_url: String, mut rng: Rng) -> Outcome {
    let http = reqwest::blocking::Client::new();
    let mut outcome = Outcome::default();
    for _ in 0..TRANSFERS {
        let from = rng.below(ACCOUNTS);
        let to = (from + 1 + rng.below(ACCOUNTS - 1)) % ACCOUNTS;
        let amount = 1 + rng.below(20) as i64;
        let sql = format!(
            "BEGIN; \
             UPDATE bank.acct SET balance = balance - {amount} WHERE id = {from}; \
             UPDATE bank.acct SET balance = balance + {amount} WHERE id = {to}; \
             COMMIT"
        );
        let response = http
            .post(format!("{base_url}/v1/api/sql"))
            .basic_auth("root", Some(""))
            .json(&json!({ "sql": sql }))
            .send()
            .expect("request sent");
        let status = response.status().as_u16();
        let body: Value = response.json().expect("JSON");
        match status {
            200 => outcome.committed.push((from, to, amount)),
            409 => {
                assert_eq!(body["error"]["code"], "TRANSACTION_CONFLICT", "{body}");
                outcome.conflicts += 1;
            }
            other => panic!("{sql}: {other} {body}"),
        }
    }
    outcome
}

#[test]
fn concurrent_transfers_commit_wholly_or_conflict_and_lose_no_update() {
    let seed = seed();
    eprintln!("transactions seed: {seed} (replay with KALAMDB_TEST_SEED={seed})");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE bank; CREATE SHARED TABLE bank.acct (id BIGINT PRIMARY KEY, balance BIGINT NOT NULL)");
    let values: Vec<String> = (0..ACCOUNTS).map(|id| format!("({id}, {START})")).collect();
    server.root(&format!(
        "INSERT INTO bank.acct VALUES {}",
        values.join(", ")
    ));

    let stop = Arc::new(AtomicBool::new(false));
    let flusher = {
        let (url, stop) = (server.base_url.clone(), stop.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            let mut flushes = 0;
            while !stop.load(Ordering::Acquire) {
                let response = http
                    .post(format!("{url}/v1/api/sql"))
                    .basic_auth("root", Some(""))
                    .json(&json!({ "sql": "FLUSH TABLE bank.acct" }))
                    .send()
                    .expect("request sent");
                assert_eq!(response.status().as_u16(), 200);
                flushes += 1;
                std::thread::yield_now();
            }
            flushes
        })
    };
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, client_rng) = (server.base_url.clone(), Rng::new(rng.next()));
            std::thread::spawn(move || client(url, client_rng))
        })
        .collect();
    let outcomes: Vec<Outcome> = clients.into_iter().map(|c| c.join().unwrap()).collect();
    stop.store(true, Ordering::Release);
    let flushes = flusher.join().unwrap();

    let mut want = vec![START; ACCOUNTS as usize];
    let mut committed = 0;
    for outcome in &outcomes {
        for &(from, to, amount) in &outcome.committed {
            want[from as usize] -= amount;
            want[to as usize] += amount;
            committed += 1;
        }
    }
    let conflicts: usize = outcomes.iter().map(|o| o.conflicts).sum();
    eprintln!("{committed} transfers committed, {conflicts} conflicts, {flushes} flushes");
    assert!(committed > 0, "some transfers committed");
    let body = server.root("SELECT id, balance FROM bank.acct ORDER BY id");
    let got: Vec<i64> = rows(&body)
        .iter()
        .map(|r| r[1].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        got, want,
        "seed {seed}: balances after the committed transfers"
    );
    assert_eq!(got.iter().sum::<i64>(), START * ACCOUNTS as i64);
}
