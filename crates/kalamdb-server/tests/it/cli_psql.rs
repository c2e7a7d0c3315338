//! The `kalam` CLI's psql habits against the real server: scripts printed
//! statement by statement, `-c` repeated, `-f -` and pipes, the connect
//! check, `\x`, `\o`, `\i`, `\copy`, the prompt, the pager, `\watch n`, and
//! Ctrl-C cancelling the statement on the server.

use crate::cli::{setup, stderr, stdout, Cli};
use crate::common::{create_user, poll, rows, TestServer};
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

fn with_stdin(cli: &Cli, args: &[&str], input: &str) -> std::process::Output {
    let mut child = cli
        .command()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kalam runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn scripts_print_each_statement_and_stop_at_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);

    // Statement 3 fails: 1 and 2 have printed (and 2 committed), 4 never ran.
    let script = dir.path().join("three.sql");
    std::fs::write(
        &script,
        "SELECT name FROM app.items WHERE id = 1;\n\
         INSERT INTO app.items VALUES (3, 'plum');\n\
         SELECT nope FROM app.items;\n\
         INSERT INTO app.items VALUES (4, 'fig');\n",
    )
    .unwrap();
    let out = cli.run(&["-f", script.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(
        text.contains("apple") && text.contains("Inserted 1 row(s)"),
        "{text}"
    );
    assert!(
        stderr(&out).contains("three.sql:3: the statement above failed"),
        "{}",
        stderr(&out)
    );
    let count = server.root("SELECT COUNT(*) FROM app.items");
    assert_eq!(rows(&count)[0][0], "3");

    // -c repeated and -f mixed run in the order given; USE carries over.
    let one = dir.path().join("one.sql");
    std::fs::write(&one, "SELECT 'from the file' AS f").unwrap();
    let out = cli.run(&[
        "--format",
        "csv",
        "-c",
        "USE app",
        "-c",
        "SELECT name FROM items WHERE id = 2",
        "-f",
        one.to_str().unwrap(),
        "-c",
        "SELECT 'last' AS l",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "Using namespace 'app'\nname\npear\nf\nfrom the file\nl\nlast\n"
    );

    // `-f -` and a pipe read standard input; neither prints a banner or
    // timing lines.
    let input = "SELECT name FROM app.items\n WHERE id = 1;\n\\echo done\n";
    for args in [&["-f", "-"][..], &[][..]] {
        let out = with_stdin(&cli, args, input);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = stdout(&out);
        assert!(text.contains("apple") && text.ends_with("done\n"), "{text}");
        assert!(!text.contains("Time:") && !text.contains("help"), "{text}");
    }
}

#[test]
fn credentials_are_checked_at_connect() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    create_user(&server, "ann", "ann-pw-1", "user");
    let cli = Cli::new(&server);
    // A wrong password fails before the first statement: nothing ran.
    let out = cli.run(&[
        "-u",
        "dba-not",
        "-p",
        "wrong",
        "-c",
        "INSERT INTO app.items VALUES (9, 'x')",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("authentication failed"),
        "{}",
        stderr(&out)
    );
    let count = server.root("SELECT COUNT(*) FROM app.items");
    assert_eq!(rows(&count)[0][0], "2");
    // The shell would not start either (no prompt, no banner).
    let out = with_stdin(&cli, &["-u", "ann", "-p", "nope"], "SELECT 1;\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
}

#[test]
fn expanded_display_output_files_and_includes() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    let cli = Cli::new(&server);

    let out = cli.run(&[
        "-c",
        "\\x",
        "-c",
        "SELECT id, name FROM app.items ORDER BY id",
    ]);
    assert_eq!(
        stdout(&out),
        "Expanded display is on.\n-[ RECORD 1 ]-\nid   | 1\nname | apple\n\
         -[ RECORD 2 ]-\nid   | 2\nname | pear\n"
    );

    // \o sends results to a file until \o alone; \i runs a file.
    let results = dir.path().join("results.txt");
    let inner = dir.path().join("inner.sql");
    std::fs::write(&inner, "SELECT name FROM app.items WHERE id = 2;\n").unwrap();
    let script = dir.path().join("outer.sql");
    std::fs::write(
        &script,
        format!(
            "\\o {}\nSELECT name FROM app.items WHERE id = 1;\n\\i {}\n\\o\n\\echo back\n",
            results.display(),
            inner.display()
        ),
    )
    .unwrap();
    let out = cli.run(&["-f", script.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "back\n");
    let written = std::fs::read_to_string(&results).unwrap();
    assert!(
        written.contains("apple") && written.contains("pear"),
        "{written}"
    );

    // A file that includes itself stops at a depth, with an error.
    let looping = dir.path().join("loop.sql");
    std::fs::write(&looping, format!("\\i {}\n", looping.display())).unwrap();
    let out = cli.run(&["-f", looping.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nested more than"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn copy_round_trips_every_kind_of_value_through_csv() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    server.root(
        "CREATE NAMESPACE app; CREATE SHARED TABLE app.notes (id INT PRIMARY KEY, \
         body TEXT NOT NULL, ok BOOLEAN, score DOUBLE, at TIMESTAMP, n BIGINT)",
    );
    server.root(
        "INSERT INTO app.notes VALUES \
         (1, 'plain', true, 1.5, 1704164645000000, 7), \
         (2, 'comma, \"quote\" and ''apostrophe''', false, -0.25, NULL, NULL), \
         (3, 'two\nlines', NULL, NULL, 1704164645123456, 9007199254740993)",
    );
    let cli = Cli::new(&server);
    let all = "SELECT id, body, ok, score, at, n FROM app.notes ORDER BY id";
    let before = server.root(all);
    let csv = dir.path().join("notes.csv");
    let out = cli.run(&["-c", &format!("\\copy app.notes TO '{}'", csv.display())]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "COPY 3\n");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("id,body,ok,score,at,n\n1,plain,true,1.5,2024-01-02T03:04:05Z,7\n"),
        "{text}"
    );

    server.root("DELETE FROM app.notes WHERE id > 0");
    let out = cli.run(&[
        "-c",
        &format!("\\copy app.notes FROM '{}' CSV HEADER", csv.display()),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "COPY 3\n");
    assert_eq!(
        server.root(all)["results"][0]["rows"],
        before["results"][0]["rows"]
    );

    // A query to standard output; a bad row names its line, and the rows
    // before it (earlier batches) stay.
    let out = cli.run(&[
        "-c",
        "\\copy (SELECT id FROM app.notes WHERE id > 1 ORDER BY id) TO STDOUT HEADER false",
    ]);
    assert_eq!(stdout(&out), "2\n3\n");
    let mut bad = String::from("id,body,ok,score,at,n\n");
    for i in 10..(10 + 1000) {
        bad.push_str(&format!("{i},r{i},,,,\n"));
    }
    bad.push_str("5000,x,,not-a-number,,\n");
    std::fs::write(&csv, bad).unwrap();
    let out = cli.run(&["-c", &format!("\\copy app.notes FROM '{}'", csv.display())]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("line 1002"), "{}", stderr(&out));
    let count = server.root("SELECT COUNT(*) FROM app.notes");
    assert_eq!(rows(&count)[0][0], "1003");
}

#[test]
fn shell_prompt_watch_pager_and_ctrl_c_cancelling_on_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    setup(&server);
    create_user(&server, "ann", "ann-pw-1", "user");
    let cli = Cli::new(&server);
    // A small terminal, so that a longer result goes through the pager; the
    // "pager" marks what it shows.
    let mut command = std::process::Command::new("sh");
    let kalam = cli.command();
    let args: Vec<String> = kalam
        .get_args()
        .map(|a| a.to_string_lossy().to_string())
        .collect();
    command
        .arg("-c")
        .arg(format!(
            "stty rows 8 cols 100; exec {} {} -u ann -p ann-pw-1",
            crate::cli::kalam_binary().display(),
            args.join(" ")
        ))
        .env("KALAM_CONFIG_DIR", cli.config.path())
        .env("PAGER", "sed s/^/PAGED:/")
        .env("TERM", "xterm");
    let mut shell = rexpect::session::spawn_command(command, Some(60_000)).expect("pty spawn");
    shell.exp_string("ann=> ").unwrap();
    shell.send_line("USE app;").unwrap();
    shell.exp_string("ann@app=> ").unwrap();
    shell.send_line("SELECT 40 + 2 AS answer;").unwrap();
    shell.exp_string("42").unwrap();
    shell.exp_string("ann@app=> ").unwrap();

    // Longer than 8 rows: through the pager.
    shell
        .send_line("SELECT * FROM unnest(range(1, 30)) AS t(n);")
        .unwrap();
    shell.exp_string("PAGED:(29 rows)").unwrap();
    shell.exp_string("ann@app=> ").unwrap();

    // \watch 0.2 re-runs the last statement until Ctrl-C.
    shell.send_line("SELECT 'tick' AS t;").unwrap();
    shell.exp_string("ann@app=> ").unwrap();
    shell.send_line("\\watch 0.2").unwrap();
    for _ in 0..3 {
        shell.exp_string("(every 0.2s)").unwrap();
        shell.exp_string("tick").unwrap();
    }
    shell.send_control('c').unwrap();
    shell.exp_string("ann@app=> ").unwrap();

    // Ctrl-C during a statement that would run for minutes cancels it on
    // the server, once the server lists it as running.
    shell
        .send_line(
            "SELECT count(*) FROM unnest(range(1, 200000)) a CROSS JOIN unnest(range(1, 200000)) b;",
        )
        .unwrap();
    wait_until_running(&server, "ann");
    shell.send_control('c').unwrap();
    shell.exp_string("QUERY_CANCELLED").unwrap();
    let running = server.root("SELECT COUNT(*) FROM system.running_queries");
    assert_eq!(rows(&running)[0][0], "0");
    shell.exp_string("ann@app=> ").unwrap();
    shell.send_line("SELECT 'still here' AS s;").unwrap();
    shell.exp_string("still here").unwrap();
    shell.send_line("\\q").unwrap();
    shell.exp_eof().unwrap();
}

/// Polls `system.running_queries` until `user` has a statement running.
fn wait_until_running(server: &TestServer, user: &str) {
    poll(
        "the statement to show as running",
        Duration::from_secs(30),
        || {
            let body = server.root(&format!(
                "SELECT query_id FROM system.running_queries WHERE user_id = '{user}'"
            ));
            (!rows(&body).is_empty()).then_some(())
        },
    );
}

#[test]
fn kill_query_over_http_stops_only_what_the_caller_may_stop() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path());
    create_user(&server, "ann", "ann-pw-1", "user");
    create_user(&server, "bob", "bob-pw-1", "user");
    let url = format!("{}/v1/api/sql", server.base_url);
    let slow =
        std::thread::spawn({
            let url = url.clone();
            move || {
                let response = reqwest::blocking::Client::new()
                .post(url)
                .basic_auth("ann", Some("ann-pw-1"))
                .header("kalam-query-id", "ann-report-1")
                .json(&serde_json::json!({"sql": "SELECT count(*) FROM unnest(range(1, 200000)) a \
                    CROSS JOIN unnest(range(1, 200000)) b"}))
                .send()
                .unwrap();
                let status = response.status().as_u16();
                (status, response.json::<serde_json::Value>().unwrap())
            }
        });
    wait_until_running(&server, "ann");
    // Bob neither sees nor stops Ann's statement.
    let body = server.ok_as("bob", "bob-pw-1", "SELECT * FROM system.running_queries");
    assert!(rows(&body).is_empty(), "{body}");
    let (status, body) = server.sql_as(
        "bob",
        "bob-pw-1",
        serde_json::json!({"sql": "KILL QUERY 'ann-report-1'"}),
    );
    assert_eq!(status, 400, "{body}");
    let body = server.ok_as(
        "ann",
        "ann-pw-1",
        "SELECT query_id, sql FROM system.running_queries",
    );
    assert_eq!(rows(&body)[0][0], "ann-report-1");
    assert!(rows(&body)[0][1].as_str().unwrap().contains("CROSS JOIN"));
    server.ok_as("ann", "ann-pw-1", "KILL QUERY 'ann-report-1'");
    let (status, body) = slow.join().unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("QUERY_CANCELLED"))
    );
    assert!(server.healthy());
    // A client that goes away mid-statement takes its statement with it:
    // the request's task is aborted and leaves the list.
    let gone =
        std::thread::spawn({
            let url = url.clone();
            move || {
                reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()
                .unwrap()
                .post(url)
                .basic_auth("ann", Some("ann-pw-1"))
                .header("kalam-query-id", "ann-report-2")
                .json(&serde_json::json!({"sql": "SELECT count(*) FROM unnest(range(1, 200000)) a \
                    CROSS JOIN unnest(range(1, 200000)) b"}))
                .send()
                .is_err()
            }
        });
    wait_until_running(&server, "ann");
    assert!(
        gone.join().unwrap(),
        "the client timed out and closed its connection"
    );
    poll(
        "the statement to stop after its client left",
        Duration::from_secs(30),
        || {
            let body = server.root("SELECT COUNT(*) FROM system.running_queries");
            (rows(&body)[0][0] == "0").then_some(())
        },
    );

    // An id that is not plain is refused before anything runs.
    let response = reqwest::blocking::Client::new()
        .post(url)
        .basic_auth("ann", Some("ann-pw-1"))
        .header("kalam-query-id", "x'y")
        .json(&serde_json::json!({"sql": "SELECT 1"}))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
}
