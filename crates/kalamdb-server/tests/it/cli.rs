//! The `kalam` CLI against the real server: `-c`, `-f`, output formats,
//! exit codes, saved logins, meta-commands, and the interactive shell
//! through a pseudo-terminal.

use crate::common::{create_user, TestServer};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `kalam` binary, built next to the server's (built here if this
/// package's tests run alone).
pub fn kalam_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_kalamdb-server")).with_file_name("kalam");
    if !path.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "kalam-cli"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building kalam failed");
    }
    path
}

pub struct Cli {
    pub url: String,
    pub config: tempfile::TempDir,
}

impl Cli {
    pub fn new(server: &TestServer) -> Self {
        Self {
            url: server.base_url.clone(),
            config: tempfile::tempdir().unwrap(),
        }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new(kalam_binary());
        command
            .env("KALAM_CONFIG_DIR", self.config.path())
            .env_remove("KALAM_USER")
            .env_remove("KALAM_PASSWORD")
            .args(["--url", &self.url]);
        command
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("kalam runs")
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

pub fn setup(server: &TestServer) {
    server.root(
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.items (id INT PRIMARY KEY, name TEXT); \
         INSERT INTO app.items VALUES (1, 'apple'), (2, 'pear')",
    );
}

#[test]
fn commands_files_formats_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);

    let out = cli.run(&["-c", "SELECT id, name FROM app.items ORDER BY id"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        " id | name  \n----+-------\n  1 | apple \n  2 | pear  \n(2 rows)\n"
    );

    let out = cli.run(&[
        "--format",
        "json",
        "-c",
        "SELECT id, name FROM app.items ORDER BY id",
    ]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(json[1]["name"], "pear");
    let out = cli.run(&[
        "--format",
        "csv",
        "-c",
        "SELECT name FROM app.items ORDER BY id",
    ]);
    assert_eq!(stdout(&out), "name\napple\npear\n");

    let out = cli.run(&["-c", "SELECT * FROM app.nope"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("ERROR [TABLE_NOT_FOUND]"),
        "{}",
        stderr(&out)
    );

    let script = dir.path().join("script.sql");
    std::fs::write(
        &script,
        "INSERT INTO app.items VALUES (3, 'plum');\n-- a comment; with a semicolon\nSELECT COUNT(*) AS n FROM app.items;\n",
    )
    .unwrap();
    let out = cli.run(&["-f", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("Inserted 1 row(s)") && text.contains(" 3 \n(1 row)"),
        "{text}"
    );
    std::fs::write(&script, "SELECT 1;\nSELEKT 2;\n").unwrap();
    let out = cli.run(&["-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    // psql's habit: the file and line of the statement that failed.
    assert!(
        stderr(&out).contains("script.sql:2: the statement above failed"),
        "{}",
        stderr(&out)
    );

    let out = cli.run(&["-u", "root", "-p", "wrong", "-c", "SELECT 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("authentication failed (INVALID_CREDENTIALS)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn meta_commands_and_flush_with_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);
    let out = cli.run(&["-c", "\\dn"]);
    assert!(stdout(&out).contains("app"), "{}", stdout(&out));
    // psql's spellings: \l lists databases (namespaces here), \conninfo.
    let out = cli.run(&["-c", "\\l"]);
    assert!(stdout(&out).contains("app"), "{}", stdout(&out));
    let out = cli.run(&["-n", "app", "-c", "\\conninfo"]);
    assert_eq!(
        stdout(&out).trim(),
        format!(
            "Connected to {} as user \"root\", namespace \"app\".",
            server.base_url
        ),
        "{}",
        stderr(&out)
    );
    let out = cli.run(&["-c", "\\dt app"]);
    assert!(stdout(&out).contains("items"), "{}", stdout(&out));
    let out = cli.run(&["-c", "\\d app.items"]);
    assert!(stdout(&out).contains("name") && stdout(&out).contains("id"));
    let out = cli.run(&["-c", "\\health"]);
    assert!(stdout(&out).contains("is healthy"), "{}", stdout(&out));
    let out = cli.run(&["-c", "\\flush app.items"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("completed: Flushed app.items (2 rows, 1 files)"),
        "{text}"
    );
    assert!(text.contains("rows_flushed: 2"), "{text}");
    let out = cli.run(&["-c", "\\jobs"]);
    assert!(stdout(&out).contains("completed"), "{}", stdout(&out));
    let out = cli.run(&["-c", "\\nope"]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn login_saves_a_token_not_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "fay", "fay-secret-pw", "user");
    let cli = Cli::new(&server);
    let out = cli.run(&["login", "--user", "fay", "--password", "fay-secret-pw"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let file = cli.config.path().join("credentials.json");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("access_token") && !saved.contains("fay-secret-pw"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = cli.run(&["-c", "SELECT CURRENT_USER() AS me"]);
    assert!(
        stdout(&out).contains("fay"),
        "{} {}",
        stdout(&out),
        stderr(&out)
    );
    let out = cli.run(&["logout"]);
    assert!(out.status.success());
    assert!(!std::fs::read_to_string(&file)
        .unwrap()
        .contains("access_token"));
}

#[test]
fn interactive_shell_through_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);
    let mut command = cli.command();
    command.env("TERM", "xterm");
    let mut shell = rexpect::session::spawn_command(command, Some(30_000)).expect("pty spawn");
    shell.exp_string("root=# ").unwrap();
    // A statement over two lines.
    shell.send_line("SELECT name FROM app.items").unwrap();
    shell.exp_string("root-# ").unwrap();
    shell.send_line("WHERE id = 2;").unwrap();
    shell.exp_string("pear").unwrap();
    shell.exp_string("(1 row)").unwrap();
    shell.exp_string("Time:").unwrap();
    shell.exp_string("root=# ").unwrap();
    // Tab completes a keyword.
    shell.send("SEL").unwrap();
    shell.send("\t").unwrap();
    shell.send_line(" 40 + 2 AS answer;").unwrap();
    shell.exp_string("42").unwrap();
    shell.exp_string("root=# ").unwrap();
    shell.send_line("SELECT * FROM app.missing;").unwrap();
    shell.exp_string("TABLE_NOT_FOUND").unwrap();
    shell.send_line("\\q").unwrap();
    shell.exp_eof().unwrap();
    let history = std::fs::read_to_string(cli.config.path().join("history")).unwrap();
    assert!(history.contains("WHERE id = 2;"), "{history}");
}

#[test]
fn subscribe_prints_rows_then_each_change_until_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);
    let mut command = cli.command();
    command.env("TERM", "xterm");
    let mut shell = rexpect::session::spawn_command(command, Some(30_000)).expect("pty spawn");
    shell.exp_string("root=# ").unwrap();
    shell
        .send_line("SUBSCRIBE TO app.items WHERE id > 1;")
        .unwrap();
    shell.exp_string("pear").unwrap();
    shell.exp_string("(1 row)").unwrap();
    shell.exp_string("Watching for changes").unwrap();
    server.root("INSERT INTO app.items VALUES (3, 'plum'), (0, 'fig')");
    shell.exp_string("+ INSERT id=3, name=plum").unwrap();
    server.root("UPDATE app.items SET name = 'prune' WHERE id = 3");
    shell
        .exp_string("~ UPDATE id=3, name=prune  (was id=3, name=plum)")
        .unwrap();
    server.root("DELETE FROM app.items WHERE id = 2");
    shell.exp_string("- DELETE id=2, name=pear").unwrap();
    shell.send_control('c').unwrap();
    shell
        .exp_string("Live query stopped (3 change(s) seen)")
        .unwrap();
    shell.exp_string("root=# ").unwrap();
    // \watch is the same, and the shell goes on after it.
    shell.send_line("\\watch app.items").unwrap();
    shell.exp_string("prune").unwrap();
    shell.exp_string("Watching for changes").unwrap();
    shell.send_control('c').unwrap();
    shell.exp_string("root=# ").unwrap();
    shell
        .send_line("SELECT COUNT(*) AS n FROM app.items;")
        .unwrap();
    shell.exp_string("(1 row)").unwrap();
    shell.send_line("\\q").unwrap();
    shell.exp_eof().unwrap();
}

/// `BEGIN` ... `COMMIT` in a script: the CLI collects the block and sends
/// it as one request, so it commits whole; `ROLLBACK` sends nothing; a
/// failing statement in the block rolls all of it back; a script that ends
/// inside a block sends nothing and fails.
#[test]
fn transaction_blocks_commit_whole_or_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);
    let script = dir.path().join("txn.sql");
    let run = |text: &str| {
        std::fs::write(&script, text).unwrap();
        cli.run(&["-f", script.to_str().unwrap()])
    };
    let count = |where_: &str| {
        let out = cli.run(&[
            "--format",
            "csv",
            "-c",
            &format!("SELECT COUNT(*) AS n FROM app.items WHERE {where_}"),
        ]);
        stdout(&out).lines().nth(1).unwrap_or_default().to_string()
    };

    let out = run(
        "BEGIN;\nINSERT INTO app.items VALUES (10, 'a');\nUPDATE app.items SET name = 'b' WHERE id = 10;\nSELECT name FROM app.items WHERE id = 10;\nCOMMIT;\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(" b "), "{}", stdout(&out));
    assert_eq!(count("id = 10 AND name = 'b'"), "1");

    let out = run("BEGIN;\nINSERT INTO app.items VALUES (11, 'c');\nROLLBACK;\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(count("id = 11"), "0");

    let out = run("BEGIN;\nINSERT INTO app.items VALUES (12, 'd');\nINSERT INTO app.items VALUES (1, 'dup');\nCOMMIT;\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("rolled back"), "{}", stderr(&out));
    assert_eq!(count("id = 12"), "0");

    let out = run("BEGIN;\nINSERT INTO app.items VALUES (13, 'e');\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("BEGIN without COMMIT"),
        "{}",
        stderr(&out)
    );
    assert_eq!(count("id = 13"), "0");
}
