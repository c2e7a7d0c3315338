//! The interactive shell: line editing, persistent history, multi-line
//! statements ended by `;`, tab completion, meta-commands.

use crate::complete::KalamHelper;
use crate::config;
use crate::session::{Next, Session};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

/// Whether `sql` ends with a `;` that is not inside a string, a quoted
/// name or a comment.
pub fn is_complete(sql: &str) -> bool {
    let mut last = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                for d in chars.by_ref() {
                    if d == c {
                        break;
                    }
                }
                last = Some(c);
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            c if c.is_whitespace() => {}
            c => last = Some(c),
        }
    }
    last == Some(';')
}

fn changes_schema(sql: &str) -> bool {
    let head = sql.trim_start().to_ascii_uppercase();
    ["CREATE", "DROP", "ALTER"]
        .iter()
        .any(|k| head.starts_with(k))
}

pub fn run(session: &mut Session) -> Result<bool, String> {
    let config = Config::builder()
        .auto_add_history(false)
        .max_history_size(5000)
        .map_err(|e| e.to_string())?
        .build();
    let mut editor: Editor<KalamHelper, FileHistory> =
        Editor::with_config(config).map_err(|e| format!("cannot start the line editor: {e}"))?;
    let helper = KalamHelper::default();
    helper.refresh(&session.client);
    editor.set_helper(Some(helper.clone()));
    let history = config::history_path();
    if let Some(path) = &history {
        let _ = editor.load_history(path);
    }
    println!(
        "kalam {} connected to {} — \\help for help, \\q to quit",
        env!("CARGO_PKG_VERSION"),
        session.client.url
    );
    let mut buffer = String::new();
    let mut stdout = std::io::stdout();
    loop {
        let prompt = if buffer.is_empty() {
            "kalam> "
        } else {
            "  ...> "
        };
        match editor.readline(prompt) {
            Ok(line) => {
                if buffer.is_empty() && line.trim_start().starts_with('\\') {
                    let _ = editor.add_history_entry(line.trim());
                    if session.meta(line.trim(), &mut stdout).0 == Next::Quit {
                        break;
                    }
                    continue;
                }
                if buffer.is_empty() && line.trim().is_empty() {
                    continue;
                }
                if !buffer.is_empty() {
                    buffer.push('\n');
                }
                buffer.push_str(&line);
                if is_complete(&buffer) {
                    let sql = std::mem::take(&mut buffer);
                    let _ = editor.add_history_entry(sql.trim());
                    if session.run_sql(&sql, &mut stdout) && changes_schema(&sql) {
                        helper.refresh(&session.client);
                    }
                }
            }
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(format!("line editor failed: {e}")),
        }
    }
    if let Some(path) = &history {
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Err(e) = editor.save_history(path) {
            eprintln!("could not save history to {}: {e}", path.display());
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::is_complete;

    #[test]
    fn statements_end_with_a_real_semicolon() {
        assert!(is_complete("SELECT 1;"));
        assert!(is_complete("SELECT 1;  \n"));
        assert!(is_complete("SELECT ';';"));
        assert!(!is_complete("SELECT ';'"));
        assert!(!is_complete("SELECT 1 -- done;"));
        assert!(is_complete("SELECT 1; -- done"));
        assert!(!is_complete("SELECT \"a;\""));
        assert!(!is_complete("INSERT INTO t VALUES ('x"));
    }
}
