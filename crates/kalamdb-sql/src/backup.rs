//! `BACKUP DATABASE TO '<path>'` and `RESTORE DATABASE FROM '<path>'`.

use crate::error::err;
use crate::parse::{expect_word, parse_word};
use crate::{KalamStatement, ParseError};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

fn path(parser: &mut Parser<'_>, word: &str) -> Result<String, ParseError> {
    expect_word(parser, word)?;
    match parser.next_token().token {
        Token::SingleQuotedString(path) if !path.is_empty() => Ok(path),
        other => err(format!("expected {word} '<path>', found '{other}'")),
    }
}

pub fn parse_backup(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "BACKUP")?;
    expect_word(parser, "DATABASE")?;
    Ok(KalamStatement::BackupDatabase {
        path: path(parser, "TO")?,
    })
}

pub fn parse_restore(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "RESTORE")?;
    if !parse_word(parser, "DATABASE") {
        return err("expected RESTORE DATABASE FROM '<path>'");
    }
    Ok(KalamStatement::RestoreDatabase {
        path: path(parser, "FROM")?,
    })
}

#[cfg(test)]
mod tests {
    use crate::{parse_statement, KalamStatement};

    #[test]
    fn spellings() {
        assert_eq!(
            parse_statement("BACKUP DATABASE TO '/b/1'").unwrap(),
            KalamStatement::BackupDatabase {
                path: "/b/1".into()
            }
        );
        assert_eq!(
            parse_statement("restore database from 'b1';").unwrap(),
            KalamStatement::RestoreDatabase { path: "b1".into() }
        );
        for bad in [
            "BACKUP DATABASE",
            "BACKUP DATABASE TO",
            "BACKUP DATABASE TO x",
            "BACKUP DATABASE TO ''",
            "BACKUP TO '/b'",
            "RESTORE DATABASE '/b'",
            "RESTORE DATABASE FROM '/b' now",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }
}
