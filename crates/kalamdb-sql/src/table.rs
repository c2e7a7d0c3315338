//! `CREATE [USER|SHARED|STREAM] TABLE`, `DROP TABLE`, `SHOW TABLES`, `DESCRIBE TABLE`.
//!
//! Table options come in two spellings that existing clients use:
//! `WITH (TYPE='USER', FLUSH_POLICY='rows:100', STORAGE_ID='local', ...)` and
//! trailing clauses (`FLUSH ROWS n`, `FLUSH INTERVAL 30s`,
//! `FLUSH POLICY COMBINED ROW_LIMIT n TIME_INTERVAL s`, `STORAGE id`).

use crate::error::err;
use crate::parse::{
    expect_word, if_exists, if_not_exists, normalize, parse_name, parse_string_or_ident,
    parse_table_ref, parse_word,
};
use crate::statement::{AccessLevel, ColumnDefault, ColumnSpec, CreateTable};
use crate::types::{is_serial, kalam_type_of};
use crate::{KalamStatement, ParseError};
use kalamdb_commons::{FlushPolicy, TableType};
use sqlparser::ast::{ColumnDef, ColumnOption, Expr, TableConstraint};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

/// Words that `sqlparser` reads as the start of a MySQL index clause
/// (`KEY name (cols)`) where a column definition may begin. As PostgreSQL
/// does, a column may have these names: one followed by something other
/// than `(` or another such word is turned into a quoted name.
const INDEX_WORDS: [&str; 2] = ["KEY", "INDEX"];

/// Makes `key TEXT` in a column list read as a column named `key`.
pub(crate) fn quote_column_keywords(
    mut tokens: Vec<sqlparser::tokenizer::TokenWithSpan>,
) -> Vec<sqlparser::tokenizer::TokenWithSpan> {
    let solid: Vec<usize> = (0..tokens.len())
        .filter(|&i| !matches!(tokens[i].token, Token::Whitespace(_)))
        .collect();
    let mut depth = 0usize;
    let mut fixes = Vec::new();
    for (n, &i) in solid.iter().enumerate() {
        match &tokens[i].token {
            Token::LParen => depth += 1,
            Token::RParen => depth = depth.saturating_sub(1),
            Token::Word(w)
                if depth == 1
                    && w.quote_style.is_none()
                    && INDEX_WORDS.iter().any(|k| w.value.eq_ignore_ascii_case(k)) =>
            {
                let starts_element =
                    n > 0 && matches!(tokens[solid[n - 1]].token, Token::LParen | Token::Comma);
                let next_is_type = solid.get(n + 1).is_some_and(|&j| {
                    matches!(&tokens[j].token, Token::Word(next)
                        if !INDEX_WORDS.iter().any(|k| next.value.eq_ignore_ascii_case(k)))
                });
                if starts_element && next_is_type {
                    fixes.push(i);
                }
            }
            _ => {}
        }
    }
    for i in fixes {
        if let Token::Word(w) = &mut tokens[i].token {
            w.value = w.value.to_ascii_lowercase();
            w.quote_style = Some('"');
            w.keyword = Keyword::NoKeyword;
        }
    }
    tokens
}

/// Most columns a table may have (PostgreSQL's limit too).
pub const MAX_COLUMNS: usize = 1600;

pub fn parse_create(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::CREATE)?;
    let mut table_type = if parser.parse_keyword(Keyword::USER) {
        Some(TableType::User)
    } else if parse_word(parser, "SHARED") {
        Some(TableType::Shared)
    } else if parse_word(parser, "STREAM") {
        Some(TableType::Stream)
    } else {
        None
    };
    parser.expect_keyword(Keyword::TABLE)?;
    let if_not_exists = if_not_exists(parser);
    let table = parse_table_ref(parser)?;
    let (column_defs, constraints) = parser.parse_columns()?;
    if column_defs.is_empty() {
        return err("a table needs at least one column");
    }

    let mut options = Options::default();
    loop {
        if parser.parse_keyword(Keyword::WITH) {
            parse_with_options(parser, &mut options, &mut table_type)?;
        } else if parse_word(parser, "FLUSH") {
            parse_flush_clause(parser, &mut options)?;
        } else if parse_word(parser, "STORAGE") {
            options.storage_id = Some(parse_string_or_ident(parser)?);
        } else if parse_word(parser, "TTL") {
            options.ttl_seconds = Some(parser.parse_literal_uint()?);
        } else {
            break;
        }
    }

    let (columns, primary_key) = columns(&column_defs, &constraints)?;
    let flush_policy = match (options.rows, options.interval) {
        (None, None) => None,
        (rows, interval) => Some(FlushPolicy::new(rows, interval).map_err(ParseError)?),
    };
    Ok(KalamStatement::CreateTable(Box::new(CreateTable {
        table,
        table_type: table_type.unwrap_or(TableType::Shared),
        if_not_exists,
        columns,
        primary_key,
        flush_policy,
        storage_id: options.storage_id,
        ttl_seconds: options.ttl_seconds,
        access_level: options.access_level,
        compaction_max_files: options.compaction_max_files,
        compaction_max_small_files: options.compaction_max_small_files,
    })))
}

#[derive(Default)]
pub(crate) struct Options {
    pub rows: Option<u64>,
    pub interval: Option<u64>,
    pub storage_id: Option<String>,
    pub ttl_seconds: Option<u64>,
    pub access_level: Option<AccessLevel>,
    pub compaction_max_files: Option<u32>,
    pub compaction_max_small_files: Option<u32>,
}

fn option_value(parser: &mut Parser<'_>) -> Result<String, ParseError> {
    let token = parser.next_token();
    match token.token {
        Token::SingleQuotedString(s) | Token::DoubleQuotedString(s) => Ok(s),
        Token::Number(n, _) => Ok(n),
        Token::Word(w) => Ok(w.value),
        other => err(format!("expected an option value, found '{other}'")),
    }
}

fn parse_u64(key: &str, value: &str) -> Result<u64, ParseError> {
    value
        .trim()
        .trim_end_matches('s')
        .parse()
        .map_err(|_| ParseError(format!("{key} expects a whole number, got '{value}'")))
}

fn parse_u32(key: &str, value: &str) -> Result<u32, ParseError> {
    value
        .trim()
        .parse()
        .map_err(|_| ParseError(format!("{key} expects a whole number, got '{value}'")))
}

pub(crate) fn parse_with_options(
    parser: &mut Parser<'_>,
    options: &mut Options,
    table_type: &mut Option<TableType>,
) -> Result<(), ParseError> {
    parser.expect_token(&Token::LParen)?;
    loop {
        let key = parser.parse_identifier()?.value.to_ascii_uppercase();
        parser.expect_token(&Token::Eq)?;
        let value = option_value(parser)?;
        match key.as_str() {
            "TYPE" | "TABLE_TYPE" => {
                let declared = TableType::parse(&value)
                    .ok_or_else(|| ParseError(format!("unknown table type '{value}'")))?;
                if let Some(existing) = table_type {
                    if *existing != declared {
                        return err(format!(
                            "table declared {existing} but WITH says TYPE='{value}'"
                        ));
                    }
                }
                *table_type = Some(declared);
            }
            "STORAGE_ID" | "STORAGE" => options.storage_id = Some(value),
            "FLUSH_POLICY" => {
                let policy = FlushPolicy::parse(&value).map_err(ParseError)?;
                options.rows = policy.row_limit;
                options.interval = policy.interval_secs;
            }
            "FLUSH_ROWS" | "ROW_LIMIT" => options.rows = Some(parse_u64(&key, &value)?),
            "FLUSH_INTERVAL" | "TIME_INTERVAL" => options.interval = Some(parse_u64(&key, &value)?),
            "TTL_SECONDS" => options.ttl_seconds = Some(parse_u64(&key, &value)?),
            "COMPACTION_MAX_FILES" => options.compaction_max_files = Some(parse_u32(&key, &value)?),
            "COMPACTION_MAX_SMALL_FILES" => {
                options.compaction_max_small_files = Some(parse_u32(&key, &value)?)
            }
            "ACCESS_LEVEL" => {
                options.access_level = Some(match value.to_ascii_uppercase().as_str() {
                    "PUBLIC" => AccessLevel::Public,
                    "PRIVATE" => AccessLevel::Private,
                    _ => {
                        return err(format!(
                            "ACCESS_LEVEL must be PUBLIC or PRIVATE, got '{value}'"
                        ))
                    }
                })
            }
            _ => return err(format!("unknown table option '{key}'")),
        }
        if !parser.consume_token(&Token::Comma) {
            break;
        }
    }
    parser.expect_token(&Token::RParen)?;
    Ok(())
}

/// A number of seconds written `30`, `30s` or `'30s'`.
fn parse_seconds(parser: &mut Parser<'_>) -> Result<u64, ParseError> {
    let value = option_value(parser)?;
    let secs = parse_u64("FLUSH INTERVAL", &value)?;
    // `30s` may come as the number 30 followed by the word `s`.
    let _ = parse_word(parser, "s") || parse_word(parser, "seconds");
    Ok(secs)
}

fn parse_flush_clause(parser: &mut Parser<'_>, options: &mut Options) -> Result<(), ParseError> {
    if parse_word(parser, "ROWS") {
        options.rows = Some(parser.parse_literal_uint()?);
    } else if parser.parse_keyword(Keyword::INTERVAL) {
        options.interval = Some(parse_seconds(parser)?);
    } else if parse_word(parser, "POLICY") {
        let combined = parse_word(parser, "COMBINED");
        let mut any = false;
        loop {
            if parse_word(parser, "ROW_LIMIT") {
                options.rows = Some(parser.parse_literal_uint()?);
            } else if parse_word(parser, "TIME_INTERVAL") {
                options.interval = Some(parse_seconds(parser)?);
            } else {
                break;
            }
            any = true;
        }
        if !any {
            return err("FLUSH POLICY expects ROW_LIMIT n and/or TIME_INTERVAL s");
        }
        if combined && (options.rows.is_none() || options.interval.is_none()) {
            return err("FLUSH POLICY COMBINED needs both ROW_LIMIT and TIME_INTERVAL");
        }
    } else {
        return err("expected FLUSH ROWS n, FLUSH INTERVAL s or FLUSH POLICY ...");
    }
    Ok(())
}

fn columns(
    defs: &[ColumnDef],
    constraints: &[TableConstraint],
) -> Result<(Vec<ColumnSpec>, String), ParseError> {
    let mut primary_keys = Vec::new();
    let mut columns: Vec<ColumnSpec> = Vec::new();
    if defs.len() > MAX_COLUMNS {
        return err(format!(
            "tables can have at most {MAX_COLUMNS} columns (this one has {})",
            defs.len()
        ));
    }
    for def in defs {
        let (spec, primary) = column_spec(def)?;
        if columns.iter().any(|c| c.name == spec.name) {
            return err(format!("column '{}' is declared twice", spec.name));
        }
        if primary {
            primary_keys.push(spec.name.clone());
        }
        columns.push(spec);
    }
    for constraint in constraints {
        match constraint {
            TableConstraint::PrimaryKey(pk) => {
                for column in &pk.columns {
                    match &column.column.expr {
                        Expr::Identifier(ident) => primary_keys.push(normalize(ident)),
                        other => return err(format!("PRIMARY KEY must name columns, got {other}")),
                    }
                }
            }
            other => return err(format!("unsupported table constraint {other}")),
        }
    }
    let primary_key = match primary_keys.as_slice() {
        [one] => one.clone(),
        [] => return err("a table needs a PRIMARY KEY column"),
        _ => {
            return err("composite primary keys are not supported; declare one PRIMARY KEY column")
        }
    };
    let Some(pk_column) = columns.iter_mut().find(|c| c.name == primary_key) else {
        return err(format!("PRIMARY KEY names unknown column '{primary_key}'"));
    };
    if !pk_column.data_type.can_be_primary_key() {
        return err(format!(
            "column '{primary_key}' of type {} cannot be a primary key",
            pk_column.data_type
        ));
    }
    pk_column.nullable = false;
    Ok((columns, primary_key))
}

/// One column definition, and whether it says PRIMARY KEY.
pub(crate) fn column_spec(def: &ColumnDef) -> Result<(ColumnSpec, bool), ParseError> {
    let name = normalize(&def.name);
    kalamdb_commons::validate_identifier("column", &name).map_err(ParseError)?;
    check_not_reserved(&name)?;
    let data_type = kalam_type_of(&def.data_type)?;
    let mut spec = ColumnSpec {
        name: name.clone(),
        data_type,
        nullable: true,
        default: is_serial(&def.data_type).then_some(ColumnDefault::SnowflakeId),
    };
    let mut primary = false;
    for option in &def.options {
        match &option.option {
            ColumnOption::Null => spec.nullable = true,
            ColumnOption::NotNull => spec.nullable = false,
            ColumnOption::Default(expr) => spec.default = Some(default_of(expr)),
            ColumnOption::PrimaryKey(_) => primary = true,
            ColumnOption::DialectSpecific(tokens)
                if tokens
                    .iter()
                    .any(|t| t.to_string().eq_ignore_ascii_case("AUTO_INCREMENT")) =>
            {
                spec.default = Some(ColumnDefault::SnowflakeId)
            }
            other => return err(format!("unsupported column option {other} on '{name}'")),
        }
    }
    Ok((spec, primary))
}

/// System column names cannot name a table's own columns.
pub(crate) fn check_not_reserved(name: &str) -> Result<(), ParseError> {
    if name.starts_with('_')
        && ["_seq", "_deleted", "_user_id"]
            .iter()
            .any(|r| name.eq_ignore_ascii_case(r))
    {
        return err(format!(
            "column name '{name}' is reserved for system columns"
        ));
    }
    Ok(())
}

pub(crate) fn default_of(expr: &Expr) -> ColumnDefault {
    let text = expr.to_string();
    match text.to_ascii_uppercase().as_str() {
        "SNOWFLAKE_ID()" => ColumnDefault::SnowflakeId,
        "NOW()" | "CURRENT_TIMESTAMP" | "CURRENT_TIMESTAMP()" => ColumnDefault::Now,
        "UUID_V7()" => ColumnDefault::UuidV7,
        "ULID()" => ColumnDefault::Ulid,
        "CURRENT_USER()" | "CURRENT_USER" => ColumnDefault::CurrentUser,
        _ => ColumnDefault::Expr(text),
    }
}

pub fn parse_drop(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::DROP)?;
    parser.expect_keyword(Keyword::TABLE)?;
    let if_exists = if_exists(parser);
    let table = parse_table_ref(parser)?;
    Ok(KalamStatement::DropTable { table, if_exists })
}

pub fn parse_show(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::SHOW)?;
    expect_word(parser, "TABLES")?;
    let namespace = if parser.parse_keyword(Keyword::IN) || parser.parse_keyword(Keyword::FROM) {
        let _ = parse_word(parser, "NAMESPACE");
        Some(parse_name(parser)?)
    } else {
        None
    };
    Ok(KalamStatement::ShowTables { namespace })
}

/// `SHOW STATS [FOR] [TABLE] [ns.]t`
pub fn parse_show_stats(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    parser.expect_keyword(Keyword::SHOW)?;
    expect_word(parser, "STATS")?;
    let _ = parser.parse_keyword(Keyword::FOR);
    let _ = parser.parse_keyword(Keyword::TABLE);
    let table = parse_table_ref(parser)?;
    Ok(KalamStatement::ShowStats { table })
}

pub fn parse_describe(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    if !(parse_word(parser, "DESCRIBE") || parse_word(parser, "DESC")) {
        return err("expected DESCRIBE");
    }
    let _ = parser.parse_keyword(Keyword::TABLE);
    let table = parse_table_ref(parser)?;
    let history = parse_word(parser, "HISTORY");
    Ok(KalamStatement::DescribeTable { table, history })
}
