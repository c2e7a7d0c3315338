//! `KILL JOB '<id>'`.

use crate::parse::{expect_word, parse_string_or_ident};
use crate::{KalamStatement, ParseError};
use sqlparser::parser::Parser;

pub fn parse_kill(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    expect_word(parser, "KILL")?;
    expect_word(parser, "JOB")?;
    let token = parser.peek_token();
    let job_id = parse_string_or_ident(parser)?;
    // Ids are case-sensitive; a bare word was lower-cased, so take it as written.
    let job_id = match token.token {
        sqlparser::tokenizer::Token::Word(w) => w.value,
        _ => job_id,
    };
    Ok(KalamStatement::KillJob { job_id })
}

#[cfg(test)]
mod tests {
    use crate::{parse_statement, KalamStatement};

    #[test]
    fn kill_job() {
        let want = KalamStatement::KillJob {
            job_id: "FL-00AB".into(),
        };
        assert_eq!(parse_statement("KILL JOB 'FL-00AB'").unwrap(), want);
        assert!(parse_statement("KILL JOB").is_err());
        assert!(parse_statement("KILL 'x'").is_err());
    }
}
