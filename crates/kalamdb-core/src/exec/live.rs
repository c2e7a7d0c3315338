//! Planning a live query as the caller: its SQL through the same session,
//! catalog and permission rules as a SELECT.

use super::query::bind_current_user;
use super::Session;
use crate::error::CoreError;
use crate::live::{Compiled, LiveCode, LiveError, LivePlan, LiveResult, SystemWatch};
use crate::system::{INFORMATION_SCHEMA, SYSTEM_SCHEMA};
use datafusion::sql::parser::Statement as DfStatement;
use kalamdb_commons::Role;
use kalamdb_sql::KalamStatement;

/// What a live query reads.
#[derive(Debug)]
pub enum LiveTarget {
    /// A USER or SHARED table, through its change feed.
    Table(LivePlan),
    /// A system table (dba and above), recomputed and compared.
    System(SystemWatch),
}

impl Session<'_> {
    /// Plans a live query; `EXECUTE AS USER '<name>' (SELECT ...)` plans it
    /// as that user, with the same rules as for statements. Returns who the
    /// subscription reads as.
    pub async fn plan_live_as(&self, sql: &str) -> LiveResult<(crate::users::Caller, LiveTarget)> {
        match kalamdb_sql::parse_statement(sql).map_err(CoreError::from)? {
            KalamStatement::ExecuteAs { user, statement } => {
                let session = self.as_user(&user)?;
                let KalamStatement::Standard(inner) = *statement else {
                    return Err(not_a_select());
                };
                Ok((
                    session.caller.clone(),
                    session.plan_statement(*inner).await?,
                ))
            }
            KalamStatement::Standard(statement) => {
                Ok((self.caller.clone(), self.plan_statement(*statement).await?))
            }
            _ => Err(not_a_select()),
        }
    }

    pub async fn plan_live(&self, sql: &str) -> LiveResult<LiveTarget> {
        Ok(self.plan_live_as(sql).await?.1)
    }

    async fn plan_statement(
        &self,
        statement: kalamdb_sql::sqlparser::ast::Statement,
    ) -> LiveResult<LiveTarget> {
        let mut statement = match statement {
            statement @ kalamdb_sql::sqlparser::ast::Statement::Query(_) => statement,
            _ => return Err(not_a_select()),
        };
        bind_current_user(&mut statement, self.caller.user_id.as_str());
        // A live query never reads deleted rows back: its changes say
        // what was deleted.
        let state = self.state_for(&statement, false)?;
        let statement = DfStatement::Statement(Box::new(statement));
        self.check_references(&state, &statement)?;
        let plan = state
            .statement_to_plan(statement)
            .await
            .map_err(planning_error)?;
        // Types coerced (and the rest of analysis), but not optimized: the
        // optimizer would fold the shape into the scan.
        let plan = state
            .analyzer()
            .execute_and_check(plan, state.config_options(), |_, _| {})
            .map_err(planning_error)?;
        let compiled = Compiled::new(&plan, state.execution_props())?;
        let reference = compiled.table.clone();
        let schema = reference
            .schema()
            .map(str::to_string)
            .unwrap_or_else(|| self.default_namespace.clone());
        if schema == SYSTEM_SCHEMA || schema == INFORMATION_SCHEMA {
            if self.caller.role < Role::Dba {
                return Err(LiveError::new(
                    LiveCode::Unauthorized,
                    "subscribing to system tables requires the dba role or above",
                ));
            }
            let builtin = crate::system::builtin(&schema, reference.table()).ok_or_else(|| {
                LiveError::new(
                    LiveCode::NotFound,
                    format!("table '{schema}.{}' does not exist", reference.table()),
                )
            })?;
            return Ok(LiveTarget::System(SystemWatch::new(
                builtin,
                compiled,
                self.services.clone(),
                self.caller.clone(),
            )));
        }
        let def = self
            .services
            .catalog
            .table(&schema, reference.table())
            .ok_or_else(|| {
                LiveError::new(
                    LiveCode::NotFound,
                    format!("table '{schema}.{}' does not exist", reference.table()),
                )
            })?;
        Ok(LiveTarget::Table(LivePlan::new(compiled, def)))
    }
}

/// Unknown columns, type mismatches and the like: the SQL is wrong.
fn planning_error(e: datafusion::error::DataFusionError) -> LiveError {
    use datafusion::error::DataFusionError;
    let mut root = &e;
    while let DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) = root {
        root = inner;
    }
    let wrong_sql = matches!(
        root,
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..) | DataFusionError::SQL(..)
    );
    let core = CoreError::from(e);
    if wrong_sql {
        LiveError::new(LiveCode::InvalidSql, core.to_string())
    } else {
        core.into()
    }
}

fn not_a_select() -> LiveError {
    LiveError::new(
        LiveCode::Unsupported,
        "a live query is a SELECT: SELECT <columns> FROM <table> [WHERE <condition>]",
    )
}

impl From<LiveError> for CoreError {
    fn from(e: LiveError) -> Self {
        match e.code {
            LiveCode::InvalidSql => CoreError::InvalidSql(e.message),
            LiveCode::NotFound => CoreError::TableNotFound(e.message),
            LiveCode::Unauthorized => CoreError::PermissionDenied(e.message),
            _ => CoreError::Execution(e.message),
        }
    }
}

/// `SUBSCRIBE TO`: checks the live query as the caller and answers with
/// what a client sends over the WebSocket to open it.
pub async fn subscribe_to(
    s: &Session<'_>,
    table: &kalamdb_sql::TableRef,
    selection: Option<&str>,
    options: &kalamdb_sql::LiveOptions,
) -> crate::error::Result<super::StatementResult> {
    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use std::sync::Arc;
    let ns = s.namespace_of(table);
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut sql = format!("SELECT * FROM {}.{}", quote(&ns), quote(&table.table));
    if let Some(condition) = selection {
        sql.push_str(" WHERE ");
        sql.push_str(condition);
    }
    s.plan_live(&sql).await?;
    let id = format!("sub-{}", s.services.ids.next_id());
    let mut wanted = serde_json::Map::new();
    for (key, value) in [
        ("last_rows", options.last_rows),
        ("batch_size", options.batch_size),
        ("from_seq_id", options.from_seq_id),
    ] {
        if let Some(value) = value {
            wanted.insert(key.into(), value.into());
        }
    }
    let subscription = serde_json::json!({"id": id, "sql": sql, "options": wanted});
    let ws_url = &s.services.live.config.ws_url;
    let schema = Arc::new(Schema::new(vec![
        Field::new("status", DataType::Utf8, false),
        Field::new("ws_url", DataType::Utf8, false),
        Field::new("subscription", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]));
    let message = format!(
        "Subscription ready: open {ws_url}, authenticate, then send \
         {{\"type\":\"subscribe\",\"subscription\":{subscription}}}"
    );
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec!["ready"])),
            Arc::new(StringArray::from(vec![ws_url.as_str()])),
            Arc::new(StringArray::from(vec![subscription.to_string()])),
            Arc::new(StringArray::from(vec![message.clone()])),
        ],
    )?;
    Ok(super::StatementResult {
        schema: Some(schema),
        row_count: 1,
        batches: vec![batch],
        rest: None,
        message: Some(message),
        as_user: s.caller.user_id.to_string(),
    })
}

/// `KILL LIVE QUERY '<id>'`: its owner, or service and above.
pub fn kill_live_query(
    s: &Session<'_>,
    live_id: &str,
) -> crate::error::Result<super::StatementResult> {
    let hub = &s.services.live.hub;
    let feed = hub
        .feeds()
        .into_iter()
        .find(|f| f.info.live_id == live_id && f.end_reason().is_none())
        .ok_or_else(|| CoreError::Execution(format!("no live query '{live_id}' is active")))?;
    if feed.info.user_id != s.caller.user_id.as_str() && s.caller.role < Role::Service {
        return Err(CoreError::PermissionDenied(
            "KILL LIVE QUERY of another user's subscription requires the service role or above"
                .into(),
        ));
    }
    feed.end(crate::live::EndReason::Killed);
    hub.unregister(&feed);
    Ok(super::StatementResult::message(
        &s.caller,
        format!("Live query {live_id} killed"),
    ))
}
