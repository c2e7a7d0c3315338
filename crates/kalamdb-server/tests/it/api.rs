//! The HTTP contract of docs/API.md: shapes, cells, statuses, codes.

use crate::common::{create_user, rows, TestServer};
use serde_json::json;

#[test]
fn sql_endpoint_follows_the_reference_shape() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    let body = server.root(
        "CREATE NAMESPACE app; CREATE USER TABLE app.m (id BIGINT PRIMARY KEY, body TEXT, n SMALLINT, f DOUBLE, ok BOOLEAN, at TIMESTAMP, price DECIMAL(6,2))",
    );
    assert_eq!(body["status"], "success");
    assert!(body["took"].is_f64() || body["took"].is_u64());
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["message"], "Namespace 'app' created");
    assert_eq!(results[0]["as_user"], "root");
    assert!(results[0].get("schema").is_none() && results[0].get("rows").is_none());

    let (status, body) = server.sql_as(
        "root",
        "",
        json!({"sql": "INSERT INTO m VALUES ($1, $2, $3, $4, $5, $6, $7)", "namespace_id": "app",
               "params": [9007199254740993i64, "semi;colon", 7, 1.5, true, 1700000000000000i64, "12.34"]}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["row_count"], 1);
    assert_eq!(body["results"][0]["message"], "Inserted 1 row(s)");

    let body = server.root("SELECT id, body, n, f, ok, at, price FROM app.m");
    let result = &body["results"][0];
    assert_eq!(result["row_count"], 1);
    assert_eq!(
        result["schema"],
        json!([
            {"name": "id", "data_type": "BigInt", "index": 0},
            {"name": "body", "data_type": "Text", "index": 1},
            {"name": "n", "data_type": "SmallInt", "index": 2},
            {"name": "f", "data_type": "Double", "index": 3},
            {"name": "ok", "data_type": "Boolean", "index": 4},
            {"name": "at", "data_type": "Timestamp", "index": 5},
            {"name": "price", "data_type": "Decimal(6,2)", "index": 6},
        ])
    );
    assert_eq!(
        rows(&body)[0],
        vec![
            json!("9007199254740993"),
            json!("semi;colon"),
            json!(7),
            json!(1.5),
            json!(true),
            json!(1700000000000000i64),
            json!("12.34")
        ]
    );

    let body = server.root("UPDATE app.m SET n = 8; DELETE FROM app.m WHERE id = 1");
    assert_eq!(body["results"][0]["message"], "Updated 1 row(s)");
    assert_eq!(body["results"][1]["message"], "Deleted 0 row(s)");

    for path in ["/health", "/v1/api/healthcheck"] {
        let health: serde_json::Value = server
            .client()
            .get(format!("{}{path}", server.base_url))
            .send()
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(health["status"], "healthy");
        assert_eq!(health["api_version"], "v1");
        assert!(health["version"].is_string());
    }
}

#[test]
fn errors_have_codes_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root("CREATE SHARED TABLE t (id INT PRIMARY KEY)");
    create_user(&server, "plain", "plain-pw", "user");
    let cases = [
        ("root", "", json!({"sql": "   "}), 400, "EMPTY_SQL"),
        (
            "root",
            "",
            json!({"sql": "-- only a comment"}),
            400,
            "EMPTY_SQL",
        ),
        ("root", "", json!({"sql": "SELEKT 1"}), 400, "INVALID_SQL"),
        (
            "root",
            "",
            json!({"sql": "SELECT * FROM nope"}),
            400,
            "TABLE_NOT_FOUND",
        ),
        (
            "root",
            "",
            json!({"sql": "SELECT 1; SELECT $1", "params": [1]}),
            400,
            "PARAMS_WITH_BATCH",
        ),
        (
            "root",
            "",
            json!({"sql": "INSERT INTO t VALUES ($2)", "params": [1]}),
            400,
            "INVALID_PARAMETER",
        ),
        (
            "root",
            "",
            json!({"sql": "INSERT INTO t VALUES (1); INSERT INTO t VALUES (1)"}),
            400,
            "SQL_EXECUTION_ERROR",
        ),
        (
            "root",
            "wrong",
            json!({"sql": "SELECT 1"}),
            401,
            "INVALID_CREDENTIALS",
        ),
        (
            "nobody",
            "x",
            json!({"sql": "SELECT 1"}),
            401,
            "INVALID_CREDENTIALS",
        ),
        (
            "plain",
            "plain-pw",
            json!({"sql": "CREATE NAMESPACE x"}),
            403,
            "PERMISSION_DENIED",
        ),
        (
            "plain",
            "plain-pw",
            json!({"sql": "INSERT INTO t VALUES (5)"}),
            403,
            "PERMISSION_DENIED",
        ),
    ];
    for (user, password, request, status, code) in cases {
        let (got_status, body) = server.sql_as(user, password, request.clone());
        assert_eq!(got_status, status, "{request}: {body}");
        assert_eq!(body["status"], "error", "{body}");
        assert_eq!(body["error"]["code"], code, "{request}: {body}");
        // Only statements that ran before the failing one have results.
        let ran = usize::from(
            request["sql"]
                .as_str()
                .unwrap()
                .starts_with("INSERT INTO t VALUES (1);"),
        );
        assert_eq!(body["results"].as_array().unwrap().len(), ran, "{body}");
    }
    // A failing statement is named (1-based), the ones before it stay
    // committed and their results are returned, and nothing after it runs.
    let (_, body) = server.sql_as(
        "root",
        "",
        json!({"sql": "INSERT INTO t VALUES (10); INSERT INTO t VALUES (1); INSERT INTO t VALUES (11)"}),
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Statement 2 failed: duplicate primary key: id = 1"),
        "{body}"
    );
    assert_eq!(body["results"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["results"][0]["row_count"], json!(1), "{body}");
    let ids = rows(&server.root("SELECT id FROM t ORDER BY id"));
    assert_eq!(ids, vec![vec![json!(1)], vec![json!(10)]]);

    let response = server
        .client()
        .post(format!("{}/v1/api/sql", server.base_url))
        .json(&json!({"sql": "SELECT 1"}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], "MISSING_AUTHORIZATION");

    let response = server
        .client()
        .get(format!("{}/v1/api/nothing", server.base_url))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
}

#[test]
fn root_password_from_environment_and_graceful_stop() {
    let dir = tempfile::tempdir().unwrap();
    let mut server =
        TestServer::start_with(dir.path(), &[("KALAMDB_ROOT_PASSWORD", "r00t-pw")], None);
    let (status, _) = server.sql_as("root", "", json!({"sql": "SELECT 1"}));
    assert_eq!(status, 401);
    server.ok_as(
        "root",
        "r00t-pw",
        "CREATE SHARED TABLE kept (id INT PRIMARY KEY); INSERT INTO kept VALUES (42)",
    );
    assert_eq!(server.terminate(), Some(0));
    assert!(server.log().iter().any(|l| l.contains("shutdown complete")));

    let server = TestServer::start_with(dir.path(), &[("KALAMDB_ROOT_PASSWORD", "r00t-pw")], None);
    let body = server.ok_as("root", "r00t-pw", "SELECT id FROM kept");
    assert_eq!(rows(&body), vec![vec![json!(42)]]);
}
