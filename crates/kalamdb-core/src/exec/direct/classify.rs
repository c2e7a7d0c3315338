//! Which parsed queries a direct read can answer, read off the syntax tree.
//!
//! A shape is accepted only when the query holds nothing but the parts
//! understood here: the query is rebuilt from those parts alone and must
//! render to the same text as the original. So a clause this module does
//! not know (DISTINCT, GROUP BY, a join, a table sample, whatever a newer
//! parser adds) makes the two differ, and the query goes to the planner.

use kalamdb_sql::sqlparser::ast::{
    Expr, Ident, LimitClause, ObjectName, OrderByKind, Query, SelectItem, SetExpr, Statement,
    TableFactor, UnaryOperator, Value as SqlValue,
};

/// The most rows a direct `LIMIT` read returns; larger limits are planned
/// (their results are streamed and capped there).
pub const MAX_DIRECT_LIMIT: usize = 10_000;

/// A query answered from one scope's view without planning.
#[derive(Debug, Clone, PartialEq)]
pub enum DirectQuery {
    /// `SELECT <literals>`: the same result every time.
    Constant,
    Read(DirectRead),
}

/// `SELECT <* | columns | COUNT(*)> FROM [ns.]t [WHERE pk = k | pk IN (k, ...)]
/// [ORDER BY pk [ASC]] [LIMIT n]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectRead {
    /// As DataFusion normalizes them: unquoted names in lower case.
    pub namespace: Option<String>,
    pub table: String,
    pub output: Output,
    /// `WHERE column = k` or `column IN (k, ...)`; the column must be the
    /// primary key.
    pub filter: Option<(String, Vec<KeyArg>)>,
    /// `ORDER BY column [ASC]`; the column must be the primary key.
    pub order_by: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// `*`: every column, named as in the table.
    Star,
    /// (column, output name) pairs.
    Columns(Vec<(String, String)>),
    /// `COUNT(*)`, under this output name.
    Count(String),
}

/// A key as written: a number, a string, or a `$n` parameter (0-based).
#[derive(Debug, Clone, PartialEq)]
pub enum KeyArg {
    Number(String),
    Text(String),
    Param(usize),
}

impl DirectRead {
    /// Whether it reads a bounded number of rows: keys, or a LIMIT (a
    /// COUNT of a whole scope reads all of it).
    pub fn is_bounded(&self) -> bool {
        self.filter.is_some() || self.limit.is_some()
    }
}

/// What a direct read can answer of `statement`, if anything.
pub fn classify(statement: &Statement) -> Option<DirectQuery> {
    let Statement::Query(query) = statement else {
        return None;
    };
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let rebuilt = rebuild(query)?;
    if rebuilt.to_string() != query.to_string() {
        return None;
    }
    if select.from.is_empty() {
        let constant = query.order_by.is_none()
            && query.limit_clause.is_none()
            && select.selection.is_none()
            && select.projection.iter().all(|item| match item {
                SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                    is_literal(e)
                }
                _ => false,
            });
        return constant.then_some(DirectQuery::Constant);
    }
    let [from] = select.from.as_slice() else {
        return None;
    };
    let TableFactor::Table {
        name, alias: None, ..
    } = &from.relation
    else {
        return None;
    };
    // The relation renders as its bare name: no sample, hints, version
    // or arguments.
    if !from.joins.is_empty() || from.relation.to_string() != name.to_string() {
        return None;
    }
    let (namespace, table) = table_name(name)?;
    let output = output(&select.projection)?;
    let filter = match &select.selection {
        Some(selection) => Some(key_filter(selection)?),
        None => None,
    };
    let order_by = match &query.order_by {
        None => None,
        Some(order) => {
            let OrderByKind::Expressions(exprs) = &order.kind else {
                return None;
            };
            let [by] = exprs.as_slice() else {
                return None;
            };
            if by.options.asc == Some(false)
                || by.options.nulls_first.is_some()
                || by.with_fill.is_some()
                || order.interpolate.is_some()
            {
                return None;
            }
            Some(column_name(&by.expr)?)
        }
    };
    let limit = match &query.limit_clause {
        None => None,
        Some(LimitClause::LimitOffset {
            limit: Some(limit),
            offset: None,
            limit_by,
        }) if limit_by.is_empty() => {
            let Expr::Value(v) = limit else {
                return None;
            };
            let SqlValue::Number(n, false) = &v.value else {
                return None;
            };
            Some(n.parse::<usize>().ok().filter(|n| *n <= MAX_DIRECT_LIMIT)?)
        }
        Some(_) => return None,
    };
    // A scan of a whole scope is bounded only by the result caps, which the
    // planned path enforces while streaming; a COUNT reads without holding.
    if filter.is_none() && limit.is_none() && !matches!(output, Output::Count(_)) {
        return None;
    }
    // COUNT(*) with ORDER BY or LIMIT has a meaning of its own; plan it.
    if matches!(output, Output::Count(_)) && (order_by.is_some() || limit.is_some()) {
        return None;
    }
    Some(DirectQuery::Read(DirectRead {
        namespace,
        table,
        output,
        filter,
        order_by,
        limit,
    }))
}

/// The query with only the parts this module reads: projection, FROM,
/// WHERE, ORDER BY and LIMIT, everything else at its default.
fn rebuild(query: &Query) -> Option<Query> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    let mut rebuilt = super::super::query::select_statement(
        select.projection.clone(),
        None,
        select.selection.clone(),
    );
    let Statement::Query(q) = &mut rebuilt else {
        return None;
    };
    if let SetExpr::Select(s) = q.body.as_mut() {
        s.from = select.from.clone();
    }
    q.order_by = query.order_by.clone();
    q.limit_clause = query.limit_clause.clone();
    Some(*q.clone())
}

/// An identifier as DataFusion normalizes it.
fn normalized(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn table_name(name: &ObjectName) -> Option<(Option<String>, String)> {
    let parts: Vec<&Ident> = name.0.iter().map(|p| p.as_ident()).collect::<Option<_>>()?;
    match parts.as_slice() {
        [table] => Some((None, normalized(table))),
        [namespace, table] => Some((Some(normalized(namespace)), normalized(table))),
        _ => None,
    }
}

fn column_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(ident) => Some(normalized(ident)),
        _ => None,
    }
}

fn output(items: &[SelectItem]) -> Option<Output> {
    if let [item @ SelectItem::Wildcard(_)] = items {
        // A bare `*`: no EXCLUDE, EXCEPT, REPLACE, RENAME or ILIKE.
        return (item.to_string() == "*").then_some(Output::Star);
    }
    if let [item] = items {
        let (expr, alias) = match item {
            SelectItem::UnnamedExpr(e) => (e, None),
            SelectItem::ExprWithAlias { expr, alias } => (expr, Some(alias)),
            _ => return None,
        };
        if let Expr::Function(f) = expr {
            if !f.to_string().eq_ignore_ascii_case("count(*)") {
                return None;
            }
            let name = alias.map_or_else(|| "count(*)".to_string(), normalized);
            return Some(Output::Count(name));
        }
    }
    items
        .iter()
        .map(|item| match item {
            SelectItem::UnnamedExpr(e) => {
                let column = column_name(e)?;
                Some((column.clone(), column))
            }
            SelectItem::ExprWithAlias { expr, alias } => {
                Some((column_name(expr)?, normalized(alias)))
            }
            _ => None,
        })
        .collect::<Option<Vec<_>>>()
        .map(Output::Columns)
}

fn key_filter(selection: &Expr) -> Option<(String, Vec<KeyArg>)> {
    match selection {
        Expr::BinaryOp {
            left,
            op: kalamdb_sql::sqlparser::ast::BinaryOperator::Eq,
            right,
        } => {
            let (column, key) = match (column_name(left), column_name(right)) {
                (Some(column), None) => (column, key_arg(right)?),
                (None, Some(column)) => (column, key_arg(left)?),
                _ => return None,
            };
            Some((column, vec![key]))
        }
        Expr::InList {
            expr,
            list,
            negated: false,
        } => Some((
            column_name(expr)?,
            list.iter().map(key_arg).collect::<Option<Vec<_>>>()?,
        )),
        _ => None,
    }
}

fn key_arg(expr: &Expr) -> Option<KeyArg> {
    match expr {
        Expr::Value(v) => match &v.value {
            SqlValue::Number(n, false) => Some(KeyArg::Number(n.clone())),
            SqlValue::SingleQuotedString(s) => Some(KeyArg::Text(s.clone())),
            SqlValue::Placeholder(p) => {
                let n: usize = p.strip_prefix('$')?.parse().ok()?;
                Some(KeyArg::Param(n.checked_sub(1)?))
            }
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            Expr::Value(v) => match &v.value {
                SqlValue::Number(n, false) => Some(KeyArg::Number(format!("-{n}"))),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn is_literal(expr: &Expr) -> bool {
    match expr {
        Expr::Value(v) => matches!(
            v.value,
            SqlValue::Number(_, false)
                | SqlValue::SingleQuotedString(_)
                | SqlValue::Boolean(_)
                | SqlValue::Null
        ),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => {
            matches!(expr.as_ref(), Expr::Value(v) if matches!(v.value, SqlValue::Number(_, false)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(sql: &str) -> Option<DirectQuery> {
        match kalamdb_sql::parse_statement(sql).unwrap() {
            kalamdb_sql::KalamStatement::Standard(s) => classify(&s),
            _ => None,
        }
    }

    fn read(sql: &str) -> DirectRead {
        match of(sql) {
            Some(DirectQuery::Read(r)) => r,
            other => panic!("{sql}: {other:?}"),
        }
    }

    #[test]
    fn point_lookups_and_their_keys() {
        let r = read("SELECT * FROM app.Msgs WHERE id = 5000");
        assert_eq!(r.namespace.as_deref(), Some("app"));
        assert_eq!(r.table, "msgs");
        assert_eq!(r.output, Output::Star);
        assert_eq!(
            r.filter,
            Some(("id".into(), vec![KeyArg::Number("5000".into())]))
        );
        let r = read("select a, B as \"Bee\" from t where '7' = ID");
        assert_eq!(
            r.output,
            Output::Columns(vec![("a".into(), "a".into()), ("b".into(), "Bee".into())])
        );
        assert_eq!(
            r.filter,
            Some(("id".into(), vec![KeyArg::Text("7".into())]))
        );
        let r = read("SELECT * FROM t WHERE id IN ($1, -3, 'x')");
        assert_eq!(
            r.filter.unwrap().1,
            vec![
                KeyArg::Param(0),
                KeyArg::Number("-3".into()),
                KeyArg::Text("x".into())
            ]
        );
    }

    #[test]
    fn limits_orders_and_counts() {
        let r = read("SELECT * FROM t ORDER BY id LIMIT 10");
        assert_eq!((r.order_by.as_deref(), r.limit), (Some("id"), Some(10)));
        assert_eq!(
            read("SELECT * FROM t ORDER BY id ASC LIMIT 0").limit,
            Some(0)
        );
        assert_eq!(
            read("SELECT COUNT(*) FROM t").output,
            Output::Count("count(*)".into())
        );
        assert_eq!(
            read("SELECT count(*) AS n FROM t").output,
            Output::Count("n".into())
        );
        assert_eq!(of("SELECT 1"), Some(DirectQuery::Constant));
        assert_eq!(
            of("SELECT 1 AS one, 'a', -2.5, NULL, TRUE"),
            Some(DirectQuery::Constant)
        );
    }

    #[test]
    fn everything_else_is_planned() {
        for sql in [
            "SELECT * FROM t",
            "SELECT DISTINCT * FROM t LIMIT 5",
            "SELECT * FROM t WHERE id = 1 AND x = 2",
            "SELECT * FROM t WHERE id NOT IN (1)",
            "SELECT * FROM t WHERE id = 1 + 1",
            "SELECT * FROM t ORDER BY id DESC LIMIT 5",
            "SELECT * FROM t ORDER BY id NULLS FIRST LIMIT 5",
            "SELECT * FROM t LIMIT 5 OFFSET 1",
            "SELECT * FROM t LIMIT 100000",
            "SELECT * FROM t AS x LIMIT 5",
            "SELECT * FROM t, u LIMIT 5",
            "SELECT * FROM t JOIN u ON t.id = u.id LIMIT 5",
            "SELECT * FROM a.b.c LIMIT 5",
            "SELECT t.id FROM t LIMIT 5",
            "SELECT id + 1 FROM t LIMIT 5",
            "SELECT * EXCLUDE (x) FROM t LIMIT 5",
            "SELECT * EXCEPT (x) FROM t LIMIT 5",
            "SELECT * FROM t TABLESAMPLE (10 ROWS) LIMIT 5",
            "SELECT * FROM t FINAL LIMIT 5",
            "SELECT COUNT(*) FILTER (WHERE id > 1) FROM t",
            "SELECT COUNT(*) OVER () FROM t",
            "SELECT * FROM t GROUP BY id LIMIT 5",
            "SELECT COUNT(*) FROM t LIMIT 1",
            "SELECT COUNT(id) FROM t",
            "SELECT COUNT(DISTINCT id) FROM t",
            "WITH x AS (SELECT 1) SELECT * FROM t LIMIT 5",
            "SELECT * FROM t WHERE id = 1 UNION SELECT * FROM t WHERE id = 2",
            "SELECT now()",
            "SELECT 1 + 1",
            "SELECT $1",
            "SELECT 1 FROM t LIMIT 1",
            "SELECT * FROM t WHERE id = $0",
        ] {
            assert_eq!(of(sql), None, "{sql}");
        }
    }
}
