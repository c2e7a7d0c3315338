//! Running statements and meta-commands, for the shell and for scripts.

use crate::client::{Client, ClientError};
use crate::format::{self, Format};
use crate::interrupt;
use crate::script::{Item, Splitter};
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

/// The wall clock, for `\watch`'s header line.
fn now_micros() -> i64 {
    #[expect(
        clippy::disallowed_methods,
        reason = "the time shown above each \\watch run"
    )]
    let now = std::time::SystemTime::now();
    now.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The value, or `None` with the error printed on stderr (where every
/// failure of a statement or meta-command goes).
fn report<T>(result: Result<T, String>) -> Option<T> {
    result.map_err(|e| eprintln!("{e}")).ok()
}

/// A writer that sends what it is given to the session's output.
struct Captured<'a>(&'a mut Session);

impl Write for Captured<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.emit_unpaged(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `\x`: rows as blocks of lines instead of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expanded {
    Off,
    On,
    /// Expanded when the table would be wider than the terminal.
    Auto,
}

pub struct Session {
    pub client: Client,
    pub format: Format,
    pub namespace: Option<String>,
    /// Who the server says we are (for the prompt).
    pub user: String,
    pub role: String,
    pub timing: bool,
    /// Whether a spinner may be drawn (stderr is a terminal).
    pub interactive: bool,
    pub expanded: Expanded,
    pub pager: bool,
    /// `\o`: where results go instead of standard output.
    output: Option<(String, std::fs::File)>,
    /// The last statement run, for `\watch n`.
    last_sql: Option<String>,
    /// How deep `\i` files are nested.
    depth: usize,
    statements: u64,
    /// The statements of a transaction since `BEGIN`: sent to the server
    /// together at `COMMIT` (a transaction lives within one request).
    transaction: Option<Vec<String>>,
}

/// What a meta-command asks the shell to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    Quit,
}

/// How deep `\i` may nest (a file including itself stops here).
const MAX_INCLUDE_DEPTH: usize = 16;

pub const HELP: &str = "\
Meta-commands:
  \\help, \\?        this help
  \\q               quit
  \\dn, \\l         list namespaces
  \\conninfo        the server and the user connected as
  \\dt [namespace]  list tables
  \\d <table>       describe a table
  \\x [on|off|auto] expanded display (one line per column)
  \\pset pager|expanded|format [value]
                   the pager (on|off), \\x, the output format (table|csv|json)
  \\o [file]        send results to a file (without one: back to the screen)
  \\i <file>        run the statements in a file
  \\copy <table> [(columns)] FROM '<file>'|STDIN [CSV] [HEADER [false]]
  \\copy <table>|(<query>) TO '<file>'|STDOUT [...]
                   CSV from or to a file on this machine
  \\watch [seconds] run the last statement again every 2 (or n) seconds
  \\watch <ns.t> [WHERE ...]
                   show the rows, then every change live
  \\echo <text>     print the text
  \\health          server health and version
  \\flush <ns.t>    flush a table and wait for its job
  \\jobs            recent jobs
  \\timing          toggle query timing
SQL statements end with ';' and may span lines; Ctrl-C cancels a running
statement on the server and stops a watch. SUBSCRIBE TO <ns.t> [WHERE ...]
[OPTIONS (last_rows=n)]; runs a live query until Ctrl-C.
";

/// `USE [NAMESPACE] ns` or `SET NAMESPACE ns`: the namespace it selects.
fn selected_namespace(sql: &str) -> Option<String> {
    let words: Vec<&str> = sql.split_whitespace().collect();
    let name = match words.as_slice() {
        [u, ns] if u.eq_ignore_ascii_case("USE") => ns,
        [u, n, ns]
            if (u.eq_ignore_ascii_case("USE") || u.eq_ignore_ascii_case("SET"))
                && n.eq_ignore_ascii_case("NAMESPACE") =>
        {
            ns
        }
        _ => return None,
    };
    Some(name.trim_matches('"').to_string())
}

impl Session {
    pub fn new(client: Client, format: Format, namespace: Option<String>) -> Self {
        Self {
            client,
            format,
            namespace,
            user: "?".into(),
            role: String::new(),
            timing: false,
            interactive: false,
            expanded: Expanded::Off,
            pager: true,
            output: None,
            last_sql: None,
            depth: 0,
            statements: 0,
            transaction: None,
        }
    }

    /// Whether a transaction block is being collected (`BEGIN` seen, no
    /// `COMMIT` or `ROLLBACK` yet).
    pub fn in_transaction(&self) -> bool {
        self.transaction.is_some()
    }

    /// The shell's prompt, psql's shape: `user@namespace=> `, `#` for dba
    /// and system, `-` while a statement is open.
    pub fn prompt(&self, open: bool) -> String {
        let ns = self
            .namespace
            .as_deref()
            .map(|ns| format!("@{ns}"))
            .unwrap_or_default();
        // psql's `*` for an open transaction.
        let mark = match (open, self.in_transaction()) {
            (true, _) => '-',
            (false, true) => '*',
            (false, false) => '=',
        };
        let end = if matches!(self.role.as_str(), "dba" | "system") {
            '#'
        } else {
            '>'
        };
        format!("{}{ns}{mark}{end} ", self.user)
    }

    /// Writes text where results go: the `\o` file, the pager, or stdout.
    pub fn emit(&mut self, text: &str) {
        self.write_out(text, self.pager);
    }

    /// [`Session::emit`] without the pager: a live query's lines, which
    /// come one at a time and must show at once.
    pub fn emit_unpaged(&mut self, text: &str) {
        self.write_out(text, false);
    }

    fn write_out(&mut self, text: &str, page: bool) {
        if let Some((name, file)) = &mut self.output {
            if let Err(e) = file.write_all(text.as_bytes()) {
                eprintln!("cannot write to {name}: {e}");
            }
            return;
        }
        if page {
            if let Some(size) = crate::pager::terminal() {
                if crate::pager::too_big(text, size) && crate::pager::page(text) {
                    return;
                }
            }
        }
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
    }

    fn render(&self, result: &crate::client::StatementResult) -> String {
        let expand = match self.expanded {
            Expanded::On => true,
            Expanded::Off => false,
            Expanded::Auto => {
                let width = format::table(result)
                    .lines()
                    .next()
                    .map_or(0, |l| l.chars().count());
                crate::pager::terminal().is_some_and(|(cols, _)| width > cols)
            }
        };
        format::render_with(result, self.format, expand)
    }

    /// Runs every statement and meta-command read from `input`, each
    /// printed as it completes; stops at the first that fails (false).
    /// `source` names the input in error messages.
    pub fn run_script(&mut self, input: impl BufRead, source: &str) -> Result<bool, String> {
        let mut splitter = Splitter::default();
        for line in input.lines() {
            let line = line.map_err(|e| format!("cannot read {source}: {e}"))?;
            let items = splitter
                .push_line(&line)
                .map_err(|e| format!("{source}: {e}"))?;
            for item in items {
                match self.run_item(item, Some(source)) {
                    (Next::Quit, ok) => return Ok(ok),
                    (Next::Continue, false) => return Ok(false),
                    (Next::Continue, true) => {}
                }
            }
        }
        let ok = match splitter.finish() {
            Some(item) => self.run_item(item, Some(source)).1,
            None => true,
        };
        if self.depth == 0 && self.transaction.take().is_some() {
            eprintln!("kalam: {source}: BEGIN without COMMIT; the transaction was not sent");
            return Ok(false);
        }
        Ok(ok)
    }

    /// Runs one statement or meta-command; `source` is the script's name
    /// (None in the shell), for error messages.
    pub fn run_item(&mut self, item: Item, source: Option<&str>) -> (Next, bool) {
        let (text, line) = match &item {
            Item::Sql { text, line } | Item::Meta { text, line } => (text.clone(), *line),
        };
        let outcome = match item {
            Item::Meta { .. } => self.meta(&text),
            Item::Sql { .. } => (Next::Continue, self.run_statement(&text)),
        };
        if let (Some(source), (_, false)) = (source, &outcome) {
            eprintln!("kalam: {source}:{line}: the statement above failed");
        }
        outcome
    }

    /// Runs SQL and prints every result; false if it failed (the error is
    /// printed on stderr).
    pub fn run_statement(&mut self, sql: &str) -> bool {
        match (transaction_word(sql), self.transaction.as_mut()) {
            (Some(TxWord::Begin), None) => {
                self.transaction = Some(vec![sql.to_string()]);
                self.emit("BEGIN (the statements up to COMMIT go to the server together)\n");
                return true;
            }
            (Some(TxWord::Rollback), Some(_)) => {
                self.transaction = None;
                self.emit("ROLLBACK\n");
                return true;
            }
            (Some(TxWord::Commit), Some(block)) => {
                block.push(sql.to_string());
                let batch = block.join(";\n");
                self.transaction = None;
                return self.send(&batch);
            }
            (Some(TxWord::Begin) | None, Some(block)) => {
                // The server refuses a nested BEGIN when the block arrives.
                block.push(sql.to_string());
                return true;
            }
            (_, None) => {}
        }
        self.send(sql)
    }

    /// Sends SQL to the server and prints every result; false if it failed.
    fn send(&mut self, sql: &str) -> bool {
        if crate::live::is_subscribe(sql) {
            let (client, namespace, format) =
                (self.client.clone(), self.namespace.clone(), self.format);
            return crate::live::subscribe(
                &client,
                sql,
                namespace.as_deref(),
                format,
                None,
                &mut Captured(self),
            );
        }
        self.statements += 1;
        let query_id = format!("kalam-{}-{}", std::process::id(), self.statements);
        let client = self.client.clone();
        let namespace = self.namespace.clone();
        let outcome = interrupt::statement(&client, &query_id, || {
            client.sql_as_query(sql, namespace.as_deref(), Some(&query_id))
        });
        self.last_sql = Some(sql.to_string());
        match outcome {
            Ok((results, elapsed)) => {
                for result in &results {
                    let text = self.render(result);
                    self.emit(&text);
                }
                if let Some(ns) = selected_namespace(sql) {
                    self.namespace = Some(ns);
                }
                if self.timing && self.format == Format::Table {
                    self.emit(&format::timing(elapsed));
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
    pub fn meta(&mut self, line: &str) -> (Next, bool) {
        let mut words = line.split_whitespace();
        let command = words.next().unwrap_or("");
        let arg = words.next();
        let rest = line
            .trim_start()
            .strip_prefix(command)
            .unwrap_or_default()
            .trim();
        let ok = match (command, arg) {
            ("\\q" | "\\quit", _) => return (Next::Quit, true),
            ("\\help" | "\\?" | "\\h", _) => {
                self.emit(HELP);
                true
            }
            ("\\dn" | "\\l", _) => self.run_statement("SHOW NAMESPACES"),
            ("\\conninfo", _) => self.buffered(Self::conninfo),
            ("\\dt", None) => self.run_statement("SHOW TABLES"),
            ("\\dt", Some(ns)) => self.run_statement(&format!("SHOW TABLES IN {ns}")),
            ("\\d", Some(table)) => self.run_statement(&format!("DESCRIBE TABLE {table}")),
            ("\\d", None) => self.run_statement("SHOW TABLES"),
            ("\\x", value) => self.set_expanded(value),
            ("\\pset", Some(setting)) => self.pset(setting, words.next()),
            ("\\o" | "\\out", file) => self.set_output(file.map(|_| rest)),
            ("\\i" | "\\include", Some(_)) => self.include(rest),
            ("\\copy", Some(_)) => self.copy(rest),
            ("\\echo", _) => {
                self.emit(&format!("{rest}\n"));
                true
            }
            ("\\health", _) => match self.client.health() {
                Ok(body) => {
                    let text = format!(
                        "{} is {} (version {}, API {})\n",
                        self.client.url,
                        body["status"].as_str().unwrap_or("?"),
                        body["version"].as_str().unwrap_or("?"),
                        body["api_version"].as_str().unwrap_or("?")
                    );
                    self.emit(&text);
                    true
                }
                Err(e) => {
                    eprintln!("{e}");
                    false
                }
            },
            ("\\jobs", _) => self.run_statement(
                "SELECT job_id, job_type, status, namespace_id, table_name, trigger, message \
                 FROM system.jobs ORDER BY created_at DESC LIMIT 20",
            ),
            ("\\flush", Some(table)) => self.buffered(|s, out| s.flush(table, out)),
            ("\\watch", _) => self.watch(rest),
            ("\\flush", None) => {
                eprintln!("usage: \\flush <namespace.table>");
                false
            }
            ("\\timing", _) => {
                self.timing = !self.timing;
                let text = format!("Timing is {}.\n", if self.timing { "on" } else { "off" });
                self.emit(&text);
                true
            }
            ("\\i" | "\\include", None) => {
                eprintln!("usage: \\i <file>");
                false
            }
            ("\\copy", None) => {
                eprintln!("{}", crate::copy::USAGE);
                false
            }
            _ => {
                eprintln!("unknown meta-command {command}; try \\help");
                false
            }
        };
        (Next::Continue, ok)
    }

    /// Runs `f`, which writes to a buffer, then emits what it wrote.
    fn buffered(&mut self, f: impl FnOnce(&Self, &mut Vec<u8>) -> bool) -> bool {
        let mut out = Vec::new();
        let ok = f(self, &mut out);
        self.emit(&String::from_utf8_lossy(&out));
        ok
    }

    fn set_expanded(&mut self, value: Option<&str>) -> bool {
        self.expanded = match value.map(str::to_ascii_lowercase).as_deref() {
            None if self.expanded == Expanded::Off => Expanded::On,
            None => Expanded::Off,
            Some("on") => Expanded::On,
            Some("off") => Expanded::Off,
            Some("auto") => Expanded::Auto,
            Some(other) => {
                eprintln!("\\x takes on, off or auto, not {other}");
                return false;
            }
        };
        let state = match self.expanded {
            Expanded::On => "on",
            Expanded::Off => "off",
            Expanded::Auto => "used automatically",
        };
        self.emit(&format!("Expanded display is {state}.\n"));
        true
    }

    fn pset(&mut self, setting: &str, value: Option<&str>) -> bool {
        match (setting, value) {
            ("expanded" | "x", v) => self.set_expanded(v),
            ("pager", v) => {
                self.pager = match v {
                    None => !self.pager,
                    Some("on" | "always") => true,
                    Some("off") => false,
                    Some(other) => {
                        eprintln!("\\pset pager takes on or off, not {other}");
                        return false;
                    }
                };
                let state = if self.pager { "used" } else { "off" };
                self.emit(&format!("Pager is {state}.\n"));
                true
            }
            ("format", Some(f)) => {
                match <Format as clap::ValueEnum>::from_str(f, true) {
                    Ok(format) => self.format = format,
                    Err(_) => {
                        eprintln!("\\pset format takes table, csv or json, not {f}");
                        return false;
                    }
                }
                self.emit(&format!("Output format is {}.\n", f.to_ascii_lowercase()));
                true
            }
            _ => {
                eprintln!(
                    "usage: \\pset pager [on|off] | expanded [on|off|auto] | format table|csv|json"
                );
                false
            }
        }
    }

    /// `\o file` sends results to the file (created or truncated); `\o`
    /// alone back to the screen.
    fn set_output(&mut self, file: Option<&str>) -> bool {
        let Some(path) = file.map(|f| f.trim_matches('\'')) else {
            self.output = None;
            return true;
        };
        let file = std::fs::File::create(path).map_err(|e| format!("cannot write {path}: {e}"));
        report(file)
            .map(|f| self.output = Some((path.to_string(), f)))
            .is_some()
    }

    /// `\i file`: its statements, as if typed; a failure stops the file.
    fn include(&mut self, path: &str) -> bool {
        let path = path.trim_matches('\'');
        if self.depth >= MAX_INCLUDE_DEPTH {
            eprintln!("\\i {path}: files nested more than {MAX_INCLUDE_DEPTH} deep");
            return false;
        }
        let opened = std::fs::File::open(path).map_err(|e| format!("cannot read {path}: {e}"));
        let Some(file) = report(opened) else {
            return false;
        };
        self.depth += 1;
        let outcome = self.run_script(std::io::BufReader::new(file), path);
        self.depth -= 1;
        report(outcome).unwrap_or(false)
    }

    fn copy(&mut self, args: &str) -> bool {
        let Some(copy) = report(crate::copy::parse(args)) else {
            return false;
        };
        let mut rows = Vec::new();
        let copied = crate::copy::run(&self.client, self.namespace.as_deref(), &copy, &mut rows);
        let Some(n) = report(copied) else {
            return false;
        };
        self.emit(&String::from_utf8_lossy(&rows));
        // To STDOUT the rows are the output; psql adds no count.
        if copy.file.is_some() || copy.from {
            self.emit(&format!("COPY {n}\n"));
        }
        true
    }

    /// `\watch [n]` runs the last statement every n seconds (2 by default)
    /// until Ctrl-C or a failure; `\watch ns.t [WHERE ...]` subscribes.
    fn watch(&mut self, rest: &str) -> bool {
        let seconds = rest.trim_start_matches("i=");
        let interval = if rest.is_empty() {
            2.0
        } else if let Ok(n) = seconds.parse::<f64>() {
            if !(0.1..=86_400.0).contains(&n) {
                eprintln!("\\watch takes 0.1 to 86400 seconds");
                return false;
            }
            n
        } else {
            return self.run_statement(&format!("SUBSCRIBE TO {rest}"));
        };
        let Some(sql) = self.last_sql.clone() else {
            eprintln!("\\watch: no statement to repeat yet (or \\watch <ns.t> for a live query)");
            return false;
        };
        interrupt::catching(|| loop {
            let header = format!(
                "{} (every {interval}s)\n\n",
                kalamdb_commons::timestamp_utc(now_micros())
            );
            self.emit(&header);
            if !self.run_statement(&sql) {
                return false;
            }
            if interrupt::interrupted() || interrupt::wait(Duration::from_secs_f64(interval)) {
                return true;
            }
        })
    }

    /// `\conninfo`: which server, as whom (asked of the server, so a
    /// saved token's user shows too), and the default namespace.
    fn conninfo(&self, out: &mut Vec<u8>) -> bool {
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
    fn flush(&self, table: &str, out: &mut Vec<u8>) -> bool {
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

/// Transaction control a statement starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxWord {
    Begin,
    Commit,
    Rollback,
}

fn transaction_word(sql: &str) -> Option<TxWord> {
    let mut words = sql
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    match words.next()?.as_str() {
        "BEGIN" => Some(TxWord::Begin),
        "START" if words.next().as_deref() == Some("TRANSACTION") => Some(TxWord::Begin),
        "COMMIT" | "END" => Some(TxWord::Commit),
        "ROLLBACK" | "ABORT" => Some(TxWord::Rollback),
        _ => None,
    }
}

#[cfg(test)]
mod transaction_tests {
    use super::*;

    #[test]
    fn transaction_words() {
        assert_eq!(transaction_word("begin"), Some(TxWord::Begin));
        assert_eq!(
            transaction_word("  START TRANSACTION;"),
            Some(TxWord::Begin)
        );
        assert_eq!(transaction_word("START"), None);
        assert_eq!(transaction_word("commit work"), Some(TxWord::Commit));
        assert_eq!(transaction_word("END"), Some(TxWord::Commit));
        assert_eq!(transaction_word("Rollback"), Some(TxWord::Rollback));
        assert_eq!(transaction_word("SELECT 1"), None);
        assert_eq!(transaction_word("beginning"), None);
    }
}
