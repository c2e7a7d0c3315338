//! `STORAGE CHECK` against real files on disk, made missing, short and
//! corrupt behind the server's back.

use crate::common::{create_user, flush, rows, TestServer};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(parquet_files(&path));
        } else if path.extension().is_some_and(|e| e == "parquet") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// (scope, problem) of every row, and the message.
fn check(server: &TestServer, sql: &str) -> (Vec<(String, String)>, String) {
    let body = server.root(sql);
    let problems = rows(&body)
        .into_iter()
        .map(|r| (r[1].as_str().unwrap().into(), r[3].as_str().unwrap().into()))
        .collect();
    let message = body["results"][0]["message"]
        .as_str()
        .unwrap_or("")
        .to_string();
    (problems, message)
}

#[test]
fn storage_check_finds_missing_short_and_corrupt_files() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root("CREATE NAMESPACE app");
    server.root("CREATE USER TABLE app.notes (id INT PRIMARY KEY, body TEXT)");
    server.root("CREATE SHARED TABLE app.tags (id INT PRIMARY KEY, name TEXT)");
    for user in ["u1", "u2", "u3"] {
        create_user(&server, user, "pw-1234", "user");
        server.ok_as(
            user,
            "pw-1234",
            "INSERT INTO app.notes VALUES (1, 'a'), (2, 'b')",
        );
    }
    server.root("INSERT INTO app.tags VALUES (1, 'x')");
    flush(&server, "app.notes");
    flush(&server, "app.tags");

    let (problems, message) = check(&server, "STORAGE CHECK local EXTENDED");
    assert!(problems.is_empty(), "{problems:?}");
    assert!(
        message.contains("Checked 4 file(s) of 2 table(s)") && message.contains("0 problem(s)"),
        "{message}"
    );

    let files = parquet_files(&dir.path().join("storage/app/notes"));
    assert_eq!(files.len(), 3, "{files:?}");
    let scope_of = |p: &Path| {
        p.parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string()
    };
    std::fs::remove_file(&files[0]).unwrap();
    let bytes = std::fs::read(&files[1]).unwrap();
    std::fs::write(&files[1], &bytes[..bytes.len() / 2]).unwrap();
    // Same size, a wrecked footer: only EXTENDED sees it.
    let mut bytes = std::fs::read(&files[2]).unwrap();
    let n = bytes.len();
    bytes[n - 40..n - 8].fill(0xAB);
    std::fs::write(&files[2], &bytes).unwrap();

    let (mut problems, message) = check(&server, "STORAGE CHECK local");
    problems.sort();
    let mut want = vec![
        (scope_of(&files[0]), "missing".to_string()),
        (scope_of(&files[1]), "size_mismatch".to_string()),
    ];
    want.sort();
    assert_eq!(problems, want, "{message}");
    assert!(message.contains("2 problem(s)"), "{message}");

    let (mut problems, _) = check(&server, "STORAGE CHECK local EXTENDED");
    problems.sort();
    want.push((scope_of(&files[2]), "bad_footer".to_string()));
    want.sort();
    assert_eq!(problems, want);

    // Errors: an unknown storage, and a caller below dba.
    let (status, body) = server.sql_as("root", "", json!({ "sql": "STORAGE CHECK nowhere" }));
    assert_eq!(status, 400, "{body}");
    let (status, body): (u16, Value) =
        server.sql_as("u1", "pw-1234", json!({ "sql": "STORAGE CHECK local" }));
    assert_eq!(status, 403, "{body}");
}
