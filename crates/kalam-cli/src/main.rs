//! `kalam`: the KalamDB command-line client. It talks to a server only over
//! its public HTTP API: an interactive shell, `-c`/`-f` for scripts, and
//! `kalam login` to keep a token instead of a password.

mod client;
mod complete;
mod config;
mod copy;
mod format;
mod interrupt;
mod live;
mod pager;
mod script;
mod session;
mod shell;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use client::{Auth, Client};
use format::Format;
use session::Session;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "kalam", version, about = "KalamDB command-line client")]
struct Cli {
    /// Server URL.
    #[arg(
        long,
        global = true,
        env = "KALAM_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// User name (with --password: Basic auth; without both: the saved
    /// login for this URL, else root with no password, which a fresh
    /// server accepts from this machine).
    #[arg(short, long, global = true, env = "KALAM_USER")]
    user: Option<String>,
    #[arg(short, long, global = true, env = "KALAM_PASSWORD")]
    password: Option<String>,
    /// Run these SQL statements (or one meta-command) and exit; may be
    /// repeated, and mixed with -f, in order.
    #[arg(short, long = "command")]
    command: Vec<String>,
    /// Run the SQL in this file ("-" for standard input) and exit; may be
    /// repeated.
    #[arg(short, long)]
    file: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Default namespace for unqualified table names.
    #[arg(short, long)]
    namespace: Option<String>,
    #[command(subcommand)]
    action: Option<Action>,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Log in and save a token for this URL (never the password).
    Login,
    /// End the saved session for this URL and forget its token.
    Logout,
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let result = match cli.action {
        Some(Action::Login) => login(&cli),
        Some(Action::Logout) => logout(&cli),
        None => run(&cli, inputs(&cli, &matches)),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("kalam: {message}");
            ExitCode::from(2)
        }
    }
}

/// Reads a password: without echo on a terminal, else one line of stdin.
fn read_password(prompt: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        return rpassword::prompt_password(prompt)
            .map_err(|e| format!("cannot read the password: {e}"));
    }
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password: {e}"))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn login(cli: &Cli) -> Result<bool, String> {
    let user = cli.user.clone().ok_or("kalam login needs --user")?;
    let password = match &cli.password {
        Some(p) => p.clone(),
        None => read_password(&format!("Password for {user}: "))?,
    };
    let client = Client::new(&cli.url, None);
    let body = client.login(&user, &password).map_err(|e| e.to_string())?;
    let saved = config::SavedLogin {
        user: user.clone(),
        access_token: body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        refresh_token: body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    };
    let path = config::store(&client.url, Some(saved))?;
    println!(
        "Logged in to {} as {user} (role {}); token saved in {}",
        client.url,
        body["user"]["role"].as_str().unwrap_or("?"),
        path.display()
    );
    Ok(true)
}

fn logout(cli: &Cli) -> Result<bool, String> {
    let client = Client::new(&cli.url, None);
    match config::load(&client.url) {
        Some(saved) => {
            if let Err(e) = client.logout(&saved.refresh_token) {
                eprintln!("the server did not end the session ({e}); forgetting the token anyway");
            }
            config::store(&client.url, None)?;
            println!("Logged out of {}", client.url);
        }
        None => println!("No saved login for {}", client.url),
    }
    Ok(true)
}

/// What to run, in the order given: `-c` texts and `-f` files.
enum Input {
    Command(String),
    File(PathBuf),
}

fn inputs(cli: &Cli, matches: &clap::ArgMatches) -> Vec<Input> {
    let mut ordered: Vec<(usize, Input)> = Vec::new();
    if let Some(indices) = matches.indices_of("command") {
        ordered.extend(
            indices
                .zip(&cli.command)
                .map(|(i, c)| (i, Input::Command(c.clone()))),
        );
    }
    if let Some(indices) = matches.indices_of("file") {
        ordered.extend(
            indices
                .zip(&cli.file)
                .map(|(i, f)| (i, Input::File(f.clone()))),
        );
    }
    ordered.sort_by_key(|(i, _)| *i);
    ordered.into_iter().map(|(_, input)| input).collect()
}

/// Connects as the flags or the saved login say and checks the
/// credentials with the server at once (one `/auth/me`): a wrong password
/// or an unreachable server fails here, before any statement. An expired
/// saved token is refreshed once. Returns the client and the server's view
/// of the user.
fn connect(cli: &Cli) -> Result<(Client, serde_json::Value), String> {
    let url = cli.url.trim_end_matches('/').to_string();
    let (mut client, saved) = credentials(cli, &url)?;
    let refused = |e: client::ClientError| match e {
        e @ client::ClientError::Auth { .. } => format!("{e} (as {})", who(cli)),
        e => e.to_string(),
    };
    match (client.me(), saved) {
        (Ok(me), _) => Ok((client, me)),
        (Err(e), Some(saved)) if session::is_auth_error(&e) => {
            let body = Client::new(&url, None)
                .refresh(&saved.refresh_token)
                .map_err(|e| format!("the saved login has expired ({e}); run kalam login"))?;
            let access = body["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            config::store(
                &url,
                Some(config::SavedLogin {
                    access_token: access.clone(),
                    ..saved
                }),
            )?;
            client.set_auth(Auth::Bearer(access));
            let me = client.me().map_err(refused)?;
            Ok((client, me))
        }
        (Err(e), _) => Err(refused(e)),
    }
}

fn who(cli: &Cli) -> String {
    cli.user
        .clone()
        .unwrap_or_else(|| "the saved login or root".into())
}

/// The client the flags ask for, and the saved login it uses, if any.
fn credentials(cli: &Cli, url: &str) -> Result<(Client, Option<config::SavedLogin>), String> {
    if cli.user.is_some() || cli.password.is_some() {
        let user = cli.user.clone().unwrap_or_else(|| "root".into());
        let password = match &cli.password {
            Some(p) => p.clone(),
            // Like psql: ask, when someone is there to answer.
            None if std::io::stdin().is_terminal() => {
                read_password(&format!("Password for {user}: "))?
            }
            None => String::new(),
        };
        let auth = Auth::Basic { user, password };
        return Ok((Client::new(url, Some(auth)), None));
    }
    Ok(match config::load(url) {
        Some(saved) => (
            Client::new(url, Some(Auth::Bearer(saved.access_token.clone()))),
            Some(saved),
        ),
        None => (
            Client::new(
                url,
                Some(Auth::Basic {
                    user: "root".into(),
                    password: String::new(),
                }),
            ),
            None,
        ),
    })
}

fn run(cli: &Cli, inputs: Vec<Input>) -> Result<bool, String> {
    let (client, me) = connect(cli)?;
    let mut session = Session::new(client, cli.format, cli.namespace.clone());
    session.user = me["username"]
        .as_str()
        .or(me["id"].as_str())
        .unwrap_or("?")
        .to_string();
    session.role = me["role"].as_str().unwrap_or_default().to_string();
    session.interactive = std::io::stderr().is_terminal();
    let stdin_is_terminal = std::io::stdin().is_terminal();
    // Scripts and pipes print results only: no banner, no timing lines.
    session.timing = inputs.is_empty() && stdin_is_terminal;
    if inputs.is_empty() && stdin_is_terminal {
        return shell::run(&mut session);
    }
    // Ctrl-C outside a statement ends a script, as it always did.
    interrupt::install(true);
    if inputs.is_empty() {
        return session.run_script(std::io::stdin().lock(), "<stdin>");
    }
    for input in inputs {
        let ok = match input {
            Input::Command(text) => run_command(&mut session, &text)?,
            Input::File(path) if path.as_os_str() == "-" => {
                session.run_script(std::io::stdin().lock(), "<stdin>")?
            }
            Input::File(path) => {
                let file = std::fs::File::open(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                session.run_script(std::io::BufReader::new(file), &path.display().to_string())?
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// One `-c`: a meta-command, or statements run one by one (as psql does
/// with several `-c`), each printed as it completes.
fn run_command(session: &mut Session, text: &str) -> Result<bool, String> {
    let text = text.trim();
    if text.starts_with('\\') {
        return Ok(session.meta(text).1);
    }
    for item in script::split(text)? {
        if !session.run_item(item, None).1 {
            return Ok(false);
        }
    }
    Ok(true)
}
