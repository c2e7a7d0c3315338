//! The JSON operators as PostgreSQL reads them, on top of sqlparser's
//! generic dialect (which the rest of our SQL surface relies on):
//!
//! - `?` (key exists) is a binary operator, not a placeholder: our
//!   parameters are `$n`, so a bare `?` token becomes the operator.
//! - `->`, `->>`, `#>`, `#>>` and `?` bind tighter than comparisons, `IS`,
//!   `LIKE`, `IN` and `BETWEEN`, and group left to right with `||`, `&` and
//!   `|`, as in PostgreSQL. The generic dialect ranks them below all of
//!   those, so `doc->>'k' = 'v'` parses as `doc ->> ('k' = 'v')`. The parsed
//!   tree is rotated back into PostgreSQL's shape. Parentheses the user
//!   wrote are kept as written (`Expr::Nested` is never rotated through).

use sqlparser::ast::{visit_expressions_mut, BinaryOperator, Expr, Statement};
use sqlparser::tokenizer::{Token, TokenWithSpan};
use std::ops::ControlFlow;

/// A bare `?` is the key-exists operator.
pub fn question_tokens(mut tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    for t in &mut tokens {
        if matches!(&t.token, Token::Placeholder(p) if p == "?") {
            t.token = Token::Question;
        }
    }
    tokens
}

fn is_json_op(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Arrow
            | BinaryOperator::LongArrow
            | BinaryOperator::HashArrow
            | BinaryOperator::HashLongArrow
            | BinaryOperator::Question
    )
}

/// Binary operators PostgreSQL ranks below the JSON operators, or beside
/// them (left-associative), which the generic dialect ranks above them.
fn looser(op: &BinaryOperator) -> bool {
    matches!(
        op,
        BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq
            | BinaryOperator::Spaceship
            | BinaryOperator::StringConcat
            | BinaryOperator::BitwiseAnd
            | BinaryOperator::BitwiseOr
    )
}

/// The leftmost operand of an expression whose operator PostgreSQL ranks
/// looser than (or beside) the JSON operators.
fn leftmost_operand(e: &mut Expr) -> Option<&mut Box<Expr>> {
    match e {
        Expr::BinaryOp { left, op, .. } if looser(op) => Some(left),
        Expr::IsNull(x)
        | Expr::IsNotNull(x)
        | Expr::IsTrue(x)
        | Expr::IsNotTrue(x)
        | Expr::IsFalse(x)
        | Expr::IsNotFalse(x)
        | Expr::IsUnknown(x)
        | Expr::IsNotUnknown(x)
        | Expr::IsDistinctFrom(x, _)
        | Expr::IsNotDistinctFrom(x, _) => Some(x),
        Expr::Like { expr, .. }
        | Expr::ILike { expr, .. }
        | Expr::InList { expr, .. }
        | Expr::InSubquery { expr, .. }
        | Expr::Between { expr, .. } => Some(expr),
        _ => None,
    }
}

fn null() -> Expr {
    Expr::value(sqlparser::ast::Value::Null)
}

/// `left op right` where the generic parse put too much into `right`: the
/// JSON operator takes only `right`'s leftmost operand.
fn attach_right(left: Expr, op: BinaryOperator, mut right: Expr) -> Expr {
    match leftmost_operand(&mut right) {
        Some(slot) => {
            let operand = std::mem::replace(slot.as_mut(), null());
            **slot = attach_right(left, op, operand);
            right
        }
        None => Expr::BinaryOp {
            left: Box::new(left),
            op,
            right: Box::new(right),
        },
    }
}

/// Comparisons: PostgreSQL ranks them strictly below the JSON operators.
fn comparison(op: &BinaryOperator) -> bool {
    looser(op)
        && !matches!(
            op,
            BinaryOperator::StringConcat | BinaryOperator::BitwiseAnd | BinaryOperator::BitwiseOr
        )
}

/// The rightmost operand of a comparison, or a `LIKE`'s pattern: where a
/// JSON operator after it belongs.
fn rightmost_operand(e: &mut Expr) -> Option<&mut Box<Expr>> {
    match e {
        Expr::BinaryOp { op, right, .. } if comparison(op) => Some(right),
        Expr::Like {
            pattern,
            escape_char: None,
            ..
        }
        | Expr::ILike {
            pattern,
            escape_char: None,
            ..
        } => Some(pattern),
        _ => None,
    }
}

/// `left op right` regrouped. The generic parse may also have let a
/// comparison on the left take what belongs to the JSON operator:
/// `a = b ->> 'k'` arrives as `(a = b) ->> 'k'` and must read
/// `a = (b ->> 'k')`; the same for `LIKE`'s pattern.
fn combine(mut left: Expr, op: BinaryOperator, right: Expr) -> Expr {
    match rightmost_operand(&mut left) {
        Some(slot) => {
            let operand = std::mem::replace(slot.as_mut(), null());
            **slot = combine(operand, op, right);
            left
        }
        None => attach_right(left, op, right),
    }
}

fn regroup(expr: &mut Expr) {
    if !matches!(expr, Expr::BinaryOp { op, .. } if is_json_op(op)) {
        return;
    }
    if let Expr::BinaryOp { left, op, right } = std::mem::replace(expr, null()) {
        *expr = combine(*left, op, *right);
    }
}

/// Regroups every JSON operator of a statement as PostgreSQL would.
pub fn regroup_statement(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |e| {
        regroup(e);
        ControlFlow::<()>::Continue(())
    });
}

/// Regroups every JSON operator of an expression.
pub fn regroup_expr(expr: &mut Expr) {
    let _ = visit_expressions_mut(expr, |e| {
        regroup(e);
        ControlFlow::<()>::Continue(())
    });
}

#[cfg(test)]
mod tests {
    use crate::parse::parse_expr;
    use sqlparser::ast::Expr;

    /// The tree, fully parenthesised.
    fn shape(e: &Expr) -> String {
        match e {
            Expr::BinaryOp { left, op, right } => {
                format!("({} {op} {})", shape(left), shape(right))
            }
            Expr::IsNull(e) => format!("({} IS NULL)", shape(e)),
            Expr::Like { expr, pattern, .. } => {
                format!("({} LIKE {})", shape(expr), shape(pattern))
            }
            Expr::InList { expr, list, .. } => format!(
                "({} IN {})",
                shape(expr),
                list.iter().map(shape).collect::<Vec<_>>().join(",")
            ),
            Expr::Between {
                expr, low, high, ..
            } => {
                format!(
                    "({} BETWEEN {} AND {})",
                    shape(expr),
                    shape(low),
                    shape(high)
                )
            }
            Expr::Nested(e) => format!("[{}]", shape(e)),
            other => other.to_string(),
        }
    }

    fn parsed(sql: &str) -> String {
        shape(&parse_expr(sql).unwrap())
    }

    #[test]
    fn json_operators_bind_as_in_postgres() {
        for (sql, want) in [
            ("d->>'k' = 'v'", "((d ->> 'k') = 'v')"),
            ("'v' = d->>'k'", "('v' = (d ->> 'k'))"),
            ("d->>'a' = e->>'b'", "((d ->> 'a') = (e ->> 'b'))"),
            ("d->'a'->>'b' <> 'x'", "(((d -> 'a') ->> 'b') <> 'x')"),
            ("d->>'k' IS NULL", "((d ->> 'k') IS NULL)"),
            ("d->>'k' LIKE 'a%'", "((d ->> 'k') LIKE 'a%')"),
            ("x LIKE d->>'k'", "(x LIKE (d ->> 'k'))"),
            ("d->>'k' IN ('a', 'b')", "((d ->> 'k') IN 'a','b')"),
            ("d->>'n' BETWEEN 1 AND 2", "((d ->> 'n') BETWEEN 1 AND 2)"),
            ("d->>'k' || 'x'", "((d ->> 'k') || 'x')"),
            (
                "d ? 'k' AND d->>'k' = 'v'",
                "((d ? 'k') AND ((d ->> 'k') = 'v'))",
            ),
            ("NOT d ? 'k'", "NOT d ? 'k'"),
            // Tighter operators stay inside, as in PostgreSQL.
            ("d->>'k' + 1", "(d ->> ('k' + 1))"),
            // Parentheses as written.
            ("d->>('k' = 'v')", "(d ->> [('k' = 'v')])"),
            ("(a = b)->>'k'", "([(a = b)] ->> 'k')"),
        ] {
            assert_eq!(parsed(sql), want, "{sql}");
        }
    }

    #[test]
    fn statements_are_regrouped_and_print_back_the_same() {
        let statement = crate::parse_statement(
            "SELECT id FROM t WHERE doc->>'kind' = 'a' AND doc ? 'tags' ORDER BY doc->>'n'",
        )
        .unwrap();
        let text = match statement {
            crate::KalamStatement::Standard(s) => s.to_string(),
            other => panic!("{other:?}"),
        };
        // Printed without parentheses, it parses to the same tree again.
        let again = crate::parse_statement(&text).unwrap();
        match again {
            crate::KalamStatement::Standard(s) => assert_eq!(s.to_string(), text),
            other => panic!("{other:?}"),
        }
    }
}
