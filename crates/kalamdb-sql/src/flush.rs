//! `FLUSH TABLE`, `STORAGE FLUSH TABLE`, `FLUSH ALL TABLES`, `STORAGE FLUSH ALL`,
//! and their compaction twins `[STORAGE] COMPACT TABLE`, `[STORAGE] COMPACT
//! ALL [TABLES] [IN [NAMESPACE] ns]`.

use crate::error::err;
use crate::parse::{expect_word, parse_name, parse_table_ref, parse_word};
use crate::{KalamStatement, ParseError, TableRef};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;

pub fn parse(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    Ok(match target(parser, "FLUSH")? {
        Target::Table(table) => KalamStatement::FlushTable { table },
        Target::All(namespace) => KalamStatement::FlushAll { namespace },
    })
}

pub fn parse_compact(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    Ok(match target(parser, "COMPACT")? {
        Target::Table(table) => KalamStatement::CompactTable { table },
        Target::All(namespace) => KalamStatement::CompactAll { namespace },
    })
}

/// What a FLUSH or COMPACT names.
enum Target {
    Table(TableRef),
    All(Option<String>),
}

/// `[STORAGE] <verb> TABLE t` or `[STORAGE] <verb> ALL [TABLES] [IN
/// [NAMESPACE] ns]`.
fn target(parser: &mut Parser<'_>, verb: &str) -> Result<Target, ParseError> {
    // The STORAGE prefix is an alias existing clients use.
    let _ = parse_word(parser, "STORAGE");
    expect_word(parser, verb)?;
    if parser.parse_keyword(Keyword::TABLE) {
        return Ok(Target::Table(parse_table_ref(parser)?));
    }
    if parser.parse_keyword(Keyword::ALL) {
        let _ = parser.parse_keyword(Keyword::TABLES);
        let namespace = if parser.parse_keyword(Keyword::IN) {
            let _ = parse_word(parser, "NAMESPACE");
            Some(parse_name(parser)?)
        } else {
            None
        };
        return Ok(Target::All(namespace));
    }
    err(format!(
        "expected {verb} TABLE <table> or {verb} ALL TABLES [IN <namespace>]"
    ))
}

#[cfg(test)]
mod tests {
    use crate::{parse_statement, KalamStatement, TableRef};

    #[test]
    fn all_spellings() {
        let table = KalamStatement::FlushTable {
            table: TableRef {
                namespace: Some("app".into()),
                table: "t".into(),
            },
        };
        assert_eq!(parse_statement("FLUSH TABLE app.t").unwrap(), table);
        assert_eq!(parse_statement("storage flush table App.T").unwrap(), table);
        assert_eq!(
            parse_statement("FLUSH ALL TABLES").unwrap(),
            KalamStatement::FlushAll { namespace: None }
        );
        for sql in [
            "FLUSH ALL TABLES IN app",
            "STORAGE FLUSH ALL IN NAMESPACE app",
            "STORAGE FLUSH ALL IN app",
        ] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::FlushAll {
                    namespace: Some("app".into())
                },
                "{sql}"
            );
        }
        assert!(parse_statement("FLUSH").is_err());
        assert!(parse_statement("FLUSH TABLE").is_err());
        assert!(parse_statement("FLUSH ALL TABLES IN").is_err());
    }

    #[test]
    fn compaction_spellings() {
        let table = KalamStatement::CompactTable {
            table: TableRef {
                namespace: Some("app".into()),
                table: "t".into(),
            },
        };
        assert_eq!(
            parse_statement("STORAGE COMPACT TABLE app.t").unwrap(),
            table
        );
        assert_eq!(parse_statement("compact table App.T").unwrap(), table);
        for sql in ["STORAGE COMPACT ALL", "COMPACT ALL TABLES"] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::CompactAll { namespace: None },
                "{sql}"
            );
        }
        for sql in [
            "STORAGE COMPACT ALL IN NAMESPACE app",
            "STORAGE COMPACT ALL IN app",
            "COMPACT ALL TABLES IN app",
        ] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::CompactAll {
                    namespace: Some("app".into())
                },
                "{sql}"
            );
        }
        assert!(parse_statement("COMPACT").is_err());
        assert!(parse_statement("STORAGE COMPACT TABLE").is_err());
        assert!(parse_statement("COMPACT ALL IN").is_err());
    }
}
