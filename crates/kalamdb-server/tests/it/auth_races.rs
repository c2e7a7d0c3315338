//! Authentication under concurrency and abuse: concurrent guesses cannot
//! get past the lockout, a flood of logins for unknown users cannot take
//! the memory, concurrent set-ups create one admin, a password change ends
//! the user's sessions, and job errors (which name users and paths) are
//! shown in full to dba and above only.

use crate::auth::post;
use crate::common::{create_user, rows, TestServer};
use serde_json::{json, Value};
use std::sync::Arc;

fn code(body: &Value) -> String {
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Runs `n` copies of `f` at once (one thread each), returns the results.
fn concurrently<T: Send + 'static>(
    n: usize,
    f: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let f = Arc::new(f);
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let threads: Vec<_> = (0..n)
        .map(|i| {
            let (f, barrier) = (f.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                f(i)
            })
        })
        .collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn concurrent_guesses_cannot_get_past_the_lockout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(TestServer::start(dir.path()));
    create_user(&server, "victim", "right-password", "user");
    let s = server.clone();
    let answers = concurrently(40, move |i| {
        let (_, body) = s.sql_as("victim", &format!("guess-{i}"), json!({"sql": "SELECT 1"}));
        code(&body)
    });
    let checked = answers
        .iter()
        .filter(|c| *c == "INVALID_CREDENTIALS")
        .count();
    let locked = answers.iter().filter(|c| *c == "ACCOUNT_LOCKED").count();
    assert_eq!(
        checked, 5,
        "only the allowed number of guesses is checked: {answers:?}"
    );
    assert_eq!(locked, 35, "{answers:?}");
    // Locked: even the right password is refused now.
    let (_, body) = server.sql_as("victim", "right-password", json!({"sql": "SELECT 1"}));
    assert_eq!(code(&body), "ACCOUNT_LOCKED");
    // Concurrent right passwords of another user all get in.
    create_user(&server, "busy", "busy-password", "user");
    let s = server.clone();
    let answers = concurrently(20, move |_| {
        s.sql_as("busy", "busy-password", json!({"sql": "SELECT 1"}))
            .0
    });
    assert!(answers.iter().all(|s| *s == 200), "{answers:?}");
}

#[test]
fn a_login_flood_for_unknown_users_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(TestServer::start(dir.path()));
    let (before, _) = server.memory_kib();
    let s = server.clone();
    let answers = concurrently(300, move |i| {
        let client = reqwest::blocking::Client::new();
        client
            .post(format!("{}/v1/api/sql", s.base_url))
            .basic_auth(format!("nobody{i}"), Some("pw"))
            .json(&json!({"sql": "SELECT 1"}))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    });
    assert!(
        answers.iter().all(|s| *s == 401 || *s == 503),
        "{answers:?}"
    );
    let (_, peak) = server.memory_kib();
    assert!(
        peak < before + 400_000,
        "peak RSS {peak} KiB against {before} KiB before the flood"
    );
    assert!(server.healthy());
}

#[test]
fn concurrent_setups_create_one_admin() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(TestServer::start(dir.path()));
    let s = server.clone();
    let answers = concurrently(12, move |i| {
        post(
            &s,
            "/v1/api/auth/setup",
            json!({"user": format!("admin{i}"), "password": "admin-password", "root_password": "root-password"}),
        )
        .0
    });
    assert_eq!(
        answers.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(
        answers.iter().filter(|s| **s == 409).count(),
        11,
        "{answers:?}"
    );
    let body = server.ok_as(
        "root",
        "root-password",
        "SELECT COUNT(*) FROM system.users WHERE role = 'dba'",
    );
    assert_eq!(rows(&body), vec![vec![json!("1")]]);
}

#[test]
fn a_password_change_ends_the_users_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "alice", "alice-password", "user");
    let (status, login) = post(
        &server,
        "/v1/api/auth/login",
        json!({"username": "alice", "password": "alice-password"}),
    );
    assert_eq!(status, 200, "{login}");
    let access = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    let with_token = |token: &str| {
        reqwest::blocking::Client::new()
            .post(format!("{}/v1/api/sql", server.base_url))
            .bearer_auth(token)
            .json(&json!({"sql": "SELECT 1"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(with_token(&access), 200);
    server.root("ALTER USER 'alice' SET PASSWORD 'new-alice-password'");
    assert_eq!(with_token(&access), 401, "the access token ended");
    let (status, _) = post(
        &server,
        "/v1/api/auth/refresh",
        json!({"refresh_token": refresh}),
    );
    assert_eq!(status, 401, "the refresh token ended");
    server.ok_as("alice", "new-alice-password", "SELECT 1");
}

#[test]
fn job_errors_are_for_dba_and_above() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "plain", "plain-password", "user");
    create_user(&server, "admin", "admin-password", "dba");
    // A storage whose directory is replaced by a file: the flush fails.
    let target = dir.path().join("broken-storage");
    server.root(&format!(
        "CREATE STORAGE broken TYPE 'filesystem' PATH '{}'",
        target.display()
    ));
    let _ = std::fs::remove_dir_all(&target);
    std::fs::write(&target, b"not a directory").unwrap();
    server
        .root("CREATE NAMESPACE app; CREATE USER TABLE app.n (id INT PRIMARY KEY) STORAGE broken");
    server.ok_as("plain", "plain-password", "INSERT INTO app.n VALUES (1)");
    let job = crate::flush::job_id(&server.root("FLUSH TABLE app.n"));
    let (status, _) = crate::flush::wait_for_job(&server, &job);
    assert_eq!(status, "failed");
    let error_as = |user: &str, pw: &str| {
        let body = server.ok_as(
            user,
            pw,
            &format!("SELECT error FROM system.jobs WHERE job_id = '{job}'"),
        );
        rows(&body)[0][0].as_str().unwrap().to_string()
    };
    let full = error_as("admin", "admin-password");
    assert!(full.contains(&target.display().to_string()), "{full}");
    let shown = error_as("plain", "plain-password");
    assert!(!shown.contains("plain") && !shown.contains('/'), "{shown}");
}

/// This machine's first non-loopback IPv4 address, if it has one.
fn outside_address() -> Option<std::net::Ipv4Addr> {
    let output = std::process::Command::new("hostname")
        .arg("-I")
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|a| a.parse::<std::net::Ipv4Addr>().ok())
        .find(|a| !a.is_loopback())
}

#[test]
fn tokens_of_root_without_a_password_work_from_loopback_only() {
    let Some(outside) = outside_address() else {
        eprintln!("no non-loopback address on this machine; nothing to check");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_on(dir.path(), &[], None, "0.0.0.0:0");
    let port = server.base_url.rsplit(':').next().unwrap().to_string();
    let (status, login) = post(
        &server,
        "/v1/api/auth/login",
        json!({"username": "root", "password": ""}),
    );
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap().to_string();
    let ask = |host: String| {
        reqwest::blocking::Client::new()
            .post(format!("http://{host}:{port}/v1/api/sql"))
            .bearer_auth(&token)
            .json(&json!({"sql": "SELECT 1"}))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ask("127.0.0.1".into()), 200);
    assert_eq!(
        ask(outside.to_string()),
        401,
        "the token was used from {outside}"
    );
}
