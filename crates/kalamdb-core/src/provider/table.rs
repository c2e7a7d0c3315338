//! The table provider of USER and SHARED tables.

use super::hot_scan::HotScan;
use super::RequestScope;
use crate::catalog::TableDef;
use crate::context::CoreContext;
use crate::error::CoreError;
use crate::schema::table_schema;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{Expr, TableType as DfTableType};
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::ExecutionPlan;
use kalamdb_commons::{Role, TableType};
use kalamdb_store::ScopeKey;
use std::sync::Arc;

/// One table as one caller sees it: a USER table shows only the caller's
/// rows; a SHARED table shows every row.
#[derive(Debug)]
pub struct KalamTableProvider {
    ctx: Arc<CoreContext>,
    def: Arc<TableDef>,
    schema: SchemaRef,
    scope_key: ScopeKey,
}

impl KalamTableProvider {
    pub fn new(
        ctx: Arc<CoreContext>,
        def: Arc<TableDef>,
        scope: Arc<RequestScope>,
    ) -> Result<Self, CoreError> {
        let scope_key = scope_key_for(&def, &scope)?;
        Ok(Self {
            schema: table_schema(&def, scope.system_columns),
            ctx,
            def,
            scope_key,
        })
    }
}

/// The hot-tier scope a caller reads and writes in a table.
pub fn scope_key_for(def: &TableDef, scope: &RequestScope) -> Result<ScopeKey, CoreError> {
    match def.table_type {
        TableType::User | TableType::Stream => {
            Ok(ScopeKey::new(def.uid, Some(scope.caller.user_id.as_str())))
        }
        TableType::Shared => {
            if !def.public && scope.caller.role < Role::Service {
                return Err(CoreError::PermissionDenied(format!(
                    "table '{}' is PRIVATE: service role or above required",
                    def.qualified_name()
                )));
            }
            Ok(ScopeKey::new(def.uid, None))
        }
        TableType::System => Err(CoreError::Internal("system tables have no rows".into())),
    }
}

#[async_trait]
impl TableProvider for KalamTableProvider {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> DfTableType {
        DfTableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let projected = Arc::new(self.schema.project(&projection)?);
        let scan = HotScan::new(
            self.ctx.clone(),
            self.def.clone(),
            self.scope_key.clone(),
            projected.clone(),
            projection,
            limit,
        );
        let exec = StreamingTableExec::try_new(
            projected,
            vec![Arc::new(scan)],
            None,
            vec![],
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}
