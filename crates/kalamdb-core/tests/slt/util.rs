//! Helpers for the engine-level tests: open an engine, run SQL as a user.

use kalamdb_commons::{Role, SystemClock, UserId};
use kalamdb_core::{Caller, EngineConfig, KalamDb};
use std::path::Path;
use std::sync::Arc;

pub fn open(dir: &Path) -> KalamDb {
    let config = EngineConfig {
        data_dir: dir.to_path_buf(),
        sync_writes: false,
        root_password: None,
        ..EngineConfig::default()
    };
    KalamDb::open(
        &config,
        Arc::new(SystemClock),
        kalamdb_auth::Authenticator::new(),
    )
    .unwrap()
}

/// Opens an engine with its own settings and clock.
pub fn open_with(
    dir: &Path,
    config: EngineConfig,
    clock: Arc<dyn kalamdb_commons::Clock>,
) -> KalamDb {
    let config = EngineConfig {
        data_dir: dir.to_path_buf(),
        ..config
    };
    KalamDb::open(&config, clock, kalamdb_auth::Authenticator::new()).unwrap()
}

pub fn caller(name: &str) -> Caller {
    Caller {
        user_id: UserId::new(name).unwrap(),
        role: if name == "root" {
            Role::System
        } else {
            Role::User
        },
    }
}

pub async fn run(db: &KalamDb, user: &str, sql: &str) {
    db.execute(sql, &[], None, &caller(user))
        .await
        .unwrap_or_else(|e| panic!("{user}: {sql}: {e}"));
}

/// Creates each user (role user, password `pw-<name>`).
pub async fn create_users(db: &KalamDb, users: &[&str]) {
    for user in users {
        run(
            db,
            "root",
            &format!("CREATE USER '{user}' WITH PASSWORD 'pw-{user}' ROLE user"),
        )
        .await;
    }
}

/// Runs a query as `user`; every cell as text (NULL as `NULL`).
pub async fn query(db: &KalamDb, user: &str, sql: &str) -> Vec<Vec<String>> {
    let results = db
        .execute(sql, &[], None, &caller(user))
        .await
        .unwrap_or_else(|e| panic!("{user}: {sql}: {e}"));
    cells(&results[0])
}

/// Every cell of a result as text (NULL as `NULL`), row by row.
pub fn cells(result: &kalamdb_core::StatementResult) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in &result.batches {
        for r in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| crate::cell(c.as_ref(), r))
                    .collect(),
            );
        }
    }
    rows
}

/// The message of a statement that returns one (e.g. FLUSH's job id).
pub async fn message(db: &KalamDb, user: &str, sql: &str) -> String {
    let results = db
        .execute(sql, &[], None, &caller(user))
        .await
        .unwrap_or_else(|e| panic!("{user}: {sql}: {e}"));
    results[0].message.clone().unwrap_or_default()
}

/// The id after `Job ID: ` in a FLUSH message.
pub fn job_id(message: &str) -> String {
    message
        .split("Job ID: ")
        .nth(1)
        .expect("a job id")
        .split(|c: char| c.is_whitespace() || c == ',')
        .next()
        .unwrap()
        .to_string()
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                out.push(p.to_string_lossy().to_string());
            }
        }
    }
    out
}
