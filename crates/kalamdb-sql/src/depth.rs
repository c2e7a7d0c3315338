//! A bound on how deep a statement's expression trees can be, checked on
//! its tokens before it is parsed.
//!
//! The parser's recursion limit bounds nesting (parentheses, function calls),
//! but a flat chain such as `1+1+...+1` or `a = 0 OR a = 1 OR ...` is parsed
//! in a loop into a left-deep tree thousands of levels deep, and everything
//! after the parser (dropping the tree, planning, optimizing, evaluating)
//! walks it recursively. So the depth is estimated from the tokens, where
//! counting is a loop: within each parenthesis level, the operators since
//! the last comma or clause keyword form a chain, and a token's depth is at
//! most the sum of the chains of the levels that enclose it plus the levels
//! themselves. This over-estimates (it assumes every operator nests), which
//! is the safe side.

use crate::error::err;
use crate::ParseError;
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// The deepest expression a statement may hold.
pub const MAX_EXPRESSION_DEPTH: usize = 512;

/// Refuses a statement whose expressions could nest deeper than
/// [`MAX_EXPRESSION_DEPTH`].
pub fn check_expression_depth(tokens: &[TokenWithSpan]) -> Result<(), ParseError> {
    // Operators counted in each open parenthesis level.
    let mut chains: Vec<usize> = vec![0];
    let mut depth = 0usize;
    for token in tokens {
        match &token.token {
            Token::LParen | Token::LBracket | Token::LBrace => chains.push(0),
            Token::RParen | Token::RBracket | Token::RBrace => {
                let closed = chains.pop().unwrap_or(0);
                depth -= closed.min(depth);
                if chains.is_empty() {
                    chains.push(0);
                }
            }
            Token::Comma => resets(&mut chains, &mut depth),
            Token::Word(w) if w.quote_style.is_none() => match w.keyword {
                Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::NOT
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::IN
                | Keyword::BETWEEN
                | Keyword::COLLATE
                | Keyword::AT
                | Keyword::DIV
                | Keyword::OVERLAPS => counts(&mut chains, &mut depth),
                Keyword::SELECT
                | Keyword::FROM
                | Keyword::WHERE
                | Keyword::GROUP
                | Keyword::HAVING
                | Keyword::ORDER
                | Keyword::LIMIT
                | Keyword::OFFSET
                | Keyword::SET
                | Keyword::VALUES
                | Keyword::RETURNING
                | Keyword::JOIN
                | Keyword::ON
                | Keyword::UNION
                | Keyword::WHEN
                | Keyword::THEN
                | Keyword::ELSE => resets(&mut chains, &mut depth),
                _ => {}
            },
            Token::Word(_)
            | Token::Number(..)
            | Token::Char(_)
            | Token::SingleQuotedString(_)
            | Token::DoubleQuotedString(_)
            | Token::NationalStringLiteral(_)
            | Token::EscapedStringLiteral(_)
            | Token::HexStringLiteral(_)
            | Token::Placeholder(_)
            | Token::Whitespace(_)
            | Token::Period
            | Token::Colon
            | Token::SemiColon
            | Token::EOF => {}
            // Every other token is an operator of some kind.
            _ => counts(&mut chains, &mut depth),
        }
        if depth + chains.len() > MAX_EXPRESSION_DEPTH {
            return err(format!(
                "statement too complex: its expressions could nest more than \
                 {MAX_EXPRESSION_DEPTH} levels deep (a long chain of operators or deep \
                 nesting); split it, or use IN (...) for long lists of values"
            ));
        }
    }
    Ok(())
}

fn counts(chains: &mut [usize], depth: &mut usize) {
    if let Some(chain) = chains.last_mut() {
        *chain += 1;
        *depth += 1;
    }
}

fn resets(chains: &mut [usize], depth: &mut usize) {
    if let Some(chain) = chains.last_mut() {
        *depth -= (*chain).min(*depth);
        *chain = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::split::split_statements;

    fn check(sql: &str) -> Result<(), ParseError> {
        let tokens = split_statements(sql).unwrap().pop().unwrap();
        check_expression_depth(&tokens)
    }

    fn chain(op: &str, n: usize) -> String {
        vec!["1"; n].join(op)
    }

    #[test]
    fn long_flat_chains_are_refused() {
        let n = MAX_EXPRESSION_DEPTH + 1;
        for sql in [
            format!("SELECT {}", chain("+", n)),
            format!("SELECT {}", chain(" || ", n)),
            format!("SELECT * FROM t WHERE {}", chain(" OR ", n)),
            format!("SELECT 1::{}", vec!["INT"; n].join("::")),
            format!("SELECT f({})", chain("*", n)),
        ] {
            let e = check(&sql).unwrap_err();
            assert!(e.0.contains("too complex"), "{e}");
        }
    }

    #[test]
    fn wide_statements_are_fine() {
        let many = vec!["1"; 20_000].join(", ");
        check(&format!("SELECT x FROM t WHERE id IN ({many})")).unwrap();
        check(&format!(
            "INSERT INTO t VALUES ({})",
            vec!["-1"; 5_000].join("), (")
        ))
        .unwrap();
        let cases: String = (0..2000)
            .map(|i| format!(" WHEN x = {i} THEN {i}"))
            .collect();
        check(&format!("SELECT CASE{cases} END FROM t")).unwrap();
        check(&format!("SELECT {}", chain("+", MAX_EXPRESSION_DEPTH - 10))).unwrap();
        check("SELECT a + b, c * d FROM t WHERE a = 1 AND b = 2 ORDER BY a LIMIT 1").unwrap();
    }
}
