//! The flush scheduler, driven by an injected clock: row-limit and interval
//! triggers (whichever first), counters that reset after a flush and
//! survive a restart, many tables at once, dedupe with manual FLUSH, the
//! hot-tier budget, and job-history expiry. No test sleeps.

use crate::util::{caller, message, open_with, query, run};
use kalamdb_commons::ManualClock;
use kalamdb_core::SchedulerConfig;
use kalamdb_core::{EngineConfig, KalamDb};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const SECOND: i64 = 1_000_000;

fn engine(dir: &Path, clock: &Arc<ManualClock>, scheduler: SchedulerConfig) -> KalamDb {
    open_with(
        dir,
        EngineConfig {
            scheduler,
            ..EngineConfig::default()
        },
        clock.clone(),
    )
}

async fn setup(db: &KalamDb, tables: &[(&str, &str)]) {
    run(
        db,
        "root",
        "CREATE NAMESPACE s; CREATE USER 'u1' WITH PASSWORD 'pw-u1' ROLE user",
    )
    .await;
    for (name, policy) in tables {
        run(
            db,
            "root",
            &format!(
                "CREATE USER TABLE s.{name} (id INT PRIMARY KEY, v TEXT) WITH (FLUSH_POLICY='{policy}')"
            ),
        )
        .await;
    }
}

async fn insert(db: &KalamDb, table: &str, ids: std::ops::Range<i32>) {
    let values: Vec<String> = ids.map(|i| format!("({i}, 'v{i}')")).collect();
    run(
        db,
        "u1",
        &format!("INSERT INTO s.{table} VALUES {}", values.join(",")),
    )
    .await;
}

/// (table, trigger) of every job started by one tick, after they finished.
async fn tick(db: &KalamDb) -> Vec<(String, String)> {
    let started = db.scheduler_tick().await.unwrap();
    db.wait_for_jobs().await;
    let mut out: Vec<(String, String)> = started
        .into_iter()
        .map(|(table, trigger, _)| (table, trigger.to_string()))
        .collect();
    out.sort();
    out
}

fn pair(table: &str, trigger: &str) -> (String, String) {
    (format!("s.{table}"), trigger.to_string())
}

async fn count(db: &KalamDb, table: &str) -> String {
    query(db, "u1", &format!("SELECT COUNT(*) FROM s.{table}")).await[0][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn row_limit_triggers_and_the_counter_resets() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    setup(&db, &[("t", "rows:5")]).await;
    insert(&db, "t", 0..4).await;
    assert_eq!(tick(&db).await, vec![]);
    insert(&db, "t", 4..5).await;
    assert_eq!(tick(&db).await, vec![pair("t", "row_limit")]);
    // The counter starts again from zero: four more rows are not enough.
    insert(&db, "t", 5..9).await;
    assert_eq!(tick(&db).await, vec![]);
    // An UPDATE writes versions too.
    run(&db, "u1", "UPDATE s.t SET v = 'x' WHERE id = 5").await;
    assert_eq!(tick(&db).await, vec![pair("t", "row_limit")]);
    assert_eq!(count(&db, "t").await, "9");
    let jobs = query(
        &db,
        "root",
        "SELECT trigger, status FROM system.jobs ORDER BY created_at",
    )
    .await;
    assert_eq!(jobs, vec![vec!["row_limit", "completed"]; 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_triggers_only_with_buffered_rows_and_restarts_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    setup(&db, &[("t", "interval:60")]).await;
    // Nothing buffered: the interval passing does nothing.
    clock.advance_micros(120 * SECOND);
    assert_eq!(tick(&db).await, vec![]);
    insert(&db, "t", 0..3).await;
    // The interval counts from the last flush (here: creation), not the write.
    assert_eq!(tick(&db).await, vec![pair("t", "interval")]);
    insert(&db, "t", 3..4).await;
    clock.advance_micros(59 * SECOND);
    assert_eq!(tick(&db).await, vec![]);
    clock.advance_micros(SECOND);
    assert_eq!(tick(&db).await, vec![pair("t", "interval")]);
    assert_eq!(count(&db, "t").await, "4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whichever_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    setup(
        &db,
        &[
            ("by_rows", "rows:3,interval:60"),
            ("by_time", "interval:60,rows:3"),
        ],
    )
    .await;
    insert(&db, "by_rows", 0..3).await;
    insert(&db, "by_time", 0..2).await;
    clock.advance_micros(10 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("by_rows", "row_limit")]);
    clock.advance_micros(50 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("by_time", "interval")]);
    // by_rows flushed 50 s ago: its interval has not passed again.
    insert(&db, "by_rows", 3..4).await;
    assert_eq!(tick(&db).await, vec![]);
    clock.advance_micros(10 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("by_rows", "interval")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tables_flush_in_one_tick() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    let names: Vec<String> = (0..12).map(|i| format!("t{i}")).collect();
    let tables: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "rows:2")).collect();
    setup(&db, &tables).await;
    for name in &names {
        insert(&db, name, 0..2).await;
    }
    let started = tick(&db).await;
    assert_eq!(started.len(), 12);
    assert!(started.iter().all(|(_, trigger)| trigger == "row_limit"));
    let done = query(
        &db,
        "root",
        "SELECT COUNT(*) FROM system.jobs WHERE status = 'completed' AND result LIKE '%\"rows_flushed\":2,%'",
    )
    .await;
    assert_eq!(done[0][0], "12");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_trigger_joins_a_running_manual_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = Arc::new(engine(dir.path(), &clock, SchedulerConfig::default()));
    setup(&db, &[("t", "rows:2")]).await;
    insert(&db, "t", 0..5).await;
    // Hold the manual flush right after its snapshot.
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Mutex::new(rx);
    db.services().flusher().set_hooks(kalamdb_core::FlushHooks {
        after_snapshot: Some(Arc::new(move || {
            let _ = entered_tx.send(());
            let _ = rx.lock().unwrap().recv();
        })),
        ..Default::default()
    });
    let manual = message(&db, "root", "FLUSH TABLE s.t").await;
    tokio::task::spawn_blocking(move || entered_rx.recv().unwrap())
        .await
        .unwrap();
    let started = db.scheduler_tick().await.unwrap();
    assert!(started.is_empty(), "the scheduler joined the running job");
    let again = message(&db, "root", "FLUSH TABLE s.t").await;
    assert!(again.contains("already running"), "{again}");
    assert_eq!(
        manual.split("Job ID: ").nth(1),
        again.split("Job ID: ").nth(1)
    );
    tx.send(()).unwrap();
    db.wait_for_jobs().await;
    let jobs = query(&db, "root", "SELECT trigger, status FROM system.jobs").await;
    assert_eq!(jobs, vec![vec!["manual", "completed"]]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_budget_the_largest_tables_flush_first_and_far_over_writes_wait() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let config = SchedulerConfig {
        budget_rows: 100,
        budget_bytes: 0,
        hard_limit_factor: 2.0,
        ..SchedulerConfig::default()
    };
    let db = engine(dir.path(), &clock, config);
    let policy = "rows:1000000,interval:100000";
    setup(&db, &[("big", policy), ("mid", policy), ("small", policy)]).await;
    insert(&db, "big", 0..60).await;
    insert(&db, "mid", 0..40).await;
    insert(&db, "small", 0..20).await;
    // 120 buffered > 100: flushing `big` alone brings it to 60.
    assert_eq!(tick(&db).await, vec![pair("big", "memory")]);
    assert_eq!(tick(&db).await, vec![]);
    // Far over the budget (above 2 × 100) writes are refused, retryably.
    insert(&db, "mid", 40..190).await;
    let refused = db
        .execute(
            "INSERT INTO s.small VALUES (999, 'x')",
            &[],
            None,
            &caller("u1"),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.error.code().as_str(), "UNAVAILABLE", "{refused}");
    assert!(refused.to_string().contains("retry"), "{refused}");
    assert_eq!(tick(&db).await, vec![pair("mid", "memory")]);
    run(&db, "u1", "INSERT INTO s.small VALUES (999, 'x')").await;
    assert_eq!(count(&db, "mid").await, "190");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_and_flush_times_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    setup(&db, &[("r", "rows:5"), ("i", "interval:60")]).await;
    insert(&db, "i", 0..1).await;
    clock.advance_micros(60 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("i", "interval")]);
    insert(&db, "r", 0..4).await;
    insert(&db, "i", 1..2).await;
    db.close().await;

    clock.advance_micros(30 * SECOND);
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    // Four rows were counted back; one more reaches the limit.
    assert!(db.scheduler_startup_tick().await.unwrap().is_empty());
    insert(&db, "r", 4..5).await;
    assert_eq!(tick(&db).await, vec![pair("r", "row_limit")]);
    // `i` last flushed 30 s before the restart ended; 30 s more is due.
    clock.advance_micros(30 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("i", "interval")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_jobs_expire_after_the_history_ttl() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let config = SchedulerConfig {
        job_history_ttl: Duration::from_secs(3600),
        ..SchedulerConfig::default()
    };
    let db = engine(dir.path(), &clock, config);
    setup(&db, &[("t", "rows:1")]).await;
    insert(&db, "t", 0..1).await;
    assert_eq!(tick(&db).await.len(), 1);
    clock.advance_micros(3599 * SECOND);
    tick(&db).await;
    let jobs = "SELECT COUNT(*) FROM system.jobs";
    assert_eq!(query(&db, "root", jobs).await[0][0], "1");
    clock.advance_micros(2 * SECOND);
    tick(&db).await;
    assert_eq!(query(&db, "root", jobs).await[0][0], "0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_stats_reports_both_tiers_and_the_last_flush() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    setup(&db, &[("t", "rows:100")]).await;
    run(
        &db,
        "root",
        "CREATE USER 'u2' WITH PASSWORD 'pw-u2' ROLE user",
    )
    .await;
    insert(&db, "t", 0..2).await;
    run(&db, "u2", "INSERT INTO s.t VALUES (1, 'z')").await;
    let stats = "SHOW STATS FOR TABLE s.t";
    let row = query(&db, "root", stats).await.pop().unwrap();
    assert_eq!(row[..5], ["s.t", "USER", "local", "rows:100", "3"]);
    assert!(row[5].parse::<u64>().unwrap() > 0, "hot bytes: {row:?}");
    assert_eq!(
        row[6..14],
        ["0", "0", "0", "NULL", "NULL", "NULL", "0", "0"],
        "nothing read yet: {row:?}"
    );
    // No tombstones in files, never compacted.
    assert_eq!(row[14..], ["0", "NULL", "NULL"], "{row:?}");

    let id = crate::util::job_id(&message(&db, "root", "FLUSH TABLE s.t").await);
    db.wait_for_jobs().await;
    run(&db, "u1", "UPDATE s.t SET v = 'w' WHERE id = 1").await;
    let row = query(&db, "root", stats).await.pop().unwrap();
    assert_eq!(row[4], "1", "the UPDATE is the one hot version: {row:?}");
    assert_eq!(row[6..8], ["3", "2"], "{row:?}");
    assert!(row[8].parse::<u64>().unwrap() > 0);
    assert_ne!(row[9], "NULL");
    assert_eq!(row[10], id);
    assert_eq!(
        row[12..14],
        ["0", "1"],
        "the UPDATE sought its key: {row:?}"
    );

    let denied = db
        .execute(stats, &[], None, &caller("u1"))
        .await
        .unwrap_err();
    assert_eq!(denied.error.code().as_str(), "PERMISSION_DENIED");
    let missing = db
        .execute("SHOW STATS FOR TABLE s.nope", &[], None, &caller("root"))
        .await
        .unwrap_err();
    assert_eq!(missing.error.code().as_str(), "TABLE_NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_buffered_before_a_stop_are_flushed_at_start_up_when_due() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    setup(
        &db,
        &[
            ("r", "rows:3"),
            ("i", "interval:60"),
            ("later", "interval:600"),
        ],
    )
    .await;
    insert(&db, "r", 0..3).await;
    insert(&db, "i", 0..1).await;
    insert(&db, "later", 0..1).await;
    // Stopped before any tick ran (as a crash would).
    db.close().await;
    clock.advance_micros(61 * SECOND);
    let db = engine(dir.path(), &clock, SchedulerConfig::default());
    let mut started: Vec<(String, &str)> = db
        .scheduler_startup_tick()
        .await
        .unwrap()
        .into_iter()
        .map(|(table, trigger, _)| (table, trigger))
        .collect();
    started.sort();
    assert_eq!(
        started,
        vec![
            ("s.i".to_string(), "startup"),
            ("s.r".to_string(), "startup")
        ]
    );
    db.wait_for_jobs().await;
    assert_eq!(count(&db, "r").await, "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scope_that_cannot_flush_fails_once_and_waits_while_others_flush() {
    use kalamdb_core::FlushHooks;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000 * SECOND));
    let config = SchedulerConfig {
        failed_scope_backoff: Duration::from_secs(60),
        failed_scope_backoff_max: Duration::from_secs(3600),
        ..SchedulerConfig::default()
    };
    let db = engine(dir.path(), &clock, config);
    setup(&db, &[("t", "rows:5")]).await;
    run(
        &db,
        "root",
        "CREATE USER 'u2' WITH PASSWORD 'pw-u2' ROLE user",
    )
    .await;
    let attempts = Arc::new(AtomicUsize::new(0));
    let counted = attempts.clone();
    db.services().flusher().set_hooks(FlushHooks {
        refuse_user: Some("u1".into()),
        after_snapshot: Some(Arc::new(move || {
            counted.fetch_add(1, Ordering::SeqCst);
        })),
        ..FlushHooks::default()
    });
    insert(&db, "t", 0..6).await;
    run(&db, "u2", "INSERT INTO s.t VALUES (1, 'x'), (2, 'y')").await;
    assert_eq!(tick(&db).await, vec![pair("t", "row_limit")]);
    // One attempt, no retries: the job failed with the table, user and cause.
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    let jobs = query(&db, "root", "SELECT status, error FROM system.jobs").await;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0][0], "failed");
    for part in ["s.t", "u1", "rows are refused", "not retried"] {
        assert!(jobs[0][1].contains(part), "{part} in {:?}", jobs[0][1]);
    }
    // The other user's rows moved; u1's six stay hot.
    let stats = show_stats(&db).await;
    assert_eq!(stats.0, "6");
    assert_eq!(stats.1, "2");
    assert!(
        stats.2.starts_with("u1: 1 failure(s), next try in 60 s"),
        "{}",
        stats.2
    );
    // More writes to the failing scope do not make the table due again at
    // every tick: only they count, and they are below the limit.
    insert(&db, "t", 10..12).await;
    assert_eq!(tick(&db).await, vec![]);
    assert_eq!(tick(&db).await, vec![]);
    assert_eq!(attempts.load(Ordering::SeqCst), 1);
    // Other scopes still flush while u1 waits; u1 is left out.
    run(
        &db,
        "u2",
        "INSERT INTO s.t VALUES (3, 'a'), (4, 'b'), (5, 'c'), (6, 'd'), (7, 'e')",
    )
    .await;
    assert_eq!(tick(&db).await, vec![pair("t", "row_limit")]);
    assert_eq!(show_stats(&db).await.1, "7");
    let statuses = query(
        &db,
        "root",
        "SELECT status FROM system.jobs ORDER BY status",
    )
    .await;
    assert_eq!(statuses, vec![vec!["completed"], vec!["failed"]]);
    // Once the wait is over the scope is tried again, and waits twice as long.
    clock.advance_micros(61 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("t", "row_limit")]);
    assert!(show_stats(&db)
        .await
        .2
        .starts_with("u1: 2 failure(s), next try in 120 s"));
    // Fixed (here: the fail point removed), the next try moves the rows.
    db.services().flusher().set_hooks(FlushHooks::default());
    clock.advance_micros(121 * SECOND);
    assert_eq!(tick(&db).await, vec![pair("t", "row_limit")]);
    let stats = show_stats(&db).await;
    assert_eq!((stats.0.as_str(), stats.2.as_str()), ("0", "NULL"));
    assert_eq!(count(&db, "t").await, "8");
}

/// (hot_rows, cold_rows, failing_scopes) of `SHOW STATS FOR TABLE s.t`.
async fn show_stats(db: &KalamDb) -> (String, String, String) {
    let results = db
        .execute("SHOW STATS FOR TABLE s.t", &[], None, &caller("root"))
        .await
        .unwrap();
    let batch = &results[0].batches[0];
    let column = |name: &str| {
        let i = batch.schema().index_of(name).unwrap();
        crate::cell(batch.column(i).as_ref(), 0)
    };
    (
        column("hot_rows"),
        column("cold_rows"),
        column("failing_scopes"),
    )
}
