//! Running statements and meta-commands, for the shell and for scripts.

use crate::client::{Client, ClientError};
use crate::format::{self, Format};
use std::io::Write;
use std::time::{Duration, Instant};

pub struct Session {
    pub client: Client,
    pub format: Format,
    pub namespace: Option<String>,
    pub timing: bool,
    /// Whether a spinner may be drawn (stderr is a terminal).
    pub interactive: bool,
}

/// What a meta-command asks the shell to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Quit,
}

pub const HELP: &str = "\
Meta-commands:
  \\help, \\?        this help
  \\q               quit
  \\dn, \\l         list namespaces
  \\conninfo        the server and the user connected as
  \\dt [namespace]  list tables
  \\d <table>       describe a table
  \\health          server health and version
  \\flush <ns.t>    flush a table and wait for its job
  \\jobs            recent jobs
  \\watch <ns.t> [WHERE ...]
                   show the rows, then every change live (Ctrl-C stops)
  \\timing          toggle query timing
SQL statements end with ';' and may span lines. SUBSCRIBE TO <ns.t> [WHERE ...]
[OPTIONS (last_rows=n)]; runs a live query until Ctrl-C.
";

impl Session {
    /// Runs SQL and prints every result; false if it failed (the error is
    /// printed on stderr).
    pub fn run_sql(&self, sql: &str, out: &mut dyn Write) -> bool {
        if crate::live::is_subscribe(sql) {
            return crate::live::subscribe(
                &self.client,
                sql,
                self.namespace.as_deref(),
                self.format,
                None,
                out,
            );
        }
        match self.client.sql(sql, self.namespace.as_deref()) {
            Ok((results, elapsed)) => {
                for result in &results {
                    let _ = out.write_all(format::render(result, self.format).as_bytes());
                }
                if self.timing && self.format == Format::Table {
                    let _ = out.write_all(format::timing(elapsed).as_bytes());
                }
                true
            }
            Err(e) => {
                eprintln!("{e}");
                false
            }
        }
    }

    /// Runs one meta-command line (starting with `\`).
    pub fn meta(&mut self, line: &str, out: &mut dyn Write) -> (Next, bool) {
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or("");
        let arg = words.next();
        let ok = match (command, arg) {
            ("\\q" | "\\quit", _) => return (Next::Quit, true),
            ("\\help" | "\\?" | "\\h", _) => {
                let _ = out.write_all(HELP.as_bytes());
                true
            }
            ("\\dn" | "\\l", _) => self.run_sql("SHOW NAMESPACES", out),
            ("\\conninfo", _) => self.conninfo(out),
            ("\\dt", None) => self.run_sql("SHOW TABLES", out),
            ("\\dt", Some(ns)) => self.run_sql(&format!("SHOW TABLES IN {ns}"), out),
            ("\\d", Some(table)) => self.run_sql(&format!("DESCRIBE TABLE {table}"), out),
            ("\\d", None) => self.run_sql("SHOW TABLES", out),
            ("\\health", _) => match self.client.health() {
                Ok(body) => {
                    let _ = writeln!(
                        out,
                        "{} is {} (version {}, API {})",
                        self.client.url,
                        body["status"].as_str().unwrap_or("?"),
                        body["version"].as_str().unwrap_or("?"),
                        body["api_version"].as_str().unwrap_or("?")
                    );
                    true
                }
                Err(e) => {
                    eprintln!("{e}");
                    false
                }
            },
            ("\\jobs", _) => self.run_sql(
                "SELECT job_id, job_type, status, namespace_id, table_name, trigger, message \
                 FROM system.jobs ORDER BY created_at DESC LIMIT 20",
                out,
            ),
            ("\\flush", Some(table)) => self.flush(table, out),
            ("\\watch", Some(_)) => {
                let target = line
                    .trim_start()
                    .strip_prefix(command)
                    .unwrap_or_default()
                    .trim();
                self.run_sql(&format!("SUBSCRIBE TO {target}"), out)
            }
            ("\\watch", None) => {
                eprintln!("usage: \\watch <namespace.table> [WHERE <condition>]");
                false
            }
            ("\\flush", None) => {
                eprintln!("usage: \\flush <namespace.table>");
                false
            }
            ("\\timing", _) => {
                self.timing = !self.timing;
                let _ = writeln!(out, "Timing is {}.", if self.timing { "on" } else { "off" });
                true
            }
            _ => {
                eprintln!("unknown meta-command {command}; try \\help");
                false
            }
        };
        (Next::Continue, ok)
    }

    /// `\conninfo`: which server, as whom (asked of the server, so a
    /// saved token's user shows too), and the default namespace.
    fn conninfo(&self, out: &mut dyn Write) -> bool {
        match self.client.sql("SELECT CURRENT_USER()", None) {
            Ok((results, _)) => {
                let user = results
                    .first()
                    .and_then(|r| r.rows.first())
                    .and_then(|row| row.first())
                    .and_then(|cell| cell.as_str())
                    .unwrap_or("?")
                    .to_string();
                let namespace = self
                    .namespace
                    .as_deref()
                    .map(|ns| format!(", namespace \"{ns}\""))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "Connected to {} as user \"{user}\"{namespace}.",
                    self.client.url
                );
                true
            }
            Err(e) => {
                eprintln!("{e}");
                false
            }
        }
    }

    /// `\flush ns.t`: starts the flush, shows a spinner until its job ends,
    /// then its outcome and figures.
    fn flush(&self, table: &str, out: &mut dyn Write) -> bool {
        #[expect(
            clippy::disallowed_methods,
            reason = "the wait shown beside the spinner"
        )]
        let started = Instant::now();
        let job_id = match self
            .client
            .sql(&format!("FLUSH TABLE {table}"), self.namespace.as_deref())
        {
            Ok((results, _)) => {
                let message = results
                    .first()
                    .and_then(|r| r.message.clone())
                    .unwrap_or_default();
                match message.split("Job ID: ").nth(1) {
                    Some(id) => id.split_whitespace().next().unwrap_or("").to_string(),
                    None => {
                        eprintln!("the server did not return a job id: {message}");
                        return false;
                    }
                }
            }
            Err(e) => {
                eprintln!("{e}");
                return false;
            }
        };
        let frames = ['|', '/', '-', '\\'];
        let mut frame = 0;
        loop {
            let query = format!(
                "SELECT status, message, result, error FROM system.jobs WHERE job_id = '{}'",
                job_id.replace('\'', "''")
            );
            let row = match self.client.sql(&query, None) {
                Ok((results, _)) => results
                    .into_iter()
                    .next()
                    .and_then(|r| r.rows.into_iter().next()),
                Err(e) => {
                    eprintln!("\r{e}");
                    return false;
                }
            };
            let text = |i: usize| {
                row.as_ref()
                    .and_then(|r| r.get(i))
                    .map(format::cell_text)
                    .unwrap_or_default()
            };
            let status = text(0);
            if matches!(
                status.as_str(),
                "completed" | "failed" | "cancelled" | "skipped"
            ) {
                if self.interactive {
                    eprint!("\r\x1b[K");
                }
                let _ = writeln!(out, "Job {job_id} {status}: {}", text(1));
                if let Ok(metrics) = serde_json::from_str::<serde_json::Value>(&text(2)) {
                    if let Some(map) = metrics.as_object() {
                        for (key, value) in map {
                            let _ = writeln!(out, "  {key}: {value}");
                        }
                    }
                }
                if status == "failed" {
                    eprintln!("error: {}", text(3));
                }
                return status == "completed" || status == "skipped";
            }
            if self.interactive {
                eprint!(
                    "\r{} flushing {table} (job {job_id}, {status}) {:.1}s",
                    frames[frame % frames.len()],
                    started.elapsed().as_secs_f64()
                );
                frame += 1;
            }
            #[expect(
                clippy::disallowed_methods,
                reason = "the spinner's pace between polls of system.jobs"
            )]
            std::thread::sleep(Duration::from_millis(150));
        }
    }
}

/// Whether an error is a refused or expired token.
pub fn is_auth_error(e: &ClientError) -> bool {
    matches!(e, ClientError::Auth { .. })
}
