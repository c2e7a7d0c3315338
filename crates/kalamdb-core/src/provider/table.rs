//! The table provider of USER and SHARED tables.

use super::scan::ScopeScan;
use super::RequestScope;
use crate::catalog::TableDef;
use crate::error::CoreError;
use crate::schema::table_schema;
use crate::services::Services;
use crate::users::Caller;
use crate::values::coerce_scalar;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::error::Result;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType as DfTableType,
};
use datafusion::physical_plan::streaming::StreamingTableExec;
use datafusion::physical_plan::ExecutionPlan;
use kalamdb_commons::Value;
use kalamdb_commons::{Role, TableType};
use kalamdb_store::ScopeKey;
use std::sync::Arc;

/// One table as one caller sees it: a USER table shows only the caller's
/// rows; a SHARED table shows every row.
#[derive(Debug)]
pub struct KalamTableProvider {
    services: Arc<Services>,
    def: Arc<TableDef>,
    schema: SchemaRef,
    scope_key: ScopeKey,
    /// Deleted rows too (a query naming `_deleted`).
    tombstones: bool,
}

impl KalamTableProvider {
    pub fn new(
        services: Arc<Services>,
        def: Arc<TableDef>,
        scope: Arc<RequestScope>,
    ) -> Result<Self, CoreError> {
        let scope_key = scope_key_for(&def, &scope.caller)?;
        let mut schema = table_schema(&def, scope.system_columns);
        if scope.tombstones {
            // A USER table's deleted rows are the caller's own; a SHARED
            // table's are nobody's, so they are for service and above.
            if def.table_type == TableType::Shared && scope.caller.role < Role::Service {
                return Err(CoreError::PermissionDenied(format!(
                    "reading the deleted rows of SHARED table '{}' (_deleted) requires the \
                     service role or above",
                    def.qualified_name()
                )));
            }
            // Tombstones written before DELETE kept the row hold NULL in
            // every column but the key.
            let pk = def.pk_index();
            let fields: Vec<_> = schema
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| {
                    let nullable = f.is_nullable() || (i != pk && i < def.columns.len());
                    f.as_ref().clone().with_nullable(nullable)
                })
                .collect();
            schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
        }
        Ok(Self {
            schema,
            services,
            def,
            scope_key,
            tombstones: scope.tombstones,
        })
    }
}

impl KalamTableProvider {
    /// The primary-key value of a `pk = literal` filter, as stored.
    fn point_key(&self, filter: &Expr) -> Option<Value> {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = filter
        else {
            return None;
        };
        let (column, literal) = match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(v, _)) | (Expr::Literal(v, _), Expr::Column(c)) => {
                (c, v)
            }
            _ => return None,
        };
        if column.name != self.def.primary_key {
            return None;
        }
        let pk = &self.def.columns[self.def.pk_index()];
        coerce_scalar(literal, pk.data_type, &pk.name)
            .ok()
            .filter(|v| !v.is_null())
    }
}

/// The hot-tier scope a caller reads and writes in a table.
pub fn scope_key_for(def: &TableDef, caller: &Caller) -> Result<ScopeKey, CoreError> {
    match def.table_type {
        TableType::User | TableType::Stream => {
            Ok(ScopeKey::new(def.uid, Some(caller.user_id.as_str())))
        }
        TableType::Shared => {
            if !def.public && caller.role < Role::Service {
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

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // `pk = literal` narrows the scan to one key; DataFusion still
        // applies every filter itself (Inexact), after version resolution.
        Ok(filters
            .iter()
            .map(|f| {
                if self.point_key(f).is_some() {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let projected = Arc::new(self.schema.project(&projection)?);
        let point = filters.iter().find_map(|f| self.point_key(f));
        let scan = ScopeScan::new(
            self.services.clone(),
            self.def.clone(),
            self.scope_key.clone(),
            projected.clone(),
            projection,
            limit,
            point,
        )
        .with_tombstones(self.tombstones);
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
