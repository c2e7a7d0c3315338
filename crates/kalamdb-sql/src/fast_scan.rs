//! Reads a batch made only of literal INSERTs straight from its text,
//! without building tokens: one pass over the bytes, no allocation per
//! value.
//!
//! It accepts a strict subset of what the tokenizer accepts: ASCII
//! identifiers, plain `'...'` strings (with `''`), decimal numbers, `$n`,
//! NULL/TRUE/FALSE, spaces, tabs and newlines. On anything else (a comment,
//! a backslash in a string, a function call, another statement) the whole
//! batch goes to the tokenizer, so this reader never has to decide a
//! question of SQL syntax the full parser might answer differently. A
//! property test checks it against the token reader.

use crate::fast_insert::{read_insert, FastInsert, InsertSource, Slot, Span};
use std::sync::Arc;

/// Every statement of `sql`, if all are literal INSERTs; `None` otherwise.
pub fn scan_batch(sql: &str) -> Option<Vec<FastInsert>> {
    // Spans are u32 offsets; the body limit keeps requests far below this.
    if u32::try_from(sql.len()).is_err() {
        return None;
    }
    let mut scanner = Scanner {
        bytes: sql.as_bytes(),
        pos: 0,
    };
    let mut parts = Vec::new();
    loop {
        // Empty statements (`;;`) are dropped, as the tokenizer path does.
        scanner.skip_blank();
        while scanner.eat(b';') {
            scanner.skip_blank();
        }
        if scanner.at_end() {
            break;
        }
        parts.push(read_insert(&mut scanner)?);
        scanner.skip_blank();
        if !scanner.at_end() && !scanner.eat(b';') {
            return None;
        }
    }
    if parts.is_empty() {
        return None;
    }
    let text: Arc<str> = Arc::from(sql);
    Some(
        parts
            .into_iter()
            .map(|parts| parts.into_insert(text.clone()))
            .collect(),
    )
}

struct Scanner<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_word_part(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Bytes that may continue an identifier for the tokenizer but not for this
/// reader (`@`, `$`, `#`, any non-ASCII letter): seeing one means "decline".
fn is_foreign_word_part(b: u8) -> bool {
    matches!(b, b'@' | b'$' | b'#') || !b.is_ascii()
}

impl Scanner<'_> {
    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_blank(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn span(&self, start: usize) -> Span {
        // scan_batch checked that every offset fits.
        Span {
            start: start as u32,
            end: self.pos as u32,
        }
    }

    /// An unquoted word, as written.
    fn word(&mut self) -> Option<&str> {
        self.skip_blank();
        let start = self.pos;
        if !is_word_start(self.peek()?) {
            return None;
        }
        while self.peek().is_some_and(is_word_part) {
            self.pos += 1;
        }
        if self.peek().is_some_and(is_foreign_word_part) {
            return None;
        }
        std::str::from_utf8(&self.bytes[start..self.pos]).ok()
    }

    fn string(&mut self) -> Option<Slot> {
        self.pos += 1;
        let start = self.pos;
        let mut doubled = false;
        loop {
            // String bodies are most of a bulk INSERT's bytes: jump to the
            // next byte that matters.
            self.pos += memchr::memchr2(b'\'', b'\\', &self.bytes[self.pos..])?;
            match self.bytes[self.pos] {
                b'\'' if self.bytes.get(self.pos + 1) == Some(&b'\'') => {
                    doubled = true;
                    self.pos += 2;
                }
                b'\'' => break,
                // Escapes are a dialect question; the tokenizer decides.
                _ => return None,
            }
        }
        let span = self.span(start);
        self.pos += 1;
        Some(if doubled {
            Slot::QuotedStr(span)
        } else {
            Slot::Str(span)
        })
    }

    fn digits(&mut self) -> usize {
        let start = self.pos;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// `-?digits(.digits)?([eE][+-]?digits)?`, ending where a value ends.
    fn number(&mut self) -> Option<Span> {
        let start = self.pos;
        self.eat(b'-');
        if self.digits() == 0 {
            return None;
        }
        if self.eat(b'.') && self.digits() == 0 {
            return None;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return None;
            }
        }
        self.value_ends().then(|| self.span(start))
    }

    fn placeholder(&mut self) -> Option<Slot> {
        let start = self.pos;
        self.pos += 1;
        if self.digits() == 0 || !self.value_ends() {
            return None;
        }
        Some(Slot::Placeholder(self.span(start)))
    }

    /// Whether the next byte may follow a value (a number glued to a letter,
    /// a `.` or an operator is the tokenizer's business).
    fn value_ends(&self) -> bool {
        matches!(
            self.peek(),
            Some(b' ' | b'\t' | b'\n' | b'\r' | b',' | b')')
        )
    }
}

impl InsertSource for Scanner<'_> {
    fn keyword(&mut self, keyword: &str) -> Option<()> {
        self.word()?.eq_ignore_ascii_case(keyword).then_some(())
    }

    /// A name: unquoted folds to lower case, `"quoted"` is kept as is.
    fn name(&mut self) -> Option<String> {
        self.skip_blank();
        if self.eat(b'"') {
            let start = self.pos;
            while self.peek()? != b'"' {
                self.pos += 1;
            }
            let name = std::str::from_utf8(&self.bytes[start..self.pos]).ok()?;
            self.pos += 1;
            // `""` inside or an empty name: leave those to the tokenizer.
            if name.is_empty() || self.peek() == Some(b'"') {
                return None;
            }
            return Some(name.to_string());
        }
        Some(self.word()?.to_ascii_lowercase())
    }

    /// After blanks, the byte `p`.
    fn punct(&mut self, p: u8) -> bool {
        self.skip_blank();
        self.eat(p)
    }

    fn literal(&mut self) -> Option<Slot> {
        self.skip_blank();
        match self.peek()? {
            b'\'' => self.string(),
            b'0'..=b'9' | b'-' => self.number().map(Slot::Number),
            b'$' => self.placeholder(),
            _ => match self.word()?.to_ascii_uppercase().as_str() {
                "NULL" => Some(Slot::Null),
                "TRUE" => Some(Slot::Bool(true)),
                "FALSE" => Some(Slot::Bool(false)),
                _ => None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fast_insert::Literal;

    fn values(insert: &FastInsert) -> Vec<Vec<Literal<'_>>> {
        insert.rows().map(|r| r.literals().collect()).collect()
    }

    #[test]
    fn reads_a_batch_of_inserts() {
        let batch = scan_batch(
            " insert into App.T (A, \"B\") values (1, 'x'),(-2.5e+3 , NULL)\n;; \
             INSERT INTO t VALUES ($1, true, 'it''s', '');",
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].table.namespace.as_deref(), Some("app"));
        assert_eq!(batch[0].columns, vec!["a", "B"]);
        assert_eq!(
            values(&batch[0]),
            vec![
                vec![Literal::Number("1"), Literal::Str("x".into())],
                vec![Literal::Number("-2.5e+3"), Literal::Null],
            ]
        );
        assert_eq!(
            values(&batch[1]),
            vec![vec![
                Literal::Placeholder("$1"),
                Literal::Bool(true),
                Literal::Str("it's".into()),
                Literal::Str("".into()),
            ]]
        );
    }

    #[test]
    fn declines_what_it_does_not_know() {
        for sql in [
            "",
            " ; ",
            "SELECT 1",
            "INSERT INTO t VALUES (1); SELECT 1",
            "INSERT INTO t VALUES (1) -- comment",
            "INSERT INTO t VALUES ('a\\'')",
            "INSERT INTO t VALUES (1.)",
            "INSERT INTO t VALUES (1L)",
            "INSERT INTO t VALUES (0x1f)",
            "INSERT INTO t VALUES (- 1)",
            "INSERT INTO t VALUES (1e)",
            "INSERT INTO t VALUES (E'x')",
            "INSERT INTO t VALUES ('unterminated)",
            "INSERT INTO t@x VALUES (1)",
            "INSERT INTO \"a\"\"b\" VALUES (1)",
            "INSERT INTO t VALUES (1) INSERT INTO t VALUES (2)",
            "INSERT INTO t VALUES (nullx)",
            "INSERT INTO t VALUES ($x)",
            "INSERT INTO tä VALUES (1)",
        ] {
            assert!(scan_batch(sql).is_none(), "{sql}");
        }
    }
}
