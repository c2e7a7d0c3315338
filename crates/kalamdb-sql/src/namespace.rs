//! `CREATE NAMESPACE`, `DROP NAMESPACE`, `SHOW NAMESPACES`.

use crate::parse::{expect_word, if_exists, if_not_exists, parse_name, parse_word};
use crate::{KalamStatement, ParseError};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;

fn namespace_word(parser: &mut Parser<'_>) -> Result<(), ParseError> {
    if parser.parse_keyword(Keyword::SCHEMA) {
        return Ok(());
    }
    expect_word(parser, "NAMESPACE")
}

pub fn parse_create(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::CREATE)?;
    namespace_word(parser)?;
    let if_not_exists = if_not_exists(parser);
    let name = parse_name(parser)?;
    Ok(KalamStatement::CreateNamespace {
        name,
        if_not_exists,
    })
}

pub fn parse_drop(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::DROP)?;
    namespace_word(parser)?;
    let if_exists = if_exists(parser);
    let name = parse_name(parser)?;
    let cascade = parser.parse_keyword(Keyword::CASCADE);
    Ok(KalamStatement::DropNamespace {
        name,
        if_exists,
        cascade,
    })
}

/// `USE ns`, `USE NAMESPACE ns`, `SET NAMESPACE ns` (also `= ns`/`TO ns`).
pub fn parse_use(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    if parser.parse_keyword(Keyword::SET) {
        namespace_word(parser)?;
        let _ = parser.consume_token(&sqlparser::tokenizer::Token::Eq)
            || parser.parse_keyword(Keyword::TO);
    } else {
        parser.expect_keyword(Keyword::USE)?;
        let _ = parse_word(parser, "NAMESPACE") || parser.parse_keyword(Keyword::SCHEMA);
    }
    let name = parse_name(parser)?;
    Ok(KalamStatement::UseNamespace { name })
}

pub fn parse_show(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::SHOW)?;
    if !(parse_word(parser, "NAMESPACES") || parser.parse_keyword(Keyword::SCHEMAS)) {
        return crate::error::err("expected NAMESPACES");
    }
    Ok(KalamStatement::ShowNamespaces)
}
