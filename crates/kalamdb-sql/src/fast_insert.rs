//! A fast path for the most common write: `INSERT INTO t [(cols)] VALUES
//! (...), (...)` where every value is a literal or a `$n` parameter.
//!
//! `sqlparser` handles these correctly but slowly (it tries to read every
//! literal as a typed string first, building an error each time), which
//! dominates bulk inserts. Anything this reader does not recognise falls
//! back to `sqlparser`, so it only has to be right, never complete.

use crate::parse::normalize_word;
use crate::split::is_blank;
use crate::statement::{FastInsert, Literal, TableRef};
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Reads the statement if it has the simple shape; `None` means "use the
/// full parser".
pub fn read(tokens: &[TokenWithSpan]) -> Option<FastInsert> {
    let mut r = Reader {
        tokens: tokens
            .iter()
            .map(|t| &t.token)
            .filter(|t| !is_blank(t))
            .collect(),
        pos: 0,
    };
    r.keyword("INSERT")?;
    r.keyword("INTO")?;
    let first = r.name()?;
    let table = if r.eat(&Token::Period) {
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
    if r.eat(&Token::LParen) {
        loop {
            columns.push(r.name()?);
            if r.eat(&Token::RParen) {
                break;
            }
            r.expect(&Token::Comma)?;
        }
    }
    r.keyword("VALUES")?;
    let mut rows = Vec::new();
    loop {
        r.expect(&Token::LParen)?;
        let mut row = Vec::with_capacity(columns.len().max(1));
        loop {
            row.push(r.literal()?);
            if r.eat(&Token::RParen) {
                break;
            }
            r.expect(&Token::Comma)?;
        }
        rows.push(row);
        if !r.eat(&Token::Comma) {
            break;
        }
    }
    (r.pos == r.tokens.len()).then_some(FastInsert {
        table,
        columns,
        rows,
    })
}

struct Reader<'a> {
    tokens: Vec<&'a Token>,
    pos: usize,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.pos).copied();
        self.pos += 1;
        token
    }

    fn eat(&mut self, expected: &Token) -> bool {
        if self.tokens.get(self.pos).copied() == Some(expected) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, expected: &Token) -> Option<()> {
        self.eat(expected).then_some(())
    }

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

    fn literal(&mut self) -> Option<Literal> {
        Some(match self.next()? {
            Token::Number(n, _) => Literal::Number(n.clone()),
            Token::SingleQuotedString(s) => Literal::Str(s.clone()),
            Token::Placeholder(p) => Literal::Placeholder(p.clone()),
            Token::Minus => match self.next()? {
                Token::Number(n, _) => Literal::Number(format!("-{n}")),
                _ => return None,
            },
            Token::Word(w) if w.quote_style.is_none() => {
                match w.value.to_ascii_uppercase().as_str() {
                    "NULL" => Literal::Null,
                    "TRUE" => Literal::Bool(true),
                    "FALSE" => Literal::Bool(false),
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

    #[test]
    fn reads_simple_inserts() {
        let insert =
            fast("insert into App.T (A, \"B\") values (1, 'x'), (-2.5, NULL), ($1, true)").unwrap();
        assert_eq!(insert.table.namespace.as_deref(), Some("app"));
        assert_eq!(insert.table.table, "t");
        assert_eq!(insert.columns, vec!["a", "B"]);
        assert_eq!(
            insert.rows,
            vec![
                vec![Literal::Number("1".into()), Literal::Str("x".into())],
                vec![Literal::Number("-2.5".into()), Literal::Null],
                vec![Literal::Placeholder("$1".into()), Literal::Bool(true)],
            ]
        );
        assert!(fast("INSERT INTO t VALUES ('it''s')").is_some());
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
