//! `SUBSCRIBE TO [ns.]t [WHERE cond] [OPTIONS (last_rows=n, batch_size=n, from_seq_id=n)]`
//! `KILL LIVE QUERY '<id>'`, and `KILL QUERY '<id>'` (a running statement).

use crate::parse::{expect_word, parse_string_or_ident, parse_table_ref, parse_word};
use crate::statement::LiveOptions;
use crate::{KalamStatement, ParseError};
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

pub fn parse_subscribe(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "SUBSCRIBE")?;
    expect_word(parser, "TO")?;
    let table = parse_table_ref(parser)?;
    let selection = if parser.parse_keyword(Keyword::WHERE) {
        let mut expr = parser.parse_expr()?;
        crate::json_ops::regroup_expr(&mut expr);
        Some(expr)
    } else {
        None
    };
    let mut options = LiveOptions::default();
    if parse_word(parser, "OPTIONS") {
        parser.expect_token(&Token::LParen)?;
        loop {
            let key = crate::parse::parse_name(parser)?;
            parser.expect_token(&Token::Eq)?;
            let value = match parser.next_token().token {
                Token::Number(n, _) => n.parse::<u64>().map_err(|_| {
                    ParseError(format!(
                        "option {key} needs a non-negative integer, not {n}"
                    ))
                })?,
                other => {
                    return Err(ParseError(format!(
                        "option {key} needs a non-negative integer, found '{other}'"
                    )))
                }
            };
            let slot = match key.as_str() {
                "last_rows" => &mut options.last_rows,
                "batch_size" => &mut options.batch_size,
                "from_seq_id" => &mut options.from_seq_id,
                other => {
                    return Err(ParseError(format!(
                        "unknown option '{other}'; expected last_rows, batch_size or from_seq_id"
                    )))
                }
            };
            if slot.replace(value).is_some() {
                return Err(ParseError(format!("option {key} is given twice")));
            }
            if !parser.consume_token(&Token::Comma) {
                break;
            }
        }
        parser.expect_token(&Token::RParen)?;
    }
    Ok(KalamStatement::Subscribe {
        table,
        selection: selection.map(|e| e.to_string()),
        options,
    })
}

pub fn parse_kill(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "KILL")?;
    let live = parse_word(parser, "LIVE");
    expect_word(parser, "QUERY")?;
    let token = parser.peek_token();
    let parsed = parse_string_or_ident(parser)?;
    // Ids are case-sensitive: a bare word is taken as written.
    let id = match token.token {
        Token::Word(w) => w.value,
        _ => parsed,
    };
    Ok(if live {
        KalamStatement::KillLiveQuery { live_id: id }
    } else {
        KalamStatement::KillQuery { query_id: id }
    })
}

#[cfg(test)]
mod tests {
    use crate::statement::LiveOptions;
    use crate::{parse_statement, KalamStatement, TableRef};

    #[test]
    fn subscribe_to() {
        let parsed = parse_statement(
            "SUBSCRIBE TO app.messages WHERE room = 'a' AND n > 2 OPTIONS (last_rows=10, batch_size = 5)",
        )
        .unwrap();
        assert_eq!(
            parsed,
            KalamStatement::Subscribe {
                table: TableRef {
                    namespace: Some("app".into()),
                    table: "messages".into()
                },
                selection: Some("room = 'a' AND n > 2".into()),
                options: LiveOptions {
                    last_rows: Some(10),
                    batch_size: Some(5),
                    from_seq_id: None
                },
            }
        );
        assert!(matches!(
            parse_statement("SUBSCRIBE TO t").unwrap(),
            KalamStatement::Subscribe {
                selection: None,
                ..
            }
        ));
        for bad in [
            "SUBSCRIBE TO",
            "SUBSCRIBE app.t",
            "SUBSCRIBE TO t OPTIONS (last_rows = -1)",
            "SUBSCRIBE TO t OPTIONS (colour = 1)",
            "SUBSCRIBE TO t OPTIONS (last_rows = 1, last_rows = 2)",
            "SUBSCRIBE TO t OPTIONS last_rows = 1",
            "SUBSCRIBE TO t WHERE",
        ] {
            assert!(parse_statement(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn kill_live_query() {
        assert_eq!(
            parse_statement("KILL LIVE QUERY 'c7-Sub1'").unwrap(),
            KalamStatement::KillLiveQuery {
                live_id: "c7-Sub1".into()
            }
        );
        assert_eq!(
            parse_statement("KILL QUERY 'cli-7'").unwrap(),
            KalamStatement::KillQuery {
                query_id: "cli-7".into()
            }
        );
        assert!(parse_statement("KILL QUERY").is_err());
        assert!(parse_statement("KILL LIVE QUERY").is_err());
        assert!(parse_statement("KILL LIVE 'x'").is_err());
    }
}
