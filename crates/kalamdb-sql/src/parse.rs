//! Dispatch: decide from the leading keywords which parser handles a statement.

use crate::split::{is_blank, split_statements};
use crate::statement::{KalamStatement, TableRef};
use crate::{error::err, namespace, storage, table, user, ParseError};
use sqlparser::ast::{Ident, ObjectName, Statement};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, TokenWithSpan};

/// Parses every statement of a batch. An error names the failing statement.
pub fn parse_batch(sql: &str) -> Result<Vec<KalamStatement>, ParseError> {
    if let Some(inserts) = crate::fast_scan::scan_batch(sql) {
        return Ok(inserts
            .into_iter()
            .map(|insert| KalamStatement::FastInsert(Box::new(insert)))
            .collect());
    }
    parse_batch_tokenized(sql)
}

/// [`parse_batch`] without first trying the literal-INSERT scanner, for a
/// caller that tried it already; the token reader still reads literal
/// INSERTs as [`KalamStatement::FastInsert`].
pub fn parse_batch_tokenized(sql: &str) -> Result<Vec<KalamStatement>, ParseError> {
    let parts = split_statements(sql)?;
    let many = parts.len() > 1;
    parts
        .into_iter()
        .enumerate()
        .map(|(i, tokens)| {
            parse_tokens(tokens).map_err(|e| {
                if many {
                    ParseError(format!("Statement {} failed: {}", i + 1, e.0))
                } else {
                    e
                }
            })
        })
        .collect()
}

/// Parses exactly one statement.
pub fn parse_statement(sql: &str) -> Result<KalamStatement, ParseError> {
    if let Some(mut inserts) = crate::fast_scan::scan_batch(sql) {
        if inserts.len() == 1 {
            return Ok(KalamStatement::FastInsert(Box::new(inserts.remove(0))));
        }
    }
    let mut parts = split_statements(sql)?;
    match parts.len() {
        0 => err("empty statement"),
        1 => parse_tokens(parts.pop().expect("one part")),
        _ => err("expected one statement, found several"),
    }
}

fn words(tokens: &[TokenWithSpan], n: usize) -> Vec<String> {
    tokens
        .iter()
        .filter(|t| !is_blank(&t.token))
        .take(n)
        .map(|t| match &t.token {
            Token::Word(w) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
            _ => String::new(),
        })
        .collect()
}

/// `CURRENT_USER()` is KalamDB's spelling, but `sqlparser` treats
/// `CURRENT_USER` as a keyword function without parentheses; drop the `()`.
fn drop_current_user_parens(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mentioned = tokens.iter().any(
        |t| matches!(&t.token, Token::Word(w) if w.value.eq_ignore_ascii_case("current_user")),
    );
    if !mentioned {
        return tokens;
    }
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_current_user = matches!(&tokens[i].token,
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("current_user"));
        out.push(tokens[i].clone());
        i += 1;
        if is_current_user {
            let rest: Vec<usize> = (i..tokens.len())
                .filter(|&j| !is_blank(&tokens[j].token))
                .take(2)
                .collect();
            if let [open, close] = rest.as_slice() {
                if tokens[*open].token == Token::LParen && tokens[*close].token == Token::RParen {
                    i = close + 1;
                }
            }
        }
    }
    out
}

fn parse_tokens(tokens: Vec<TokenWithSpan>) -> Result<KalamStatement, ParseError> {
    let lead = words(&tokens, 3);
    let lead: Vec<&str> = lead.iter().map(String::as_str).collect();
    if lead.as_slice() == ["EXECUTE", "AS", "USER"] {
        return crate::execute_as::parse(tokens, parse_tokens);
    }
    if lead.first() == Some(&"INSERT") {
        if let Some(insert) = crate::fast_insert::read(&tokens) {
            return Ok(KalamStatement::FastInsert(Box::new(insert)));
        }
    }
    crate::depth::check_expression_depth(&tokens)?;
    let tokens = drop_current_user_parens(tokens);
    let tokens = crate::json_ops::question_tokens(tokens);
    let tokens = match lead.as_slice() {
        ["CREATE", "USER" | "SHARED" | "STREAM", "TABLE"] | ["CREATE", "TABLE", ..] => {
            table::quote_column_keywords(tokens)
        }
        _ => tokens,
    };
    let dialect = crate::dialect();
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(crate::RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let statement = match lead.as_slice() {
        ["CREATE", "NAMESPACE" | "SCHEMA", ..] => namespace::parse_create(&mut parser)?,
        ["DROP", "NAMESPACE" | "SCHEMA", ..] => namespace::parse_drop(&mut parser)?,
        ["SHOW", "NAMESPACES" | "SCHEMAS", ..] => namespace::parse_show(&mut parser)?,
        ["USE", ..] | ["SET", "NAMESPACE" | "SCHEMA", ..] => namespace::parse_use(&mut parser)?,
        ["CREATE", "USER" | "SHARED" | "STREAM", "TABLE"] | ["CREATE", "TABLE", ..] => {
            table::parse_create(&mut parser)?
        }
        ["CREATE", "USER", ..] => user::parse_create(&mut parser)?,
        ["ALTER", "USER", ..] => user::parse_alter(&mut parser)?,
        ["ALTER", "TABLE", ..] => crate::alter::parse_alter_table(&mut parser)?,
        ["DROP", "USER", ..] => user::parse_drop(&mut parser)?,
        ["DROP", "TABLE", ..] => table::parse_drop(&mut parser)?,
        ["SHOW", "TABLES", ..] => table::parse_show(&mut parser)?,
        ["SHOW", "STATS", ..] => table::parse_show_stats(&mut parser)?,
        ["DESCRIBE" | "DESC", ..] => table::parse_describe(&mut parser)?,
        ["FLUSH", ..] | ["STORAGE", "FLUSH", ..] => crate::flush::parse(&mut parser)?,
        ["COMPACT", ..] | ["STORAGE", "COMPACT", ..] => crate::flush::parse_compact(&mut parser)?,
        ["EXPORT", ..] => crate::export::parse_export(&mut parser)?,
        ["BACKUP", ..] => crate::backup::parse_backup(&mut parser)?,
        ["RESTORE", ..] => crate::backup::parse_restore(&mut parser)?,
        ["SHOW", "EXPORT" | "EXPORTS", ..] => crate::export::parse_show(&mut parser)?,
        ["STORAGE", "CHECK", ..] => storage::parse_check(&mut parser)?,
        ["CREATE", "STORAGE", ..] => storage::parse_create(&mut parser)?,
        ["ALTER", "STORAGE", ..] => storage::parse_alter(&mut parser)?,
        ["DROP", "STORAGE", ..] => storage::parse_drop(&mut parser)?,
        ["SHOW", "STORAGES", ..] => storage::parse_show(&mut parser)?,
        ["KILL", "JOB", ..] => crate::job::parse_kill(&mut parser)?,
        ["KILL", "LIVE" | "QUERY", ..] => crate::live::parse_kill(&mut parser)?,
        ["SUBSCRIBE", ..] => crate::live::parse_subscribe(&mut parser)?,
        ["BEGIN", ..] | ["START", ..] => crate::transaction::parse_begin(&mut parser)?,
        ["COMMIT", ..] | ["END", ..] => crate::transaction::parse_commit(&mut parser)?,
        ["ROLLBACK", ..] | ["ABORT", ..] => crate::transaction::parse_rollback(&mut parser)?,
        _ => standard(&mut parser)?,
    };
    expect_end(&mut parser)?;
    Ok(statement)
}

/// Most entries a select list may have (PostgreSQL's limit too). Planning
/// cost grows faster than linearly with it.
pub const MAX_SELECT_ENTRIES: usize = 1664;

fn check_select_width(body: &sqlparser::ast::SetExpr) -> Result<(), ParseError> {
    use sqlparser::ast::SetExpr;
    match body {
        SetExpr::Select(select) if select.projection.len() > MAX_SELECT_ENTRIES => err(format!(
            "target lists can have at most {MAX_SELECT_ENTRIES} entries (this one has {})",
            select.projection.len()
        )),
        SetExpr::SetOperation { left, right, .. } => {
            check_select_width(left)?;
            check_select_width(right)
        }
        SetExpr::Query(q) => check_select_width(&q.body),
        _ => Ok(()),
    }
}

fn standard(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    let mut statement = parser.parse_statement()?;
    crate::json_ops::regroup_statement(&mut statement);
    if let Statement::Query(query) = &statement {
        check_select_width(&query.body)?;
    }
    match &statement {
        Statement::Query(_)
        | Statement::Insert(_)
        | Statement::Update(_)
        | Statement::Delete(_)
        | Statement::Explain { .. } => Ok(KalamStatement::Standard(Box::new(statement))),
        other => {
            let head = kalamdb_commons::excerpt(&other.to_string(), 60);
            err(format!("unsupported statement: {head}"))
        }
    }
}

/// Parses one SQL expression (e.g. a stored column default).
pub fn parse_expr(text: &str) -> Result<sqlparser::ast::Expr, ParseError> {
    let dialect = crate::dialect();
    let tokens = sqlparser::tokenizer::Tokenizer::new(&dialect, text).tokenize_with_location()?;
    crate::depth::check_expression_depth(&tokens)?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(crate::RECURSION_LIMIT)
        .with_tokens_with_locations(crate::json_ops::question_tokens(tokens));
    let mut expr = parser.parse_expr()?;
    crate::json_ops::regroup_expr(&mut expr);
    expect_end(&mut parser)?;
    Ok(expr)
}

/// Fails unless only whitespace is left.
pub fn expect_end(parser: &mut Parser<'_>) -> Result<(), ParseError> {
    let next = parser.peek_token();
    if next.token == Token::EOF {
        Ok(())
    } else {
        err(format!(
            "unexpected '{}' at {}",
            next.token, next.span.start
        ))
    }
}

/// A word token as an identifier: unquoted names fold to lower case.
pub fn normalize_word(word: &sqlparser::tokenizer::Word) -> String {
    if word.quote_style.is_some() {
        word.value.clone()
    } else {
        word.value.to_ascii_lowercase()
    }
}

/// An identifier as SQL means it: unquoted names fold to lower case.
pub fn normalize(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_ascii_lowercase()
    }
}

pub fn parse_name(parser: &mut Parser<'_>) -> Result<String, ParseError> {
    Ok(normalize(&parser.parse_identifier()?))
}

pub fn table_ref(name: &ObjectName) -> Result<TableRef, ParseError> {
    let parts: Vec<String> = name
        .0
        .iter()
        .map(|p| p.as_ident().map(normalize))
        .collect::<Option<_>>()
        .ok_or_else(|| ParseError(format!("invalid table name {name}")))?;
    match parts.as_slice() {
        [table] => Ok(TableRef {
            namespace: None,
            table: table.clone(),
        }),
        [ns, table] => Ok(TableRef {
            namespace: Some(ns.clone()),
            table: table.clone(),
        }),
        _ => err(format!(
            "invalid table name {name}: expected [namespace.]table"
        )),
    }
}

pub fn parse_table_ref(parser: &mut Parser<'_>) -> Result<TableRef, ParseError> {
    let name = parser.parse_object_name(false)?;
    table_ref(&name)
}

/// `IF NOT EXISTS`
pub fn if_not_exists(parser: &mut Parser<'_>) -> bool {
    parser.parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS])
}

/// `IF EXISTS`
pub fn if_exists(parser: &mut Parser<'_>) -> bool {
    parser.parse_keywords(&[Keyword::IF, Keyword::EXISTS])
}

/// A word that is not a reserved keyword of sqlparser (e.g. `NAMESPACE`).
pub fn expect_word(parser: &mut Parser<'_>, word: &str) -> Result<(), ParseError> {
    if parse_word(parser, word) {
        Ok(())
    } else {
        let found = parser.peek_token();
        err(format!("expected {word}, found '{}'", found.token))
    }
}

pub fn parse_word(parser: &mut Parser<'_>, word: &str) -> bool {
    match parser.peek_token().token {
        Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word) => {
            parser.next_token();
            true
        }
        _ => false,
    }
}

/// A string literal, or a bare identifier where clients write names unquoted.
pub fn parse_string_or_ident(parser: &mut Parser<'_>) -> Result<String, ParseError> {
    let token = parser.next_token();
    match token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Word(w) => Ok(if w.quote_style.is_some() {
            w.value
        } else {
            w.value.to_ascii_lowercase()
        }),
        other => err(format!("expected a name or a string, found '{other}'")),
    }
}

#[cfg(test)]
mod tests;
