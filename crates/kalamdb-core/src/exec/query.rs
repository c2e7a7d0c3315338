//! Planning and running statements through DataFusion.

use super::catalog::KalamCatalog;
use super::limits::QueryEnv;
use super::plan_cache::{is_cacheable, CachedPlan, GenericPlan, PlanKey};
use super::{Session, StatementResult};
use crate::error::{CoreError, Result};
use crate::provider::{RequestScope, CATALOG_NAME};
use crate::system::{INFORMATION_SCHEMA, SYSTEM_SCHEMA};
use crate::values::param_to_scalar;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{CatalogProviderList, MemoryCatalogProviderList};
use datafusion::common::ScalarValue;
use datafusion::common::TableReference;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DfStatement;
use kalamdb_sql::sqlparser::ast::{
    visit_expressions, visit_expressions_mut, Expr, SelectItem, SetExpr, Statement, TableWithJoins,
    Value as SqlValue,
};
use kalamdb_sql::KalamStatement;
use std::borrow::Cow;
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

/// A query planned and optimized for one run.
pub(super) struct PlannedQuery<'a> {
    /// The session it was planned in: a kept generic plan runs in the
    /// server's base session, which it no longer needs a catalog from.
    state: Cow<'a, SessionState>,
    plan: LogicalPlan,
}

impl PlannedQuery<'_> {
    pub fn schema(&self) -> SchemaRef {
        Arc::new(self.plan.schema().as_arrow().clone())
    }

    /// Starts the query, with this statement's own share of the query
    /// memory.
    pub async fn execute(self, env: &QueryEnv) -> Result<SendableRecordBatchStream> {
        let task = Arc::new(TaskContext::from(self.state.as_ref()).with_runtime(env.runtime()?));
        if let Some(rows) = super::key_plan::execute(&self.plan, &self.state, task.clone()).await? {
            return Ok(rows);
        }
        let physical = self
            .state
            .query_planner()
            .create_physical_plan(&self.plan, self.state.as_ref())
            .await?;
        Ok(execute_stream(physical, task)?)
    }
}

/// The request's parameters as values.
fn param_values(params: &[serde_json::Value]) -> Result<Vec<ScalarValue>> {
    params
        .iter()
        .enumerate()
        .map(|(i, p)| param_to_scalar(i, p))
        .collect()
}

/// `plan` with `values` bound to its `$n` placeholders.
fn bind_params(plan: LogicalPlan, values: Vec<ScalarValue>) -> Result<LogicalPlan> {
    if values.is_empty() {
        return Ok(plan);
    }
    plan.with_param_values(values)
        .map_err(|e| CoreError::InvalidParameter(e.to_string()))
}

impl Session<'_> {
    /// The base session, marked with this statement's start (`NOW()` and
    /// `CURRENT_TIMESTAMP`: one instant per statement).
    fn statement_state(&self) -> SessionState {
        let mut state = self.query.state.clone();
        state.mark_start_execution();
        state
    }

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
            txn: self
                .txn
                .clone()
                .map(|t| t as Arc<dyn crate::provider::TxReads>),
        });
        let catalogs = MemoryCatalogProviderList::new();
        catalogs.register_catalog(
            CATALOG_NAME.to_string(),
            Arc::new(KalamCatalog::new(self.services.clone(), scope)),
        );
        let mut state = self.statement_state();
        state.register_catalog_list(Arc::new(catalogs) as Arc<dyn CatalogProviderList>);
        state.config_mut().options_mut().catalog.default_schema = self.default_namespace.clone();
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

    /// Plans a statement from SQL (not yet analyzed or optimized; the
    /// request's parameters not bound).
    async fn plan_sql(
        &self,
        mut statement: Statement,
        tombstones: bool,
    ) -> Result<(SessionState, LogicalPlan)> {
        bind_current_user(&mut statement, self.caller.user_id.as_str());
        let state = self.state_for(&statement, tombstones)?;
        let statement = DfStatement::Statement(Box::new(statement));
        self.check_references(&state, &statement)?;
        let plan = state.statement_to_plan(statement).await?;
        Ok((state, plan))
    }

    /// Plans a statement, binding the request's parameters.
    pub(super) async fn plan(&self, statement: Statement) -> Result<PlannedQuery<'_>> {
        self.plan_with(statement, false).await
    }

    /// [`Session::plan`]; `tombstones` as for [`Session::state_for`].
    async fn plan_with(&self, statement: Statement, tombstones: bool) -> Result<PlannedQuery<'_>> {
        let (state, plan) = self.plan_sql(statement, tombstones).await?;
        let plan = bind_params(plan, param_values(self.params)?)?;
        let plan = state.optimize(&plan)?;
        Ok(PlannedQuery {
            state: Cow::Owned(state),
            plan,
        })
    }

    /// Plans a query whose text the statement cache keeps: with the plan
    /// kept for this caller when there is a current one, else planned and
    /// kept ([`super::plan_cache`]). `row_change`: the query finding the
    /// rows of an UPDATE or DELETE (keyed by that statement's text and the
    /// schema version given), which never reads deleted rows.
    async fn plan_kept(
        &self,
        statement: &Statement,
        text: &Arc<str>,
        row_change: Option<u32>,
    ) -> Result<PlannedQuery<'_>> {
        let cache = &self.query.plans;
        let key = PlanKey {
            text: text.clone(),
            user: self.caller.user_id.to_string(),
            role: self.caller.role,
            namespace: self.default_namespace.clone(),
            schema_version: row_change.unwrap_or(0),
        };
        // Read before the definitions the plan is built from.
        let generation = self.services.catalog.generation();
        let values = param_values(self.params)?;
        if let Some(kept) = cache.get(&key, generation) {
            if let Some(plan) = kept.generic.as_ref().and_then(|g| g.bind(&values)) {
                return Ok(PlannedQuery {
                    state: Cow::Borrowed(&self.query.state),
                    plan,
                });
            }
            let state = self.statement_state();
            let plan = state.optimize(&bind_params(kept.logical.clone(), values)?)?;
            return Ok(PlannedQuery {
                state: Cow::Owned(state),
                plan,
            });
        }
        let (statement, tombstones) = if row_change.is_some() {
            (statement.clone(), false)
        } else {
            let statement = self.visible_columns(statement.clone());
            let tombstones = names_deleted(&statement);
            (statement, tombstones)
        };
        let (state, logical) = self.plan_sql(statement, tombstones).await?;
        let mut bound = None;
        if is_cacheable(&logical) {
            let generic = GenericPlan::new(&logical, |p| state.optimize(p));
            // This run, too, uses the generic plan when it can, rather
            // than optimizing the statement a second time.
            bound = generic.as_ref().and_then(|g| g.bind(&values));
            let kept = CachedPlan {
                generation,
                logical: logical.clone(),
                generic,
            };
            cache.insert(key, kept);
        }
        let plan = match bound {
            Some(plan) => plan,
            None => state.optimize(&bind_params(logical, values)?)?,
        };
        Ok(PlannedQuery {
            state: Cow::Owned(state),
            plan,
        })
    }

    /// The query with `*` not expanding to system columns, when it names
    /// one (so its tables expose them).
    fn visible_columns(&self, mut statement: Statement) -> Statement {
        if names_system_columns(&statement) {
            super::wildcard::hide_system_columns(&mut statement, |name| {
                let parts: Vec<&str> = name
                    .0
                    .iter()
                    .filter_map(|p| p.as_ident())
                    .map(|i| i.value.as_str())
                    .collect();
                let (namespace, table) = match parts.as_slice() {
                    [table] => (self.default_namespace.as_str(), *table),
                    [namespace, table] | [_, namespace, table] => (*namespace, *table),
                    _ => return false,
                };
                self.services.catalog.table(namespace, table).is_some()
            });
        }
        statement
    }
}

/// Runs a query (or EXPLAIN). `text`: the statement cache keeps it, so its
/// plan may be kept too.
pub async fn run_query(
    session: &Session<'_>,
    statement: &Statement,
    text: Option<&Arc<str>>,
    stream: bool,
) -> Result<StatementResult> {
    let planned = match text {
        Some(text)
            if session.query.plans.is_enabled() && matches!(statement, Statement::Query(_)) =>
        {
            session.plan_kept(statement, text, None).await?
        }
        _ => {
            let statement = session.visible_columns(statement.clone());
            let tombstones = names_deleted(&statement);
            session.plan_with(statement, tombstones).await?
        }
    };
    let schema = planned.schema();
    let batches = planned.execute(session.query).await?;
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

/// Plans the query that finds the rows a statement changes; `text`: the
/// statement's, when the statement cache keeps it (the query is built from
/// it alone, so its plan is kept by it too).
pub(super) async fn plan_changes<'s>(
    s: &'s Session<'_>,
    query: Statement,
    text: Option<&Arc<str>>,
    schema_version: u32,
) -> Result<PlannedQuery<'s>> {
    match text {
        Some(text) if s.query.plans.is_enabled() => {
            s.plan_kept(&query, text, Some(schema_version)).await
        }
        _ => s.plan(query).await,
    }
}

/// Runs a planned query to the end. The changes are written in one batch,
/// so they are held at once: within the result caps.
pub(super) async fn collect_changes(
    s: &Session<'_>,
    planned: PlannedQuery<'_>,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let stream = planned.execute(s.query).await?;
    let collected = super::limits::collect_bounded(stream, &s.query.limits, None).await?;
    Ok(collected.batches)
}
