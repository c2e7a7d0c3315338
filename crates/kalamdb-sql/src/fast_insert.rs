//! A fast path for the most common write: `INSERT INTO t [(cols)] VALUES
//! (...), (...)` where every value is a literal or a `$n` parameter.
//!
//! `sqlparser` handles these correctly but slowly: it builds a token per
//! value and tries to read every literal as a typed string first, which
//! dominates bulk inserts. A [`FastInsert`] instead keeps the statement text
//! and, per value, only where its literal is in that text; the executor
//! reads each literal straight from there. Two readers build one with the
//! same grammar ([`read_insert`]): [`crate::fast_scan`] from the raw text
//! (the bulk-load path) and [`read`] from tokens (an INSERT inside a batch
//! the scanner declined). Anything
//! neither recognises falls back to `sqlparser`, so they only have to be
//! right, never complete.

use crate::parse::normalize_word;
use crate::split::is_blank;
use crate::statement::TableRef;
use sqlparser::tokenizer::{Token, TokenWithSpan};
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

/// One literal value of a fast-path INSERT, borrowed from its text.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal<'a> {
    Null,
    Bool(bool),
    /// Numeric text as written (a leading `-` included).
    Number(&'a str),
    /// The string's value (quotes removed, `''` read as `'`).
    Str(Cow<'a, str>),
    /// `$n`
    Placeholder(&'a str),
}

/// Byte range of a literal in [`FastInsert::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: u32,
    pub end: u32,
}

/// How a literal is stored: small, fixed size, no allocation per value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Null,
    Bool(bool),
    Number(Span),
    /// A string body with no `''` in it.
    Str(Span),
    /// A string body that still has its `''` doubled.
    QuotedStr(Span),
    Placeholder(Span),
}

/// `INSERT INTO t [(cols)] VALUES (...), ...` with literal values only.
#[derive(Clone)]
pub struct FastInsert {
    pub table: TableRef,
    /// Empty: every column, in table order.
    pub columns: Vec<String>,
    /// The text the slots point into: the request's SQL, shared by all the
    /// statements read from it, or a buffer the token reader filled.
    text: Arc<str>,
    slots: Vec<Slot>,
    /// Where each row's slots end in `slots`.
    row_ends: Vec<u32>,
}

/// One row of values of a [`FastInsert`].
#[derive(Clone, Copy)]
pub struct Row<'a> {
    text: &'a str,
    slots: &'a [Slot],
}

impl<'a> Row<'a> {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn literals(self) -> impl ExactSizeIterator<Item = Literal<'a>> {
        let text = self.text;
        self.slots.iter().map(move |slot| literal(text, *slot))
    }
}

fn literal(text: &str, slot: Slot) -> Literal<'_> {
    #[expect(
        clippy::string_slice,
        reason = "spans are cut by the scanner at ASCII delimiters, so on character boundaries"
    )]
    let at = |span: Span| &text[span.start as usize..span.end as usize];
    match slot {
        Slot::Null => Literal::Null,
        Slot::Bool(b) => Literal::Bool(b),
        Slot::Number(span) => Literal::Number(at(span)),
        Slot::Str(span) => Literal::Str(Cow::Borrowed(at(span))),
        Slot::QuotedStr(span) => Literal::Str(Cow::Owned(at(span).replace("''", "'"))),
        Slot::Placeholder(span) => Literal::Placeholder(at(span)),
    }
}

impl FastInsert {
    pub(crate) fn new(
        table: TableRef,
        columns: Vec<String>,
        slots: Vec<Slot>,
        row_ends: Vec<u32>,
        text: Arc<str>,
    ) -> Self {
        Self {
            table,
            columns,
            text,
            slots,
            row_ends,
        }
    }

    pub fn row_count(&self) -> usize {
        self.row_ends.len()
    }

    pub fn rows(&self) -> impl ExactSizeIterator<Item = Row<'_>> + '_ {
        self.row_ends.iter().enumerate().map(|(i, &end)| {
            let start = if i == 0 { 0 } else { self.row_ends[i - 1] };
            Row {
                text: &self.text,
                slots: &self.slots[start as usize..end as usize],
            }
        })
    }
}

impl PartialEq for FastInsert {
    /// Equal when they insert the same values, wherever the text came from.
    fn eq(&self, other: &Self) -> bool {
        self.table == other.table
            && self.columns == other.columns
            && self.row_count() == other.row_count()
            && self
                .rows()
                .zip(other.rows())
                .all(|(a, b)| a.literals().eq(b.literals()))
    }
}

impl fmt::Debug for FastInsert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastInsert")
            .field("table", &self.table)
            .field("columns", &self.columns)
            .field(
                "rows",
                &self
                    .rows()
                    .map(|r| r.literals().collect::<Vec<_>>())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// What the INSERT grammar needs from a reader: the token reader and the
/// text scanner each provide it, and [`read_insert`] holds the grammar once.
pub(crate) trait InsertSource {
    /// The unquoted keyword `word` (any case).
    fn keyword(&mut self, word: &str) -> Option<()>;
    /// A name, folded as SQL folds it.
    fn name(&mut self) -> Option<String>;
    /// Consumes the punctuation `p` (one of `.` `(` `)` `,`) if it is next.
    fn punct(&mut self, p: u8) -> bool;
    fn literal(&mut self) -> Option<Slot>;
}

/// An INSERT read, before its text is attached.
pub(crate) struct InsertParts {
    pub table: TableRef,
    pub columns: Vec<String>,
    pub slots: Vec<Slot>,
    pub row_ends: Vec<u32>,
}

impl InsertParts {
    pub fn into_insert(self, text: Arc<str>) -> FastInsert {
        FastInsert::new(self.table, self.columns, self.slots, self.row_ends, text)
    }
}

/// `INSERT INTO name[.name] [(names)] VALUES (literals), ...`; what follows
/// is the caller's business.
pub(crate) fn read_insert(r: &mut impl InsertSource) -> Option<InsertParts> {
    r.keyword("INSERT")?;
    r.keyword("INTO")?;
    let first = r.name()?;
    let table = if r.punct(b'.') {
        TableRef {
            namespace: Some(first),
            table: r.name()?,
        }
    } else {
        TableRef {
            namespace: None,
            table: first,
        }
    };
    let mut columns = Vec::new();
    if r.punct(b'(') {
        loop {
            columns.push(r.name()?);
            if r.punct(b')') {
                break;
            }
            if !r.punct(b',') {
                return None;
            }
        }
    }
    r.keyword("VALUES")?;
    let mut slots = Vec::new();
    let mut row_ends = Vec::new();
    loop {
        if !r.punct(b'(') {
            return None;
        }
        loop {
            slots.push(r.literal()?);
            if r.punct(b')') {
                break;
            }
            if !r.punct(b',') {
                return None;
            }
        }
        row_ends.push(u32::try_from(slots.len()).ok()?);
        if !r.punct(b',') {
            break;
        }
    }
    Some(InsertParts {
        table,
        columns,
        slots,
        row_ends,
    })
}

/// Reads the statement's tokens if it has the simple shape; `None` means
/// "use the full parser".
pub fn read(tokens: &[TokenWithSpan]) -> Option<FastInsert> {
    let mut r = Reader {
        tokens: tokens
            .iter()
            .map(|t| &t.token)
            .filter(|t| !is_blank(t))
            .collect(),
        pos: 0,
        text: String::new(),
    };
    let parts = read_insert(&mut r)?;
    if r.pos != r.tokens.len() {
        return None;
    }
    Some(parts.into_insert(Arc::from(std::mem::take(&mut r.text))))
}

struct Reader<'a> {
    tokens: Vec<&'a Token>,
    pos: usize,
    /// The literals' text, for the slots to point into.
    text: String,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.pos).copied();
        self.pos += 1;
        token
    }

    /// Appends literal text to the buffer and returns where it is.
    fn push(&mut self, parts: &[&str]) -> Option<Span> {
        let start = u32::try_from(self.text.len()).ok()?;
        for part in parts {
            self.text.push_str(part);
        }
        let end = u32::try_from(self.text.len()).ok()?;
        Some(Span { start, end })
    }
}

impl InsertSource for Reader<'_> {
    fn keyword(&mut self, word: &str) -> Option<()> {
        match self.next()? {
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word) => {
                Some(())
            }
            _ => None,
        }
    }

    fn name(&mut self) -> Option<String> {
        match self.next()? {
            Token::Word(w) => Some(normalize_word(w)),
            _ => None,
        }
    }

    fn punct(&mut self, p: u8) -> bool {
        let expected = match p {
            b'.' => Token::Period,
            b'(' => Token::LParen,
            b')' => Token::RParen,
            b',' => Token::Comma,
            _ => return false,
        };
        if self.tokens.get(self.pos).copied() == Some(&expected) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self) -> Option<Slot> {
        let token = self.next()?.clone();
        Some(match token {
            Token::Number(n, _) => Slot::Number(self.push(&[&n])?),
            // The tokenizer already turned `''` into `'`.
            Token::SingleQuotedString(s) => Slot::Str(self.push(&[&s])?),
            Token::Placeholder(p) => Slot::Placeholder(self.push(&[&p])?),
            Token::Minus => match self.next()?.clone() {
                Token::Number(n, _) => Slot::Number(self.push(&["-", &n])?),
                _ => return None,
            },
            Token::Word(w) if w.quote_style.is_none() => {
                match w.value.to_ascii_uppercase().as_str() {
                    "NULL" => Slot::Null,
                    "TRUE" => Slot::Bool(true),
                    "FALSE" => Slot::Bool(false),
                    _ => return None,
                }
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::split_statements;

    fn fast(sql: &str) -> Option<FastInsert> {
        read(&split_statements(sql).unwrap().pop().unwrap())
    }

    fn values(insert: &FastInsert) -> Vec<Vec<Literal<'_>>> {
        insert.rows().map(|r| r.literals().collect()).collect()
    }

    #[test]
    fn reads_simple_inserts() {
        let insert =
            fast("insert into App.T (A, \"B\") values (1, 'x'), (-2.5, NULL), ($1, true)").unwrap();
        assert_eq!(insert.table.namespace.as_deref(), Some("app"));
        assert_eq!(insert.table.table, "t");
        assert_eq!(insert.columns, vec!["a", "B"]);
        assert_eq!(
            values(&insert),
            vec![
                vec![Literal::Number("1"), Literal::Str("x".into())],
                vec![Literal::Number("-2.5"), Literal::Null],
                vec![Literal::Placeholder("$1"), Literal::Bool(true)],
            ]
        );
        let quoted = fast("INSERT INTO t VALUES ('it''s')").unwrap();
        assert_eq!(values(&quoted), vec![vec![Literal::Str("it's".into())]]);
    }

    #[test]
    fn rows_keep_their_own_lengths() {
        let insert = fast("INSERT INTO t VALUES (1, 2), (3), (4, 5, 6)").unwrap();
        let lengths: Vec<usize> = insert.rows().map(|r| r.len()).collect();
        assert_eq!(lengths, vec![2, 1, 3]);
    }

    #[test]
    fn leaves_everything_else_to_the_full_parser() {
        for sql in [
            "INSERT INTO t VALUES (1 + 1)",
            "INSERT INTO t VALUES (NOW())",
            "INSERT INTO t SELECT 1",
            "INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING",
            "INSERT INTO t VALUES (1),",
            "INSERT INTO t (a VALUES (1)",
            "INSERT INTO a.b.c VALUES (1)",
            "INSERT INTO t VALUES (- 'x')",
            "INSERT INTO t VALUES (DEFAULT)",
        ] {
            assert!(fast(sql).is_none(), "{sql}");
        }
    }
}
