//! Results longer or wider than the terminal go through a pager, as in
//! psql: `KALAM_PAGER`, else `PAGER`, else `less -SFX` (chopped long lines,
//! quits at once when the text fits after all). An empty setting turns it
//! off; a pager that cannot start (or is not installed) means the text is
//! printed as it is.

use std::io::{IsTerminal, Write};
use std::process::{Command, Stdio};

/// The terminal's (columns, rows), when standard output is one.
pub fn terminal() -> Option<(usize, usize)> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let (terminal_size::Width(cols), terminal_size::Height(rows)) =
        terminal_size::terminal_size_of(std::io::stdout())?;
    (cols > 0 && rows > 0).then_some((usize::from(cols), usize::from(rows)))
}

/// Whether `text` would not fit a terminal of this size.
pub fn too_big(text: &str, (cols, rows): (usize, usize)) -> bool {
    let mut lines = 0;
    for line in text.lines() {
        lines += 1;
        if lines >= rows || line.chars().count() > cols {
            return true;
        }
    }
    false
}

fn command() -> Option<String> {
    let setting = std::env::var("KALAM_PAGER")
        .or_else(|_| std::env::var("PAGER"))
        .unwrap_or_else(|_| "less -SFX".into());
    let setting = setting.trim().to_string();
    (!setting.is_empty()).then_some(setting)
}

/// Shows `text` through the pager; false if there is none to use (the
/// caller prints it).
pub fn page(text: &str) -> bool {
    let Some(command) = command() else {
        return false;
    };
    let Ok(mut child) = Command::new("sh")
        .arg("-c")
        .arg(&command)
        .stdin(Stdio::piped())
        .spawn()
    else {
        return false;
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A pager quit early (q in less) closes the pipe: not an error.
        let _ = stdin.write_all(text.as_bytes());
    }
    // 127: the shell found no such command (no `less` installed, say);
    // the caller prints the text instead.
    !matches!(child.wait().map(|s| s.code()), Ok(Some(127)))
}

#[cfg(test)]
mod tests {
    use super::too_big;

    #[test]
    fn a_missing_pager_leaves_the_printing_to_the_caller() {
        // Only this test sets the variable, and only `command()` reads it.
        std::env::set_var("KALAM_PAGER", "no-such-pager-command-here");
        assert!(!super::page("text\n"));
        std::env::set_var("KALAM_PAGER", "cat > /dev/null");
        assert!(super::page("text\n"));
        std::env::remove_var("KALAM_PAGER");
    }

    #[test]
    fn text_that_does_not_fit() {
        assert!(!too_big("a\nb\n", (80, 24)));
        assert!(too_big(&"row\n".repeat(24), (80, 24)));
        assert!(too_big(&"x".repeat(81), (80, 24)));
    }
}
