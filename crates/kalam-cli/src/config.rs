//! Saved logins and history, in a per-user directory: `$KALAM_CONFIG_DIR`,
//! else `$XDG_CONFIG_HOME/kalam`, else `~/.config/kalam`. The credentials
//! file holds tokens only (never a password) and is readable by its owner
//! only (0600).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedLogin {
    pub user: String,
    pub access_token: String,
    pub refresh_token: String,
}

pub fn dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("KALAM_CONFIG_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Some(PathBuf::from(dir).join("kalam"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config").join("kalam"))
}

fn credentials_path() -> Option<PathBuf> {
    dir().map(|d| d.join("credentials.json"))
}

pub fn history_path() -> Option<PathBuf> {
    dir().map(|d| d.join("history"))
}

fn load_all() -> BTreeMap<String, SavedLogin> {
    credentials_path()
        .and_then(|p| std::fs::read(p).ok())
        .and_then(|raw| serde_json::from_slice(&raw).ok())
        .unwrap_or_default()
}

/// The saved login for a server URL.
pub fn load(url: &str) -> Option<SavedLogin> {
    load_all().remove(url)
}

/// Saves (or with `None`, forgets) the login for a server URL.
pub fn store(url: &str, login: Option<SavedLogin>) -> Result<PathBuf, String> {
    let path = credentials_path().ok_or("no home directory: set KALAM_CONFIG_DIR")?;
    let mut all = load_all();
    match login {
        Some(login) => all.insert(url.to_string(), login),
        None => all.remove(url),
    };
    let dir = path.parent().expect("a file in a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let text = serde_json::to_string_pretty(&all).expect("serializes");
    write_private(&path, &text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
