//! Ctrl-C, which means something different depending on what runs: during
//! a statement it asks the server to cancel that statement (`KILL QUERY`,
//! as psql sends a cancel request); during a live query or `\watch` it
//! ends the watch; in the shell otherwise it is ignored (the line editor
//! handles it at the prompt); in a script it ends the CLI, as it always
//! did.

use crate::client::Client;
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::Duration;

enum Mode {
    /// Nothing to stop: exit (scripts) or ignore (the shell).
    Idle,
    /// A statement runs under this id; Ctrl-C cancels it on the server.
    Statement(Client, String),
    /// A watch loop polls [`interrupted`] and waits in [`wait`].
    Catch,
}

struct State {
    mode: Mode,
    exit_when_idle: bool,
    interrupted: bool,
}

static STATE: Mutex<State> = Mutex::new(State {
    mode: Mode::Idle,
    exit_when_idle: true,
    interrupted: false,
});
static WAKE: Condvar = Condvar::new();

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Installs the handler; `exit_when_idle` is false for the shell.
pub fn install(exit_when_idle: bool) {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    state().exit_when_idle = exit_when_idle;
    INSTALLED.get_or_init(|| {
        if let Err(e) = ctrlc::set_handler(on_ctrl_c) {
            eprintln!("Ctrl-C will end the CLI, not a statement: {e}");
        }
    });
}

fn on_ctrl_c() {
    let mut s = state();
    let is_statement = matches!(s.mode, Mode::Statement(..));
    if is_statement || matches!(s.mode, Mode::Catch) {
        s.interrupted = true;
        WAKE.notify_all();
    }
    match &s.mode {
        Mode::Idle if s.exit_when_idle => std::process::exit(130),
        Mode::Idle => {}
        Mode::Catch => {}
        Mode::Statement(client, id) => {
            let (client, id) = (client.clone(), id.clone());
            drop(s);
            // The statement's own request then ends with QUERY_CANCELLED.
            if let Err(e) = client.sql_as_query(&format!("KILL QUERY '{id}'"), None, None) {
                eprintln!("could not cancel the statement: {e}");
            }
        }
    }
}

fn set_mode(mode: Mode) -> Mode {
    std::mem::replace(&mut state().mode, mode)
}

/// Runs `f` (one statement's request, under `query_id`) so that Ctrl-C
/// cancels it on the server. A Ctrl-C that a watch loop has not seen yet
/// stays noted: the loop ends after this statement.
pub fn statement<T>(client: &Client, query_id: &str, f: impl FnOnce() -> T) -> T {
    let before = set_mode(Mode::Statement(client.clone(), query_id.to_string()));
    let out = f();
    state().mode = before;
    out
}

/// Runs `f`, a watch loop, with Ctrl-C caught for it to notice.
pub fn catching<T>(f: impl FnOnce() -> T) -> T {
    state().interrupted = false;
    let before = set_mode(Mode::Catch);
    let out = f();
    state().mode = before;
    out
}

/// Whether Ctrl-C was pressed since the current mode began.
pub fn interrupted() -> bool {
    state().interrupted
}

/// Waits up to `timeout` or until Ctrl-C; true if Ctrl-C came.
pub fn wait(timeout: Duration) -> bool {
    let s = state();
    let (s, _) = WAKE
        .wait_timeout_while(s, timeout, |s| !s.interrupted)
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    s.interrupted
}
