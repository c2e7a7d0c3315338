//! `CREATE USER`, `ALTER USER`, `DROP USER`.

use crate::error::err;
use crate::parse::{if_exists, parse_string_or_ident, parse_word};
use crate::{KalamStatement, ParseError, UserChange};
use kalamdb_commons::Role;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;

fn parse_role(parser: &mut Parser<'_>) -> Result<Role, ParseError> {
    let text = parse_string_or_ident(parser)?;
    Role::parse(&text).ok_or_else(|| {
        ParseError(format!(
            "unknown role '{text}': expected user, service, dba or system"
        ))
    })
}

pub fn parse_create(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::CREATE)?;
    parser.expect_keyword(Keyword::USER)?;
    let name = parse_string_or_ident(parser)?;
    let mut password = None;
    let mut role = Role::User;
    let mut email = None;
    let _ = parser.parse_keyword(Keyword::WITH);
    loop {
        if parser.parse_keyword(Keyword::PASSWORD) {
            password = Some(parser.parse_literal_string()?);
        } else if parse_word(parser, "ROLE") {
            role = parse_role(parser)?;
        } else if parse_word(parser, "EMAIL") {
            email = Some(parser.parse_literal_string()?);
        } else {
            break;
        }
    }
    let Some(password) = password else {
        return err("CREATE USER needs WITH PASSWORD '<password>'");
    };
    Ok(KalamStatement::CreateUser {
        name,
        password,
        role,
        email,
    })
}

pub fn parse_alter(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::ALTER)?;
    parser.expect_keyword(Keyword::USER)?;
    let name = parse_string_or_ident(parser)?;
    parser.expect_keyword(Keyword::SET)?;
    let change = if parser.parse_keyword(Keyword::PASSWORD) {
        UserChange::Password(parser.parse_literal_string()?)
    } else if parse_word(parser, "ROLE") {
        UserChange::Role(parse_role(parser)?)
    } else if parse_word(parser, "EMAIL") {
        UserChange::Email(parser.parse_literal_string()?)
    } else {
        return err("ALTER USER expects SET PASSWORD '...', SET ROLE r or SET EMAIL '...'");
    };
    Ok(KalamStatement::AlterUser { name, change })
}

pub fn parse_drop(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::DROP)?;
    parser.expect_keyword(Keyword::USER)?;
    let if_exists = if_exists(parser);
    let name = parse_string_or_ident(parser)?;
    Ok(KalamStatement::DropUser { name, if_exists })
}
