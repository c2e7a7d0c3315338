//! Token auth end to end: first-run set-up (once), login, Bearer on SQL,
//! refresh, logout, expired and tampered tokens, lockout, login rate limit,
//! and EXECUTE AS reporting whose data it touched.

use crate::common::{create_user, rows, TestServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use kalamdb_server::auth::jwt::{self, Claims};
use serde_json::{json, Value};

const SECRET: &str = "test-secret-0123456789abcdef";

pub fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = server
        .client()
        .post(format!("{}{path}", server.base_url))
        .json(&body)
        .send()
        .expect("request sent");
    (
        response.status().as_u16(),
        response.json().unwrap_or(Value::Null),
    )
}

fn get(server: &TestServer, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut request = server.client().get(format!("{}{path}", server.base_url));
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().expect("request sent");
    (
        response.status().as_u16(),
        response.json().unwrap_or(Value::Null),
    )
}

fn sql_bearer(server: &TestServer, token: &str, sql: &str) -> (u16, Value) {
    let response = server
        .client()
        .post(format!("{}/v1/api/sql", server.base_url))
        .bearer_auth(token)
        .json(&json!({ "sql": sql }))
        .send()
        .expect("request sent");
    (response.status().as_u16(), response.json().unwrap())
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn login(server: &TestServer, user: &str, password: &str) -> (u16, Value) {
    post(
        server,
        "/v1/api/auth/login",
        json!({ "username": user, "password": password }),
    )
}

#[test]
fn set_up_runs_once_and_then_root_needs_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let (_, status) = get(&server, "/v1/api/auth/status", None);
    assert_eq!(status["needs_setup"], true);
    let setup = json!({ "user": "admin", "password": "admin-pw-1", "root_password": "root-pw-1" });
    let (status, body) = post(&server, "/v1/api/auth/setup", setup.clone());
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&server, "/v1/api/auth/setup", setup);
    assert_eq!((status, code(&body)), (409, "SETUP_ALREADY_DONE"), "{body}");
    assert_eq!(
        get(&server, "/v1/api/auth/status", None).1["needs_setup"],
        false
    );
    // root's empty password no longer works; the new one does.
    let (status, body) = server.sql_as("root", "", json!({ "sql": "SELECT 1" }));
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        server
            .sql_as("root", "root-pw-1", json!({ "sql": "SELECT 1" }))
            .0,
        200
    );
    let (status, body) = login(&server, "admin", "admin-pw-1");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["role"], "dba");
    let (status, body) = post(
        &server,
        "/v1/api/auth/setup",
        json!({ "user": "x", "password": "p" }),
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn login_bearer_refresh_logout() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "alice", "alice-pw", "user");
    server
        .root("CREATE NAMESPACE app; CREATE USER TABLE app.notes (id INT PRIMARY KEY, body TEXT)");

    let (status, body) = login(&server, "alice", "alice-pw");
    assert_eq!(status, 200, "{body}");
    for key in [
        "access_token",
        "refresh_token",
        "expires_at",
        "refresh_expires_at",
    ] {
        assert!(body[key].is_string(), "{key} in {body}");
    }
    assert_eq!(body["user"]["id"], "alice");
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();

    let (status, body) = sql_bearer(&server, &access, "INSERT INTO app.notes VALUES (1, 'hi')");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["as_user"], "alice");
    let (_, me) = get(&server, "/v1/api/auth/me", Some(&access));
    assert_eq!(
        (me["id"].as_str(), me["role"].as_str()),
        (Some("alice"), Some("user"))
    );
    // A refresh token is not an access token.
    let (status, body) = sql_bearer(&server, &refresh, "SELECT 1");
    assert_eq!((status, code(&body)), (401, "INVALID_CREDENTIALS"));

    let (status, body) = post(
        &server,
        "/v1/api/auth/refresh",
        json!({ "refresh_token": refresh }),
    );
    assert_eq!(status, 200, "{body}");
    let renewed = body["access_token"].as_str().unwrap().to_string();
    let (status, body) = sql_bearer(&server, &renewed, "SELECT body FROM app.notes");
    assert_eq!(status, 200, "{body}");
    assert_eq!(rows(&body), vec![vec![Value::from("hi")]]);

    let (status, body) = post(
        &server,
        "/v1/api/auth/logout",
        json!({ "refresh_token": refresh }),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &server,
        "/v1/api/auth/refresh",
        json!({ "refresh_token": refresh }),
    );
    assert_eq!(
        (status, code(&body)),
        (401, "INVALID_CREDENTIALS"),
        "{body}"
    );
    let (status, _) = sql_bearer(&server, &renewed, "SELECT 1");
    assert_eq!(status, 401, "access tokens of the session end with it");

    let (status, body) = login(&server, "alice", "wrong");
    assert_eq!((status, code(&body)), (401, "INVALID_CREDENTIALS"));
    let (status, body) = post(&server, "/v1/api/auth/login", json!({ "nope": 1 }));
    assert_eq!(status, 400, "{body}");
    let (status, body) = sql_bearer(&server, "not.a.token", "SELECT 1");
    assert_eq!((status, code(&body)), (401, "INVALID_CREDENTIALS"));
}

#[test]
fn expired_and_tampered_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(dir.path(), &[("KALAMDB_JWT_SECRET", SECRET)], None);
    create_user(&server, "bob", "bob-pw-1", "user");
    let (_, body) = login(&server, "bob", "bob-pw-1");
    let access = body["access_token"].as_str().unwrap();
    let payload = access.split('.').nth(1).unwrap();
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();

    let expired = Claims {
        exp: claims.iat - 10,
        ..claims.clone()
    };
    let (status, body) = sql_bearer(
        &server,
        &jwt::encode(&expired, SECRET.as_bytes()),
        "SELECT 1",
    );
    assert_eq!((status, code(&body)), (401, "TOKEN_EXPIRED"), "{body}");

    // Claiming another user, or signing with another key, fails.
    let forged = Claims {
        sub: "root".into(),
        role: "system".into(),
        ..claims.clone()
    };
    let mut parts: Vec<&str> = access.split('.').collect();
    let forged_payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
    parts[1] = &forged_payload;
    let (status, body) = sql_bearer(&server, &parts.join("."), "SELECT 1");
    assert_eq!(
        (status, code(&body)),
        (401, "INVALID_CREDENTIALS"),
        "{body}"
    );
    let other_key = jwt::encode(&forged, b"another-secret-0123456789");
    assert_eq!(sql_bearer(&server, &other_key, "SELECT 1").0, 401);
    // A validly signed token for root with bob's session is refused too.
    let (status, _) = sql_bearer(
        &server,
        &jwt::encode(&forged, SECRET.as_bytes()),
        "SELECT 1",
    );
    assert_eq!(status, 401);
    assert!(server.healthy());
}

#[test]
fn repeated_failures_lock_the_user_and_logins_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KALAMDB_MAX_FAILED_LOGINS", "3"),
        ("KALAMDB_LOCKOUT_SECS", "600"),
        ("KALAMDB_LOGIN_ATTEMPTS_PER_MINUTE", "8"),
    ];
    let server = TestServer::start_with(dir.path(), &env, None);
    create_user(&server, "carol", "carol-pw", "user");
    for _ in 0..3 {
        assert_eq!(login(&server, "carol", "guess").0, 401);
    }
    let (status, body) = login(&server, "carol", "carol-pw");
    assert_eq!((status, code(&body)), (401, "ACCOUNT_LOCKED"), "{body}");
    // Basic auth honours the lock as well.
    let (status, body) = server.sql_as("carol", "carol-pw", json!({ "sql": "SELECT 1" }));
    assert_eq!((status, code(&body)), (401, "ACCOUNT_LOCKED"), "{body}");
    // Eight attempts a minute from one address: the ninth is refused.
    for _ in 0..4 {
        login(&server, "nobody", "x");
    }
    let response = server
        .client()
        .post(format!("{}/v1/api/auth/login", server.base_url))
        .json(&json!({ "user": "nobody", "password": "x" }))
        .send()
        .unwrap();
    assert_eq!(response.headers()["retry-after"], "1");
    let (status, body) = (
        response.status().as_u16(),
        response.json::<Value>().unwrap(),
    );
    assert_eq!(
        (status, code(&body)),
        (429, "RATE_LIMIT_EXCEEDED"),
        "{body}"
    );
    assert!(server.healthy());
}

#[test]
fn execute_as_reports_the_user_whose_data_it_touched() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "svc", "svc-pw-1", "service");
    create_user(&server, "dan", "dan-pw-1", "user");
    create_user(&server, "eve", "eve-pw-1", "user");
    server
        .root("CREATE NAMESPACE app; CREATE USER TABLE app.notes (id INT PRIMARY KEY, body TEXT)");
    let body = server.ok_as(
        "svc",
        "svc-pw-1",
        "EXECUTE AS USER 'dan' (INSERT INTO app.notes VALUES (1, 'for dan'))",
    );
    assert_eq!(body["results"][0]["as_user"], "dan");
    let body = server.ok_as("dan", "dan-pw-1", "SELECT body FROM app.notes");
    assert_eq!(rows(&body), vec![vec![Value::from("for dan")]]);
    let (status, body) = server.sql_as(
        "eve",
        "eve-pw-1",
        json!({ "sql": "EXECUTE AS USER 'dan' (SELECT body FROM app.notes)" }),
    );
    assert_eq!((status, code(&body)), (403, "PERMISSION_DENIED"), "{body}");
}
