//! `kalam`: the KalamDB command-line client. It talks to a server only over
//! its public HTTP API: an interactive shell, `-c`/`-f` for scripts, and
//! `kalam login` to keep a token instead of a password.

mod client;
mod complete;
mod config;
mod format;
mod live;
mod session;
mod shell;

use clap::{Parser, Subcommand};
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
    /// Run these SQL statements (or one meta-command) and exit.
    #[arg(short, long = "command")]
    command: Option<String>,
    /// Run the SQL in this file and exit.
    #[arg(short, long)]
    file: Option<PathBuf>,
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
    let cli = Cli::parse();
    let result = match cli.action {
        Some(Action::Login) => login(&cli),
        Some(Action::Logout) => logout(&cli),
        None => run(&cli),
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

/// Connects as the flags or the saved login say; refreshes an expired
/// saved token once.
fn connect(cli: &Cli) -> Result<Client, String> {
    let url = cli.url.trim_end_matches('/').to_string();
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
        return Ok(Client::new(&url, Some(auth)));
    }
    let Some(saved) = config::load(&url) else {
        return Ok(Client::new(
            &url,
            Some(Auth::Basic {
                user: "root".into(),
                password: String::new(),
            }),
        ));
    };
    let mut client = Client::new(&url, Some(Auth::Bearer(saved.access_token.clone())));
    match client.me() {
        Ok(_) => Ok(client),
        Err(e) if session::is_auth_error(&e) => {
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
            Ok(client)
        }
        // Connection problems are reported by the first statement.
        Err(_) => Ok(client),
    }
}

fn run(cli: &Cli) -> Result<bool, String> {
    let client = connect(cli)?;
    let mut session = Session {
        client,
        format: cli.format,
        namespace: cli.namespace.clone(),
        timing: cli.command.is_none() && cli.file.is_none(),
        interactive: std::io::stderr().is_terminal(),
    };
    let mut out = std::io::stdout();
    if let Some(command) = &cli.command {
        let command = command.trim();
        if command.starts_with('\\') {
            return Ok(session.meta(command, &mut out).1);
        }
        return Ok(session.run_sql(command, &mut out));
    }
    if let Some(file) = &cli.file {
        let sql = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        return Ok(session.run_sql(&sql, &mut out));
    }
    shell::run(&mut session)
}
