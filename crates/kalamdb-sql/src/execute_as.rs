//! `EXECUTE AS USER '<name>' ( <one statement> )`

use crate::error::err;
use crate::split::is_blank;
use crate::{KalamStatement, ParseError};
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Reads the wrapper from tokens that start with `EXECUTE AS USER`; the
/// inner statement's tokens are parsed by `parse_inner`.
pub fn parse(
    tokens: Vec<TokenWithSpan>,
    parse_inner: impl FnOnce(Vec<TokenWithSpan>) -> Result<KalamStatement, ParseError>,
) -> Result<KalamStatement, ParseError> {
    let significant: Vec<usize> = (0..tokens.len())
        .filter(|&i| !is_blank(&tokens[i].token))
        .collect();
    // EXECUTE AS USER <name> ( ... )
    let usage = "expected EXECUTE AS USER '<name>' ( <statement> )";
    let [_, _, _, name_at, open_at, ..] = significant.as_slice() else {
        return err(usage);
    };
    let user = match &tokens[*name_at].token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => s.clone(),
        Token::Word(w) if w.quote_style.is_some() => w.value.clone(),
        Token::Word(w) => w.value.to_ascii_lowercase(),
        _ => return err(usage),
    };
    let close_at = *significant.last().expect("at least five tokens");
    if tokens[*open_at].token != Token::LParen
        || tokens[close_at].token != Token::RParen
        || close_at <= *open_at + 1
    {
        return err(usage);
    }
    let inner: Vec<TokenWithSpan> = tokens[open_at + 1..close_at].to_vec();
    let statement = parse_inner(inner)?;
    if matches!(statement, KalamStatement::ExecuteAs { .. }) {
        return err("EXECUTE AS cannot be nested");
    }
    Ok(KalamStatement::ExecuteAs {
        user,
        statement: Box::new(statement),
    })
}

#[cfg(test)]
mod tests {
    use crate::{parse_statement, KalamStatement};

    #[test]
    fn wraps_one_statement() {
        match parse_statement("EXECUTE AS USER 'alice' (SELECT * FROM app.t WHERE x = ')')")
            .unwrap()
        {
            KalamStatement::ExecuteAs { user, statement } => {
                assert_eq!(user, "alice");
                assert!(matches!(*statement, KalamStatement::Standard(_)));
            }
            other => panic!("{other:?}"),
        }
        match parse_statement("execute as user bob (INSERT INTO t VALUES (1, 'a'))").unwrap() {
            KalamStatement::ExecuteAs { user, statement } => {
                assert_eq!(user, "bob");
                assert!(matches!(*statement, KalamStatement::FastInsert(_)));
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "EXECUTE AS USER 'a'",
            "EXECUTE AS USER 'a' ()",
            "EXECUTE AS USER 'a' SELECT 1",
            "EXECUTE AS USER 'a' (SELECT 1",
            "EXECUTE AS USER 'a' (EXECUTE AS USER 'b' (SELECT 1))",
            "EXECUTE AS USER 'a' (SELECT 1; SELECT 2)",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }
}
