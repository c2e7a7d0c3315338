//! The JSON shapes the original KalamDB's clients decode (its CLI, client
//! library and test suites), as ../shared/REFERENCE.md gives them: each
//! answer is checked field by field, so a field a client requires that
//! goes missing (or changes type) fails here first.

use crate::auth::post;
use crate::common::{create_user, rows, TestServer};
use crate::flush::job_id;
use serde_json::{json, Value};

/// What a client expects at a path into an answer.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Str,
    Bool,
    Num,
    Arr,
    Obj,
    /// A string or null (optional values such as `email`).
    StrOrNull,
}

fn fits(value: &Value, shape: Shape) -> bool {
    match shape {
        Shape::Str => value.is_string(),
        Shape::Bool => value.is_boolean(),
        Shape::Num => value.is_number(),
        Shape::Arr => value.is_array(),
        Shape::Obj => value.is_object(),
        Shape::StrOrNull => value.is_string() || value.is_null(),
    }
}

/// Fails unless every `path` (dot-separated keys, numbers index arrays)
/// is present in `body` with its shape.
#[track_caller]
fn require(what: &str, body: &Value, fields: &[(&str, Shape)]) {
    for (path, shape) in fields {
        let mut at = body;
        let mut present = true;
        for part in path.split('.') {
            let next = match part.parse::<usize>() {
                Ok(i) => at.get(i),
                Err(_) => at.get(part),
            };
            match next {
                Some(v) => at = v,
                None => {
                    present = false;
                    break;
                }
            }
        }
        assert!(present, "{what}: `{path}` is missing from {body}");
        assert!(
            fits(at, *shape),
            "{what}: `{path}` should be {shape:?}, is {at} in {body}"
        );
    }
}

const USER_FIELDS: [(&str, Shape); 5] = [
    ("user.id", Shape::Str),
    ("user.role", Shape::Str),
    ("user.email", Shape::StrOrNull),
    ("user.created_at", Shape::Str),
    ("user.updated_at", Shape::Str),
];

const TOKEN_FIELDS: [(&str, Shape); 5] = [
    ("admin_ui_access", Shape::Bool),
    ("access_token", Shape::Str),
    ("refresh_token", Shape::Str),
    ("expires_at", Shape::Str),
    ("refresh_expires_at", Shape::Str),
];

#[test]
fn auth_answers_have_every_field_the_clients_decode() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    // Before the set-up, while root has no password.
    create_user(&server, "carol", "carol-pw", "service");

    let status = server
        .client()
        .get(format!("{}/v1/api/auth/status", server.base_url))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    require(
        "status",
        &status,
        &[("needs_setup", Shape::Bool), ("message", Shape::Str)],
    );

    let (code, setup) = post(
        &server,
        "/v1/api/auth/setup",
        json!({ "user": "admin", "password": "admin-pw-1", "root_password": "root-pw-1",
                "email": "admin@example.com" }),
    );
    assert_eq!(code, 200, "{setup}");
    require("setup", &setup, &USER_FIELDS);
    require("setup", &setup, &[("message", Shape::Str)]);
    assert_eq!(setup["user"]["id"], "admin");
    assert_eq!(setup["user"]["role"], "dba");
    assert_eq!(setup["user"]["email"], "admin@example.com");

    // admin_ui_access: true for dba and system, false below.
    for (user, password, admin) in [
        ("admin", "admin-pw-1", true),
        ("root", "root-pw-1", true),
        ("carol", "carol-pw", false),
    ] {
        let (code, login) = post(
            &server,
            "/v1/api/auth/login",
            json!({ "user": user, "password": password }),
        );
        assert_eq!(code, 200, "{login}");
        require(&format!("login of {user}"), &login, &USER_FIELDS);
        require(&format!("login of {user}"), &login, &TOKEN_FIELDS);
        assert_eq!(login["admin_ui_access"], admin, "{user}: {login}");

        let refresh = login["refresh_token"].as_str().unwrap();
        let (code, renewed) = post(
            &server,
            "/v1/api/auth/refresh",
            json!({ "refresh_token": refresh }),
        );
        assert_eq!(code, 200, "{renewed}");
        require(&format!("refresh of {user}"), &renewed, &USER_FIELDS);
        require(&format!("refresh of {user}"), &renewed, &TOKEN_FIELDS);
        assert_eq!(renewed["admin_ui_access"], admin);
    }

    // The original client's login body names the user `username`.
    let (code, login) = post(
        &server,
        "/v1/api/auth/login",
        json!({ "username": "carol", "password": "carol-pw" }),
    );
    assert_eq!(code, 200, "{login}");

    let (code, refused) = post(
        &server,
        "/v1/api/auth/login",
        json!({ "user": "carol", "password": "wrong" }),
    );
    assert_eq!(code, 401, "{refused}");
    require(
        "refused login",
        &refused,
        &[
            ("status", Shape::Str),
            ("error.code", Shape::Str),
            ("error.message", Shape::Str),
        ],
    );
}

#[test]
fn sql_answers_errors_health_and_job_polling_keep_their_shapes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let body = server.root(
        "CREATE NAMESPACE app; \
         CREATE USER TABLE app.notes (id BIGINT PRIMARY KEY, body TEXT, n INT)",
    );
    require(
        "DDL",
        &body,
        &[("status", Shape::Str), ("took", Shape::Num)],
    );
    assert_eq!(body["status"], "success");

    let body = server.root("INSERT INTO app.notes (id, body, n) VALUES (1, 'a', 7), (2, 'b', 8)");
    require(
        "INSERT",
        &body,
        &[
            ("results.0.row_count", Shape::Num),
            ("results.0.message", Shape::Str),
            ("results.0.as_user", Shape::Str),
        ],
    );
    assert_eq!(body["results"][0]["message"], "Inserted 2 row(s)");

    let body = server.root("SELECT id, body, n FROM app.notes ORDER BY id");
    require(
        "SELECT",
        &body,
        &[
            ("status", Shape::Str),
            ("took", Shape::Num),
            ("results", Shape::Arr),
            ("results.0.schema", Shape::Arr),
            ("results.0.schema.0.name", Shape::Str),
            ("results.0.schema.0.data_type", Shape::Str),
            ("results.0.schema.0.index", Shape::Num),
            ("results.0.rows", Shape::Arr),
            ("results.0.row_count", Shape::Num),
            ("results.0.as_user", Shape::Str),
        ],
    );
    // BIGINT as a string (JavaScript precision), INT as a number.
    assert_eq!(body["results"][0]["rows"][0], json!(["1", "a", 7]));

    let (code, error) = server.sql_as("root", "", json!({ "sql": "SELEC 1" }));
    assert_eq!(code, 400, "{error}");
    require(
        "error",
        &error,
        &[
            ("status", Shape::Str),
            ("took", Shape::Num),
            ("results", Shape::Arr),
            ("error", Shape::Obj),
            ("error.code", Shape::Str),
            ("error.message", Shape::Str),
        ],
    );
    assert_eq!(error["status"], "error");

    for path in ["/health", "/v1/api/healthcheck"] {
        let health = server
            .client()
            .get(format!("{}{path}", server.base_url))
            .send()
            .unwrap()
            .json::<Value>()
            .unwrap();
        require(
            path,
            &health,
            &[
                ("status", Shape::Str),
                ("version", Shape::Str),
                ("api_version", Shape::Str),
            ],
        );
        assert_eq!(health["status"], "healthy");
    }

    // Flush, then poll system.jobs as the clients do.
    let flush = server.root("FLUSH TABLE app.notes");
    let id = job_id(&flush);
    let body = server.root(&format!(
        "SELECT status, message FROM system.jobs WHERE job_id = '{id}'"
    ));
    require(
        "job polling",
        &body,
        &[
            ("results.0.rows.0.0", Shape::Str),
            ("results.0.rows.0.1", Shape::StrOrNull),
        ],
    );
    let (status, _) = crate::flush::wait_for_job(&server, &id);
    assert_eq!(status, "completed");
}

/// The job ids of a `FLUSH ALL` answer, read as the original clients read
/// them: the list after `Job IDs: [`.
fn flush_all_ids(body: &Value) -> Vec<String> {
    let message = body["results"][0]["message"].as_str().expect("a message");
    let list = message
        .split("Job IDs: [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap_or_else(|| panic!("no `Job IDs: [...]` in {message}"));
    list.split(',').map(|id| id.trim().to_string()).collect()
}

#[test]
fn flush_all_lists_one_job_per_table_and_jobs_name_their_table() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE app; \
         CREATE USER TABLE app.a (id INT PRIMARY KEY); \
         CREATE SHARED TABLE app.b (id INT PRIMARY KEY); \
         CREATE NAMESPACE other; \
         CREATE SHARED TABLE other.c (id INT PRIMARY KEY)",
    );
    let body = server.root("STORAGE FLUSH ALL IN NAMESPACE app");
    let message = body["results"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Flush started for 2 table(s) in namespace 'app'. "),
        "{message}"
    );
    let ids = flush_all_ids(&body);
    assert_eq!(ids.len(), 2, "{message}");
    let mut tables = Vec::new();
    for id in &ids {
        let (status, _) = crate::flush::wait_for_job(&server, id);
        assert_eq!(status, "completed");
        let job = server.root(&format!(
            "SELECT parameters FROM system.jobs WHERE job_id = '{id}'"
        ));
        let parameters: Value =
            serde_json::from_str(job["results"][0]["rows"][0][0].as_str().unwrap()).unwrap();
        tables.push(parameters["table_id"].as_str().unwrap().to_string());
    }
    tables.sort();
    assert_eq!(tables, ["app.a", "app.b"]);

    let body = server.root("FLUSH ALL TABLES");
    assert_eq!(flush_all_ids(&body).len(), 3, "{body}");
}

#[test]
fn show_storages_has_updated_at_and_a_used_storage_names_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let place = dir.path().join("alt");
    let mut ddl = format!(
        "CREATE STORAGE alt TYPE 'filesystem' NAME 'Alt' PATH '{}'; CREATE NAMESPACE app",
        place.display()
    );
    for i in 0..12 {
        ddl.push_str(&format!(
            "; CREATE SHARED TABLE app.t{i:02} (id INT PRIMARY KEY) STORAGE alt"
        ));
    }
    server.root(&ddl);
    let body = server.root("SHOW STORAGES");
    let names: Vec<&str> = body["results"][0]["schema"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for column in ["storage_id", "storage_type", "created_at", "updated_at"] {
        assert!(names.contains(&column), "{column} in {names:?}");
    }
    let (status, body) = server.sql_as("root", "", json!({ "sql": "DROP STORAGE alt" }));
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("app.t00, app.t01") && message.contains("app.t09 and 2 more"),
        "{message}"
    );
}

#[test]
fn an_error_quotes_a_statement_in_whole_words() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let sql = "GRANT SELECT, INSERT, UPDATE ON app.conversation_messages \
               TO application_service_account_for_notifications";
    let (status, body) = server.sql_as("root", "", json!({ "sql": sql }));
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    let quoted = message
        .split("unsupported statement: ")
        .nth(1)
        .unwrap_or_else(|| panic!("{message}"));
    let quoted = quoted.strip_suffix('…').unwrap_or(quoted);
    assert!(quoted.len() < sql.len(), "bounded: {message}");
    let words: Vec<&str> = sql.split_whitespace().collect();
    for (i, word) in quoted.split_whitespace().enumerate() {
        assert_eq!(word, words[i], "a whole word of the statement: {message}");
    }
}

#[test]
fn basic_auth_can_be_switched_off_and_request_limits_come_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KALAMDB_AUTH_ALLOW_BASIC", "false"),
        ("KALAMDB_MAX_SQL_BYTES", "2000"),
        ("KALAMDB_MAX_REQUEST_BODY_BYTES", "50000"),
    ];
    let server = TestServer::start_with(dir.path(), &env, None);
    let (status, body) = server.sql_as("root", "", json!({ "sql": "SELECT 1" }));
    assert_eq!(status, 401, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("auth.allow_basic"), "{message}");

    let (status, login) = post(
        &server,
        "/v1/api/auth/login",
        json!({ "user": "root", "password": "" }),
    );
    assert_eq!(status, 200, "{login}");
    let token = login["access_token"].as_str().unwrap();
    let bearer = |sql: String| -> (u16, Value) {
        let response = server
            .client()
            .post(format!("{}/v1/api/sql", server.base_url))
            .bearer_auth(token)
            .json(&json!({ "sql": sql }))
            .send()
            .unwrap();
        (response.status().as_u16(), response.json().unwrap())
    };
    let (status, body) = bearer("SELECT 1".into());
    assert_eq!(status, 200, "{body}");

    // SQL text over max_sql_bytes, under the body limit: 413, named.
    let long = format!("SELECT '{}'", "x".repeat(2000));
    let (status, body) = bearer(long);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "PAYLOAD_TOO_LARGE");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("limits.max_sql_bytes"),
        "{body}"
    );
    let (status, body) = bearer(format!("SELECT '{}'", "x".repeat(1900)));
    assert_eq!(status, 200, "{body}");
    // A body over max_request_body_bytes: 413 before any SQL is read.
    let (status, body) = bearer(format!("SELECT '{}'", "x".repeat(60_000)));
    assert_eq!(status, 413, "{body}");

    // Basic at the WebSocket upgrade is refused too; Bearer still works.
    use tungstenite::client::IntoClientRequest;
    let url = format!("{}/v1/ws", server.base_url.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("Authorization", "Basic cm9vdDo=".parse().unwrap());
    match tungstenite::connect(request) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        Err(other) => panic!("expected an HTTP 401, got {other}"),
        Ok(_) => panic!("a Basic upgrade was accepted with allow_basic off"),
    }
    assert!(crate::ws_client::WsClient::open(&server, Some(token)).is_ok());
}

#[test]
fn use_sets_the_namespace_for_the_rest_of_the_batch_only() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let body = server.root(
        "CREATE NAMESPACE app; USE app; CREATE SHARED TABLE notes (id INT PRIMARY KEY, v TEXT); \
         INSERT INTO notes VALUES (1, 'x'); USE NAMESPACE app; SET NAMESPACE app; \
         SELECT v FROM notes",
    );
    assert_eq!(body["results"][1]["message"], "Using namespace 'app'");
    assert_eq!(body["results"][6]["rows"], json!([["x"]]));
    // The next request starts from the default namespace again.
    let (status, body) = server.sql_as("root", "", json!({ "sql": "SELECT v FROM notes" }));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "TABLE_NOT_FOUND", "{body}");
    let (status, body) = server.sql_as("root", "", json!({ "sql": "USE nowhere; SELECT 1" }));
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "NAMESPACE_NOT_FOUND", "{body}");
}

#[test]
fn cors_answers_configured_origins_only() {
    let dir = tempfile::tempdir().unwrap();
    let env = [(
        "KALAMDB_CORS_ALLOWED_ORIGINS",
        "https://app.example.com, http://localhost:5173",
    )];
    let server = TestServer::start_with(dir.path(), &env, None);
    let preflight = |origin: &str| {
        server
            .client()
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/v1/api/sql", server.base_url),
            )
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            )
            .send()
            .unwrap()
    };
    let allowed = preflight("https://app.example.com");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("authorization"),
        "{allowed_headers}"
    );
    let other = preflight("https://evil.example.com");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "{:?}",
        other.headers()
    );
    // A real request from an allowed page gets the header too.
    let response = server
        .client()
        .post(format!("{}/v1/api/sql", server.base_url))
        .basic_auth("root", Some(""))
        .header("Origin", "http://localhost:5173")
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:5173"
    );

    // Without the setting, no CORS headers at all.
    let dir = tempfile::tempdir().unwrap();
    let plain = TestServer::start(dir.path());
    let response = plain
        .client()
        .post(format!("{}/v1/api/sql", plain.base_url))
        .basic_auth("root", Some(""))
        .header("Origin", "https://app.example.com")
        .json(&json!({ "sql": "SELECT 1" }))
        .send()
        .unwrap();
    assert!(response
        .headers()
        .get("access-control-allow-origin")
        .is_none());
}

#[test]
fn system_settings_and_stats_as_name_value_rows() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("KALAMDB_JWT_SECRET", "a-secret-that-must-never-show-0123"),
        ("KALAMDB_MAX_SQL_BYTES", "123456"),
    ];
    let server = TestServer::start_with(dir.path(), &env, None);
    let body = server.root("SELECT name, value FROM system.settings ORDER BY name");
    let rows = body["results"][0]["rows"].as_array().unwrap().clone();
    let value = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .map(|r| r[1].as_str().unwrap().to_string())
    };
    assert_eq!(value("limits.max_sql_bytes").as_deref(), Some("123456"));
    assert_eq!(value("auth.jwt_secret").as_deref(), Some("********"));
    assert!(!body.to_string().contains("must-never-show"), "{body}");
    assert!(value("server.port").is_some(), "{body}");

    let body =
        server.root("SELECT metric_name, metric_value FROM system.stats ORDER BY metric_name");
    let names: Vec<String> = body["results"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    for key in [
        "schema_cache_size",
        "schema_registry_size",
        "total_users",
        "total_tables",
        "server_version",
        "server_workers_effective",
        "max_connections",
    ] {
        assert!(names.iter().any(|n| n == key), "{key} in {names:?}");
    }

    create_user(&server, "u1", "u1-pw", "user");
    let (status, body) = server.sql_as(
        "u1",
        "u1-pw",
        json!({ "sql": "SELECT * FROM system.settings" }),
    );
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("dba and above"));
    let (status, _) = server.sql_as(
        "u1",
        "u1-pw",
        json!({ "sql": "SELECT * FROM system.stats" }),
    );
    assert_eq!(status, 200);
}

#[test]
fn json_operators_and_deleted_rows_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "ann", "ann-pw-1", "user");
    create_user(&server, "bo", "bo-pw-12", "user");
    server.root(
        "CREATE NAMESPACE app; \
         CREATE USER TABLE app.docs (id INT PRIMARY KEY, body JSON NOT NULL); \
         CREATE SHARED TABLE app.cfg (k TEXT PRIMARY KEY, v TEXT); \
         INSERT INTO app.cfg VALUES ('gone', 'x'); DELETE FROM app.cfg WHERE k = 'gone'",
    );
    server.ok_as(
        "ann",
        "ann-pw-1",
        r#"INSERT INTO app.docs VALUES (1, '{"kind": "a", "tags": []}'), (2, '{"kind": "b"}')"#,
    );
    // `?` and an unparenthesised `->>` comparison, as PostgreSQL reads them.
    let body = server.ok_as(
        "ann",
        "ann-pw-1",
        "SELECT id FROM app.docs WHERE body->>'kind' = 'b' OR body ? 'tags' ORDER BY id",
    );
    assert_eq!(rows(&body), vec![vec![json!(1)], vec![json!(2)]]);
    // A flushed row deleted reads back, as it was, for its own user only.
    crate::common::flush(&server, "app.docs");
    server.ok_as("ann", "ann-pw-1", "DELETE FROM app.docs WHERE id = 1");
    let body = server.ok_as(
        "ann",
        "ann-pw-1",
        "SELECT id, body->>'kind', _deleted FROM app.docs WHERE _deleted = true",
    );
    assert_eq!(rows(&body), vec![vec![json!(1), json!("a"), json!(true)]]);
    let body = server.ok_as(
        "bo",
        "bo-pw-12",
        "SELECT COUNT(*) FROM app.docs WHERE _deleted = true",
    );
    assert_eq!(rows(&body)[0][0], "0");
    // A SHARED table's deleted rows: service and above.
    let (status, body) = server.sql_as(
        "bo",
        "bo-pw-12",
        json!({"sql": "SELECT k FROM app.cfg WHERE _deleted = true"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("PERMISSION_DENIED")),
        "{body}"
    );
    let body = server.root("SELECT k, v FROM app.cfg WHERE _deleted");
    assert_eq!(rows(&body), vec![vec![json!("gone"), json!("x")]]);
}
