//! Running parsed statements for one caller.

mod alter;
mod alter_check;
mod backup;
mod catalog;
mod checked_math;
mod ddl;
pub mod direct;
pub(crate) mod export;
mod flush;
mod guarded_fns;
mod insert;
pub mod kalam_fns;
mod key_plan;
pub mod limits;
mod live;
pub use live::LiveTarget;
mod modify;
pub mod plan_cache;
pub mod prepared;
mod query;
mod resolve;
mod show;
mod stats;
mod storage;
mod storage_check;
pub mod transaction;
mod txn;
mod wildcard;
mod write;

use crate::error::{CoreError, Result};
use crate::services::Services;
use crate::users::Caller;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use kalamdb_sql::KalamStatement;
use std::sync::Arc;

/// The outcome of one statement.
#[derive(Debug)]
pub struct StatementResult {
    /// Present for statements that return rows.
    pub schema: Option<SchemaRef>,
    pub batches: Vec<RecordBatch>,
    /// The rest of a large result, after `batches` (only from
    /// [`crate::KalamDb::execute_streaming`]).
    pub rest: Option<limits::ResultStream>,
    /// Rows returned (in `batches`), or rows affected by DML.
    pub row_count: usize,
    pub message: Option<String>,
    /// Whose data the statement touched.
    pub as_user: String,
}

impl StatementResult {
    fn message(caller: &Caller, message: String) -> Self {
        Self {
            schema: None,
            batches: Vec::new(),
            rest: None,
            row_count: 0,
            message: Some(message),
            as_user: caller.user_id.to_string(),
        }
    }

    fn affected(caller: &Caller, rows: usize, verb: &str) -> Self {
        Self {
            row_count: rows,
            ..Self::message(caller, format!("{verb} {rows} row(s)"))
        }
    }
}

/// Everything one statement runs with.
pub struct Session<'a> {
    pub services: &'a Arc<Services>,
    pub query: &'a limits::QueryEnv,
    pub caller: Caller,
    pub default_namespace: String,
    pub params: &'a [serde_json::Value],
    /// The batch's open transaction (`BEGIN`), if any.
    pub txn: Option<Arc<transaction::Transaction>>,
}

impl Session<'_> {
    /// This session without the request's parameters, for SQL that KalamDB
    /// writes itself (SHOW queries, stored column defaults).
    fn without_params(&self) -> Session<'_> {
        Session {
            services: self.services,
            query: self.query,
            caller: self.caller.clone(),
            default_namespace: self.default_namespace.clone(),
            params: &[],
            txn: self.txn.clone(),
        }
    }

    /// This session acting as `user` (`EXECUTE AS USER`): system may act as
    /// anyone; dba as dba, service or user; service as service or user; a
    /// user only as itself.
    pub(crate) fn as_user(&self, user: &str) -> Result<Session<'_>> {
        let target = self
            .services
            .users
            .caller_of(user)
            .ok_or_else(|| CoreError::UserNotFound(user.to_string()))?;
        let allowed = target.user_id == self.caller.user_id
            || (self.caller.role > kalamdb_commons::Role::User && target.role <= self.caller.role);
        if !allowed {
            return Err(CoreError::PermissionDenied(format!(
                "{} (role {}) cannot execute as '{user}' (role {})",
                self.caller.user_id, self.caller.role, target.role
            )));
        }
        Ok(Session {
            services: self.services,
            query: self.query,
            caller: target,
            default_namespace: self.default_namespace.clone(),
            params: self.params,
            txn: self.txn.clone(),
        })
    }

    /// `USE ns`: the default namespace for the statements after it.
    pub fn use_namespace(&mut self, name: &str) -> Result<StatementResult> {
        if self.services.catalog.namespace(name).is_none() {
            return Err(CoreError::NamespaceNotFound(name.to_string()));
        }
        self.default_namespace = name.to_string();
        Ok(StatementResult::message(
            &self.caller,
            format!("Using namespace '{name}'"),
        ))
    }

    /// The answer of a direct read, if `prepared` is one it can give now:
    /// a read it answers (`bounded`: only lookups and LIMIT reads, never a
    /// COUNT of a whole scope), or a constant query's kept result. `None`:
    /// run the statement as usual.
    pub async fn run_direct(
        &self,
        prepared: &prepared::Prepared,
        bounded: bool,
    ) -> Result<Option<StatementResult>> {
        use std::sync::atomic::Ordering;
        if !self.query.direct_reads.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let answer = match &prepared.direct {
            Some(direct::DirectQuery::Read(read)) if !bounded || read.is_bounded() => {
                Box::pin(direct::run(self, read)).await?
            }
            Some(direct::DirectQuery::Constant) => {
                prepared
                    .constant
                    .get()
                    .map(|(schema, batches)| StatementResult {
                        schema: Some(schema.clone()),
                        row_count: batches.iter().map(|b| b.num_rows()).sum(),
                        batches: batches.clone(),
                        rest: None,
                        message: None,
                        as_user: self.caller.user_id.to_string(),
                    })
            }
            _ => None,
        };
        if answer.is_some() {
            self.query.direct_served.fetch_add(1, Ordering::Relaxed);
        }
        Ok(answer)
    }

    /// Runs one prepared statement: as a direct read when it is one of
    /// those shapes (and direct reads are on), else as [`Session::run`].
    /// A write that an ALTER TABLE overtook ([`CoreError::SchemaChanged`],
    /// nothing written) is planned and run again under the new schema.
    pub async fn run_prepared(
        &self,
        prepared: Arc<prepared::Prepared>,
        stream: bool,
    ) -> Result<StatementResult> {
        const ATTEMPTS: usize = 4;
        let mut attempt = 1;
        loop {
            match Box::pin(self.run_prepared_once(prepared.clone(), stream)).await {
                Err(CoreError::SchemaChanged(_)) if attempt < ATTEMPTS => attempt += 1,
                outcome => return outcome,
            }
        }
    }

    async fn run_prepared_once(
        &self,
        prepared: Arc<prepared::Prepared>,
        stream: bool,
    ) -> Result<StatementResult> {
        if self.txn.is_some() {
            // Kept plans and direct reads see no transaction: plan afresh.
            check_allowed_in_transaction(&prepared.statement)?;
            return Box::pin(self.run(prepared.statement.clone(), stream)).await;
        }
        if let Some(answer) = self.run_direct(&prepared, false).await? {
            return Ok(answer);
        }
        if let Some(direct::DirectQuery::Constant) = prepared.direct {
            // Planned once; the result is kept for the next time.
            let result = Box::pin(self.run(prepared.statement.clone(), stream)).await?;
            if let (Some(schema), None) = (&result.schema, &result.rest) {
                let _ = prepared
                    .constant
                    .set((schema.clone(), result.batches.clone()));
            }
            return Ok(result);
        }
        if let (Some(text), KalamStatement::Standard(statement)) =
            (&prepared.text, &prepared.statement)
        {
            use kalamdb_sql::sqlparser::ast::Statement;
            // Its plan (or its row-finding query's) may be kept by the text.
            match statement.as_ref() {
                Statement::Query(_) => {
                    return Box::pin(query::run_query(self, statement, Some(text), stream)).await
                }
                Statement::Update(update) => {
                    return Box::pin(modify::update(self, update, Some(text))).await
                }
                Statement::Delete(delete) => {
                    return Box::pin(modify::delete(self, delete, Some(text))).await
                }
                _ => {}
            }
        }
        let statement = match Arc::try_unwrap(prepared) {
            Ok(owned) => owned.statement,
            Err(shared) => shared.statement.clone(),
        };
        // Boxed: a planned statement's future is large, and debug builds
        // copy futures on the stack.
        Box::pin(self.run(statement, stream)).await
    }

    /// Runs one statement. With `stream`, a query's large result is handed
    /// back unfinished (`StatementResult::rest`). Changes to the catalog,
    /// users, storages and jobs are written to the audit log, failed or not.
    pub async fn run(&self, statement: KalamStatement, stream: bool) -> Result<StatementResult> {
        let Some((action, target, subject)) = self.audited(&statement) else {
            return self.run_unaudited(statement, stream).await;
        };
        let result = self.run_unaudited(statement, stream).await;
        self.services.audit.record(crate::audit::AuditEvent {
            actor: self.caller.user_id.to_string(),
            action: action.to_string(),
            target,
            error: result.as_ref().err().map(|e| e.to_string()),
            ip_address: None,
            subject,
        });
        result
    }

    /// The audit log's action, target and subject user for a statement
    /// that changes something other than rows; `None` for the rest.
    fn audited(
        &self,
        statement: &KalamStatement,
    ) -> Option<(&'static str, String, Option<String>)> {
        let table = |t: &kalamdb_sql::TableRef| {
            let ns = t.namespace.as_deref().unwrap_or(&self.default_namespace);
            format!("{ns}.{}", t.table)
        };
        let target =
            match statement {
                KalamStatement::CreateNamespace { name, .. }
                | KalamStatement::DropNamespace { name, .. }
                | KalamStatement::CreateUser { name, .. }
                | KalamStatement::AlterUser { name, .. }
                | KalamStatement::DropUser { name, .. } => name.clone(),
                KalamStatement::CreateTable(create) => table(&create.table),
                KalamStatement::AlterTable(alter) => table(&alter.table),
                KalamStatement::DropTable { table: t, .. }
                | KalamStatement::FlushTable { table: t }
                | KalamStatement::CompactTable { table: t } => table(t),
                KalamStatement::FlushAll { namespace }
                | KalamStatement::CompactAll { namespace } => namespace.clone().unwrap_or_default(),
                KalamStatement::CreateStorage { id, .. }
                | KalamStatement::AlterStorage { id, .. }
                | KalamStatement::DropStorage { id, .. } => id.clone(),
                KalamStatement::KillJob { job_id } => job_id.clone(),
                KalamStatement::ExportUserData { user, .. } => user.clone(),
                KalamStatement::BackupDatabase { path }
                | KalamStatement::RestoreDatabase { path } => path.clone(),
                KalamStatement::KillLiveQuery { live_id } => live_id.clone(),
                KalamStatement::KillQuery { query_id } => query_id.clone(),
                KalamStatement::ExecuteAs { user, statement } => {
                    let (action, target, _) = self.audited(statement)?;
                    return Some((action, target, Some(user.clone())));
                }
                _ => return None,
            };
        Some((statement.kind(), target, None))
    }

    async fn run_unaudited(
        &self,
        statement: KalamStatement,
        stream: bool,
    ) -> Result<StatementResult> {
        match statement {
            KalamStatement::CreateNamespace {
                name,
                if_not_exists,
            } => ddl::create_namespace(self, &name, if_not_exists),
            KalamStatement::DropNamespace {
                name,
                if_exists,
                cascade,
            } => ddl::drop_namespace(self, &name, if_exists, cascade).await,
            KalamStatement::CreateTable(create) => ddl::create_table(self, *create),
            KalamStatement::DropTable { table, if_exists } => {
                ddl::drop_table(self, &table, if_exists).await
            }
            KalamStatement::CreateUser {
                name,
                password,
                role,
                email,
            } => ddl::create_user(self, &name, &password, role, email),
            KalamStatement::AlterUser { name, change } => ddl::alter_user(self, &name, change),
            KalamStatement::DropUser { name, if_exists } => ddl::drop_user(self, &name, if_exists),
            KalamStatement::ShowNamespaces => show::show_namespaces(self).await,
            // A batch applies it before statements run (`use_namespace`);
            // here it could only be inside EXECUTE AS, which holds one
            // statement and so has nothing after it to apply to.
            KalamStatement::UseNamespace { .. } => Err(CoreError::InvalidSql(
                "USE sets the namespace for the rest of a batch; it cannot run inside \
                 EXECUTE AS"
                    .into(),
            )),
            KalamStatement::ShowTables { namespace } => {
                show::show_tables(self, namespace.as_deref()).await
            }
            KalamStatement::Begin | KalamStatement::Commit | KalamStatement::Rollback => Err(
                CoreError::Internal("transaction control is handled by the batch".into()),
            ),
            KalamStatement::DescribeTable {
                table,
                history: false,
            } => show::describe_table(self, &table).await,
            KalamStatement::DescribeTable {
                table,
                history: true,
            } => alter::describe_history(self, &self.resolve_table(&table)?),
            KalamStatement::AlterTable(alter) => alter::alter_table(self, *alter).await,
            KalamStatement::ShowStats { table } => stats::show_stats(self, &table),
            KalamStatement::FlushTable { table } => flush::flush_table(self, &table).await,
            KalamStatement::FlushAll { namespace } => {
                flush::flush_all(self, namespace.as_deref()).await
            }
            KalamStatement::CompactTable { table } => flush::compact_table(self, &table).await,
            KalamStatement::CompactAll { namespace } => {
                flush::compact_all(self, namespace.as_deref()).await
            }
            KalamStatement::CreateStorage {
                id,
                if_not_exists,
                options,
            } => storage::create_storage(self, &id, if_not_exists, *options),
            KalamStatement::AlterStorage { id, options } => {
                storage::alter_storage(self, &id, *options)
            }
            KalamStatement::DropStorage { id, if_exists } => {
                storage::drop_storage(self, &id, if_exists)
            }
            KalamStatement::ShowStorages => storage::show_storages(self).await,
            KalamStatement::ExportUserData { user, path } => {
                export::export_user_data(self, &user, path.as_deref()).await
            }
            KalamStatement::ShowExports => export::show_exports(self).await,
            KalamStatement::BackupDatabase { path } => backup::backup_database(self, &path).await,
            KalamStatement::RestoreDatabase { path } => backup::restore_database(self, &path),
            KalamStatement::CheckStorage { id, extended } => {
                storage_check::check_storage(self, &id, extended).await
            }
            KalamStatement::KillJob { job_id } => flush::kill_job(self, &job_id).await,
            KalamStatement::Subscribe {
                table,
                selection,
                options,
            } => live::subscribe_to(self, &table, selection.as_deref(), &options).await,
            KalamStatement::KillLiveQuery { live_id } => live::kill_live_query(self, &live_id),
            KalamStatement::KillQuery { query_id } => {
                let s = &self.services.running;
                match s.kill(&query_id, self.caller.user_id.as_str(), self.caller.role) {
                    0 => Err(CoreError::Execution(format!(
                        "no statement of yours is running as query '{query_id}'"
                    ))),
                    n => Ok(StatementResult::message(
                        &self.caller,
                        format!("Cancelled {n} statement(s) running as query '{query_id}'"),
                    )),
                }
            }
            KalamStatement::ExecuteAs { user, statement } => {
                let session = self.as_user(&user)?;
                Box::pin(session.run_unaudited(*statement, stream)).await
            }
            KalamStatement::FastInsert(insert) => insert::insert_literals(self, &insert).await,
            KalamStatement::Standard(statement) => {
                use kalamdb_sql::sqlparser::ast::Statement;
                match *statement {
                    Statement::Insert(insert) => insert::insert(self, &insert).await,
                    Statement::Update(update) => modify::update(self, &update, None).await,
                    Statement::Delete(delete) => modify::delete(self, &delete, None).await,
                    other @ (Statement::Query(_) | Statement::Explain { .. }) => {
                        query::run_query(self, &other, None, stream).await
                    }
                    other => Err(CoreError::InvalidSql(format!(
                        "unsupported statement: {}",
                        kalamdb_commons::excerpt(&other.to_string(), 60)
                    ))),
                }
            }
        }
    }
}

/// Inside a transaction only reads and row changes run: anything else
/// (catalog changes, jobs, subscriptions, `EXECUTE AS`) is refused rather
/// than half-joined to it.
fn check_allowed_in_transaction(statement: &KalamStatement) -> Result<()> {
    match statement {
        KalamStatement::FastInsert(_) | KalamStatement::Standard(_) => Ok(()),
        other => Err(CoreError::exec(format!(
            "{} cannot run inside a transaction; COMMIT or ROLLBACK first",
            other.kind()
        ))),
    }
}
