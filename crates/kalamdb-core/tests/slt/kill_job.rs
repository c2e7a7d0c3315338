//! `KILL JOB`: a queued job never runs; a running one stops at the next
//! scope boundary with its committed scopes kept; finished jobs cannot be
//! killed. Jobs are paused at a scope boundary by a hook, not by timing.

use crate::util::{caller, create_users, job_id, message, open, query, run, walk};
use kalamdb_core::FlushHooks;
use kalamdb_core::KalamDb;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};

/// A gate flush jobs wait at after each scope commit until it opens;
/// every arrival is reported on a channel.
struct Gate {
    open: Mutex<bool>,
    opened: Condvar,
    arrivals: Mutex<mpsc::Sender<()>>,
}

impl Gate {
    fn install(db: &KalamDb) -> (Arc<Gate>, mpsc::Receiver<()>) {
        let (tx, rx) = mpsc::channel();
        let gate = Arc::new(Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
            arrivals: Mutex::new(tx),
        });
        let hook_gate = gate.clone();
        db.services().flusher().set_hooks(FlushHooks {
            after_commit: Some(Arc::new(move || {
                let _ = hook_gate.arrivals.lock().unwrap().send(());
                let mut open = hook_gate.open.lock().unwrap();
                while !*open {
                    open = hook_gate.opened.wait(open).unwrap();
                }
            })),
            ..FlushHooks::default()
        });
        (gate, rx)
    }

    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

async fn setup(db: &KalamDb, tables: &[&str]) {
    run(db, "root", "CREATE NAMESPACE k").await;
    create_users(db, &["u1", "u2", "u3"]).await;
    for table in tables {
        run(
            db,
            "root",
            &format!("CREATE USER TABLE k.{table} (id INT PRIMARY KEY, v TEXT)"),
        )
        .await;
        for user in ["u1", "u2", "u3"] {
            run(
                db,
                user,
                &format!("INSERT INTO k.{table} VALUES (1, '{user}'), (2, '{user}')"),
            )
            .await;
        }
    }
}

async fn job(db: &KalamDb, id: &str) -> Vec<String> {
    query(
        db,
        "root",
        &format!(
            "SELECT status, message, result, started_at IS NULL, finished_at IS NULL \
             FROM system.jobs WHERE job_id = '{id}'"
        ),
    )
    .await
    .pop()
    .expect("the job exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_running_flush_stops_it_at_a_scope_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    setup(&db, &["t"]).await;
    let (gate, arrivals) = Gate::install(&db);
    let id = job_id(&message(&db, "root", "FLUSH TABLE k.t").await);
    // The first user's file is committed; the job waits at the boundary.
    tokio::task::spawn_blocking(move || arrivals.recv().unwrap())
        .await
        .unwrap();
    let killed = message(&db, "root", &format!("KILL JOB '{id}'")).await;
    assert!(killed.contains("stopping"), "{killed}");
    gate.open();
    db.wait_for_jobs().await;

    let row = job(&db, &id).await;
    assert_eq!(row[0], "cancelled", "{row:?}");
    assert!(row[1].contains("2 rows in 1 files"), "{row:?}");
    assert!(row[2].contains("\"rows_flushed\":2"), "{row:?}");
    assert_eq!(row[4], "false", "a cancelled job has its finish time");
    // Nothing lost: one user is in a file, the others still hot.
    for user in ["u1", "u2", "u3"] {
        let rows = query(&db, user, "SELECT id, v FROM k.t ORDER BY id").await;
        assert_eq!(
            rows,
            [["1", user], ["2", user]].map(|r| r.map(String::from))
        );
    }
    // Killing it again: it has finished.
    let again = db
        .execute(&format!("KILL JOB '{id}'"), &[], None, &caller("root"))
        .await
        .unwrap_err()
        .to_string();
    assert!(again.contains("already finished (cancelled)"), "{again}");
    // The next flush moves the rest.
    let next = job_id(&message(&db, "root", "FLUSH TABLE k.t").await);
    db.wait_for_jobs().await;
    let row = job(&db, &next).await;
    assert_eq!(row[0], "completed", "{row:?}");
    assert!(row[2].contains("\"rows_flushed\":4"), "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_queued_flush_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    setup(&db, &["a", "b", "c"]).await;
    let (gate, arrivals) = Gate::install(&db);
    // Two jobs run (the limit) and wait at the gate; the third is queued.
    let a = job_id(&message(&db, "root", "FLUSH TABLE k.a").await);
    let b = job_id(&message(&db, "root", "FLUSH TABLE k.b").await);
    tokio::task::spawn_blocking(move || {
        arrivals.recv().unwrap();
        arrivals.recv().unwrap();
    })
    .await
    .unwrap();
    let c = job_id(&message(&db, "root", "FLUSH TABLE k.c").await);
    assert_eq!(job(&db, &c).await[0], "queued");
    let killed = message(&db, "root", &format!("KILL JOB '{c}'")).await;
    assert!(killed.contains("cancelled before it ran"), "{killed}");
    gate.open();
    db.wait_for_jobs().await;

    let row = job(&db, &c).await;
    assert_eq!(row[0], "cancelled");
    assert_eq!(row[3], "true", "a job cancelled in the queue never started");
    for id in [a, b] {
        assert_eq!(job(&db, &id).await[0], "completed");
    }
    // k.c was not flushed: a new flush moves all six rows.
    let next = job_id(&message(&db, "root", "FLUSH TABLE k.c").await);
    db.wait_for_jobs().await;
    assert!(job(&db, &next).await[2].contains("\"rows_flushed\":6"));
    let unknown = db
        .execute("KILL JOB 'FL-nope'", &[], None, &caller("root"))
        .await
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("not found"), "{unknown}");
    let denied = db
        .execute(&format!("KILL JOB '{c}'"), &[], None, &caller("u1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(denied.contains("service role"), "{denied}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_flush_inside_one_large_scope_stops_it_between_batches() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    run(&db, "root", "CREATE NAMESPACE k").await;
    create_users(&db, &["u1"]).await;
    run(
        &db,
        "root",
        "CREATE USER TABLE k.big (id INT PRIMARY KEY, v TEXT NOT NULL)",
    )
    .await;
    // Three batches' worth of rows in one scope.
    for chunk in 0..10 {
        let values: Vec<String> = (chunk * 1000..(chunk + 1) * 1000)
            .map(|i| format!("({i}, 'v{i}')"))
            .collect();
        run(
            &db,
            "u1",
            &format!("INSERT INTO k.big VALUES {}", values.join(",")),
        )
        .await;
    }
    let (tx, arrivals) = mpsc::channel();
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let hook_gate = gate.clone();
    let tx = Mutex::new(tx);
    db.services().flusher().set_hooks(FlushHooks {
        after_batch: Some(Arc::new(move || {
            let _ = tx.lock().unwrap().send(());
            let mut open = hook_gate.0.lock().unwrap();
            while !*open {
                open = hook_gate.1.wait(open).unwrap();
            }
        })),
        ..FlushHooks::default()
    });
    let id = job_id(&message(&db, "root", "FLUSH TABLE k.big").await);
    // The first batch of the only scope is written; the job waits there.
    tokio::task::spawn_blocking(move || arrivals.recv().unwrap())
        .await
        .unwrap();
    let killed = message(&db, "root", &format!("KILL JOB '{id}'")).await;
    assert!(killed.contains("stopping"), "{killed}");
    // Until it reaches the next safe point, the job says it is cancelling.
    assert_eq!(job(&db, &id).await[0], "cancelling");
    *gate.0.lock().unwrap() = true;
    gate.1.notify_all();
    db.wait_for_jobs().await;

    let row = job(&db, &id).await;
    assert_eq!(row[0], "cancelled", "{row:?}");
    assert!(row[2].contains("\"rows_flushed\":0"), "{row:?}");
    // Nothing was committed; every row is still there, in the hot tier.
    assert_eq!(
        query(&db, "u1", "SELECT COUNT(*) FROM k.big").await,
        [["10000"]]
    );
    let parquet = walk(&dir.path().join("storage"))
        .into_iter()
        .filter(|p| p.ends_with(".parquet"))
        .count();
    assert_eq!(parquet, 0, "the cancelled scope's file was removed");
}
