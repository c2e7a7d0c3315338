//! `ALTER TABLE [IF EXISTS] [ns.]t <change> [, <change>]*`, as PostgreSQL
//! spells the changes (plus `MODIFY COLUMN`, and table options in the
//! `SET TBLPROPERTIES (...)` form of the original KalamDB):
//!
//! - `ADD [COLUMN] [IF NOT EXISTS] c TYPE [NOT NULL] [DEFAULT expr]`
//! - `DROP [COLUMN] [IF EXISTS] c`
//! - `RENAME [COLUMN] a TO b`, `RENAME TO t2`
//! - `ALTER [COLUMN] c SET DEFAULT expr | DROP DEFAULT | SET NOT NULL |
//!   DROP NOT NULL | [SET DATA] TYPE t`, `MODIFY [COLUMN] c [TYPE] t`
//! - `SET TBLPROPERTIES (k = v, ...)` (also `SET (k = v, ...)`)

use crate::error::err;
use crate::parse::{if_exists, if_not_exists, parse_name, parse_table_ref, parse_word};
use crate::statement::{AlterTable, TableChange, TableOptions};
use crate::table::{column_spec, default_of, parse_with_options, Options};
use crate::types::kalam_type_of;
use crate::{KalamStatement, ParseError};
use kalamdb_commons::FlushPolicy;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// Most changes one ALTER TABLE may make.
pub const MAX_CHANGES: usize = 256;

pub fn parse_alter_table(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::ALTER)?;
    parser.expect_keyword(Keyword::TABLE)?;
    let if_exists = if_exists(parser);
    let table = parse_table_ref(parser)?;
    let mut changes = Vec::new();
    loop {
        if changes.len() == MAX_CHANGES {
            return err(format!("at most {MAX_CHANGES} changes in one ALTER TABLE"));
        }
        changes.push(parse_change(parser)?);
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    Ok(KalamStatement::AlterTable(Box::new(AlterTable {
        table,
        if_exists,
        changes,
    })))
}

fn parse_change(parser: &mut Parser<'_>) -> Result<TableChange, ParseError> {
    if parser.parse_keyword(Keyword::ADD) {
        let _ = parser.parse_keyword(Keyword::COLUMN);
        let if_not_exists = if_not_exists(parser);
        let def = parser.parse_column_def()?;
        let (column, primary) = column_spec(&def)?;
        if primary {
            return err("ADD COLUMN cannot add a PRIMARY KEY: a table's key never changes");
        }
        return Ok(TableChange::AddColumn {
            column,
            if_not_exists,
        });
    }
    if parser.parse_keyword(Keyword::DROP) {
        let _ = parser.parse_keyword(Keyword::COLUMN);
        let if_exists = if_exists(parser);
        let name = parse_name(parser)?;
        return Ok(TableChange::DropColumn { name, if_exists });
    }
    if parser.parse_keyword(Keyword::RENAME) {
        if parser.parse_keyword(Keyword::TO) {
            return Ok(TableChange::RenameTable {
                to: parse_name(parser)?,
            });
        }
        let _ = parser.parse_keyword(Keyword::COLUMN);
        let from = parse_name(parser)?;
        parser.expect_keyword(Keyword::TO)?;
        let to = parse_name(parser)?;
        crate::table::check_not_reserved(&to)?;
        kalamdb_commons::validate_identifier("column", &to).map_err(ParseError)?;
        return Ok(TableChange::RenameColumn { from, to });
    }
    if parser.parse_keyword(Keyword::ALTER) {
        let _ = parser.parse_keyword(Keyword::COLUMN);
        let column = parse_name(parser)?;
        return parse_column_change(parser, column);
    }
    if parse_word(parser, "MODIFY") {
        let _ = parser.parse_keyword(Keyword::COLUMN);
        let column = parse_name(parser)?;
        let _ = parser.parse_keyword(Keyword::TYPE);
        let data_type = kalam_type_of(&parser.parse_data_type()?)?;
        return Ok(TableChange::SetType { column, data_type });
    }
    if parser.parse_keyword(Keyword::SET) {
        let _ = parse_word(parser, "TBLPROPERTIES");
        return parse_options(parser).map(TableChange::SetOptions);
    }
    let found = parser.peek_token();
    err(format!(
        "expected ADD, DROP, RENAME, ALTER, MODIFY or SET in ALTER TABLE, found '{}'",
        found.token
    ))
}

fn parse_column_change(parser: &mut Parser<'_>, column: String) -> Result<TableChange, ParseError> {
    if parser.parse_keywords(&[Keyword::SET, Keyword::DEFAULT]) {
        let default = default_of(&parser.parse_expr()?);
        return Ok(TableChange::SetDefault { column, default });
    }
    if parser.parse_keywords(&[Keyword::DROP, Keyword::DEFAULT]) {
        return Ok(TableChange::DropDefault { column });
    }
    if parser.parse_keywords(&[Keyword::SET, Keyword::NOT, Keyword::NULL]) {
        return Ok(TableChange::SetNotNull { column });
    }
    if parser.parse_keywords(&[Keyword::DROP, Keyword::NOT, Keyword::NULL]) {
        return Ok(TableChange::DropNotNull { column });
    }
    if parser.parse_keywords(&[Keyword::SET, Keyword::DATA, Keyword::TYPE])
        || parser.parse_keyword(Keyword::TYPE)
    {
        let data_type = kalam_type_of(&parser.parse_data_type()?)?;
        return Ok(TableChange::SetType { column, data_type });
    }
    let found = parser.peek_token();
    err(format!(
        "expected SET DEFAULT, DROP DEFAULT, SET NOT NULL, DROP NOT NULL or TYPE after ALTER COLUMN {column}, found '{}'",
        found.token
    ))
}

fn parse_options(parser: &mut Parser<'_>) -> Result<TableOptions, ParseError> {
    let mut options = Options::default();
    let mut table_type = None;
    parse_with_options(parser, &mut options, &mut table_type)?;
    if table_type.is_some() {
        return err("a table's TYPE cannot be changed");
    }
    let flush_policy = match (options.rows, options.interval) {
        (None, None) => None,
        (rows, interval) => Some(FlushPolicy::new(rows, interval).map_err(ParseError)?),
    };
    Ok(TableOptions {
        flush_policy,
        storage_id: options.storage_id,
        access_level: options.access_level,
        ttl_seconds: options.ttl_seconds,
        compaction_max_files: options.compaction_max_files,
        compaction_max_small_files: options.compaction_max_small_files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statement::{AccessLevel, ColumnDefault};
    use crate::{parse_statement, TableRef};
    use kalamdb_commons::KalamType;

    fn changes(sql: &str) -> Vec<TableChange> {
        match parse_statement(sql).unwrap() {
            KalamStatement::AlterTable(alter) => alter.changes,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_form_parses() {
        let alter = match parse_statement("ALTER TABLE IF EXISTS app.t RENAME TO t2").unwrap() {
            KalamStatement::AlterTable(alter) => alter,
            other => panic!("{other:?}"),
        };
        assert!(alter.if_exists);
        assert_eq!(
            alter.table,
            TableRef {
                namespace: Some("app".into()),
                table: "t".into()
            }
        );
        assert_eq!(
            alter.changes,
            vec![TableChange::RenameTable { to: "t2".into() }]
        );
        match &changes("ALTER TABLE t ADD COLUMN IF NOT EXISTS n INT NOT NULL DEFAULT 5")[..] {
            [TableChange::AddColumn {
                column,
                if_not_exists: true,
            }] => {
                assert_eq!(column.name, "n");
                assert_eq!(column.data_type, KalamType::Int);
                assert!(!column.nullable);
                assert_eq!(column.default, Some(ColumnDefault::Expr("5".into())));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            changes("ALTER TABLE t DROP COLUMN IF EXISTS a, DROP b, RENAME COLUMN c TO d, RENAME e TO f"),
            vec![
                TableChange::DropColumn { name: "a".into(), if_exists: true },
                TableChange::DropColumn { name: "b".into(), if_exists: false },
                TableChange::RenameColumn { from: "c".into(), to: "d".into() },
                TableChange::RenameColumn { from: "e".into(), to: "f".into() },
            ]
        );
        assert_eq!(
            changes(
                "ALTER TABLE t ALTER COLUMN a SET DEFAULT NOW(), ALTER a DROP DEFAULT, \
                 ALTER COLUMN a SET NOT NULL, ALTER COLUMN a DROP NOT NULL, \
                 ALTER COLUMN a TYPE BIGINT, ALTER COLUMN a SET DATA TYPE DOUBLE, MODIFY COLUMN a BIGINT"
            ),
            vec![
                TableChange::SetDefault { column: "a".into(), default: ColumnDefault::Now },
                TableChange::DropDefault { column: "a".into() },
                TableChange::SetNotNull { column: "a".into() },
                TableChange::DropNotNull { column: "a".into() },
                TableChange::SetType { column: "a".into(), data_type: KalamType::BigInt },
                TableChange::SetType { column: "a".into(), data_type: KalamType::Double },
                TableChange::SetType { column: "a".into(), data_type: KalamType::BigInt },
            ]
        );
        match &changes(
            "ALTER TABLE t SET TBLPROPERTIES (ACCESS_LEVEL='PRIVATE', FLUSH_POLICY='rows:10', STORAGE_ID='s3', COMPACTION_MAX_FILES=9)",
        )[..] {
            [TableChange::SetOptions(options)] => {
                assert_eq!(options.access_level, Some(AccessLevel::Private));
                assert_eq!(options.flush_policy.unwrap().row_limit, Some(10));
                assert_eq!(options.storage_id.as_deref(), Some("s3"));
                assert_eq!(options.compaction_max_files, Some(9));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_forms_are_clear_errors() {
        for (sql, says) in [
            (
                "ALTER TABLE t ADD COLUMN id2 BIGINT PRIMARY KEY",
                "PRIMARY KEY",
            ),
            ("ALTER TABLE t ADD COLUMN _seq BIGINT", "reserved"),
            ("ALTER TABLE t RENAME COLUMN a TO _deleted", "reserved"),
            ("ALTER TABLE t ALTER COLUMN a SET", "expected SET DEFAULT"),
            ("ALTER TABLE t TRUNCATE", "expected ADD"),
            (
                "ALTER TABLE t SET TBLPROPERTIES (TYPE='USER')",
                "TYPE cannot",
            ),
            (
                "ALTER TABLE t SET TBLPROPERTIES (COLOR='red')",
                "unknown table option",
            ),
            ("ALTER TABLE t ADD COLUMN x FOO", "type"),
        ] {
            let e = parse_statement(sql).unwrap_err().0;
            assert!(e.contains(says), "{sql}: {e}");
        }
        let many = format!(
            "ALTER TABLE t {}",
            vec!["DROP COLUMN IF EXISTS a"; MAX_CHANGES + 1].join(", ")
        );
        assert!(parse_statement(&many).unwrap_err().0.contains("at most"));
    }
}
