//! INSERT. Plain `VALUES` lists of literals, parameters and the KalamDB
//! default functions are evaluated here directly (the common, latency
//! sensitive case); other expressions and `INSERT ... SELECT` go through
//! DataFusion.

use super::write::write_new_rows;
use super::{Session, StatementResult};
use crate::catalog::{DefaultSpec, TableDef};
use crate::error::{CoreError, Result};
use crate::values::{
    cast_to_column, coerce_lit, coerce_number, coerce_scalar, coerce_str, param_to_lit, value_at,
    Lit,
};
use datafusion::scalar::ScalarValue;
use kalamdb_commons::{KalamType, Value};
use kalamdb_sql::sqlparser::ast::{
    Expr, FunctionArguments, Insert, ObjectName, SetExpr, Statement, TableObject, UnaryOperator,
    Value as SqlValue,
};
use kalamdb_sql::{FastInsert, Literal};

pub async fn insert(s: &Session<'_>, insert: &Insert) -> Result<StatementResult> {
    if insert.on.is_some() || insert.returning.is_some() || insert.or.is_some() {
        return Err(CoreError::exec(
            "INSERT ... ON CONFLICT/RETURNING/OR is not supported",
        ));
    }
    let TableObject::TableName(name) = &insert.table else {
        return Err(CoreError::exec(
            "INSERT into a table function is not supported",
        ));
    };
    let def = s.resolve_object_name(name)?;
    s.check_write(&def)?;
    let targets = target_columns(&def, &insert.columns)?;
    let Some(source) = &insert.source else {
        return Err(CoreError::exec("INSERT needs VALUES or a SELECT"));
    };
    let rows = match source.body.as_ref() {
        SetExpr::Values(values) if source.order_by.is_none() && source.limit_clause.is_none() => {
            let mut rows = Vec::with_capacity(values.rows.len());
            for row in &values.rows {
                rows.push(eval_row(s, &def, &targets, &row.content).await?);
            }
            rows
        }
        _ => select_rows(s, &def, &targets, Statement::Query(source.clone())).await?,
    };
    let count = rows.len();
    write_new_rows(s, &def, rows).await?;
    Ok(StatementResult::affected(&s.caller, count, "Inserted"))
}

/// INSERT of literal rows read by the SQL front end's fast path. Values are
/// converted straight from the statement text into the column types.
pub async fn insert_literals(s: &Session<'_>, insert: &FastInsert) -> Result<StatementResult> {
    let def = s.resolve_table(&insert.table)?;
    s.check_write(&def)?;
    let targets = target_indices(&def, &insert.columns)?;
    let mut given = vec![false; def.columns.len()];
    for &index in &targets {
        given[index] = true;
    }
    // Defaults may need evaluating (asynchronously); most bulk loads give
    // every column or leave out only columns without one.
    let needs_defaults = def
        .columns
        .iter()
        .zip(&given)
        .any(|(column, given)| !given && column.default.is_some());
    let mut rows = Vec::with_capacity(insert.row_count());
    for literals in insert.rows() {
        check_arity(targets.len(), literals.len())?;
        let mut row = vec![Value::Null; def.columns.len()];
        for (&index, literal) in targets.iter().zip(literals.literals()) {
            let column = &def.columns[index];
            let (t, name) = (column.data_type, column.name.as_str());
            row[index] = match literal {
                Literal::Null => Value::Null,
                Literal::Bool(b) => coerce_lit(&Lit::Bool(b), t, name)?,
                Literal::Number(n) => coerce_number(n, t, name)?,
                Literal::Str(text) => coerce_str(&text, t, name)?,
                Literal::Placeholder(p) => coerce_lit(&param(s, p)?, t, name)?,
            };
        }
        if needs_defaults {
            fill_defaults(s, &def, &given, &mut row).await?;
        } else {
            check_not_null(&def, &row)?;
        }
        rows.push(row);
    }
    let count = rows.len();
    write_new_rows(s, &def, rows).await?;
    Ok(StatementResult::affected(&s.caller, count, "Inserted"))
}

/// Gives the columns an INSERT left out their defaults, then checks NOT NULL.
async fn fill_defaults(
    s: &Session<'_>,
    def: &TableDef,
    given: &[bool],
    row: &mut [Value],
) -> Result<()> {
    for ((column, value), given) in def.columns.iter().zip(row.iter_mut()).zip(given) {
        if !given {
            if let Some(default) = &column.default {
                *value = default_value(s, default, column.data_type, &column.name).await?;
            }
        }
        if value.is_null() && !column.nullable {
            return Err(not_null(&column.name));
        }
    }
    Ok(())
}

fn check_not_null(def: &TableDef, row: &[Value]) -> Result<()> {
    match def
        .columns
        .iter()
        .zip(row)
        .find(|(column, value)| value.is_null() && !column.nullable)
    {
        Some((column, _)) => Err(not_null(&column.name)),
        None => Ok(()),
    }
}

fn not_null(column: &str) -> CoreError {
    CoreError::exec(format!(
        "NULL value in column '{column}' violates its NOT NULL constraint"
    ))
}

fn check_arity(targets: usize, values: usize) -> Result<()> {
    if targets == values {
        Ok(())
    } else {
        Err(CoreError::exec(format!(
            "INSERT has {targets} target column(s) but {values} value(s)"
        )))
    }
}

fn column_name(name: &ObjectName) -> Result<String> {
    let last = name
        .0
        .last()
        .and_then(|p| p.as_ident())
        .ok_or_else(|| CoreError::exec(format!("invalid column name {name}")))?;
    Ok(kalamdb_sql::normalize_ident(last))
}

fn target_columns(def: &TableDef, columns: &[ObjectName]) -> Result<Vec<usize>> {
    let names = columns
        .iter()
        .map(column_name)
        .collect::<Result<Vec<_>>>()?;
    target_indices(def, &names)
}

/// Indices of the columns an INSERT gives values for, in its order.
fn target_indices(def: &TableDef, names: &[String]) -> Result<Vec<usize>> {
    if names.is_empty() {
        return Ok((0..def.columns.len()).collect());
    }
    let mut targets = Vec::with_capacity(names.len());
    for name in names {
        let name = name.clone();
        let index = def.column_index(&name).ok_or_else(|| {
            CoreError::exec(format!(
                "column '{name}' does not exist in table '{}'",
                def.qualified_name()
            ))
        })?;
        if targets.contains(&index) {
            return Err(CoreError::exec(format!("column '{name}' is given twice")));
        }
        targets.push(index);
    }
    Ok(targets)
}

async fn eval_row(
    s: &Session<'_>,
    def: &TableDef,
    targets: &[usize],
    exprs: &[Expr],
) -> Result<Vec<Value>> {
    check_arity(targets.len(), exprs.len())?;
    let mut row: Vec<Option<Value>> = vec![None; def.columns.len()];
    for (&index, expr) in targets.iter().zip(exprs) {
        let column = &def.columns[index];
        row[index] = Some(eval_expr(s, expr, column.data_type, &column.name).await?);
    }
    complete_row(s, def, row).await
}

/// Fills defaults and checks NOT NULL.
pub(super) async fn complete_row(
    s: &Session<'_>,
    def: &TableDef,
    row: Vec<Option<Value>>,
) -> Result<Vec<Value>> {
    let given: Vec<bool> = row.iter().map(Option::is_some).collect();
    let mut values: Vec<Value> = row.into_iter().map(|v| v.unwrap_or(Value::Null)).collect();
    fill_defaults(s, def, &given, &mut values).await?;
    Ok(values)
}

/// The value of a KalamDB built-in function, if `name` is one.
fn builtin(s: &Session<'_>, name: &str, t: KalamType, column: &str) -> Option<Result<Value>> {
    let lit = match name {
        "snowflake_id" => Lit::Number(s.services.ids.next_id().to_string()),
        "uuid_v7" => Lit::Str(crate::ids::uuid_v7()),
        "ulid" => Lit::Str(crate::ids::ulid()),
        "current_user" => Lit::Str(s.caller.user_id.to_string()),
        "now" | "current_timestamp" => {
            let micros = s.services.clock.now_micros();
            return Some(match t {
                KalamType::Timestamp => Ok(Value::Timestamp(micros)),
                KalamType::BigInt => Ok(Value::I64(micros)),
                KalamType::Date => Ok(Value::Date(micros.div_euclid(86_400_000_000) as i32)),
                KalamType::Time => Ok(Value::Time(micros.rem_euclid(86_400_000_000))),
                _ => Err(CoreError::exec(format!(
                    "NOW() cannot be stored in column '{column}' of type {}",
                    t.name()
                ))),
            });
        }
        _ => return None,
    };
    Some(coerce_lit(&lit, t, column))
}

fn param(s: &Session<'_>, placeholder: &str) -> Result<Lit> {
    let index: usize = placeholder
        .strip_prefix('$')
        .and_then(|n| n.parse().ok())
        .filter(|n| *n >= 1)
        .ok_or_else(|| {
            CoreError::InvalidParameter(format!("unsupported placeholder {placeholder}"))
        })?;
    let value = s.params.get(index - 1).ok_or_else(|| {
        CoreError::InvalidParameter(format!(
            "placeholder {placeholder} has no value ({} parameter(s) given)",
            s.params.len()
        ))
    })?;
    param_to_lit(index - 1, value)
}

/// A literal or parameter written directly, or None if `expr` needs evaluating.
fn literal(s: &Session<'_>, expr: &Expr) -> Option<Result<Lit>> {
    match expr {
        Expr::Value(v) => Some(match &v.value {
            SqlValue::Number(n, _) => Ok(Lit::Number(n.to_string())),
            SqlValue::SingleQuotedString(t)
            | SqlValue::EscapedStringLiteral(t)
            | SqlValue::DoubleQuotedString(t) => Ok(Lit::Str(t.clone())),
            SqlValue::Boolean(b) => Ok(Lit::Bool(*b)),
            SqlValue::Null => Ok(Lit::Null),
            SqlValue::Placeholder(p) => param(s, p),
            _ => return None,
        }),
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => match literal(s, expr)? {
            Ok(Lit::Number(n)) if !n.starts_with('-') => Some(Ok(Lit::Number(format!("-{n}")))),
            _ => None,
        },
        Expr::Nested(inner) => literal(s, inner),
        _ => None,
    }
}

async fn eval_expr(s: &Session<'_>, expr: &Expr, t: KalamType, column: &str) -> Result<Value> {
    if let Some(lit) = literal(s, expr) {
        return coerce_lit(&lit?, t, column);
    }
    if let Expr::Function(f) = expr {
        let no_args = match &f.args {
            FunctionArguments::None => true,
            FunctionArguments::List(list) => list.args.is_empty() && list.clauses.is_empty(),
            FunctionArguments::Subquery(_) => false,
        };
        if no_args {
            let name = f.name.to_string().to_ascii_lowercase();
            if let Some(value) = builtin(s, &name, t, column) {
                return value;
            }
        }
    }
    if let Expr::Identifier(ident) = expr {
        if ident.quote_style.is_none() {
            let name = ident.value.to_ascii_lowercase();
            if let Some(value) = builtin(s, &name, t, column) {
                return value;
            }
        }
    }
    let scalar = eval_with_datafusion(s, expr).await?;
    coerce_scalar(&scalar, t, column)
}

/// Evaluates a constant expression as the query `SELECT <expr>`, built from
/// its syntax tree.
async fn eval_with_datafusion(s: &Session<'_>, expr: &Expr) -> Result<ScalarValue> {
    let statement = super::query::select_statement(
        vec![kalamdb_sql::sqlparser::ast::SelectItem::UnnamedExpr(
            expr.clone(),
        )],
        None,
        None,
    );
    let stream = s.plan(statement).await?.execute(s.query).await?;
    let batches = super::limits::collect_bounded(stream, &s.query.limits, None)
        .await?
        .batches;
    let batch = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| CoreError::exec(format!("expression {expr} produced no value")))?;
    Ok(ScalarValue::try_from_array(batch.column(0), 0)?)
}

pub(super) async fn default_value(
    s: &Session<'_>,
    default: &DefaultSpec,
    t: KalamType,
    column: &str,
) -> Result<Value> {
    let name = match default {
        DefaultSpec::SnowflakeId => "snowflake_id",
        DefaultSpec::Now => "now",
        DefaultSpec::UuidV7 => "uuid_v7",
        DefaultSpec::Ulid => "ulid",
        DefaultSpec::CurrentUser => "current_user",
        DefaultSpec::Expr(text) => {
            let expr = kalamdb_sql::parse_expr(text)?;
            let session = s.without_params();
            return Box::pin(eval_expr(&session, &expr, t, column)).await;
        }
    };
    builtin(s, name, t, column).expect("built-in default")
}

/// Runs a query and maps its columns, by position, onto the target columns.
async fn select_rows(
    s: &Session<'_>,
    def: &TableDef,
    targets: &[usize],
    query: Statement,
) -> Result<Vec<Vec<Value>>> {
    let planned = s.plan(query).await?;
    let batches = super::query::collect_changes(s, planned).await?;
    let mut rows = Vec::new();
    for batch in batches {
        if batch.num_columns() != targets.len() {
            return Err(CoreError::exec(format!(
                "INSERT has {} target column(s) but the query returns {}",
                targets.len(),
                batch.num_columns()
            )));
        }
        let mut columns = Vec::with_capacity(targets.len());
        for (array, &index) in batch.columns().iter().zip(targets) {
            let column = &def.columns[index];
            columns.push(
                cast_to_column(array, column.data_type)
                    .map_err(|e| CoreError::exec(format!("column '{}': {e}", column.name)))?,
            );
        }
        for r in 0..batch.num_rows() {
            let mut row: Vec<Option<Value>> = vec![None; def.columns.len()];
            for (array, &index) in columns.iter().zip(targets) {
                let column = &def.columns[index];
                let value = value_at(array, r, column.data_type)?;
                row[index] = Some(crate::values::validate_value(
                    value,
                    column.data_type,
                    &column.name,
                )?);
            }
            rows.push(complete_row(s, def, row).await?);
        }
    }
    Ok(rows)
}
