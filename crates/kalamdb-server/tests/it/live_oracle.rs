//! A seeded random workload against live queries, each subscriber checked
//! against a model: inserts, updates moving rows into and out of the
//! WHEREs, deletes, flushes, compactions, `kill -9` restarts and dropped connections
//! (resumed with `from_seq_id`, or started again from a snapshot).
//!
//! Every subscriber keeps the rows it was sent and applies each change
//! strictly: an insert of a row it has, an update or delete of a row it
//! lacks, or old values that differ from what it holds fail the test (a
//! duplicate or a gap). After each step its rows must equal the model's
//! rows that match its WHERE.

use crate::common::{create_user, seed, Rng, TestServer};
use crate::ws_client::WsClient;
use serde_json::{json, Value};
use std::collections::BTreeMap;

type Row = (i64, String);
/// A subscription's SQL and the model's version of its WHERE.
type Filter = (&'static str, fn(&Row) -> bool);

struct Subscriber {
    user: &'static str,
    sql: &'static str,
    matches: fn(&Row) -> bool,
    ws: Option<WsClient>,
    rows: BTreeMap<i64, Row>,
    /// The resume point: the last `seq_id` (or snapshot end) applied.
    last_seq: u64,
}

const USERS: [(&str, &str); 2] = [("ann", "ann-pw-123"), ("ben", "ben-pw-123")];

fn password(user: &str) -> &'static str {
    USERS.iter().find(|(u, _)| *u == user).unwrap().1
}

fn parse_row(row: &Value) -> (i64, Row) {
    let id = row["id"].as_str().unwrap().parse().unwrap();
    let v = row["v"].as_i64().unwrap();
    let tag = row["tag"].as_str().unwrap().to_string();
    (id, (v, tag))
}

impl Subscriber {
    fn connect(&mut self, server: &TestServer, resume: bool) {
        let mut ws = WsClient::connect(server, self.user, password(self.user));
        if resume {
            let (ack, rows) = ws.subscribe("s", self.sql, json!({"from_seq_id": self.last_seq}));
            assert_eq!(ack["batch_control"]["status"], "ready", "{ack}");
            assert!(rows.is_empty());
        } else {
            let (ack, rows) = ws.subscribe("s", self.sql, json!({"batch_size": 7}));
            self.rows = rows.iter().map(parse_row).collect();
            assert_eq!(self.rows.len(), rows.len(), "a row twice in the snapshot");
            self.last_seq = ack["batch_control"]["snapshot_end_seq"].as_u64().unwrap();
        }
        self.ws = Some(ws);
    }

    fn apply(&mut self, m: &Value) {
        assert_eq!(m["type"], "change", "{} {}: {m}", self.user, self.sql);
        let rows: Vec<(i64, Row)> = m["rows"]
            .as_array()
            .into_iter()
            .flatten()
            .map(parse_row)
            .collect();
        let old: Vec<(i64, Row)> = m["old_values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(parse_row)
            .collect();
        let at = format!("{} {}: {m}", self.user, self.sql);
        match m["change_type"].as_str().unwrap() {
            "insert" => {
                for (id, row) in rows {
                    assert!((self.matches)(&row), "an insert outside the WHERE: {at}");
                    assert!(
                        self.rows.insert(id, row).is_none(),
                        "a duplicate insert: {at}"
                    );
                }
            }
            "update" => {
                assert_eq!(rows.len(), old.len(), "{at}");
                for ((id, row), (old_id, was)) in rows.into_iter().zip(old) {
                    assert_eq!(id, old_id, "{at}");
                    assert_eq!(
                        self.rows.get(&id),
                        Some(&was),
                        "old values are not what it had: {at}"
                    );
                    assert!((self.matches)(&row), "an update outside the WHERE: {at}");
                    self.rows.insert(id, row);
                }
            }
            "delete" => {
                for (id, was) in old {
                    assert_eq!(
                        self.rows.remove(&id),
                        Some(was),
                        "a delete of a row it did not have: {at}"
                    );
                }
            }
            other => panic!("unknown change {other}: {at}"),
        }
        self.last_seq = m["seq_id"].as_u64().unwrap();
    }

    /// Reads changes until its rows are the model's (a wrong change fails
    /// at once in `apply`).
    fn catch_up(&mut self, model: &BTreeMap<i64, Row>) {
        let expected: BTreeMap<i64, Row> = model
            .iter()
            .filter(|(_, r)| (self.matches)(r))
            .map(|(k, v)| (*k, v.clone()))
            .collect();
        while self.rows != expected {
            let message = self.ws.as_mut().unwrap().next().unwrap_or_else(|| {
                panic!(
                    "{} {}: waiting for changes; has {:?}, expected {:?}",
                    self.user, self.sql, self.rows, expected
                )
            });
            self.apply(&message);
        }
    }
}

#[test]
fn random_workload_every_subscriber_matches_the_model() {
    let seed = seed();
    eprintln!("live oracle seed {seed} (KALAMDB_TEST_SEED={seed} to repeat)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE app");
    server.root(
        "CREATE USER TABLE app.kv (id BIGINT PRIMARY KEY, v INT NOT NULL, tag TEXT NOT NULL)",
    );
    for (user, pw) in USERS {
        create_user(&server, user, pw, "user");
    }
    let filters: [Filter; 2] = [
        ("SELECT id, v, tag FROM app.kv WHERE v % 2 = 0", |r| {
            r.0 % 2 == 0
        }),
        (
            "SELECT tag, id, v FROM app.kv WHERE tag = 'a' AND v > 10",
            |r| r.1 == "a" && r.0 > 10,
        ),
    ];
    let mut subs: Vec<Subscriber> = USERS
        .iter()
        .flat_map(|(user, _)| {
            filters.iter().map(move |(sql, matches)| Subscriber {
                user,
                sql,
                matches: *matches,
                ws: None,
                rows: BTreeMap::new(),
                last_seq: 0,
            })
        })
        .collect();
    for sub in &mut subs {
        sub.connect(&server, false);
    }
    let mut models: BTreeMap<&str, BTreeMap<i64, Row>> =
        USERS.iter().map(|(u, _)| (*u, BTreeMap::new())).collect();
    let mut next_id = 1;
    let (mut restarts, mut drops, mut flushes, mut compactions) = (0, 0, 0, 0);
    for _step in 0..160 {
        let (user, pw) = USERS[rng.below(USERS.len() as u64) as usize];
        let model = models.get_mut(user).unwrap();
        let tag = if rng.below(2) == 0 { "a" } else { "b" };
        let v = rng.below(30) as i64;
        let existing: Vec<i64> = model.keys().copied().collect();
        let pick = |rng: &mut Rng| existing[rng.below(existing.len() as u64) as usize];
        match rng.below(100) {
            0..=39 => {
                let rows = 1 + rng.below(3) as i64;
                let values: Vec<String> = (next_id..next_id + rows)
                    .map(|id| format!("({id}, {v}, '{tag}')"))
                    .collect();
                server.ok_as(
                    user,
                    pw,
                    &format!(
                        "INSERT INTO app.kv (id, v, tag) VALUES {}",
                        values.join(",")
                    ),
                );
                for id in next_id..next_id + rows {
                    model.insert(id, (v, tag.to_string()));
                }
                next_id += rows;
            }
            40..=69 if !existing.is_empty() => {
                let id = pick(&mut rng);
                server.ok_as(
                    user,
                    pw,
                    &format!("UPDATE app.kv SET v = {v}, tag = '{tag}' WHERE id = {id}"),
                );
                model.insert(id, (v, tag.to_string()));
            }
            70..=79 if !existing.is_empty() => {
                // Many rows at once: every even id at or above a bound.
                let bound = pick(&mut rng);
                server.ok_as(
                    user,
                    pw,
                    &format!("UPDATE app.kv SET v = v + 1 WHERE id >= {bound} AND id % 2 = 0"),
                );
                for (id, row) in model.iter_mut() {
                    if *id >= bound && id % 2 == 0 {
                        row.0 += 1;
                    }
                }
            }
            80..=89 if !existing.is_empty() => {
                let id = pick(&mut rng);
                server.ok_as(user, pw, &format!("DELETE FROM app.kv WHERE id = {id}"));
                model.remove(&id);
            }
            90..=92 => {
                server.root("FLUSH TABLE app.kv");
                flushes += 1;
            }
            93 => {
                // Drops the versions updates superseded: a resume must
                // still replay them (their values move into the log).
                server.root("STORAGE COMPACT TABLE app.kv");
                compactions += 1;
            }
            94..=95 => {
                for sub in &mut subs {
                    sub.ws = None;
                }
                server.kill9();
                server = TestServer::start(dir.path());
                restarts += 1;
                for sub in &mut subs {
                    sub.connect(&server, true);
                }
            }
            _ => {
                let i = rng.below(subs.len() as u64) as usize;
                if let Some(ws) = subs[i].ws.take() {
                    ws.close();
                }
                let resume = rng.below(3) != 0;
                subs[i].connect(&server, resume);
                drops += 1;
            }
        }
        for sub in &mut subs {
            sub.catch_up(&models[sub.user]);
        }
    }
    eprintln!(
        "live oracle: {restarts} restarts, {drops} dropped connections, {flushes} flushes, \
         {compactions} compactions"
    );
    // A last write each, seen next by every subscriber of its user: nothing
    // was left over.
    for (user, pw) in USERS {
        server.ok_as(
            user,
            pw,
            &format!("INSERT INTO app.kv (id, v, tag) VALUES ({next_id}, 12, 'a')"),
        );
        models
            .get_mut(user)
            .unwrap()
            .insert(next_id, (12, "a".into()));
        next_id += 1;
    }
    for sub in &mut subs {
        let last = next_id - if sub.user == "ann" { 2 } else { 1 };
        // An update that set a row to the values it had is delivered but
        // changes nothing, so a catch-up may have stopped before it: only
        // such a change may come before the last write.
        loop {
            let message = sub.ws.as_mut().unwrap().next().expect("the last write");
            let before = sub.rows.clone();
            sub.apply(&message);
            let id = message["rows"][0]["id"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap();
            if id == last {
                break;
            }
            assert_eq!(
                sub.rows, before,
                "left over before the last write: {message}"
            );
        }
        sub.catch_up(&models[sub.user]);
    }
}
