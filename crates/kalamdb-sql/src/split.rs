//! Splitting a batch into statements on top-level `;` tokens.

use crate::ParseError;
use sqlparser::tokenizer::{Token, TokenWithSpan, Tokenizer, Whitespace};

/// Tokenizes `sql` and returns the token list of every non-empty statement.
/// Comments and whitespace are kept inside statements but a statement made of
/// nothing else is dropped.
pub fn split_statements(sql: &str) -> Result<Vec<Vec<TokenWithSpan>>, ParseError> {
    let dialect = crate::dialect();
    let tokens = Tokenizer::new(&dialect, sql).tokenize_with_location()?;
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        match token.token {
            Token::SemiColon => push_if_meaningful(&mut statements, std::mem::take(&mut current)),
            Token::EOF => {}
            _ => current.push(token),
        }
    }
    push_if_meaningful(&mut statements, current);
    Ok(statements)
}

fn push_if_meaningful(out: &mut Vec<Vec<TokenWithSpan>>, tokens: Vec<TokenWithSpan>) {
    if tokens
        .iter()
        .any(|t| !matches!(t.token, Token::Whitespace(_)))
    {
        out.push(tokens);
    }
}

/// Whether the token is whitespace or a comment.
pub fn is_blank(token: &Token) -> bool {
    matches!(
        token,
        Token::Whitespace(
            Whitespace::Space
                | Whitespace::Newline
                | Whitespace::Tab
                | Whitespace::SingleLineComment { .. }
                | Whitespace::MultiLineComment(_)
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_in_strings_and_comments_do_not_split() {
        let parts = split_statements(
            "INSERT INTO t VALUES ('a;b'); -- c;d\n SELECT 1 /* ; */ ;; ; SELECT 2",
        )
        .unwrap();
        assert_eq!(parts.len(), 3);
    }

    #[test]
    fn empty_and_comment_only_batches_have_no_statements() {
        assert!(split_statements("").unwrap().is_empty());
        assert!(split_statements(" ;; -- nothing\n").unwrap().is_empty());
    }

    #[test]
    fn unterminated_string_is_an_error() {
        assert!(split_statements("SELECT 'abc").is_err());
    }
}
