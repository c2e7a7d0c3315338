//! The `kalam` binary without a server: argument errors and an unreachable
//! server give clear messages and a non-zero exit code. (The tests against a
//! running server are in kalamdb-server's end-to-end suite.)

use std::process::Command;

fn kalam() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kalam"))
}

#[test]
fn connection_refused_is_reported_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let output = kalam()
        .env("KALAM_CONFIG_DIR", dir.path())
        .args(["--url", "http://127.0.0.1:9", "-c", "SELECT 1"])
        .output()
        .unwrap();
    // Fails at connect, before any statement (2: the CLI's own failure).
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to http://127.0.0.1:9"),
        "{stderr}"
    );
}

#[test]
fn bad_arguments_are_refused() {
    let output = kalam()
        .args(["--format", "xml", "-c", "SELECT 1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("xml"));
    let output = kalam().arg("login").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--user"));
    let help = kalam().arg("--help").output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("--format"));
}
