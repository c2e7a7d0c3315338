//! The interactive shell: line editing, persistent history, multi-line
//! statements ended by `;`, tab completion, meta-commands, a prompt with
//! the user and namespace.

use crate::complete::KalamHelper;
use crate::config;
use crate::script::{Item, Splitter};
use crate::session::{Next, Session};
use rustyline::error::ReadlineError;
use rustyline::history::FileHistory;
use rustyline::{Config, Editor};

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
    // After the editor: it takes SIGINT for itself when created, and Ctrl-C
    // must reach a running statement or watch. At the prompt the editor
    // reads it as a key.
    crate::interrupt::install(false);
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
    let mut splitter = Splitter::default();
    'read: loop {
        let prompt = session.prompt(!splitter.is_empty());
        match editor.readline(&prompt) {
            Ok(line) => {
                let items = match splitter.push_line(&line) {
                    Ok(items) => items,
                    Err(e) => {
                        eprintln!("{e}");
                        continue;
                    }
                };
                for item in items {
                    let (text, is_sql) = match &item {
                        Item::Sql { text, .. } => (format!("{text};"), true),
                        Item::Meta { text, .. } => (text.clone(), false),
                    };
                    let _ = editor.add_history_entry(text.as_str());
                    let (next, ok) = session.run_item(item, None);
                    if next == Next::Quit {
                        break 'read;
                    }
                    if ok && is_sql && changes_schema(&text) {
                        helper.refresh(&session.client);
                    }
                }
            }
            Err(ReadlineError::Interrupted) => splitter.clear(),
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
