//! A seeded, randomized workload against the real binary with an oracle of
//! every acknowledged operation. Users and a service write USER and SHARED
//! tables (inserts, duplicate inserts, updates, deletes, point and range,
//! transactions of an insert, an update and a delete, committed or rolled
//! back), read them back, add and drop columns, flush and compact by hand
//! while short policies (and the compaction thresholds) act on their own,
//! and the server is killed with `kill -9` at random moments (also right
//! after FLUSH or COMPACT returns). After every restart each scope's full contents
//! must equal the oracle's.
//!
//! Replay a failure with `KALAMDB_TEST_SEED=<seed>`; run longer with
//! `KALAMDB_CHAOS_CYCLES=<n>` (see docs/RELIABILITY.md).

use crate::common::{create_user, rows, seed, Rng, TestServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;

const USERS: [&str; 3] = ["ua", "ub", "uc"];
const WRITER: &str = "svc";
const PASSWORD: &str = "pw-chaos-1";
const IDS: u64 = 40;

/// Scope name → id → v.
type Oracle = BTreeMap<String, BTreeMap<i64, i64>>;

struct Run {
    seed: u64,
    rng: Rng,
    oracle: Oracle,
    ops: u64,
    /// Transactions committed, and those that conflicted (409).
    commits: u64,
    conflicts: u64,
}

fn cycles() -> u64 {
    std::env::var("KALAMDB_CHAOS_CYCLES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(20)
}

fn start(dir: &std::path::Path) -> TestServer {
    TestServer::start_with(dir, &[("KALAMDB_FLUSH_CHECK_INTERVAL_MS", "20")], None)
}

fn int(cell: &Value) -> i64 {
    cell.as_i64()
        .or_else(|| cell.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not an integer: {cell}"))
}

impl Run {
    /// (user running it, table, oracle scope) for a random write target.
    fn target(&mut self) -> (&'static str, &'static str, String) {
        if self.rng.below(4) == 0 {
            (WRITER, "c.s", "shared".to_string())
        } else {
            let user = USERS[self.rng.below(USERS.len() as u64) as usize];
            (user, "c.u", format!("user:{user}"))
        }
    }

    fn sql(&self, server: &TestServer, user: &str, sql: &str) -> (u16, Value) {
        server.sql_as(user, PASSWORD, json!({ "sql": sql }))
    }

    fn fail(&self, what: String) -> ! {
        panic!(
            "chaos seed {}: after {} operations: {what}",
            self.seed, self.ops
        )
    }

    fn affected(&self, body: &Value) -> i64 {
        body["results"][0]["row_count"].as_i64().unwrap_or(-1)
    }

    /// One random operation, checked against (and applied to) the oracle.
    fn step(&mut self, server: &TestServer) {
        self.ops += 1;
        let (user, table, scope) = self.target();
        let id = self.rng.below(IDS) as i64;
        let v = self.rng.below(1_000_000) as i64;
        let current = self.oracle.entry(scope.clone()).or_default().clone();
        match self.rng.below(22) {
            0..=6 => {
                // Insert 1-3 rows; any existing key makes the whole statement fail.
                let n = 1 + self.rng.below(3) as i64;
                let ids: Vec<i64> = (0..n).map(|i| (id + i * 7) % IDS as i64).collect();
                let values: Vec<String> = ids.iter().map(|i| format!("({i}, {v})")).collect();
                let (status, body) = self.sql(
                    server,
                    user,
                    &format!("INSERT INTO {table} (id, v) VALUES {}", values.join(",")),
                );
                let mut unique = ids.clone();
                unique.sort();
                unique.dedup();
                let clash =
                    unique.len() != ids.len() || ids.iter().any(|i| current.contains_key(i));
                match (clash, status) {
                    (false, 200) => {
                        let rows = self.oracle.get_mut(&scope).unwrap();
                        for i in ids {
                            rows.insert(i, v);
                        }
                    }
                    (true, 400) => {}
                    _ => self.fail(format!(
                        "insert {ids:?} into {scope} (clash {clash}): {status} {body}"
                    )),
                }
            }
            7..=10 => {
                let (status, body) = self.sql(
                    server,
                    user,
                    &format!("UPDATE {table} SET v = {v} WHERE id = {id}"),
                );
                let expected = i64::from(current.contains_key(&id));
                if status != 200 || self.affected(&body) != expected {
                    self.fail(format!(
                        "update {id} in {scope}: expected {expected}: {body}"
                    ));
                }
                if let Some(old) = self.oracle.get_mut(&scope).unwrap().get_mut(&id) {
                    *old = v;
                }
            }
            11 => {
                let (status, body) = self.sql(
                    server,
                    user,
                    &format!("UPDATE {table} SET v = v + 1 WHERE id < {id}"),
                );
                let expected = current.range(..id).count() as i64;
                if status != 200 || self.affected(&body) != expected {
                    self.fail(format!(
                        "range update < {id} in {scope}: expected {expected}: {body}"
                    ));
                }
                for (_, old) in self.oracle.get_mut(&scope).unwrap().range_mut(..id) {
                    *old += 1;
                }
            }
            12..=14 => {
                let (status, body) = self.sql(
                    server,
                    user,
                    &format!("DELETE FROM {table} WHERE id = {id}"),
                );
                let expected = i64::from(current.contains_key(&id));
                if status != 200 || self.affected(&body) != expected {
                    self.fail(format!(
                        "delete {id} in {scope}: expected {expected}: {body}"
                    ));
                }
                self.oracle.get_mut(&scope).unwrap().remove(&id);
            }
            15 => {
                let (status, body) = self.sql(
                    server,
                    user,
                    &format!("DELETE FROM {table} WHERE id >= {id} AND v % 2 = 0"),
                );
                let gone: Vec<i64> = current
                    .range(id..)
                    .filter(|(_, v)| *v % 2 == 0)
                    .map(|(k, _)| *k)
                    .collect();
                if status != 200 || self.affected(&body) != gone.len() as i64 {
                    self.fail(format!(
                        "range delete >= {id} in {scope}: expected {gone:?}: {body}"
                    ));
                }
                let rows = self.oracle.get_mut(&scope).unwrap();
                for k in gone {
                    rows.remove(&k);
                }
            }
            16..=17 => {
                let (_, body) = self.sql(
                    server,
                    user,
                    &format!("SELECT v FROM {table} WHERE id = {id}"),
                );
                let got: Vec<i64> = rows(&body).iter().map(|r| int(&r[0])).collect();
                let want: Vec<i64> = current.get(&id).copied().into_iter().collect();
                if got != want {
                    self.fail(format!(
                        "read {id} in {scope}: got {got:?}, oracle {want:?}"
                    ));
                }
            }
            20 => {
                // A transaction: all of it, or (rolled back, a duplicate
                // key, a flush since its BEGIN) none of it.
                let (a, b, c) = (id, (id + 3) % IDS as i64, (id + 11) % IDS as i64);
                let rollback = self.rng.below(4) == 0;
                let end = if rollback { "ROLLBACK" } else { "COMMIT" };
                let sql = format!(
                    "BEGIN; INSERT INTO {table} (id, v) VALUES ({a}, {v}); \
                     UPDATE {table} SET v = v + 1 WHERE id = {b}; \
                     DELETE FROM {table} WHERE id = {c}; {end}"
                );
                let (status, body) = self.sql(server, user, &sql);
                let duplicate = current.contains_key(&a);
                let mut after = current.clone();
                after.insert(a, v);
                if let Some(x) = after.get_mut(&b) {
                    *x += 1;
                }
                after.remove(&c);
                match (duplicate, rollback, status) {
                    (_, _, 409) => self.conflicts += 1,
                    (true, _, 400) | (false, true, 200) => {}
                    (false, false, 200) => {
                        self.commits += 1;
                        *self.oracle.get_mut(&scope).unwrap() = after;
                    }
                    _ => self.fail(format!("{sql} in {scope}: {status} {body}")),
                }
            }
            21 => {
                // Schema changes beside the rows the oracle checks.
                let n = self.rng.below(6);
                let sql = if self.rng.below(3) == 0 {
                    format!("ALTER TABLE {table} DROP COLUMN IF EXISTS x{n}")
                } else {
                    format!("ALTER TABLE {table} ADD COLUMN IF NOT EXISTS x{n} BIGINT NOT NULL DEFAULT {n}")
                };
                let (status, body) = server.sql_as("root", "", json!({ "sql": sql }));
                if status != 200 {
                    self.fail(format!("{sql}: {body}"));
                }
            }
            _ => {
                let verb = if self.rng.below(2) == 0 {
                    "FLUSH"
                } else {
                    "STORAGE COMPACT"
                };
                let (status, body) = server.sql_as(
                    "root",
                    "",
                    json!({ "sql": format!("{verb} TABLE {table}") }),
                );
                if status != 200 {
                    self.fail(format!("{verb} {table}: {body}"));
                }
            }
        }
    }

    /// Compares every scope's full contents with the oracle.
    fn check(&self, server: &TestServer, cycle: u64) {
        for (scope, want) in &self.oracle {
            let (user, table) = match scope.strip_prefix("user:") {
                Some(user) => (user, "c.u"),
                None => ("ua", "c.s"),
            };
            let (status, body) = self.sql(
                server,
                user,
                &format!("SELECT id, v FROM {table} ORDER BY id"),
            );
            if status != 200 {
                self.fail(format!("cycle {cycle}: reading {scope}: {body}"));
            }
            let got: BTreeMap<i64, i64> = rows(&body)
                .iter()
                .map(|r| (int(&r[0]), int(&r[1])))
                .collect();
            if &got != want {
                self.fail(format!(
                    "cycle {cycle}: {scope} differs\n got:    {got:?}\n oracle: {want:?}"
                ));
            }
        }
        // No flush may fail on what these tables hold (a kill -9 in the
        // middle of a job leaves it to be re-run, not failed).
        let body = server.root(
            "SELECT job_id, error FROM system.jobs WHERE status = 'failed' OR message LIKE 'Attempt%'",
        );
        if !rows(&body).is_empty() {
            self.fail(format!("cycle {cycle}: flush jobs failed: {body}"));
        }
    }
}

const COLUMNS: &str = "(id BIGINT PRIMARY KEY, v BIGINT NOT NULL, \
    b BOOLEAN NOT NULL DEFAULT true, s SMALLINT NOT NULL DEFAULT 1, i INT NOT NULL DEFAULT 2, \
    r REAL NOT NULL DEFAULT 1.5, d DOUBLE NOT NULL DEFAULT 2.5, dec DECIMAL(8,2) NOT NULL DEFAULT 1.25, \
    t TEXT NOT NULL DEFAULT 'x', ts TIMESTAMP NOT NULL DEFAULT '2024-01-02T03:04:05Z', \
    day DATE NOT NULL DEFAULT '2024-01-01', u UUID NOT NULL DEFAULT '0190a0b0-1111-7222-8333-444455556666', \
    raw BYTEA NOT NULL DEFAULT 'ab', doc JSON NOT NULL DEFAULT '{}')";

#[test]
fn random_operations_survive_kill_9_at_random_moments() {
    let seed = seed();
    eprintln!("chaos seed {seed} (replay with KALAMDB_TEST_SEED={seed})");
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path());
    // NOT NULL columns of every type: deletes of flushed rows write
    // key-only tombstones that the files must hold.
    server.root(&format!(
        "CREATE NAMESPACE c; \
         CREATE USER TABLE c.u {COLUMNS} WITH (FLUSH_POLICY='rows:15,interval:1', \
             COMPACTION_MAX_SMALL_FILES = 2); \
         CREATE SHARED TABLE c.s {COLUMNS} WITH (FLUSH_POLICY='rows:10', \
             COMPACTION_MAX_SMALL_FILES = 2)"
    ));
    for user in USERS {
        create_user(&server, user, PASSWORD, "user");
    }
    create_user(&server, WRITER, PASSWORD, "service");
    let mut run = Run {
        seed,
        rng: Rng::new(seed),
        oracle: Oracle::new(),
        ops: 0,
        commits: 0,
        conflicts: 0,
    };
    let cycles = cycles();
    for cycle in 0..cycles {
        let ops = 10 + run.rng.below(50);
        for _ in 0..ops {
            run.step(&server);
        }
        if run.rng.below(3) == 0 {
            // Right after FLUSH or COMPACT returns, while its job runs.
            let table = if run.rng.below(2) == 0 { "c.u" } else { "c.s" };
            let verb = if run.rng.below(2) == 0 {
                "FLUSH"
            } else {
                "STORAGE COMPACT"
            };
            server.root(&format!("{verb} TABLE {table}"));
        }
        server.kill9();
        server = start(dir.path());
        run.check(&server, cycle);
    }
    // The workload did compact (by hand, or by the thresholds).
    let compactions = server.root(
        "SELECT COUNT(*) FROM system.jobs WHERE job_type = 'compact' AND status = 'completed'",
    );
    assert!(
        int(&rows(&compactions)[0][0]) > 0,
        "no compaction completed: {compactions}"
    );
    eprintln!(
        "chaos seed {seed}: {cycles} kill -9 cycles, {} operations ({} transactions committed, {} conflicted), every scope equal to the oracle",
        run.ops, run.commits, run.conflicts
    );
}
