//! A filesystem storage of its own: a table's files go where the storage's
//! path and templates say, and non-admins never see credentials.

use crate::common::{create_user, rows, TestServer};
use crate::flush::{job_id, wait_for_job};
use serde_json::Value;

#[test]
fn files_follow_the_storage_path_and_templates() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(&format!(
        "CREATE STORAGE disk2 TYPE 'filesystem' NAME 'Disk 2' PATH '{}' \
         USER_TABLES_TEMPLATE 'u/{{shard}}/{{userId}}/{{namespace}}.{{tableName}}' \
         SHARED_TABLES_TEMPLATE 'shared/{{namespace}}-{{tableName}}'",
        elsewhere.path().display()
    ));
    server.root("CREATE NAMESPACE app");
    server.root("CREATE USER TABLE app.items (id INT PRIMARY KEY, v TEXT) STORAGE disk2");
    create_user(&server, "carol", "pw-123456", "user");
    server.ok_as(
        "carol",
        "pw-123456",
        "INSERT INTO app.items VALUES (1, 'a')",
    );
    let id = job_id(&server.root("FLUSH TABLE app.items"));
    assert_eq!(wait_for_job(&server, &id).0, "completed");

    let shards: Vec<_> = std::fs::read_dir(elsewhere.path().join("u"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(shards.len(), 1);
    let shard = shards[0].file_name().into_string().unwrap();
    assert!(shard.starts_with("shard_"), "{shard}");
    let scope_dir = shards[0].path().join("carol/app.items");
    let names: Vec<String> = std::fs::read_dir(&scope_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert!(
        names
            .iter()
            .any(|n| n.starts_with("batch-") && n.ends_with(".parquet")),
        "{names:?}"
    );
    assert!(names.contains(&"manifest.json".to_string()), "{names:?}");
    assert!(!dir.path().join("storage/app").exists());

    let body = server.ok_as("carol", "pw-123456", "SELECT id, v FROM app.items");
    assert_eq!(rows(&body), vec![vec![Value::from(1), Value::from("a")]]);
}

#[test]
fn credentials_are_masked_below_dba() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE STORAGE remote TYPE 's3' BUCKET 'b' ENDPOINT 'http://127.0.0.1:9' \
         CREDENTIALS '{\"access_key_id\":\"AK\",\"secret_access_key\":\"SECRET\"}'",
    );
    create_user(&server, "svc", "pw-123456", "service");
    create_user(&server, "admin", "pw-123456", "dba");
    for (user, sees_secret) in [("svc", false), ("admin", true)] {
        let body = server.ok_as(
            user,
            "pw-123456",
            "SELECT credentials FROM system.storages WHERE storage_id = 'remote'",
        );
        let text = body.to_string();
        assert_eq!(text.contains("SECRET"), sees_secret, "{user}: {text}");
        let shown = server.ok_as(user, "pw-123456", "SHOW STORAGES").to_string();
        assert!(
            !shown.contains("SECRET"),
            "SHOW STORAGES never lists credentials"
        );
    }
}
