//! Planning and running statements through DataFusion.

use super::catalog::KalamCatalog;
use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use crate::provider::{RequestScope, CATALOG_NAME};
use crate::system::{INFORMATION_SCHEMA, SYSTEM_SCHEMA};
use crate::values::param_to_scalar;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::TableReference;
use datafusion::dataframe::DataFrame;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DfStatement;
use kalamdb_sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, Expr, SelectItem, SetExpr, Statement, TableWithJoins,
    Value as SqlValue,
};
use kalamdb_sql::KalamStatement;
use std::ops::ControlFlow;
use std::sync::{Arc, LazyLock};

/// The session every request starts from: functions and settings, no tables.
pub fn base_session_state() -> SessionState {
    let mut config = SessionConfig::new()
        .with_default_catalog_and_schema(CATALOG_NAME, crate::catalog::DEFAULT_NAMESPACE)
        .with_create_default_catalog_and_schema(false)
        .with_information_schema(false)
        .with_target_partitions(2);
    // Plain Utf8 everywhere, as the tables store it.
    config.options_mut().sql_parser.map_string_types_to_utf8view = false;
    config
        .options_mut()
        .execution
        .parquet
        .schema_force_view_types = false;
    SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_analyzer_rule(Arc::new(super::checked_math::CheckedConstants))
        .with_physical_optimizer_rule(Arc::new(super::checked_math::CheckedArithmetic))
        .build()
}

/// Whether a statement names a system column, so tables must expose them.
fn names_system_columns(statement: &Statement) -> bool {
    names_column(statement, |name| {
        name.eq_ignore_ascii_case(crate::schema::SEQ_COLUMN)
            || name.eq_ignore_ascii_case(crate::schema::DELETED_COLUMN)
    })
}

/// Whether a query names `_deleted`: it reads deleted rows too.
fn names_deleted(statement: &Statement) -> bool {
    names_column(statement, |name| {
        name.eq_ignore_ascii_case(crate::schema::DELETED_COLUMN)
    })
}

fn names_column(statement: &Statement, is_system: impl Fn(&str) -> bool) -> bool {
    visit_expressions(statement, |expr| match expr {
        Expr::Identifier(ident) if is_system(&ident.value) => ControlFlow::Break(()),
        Expr::CompoundIdentifier(parts) if parts.last().is_some_and(|i| is_system(&i.value)) => {
            ControlFlow::Break(())
        }
        _ => ControlFlow::Continue(()),
    })
    .is_break()
}

/// `CURRENT_USER` / `CURRENT_USER()` (the parser reads both as a bare
/// `current_user`) becomes the caller's name as a string literal.
pub(super) fn bind_current_user(statement: &mut Statement, user: &str) {
    let _ = visit_expressions_mut(statement, |expr| {
        let is_current_user = match expr {
            Expr::Identifier(ident) => {
                ident.quote_style.is_none() && ident.value.eq_ignore_ascii_case("current_user")
            }
            Expr::Function(f) => f.name.to_string().eq_ignore_ascii_case("current_user"),
            _ => false,
        };
        if is_current_user {
            *expr = Expr::value(SqlValue::SingleQuotedString(user.to_string()));
        }
        ControlFlow::<()>::Continue(())
    });
}

impl Session<'_> {
    /// A DataFusion session whose catalog shows exactly what this caller may see.
    /// `tombstones`: scans return deleted rows too (a query naming
    /// `_deleted`; never a row change, which must not see them).
    pub(super) fn state_for(
        &self,
        statement: &Statement,
        tombstones: bool,
    ) -> Result<SessionState> {
        let scope = Arc::new(RequestScope {
            caller: self.caller.clone(),
            system_columns: names_system_columns(statement),
            tombstones,
        });
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(
            CATALOG_NAME.to_string(),
            Arc::new(KalamCatalog::new(self.services.clone(), scope)),
        );
        let mut config = self.query.state.config().clone();
        config.options_mut().catalog.default_schema = self.default_namespace.clone();
        let builder = SessionStateBuilder::new_from_existing(self.query.state.clone())
            .with_config(config)
            .with_catalog_list(Arc::new(catalogs) as Arc<dyn CatalogProviderList>);
        let mut state = builder.with_runtime_env(self.query.runtime()?).build();
        // NOW() and CURRENT_TIMESTAMP: one instant per statement.
        state.mark_start_execution();
        Ok(state)
    }

    /// Checks every table the statement names, so a missing one is reported
    /// as such rather than as a planning error.
    pub(super) fn check_references(
        &self,
        state: &SessionState,
        statement: &DfStatement,
    ) -> Result<()> {
        for reference in state.resolve_table_references(statement)? {
            let (schema, table) = match &reference {
                TableReference::Bare { table } => (self.default_namespace.as_str(), table.as_ref()),
                TableReference::Partial { schema, table } => (schema.as_ref(), table.as_ref()),
                TableReference::Full {
                    catalog,
                    schema,
                    table,
                } => {
                    if catalog.as_ref() != CATALOG_NAME {
                        return Err(CoreError::TableNotFound(reference.to_string()));
                    }
                    (schema.as_ref(), table.as_ref())
                }
            };
            if schema == SYSTEM_SCHEMA || schema == INFORMATION_SCHEMA {
                continue;
            }
            // A table function (`generate_series(...)`) is not a table.
            if matches!(reference, TableReference::Bare { .. })
                && state.table_functions().contains_key(table)
            {
                continue;
            }
            if self.services.catalog.namespace(schema).is_none() {
                return Err(CoreError::NamespaceNotFound(schema.to_string()));
            }
            if self.services.catalog.table(schema, table).is_none() {
                return Err(CoreError::TableNotFound(format!("{schema}.{table}")));
            }
        }
        Ok(())
    }

    /// Plans and runs a statement, binding the request's parameters.
    pub(super) async fn collect(&self, statement: Statement) -> Result<DataFrame> {
        self.collect_with(statement, false).await
    }

    /// [`Session::collect`]; `tombstones` as for [`Session::state_for`].
    async fn collect_with(&self, mut statement: Statement, tombstones: bool) -> Result<DataFrame> {
        bind_current_user(&mut statement, self.caller.user_id.as_str());
        let state = self.state_for(&statement, tombstones)?;
        let statement = DfStatement::Statement(Box::new(statement));
        self.check_references(&state, &statement)?;
        let mut plan = state.statement_to_plan(statement).await?;
        if !self.params.is_empty() {
            let values = self
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| param_to_scalar(i, p))
                .collect::<Result<Vec<_>>>()?;
            plan = plan
                .with_param_values(values)
                .map_err(|e| CoreError::InvalidParameter(e.to_string()))?;
        }
        Ok(DataFrame::new(state, plan))
    }
}

pub async fn run_query(
    session: &Session<'_>,
    mut statement: Statement,
    stream: bool,
) -> Result<StatementResult> {
    if names_system_columns(&statement) {
        super::wildcard::hide_system_columns(&mut statement, |name| {
            let parts: Vec<&str> = name
                .0
                .iter()
                .filter_map(|p| p.as_ident())
                .map(|i| i.value.as_str())
                .collect();
            let (namespace, table) = match parts.as_slice() {
                [table] => (session.default_namespace.as_str(), *table),
                [namespace, table] | [_, namespace, table] => (*namespace, *table),
                _ => return false,
            };
            session.services.catalog.table(namespace, table).is_some()
        });
    }
    let tombstones = names_deleted(&statement);
    let frame = session.collect_with(statement, tombstones).await?;
    let schema = Arc::new(frame.schema().as_arrow().clone());
    let batches = frame.execute_stream().await?;
    let stream_after = stream.then_some(super::limits::STREAM_AFTER_BYTES);
    let collected =
        super::limits::collect_bounded(batches, &session.query.limits, stream_after).await?;
    let row_count = collected.batches.iter().map(|b| b.num_rows()).sum();
    Ok(StatementResult {
        schema: Some(schema),
        batches: collected.batches,
        rest: collected.rest,
        row_count,
        message: None,
        as_user: session.caller.user_id.to_string(),
    })
}

/// `SELECT <projection> [FROM <from>] [WHERE <selection>]`, built as a
/// syntax tree from parts of another statement.
pub(super) fn select_statement(
    projection: Vec<SelectItem>,
    from: Option<TableWithJoins>,
    selection: Option<Expr>,
) -> Statement {
    // Filling in a parsed query keeps every other clause at its default,
    // whatever fields this version of sqlparser's `Select` has.
    static TEMPLATE: LazyLock<Statement> =
        LazyLock::new(
            || match kalamdb_sql::parse_statement("SELECT 1").expect("a valid query") {
                KalamStatement::Standard(statement) => *statement,
                _ => panic!("SELECT 1 is a standard statement"),
            },
        );
    let mut statement = TEMPLATE.clone();
    if let Statement::Query(query) = &mut statement {
        if let SetExpr::Select(select) = query.body.as_mut() {
            select.projection = projection;
            select.from = from.into_iter().collect();
            select.selection = selection;
        }
    }
    statement
}

/// Runs the query that finds the rows a statement changes. The changes are
/// written in one batch, so they are held at once: within the result caps.
pub(super) async fn collect_changes(
    s: &Session<'_>,
    query: Statement,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let stream = s.collect(query).await?.execute_stream().await?;
    let collected = super::limits::collect_bounded(stream, &s.query.limits, None).await?;
    Ok(collected.batches)
}
