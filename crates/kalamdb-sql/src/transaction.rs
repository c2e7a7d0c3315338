//! `BEGIN [TRANSACTION | WORK]` / `START TRANSACTION`, `COMMIT` / `END
//! [TRANSACTION | WORK]`, `ROLLBACK` / `ABORT [TRANSACTION | WORK]`.
//! Transactions have snapshot isolation; the isolation levels that give it
//! or less (PostgreSQL's `REPEATABLE READ`, `READ COMMITTED`) are accepted,
//! `SERIALIZABLE` (which would promise more) is refused. Savepoints and
//! chained transactions are not supported.

use crate::error::err;
use crate::parse::parse_word;
use crate::{KalamStatement, ParseError};
use sqlparser::parser::Parser;

fn work_or_transaction(parser: &mut Parser<'_>) {
    let _ = parse_word(parser, "TRANSACTION") || parse_word(parser, "WORK");
}

pub fn parse_begin(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    if parse_word(parser, "START") {
        if !parse_word(parser, "TRANSACTION") {
            return err("expected START TRANSACTION");
        }
    } else if parse_word(parser, "BEGIN") {
        work_or_transaction(parser);
    } else {
        return err("expected BEGIN or START TRANSACTION");
    }
    if parse_word(parser, "ISOLATION") {
        if !parse_word(parser, "LEVEL") {
            return err("expected ISOLATION LEVEL");
        }
        let repeatable = parse_word(parser, "REPEATABLE") && parse_word(parser, "READ");
        let committed = !repeatable
            && parse_word(parser, "READ")
            && (parse_word(parser, "COMMITTED") || parse_word(parser, "UNCOMMITTED"));
        let snapshot = !repeatable && !committed && parse_word(parser, "SNAPSHOT");
        if !(repeatable || committed || snapshot) {
            return err(
                "KalamDB transactions have snapshot isolation: ISOLATION LEVEL SERIALIZABLE \
                 is not offered (REPEATABLE READ, READ COMMITTED and SNAPSHOT run as snapshot isolation)",
            );
        }
    }
    Ok(KalamStatement::Begin)
}

pub fn parse_commit(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    if !(parse_word(parser, "COMMIT") || parse_word(parser, "END")) {
        return err("expected COMMIT");
    }
    work_or_transaction(parser);
    Ok(KalamStatement::Commit)
}

pub fn parse_rollback(parser: &mut Parser<'_>) -> Result<KalamStatement, ParseError> {
    if !(parse_word(parser, "ROLLBACK") || parse_word(parser, "ABORT")) {
        return err("expected ROLLBACK");
    }
    work_or_transaction(parser);
    if parse_word(parser, "TO") {
        return err("savepoints are not supported");
    }
    Ok(KalamStatement::Rollback)
}

#[cfg(test)]
mod tests {
    use crate::{parse_batch, parse_statement, KalamStatement};

    #[test]
    fn every_spelling_parses() {
        for sql in [
            "BEGIN",
            "begin transaction",
            "BEGIN WORK",
            "START TRANSACTION",
            "START TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "BEGIN ISOLATION LEVEL READ COMMITTED",
        ] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::Begin,
                "{sql}"
            );
        }
        for sql in ["COMMIT", "COMMIT WORK", "END", "END TRANSACTION"] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::Commit,
                "{sql}"
            );
        }
        for sql in ["ROLLBACK", "ROLLBACK TRANSACTION", "ABORT"] {
            assert_eq!(
                parse_statement(sql).unwrap(),
                KalamStatement::Rollback,
                "{sql}"
            );
        }
        let batch = parse_batch("BEGIN; INSERT INTO t (id) VALUES (1); COMMIT").unwrap();
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[0], KalamStatement::Begin);
        assert_eq!(batch[2], KalamStatement::Commit);
    }

    #[test]
    fn what_is_not_offered_is_a_clear_error() {
        for (sql, says) in [
            ("BEGIN ISOLATION LEVEL SERIALIZABLE", "snapshot isolation"),
            ("ROLLBACK TO SAVEPOINT a", "savepoints"),
            ("START WORK", "START TRANSACTION"),
            ("COMMIT AND CHAIN", "unexpected"),
        ] {
            let e = parse_statement(sql).unwrap_err().0;
            assert!(e.contains(says), "{sql}: {e}");
        }
    }
}
