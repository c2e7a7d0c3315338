//! `CREATE STORAGE`, `ALTER STORAGE ... SET`, `DROP STORAGE`, `SHOW STORAGES`.
//!
//! Options are `KEY 'value'` pairs in any order, with an optional `=` and
//! optional commas between them, as existing clients write both styles.

use crate::error::err;
use crate::parse::{expect_word, if_exists, if_not_exists, parse_string_or_ident, parse_word};
use crate::{KalamStatement, ParseError};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// The settings a storage statement names; `None` means "not given".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StorageOptions {
    pub storage_type: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub base_directory: Option<String>,
    pub bucket: Option<String>,
    pub region: Option<String>,
    pub endpoint: Option<String>,
    pub shared_tables_template: Option<String>,
    pub user_tables_template: Option<String>,
    pub credentials: Option<String>,
}

impl StorageOptions {
    fn slot(&mut self, key: &str) -> Option<&mut Option<String>> {
        Some(match key {
            "TYPE" => &mut self.storage_type,
            "NAME" => &mut self.name,
            "DESCRIPTION" => &mut self.description,
            "PATH" | "BASE_DIRECTORY" => &mut self.base_directory,
            "BUCKET" => &mut self.bucket,
            "REGION" => &mut self.region,
            "ENDPOINT" => &mut self.endpoint,
            "SHARED_TABLES_TEMPLATE" => &mut self.shared_tables_template,
            "USER_TABLES_TEMPLATE" => &mut self.user_tables_template,
            "CREDENTIALS" => &mut self.credentials,
            _ => return None,
        })
    }
}

const KEYS: &str = "TYPE, NAME, DESCRIPTION, PATH, BASE_DIRECTORY, BUCKET, REGION, ENDPOINT, \
                    SHARED_TABLES_TEMPLATE, USER_TABLES_TEMPLATE, CREDENTIALS";

/// Reads `KEY 'value'` pairs until the end of the statement.
fn parse_options(parser: &mut Parser<'_>) -> Result<StorageOptions, ParseError> {
    let mut options = StorageOptions::default();
    loop {
        let _ = parser.consume_token(&Token::Comma);
        let token = parser.next_token();
        let key = match &token.token {
            Token::EOF => return Ok(options),
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            other => {
                return err(format!(
                    "expected a storage option ({KEYS}), found '{other}'"
                ))
            }
        };
        let Some(slot) = options.slot(&key) else {
            return err(format!(
                "unknown storage option {key}: expected one of {KEYS}"
            ));
        };
        if slot.is_some() {
            return err(format!("storage option {key} given twice"));
        }
        let _ = parser.consume_token(&Token::Eq);
        *slot = Some(parse_string_or_ident(parser)?);
    }
}

fn parse_id(parser: &mut Parser<'_>) -> Result<String, ParseError> {
    parse_string_or_ident(parser)
}

pub fn parse_create(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::CREATE)?;
    expect_word(parser, "STORAGE")?;
    let if_not_exists = if_not_exists(parser);
    let id = parse_id(parser)?;
    let options = parse_options(parser)?;
    if options.storage_type.is_none() {
        return err("CREATE STORAGE needs TYPE 'filesystem' or TYPE 's3'");
    }
    Ok(KalamStatement::CreateStorage {
        id,
        if_not_exists,
        options: Box::new(options),
    })
}

pub fn parse_alter(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::ALTER)?;
    expect_word(parser, "STORAGE")?;
    let id = parse_id(parser)?;
    parser.expect_keyword(Keyword::SET)?;
    let options = parse_options(parser)?;
    if options == StorageOptions::default() {
        return err("ALTER STORAGE ... SET needs at least one option");
    }
    if options.storage_type.is_some() {
        return err("a storage's TYPE cannot change; create a new storage instead");
    }
    Ok(KalamStatement::AlterStorage {
        id,
        options: Box::new(options),
    })
}

pub fn parse_drop(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::DROP)?;
    expect_word(parser, "STORAGE")?;
    let if_exists = if_exists(parser);
    let id = parse_id(parser)?;
    Ok(KalamStatement::DropStorage { id, if_exists })
}

pub fn parse_check(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "STORAGE")?;
    expect_word(parser, "CHECK")?;
    let id = parse_id(parser)?;
    let extended = parse_word(parser, "EXTENDED");
    Ok(KalamStatement::CheckStorage { id, extended })
}

pub fn parse_show(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::SHOW)?;
    if !parse_word(parser, "STORAGES") {
        return err("expected SHOW STORAGES");
    }
    Ok(KalamStatement::ShowStorages)
}

#[cfg(test)]
mod tests {
    use super::StorageOptions;
    use crate::{parse_statement, KalamStatement};

    fn created(sql: &str) -> (String, StorageOptions) {
        match parse_statement(sql).unwrap() {
            KalamStatement::CreateStorage { id, options, .. } => (id, *options),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn create_with_every_option() {
        let (id, o) = created(
            "CREATE STORAGE s3_main TYPE 's3' NAME 'Main' DESCRIPTION 'd' PATH 'pre/fix' \
             BUCKET 'b' REGION 'us-east-1' ENDPOINT 'http://127.0.0.1:9000' \
             SHARED_TABLES_TEMPLATE '{namespace}/{tableName}' \
             USER_TABLES_TEMPLATE '{namespace}/{tableName}/{userId}' \
             CREDENTIALS '{\"access_key_id\":\"a\",\"secret_access_key\":\"s\"}'",
        );
        assert_eq!(id, "s3_main");
        assert_eq!(o.storage_type.as_deref(), Some("s3"));
        assert_eq!(o.base_directory.as_deref(), Some("pre/fix"));
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(o.credentials.unwrap().contains("secret_access_key"));
        let (_, o) =
            created("create storage fs type = 'filesystem', name = 'x', base_directory = '/tmp/x'");
        assert_eq!(o.base_directory.as_deref(), Some("/tmp/x"));
    }

    #[test]
    fn bad_storage_statements_are_errors() {
        for sql in [
            "CREATE STORAGE x NAME 'no type'",
            "CREATE STORAGE x TYPE 's3' COLOR 'red'",
            "CREATE STORAGE x TYPE 's3' NAME 'a' NAME 'b'",
            "CREATE STORAGE x TYPE 's3' NAME",
            "ALTER STORAGE x SET",
            "ALTER STORAGE x SET TYPE 's3'",
            "DROP STORAGE",
        ] {
            assert!(parse_statement(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn alter_drop_show() {
        match parse_statement("ALTER STORAGE s SET DESCRIPTION 'new', REGION 'eu'").unwrap() {
            KalamStatement::AlterStorage { id, options } => {
                assert_eq!(id, "s");
                assert_eq!(options.description.as_deref(), Some("new"));
                assert_eq!(options.region.as_deref(), Some("eu"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse_statement("DROP STORAGE IF EXISTS s").unwrap(),
            KalamStatement::DropStorage {
                id: "s".into(),
                if_exists: true
            }
        );
        assert_eq!(
            parse_statement("show storages").unwrap(),
            KalamStatement::ShowStorages
        );
    }

    #[test]
    fn check() {
        for (sql, extended) in [
            ("STORAGE CHECK local", false),
            ("storage check local extended", true),
        ] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::CheckStorage {
                    id: "local".into(),
                    extended
                }
            );
        }
        assert!(parse_statement("STORAGE CHECK").is_err());
        assert!(parse_statement("STORAGE CHECK local EXTENDED please").is_err());
    }
}
