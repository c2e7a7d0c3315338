//! `EXPORT USER DATA '<user>' [TO '<path>']` and `SHOW EXPORT[S]`.

use crate::error::err;
use crate::parse::{expect_word, parse_string_or_ident, parse_word};
use crate::{KalamStatement, ParseError};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

pub fn parse_export(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "EXPORT")?;
    expect_word(parser, "USER")?;
    expect_word(parser, "DATA")?;
    let user = parse_string_or_ident(parser)?;
    let path = if parse_word(parser, "TO") {
        match parser.next_token().token {
            Token::SingleQuotedString(path) => Some(path),
            other => return err(format!("expected TO '<path>', found '{other}'")),
        }
    } else {
        None
    };
    Ok(KalamStatement::ExportUserData { user, path })
}

pub fn parse_show(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "SHOW")?;
    if !parse_word(parser, "EXPORT") && !parse_word(parser, "EXPORTS") {
        return err("expected SHOW EXPORT");
    }
    Ok(KalamStatement::ShowExports)
}

#[cfg(test)]
mod tests {
    use crate::{parse_statement, KalamStatement};

    #[test]
    fn spellings() {
        assert_eq!(
            parse_statement("EXPORT USER DATA 'alice'").unwrap(),
            KalamStatement::ExportUserData {
                user: "alice".into(),
                path: None
            }
        );
        assert_eq!(
            parse_statement("export user data alice to '/tmp/x'").unwrap(),
            KalamStatement::ExportUserData {
                user: "alice".into(),
                path: Some("/tmp/x".into())
            }
        );
        for sql in ["SHOW EXPORT", "show exports"] {
            assert_eq!(parse_statement(sql).unwrap(), KalamStatement::ShowExports);
        }
        for bad in [
            "EXPORT USER DATA",
            "EXPORT USER 'a'",
            "EXPORT USER DATA 'a' TO",
            "EXPORT USER DATA 'a' TO x",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }
}
