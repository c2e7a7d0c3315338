//! Cutting input into statements and meta-commands, a line at a time, as
//! psql does: a statement ends at a `;` outside strings, quoted names and
//! comments, and may span lines; a line starting with `\` while no
//! statement is open is a meta-command. The shell, `-c`, `-f` (files and
//! standard input) and `\i` all read through this, so each statement runs
//! and prints before the next is read.

/// The longest statement kept while reading (the server's own limit is
/// lower by default): a runaway quote in a large file fails with this
/// rather than taking the machine's memory.
pub const MAX_STATEMENT_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// One statement, without its `;`, and the line it started on.
    Sql { text: String, line: usize },
    /// A meta-command line, e.g. `\x` or `\copy t TO 'f.csv'`.
    Meta { text: String, line: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lex {
    Code,
    Quoted(char),
    BlockComment(usize),
}

#[derive(Debug)]
pub struct Splitter {
    buffer: String,
    lex: Lex,
    /// Lines read so far, and the line the open statement started on.
    lines: usize,
    start: usize,
}

impl Default for Splitter {
    fn default() -> Self {
        Self {
            buffer: String::new(),
            lex: Lex::Code,
            lines: 0,
            start: 1,
        }
    }
}

/// Whether `text` holds anything but blanks and comments.
fn has_code(text: &str) -> bool {
    let mut chars = text.chars().peekable();
    let mut depth = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '-' if depth == 0 && chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                depth += 1;
            }
            '*' if depth > 0 && chars.peek() == Some(&'/') => {
                chars.next();
                depth -= 1;
            }
            c if depth == 0 && !c.is_whitespace() => return true,
            _ => {}
        }
    }
    false
}

impl Splitter {
    /// Whether no statement is open (the shell's prompt says which).
    pub fn is_empty(&self) -> bool {
        !has_code(&self.buffer)
    }

    /// Drops a half-typed statement (Ctrl-C at the prompt).
    pub fn clear(&mut self) {
        self.buffer.clear();
        self.lex = Lex::Code;
    }

    /// Feeds one line (without its newline); returns what it completed.
    pub fn push_line(&mut self, line: &str) -> Result<Vec<Item>, String> {
        self.lines += 1;
        if self.is_empty() && self.lex == Lex::Code && line.trim_start().starts_with('\\') {
            self.buffer.clear();
            return Ok(vec![Item::Meta {
                text: line.trim().to_string(),
                line: self.lines,
            }]);
        }
        if self.is_empty() {
            self.start = self.lines;
        }
        if self.buffer.len() + line.len() > MAX_STATEMENT_BYTES {
            self.clear();
            return Err(format!(
                "line {}: a statement longer than {} MiB (an unclosed quote?)",
                self.lines,
                MAX_STATEMENT_BYTES >> 20
            ));
        }
        let mut items = Vec::new();
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match self.lex {
                Lex::Quoted(q) => {
                    if c == q {
                        self.lex = Lex::Code;
                    }
                    self.buffer.push(c);
                }
                Lex::BlockComment(depth) => {
                    self.buffer.push(c);
                    if c == '*' && chars.peek() == Some(&'/') {
                        self.buffer.push(chars.next().unwrap_or('/'));
                        self.lex = if depth > 1 {
                            Lex::BlockComment(depth - 1)
                        } else {
                            Lex::Code
                        };
                    } else if c == '/' && chars.peek() == Some(&'*') {
                        self.buffer.push(chars.next().unwrap_or('*'));
                        self.lex = Lex::BlockComment(depth + 1);
                    }
                }
                Lex::Code => match c {
                    '\'' | '"' => {
                        self.lex = Lex::Quoted(c);
                        self.buffer.push(c);
                    }
                    '-' if chars.peek() == Some(&'-') => {
                        // The rest of the line is a comment.
                        self.buffer.push(c);
                        self.buffer.extend(chars.by_ref());
                    }
                    '/' if chars.peek() == Some(&'*') => {
                        self.buffer.push(c);
                        self.buffer.push(chars.next().unwrap_or('*'));
                        self.lex = Lex::BlockComment(1);
                    }
                    ';' => {
                        let text = std::mem::take(&mut self.buffer);
                        if has_code(&text) {
                            items.push(Item::Sql {
                                text: text.trim().to_string(),
                                line: self.start,
                            });
                        }
                        self.start = self.lines;
                    }
                    c => self.buffer.push(c),
                },
            }
        }
        self.buffer.push('\n');
        Ok(items)
    }

    /// The statement left open at the end of the input (psql runs it too).
    pub fn finish(&mut self) -> Option<Item> {
        let text = std::mem::take(&mut self.buffer);
        self.lex = Lex::Code;
        has_code(&text).then(|| Item::Sql {
            text: text.trim().to_string(),
            line: self.start,
        })
    }
}

/// Every item of a whole text, the unterminated last statement included.
pub fn split(text: &str) -> Result<Vec<Item>, String> {
    let mut splitter = Splitter::default();
    let mut items = Vec::new();
    for line in text.lines() {
        items.extend(splitter.push_line(line)?);
    }
    items.extend(splitter.finish());
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(items: &[Item]) -> Vec<&str> {
        items
            .iter()
            .map(|i| match i {
                Item::Sql { text, .. } | Item::Meta { text, .. } => text.as_str(),
            })
            .collect()
    }

    #[test]
    fn statements_end_at_a_real_semicolon() {
        let items = split("SELECT ';'; SELECT 2;\nSELECT \"a;b\"\nFROM t; -- done;\n").unwrap();
        assert_eq!(
            sql(&items),
            ["SELECT ';'", "SELECT 2", "SELECT \"a;b\"\nFROM t"]
        );
        assert_eq!(split("SELECT 1 -- no end;").unwrap().len(), 1);
        let items = split("/* a; /* nested; */ still; */ SELECT 1;").unwrap();
        assert_eq!(sql(&items), ["/* a; /* nested; */ still; */ SELECT 1"]);
        assert!(split("-- only a comment;\n  \n").unwrap().is_empty());
    }

    #[test]
    fn meta_commands_only_between_statements() {
        let items = split("\\x\nSELECT 1,\n\\x\n;\n  \\i other.sql\n").unwrap();
        assert_eq!(sql(&items), ["\\x", "SELECT 1,\n\\x", "\\i other.sql"]);
        match &items[1] {
            Item::Sql { line, .. } => assert_eq!(*line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_runaway_statement_stops_at_the_bound() {
        let mut s = Splitter::default();
        let line = "x".repeat(1 << 20);
        s.push_line("SELECT '").unwrap();
        let mut failed = None;
        for n in 0..(MAX_STATEMENT_BYTES >> 20) + 2 {
            if let Err(e) = s.push_line(&line) {
                failed = Some((n, e));
                break;
            }
        }
        let (n, e) = failed.expect("the bound refuses the statement");
        assert!(n >= (MAX_STATEMENT_BYTES >> 20) - 1, "{n}");
        assert!(e.contains("unclosed quote"), "{e}");
        // The splitter is usable again afterwards.
        assert!(s.is_empty());
        assert_eq!(s.push_line("SELECT 1;").unwrap().len(), 1);
    }

    #[test]
    fn open_statements_and_strings_are_tracked_across_lines() {
        let mut s = Splitter::default();
        assert!(s.push_line("INSERT INTO t VALUES ('a").unwrap().is_empty());
        assert!(!s.is_empty());
        assert!(s.push_line("b;c');").unwrap().len() == 1);
        assert!(s.is_empty());
        s.push_line("SELECT").unwrap();
        s.clear();
        assert!(s.is_empty());
        assert_eq!(s.finish(), None);
    }
}
